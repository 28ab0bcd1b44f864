using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;
using Pie.Interop;

namespace Pie
{
    /// <summary>
    /// A connection to a Pie server (PieClient in pie.h). Thread-safe. Dispose it when done
    /// (pie_client_free: closes the connection and waits for its queued callbacks). Instances
    /// launched from it are separate objects: dispose them too (in any order).
    /// </summary>
    /// <remarks>
    /// Main-thread use in a game: call <see cref="Poll"/> once per frame; it drains every
    /// instance of this client that has no callback, without blocking, and raises their
    /// <see cref="PieInstance.EventReceived"/> / <see cref="PieInstance.Ended"/> events on the
    /// calling thread. Every network call also has an `Async` form returning a Task.
    /// </remarks>
    public sealed class PieClient : IDisposable
    {
        internal readonly ClientHandle Handle;
        readonly object pollLock = new object();
        readonly List<PieInstance> polled = new List<PieInstance>();

        PieClient(ClientHandle handle) { Handle = handle; }

        // --- connecting -----------------------------------------------------------------------

        /// <summary>Connects (blocking, at most the connect timeout). <paramref name="options"/> may be null.</summary>
        public static PieClient Connect(string url, PieConnectOptions options = null)
        {
            Check.NotNull(url, "url");
            byte[] u = Utf8.Encode(url);
            OptionsHandle o = OptionsOf(options);
            IntPtr raw, err;
            PieException.Check(Native.pie_client_connect(u, o, out raw, out err), err);
            return new PieClient(Handles.Wrap<ClientHandle>(raw));
        }

        /// <summary>Connects without blocking the calling thread.</summary>
        public static Task<PieClient> ConnectAsync(string url, PieConnectOptions options = null,
                                                   CancellationToken cancellationToken = default(CancellationToken))
        {
            Check.NotNull(url, "url");
            byte[] u = Utf8.Encode(url);
            OptionsHandle o = OptionsOf(options);
            IntPtr op, err;
            PieException.Check(Native.pie_client_connect_async(u, o, out op, out err), err);
            return PendingOp<PieClient>.Start(op, (h, status) =>
            {
                PendingOp<PieClient>.ThrowIfFailed(h, status);
                IntPtr raw, e;
                PieException.Check(Native.pie_op_take_client(h, out raw, out e), e);
                return new PieClient(Handles.Wrap<ClientHandle>(raw));
            }, cancellationToken, IntPtr.Zero);
        }

        static OptionsHandle OptionsOf(PieConnectOptions options)
        {
            if (options == null) return OptionsHandle.Null;
            Check.NotDisposed(options.Handle, options);
            return options.Handle;
        }

        // --- lifetime -------------------------------------------------------------------------

        public bool IsDisposed { get { return Handle.IsClosed; } }

        /// <summary>Closes the connection (idempotent); the object stays usable (calls fail with ClientClosed).</summary>
        public void Close()
        {
            Check.NotDisposed(Handle, this);
            IntPtr err;
            PieException.Check(Native.pie_client_close(Handle, out err), err);
        }

        /// <summary>Frees the client (pie_client_free). Idempotent.</summary>
        public void Dispose()
        {
            Handle.Dispose();
        }

        /// <summary>
        /// Calls <paramref name="onEnd"/>(status, message) once, on libpie's callback thread,
        /// when the connection ends (ConnectionClosed, or ClientClosed after Close/Dispose).
        /// Replaces an earlier registration.
        /// </summary>
        public void SetConnectionCallback(Action<PieStatus, string> onEnd)
        {
            Check.NotNull(onEnd, "onEnd");
            Check.NotDisposed(Handle, this);
            IntPtr ud = Callbacks.Pin(new ConnectionSink(onEnd));
            IntPtr err;
            PieStatus st = Native.pie_client_set_connection_callback(Handle, Callbacks.Connection, ud, Callbacks.Drop, out err);
            if (st != PieStatus.Ok)
            {
                Callbacks.Unpin(ud);
                throw PieException.FromError(st, err);
            }
        }

        /// <summary>
        /// A file descriptor that is readable while an instance of this client has events
        /// queued (pie_client_event_fd), for hosts with their own poll/epoll loop. Never read or
        /// close it.
        /// </summary>
        public int EventFd
        {
            get
            {
                Check.NotDisposed(Handle, this);
                int fd;
                IntPtr err;
                PieException.Check(Native.pie_client_event_fd(Handle, out fd, out err), err);
                return fd;
            }
        }

        // --- per-frame polling ----------------------------------------------------------------

        internal void Track(PieInstance instance)
        {
            lock (pollLock) polled.Add(instance);
        }

