//! PieClient: a connection, and the client-level network calls.
//!
//! Every network call is one `unsafe fn` returning a [`Call`] (arguments checked and copied,
//! the core future built); its blocking extern runs `call.block()`, its `_async` twin
//! `start_async(.., || call)`.

use std::ffi::{c_char, c_void, CString};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::client::Client;
use crate::{Error, ErrorKind};

use super::boundary::{arg_bytes, arg_fn, arg_out, arg_ref, arg_str, call, value};
use super::call::{block_settled, start_async, start_async_settled, Call};
use super::callback::{Callback, PieDropCallback};
use super::dispatch::Dispatcher;
use super::error::{Fail, FfiResult, PieError};
use super::hash::write_hash;
use super::key::PieKey;
use super::op::{bare_ctx, take_result, Forget, OpCtx, OpHost, PieOp, Start};
use super::options::PieConnectOptions;
use super::runtime::{on_runtime_thread, Rt};
use super::status::PieStatus;
use super::string::to_cstring;
use super::wake_fd::WakeFd;

/// End of the connection: `(user_data, status, message)`; see
/// pie_client_set_connection_callback.
pub type PieConnectionCallback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, status: PieStatus, message: *const c_char)>;

/// Upload progress: `(user_data, bytes_sent, bytes_total)`; see pie_client_upload_program.
pub type PieProgressCallback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, bytes_sent: u64, bytes_total: u64)>;

type ConnectionFn = unsafe extern "C" fn(*mut c_void, PieStatus, *const c_char);
type ProgressFn = unsafe extern "C" fn(*mut c_void, u64, u64);

/// A connection to a Pie server (opaque). Created by pie_client_connect (or
/// pie_op_take_client), owned by the caller, freed with pie_client_free. Every function taking a
/// client may be called from any thread, concurrently.
pub struct PieClient {
    shared: Arc<ClientShared>,
}

#[derive(Default)]
struct ConnState {
    callback: Option<Callback<ConnectionFn>>,
    /// Why the connection ended, once it has.
    ended: Option<Fail>,
}

/// The client's wake fd (created by the first pie_client_event_fd) and how many poll-mode
/// instances have their `ready` flag set: the fd is readable iff `ready` > 0. Both change only
/// under the same lock, so they cannot disagree.
#[derive(Default)]
struct WakeState {
    fd: Option<WakeFd>,
    ready: usize,
}

