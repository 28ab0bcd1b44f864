//! Call: one network call, i.e. one core future plus what it needs to run. The blocking extern
//! drives it to completion on the caller's thread (no PieOp, no task, no condvar); the `_async`
//! extern starts the same future as a PieOp.

use std::future::Future;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::boundary::{arg_out, call};
use super::error::{Fail, FfiResult, PieError};
use super::op::{bounded, give_op, OpCtx, PieOp, Start};
use super::runtime::on_runtime_thread;
use super::status::PieStatus;

pub(crate) struct Call<F> {
    ctx: OpCtx,
    /// Outer bound on the whole call (None: the core bounds it by itself).
    limit: Option<Duration>,
    /// Where the `_async` form first polls the future.
    start: Start,
    fut: F,
}

impl<F> Call<F> {
    pub(crate) fn new(ctx: OpCtx, limit: Option<Duration>, start: Start, fut: F) -> Call<F> {
        Call {
            ctx,
            limit,
            start,
            fut,
        }
    }
}

impl<F: Future<Output = FfiResult<T>>, T> Call<F> {
    /// The blocking form: runs the future on the caller's thread (the runtime's workers still
    /// drive the sockets and timers). Refused on a runtime thread, which it would stall.
    pub(crate) fn block(self) -> FfiResult<T> {
        refuse_runtime_thread()?;
        let Call {
            ctx, limit, fut, ..
        } = self;
        ctx.rt().call_starting();
        ctx.rt().handle().block_on(bounded(limit, fut))
    }
}

impl<F, T> Call<F>
where
    F: Future<Output = FfiResult<T>> + Send + 'static,
    T: Send + 'static,
{
    /// The `_async` form: the same future as an operation.
    pub(crate) fn start(self) -> Arc<PieOp> {
        PieOp::start(self.ctx, self.limit, self.start, self.fut)
    }
}

fn refuse_runtime_thread() -> FfiResult<()> {
    if on_runtime_thread() {
        return Err(Fail::new(
            PieStatus::Busy,
            "blocking libpie call made on a runtime thread (e.g. from an upload progress \
             callback); use the _async form",
        ));
    }
    Ok(())
}

/// Where the blocking form of a call the core settles itself waits for the outcome.
type Slot<T> = (Mutex<Option<FfiResult<T>>>, Condvar);

/// Fills the slot once. Dropped without filling it (a libpie bug), it fills it with an error
/// rather than leave the caller waiting forever.
pub(crate) struct Filler<T>(Option<Arc<Slot<T>>>);

impl<T> Filler<T> {
    pub(crate) fn fill(mut self, outcome: FfiResult<T>) {
        if let Some(slot) = self.0.take() {
            *slot.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(outcome);
            slot.1.notify_one();
        }
    }
}

impl<T> Drop for Filler<T> {
    fn drop(&mut self) {
        if let Some(slot) = self.0.take() {
            Filler(Some(slot)).fill(Err(Fail::new(
                PieStatus::Internal,
                "libpie lost track of the call (a bug)",
            )));
        }
    }
}

/// The blocking form of a call the core settles itself (see `PieOp::settled_by`): the
/// caller's thread sleeps on a condition variable until the core fills the [`Filler`] handed
/// to `start`; no PieOp, no task, no timer. `start` returns false if the core declined
/// (then `None`: use the future form).
pub(crate) fn block_settled<T: Send + 'static>(
    start: impl FnOnce(Filler<T>) -> bool,
) -> Option<FfiResult<T>> {
    if let Err(busy) = refuse_runtime_thread() {
        return Some(Err(busy));
    }
    let slot: Arc<Slot<T>> = Arc::new((Mutex::new(None), Condvar::new()));
    let filler = Filler(Some(Arc::clone(&slot)));
    if !start(filler) {
        return None;
    }
    let mut value = slot.0.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if let Some(outcome) = value.take() {
            return Some(outcome);
        }
        value = slot.1.wait(value).unwrap_or_else(|e| e.into_inner());
    }
}

/// Body of an `_async` extern whose call the core may settle itself: `settled` makes that
/// operation (`None` if the core declined), else `make` builds the future-based call.
pub(crate) unsafe fn start_async_settled<F, T>(
    out_op: *mut *mut PieOp,
    out_err: *mut *mut PieError,
    settled: impl FnOnce() -> FfiResult<Option<Arc<PieOp>>>,
    make: impl FnOnce() -> FfiResult<Call<F>>,
) -> PieStatus
where
    F: Future<Output = FfiResult<T>> + Send + 'static,
    T: Send + 'static,
{
    call(out_err, || {
        let out = arg_out(out_op, "out_op")?;
        let op = match settled()? {
            Some(op) => op,
            None => make()?.start(),
        };
        give_op(out, op);
        Ok(())
    })
}

/// Body of every `_async` extern: `make` checks the arguments and builds the call; the started
/// operation goes to `*out_op` (owned by the caller).
pub(crate) unsafe fn start_async<F, T>(
    out_op: *mut *mut PieOp,
    out_err: *mut *mut PieError,
    make: impl FnOnce() -> FfiResult<Call<F>>,
) -> PieStatus
where
    F: Future<Output = FfiResult<T>> + Send + 'static,
    T: Send + 'static,
{
    call(out_err, || {
        let out = arg_out(out_op, "out_op")?;
        give_op(out, make()?.start());
        Ok(())
    })
}
