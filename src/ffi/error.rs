//! PieError: the readable error a failed call hands back through its `out_err` parameter, and
//! `Fail`, the same thing on the Rust side before it crosses the boundary.

use std::any::Any;
use std::ffi::{c_char, CString};

use super::boundary::{arg_ref, value};
use super::status::PieStatus;
use super::string::to_cstring;
use crate::Error;

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

    pub(crate) fn null(name: &str) -> Fail {
        Fail::new(PieStatus::NullPointer, format!("`{name}` is NULL"))
    }

    pub(crate) fn from_panic(payload: Box<dyn Any + Send>) -> Fail {
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

/// Hands `fail` out through `out_err` if the caller asked for it.
pub(crate) unsafe fn write_error(out_err: *mut *mut PieError, fail: Fail) {
    if !out_err.is_null() {
        *out_err = Box::into_raw(Box::new(PieError::new(fail)));
    }
}

/// The status code this error carries (PIE_STATUS_NULL_POINTER if `err` is NULL).
#[no_mangle]
pub unsafe extern "C" fn pie_error_status(err: *const PieError) -> PieStatus {
    value(|| Ok(arg_ref(err, "err")?.status))
}

/// The error's human-readable message, NUL-terminated UTF-8. Borrowed: valid until
/// pie_error_free(err). Returns NULL if `err` is NULL.
#[no_mangle]
pub unsafe extern "C" fn pie_error_message(err: *const PieError) -> *const c_char {
    value(|| Ok(arg_ref(err, "err")?.message.as_ptr()))
}

/// Frees an error returned through an `out_err` parameter. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn pie_error_free(err: *mut PieError) {
    value(|| {
        if !err.is_null() {
            drop(Box::from_raw(err));
        }
        Ok(())
    })
}
