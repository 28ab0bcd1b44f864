//! Fault switches. All are off by default (the simulator then behaves like a correct server);
//! each can be flipped at run time through [`Faults`] (shared, lock-free).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Live fault switches, shared by every connection of a simulator.
#[derive(Debug, Default)]
pub struct Faults {
    /// Q1: after the reply to the final chunk of a blob upload (or to a count/order error on an
    /// upload in progress) the connection stops answering for good and its instances stay
    /// attached to it, as on the real server.
    pub q1_blob_hang: AtomicBool,
    /// Q6: uploading bytes that are not a component closes the session without a reply (real
    /// server); off: a failure reply `Failed to register program: Runtime error: Failed to compile`.
    pub q6_close_on_invalid_program: AtomicBool,
    /// Every connection keeps its socket open but stops answering anything (requests are read
    /// and dropped, instance output is dropped). Models a server whose workers are all pinned.
    pub silence: AtomicBool,
    /// When non-zero: a connection is dropped abruptly (no Close frame) once it has written
    /// this many frames in total since it was accepted.
    pub drop_after_frames: AtomicU64,
    /// Every terminal `instance_event` is sent with event code 9 (unknown to clients) instead
    /// of its real code, keeping its text.
    pub unknown_event_code: AtomicBool,
    /// `launch_instance` / `launch_instance_from_registry` never answer and wedge the
    /// connection (models the server deadlock of §16): nothing more is sent on it.
    pub wedge_launches: AtomicBool,
}

impl Faults {
    pub fn set_q1_blob_hang(&self, on: bool) {
        self.q1_blob_hang.store(on, Ordering::SeqCst);
    }
    pub fn set_q6_close_on_invalid_program(&self, on: bool) {
        self.q6_close_on_invalid_program.store(on, Ordering::SeqCst);
    }
    pub fn set_silence(&self, on: bool) {
        self.silence.store(on, Ordering::SeqCst);
    }
    /// `0` switches the fault off.
    pub fn set_drop_after_frames(&self, frames: u64) {
        self.drop_after_frames.store(frames, Ordering::SeqCst);
    }
    pub fn set_unknown_event_code(&self, on: bool) {
        self.unknown_event_code.store(on, Ordering::SeqCst);
    }
    pub fn set_wedge_launches(&self, on: bool) {
        self.wedge_launches.store(on, Ordering::SeqCst);
    }

    pub(crate) fn on(flag: &AtomicBool) -> bool {
        flag.load(Ordering::Relaxed)
    }

    /// Turn a fault on by its command-line name. Returns false for an unknown name.
    pub fn enable_by_name(&self, name: &str) -> bool {
        match name {
            "q1" | "blob-hang" => self.set_q1_blob_hang(true),
            "q6" | "close-on-invalid-program" => self.set_q6_close_on_invalid_program(true),
            "silence" => self.set_silence(true),
            "unknown-event-code" => self.set_unknown_event_code(true),
            "wedge-launches" => self.set_wedge_launches(true),
            other => match other.strip_prefix("drop-after-frames=") {
                Some(n) => match n.parse() {
                    Ok(n) => self.set_drop_after_frames(n),
                    Err(_) => return false,
                },
                None => return false,
            },
        }
        true
    }
}

/// Garbage a test can make the simulator send to every open, authenticated connection (see
/// `Simulator::inject`). A correct client must ignore all of it and keep working.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Garbage {
    /// A binary frame with these bytes (e.g. not MessagePack).
    Binary(Vec<u8>),
    /// A text frame.
    Text(String),
    /// A well-formed map with an unknown `type`.
    UnknownType,
    /// A `response` whose corr_id is not pending (the given value).
    ReplyForUnknownCorrId(u32),
    /// An `instance_event` Message and a `streaming_output` for a random, unknown instance.
    EventForUnknownInstance,
    /// A complete one-chunk `download_blob` for this instance whose hash does not match.
    BlobWithWrongHash(String),
    /// A `download_blob` chunk for this instance with `chunk_index >= total_chunks`.
    BlobChunkOutOfRange(String),
}
