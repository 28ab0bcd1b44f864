// One SafeHandle per libpie object that the binding owns across calls. The runtime guarantees
// ReleaseHandle runs exactly once (on Dispose or, as a last resort, on the finalizer thread), and
// the P/Invoke marshaller keeps a handle referenced for the duration of each call: a Dispose on
// another thread waits for calls in flight instead of freeing the object under them.
using System;
using System.Runtime.InteropServices;

namespace Pie.Interop
{
    internal abstract class PieHandle : SafeHandle
    {
        protected PieHandle() : base(IntPtr.Zero, true) { }

        public override bool IsInvalid { get { return handle == IntPtr.Zero; } }

        internal void Adopt(IntPtr raw) { SetHandle(raw); }
    }

    internal sealed class ClientHandle : PieHandle
    {
        protected override bool ReleaseHandle() { Native.pie_client_free(handle); return true; }
    }

    internal sealed class InstanceHandle : PieHandle
    {
        protected override bool ReleaseHandle() { Native.pie_instance_free(handle); return true; }
    }

    internal sealed class OpHandle : PieHandle
    {
        protected override bool ReleaseHandle() { Native.pie_op_free(handle); return true; }
    }

    internal sealed class KeyHandle : PieHandle
    {
        /// <summary>Passed where the C API takes a NULL key (authentication disabled).</summary>
        internal static readonly KeyHandle Null = new KeyHandle();

        protected override bool ReleaseHandle() { Native.pie_key_free(handle); return true; }
    }

    internal sealed class OptionsHandle : PieHandle
    {
        /// <summary>Passed where the C API takes NULL options (the defaults).</summary>
        internal static readonly OptionsHandle Null = new OptionsHandle();

        protected override bool ReleaseHandle() { Native.pie_connect_options_free(handle); return true; }
    }

    internal static class Handles
    {
        internal static T Wrap<T>(IntPtr raw) where T : PieHandle, new()
        {
            var h = new T();
            h.Adopt(raw);
            return h;
        }
    }
}
