//! Status codes, error objects and the one boundary helper every `extern "C"` body runs in.

use std::any::Any;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::{Error, ErrorKind};

/// Result of every fallible libpie call. The numbers are stable and are never reused or
/// renumbered; new codes are only ever appended.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PieStatus {
    /// Success.
    Ok = 0,
    /// An argument is invalid (a malformed URL, a hash that is not 64 hex digits, an index out of
    /// range, a result of the wrong type requested from a PieOp, ...).
    InvalidArgument = 1,
    /// The connection could not be established (DNS, TCP, TLS or WebSocket handshake).
    ConnectionFailed = 2,
    /// The connection ended (the server closed it or the network failed).
    ConnectionClosed = 3,
    /// The client was closed by the host (pie_client_close or pie_client_free).
    ClientClosed = 4,
    /// No reply within the configured timeout, or nothing arrived within a recv timeout.
    Timeout = 5,
    /// The server refused the request; the error message is the server's text, verbatim.
    Server = 6,
    /// Authentication was refused or could not be carried out.
    Auth = 7,
    /// A private key could not be loaded or used.
    Key = 8,
    /// The server sent something the protocol does not allow.
    Protocol = 9,
    /// The instance was launched detached: attach it (pie_client_attach_instance) first.
    Detached = 10,
    /// The instance's event stream has ended: its terminal event was already delivered.
    StreamEnded = 11,
    /// Local input/output failure (reading a key file, creating the event fd, ...).
    Io = 12,
    /// An internal error of libpie (a bug if it ever shows up).
    Internal = 13,
    /// A required pointer argument was NULL; the error message names the parameter.
    NullPointer = 14,
    /// A string argument was not valid UTF-8; the error message names the parameter.
    InvalidUtf8 = 15,
    /// libpie panicked while serving the call (a bug); the state of the objects involved is
    /// still consistent and they can be freed.
    Panic = 16,
    /// The operation has not finished yet (pie_op_poll, pie_op_wait, pie_op_take_*).
    Pending = 17,
    /// The object is in a mode that does not allow the call (e.g. pie_instance_recv on an
    /// instance whose events go to a callback; a blocking call made from inside a progress
    /// callback).
    Busy = 18,
    /// The caller's output buffer is too small.
    BufferTooSmall = 19,
    /// The operation was cancelled (pie_op_cancel, or pie_op_free of a pending operation).
    Cancelled = 20,
}

impl PieStatus {
    const ALL: [PieStatus; 21] = [
        PieStatus::Ok,
        PieStatus::InvalidArgument,
        PieStatus::ConnectionFailed,
        PieStatus::ConnectionClosed,
        PieStatus::ClientClosed,
        PieStatus::Timeout,
        PieStatus::Server,
        PieStatus::Auth,
        PieStatus::Key,
        PieStatus::Protocol,
        PieStatus::Detached,
        PieStatus::StreamEnded,
        PieStatus::Io,
        PieStatus::Internal,
        PieStatus::NullPointer,
        PieStatus::InvalidUtf8,
        PieStatus::Panic,
        PieStatus::Pending,
        PieStatus::Busy,
        PieStatus::BufferTooSmall,
        PieStatus::Cancelled,
    ];

    fn name(self) -> &'static CStr {
        match self {
            PieStatus::Ok => c"PIE_STATUS_OK",
            PieStatus::InvalidArgument => c"PIE_STATUS_INVALID_ARGUMENT",
            PieStatus::ConnectionFailed => c"PIE_STATUS_CONNECTION_FAILED",
            PieStatus::ConnectionClosed => c"PIE_STATUS_CONNECTION_CLOSED",
            PieStatus::ClientClosed => c"PIE_STATUS_CLIENT_CLOSED",
            PieStatus::Timeout => c"PIE_STATUS_TIMEOUT",
            PieStatus::Server => c"PIE_STATUS_SERVER",
            PieStatus::Auth => c"PIE_STATUS_AUTH",
            PieStatus::Key => c"PIE_STATUS_KEY",
            PieStatus::Protocol => c"PIE_STATUS_PROTOCOL",
            PieStatus::Detached => c"PIE_STATUS_DETACHED",
            PieStatus::StreamEnded => c"PIE_STATUS_STREAM_ENDED",
            PieStatus::Io => c"PIE_STATUS_IO",
            PieStatus::Internal => c"PIE_STATUS_INTERNAL",
            PieStatus::NullPointer => c"PIE_STATUS_NULL_POINTER",
            PieStatus::InvalidUtf8 => c"PIE_STATUS_INVALID_UTF8",
            PieStatus::Panic => c"PIE_STATUS_PANIC",
            PieStatus::Pending => c"PIE_STATUS_PENDING",
            PieStatus::Busy => c"PIE_STATUS_BUSY",
            PieStatus::BufferTooSmall => c"PIE_STATUS_BUFFER_TOO_SMALL",
            PieStatus::Cancelled => c"PIE_STATUS_CANCELLED",
        }
    }
}

