//! PieOp: a network call started by an `_async` function. A leaf: it knows no handle type; its
//! value is whatever the call's future produced, and each `pie_op_take_*` function lives next
//! to the type it hands out (pie_op_take_client in client.rs, ...).

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::ffi::{c_char, c_void, CString};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, TryLockError, Weak};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use tokio::runtime::Handle;

use super::boundary::{arg_fn, arg_out, arg_ref, arg_timeout, boundary, call, value};
use super::callback::{Callback, PieDropCallback};
use super::dispatch::Dispatcher;
use super::error::{Fail, FfiResult, PieError};
use super::runtime::{on_runtime_thread, Rt};
use super::status::PieStatus;
use crate::client::Settles;

/// Operation finished: `(user_data, op, status)`; see pie_op_set_callback.
pub type PieOpCallback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, op: *mut PieOp, status: PieStatus)>;

type OpFn = unsafe extern "C" fn(*mut c_void, *mut PieOp, PieStatus);

/// What an operation's world is: the runtime, the callback thread and whatever the call works
/// on (its client). The operation holds it by one reference, so the host may free its handles
/// before the operation.
pub(crate) trait OpHost: Send + Sync + 'static {
    fn rt(&self) -> &Rt;
    fn dispatcher(&self) -> &Arc<Dispatcher>;
    /// Forgets a request started by the core for an operation cancelled or freed before it
    /// was settled (its late reply is then ignored).
    fn forget(&self, _request: Forget) {}
}

/// An operation's context: its host, by one reference.
pub(crate) type OpCtx = Arc<dyn OpHost>;

/// The host of an operation that works on no handle yet (connecting): runtime and callback
/// thread only.
struct BareHost {
    dispatcher: Arc<Dispatcher>,
    // Last, so the runtime outlives everything else.
    rt: Rt,
}

impl OpHost for BareHost {
    fn rt(&self) -> &Rt {
        &self.rt
    }
    fn dispatcher(&self) -> &Arc<Dispatcher> {
        &self.dispatcher
    }
}

/// The context of an operation on no handle (see [`BareHost`]).
pub(crate) fn bare_ctx(rt: Rt, dispatcher: Arc<Dispatcher>) -> OpCtx {
    Arc::new(BareHost { dispatcher, rt })
}

/// The successful value; `None` once a pie_op_take_* moved it out.
type Value = Option<Box<dyn Any + Send>>;

type OpFuture = Pin<Box<dyn Future<Output = FfiResult<Value>> + Send>>;

/// Where an operation's future is first polled.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    /// On the caller's thread, inside the `_async` call: a request's frame is on its way before
    /// the call returns, with no task and no thread hand-off. For calls whose first step is
    /// short (encode and send one request).
    Here,
    /// On a runtime thread: for calls whose first step may take a while (connecting, hashing
    /// a large program), so that the `_async` call returns at once.
    Runtime,
}

/// The request of an operation settled by the core, forgotten (through its host) when the
/// operation is cancelled or freed first (its late reply is then ignored).
pub(crate) type Forget = crate::client::Started;

#[derive(Default)]
struct OpState {
    result: Option<FfiResult<Value>>,
    callback: Option<Callback<OpFn>>,
    forget: Option<Forget>,
    /// Threads in `PieOp::wait`: without any, completing needs no (system-call) notify.
    waiters: usize,
}

thread_local! {
    /// True while this thread polls an operation's future (see `Runner::run`).
    static POLLING: Cell<bool> = const { Cell::new(false) };
    /// Operations completed while the core settled a run of replies, whose waiting threads
    /// are woken when the run is done (`notify_deferred_waiters`).
    static DEFERRED_NOTIFY: RefCell<Vec<Arc<PieOp>>> = const { RefCell::new(Vec::new()) };
}

/// Wakes the threads waiting for the operations completed during the run of replies just
/// settled on this thread (the core calls it at the end of the run: `client::on_run_settled`).
pub(crate) fn notify_deferred_waiters() {
    let woken = DEFERRED_NOTIFY.with(|d| std::mem::take(&mut *d.borrow_mut()));
    for op in &woken {
        op.done.notify_all();
    }
    // Dropped after every notification: a host woken by the first one may free its handle
    // meanwhile, and the last reference then goes here, after the wake-ups.
    drop(woken);
}

