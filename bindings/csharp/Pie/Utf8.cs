// UTF-8 in both directions, done by hand so that every runtime (Mono, IL2CPP, .NET) sends and
// reads the same bytes: managed strings become NUL-terminated UTF-8 arrays; native strings are
// read up to their NUL (or up to a length libpie gives, since event text may contain NULs).
using System;
using System.Runtime.InteropServices;
using System.Text;

namespace Pie.Interop
{
    internal static class Utf8
    {
        static readonly UTF8Encoding Strict = new UTF8Encoding(false, true);

        /// <summary>NUL-terminated UTF-8 of <paramref name="s"/>; null stays null.</summary>
        internal static byte[] Encode(string s)
        {
            if (s == null) return null;
            int n = Strict.GetByteCount(s);   // throws on unpaired surrogates, before any native call
            var bytes = new byte[n + 1];
            Strict.GetBytes(s, 0, s.Length, bytes, 0);
            return bytes;
        }

        /// <summary>A native NUL-terminated UTF-8 string (borrowed) as a managed string; NULL -> null.</summary>
        internal static string FromNative(IntPtr p)
        {
            if (p == IntPtr.Zero) return null;
            int len = 0;
            while (Marshal.ReadByte(p, len) != 0) len++;
            return FromNative(p, len);
        }

        internal static string FromNative(IntPtr p, int len)
        {
            if (p == IntPtr.Zero) return null;
            if (len == 0) return string.Empty;
            var bytes = new byte[len];
            Marshal.Copy(p, bytes, 0, len);
            return Encoding.UTF8.GetString(bytes);
        }

        /// <summary>
        /// A native argv array for <paramref name="args"/>: each string in unmanaged memory. The
        /// caller frees it with <see cref="FreeArgv"/> in a finally block.
        /// </summary>
        internal static IntPtr[] AllocArgv(string[] args)
        {
            if (args == null || args.Length == 0) return null;
            var argv = new IntPtr[args.Length];
            try
            {
                for (int i = 0; i < args.Length; i++)
                {
                    byte[] b = Encode(args[i]);
                    argv[i] = Marshal.AllocHGlobal(b.Length);
                    Marshal.Copy(b, 0, argv[i], b.Length);
                }
            }
            catch
            {
                FreeArgv(argv);
                throw;
            }
            return argv;
        }

        internal static void FreeArgv(IntPtr[] argv)
        {
            if (argv == null) return;
            for (int i = 0; i < argv.Length; i++)
            {
                if (argv[i] != IntPtr.Zero) Marshal.FreeHGlobal(argv[i]);
                argv[i] = IntPtr.Zero;
            }
        }
    }
}
