//! PieOp: one machinery for every network call. A call starts a task on the runtime and returns
//! an operation; the blocking functions are the same operation followed by a wait, so both forms
//! share one code path.

use std::ffi::{c_char, c_void, CString};
use std::future::Future;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use tokio::task::AbortHandle;

use super::client::{ClientShared, PieClient};
use super::dispatch::{Dispatcher, DropFn, UserData};
use super::instance::{InstanceShared, PieEvent, PieInstance, PieInstanceList};
use super::runtime::{on_runtime_thread, Rt};
use super::status::{
    arg_out, arg_ref, ffi_call, ffi_value, write_error, Fail, FfiResult, PieError, PieStatus,
};

/// The value an operation produced.
pub(crate) enum OpValue {
    Unit,
    Bool(bool),
    Text(CString),
    Client(Arc<ClientShared>),
    Instance(Arc<InstanceShared>),
    List(Box<PieInstanceList>),
    Event(Box<PieEvent>),
    /// The value was moved out by a pie_op_take_* call.
    Taken,
}

/// What keeps an operation's world alive: the runtime, the callback thread and, for calls on a
/// client, the client itself (so the host may free the client before the operation).
pub(crate) struct OpCtx {
    pub(crate) rt: Rt,
    pub(crate) dispatcher: Arc<Dispatcher>,
    pub(crate) client: Option<Arc<ClientShared>>,
}

/// The op callback: called once with the final status, then its drop half runs.
pub type PieOpCallbackFn =
    unsafe extern "C" fn(user_data: *mut c_void, op: *mut PieOp, status: PieStatus);

struct OpCallback {
    call: PieOpCallbackFn,
    drop: DropFn,
}

#[derive(Default)]
struct OpState {
    result: Option<FfiResult<OpValue>>,
    callback: Option<OpCallback>,
}

/// Set when an operation's runtime task (and everything its future held) is gone. The host-side
/// releases wait for it, so that the last reference to a client or to the runtime is never
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
    _client: Option<Arc<ClientShared>>,
    // Last, so the runtime outlives everything else the operation holds.
    rt: Rt,
}

impl PieOp {
    /// Starts `fut` on the runtime, bounded by `limit` if given.
    pub(crate) fn start<F>(ctx: OpCtx, limit: Option<Duration>, fut: F) -> Arc<PieOp>
    where
        F: Future<Output = FfiResult<OpValue>> + Send + 'static,
    {
        let op = Arc::new(PieOp {
            state: Mutex::new(OpState::default()),
            done: Condvar::new(),
            task: Mutex::new(None),
            task_gone: Arc::new(TaskGone::default()),
            dispatcher: ctx.dispatcher,
            _client: ctx.client,
            rt: ctx.rt,
        });
        // The task holds the operation weakly: freeing the operation cancels the call.
        let weak = Arc::downgrade(&op);
        let guard = GoneGuard(Arc::clone(&op.task_gone));
        let task = op.rt.handle().spawn(async move {
            // Declared first, dropped last: after the future and the upgraded `op` below.
            let _guard = guard;
            let bounded = async move {
                match limit {
                    Some(d) => tokio::time::timeout(d, fut).await.unwrap_or_else(|_| {
                        Err(Fail::new(
                            PieStatus::Timeout,
                            format!("no reply within {} ms", d.as_millis()),
                        ))
                    }),
                    None => fut.await,
                }
            };
            let result = std::panic::AssertUnwindSafe(bounded)
                .catch_unwind()
                .await
                .unwrap_or_else(|_| {
                    Err(Fail::new(
                        PieStatus::Panic,
                        "libpie panicked in a runtime task",
                    ))
                });
            if let Some(op) = weak.upgrade() {
                op.complete(result);
            }
        });
        *lock(&op.task) = Some(task.abort_handle());
        op
    }

