//! Wire protocol layer: the Pie WebSocket/MessagePack messages of PROTOCOL.md (January 2026).
//!
//! The simulator (`sim/`) has a codec of its own, so that the two sides check each other.

mod codec;
mod fast;
mod messages;

pub use codec::{decode_client, decode_server, encode_client, encode_server, DecodeError};
pub use fast::{decode_event_frame, decode_response_frame, EventBody, EventFrame, ResponseFrame};
pub use messages::{ClientMessage, InstanceInfo, InstanceStatus, ServerMessage, StreamingOutput};

/// Size of one upload chunk (programs and blobs, both directions): 256 KiB (§6.3).
pub const CHUNK_SIZE: usize = 262_144;

/// The WebAssembly component preamble: magic `\0asm`, version 0x0d, layer 1 (§6.3).
pub const COMPONENT_PREAMBLE: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];

/// `result` of an identification reply when the server has authentication disabled (§5.1).
pub const TEXT_AUTH_DISABLED: &str = "Authenticated (Engine disabled authentication)";

/// Instance event codes carried by `instance_event.event` (§7.5).
pub mod event_code {
    pub const MESSAGE: u32 = 0;
    pub const COMPLETED: u32 = 1;
    pub const ABORTED: u32 = 2;
    pub const EXCEPTION: u32 = 3;
    pub const SERVER_ERROR: u32 = 4;
    pub const OUT_OF_RESOURCES: u32 = 5;
}

/// blake3 of `data` as 64 lowercase hex characters: the program/blob hash of §9.
pub fn hash_blob(data: &[u8]) -> String {
    blake3::hash(data).to_hex().to_string()
}

/// Number of chunks an upload of `len` bytes is split into. An empty payload is still sent as
/// one empty chunk (§6.3).
pub fn chunk_count(len: usize) -> u64 {
    if len == 0 {
        1
    } else {
        len.div_ceil(CHUNK_SIZE) as u64
    }
}

/// The chunks of an upload in order: `(chunk_index, chunk bytes)`. Always yields at least one
/// (possibly empty) chunk.
pub fn chunks(data: &[u8]) -> impl Iterator<Item = (u64, &[u8])> {
    let total = chunk_count(data.len());
    (0..total).map(move |i| {
        let start = (i as usize) * CHUNK_SIZE;
        let end = (start + CHUNK_SIZE).min(data.len());
        (i, &data[start..end])
    })
}

/// True when `bytes` start with the WebAssembly component preamble. The real server drops the
/// connection without a reply when an upload does not compile as a component (Q6), so the
/// client checks this before uploading.
pub fn is_component(bytes: &[u8]) -> bool {
    bytes.starts_with(&COMPONENT_PREAMBLE)
}
