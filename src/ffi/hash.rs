//! Program and blob hashes, as libpie and the server compute them.

use std::ffi::c_char;

use super::boundary::{arg_bytes, arg_out, call};
use super::error::{Fail, PieError};
use super::status::PieStatus;

/// Bytes needed for a program/blob hash: 64 lowercase hex digits and the terminating NUL.
pub const PIE_HASH_BUFFER_SIZE: usize = 65;

/// Writes a hash into the caller's buffer of at least PIE_HASH_BUFFER_SIZE bytes.
pub(crate) unsafe fn write_hash(out: *mut c_char, hash: &[u8]) {
    let n = hash.len().min(PIE_HASH_BUFFER_SIZE - 1);
    std::ptr::copy_nonoverlapping(hash.as_ptr(), out.cast::<u8>(), n);
    *out.add(n) = 0;
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
    out_err: *mut *mut PieError,
) -> PieStatus {
    call(out_err, || {
        arg_out(out, "out")?;
        let data = arg_bytes(data, len, "data")?;
        if out_len < PIE_HASH_BUFFER_SIZE {
            return Err(Fail::new(
                PieStatus::BufferTooSmall,
                format!("`out_len` is {out_len}; a hash needs {PIE_HASH_BUFFER_SIZE} bytes"),
            ));
        }
        write_hash(out, crate::hash_blob(data).as_bytes());
        Ok(())
    })
}
