//! PieKey: a loaded SSH private key for pie_client_authenticate.

use std::ffi::c_char;
use std::sync::Arc;

use crate::keys::PrivateKey;

use super::boundary::{arg_bytes, arg_opt_str, arg_out, arg_str, call, value};
use super::error::{FfiResult, PieError};
use super::status::PieStatus;

/// A private key (opaque): Ed25519, RSA or ECDSA P-256/P-384, from OpenSSH, PKCS#8, PKCS#1 or
/// SEC1 files, optionally encrypted. Owned by the caller, freed with pie_key_free (the key
/// material is wiped). Immutable: usable from any thread, by any number of clients.
pub struct PieKey {
    key: Arc<PrivateKey>,
}

impl PieKey {
    /// The key behind an optional handle, shared so an operation never depends on the handle.
    pub(crate) unsafe fn shared(key: *const PieKey) -> Option<Arc<PrivateKey>> {
        key.as_ref().map(|k| Arc::clone(&k.key))
    }
}

fn give(out: &mut *mut PieKey, r: crate::Result<PrivateKey>) -> FfiResult {
    *out = Box::into_raw(Box::new(PieKey { key: Arc::new(r?) }));
    Ok(())
}

/// Loads a private key from the file at `path` (UTF-8; a leading `~/` means the home
/// directory), decrypting it with `passphrase` (NULL if not encrypted). The key goes to
/// `*out_key` (pie_key_free). Errors: PIE_STATUS_NULL_POINTER, PIE_STATUS_INVALID_UTF8,
/// PIE_STATUS_IO (cannot read the file), PIE_STATUS_KEY (unsupported, malformed, wrong or
/// missing passphrase).
#[no_mangle]
pub unsafe extern "C" fn pie_key_load_file(
    path: *const c_char,
    passphrase: *const c_char,
    out_key: *mut *mut PieKey,
    out_err: *mut *mut PieError,
) -> PieStatus {
    call(out_err, || {
        let out = arg_out(out_key, "out_key")?;
        let path = arg_str(path, "path")?;
        let pass = arg_opt_str(passphrase, "passphrase")?;
        give(out, PrivateKey::from_file(path, pass))
    })
}

/// Loads a private key from `len` bytes of key file contents at `data` (copied), as
/// pie_key_load_file. Errors: PIE_STATUS_NULL_POINTER, PIE_STATUS_INVALID_UTF8 (passphrase),
/// PIE_STATUS_KEY.
#[no_mangle]
pub unsafe extern "C" fn pie_key_load_memory(
    data: *const u8,
    len: usize,
    passphrase: *const c_char,
    out_key: *mut *mut PieKey,
    out_err: *mut *mut PieError,
) -> PieStatus {
    call(out_err, || {
        let out = arg_out(out_key, "out_key")?;
        let data = arg_bytes(data, len, "data")?;
        let pass = arg_opt_str(passphrase, "passphrase")?;
        give(out, PrivateKey::from_bytes(data, pass))
    })
}

/// Frees a key (operations already started with it keep their own reference). NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn pie_key_free(key: *mut PieKey) {
    value(|| {
        if !key.is_null() {
            drop(Box::from_raw(key));
        }
        Ok(())
    })
}
