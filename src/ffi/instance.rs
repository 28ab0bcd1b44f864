//! PieInstance: a running program, its network calls (launch, attach, send, upload a blob,
//! terminate, receive) and its event delivery (polled queue, callback, wake fd).

use std::ffi::{c_char, c_void, CString};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::client::{Instance, InstanceEvent};
use crate::{Error, ErrorKind};

use super::boundary::{
    arg_argv, arg_bytes, arg_fn, arg_out, arg_ref, arg_str, arg_timeout, call, value,
};
use super::call::{start_async, Call};
use super::callback::{Callback, PieDropCallback};
use super::client::{client_arg, terminate, ClientShared, PieClient, PieProgressCallback};
use super::dispatch::Task;
use super::error::{Fail, FfiResult, PieError};
use super::event::{PieEvent, PieEventCallback};
use super::op::{take_result, PieOp};
use super::status::PieStatus;
use super::string::to_cstring;

type EventFn = unsafe extern "C" fn(*mut c_void, PieStatus, *const PieEvent);

enum Mode {
    /// Events wait in the queue for pie_instance_recv (and drive the client's wake fd).
    Poll,
    /// Events go to the callback on the client's callback thread.
    Callback(Callback<EventFn>),
}

pub(crate) struct InstanceShared {
    core: Instance,
    id: CString,
    mode: Mutex<Mode>,
    /// Set by pie_instance_free: no further callback calls.
    freed: AtomicBool,
    /// A delivery job is queued on the callback thread (coalesces notifications).
    scheduled: AtomicBool,
    /// Poll mode: counted in the client's ready count (the wake fd is readable). Changed only
    /// through ClientShared::set_ready, under the client's wake lock.
    ready: AtomicBool,
    /// The end of the stream was handed to the host (a recv status or the final callback).
    end_reported: AtomicBool,
    // Last: the client outlives the core instance.
    client: Arc<ClientShared>,
}

