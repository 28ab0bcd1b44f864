//! Correlation of requests and replies.
//!
//! Ids come from a counter that increments and wraps at 2^32, skipping ids still pending. It
//! never hands out a recently released id soon again, so stray extra replies (a failed
//! multi-chunk upload answers every remaining chunk with the same corr_id, Q7) cannot be taken
//! for the reply to a later request; they find no pending entry and are ignored.

use super::events::EventQueue;
use crate::error::{Error, ErrorKind, Result};
use crate::log::Level;
use crate::pie_log;
use crate::wire::InstanceInfo;
use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, Notify};

/// What kind of reply a pending request waits for.
#[derive(Debug, Clone)]
pub(crate) enum Expect {
    Response,
    /// A `response` whose result is read only if it failed (a ping's).
    Ack,
    /// `instance_launch_result`; attached launches get an event queue from the reader.
    Launch {
        detached: bool,
    },
    /// `instance_attach_result` for this (normalised) id.
    Attach {
        id: String,
    },
    /// `live_instances`.
    List,
}

impl Expect {
    pub(crate) fn wire_name(&self) -> &'static str {
        match self {
            Expect::Response | Expect::Ack => "response",
            Expect::Launch { .. } => "instance_launch_result",
            Expect::Attach { .. } => "instance_attach_result",
            Expect::List => "live_instances",
        }
    }
}

/// A reply as handed to the waiting caller.
pub(crate) enum Reply {
    Response {
        successful: bool,
        result: String,
    },
    /// Launch or attach result. `queue` is set for successful attached launches and attaches:
    /// the reader created it (and its route) before decoding the next frame (§13).
    Instance {
        successful: bool,
        message: String,
        id: String,
        queue: Option<QueueHandoff>,
    },
    List(Vec<InstanceInfo>),
}

/// A freshly routed event queue on its way from the reader to the caller. If the caller is
/// gone before taking it (cancelled after the reply arrived), dropping it abandons the queue
/// and tells the reader to forget the route, so no unread events pile up.
pub(crate) struct QueueHandoff {
    queue: Option<Arc<EventQueue>>,
    id: String,
    forget: mpsc::UnboundedSender<String>,
}

impl QueueHandoff {
    pub(crate) fn new(
        queue: Arc<EventQueue>,
        id: String,
        forget: mpsc::UnboundedSender<String>,
    ) -> QueueHandoff {
        QueueHandoff {
            queue: Some(queue),
            id,
            forget,
        }
    }

    pub(crate) fn take(mut self) -> Option<Arc<EventQueue>> {
        self.queue.take()
    }
}

impl Drop for QueueHandoff {
    fn drop(&mut self) {
        if let Some(q) = self.queue.take() {
            q.abandon();
            let _ = self.forget.send(std::mem::take(&mut self.id));
        }
    }
}

/// Called with the reply of a request started without a future (`Client::start_request`).
pub(crate) enum ReplyFn {
    Boxed(Box<dyn FnOnce(Result<Reply>) + Send>),
    /// No allocation per request: see [`WeakReply`].
    Weak(WeakReply),
}

/// A receiver held weakly (gone: the reply is ignored) and the plain function that hands it
/// the reply. Dropped without being called (a libpie bug, or the request forgotten), it
/// settles the receiver with an error rather than leave it waiting forever.
pub(crate) struct WeakReply {
    to: Option<Weak<dyn Any + Send + Sync>>,
    call: fn(Arc<dyn Any + Send + Sync>, Result<Reply>),
}

impl WeakReply {
    pub(crate) fn new(
        to: Weak<dyn Any + Send + Sync>,
        call: fn(Arc<dyn Any + Send + Sync>, Result<Reply>),
    ) -> WeakReply {
        WeakReply { to: Some(to), call }
    }

    fn call(mut self, outcome: Result<Reply>) {
        if let Some(to) = self.to.take().and_then(|to| to.upgrade()) {
            (self.call)(to, outcome);
        }
    }
}

