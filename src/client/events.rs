//! Instance events and the per-instance event queue.
//!
//! The queue is filled by the connection's reader task and drained by the user (async `recv`,
//! non-blocking `try_recv`). The reader never waits on a consumer: the queue is unbounded in
//! count but bounded in payload bytes; beyond the limit non-terminal events are dropped and an
//! `Overflow` marker takes their place. One short std mutex per queue: the reader and the
//! consumers of *one* instance are the only parties touching it, so there is no shared hot lock.

use crate::error::{Error, ErrorKind, Result};
use crate::wire::event_code;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;

/// One event of an instance, in server order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstanceEvent {
    /// Code 0: a text message the instance sent to its client.
    Message(String),
    /// Code 1 (terminal): the program returned; its return value.
    Completed(String),
    /// Code 2 (terminal): terminated by `terminate_instance`.
    Aborted(String),
    /// Code 3 (terminal): the program failed.
    Exception(String),
    /// Code 4 (terminal): killed by the engine (out of memory).
    ServerError(String),
    /// Code 5 (terminal): never sent by the January-2026 server.
    OutOfResources(String),
    /// A complete binary blob from the instance (reassembled and blake3-verified).
    Blob(Vec<u8>),
    /// Pie 0.5: a file the process sent with a name (`send-file-as` and friends; a file
    /// without a name is a `Blob`). The name is the inferlet's suggestion: sanitise it before
    /// using it as a path.
    NamedBlob { data: Vec<u8>, name: String },
    /// A piece of the instance's stdout (one write; not necessarily a line).
    Stdout(String),
    /// A piece of the instance's stderr.
    Stderr(String),
    /// An event code this client does not know (never sent by the January-2026 server). Terminal.
    Unknown { code: u32, message: String },
    /// The instance's queue reached `instance_queue_limit_bytes`; `dropped` non-terminal events
    /// were discarded at this point of the stream. Terminal events are never dropped.
    Overflow { dropped: u64 },
}

impl InstanceEvent {
    /// Whether this event ends the instance's stream (codes 1–5 and unknown codes).
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            InstanceEvent::Completed(_)
                | InstanceEvent::Aborted(_)
                | InstanceEvent::Exception(_)
                | InstanceEvent::ServerError(_)
                | InstanceEvent::OutOfResources(_)
                | InstanceEvent::Unknown { .. }
        )
    }

    /// The event for an `instance_event` code. Unknown codes are terminal: the server sends
    /// nothing after a terminal event and any future code would most plausibly be one (§7.5).
    pub(crate) fn from_code(code: u32, message: String) -> InstanceEvent {
        match code {
            event_code::MESSAGE => InstanceEvent::Message(message),
            event_code::COMPLETED => InstanceEvent::Completed(message),
            event_code::ABORTED => InstanceEvent::Aborted(message),
            event_code::EXCEPTION => InstanceEvent::Exception(message),
            event_code::SERVER_ERROR => InstanceEvent::ServerError(message),
            event_code::OUT_OF_RESOURCES => InstanceEvent::OutOfResources(message),
            code => InstanceEvent::Unknown { code, message },
        }
    }

    /// Bytes this event counts against the queue limit.
    fn payload_len(&self) -> usize {
        match self {
            InstanceEvent::Message(s)
            | InstanceEvent::Completed(s)
            | InstanceEvent::Aborted(s)
            | InstanceEvent::Exception(s)
            | InstanceEvent::ServerError(s)
            | InstanceEvent::OutOfResources(s)
            | InstanceEvent::Stdout(s)
            | InstanceEvent::Stderr(s)
            | InstanceEvent::Unknown { message: s, .. } => s.len(),
            InstanceEvent::Blob(b) => b.len(),
            InstanceEvent::NamedBlob { data, name } => data.len() + name.len(),
            InstanceEvent::Overflow { .. } => 0,
        }
    }
}

pub(crate) type NotifyFn = Arc<dyn Fn() + Send + Sync>;

struct State {
    events: VecDeque<InstanceEvent>,
    bytes: usize,
    /// The terminal event has been handed to a consumer: the stream is over.
    finished: bool,
    /// Why no more events will come (connection ended / client closed), once that happened.
    end: Option<Error>,
    hook: Option<NotifyFn>,
}

thread_local! {
    /// Queues whose consumers are still to be told about new events, while the connection's
    /// reader works through frames it already has (`defer_wakeups` .. `flush_wakeups`).
    static DEFERRED: RefCell<Option<Vec<Arc<EventQueue>>>> = const { RefCell::new(None) };
}

/// From now on (on this thread) events queued only mark their queue; `flush_wakeups` wakes
/// each marked queue's consumer once. The reader calls this while it takes frames that are
/// already buffered, so a batch of events costs the consumer one wake-up, not one per event.
/// Idempotent.
pub(crate) fn defer_wakeups() {
    DEFERRED.with(|d| {
        let mut d = d.borrow_mut();
        if d.is_none() {
            *d = Some(Vec::new());
        }
    });
}

