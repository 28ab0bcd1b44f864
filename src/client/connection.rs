//! The connection's two tasks and the state they share with the API.
//!
//! * **Writing** (see docs/BENCHMARKS.md, "Thread hand-offs per request"): a caller whose
//!   frame needs no acknowledgement writes it itself, on its own thread, when the sink is
//!   free, nothing is queued before it and no other request is in flight
//!   (`Shared::send_frame`): no hand-off to another task for the common request. Otherwise
//!   the frame goes to the **writer** task through a channel; the writer writes what
//!   is queued, flushes when the channel runs dry (so pipelined requests share syscalls), and
//!   only then acknowledges frames that asked for it (upload progress: "handed to the
//!   socket"). A caller never waits on the socket: if the sink cannot take its frame at once,
//!   the frame is queued; if the flush cannot finish at once, the writer finishes it.
//! * The **reader** owns the WebSocket stream. It decodes every binary frame, completes pending
//!   requests by corr_id and routes instance output by instance id into per-instance queues.
//!   It never waits on a consumer. Its routing table is its own (no lock): queues are created
//!   by the reader itself when it processes a successful launch/attach result, before it reads
//!   the next frame, so no event of a new instance can be missed (PROTOCOL.md §13).
//!
//! Blob downloads (§7.7) are reassembled per (instance, hash): chunk 0 starts (or restarts) a
//! blob, every further chunk must carry the next index and the same `total_chunks`, and the
//! blake3 hash is checked on the last chunk. On any inconsistency or a hash mismatch the
//! partial blob is dropped and nothing is delivered for it (counted in `debug_counts`). Memory
//! grows with the chunks actually received, never with the announced total; a blob that would
//! not fit the instance's queue limit is abandoned while being collected and reported through
//! an `Overflow` marker, like any other dropped event.
//!
//! When the connection ends (server Close, EOF, error, or `close()`/drop of the client), the
//! reader fails every pending call and ends every queue with one reason, then publishes it.

use super::events::{EventQueue, InstanceEvent};
use super::pending::{Expect, PendingMap, QueueHandoff, Reply};
use super::transport::Ws;
use crate::error::{Error, ErrorKind};
use crate::log::Level;
use crate::pie_log;
use crate::wire::{self, ServerMessage, StreamingOutput};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio::task::AbortHandle;
use tokio_tungstenite::tungstenite::Message;

/// How long `close()` (and dropping the client) waits for the server's Close / TCP end.
pub(crate) const CLOSE_WAIT: Duration = Duration::from_secs(1);

pub(crate) enum WriterCmd {
    /// One encoded message; `ack` fires once it was written and flushed to the socket.
    Frame {
        data: Vec<u8>,
        ack: Option<oneshot::Sender<()>>,
    },
    /// Send a WebSocket Close, then give the server `CLOSE_WAIT` before forcing the end.
    Close,
    /// Finish writing what a caller left in the sink (its flush could not complete at once).
    Flush,
}

#[derive(Default)]
pub(crate) struct Stats {
    pub routes: AtomicUsize,
    pub blob_assemblies: AtomicUsize,
    pub undecodable_frames: AtomicU64,
    pub ignored_frames: AtomicU64,
    pub stray_replies: AtomicU64,
    pub unrouted_events: AtomicU64,
    pub dropped_blobs: AtomicU64,
    pub reader_naps: AtomicU64,
    /// Writes of a burst's frames made on a caller's thread (see `BURST_WRITE_FRAMES`).
    pub burst_writes: AtomicU64,
}

pub(crate) struct Shared {
    pub pending: PendingMap,
    /// The WebSocket's write half. Locked by the writer task while it writes, and briefly
    /// (`try_lock`, never awaited while held) by callers writing their own frame.
    pub sink: tokio::sync::Mutex<SplitSink<Ws, Message>>,
    /// Frames sent to the writer channel and not yet flushed by it. A caller writes directly
    /// only when this is 0, so frames never overtake frames queued before them.
    pub queued: AtomicUsize,
    /// Off only through `Client::debug_set_direct_writes` (benchmarks compare both ways).
    pub direct_writes: AtomicBool,
    /// A caller left frames in the sink's buffer and asked the writer to flush them; cleared
    /// by the writer under the sink's lock, before it flushes.
    pub flush_requested: AtomicBool,
    /// Frames callers put in the sink's buffer since it was last flushed. Changed only under
    /// the sink's lock (an atomic only to be shared).
    pub buffered_frames: AtomicUsize,
    pub writer: mpsc::UnboundedSender<WriterCmd>,
    /// Tells the reader to stop and clean up (close timeout, client dropped, writer failed).
    pub shutdown: Notify,
    /// Why the connection ended; the first writer wins (`close()` sets ClientClosed first).
    pub end: OnceLock<Error>,
    /// `Some(reason)` once the reader has cleaned up.
    pub ended: watch::Sender<Option<Error>>,
    pub closing: AtomicBool,
    /// Ids of dropped `Instance`s, for the reader to forget.
    pub forget: mpsc::UnboundedSender<String>,
    pub writer_abort: Mutex<Option<AbortHandle>>,
    pub queue_limit: usize,
    /// `ClientConfig::event_batch_window` (zero: off).
    pub batch_window: Duration,
    /// Quiets the socket while the reader naps.
    pub read_gate: super::transport::WakeGate,
    pub stats: Stats,
    /// Protocol detection and the Pie 0.5 state (`super::v05`).
    pub proto: super::v05::ProtoShared,
}