        internal void Untrack(PieInstance instance)
        {
            lock (pollLock) polled.Remove(instance);
        }

        /// <summary>
        /// Drains, without blocking, the events queued for this client's instances that have no
        /// callback, raising each instance's EventReceived (and Ended, once) on the calling
        /// thread. Handles at most <paramref name="maxEvents"/> events (a per-frame budget; the
        /// rest wait for the next call). Returns the number of events delivered.
        /// </summary>
        public int Poll(int maxEvents = int.MaxValue)
        {
            if (maxEvents < 0) throw new ArgumentOutOfRangeException("maxEvents");
            Check.NotDisposed(Handle, this);
            PieInstance[] snapshot;
            lock (pollLock) snapshot = polled.ToArray();
            int delivered = 0;
            foreach (var instance in snapshot)
            {
                if (delivered >= maxEvents) break;
                delivered += instance.PollInternal(maxEvents - delivered);
                if (instance.IsDisposed || instance.EndReported) Untrack(instance);
            }
            return delivered;
        }

        // --- authentication -------------------------------------------------------------------

        /// <summary>Authenticates as <paramref name="username"/>; <paramref name="key"/> null when the server has authentication off.</summary>
        public void Authenticate(string username, PieKey key = null)
        {
            Check.NotNull(username, "username");
            Check.NotDisposed(Handle, this);
            byte[] user = Utf8.Encode(username);
            KeyHandle k = KeyOf(key);
            IntPtr err;
            PieException.Check(Native.pie_client_authenticate(Handle, user, k, out err), err);
        }

        public Task AuthenticateAsync(string username, PieKey key = null,
                                      CancellationToken cancellationToken = default(CancellationToken))
        {
            Check.NotNull(username, "username");
            Check.NotDisposed(Handle, this);
            byte[] user = Utf8.Encode(username);
            KeyHandle k = KeyOf(key);
            IntPtr op, err;
            PieException.Check(Native.pie_client_authenticate_async(Handle, user, k, out op, out err), err);
            return PendingOp<bool>.Start(op, Ops.NoValue, cancellationToken, IntPtr.Zero);
        }

        static KeyHandle KeyOf(PieKey key)
        {
            if (key == null) return KeyHandle.Null;
            Check.NotDisposed(key.Handle, key);
            return key.Handle;
        }

        public void InternalAuthenticate(string token)
        {
            Check.NotNull(token, "token");
            Check.NotDisposed(Handle, this);
            IntPtr err;
            PieException.Check(Native.pie_client_internal_authenticate(Handle, Utf8.Encode(token), out err), err);
        }

        public Task InternalAuthenticateAsync(string token,
                                              CancellationToken cancellationToken = default(CancellationToken))
        {
            Check.NotNull(token, "token");
            Check.NotDisposed(Handle, this);
            IntPtr op, err;
            PieException.Check(Native.pie_client_internal_authenticate_async(Handle, Utf8.Encode(token), out op, out err), err);
            return PendingOp<bool>.Start(op, Ops.NoValue, cancellationToken, IntPtr.Zero);
        }

        // --- simple requests ------------------------------------------------------------------

        public void Ping()
        {
            Check.NotDisposed(Handle, this);
            IntPtr err;
            PieException.Check(Native.pie_client_ping(Handle, out err), err);
        }

        public Task PingAsync(CancellationToken cancellationToken = default(CancellationToken))
        {
            Check.NotDisposed(Handle, this);
            IntPtr op, err;
            PieException.Check(Native.pie_client_ping_async(Handle, out op, out err), err);
            return PendingOp<bool>.Start(op, Ops.NoValue, cancellationToken, IntPtr.Zero);
        }

        public string Query(string subject, string record)
        {
            Check.NotNull(subject, "subject");
            Check.NotNull(record, "record");
            Check.NotDisposed(Handle, this);
            IntPtr result, err;
            PieException.Check(Native.pie_client_query(Handle, Utf8.Encode(subject), Utf8.Encode(record), out result, out err), err);
            try { return Utf8.FromNative(result); }
            finally { Native.pie_string_free(result); }
        }

        public Task<string> QueryAsync(string subject, string record,
                                       CancellationToken cancellationToken = default(CancellationToken))
        {
            Check.NotNull(subject, "subject");
            Check.NotNull(record, "record");
            Check.NotDisposed(Handle, this);
            IntPtr op, err;
            PieException.Check(Native.pie_client_query_async(Handle, Utf8.Encode(subject), Utf8.Encode(record), out op, out err), err);
            return PendingOp<string>.Start(op, Ops.String, cancellationToken, IntPtr.Zero);
        }

