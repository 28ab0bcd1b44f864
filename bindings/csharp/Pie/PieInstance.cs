using System;
using System.Threading;
using System.Threading.Tasks;
using Pie.Interop;

namespace Pie
{
    /// <summary>
    /// A running program instance (PieInstance in pie.h). Thread-safe. Its events arrive in one
    /// of two ways: polled (the default: <see cref="PieClient.Poll"/> each frame, or
    /// <see cref="TryReceive"/>, <see cref="Receive"/>, <see cref="ReceiveAsync"/>), or pushed to
    /// a callback on libpie's callback thread after <see cref="SetCallback"/>. Dispose it when
    /// done (the instance keeps running on the server: <see cref="Terminate"/> it first if needed).
    /// </summary>
    public sealed class PieInstance : IDisposable
    {
        internal readonly InstanceHandle Handle;
        readonly PieClient client;
        readonly string id;
        readonly bool detached;
        int endStatus = -1;       // a PieStatus once the stream has ended
        int endReported;          // 1 once Ended was raised by a Poll
        int callbackMode;

        internal PieInstance(InstanceHandle handle, PieClient client)
        {
            Handle = handle;
            this.client = client;
            id = Utf8.FromNative(Native.pie_instance_id(handle));
            detached = Native.pie_instance_is_detached(handle);
            if (!detached) client.Track(this);
        }

        /// <summary>The instance id (a UUID).</summary>
        public string Id { get { return id; } }

        /// <summary>Launched detached: it sends no events here until attached.</summary>
        public bool IsDetached { get { return detached; } }

        public bool IsDisposed { get { return Handle.IsClosed; } }

        /// <summary>True once the event stream has ended (see <see cref="EndStatus"/>).</summary>
        public bool IsEnded { get { return Volatile.Read(ref endStatus) >= 0; } }

        /// <summary>
        /// Why the stream ended: StreamEnded (after the terminal event), ConnectionClosed or
        /// ClientClosed; Ok while it has not.
        /// </summary>
        public PieStatus EndStatus
        {
            get { int s = Volatile.Read(ref endStatus); return s < 0 ? PieStatus.Ok : (PieStatus)s; }
        }

        /// <summary>
        /// Raised by <see cref="PieClient.Poll"/> for each event, on the polling thread. Poll
        /// drains only instances with an EventReceived or Ended handler.
        /// </summary>
        public event Action<PieInstance, PieEvent> EventReceived;

        /// <summary>Raised once by <see cref="PieClient.Poll"/> when the stream has ended.</summary>
        public event Action<PieInstance, PieStatus> Ended;

        internal bool EndReported { get { return Volatile.Read(ref endReported) == 1; } }

        public void Dispose()
        {
            client.Untrack(this);
            Handle.Dispose();
        }

        // --- sending --------------------------------------------------------------------------

        /// <summary>Sends a text message to the instance (no reply from the server).</summary>
        public void Send(string message)
        {
            Check.NotNull(message, "message");
            Check.NotDisposed(Handle, this);
            IntPtr err;
            PieException.Check(Native.pie_instance_send(Handle, Utf8.Encode(message), out err), err);
        }

        public Task SendAsync(string message, CancellationToken cancellationToken = default(CancellationToken))
        {
            Check.NotNull(message, "message");
            Check.NotDisposed(Handle, this);
            IntPtr op, err;
            PieException.Check(Native.pie_instance_send_async(Handle, Utf8.Encode(message), out op, out err), err);
            return PendingOp<bool>.Start(op, Ops.NoValue, cancellationToken, IntPtr.Zero);
        }

        /// <summary>Uploads bytes to the instance as a blob; progress as in PieClient.UploadProgram.</summary>
        public void UploadBlob(byte[] data, Action<ulong, ulong> progress = null)
        {
            Check.NotNull(data, "data");
            Check.NotDisposed(Handle, this);
            IntPtr pin = progress == null ? IntPtr.Zero : Callbacks.Pin(new ProgressSink(progress));
            try
            {
                IntPtr err;
                PieException.Check(Native.pie_instance_upload_blob(Handle, data, (UIntPtr)data.Length,
                    progress == null ? null : Callbacks.Progress, pin, out err), err);
            }
            finally
            {
                Callbacks.Unpin(pin);
            }
        }