/// What a client handle, its instances and operations share.
pub(crate) struct ClientShared {
    pub(crate) core: Client,
    request_timeout: Duration,
    conn: Mutex<ConnState>,
    /// The wake fd and the count that drives it, under one lock (see [`WakeState`]).
    wake: Mutex<WakeState>,
    /// The task watching for the end of the connection (it briefly holds a strong reference
    /// when the connection ends, so pie_client_free waits for it).
    watcher: Mutex<Option<tokio::task::JoinHandle<()>>>,
    pub(crate) dispatcher: Arc<Dispatcher>,
    // Last: the runtime must outlive the core client's tasks and the callback thread.
    pub(crate) rt: Rt,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl ClientShared {
    fn new(
        core: Client,
        rt: Rt,
        dispatcher: Arc<Dispatcher>,
        request_timeout: Duration,
    ) -> Arc<Self> {
        let shared = Arc::new(ClientShared {
            core: core.clone(),
            request_timeout,
            conn: Mutex::new(ConnState::default()),
            wake: Mutex::new(WakeState::default()),
            watcher: Mutex::new(None),
            dispatcher,
            rt,
        });
        // Watches for the end of the connection to drive the connection callback.
        let weak = Arc::downgrade(&shared);
        let watcher = shared.rt.handle().spawn(async move {
            let why = core.closed().await;
            if let Some(shared) = weak.upgrade() {
                shared.connection_ended(why);
            }
        });
        *lock(&shared.watcher) = Some(watcher);
        shared
    }

    fn ctx(self: &Arc<Self>) -> OpCtx {
        Arc::clone(self) as OpCtx
    }

    /// A request of this client, bounded by the request timeout. The core already times out
    /// each request; this outer bound also covers time spent queued behind other launches, so
    /// a blocking call never waits much longer than that.
    pub(crate) fn call<F>(self: &Arc<Self>, fut: F) -> Call<F> {
        Call::new(
            self.ctx(),
            self.request_timeout.checked_mul(2),
            Start::Here,
            fut,
        )
    }

    /// Like [`call`](Self::call) but unbounded here: uploads, launches and close may
    /// legitimately take longer than one request timeout (the core bounds each step).
    pub(crate) fn long_call<F>(self: &Arc<Self>, fut: F) -> Call<F> {
        Call::new(self.ctx(), None, Start::Runtime, fut)
    }

    /// A progress callback as the core wants it (the carrier goes with the closure).
    pub(crate) fn progress(
        &self,
        progress: PieProgressCallback,
        user_data: *mut c_void,
    ) -> Option<Box<crate::client::ProgressFn>> {
        let cb: Callback<ProgressFn> = Callback::new(progress?, user_data, None, &self.dispatcher);
        Some(Box::new(move |sent, total| {
            let (function, user_data) = cb.parts();
            // SAFETY: host callback with the host's pointer (header: valid until the upload ends).
            unsafe { function(user_data, sent, total) }
        }))
    }

    fn connection_ended(&self, why: Error) {
        let callback = {
            let mut st = lock(&self.conn);
            if st.ended.is_some() {
                return;
            }
            st.ended = Some(why.into());
            st.callback.take()
        };
        if let Some(cb) = callback {
            self.post_connection_callback(cb);
        }
    }

    fn post_connection_callback(&self, cb: Callback<ConnectionFn>) {
        let why = lock(&self.conn)
            .ended
            .clone()
            .unwrap_or_else(|| Fail::new(PieStatus::Internal, "connection state lost"));
        let _ = self.dispatcher.post_fn(move || {
            let message = to_cstring(&why.message);
            let (function, user_data) = cb.parts();
            // SAFETY: host callback with the host's pointer; `message` lives during the call.
            unsafe { function(user_data, why.status, message.as_ptr()) };
            drop(cb);
        });
    }

    /// Closes the connection; a close that fails (e.g. the server never answers the close
    /// frame) still leaves the client closed, so only misuse is reported.
    fn close(self: &Arc<Self>) -> FfiResult {
        if let Err(f) = close(self).block() {
            if f.status == PieStatus::Busy {
                return Err(f);
            }
        }
        self.connection_ended(Error::new(ErrorKind::ClientClosed, "the client was closed"));
        Ok(())
    }

    /// Close, report the end to the connection callback, and let queued callbacks run: what
    /// pie_client_free promises before it returns.
    fn shut_down(self: &Arc<Self>) {
        if on_runtime_thread() {
            // Cannot wait here; the close still happens in a plain task.
            let core = self.core.clone();
            self.rt.handle().spawn(async move {
                let _ = core.close().await;
            });
            return;
        }
        let _ = self.close();
        let watcher = lock(&self.watcher).take();
        if let Some(w) = watcher {
            // Resolves right after the close; bounded in case the core is slow to report it.
            let _ = self
                .rt
                .handle()
                .block_on(async { tokio::time::timeout(Duration::from_secs(2), w).await });
        }
        self.dispatcher.barrier();
    }

    /// Sets or clears one poll-mode instance's `flag` and keeps the client's count of ready
    /// instances and the fd's readability in step with it. The flag flip, the count and the
    /// signal/drain all happen under the one `wake` lock: done as separate atomic steps, the
    /// reader task marking an instance ready and the host clearing it could interleave so that
    /// the count wrapped below zero or a signal landed after the drain, leaving the fd readable
    /// with nothing ready (a poll loop then spins until the next 1 -> 0 transition).
    /// `may_mark` is asked under the lock before marking: a notification that raced the host
    /// (instance freed, switched to a callback, or its end already reported) must not count an
    /// instance the host will never drain again, or the fd would stay readable for good.
    pub(crate) fn set_ready(
        &self,
        flag: &AtomicBool,
        ready: bool,
        may_mark: impl FnOnce() -> bool,
    ) {
        let mut w = lock(&self.wake);
        if ready && !may_mark() {
            return;
        }
        if flag.load(Ordering::SeqCst) == ready {
            return;
        }
        flag.store(ready, Ordering::SeqCst);
        if ready {
            w.ready += 1;
            if w.ready == 1 {
                if let Some(fd) = &w.fd {
                    fd.signal();
                }
            }
        } else {
            w.ready -= 1;
            if w.ready == 0 {
                if let Some(fd) = &w.fd {
                    fd.drain();
                }
            }
        }
    }
}

impl Drop for ClientShared {
    fn drop(&mut self) {
        // A connection callback that never fired can no longer fire: dropping it releases its
        // user_data on the callback thread.
        drop(
            self.conn
                .get_mut()
                .unwrap_or_else(|e| e.into_inner())
                .callback
                .take(),
        );
        if !self.core.is_closed() {
            let core = self.core.clone();
            self.rt.handle().spawn(async move {
                let _ = core.close().await;
            });
        }
    }
}

impl OpHost for ClientShared {
    fn rt(&self) -> &Rt {
        &self.rt
    }
    fn dispatcher(&self) -> &Arc<Dispatcher> {
        &self.dispatcher
    }
    fn forget(&self, request: Forget) {
        self.core.forget_request(request);
    }
}

impl PieClient {
    fn into_raw(shared: Arc<ClientShared>) -> *mut PieClient {
        Box::into_raw(Box::new(PieClient { shared }))
    }
}

/// Borrows the shared state behind a client handle.
pub(crate) unsafe fn client_arg<'a>(client: *const PieClient) -> FfiResult<&'a Arc<ClientShared>> {
    Ok(&arg_ref(client, "client")?.shared)
}

// ------------------------------------------------------------------------------------------
// Connecting, closing, freeing
// ------------------------------------------------------------------------------------------

/// The connect call: the client is built once the handshake is done.
unsafe fn connect(
    url: *const c_char,
    options: *const PieConnectOptions,
) -> FfiResult<Call<impl Future<Output = FfiResult<Arc<ClientShared>>>>> {
    let url = arg_str(url, "url")?.to_owned();
    let config = PieConnectOptions::config(options);
    let request_timeout = config.request_timeout;
    let rt = Rt::acquire()?;
    let dispatcher = Arc::new(Dispatcher::default());
    let ctx = bare_ctx(rt.clone(), Arc::clone(&dispatcher));
    // The core bounds the handshake by connect_timeout; no outer limit needed.
    Ok(Call::new(ctx, None, Start::Runtime, async move {
        let core = Client::connect_with(&url, config).await?;
        Ok(ClientShared::new(core, rt, dispatcher, request_timeout))
    }))
}

/// Connects to a Pie server at `url` (`ws://host:port` or `wss://host:port`) and returns the
/// client in `*out_client` (owned by the caller: pie_client_free). `options` may be NULL for the
/// defaults; it is copied. Blocks for at most the connect timeout.
/// Errors: PIE_STATUS_NULL_POINTER, PIE_STATUS_INVALID_UTF8, PIE_STATUS_INVALID_ARGUMENT (bad URL),
/// PIE_STATUS_CONNECTION_FAILED, PIE_STATUS_TIMEOUT.
#[no_mangle]
pub unsafe extern "C" fn pie_client_connect(
    url: *const c_char,
    options: *const PieConnectOptions,
    out_client: *mut *mut PieClient,
    out_err: *mut *mut PieError,
) -> PieStatus {
    call(out_err, || {
        let out = arg_out(out_client, "out_client")?;
        *out = PieClient::into_raw(connect(url, options)?.block()?);
        Ok(())
    })
}

/// Starts connecting; `*out_op` receives the operation (pie_op_take_client gives the client).
/// Errors (immediate): PIE_STATUS_NULL_POINTER, PIE_STATUS_INVALID_UTF8; connection failures
/// are reported by the operation.
#[no_mangle]
pub unsafe extern "C" fn pie_client_connect_async(
    url: *const c_char,
    options: *const PieConnectOptions,
    out_op: *mut *mut PieOp,
    out_err: *mut *mut PieError,
) -> PieStatus {
    start_async(out_op, out_err, || connect(url, options))
}

/// Moves the connected client out of a finished pie_client_connect_async operation. The caller
/// owns it (pie_client_free). Errors: PIE_STATUS_PENDING (still running), the operation's failure
/// status, PIE_STATUS_INVALID_ARGUMENT (not a connect operation, or already taken),
/// PIE_STATUS_NULL_POINTER.
#[no_mangle]
pub unsafe extern "C" fn pie_op_take_client(
    op: *const PieOp,
    out_client: *mut *mut PieClient,
    out_err: *mut *mut PieError,
) -> PieStatus {
    take_result(op, out_client, out_err, PieClient::into_raw)
}

/// The close call (not exported: pie_client_close also reports the end to the host).
fn close(c: &Arc<ClientShared>) -> Call<impl Future<Output = FfiResult>> {
    let core = c.core.clone();
    // The core bounds close by itself (about 1 s for the server's Close); an outer limit
    // derived from a short request timeout would only cut the handshake short.
    c.long_call(async move { Ok(core.close().await?) })
}

/// Closes the connection: sends a WebSocket close and waits (about 1 s at most) for the
/// server's. Idempotent. Pending calls finish with PIE_STATUS_CLIENT_CLOSED; every instance's
/// event stream ends (pie_instance_recv returns PIE_STATUS_CLIENT_CLOSED after queued events;
/// event callbacks get their final call with PIE_STATUS_CLIENT_CLOSED); the connection callback
/// is called with PIE_STATUS_CLIENT_CLOSED. The handle stays valid (calls on it fail with
/// PIE_STATUS_CLIENT_CLOSED) until pie_client_free. May be called from a callback.
/// Errors: PIE_STATUS_NULL_POINTER, PIE_STATUS_BUSY (from a progress callback).
#[no_mangle]
pub unsafe extern "C" fn pie_client_close(
    client: *const PieClient,
    out_err: *mut *mut PieError,
) -> PieStatus {
    call(out_err, || client_arg(client)?.close())
}

/// Frees a client: closes it if needed, then waits until the callbacks already queued for it
/// (including final end-of-stream and connection calls) have run. Instances and operations of the
/// client stay valid (their calls fail with PIE_STATUS_CLIENT_CLOSED) and must still be freed;
/// the connection state is released when the last of them is. When the last libpie object in
/// the process is freed, libpie's threads are gone when this returns. Called from inside a
/// callback, the wait is skipped and the release happens after the callback returns (no
/// deadlock). NULL is a no-op; the handle must not be used afterwards.
#[no_mangle]
pub unsafe extern "C" fn pie_client_free(client: *mut PieClient) {
    value(|| {
        if client.is_null() {
            return Ok(());
        }
        let handle = Box::from_raw(client);
        handle.shared.shut_down();
        drop(handle);
        Ok(())
    })
}

/// Registers `callback(user_data, status, message)`, called once on the client's callback
/// thread when the connection ends (status PIE_STATUS_CONNECTION_CLOSED, or
/// PIE_STATUS_CLIENT_CLOSED after pie_client_close/free; `message` is borrowed for the call). If
/// the connection has already ended it is called at once. Then `drop(user_data)` (may be NULL)
/// runs once; it also runs when the registration is replaced or the client is released without
/// the callback having been called. Errors: PIE_STATUS_NULL_POINTER (`client`, `callback`),
/// PIE_STATUS_IO.
#[no_mangle]
pub unsafe extern "C" fn pie_client_set_connection_callback(
    client: *const PieClient,
    callback: PieConnectionCallback,
    user_data: *mut c_void,
    drop: PieDropCallback,
    out_err: *mut *mut PieError,
) -> PieStatus {
    call(out_err, || {
        let c = client_arg(client)?;
        let cb = Callback::new(
            arg_fn(callback, "callback")?,
            user_data,
            drop,
            &c.dispatcher,
        );
        let (replaced, now) = {
            let mut st = lock(&c.conn);
            if st.ended.is_some() {
                (None, Some(cb))
            } else {
                (st.callback.replace(cb), None)
            }
        };
        std::mem::drop(replaced);
        if let Some(cb) = now {
            c.post_connection_callback(cb);
        }
        Ok(())
    })
}

/// Returns in `*out_fd` a file descriptor that is readable while any poll-mode instance of this
/// client (one without an event callback) has an event queued or its stream ended. Add it to
/// poll/epoll/select/libuv/a game loop; when it is readable, call pie_instance_recv(instance, 0,
/// ...) on the client's instances until each returns something other than PIE_STATUS_OK (TIMEOUT
/// when drained): the fd becomes unreadable once nothing is left. Never read from it or close it
/// yourself; it is closed when the client is released. Same fd on every call.
/// Errors: PIE_STATUS_NULL_POINTER, PIE_STATUS_IO.
#[no_mangle]
pub unsafe extern "C" fn pie_client_event_fd(
    client: *const PieClient,
    out_fd: *mut i32,
    out_err: *mut *mut PieError,
) -> PieStatus {
    call(out_err, || {
        let c = client_arg(client)?;
        let out = arg_out(out_fd, "out_fd")?;
        let mut wake = lock(&c.wake);
        if wake.fd.is_none() {
            let w = WakeFd::new()?;
            if wake.ready > 0 {
                w.signal();
            }
            wake.fd = Some(w);
        }
        *out = wake.fd.as_ref().map(WakeFd::fd).unwrap_or(-1);
        Ok(())
    })
}

// ------------------------------------------------------------------------------------------
// Requests: one `unsafe fn` per network call, then its blocking and `_async` externs.
// ------------------------------------------------------------------------------------------

unsafe fn authenticate(
    client: *const PieClient,
    username: *const c_char,
    key: *const PieKey,
) -> FfiResult<Call<impl Future<Output = FfiResult>>> {
    let c = client_arg(client)?;
    let username = arg_str(username, "username")?.to_owned();
    let key = PieKey::shared(key);
    let core = c.core.clone();
    Ok(c.call(async move { Ok(core.authenticate(&username, key.as_deref()).await?) }))
}

/// Authenticates as `username` with `key` (NULL when the server has authentication disabled).
/// The key is only used during the call. Errors: PIE_STATUS_NULL_POINTER (`client`, `username`),
/// PIE_STATUS_INVALID_UTF8, PIE_STATUS_AUTH (refused; the message is the server's), PIE_STATUS_KEY,
/// PIE_STATUS_TIMEOUT, PIE_STATUS_CONNECTION_CLOSED, PIE_STATUS_CLIENT_CLOSED.
#[no_mangle]
pub unsafe extern "C" fn pie_client_authenticate(
    client: *const PieClient,
    username: *const c_char,
    key: *const PieKey,
    out_err: *mut *mut PieError,
) -> PieStatus {
    call(out_err, || authenticate(client, username, key)?.block())
}

/// Asynchronous pie_client_authenticate: `*out_op` receives the operation (no result value).
#[no_mangle]
pub unsafe extern "C" fn pie_client_authenticate_async(
    client: *const PieClient,
    username: *const c_char,
    key: *const PieKey,
    out_op: *mut *mut PieOp,
    out_err: *mut *mut PieError,
) -> PieStatus {
    start_async(out_op, out_err, || authenticate(client, username, key))
}

unsafe fn internal_authenticate(
    client: *const PieClient,
    token: *const c_char,
) -> FfiResult<Call<impl Future<Output = FfiResult>>> {
    let c = client_arg(client)?;
    let token = arg_str(token, "token")?.to_owned();
    let core = c.core.clone();
    Ok(c.call(async move { Ok(core.internal_authenticate(&token).await?) }))
}

/// Authenticates with the server's internal token (for tools running next to the engine).
/// Errors: PIE_STATUS_NULL_POINTER, PIE_STATUS_INVALID_UTF8, PIE_STATUS_AUTH (wrong token; the
/// server answers after a delay of up to 3 s), PIE_STATUS_TIMEOUT, PIE_STATUS_CONNECTION_CLOSED,
/// PIE_STATUS_CLIENT_CLOSED.
#[no_mangle]
pub unsafe extern "C" fn pie_client_internal_authenticate(
    client: *const PieClient,
    token: *const c_char,
    out_err: *mut *mut PieError,
) -> PieStatus {
    call(out_err, || internal_authenticate(client, token)?.block())
}

/// Asynchronous pie_client_internal_authenticate (no result value).
#[no_mangle]
pub unsafe extern "C" fn pie_client_internal_authenticate_async(
    client: *const PieClient,
    token: *const c_char,
    out_op: *mut *mut PieOp,
    out_err: *mut *mut PieError,
) -> PieStatus {
    start_async(out_op, out_err, || internal_authenticate(client, token))
}

unsafe fn ping(client: *const PieClient) -> FfiResult<Call<impl Future<Output = FfiResult>>> {
    let c = client_arg(client)?;
    let core = c.core.clone();
    Ok(c.call(async move { Ok(core.ping().await?) }))
}

/// A ping the core settles itself by calling `settle` (`Err` before the protocol is known:
/// use [`ping`]). `settle` is stored in the request as it is: no box of its own.
fn start_ping(
    c: &ClientShared,
    settle: impl FnOnce(FfiResult<()>) + Send + 'static,
) -> Result<Option<Forget>, ()> {
    match c.core.start_ping(move |r| settle(r.map_err(Fail::from))) {
        Ok(started) => Ok(started),
        Err(_) => Err(()),
    }
}

/// Round trip to the server. Errors: PIE_STATUS_NULL_POINTER, PIE_STATUS_TIMEOUT,
/// PIE_STATUS_CONNECTION_CLOSED, PIE_STATUS_CLIENT_CLOSED.
#[no_mangle]
pub unsafe extern "C" fn pie_client_ping(
    client: *const PieClient,
    out_err: *mut *mut PieError,
) -> PieStatus {
    call(out_err, || {
        let c = client_arg(client)?;
        match block_settled(|filler| start_ping(c, move |r| filler.fill(r)).is_ok()) {
            Some(outcome) => outcome,
            None => ping(client)?.block(),
        }
    })
}

/// Asynchronous pie_client_ping (no result value).
#[no_mangle]
pub unsafe extern "C" fn pie_client_ping_async(
    client: *const PieClient,
    out_op: *mut *mut PieOp,
    out_err: *mut *mut PieError,
) -> PieStatus {
    start_async_settled(
        out_op,
        out_err,
        || {
            let c = client_arg(client)?;
            Ok(PieOp::settled_by(c.ctx(), |op| c.core.start_ping_to(op)))
        },
        || ping(client),
    )
}

unsafe fn query(
    client: *const PieClient,
    subject: *const c_char,
    record: *const c_char,
) -> FfiResult<Call<impl Future<Output = FfiResult<CString>>>> {
    let c = client_arg(client)?;
    let subject = arg_str(subject, "subject")?.to_owned();
    let record = arg_str(record, "record")?.to_owned();
    let core = c.core.clone();
    Ok(c.call(async move { Ok(to_cstring(&core.query(&subject, &record).await?)) }))
}

/// Sends a query (`subject`, `record`) and returns the server's answer in `*out_result`: a
/// NUL-terminated UTF-8 string owned by the caller (pie_string_free). Unknown subjects get no
/// reply from the real server and end in PIE_STATUS_TIMEOUT. Errors: PIE_STATUS_NULL_POINTER,
/// PIE_STATUS_INVALID_UTF8, PIE_STATUS_SERVER, PIE_STATUS_TIMEOUT, PIE_STATUS_CONNECTION_CLOSED,
/// PIE_STATUS_CLIENT_CLOSED.
#[no_mangle]
pub unsafe extern "C" fn pie_client_query(
    client: *const PieClient,
    subject: *const c_char,
    record: *const c_char,
    out_result: *mut *mut c_char,
    out_err: *mut *mut PieError,
) -> PieStatus {
    call(out_err, || {
        let out = arg_out(out_result, "out_result")?;
        *out = query(client, subject, record)?.block()?.into_raw();
        Ok(())
    })
}

/// Asynchronous pie_client_query; the answer is pie_op_result_string(op).
#[no_mangle]
pub unsafe extern "C" fn pie_client_query_async(
    client: *const PieClient,
    subject: *const c_char,
    record: *const c_char,
    out_op: *mut *mut PieOp,
    out_err: *mut *mut PieError,
) -> PieStatus {
    start_async(out_op, out_err, || query(client, subject, record))
}

unsafe fn program_exists(
    client: *const PieClient,
    hash: *const c_char,
) -> FfiResult<Call<impl Future<Output = FfiResult<bool>>>> {
    let c = client_arg(client)?;
    let hash = arg_str(hash, "hash")?.to_owned();
    let core = c.core.clone();
    Ok(c.call(async move { Ok(core.program_exists(&hash).await?) }))
}

/// Whether the server has a program with this hash (64 lowercase hex digits) in its store; the
/// answer goes to `*out_exists`. Errors as pie_client_query.
#[no_mangle]
pub unsafe extern "C" fn pie_client_program_exists(
    client: *const PieClient,
    hash: *const c_char,
    out_exists: *mut bool,
    out_err: *mut *mut PieError,
) -> PieStatus {
    call(out_err, || {
        let out = arg_out(out_exists, "out_exists")?;
        *out = program_exists(client, hash)?.block()?;
        Ok(())
    })
}

/// Asynchronous pie_client_program_exists; the answer is pie_op_result_bool(op, ...).
#[no_mangle]
pub unsafe extern "C" fn pie_client_program_exists_async(
    client: *const PieClient,
    hash: *const c_char,
    out_op: *mut *mut PieOp,
    out_err: *mut *mut PieError,
) -> PieStatus {
    start_async(out_op, out_err, || program_exists(client, hash))
}

/// The upload call. `data` is borrowed by the blocking form (no copy of the program) and owned
/// by the `_async` form.
unsafe fn upload_program<'a, D: AsRef<[u8]> + Send + 'a>(
    client: *const PieClient,
    data: impl FnOnce(&'a [u8]) -> D,
    program: *const u8,
    len: usize,
    progress: PieProgressCallback,
    user_data: *mut c_void,
) -> FfiResult<Call<impl Future<Output = FfiResult<CString>> + 'a>> {
    let c = client_arg(client)?;
    let data = data(arg_bytes(program, len, "data")?);
    let progress = c.progress(progress, user_data);
    let core = c.core.clone();
    Ok(c.long_call(async move {
        let hash = core
            .upload_program_with_progress(data.as_ref(), progress.as_deref())
            .await?;
        Ok(to_cstring(&hash))
    }))
}

fn borrowed(data: &[u8]) -> &[u8] {
    data
}

/// Uploads a program (a WebAssembly component, `len` bytes) and writes its hash, 64 hex
/// digits and a NUL, into `out_hash` (at least PIE_HASH_BUFFER_SIZE bytes). `progress` (may be
/// NULL) is called as progress(user_data, bytes_sent, bytes_total) each time a 256 KiB chunk has
/// been handed to the socket, on the calling thread; it must return quickly and must not make
/// blocking libpie calls (they fail with PIE_STATUS_BUSY). It is never called after the upload
/// has finished. A successful upload always ends with a call where bytes_sent == bytes_total,
/// before this function returns.
/// Errors: PIE_STATUS_NULL_POINTER, PIE_STATUS_INVALID_ARGUMENT (not a WebAssembly component:
/// refused before sending, as the server would drop the connection), PIE_STATUS_SERVER (refused;
/// the server's text), PIE_STATUS_TIMEOUT, PIE_STATUS_CONNECTION_CLOSED, PIE_STATUS_CLIENT_CLOSED.
#[no_mangle]
pub unsafe extern "C" fn pie_client_upload_program(
    client: *const PieClient,
    data: *const u8,
    len: usize,
    progress: PieProgressCallback,
    user_data: *mut c_void,
    out_hash: *mut c_char,
    out_err: *mut *mut PieError,
) -> PieStatus {
    call(out_err, || {
        arg_out(out_hash, "out_hash")?;
        let hash = upload_program(client, borrowed, data, len, progress, user_data)?.block()?;
        write_hash(out_hash, hash.as_bytes());
        Ok(())
    })
}

/// Asynchronous pie_client_upload_program (`data` is copied); the hash is
/// pie_op_result_string(op). `progress` runs on a libpie runtime thread; `user_data` must stay
/// valid until the operation finishes.
#[no_mangle]
pub unsafe extern "C" fn pie_client_upload_program_async(
    client: *const PieClient,
    data: *const u8,
    len: usize,
    progress: PieProgressCallback,
    user_data: *mut c_void,
    out_op: *mut *mut PieOp,
    out_err: *mut *mut PieError,
) -> PieStatus {
    start_async(out_op, out_err, || {
        upload_program(client, <[u8]>::to_vec, data, len, progress, user_data)
    })
}

unsafe fn terminate_instance(
    client: *const PieClient,
    id: *const c_char,
) -> FfiResult<Call<impl Future<Output = FfiResult>>> {
    let c = client_arg(client)?;
    Ok(terminate(c, arg_str(id, "id")?.to_owned()))
}

/// The terminate request, shared with pie_instance_terminate.
pub(crate) fn terminate(
    c: &Arc<ClientShared>,
    id: String,
) -> Call<impl Future<Output = FfiResult>> {
    let core = c.core.clone();
    c.call(async move { Ok(core.terminate_instance(&id).await?) })
}

/// Asks the server to terminate the instance `id` (its attached client then gets an ABORTED
/// event). The server reports success for any well-formed UUID, whether or not such an instance
/// exists. Errors: PIE_STATUS_NULL_POINTER, PIE_STATUS_INVALID_UTF8, PIE_STATUS_SERVER (`id` is
/// not a UUID), PIE_STATUS_TIMEOUT, PIE_STATUS_CONNECTION_CLOSED, PIE_STATUS_CLIENT_CLOSED.
#[no_mangle]
pub unsafe extern "C" fn pie_client_terminate_instance(
    client: *const PieClient,
    id: *const c_char,
    out_err: *mut *mut PieError,
) -> PieStatus {
    call(out_err, || terminate_instance(client, id)?.block())
}

/// Asynchronous pie_client_terminate_instance (no result value).
#[no_mangle]
pub unsafe extern "C" fn pie_client_terminate_instance_async(
    client: *const PieClient,
    id: *const c_char,
    out_op: *mut *mut PieOp,
    out_err: *mut *mut PieError,
) -> PieStatus {
    start_async(out_op, out_err, || terminate_instance(client, id))
}
