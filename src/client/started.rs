//! Requests started without a future, for callers that are not async (the C API).
//!
//! A future-based call costs a task or a poll loop, a oneshot channel and a tokio timer per
//! request; each timer armed from a host thread may also wake the runtime's driver. Here the
//! reply goes straight from the reader to a function, and the timeout is a deadline in the
//! pending entry, enforced by the connection's deadline sweep (`pending::sweep_task`). The
//! outcome is the same as the async call's: same frames, same errors, same log lines.

use super::pending::{Expect, Reply, ReplyFn, WeakReply};
use super::v05::{self, Protocol, Sent};
use super::Client;
use crate::error::{Error, ErrorKind, Result};
use crate::wire::{self, ClientMessage};
use crate::wire05;
use std::any::Any;
use std::sync::{Arc, Weak};
use tokio::sync::oneshot;

/// A request started by [`Client::start_ping`] and friends, to forget if its caller gives up.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Started(u32);

impl Client {
    /// Sends a request (`expect`: what its reply is) and hands the reply (or the failure) to
    /// `done` exactly once: on this thread if it fails before anything is sent, otherwise on
    /// the thread that settles it. `None`: nothing is pending any more.
    fn start_request(
        &self,
        expect: Expect,
        what: &'static str,
        make: impl FnOnce(u32) -> Vec<u8>,
        done: ReplyFn,
    ) -> Option<Started> {
        if let Err(e) = self.check_open() {
            done.call(Err(e));
            return None;
        }
        let shared = self.shared();
        let timeout = self.config().request_timeout;
        let id = shared.pending.register_call(expect, what, timeout, done)?;
        if let Err(e) = v05::send_now(shared, Sent::Request(id), make(id), None) {
            // Unless the reader settled it meanwhile (the connection ended), it is ours.
            if let Some(p) = shared.pending.take(id) {
                p.settle(Err(e));
            }
            return None;
        }
        Some(Started(id))
    }

    /// The request's caller gave up: its entry goes, and a late reply is ignored.
    pub(crate) fn forget_request(&self, started: Started) {
        self.shared().pending.remove(started.0);
    }

    /// [`ping`](Client::ping) without a future, once the protocol is known (`Err(done)`
    /// before: use `ping`, which also settles the detection).
    pub(crate) fn start_ping<D>(&self, done: D) -> std::result::Result<Option<Started>, D>
    where
        D: FnOnce(Result<()>) + Send + 'static,
    {
        match self.protocol() {
            Some(protocol) => Ok(self.start_ping_as(protocol, done)),
            None => Err(done),
        }
    }

    /// A ping in `protocol`'s encoding (both answer with a `response`).
    pub(crate) fn start_ping_as(
        &self,
        protocol: Protocol,
        done: impl FnOnce(Result<()>) + Send + 'static,
    ) -> Option<Started> {
        let on_reply = Box::new(move |reply: Result<Reply>| done(ping_outcome(reply)));
        self.start_request(
            Expect::Ack,
            "ping",
            ping_frame(protocol),
            ReplyFn::Boxed(on_reply),
        )
    }

    /// [`start_ping`](Self::start_ping) for a receiver held weakly: no allocation per ping.
    /// The outcome goes to `to` unless it is gone by then. `Err`: the protocol is not known
    /// yet (use `ping`).
    pub(crate) fn start_ping_to<S: Settles<()>>(
        &self,
        to: &Arc<S>,
    ) -> std::result::Result<Option<Started>, ()> {
        let protocol = self.protocol().ok_or(())?;
        let weak = Arc::downgrade(to) as Weak<dyn Any + Send + Sync>;
        let done = ReplyFn::Weak(WeakReply::new(weak, settle_ping::<S>));
        Ok(self.start_request(Expect::Ack, "ping", ping_frame(protocol), done))
    }

    /// Awaits a request started without a future by `start`, which gets the function to
    /// settle it with. Dropping the future forgets the request.
    pub(crate) async fn settled<T: Send + 'static>(
        &self,
        start: impl FnOnce(Box<dyn FnOnce(Result<T>) + Send>) -> Option<Started>,
    ) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        let started = start(Box::new(move |outcome| {
            let _ = tx.send(outcome);
        }));
        let mut pending = ForgetOnDrop {
            client: self,
            started,
        };
        let outcome = rx.await;
        pending.started = None;
        outcome.unwrap_or_else(|_| {
            Err(Error::new(
                ErrorKind::Internal,
                "the request was lost (a libpie bug)",
            ))
        })
    }
}