/// Whether this thread defers wake-ups (the reader, between `defer_wakeups` and
/// `flush_wakeups`).
pub(crate) fn deferring() -> bool {
    DEFERRED.with(|d| d.borrow().is_some())
}

/// Wakes the consumers of the queues marked since `defer_wakeups` and ends the deferral. The
/// reader calls it before every wait, so no event waits on a wake-up that never comes.
pub(crate) fn flush_wakeups() {
    super::pending::flush_deferred_settles();
    let marked = DEFERRED.with(|d| d.borrow_mut().take());
    for queue in marked.into_iter().flatten() {
        queue.marked.store(false, Ordering::SeqCst);
        // Already drained by a consumer that looked without waiting: waking it, or marking the
        // instance ready (event fd), would only announce events that are gone.
        if queue.len() == 0 {
            continue;
        }
        queue.announce(true);
    }
}

pub(crate) struct EventQueue {
    state: Mutex<State>,
    wake: Notify,
    /// In this thread's deferred list (`defer_wakeups`).
    marked: AtomicBool,
    limit: usize,
    /// Set when the user dropped the `Instance`: the reader forgets the route on its next look.
    abandoned: AtomicBool,
}

impl EventQueue {
    pub(crate) fn new(limit_bytes: usize) -> Arc<EventQueue> {
        Arc::new(EventQueue {
            state: Mutex::new(State {
                events: VecDeque::new(),
                bytes: 0,
                finished: false,
                end: None,
                hook: None,
            }),
            wake: Notify::new(),
            marked: AtomicBool::new(false),
            limit: if limit_bytes == 0 {
                usize::MAX
            } else {
                limit_bytes
            },
            abandoned: AtomicBool::new(false),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the state inconsistent in a way that
        // matters more than losing events, so recover from poisoning instead of panicking.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes consumers (all of them for a terminal event) and calls the hook, or leaves that to
    /// `flush_wakeups` when this thread defers wake-ups.
    fn announce(self: &Arc<Self>, everyone: bool) {
        let deferred = DEFERRED.with(|d| match d.borrow_mut().as_mut() {
            Some(list) => {
                if !self.marked.swap(true, Ordering::SeqCst) {
                    list.push(Arc::clone(self));
                }
                true
            }
            None => false,
        });
        if deferred {
            return;
        }
        if everyone {
            self.wake.notify_waiters();
        }
        self.wake.notify_one();
        let hook = self.lock().hook.clone();
        if let Some(h) = hook {
            h();
        }
    }

    /// Queue an event (reader task). Never blocks on the consumer.
    pub(crate) fn push(self: &Arc<Self>, event: InstanceEvent) {
        let terminal = event.is_terminal();
        {
            let mut st = self.lock();
            if st.end.is_some() || self.abandoned.load(Ordering::Relaxed) {
                return;
            }
            let len = event.payload_len();
            if !terminal && st.bytes.saturating_add(len) > self.limit {
                Self::note_drop(&mut st);
            } else {
                st.bytes += len;
                st.events.push_back(event);
            }
        }
        // A deferred flush wakes everyone: a terminal event may be in the batch.
        self.announce(terminal);
    }

    /// Record one dropped event: merge into an `Overflow` marker at the tail, or add one.
    fn note_drop(st: &mut State) {
        if let Some(InstanceEvent::Overflow { dropped }) = st.events.back_mut() {
            *dropped += 1;
        } else {
            st.events.push_back(InstanceEvent::Overflow { dropped: 1 });
        }
    }

    /// Whether `extra` more payload bytes would exceed the limit (used to cap blob reassembly).
    pub(crate) fn would_overflow(&self, extra: usize) -> bool {
        self.lock().bytes.saturating_add(extra) > self.limit
    }

    /// Count one event as dropped for lack of room (blob reassembly beyond the limit).
    pub(crate) fn push_dropped(self: &Arc<Self>) {
        {
            let mut st = self.lock();
            if st.end.is_some() {
                return;
            }
            Self::note_drop(&mut st);
        }
        self.announce(false);
    }

    /// No more events will arrive (connection ended or client closed): consumers get the
    /// queued events first, then `reason`.
    pub(crate) fn end(&self, reason: Error) {
        let hook = {
            let mut st = self.lock();
            if st.end.is_some() {
                return;
            }
            st.end = Some(reason);
            st.hook.clone()
        };
        self.wake.notify_waiters();
        self.wake.notify_one();
        if let Some(h) = hook {
            h();
        }
    }

    pub(crate) fn try_pop(&self) -> Result<Option<InstanceEvent>> {
        let mut st = self.lock();
        if let Some(ev) = st.events.pop_front() {
            st.bytes -= ev.payload_len();
            if ev.is_terminal() {
                st.finished = true;
                // Other consumers waiting on this instance must learn that the stream ended.
                drop(st);
                self.wake.notify_waiters();
            }
            return Ok(Some(ev));
        }
        if st.finished {
            return Err(Error::new(
                ErrorKind::StreamEnded,
                "the instance's event stream has ended (its terminal event was already received)",
            ));
        }
        match &st.end {
            Some(e) => Err(e.clone()),
            None => Ok(None),
        }
    }

    pub(crate) async fn pop(&self) -> Result<InstanceEvent> {
        loop {
            let notified = self.wake.notified();
            tokio::pin!(notified);
            // Register before looking, so an event queued in between still wakes us.
            notified.as_mut().enable();
            if let Some(ev) = self.try_pop()? {
                return Ok(ev);
            }
            notified.await;
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().events.len()
    }

    /// Whether `try_pop` would return something other than `Ok(None)`: an event is queued, or
    /// the stream has ended (terminal event received, or connection ended).
    pub(crate) fn has_news(&self) -> bool {
        let st = self.lock();
        !st.events.is_empty() || st.finished || st.end.is_some()
    }

    /// Install (or remove) the notification hook. If events are already queued or the stream
    /// has already ended, the new hook is called once right away (on the caller's thread):
    /// otherwise a consumer that installs it after the fact would wait for a wake-up that
    /// already happened.
    pub(crate) fn set_hook(&self, hook: Option<NotifyFn>) {
        let call_now = {
            let mut st = self.lock();
            st.hook = hook.clone();
            !st.events.is_empty() || st.end.is_some() || st.finished
        };
        if call_now {
            if let Some(h) = hook {
                h();
            }
        }
    }

    /// The owner is gone: free the buffer now; the reader drops the route when it next looks.
    pub(crate) fn abandon(&self) {
        self.abandoned.store(true, Ordering::Relaxed);
        let mut st = self.lock();
        st.events = VecDeque::new();
        st.bytes = 0;
        st.hook = None;
    }

    pub(crate) fn is_abandoned(&self) -> bool {
        self.abandoned.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_marker_merges_and_terminal_passes() {
        let q = EventQueue::new(10);
        q.push(InstanceEvent::Stdout("12345".into()));
        q.push(InstanceEvent::Stdout("123456".into())); // would exceed 10
        q.push(InstanceEvent::Stdout("123456".into()));
        q.push(InstanceEvent::Stdout("12345".into())); // fits exactly
        q.push(InstanceEvent::Completed("x".repeat(100)));
        let got: Vec<_> = (0..4).map(|_| q.try_pop().unwrap().unwrap()).collect();
        assert_eq!(
            got,
            vec![
                InstanceEvent::Stdout("12345".into()),
                InstanceEvent::Overflow { dropped: 2 },
                InstanceEvent::Stdout("12345".into()),
                InstanceEvent::Completed("x".repeat(100)),
            ]
        );
        assert_eq!(q.try_pop().unwrap_err().kind(), ErrorKind::StreamEnded);
    }

    #[test]
    fn end_delivers_buffered_first() {
        let q = EventQueue::new(0);
        q.push(InstanceEvent::Message("a".into()));
        q.end(Error::new(ErrorKind::ConnectionClosed, "gone"));
        q.push(InstanceEvent::Message("late".into()));
        assert_eq!(
            q.try_pop().unwrap(),
            Some(InstanceEvent::Message("a".into()))
        );
        assert_eq!(q.try_pop().unwrap_err().kind(), ErrorKind::ConnectionClosed);
    }

    #[test]
    fn hook_installed_late_is_called_once_for_what_is_there() {
        use std::sync::atomic::AtomicUsize;
        let q = EventQueue::new(0);
        let hits = Arc::new(AtomicUsize::new(0));
        let h = hits.clone();
        let hook: NotifyFn = Arc::new(move || {
            h.fetch_add(1, Ordering::SeqCst);
        });
        q.set_hook(Some(hook.clone()));
        assert_eq!(hits.load(Ordering::SeqCst), 0);
        q.end(Error::new(ErrorKind::ConnectionClosed, "gone"));
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        q.set_hook(Some(hook));
        assert_eq!(hits.load(Ordering::SeqCst), 2);
        q.set_hook(None);
        assert_eq!(hits.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn unknown_codes_are_terminal() {
        let e = InstanceEvent::from_code(9, "x".into());
        assert_eq!(
            e,
            InstanceEvent::Unknown {
                code: 9,
                message: "x".into()
            }
        );
        assert!(e.is_terminal());
        assert!(!InstanceEvent::from_code(0, String::new()).is_terminal());
    }
}
