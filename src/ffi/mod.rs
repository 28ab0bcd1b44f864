//! The C ABI of libpie: a thin layer over the Rust core. Its doc comments become
//! `include/pie.h` (cbindgen; see cbindgen.toml for the header's overview section).
//!
//! Layout: `status` (status codes, error objects, the one boundary helper every `extern "C"`
//! body runs in), `runtime` (the hidden, reference-counted tokio runtime), `dispatch` (the
//! per-client callback thread and the wake fd), `op` (PieOp: the single machinery behind every
//! network call, blocking or not), `client`, `instance`, `key`.
//!
//! Safety contract of every `unsafe extern "C"` function: pointer arguments are NULL (checked)
//! or valid for the access the header documents; handles come from libpie and are not yet freed.
//! It is written once, in the header overview and per function, not in `# Safety` sections.
#![allow(clippy::missing_safety_doc)]

mod client;
mod dispatch;
mod instance;
mod key;
mod log;
mod op;
mod runtime;
mod status;

use std::ffi::c_char;

// Every exported function and type is reachable as `pie::ffi::<name>`, so Rust tests and
// benchmarks call the real exports instead of re-declaring the ABI.
pub use client::*;
pub use instance::*;
pub use key::*;
pub use log::*;
pub use op::*;
pub use status::*;

use status::{arg_bytes, arg_out, ffi_call, ffi_value, Fail};

/// Major version of the header (semantic versioning: incompatible ABI changes).
pub const PIE_VERSION_MAJOR: u32 = 0;
/// Minor version of the header (compatible additions).
pub const PIE_VERSION_MINOR: u32 = 1;
/// Patch version of the header.
pub const PIE_VERSION_PATCH: u32 = 0;
/// PIE_VERSION_MAJOR * 10000 + PIE_VERSION_MINOR * 100 + PIE_VERSION_PATCH, for `#if` checks.
pub const PIE_VERSION_NUMBER: u32 = 100;

/// Callback types, exported to the header as typedefs for the host's convenience. Functions
/// spell the pointer types out in their signatures (cbindgen turns `Option<alias>` into an
/// opaque struct), so these aliases are for documentation and host code only.
///
/// Upload progress: `(user_data, bytes_sent, bytes_total)`, on a libpie runtime thread.
pub type PieProgressCallback =
    unsafe extern "C" fn(user_data: *mut std::ffi::c_void, bytes_sent: u64, bytes_total: u64);
/// Instance events: `(user_data, status, event)`; see pie_instance_set_callback.
pub type PieEventCallback = unsafe extern "C" fn(
    user_data: *mut std::ffi::c_void,
    status: PieStatus,
    event: *const PieEvent,
);
/// Operation completion: `(user_data, op, status)`; see pie_op_set_callback.
pub type PieOpCallback =
    unsafe extern "C" fn(user_data: *mut std::ffi::c_void, op: *mut PieOp, status: PieStatus);
/// End of the connection: `(user_data, status, message)`; see pie_client_set_connection_callback.
pub type PieConnectionCallback = unsafe extern "C" fn(
    user_data: *mut std::ffi::c_void,
    status: PieStatus,
    message: *const c_char,
);
/// Releases a callback's `user_data`; runs once, after the last call of its callback.
pub type PieDropCallback = unsafe extern "C" fn(user_data: *mut std::ffi::c_void);

/// The library version, e.g. "0.1.0": a static NUL-terminated string, never NULL, never freed.
/// It is the version of the shared library actually loaded, which may differ from the header's
/// PIE_VERSION_* macros the host was compiled with.
#[no_mangle]
pub extern "C" fn pie_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// Frees a string that libpie handed to the caller (pie_client_query's result). NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn pie_string_free(s: *mut c_char) {
    ffi_value((), || {
        if !s.is_null() {
            drop(std::ffi::CString::from_raw(s));
        }
        Ok(())
    })
}

/// Computes the hash libpie and the server use for programs and blobs (blake3, 64 lowercase hex
/// digits) of `len` bytes at `data` (NULL allowed when `len` is 0), and writes it with a NUL into
/// `out` (`out_len` bytes, at least PIE_HASH_BUFFER_SIZE). Any thread; no runtime needed.
/// Errors: PIE_STATUS_NULL_POINTER, PIE_STATUS_BUFFER_TOO_SMALL (nothing is written).
#[no_mangle]
pub unsafe extern "C" fn pie_hash_blob(
    data: *const u8,
    len: usize,
    out: *mut c_char,
    out_len: usize,
) -> PieStatus {
    ffi_call(std::ptr::null_mut(), || {
        arg_out(out, "out")?;
        let data = arg_bytes(data, len, "data")?;
        if out_len < PIE_HASH_BUFFER_SIZE {
            return Err(Fail::new(
                PieStatus::BufferTooSmall,
                format!("`out_len` is {out_len}; a hash needs {PIE_HASH_BUFFER_SIZE} bytes"),
            ));
        }
        let hash = crate::hash_blob(data);
        std::ptr::copy_nonoverlapping(hash.as_ptr(), out.cast::<u8>(), hash.len());
        *out.add(hash.len()) = 0;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_constants_match_cargo() {
        let parse = |s: &str| s.parse::<u32>().unwrap();
        assert_eq!(PIE_VERSION_MAJOR, parse(env!("CARGO_PKG_VERSION_MAJOR")));
        assert_eq!(PIE_VERSION_MINOR, parse(env!("CARGO_PKG_VERSION_MINOR")));
        assert_eq!(PIE_VERSION_PATCH, parse(env!("CARGO_PKG_VERSION_PATCH")));
        assert_eq!(
            PIE_VERSION_NUMBER,
            PIE_VERSION_MAJOR * 10000 + PIE_VERSION_MINOR * 100 + PIE_VERSION_PATCH
        );
        let v = unsafe { std::ffi::CStr::from_ptr(pie_version()) };
        assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    }
}