impl From<ErrorKind> for PieStatus {
    fn from(kind: ErrorKind) -> Self {
        match kind {
            ErrorKind::InvalidArgument => PieStatus::InvalidArgument,
            ErrorKind::ConnectionFailed => PieStatus::ConnectionFailed,
            ErrorKind::ConnectionClosed => PieStatus::ConnectionClosed,
            ErrorKind::ClientClosed => PieStatus::ClientClosed,
            ErrorKind::Timeout => PieStatus::Timeout,
            ErrorKind::Server => PieStatus::Server,
            ErrorKind::Auth => PieStatus::Auth,
            ErrorKind::Key => PieStatus::Key,
            ErrorKind::Protocol => PieStatus::Protocol,
            ErrorKind::Detached => PieStatus::Detached,
            ErrorKind::StreamEnded => PieStatus::StreamEnded,
            ErrorKind::Io => PieStatus::Io,
            ErrorKind::Internal => PieStatus::Internal,
            // Until the C API has PIE_STATUS_UNSUPPORTED (issue 12, phase 2).
            ErrorKind::Unsupported => PieStatus::Server,
        }
    }
}

/// A failure on its way to the host: a status and a readable reason.
#[derive(Debug, Clone)]
pub(crate) struct Fail {
    pub(crate) status: PieStatus,
    pub(crate) message: String,
}

pub(crate) type FfiResult<T = ()> = Result<T, Fail>;

impl Fail {
    pub(crate) fn new(status: PieStatus, message: impl Into<String>) -> Fail {
        Fail {
            status,
            message: message.into(),
        }
    }

    fn from_panic(payload: Box<dyn Any + Send>) -> Fail {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic payload".to_string());
        Fail::new(PieStatus::Panic, format!("libpie panicked: {what}"))
    }
}

impl From<Error> for Fail {
    fn from(e: Error) -> Fail {
        Fail::new(e.kind().into(), e.message())
    }
}

/// Runs `f` with unwinding caught: the one place where Rust panics stop before the C boundary.
pub(crate) fn guard<T>(f: impl FnOnce() -> FfiResult<T>) -> FfiResult<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => Err(Fail::from_panic(payload)),
    }
}

/// Body wrapper of every status-returning `extern "C"` function: catches panics, converts the
/// result into a status and, on failure, hands the reason out through the optional `out_err`.
pub(crate) fn ffi_call(out_err: *mut *mut PieError, f: impl FnOnce() -> FfiResult) -> PieStatus {
    match guard(f) {
        Ok(()) => PieStatus::Ok,
        Err(fail) => {
            let status = fail.status;
            // SAFETY: the caller promised `out_err` is NULL or points to writable storage.
            unsafe { write_error(out_err, fail) };
            status
        }
    }
}

/// Body wrapper of the `extern "C"` accessors that return a value instead of a status: a panic
/// or invalid argument yields `fallback` (documented per function).
pub(crate) fn ffi_value<T>(fallback: T, f: impl FnOnce() -> FfiResult<T>) -> T {
    guard(f).unwrap_or(fallback)
}

/// Hands `fail` out through `out_err` if the caller asked for it.
pub(crate) unsafe fn write_error(out_err: *mut *mut PieError, fail: Fail) {
    if !out_err.is_null() {
        *out_err = Box::into_raw(Box::new(PieError::new(fail)));
    }
}

/// Converts text to a C string, replacing interior NUL bytes (which C cannot represent) with
/// U+FFFD so nothing is silently cut short.
pub(crate) fn to_cstring(text: &str) -> CString {
    match CString::new(text) {
        Ok(c) => c,
        Err(_) => CString::new(text.replace('\0', "\u{FFFD}")).unwrap_or_default(),
    }
}

// ---- argument helpers: every pointer is checked here, with the parameter's name ----