        /// <summary>Whether the server stores a program with this hash (64 lowercase hex digits).</summary>
        public bool ProgramExists(string hash)
        {
            Check.NotNull(hash, "hash");
            Check.NotDisposed(Handle, this);
            bool exists;
            IntPtr err;
            PieException.Check(Native.pie_client_program_exists(Handle, Utf8.Encode(hash), out exists, out err), err);
            return exists;
        }

        public Task<bool> ProgramExistsAsync(string hash,
                                             CancellationToken cancellationToken = default(CancellationToken))
        {
            Check.NotNull(hash, "hash");
            Check.NotDisposed(Handle, this);
            IntPtr op, err;
            PieException.Check(Native.pie_client_program_exists_async(Handle, Utf8.Encode(hash), out op, out err), err);
            return PendingOp<bool>.Start(op, Ops.Bool, cancellationToken, IntPtr.Zero);
        }

        // --- programs -------------------------------------------------------------------------

        /// <summary>
        /// Uploads a program (a WebAssembly component) and returns its hash.
        /// <paramref name="progress"/>(bytesSent, bytesTotal), if given, runs on a libpie thread
        /// after each 256 KiB chunk: keep it short, and make no blocking libpie call in it.
        /// </summary>
        public string UploadProgram(byte[] program, Action<ulong, ulong> progress = null)
        {
            Check.NotNull(program, "program");
            Check.NotDisposed(Handle, this);
            var hash = new byte[PieLibrary.HashBufferSize];
            IntPtr pin = progress == null ? IntPtr.Zero : Callbacks.Pin(new ProgressSink(progress));
            try
            {
                IntPtr err;
                PieException.Check(Native.pie_client_upload_program(Handle, program, (UIntPtr)program.Length,
                    progress == null ? null : Callbacks.Progress, pin, hash, out err), err);
            }
            finally
            {
                Callbacks.Unpin(pin);   // libpie never calls progress after the call returned
            }
            return PieLibrary.HashString(hash);
        }

        /// <summary>Asynchronous <see cref="UploadProgram"/>: the Task gives the hash.</summary>
        public Task<string> UploadProgramAsync(byte[] program, Action<ulong, ulong> progress = null,
                                               CancellationToken cancellationToken = default(CancellationToken))
        {
            Check.NotNull(program, "program");
            Check.NotDisposed(Handle, this);
            IntPtr pin = progress == null ? IntPtr.Zero : Callbacks.Pin(new ProgressSink(progress));
            IntPtr op, err;
            PieStatus st = Native.pie_client_upload_program_async(Handle, program, (UIntPtr)program.Length,
                progress == null ? null : Callbacks.Progress, pin, out op, out err);
            if (st != PieStatus.Ok)
            {
                Callbacks.Unpin(pin);
                throw PieException.FromError(st, err);
            }
            return PendingOp<string>.Start(op, Ops.String, cancellationToken, pin);
        }

        // --- instances ------------------------------------------------------------------------

        /// <summary>Launches the program with this hash; see pie_client_launch_instance.</summary>
        public PieInstance LaunchInstance(string hash, string[] args = null, bool detached = false)
        {
            Check.NotNull(hash, "hash");
            return Launch(Native.pie_client_launch_instance, hash, args, detached);
        }

        public Task<PieInstance> LaunchInstanceAsync(string hash, string[] args = null, bool detached = false,
                                                     CancellationToken cancellationToken = default(CancellationToken))
        {
            Check.NotNull(hash, "hash");
            return LaunchAsync(Native.pie_client_launch_instance_async, hash, args, detached, cancellationToken);
        }

        /// <summary>Launches a registry inferlet ("name", "name@version", "ns/name@version").</summary>
        public PieInstance LaunchInstanceFromRegistry(string name, string[] args = null, bool detached = false)
        {
            Check.NotNull(name, "name");
            return Launch(Native.pie_client_launch_instance_from_registry, name, args, detached);
        }

        public Task<PieInstance> LaunchInstanceFromRegistryAsync(string name, string[] args = null, bool detached = false,
                                                                 CancellationToken cancellationToken = default(CancellationToken))
        {
            Check.NotNull(name, "name");
            return LaunchAsync(Native.pie_client_launch_instance_from_registry_async, name, args, detached, cancellationToken);
        }

        delegate PieStatus LaunchFn(ClientHandle c, byte[] what, IntPtr[] argv, UIntPtr argc, bool detached, out IntPtr result, out IntPtr err);

        PieInstance Launch(LaunchFn fn, string what, string[] args, bool detached)
        {
            Check.NoNullElements(args, "args");
            Check.NotDisposed(Handle, this);
            byte[] w = Utf8.Encode(what);
            IntPtr[] argv = Utf8.AllocArgv(args);
            try
            {
                IntPtr raw, err;
                PieException.Check(fn(Handle, w, argv, (UIntPtr)(args == null ? 0 : args.Length), detached, out raw, out err), err);
                return new PieInstance(Handles.Wrap<InstanceHandle>(raw), this);
            }
            finally
            {
                Utf8.FreeArgv(argv);
            }
        }

