//! PieInstance (event delivery: polled queue, callbacks, wake fd), PieEvent and PieInstanceList.

use std::ffi::{c_char, c_void, CString};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::client::{Instance, InstanceEvent};
use crate::wire::{InstanceInfo, InstanceStatus};
use crate::{Error, ErrorKind};

use super::client::{ClientShared, Progress};
use super::dispatch::{DropFn, UserData};
use super::op::{blocking, ignore, start_async, OpValue, PieOp};
use super::status::{
    arg_bytes, arg_out, arg_ref, arg_str, ffi_call, ffi_value, to_cstring, Fail, FfiResult,
    PieError, PieStatus,
};

/// What a PieEvent is. Stable numbers.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PieEventKind {
    /// A text message sent by the instance (pie_event_text).
    Message = 0,
    /// Terminal: the program finished; the text is its return value.
    Completed = 1,
    /// Terminal: the instance was terminated (text "Signal termination").
    Aborted = 2,
    /// Terminal: the program failed; the text says why.
    Exception = 3,
    /// Terminal: the engine killed the instance (out of memory for an older instance).
    ServerError = 4,
    /// Terminal: out of resources (not sent by current servers).
    OutOfResources = 5,
    /// A blob of bytes sent by the instance (pie_event_blob).
    Blob = 6,
    /// Text the instance wrote to its standard output.
    Stdout = 7,
    /// Text the instance wrote to its standard error.
    Stderr = 8,
    /// Terminal: an event code this library does not know; the text is the server's message.
    Unknown = 9,
    /// Events were discarded because the instance's queue limit was reached
    /// (pie_event_dropped tells how many); the stream goes on after it.
    Overflow = 10,
}

/// State of a listed instance. Stable numbers.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PieInstanceStatus {
    /// Running, with a client attached.
    Attached = 0,
    /// Running with no client attached.
    Detached = 1,
    /// Finished; still listed by the server.
    Finished = 2,
}

// ------------------------------------------------------------------------------------------
// Events
// ------------------------------------------------------------------------------------------

/// One event of an instance (opaque). From pie_instance_recv / pie_op_take_event it is owned by
/// the caller (pie_event_free); in an event callback it is borrowed, valid only during the call.
/// Immutable: readable from any thread.
pub struct PieEvent {
    kind: PieEventKind,
    /// Text plus a terminating NUL (absent for blobs).
    text: Option<Vec<u8>>,
    blob: Vec<u8>,
    dropped: u64,
    terminal: bool,
}

impl From<InstanceEvent> for PieEvent {
    fn from(ev: InstanceEvent) -> PieEvent {
        let terminal = ev.is_terminal();
        let (kind, text, blob, dropped) = match ev {
            InstanceEvent::Message(t) => (PieEventKind::Message, Some(t), Vec::new(), 0),
            InstanceEvent::Completed(t) => (PieEventKind::Completed, Some(t), Vec::new(), 0),
            InstanceEvent::Aborted(t) => (PieEventKind::Aborted, Some(t), Vec::new(), 0),
            InstanceEvent::Exception(t) => (PieEventKind::Exception, Some(t), Vec::new(), 0),
            InstanceEvent::ServerError(t) => (PieEventKind::ServerError, Some(t), Vec::new(), 0),
            InstanceEvent::OutOfResources(t) => {
                (PieEventKind::OutOfResources, Some(t), Vec::new(), 0)
            }
            InstanceEvent::Blob(b) | InstanceEvent::NamedBlob { data: b, .. } => {
                (PieEventKind::Blob, None, b, 0)
            }
            InstanceEvent::Stdout(t) => (PieEventKind::Stdout, Some(t), Vec::new(), 0),
            InstanceEvent::Stderr(t) => (PieEventKind::Stderr, Some(t), Vec::new(), 0),
            InstanceEvent::Unknown { message, .. } => {
                (PieEventKind::Unknown, Some(message), Vec::new(), 0)
            }
            InstanceEvent::Overflow { dropped } => (
                PieEventKind::Overflow,
                Some(format!(
                    "{dropped} events were dropped: the instance queue limit was reached"
                )),
                Vec::new(),
                dropped,
            ),
        };
        PieEvent {
            kind,
            text: text.map(|t| {
                let mut v = t.into_bytes();
                v.push(0);
                v
            }),
            blob,
            dropped,
            terminal,
        }
    }
}

