//! The simulator's own codec for the January-2026 protocol, written from PROTOCOL.md alone.
//!
//! It shares no code with the client's `src/wire`, so an end-to-end test between libpie and
//! the simulator checks two independent readings of the specification against each other (and
//! `sim/tests/vectors.rs` checks this one against the §12 vectors). That is also why it is a
//! small hand-written MessagePack reader/writer rather than serde + rmp-serde, as the client
//! uses: the same derive machinery on both sides would share the same blind spots (key order,
//! integer widths, bin versus str), while the few shapes §2 allows are quick to write out and
//! encode without building a message value, which keeps the streaming fast path fast.

mod decode;
pub mod encode;
mod messages;
pub mod msgpack;

pub use decode::{decode_client, decode_server};
pub use encode::{encode_client, encode_server};
pub use messages::{ClientMessage, InstanceInfo, InstanceStatus, ServerMessage, StreamingOutput};

/// Upload chunk size in both directions, and the largest program chunk the server accepts:
/// 262144 bytes (§6.3, §7.7).
pub const CHUNK_SIZE: usize = 256 * 1024;

/// The first eight bytes of a WebAssembly component: `\0asm`, version 13, layer 1. The
/// simulator's stand-in for "compiles as a component" (§6.3).
pub const COMPONENT_PREAMBLE: [u8; 8] = *b"\0asm\x0d\x00\x01\x00";

/// The identification `result` that means "authentication is disabled" (§5.1).
pub const TEXT_AUTH_DISABLED: &str = "Authenticated (Engine disabled authentication)";

/// `instance_event.event` (§7.5).
pub mod event_code {
    pub const MESSAGE: u32 = 0;
    pub const COMPLETED: u32 = 1;
    pub const ABORTED: u32 = 2;
    pub const EXCEPTION: u32 = 3;
    /// Also what an out-of-memory kill is reported as (Q4).
    pub const SERVER_ERROR: u32 = 4;
    /// Defined, never sent by the January-2026 server.
    pub const OUT_OF_RESOURCES: u32 = 5;
}

/// Program and blob hash (§9): blake3, 64 lowercase hex characters.
pub fn hash_blob(data: &[u8]) -> String {
    blake3::hash(data).to_hex().to_string()
}

/// `total_chunks` for an upload of `len` bytes: `ceil(len / 262144)`, but an empty payload is
/// still one (empty) chunk (§6.3).
pub fn chunk_count(len: usize) -> u64 {
    len.div_ceil(CHUNK_SIZE).max(1) as u64
}

/// `(chunk_index, bytes)` of an upload, as a client sends them (§6.3).
pub fn chunks(data: &[u8]) -> impl Iterator<Item = (u64, &[u8])> {
    (0..chunk_count(data.len())).map(move |i| {
        let start = (i as usize * CHUNK_SIZE).min(data.len());
        let end = (start + CHUNK_SIZE).min(data.len());
        (i, &data[start..end])
    })
}

/// Whether `bytes` start like a WebAssembly component (§6.3).
pub fn is_component(bytes: &[u8]) -> bool {
    bytes.starts_with(&COMPONENT_PREAMBLE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunking_follows_section_6_3() {
        assert_eq!(chunk_count(0), 1);
        assert_eq!(chunk_count(1), 1);
        assert_eq!(chunk_count(CHUNK_SIZE), 1);
        assert_eq!(chunk_count(CHUNK_SIZE + 1), 2);
        let empty: Vec<_> = chunks(&[]).collect();
        assert_eq!(empty, vec![(0, &[][..])]);
        let data = vec![0x5a; CHUNK_SIZE + 1];
        let parts: Vec<_> = chunks(&data).map(|(i, c)| (i, c.len())).collect();
        assert_eq!(parts, vec![(0, CHUNK_SIZE), (1, 1)]);
    }
}
