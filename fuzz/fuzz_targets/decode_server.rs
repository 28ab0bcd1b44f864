//! Frames a (hostile) server can send: decoding never panics, and whatever decodes re-encodes
//! to a frame that decodes to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pie::wire::{decode_server, encode_server};

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = decode_server(data) {
        let again = decode_server(&encode_server(&msg)).expect("re-encoded message decodes");
        assert_eq!(again, msg);
    }
});