fn lock(m: &Mutex<Mode>) -> MutexGuard<'_, Mode> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl InstanceShared {
    pub(crate) fn new(client: Arc<ClientShared>, core: Instance) -> Arc<InstanceShared> {
        let shared = Arc::new(InstanceShared {
            id: to_cstring(core.id()),
            core,
            mode: Mutex::new(Mode::Poll),
            freed: AtomicBool::new(false),
            scheduled: AtomicBool::new(false),
            ready: AtomicBool::new(false),
            end_reported: AtomicBool::new(false),
            client,
        });
        shared
    }

    /// Starts driving the wake fd / callback thread from the core's notifications. Called when
    /// the instance is handed to the host (PieInstance::into_raw), not when the launch or attach
    /// reply arrives: until then the host has no handle to drain it with, and an instance marked
    /// ready inside a still-pending operation made the event fd readable with nothing the host
    /// could take (a poll loop spun until the operation completed).
    fn start_notifications(self: &Arc<Self>) {
        // The core calls a newly installed hook once at once if events are already queued or
        // the stream already ended, so nothing that arrived before this point is missed.
        let weak = Arc::downgrade(self);
        self.core.set_notify(Some(Arc::new(move || {
            if let Some(inst) = weak.upgrade() {
                inst.on_notify();
            }
        })));
    }

    /// Called on the reader task when an event is queued or the stream ends: cheap, no blocking.
    fn on_notify(self: &Arc<Self>) {
        // Nothing can follow a reported end; a later notification (e.g. the connection closing
        // after the terminal event) must not make the wake fd readable again.
        if self.end_reported.load(Ordering::SeqCst) {
            return;
        }
        let poll = matches!(*lock(&self.mode), Mode::Poll);
        if poll {
            self.mark_ready();
        } else {
            self.schedule();
        }
    }

    fn mark_ready(&self) {
        // Unlocked fast path (the reader calls this per event): an instance already marked stays
        // marked until the host's recv settles it, and settle re-checks the queue afterwards.
        if !self.ready.load(Ordering::SeqCst) {
            // Re-checked under the client's wake lock, which the host's side also takes after
            // setting these (so a host that freed the instance, switched it to a callback or
            // was handed its end either sees the mark and clears it, or vetoes it here).
            //
            // The queue is looked at here too, under that lock: the reader announces an event
            // after queueing it, and a host draining meanwhile may already have taken it, got
            // TIMEOUT and settled. A mark made after that settle, for an event that is gone,
            // left the fd readable with nothing to receive until some later recv of this
            // instance. With the check, a mark either sees the queue still holding something
            // (the host's settle, which takes this lock after its recv found the queue empty,
            // comes later and clears it) or sees nothing and is not made.
            self.client.set_ready(&self.ready, true, || {
                !self.freed.load(Ordering::SeqCst)
                    && !self.end_reported.load(Ordering::SeqCst)
                    && matches!(*lock(&self.mode), Mode::Poll)
                    && self.core.has_news()
            });
        }
    }

    fn clear_ready(&self) {
        // Always under the lock (no unlocked fast path): a mark that passed its veto check is
        // then either complete, and cleared here, or not begun, and sees the new state.
        self.client.set_ready(&self.ready, false, || true);
    }

    /// After a recv found nothing (or the end): un-ready unless events arrived meanwhile.
    /// Clearing first and re-checking second means a concurrent notification is never lost.
    fn settle(&self) {
        self.clear_ready();
        if self.core.pending_events() > 0 {
            self.mark_ready();
        }
    }

    fn schedule(self: &Arc<Self>) {
        if !self.scheduled.swap(true, Ordering::SeqCst) {
            // Posting the instance itself: no allocation per event.
            let _ = self
                .client
                .dispatcher
                .post_task(Arc::clone(self) as Arc<dyn Task>);
        }
    }

    /// Runs on the callback thread: hands every queued event to the callback, in order; at the
    /// end of the stream makes the final call and releases the registration.
    fn deliver(&self) {
        self.scheduled.store(false, Ordering::SeqCst);
        loop {
            if self.freed.load(Ordering::SeqCst) {
                return;
            }
            let (function, user_data) = match &*lock(&self.mode) {
                Mode::Callback(cb) => cb.parts(),
                Mode::Poll => return,
            };
            match self.core.try_recv() {
                Ok(Some(ev)) => {
                    let ev = PieEvent::from(ev);
                    // SAFETY: host callback; the event is borrowed for the call only.
                    unsafe { function(user_data, PieStatus::Ok, &ev) };
                }
                Ok(None) => return,
                Err(e) => {
                    let cb = match std::mem::replace(&mut *lock(&self.mode), Mode::Poll) {
                        Mode::Callback(cb) => cb,
                        Mode::Poll => return,
                    };
                    let status = Fail::from(e).status;
                    self.end_reported.store(true, Ordering::SeqCst);
                    let (function, user_data) = cb.parts();
                    // SAFETY: as above; the final call carries no event.
                    unsafe { function(user_data, status, std::ptr::null()) };
                    // Releases user_data (we are on the callback thread).
                    drop(cb);
                    return;
                }
            }
        }
    }

    fn poll_mode(&self) -> FfiResult {
        match *lock(&self.mode) {
            Mode::Poll => Ok(()),
            Mode::Callback(_) => Err(Fail::new(
                PieStatus::Busy,
                "this instance delivers its events to a callback; pie_instance_recv is not available",
            )),
        }
    }

    fn after_recv(&self, r: &Result<InstanceEvent, Error>) {
        // After an event the host keeps calling recv until it gets something else, so the fd
        // only needs re-evaluating on a non-event result.
        if let Err(e) = r {
            if e.kind() != ErrorKind::Timeout {
                self.end_reported.store(true, Ordering::SeqCst);
            }
            self.settle();
        }
    }

    fn recv_now(&self) -> Result<InstanceEvent, Error> {
        let r = self
            .core
            .try_recv()
            .and_then(|o| o.ok_or_else(|| Error::new(ErrorKind::Timeout, "no event queued")));
        self.after_recv(&r);
        r
    }

    /// The receive call: the next event within `timeout` (`None`: no limit).
    fn recv(
        self: &Arc<Self>,
        timeout: Option<Duration>,
    ) -> Call<impl Future<Output = FfiResult<Box<PieEvent>>>> {
        let me = Arc::clone(self);
        self.client.long_call(async move {
            let r = match timeout {
                Some(d) if d.is_zero() => me.recv_now(),
                Some(d) => {
                    let r = tokio::time::timeout(d, me.core.recv())
                        .await
                        .unwrap_or_else(|_| {
                            Err(Error::new(
                                ErrorKind::Timeout,
                                format!("no event within {} ms", d.as_millis()),
                            ))
                        });
                    me.after_recv(&r);
                    r
                }
                None => {
                    let r = me.core.recv().await;
                    me.after_recv(&r);
                    r
                }
            };
            Ok(Box::new(PieEvent::from(r?)))
        })
    }
}

