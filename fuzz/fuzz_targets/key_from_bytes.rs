//! Key files as given (text, PEM headers, OpenSSH public-key lines, binary junk), without and
//! with a passphrase: loading returns a key or an error, never panics. The first byte chooses
//! the passphrase so one corpus serves both cases.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pie::PrivateKey;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let pass = match sel % 3 {
        0 => None,
        1 => Some("pie-fuzz"),
        _ => Some(""),
    };
    if let Ok(key) = PrivateKey::from_bytes(rest, pass) {
        // A key that loads must be usable.
        let sig = key.sign(&[7u8; 48]).expect("a loaded key signs");
        assert!(!sig.is_empty());
        let _ = key.public_key_openssh();
    }
});
