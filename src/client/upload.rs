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
use super::ProgressFn;
use crate::error::{Error, ErrorKind, Result};
use crate::wire::{self, ClientMessage};
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

/// Upload `data` in chunks built by `make(corr_id, chunk_index, total_chunks, chunk)`.
/// Returns the first reply as `(successful, result)`.
pub(crate) async fn upload(
    shared: &Shared,
    timeout: Duration,
    what: &str,
    data: &[u8],
    make: impl Fn(u32, u64, u64, Vec<u8>) -> ClientMessage,
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

    // Wait until the oldest queued chunk is on the socket (then report progress), unless the
    // reply arrives first.
    macro_rules! wait_oldest {
        () => {
            if let Some((ack, bytes)) = in_flight.pop_front() {
                tokio::select! {
                    biased;
                    r = &mut rx => return reply_outcome(shared, r),
                    a = tokio::time::timeout(timeout, ack) => match a {
                        Err(_) => return Err(timeout_err(what, timeout)),
                        Ok(Err(_)) => return Err(shared.end_error()),
                        Ok(Ok(())) => {
                            if let Some(p) = progress {
                                p(bytes, total_bytes);
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
        let frame = wire::encode_client(&make(id, index, total_chunks, chunk.to_vec()));
        let (ack_tx, ack_rx) = oneshot::channel();
        tokio::select! {
            biased;
            r = &mut rx => return reply_outcome(shared, r),
            s = tokio::time::timeout(timeout, shared.send_frame(frame, Some(ack_tx))) => match s {
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
        Ok(r) => reply_outcome(shared, r),
        Err(_) => Err(Error::new(
            ErrorKind::Timeout,
            format!("{what}: no reply within the request timeout of {timeout:?}"),
        )),
    }
}
