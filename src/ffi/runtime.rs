//! The hidden tokio runtime: started on first use, shared by every client and operation, and
//! shut down when the last of them is freed, so a host that frees everything has no libpie
//! thread left.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::Duration;

use tokio::runtime::Handle;

use super::error::{Fail, FfiResult};
use super::status::PieStatus;

/// How long the reaper waits for runtime tasks to finish before abandoning them. Tasks are
/// cancelled at their next await point, so this only matters for a task stuck in a blocking call.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How far ahead the timer keeper keeps a wake-up armed while calls are being made.
const KEEPER_TICK: Duration = Duration::from_millis(50);

/// Keeps the runtime's timer armed a little ahead while the host makes calls.
///
/// Every request arms a timeout, usually from a host thread. Tokio wakes its driver thread
/// (an eventfd write, and a context switch when that thread is asleep) whenever a new timer
/// would fire before the driver's next planned wake-up; with nothing armed that is every
/// timer, so every request paid for a wake-up that did nothing. While calls arrive, the
/// keeper sleeps in short ticks, so a request's far-off timeout never needs one. After a tick
/// with no call it stops, and the next call wakes it once: an idle client makes no wake-ups.
struct TimerKeeper {
    /// A call started since the keeper's last tick.
    active: AtomicBool,
    /// The keeper is parked waiting for `wake` (no tick armed).
    idle: AtomicBool,
    wake: tokio::sync::Notify,
}

impl TimerKeeper {
    fn new() -> TimerKeeper {
        TimerKeeper {
            active: AtomicBool::new(false),
            idle: AtomicBool::new(true),
            wake: tokio::sync::Notify::new(),
        }
    }

    /// A call is starting: costs two atomic operations, and one wake-up after an idle period.
    fn touch(&self) {
        if !self.active.load(Ordering::Relaxed) {
            self.active.store(true, Ordering::SeqCst);
        }
        if self.idle.load(Ordering::SeqCst) && self.idle.swap(false, Ordering::SeqCst) {
            self.wake.notify_one();
        }
    }

    async fn run(self: Arc<Self>) {
        loop {
            self.wake.notified().await;
            loop {
                tokio::time::sleep(KEEPER_TICK).await;
                if self.active.swap(false, Ordering::SeqCst) {
                    continue;
                }
                self.idle.store(true, Ordering::SeqCst);
                // A call that started between the swap and the store saw `idle` false and
                // sent no wake: look again, so it does not pay for its timers.
                if self.active.load(Ordering::SeqCst) && self.idle.swap(false, Ordering::SeqCst) {
                    continue;
                }
                break;
            }
        }
    }
}

struct RtInner {
    handle: Handle,
    keeper: Arc<TimerKeeper>,
    /// Ends the driver thread's `block_on`; the thread then shuts the runtime down.
    stop: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    driver: Mutex<Option<std::thread::JoinHandle<()>>>,
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
        // One thread runs every task (readers, writers, operations): a client's work is I/O
        // bound, and tasks that wake each other on one thread need no cross-thread wake-ups,
        // which cost more than the work itself (docs/BENCHMARKS.md, "Thread hand-offs").
        // Built on its own thread: the builder records the thread that builds it, and a host
        // thread's record would outlive the runtime.
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        // A plain mutex and condvar (a channel would register the host thread with std).
        let started = Arc::new((Mutex::new(None::<std::io::Result<Handle>>), Condvar::new()));
        let report = Arc::clone(&started);
        let send = move |r: std::io::Result<Handle>| {
            *report.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
            report.1.notify_all();
        };
        let driver = std::thread::Builder::new()
            .name("pie-runtime".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        send(Err(e));
                        return;
                    }
                };
                send(Ok(runtime.handle().clone()));
                let _ = runtime.block_on(stopped);
                // Tasks are cancelled at their next await point; the grace period only matters
                // for a task stuck in a blocking call.
                runtime.shutdown_timeout(SHUTDOWN_GRACE);
            })
            .map_err(|e| Fail::new(PieStatus::Io, format!("cannot start the runtime: {e}")))?;
        let started = {
            let mut slot = started.0.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                match slot.take() {
                    Some(r) => break r,
                    None => slot = started.1.wait(slot).unwrap_or_else(|e| e.into_inner()),
                }
            }
        };
        let handle = match started {
            Ok(handle) => handle,
            Err(e) => {
                let _ = driver.join();
                return Err(Fail::new(
                    PieStatus::Io,
                    format!("cannot start the runtime: {e}"),
                ));
            }
        };
        let keeper = Arc::new(TimerKeeper::new());
        handle.spawn(Arc::clone(&keeper).run());
        let inner = Arc::new(RtInner {
            handle,
            keeper,
            stop: Mutex::new(Some(stop)),
            driver: Mutex::new(Some(driver)),
        });
        *current = Arc::downgrade(&inner);
        Ok(Rt(inner))
    }

    pub(crate) fn handle(&self) -> &Handle {
        &self.0.handle
    }

    /// Called as a network call starts (before it arms its timeouts); see [`TimerKeeper`].
    pub(crate) fn call_starting(&self) {
        self.0.keeper.touch();
    }
}

/// True on a thread of a tokio runtime (a libpie worker, or a host's own runtime): blocking
/// there would stall the runtime, and dropping a runtime there panics.
pub(crate) fn on_runtime_thread() -> bool {
    Handle::try_current().is_ok()
}

impl Drop for RtInner {
    fn drop(&mut self) {
        if let Some(stop) = self
            .stop
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            let _ = stop.send(());
        }
        let driver = self
            .driver
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        // When the last reference goes away on a host thread we wait for the driver thread,
        // so that no libpie thread survives the host's last free. On the runtime's own thread
        // we cannot (it would wait for itself): it finishes on its own.
        if let Some(driver) = driver {
            if !on_runtime_thread() {
                let _ = driver.join();
            }
        }
    }
}
