//! PieOp: a network call started by an `_async` function. A leaf: it knows no handle type; its
//! value is whatever the call's future produced, and each `pie_op_take_*` function lives next
//! to the type it hands out (pie_op_take_client in client.rs, ...).

use std::any::Any;
use std::ffi::{c_char, c_void, CString};
use std::future::Future;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use tokio::task::AbortHandle;

use super::boundary::{arg_fn, arg_out, arg_ref, arg_timeout, boundary, call, value};
use super::callback::{Callback, PieDropCallback};
use super::dispatch::Dispatcher;
use super::error::{Fail, FfiResult, PieError};
use super::runtime::{on_runtime_thread, Rt};
use super::status::PieStatus;

/// Operation finished: `(user_data, op, status)`; see pie_op_set_callback.
pub type PieOpCallback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, op: *mut PieOp, status: PieStatus)>;

type OpFn = unsafe extern "C" fn(*mut c_void, *mut PieOp, PieStatus);

/// What keeps an operation's world alive: the runtime, the callback thread and whatever the
/// call works on (its client), so the host may free its handles before the operation.
pub(crate) struct OpCtx {
    pub(crate) rt: Rt,
    pub(crate) dispatcher: Arc<Dispatcher>,
    pub(crate) keep_alive: Option<Arc<dyn Any + Send + Sync>>,
}

/// The successful value; `None` once a pie_op_take_* moved it out.
type Value = Option<Box<dyn Any + Send>>;

#[derive(Default)]
struct OpState {
    result: Option<FfiResult<Value>>,
    callback: Option<Callback<OpFn>>,
}

/// Set when an operation's runtime task (and everything its future held) is gone. The host-side
/// release waits for it, so that the last reference to a client or to the runtime is never
/// dropped on a runtime thread (which could not join the runtime's threads).
#[derive(Default)]
struct TaskGone {
    gone: Mutex<bool>,
    cv: Condvar,
}

/// Lives inside the task's future: its drop, on completion or abort, marks the task gone.
struct GoneGuard(Arc<TaskGone>);

impl Drop for GoneGuard {
    fn drop(&mut self) {
        *lock(&self.0.gone) = true;
        self.0.cv.notify_all();
    }
}

/// Longest wait for an aborted task to be dropped by the runtime (normally microseconds).
const TASK_GONE_WAIT: Duration = Duration::from_secs(2);

/// A network call in progress or finished (opaque). Handed out by every `*_async` function;
/// owned by the caller and freed with pie_op_free. Usable from any thread.
pub struct PieOp {
    state: Mutex<OpState>,
    done: Condvar,
    task: Mutex<Option<AbortHandle>>,
    task_gone: Arc<TaskGone>,
    dispatcher: Arc<Dispatcher>,
    _keep_alive: Option<Arc<dyn Any + Send + Sync>>,
    // Last, so the runtime outlives everything else the operation holds.
    rt: Rt,
}

/// Runs `fut`, bounded by `limit` if given.
pub(crate) async fn bounded<T>(
    limit: Option<Duration>,
    fut: impl Future<Output = FfiResult<T>>,
) -> FfiResult<T> {
    match limit {
        Some(d) => tokio::time::timeout(d, fut).await.unwrap_or_else(|_| {
            Err(Fail::new(
                PieStatus::Timeout,
                format!("no reply within {} ms", d.as_millis()),
            ))
        }),
        None => fut.await,
    }
}

