//! The one boundary helper every `extern "C"` body runs in, and the argument checks it uses.
//!
//! [`boundary`] catches panics and turns a failed body into the function's return value. Two
//! separate traits say what that value is (as rustls-ffi does), so a panic and a bad argument
//! can never be confused: [`ErrorValue`] for a failed check (a NULL argument gives
//! PIE_STATUS_NULL_POINTER, a status-returning function returns the failure's own status) and
//! [`PanicValue`] for a panic (always PIE_STATUS_PANIC for a status).

use std::ffi::{c_char, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use super::error::{write_error, Fail, FfiResult, PieError};
use super::status::PieStatus;

/// What an extern returns when its body fails (a NULL or invalid argument, a failed call).
pub(crate) trait ErrorValue {
    fn error_value(status: PieStatus) -> Self;
}

/// What an extern returns when its body panics.
pub(crate) trait PanicValue {
    fn panic_value() -> Self;
}

impl ErrorValue for PieStatus {
    fn error_value(status: PieStatus) -> Self {
        status
    }
}

impl PanicValue for PieStatus {
    fn panic_value() -> Self {
        PieStatus::Panic
    }
}

/// Types whose value for both failure paths is a documented "nothing": NULL, false, 0, ().
macro_rules! nothing_on_failure {
    ($($t:ty => $v:expr),* $(,)?) => {$(
        impl ErrorValue for $t {
            fn error_value(_: PieStatus) -> Self { $v }
        }
        impl PanicValue for $t {
            fn panic_value() -> Self { $v }
        }
    )*};
}

nothing_on_failure!(() => (), bool => false, usize => 0, u64 => 0);

impl<T> ErrorValue for *const T {
    fn error_value(_: PieStatus) -> Self {
        std::ptr::null()
    }
}

impl<T> PanicValue for *const T {
    fn panic_value() -> Self {
        std::ptr::null()
    }
}

impl<T> ErrorValue for *mut T {
    fn error_value(_: PieStatus) -> Self {
        std::ptr::null_mut()
    }
}

impl<T> PanicValue for *mut T {
    fn panic_value() -> Self {
        std::ptr::null_mut()
    }
}

/// THE boundary: runs `body` with unwinding caught (the one place where Rust panics stop before
/// the C boundary); on failure hands the reason out through the optional `out_err` and returns
/// the failure value of `T`.
pub(crate) fn boundary<T: ErrorValue + PanicValue>(
    out_err: *mut *mut PieError,
    body: impl FnOnce() -> FfiResult<T>,
) -> T {
    let (fail, value) = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(v)) => return v,
        Ok(Err(fail)) => {
            let v = T::error_value(fail.status);
            (fail, v)
        }
        Err(payload) => (Fail::from_panic(payload), T::panic_value()),
    };
    // SAFETY: the caller promised `out_err` is NULL or points to writable storage.
    unsafe { write_error(out_err, fail) };
    value
}

/// [`boundary`] for the usual shape: a status-returning function with an `out_err`.
pub(crate) fn call(out_err: *mut *mut PieError, body: impl FnOnce() -> FfiResult) -> PieStatus {
    boundary(out_err, || body().map(|()| PieStatus::Ok))
}

/// [`boundary`] for accessors that return a value and have no `out_err`.
pub(crate) fn value<T: ErrorValue + PanicValue>(body: impl FnOnce() -> FfiResult<T>) -> T {
    boundary(std::ptr::null_mut(), body)
}

// ---- argument checks: every pointer is checked here, with the parameter's name ----

/// Borrows `*p`, failing with NULL_POINTER naming `name`.
pub(crate) unsafe fn arg_ref<'a, T>(p: *const T, name: &str) -> FfiResult<&'a T> {
    p.as_ref().ok_or_else(|| Fail::null(name))
}

/// Checks an out-parameter is non-NULL before any work is done; it is written only on success.
pub(crate) unsafe fn arg_out<'a, T>(p: *mut T, name: &str) -> FfiResult<&'a mut T> {
    p.as_mut().ok_or_else(|| Fail::null(name))
}

/// A required callback pointer.
pub(crate) fn arg_fn<F>(f: Option<F>, name: &str) -> FfiResult<F> {
    f.ok_or_else(|| Fail::null(name))
}

/// Borrows a NUL-terminated UTF-8 string.
pub(crate) unsafe fn arg_str<'a>(p: *const c_char, name: &str) -> FfiResult<&'a str> {
    if p.is_null() {
        return Err(Fail::null(name));
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

/// The one rule for every `timeout_ms` parameter (stated in the header overview): -1 waits
/// forever (`None`), 0 does not wait, a positive value waits at most that many milliseconds, any
/// other negative value is PIE_STATUS_INVALID_ARGUMENT naming the parameter.
pub(crate) fn arg_timeout(timeout_ms: i32, name: &str) -> FfiResult<Option<Duration>> {
    match timeout_ms {
        -1 => Ok(None),
        ms if ms >= 0 => Ok(Some(Duration::from_millis(ms as u64))),
        ms => Err(Fail::new(
            PieStatus::InvalidArgument,
            format!("`{name}` is {ms}; use -1 (wait forever), 0 (do not wait) or a positive value"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::{pie_error_free, pie_error_message, pie_error_status};

    #[test]
    fn panics_become_a_status_and_an_error_object() {
        let mut err: *mut PieError = std::ptr::null_mut();
        let status = call(&mut err, || panic!("boom"));
        assert_eq!(status, PieStatus::Panic);
        assert!(!err.is_null());
        unsafe {
            assert_eq!(pie_error_status(err), PieStatus::Panic);
            let msg = CStr::from_ptr(pie_error_message(err)).to_str().unwrap();
            assert!(msg.contains("boom"), "{msg}");
            pie_error_free(err);
        }
        assert_eq!(call(std::ptr::null_mut(), || panic!("x")), PieStatus::Panic);
        // A status-returning accessor: a panic is PANIC, a NULL argument NULL_POINTER.
        let panicked: PieStatus = value(|| panic!("y"));
        assert_eq!(panicked, PieStatus::Panic);
        let null: PieStatus =
            value(|| unsafe { arg_ref(std::ptr::null::<u8>(), "p") }.map(|_| PieStatus::Ok));
        assert_eq!(null, PieStatus::NullPointer);
        assert_eq!(
            unsafe { pie_error_status(std::ptr::null()) },
            PieStatus::NullPointer
        );
        let nothing: *const u8 = value(|| panic!("z"));
        assert!(nothing.is_null());
    }

    #[test]
    fn success_leaves_out_err_untouched() {
        let sentinel = 0x10 as *mut PieError;
        let mut err = sentinel;
        assert_eq!(call(&mut err, || Ok(())), PieStatus::Ok);
        assert_eq!(err, sentinel);
    }

    #[test]
    fn one_timeout_rule() {
        assert_eq!(arg_timeout(-1, "t").unwrap(), None);
        assert_eq!(arg_timeout(0, "t").unwrap(), Some(Duration::ZERO));
        assert_eq!(arg_timeout(5, "t").unwrap(), Some(Duration::from_millis(5)));
        let e = arg_timeout(-2, "timeout_ms").unwrap_err();
        assert_eq!(e.status, PieStatus::InvalidArgument);
        assert!(e.message.contains("timeout_ms"));
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