/// A receiver of request outcomes of type `T` (see [`Client::start_ping_to`]).
pub(crate) trait Settles<T>: Any + Send + Sync {
    fn settle(self: Arc<Self>, outcome: Result<T>);
}

/// The `(successful, result)` of a `response` reply to `what`.
fn response_of(what: &'static str, reply: Result<Reply>) -> Result<(bool, String)> {
    reply.and_then(|reply| match reply {
        Reply::Response { successful, result } => Ok((successful, result)),
        _ => Err(Error::new(
            ErrorKind::Protocol,
            format!("{what}: wrong reply type"),
        )),
    })
}

/// A ping's outcome from its reply.
fn ping_outcome(reply: Result<Reply>) -> Result<()> {
    response_of("ping", reply).and_then(|(ok, result)| {
        if ok {
            Ok(())
        } else {
            Err(Error::new(ErrorKind::Server, result))
        }
    })
}

/// Hands a ping's outcome to its receiver `S`.
fn settle_ping<S: Settles<()>>(to: Arc<dyn Any + Send + Sync>, reply: Result<Reply>) {
    if let Ok(to) = to.downcast::<S>() {
        to.settle(ping_outcome(reply));
    }
}

/// A ping frame in `protocol`'s encoding.
fn ping_frame(protocol: Protocol) -> fn(u32) -> Vec<u8> {
    match protocol {
        Protocol::Jan2026 => |corr_id| wire::encode_client(&ClientMessage::Ping { corr_id }),
        Protocol::V05 => |corr_id| wire05::encode_client(&wire05::ClientMessage::Ping { corr_id }),
    }
}

/// Forgets a started request when the future awaiting it is dropped first.
struct ForgetOnDrop<'a> {
    client: &'a Client,
    started: Option<Started>,
}

impl Drop for ForgetOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(started) = self.started.take() {
            self.client.forget_request(started);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ClientConfig;
    use pie_sim::{SimConfig, Simulator};
    use std::sync::mpsc;
    use std::time::Duration;

    fn connected(rt: &tokio::runtime::Runtime, sim: &Simulator, timeout: Duration) -> Client {
        let config = ClientConfig {
            request_timeout: timeout,
            ..ClientConfig::default()
        };
        rt.block_on(async {
            let c = Client::connect_with(&sim.url(), config).await.unwrap();
            c.authenticate("tester", None).await.unwrap();
            c
        })
    }

    /// Answered, timed out and forgotten pings: `done` is called exactly once with the
    /// outcome (never after `forget_request`), and no entry is left pending.
    #[test]
    fn started_pings_settle_once_and_leave_nothing_pending() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let sim = Simulator::start(SimConfig::default()).unwrap();
        let c = connected(&rt, &sim, Duration::from_millis(300));
        let (tx, rx) = mpsc::channel();
        let done = move |tx: mpsc::Sender<Result<()>>| move |r| tx.send(r).unwrap();

        let started = c.start_ping(done(tx.clone())).ok().expect("protocol known");
        assert!(started.is_some());
        rx.recv_timeout(Duration::from_secs(5)).unwrap().unwrap();
        assert_eq!(c.debug_counts().pending, 0);

        sim.faults().set_silence(true);
        let forgotten = c.start_ping(done(tx.clone())).ok().unwrap().unwrap();
        let unanswered = c.start_ping(done(tx.clone())).ok().unwrap().unwrap();
        assert_eq!(c.debug_counts().pending, 2);
        c.forget_request(forgotten);
        assert_eq!(c.debug_counts().pending, 1);
        let e = rx
            .recv_timeout(Duration::from_secs(5))
            .unwrap()
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
        assert_eq!(c.debug_counts().pending, 0);
        c.forget_request(unanswered); // settled already: no effect
        assert!(rx.recv_timeout(Duration::from_millis(500)).is_err());

        // After close: settled at once, on this thread, with CLIENT_CLOSED.
        rt.block_on(c.close()).unwrap();
        assert!(c.start_ping(done(tx)).ok().unwrap().is_none());
        let e = rx.try_recv().unwrap().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ClientClosed, "{e}");
    }
}
