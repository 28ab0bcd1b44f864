//! Strings libpie hands to the host (`char *` results) and how text becomes a C string.

use std::ffi::{c_char, CString};

use super::boundary::value;

/// Converts text to a C string, replacing interior NUL bytes (which C cannot represent) with
/// U+FFFD so nothing is silently cut short.
pub(crate) fn to_cstring(text: &str) -> CString {
    match CString::new(text) {
        Ok(c) => c,
        Err(_) => CString::new(text.replace('\0', "\u{FFFD}")).unwrap_or_default(),
    }
}

/// Frees a string that libpie handed to the caller (pie_client_query's result). NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn pie_string_free(s: *mut c_char) {
    value(|| {
        if !s.is_null() {
            drop(CString::from_raw(s));
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interior_nul_is_replaced_not_truncated() {
        assert_eq!(to_cstring("a\0b").to_str().unwrap(), "a\u{FFFD}b");
    }
}