impl Task for InstanceShared {
    fn run(self: Arc<Self>) {
        self.deliver();
    }
}

impl Drop for InstanceShared {
    fn drop(&mut self) {
        // Never leave the client's wake fd counting an instance nobody can drain any more
        // (e.g. a launch that completed after its operation was freed, with events queued).
        self.freed.store(true, Ordering::SeqCst);
        self.clear_ready();
    }
}

/// A running program instance (opaque). Created by a launch or attach, owned by the caller,
/// freed with pie_instance_free. Every function taking an instance may be called from any
/// thread; it keeps its client's connection state alive.
pub struct PieInstance {
    shared: Arc<InstanceShared>,
}

impl PieInstance {
    fn into_raw(shared: Arc<InstanceShared>) -> *mut PieInstance {
        shared.start_notifications();
        Box::into_raw(Box::new(PieInstance { shared }))
    }
}

unsafe fn inst_arg<'a>(instance: *const PieInstance) -> FfiResult<&'a Arc<InstanceShared>> {
    Ok(&arg_ref(instance, "instance")?.shared)
}

// ------------------------------------------------------------------------------------------
// Launching and attaching: one network call for the three instance-producing requests.
// ------------------------------------------------------------------------------------------

/// What to launch (or attach).
enum Launch {
    Hash(String),
    Registry(String),
    Attach(String),
    /// Pie 0.5: `name[@version]` with JSON input.
    Process {
        inferlet: String,
        input: String,
    },
}

impl Launch {
    /// `kind` of the string argument `p` (named `name` in errors).
    unsafe fn named(kind: fn(String) -> Launch, p: *const c_char, name: &str) -> FfiResult<Launch> {
        Ok(kind(arg_str(p, name)?.to_owned()))
    }
}

unsafe fn launch(
    client: *const PieClient,
    what: FfiResult<Launch>,
    argv: *const *const c_char,
    argc: usize,
    detached: bool,
) -> FfiResult<Call<impl Future<Output = FfiResult<Arc<InstanceShared>>>>> {
    let c = client_arg(client)?;
    let what = what?;
    let args = arg_argv(argv, argc)?;
    let me = Arc::clone(c);
    Ok(c.long_call(async move {
        let inst = match what {
            Launch::Hash(h) => me.core.launch_instance(&h, args, detached).await?,
            Launch::Registry(n) => {
                me.core
                    .launch_instance_from_registry(&n, args, detached)
                    .await?
            }
            Launch::Attach(id) => me.core.attach_instance(&id).await?,
            Launch::Process { inferlet, input } => {
                me.core.launch(&inferlet, &input, detached).await?
            }
        };
        Ok(InstanceShared::new(me, inst))
    }))
}

