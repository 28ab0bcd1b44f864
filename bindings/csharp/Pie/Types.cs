// The C enums, with the same stable numbers as include/pie.h.
namespace Pie
{
    /// <summary>Result of every libpie call (PieStatus in pie.h). Numbers are stable.</summary>
    public enum PieStatus
    {
        Ok = 0,
        InvalidArgument = 1,
        ConnectionFailed = 2,
        ConnectionClosed = 3,
        ClientClosed = 4,
        Timeout = 5,
        Server = 6,
        Auth = 7,
        Key = 8,
        Protocol = 9,
        Detached = 10,
        StreamEnded = 11,
        Io = 12,
        Internal = 13,
        NullPointer = 14,
        InvalidUtf8 = 15,
        Panic = 16,
        Pending = 17,
        Busy = 18,
        BufferTooSmall = 19,
        Cancelled = 20,
    }

    /// <summary>What a PieEvent is (PieEventKind in pie.h).</summary>
    public enum PieEventKind
    {
        Message = 0,
        Completed = 1,
        Aborted = 2,
        Exception = 3,
        ServerError = 4,
        OutOfResources = 5,
        Blob = 6,
        Stdout = 7,
        Stderr = 8,
        Unknown = 9,
        Overflow = 10,
    }

    /// <summary>State of a listed instance (PieInstanceStatus in pie.h).</summary>
    public enum PieInstanceStatus
    {
        Attached = 0,
        Detached = 1,
        Finished = 2,
    }
}
