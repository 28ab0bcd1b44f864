//! The reader task's 0.5 half: decodes 0.5 frames, completes requests, routes process events
//! and reassembles files; also the place where detection is decided (see the module above).

use super::Protocol;
use crate::client::connection::Shared;
use crate::client::events::InstanceEvent;
use crate::client::pending::Reply;
use crate::error::{Error, ErrorKind};
use crate::wire05::{self, ServerMessage, TextFrame};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// A file being reassembled (§6.3). Memory grows with the chunks received only.
struct Assembly {
    total: u64,
    next: u64,
    data: Vec<u8>,
}

pub(crate) struct Reader05 {
    shared: Arc<Shared>,
    /// Keyed by (process id, file hash).
    files: HashMap<(String, String), Assembly>,
}

/// The event for a `process_event` (§6.2, §11).
pub(crate) fn event_from(event: &str, value: String) -> InstanceEvent {
    match event {
        "stdout" => InstanceEvent::Stdout(value),
        "stderr" => InstanceEvent::Stderr(value),
        "message" => InstanceEvent::Message(value),
        "return" => InstanceEvent::Completed(value),
        "error" if value == wire05::SIGNAL_VALUE => InstanceEvent::Aborted(value),
        "error" => InstanceEvent::Exception(value),
        // Not sent by 0.5.2. Terminal, like an unknown January-2026 code; the text keeps the
        // event's name.
        other => InstanceEvent::Unknown {
            code: u32::MAX,
            message: format!("{other}: {value}"),
        },
    }
}

/// The lowercase hyphenated form [`wire05::normalize_uuid`] produces (and 0.5.2 sends).
fn is_canonical_uuid(id: &str) -> bool {
    let b = id.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(&c),
        })
}

impl Reader05 {
    pub(crate) fn new(shared: Arc<Shared>) -> Reader05 {
        Reader05 {
            shared,
            files: HashMap::new(),
        }
    }

    /// A January-2026 frame was decoded: while undecided, that decides.
    pub(crate) fn saw_january(&self) {
        if self.shared.proto.get().is_none() {
            self.shared.proto.decide(Protocol::Jan2026);
        }
    }

