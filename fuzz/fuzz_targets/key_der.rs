//! The binary inside key files: the fuzzer mutates DER / OpenSSH key blobs directly and the
//! target wraps them in PEM (mutating base64 text would mostly produce invalid base64). Byte 0
//! picks the PEM label, byte 1 the passphrase.
#![no_main]

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use pie::PrivateKey;

const LABELS: [&str; 5] = [
    "OPENSSH PRIVATE KEY",
    "PRIVATE KEY",
    "ENCRYPTED PRIVATE KEY",
    "RSA PRIVATE KEY",
    "EC PRIVATE KEY",
];

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let label = LABELS[data[0] as usize % LABELS.len()];
    let pass = match data[1] % 3 {
        0 => None,
        1 => Some("pie-fuzz"),
        _ => Some(""),
    };
    let b64 = base64::engine::general_purpose::STANDARD.encode(&data[2..]);
    let mut pem = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap());
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    if let Ok(key) = PrivateKey::from_bytes(pem.as_bytes(), pass) {
        let sig = key.sign(&[7u8; 48]).expect("a loaded key signs");
        assert!(!sig.is_empty());
    }
});