impl Shared {
    /// The error for calls made after the connection ended (or while it is ending).
    pub(crate) fn end_error(&self) -> Error {
        match self.end.get() {
            Some(e) => e.clone(),
            None => Error::new(ErrorKind::ConnectionClosed, "the connection has ended"),
        }
    }

    /// Send a frame: written directly on the caller's thread when possible, else queued for
    /// the writer task (always when `ack` is wanted). Fails once the connection has ended.
    /// Never waits: the writer's channel is unbounded (every frame in it belongs to a request
    /// the caller made; uploads keep at most two chunks queued).
    pub(crate) fn send_frame(
        &self,
        data: Vec<u8>,
        ack: Option<oneshot::Sender<()>>,
    ) -> Result<(), Error> {
        if self.end.get().is_some() {
            return Err(self.end_error());
        }
        let data = match ack {
            None => match self.write_direct(data) {
                Direct::Written => return Ok(()),
                Direct::Failed => return Err(self.end_error()),
                Direct::Busy(data) => data,
            },
            Some(_) => data,
        };
        self.queued.fetch_add(1, Ordering::SeqCst);
        if self.writer.send(WriterCmd::Frame { data, ack }).is_err() {
            self.queued.fetch_sub(1, Ordering::SeqCst);
            return Err(self.end_error());
        }
        // In the channel: the writer decrements once it has flushed it.
        Ok(())
    }

    /// Writes `data` into the sink on the caller's thread if the sink is free and nothing is
    /// queued; gives the frame back otherwise. Never waits on the socket: each step is polled
    /// once (with a waker that does nothing: whatever the sink cannot finish at once is left
    /// to the writer task, which polls it with its own).
    fn write_direct(&self, data: Vec<u8>) -> Direct {
        if self.queued.load(Ordering::SeqCst) != 0 || !self.direct_writes.load(Ordering::Relaxed) {
            return Direct::Busy(data);
        }
        let Ok(mut sink) = self.sink.try_lock() else {
            return Direct::Busy(data);
        };
        // Checked again under the lock: the writer decrements only after flushing, under it.
        if self.queued.load(Ordering::SeqCst) != 0 {
            return Direct::Busy(data);
        }
        // Several requests in flight: the frame goes into the sink's buffer here, and the
        // writer task flushes the run of them in one write (fewer syscalls than a write per
        // caller), or the caller every BURST_WRITE_FRAMES frames. Framing it here keeps that
        // work, and the frame's allocation, on the caller's thread; a lone request goes
        // straight out.
        let burst = self.pending.len() > 1;
        let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
        match sink.poll_ready_unpin(&mut cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(e)) => {
                self.write_failed(&e);
                return Direct::Failed;
            }
            Poll::Pending => return Direct::Busy(data),
        }
        if let Err(e) = sink.start_send_unpin(Message::Binary(data.into())) {
            self.write_failed(&e);
            return Direct::Failed;
        }
        if burst {
            let buffered = self.buffered_frames.fetch_add(1, Ordering::Relaxed) + 1;
            if buffered % BURST_WRITE_FRAMES == 0 {
                match sink.poll_flush_unpin(&mut cx) {
                    Poll::Ready(Ok(())) => {
                        self.buffered_frames.store(0, Ordering::Relaxed);
                        self.stats.burst_writes.fetch_add(1, Ordering::Relaxed);
                        return Direct::Written;
                    }
                    Poll::Ready(Err(e)) => {
                        self.write_failed(&e);
                        return Direct::Failed;
                    }
                    // The socket is full: the writer task finishes it (asked below).
                    Poll::Pending => {}
                }
            }
            drop(sink);
            // One flush request per run: the writer clears the flag under the sink's lock
            // before flushing, so a frame buffered after that asks again.
            if !self.flush_requested.swap(true, Ordering::SeqCst) {
                let _ = self.writer.send(WriterCmd::Flush);
            }
            return Direct::Written;
        }
        match sink.poll_flush_unpin(&mut cx) {
            Poll::Ready(Ok(())) => Direct::Written,
            Poll::Ready(Err(e)) => {
                self.write_failed(&e);
                Direct::Failed
            }
            Poll::Pending => {
                drop(sink);
                // The writer finishes the flush (it polls with its own waker).
                let _ = self.writer.send(WriterCmd::Flush);
                Direct::Written
            }
        }
    }

    /// A write failed: the connection is lost; the reader ends it and fails every call.
    pub(crate) fn write_failed(&self, e: &dyn std::fmt::Display) {
        pie_log!(
            Level::Warn,
            "pie::connection",
            "writing to the socket failed: {e}"
        );
        let _ = self.end.set(Error::new(
            ErrorKind::ConnectionClosed,
            format!("connection lost while writing: {e}"),
        ));
        self.shutdown.notify_one();
    }
}

