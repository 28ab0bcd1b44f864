//! Call: one network call, i.e. one core future plus what it needs to run. The blocking extern
//! drives it to completion on the caller's thread (no PieOp, no task, no condvar); the `_async`
//! extern starts the same future as a PieOp.

use std::future::Future;
use std::sync::Arc;
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
        if on_runtime_thread() {
            return Err(Fail::new(
                PieStatus::Busy,
                "blocking libpie call made on a runtime thread (e.g. from an upload progress \
                 callback); use the _async form",
            ));
        }
        let Call {
            ctx, limit, fut, ..
        } = self;
        ctx.rt.handle().block_on(bounded(limit, fut))
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
