using System;
using Pie.Interop;

namespace Pie
{
    /// <summary>
    /// A libpie call failed: <see cref="Status"/> is the PieStatus, the message is libpie's text
    /// (for server refusals, the server's words verbatim).
    /// </summary>
    public class PieException : Exception
    {
        public PieStatus Status { get; private set; }

        public PieException(PieStatus status, string message)
            : base(PieLibrary.StatusName(status) + ": " + message)
        {
            Status = status;
            ServerMessage = message;
        }

        /// <summary>The message exactly as libpie gave it (without the status name).</summary>
        public string ServerMessage { get; private set; }

        /// <summary>Turns a failed status and its PieError (which it frees) into an exception.</summary>
        internal static PieException FromError(PieStatus status, IntPtr err)
        {
            string message = "(no error details)";
            if (err != IntPtr.Zero)
            {
                status = Native.pie_error_status(err);
                message = Utf8.FromNative(Native.pie_error_message(err)) ?? message;
                Native.pie_error_free(err);
            }
            return new PieException(status, message);
        }

        /// <summary>Throws if <paramref name="status"/> is not Ok; frees <paramref name="err"/> either way.</summary>
        internal static void Check(PieStatus status, IntPtr err)
        {
            if (status == PieStatus.Ok)
            {
                if (err != IntPtr.Zero) Native.pie_error_free(err);
                return;
            }
            throw FromError(status, err);
        }
    }
}