/// Borrows `*p`, failing with NULL_POINTER naming `name`.
pub(crate) unsafe fn arg_ref<'a, T>(p: *const T, name: &str) -> FfiResult<&'a T> {
    p.as_ref()
        .ok_or_else(|| Fail::new(PieStatus::NullPointer, format!("`{name}` is NULL")))
}

/// Checks an out-parameter is non-NULL before any work is done; it is written only on success.
pub(crate) unsafe fn arg_out<'a, T>(p: *mut T, name: &str) -> FfiResult<&'a mut T> {
    p.as_mut()
        .ok_or_else(|| Fail::new(PieStatus::NullPointer, format!("`{name}` is NULL")))
}

/// Borrows a NUL-terminated UTF-8 string.
pub(crate) unsafe fn arg_str<'a>(p: *const c_char, name: &str) -> FfiResult<&'a str> {
    if p.is_null() {
        return Err(Fail::new(
            PieStatus::NullPointer,
            format!("`{name}` is NULL"),
        ));
    }
    CStr::from_ptr(p).to_str().map_err(|e| {
        Fail::new(
            PieStatus::InvalidUtf8,
            format!("`{name}` is not valid UTF-8 ({e})"),
        )
    })
}

/// Like [`arg_str`], but NULL means "absent".
pub(crate) unsafe fn arg_opt_str<'a>(p: *const c_char, name: &str) -> FfiResult<Option<&'a str>> {
    if p.is_null() {
        Ok(None)
    } else {
        arg_str(p, name).map(Some)
    }
}

/// Borrows `len` bytes; NULL is allowed only when `len` is 0.
pub(crate) unsafe fn arg_bytes<'a>(p: *const u8, len: usize, name: &str) -> FfiResult<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(Fail::new(
            PieStatus::NullPointer,
            format!("`{name}` is NULL but its length is {len}"),
        ));
    }
    Ok(std::slice::from_raw_parts(p, len))
}

/// Copies an argument vector of `argc` UTF-8 strings (`argv` may be NULL when `argc` is 0).
pub(crate) unsafe fn arg_argv(argv: *const *const c_char, argc: usize) -> FfiResult<Vec<String>> {
    if argc == 0 {
        return Ok(Vec::new());
    }
    if argv.is_null() {
        return Err(Fail::new(
            PieStatus::NullPointer,
            format!("`argv` is NULL but `argc` is {argc}"),
        ));
    }
    let items = std::slice::from_raw_parts(argv, argc);
    items
        .iter()
        .enumerate()
        .map(|(i, &p)| arg_str(p, &format!("argv[{i}]")).map(str::to_owned))
        .collect()
}

/// A readable error: a status code and a message. Created by libpie, owned by the caller,
/// freed with pie_error_free. Immutable, so usable from any thread.
pub struct PieError {
    status: PieStatus,
    message: CString,
}

impl PieError {
    pub(crate) fn new(fail: Fail) -> PieError {
        PieError {
            status: fail.status,
            message: to_cstring(&fail.message),
        }
    }
}

/// The status code this error carries (PIE_STATUS_INVALID_ARGUMENT if `err` is NULL).
#[no_mangle]
pub unsafe extern "C" fn pie_error_status(err: *const PieError) -> PieStatus {
    ffi_value(PieStatus::InvalidArgument, || {
        Ok(arg_ref(err, "err")?.status)
    })
}

/// The error's human-readable message, NUL-terminated UTF-8. Borrowed: valid until
/// pie_error_free(err). Returns NULL if `err` is NULL.
#[no_mangle]
pub unsafe extern "C" fn pie_error_message(err: *const PieError) -> *const c_char {
    ffi_value(std::ptr::null(), || {
        Ok(arg_ref(err, "err")?.message.as_ptr())
    })
}

/// Frees an error returned through an `out_err` parameter. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn pie_error_free(err: *mut PieError) {
    ffi_value((), || {
        if !err.is_null() {
            drop(Box::from_raw(err));
        }
        Ok(())
    })
}