impl Drop for WeakReply {
    fn drop(&mut self) {
        if let Some(to) = self.to.take().and_then(|to| to.upgrade()) {
            let lost = Error::new(
                ErrorKind::Internal,
                "libpie lost track of the operation (a bug)",
            );
            (self.call)(to, Err(lost));
        }
    }
}

impl ReplyFn {
    /// Hands `outcome` over (once).
    pub(crate) fn call(self, outcome: Result<Reply>) {
        match self {
            ReplyFn::Boxed(done) => done(outcome),
            ReplyFn::Weak(to) => to.call(outcome),
        }
    }
}

/// Where a reply goes.
pub(crate) enum ReplyTo {
    /// A future awaiting it; the future bounds the wait itself.
    Task(oneshot::Sender<Result<Reply>>),
    /// A function, called once on whichever thread settles the request: the reader with the
    /// reply, the deadline sweep with a timeout, or the end of the connection.
    Call {
        done: ReplyFn,
        deadline: Instant,
        timeout: Duration,
        what: &'static str,
    },
}

pub(crate) struct Pending {
    pub(crate) expect: Expect,
    pub(crate) to: ReplyTo,
}

thread_local! {
    /// Replies for `ReplyTo::Call` requests held back while the reader defers wake-ups
    /// (`events::defer_wakeups`): a host thread waiting for one of them is woken once per run
    /// of frames, and then finds the others of the run settled too, instead of being woken
    /// for one and going back to sleep for the next.
    static DEFERRED_SETTLES: RefCell<Vec<(ReplyFn, Result<Reply>)>> = const { RefCell::new(Vec::new()) };
}

thread_local! {
    /// True while this thread settles a run of held replies (`flush_deferred_settles`).
    static SETTLING_RUN: Cell<bool> = const { Cell::new(false) };
}

thread_local! {
    /// Told once a run of held replies is settled on this thread (see [`on_run_settled`]).
    static RUN_SETTLED: Cell<Option<fn()>> = const { Cell::new(None) };
}

/// Registers the function called on this thread after each run of held replies it settles. A
/// layer that defers its own wake-ups while a run is settled ([`settling_run`]) delivers them
/// there: a thread waiting for one reply of the run then wakes once, to find the whole run
/// settled, instead of waking for one reply, finding the next one not settled yet and sleeping
/// again. Called from inside the run (by the first settle function that defers something).
pub(crate) fn on_run_settled(hook: fn()) {
    RUN_SETTLED.set(Some(hook));
}

/// Whether this thread is settling a run of held replies right now.
pub(crate) fn settling_run() -> bool {
    SETTLING_RUN.get()
}

/// Marks this thread as settling a run of replies; dropped (also when a settle function
/// panics), it ends the run and tells the registered hook, so no deferred wake-up is lost.
struct SettlingRun;

impl SettlingRun {
    fn begin() -> SettlingRun {
        SETTLING_RUN.set(true);
        SettlingRun
    }
}

impl Drop for SettlingRun {
    fn drop(&mut self) {
        SETTLING_RUN.set(false);
        if let Some(hook) = RUN_SETTLED.get() {
            hook();
        }
    }
}

/// Settles the replies held back on this thread (called by `events::flush_wakeups`).
pub(crate) fn flush_deferred_settles() {
    loop {
        let mut held = DEFERRED_SETTLES.with(|d| std::mem::take(&mut *d.borrow_mut()));
        if held.is_empty() {
            return;
        }
        let run = SettlingRun::begin();
        for (done, outcome) in held.drain(..) {
            done.call(outcome);
        }
        drop(run);
        // The emptied buffer goes back for the next run (no regrowing it run after run),
        // unless settling held new replies meanwhile.
        DEFERRED_SETTLES.with(|d| {
            let mut d = d.borrow_mut();
            if d.is_empty() {
                *d = held;
            }
        });
    }
}