/// Blocking body of the three instance-producing calls.
unsafe fn launch_blocking(
    out_instance: *mut *mut PieInstance,
    call: FfiResult<Call<impl Future<Output = FfiResult<Arc<InstanceShared>>>>>,
) -> FfiResult {
    let out = arg_out(out_instance, "out_instance")?;
    *out = PieInstance::into_raw(call?.block()?);
    Ok(())
}

/// Launches the program with hash `hash` with `argc` arguments `argv` (UTF-8, copied; `argv` may
/// be NULL when `argc` is 0). The instance goes to `*out_instance` (owned by the caller:
/// pie_instance_free). A `detached` instance runs without sending events to this connection:
/// attach it to receive them. Errors: PIE_STATUS_NULL_POINTER (also for a NULL argv[i]),
/// PIE_STATUS_INVALID_UTF8, PIE_STATUS_SERVER (e.g. program not found; the server's text),
/// PIE_STATUS_TIMEOUT, PIE_STATUS_CONNECTION_CLOSED, PIE_STATUS_CLIENT_CLOSED.
#[no_mangle]
pub unsafe extern "C" fn pie_client_launch_instance(
    client: *const PieClient,
    hash: *const c_char,
    argv: *const *const c_char,
    argc: usize,
    detached: bool,
    out_instance: *mut *mut PieInstance,
    out_err: *mut *mut PieError,
) -> PieStatus {
    call(out_err, || {
        launch_blocking(
            out_instance,
            launch(
                client,
                Launch::named(Launch::Hash, hash, "hash"),
                argv,
                argc,
                detached,
            ),
        )
    })
}

/// Asynchronous pie_client_launch_instance; the instance is pie_op_take_instance(op, ...).
#[no_mangle]
pub unsafe extern "C" fn pie_client_launch_instance_async(
    client: *const PieClient,
    hash: *const c_char,
    argv: *const *const c_char,
    argc: usize,
    detached: bool,
    out_op: *mut *mut PieOp,
    out_err: *mut *mut PieError,
) -> PieStatus {
    start_async(out_op, out_err, || {
        launch(
            client,
            Launch::named(Launch::Hash, hash, "hash"),
            argv,
            argc,
            detached,
        )
    })
}

/// Launches an inferlet from the server's registry by `name` ("namespace/name@version" or
/// "name@version"; the server may download it first, so this may take longer than a request
/// timeout). Otherwise as pie_client_launch_instance.
#[no_mangle]
pub unsafe extern "C" fn pie_client_launch_instance_from_registry(
    client: *const PieClient,
    name: *const c_char,
    argv: *const *const c_char,
    argc: usize,
    detached: bool,
    out_instance: *mut *mut PieInstance,
    out_err: *mut *mut PieError,
) -> PieStatus {
    call(out_err, || {
        launch_blocking(
            out_instance,
            launch(
                client,
                Launch::named(Launch::Registry, name, "name"),
                argv,
                argc,
                detached,
            ),
        )
    })
}

/// Asynchronous pie_client_launch_instance_from_registry (pie_op_take_instance).
#[no_mangle]
pub unsafe extern "C" fn pie_client_launch_instance_from_registry_async(
    client: *const PieClient,
    name: *const c_char,
    argv: *const *const c_char,
    argc: usize,
    detached: bool,
    out_op: *mut *mut PieOp,
    out_err: *mut *mut PieError,
) -> PieStatus {
    start_async(out_op, out_err, || {
        launch(
            client,
            Launch::named(Launch::Registry, name, "name"),
            argv,
            argc,
            detached,
        )
    })
}

unsafe fn launch_process_arg(inferlet: *const c_char, input: *const c_char) -> FfiResult<Launch> {
    Ok(Launch::Process {
        inferlet: arg_str(inferlet, "inferlet")?.to_owned(),
        input: arg_str(input, "input")?.to_owned(),
    })
}

