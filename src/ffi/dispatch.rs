//! The per-client callback thread and the pollable wake-up descriptor.
//!
//! Host callbacks never run on runtime workers: a slow callback must not stall the network, and
//! a callback must be able to make blocking libpie calls. Every callback of a client runs on one
//! "pie-callbacks" thread, started the first time a callback is registered, in the order the
//! jobs were posted.

use std::cell::Cell;
use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use super::runtime::on_runtime_thread;
use super::status::{Fail, FfiResult, PieStatus};

/// A host pointer carried to the callback thread. libpie never dereferences it; the host
/// promised (in the header) that it may be used from that thread.
#[derive(Clone, Copy, Debug)]
pub(crate) struct UserData(pub(crate) *mut c_void);
// SAFETY: opaque to libpie; thread-safety of what it points to is the host's documented duty.
unsafe impl Send for UserData {}
unsafe impl Sync for UserData {}

impl UserData {
    /// The pointer (a method, so closures capture the whole Send wrapper, not the raw field).
    pub(crate) fn get(self) -> *mut c_void {
        self.0
    }
}

/// The host's `drop(user_data)` half of a callback registration. Runs at most once: the
/// registration is consumed by value.
pub(crate) struct DropFn {
    pub(crate) drop: Option<unsafe extern "C" fn(*mut c_void)>,
    pub(crate) user_data: UserData,
}

impl DropFn {
    pub(crate) fn run(self) {
        if let Some(d) = self.drop {
            // SAFETY: a host-provided function called with the host's own pointer, once.
            unsafe { d(self.user_data.get()) }
        }
    }
}

type Job = Box<dyn FnOnce() + Send>;

thread_local! {
    /// Id of the dispatcher whose callback thread this is (0 on every other thread). A plain
    /// thread-local cell rather than `thread::current()`, which would allocate a handle on
    /// every host thread that calls in.
    static CURRENT_DISPATCHER: Cell<usize> = const { Cell::new(0) };
}

static NEXT_ID: AtomicUsize = AtomicUsize::new(1);

#[derive(Default)]
struct State {
    tx: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

/// The callback thread of one client (shared with the operations started for it).
pub(crate) struct Dispatcher {
    id: usize,
    state: Mutex<State>,
}

impl Default for Dispatcher {
    fn default() -> Self {
        Dispatcher {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            state: Mutex::new(State::default()),
        }
    }
}

impl Dispatcher {
    /// Queues `job` to run on the callback thread, starting the thread on first use.
    pub(crate) fn post(&self, job: Job) -> FfiResult {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.tx.is_none() {
            let (tx, rx) = mpsc::channel::<Job>();
            let id = self.id;
            let thread = std::thread::Builder::new()
                .name("pie-callbacks".into())
                .spawn(move || {
                    CURRENT_DISPATCHER.with(|c| c.set(id));
                    // Ends when the dispatcher is dropped (sender gone) and the queue is empty.
                    while let Ok(job) = rx.recv() {
                        // A panic inside libpie's own part of a job must not kill the thread that
                        // delivers every later callback.
                        let _ = catch_unwind(AssertUnwindSafe(job));
                    }
                })
                .map_err(|e| {
                    Fail::new(
                        PieStatus::Io,
                        format!("cannot start the callback thread: {e}"),
                    )
                })?;
            st.thread = Some(thread);
            st.tx = Some(tx);
        }
        if let Some(tx) = &st.tx {
            // The receiver lives as long as the sender is stored here, so this cannot fail.
            let _ = tx.send(job);
        }
        Ok(())
    }

    /// True when called from this dispatcher's callback thread (i.e. from inside a callback).
    pub(crate) fn on_thread(&self) -> bool {
        CURRENT_DISPATCHER.with(|c| c.get()) == self.id
    }

    /// Waits until every job queued so far has run, unless called from the callback thread
    /// itself (where waiting would deadlock: the caller is one of those jobs) or if no callback
    /// thread was ever started.
    pub(crate) fn barrier(&self) {
        let started = self
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .tx
            .is_some();
        if !started || self.on_thread() || on_runtime_thread() {
            return;
        }
        // A mutex and condvar rather than a channel: std's channels allocate per-thread state on
        // the waiting (host) thread that is only released when that thread exits.
        let done = Arc::new((Mutex::new(false), Condvar::new()));
        let signal = Arc::clone(&done);
        let posted = self.post(Box::new(move || {
            *signal.0.lock().unwrap_or_else(|e| e.into_inner()) = true;
            signal.1.notify_all();
        }));
        if posted.is_ok() {
            let mut finished = done.0.lock().unwrap_or_else(|e| e.into_inner());
            while !*finished {
                finished = done.1.wait(finished).unwrap_or_else(|e| e.into_inner());
            }
        }
    }
}

impl Drop for Dispatcher {
    fn drop(&mut self) {
        let st = std::mem::take(self.state.get_mut().unwrap_or_else(|e| e.into_inner()));
        drop(st.tx);
        if let Some(thread) = st.thread {
            // Joining from the callback thread itself (the host freed its last handle inside a
            // callback) would deadlock: that thread exits by itself once the current job returns.
            // Runtime workers must not block either.
            if !self.on_thread() && !on_runtime_thread() {
                let _ = thread.join();
            }
        }
    }
}

/// The wake-up descriptor of pie_client_event_fd: an eventfd on Linux, a non-blocking pipe
/// elsewhere. Readable while a poll-mode instance of the client has something for the host.
pub(crate) struct WakeFd {
    read_fd: i32,
    write_fd: i32,
}

impl WakeFd {
    pub(crate) fn new() -> FfiResult<WakeFd> {
        #[cfg(target_os = "linux")]
        {
            // SAFETY: plain syscall; the result is checked.
            let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
            if fd < 0 {
                return Err(last_os_error("eventfd"));
            }
            Ok(WakeFd {
                read_fd: fd,
                write_fd: fd,
            })
        }
        #[cfg(not(target_os = "linux"))]
        {
            let mut fds = [0i32; 2];
            // SAFETY: `fds` has room for the two descriptors.
            if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
                return Err(last_os_error("pipe"));
            }
            for fd in fds {
                // SAFETY: fcntl on descriptors we own.
                unsafe {
                    let fl = libc::fcntl(fd, libc::F_GETFL);
                    libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
                    libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
                }
            }
            Ok(WakeFd {
                read_fd: fds[0],
                write_fd: fds[1],
            })
        }
    }

    pub(crate) fn fd(&self) -> i32 {
        self.read_fd
    }

    /// Makes the descriptor readable.
    pub(crate) fn signal(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a local. A full pipe/eventfd counter means it is already
        // readable, which is all we want, so the result is deliberately ignored.
        unsafe {
            libc::write(self.write_fd, (&one as *const u64).cast(), 8);
        }
    }

    /// Makes the descriptor unreadable (reads until empty).
    pub(crate) fn drain(&self) {
        let mut buf = [0u8; 64];
        // SAFETY: reads into a local buffer from a non-blocking descriptor we own; bounded.
        for _ in 0..1024 {
            let n = unsafe { libc::read(self.read_fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                break;
            }
        }
    }
}

impl Drop for WakeFd {
    fn drop(&mut self) {
        // SAFETY: closing descriptors we own, once.
        unsafe {
            libc::close(self.read_fd);
            if self.write_fd != self.read_fd {
                libc::close(self.write_fd);
            }
        }
    }
}

fn last_os_error(what: &str) -> Fail {
    Fail::new(
        PieStatus::Io,
        format!("{what} failed: {}", std::io::Error::last_os_error()),
    )
}
