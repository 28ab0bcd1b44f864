//! Pie 0.5 in the client core: detection of the server's protocol, the 0.5 request path and
//! the state the reader shares with the API (PROTOCOL-0.5.md).
//!
//! **Detection** (§12). In automatic mode the connection is opened on `/v1/ws` with the
//! `x-pie-identity` header (the January-2026 server ignores both), and the first frame sent is
//! an `auth_identify` probe. A 0.5 server always answers it; the January-2026 server skips it
//! as undecodable (it does not count as the first message there). The first call then goes
//! out in January-2026 form right behind the probe; the reader decides by the format of the
//! first answer: a January-2026 frame decides January-2026, a 0.5 `response` or any text frame
//! decides 0.5 (the January-2026 server never sends text frames). A call that was sent in
//! January-2026 form when 0.5 is decided is abandoned and redone in 0.5 form — at most one
//! extra round trip, once per connection, and no guess on silence. On the January-2026 server
//! the first call is normally `authenticate` (it must be: anything else makes that server
//! close the connection), so nothing changes there.
//!
//! **Text `error` frames** (§7) carry no corr_id. The server handles a connection's frames
//! one at a time and answers in order, so the frame an error belongs to is the oldest frame
//! sent that has not been answered yet. Every frame sent while the protocol is not January-2026
//! is logged in send order ([`SentLog`]); a `response` retires every frame up to its request,
//! and an error frame fails the request at the head of the log with the server's text. When the
//! head is a fire-and-forget frame (signal, file) the error cannot be attributed: the request
//! behind it, if it was the culprit, times out.
//!
//! **Events** for a process id that has no route yet are kept (bounded) and handed to the
//! route when it is created (§6.2: events can overtake the launch reply's processing).

mod ops;
pub(crate) mod reader;

pub use ops::ProcessInfo;
pub(crate) use ops::{args_to_input, invalid, not_on_v05};

use super::config::ClientConfig;
use super::connection::Shared;
use super::events::{EventQueue, InstanceEvent};
use crate::error::{Error, ErrorKind, Result};
use crate::wire05;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{oneshot, watch};
use tokio_tungstenite::tungstenite;

/// The protocol a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// The January-2026 Pie server (PROTOCOL.md).
    Jan2026,
    /// Pie 0.5 (pie-server 0.5.x, PROTOCOL-0.5.md).
    V05,
}

const UNKNOWN: u8 = 0;
const JAN2026: u8 = 1;
const V05: u8 = 2;

/// Frames logged for error attribution beyond which the oldest are forgotten (then attribution
/// waits for the next response to resynchronise).
const SENT_LOG_LIMIT: usize = 4096;
/// Process ids whose early events are kept while no route exists, and their total bytes.
const ORPHAN_IDS: usize = 256;
const ORPHAN_BYTES_DEFAULT: usize = 64 << 20;

/// One frame in the send log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sent {
    /// A request frame (one chunk of an upload, or a whole request) with its corr_id.
    Request(u32),
    /// A frame that is never answered (signal_process, transfer_file).
    Forget,
}

#[derive(Default)]
pub(crate) struct SentLog {
    frames: VecDeque<Sent>,
    /// Frames were forgotten at the head: the head is not known until the next response.
    unsure: bool,
}

impl SentLog {
    fn push(&mut self, s: Sent) {
        if self.frames.len() >= SENT_LOG_LIMIT {
            self.frames.pop_front();
            self.unsure = true;
        }
        self.frames.push_back(s);
    }

    /// A response to `corr_id`: that request and everything sent before it has been handled.
    pub(crate) fn answered(&mut self, corr_id: u32) {
        if let Some(pos) = self
            .frames
            .iter()
            .rposition(|s| *s == Sent::Request(corr_id))
        {
            self.frames.drain(..=pos);
            self.unsure = false;
        }
    }

    /// A text error frame: the corr_id of the request it belongs to, when that is certain.
    pub(crate) fn errored(&mut self) -> Option<u32> {
        let head = self.frames.pop_front()?;
        match head {
            Sent::Request(id) if !self.unsure => Some(id),
            _ => None,
        }
    }
}

/// Event routes of 0.5 processes, shared by the reader (events) and the API (launch/attach).
pub(crate) struct Routes {
    queues: HashMap<String, Arc<EventQueue>>,
    orphans: HashMap<String, Vec<InstanceEvent>>,
    orphan_order: VecDeque<String>,
    orphan_bytes: usize,
    orphan_limit: usize,
    queue_limit: usize,
}