/// Pie 0.5: launches the installed or built-in program `inferlet` ("name" for the latest
/// installed version, or "name@major.minor.patch") with `input` (JSON text, copied; for
/// programs with `call = "kwargs"` a JSON object of keyword arguments, e.g. "{\"n\": 5}"). The
/// instance goes to `*out_instance` (pie_instance_free).
///
/// Attached (`detached` false): the instance receives the process's events; closing the
/// connection kills the process. Detached: the 0.5.2 server does not say which process it
/// started; libpie lists the processes before and after the launch (its own launches on this
/// client wait meanwhile) and gives the handle the id of the one new process with this program
/// and exactly this input. When there is none (it already finished) or more than one (another
/// client launched the same program with the same input at that moment), pie_instance_id is
/// the empty string: the process was launched, its id is unknown.
///
/// Errors: PIE_STATUS_NULL_POINTER, PIE_STATUS_INVALID_UTF8, PIE_STATUS_INVALID_ARGUMENT (input
/// that is not JSON, an inferlet name or version of the wrong form; the message names the
/// parameter; nothing is sent), PIE_STATUS_SERVER (e.g. "program x@1.0.0 is not installed
/// (looked in ...)"; the server's text), PIE_STATUS_UNSUPPORTED (a January-2026 server: use
/// pie_client_launch_instance_from_registry), PIE_STATUS_TIMEOUT (also an engine that has
/// wedged), PIE_STATUS_CONNECTION_CLOSED, PIE_STATUS_CLIENT_CLOSED.
#[no_mangle]
pub unsafe extern "C" fn pie_client_launch_process(
    client: *const PieClient,
    inferlet: *const c_char,
    input: *const c_char,
    detached: bool,
    out_instance: *mut *mut PieInstance,
    out_err: *mut *mut PieError,
) -> PieStatus {
    call(out_err, || {
        launch_blocking(
            out_instance,
            launch(
                client,
                launch_process_arg(inferlet, input),
                std::ptr::null(),
                0,
                detached,
            ),
        )
    })
}

/// Asynchronous pie_client_launch_process (pie_op_take_instance).
#[no_mangle]
pub unsafe extern "C" fn pie_client_launch_process_async(
    client: *const PieClient,
    inferlet: *const c_char,
    input: *const c_char,
    detached: bool,
    out_op: *mut *mut PieOp,
    out_err: *mut *mut PieError,
) -> PieStatus {
    start_async(out_op, out_err, || {
        launch(
            client,
            launch_process_arg(inferlet, input),
            std::ptr::null(),
            0,
            detached,
        )
    })
}

/// Attaches this connection to the running instance `id` (a UUID, e.g. from
/// pie_client_list_instances or a detached launch), so that its events come here. The new handle
/// goes to `*out_instance` (pie_instance_free). Errors: PIE_STATUS_NULL_POINTER,
/// PIE_STATUS_INVALID_UTF8, PIE_STATUS_SERVER (no such instance, or already attached elsewhere),
/// PIE_STATUS_TIMEOUT, PIE_STATUS_CONNECTION_CLOSED, PIE_STATUS_CLIENT_CLOSED.
#[no_mangle]
pub unsafe extern "C" fn pie_client_attach_instance(
    client: *const PieClient,
    id: *const c_char,
    out_instance: *mut *mut PieInstance,
    out_err: *mut *mut PieError,
) -> PieStatus {
    call(out_err, || {
        launch_blocking(
            out_instance,
            launch(
                client,
                Launch::named(Launch::Attach, id, "id"),
                std::ptr::null(),
                0,
                false,
            ),
        )
    })
}

