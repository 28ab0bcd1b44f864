// P/Invoke declarations of include/pie.h. Every pointer parameter that is a libpie object is a
// SafeHandle (the marshaller holds a reference across the call, so a concurrent Dispose cannot
// free the object under libpie's feet); strings travel as NUL-terminated UTF-8 byte arrays built
// by Utf8.Encode (never the platform's string marshalling, which is ANSI on some runtimes).
// C `bool` is one byte: every bool crossing the boundary is marshalled as I1.
using System;
using System.Runtime.InteropServices;

namespace Pie.Interop
{
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    internal delegate void ProgressCallback(IntPtr userData, ulong bytesSent, ulong bytesTotal);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    internal delegate void EventCallback(IntPtr userData, PieStatus status, IntPtr pieEvent);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    internal delegate void OpCallback(IntPtr userData, IntPtr op, PieStatus status);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    internal delegate void ConnectionCallback(IntPtr userData, PieStatus status, IntPtr message);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    internal delegate void DropCallback(IntPtr userData);

    internal static class Native
    {
        // Unity on iOS (and other platforms where the plugin is linked statically into the player)
        // resolves P/Invokes against the executable itself.
#if (UNITY_IOS || UNITY_WEBGL) && !UNITY_EDITOR
        internal const string Lib = "__Internal";
#else
        // "pie" -> libpie.so (Linux, Android), libpie.dylib (macOS), pie.dll (Windows).
        internal const string Lib = "pie";
#endif

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr pie_version();

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern void pie_string_free(IntPtr s);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr pie_status_name(int status);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern PieStatus pie_hash_blob(byte[] data, UIntPtr len, byte[] outHash, UIntPtr outLen, out IntPtr err);

        // --- errors -------------------------------------------------------------------------
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern PieStatus pie_error_status(IntPtr err);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr pie_error_message(IntPtr err);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern void pie_error_free(IntPtr err);

        // --- connect options ------------------------------------------------------------------
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr pie_connect_options_new();

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern void pie_connect_options_free(IntPtr options);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern PieStatus pie_connect_options_set_connect_timeout_ms(OptionsHandle options, uint ms, out IntPtr err);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern PieStatus pie_connect_options_set_request_timeout_ms(OptionsHandle options, uint ms, out IntPtr err);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern PieStatus pie_connect_options_set_max_launches_in_flight(OptionsHandle options, uint max, out IntPtr err);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern PieStatus pie_connect_options_set_instance_queue_limit_bytes(OptionsHandle options, ulong limit, out IntPtr err);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern PieStatus pie_connect_options_set_event_batch_window_us(OptionsHandle options, uint windowUs, out IntPtr err);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern PieStatus pie_connect_options_set_tcp_quickack(OptionsHandle options, [MarshalAs(UnmanagedType.I1)] bool enabled, out IntPtr err);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern PieStatus pie_connect_options_add_root_cert_pem(OptionsHandle options, byte[] pem, UIntPtr len, out IntPtr err);

        // --- client ---------------------------------------------------------------------------
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern PieStatus pie_client_connect(byte[] url, OptionsHandle options, out IntPtr client, out IntPtr err);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern PieStatus pie_client_connect_async(byte[] url, OptionsHandle options, out IntPtr op, out IntPtr err);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern PieStatus pie_client_close(ClientHandle client, out IntPtr err);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern void pie_client_free(IntPtr client);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern PieStatus pie_client_set_connection_callback(ClientHandle client, ConnectionCallback callback, IntPtr userData, DropCallback drop, out IntPtr err);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern PieStatus pie_client_event_fd(ClientHandle client, out int fd, out IntPtr err);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern PieStatus pie_client_authenticate(ClientHandle client, byte[] username, KeyHandle key, out IntPtr err);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern PieStatus pie_client_authenticate_async(ClientHandle client, byte[] username, KeyHandle key, out IntPtr op, out IntPtr err);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern PieStatus pie_client_internal_authenticate(ClientHandle client, byte[] token, out IntPtr err);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern PieStatus pie_client_internal_authenticate_async(ClientHandle client, byte[] token, out IntPtr op, out IntPtr err);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern PieStatus pie_client_ping(ClientHandle client, out IntPtr err);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern PieStatus pie_client_ping_async(ClientHandle client, out IntPtr op, out IntPtr err);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern PieStatus pie_client_query(ClientHandle client, byte[] subject, byte[] record, out IntPtr result, out IntPtr err);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern PieStatus pie_client_query_async(ClientHandle client, byte[] subject, byte[] record, out IntPtr op, out IntPtr err);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern PieStatus pie_client_program_exists(ClientHandle client, byte[] hash, [MarshalAs(UnmanagedType.I1)] out bool exists, out IntPtr err);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern PieStatus pie_client_program_exists_async(ClientHandle client, byte[] hash, out IntPtr op, out IntPtr err);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern PieStatus pie_client_upload_program(ClientHandle client, byte[] data, UIntPtr len, ProgressCallback progress, IntPtr userData, byte[] outHash, out IntPtr err);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern PieStatus pie_client_upload_program_async(ClientHandle client, byte[] data, UIntPtr len, ProgressCallback progress, IntPtr userData, out IntPtr op, out IntPtr err);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern PieStatus pie_client_launch_instance(ClientHandle client, byte[] hash, IntPtr[] argv, UIntPtr argc, [MarshalAs(UnmanagedType.I1)] bool detached, out IntPtr instance, out IntPtr err);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern PieStatus pie_client_launch_instance_async(ClientHandle client, byte[] hash, IntPtr[] argv, UIntPtr argc, [MarshalAs(UnmanagedType.I1)] bool detached, out IntPtr op, out IntPtr err);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern PieStatus pie_client_launch_instance_from_registry(ClientHandle client, byte[] name, IntPtr[] argv, UIntPtr argc, [MarshalAs(UnmanagedType.I1)] bool detached, out IntPtr instance, out IntPtr err);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern PieStatus pie_client_launch_instance_from_registry_async(ClientHandle client, byte[] name, IntPtr[] argv, UIntPtr argc, [MarshalAs(UnmanagedType.I1)] bool detached, out IntPtr op, out IntPtr err);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern PieStatus pie_client_attach_instance(ClientHandle client, byte[] id, out IntPtr instance, out IntPtr err);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern PieStatus pie_client_attach_instance_async(ClientHandle client, byte[] id, out IntPtr op, out IntPtr err);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern PieStatus pie_client_list_instances(ClientHandle client, out IntPtr list, out IntPtr err);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern PieStatus pie_client_list_instances_async(ClientHandle client, out IntPtr op, out IntPtr err);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern PieStatus pie_client_terminate_instance(ClientHandle client, byte[] id, out IntPtr err);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern PieStatus pie_client_terminate_instance_async(ClientHandle client, byte[] id, out IntPtr op, out IntPtr err);