impl Routes {
    fn new(queue_limit: usize) -> Routes {
        Routes {
            queues: HashMap::new(),
            orphans: HashMap::new(),
            orphan_order: VecDeque::new(),
            orphan_bytes: 0,
            orphan_limit: if queue_limit == 0 {
                ORPHAN_BYTES_DEFAULT
            } else {
                queue_limit
            },
            queue_limit,
        }
    }

    /// A route for `id`, holding any events that arrived before it. A route whose terminal
    /// event is already among them is not kept (nothing more will come).
    pub(crate) fn register(&mut self, id: &str) -> Arc<EventQueue> {
        let q = EventQueue::new(self.queue_limit);
        let mut ended = false;
        if let Some(early) = self.orphans.remove(id) {
            self.orphan_order.retain(|o| o != id);
            for ev in early {
                self.orphan_bytes = self.orphan_bytes.saturating_sub(payload(&ev));
                ended |= ev.is_terminal();
                q.push(ev);
            }
        }
        if !ended {
            if let Some(old) = self.queues.insert(id.to_string(), q.clone()) {
                old.end(Error::new(
                    ErrorKind::StreamEnded,
                    "the process was attached again; this handle no longer receives events",
                ));
            }
        }
        q
    }

    /// Where an event of `id` goes: `Some(queue)` to push it to (outside the lock), or `None`
    /// when it was kept as an orphan or dropped (its handle is gone).
    pub(crate) fn target(
        &mut self,
        id: &str,
        ev: &mut Option<InstanceEvent>,
    ) -> Option<Arc<EventQueue>> {
        let terminal = ev.as_ref().is_some_and(|e| e.is_terminal());
        match self.queues.get(id) {
            Some(q) if q.is_abandoned() => {
                self.queues.remove(id);
                None
            }
            Some(q) => {
                let q = q.clone();
                if terminal {
                    self.queues.remove(id);
                }
                Some(q)
            }
            None => {
                if let Some(e) = ev.take() {
                    self.keep_orphan(id, e);
                }
                None
            }
        }
    }

    pub(crate) fn queue(&self, id: &str) -> Option<Arc<EventQueue>> {
        self.queues.get(id).filter(|q| !q.is_abandoned()).cloned()
    }

    fn keep_orphan(&mut self, id: &str, ev: InstanceEvent) {
        let len = payload(&ev);
        if !self.orphans.contains_key(id) {
            self.orphan_order.push_back(id.to_string());
        }
        self.orphans.entry(id.to_string()).or_default().push(ev);
        self.orphan_bytes += len;
        // Oldest ids go first: they are the least likely to be claimed still.
        while (self.orphan_order.len() > ORPHAN_IDS || self.orphan_bytes > self.orphan_limit)
            && self.orphan_order.len() > 1
        {
            if let Some(old) = self.orphan_order.pop_front() {
                if let Some(evs) = self.orphans.remove(&old) {
                    let n: usize = evs.iter().map(payload).sum();
                    self.orphan_bytes = self.orphan_bytes.saturating_sub(n);
                }
            }
        }
    }

    /// The connection ended: every stream ends after its queued events.
    pub(crate) fn end_all(&mut self, reason: &Error) {
        for (_, q) in self.queues.drain() {
            q.end(reason.clone());
        }
        self.orphans.clear();
        self.orphan_order.clear();
        self.orphan_bytes = 0;
    }

    pub(crate) fn len(&self) -> usize {
        self.queues.len()
    }
}

fn payload(ev: &InstanceEvent) -> usize {
    match ev {
        InstanceEvent::Blob(b) => b.len(),
        InstanceEvent::NamedBlob { data, name } => data.len() + name.len(),
        InstanceEvent::Message(s)
        | InstanceEvent::Completed(s)
        | InstanceEvent::Aborted(s)
        | InstanceEvent::Exception(s)
        | InstanceEvent::ServerError(s)
        | InstanceEvent::OutOfResources(s)
        | InstanceEvent::Stdout(s)
        | InstanceEvent::Stderr(s)
        | InstanceEvent::Unknown { message: s, .. } => s.len(),
        InstanceEvent::Overflow { .. } => 0,
    }
}

