//! Chunked uploads (programs and blobs) with backpressure.
//!
//! One corr_id for all chunks; the pending reply is registered before the first chunk is
//! queued (the reference Python client's race, Q30, is avoided). Each chunk is encoded only
//! when fewer than `MAX_CHUNKS_IN_FLIGHT` earlier chunks are still waiting to be written, so
//! peak extra memory is a few chunks whatever the upload size. The first reply wins: a failure
//! reply that arrives mid-upload stops sending; later stray replies for the same id are
//! ignored by the reader (the id is no longer pending).

use super::connection::Shared;
use super::pending::{Expect, PendingGuard, Reply};
use super::v05::{self, Sent};
use super::ProgressFn;
use crate::error::{Error, ErrorKind, Result};
use crate::wire;
use std::collections::VecDeque;
use std::time::Duration;
use tokio::sync::oneshot;

/// Chunks encoded and queued but not yet flushed to the socket.
const MAX_CHUNKS_IN_FLIGHT: usize = 2;

type ReplyRx = oneshot::Receiver<Result<Reply>>;

fn reply_outcome(
    shared: &Shared,
    r: std::result::Result<Result<Reply>, oneshot::error::RecvError>,
) -> Result<(bool, String)> {
    match r {
        Ok(Ok(Reply::Response { successful, result })) => Ok((successful, result)),
        Ok(Ok(_)) => Err(Error::new(
            ErrorKind::Protocol,
            "unexpected reply type to an upload",
        )),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(shared.end_error()),
    }
}

fn timeout_err(what: &str, t: Duration) -> Error {
    Error::new(
        ErrorKind::Timeout,
        format!("{what}: no progress within the request timeout of {t:?}"),
    )
}

/// The server's reply can overtake the acknowledgements of the last chunks on their way to the
/// socket. A successful reply proves they were all sent, so report them, ending at (total,
/// total), before returning: observers always see a complete upload reach 100 %.
fn complete(
    outcome: Result<(bool, String)>,
    progress: Option<&ProgressFn>,
    unreported: impl Iterator<Item = u64>,
    mut reported: Option<u64>,
    total_bytes: u64,
) -> Result<(bool, String)> {
    if let (Some(p), Ok((true, _))) = (progress, &outcome) {
        for bytes in unreported {
            p(bytes, total_bytes);
            reported = Some(bytes);
        }
        if reported != Some(total_bytes) {
            p(total_bytes, total_bytes);
        }
    }
    outcome
}

/// Upload `data` in chunks, each encoded by `make(corr_id, chunk_index, total_chunks, chunk)`
/// (January-2026 or 0.5 frames alike). Returns the first reply as `(successful, result)`.
pub(crate) async fn upload(
    shared: &Shared,
    timeout: Duration,
    what: &str,
    data: &[u8],
    make: impl Fn(u32, u64, u64, &[u8]) -> Vec<u8>,
    progress: Option<&ProgressFn>,
) -> Result<(bool, String)> {
    let (id, mut rx): (u32, ReplyRx) = shared.pending.register(Expect::Response)?;
    // Uploads keep the guard armed: stray replies may still come for this id, and the entry
    // must be gone whatever happened.
    let _guard = PendingGuard::new(&shared.pending, id);
    let total_bytes = data.len() as u64;
    let total_chunks = wire::chunk_count(data.len());
    let mut in_flight: VecDeque<(oneshot::Receiver<()>, u64)> = VecDeque::new();
    let mut sent: u64 = 0;
    // The last progress figure handed to the observer (see `complete`).
    let mut reported: Option<u64> = None;

    // Wait until the oldest queued chunk is on the socket (then report progress), unless the
    // reply arrives first.
    macro_rules! wait_oldest {
        () => {
            if let Some((ack, bytes)) = in_flight.pop_front() {
                tokio::select! {
                    biased;
                    r = &mut rx => {
                        let rest = in_flight.drain(..).map(|(_, b)| b);
                        return complete(
                            reply_outcome(shared, r),
                            progress,
                            std::iter::once(bytes).chain(rest),
                            reported,
                            total_bytes,
                        );
                    }
                    a = tokio::time::timeout(timeout, ack) => match a {
                        Err(_) => return Err(timeout_err(what, timeout)),
                        Ok(Err(_)) => return Err(shared.end_error()),
                        Ok(Ok(())) => {
                            if let Some(p) = progress {
                                p(bytes, total_bytes);
                                reported = Some(bytes);
                            }
                        }
                    },
                }
            }
        };
    }

    for (index, chunk) in wire::chunks(data) {
        while in_flight.len() >= MAX_CHUNKS_IN_FLIGHT {
            wait_oldest!();
        }
        let frame = make(id, index, total_chunks, chunk);
        let (ack_tx, ack_rx) = oneshot::channel();
        tokio::select! {
            biased;
            r = &mut rx => {
                let rest = in_flight.drain(..).map(|(_, b)| b);
                return complete(reply_outcome(shared, r), progress, rest, reported, total_bytes);
            }
            s = tokio::time::timeout(timeout, v05::send(shared, Sent::Request(id), frame, Some(ack_tx))) => match s {
                Err(_) => return Err(timeout_err(what, timeout)),
                Ok(Err(e)) => return Err(e),
                Ok(Ok(())) => {}
            },
        }
        sent += chunk.len() as u64;
        in_flight.push_back((ack_rx, sent));
    }
    while !in_flight.is_empty() {
        wait_oldest!();
    }
    match tokio::time::timeout(timeout, &mut rx).await {
        Ok(r) => complete(
            reply_outcome(shared, r),
            progress,
            std::iter::empty(),
            reported,
            total_bytes,
        ),
        Err(_) => Err(Error::new(
            ErrorKind::Timeout,
            format!("{what}: no reply within the request timeout of {timeout:?}"),
        )),
    }
}
