//! PieEvent: one event of an instance, and its accessors.

use std::ffi::{c_char, c_void};

use crate::client::InstanceEvent;

use super::boundary::{arg_out, arg_ref, value, ErrorValue, PanicValue};
use super::error::PieError;
use super::op::{take_result, PieOp};
use super::status::PieStatus;

/// Instance events: `(user_data, status, event)`; see pie_instance_set_callback.
pub type PieEventCallback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, status: PieStatus, event: *const PieEvent)>;

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

impl ErrorValue for PieEventKind {
    fn error_value(_: PieStatus) -> Self {
        PieEventKind::Unknown
    }
}

impl PanicValue for PieEventKind {
    fn panic_value() -> Self {
        PieEventKind::Unknown
    }
}

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
            InstanceEvent::Blob(b) => (PieEventKind::Blob, None, b, 0),
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
    value(|| Ok(arg_ref(event, "event")?.kind))
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
    value(|| {
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
    value(|| {
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
    value(|| Ok(arg_ref(event, "event")?.terminal))
}

/// For PIE_EVENT_KIND_OVERFLOW: how many events were discarded at this point. 0 otherwise.
#[no_mangle]
pub unsafe extern "C" fn pie_event_dropped(event: *const PieEvent) -> u64 {
    value(|| Ok(arg_ref(event, "event")?.dropped))
}

/// Frees an event the caller owns. NULL is a no-op. Never call it on the borrowed event passed
/// to an event callback.
#[no_mangle]
pub unsafe extern "C" fn pie_event_free(event: *mut PieEvent) {
    value(|| {
        if !event.is_null() {
            drop(Box::from_raw(event));
        }
        Ok(())
    })
}

/// Moves the event out of a finished pie_instance_recv_async operation. The caller owns it
/// (pie_event_free). Errors: PIE_STATUS_PENDING (still running), the operation's failure status
/// (a recv that timed out has PIE_STATUS_TIMEOUT, an ended stream PIE_STATUS_STREAM_ENDED, ...),
/// PIE_STATUS_INVALID_ARGUMENT (not a recv operation, or already taken), PIE_STATUS_NULL_POINTER.
#[no_mangle]
pub unsafe extern "C" fn pie_op_take_event(
    op: *const PieOp,
    out_event: *mut *mut PieEvent,
    out_err: *mut *mut PieError,
) -> PieStatus {
    take_result(op, out_event, out_err, |e: Box<PieEvent>| Box::into_raw(e))
}
