//! Client frames (as the simulator decodes them): decoding never panics, and whatever decodes
//! re-encodes to a frame that decodes to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pie::wire::{decode_client, encode_client};

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = decode_client(data) {
        let again = decode_client(&encode_client(&msg)).expect("re-encoded message decodes");
        assert_eq!(again, msg);
    }
});
