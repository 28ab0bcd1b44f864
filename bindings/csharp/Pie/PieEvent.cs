using System;
using System.Runtime.InteropServices;
using Pie.Interop;

namespace Pie
{
    /// <summary>
    /// One event of an instance, copied out of libpie (the native event is freed at once, so a
    /// PieEvent needs no disposal and may be kept or passed between threads freely).
    /// </summary>
    public sealed class PieEvent
    {
        public PieEventKind Kind { get; private set; }

        /// <summary>The text (every kind but Blob); null for a blob.</summary>
        public string Text { get; private set; }

        /// <summary>The bytes of a Blob event; null for other kinds.</summary>
        public byte[] Blob { get; private set; }

        /// <summary>True for the last event of an instance (Completed, Aborted, Exception, ...).</summary>
        public bool IsTerminal { get; private set; }

        /// <summary>For Overflow: how many events were discarded here; 0 otherwise.</summary>
        public ulong Dropped { get; private set; }

        public override string ToString()
        {
            return Kind + (Blob != null ? " (" + Blob.Length + " bytes)" : ": " + Text);
        }

        /// <summary>Copies a native event (borrowed: not freed here).</summary>
        internal static PieEvent Copy(IntPtr ev)
        {
            var e = new PieEvent();
            e.Kind = Native.pie_event_kind(ev);
            UIntPtr len;
            if (e.Kind == PieEventKind.Blob)
            {
                IntPtr p = Native.pie_event_blob(ev, out len);
                e.Blob = new byte[checked((int)len.ToUInt64())];
                if (e.Blob.Length > 0) Marshal.Copy(p, e.Blob, 0, e.Blob.Length);
            }
            else
            {
                IntPtr p = Native.pie_event_text(ev, out len);
                e.Text = Utf8.FromNative(p, checked((int)len.ToUInt64())) ?? string.Empty;
            }
            e.IsTerminal = Native.pie_event_is_terminal(ev);
            e.Dropped = Native.pie_event_dropped(ev);
            return e;
        }

        /// <summary>Copies a native event the caller owns, then frees it.</summary>
        internal static PieEvent CopyAndFree(IntPtr ev)
        {
            try { return Copy(ev); }
            finally { Native.pie_event_free(ev); }
        }
    }
}
