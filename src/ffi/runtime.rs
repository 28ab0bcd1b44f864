//! The hidden tokio runtime: started on first use, shared by every client and operation, and
//! shut down when the last of them is freed, so a host that frees everything has no libpie
//! thread left.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::runtime::{Handle, Runtime};

use super::error::{Fail, FfiResult};
use super::status::PieStatus;

/// How long the reaper waits for runtime tasks to finish before abandoning them. Tasks are
/// cancelled at their next await point, so this only matters for a task stuck in a blocking call.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

struct RtInner {
    runtime: Mutex<Option<Runtime>>,
    handle: Handle,
}

static CURRENT: Mutex<Weak<RtInner>> = Mutex::new(Weak::new());

/// A counted reference to the shared runtime. Every client and every operation holds one.
#[derive(Clone)]
pub(crate) struct Rt(Arc<RtInner>);

impl Rt {
    /// Returns the running runtime, starting one if none is alive.
    pub(crate) fn acquire() -> FfiResult<Rt> {
        let mut current = CURRENT.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(inner) = current.upgrade() {
            return Ok(Rt(inner));
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            // Two workers are plenty for a client: the work is I/O bound and host callbacks
            // never run on these threads.
            .worker_threads(2)
            .thread_name("pie-runtime")
            .enable_all()
            .build()
            .map_err(|e| Fail::new(PieStatus::Io, format!("cannot start the runtime: {e}")))?;
        let inner = Arc::new(RtInner {
            handle: runtime.handle().clone(),
            runtime: Mutex::new(Some(runtime)),
        });
        *current = Arc::downgrade(&inner);
        Ok(Rt(inner))
    }

    pub(crate) fn handle(&self) -> &Handle {
        &self.0.handle
    }
}

/// True on a thread of a tokio runtime (a libpie worker, or a host's own runtime): blocking
/// there would stall the runtime, and dropping a runtime there panics.
pub(crate) fn on_runtime_thread() -> bool {
    Handle::try_current().is_ok()
}

impl Drop for RtInner {
    fn drop(&mut self) {
        let Some(runtime) = self
            .runtime
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        else {
            return;
        };
        // Tokio panics if a runtime is dropped on one of its own threads, so the shutdown always
        // happens on a reaper thread. When the last reference goes away on a host thread we wait
        // for the reaper, so that no libpie thread survives the host's last free; on a runtime
        // thread we cannot wait (the reaper waits for this very thread), so the reaper finishes
        // on its own.
        let must_detach = on_runtime_thread();
        let reaper = std::thread::Builder::new()
            .name("pie-reaper".into())
            .spawn(move || runtime.shutdown_timeout(SHUTDOWN_GRACE));
        match reaper {
            Ok(thread) if !must_detach => {
                let _ = thread.join();
            }
            // Detached: the reaper ends by itself within SHUTDOWN_GRACE. If the OS refused the
            // thread, the runtime was dropped with the closure, here, off the runtime's threads
            // in the common case (a host thread).
            Ok(_) | Err(_) => {}
        }
    }
}