/// The protocol state of one connection and what 0.5 needs beside the January-2026 machinery.
pub(crate) struct ProtoShared {
    fast: AtomicU8,
    state: watch::Sender<Option<Protocol>>,
    /// Held while a frame is logged and queued, so the log has the wire order.
    order: Mutex<()>,
    pub(crate) sent: Mutex<SentLog>,
    pub(crate) routes: Mutex<Routes>,
    /// Detached launches (which find their id by listing before and after) take it for
    /// writing; attached launches for reading, so none of ours runs inside that window.
    pub(crate) launches: tokio::sync::RwLock<()>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl ProtoShared {
    pub(crate) fn new(config: &ClientConfig) -> ProtoShared {
        let initial = config.protocol;
        ProtoShared {
            fast: AtomicU8::new(match initial {
                None => UNKNOWN,
                Some(Protocol::Jan2026) => JAN2026,
                Some(Protocol::V05) => V05,
            }),
            state: watch::Sender::new(initial),
            order: Mutex::new(()),
            sent: Mutex::new(SentLog::default()),
            routes: Mutex::new(Routes::new(config.instance_queue_limit_bytes)),
            launches: tokio::sync::RwLock::new(()),
        }
    }

    pub(crate) fn get(&self) -> Option<Protocol> {
        match self.fast.load(Ordering::Acquire) {
            JAN2026 => Some(Protocol::Jan2026),
            V05 => Some(Protocol::V05),
            _ => None,
        }
    }

    pub(crate) fn is_v05(&self) -> bool {
        self.fast.load(Ordering::Acquire) == V05
    }

    /// Record the detected protocol (the first decision stands).
    pub(crate) fn decide(&self, p: Protocol) {
        let code = match p {
            Protocol::Jan2026 => JAN2026,
            Protocol::V05 => V05,
        };
        if self
            .fast
            .compare_exchange(UNKNOWN, code, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.state.send_replace(Some(p));
        }
    }

    /// Resolves once 0.5 has been detected (never, on a January-2026 connection).
    pub(crate) async fn wait_v05(&self) {
        let mut rx = self.state.subscribe();
        let _ = rx.wait_for(|p| *p == Some(Protocol::V05)).await;
        // Sender dropped (cannot happen while the client lives): stay pending.
        if !self.is_v05() {
            std::future::pending::<()>().await;
        }
    }

    pub(crate) fn sent(&self) -> MutexGuard<'_, SentLog> {
        lock(&self.sent)
    }

    pub(crate) fn routes(&self) -> MutexGuard<'_, Routes> {
        lock(&self.routes)
    }
}

/// Queue a frame for the writer; while the protocol is not January-2026 it is also logged in
/// wire order for text-error attribution.
pub(crate) async fn send(
    shared: &Shared,
    entry: Sent,
    frame: Vec<u8>,
    ack: Option<oneshot::Sender<()>>,
) -> Result<()> {
    send_now(shared, entry, frame, ack)
}

/// [`send`] for callers without a future (it never waits).
pub(crate) fn send_now(
    shared: &Shared,
    entry: Sent,
    frame: Vec<u8>,
    ack: Option<oneshot::Sender<()>>,
) -> Result<()> {
    if shared.proto.get() == Some(Protocol::Jan2026) {
        return shared.send_frame(frame, ack);
    }
    let _order = shared.proto.order.lock().unwrap_or_else(|e| e.into_inner());
    shared.proto.sent().push(entry);
    shared.send_frame(frame, ack)
}

/// The automatic-detection probe (§12): `auth_identify` as the connection's first frame. Its
/// corr_id is taken from the pending map and released at once, so it is never reused soon
/// and its answer is simply a stray reply.
pub(crate) async fn send_probe(shared: &Shared, identity: &str) -> Result<()> {
    let (id, rx) = shared.pending.register(super::pending::Expect::Response)?;
    drop(rx);
    shared.pending.remove(id);
    let frame = wire05::encode_client(&wire05::ClientMessage::AuthIdentify {
        corr_id: id,
        username: identity,
    });
    send(shared, Sent::Request(id), frame, None).await
}

/// The WebSocket upgrade request: on 0.5 (or when detecting) the path `/v1/ws` is used when
/// the URL has none, and `x-pie-identity` is sent. A forced January-2026 connection uses the
/// URL as given.
pub(crate) fn handshake_request(
    url: &str,
    config: &ClientConfig,
) -> Result<tungstenite::handshake::client::Request> {
    use tungstenite::client::IntoClientRequest;
    let bad = |why: String| {
        Error::new(
            ErrorKind::InvalidArgument,
            format!("invalid server URL '{url}': {why}"),
        )
    };
    if config.protocol == Some(Protocol::Jan2026) {
        return url.into_client_request().map_err(|e| bad(e.to_string()));
    }
    if config.identity.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "identity: must not be empty (a Pie 0.5 server refuses the connection without it)",
        ));
    }
    let with_path = default_path(url);
    let mut req = with_path
        .as_str()
        .into_client_request()
        .map_err(|e| bad(e.to_string()))?;
    let value = tungstenite::http::HeaderValue::from_str(&config.identity).map_err(|_| {
        Error::new(
            ErrorKind::InvalidArgument,
            format!(
                "identity: '{}' cannot be sent as an HTTP header value (control characters?)",
                config.identity
            ),
        )
    })?;
    req.headers_mut().insert(wire05::IDENTITY_HEADER, value);
    Ok(req)
}