impl PieOp {
    /// Starts `fut` on the runtime, bounded by `limit` if given.
    pub(crate) fn start<F, T>(ctx: OpCtx, limit: Option<Duration>, fut: F) -> Arc<PieOp>
    where
        F: Future<Output = FfiResult<T>> + Send + 'static,
        T: Send + 'static,
    {
        let op = Arc::new(PieOp {
            state: Mutex::new(OpState::default()),
            done: Condvar::new(),
            task: Mutex::new(None),
            task_gone: Arc::new(TaskGone::default()),
            dispatcher: ctx.dispatcher,
            _keep_alive: ctx.keep_alive,
            rt: ctx.rt,
        });
        // The task holds the operation weakly: freeing the operation cancels the call.
        let weak = Arc::downgrade(&op);
        let guard = GoneGuard(Arc::clone(&op.task_gone));
        let task = op.rt.handle().spawn(async move {
            // Declared first, dropped last: after the future and the upgraded `op` below.
            let _guard = guard;
            let result = std::panic::AssertUnwindSafe(bounded(limit, fut))
                .catch_unwind()
                .await
                .unwrap_or_else(|_| {
                    Err(Fail::new(
                        PieStatus::Panic,
                        "libpie panicked in a runtime task",
                    ))
                })
                .map(|v| Some(Box::new(v) as Box<dyn Any + Send>));
            if let Some(op) = weak.upgrade() {
                op.complete(result);
            }
        });
        *lock(&op.task) = Some(task.abort_handle());
        op
    }

    /// Records the result (first one wins: a cancelled operation stays cancelled), wakes waiters
    /// and schedules the callback.
    fn complete(self: &Arc<Self>, result: FfiResult<Value>) {
        let callback = {
            let mut st = lock(&self.state);
            if st.result.is_some() {
                return;
            }
            st.result = Some(result);
            st.callback.take()
        };
        self.done.notify_all();
        if let Some(cb) = callback {
            self.schedule(cb);
        }
    }

    /// Calls `cb` on the callback thread; the callback (and so its drop) goes with the job.
    fn schedule(self: &Arc<Self>, cb: Callback<OpFn>) {
        let op = Arc::clone(self);
        // If the callback thread cannot start, the op stays observable through poll/wait.
        let _ = self.dispatcher.post_fn(move || {
            let status = op.status();
            let (function, user_data) = cb.parts();
            // SAFETY: host callback with the host's pointer; `op` stays alive during the call
            // because this job holds a reference, even if the host frees its handle inside.
            unsafe { function(user_data, Arc::as_ptr(&op) as *mut PieOp, status) };
            drop(cb);
        });
    }

    /// PENDING while running, otherwise the final status.
    fn status(&self) -> PieStatus {
        match &lock(&self.state).result {
            None => PieStatus::Pending,
            Some(Ok(_)) => PieStatus::Ok,
            Some(Err(f)) => f.status,
        }
    }

    /// The status, as a result: Ok(OK or PENDING) or the failure.
    fn outcome(&self) -> FfiResult<PieStatus> {
        match &lock(&self.state).result {
            None => Ok(PieStatus::Pending),
            Some(Ok(_)) => Ok(PieStatus::Ok),
            Some(Err(f)) => Err(f.clone()),
        }
    }