/// Runs an operation's future without a runtime task: it is polled on the thread that wakes
/// it (the caller's thread first, then usually the connection's reader when the reply
/// arrives), so a reply completes the operation with no scheduling in between. Wakers hold
/// the runner, which holds neither the PieOp nor its result: a waker left behind in a
/// connection's socket keeps nothing alive, and the host's pie_op_free drops the future (and
/// every reference to the client it holds) on the host's thread.
struct Runner {
    /// `None` once finished or discarded. Locked only while polling or dropping the future.
    future: Mutex<Option<OpFuture>>,
    /// Set by every wake; cleared by the thread that polls next.
    notified: AtomicBool,
    /// The runtime context a poll enters (timers, sockets, spawns).
    handle: Handle,
    /// The handle the host holds, for the completion callback.
    op: Weak<PieOp>,
}

impl Wake for Runner {
    fn wake(self: Arc<Self>) {
        self.run();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.run();
    }
}

impl Runner {
    /// Polls the future until it has no pending wake-up. A wake during a poll (on any thread)
    /// leaves `notified` set for the polling thread, which checks it again after unlocking, so
    /// no wake-up is lost. A wake arriving while this thread already polls another operation
    /// is handed to a runtime task instead, so polls never nest (a future could hold a lock
    /// the inner one needs).
    fn run(self: &Arc<Self>) {
        self.notified.store(true, Ordering::SeqCst);
        if POLLING.get() {
            let me = Arc::clone(self);
            self.handle.spawn(async move { me.run() });
            return;
        }
        loop {
            if !self.notified.load(Ordering::SeqCst) {
                return;
            }
            let mut slot = match self.future.try_lock() {
                Ok(slot) => slot,
                Err(TryLockError::Poisoned(e)) => e.into_inner(),
                // The holder checks `notified` again after unlocking.
                Err(TryLockError::WouldBlock) => return,
            };
            if !self.notified.swap(false, Ordering::SeqCst) {
                continue;
            }
            let Some(future) = slot.as_mut() else {
                return;
            };
            let waker = Waker::from(Arc::clone(self));
            let _context = self.handle.enter();
            POLLING.set(true);
            let polled = std::panic::catch_unwind(AssertUnwindSafe(|| {
                future.as_mut().poll(&mut Context::from_waker(&waker))
            }));
            let finished = match polled {
                Ok(Poll::Pending) => None,
                Ok(Poll::Ready(result)) => Some(result),
                Err(_) => Some(Err(Fail::new(
                    PieStatus::Panic,
                    "libpie panicked while running an operation",
                ))),
            };
            // Finished, or cancelled meanwhile (from inside the poll, e.g. by a progress
            // callback): the future goes now, still marked as polling so drops nest no poll.
            let cancelled = finished.is_none()
                && self
                    .op
                    .upgrade()
                    .map_or(true, |op| lock(&op.state).result.is_some());
            if finished.is_some() || cancelled {
                *slot = None;
            }
            POLLING.set(false);
            drop(slot);
            if let Some(result) = finished {
                // No handle left: the op was freed, and its result goes with this.
                if let Some(op) = self.op.upgrade() {
                    op.complete(result);
                }
                return;
            }
        }
    }

    /// Drops the future if it has not finished (cancellation or free). Inside this very
    /// operation's poll the lock is ours already: the poll loop drops it when the poll returns.
    fn discard_future(&self) {
        let future = if POLLING.get() {
            match self.future.try_lock() {
                Ok(mut slot) => slot.take(),
                Err(TryLockError::Poisoned(e)) => e.into_inner().take(),
                Err(TryLockError::WouldBlock) => None,
            }
        } else {
            lock(&self.future).take()
        };
        drop(future);
    }
}

/// A network call in progress or finished (opaque). Handed out by every `*_async` function;
/// owned by the caller and freed with pie_op_free. Usable from any thread.
pub struct PieOp {
    state: Mutex<OpState>,
    done: Condvar,
    /// `None` for an operation the core settles itself (`PieOp::settled_by`).
    run: Option<Arc<Runner>>,
    // Last, so the runtime (which the host owns) outlives everything else the operation holds.
    host: OpCtx,
}