/// `ws://host:port` and `ws://host:port/` get the 0.5 path; any other path is kept (e.g. a
/// proxy's own path).
fn default_path(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let cut = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(cut);
    let tail = tail.strip_prefix('/').map_or(tail, |t| t);
    let path_is_empty = tail.is_empty() || tail.starts_with(['?', '#']);
    if path_is_empty {
        format!(
            "{}{}{}{}",
            &url[..scheme_end + 3],
            authority,
            wire05::WS_PATH,
            tail
        )
    } else {
        url.to_string()
    }
}

/// A failed upgrade, with what a 0.5 server means by 401/404 (§1).
pub(crate) fn handshake_error(url: &str, e: &tungstenite::Error) -> Option<Error> {
    let tungstenite::Error::Http(resp) = e else {
        return None;
    };
    let hint = match resp.status().as_u16() {
        401 => "the server wants an x-pie-identity header (Pie 0.5): set a non-empty identity",
        404 => {
            "a Pie 0.5 server serves the protocol only on the path /v1/ws: give the URL \
                without a path (ws://host:port) or with /v1/ws"
        }
        _ => return None,
    };
    Some(Error::new(
        ErrorKind::ConnectionFailed,
        format!(
            "cannot connect to {url}: HTTP {} instead of a WebSocket upgrade; {hint}",
            resp.status()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_path_is_added_only_when_there_is_none() {
        assert_eq!(default_path("ws://h:1"), "ws://h:1/v1/ws");
        assert_eq!(default_path("ws://h:1/"), "ws://h:1/v1/ws");
        assert_eq!(default_path("ws://h:1?x=1"), "ws://h:1/v1/ws?x=1");
        assert_eq!(default_path("ws://h:1/v1/ws"), "ws://h:1/v1/ws");
        assert_eq!(default_path("wss://h/pie/v1/ws"), "wss://h/pie/v1/ws");
        assert_eq!(default_path("ws://[::1]:9"), "ws://[::1]:9/v1/ws");
    }

    #[test]
    fn sent_log_attributes_only_what_is_certain() {
        let mut log = SentLog::default();
        log.push(Sent::Request(1));
        log.push(Sent::Request(2));
        log.push(Sent::Forget);
        log.push(Sent::Request(3));
        log.answered(1);
        assert_eq!(log.errored(), Some(2));
        // A fire-and-forget frame at the head: not attributable.
        assert_eq!(log.errored(), None);
        assert_eq!(log.errored(), Some(3));
        assert_eq!(log.errored(), None);
        // Chunks of one upload share a corr_id: the answer retires all of them.
        for _ in 0..3 {
            log.push(Sent::Request(7));
        }
        log.push(Sent::Request(8));
        log.answered(7);
        assert_eq!(log.errored(), Some(8));
        // Overflow makes the head unsure until the next response.
        for i in 0..(SENT_LOG_LIMIT as u32 + 1) {
            log.push(Sent::Request(100 + i));
        }
        assert_eq!(log.errored(), None);
        log.answered(200);
        assert_eq!(log.errored(), Some(201));
    }

    #[test]
    fn early_events_wait_for_their_route() {
        let mut r = Routes::new(0);
        let mut ev = Some(InstanceEvent::Stdout("early".into()));
        assert!(r.target("p", &mut ev).is_none());
        assert!(ev.is_none(), "kept as an orphan");
        let q = r.register("p");
        assert_eq!(
            q.try_pop().unwrap(),
            Some(InstanceEvent::Stdout("early".into()))
        );
        // A process that ended before its route existed gets no lasting route.
        let mut end = Some(InstanceEvent::Completed("5".into()));
        assert!(r.target("fast", &mut end).is_none());
        let q2 = r.register("fast");
        assert_eq!(
            q2.try_pop().unwrap(),
            Some(InstanceEvent::Completed("5".into()))
        );
        assert!(r.queue("fast").is_none());
        assert_eq!(r.len(), 1);
        // Orphans are bounded by count.
        for i in 0..(ORPHAN_IDS + 10) {
            let mut e = Some(InstanceEvent::Stdout("x".into()));
            r.target(&format!("id{i}"), &mut e);
        }
        assert!(r.orphans.len() <= ORPHAN_IDS);
    }
}
