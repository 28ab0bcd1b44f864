//! Dispatcher: the per-client callback thread.
//!
//! Host callbacks never run on runtime workers: a slow callback must not stall the network, and
//! a callback must be able to make blocking libpie calls. Every callback of a client runs on one
//! "pie-callbacks" thread, started the first time a job is posted, in the order the jobs were
//! posted. The queue is a mutex-guarded ring buffer rather than a channel: posting an `Arc`
//! task (the per-event path) allocates nothing once the ring has grown.

use std::cell::Cell;
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use super::error::{Fail, FfiResult};
use super::runtime::on_runtime_thread;
use super::status::PieStatus;

/// Recurring work posted without allocating: the same `Arc` is posted again and again.
pub(crate) trait Task: Send + Sync {
    fn run(self: Arc<Self>);
}

enum Job {
    Once(Box<dyn FnOnce() + Send>),
    Task(Arc<dyn Task>),
}

thread_local! {
    /// Id of the dispatcher whose callback thread this is (0 on every other thread). A plain
    /// thread-local cell rather than `thread::current()`, which would allocate a handle on
    /// every host thread that calls in.
    static CURRENT_DISPATCHER: Cell<usize> = const { Cell::new(0) };
}

static NEXT_ID: AtomicUsize = AtomicUsize::new(1);

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    /// Jobs ever posted and ever finished: a barrier waits for `finished` to reach `posted`.
    posted: u64,
    finished: u64,
    started: bool,
    closing: bool,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    /// Signalled when a job is posted or the dispatcher closes.
    work: Condvar,
    /// Signalled when a job has finished.
    idle: Condvar,
}

/// The callback thread of one client (shared with the operations started for it).
pub(crate) struct Dispatcher {
    id: usize,
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Default for Dispatcher {
    fn default() -> Self {
        Dispatcher {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            shared: Arc::default(),
            thread: Mutex::new(None),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Dispatcher {
    /// Queues a one-off job.
    pub(crate) fn post_fn(&self, job: impl FnOnce() + Send + 'static) -> FfiResult {
        self.post(Job::Once(Box::new(job)))
    }

    /// Queues `task.run()`; no allocation.
    pub(crate) fn post_task(&self, task: Arc<dyn Task>) -> FfiResult {
        self.post(Job::Task(task))
    }

    fn post(&self, job: Job) -> FfiResult {
        let mut q = lock(&self.shared.queue);
        if !q.started {
            self.start()?;
            q.started = true;
        }
        q.jobs.push_back(job);
        q.posted += 1;
        drop(q);
        self.shared.work.notify_one();
        Ok(())
    }

    fn start(&self) -> FfiResult {
        let shared = Arc::clone(&self.shared);
        let id = self.id;
        let thread = std::thread::Builder::new()
            .name("pie-callbacks".into())
            .spawn(move || {
                CURRENT_DISPATCHER.with(|c| c.set(id));
                run_jobs(&shared);
            })
            .map_err(|e| {
                Fail::new(
                    PieStatus::Io,
                    format!("cannot start the callback thread: {e}"),
                )
            })?;
        *lock(&self.thread) = Some(thread);
        Ok(())
    }

    /// True when called from this dispatcher's callback thread (i.e. from inside a callback).
    pub(crate) fn on_thread(&self) -> bool {
        CURRENT_DISPATCHER.with(|c| c.get()) == self.id
    }

    /// Waits until every job queued so far has run, unless called from the callback thread
    /// itself (where waiting would deadlock: the caller is one of those jobs), from a runtime
    /// thread, or if no callback thread was ever started.
    pub(crate) fn barrier(&self) {
        if self.on_thread() || on_runtime_thread() {
            return;
        }
        let mut q = lock(&self.shared.queue);
        let target = q.posted;
        while q.started && q.finished < target {
            q = self.shared.idle.wait(q).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// The callback thread's loop: ends once the dispatcher is dropped and the queue is empty.
fn run_jobs(shared: &Shared) {
    let mut q = lock(&shared.queue);
    loop {
        let Some(job) = q.jobs.pop_front() else {
            if q.closing {
                return;
            }
            q = shared.work.wait(q).unwrap_or_else(|e| e.into_inner());
            continue;
        };
        drop(q);
        // A panic inside libpie's own part of a job must not kill the thread that delivers
        // every later callback.
        let _ = catch_unwind(AssertUnwindSafe(move || match job {
            Job::Once(f) => f(),
            Job::Task(t) => t.run(),
        }));
        q = lock(&shared.queue);
        q.finished += 1;
        shared.idle.notify_all();
    }
}

impl Drop for Dispatcher {
    fn drop(&mut self) {
        lock(&self.shared.queue).closing = true;
        self.shared.work.notify_all();
        let thread = self
            .thread
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(thread) = thread {
            // Joining from the callback thread itself (the host freed its last handle inside a
            // callback) would deadlock: that thread exits by itself once the current job returns.
            // Runtime workers must not block either.
            if !self.on_thread() && !on_runtime_thread() {
                let _ = thread.join();
            }
        }
    }
}
