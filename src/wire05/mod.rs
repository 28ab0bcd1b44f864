//! Wire protocol of Pie 0.5 (pie-server 0.5.2): the messages of PROTOCOL-0.5.md §5–§7.
//!
//! Every frame is one MessagePack map with string keys and a `type` string. Client frames are
//! encoded by hand into the server's canonical form (smallest integer, str, bin for bytes, keys
//! in the order of §5), borrowing their payload so a 256 KiB chunk is copied once, into the
//! frame. Server frames are decoded by a small direct parser: keys in any order, unknown keys
//! skipped, any unsigned integer width, nesting and lengths bounded by the frame; it never
//! panics and never allocates more than the frame holds. Text frames (`turn_done`, decode
//! `error`s) are JSON objects (§7).
//!
//! This module is independent of the January-2026 codec in `crate::wire`.

mod decode;
mod encode;
mod validate;

pub use decode::{
    decode_client, decode_process_event, decode_server, decode_text, DecodeError, ProcessEventRef,
    TextFrame,
};
pub use encode::{encode_client, encode_server};
pub use validate::{check_inferlet, check_json, check_version, normalize_uuid};

/// Size of one `add_program` / `transfer_file` / `file` chunk: 256 KiB, as pie-client sends (§1).
pub const CHUNK_SIZE: usize = 262_144;

/// The WebSocket path of the 0.5 protocol (§1): any other path is answered with HTTP 404.
pub const WS_PATH: &str = "/v1/ws";

/// The upgrade header carrying the caller's identity (§1, §4): missing or empty → HTTP 401.
pub const IDENTITY_HEADER: &str = "x-pie-identity";

/// The `value` of an `error` event caused by `terminate_process` (§5.6).
pub const SIGNAL_VALUE: &str = "Signal";

/// The `result` of `auth_identify` on a 0.5 server (§4).
pub const TEXT_ALREADY_AUTHENTICATED: &str = "Already authenticated";

/// The only `query` subject of 0.5 (§5.1).
pub const SUBJECT_MODEL_STATUS: &str = "model_status";

/// A client → server message (§5). Payloads are borrowed from the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMessage<'a> {
    AuthIdentify {
        corr_id: u32,
        username: &'a str,
    },
    AuthProve {
        corr_id: u32,
        signature: &'a str,
    },
    Ping {
        corr_id: u32,
    },
    Query {
        corr_id: u32,
        subject: &'a str,
        record: &'a str,
    },
    CheckProgram {
        corr_id: u32,
        name: &'a str,
        version: &'a str,
    },
    AddProgram {
        corr_id: u32,
        program_hash: &'a str,
        manifest: &'a str,
        force_overwrite: bool,
        chunk_index: u32,
        total_chunks: u32,
        chunk_data: &'a [u8],
    },
    LaunchProcess {
        corr_id: u32,
        inferlet: &'a str,
        input: &'a str,
        capture_outputs: bool,
    },
    AttachProcess {
        corr_id: u32,
        process_id: &'a str,
    },
    TerminateProcess {
        corr_id: u32,
        process_id: &'a str,
    },
    ListProcesses {
        corr_id: u32,
    },
    /// Fire-and-forget: never answered (§5.8).
    SignalProcess {
        process_id: &'a str,
        message: &'a str,
    },
    /// Fire-and-forget: never answered, failures only logged by the server (§5.9).
    TransferFile {
        process_id: &'a str,
        file_hash: &'a str,
        chunk_index: u32,
        total_chunks: u32,
        chunk_data: &'a [u8],
    },
}

/// A server → client binary message (§6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerMessage {
    Response {
        corr_id: u32,
        ok: bool,
        result: String,
    },
    ProcessEvent {
        process_id: String,
        event: String,
        value: String,
    },
    File {
        process_id: String,
        file_hash: String,
        chunk_index: u64,
        total_chunks: u64,
        chunk_data: Vec<u8>,
        /// A suggestion from the inferlet (`send-file-as`, ...); `None` for `send_file(bytes)`.
        name: Option<String>,
    },
}

/// blake3 of `data` as 64 lowercase hex characters (`program_hash`, `file_hash`, §2).
pub fn hash(data: &[u8]) -> String {
    blake3::hash(data).to_hex().to_string()
}

/// Number of chunks for `len` bytes: at least one (an empty payload is one empty chunk, §5.3).
pub fn chunk_count(len: usize) -> u32 {
    if len == 0 {
        1
    } else {
        // More than 2^32 chunks would be 1 PiB: not a payload anyone can hold in memory.
        u32::try_from(len.div_ceil(CHUNK_SIZE)).unwrap_or(u32::MAX)
    }
}

/// The chunks of a payload in order: `(chunk_index, bytes)`, at least one.
pub fn chunks(data: &[u8]) -> impl Iterator<Item = (u32, &[u8])> {
    let total = chunk_count(data.len());
    (0..total).map(move |i| {
        let start = (i as usize) * CHUNK_SIZE;
        let end = (start + CHUNK_SIZE).min(data.len());
        (i, &data[start..end])
    })
}

#[cfg(test)]
mod tests;