/// A caller that has put this many frames of a burst in the sink's buffer writes them itself:
/// the server starts on them while the host is still making requests, whether or not the
/// network thread gets a core meanwhile (the rest of the burst it flushes, asked once per run).
/// Measured with 64 pings in flight (docs/BENCHMARKS.md, "Bursts written in steps"): +8–13 %
/// with every 16 frames; every 8 costs more system calls than it saves.
const BURST_WRITE_FRAMES: usize = 16;

/// Outcome of [`Shared::write_direct`].
enum Direct {
    /// In the sink (flushed, or left for the writer to flush).
    Written,
    /// The write failed; the connection is ending.
    Failed,
    /// Not written (sink busy or frames queued): the frame, to queue for the writer.
    Busy(Vec<u8>),
}

/// Lowercase hyphenated form of an instance id as the server prints it (§16: the server
/// accepts upper case, missing hyphens, `urn:uuid:` and braces on input). Anything that is
/// not a UUID is only lowercased (the server will refuse it anyway).
pub(crate) fn normalize_id(id: &str) -> String {
    let t = id.trim();
    // `get`, not indexing: byte 9 may fall inside a multi-byte character of a hostile id.
    let t = if t
        .get(..9)
        .is_some_and(|p| p.eq_ignore_ascii_case("urn:uuid:"))
    {
        &t[9..]
    } else {
        t
    };
    let t = t
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .unwrap_or(t);
    let hex: String = t.chars().filter(|c| *c != '-').collect();
    if hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
        let h = hex.to_ascii_lowercase();
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    } else {
        t.to_ascii_lowercase()
    }
}

/// Fast path for ids in events: the server always sends the canonical form.
fn route_key(id: &str) -> Cow<'_, str> {
    let canonical = id.len() == 36
        && id
            .bytes()
            .all(|b| b == b'-' || b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if canonical {
        Cow::Borrowed(id)
    } else {
        Cow::Owned(normalize_id(id))
    }
}

pub(crate) async fn writer_task(mut rx: mpsc::UnboundedReceiver<WriterCmd>, shared: Arc<Shared>) {
    let mut acks: Vec<oneshot::Sender<()>> = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut sink = shared.sink.lock().await;
        // The flush below covers every frame callers buffered so far.
        shared.flush_requested.store(false, Ordering::SeqCst);
        shared.buffered_frames.store(0, Ordering::Relaxed);
        let mut next = Some(first);
        let mut batched = 0;
        let mut frames = 0;
        let mut close = false;
        while let Some(cmd) = next.take() {
            match cmd {
                WriterCmd::Frame { data, ack } => {
                    frames += 1;
                    if let Err(e) = sink.feed(Message::Binary(data.into())).await {
                        shared.write_failed(&e);
                        return;
                    }
                    if let Some(a) = ack {
                        acks.push(a);
                    }
                }
                WriterCmd::Flush => {}
                WriterCmd::Close => {
                    close = true;
                    break;
                }
            }
            batched += 1;
            // Bound the batch so acks (upload progress) are not held back indefinitely.
            if batched < 64 {
                next = rx.try_recv().ok();
            }
        }
        if let Err(e) = sink.flush().await {
            shared.write_failed(&e);
            return;
        }
        // Only now may callers write directly again (nothing queued can be overtaken).
        shared.queued.fetch_sub(frames, Ordering::SeqCst);
        for a in acks.drain(..) {
            let _ = a.send(());
        }
        if close {
            // Errors are irrelevant here: we are ending the connection either way.
            let _ = sink.send(Message::Close(None)).await;
            drop(sink);
            tokio::time::sleep(CLOSE_WAIT).await;
            shared.shutdown.notify_one();
            return;
        }
    }
}

/// An in-progress blob download (§7.7). Memory grows with the chunks received, never with the
/// announced `total_chunks` (which a server could inflate).
struct Assembly {
    total: u64,
    next: u64,
    data: Vec<u8>,
}