        public Task UploadBlobAsync(byte[] data, Action<ulong, ulong> progress = null,
                                    CancellationToken cancellationToken = default(CancellationToken))
        {
            Check.NotNull(data, "data");
            Check.NotDisposed(Handle, this);
            IntPtr pin = progress == null ? IntPtr.Zero : Callbacks.Pin(new ProgressSink(progress));
            IntPtr op, err;
            PieStatus st = Native.pie_instance_upload_blob_async(Handle, data, (UIntPtr)data.Length,
                progress == null ? null : Callbacks.Progress, pin, out op, out err);
            if (st != PieStatus.Ok)
            {
                Callbacks.Unpin(pin);
                throw PieException.FromError(st, err);
            }
            return PendingOp<bool>.Start(op, Ops.NoValue, cancellationToken, pin);
        }

        public void Terminate()
        {
            Check.NotDisposed(Handle, this);
            IntPtr err;
            PieException.Check(Native.pie_instance_terminate(Handle, out err), err);
        }

        public Task TerminateAsync(CancellationToken cancellationToken = default(CancellationToken))
        {
            Check.NotDisposed(Handle, this);
            IntPtr op, err;
            PieException.Check(Native.pie_instance_terminate_async(Handle, out op, out err), err);
            return PendingOp<bool>.Start(op, Ops.NoValue, cancellationToken, IntPtr.Zero);
        }

        // --- receiving ------------------------------------------------------------------------

        /// <summary>
        /// Takes the next queued event without waiting. False when none is queued now or the
        /// stream has ended (<see cref="IsEnded"/>). Throws PieException for Detached, Busy (the
        /// instance has a callback), ...
        /// </summary>
        public bool TryReceive(out PieEvent ev)
        {
            return Receive(0, out ev);
        }

        /// <summary>
        /// Waits up to <paramref name="timeoutMs"/> (-1: forever) for the next event; null on
        /// timeout or once the stream has ended. Blocks the calling thread: not for a game's
        /// main thread (use Poll, TryReceive or ReceiveAsync there).
        /// </summary>
        public PieEvent Receive(int timeoutMs)
        {
            if (timeoutMs < -1) throw new ArgumentOutOfRangeException("timeoutMs", "-1 (forever), 0 or a positive number of milliseconds");
            PieEvent ev;
            Receive(timeoutMs, out ev);
            return ev;
        }

        bool Receive(int timeoutMs, out PieEvent ev)
        {
            Check.NotDisposed(Handle, this);
            ev = null;
            if (IsEnded) return false;
            IntPtr raw, err;
            PieStatus st = Native.pie_instance_recv(Handle, timeoutMs, out raw, out err);
            return Received(st, raw, err, out ev);
        }

        bool Received(PieStatus st, IntPtr raw, IntPtr err, out PieEvent ev)
        {
            ev = null;
            switch (st)
            {
                case PieStatus.Ok:
                    if (err != IntPtr.Zero) Native.pie_error_free(err);
                    ev = PieEvent.CopyAndFree(raw);
                    return true;
                case PieStatus.Timeout:
                    if (err != IntPtr.Zero) Native.pie_error_free(err);
                    return false;
                case PieStatus.StreamEnded:
                case PieStatus.ConnectionClosed:
                case PieStatus.ClientClosed:
                    if (err != IntPtr.Zero) Native.pie_error_free(err);
                    MarkEnded(st);
                    return false;
                default:
                    throw PieException.FromError(st, err);
            }
        }

        /// <summary>
        /// Receives the next event without blocking the calling thread: the Task gives the event,
        /// or null on timeout or once the stream has ended.
        /// </summary>
        public Task<PieEvent> ReceiveAsync(int timeoutMs = -1, CancellationToken cancellationToken = default(CancellationToken))
        {
            if (timeoutMs < -1) throw new ArgumentOutOfRangeException("timeoutMs", "-1 (forever), 0 or a positive number of milliseconds");
            Check.NotDisposed(Handle, this);
            IntPtr op, err;
            PieException.Check(Native.pie_instance_recv_async(Handle, timeoutMs, out op, out err), err);
            return PendingOp<PieEvent>.Start(op, (h, status) =>
            {
                if (status != PieStatus.Ok)
                {
                    IntPtr e;
                    PieStatus s = Native.pie_op_error(h, out e);
                    PieEvent none;
                    Received(s == PieStatus.Ok ? status : s, IntPtr.Zero, e, out none);
                    return null;
                }
                IntPtr raw, e2;
                PieException.Check(Native.pie_op_take_event(h, out raw, out e2), e2);
                return PieEvent.CopyAndFree(raw);
            }, cancellationToken, IntPtr.Zero);
        }

        void MarkEnded(PieStatus status)
        {
            Interlocked.CompareExchange(ref endStatus, (int)status, -1);
        }