        Task<PieInstance> LaunchAsync(LaunchFn fn, string what, string[] args, bool detached, CancellationToken token)
        {
            Check.NoNullElements(args, "args");
            Check.NotDisposed(Handle, this);
            byte[] w = Utf8.Encode(what);
            IntPtr[] argv = Utf8.AllocArgv(args);
            IntPtr op;
            try
            {
                IntPtr err;
                PieException.Check(fn(Handle, w, argv, (UIntPtr)(args == null ? 0 : args.Length), detached, out op, out err), err);
            }
            finally
            {
                Utf8.FreeArgv(argv);   // copied by libpie before the call returned
            }
            return PendingOp<PieInstance>.Start(op, TakeInstance, token, IntPtr.Zero);
        }

        PieInstance TakeInstance(OpHandle op, PieStatus status)
        {
            PendingOp<PieInstance>.ThrowIfFailed(op, status);
            IntPtr raw, err;
            PieException.Check(Native.pie_op_take_instance(op, out raw, out err), err);
            return new PieInstance(Handles.Wrap<InstanceHandle>(raw), this);
        }

        /// <summary>Attaches to the running instance <paramref name="id"/> so its events come here.</summary>
        public PieInstance AttachInstance(string id)
        {
            Check.NotNull(id, "id");
            Check.NotDisposed(Handle, this);
            IntPtr raw, err;
            PieException.Check(Native.pie_client_attach_instance(Handle, Utf8.Encode(id), out raw, out err), err);
            return new PieInstance(Handles.Wrap<InstanceHandle>(raw), this);
        }

        public Task<PieInstance> AttachInstanceAsync(string id,
                                                     CancellationToken cancellationToken = default(CancellationToken))
        {
            Check.NotNull(id, "id");
            Check.NotDisposed(Handle, this);
            IntPtr op, err;
            PieException.Check(Native.pie_client_attach_instance_async(Handle, Utf8.Encode(id), out op, out err), err);
            return PendingOp<PieInstance>.Start(op, TakeInstance, cancellationToken, IntPtr.Zero);
        }

        public PieInstanceInfo[] ListInstances()
        {
            Check.NotDisposed(Handle, this);
            IntPtr list, err;
            PieException.Check(Native.pie_client_list_instances(Handle, out list, out err), err);
            return PieInstanceInfo.CopyAndFree(list);
        }

        public Task<PieInstanceInfo[]> ListInstancesAsync(CancellationToken cancellationToken = default(CancellationToken))
        {
            Check.NotDisposed(Handle, this);
            IntPtr op, err;
            PieException.Check(Native.pie_client_list_instances_async(Handle, out op, out err), err);
            return PendingOp<PieInstanceInfo[]>.Start(op, (h, status) =>
            {
                PendingOp<PieInstanceInfo[]>.ThrowIfFailed(h, status);
                IntPtr list, e;
                PieException.Check(Native.pie_op_take_instance_list(h, out list, out e), e);
                return PieInstanceInfo.CopyAndFree(list);
            }, cancellationToken, IntPtr.Zero);
        }

        public void TerminateInstance(string id)
        {
            Check.NotNull(id, "id");
            Check.NotDisposed(Handle, this);
            IntPtr err;
            PieException.Check(Native.pie_client_terminate_instance(Handle, Utf8.Encode(id), out err), err);
        }

        public Task TerminateInstanceAsync(string id, CancellationToken cancellationToken = default(CancellationToken))
        {
            Check.NotNull(id, "id");
            Check.NotDisposed(Handle, this);
            IntPtr op, err;
            PieException.Check(Native.pie_client_terminate_instance_async(Handle, Utf8.Encode(id), out op, out err), err);
            return PendingOp<bool>.Start(op, Ops.NoValue, cancellationToken, IntPtr.Zero);
        }
    }

    /// <summary>Argument checks made before any native call.</summary>
    internal static class Check
    {
        internal static void NotNull(object value, string name)
        {
            if (value == null) throw new ArgumentNullException(name);
        }

        internal static void NoNullElements(string[] values, string name)
        {
            if (values == null) return;
            foreach (var v in values)
                if (v == null) throw new ArgumentException("contains a null string", name);
        }

        internal static void NotDisposed(System.Runtime.InteropServices.SafeHandle handle, object owner)
        {
            if (handle.IsClosed) throw new ObjectDisposedException(owner.GetType().Name);
        }
    }
}