/// The name of a status code as a static string ("PIE_STATUS_TIMEOUT"); never NULL. Values
/// that are not a PieStatus give "PIE_STATUS_UNKNOWN". Takes an int so that any value is safe.
#[no_mangle]
pub extern "C" fn pie_status_name(status: i32) -> *const c_char {
    PieStatus::ALL
        .iter()
        .find(|s| **s as i32 == status)
        .map_or(c"PIE_STATUS_UNKNOWN", |s| s.name())
        .as_ptr()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_numbers_are_stable() {
        // Appending is allowed; changing any of these numbers breaks every compiled host.
        let expected = [
            (PieStatus::Ok, 0),
            (PieStatus::InvalidArgument, 1),
            (PieStatus::ConnectionFailed, 2),
            (PieStatus::ConnectionClosed, 3),
            (PieStatus::ClientClosed, 4),
            (PieStatus::Timeout, 5),
            (PieStatus::Server, 6),
            (PieStatus::Auth, 7),
            (PieStatus::Key, 8),
            (PieStatus::Protocol, 9),
            (PieStatus::Detached, 10),
            (PieStatus::StreamEnded, 11),
            (PieStatus::Io, 12),
            (PieStatus::Internal, 13),
            (PieStatus::NullPointer, 14),
            (PieStatus::InvalidUtf8, 15),
            (PieStatus::Panic, 16),
            (PieStatus::Pending, 17),
            (PieStatus::Busy, 18),
            (PieStatus::BufferTooSmall, 19),
            (PieStatus::Cancelled, 20),
        ];
        assert_eq!(expected.len(), PieStatus::ALL.len());
        for (status, number) in expected {
            assert_eq!(status as i32, number);
            let name = unsafe { CStr::from_ptr(pie_status_name(number)) };
            assert_eq!(name, status.name());
        }
    }

    #[test]
    fn every_error_kind_has_its_own_status() {
        let kinds = [
            ErrorKind::InvalidArgument,
            ErrorKind::ConnectionFailed,
            ErrorKind::ConnectionClosed,
            ErrorKind::ClientClosed,
            ErrorKind::Timeout,
            ErrorKind::Server,
            ErrorKind::Auth,
            ErrorKind::Key,
            ErrorKind::Protocol,
            ErrorKind::Detached,
            ErrorKind::StreamEnded,
            ErrorKind::Io,
            ErrorKind::Internal,
        ];
        let statuses: std::collections::HashSet<PieStatus> =
            kinds.iter().map(|k| PieStatus::from(*k)).collect();
        assert_eq!(statuses.len(), kinds.len());
        assert!(!statuses.contains(&PieStatus::Ok));
    }

    #[test]
    fn panics_become_a_status_and_an_error_object() {
        let mut err: *mut PieError = std::ptr::null_mut();
        let status = ffi_call(&mut err, || panic!("boom"));
        assert_eq!(status, PieStatus::Panic);
        assert!(!err.is_null());
        unsafe {
            assert_eq!(pie_error_status(err), PieStatus::Panic);
            let msg = CStr::from_ptr(pie_error_message(err)).to_str().unwrap();
            assert!(msg.contains("boom"), "{msg}");
            pie_error_free(err);
        }
        // A NULL out_err is allowed; the fallback value is returned for value accessors.
        assert_eq!(
            ffi_call(std::ptr::null_mut(), || panic!("x")),
            PieStatus::Panic
        );
        assert_eq!(ffi_value(7, || panic!("y")), 7);
    }

    #[test]
    fn success_leaves_out_err_untouched() {
        let sentinel = 0x10 as *mut PieError;
        let mut err = sentinel;
        assert_eq!(ffi_call(&mut err, || Ok(())), PieStatus::Ok);
        assert_eq!(err, sentinel);
    }

    #[test]
    fn interior_nul_is_replaced_not_truncated() {
        assert_eq!(to_cstring("a\0b").to_str().unwrap(), "a\u{FFFD}b");
    }

    #[test]
    fn argument_checks_name_the_parameter() {
        unsafe {
            let e = arg_str(std::ptr::null(), "url").unwrap_err();
            assert_eq!(e.status, PieStatus::NullPointer);
            assert!(e.message.contains("url"));
            let bad = [0x61u8, 0xff, 0];
            let e = arg_str(bad.as_ptr().cast(), "subject").unwrap_err();
            assert_eq!(e.status, PieStatus::InvalidUtf8);
            assert!(e.message.contains("subject"));
            assert!(arg_bytes(std::ptr::null(), 0, "data").unwrap().is_empty());
            assert_eq!(
                arg_bytes(std::ptr::null(), 1, "data").unwrap_err().status,
                PieStatus::NullPointer
            );
            let e = arg_argv(std::ptr::null(), 2).unwrap_err();
            assert!(e.message.contains("argv"));
        }
    }
}