        // --- events ---------------------------------------------------------------------------
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern PieEventKind pie_event_kind(IntPtr ev);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr pie_event_text(IntPtr ev, out UIntPtr len);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr pie_event_blob(IntPtr ev, out UIntPtr len);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        [return: MarshalAs(UnmanagedType.I1)]
        internal static extern bool pie_event_is_terminal(IntPtr ev);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern ulong pie_event_dropped(IntPtr ev);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern void pie_event_free(IntPtr ev);

        // --- instance -------------------------------------------------------------------------
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr pie_instance_id(InstanceHandle instance);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        [return: MarshalAs(UnmanagedType.I1)]
        internal static extern bool pie_instance_is_detached(InstanceHandle instance);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern PieStatus pie_instance_send(InstanceHandle instance, byte[] message, out IntPtr err);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern PieStatus pie_instance_send_async(InstanceHandle instance, byte[] message, out IntPtr op, out IntPtr err);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern PieStatus pie_instance_upload_blob(InstanceHandle instance, byte[] data, UIntPtr len, ProgressCallback progress, IntPtr userData, out IntPtr err);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern PieStatus pie_instance_upload_blob_async(InstanceHandle instance, byte[] data, UIntPtr len, ProgressCallback progress, IntPtr userData, out IntPtr op, out IntPtr err);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern PieStatus pie_instance_terminate(InstanceHandle instance, out IntPtr err);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern PieStatus pie_instance_terminate_async(InstanceHandle instance, out IntPtr op, out IntPtr err);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern PieStatus pie_instance_recv(InstanceHandle instance, int timeoutMs, out IntPtr ev, out IntPtr err);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern PieStatus pie_instance_recv_async(InstanceHandle instance, int timeoutMs, out IntPtr op, out IntPtr err);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern PieStatus pie_instance_set_callback(InstanceHandle instance, EventCallback callback, IntPtr userData, DropCallback drop, out IntPtr err);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern void pie_instance_free(IntPtr instance);

        // --- instance list --------------------------------------------------------------------
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern UIntPtr pie_instance_list_len(IntPtr list);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr pie_instance_list_id(IntPtr list, UIntPtr index);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr pie_instance_list_username(IntPtr list, UIntPtr index);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern PieStatus pie_instance_list_argument_count(IntPtr list, UIntPtr index, out UIntPtr count, out IntPtr err);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr pie_instance_list_argument(IntPtr list, UIntPtr index, UIntPtr argIndex);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern PieStatus pie_instance_list_status(IntPtr list, UIntPtr index, out PieInstanceStatus status, out IntPtr err);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern PieStatus pie_instance_list_elapsed_secs(IntPtr list, UIntPtr index, out ulong secs, out IntPtr err);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern PieStatus pie_instance_list_kv_pages_used(IntPtr list, UIntPtr index, out uint pages, out IntPtr err);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern void pie_instance_list_free(IntPtr list);

        // --- keys -----------------------------------------------------------------------------
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern PieStatus pie_key_load_file(byte[] path, byte[] passphrase, out IntPtr key, out IntPtr err);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern PieStatus pie_key_load_memory(byte[] data, UIntPtr len, byte[] passphrase, out IntPtr key, out IntPtr err);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern void pie_key_free(IntPtr key);

        // --- operations -----------------------------------------------------------------------
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern PieStatus pie_op_poll(OpHandle op, out IntPtr err);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern PieStatus pie_op_set_callback(OpHandle op, OpCallback callback, IntPtr userData, DropCallback drop, out IntPtr err);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern PieStatus pie_op_cancel(OpHandle op, out IntPtr err);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern PieStatus pie_op_error(OpHandle op, out IntPtr err);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern PieStatus pie_op_take_client(OpHandle op, out IntPtr client, out IntPtr err);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern PieStatus pie_op_take_instance(OpHandle op, out IntPtr instance, out IntPtr err);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern PieStatus pie_op_take_instance_list(OpHandle op, out IntPtr list, out IntPtr err);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern PieStatus pie_op_take_event(OpHandle op, out IntPtr ev, out IntPtr err);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr pie_op_result_string(OpHandle op);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern PieStatus pie_op_result_bool(OpHandle op, [MarshalAs(UnmanagedType.I1)] out bool result, out IntPtr err);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern void pie_op_free(IntPtr op);
    }
}