/// Asynchronous pie_client_attach_instance (pie_op_take_instance).
#[no_mangle]
pub unsafe extern "C" fn pie_client_attach_instance_async(
    client: *const PieClient,
    id: *const c_char,
    out_op: *mut *mut PieOp,
    out_err: *mut *mut PieError,
) -> PieStatus {
    start_async(out_op, out_err, || {
        launch(
            client,
            Launch::named(Launch::Attach, id, "id"),
            std::ptr::null(),
            0,
            false,
        )
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
    take_result(op, out_instance, out_err, PieInstance::into_raw)
}

// ------------------------------------------------------------------------------------------
// The instance's own calls
// ------------------------------------------------------------------------------------------

/// The instance id (a lowercase UUID): NUL-terminated, borrowed, valid until
/// pie_instance_free(instance). NULL if `instance` is NULL.
#[no_mangle]
pub unsafe extern "C" fn pie_instance_id(instance: *const PieInstance) -> *const c_char {
    value(|| Ok(inst_arg(instance)?.id.as_ptr()))
}

/// True if the instance was launched detached (this handle then cannot receive or send; attach
/// it with pie_client_attach_instance). False for NULL.
#[no_mangle]
pub unsafe extern "C" fn pie_instance_is_detached(instance: *const PieInstance) -> bool {
    value(|| Ok(inst_arg(instance)?.core.is_detached()))
}

unsafe fn send(
    instance: *const PieInstance,
    message: *const c_char,
) -> FfiResult<Call<impl Future<Output = FfiResult>>> {
    let i = inst_arg(instance)?;
    let message = arg_str(message, "message")?.to_owned();
    let me = Arc::clone(i);
    Ok(i.client
        .call(async move { Ok(me.core.send(&message).await?) }))
}

/// Sends a text message (UTF-8, copied) to the instance. The server gives no reply; OK means it
/// was sent. On Pie 0.5 this is `signal_process`, which fails silently: a message to a process
/// that has ended, or that another connection is attached to, is dropped without any error.
/// Errors: PIE_STATUS_NULL_POINTER, PIE_STATUS_INVALID_UTF8, PIE_STATUS_DETACHED,
/// PIE_STATUS_CONNECTION_CLOSED, PIE_STATUS_CLIENT_CLOSED.
#[no_mangle]
pub unsafe extern "C" fn pie_instance_send(
    instance: *const PieInstance,
    message: *const c_char,
    out_err: *mut *mut PieError,
) -> PieStatus {
    call(out_err, || send(instance, message)?.block())
}

/// Asynchronous pie_instance_send (no result value).
#[no_mangle]
pub unsafe extern "C" fn pie_instance_send_async(
    instance: *const PieInstance,
    message: *const c_char,
    out_op: *mut *mut PieOp,
    out_err: *mut *mut PieError,
) -> PieStatus {
    start_async(out_op, out_err, || send(instance, message))
}

unsafe fn upload_blob(
    instance: *const PieInstance,
    data: *const u8,
    len: usize,
    progress: PieProgressCallback,
    user_data: *mut c_void,
) -> FfiResult<Call<impl Future<Output = FfiResult>>> {
    let i = inst_arg(instance)?;
    let data = arg_bytes(data, len, "data")?.to_vec();
    let progress = i.client.progress(progress, user_data);
    let me = Arc::clone(i);
    Ok(i.client.long_call(async move {
        Ok(me
            .core
            .upload_blob_with_progress(&data, progress.as_deref())
            .await?)
    }))
}

/// Uploads `len` bytes (copied) to the instance as a blob. `progress` as in
/// pie_client_upload_program. Warning: the January-2026 server stops serving the connection after
/// a blob upload. On Pie 0.5 this is `transfer_file`, fire-and-forget: OK means every chunk was
/// handed to the socket, not that the process got the file. The server reports no failure (bad
/// hash, unknown process), and it drops a file that arrives before the inferlet waits for one in
/// `receive_file()`: send a file only after the inferlet said it is ready (e.g. a message).
/// Errors: PIE_STATUS_NULL_POINTER, PIE_STATUS_DETACHED, PIE_STATUS_SERVER,
/// PIE_STATUS_TIMEOUT, PIE_STATUS_CONNECTION_CLOSED, PIE_STATUS_CLIENT_CLOSED.
#[no_mangle]
pub unsafe extern "C" fn pie_instance_upload_blob(
    instance: *const PieInstance,
    data: *const u8,
    len: usize,
    progress: PieProgressCallback,
    user_data: *mut c_void,
    out_err: *mut *mut PieError,
) -> PieStatus {
    call(out_err, || {
        upload_blob(instance, data, len, progress, user_data)?.block()
    })
}

/// Asynchronous pie_instance_upload_blob (no result value); `progress` runs on a libpie runtime
/// thread; `user_data` must stay valid until the operation finishes.
#[no_mangle]
pub unsafe extern "C" fn pie_instance_upload_blob_async(
    instance: *const PieInstance,
    data: *const u8,
    len: usize,
    progress: PieProgressCallback,
    user_data: *mut c_void,
    out_op: *mut *mut PieOp,
    out_err: *mut *mut PieError,
) -> PieStatus {
    start_async(out_op, out_err, || {
        upload_blob(instance, data, len, progress, user_data)
    })
}

unsafe fn terminate_self(
    instance: *const PieInstance,
) -> FfiResult<Call<impl Future<Output = FfiResult>>> {
    let i = inst_arg(instance)?;
    Ok(terminate(&i.client, i.core.id().to_owned()))
}

/// Terminates the instance (as pie_client_terminate_instance with its id). Its stream then ends
/// with an ABORTED event. Errors as pie_client_terminate_instance.
#[no_mangle]
pub unsafe extern "C" fn pie_instance_terminate(
    instance: *const PieInstance,
    out_err: *mut *mut PieError,
) -> PieStatus {
    call(out_err, || terminate_self(instance)?.block())
}

/// Asynchronous pie_instance_terminate (no result value).
#[no_mangle]
pub unsafe extern "C" fn pie_instance_terminate_async(
    instance: *const PieInstance,
    out_op: *mut *mut PieOp,
    out_err: *mut *mut PieError,
) -> PieStatus {
    start_async(out_op, out_err, || terminate_self(instance))
}

/// Receives the next event, in server order, into `*out_event` (owned by the caller:
/// pie_event_free), waiting at most `timeout_ms` (the timeout rule of the overview).
/// Returns PIE_STATUS_OK with an event; PIE_STATUS_TIMEOUT if none came in time;
/// PIE_STATUS_STREAM_ENDED after the terminal event was received; PIE_STATUS_CONNECTION_CLOSED
/// or PIE_STATUS_CLIENT_CLOSED once the connection ended and every queued event was received;
/// PIE_STATUS_DETACHED for a detached instance; PIE_STATUS_BUSY if the instance has an event
/// callback; PIE_STATUS_NULL_POINTER; PIE_STATUS_INVALID_ARGUMENT (`timeout_ms`).
#[no_mangle]
pub unsafe extern "C" fn pie_instance_recv(
    instance: *const PieInstance,
    timeout_ms: i32,
    out_event: *mut *mut PieEvent,
    out_err: *mut *mut PieError,
) -> PieStatus {
    call(out_err, || {
        let i = inst_arg(instance)?;
        let out = arg_out(out_event, "out_event")?;
        let timeout = arg_timeout(timeout_ms, "timeout_ms")?;
        i.poll_mode()?;
        // Answered on the caller's thread when possible (the non-blocking form, or an event
        // already queued): game loops call this often.
        let ev = match timeout {
            Some(d) if d.is_zero() => Box::new(PieEvent::from(i.recv_now()?)),
            _ => match i.core.try_recv() {
                Ok(Some(ev)) => Box::new(PieEvent::from(ev)),
                // Nothing queued (or the end): the waiting path gives the same answers.
                _ => i.recv(timeout).block()?,
            },
        };
        *out = Box::into_raw(ev);
        Ok(())
    })
}

/// Asynchronous pie_instance_recv: the operation finishes with the statuses listed there; the
/// event is pie_op_take_event(op, ...). Errors (immediate): PIE_STATUS_NULL_POINTER,
/// PIE_STATUS_INVALID_ARGUMENT, PIE_STATUS_BUSY.
#[no_mangle]
pub unsafe extern "C" fn pie_instance_recv_async(
    instance: *const PieInstance,
    timeout_ms: i32,
    out_op: *mut *mut PieOp,
    out_err: *mut *mut PieError,
) -> PieStatus {
    start_async(out_op, out_err, || {
        let i = inst_arg(instance)?;
        let timeout = arg_timeout(timeout_ms, "timeout_ms")?;
        i.poll_mode()?;
        Ok(i.recv(timeout))
    })
}

/// Switches the instance to callback delivery: from now on every event is passed to
/// `callback(user_data, PIE_STATUS_OK, event)` — `event` borrowed, valid only during the call —
/// in server order, on the client's callback thread (one thread per client, never a network
/// thread; callbacks of one client never run concurrently). When the stream ends, one final call
/// `callback(user_data, status, NULL)` tells why (PIE_STATUS_STREAM_ENDED after the terminal
/// event, PIE_STATUS_CONNECTION_CLOSED, PIE_STATUS_CLIENT_CLOSED), then `drop(user_data)` (may be
/// NULL) runs once; it also runs, after the last call, when the callback is replaced by another
/// pie_instance_set_callback or the instance is freed. Events already queued are delivered too.
/// A callback may call any libpie function, including pie_instance_free on this instance or
/// pie_client_free on its client (both deferred until the callback returns). pie_instance_recv
/// then returns PIE_STATUS_BUSY until the stream has ended (finish or cancel pending
/// pie_instance_recv_async operations first: an event they take is not passed to the callback).
/// Errors: PIE_STATUS_NULL_POINTER (`instance`, `callback`), PIE_STATUS_DETACHED, PIE_STATUS_IO.
#[no_mangle]
pub unsafe extern "C" fn pie_instance_set_callback(
    instance: *const PieInstance,
    callback: PieEventCallback,
    user_data: *mut c_void,
    drop: PieDropCallback,
    out_err: *mut *mut PieError,
) -> PieStatus {
    call(out_err, || {
        let i = inst_arg(instance)?;
        let function = arg_fn(callback, "callback")?;
        if i.core.is_detached() {
            return Err(Fail::new(
                PieStatus::Detached,
                "the instance was launched detached: attach it to receive its events",
            ));
        }
        let cb = Callback::new(function, user_data, drop, &i.client.dispatcher);
        let replaced = std::mem::replace(&mut *lock(&i.mode), Mode::Callback(cb));
        i.clear_ready();
        // Dropping the old registration releases its user_data on the callback thread, after
        // any call of the old callback already queued or running.
        std::mem::drop(replaced);
        i.schedule();
        Ok(())
    })
}

/// Frees the instance handle. The instance keeps running on the server (terminate it first if
/// needed). With an event callback: no call starts after this, and `drop(user_data)` has run when
/// it returns — except when called from a callback of the same client, where the release
/// happens right after the callback returns. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn pie_instance_free(instance: *mut PieInstance) {
    value(|| {
        if instance.is_null() {
            return Ok(());
        }
        let handle = Box::from_raw(instance);
        let i = &handle.shared;
        i.freed.store(true, Ordering::SeqCst);
        i.core.set_notify(None);
        i.clear_ready();
        // Bound first: the mode lock must be released before waiting for the callback thread,
        // which takes it while delivering.
        let previous = std::mem::replace(&mut *lock(&i.mode), Mode::Poll);
        if let Mode::Callback(cb) = previous {
            drop(cb);
            i.client.dispatcher.barrier();
        }
        drop(handle);
        Ok(())
    })
}