impl Pending {
    /// Hands the outcome to whoever waits for it.
    pub(crate) fn settle(self, outcome: Result<Reply>) {
        match self.to {
            // The caller may be gone (timed out, cancelled): nothing to do then.
            ReplyTo::Task(tx) => {
                let _ = tx.send(outcome);
            }
            ReplyTo::Call { done, .. } if super::events::deferring() => {
                DEFERRED_SETTLES.with(|d| d.borrow_mut().push((done, outcome)));
            }
            ReplyTo::Call { done, .. } => done.call(outcome),
        }
    }

    fn deadline(&self) -> Option<Instant> {
        match &self.to {
            ReplyTo::Task(_) => None,
            ReplyTo::Call { deadline, .. } => Some(*deadline),
        }
    }
}

/// Hashes request ids with one multiplication instead of SipHash (a measurable share of each
/// request's cost). The keys are ids this client hands out, so no peer can choose them to
/// collide; a hostile reply's corr_id only costs one lookup.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(ID_MULTIPLIER);
        }
    }
    fn write_u32(&mut self, id: u32) {
        // Odd multiplier: a bijection, so consecutive ids never collide.
        self.0 = u64::from(id).wrapping_mul(ID_MULTIPLIER);
    }
}

/// 2^64 divided by the golden ratio, rounded to odd (Fibonacci hashing).
const ID_MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;

type IdMap<V> = HashMap<u32, V, BuildHasherDefault<IdHasher>>;

struct Inner {
    map: IdMap<Pending>,
    next: u32,
    /// Set once the connection has ended: no new registrations.
    closed: Option<Error>,
    /// When the deadline sweep wakes next (`None`: it waits for a deadline to appear).
    sweep_at: Option<Instant>,
}

pub(crate) struct PendingMap {
    inner: Mutex<Inner>,
    /// The reader is napping during a flood of output (`begin_nap`): a new request ends the
    /// nap at once through `nap_end`, so its reply is never held back.
    napping: AtomicBool,
    nap_end: Notify,
    /// Wakes the deadline sweep (`sweep_task`) for a deadline earlier than its next wake-up.
    sweep_wake: Notify,
    /// Entries taken so far (replies, mostly): the reader's pacer tells request traffic from
    /// a flood of output by it.
    taken: AtomicU64,
}

