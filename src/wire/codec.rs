//! Encoding and decoding of whole frames.
//!
//! Encoding is rmp-serde's "named" form, which yields exactly the canonical bytes of §2.1–2.2
//! (smallest integer encodings, str for strings, bin for chunk data, fixmap headers).
//! Decoding goes through the same serde definitions and is therefore as lenient as the server
//! (§2.4): keys in any order, unknown keys ignored, bin accepted for strings, any integer
//! encoding that fits, the compact array form, trailing bytes ignored. It never panics: every
//! malformed input is a `DecodeError`.

use super::messages::{ClientMessage, ServerMessage};
use std::fmt;

/// A frame that is not a message of the protocol (not MessagePack, unknown `type`, missing or
/// mistyped fields, ...). The text is for logs and error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "undecodable frame: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}

fn encode<T: serde::Serialize>(msg: &T) -> Vec<u8> {
    // Serializing these plain data types into a Vec cannot fail: no maps with non-string keys,
    // no sequences of unknown length, and writing to memory is infallible.
    rmp_serde::to_vec_named(msg).expect("protocol messages always serialize")
}

fn decode<'a, T: serde::Deserialize<'a>>(frame: &'a [u8]) -> Result<T, DecodeError> {
    if frame.is_empty() {
        return Err(DecodeError("empty frame".into()));
    }
    // Only a map (named form) or an array (compact form) can be a message. Checking the first
    // byte up front also keeps scalars from reaching serde's buffering.
    let first = frame[0];
    let is_map = matches!(first, 0x80..=0x8f | 0xde | 0xdf);
    let is_array = matches!(first, 0x90..=0x9f | 0xdc | 0xdd);
    if !is_map && !is_array {
        return Err(DecodeError(format!(
            "expected a MessagePack map or array, first byte 0x{first:02x}"
        )));
    }
    rmp_serde::from_slice(frame).map_err(|e| DecodeError(e.to_string()))
}

/// Encode a client → server message in canonical form.
pub fn encode_client(msg: &ClientMessage) -> Vec<u8> {
    encode(msg)
}

/// Encode a server → client message in canonical form.
pub fn encode_server(msg: &ServerMessage) -> Vec<u8> {
    encode(msg)
}

/// Decode a client → server frame (what a server receives).
pub fn decode_client(frame: &[u8]) -> Result<ClientMessage, DecodeError> {
    decode(frame)
}

/// Decode a server → client frame (what a client receives).
pub fn decode_server(frame: &[u8]) -> Result<ServerMessage, DecodeError> {
    decode(frame)
}
