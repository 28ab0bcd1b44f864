//! Callback: the one carrier of every host callback registration (connection, operation,
//! instance events, upload progress): the function pointer, the host's `user_data`, and the
//! optional `drop(user_data)`, which its `Drop` runs exactly once, on the client's callback
//! thread, after every call of the callback already queued there.

use std::ffi::c_void;
use std::sync::Arc;

use super::dispatch::Dispatcher;

/// Releases a callback's `user_data`: called once, on the client's callback thread, after the
/// last call of its callback (also when the callback is replaced, or never called because its
/// object was freed first). May be NULL.
pub type PieDropCallback = Option<unsafe extern "C" fn(user_data: *mut c_void)>;

/// A host pointer carried to another thread. libpie never dereferences it; the host promised
/// (in the header) that it may be used from the thread its callback runs on.
#[derive(Clone, Copy, Debug)]
pub(crate) struct UserData(*mut c_void);
// SAFETY: opaque to libpie; thread-safety of what it points to is the host's documented duty.
unsafe impl Send for UserData {}
unsafe impl Sync for UserData {}

impl UserData {
    /// The pointer (a method, so closures capture the whole Send wrapper, not the raw field).
    pub(crate) fn get(self) -> *mut c_void {
        self.0
    }
}

/// A registered callback: `F` is its (non-NULL) function pointer type.
pub(crate) struct Callback<F: Copy> {
    function: F,
    user_data: UserData,
    drop: PieDropCallback,
    /// Where `drop` runs.
    thread: Arc<Dispatcher>,
}

impl<F: Copy> Callback<F> {
    pub(crate) fn new(
        function: F,
        user_data: *mut c_void,
        drop: PieDropCallback,
        thread: &Arc<Dispatcher>,
    ) -> Callback<F> {
        Callback {
            function,
            user_data: UserData(user_data),
            drop,
            thread: Arc::clone(thread),
        }
    }

    /// The function and the pointer to call it with (copied out, so no lock is held during a
    /// call).
    pub(crate) fn parts(&self) -> (F, *mut c_void) {
        (self.function, self.user_data.get())
    }
}

impl<F: Copy> Drop for Callback<F> {
    fn drop(&mut self) {
        let Some(drop_fn) = self.drop.take() else {
            return;
        };
        let user_data = self.user_data;
        // SAFETY (both calls): the host's own function with the host's own pointer, once.
        if self.thread.on_thread() {
            unsafe { drop_fn(user_data.get()) };
            return;
        }
        let posted = self
            .thread
            .post_fn(move || unsafe { drop_fn(user_data.get()) });
        if posted.is_err() {
            // No callback thread could be started: releasing here beats leaking.
            unsafe { drop_fn(user_data.get()) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static DROPS: AtomicUsize = AtomicUsize::new(0);
    static ON_CALLBACK_THREAD: AtomicUsize = AtomicUsize::new(0);

    unsafe extern "C" fn count_drop(user_data: *mut c_void) {
        DROPS.fetch_add(1, Ordering::SeqCst);
        let name = std::thread::current().name().map(str::to_owned);
        if name.as_deref() == Some("pie-callbacks") {
            ON_CALLBACK_THREAD.fetch_add(1, Ordering::SeqCst);
        }
        assert_eq!(user_data as usize, 42);
    }

    unsafe extern "C" fn nothing() {}

    #[test]
    fn drop_runs_once_on_the_callback_thread() {
        let thread = Arc::new(Dispatcher::default());
        let cb = Callback::new(
            nothing as unsafe extern "C" fn(),
            42 as *mut c_void,
            Some(count_drop),
            &thread,
        );
        drop(cb);
        thread.barrier();
        assert_eq!(DROPS.load(Ordering::SeqCst), 1);
        assert_eq!(ON_CALLBACK_THREAD.load(Ordering::SeqCst), 1);
    }
}