impl PendingMap {
    pub(crate) fn new() -> PendingMap {
        PendingMap {
            inner: Mutex::new(Inner {
                map: IdMap::default(),
                next: 1,
                closed: None,
                sweep_at: None,
            }),
            napping: AtomicBool::new(false),
            nap_end: Notify::new(),
            sweep_wake: Notify::new(),
            taken: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Allocate an id and register its pending entry (before anything is sent); the reply
    /// arrives through the returned channel.
    pub(crate) fn register(
        &self,
        expect: Expect,
    ) -> Result<(u32, oneshot::Receiver<Result<Reply>>)> {
        let (tx, rx) = oneshot::channel();
        let id = self.insert(expect, ReplyTo::Task(tx)).map_err(|(e, _)| e)?;
        Ok((id, rx))
    }

    /// Registers a request whose reply goes to `done`, failed with a timeout at `deadline` by
    /// the deadline sweep. No timer per request: the sweep is woken only when this deadline is
    /// earlier than its next wake-up (rare: deadlines arrive in order when timeouts are equal).
    /// `None`: the connection has ended, and `done` was called with the reason.
    pub(crate) fn register_call(
        &self,
        expect: Expect,
        what: &'static str,
        timeout: Duration,
        done: ReplyFn,
    ) -> Option<u32> {
        let deadline = Instant::now() + timeout;
        let to = ReplyTo::Call {
            done,
            deadline,
            timeout,
            what,
        };
        match self.insert(expect.clone(), to) {
            Ok(id) => Some(id),
            Err((e, to)) => {
                Pending { expect, to }.settle(Err(e));
                None
            }
        }
    }

    /// Gives `to` back with the error if the connection has ended.
    fn insert(&self, expect: Expect, to: ReplyTo) -> std::result::Result<u32, (Error, ReplyTo)> {
        let mut inner = self.lock();
        if let Some(e) = &inner.closed {
            return Err((e.clone(), to));
        }
        let mut id = inner.next;
        // Terminates: the map can never hold all 2^32 ids (memory), so a free id exists.
        while inner.map.contains_key(&id) {
            id = id.wrapping_add(1);
        }
        inner.next = id.wrapping_add(1);
        let pending = Pending { expect, to };
        let wake_sweep = pending
            .deadline()
            .is_some_and(|d| inner.sweep_at.map_or(true, |at| d < at));
        if wake_sweep {
            // Claimed here so that a burst of registrations wakes the sweep once.
            inner.sweep_at = pending.deadline();
        }
        inner.map.insert(id, pending);
        drop(inner);
        if wake_sweep {
            self.sweep_wake.notify_one();
        }
        // Inserted before looking: either the reader's `begin_nap` sees this entry, or this
        // sees its flag.
        if self.napping.load(Ordering::SeqCst) {
            self.nap_end.notify_one();
        }
        Ok(id)
    }

    /// Fails the requests whose deadline has passed and returns when to look next (`None`:
    /// no deadline left, `Err`: the connection has ended).
    fn sweep(&self, now: Instant) -> std::result::Result<Option<Instant>, ()> {
        let mut expired = Vec::new();
        let next = {
            let mut inner = self.lock();
            if inner.closed.is_some() {
                return Err(());
            }
            let due: Vec<u32> = inner
                .map
                .iter()
                .filter(|(_, p)| p.deadline().is_some_and(|d| d <= now))
                .map(|(id, _)| *id)
                .collect();
            for id in due {
                if let Some(p) = inner.map.remove(&id) {
                    expired.push((id, p));
                }
            }
            let next = inner.map.values().filter_map(Pending::deadline).min();
            inner.sweep_at = next;
            next
        };
        for (id, p) in expired {
            let ReplyTo::Call { timeout, what, .. } = &p.to else {
                continue;
            };
            pie_log!(
                Level::Warn,
                "pie::protocol",
                "request {id} ({what}): no reply within {timeout:?}; a late reply will be ignored"
            );
            let e = Error::new(
                ErrorKind::Timeout,
                format!("{what}: no reply within {timeout:?}"),
            );
            p.settle(Err(e));
        }
        Ok(next)
    }

    /// The reader wants to nap: true (and napping) only if no request waits for its reply.
    pub(crate) fn begin_nap(&self) -> bool {
        self.napping.store(true, Ordering::SeqCst);
        if self.lock().map.is_empty() {
            return true;
        }
        self.napping.store(false, Ordering::SeqCst);
        false
    }

    /// Resolves when a request is registered during the nap.
    pub(crate) fn nap_interrupted(&self) -> tokio::sync::futures::Notified<'_> {
        self.nap_end.notified()
    }

    pub(crate) fn end_nap(&self) {
        self.napping.store(false, Ordering::SeqCst);
    }

    /// Take the entry for a reply (reader). `None`: not pending (stray or timed-out reply).
    pub(crate) fn take(&self, id: u32) -> Option<Pending> {
        let taken = self.lock().map.remove(&id);
        if taken.is_some() {
            self.taken.fetch_add(1, Ordering::Relaxed);
        }
        taken
    }

    /// How many entries `take` has handed out so far.
    pub(crate) fn taken(&self) -> u64 {
        self.taken.load(Ordering::Relaxed)
    }

    /// Forget an entry (timeout / cancellation). A no-op if the reply already took it.
    pub(crate) fn remove(&self, id: u32) {
        self.lock().map.remove(&id);
    }

    /// The connection ended: fail every pending call with `reason`, refuse new ones.
    pub(crate) fn close_all(&self, reason: Error) {
        let drained: Vec<Pending> = {
            let mut inner = self.lock();
            if inner.closed.is_none() {
                inner.closed = Some(reason.clone());
            }
            inner.map.drain().map(|(_, p)| p).collect()
        };
        self.sweep_wake.notify_one();
        for p in drained {
            p.settle(Err(reason.clone()));
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().map.len()
    }

    pub(crate) fn set_next(&self, next: u32) {
        self.lock().next = next;
    }
}

/// The deadline sweep of a connection: fails requests started by `register_call` whose
/// deadline passed, sleeping until the earliest one. Ends with the connection.
pub(crate) async fn sweep_task(shared: Arc<super::connection::Shared>) {
    sweep_loop(&shared.pending).await
}

async fn sweep_loop(pending: &PendingMap) {
    loop {
        let Ok(next) = pending.sweep(Instant::now()) else {
            return;
        };
        match next {
            Some(at) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(at.into()) => {}
                    _ = pending.sweep_wake.notified() => {}
                }
            }
            None => pending.sweep_wake.notified().await,
        }
    }
}

