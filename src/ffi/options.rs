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

/// Sets the event batching window in microseconds (default 1000; 0 turns batching off). Only
/// during a flood of output (four frames in a row each less than 200 µs after the previous
/// one; replies to requests made one after another are not a flood) and while no request
/// waits for its reply, the connection's reader waits up to this
/// long between socket reads and queues what arrived meanwhile at once: one wake-up of libpie
/// and of the host per batch instead of per event, which cuts the client's CPU time per event
/// several-fold (docs/PIE05-SERVER.md). Each event of such a flood may arrive up to this much
/// later; a first event and a token stream at model speed are never held back, and a request
/// sent during a nap ends it, so replies are not delayed. Errors: PIE_STATUS_NULL_POINTER,
/// PIE_STATUS_INVALID_ARGUMENT (more than 1,000,000 µs).
#[no_mangle]
pub unsafe extern "C" fn pie_connect_options_set_event_batch_window_us(
    options: *mut PieConnectOptions,
    window_us: u32,
    out_err: *mut *mut PieError,
) -> PieStatus {
    with_options(options, out_err, |o| {
        if window_us > 1_000_000 {
            return Err(Fail::new(
                PieStatus::InvalidArgument,
                "`window_us` must be at most 1000000 (one second)",
            ));
        }
        o.event_batch_window = Duration::from_micros(u64::from(window_us));
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

/// The protocol of a connection. Stable numbers.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PieProtocol {
    /// As a connect option: detect the server's protocol (the default). From
    /// pie_client_protocol: not detected yet (on a January-2026 server it is known after
    /// pie_client_authenticate; a Pie 0.5 server answers the probe sent at connect at once).
    Auto = 0,
    /// The January-2026 Pie server.
    Jan2026 = 1,
    /// Pie 0.5 (pie-server 0.5.x, what `pip install pie-server` gives).
    V05 = 2,
}

impl PieProtocol {
    pub(crate) fn from_core(p: Option<crate::client::Protocol>) -> PieProtocol {
        match p {
            None => PieProtocol::Auto,
            Some(crate::client::Protocol::Jan2026) => PieProtocol::Jan2026,
            Some(crate::client::Protocol::V05) => PieProtocol::V05,
        }
    }
}

impl super::boundary::ErrorValue for PieProtocol {
    fn error_value(_: PieStatus) -> Self {
        PieProtocol::Auto
    }
}

impl super::boundary::PanicValue for PieProtocol {
    fn panic_value() -> Self {
        PieProtocol::Auto
    }
}

/// Speak `protocol` instead of detecting it (PIE_PROTOCOL_AUTO, the default, detects: the
/// connection uses the path /v1/ws when the URL has none, sends the identity header, and sends
/// a probe that only a Pie 0.5 server answers; the January-2026 server ignores all three).
/// PIE_PROTOCOL_JAN2026 uses the URL exactly as given and sends no header and no probe.
/// Errors: PIE_STATUS_NULL_POINTER, PIE_STATUS_INVALID_ARGUMENT (not a PieProtocol value).
#[no_mangle]
pub unsafe extern "C" fn pie_connect_options_set_protocol(
    options: *mut PieConnectOptions,
    protocol: i32,
    out_err: *mut *mut PieError,
) -> PieStatus {
    with_options(options, out_err, |o| {
        o.protocol = match protocol {
            p if p == PieProtocol::Auto as i32 => None,
            p if p == PieProtocol::Jan2026 as i32 => Some(crate::client::Protocol::Jan2026),
            p if p == PieProtocol::V05 as i32 => Some(crate::client::Protocol::V05),
            other => {
                return Err(Fail::new(
                    PieStatus::InvalidArgument,
                    format!("protocol: {other} is not a PieProtocol value"),
                ))
            }
        };
        Ok(())
    })
}

/// Sets the identity sent as the `x-pie-identity` upgrade header (copied; default "libpie").
/// A Pie 0.5 server requires it and takes it as the caller's whole identity (it has no users or
/// keys), e.g. "tenant/alice". Errors: PIE_STATUS_NULL_POINTER, PIE_STATUS_INVALID_UTF8,
/// PIE_STATUS_INVALID_ARGUMENT (empty, or characters an HTTP header cannot carry).
#[no_mangle]
pub unsafe extern "C" fn pie_connect_options_set_identity(
    options: *mut PieConnectOptions,
    identity: *const std::ffi::c_char,
    out_err: *mut *mut PieError,
) -> PieStatus {
    with_options(options, out_err, |o| {
        let id = super::boundary::arg_str(identity, "identity")?;
        if id.is_empty() || id.bytes().any(|b| b < 0x20 || b == 0x7f) {
            return Err(Fail::new(
                PieStatus::InvalidArgument,
                "identity: must be non-empty text without control characters",
            ));
        }
        o.identity = id.to_owned();
        Ok(())
    })
}