struct Reader {
    shared: Arc<Shared>,
    forget: mpsc::UnboundedSender<String>,
    routes: HashMap<String, Arc<EventQueue>>,
    /// Keyed by (instance id, blob hash).
    blobs: HashMap<(String, String), Assembly>,
}

impl Reader {
    fn handle(&mut self, msg: ServerMessage) {
        match msg {
            ServerMessage::Response {
                corr_id,
                successful,
                result,
            } => self.deliver(
                corr_id,
                Incoming::Response {
                    successful,
                    result: Cow::Owned(result),
                },
            ),
            // Never sent by the real server; the reference clients treat it as a successful
            // response carrying the challenge (§7.8).
            ServerMessage::Challenge { corr_id, challenge } => self.deliver(
                corr_id,
                Incoming::Response {
                    successful: true,
                    result: Cow::Owned(challenge),
                },
            ),
            ServerMessage::InstanceLaunchResult {
                corr_id,
                successful,
                message,
            } => self.deliver(
                corr_id,
                Incoming::Launch {
                    successful,
                    message,
                },
            ),
            ServerMessage::InstanceAttachResult {
                corr_id,
                successful,
                message,
            } => self.deliver(
                corr_id,
                Incoming::Attach {
                    successful,
                    message,
                },
            ),
            ServerMessage::LiveInstances { corr_id, instances } => {
                self.deliver(corr_id, Incoming::List(instances))
            }
            ServerMessage::InstanceEvent {
                instance_id,
                event,
                message,
            } => self.route(&instance_id, InstanceEvent::from_code(event, message)),
            ServerMessage::StreamingOutput {
                instance_id,
                output,
            } => {
                let ev = match output {
                    StreamingOutput::Stdout(s) => InstanceEvent::Stdout(s),
                    StreamingOutput::Stderr(s) => InstanceEvent::Stderr(s),
                };
                self.route(&instance_id, ev)
            }
            ServerMessage::DownloadBlob {
                instance_id,
                blob_hash,
                chunk_index,
                total_chunks,
                chunk_data,
                ..
            } => self.blob_chunk(
                &instance_id,
                blob_hash,
                chunk_index,
                total_chunks,
                chunk_data,
            ),
            // Never sent by this server version (Q3); nothing to do with it.
            ServerMessage::ServerEvent { .. } => {
                pie_log!(
                    Level::Debug,
                    "pie::protocol",
                    "ignored a server_event frame (not used by this protocol version)"
                );
                self.shared
                    .stats
                    .ignored_frames
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn deliver(&mut self, corr_id: u32, incoming: Incoming<'_>) {
        let Some(pending) = self.shared.pending.take(corr_id) else {
            // Timed out, cancelled, or a stray extra reply (Q7): ignore.
            pie_log!(
                Level::Debug,
                "pie::protocol",
                "ignored a '{}' reply to request {corr_id}: no call waits for it (timed out, \
                 cancelled, or an extra failure reply of a chunked upload)",
                incoming.wire_name()
            );
            self.shared
                .stats
                .stray_replies
                .fetch_add(1, Ordering::Relaxed);
            return;
        };
        let reply = match (&pending.expect, incoming) {
            // A successful ping's result is never read: no copy of it.
            (
                Expect::Ack,
                Incoming::Response {
                    successful: true, ..
                },
            ) => Ok(Reply::Response {
                successful: true,
                result: String::new(),
            }),
            (Expect::Response | Expect::Ack, Incoming::Response { successful, result }) => {
                Ok(Reply::Response {
                    successful,
                    result: result.into_owned(),
                })
            }
            (
                Expect::Launch { detached },
                Incoming::Launch {
                    successful,
                    message,
                },
            ) => {
                let id = normalize_id(&message);
                if successful {
                    pie_log!(
                        Level::Debug,
                        "pie::launch",
                        "request {corr_id}: instance {id} launched{}",
                        if *detached { " (detached)" } else { "" }
                    );
                } else {
                    pie_log!(
                        Level::Debug,
                        "pie::launch",
                        "request {corr_id}: launch refused: {message}"
                    );
                }
                let queue = (successful && !detached).then(|| self.add_route(&id));
                let queue = queue.map(|q| QueueHandoff::new(q, id.clone(), self.forget.clone()));
                Ok(Reply::Instance {
                    successful,
                    message,
                    id,
                    queue,
                })
            }
            (
                Expect::Attach { id },
                Incoming::Attach {
                    successful,
                    message,
                },
            ) => {
                let queue = successful.then(|| {
                    QueueHandoff::new(self.add_route(id), id.clone(), self.forget.clone())
                });
                Ok(Reply::Instance {
                    successful,
                    message,
                    id: id.clone(),
                    queue,
                })
            }
            (Expect::List, Incoming::List(list)) => Ok(Reply::List(list)),
            (expect, got) => {
                let e = Error::new(
                    ErrorKind::Protocol,
                    format!(
                        "the server answered request {corr_id} with '{}' where '{}' was expected",
                        got.wire_name(),
                        expect.wire_name()
                    ),
                );
                pie_log!(Level::Warn, "pie::protocol", "{}", e.message());
                Err(e)
            }
        };
        // If the caller gave up in the meantime, dropping the reply drops the handoff, which
        // abandons the queue; the route is forgotten with the next frame.
        pending.settle(reply);
    }

    fn add_route(&mut self, id: &str) -> Arc<EventQueue> {
        let q = EventQueue::new(self.shared.queue_limit);
        if let Some(old) = self.routes.insert(id.to_string(), q.clone()) {
            // Re-attached on this connection (the old handle was dropped or its stream ended).
            old.end(Error::new(
                ErrorKind::StreamEnded,
                "the instance was attached again; this handle no longer receives events",
            ));
        }
        self.drop_assemblies(id);
        q
    }

    fn forget(&mut self, id: &str) {
        self.routes.remove(id);
        self.drop_assemblies(id);
    }

    fn drop_assemblies(&mut self, id: &str) {
        if !self.blobs.is_empty() {
            self.blobs.retain(|(i, _), _| i != id);
        }
    }

    fn route_frame(&mut self, frame: wire::EventFrame<'_>) {
        let ev = match frame.body {
            wire::EventBody::Output(StreamingOutput::Stdout(s)) => InstanceEvent::Stdout(s),
            wire::EventBody::Output(StreamingOutput::Stderr(s)) => InstanceEvent::Stderr(s),
            wire::EventBody::Event { code, message } => InstanceEvent::from_code(code, message),
        };
        self.route(frame.instance_id, ev)
    }

    fn route(&mut self, instance_id: &str, ev: InstanceEvent) {
        let key = route_key(instance_id);
        let Some(q) = self.routes.get(key.as_ref()) else {
            pie_log!(
                Level::Debug,
                "pie::protocol",
                "dropped an event for instance {instance_id}: this connection is not attached \
                 to it (or its stream already ended)"
            );
            self.shared
                .stats
                .unrouted_events
                .fetch_add(1, Ordering::Relaxed);
            return;
        };
        if q.is_abandoned() {
            let key = key.into_owned();
            self.forget(&key);
            return;
        }
        let terminal = ev.is_terminal();
        if terminal {
            // Logged before the event is queued, so a host that has received the terminal event
            // has also received this record.
            pie_log!(
                Level::Debug,
                "pie::launch",
                "instance {key}: terminal event received, its stream ends"
            );
        }
        q.push(ev);
        if terminal {
            // Nothing more comes for this instance on this connection (§7.5): release it.
            let key = key.into_owned();
            self.forget(&key);
        }
    }

    fn blob_chunk(
        &mut self,
        instance_id: &str,
        hash: String,
        index: u64,
        total: u64,
        data: Vec<u8>,
    ) {
        let id = route_key(instance_id).into_owned();
        let Some(q) = self.routes.get(&id).cloned() else {
            self.shared
                .stats
                .unrouted_events
                .fetch_add(1, Ordering::Relaxed);
            return;
        };
        let key = (id, hash);
        let drop_blob = |reader: &mut Reader, key: &(String, String)| {
            pie_log!(
                Level::Warn,
                "pie::protocol",
                "dropped blob {} of instance {}: chunk {index} of {total} does not continue it",
                key.1,
                key.0
            );
            reader.blobs.remove(key);
            reader
                .shared
                .stats
                .dropped_blobs
                .fetch_add(1, Ordering::Relaxed);
        };
        if total == 0 || index >= total {
            // Inconsistent chunk: whatever was in progress for this blob cannot complete.
            drop_blob(self, &key);
            return;
        }
        let complete = if index == 0 {
            // Chunk 0 always starts (or restarts) a blob.
            if q.would_overflow(data.len()) {
                pie_log!(
                    Level::Warn,
                    "pie::protocol",
                    "dropped blob {} of instance {}: it exceeds the instance's queue limit",
                    key.1,
                    key.0
                );
                self.blobs.remove(&key);
                q.push_dropped();
                return;
            }
            if total == 1 {
                Some(data)
            } else {
                self.blobs.insert(
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
            let Some(a) = self.blobs.get_mut(&key) else {
                drop_blob(self, &key);
                return;
            };
            if a.total != total || a.next != index {
                drop_blob(self, &key);
                return;
            }
            // Beyond the queue limit the blob could not be queued anyway: stop collecting it.
            if q.would_overflow(a.data.len() + data.len()) {
                pie_log!(
                    Level::Warn,
                    "pie::protocol",
                    "dropped blob {} of instance {}: it exceeds the instance's queue limit",
                    key.1,
                    key.0
                );
                self.blobs.remove(&key);
                q.push_dropped();
                return;
            }
            a.data.extend_from_slice(&data);
            a.next += 1;
            if a.next == a.total {
                self.blobs.remove(&key).map(|a| a.data)
            } else {
                None
            }
        };
        if let Some(blob) = complete {
            if wire::hash_blob(&blob).eq_ignore_ascii_case(&key.1) {
                q.push(InstanceEvent::Blob(blob));
            } else {
                pie_log!(
                    Level::Warn,
                    "pie::protocol",
                    "dropped blob {} of instance {}: its content does not match the hash",
                    key.1,
                    key.0
                );
                // Like the reference clients: a blob whose hash does not verify is dropped
                // silently (counted in the debug stats).
                self.shared
                    .stats
                    .dropped_blobs
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn publish_stats(&self) {
        let s = &self.shared.stats;
        s.routes.store(self.routes.len(), Ordering::Relaxed);
        s.blob_assemblies.store(self.blobs.len(), Ordering::Relaxed);
    }
}

enum Incoming<'a> {
    /// The result is borrowed from the frame on the fast path: it is copied only if the
    /// request reads it.
    Response {
        successful: bool,
        result: Cow<'a, str>,
    },
    Launch {
        successful: bool,
        message: String,
    },
    Attach {
        successful: bool,
        message: String,
    },
    List(Vec<wire::InstanceInfo>),
}

impl Incoming<'_> {
    fn wire_name(&self) -> &'static str {
        match self {
            Incoming::Response { .. } => "response",
            Incoming::Launch { .. } => "instance_launch_result",
            Incoming::Attach { .. } => "instance_attach_result",
            Incoming::List(_) => "live_instances",
        }
    }
}

/// Wake-ups closer together than this mark a flood of frames (`ClientConfig::event_batch_window`).
pub(crate) const FLOOD_GAP: Duration = Duration::from_micros(200);

/// Decides when the reader naps between reads instead of waiting for the next frame: only
/// during a flood (`FLOOD_WAKES` wake-ups in a row, each less than `FLOOD_GAP` after the one
/// before: a request's reply and its follow-up frame are not a flood, nor is a host making
/// requests one after another, however fast: a wake-up that follows one which brought a reply
/// starts the count again), only while no request waits for its reply
/// (`PendingMap::begin_nap`), and only as long as each nap gathers more than one frame.
struct ReadPacer {
    window: Duration,
    last_wake: Option<std::time::Instant>,
    /// `PendingMap::taken` at the last wake-up.
    taken_at_last_wake: u64,
    short_gaps: u32,
    flood: bool,
    /// The flood was just detected: the next nap is its first.
    entering: bool,
    frames_since_nap: u32,
}

/// Consecutive short gaps between wake-ups that make a flood.
const FLOOD_WAKES: u32 = 4;

impl ReadPacer {
    fn new(window: Duration) -> ReadPacer {
        ReadPacer {
            window,
            last_wake: None,
            taken_at_last_wake: 0,
            short_gaps: 0,
            flood: false,
            entering: false,
            frames_since_nap: 0,
        }
    }

    /// A frame was taken without waiting.
    fn took_frame(&mut self) {
        self.frames_since_nap = self.frames_since_nap.saturating_add(1);
    }

    /// The reader woke up for a frame after waiting for it; `taken` is `PendingMap::taken`.
    fn woke(&mut self, taken: u64) {
        let now = std::time::Instant::now();
        // Replies since the last wake-up: the gap was a round trip, not output pouring in.
        let replies = std::mem::replace(&mut self.taken_at_last_wake, taken) != taken;
        let short = !replies
            && self
                .last_wake
                .is_some_and(|last| now.duration_since(last) < FLOOD_GAP);
        self.short_gaps = if short { self.short_gaps + 1 } else { 0 };
        if !self.flood && self.short_gaps >= FLOOD_WAKES {
            self.flood = true;
            self.entering = true;
        }
        self.last_wake = Some(now);
    }

    /// Nothing is buffered: nap for `window` (true) or wait for the next frame (false).
    fn nap_first(&mut self) -> bool {
        let gathered = std::mem::take(&mut self.frames_since_nap);
        let entering = std::mem::take(&mut self.entering);
        if self.window.is_zero() || !self.flood {
            return false;
        }
        if !entering && gathered < 2 {
            // The last nap gathered at most one frame: the flood is over.
            self.flood = false;
            self.short_gaps = 0;
            return false;
        }
        true
    }
}

pub(crate) async fn reader_task(
    mut stream: SplitStream<Ws>,
    shared: Arc<Shared>,
    mut forget_rx: mpsc::UnboundedReceiver<String>,
) {
    let mut reader = Reader {
        shared: shared.clone(),
        forget: shared.forget.clone(),
        routes: HashMap::new(),
        blobs: HashMap::new(),
    };
    let mut reader05 = super::v05::reader::Reader05::new(shared.clone());
    let mut pacer = ReadPacer::new(shared.batch_window);
    let shutdown = shared.shutdown.notified();
    tokio::pin!(shutdown);
    let why: Option<String> = loop {
        // A frame already buffered (or readable) is taken without waiting.
        // Consumers are woken once per run of frames taken without waiting, before the
        // reader waits again (`flush_wakeups` before every await below).
        let next = match futures_util::FutureExt::now_or_never(stream.next()) {
            Some(next) => {
                // Taking this frame needed a socket read: the replies of the frames before it
                // are settled now, outside the WebSocket's lock (`transport::socket_was_read`).
                if super::transport::socket_was_read() {
                    super::pending::flush_deferred_settles();
                }
                super::events::defer_wakeups();
                pacer.took_frame();
                next
            }
            None if pacer.nap_first() && shared.pending.begin_nap() => {
                super::events::flush_wakeups();
                shared.stats.reader_naps.fetch_add(1, Ordering::Relaxed);
                shared.read_gate.hold();
                let stop = tokio::select! {
                    biased;
                    _ = &mut shutdown => true,
                    // A request sent meanwhile: its reply must not wait for the nap's end.
                    _ = shared.pending.nap_interrupted() => false,
                    _ = tokio::time::sleep(pacer.window) => false,
                };
                shared.pending.end_nap();
                shared.read_gate.release();
                if stop {
                    break None;
                }
                // Lets the runtime's driver see the readiness that `release` signalled, so the
                // next look finds the frames gathered during the nap.
                tokio::task::yield_now().await;
                continue;
            }
            None => {
                super::events::flush_wakeups();
                let next = tokio::select! {
                    biased;
                    _ = &mut shutdown => break None,
                    next = stream.next() => next,
                };
                super::events::defer_wakeups();
                pacer.woke(shared.pending.taken());
                pacer.took_frame();
                next
            }
        };
        while let Ok(id) = forget_rx.try_recv() {
            if reader.routes.get(&id).is_some_and(|q| q.is_abandoned()) {
                reader.forget(&id);
            }
        }
        match next {
            // Output and events (most of the traffic) are routed straight from the frame;
            // everything else goes through the full decoder.
            Some(Ok(Message::Binary(data))) => {
                // A bug triggered by some frame must not leave every caller hanging: end the
                // connection (pending calls fail, streams end) instead of losing the task.
                let handled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    // Pie 0.5 frames (and detection) are handled by `reader05`.
                    if shared.proto.is_v05() {
                        if !reader05.binary(&data) {
                            shared
                                .stats
                                .undecodable_frames
                                .fetch_add(1, Ordering::Relaxed);
                        }
                        return;
                    }
                    if let Some(frame) = wire::decode_event_frame(&data) {
                        reader05.saw_january();
                        return reader.route_frame(frame);
                    }
                    if let Some(r) = wire::decode_response_frame(&data) {
                        reader05.saw_january();
                        let result = Cow::Borrowed(r.result);
                        return reader.deliver(
                            r.corr_id,
                            Incoming::Response {
                                successful: r.successful,
                                result,
                            },
                        );
                    }
                    match wire::decode_server(&data) {
                        Ok(msg) => {
                            reader05.saw_january();
                            reader.handle(msg)
                        }
                        Err(_) if reader05.binary(&data) => {}
                        Err(e) => {
                            pie_log!(
                                Level::Warn,
                                "pie::protocol",
                                "skipped an undecodable frame of {} bytes: {e}",
                                data.len()
                            );
                            // Like the server (§1): undecodable frames are skipped.
                            shared
                                .stats
                                .undecodable_frames
                                .fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }));
                if handled.is_err() {
                    break Some(
                        "internal error while handling a server frame (a libpie bug)".into(),
                    );
                }
            }
            Some(Ok(Message::Close(_))) => break Some("the server closed the connection".into()),
            Some(Ok(Message::Text(text))) => reader05.text(&text),
            Some(Ok(_)) => {
                // Text frames are ignored like the server does; ping/pong are handled by the
                // WebSocket layer.
                shared.stats.ignored_frames.fetch_add(1, Ordering::Relaxed);
            }
            Some(Err(e)) => break Some(format!("connection lost: {e}")),
            None => break Some("the connection ended".into()),
        }
        reader.publish_stats();
    };
    // Events of the last run of frames reach their consumers before the queues end.
    super::events::flush_wakeups();
    let reason = shared
        .end
        .get_or_init(|| {
            Error::new(
                ErrorKind::ConnectionClosed,
                why.unwrap_or_else(|| "the connection was shut down".into()),
            )
        })
        .clone();
    pie_log!(
        if reason.kind() == ErrorKind::ClientClosed {
            Level::Info
        } else {
            Level::Warn
        },
        "pie::connection",
        "connection ended: {} ({} pending calls failed, {} event streams ended)",
        reason.message(),
        shared.pending.len(),
        reader.routes.len()
    );
    shared.pending.close_all(reason.clone());
    for (_, q) in reader.routes.drain() {
        q.end(reason.clone());
    }
    reader05.end(&reason);
    reader.blobs.clear();
    reader.publish_stats();
    if let Some(w) = shared
        .writer_abort
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
    {
        w.abort();
    }
    shared.ended.send_replace(Some(reason));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` wake-ups `gap` apart, as the reader reports them.
    /// `n` wake-ups `gap` apart, none after a reply (output).
    fn wakes(p: &mut ReadPacer, n: u32, gap: Duration) {
        for _ in 0..n {
            p.woke(0);
            std::thread::sleep(gap);
        }
    }

    /// Requests made one after another, each answered by a reply and a follow-up frame
    /// (Pie 0.5's `turn_done`) read on separate wake-ups, all far closer together than
    /// `FLOOD_GAP`: request traffic, never a flood, so the reader never naps (a nap would hold
    /// the next request's reply until the request ends it, a wake-up of the reader's thread
    /// per request). The same wake-ups without replies are a flood.
    #[test]
    fn requests_one_after_another_are_not_a_flood() {
        let window = Duration::from_millis(1);
        let mut p = ReadPacer::new(window);
        for taken in 1..=(4 * FLOOD_WAKES as u64) {
            p.woke(taken); // the reply to the previous request (counted by `take`)
            assert!(!p.nap_first());
            p.woke(taken); // its follow-up frame
            assert!(!p.nap_first());
        }
        let mut p = ReadPacer::new(window);
        wakes(&mut p, 2 * (FLOOD_WAKES + 1), Duration::ZERO);
        assert!(p.nap_first());
    }

    #[test]
    fn pacer_naps_only_in_a_flood() {
        let window = Duration::from_millis(1);
        // Wake-ups far apart (a token stream at model speed): never a nap.
        let mut p = ReadPacer::new(window);
        wakes(&mut p, 6, FLOOD_GAP * 2);
        assert!(!p.nap_first());
        // A reply and its follow-up frame close together, then a gap: not a flood.
        let mut p = ReadPacer::new(window);
        for _ in 0..3 {
            wakes(&mut p, 2, Duration::ZERO);
            std::thread::sleep(FLOOD_GAP * 2);
        }
        assert!(!p.nap_first());
        // Wake-ups close together: the first nap comes at once...
        let mut p = ReadPacer::new(window);
        wakes(&mut p, FLOOD_WAKES + 1, Duration::ZERO);
        assert!(p.nap_first());
        // ...and napping goes on while each nap gathers more than one frame...
        p.took_frame();
        p.took_frame();
        assert!(p.nap_first());
        // ...and stops when a nap gathered one frame (the flood is over).
        p.took_frame();
        assert!(!p.nap_first());
        // Zero turns batching off.
        let mut p = ReadPacer::new(Duration::ZERO);
        wakes(&mut p, FLOOD_WAKES + 1, Duration::ZERO);
        assert!(!p.nap_first());
    }

    #[test]
    fn a_request_ends_a_nap_and_prevents_one() {
        let m = PendingMap::new();
        assert!(m.begin_nap());
        let interrupted = m.nap_interrupted();
        let (_id, _rx) = m.register(Expect::Response).unwrap();
        // The registration notified the napping reader...
        assert!(futures_util::FutureExt::now_or_never(interrupted).is_some());
        m.end_nap();
        // ...and with a request waiting, no nap starts.
        assert!(!m.begin_nap());
    }

    #[test]
    fn id_normalisation() {
        let c = "67e55044-10b1-426f-9247-bb680e5fe0c8";
        for v in [
            c,
            "67E55044-10B1-426F-9247-BB680E5FE0C8",
            "67e5504410b1426f9247bb680e5fe0c8",
            "urn:uuid:67e55044-10b1-426f-9247-bb680e5fe0c8",
            "{67e55044-10b1-426f-9247-bb680e5fe0c8}",
        ] {
            assert_eq!(normalize_id(v), c, "{v}");
            assert_eq!(route_key(v), c);
        }
        assert_eq!(normalize_id("Not-A-UUID"), "not-a-uuid");
        // Found by fuzzing (client_frames): used to panic the reader task.
        assert_eq!(
            normalize_id("E\u{e}\0E\u{fffd}\u{fffd}"),
            "e\u{e}\0e\u{fffd}\u{fffd}"
        );
        assert_eq!(route_key("urn:uu\u{20ac}x"), "urn:uu\u{20ac}x");
    }
}
