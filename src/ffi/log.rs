//! The process-wide log callback: libpie's diagnostics into the host's own logging.

use std::ffi::{c_char, c_void};
use std::sync::Arc;

use super::boundary::call;
use super::callback::PieDropCallback;
use super::error::{Fail, PieError};
use super::status::PieStatus;
use super::string::to_cstring;
use crate::log::{self, Level};

/// Severity of a log record (pie_set_log_callback). A callback set for one level receives
/// that level and every more severe one.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PieLogLevel {
    /// No records (pie_set_log_callback with this level removes the callback).
    Off = 0,
    /// Failures: a connection ended by an error, a request refused by the server.
    Error = 1,
    /// Unexpected things libpie handled: a skipped undecodable frame, a dropped blob, a
    /// request that timed out.
    Warn = 2,
    /// Milestones: connected, authenticated, program uploaded, instance launched, closed.
    Info = 3,
    /// Decisions in detail: launch results per request, events for unknown instances, stray
    /// replies, ignored frames.
    Debug = 4,
    /// Everything libpie can report.
    Trace = 5,
}

impl From<Level> for PieLogLevel {
    fn from(l: Level) -> Self {
        match l {
            Level::Error => PieLogLevel::Error,
            Level::Warn => PieLogLevel::Warn,
            Level::Info => PieLogLevel::Info,
            Level::Debug => PieLogLevel::Debug,
            Level::Trace => PieLogLevel::Trace,
        }
    }
}

/// A log record: `(user_data, level, target, message)`; see pie_set_log_callback.
pub type PieLogCallback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        level: PieLogLevel,
        target: *const c_char,
        message: *const c_char,
    ),
>;
type LogCallback = unsafe extern "C" fn(
    user_data: *mut c_void,
    level: PieLogLevel,
    target: *const c_char,
    message: *const c_char,
);

/// The host's callback and its `user_data`; `drop(user_data)` runs when the carrier is
/// dropped, i.e. once, after the last call. (Not the per-client `Callback` carrier: the log
/// callback belongs to the process, not to a client, so there is no client callback thread to
/// run `drop` on.)
struct LogCarrier {
    callback: LogCallback,
    user_data: *mut c_void,
    drop: PieDropCallback,
}

// SAFETY: the host promised (header) that the callback and `drop` may run on any thread.
unsafe impl Send for LogCarrier {}
unsafe impl Sync for LogCarrier {}

impl LogCarrier {
    fn call(&self, level: Level, target: &str, message: &str) {
        let (target, message) = (to_cstring(target), to_cstring(message));
        // SAFETY: the host's callback with its own user_data and two NUL-terminated strings
        // that live until it returns.
        unsafe {
            (self.callback)(
                self.user_data,
                level.into(),
                target.as_ptr(),
                message.as_ptr(),
            )
        }
    }
}

impl Drop for LogCarrier {
    fn drop(&mut self) {
        if let Some(drop) = self.drop {
            // SAFETY: runs once (Drop), after the last call of `callback`.
            unsafe { drop(self.user_data) }
        }
    }
}

/// Sends libpie's diagnostics to `callback(user_data, level, target, message)`, for the whole
/// process (every client), replacing any callback set before. Records of `level` and more
/// severe are delivered; nothing is even formatted for levels filtered out, and with no
/// callback set logging costs one relaxed atomic load per decision point.
///
/// `target` names the part of libpie that logs: "pie::connection" (connect, close, why a
/// connection ended), "pie::auth", "pie::upload", "pie::launch" (launch results, instance
/// streams ending) or "pie::protocol" (why a frame was skipped or ignored, stray replies,
/// dropped blobs, timeouts). `target` and `message` are NUL-terminated UTF-8, borrowed for the
/// duration of the call only. The wording of messages is not a stable interface.
///
/// The callback runs on the thread that made the decision: a host thread inside a libpie call
/// or one of libpie's network threads. It is never called while libpie holds a lock, so it
/// may call libpie (even pie_set_log_callback), but it must be quick and must not block: a
/// network thread waits for it. Calls may come from several threads at once.
///
/// `drop(user_data)` (optional) runs exactly once, after the last call of `callback`, when the
/// callback is replaced or removed: on the thread that replaced it, or on the thread that was
/// still inside a call at that moment, once that call returns.
///
/// A NULL `callback` or `level` PIE_LOG_LEVEL_OFF removes the current callback (then
/// `user_data` and `drop` are ignored and nothing is taken). `level` is one of the
/// PIE_LOG_LEVEL_* values. Errors: PIE_STATUS_INVALID_ARGUMENT (a level out of range; nothing
/// is changed and `drop` is not called).
#[no_mangle]
pub unsafe extern "C" fn pie_set_log_callback(
    level: i32,
    callback: PieLogCallback,
    user_data: *mut c_void,
    drop: PieDropCallback,
    out_err: *mut *mut PieError,
) -> PieStatus {
    call(out_err, || {
        let max = u8::try_from(level)
            .ok()
            .filter(|l| *l <= 5)
            .ok_or_else(|| {
                Fail::new(
                    PieStatus::InvalidArgument,
                    format!("`level` is {level}; expected a PIE_LOG_LEVEL_* value (0 to 5)"),
                )
            })?;
        match (callback, Level::from_u8(max)) {
            (Some(callback), Some(max)) => {
                let carrier = LogCarrier {
                    callback,
                    user_data,
                    drop,
                };
                let sink =
                    move |l: Level, target: &str, message: &str| carrier.call(l, target, message);
                log::set_logger(max, Some(Arc::new(sink)));
            }
            _ => log::set_logger(Level::Error, None),
        }
        Ok(())
    })
}
