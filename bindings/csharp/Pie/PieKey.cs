using System;
using Pie.Interop;

namespace Pie
{
    /// <summary>
    /// A private key for <see cref="PieClient.Authenticate"/> (Ed25519, RSA, ECDSA P-256/P-384;
    /// OpenSSH, PKCS#8, PKCS#1 or SEC1; optionally encrypted). Dispose wipes the key material.
    /// </summary>
    public sealed class PieKey : IDisposable
    {
        internal readonly KeyHandle Handle;

        PieKey(KeyHandle handle) { Handle = handle; }

        /// <summary>Loads a key file (a leading "~/" is the home directory). <paramref name="passphrase"/>: null if not encrypted.</summary>
        public static PieKey LoadFile(string path, string passphrase = null)
        {
            Check.NotNull(path, "path");
            IntPtr raw, err;
            PieException.Check(Native.pie_key_load_file(Utf8.Encode(path), Utf8.Encode(passphrase), out raw, out err), err);
            return new PieKey(Handles.Wrap<KeyHandle>(raw));
        }

        /// <summary>Loads a key from the contents of a key file (e.g. a TextAsset's bytes in Unity).</summary>
        public static PieKey LoadMemory(byte[] keyFile, string passphrase = null)
        {
            Check.NotNull(keyFile, "keyFile");
            IntPtr raw, err;
            PieException.Check(Native.pie_key_load_memory(keyFile, (UIntPtr)keyFile.Length, Utf8.Encode(passphrase), out raw, out err), err);
            return new PieKey(Handles.Wrap<KeyHandle>(raw));
        }

        public bool IsDisposed { get { return Handle.IsClosed; } }

        public void Dispose() { Handle.Dispose(); }
    }

    /// <summary>Connection settings (PieConnectOptions); copied by Connect, so reusable.</summary>
    public sealed class PieConnectOptions : IDisposable
    {
        internal readonly OptionsHandle Handle;

        public PieConnectOptions()
        {
            IntPtr raw = Native.pie_connect_options_new();
            if (raw == IntPtr.Zero) throw new OutOfMemoryException("pie_connect_options_new");
            Handle = Handles.Wrap<OptionsHandle>(raw);
        }

        public bool IsDisposed { get { return Handle.IsClosed; } }

        public void Dispose() { Handle.Dispose(); }

        // Setters are methods rather than properties: libpie has no getters to read values back.

        public PieConnectOptions SetConnectTimeoutMs(uint ms)
        {
            Check.NotDisposed(Handle, this);
            IntPtr err;
            PieException.Check(Native.pie_connect_options_set_connect_timeout_ms(Handle, ms, out err), err);
            return this;
        }

        public PieConnectOptions SetRequestTimeoutMs(uint ms)
        {
            Check.NotDisposed(Handle, this);
            IntPtr err;
            PieException.Check(Native.pie_connect_options_set_request_timeout_ms(Handle, ms, out err), err);
            return this;
        }

        public PieConnectOptions SetMaxLaunchesInFlight(uint max)
        {
            Check.NotDisposed(Handle, this);
            IntPtr err;
            PieException.Check(Native.pie_connect_options_set_max_launches_in_flight(Handle, max, out err), err);
            return this;
        }

        public PieConnectOptions SetInstanceQueueLimitBytes(ulong limit)
        {
            Check.NotDisposed(Handle, this);
            IntPtr err;
            PieException.Check(Native.pie_connect_options_set_instance_queue_limit_bytes(Handle, limit, out err), err);
            return this;
        }

        /// <summary>The event batching window in microseconds (default 1000, 0 = off, at most
        /// 1000000): during a flood of output the events that arrive within it are delivered
        /// together (pie.h, pie_connect_options_set_event_batch_window_us).</summary>
        public PieConnectOptions SetEventBatchWindowMicroseconds(uint windowUs)
        {
            Check.NotDisposed(Handle, this);
            IntPtr err;
            PieException.Check(Native.pie_connect_options_set_event_batch_window_us(Handle, windowUs, out err), err);
            return this;
        }

        public PieConnectOptions SetTcpQuickack(bool enabled)
        {
            Check.NotDisposed(Handle, this);
            IntPtr err;
            PieException.Check(Native.pie_connect_options_set_tcp_quickack(Handle, enabled, out err), err);
            return this;
        }

        /// <summary>Adds PEM root certificate(s) trusted for wss:// URLs.</summary>
        public PieConnectOptions AddRootCertPem(byte[] pem)
        {
            Check.NotNull(pem, "pem");
            Check.NotDisposed(Handle, this);
            IntPtr err;
            PieException.Check(Native.pie_connect_options_add_root_cert_pem(Handle, pem, (UIntPtr)pem.Length, out err), err);
            return this;
        }
    }
}
