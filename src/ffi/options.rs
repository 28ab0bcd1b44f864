//! PieConnectOptions: the settings pie_client_connect copies.

use std::time::Duration;

use crate::client::ClientConfig;

use super::boundary::{arg_bytes, arg_out, call, value};
use super::error::{Fail, FfiResult, PieError};
use super::status::PieStatus;

/// Connection settings (opaque). Created with pie_connect_options_new, owned by the caller,
/// freed with pie_connect_options_free. pie_client_connect copies it, so it may be freed or
/// reused right after. Not synchronised: do not modify one options object from two threads at
/// once.
pub struct PieConnectOptions {
    config: ClientConfig,
}

impl PieConnectOptions {
    /// The configuration behind an optional handle (NULL: the defaults).
    pub(crate) unsafe fn config(options: *const PieConnectOptions) -> ClientConfig {
        options
            .as_ref()
            .map_or_else(ClientConfig::default, |o| o.config.clone())
    }
}

/// Creates connection options holding the defaults: connect timeout 10 s, request timeout 30 s,
/// 1 launch in flight, 64 MiB instance queue limit, TCP quickack on, webpki trusted roots.
/// Owned by the caller: free with pie_connect_options_free. Returns NULL only if out of memory.
#[no_mangle]
pub extern "C" fn pie_connect_options_new() -> *mut PieConnectOptions {
    value(|| {
        Ok(Box::into_raw(Box::new(PieConnectOptions {
            config: ClientConfig::default(),
        })))
    })
}

/// Frees connection options. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn pie_connect_options_free(options: *mut PieConnectOptions) {
    value(|| {
        if !options.is_null() {
            drop(Box::from_raw(options));
        }
        Ok(())
    })
}

/// Shared body of the setters.
unsafe fn with_options(
    options: *mut PieConnectOptions,
    out_err: *mut *mut PieError,
    set: impl FnOnce(&mut ClientConfig) -> FfiResult,
) -> PieStatus {
    call(out_err, || set(&mut arg_out(options, "options")?.config))
}

fn positive_ms(ms: u32, name: &str) -> FfiResult<Duration> {
    if ms == 0 {
        return Err(Fail::new(
            PieStatus::InvalidArgument,
            format!("`{name}` must be greater than 0"),
        ));
    }
    Ok(Duration::from_millis(u64::from(ms)))
}

/// Sets the time allowed to establish the connection (TCP, TLS and WebSocket handshake), in
/// milliseconds (`limit_ms` > 0). Errors: PIE_STATUS_NULL_POINTER, PIE_STATUS_INVALID_ARGUMENT (0).
#[no_mangle]
pub unsafe extern "C" fn pie_connect_options_set_connect_timeout_ms(
    options: *mut PieConnectOptions,
    limit_ms: u32,
    out_err: *mut *mut PieError,
) -> PieStatus {
    with_options(options, out_err, |o| {
        o.connect_timeout = positive_ms(limit_ms, "limit_ms")?;
        Ok(())
    })
}

/// Sets the time allowed for each request's reply, in milliseconds (`limit_ms` > 0). Blocking calls are
/// bounded by it (uploads and registry launches: the wait for their final reply).
/// Errors: PIE_STATUS_NULL_POINTER, PIE_STATUS_INVALID_ARGUMENT (0).
#[no_mangle]
pub unsafe extern "C" fn pie_connect_options_set_request_timeout_ms(
    options: *mut PieConnectOptions,
    limit_ms: u32,
    out_err: *mut *mut PieError,
) -> PieStatus {
    with_options(options, out_err, |o| {
        o.request_timeout = positive_ms(limit_ms, "limit_ms")?;
        Ok(())
    })
}

/// Sets how many launches may wait for their reply at once (default 1, which avoids a known
/// server deadlock; 0 = unlimited). Further launches queue inside libpie.
/// Errors: PIE_STATUS_NULL_POINTER.
#[no_mangle]
pub unsafe extern "C" fn pie_connect_options_set_max_launches_in_flight(
    options: *mut PieConnectOptions,
    max: u32,
    out_err: *mut *mut PieError,
) -> PieStatus {
    with_options(options, out_err, |o| {
        o.max_launches_in_flight = max as usize;
        Ok(())
    })
}

/// Sets the per-instance bound on queued event payload bytes (default 64 MiB; 0 = unlimited).
/// When it is reached, non-terminal events are discarded and a PIE_EVENT_KIND_OVERFLOW event
/// tells how many. Errors: PIE_STATUS_NULL_POINTER.
#[no_mangle]
pub unsafe extern "C" fn pie_connect_options_set_instance_queue_limit_bytes(
    options: *mut PieConnectOptions,
    limit_bytes: u64,
    out_err: *mut *mut PieError,
) -> PieStatus {
    with_options(options, out_err, |o| {
        o.instance_queue_limit_bytes = usize::try_from(limit_bytes).unwrap_or(usize::MAX);
        Ok(())
    })
}

/// Turns TCP quickack (Linux; ignored elsewhere) on or off (default on: replies to small
/// requests are not held back by delayed ACKs). Errors: PIE_STATUS_NULL_POINTER.
#[no_mangle]
pub unsafe extern "C" fn pie_connect_options_set_tcp_quickack(
    options: *mut PieConnectOptions,
    enabled: bool,
    out_err: *mut *mut PieError,
) -> PieStatus {
    with_options(options, out_err, |o| {
        o.tcp_quickack = enabled;
        Ok(())
    })
}

/// Adds PEM certificate(s) trusted as roots for wss:// URLs, in addition to the built-in webpki
/// roots. `pem` (`pem_len` bytes) is copied. The PEM is parsed when connecting: an invalid one
/// makes pie_client_connect fail with PIE_STATUS_INVALID_ARGUMENT or
/// PIE_STATUS_CONNECTION_FAILED. Errors: PIE_STATUS_NULL_POINTER, PIE_STATUS_INVALID_ARGUMENT
/// (empty).
#[no_mangle]
pub unsafe extern "C" fn pie_connect_options_add_root_cert_pem(
    options: *mut PieConnectOptions,
    pem: *const u8,
    pem_len: usize,
    out_err: *mut *mut PieError,
) -> PieStatus {
    with_options(options, out_err, |o| {
        let pem = arg_bytes(pem, pem_len, "pem")?;
        if pem.is_empty() {
            return Err(Fail::new(PieStatus::InvalidArgument, "`pem` is empty"));
        }
        o.extra_root_certs_pem.push(pem.to_vec());
        Ok(())
    })
}