    /// Records the result (first one wins: a cancelled operation stays cancelled), wakes waiters
    /// and schedules the callback.
    fn complete(self: &Arc<Self>, result: FfiResult<OpValue>) {
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

    fn schedule(self: &Arc<Self>, cb: OpCallback) {
        let op = Arc::clone(self);
        // If the callback thread cannot start, the op stays observable through poll/wait.
        let _ = self.dispatcher.post(Box::new(move || {
            let status = op.status();
            // SAFETY: host callback with the host's pointer; `op` stays alive during the call
            // because this job holds a reference, even if the host frees its handle inside.
            unsafe {
                (cb.call)(
                    cb.drop.user_data.get(),
                    Arc::as_ptr(&op) as *mut PieOp,
                    status,
                )
            };
            cb.drop.run();
        }));
    }

    /// PENDING while running, otherwise the final status.
    pub(crate) fn status(&self) -> PieStatus {
        match &lock(&self.state).result {
            None => PieStatus::Pending,
            Some(Ok(_)) => PieStatus::Ok,
            Some(Err(f)) => f.status,
        }
    }

    /// Waits for completion; `None` waits forever. Returns false on timeout.
    fn wait(&self, timeout: Option<Duration>) -> bool {
        let deadline = timeout.map(|d| Instant::now() + d);
        let mut st = lock(&self.state);
        while st.result.is_none() {
            match deadline {
                None => st = self.done.wait(st).unwrap_or_else(|e| e.into_inner()),
                Some(dl) => {
                    let now = Instant::now();
                    if now >= dl {
                        return false;
                    }
                    st = self
                        .done
                        .wait_timeout(st, dl - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
        true
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

    /// The blocking form of every call: wait for the operation and move its value out.
    pub(crate) fn block(self: Arc<Self>) -> FfiResult<OpValue> {
        if on_runtime_thread() {
            self.cancel();
            return Err(Fail::new(
                PieStatus::Busy,
                "blocking libpie call made on a runtime thread (e.g. from an upload progress \
                 callback); use the _async form",
            ));
        }
        self.wait(None);
        let value = self.take(|v| Some(std::mem::replace(v, OpValue::Taken)));
        // The task may still hold a reference for a moment after completing; the last one must
        // be released here, on the host's thread.
        self.wait_task_gone();
        value
    }

    /// Applies `pick` to the successful value; PENDING while running, the failure otherwise,
    /// INVALID_ARGUMENT if `pick` finds the wrong kind of value.
    fn take<T>(&self, pick: impl FnOnce(&mut OpValue) -> Option<T>) -> FfiResult<T> {
        let mut st = lock(&self.state);
        match &mut st.result {
            None => Err(Fail::new(
                PieStatus::Pending,
                "the operation has not finished",
            )),
            Some(Err(f)) => Err(f.clone()),
            Some(Ok(OpValue::Taken)) => Err(Fail::new(
                PieStatus::InvalidArgument,
                "the operation's result was already taken",
            )),
            Some(Ok(v)) => pick(v).ok_or_else(|| {
                Fail::new(
                    PieStatus::InvalidArgument,
                    "the operation has no result of the requested type",
                )
            }),
        }
    }
}

impl Drop for PieOp {
    fn drop(&mut self) {
        if let Some(task) = lock(&self.task).take() {
            task.abort();
        }
        // A callback still registered can never be called now: honour its drop half.
        if let Some(cb) = lock(&self.state).callback.take() {
            cb.drop.run();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl OpValue {
    fn wrong(what: &str) -> Fail {
        Fail::new(
            PieStatus::Internal,
            format!("the operation produced no {what}"),
        )
    }

    pub(crate) fn into_text(self) -> FfiResult<CString> {
        match self {
            OpValue::Text(t) => Ok(t),
            _ => Err(Self::wrong("text")),
        }
    }

    pub(crate) fn into_bool(self) -> FfiResult<bool> {
        match self {
            OpValue::Bool(b) => Ok(b),
            _ => Err(Self::wrong("boolean")),
        }
    }

    pub(crate) fn into_client(self) -> FfiResult<Arc<ClientShared>> {
        match self {
            OpValue::Client(c) => Ok(c),
            _ => Err(Self::wrong("client")),
        }
    }

    pub(crate) fn into_instance(self) -> FfiResult<Arc<InstanceShared>> {
        match self {
            OpValue::Instance(i) => Ok(i),
            _ => Err(Self::wrong("instance")),
        }
    }

    pub(crate) fn into_list(self) -> FfiResult<Box<PieInstanceList>> {
        match self {
            OpValue::List(l) => Ok(l),
            _ => Err(Self::wrong("instance list")),
        }
    }

    pub(crate) fn into_event(self) -> FfiResult<Box<PieEvent>> {
        match self {
            OpValue::Event(e) => Ok(e),
            _ => Err(Self::wrong("event")),
        }
    }
}

/// Shared body of every blocking network call: `make` checks the arguments (out-parameters
/// included, so nothing is sent for a call that cannot deliver its result) and starts the
/// operation; the call waits for it and hands the value to `finish`.
pub(crate) fn blocking(
    out_err: *mut *mut PieError,
    make: impl FnOnce() -> FfiResult<Arc<PieOp>>,
    finish: impl FnOnce(OpValue) -> FfiResult,
) -> PieStatus {
    ffi_call(out_err, || finish(make()?.block()?))
}

/// `finish` for calls without a result value.
pub(crate) fn ignore(_: OpValue) -> FfiResult {
    Ok(())
}

/// Shared body of every `_async` call: the operation goes to `*out_op` (owned by the caller).
pub(crate) unsafe fn start_async(
    out_op: *mut *mut PieOp,
    out_err: *mut *mut PieError,
    make: impl FnOnce() -> FfiResult<Arc<PieOp>>,
) -> PieStatus {
    ffi_call(out_err, || {
        let out = arg_out(out_op, "out_op")?;
        *out = Arc::into_raw(make()?) as *mut PieOp;
        Ok(())
    })
}

/// Borrows the operation behind a host handle, keeping it alive for the duration of the call.
unsafe fn op_arg(op: *const PieOp) -> FfiResult<Arc<PieOp>> {
    arg_ref(op, "op")?;
    Arc::increment_strong_count(op);
    Ok(Arc::from_raw(op))
}

/// Whether the operation finished: PIE_STATUS_PENDING while it runs, then its final status
/// (PIE_STATUS_OK or the failure). Never blocks. Returns PIE_STATUS_NULL_POINTER if `op` is NULL.
#[no_mangle]
pub unsafe extern "C" fn pie_op_poll(op: *const PieOp) -> PieStatus {
    ffi_value(PieStatus::NullPointer, || Ok(op_arg(op)?.status()))
}

/// Waits until the operation finishes or `timeout_ms` elapses (-1, or any negative value, waits
/// forever; 0 does not wait). Returns the final status, or PIE_STATUS_PENDING if it is still running at the timeout.
/// Must not be called from an upload progress callback (PIE_STATUS_BUSY).
#[no_mangle]
pub unsafe extern "C" fn pie_op_wait(op: *const PieOp, timeout_ms: i32) -> PieStatus {
    ffi_value(PieStatus::NullPointer, || {
        let op = op_arg(op)?;
        if on_runtime_thread() && timeout_ms != 0 {
            return Ok(PieStatus::Busy);
        }
        let limit = u64::try_from(timeout_ms).ok().map(Duration::from_millis);
        op.wait(limit);
        Ok(op.status())
    })
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
    callback: Option<
        unsafe extern "C" fn(user_data: *mut c_void, op: *mut PieOp, status: PieStatus),
    >,
    user_data: *mut c_void,
    drop: Option<unsafe extern "C" fn(user_data: *mut c_void)>,
    out_err: *mut *mut PieError,
) -> PieStatus {
    ffi_call(out_err, || {
        let op = op_arg(op)?;
        let call =
            callback.ok_or_else(|| Fail::new(PieStatus::NullPointer, "`callback` is NULL"))?;
        let cb = OpCallback {
            call,
            drop: DropFn {
                drop,
                user_data: UserData(user_data),
            },
        };
        let (old, now) = {
            let mut st = lock(&op.state);
            if st.result.is_some() {
                (None, Some(cb))
            } else {
                (st.callback.replace(cb), None)
            }
        };
        if let Some(old) = old {
            let _ = op.dispatcher.post(Box::new(move || old.drop.run()));
        }
        if let Some(cb) = now {
            op.schedule(cb);
        }
        Ok(())
    })
}

/// Cancels the operation if it is still running: it then finishes with PIE_STATUS_CANCELLED
/// (its callback, if any, is called with that status). No effect on a finished operation.
/// A request already sent may still take effect on the server. Returns PIE_STATUS_OK, or
/// PIE_STATUS_NULL_POINTER.
#[no_mangle]
pub unsafe extern "C" fn pie_op_cancel(op: *const PieOp) -> PieStatus {
    ffi_value(PieStatus::NullPointer, || {
        op_arg(op)?.cancel();
        Ok(PieStatus::Ok)
    })
}

/// The operation's status (as pie_op_poll); if it failed and `out_err` is not NULL, also a new
/// error object describing the failure, owned by the caller (pie_error_free).
#[no_mangle]
pub unsafe extern "C" fn pie_op_error(op: *const PieOp, out_err: *mut *mut PieError) -> PieStatus {
    ffi_value(PieStatus::NullPointer, || {
        let op = op_arg(op)?;
        let fail = match &lock(&op.state).result {
            None => return Ok(PieStatus::Pending),
            Some(Ok(_)) => return Ok(PieStatus::Ok),
            Some(Err(f)) => f.clone(),
        };
        let status = fail.status;
        write_error(out_err, fail);
        Ok(status)
    })
}

/// Shared body of the pie_op_take_* functions: a value of the kind `is_kind` accepts is moved
/// out and converted; any other value stays in the operation.
unsafe fn take_into<T>(
    op: *const PieOp,
    out: *mut *mut T,
    out_err: *mut *mut PieError,
    is_kind: fn(&OpValue) -> bool,
    into_raw: impl FnOnce(OpValue) -> FfiResult<*mut T>,
) -> PieStatus {
    ffi_call(out_err, || {
        let op = op_arg(op)?;
        let out = arg_out(out, "out")?;
        let value = op.take(|v| is_kind(v).then(|| std::mem::replace(v, OpValue::Taken)))?;
        *out = into_raw(value)?;
        Ok(())
    })
}

/// Moves the connected client out of a finished pie_client_connect_async operation. The caller
/// owns it (pie_client_free). Errors: PIE_STATUS_PENDING (still running), the operation's failure
/// status, PIE_STATUS_INVALID_ARGUMENT (not a connect operation, or already taken),
/// PIE_STATUS_NULL_POINTER.
#[no_mangle]
pub unsafe extern "C" fn pie_op_take_client(
    op: *const PieOp,
    out_client: *mut *mut PieClient,
    out_err: *mut *mut PieError,
) -> PieStatus {
    let is_kind: fn(&OpValue) -> bool = |v| matches!(v, OpValue::Client(_));
    take_into(op, out_client, out_err, is_kind, |v| {
        Ok(PieClient::into_raw(v.into_client()?))
    })
}

/// Moves the instance out of a finished launch/attach operation. The caller owns it
/// (pie_instance_free). Errors as pie_op_take_client.
#[no_mangle]
pub unsafe extern "C" fn pie_op_take_instance(
    op: *const PieOp,
    out_instance: *mut *mut PieInstance,
    out_err: *mut *mut PieError,
) -> PieStatus {
    let is_kind: fn(&OpValue) -> bool = |v| matches!(v, OpValue::Instance(_));
    take_into(op, out_instance, out_err, is_kind, |v| {
        Ok(PieInstance::into_raw(v.into_instance()?))
    })
}

/// Moves the list out of a finished pie_client_list_instances_async operation. The caller owns
/// it (pie_instance_list_free). Errors as pie_op_take_client.
#[no_mangle]
pub unsafe extern "C" fn pie_op_take_instance_list(
    op: *const PieOp,
    out_list: *mut *mut PieInstanceList,
    out_err: *mut *mut PieError,
) -> PieStatus {
    let is_kind: fn(&OpValue) -> bool = |v| matches!(v, OpValue::List(_));
    take_into(op, out_list, out_err, is_kind, |v| {
        Ok(Box::into_raw(v.into_list()?))
    })
}

/// Moves the event out of a finished pie_instance_recv_async operation. The caller owns it
/// (pie_event_free). Errors as pie_op_take_client (a recv that timed out has status
/// PIE_STATUS_TIMEOUT, an ended stream PIE_STATUS_STREAM_ENDED, ...).
#[no_mangle]
pub unsafe extern "C" fn pie_op_take_event(
    op: *const PieOp,
    out_event: *mut *mut PieEvent,
    out_err: *mut *mut PieError,
) -> PieStatus {
    let is_kind: fn(&OpValue) -> bool = |v| matches!(v, OpValue::Event(_));
    take_into(op, out_event, out_err, is_kind, |v| {
        Ok(Box::into_raw(v.into_event()?))
    })
}

/// The text result of a finished query or upload_program operation (the query's answer, or the
/// program hash): NUL-terminated UTF-8, borrowed, valid until pie_op_free(op). NULL if the
/// operation is still running, failed, has no text result, or `op` is NULL.
#[no_mangle]
pub unsafe extern "C" fn pie_op_result_string(op: *const PieOp) -> *const c_char {
    ffi_value(std::ptr::null(), || {
        let op = op_arg(op)?;
        // The CString's heap buffer does not move while it stays in the op, so the pointer
        // remains valid after the lock is released.
        op.take(|v| match v {
            OpValue::Text(t) => Some(t.as_ptr()),
            _ => None,
        })
    })
}

/// The boolean result of a finished pie_client_program_exists_async operation, written to
/// `*out` on success. Errors as pie_op_take_client.
#[no_mangle]
pub unsafe extern "C" fn pie_op_result_bool(
    op: *const PieOp,
    out: *mut bool,
    out_err: *mut *mut PieError,
) -> PieStatus {
    ffi_call(out_err, || {
        let op = op_arg(op)?;
        let out = arg_out(out, "out")?;
        *out = op.take(|v| match v {
            OpValue::Bool(b) => Some(*b),
            _ => None,
        })?;
        Ok(())
    })
}

/// Frees an operation. A still-running operation is cancelled first (its callback, if any, is
/// still called, with PIE_STATUS_CANCELLED). Results not taken are freed with it. NULL is a no-op.
/// May be called from inside the operation's own callback.
#[no_mangle]
pub unsafe extern "C" fn pie_op_free(op: *mut PieOp) {
    ffi_value((), || {
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