    /// Handle a binary frame as 0.5. `false`: not a 0.5 frame (or the connection is
    /// January-2026), nothing was done.
    pub(crate) fn binary(&mut self, data: &[u8]) -> bool {
        if self.shared.proto.get() == Some(Protocol::Jan2026) {
            return false;
        }
        if let Some(ev) = wire05::decode_process_event(data) {
            if !self.shared.proto.is_v05() {
                self.shared.proto.decide(Protocol::V05);
            }
            self.process_event(ev);
            return true;
        }
        let Ok(msg) = wire05::decode_server(data) else {
            return false;
        };
        self.shared.proto.decide(Protocol::V05);
        match msg {
            ServerMessage::Response {
                corr_id,
                ok,
                result,
            } => {
                self.shared.proto.sent().answered(corr_id);
                match self.shared.pending.take(corr_id) {
                    Some(p) => {
                        p.settle(Ok(Reply::Response {
                            successful: ok,
                            result,
                        }));
                    }
                    None => {
                        // The detection probe's answer, a timed-out request, or a stray.
                        self.shared
                            .stats
                            .stray_replies
                            .fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            ServerMessage::ProcessEvent {
                process_id,
                event,
                value,
            } => {
                let id = wire05::normalize_uuid(&process_id).unwrap_or(process_id);
                self.route(&id, event_from(&event, value));
            }
            ServerMessage::File {
                process_id,
                file_hash,
                chunk_index,
                total_chunks,
                chunk_data,
                name,
            } => {
                let id = wire05::normalize_uuid(&process_id).unwrap_or(process_id);
                self.file_chunk(id, file_hash, chunk_index, total_chunks, chunk_data, name);
            }
        }
        true
    }

    /// Route a `process_event` straight from the frame: the id is borrowed (normalised only
    /// when the server did not send it canonical) and the value is the one allocation.
    fn process_event(&mut self, ev: wire05::ProcessEventRef<'_>) {
        // One spare byte lets the C layer append its NUL terminator without reallocating.
        let mut value = String::with_capacity(ev.value.len() + 1);
        value.push_str(ev.value);
        let event = event_from(ev.event, value);
        if is_canonical_uuid(ev.process_id) {
            self.route(ev.process_id, event);
        } else {
            let id = wire05::normalize_uuid(ev.process_id);
            self.route(id.as_deref().unwrap_or(ev.process_id), event);
        }
    }

    /// A text frame (§7). On a January-2026 connection it is ignored, as that server never
    /// sends one.
    pub(crate) fn text(&mut self, text: &str) {
        let proto = &self.shared.proto;
        if proto.get() == Some(Protocol::Jan2026) {
            self.ignored();
            return;
        }
        match wire05::decode_text(text) {
            Ok(TextFrame::TurnDone) => {
                proto.decide(Protocol::V05);
                self.ignored();
            }
            Ok(TextFrame::Error(message)) => {
                proto.decide(Protocol::V05);
                let culprit = proto.sent().errored();
                let pending = culprit.and_then(|id| self.shared.pending.take(id));
                match pending {
                    Some(p) => {
                        p.settle(Err(Error::new(ErrorKind::Protocol, message)));
                    }
                    None => self.ignored(),
                }
            }
            Ok(TextFrame::Other(_)) | Err(_) => self.ignored(),
        }
    }

    fn ignored(&self) {
        self.shared
            .stats
            .ignored_frames
            .fetch_add(1, Ordering::Relaxed);
    }

    fn route(&mut self, id: &str, ev: InstanceEvent) {
        let mut ev = Some(ev);
        let target = self.shared.proto.routes().target(id, &mut ev);
        match (target, ev) {
            (Some(q), Some(ev)) => q.push(ev),
            (None, Some(_)) => {
                // The handle was dropped: nobody wants it.
                self.shared
                    .stats
                    .unrouted_events
                    .fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }

    fn file_chunk(
        &mut self,
        id: String,
        hash: String,
        index: u64,
        total: u64,
        data: Vec<u8>,
        name: Option<String>,
    ) {
        let key = (id, hash);
        let limit = match self.shared.queue_limit {
            0 => usize::MAX,
            n => n,
        };
        let dropped = |r: &mut Reader05, key: &(String, String)| {
            r.files.remove(key);
            r.shared.stats.dropped_blobs.fetch_add(1, Ordering::Relaxed);
        };
        if total == 0 || index >= total {
            dropped(self, &key);
            return;
        }
        let complete = if index == 0 {
            if total == 1 {
                Some(data)
            } else {
                self.files.insert(
                    key.clone(),
                    Assembly {
                        total,
                        next: 1,
                        data,
                    },
                );
                None
            }
        } else {
            let Some(a) = self.files.get_mut(&key) else {
                dropped(self, &key);
                return;
            };
            if a.total != total || a.next != index || a.data.len() + data.len() > limit {
                dropped(self, &key);
                return;
            }
            a.data.extend_from_slice(&data);
            a.next += 1;
            if a.next == a.total {
                self.files.remove(&key).map(|a| a.data)
            } else {
                None
            }
        };
        let Some(file) = complete else {
            return;
        };
        if !wire05::hash(&file).eq_ignore_ascii_case(&key.1) {
            self.shared
                .stats
                .dropped_blobs
                .fetch_add(1, Ordering::Relaxed);
            return;
        }
        let ev = match name {
            Some(name) => InstanceEvent::NamedBlob { data: file, name },
            None => InstanceEvent::Blob(file),
        };
        self.route(&key.0, ev);
    }

    /// The connection ended: end every 0.5 stream after its queued events.
    pub(crate) fn end(&mut self, reason: &Error) {
        self.files.clear();
        self.shared.proto.routes().end_all(reason);
    }
}