/// The kind of the event (PIE_EVENT_KIND_UNKNOWN if `event` is NULL).
#[no_mangle]
pub unsafe extern "C" fn pie_event_kind(event: *const PieEvent) -> PieEventKind {
    ffi_value(PieEventKind::Unknown, || Ok(arg_ref(event, "event")?.kind))
}

/// The event's text (every kind but PIE_EVENT_KIND_BLOB): NUL-terminated UTF-8, borrowed, valid
/// as long as the event. If `out_len` is not NULL it receives the length in bytes without the
/// NUL (the text may itself contain NUL bytes). Returns NULL (and length 0) for a blob event or
/// a NULL `event`.
#[no_mangle]
pub unsafe extern "C" fn pie_event_text(
    event: *const PieEvent,
    out_len: *mut usize,
) -> *const c_char {
    ffi_value(std::ptr::null(), || {
        if let Some(l) = out_len.as_mut() {
            *l = 0;
        }
        let ev = arg_ref(event, "event")?;
        let (ptr, len) = match &ev.text {
            Some(t) => (t.as_ptr().cast::<c_char>(), t.len() - 1),
            None => (std::ptr::null(), 0),
        };
        if let Some(l) = out_len.as_mut() {
            *l = len;
        }
        Ok(ptr)
    })
}

static EMPTY: [u8; 1] = [0];

/// The bytes of a PIE_EVENT_KIND_BLOB event, borrowed, valid as long as the event; the length
/// goes to `*out_len` (required). Never NULL for a blob event, even when empty. Returns NULL (and
/// length 0) for other kinds or NULL arguments.
#[no_mangle]
pub unsafe extern "C" fn pie_event_blob(event: *const PieEvent, out_len: *mut usize) -> *const u8 {
    ffi_value(std::ptr::null(), || {
        let len = arg_out(out_len, "out_len")?;
        *len = 0;
        let ev = arg_ref(event, "event")?;
        if ev.kind != PieEventKind::Blob {
            return Ok(std::ptr::null());
        }
        *len = ev.blob.len();
        Ok(if ev.blob.is_empty() {
            EMPTY.as_ptr()
        } else {
            ev.blob.as_ptr()
        })
    })
}

/// True if this is the last event of its instance (COMPLETED, ABORTED, EXCEPTION, SERVER_ERROR,
/// OUT_OF_RESOURCES, UNKNOWN). False for NULL.
#[no_mangle]
pub unsafe extern "C" fn pie_event_is_terminal(event: *const PieEvent) -> bool {
    ffi_value(false, || Ok(arg_ref(event, "event")?.terminal))
}

/// For PIE_EVENT_KIND_OVERFLOW: how many events were discarded at this point. 0 otherwise.
#[no_mangle]
pub unsafe extern "C" fn pie_event_dropped(event: *const PieEvent) -> u64 {
    ffi_value(0, || Ok(arg_ref(event, "event")?.dropped))
}

/// Frees an event the caller owns. NULL is a no-op. Never call it on the borrowed event passed
/// to an event callback.
#[no_mangle]
pub unsafe extern "C" fn pie_event_free(event: *mut PieEvent) {
    ffi_value((), || {
        if !event.is_null() {
            drop(Box::from_raw(event));
        }
        Ok(())
    })
}

// ------------------------------------------------------------------------------------------
// Instances
// ------------------------------------------------------------------------------------------

struct EventCallback {
    call: unsafe extern "C" fn(*mut c_void, PieStatus, *const PieEvent),
    drop: DropFn,
}

enum Mode {
    /// Events wait in the queue for pie_instance_recv (and drive the client's wake fd).
    Poll,
    /// Events go to the callback on the client's callback thread.
    Callback(EventCallback),
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
            self.client.set_ready(&self.ready, true, || {
                !self.freed.load(Ordering::SeqCst)
                    && !self.end_reported.load(Ordering::SeqCst)
                    && matches!(*lock(&self.mode), Mode::Poll)
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
            let me = Arc::clone(self);
            let _ = self.client.dispatcher.post(Box::new(move || me.deliver()));
        }
    }