        /// <summary>The per-frame drain behind PieClient.Poll. Returns the number of events delivered.</summary>
        internal int PollInternal(int budget)
        {
            // Only instances someone listens to: one read with Receive/ReceiveAsync is left alone.
            if (Handle.IsClosed || Volatile.Read(ref callbackMode) == 1) return 0;
            if (EventReceived == null && Ended == null) return 0;
            int n = 0;
            PieEvent ev;
            while (n < budget && TryReceive(out ev))
            {
                n++;
                var handler = EventReceived;
                if (handler != null) handler(this, ev);
                if (Handle.IsClosed) return n;         // disposed by the handler
            }
            if (IsEnded && Interlocked.Exchange(ref endReported, 1) == 0)
            {
                var ended = Ended;
                if (ended != null) ended(this, EndStatus);
            }
            return n;
        }

        // --- callback delivery ----------------------------------------------------------------

        /// <summary>
        /// Switches to callback delivery: <paramref name="onEvent"/> gets every event and then
        /// <paramref name="onEnded"/> (may be null) the status that ended the stream, in order,
        /// on libpie's callback thread for this client (never the caller's thread: in Unity,
        /// hand the data to the main thread yourself). Exceptions thrown by them are caught and
        /// reported through <see cref="PieLibrary.CallbackException"/>. The instance leaves the
        /// client's Poll set. The delegates stay referenced until libpie has made its last call.
        /// </summary>
        public void SetCallback(Action<PieEvent> onEvent, Action<PieStatus> onEnded = null)
        {
            Check.NotNull(onEvent, "onEvent");
            Check.NotDisposed(Handle, this);
            IntPtr ud = Callbacks.Pin(new EventSink(this, onEvent, onEnded));
            IntPtr err;
            PieStatus st = Native.pie_instance_set_callback(Handle, Callbacks.Event, ud, Callbacks.Drop, out err);
            if (st != PieStatus.Ok)
            {
                Callbacks.Unpin(ud);
                throw PieException.FromError(st, err);
            }
            Volatile.Write(ref callbackMode, 1);
            client.Untrack(this);
        }

        sealed class EventSink : IEventSink
        {
            readonly PieInstance owner;
            readonly Action<PieEvent> onEvent;
            readonly Action<PieStatus> onEnded;

            internal EventSink(PieInstance owner, Action<PieEvent> onEvent, Action<PieStatus> onEnded)
            {
                this.owner = owner;
                this.onEvent = onEvent;
                this.onEnded = onEnded;
            }

            public void OnEvent(PieEvent ev) { onEvent(ev); }

            public void OnEnd(PieStatus status)
            {
                owner.MarkEnded(status);
                if (onEnded != null) onEnded(status);
            }
        }
    }

    /// <summary>One entry of <see cref="PieClient.ListInstances"/> (copied; no disposal needed).</summary>
    public sealed class PieInstanceInfo
    {
        public string Id { get; private set; }
        public string Username { get; private set; }
        public string[] Arguments { get; private set; }
        public PieInstanceStatus Status { get; private set; }
        public ulong ElapsedSeconds { get; private set; }
        public uint KvPagesUsed { get; private set; }

        internal static PieInstanceInfo[] CopyAndFree(IntPtr list)
        {
            try
            {
                int n = checked((int)Native.pie_instance_list_len(list).ToUInt64());
                var result = new PieInstanceInfo[n];
                for (int i = 0; i < n; i++)
                {
                    var index = (UIntPtr)i;
                    var info = new PieInstanceInfo();
                    info.Id = Utf8.FromNative(Native.pie_instance_list_id(list, index));
                    info.Username = Utf8.FromNative(Native.pie_instance_list_username(list, index));
                    UIntPtr count;
                    IntPtr err;
                    PieException.Check(Native.pie_instance_list_argument_count(list, index, out count, out err), err);
                    info.Arguments = new string[checked((int)count.ToUInt64())];
                    for (int a = 0; a < info.Arguments.Length; a++)
                        info.Arguments[a] = Utf8.FromNative(Native.pie_instance_list_argument(list, index, (UIntPtr)a));
                    PieInstanceStatus status;
                    PieException.Check(Native.pie_instance_list_status(list, index, out status, out err), err);
                    info.Status = status;
                    ulong secs;
                    PieException.Check(Native.pie_instance_list_elapsed_secs(list, index, out secs, out err), err);
                    info.ElapsedSeconds = secs;
                    uint pages;
                    PieException.Check(Native.pie_instance_list_kv_pages_used(list, index, out pages, out err), err);
                    info.KvPagesUsed = pages;
                    result[i] = info;
                }
                return result;
            }
            finally
            {
                Native.pie_instance_list_free(list);
            }
        }
    }
}