/// Removes a pending entry when the waiting call ends early (timeout, error, or its future is
/// dropped), so nothing is left behind. Disarmed once the reply channel resolved (the reader or
/// `close_all` already took the entry), which saves a lock per request.
pub(crate) struct PendingGuard<'a> {
    map: &'a PendingMap,
    id: u32,
    armed: bool,
}

impl<'a> PendingGuard<'a> {
    pub(crate) fn new(map: &'a PendingMap, id: u32) -> PendingGuard<'a> {
        PendingGuard {
            map,
            id,
            armed: true,
        }
    }

    pub(crate) fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.map.remove(self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_of_replies_is_settled_whole_before_its_end_is_announced() {
        thread_local! {
            static SEEN: RefCell<Vec<&'static str>> = const { RefCell::new(Vec::new()) };
        }
        fn seen(what: &'static str) {
            SEEN.with(|s| s.borrow_mut().push(what));
        }
        fn run_ended() {
            seen("run ended");
        }
        super::super::events::defer_wakeups();
        for _ in 0..3 {
            let done = ReplyFn::Boxed(Box::new(|_| {
                on_run_settled(run_ended);
                seen(if settling_run() {
                    "settled in the run"
                } else {
                    "settled alone"
                });
            }));
            let to = ReplyTo::Call {
                done,
                deadline: Instant::now(),
                timeout: Duration::from_secs(1),
                what: "ping",
            };
            let reply = Reply::Response {
                successful: true,
                result: String::new(),
            };
            Pending {
                expect: Expect::Ack,
                to,
            }
            .settle(Ok(reply));
        }
        assert!(SEEN.with(|s| s.borrow().is_empty()), "held while deferring");
        super::super::events::flush_wakeups();
        let expected = [
            "settled in the run",
            "settled in the run",
            "settled in the run",
            "run ended",
        ];
        assert_eq!(SEEN.with(|s| s.borrow().clone()), expected);
        assert!(!settling_run());
    }

    /// A `register_call` whose reply goes to a channel.
    fn call(
        m: &PendingMap,
        timeout_ms: u64,
    ) -> (u32, std::sync::mpsc::Receiver<(Result<Reply>, Instant)>) {
        let (tx, rx) = std::sync::mpsc::channel();
        let done = ReplyFn::Boxed(Box::new(move |r| {
            let _ = tx.send((r, Instant::now()));
        }));
        let id = m
            .register_call(
                Expect::Response,
                "ping",
                Duration::from_millis(timeout_ms),
                done,
            )
            .expect("registered");
        (id, rx)
    }

    /// The sweep fails each request at its own deadline, also one registered after (and
    /// expiring before) a far one, and settles nothing early.
    #[test]
    fn deadline_sweep_times_out_each_request_at_its_deadline() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let m = Arc::new(PendingMap::new());
        let sweeping = Arc::clone(&m);
        let sweep = std::thread::spawn(move || rt.block_on(sweep_loop(&sweeping)));
        let start = Instant::now();
        let (_far_id, far) = call(&m, 60_000);
        let (_, near) = call(&m, 150);
        let (outcome, at) = near.recv_timeout(Duration::from_secs(5)).expect("settled");
        let e = outcome.err().expect("a timeout");
        assert_eq!(e.kind(), ErrorKind::Timeout);
        assert_eq!(e.message(), "ping: no reply within 150ms");
        let after = at.duration_since(start);
        assert!(after >= Duration::from_millis(150), "early: {after:?}");
        assert!(after < Duration::from_millis(1500), "late: {after:?}");
        assert!(far.try_recv().is_err(), "the far one is still pending");
        assert_eq!(m.len(), 1);
        // A reply in time settles it with the reply, once.
        let (id, rx) = call(&m, 60_000);
        m.take(id).unwrap().settle(Ok(Reply::Response {
            successful: true,
            result: "pong".into(),
        }));
        assert!(matches!(
            rx.recv().unwrap().0,
            Ok(Reply::Response {
                successful: true,
                ..
            })
        ));
        // The end of the connection settles the rest and stops the sweep.
        m.close_all(Error::new(ErrorKind::ConnectionClosed, "gone"));
        let (outcome, _) = far.recv_timeout(Duration::from_secs(5)).expect("settled");
        assert_eq!(outcome.err().unwrap().kind(), ErrorKind::ConnectionClosed);
        sweep.join().unwrap();
        // Registering after the end settles at once with the reason.
        let (tx, rx) = std::sync::mpsc::channel();
        let done = ReplyFn::Boxed(Box::new(move |r| {
            let _ = tx.send(r);
        }));
        assert!(m
            .register_call(Expect::Response, "ping", Duration::from_secs(1), done)
            .is_none());
        assert_eq!(
            rx.try_recv().unwrap().err().unwrap().kind(),
            ErrorKind::ConnectionClosed
        );
    }

    /// While the reader defers wake-ups, replies to calls are held and settled, in order, by
    /// `flush_wakeups`; outside a deferral they are settled at once.
    #[test]
    fn replies_are_held_while_the_reader_defers_wakeups() {
        let m = PendingMap::new();
        let (a, ra) = call(&m, 60_000);
        let (b, rb) = call(&m, 60_000);
        let pong = || {
            Ok(Reply::Response {
                successful: true,
                result: String::new(),
            })
        };
        super::super::events::defer_wakeups();
        m.take(a).unwrap().settle(pong());
        m.take(b).unwrap().settle(pong());
        assert!(ra.try_recv().is_err() && rb.try_recv().is_err());
        super::super::events::flush_wakeups();
        let (ta, tb) = (ra.try_recv().unwrap().1, rb.try_recv().unwrap().1);
        assert!(ta <= tb);
        let (c, rc) = call(&m, 60_000);
        m.take(c).unwrap().settle(pong());
        assert!(rc.try_recv().is_ok());
    }

    #[test]
    fn ids_wrap_and_skip_pending() {
        let m = PendingMap::new();
        m.set_next(u32::MAX - 1);
        let (a, _ra) = m.register(Expect::Response).unwrap();
        let (b, _rb) = m.register(Expect::Response).unwrap();
        let (c, _rc) = m.register(Expect::Response).unwrap();
        assert_eq!((a, b, c), (u32::MAX - 1, u32::MAX, 0));
        // u32::MAX - 1 is still pending: wrapping onto it must skip it.
        m.set_next(u32::MAX - 1);
        let (d, _rd) = m.register(Expect::Response).unwrap();
        assert_eq!(d, 1);
        m.remove(a);
        assert_eq!(m.len(), 3);
    }
}