    /// Runs on the callback thread: hands every queued event to the callback, in order; at the
    /// end of the stream makes the final call and releases the registration.
    fn deliver(self: &Arc<Self>) {
        self.scheduled.store(false, Ordering::SeqCst);
        loop {
            if self.freed.load(Ordering::SeqCst) {
                return;
            }
            let (call, user_data) = match &*lock(&self.mode) {
                Mode::Callback(cb) => (cb.call, cb.drop.user_data),
                Mode::Poll => return,
            };
            match self.core.try_recv() {
                Ok(Some(ev)) => {
                    let ev = PieEvent::from(ev);
                    // SAFETY: host callback; the event is borrowed for the call only.
                    unsafe { call(user_data.get(), PieStatus::Ok, &ev) };
                }
                Ok(None) => return,
                Err(e) => {
                    let cb = match std::mem::replace(&mut *lock(&self.mode), Mode::Poll) {
                        Mode::Callback(cb) => cb,
                        Mode::Poll => return,
                    };
                    let status = Fail::from(e).status;
                    self.end_reported.store(true, Ordering::SeqCst);
                    // SAFETY: as above; the final call carries no event.
                    unsafe { (cb.call)(cb.drop.user_data.get(), status, std::ptr::null()) };
                    cb.drop.run();
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

    fn op_recv(self: &Arc<Self>, timeout: Option<Duration>) -> Arc<PieOp> {
        let me = Arc::clone(self);
        PieOp::start(self.client.ctx(), None, async move {
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
            Ok(OpValue::Event(Box::new(PieEvent::from(r?))))
        })
    }

    fn op_send(self: &Arc<Self>, message: String) -> Arc<PieOp> {
        let me = Arc::clone(self);
        self.client.op(async move {
            me.core.send(&message).await?;
            Ok(OpValue::Unit)
        })
    }

    fn op_upload_blob(self: &Arc<Self>, data: Vec<u8>, progress: Option<Progress>) -> Arc<PieOp> {
        let me = Arc::clone(self);
        self.client.long_op(async move {
            let f = progress.map(Progress::into_fn);
            me.core
                .upload_blob_with_progress(&data, f.as_deref())
                .await?;
            Ok(OpValue::Unit)
        })
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
    pub(crate) fn into_raw(shared: Arc<InstanceShared>) -> *mut PieInstance {
        shared.start_notifications();
        Box::into_raw(Box::new(PieInstance { shared }))
    }
}

unsafe fn inst_arg<'a>(instance: *const PieInstance) -> FfiResult<&'a Arc<InstanceShared>> {
    Ok(&arg_ref(instance, "instance")?.shared)
}

fn timeout_arg(timeout_ms: i32) -> FfiResult<Option<Duration>> {
    match timeout_ms {
        -1 => Ok(None),
        ms if ms >= 0 => Ok(Some(Duration::from_millis(ms as u64))),
        ms => Err(Fail::new(
            PieStatus::InvalidArgument,
            format!("`timeout_ms` is {ms}; use -1 (forever), 0 (do not wait) or a positive value"),
        )),
    }
}

unsafe fn send_op(instance: *const PieInstance, message: *const c_char) -> FfiResult<Arc<PieOp>> {
    let i = inst_arg(instance)?;
    Ok(i.op_send(arg_str(message, "message")?.to_owned()))
}

unsafe fn upload_blob_op(
    instance: *const PieInstance,
    data: *const u8,
    len: usize,
    progress: Option<unsafe extern "C" fn(*mut c_void, u64, u64)>,
    user_data: *mut c_void,
) -> FfiResult<Arc<PieOp>> {
    let i = inst_arg(instance)?;
    let data = arg_bytes(data, len, "data")?.to_vec();
    Ok(i.op_upload_blob(data, Progress::new(progress, user_data)))
}

unsafe fn terminate_op(instance: *const PieInstance) -> FfiResult<Arc<PieOp>> {
    let i = inst_arg(instance)?;
    Ok(i.client.op_terminate(i.core.id().to_owned()))
}

/// The instance id (a lowercase UUID): NUL-terminated, borrowed, valid until
/// pie_instance_free(instance). NULL if `instance` is NULL.
#[no_mangle]
pub unsafe extern "C" fn pie_instance_id(instance: *const PieInstance) -> *const c_char {
    ffi_value(std::ptr::null(), || Ok(inst_arg(instance)?.id.as_ptr()))
}

/// True if the instance was launched detached (this handle then cannot receive or send; attach
/// it with pie_client_attach_instance). False for NULL.
#[no_mangle]
pub unsafe extern "C" fn pie_instance_is_detached(instance: *const PieInstance) -> bool {
    ffi_value(false, || Ok(inst_arg(instance)?.core.is_detached()))
}

/// Sends a text message (UTF-8, copied) to the instance. The server gives no reply; OK means it
/// was sent. Errors: PIE_STATUS_NULL_POINTER, PIE_STATUS_INVALID_UTF8, PIE_STATUS_DETACHED,
/// PIE_STATUS_CONNECTION_CLOSED, PIE_STATUS_CLIENT_CLOSED.
#[no_mangle]
pub unsafe extern "C" fn pie_instance_send(
    instance: *const PieInstance,
    message: *const c_char,
    out_err: *mut *mut PieError,
) -> PieStatus {
    blocking(out_err, || send_op(instance, message), ignore)
}

/// Asynchronous pie_instance_send (no result value).
#[no_mangle]
pub unsafe extern "C" fn pie_instance_send_async(
    instance: *const PieInstance,
    message: *const c_char,
    out_op: *mut *mut PieOp,
    out_err: *mut *mut PieError,
) -> PieStatus {
    start_async(out_op, out_err, || send_op(instance, message))
}

/// Uploads `len` bytes (copied) to the instance as a blob. `progress` as in
/// pie_client_upload_program. Warning: the January-2026 server stops serving the connection after
/// a blob upload. Errors: PIE_STATUS_NULL_POINTER, PIE_STATUS_DETACHED, PIE_STATUS_SERVER,
/// PIE_STATUS_TIMEOUT, PIE_STATUS_CONNECTION_CLOSED, PIE_STATUS_CLIENT_CLOSED.
#[no_mangle]
pub unsafe extern "C" fn pie_instance_upload_blob(
    instance: *const PieInstance,
    data: *const u8,
    len: usize,
    progress: Option<
        unsafe extern "C" fn(user_data: *mut c_void, bytes_sent: u64, bytes_total: u64),
    >,
    user_data: *mut c_void,
    out_err: *mut *mut PieError,
) -> PieStatus {
    let make = || upload_blob_op(instance, data, len, progress, user_data);
    blocking(out_err, make, ignore)
}

/// Asynchronous pie_instance_upload_blob (no result value); `user_data` must stay valid until
/// the operation finishes.
#[no_mangle]
pub unsafe extern "C" fn pie_instance_upload_blob_async(
    instance: *const PieInstance,
    data: *const u8,
    len: usize,
    progress: Option<
        unsafe extern "C" fn(user_data: *mut c_void, bytes_sent: u64, bytes_total: u64),
    >,
    user_data: *mut c_void,
    out_op: *mut *mut PieOp,
    out_err: *mut *mut PieError,
) -> PieStatus {
    let make = || upload_blob_op(instance, data, len, progress, user_data);
    start_async(out_op, out_err, make)
}

/// Terminates the instance (as pie_client_terminate_instance with its id). Its stream then ends
/// with an ABORTED event. Errors as pie_client_terminate_instance.
#[no_mangle]
pub unsafe extern "C" fn pie_instance_terminate(
    instance: *const PieInstance,
    out_err: *mut *mut PieError,
) -> PieStatus {
    blocking(out_err, || terminate_op(instance), ignore)
}

/// Asynchronous pie_instance_terminate (no result value).
#[no_mangle]
pub unsafe extern "C" fn pie_instance_terminate_async(
    instance: *const PieInstance,
    out_op: *mut *mut PieOp,
    out_err: *mut *mut PieError,
) -> PieStatus {
    start_async(out_op, out_err, || terminate_op(instance))
}

/// Receives the next event, in server order, into `*out_event` (owned by the caller:
/// pie_event_free). `timeout_ms`: 0 = do not wait, -1 = wait forever, > 0 = wait at most that
/// long. Returns PIE_STATUS_OK with an event; PIE_STATUS_TIMEOUT if none came in time;
/// PIE_STATUS_STREAM_ENDED after the terminal event was received; PIE_STATUS_CONNECTION_CLOSED
/// or PIE_STATUS_CLIENT_CLOSED once the connection ended and every queued event was received;
/// PIE_STATUS_DETACHED for a detached instance; PIE_STATUS_BUSY if the instance has an event
/// callback; PIE_STATUS_NULL_POINTER; PIE_STATUS_INVALID_ARGUMENT (timeout below -1).
#[no_mangle]
pub unsafe extern "C" fn pie_instance_recv(
    instance: *const PieInstance,
    timeout_ms: i32,
    out_event: *mut *mut PieEvent,
    out_err: *mut *mut PieError,
) -> PieStatus {
    ffi_call(out_err, || {
        let i = inst_arg(instance)?;
        let out = arg_out(out_event, "out_event")?;
        let timeout = timeout_arg(timeout_ms)?;
        i.poll_mode()?;
        // The non-blocking form is answered on the caller's thread: game loops call it often.
        let ev = match timeout {
            Some(d) if d.is_zero() => Box::new(PieEvent::from(i.recv_now()?)),
            // An event already queued is answered here too: a round trip through the runtime
            // (task spawn, worker wake-up, condvar) costs ~10 µs per event (docs/BENCHMARKS.md).
            _ => match i.core.try_recv() {
                Ok(Some(ev)) => Box::new(PieEvent::from(ev)),
                // Nothing queued (or the end): the blocking path gives the same answers.
                _ => i.op_recv(timeout).block()?.into_event()?,
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
        let timeout = timeout_arg(timeout_ms)?;
        i.poll_mode()?;
        Ok(i.op_recv(timeout))
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
/// Errors: PIE_STATUS_NULL_POINTER
/// (`instance`, `callback`), PIE_STATUS_DETACHED, PIE_STATUS_IO.
#[no_mangle]
pub unsafe extern "C" fn pie_instance_set_callback(
    instance: *const PieInstance,
    callback: Option<
        unsafe extern "C" fn(user_data: *mut c_void, status: PieStatus, event: *const PieEvent),
    >,
    user_data: *mut c_void,
    drop: Option<unsafe extern "C" fn(user_data: *mut c_void)>,
    out_err: *mut *mut PieError,
) -> PieStatus {
    ffi_call(out_err, || {
        let i = inst_arg(instance)?;
        let call =
            callback.ok_or_else(|| Fail::new(PieStatus::NullPointer, "`callback` is NULL"))?;
        if i.core.is_detached() {
            return Err(Fail::new(
                PieStatus::Detached,
                "the instance was launched detached: attach it to receive its events",
            ));
        }
        let cb = EventCallback {
            call,
            drop: DropFn {
                drop,
                user_data: UserData(user_data),
            },
        };
        let old = std::mem::replace(&mut *lock(&i.mode), Mode::Callback(cb));
        i.clear_ready();
        if let Mode::Callback(old) = old {
            // After any call of the old callback already queued or running.
            i.client.dispatcher.post(Box::new(move || old.drop.run()))?;
        }
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
    ffi_value((), || {
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
            let _ = i.client.dispatcher.post(Box::new(move || cb.drop.run()));
            i.client.dispatcher.barrier();
        }
        drop(handle);
        Ok(())
    })
}

// ------------------------------------------------------------------------------------------
// Instance lists
// ------------------------------------------------------------------------------------------

struct ListItem {
    id: CString,
    arguments: Vec<CString>,
    status: PieInstanceStatus,
    username: CString,
    elapsed_secs: u64,
    kv_pages_used: u32,
}

/// The result of pie_client_list_instances (opaque): owned by the caller,
/// pie_instance_list_free. Immutable: readable from any thread. Strings returned by its accessors
/// are borrowed, valid until the list is freed.
pub struct PieInstanceList {
    items: Vec<ListItem>,
}

impl PieInstanceList {
    pub(crate) fn new(infos: Vec<InstanceInfo>) -> PieInstanceList {
        let items = infos
            .into_iter()
            .map(|i| ListItem {
                id: to_cstring(&i.id),
                arguments: i.arguments.iter().map(|a| to_cstring(a)).collect(),
                status: match i.status {
                    InstanceStatus::Attached => PieInstanceStatus::Attached,
                    InstanceStatus::Detached => PieInstanceStatus::Detached,
                    InstanceStatus::Finished => PieInstanceStatus::Finished,
                },
                username: to_cstring(&i.username),
                elapsed_secs: i.elapsed_secs,
                kv_pages_used: i.kv_pages_used,
            })
            .collect();
        PieInstanceList { items }
    }
}

unsafe fn item<'a>(list: *const PieInstanceList, index: usize) -> FfiResult<&'a ListItem> {
    let l = arg_ref(list, "list")?;
    l.items.get(index).ok_or_else(|| {
        Fail::new(
            PieStatus::InvalidArgument,
            format!(
                "index {index} is out of range (the list has {} entries)",
                l.items.len()
            ),
        )
    })
}

/// Shared body of the numeric list accessors.
unsafe fn list_field<T>(
    list: *const PieInstanceList,
    index: usize,
    out: *mut T,
    out_err: *mut *mut PieError,
    get: impl FnOnce(&ListItem) -> T,
) -> PieStatus {
    ffi_call(out_err, || {
        let out = arg_out(out, "out")?;
        *out = get(item(list, index)?);
        Ok(())
    })
}

/// Number of instances in the list (0 for NULL).
#[no_mangle]
pub unsafe extern "C" fn pie_instance_list_len(list: *const PieInstanceList) -> usize {
    ffi_value(0, || Ok(arg_ref(list, "list")?.items.len()))
}

/// Id of entry `index` (borrowed). NULL if `list` is NULL or `index` out of range.
#[no_mangle]
pub unsafe extern "C" fn pie_instance_list_id(
    list: *const PieInstanceList,
    index: usize,
) -> *const c_char {
    ffi_value(std::ptr::null(), || Ok(item(list, index)?.id.as_ptr()))
}

/// User name of the session that launched entry `index` (borrowed; empty if the server did not
/// say). NULL if `list` is NULL or `index` out of range.
#[no_mangle]
pub unsafe extern "C" fn pie_instance_list_username(
    list: *const PieInstanceList,
    index: usize,
) -> *const c_char {
    ffi_value(std::ptr::null(), || {
        Ok(item(list, index)?.username.as_ptr())
    })
}

/// Writes the number of launch arguments of entry `index` to `*out_count`.
/// Errors: PIE_STATUS_NULL_POINTER, PIE_STATUS_INVALID_ARGUMENT (index out of range).
#[no_mangle]
pub unsafe extern "C" fn pie_instance_list_argument_count(
    list: *const PieInstanceList,
    index: usize,
    out_count: *mut usize,
    out_err: *mut *mut PieError,
) -> PieStatus {
    list_field(list, index, out_count, out_err, |i| i.arguments.len())
}

/// Launch argument `arg_index` of entry `index` (borrowed). NULL if out of range or `list` is NULL.
#[no_mangle]
pub unsafe extern "C" fn pie_instance_list_argument(
    list: *const PieInstanceList,
    index: usize,
    arg_index: usize,
) -> *const c_char {
    ffi_value(std::ptr::null(), || {
        let it = item(list, index)?;
        it.arguments
            .get(arg_index)
            .map(|a| a.as_ptr())
            .ok_or_else(|| Fail::new(PieStatus::InvalidArgument, "argument index out of range"))
    })
}

/// Writes the state of entry `index` to `*out_status`. Errors as
/// pie_instance_list_argument_count.
#[no_mangle]
pub unsafe extern "C" fn pie_instance_list_status(
    list: *const PieInstanceList,
    index: usize,
    out_status: *mut PieInstanceStatus,
    out_err: *mut *mut PieError,
) -> PieStatus {
    list_field(list, index, out_status, out_err, |i| i.status)
}

/// Writes the whole seconds since entry `index` was launched to `*out_secs`. Errors as
/// pie_instance_list_argument_count.
#[no_mangle]
pub unsafe extern "C" fn pie_instance_list_elapsed_secs(
    list: *const PieInstanceList,
    index: usize,
    out_secs: *mut u64,
    out_err: *mut *mut PieError,
) -> PieStatus {
    list_field(list, index, out_secs, out_err, |i| i.elapsed_secs)
}

/// Writes the KV-cache pages used by entry `index` to `*out_pages` (always 0 on current servers).
/// Errors as pie_instance_list_argument_count.
#[no_mangle]
pub unsafe extern "C" fn pie_instance_list_kv_pages_used(
    list: *const PieInstanceList,
    index: usize,
    out_pages: *mut u32,
    out_err: *mut *mut PieError,
) -> PieStatus {
    list_field(list, index, out_pages, out_err, |i| i.kv_pages_used)
}

/// Frees a list. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn pie_instance_list_free(list: *mut PieInstanceList) {
    ffi_value((), || {
        if !list.is_null() {
            drop(Box::from_raw(list));
        }
        Ok(())
    })
}
