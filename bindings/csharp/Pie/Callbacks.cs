// Every native -> managed call goes through the static methods below. IL2CPP and Mono's
// full-AOT compiler (iOS, consoles) can only hand native code a pointer to a *static* method
// carrying an attribute named MonoPInvokeCallbackAttribute; they generate the reverse-P/Invoke
// wrapper from it. Unity's own attribute lives in UnityEngine.dll, which this binding does not
// reference, so it defines one of the same name (the compilers match the name only).
//
// The delegates for those methods are created once and held in static readonly fields: the
// function pointers libpie stores can never be collected. What libpie passes back as
// `user_data` is a GCHandle to the managed target (a sink object), allocated when a callback is
// registered and freed by the drop callback, which libpie runs exactly once after the last call.
using System;
using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using System.Threading;

namespace Pie.Interop
{
    /// <summary>
    /// Marks a static method that native code calls through a function pointer (the name is
    /// what IL2CPP and Mono's AOT compiler look for).
    /// </summary>
    [AttributeUsage(AttributeTargets.Method)]
    public sealed class MonoPInvokeCallbackAttribute : Attribute
    {
        public MonoPInvokeCallbackAttribute(Type delegateType) { DelegateType = delegateType; }

        public Type DelegateType { get; private set; }
    }

    /// <summary>Receives an instance's events from the callback thread.</summary>
    internal interface IEventSink
    {
        void OnEvent(PieEvent ev);
        void OnEnd(PieStatus status);
    }

    /// <summary>Receives the end of a connection.</summary>
    internal interface IConnectionSink
    {
        void OnConnectionEnd(PieStatus status, string message);
    }

    /// <summary>Receives the completion of an operation.</summary>
    internal interface IOpSink
    {
        void OnComplete(PieStatus status);
        void OnDropped();
    }

    /// <summary>Receives upload progress (on a libpie runtime thread).</summary>
    internal interface IProgressSink
    {
        void OnProgress(ulong sent, ulong total);
    }

    internal static class Callbacks
    {
        internal static readonly EventCallback Event = OnEvent;
        internal static readonly OpCallback Op = OnOp;
        internal static readonly ConnectionCallback Connection = OnConnection;
        internal static readonly ProgressCallback Progress = OnProgress;
        internal static readonly DropCallback Drop = OnDrop;

        // GCHandles currently given to libpie. Freeing goes through this set so that a second
        // release of the same user_data (a drop racing a failed registration) is harmless.
        static readonly ConcurrentDictionary<IntPtr, byte> Live = new ConcurrentDictionary<IntPtr, byte>();

        internal static int LiveCount { get { return Live.Count; } }

        /// <summary>A user_data for libpie: a GCHandle keeping <paramref name="target"/> alive.</summary>
        internal static IntPtr Pin(object target)
        {
            IntPtr p = GCHandle.ToIntPtr(GCHandle.Alloc(target));
            Live[p] = 0;
            return p;
        }

        /// <summary>Releases a user_data from <see cref="Pin"/>; a no-op the second time.</summary>
        internal static void Unpin(IntPtr userData)
        {
            byte unused;
            if (userData != IntPtr.Zero && Live.TryRemove(userData, out unused))
                GCHandle.FromIntPtr(userData).Free();
        }

        static object Target(IntPtr userData)
        {
            if (userData == IntPtr.Zero || !Live.ContainsKey(userData)) return null;
            return GCHandle.FromIntPtr(userData).Target;
        }

        // No managed exception may unwind into libpie's native frames: each trampoline catches
        // everything and reports it through PieLibrary.CallbackException.

        [MonoPInvokeCallback(typeof(EventCallback))]
        static void OnEvent(IntPtr userData, PieStatus status, IntPtr ev)
        {
            try
            {
                var sink = Target(userData) as IEventSink;
                if (sink == null) return;
                if (ev != IntPtr.Zero) sink.OnEvent(PieEvent.Copy(ev));
                else sink.OnEnd(status);
            }
            catch (Exception e)
            {
                PieLibrary.ReportCallbackException(e);
            }
        }

        [MonoPInvokeCallback(typeof(OpCallback))]
        static void OnOp(IntPtr userData, IntPtr op, PieStatus status)
        {
            try
            {
                var sink = Target(userData) as IOpSink;
                if (sink != null) sink.OnComplete(status);
            }
            catch (Exception e)
            {
                PieLibrary.ReportCallbackException(e);
            }
        }

        [MonoPInvokeCallback(typeof(ConnectionCallback))]
        static void OnConnection(IntPtr userData, PieStatus status, IntPtr message)
        {
            try
            {
                var sink = Target(userData) as IConnectionSink;
                if (sink != null) sink.OnConnectionEnd(status, Utf8.FromNative(message) ?? string.Empty);
            }
            catch (Exception e)
            {
                PieLibrary.ReportCallbackException(e);
            }
        }

        [MonoPInvokeCallback(typeof(ProgressCallback))]
        static void OnProgress(IntPtr userData, ulong sent, ulong total)
        {
            try
            {
                var sink = Target(userData) as IProgressSink;
                if (sink != null) sink.OnProgress(sent, total);
            }
            catch (Exception e)
            {
                PieLibrary.ReportCallbackException(e);
            }
        }

        [MonoPInvokeCallback(typeof(DropCallback))]
        static void OnDrop(IntPtr userData)
        {
            try
            {
                var sink = Target(userData) as IOpSink;
                Unpin(userData);
                if (sink != null) sink.OnDropped();
            }
            catch (Exception e)
            {
                PieLibrary.ReportCallbackException(e);
            }
        }
    }

    /// <summary>An upload's progress delegate, as a sink.</summary>
    internal sealed class ProgressSink : IProgressSink
    {
        readonly Action<ulong, ulong> progress;

        internal ProgressSink(Action<ulong, ulong> progress) { this.progress = progress; }

        public void OnProgress(ulong sent, ulong total) { progress(sent, total); }
    }

    /// <summary>The connection callback's delegate, as a sink.</summary>
    internal sealed class ConnectionSink : IConnectionSink
    {
        readonly Action<PieStatus, string> onEnd;

        internal ConnectionSink(Action<PieStatus, string> onEnd) { this.onEnd = onEnd; }

        public void OnConnectionEnd(PieStatus status, string message) { onEnd(status, message); }
    }
}