    /// Waits for completion; `None` waits forever.
    fn wait(&self, timeout: Option<Duration>) {
        let deadline = timeout.map(|d| Instant::now() + d);
        let mut st = lock(&self.state);
        while st.result.is_none() {
            match deadline {
                None => st = self.done.wait(st).unwrap_or_else(|e| e.into_inner()),
                Some(dl) => {
                    let now = Instant::now();
                    if now >= dl {
                        return;
                    }
                    st = self
                        .done
                        .wait_timeout(st, dl - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
    }

    /// Waits (bounded) until the runtime task has dropped everything it held. Skipped on
    /// runtime threads, where waiting could deadlock.
    fn wait_task_gone(&self) {
        if on_runtime_thread() {
            return;
        }
        let mut gone = lock(&self.task_gone.gone);
        let deadline = Instant::now() + TASK_GONE_WAIT;
        while !*gone {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            gone = self
                .task_gone
                .cv
                .wait_timeout(gone, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn cancel(self: &Arc<Self>) {
        if let Some(task) = lock(&self.task).take() {
            task.abort();
        }
        self.complete(Err(Fail::new(
            PieStatus::Cancelled,
            "the operation was cancelled",
        )));
    }

    /// Applies `pick` to the successful value of type `T`: PENDING while running, the failure
    /// otherwise, INVALID_ARGUMENT if the value is of another type or was already taken.
    fn with_value<T: 'static, R>(&self, pick: impl FnOnce(&mut Value) -> R) -> FfiResult<R> {
        let mut st = lock(&self.state);
        match &mut st.result {
            None => Err(Fail::new(
                PieStatus::Pending,
                "the operation has not finished",
            )),
            Some(Err(f)) => Err(f.clone()),
            Some(Ok(None)) => Err(Fail::new(
                PieStatus::InvalidArgument,
                "the operation's result was already taken",
            )),
            Some(Ok(v)) if v.as_ref().is_some_and(|b| b.is::<T>()) => Ok(pick(v)),
            Some(Ok(_)) => Err(Fail::new(
                PieStatus::InvalidArgument,
                "the operation has no result of the requested type",
            )),
        }
    }

    /// Moves the value of type `T` out of a finished operation.
    fn take<T: 'static>(&self) -> FfiResult<T> {
        let boxed = self.with_value::<T, _>(Option::take)?;
        match boxed.map(|b| b.downcast::<T>()) {
            Some(Ok(v)) => Ok(*v),
            _ => Err(Fail::new(PieStatus::Internal, "operation value lost")),
        }
    }
}

impl Drop for PieOp {
    fn drop(&mut self) {
        if let Some(task) = lock(&self.task).take() {
            task.abort();
        }
        // A callback still registered can never be called now; dropping it releases its
        // user_data on the callback thread.
        drop(lock(&self.state).callback.take());
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Hands a new operation to the host through `out_op`.
pub(crate) unsafe fn give_op(out_op: &mut *mut PieOp, op: Arc<PieOp>) {
    *out_op = Arc::into_raw(op) as *mut PieOp;
}

/// Borrows the operation behind a host handle, keeping it alive for the duration of the call.
unsafe fn op_arg(op: *const PieOp) -> FfiResult<Arc<PieOp>> {
    arg_ref(op, "op")?;
    Arc::increment_strong_count(op);
    Ok(Arc::from_raw(op))
}

/// Shared body of the pie_op_take_* functions (each next to the type it produces): the value of
/// type `T` is moved out and converted into the host's handle; any other value stays.
pub(crate) unsafe fn take_result<T: 'static, H>(
    op: *const PieOp,
    out: *mut *mut H,
    out_err: *mut *mut PieError,
    into_handle: impl FnOnce(T) -> *mut H,
) -> PieStatus {
    call(out_err, || {
        let op = op_arg(op)?;
        let out = arg_out(out, "out")?;
        *out = into_handle(op.take::<T>()?);
        Ok(())
    })
}

/// Whether the operation finished: PIE_STATUS_PENDING while it runs, then its final status
/// (PIE_STATUS_OK, or the failure, which also goes to `*out_err`). Never blocks.
/// Errors: PIE_STATUS_NULL_POINTER.
#[no_mangle]
pub unsafe extern "C" fn pie_op_poll(op: *const PieOp, out_err: *mut *mut PieError) -> PieStatus {
    boundary(out_err, || op_arg(op)?.outcome())
}

/// Waits until the operation finishes or `timeout_ms` elapses (the timeout rule of the
/// overview). Returns the final status as pie_op_poll, or PIE_STATUS_PENDING if it is still
/// running at the timeout. Errors: PIE_STATUS_NULL_POINTER, PIE_STATUS_INVALID_ARGUMENT
/// (`timeout_ms`), PIE_STATUS_BUSY (a wait on a runtime thread, e.g. in a progress callback).
#[no_mangle]
pub unsafe extern "C" fn pie_op_wait(
    op: *const PieOp,
    timeout_ms: i32,
    out_err: *mut *mut PieError,
) -> PieStatus {
    boundary(out_err, || {
        let op = op_arg(op)?;
        let limit = arg_timeout(timeout_ms, "timeout_ms")?;
        if on_runtime_thread() && limit != Some(Duration::ZERO) {
            return Err(Fail::new(
                PieStatus::Busy,
                "pie_op_wait on a runtime thread (e.g. in a progress callback) would stall it",
            ));
        }
        op.wait(limit);
        op.outcome()
    })
}

/// The same as pie_op_poll (kept from 0.1).
#[no_mangle]
pub unsafe extern "C" fn pie_op_error(op: *const PieOp, out_err: *mut *mut PieError) -> PieStatus {
    pie_op_poll(op, out_err)
}

/// Registers `callback(user_data, op, status)`, called once when the operation finishes (at once,
/// if it already has), on the client's callback thread (for pie_client_connect_async: the thread
/// that becomes the new client's callback thread); `op` is the same handle the host holds,
/// valid during the call even if the host frees it there. Then `drop(user_data)` runs once (also
/// when the callback is replaced or the op is freed without it ever being called). The callback
/// may call any libpie function, including pie_op_take_* and pie_op_free on this op.
/// Errors: PIE_STATUS_NULL_POINTER (`op` or `callback`), PIE_STATUS_IO (thread start failed).
#[no_mangle]
pub unsafe extern "C" fn pie_op_set_callback(
    op: *const PieOp,
    callback: PieOpCallback,
    user_data: *mut c_void,
    drop: PieDropCallback,
    out_err: *mut *mut PieError,
) -> PieStatus {
    call(out_err, || {
        let op = op_arg(op)?;
        let cb = Callback::new(
            arg_fn(callback, "callback")?,
            user_data,
            drop,
            &op.dispatcher,
        );
        let (replaced, now) = {
            let mut st = lock(&op.state);
            if st.result.is_some() {
                (None, Some(cb))
            } else {
                (st.callback.replace(cb), None)
            }
        };
        std::mem::drop(replaced);
        if let Some(cb) = now {
            op.schedule(cb);
        }
        Ok(())
    })
}

/// Cancels the operation if it is still running: it then finishes with PIE_STATUS_CANCELLED
/// (its callback, if any, is called with that status). No effect on a finished operation.
/// A request already sent may still take effect on the server. Returns PIE_STATUS_OK.
/// Errors: PIE_STATUS_NULL_POINTER.
#[no_mangle]
pub unsafe extern "C" fn pie_op_cancel(op: *const PieOp, out_err: *mut *mut PieError) -> PieStatus {
    call(out_err, || {
        op_arg(op)?.cancel();
        Ok(())
    })
}

/// The text result of a finished query or upload_program operation (the query's answer, or the
/// program hash): NUL-terminated UTF-8, borrowed, valid until pie_op_free(op). NULL if the
/// operation is still running, failed, has no text result, or `op` is NULL.
#[no_mangle]
pub unsafe extern "C" fn pie_op_result_string(op: *const PieOp) -> *const c_char {
    value(|| {
        // The CString's heap buffer does not move while it stays in the op, so the pointer
        // remains valid after the lock is released.
        op_arg(op)?.with_value::<CString, _>(|v| {
            v.as_ref()
                .and_then(|b| b.downcast_ref::<CString>())
                .map_or(std::ptr::null(), |t| t.as_ptr())
        })
    })
}

/// The boolean result of a finished pie_client_program_exists_async operation, written to
/// `*out` on success. Errors: PIE_STATUS_PENDING (still running), the operation's failure
/// status, PIE_STATUS_INVALID_ARGUMENT (no boolean result), PIE_STATUS_NULL_POINTER.
#[no_mangle]
pub unsafe extern "C" fn pie_op_result_bool(
    op: *const PieOp,
    out: *mut bool,
    out_err: *mut *mut PieError,
) -> PieStatus {
    call(out_err, || {
        let op = op_arg(op)?;
        let out = arg_out(out, "out")?;
        *out = op.with_value::<bool, _>(|v| {
            v.as_ref()
                .and_then(|b| b.downcast_ref::<bool>())
                .copied()
                .unwrap_or(false)
        })?;
        Ok(())
    })
}

/// Frees an operation. A still-running operation is cancelled first (its callback, if any, is
/// still called, with PIE_STATUS_CANCELLED). Results not taken are freed with it. NULL is a no-op.
/// May be called from inside the operation's own callback.
#[no_mangle]
pub unsafe extern "C" fn pie_op_free(op: *mut PieOp) {
    value(|| {
        if op.is_null() {
            return Ok(());
        }
        let op = Arc::from_raw(op as *const PieOp);
        op.cancel();
        op.wait_task_gone();
        drop(op);
        Ok(())
    })
}