/// The core settles an operation made by [`PieOp::settled_by`] through this: once, with the
/// outcome, on whichever thread has it. The core holds the operation weakly: a freed operation
/// is simply gone.
impl<T: Send + 'static> Settles<T> for PieOp {
    fn settle(self: Arc<Self>, outcome: crate::Result<T>) {
        self.complete(
            outcome
                .map(|v| Some(Box::new(v) as Box<dyn Any + Send>))
                .map_err(Fail::from),
        );
    }
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
    /// Starts `fut` (bounded by `limit` if given), first polled where `start` says.
    pub(crate) fn start<F, T>(
        ctx: OpCtx,
        limit: Option<Duration>,
        start: Start,
        fut: F,
    ) -> Arc<PieOp>
    where
        F: Future<Output = FfiResult<T>> + Send + 'static,
        T: Send + 'static,
    {
        ctx.rt().call_starting();
        let future: OpFuture = Box::pin(async move {
            bounded(limit, fut)
                .await
                .map(|v| Some(Box::new(v) as Box<dyn Any + Send>))
        });
        let op = Arc::new_cyclic(|weak| PieOp {
            state: Mutex::new(OpState::default()),
            done: Condvar::new(),
            run: Some(Arc::new(Runner {
                future: Mutex::new(Some(future)),
                notified: AtomicBool::new(false),
                handle: ctx.rt().handle().clone(),
                op: weak.clone(),
            })),
            host: ctx,
        });
        if let Some(run) = &op.run {
            match start {
                Start::Here => run.run(),
                Start::Runtime => {
                    let run = Arc::clone(run);
                    op.host.rt().handle().spawn(async move { run.run() });
                }
            }
        }
        op
    }

    /// An operation the core settles itself ([`Settles`]: no future, no task, no timer per
    /// operation). `start` hands the core the operation and returns `Err` if it declined
    /// (then there is no operation: use [`start`](Self::start)), or the request to forget
    /// (through the host) if the operation is cancelled or freed before it is settled.
    pub(crate) fn settled_by(
        ctx: OpCtx,
        start: impl FnOnce(&Arc<PieOp>) -> Result<Option<Forget>, ()>,
    ) -> Option<Arc<PieOp>> {
        let op = Arc::new(PieOp {
            state: Mutex::new(OpState::default()),
            done: Condvar::new(),
            run: None,
            host: ctx,
        });
        let forget = start(&op).ok()?;
        if let Some(forget) = forget {
            let mut st = lock(&op.state);
            // Settled already (e.g. on this thread): nothing left to forget.
            if st.result.is_none() {
                st.forget = Some(forget);
            }
        }
        Some(op)
    }

    /// Records the result (first one wins: a cancelled operation stays cancelled), wakes waiters
    /// and schedules the callback.
    fn complete(self: &Arc<Self>, result: FfiResult<Value>) {
        let (callback, waiters) = {
            let mut st = lock(&self.state);
            if st.result.is_some() {
                return;
            }
            st.result = Some(result);
            // Settled or cancelled: either way the core has nothing left to forget.
            st.forget = None;
            (st.callback.take(), st.waiters > 0)
        };
        if waiters {
            if crate::client::settling_run() {
                // Woken once the whole run is settled: registered before the run ends.
                crate::client::on_run_settled(notify_deferred_waiters);
                DEFERRED_NOTIFY.with(|d| d.borrow_mut().push(Arc::clone(self)));
            } else {
                self.done.notify_all();
            }
        }
        if let Some(cb) = callback {
            self.schedule(cb);
        }
    }

    /// Calls `cb` on the callback thread; the callback (and so its drop) goes with the job.
    fn schedule(self: &Arc<Self>, cb: Callback<OpFn>) {
        let op = Arc::clone(self);
        // If the callback thread cannot start, the op stays observable through poll/wait.
        let _ = self.host.dispatcher().post_fn(move || {
            let status = op.status();
            let (function, user_data) = cb.parts();
            // SAFETY: host callback with the host's pointer; `op` stays alive during the call
            // because this job holds a reference, even if the host frees it there.
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
        st.waiters += 1;
        while st.result.is_none() {
            match deadline {
                None => st = self.done.wait(st).unwrap_or_else(|e| e.into_inner()),
                Some(dl) => {
                    let now = Instant::now();
                    if now >= dl {
                        break;
                    }
                    st = self
                        .done
                        .wait_timeout(st, dl - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
        st.waiters -= 1;
    }

    /// Finishes a running operation with CANCELLED and drops its future (on this thread,
    /// unless this thread is inside the operation's own poll).
    fn cancel(self: &Arc<Self>) {
        let (forget, finished) = {
            let mut st = lock(&self.state);
            (st.forget.take(), st.result.is_some())
        };
        // Freeing a finished operation (the usual case) builds no error: the result stands.
        if !finished {
            self.complete(Err(Fail::new(
                PieStatus::Cancelled,
                "the operation was cancelled",
            )));
        }
        if let Some(forget) = forget {
            self.host.forget(forget);
        }
        if let Some(run) = &self.run {
            run.discard_future();
        }
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
        if let Some(run) = &self.run {
            run.discard_future();
        }
        // A callback still registered can never be called now; dropping it releases its
        // user_data on the callback thread. (No lock: nothing else can reach the state now.)
        let state = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        drop(state.callback.take());
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
            op.host.dispatcher(),
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
        drop(op);
        Ok(())
    })
}
