using System;
using System.Text;
using Pie.Interop;

namespace Pie
{
    /// <summary>Library-wide functions.</summary>
    public static class PieLibrary
    {
        /// <summary>PIE_HASH_BUFFER_SIZE: 64 hex digits and a NUL.</summary>
        internal const int HashBufferSize = 65;

        /// <summary>The loaded native library's version, e.g. "0.2.0".</summary>
        public static string Version { get { return Utf8.FromNative(Native.pie_version()); } }

        /// <summary>The C name of a status ("PIE_STATUS_TIMEOUT").</summary>
        public static string StatusName(PieStatus status)
        {
            return Utf8.FromNative(Native.pie_status_name((int)status));
        }

        /// <summary>The hash libpie and the server use for programs and blobs (blake3, 64 hex digits).</summary>
        public static string HashBlob(byte[] data)
        {
            if (data == null) throw new ArgumentNullException("data");
            var hash = new byte[HashBufferSize];
            IntPtr err;
            PieException.Check(Native.pie_hash_blob(data, (UIntPtr)data.Length, hash, (UIntPtr)hash.Length, out err), err);
            return HashString(hash);
        }

        internal static string HashString(byte[] nulTerminated)
        {
            int len = Array.IndexOf(nulTerminated, (byte)0);
            return Encoding.ASCII.GetString(nulTerminated, 0, len < 0 ? nulTerminated.Length : len);
        }

        /// <summary>
        /// Raised (on the thread libpie called from) when a delegate given to SetCallback,
        /// SetConnectionCallback or an upload's progress throws: the exception cannot travel
        /// through native code, so it is caught there. Without a handler it is written to
        /// Console.Error.
        /// </summary>
        public static event Action<Exception> CallbackException;

        internal static void ReportCallbackException(Exception e)
        {
            var handler = CallbackException;
            if (handler != null)
            {
                try { handler(e); return; }
                catch (Exception) { /* nowhere left to report it */ }
            }
            Console.Error.WriteLine("libpie callback threw: " + e);
        }

        /// <summary>
        /// How many managed objects are currently pinned (GCHandles) for libpie to call back:
        /// callbacks registered and not yet released, async operations in flight. 0 when
        /// nothing is outstanding; a diagnostic for leaks.
        /// </summary>
        public static int PinnedCallbackTargets { get { return Callbacks.LiveCount; } }
    }
}
