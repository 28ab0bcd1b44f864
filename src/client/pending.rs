//! Correlation of requests and replies.
//!
//! Ids come from a counter that increments and wraps at 2^32, skipping ids still pending. It
//! never hands out a recently released id soon again, so stray extra replies (a failed
//! multi-chunk upload answers every remaining chunk with the same corr_id, Q7) cannot be taken
//! for the reply to a later request; they find no pending entry and are ignored.

use super::events::EventQueue;
use crate::error::{Error, Result};
use crate::wire::InstanceInfo;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{mpsc, oneshot, Notify};

/// What kind of reply a pending request waits for.
#[derive(Debug, Clone)]
pub(crate) enum Expect {
    Response,
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
            Expect::Response => "response",
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

pub(crate) struct Pending {
    pub(crate) expect: Expect,
    pub(crate) tx: oneshot::Sender<Result<Reply>>,
}

struct Inner {
    map: HashMap<u32, Pending>,
    next: u32,
    /// Set once the connection has ended: no new registrations.
    closed: Option<Error>,
}

pub(crate) struct PendingMap {
    inner: Mutex<Inner>,
    /// The reader is napping during a flood of output (`begin_nap`): a new request ends the
    /// nap at once through `nap_end`, so its reply is never held back.
    napping: AtomicBool,
    nap_end: Notify,
}

impl PendingMap {
    pub(crate) fn new() -> PendingMap {
        PendingMap {
            inner: Mutex::new(Inner {
                map: HashMap::new(),
                next: 1,
                closed: None,
            }),
            napping: AtomicBool::new(false),
            nap_end: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Allocate an id and register its pending entry (before anything is sent).
    pub(crate) fn register(
        &self,
        expect: Expect,
    ) -> Result<(u32, oneshot::Receiver<Result<Reply>>)> {
        let mut inner = self.lock();
        if let Some(e) = &inner.closed {
            return Err(e.clone());
        }
        let mut id = inner.next;
        // Terminates: the map can never hold all 2^32 ids (memory), so a free id exists.
        while inner.map.contains_key(&id) {
            id = id.wrapping_add(1);
        }
        inner.next = id.wrapping_add(1);
        let (tx, rx) = oneshot::channel();
        inner.map.insert(id, Pending { expect, tx });
        drop(inner);
        // Inserted before looking: either the reader's `begin_nap` sees this entry, or this
        // sees its flag.
        if self.napping.load(Ordering::SeqCst) {
            self.nap_end.notify_one();
        }
        Ok((id, rx))
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
        self.lock().map.remove(&id)
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
        for p in drained {
            let _ = p.tx.send(Err(reason.clone()));
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().map.len()
    }

    pub(crate) fn set_next(&self, next: u32) {
        self.lock().next = next;
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
