//! Diagnostics for the host's own logging: one process-wide sink that receives
//! (level, target, message) for the decisions the client makes — connecting, authenticating,
//! uploading, launching, and protocol choices such as why a frame was skipped or why a
//! connection ended. The C ABI exposes it as `pie_set_log_callback`.
//!
//! * **No cost when unset**: every call site first does one relaxed atomic load
//!   ([`enabled`]); nothing is formatted unless a sink wants that level.
//! * **No lock held while the sink runs**: the sink is cloned out of its slot (an `Arc`) and
//!   the slot's lock is released before the call; call sites in the client log only after
//!   releasing their own locks. A sink may therefore call back into libpie (even replace
//!   itself) without deadlocking.
//! * The sink runs on the thread that made the decision: a host thread or one of libpie's
//!   network threads. It must be quick and must not block.

use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, RwLock};

/// Severity of a log record; a sink set for one level receives that level and all more severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Level {
    /// Something failed: a connection ended by an error, a request refused.
    Error = 1,
    /// Something unexpected that libpie handled: a skipped frame, a dropped blob.
    Warn = 2,
    /// Milestones: connected, authenticated, program uploaded, instance launched, closed.
    Info = 3,
    /// Decisions in detail: requests sent, replies matched, events routed per instance.
    Debug = 4,
    /// Everything, including per-frame records (costly when enabled).
    Trace = 5,
}

impl Level {
    pub fn from_u8(v: u8) -> Option<Level> {
        Some(match v {
            1 => Level::Error,
            2 => Level::Warn,
            3 => Level::Info,
            4 => Level::Debug,
            5 => Level::Trace,
            _ => return None,
        })
    }
}

/// A log sink: `(level, target, message)`. `target` names the part of libpie that logs
/// (`pie::connection`, `pie::auth`, `pie::upload`, `pie::launch`, `pie::protocol`).
pub type LogFn = dyn Fn(Level, &str, &str) + Send + Sync;

/// The most verbose level any sink wants; 0 when no sink is set.
static MAX_LEVEL: AtomicU8 = AtomicU8::new(0);
static SINK: RwLock<Option<Arc<LogFn>>> = RwLock::new(None);

/// Sets (or with `None`, removes) the process-wide sink and the most verbose level it receives.
/// The previous sink is dropped once no thread is still calling it.
pub fn set_logger(max_level: Level, sink: Option<Arc<LogFn>>) {
    let old = {
        let mut slot = SINK.write().unwrap_or_else(|e| e.into_inner());
        let level = if sink.is_some() { max_level as u8 } else { 0 };
        MAX_LEVEL.store(level, Ordering::Relaxed);
        std::mem::replace(&mut *slot, sink)
    };
    // Dropped here, after the lock: a sink's destructor may run host code.
    drop(old);
}

/// Whether a record of `level` would be delivered: one relaxed load.
#[inline]
pub fn enabled(level: Level) -> bool {
    level as u8 <= MAX_LEVEL.load(Ordering::Relaxed)
}

/// Formats and delivers one record (callers check [`enabled`] first; see [`pie_log!`]).
#[cold]
pub fn emit(level: Level, target: &str, args: fmt::Arguments<'_>) {
    let sink = {
        let slot = SINK.read().unwrap_or_else(|e| e.into_inner());
        match &*slot {
            Some(s) if enabled(level) => s.clone(),
            _ => return,
        }
    };
    let message = fmt::format(args);
    // A panicking sink must not take a network task down with it.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        sink(level, target, &message)
    }));
}

/// `pie_log!(Level::Info, "pie::connection", "connected to {url}")`: formats only if enabled.
#[macro_export]
#[doc(hidden)]
macro_rules! pie_log {
    ($level:expr, $target:expr, $($arg:tt)+) => {
        if $crate::log::enabled($level) {
            $crate::log::emit($level, $target, format_args!($($arg)+));
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn filter_delivery_and_removal() {
        let got: Arc<Mutex<Vec<(Level, String, String)>>> = Arc::default();
        let sink_got = got.clone();
        set_logger(
            Level::Info,
            Some(Arc::new(move |l: Level, t: &str, m: &str| {
                sink_got.lock().unwrap().push((l, t.into(), m.into()))
            })),
        );
        assert!(enabled(Level::Error) && enabled(Level::Info) && !enabled(Level::Debug));
        crate::pie_log!(Level::Info, "pie::test", "kept {}", 1);
        crate::pie_log!(Level::Debug, "pie::test", "filtered {}", 2);
        set_logger(Level::Trace, None);
        assert!(!enabled(Level::Error));
        crate::pie_log!(Level::Error, "pie::test", "after removal");
        // Only this test's target: other tests of the crate may log while the sink is set.
        let got: Vec<_> = got
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.1 == "pie::test")
            .cloned()
            .collect();
        assert_eq!(
            got,
            vec![(Level::Info, "pie::test".to_string(), "kept 1".to_string())]
        );
    }
}
