//! PieConnectOptions, PieClient and the client-level calls (blocking and `_async` forms).

use std::ffi::{c_char, c_void};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::client::{Client, ClientConfig};
use crate::keys::PrivateKey;
use crate::{Error, ErrorKind};

use super::dispatch::{Dispatcher, DropFn, UserData, WakeFd};
use super::instance::{InstanceShared, PieInstance, PieInstanceList};
use super::key::PieKey;
use super::op::{blocking, ignore, start_async, OpCtx, OpValue, PieOp};
use super::runtime::{on_runtime_thread, Rt};
use super::status::{
    arg_argv, arg_bytes, arg_out, arg_ref, arg_str, ffi_call, ffi_value, to_cstring, Fail,
    FfiResult, PieError, PieStatus,
};

/// Bytes needed for a program/blob hash: 64 lowercase hex digits and the terminating NUL.
pub const PIE_HASH_BUFFER_SIZE: usize = 65;

/// Connection settings (opaque). Created with pie_connect_options_new, owned by the caller,
/// freed with pie_connect_options_free. pie_client_connect copies it, so it may be freed or
/// reused right after. Not synchronised: do not modify one options object from two threads at
/// once.
pub struct PieConnectOptions {
    connect_timeout: Duration,
    request_timeout: Duration,
    max_launches_in_flight: usize,
    instance_queue_limit_bytes: usize,
    tcp_quickack: bool,
    extra_root_certs_pem: Vec<Vec<u8>>,
}

impl Default for PieConnectOptions {
    fn default() -> Self {
        let d = ClientConfig::default();
        PieConnectOptions {
            connect_timeout: d.connect_timeout,
            request_timeout: d.request_timeout,
            max_launches_in_flight: d.max_launches_in_flight,
            instance_queue_limit_bytes: d.instance_queue_limit_bytes,
            tcp_quickack: d.tcp_quickack,
            extra_root_certs_pem: d.extra_root_certs_pem,
        }
    }
}

impl PieConnectOptions {
    fn to_config(&self) -> ClientConfig {
        ClientConfig {
            connect_timeout: self.connect_timeout,
            request_timeout: self.request_timeout,
            max_launches_in_flight: self.max_launches_in_flight,
            instance_queue_limit_bytes: self.instance_queue_limit_bytes,
            tcp_quickack: self.tcp_quickack,
            extra_root_certs_pem: self.extra_root_certs_pem.clone(),
            ..ClientConfig::default()
        }
    }
}

/// A connection to a Pie server (opaque). Created by pie_client_connect (or
/// pie_op_take_client), owned by the caller, freed with pie_client_free. Every function taking a
/// client may be called from any thread, concurrently.
pub struct PieClient {
    shared: Arc<ClientShared>,
}

/// The connection-callback registration.
struct ConnCallback {
    call: unsafe extern "C" fn(*mut c_void, PieStatus, *const c_char),
    drop: DropFn,
}

#[derive(Default)]
struct ConnState {
    callback: Option<ConnCallback>,
    /// Why the connection ended, once it has.
    ended: Option<Fail>,
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
        *shared.watcher.lock().unwrap_or_else(|e| e.into_inner()) = Some(watcher);
        shared
    }

    pub(crate) fn ctx(self: &Arc<Self>) -> OpCtx {
        OpCtx {
            rt: self.rt.clone(),
            dispatcher: Arc::clone(&self.dispatcher),
            client: Some(Arc::clone(self)),
        }
    }

    /// Starts `fut` as an operation of this client, bounded by the request timeout.
    pub(crate) fn op<F>(self: &Arc<Self>, fut: F) -> Arc<PieOp>
    where
        F: std::future::Future<Output = FfiResult<OpValue>> + Send + 'static,
    {
        // The core already times out each request; this outer bound also covers time spent
        // queued behind other launches, so a blocking call never waits much longer than that.
        let limit = self.request_timeout.checked_mul(2);
        PieOp::start(self.ctx(), limit, fut)
    }

    /// Like [`op`](Self::op) but unbounded here: uploads and registry launches may legitimately
    /// take longer than one request timeout (the core bounds the wait for the final reply).
    pub(crate) fn long_op<F>(self: &Arc<Self>, fut: F) -> Arc<PieOp>
    where
        F: std::future::Future<Output = FfiResult<OpValue>> + Send + 'static,
    {
        PieOp::start(self.ctx(), None, fut)
    }

    fn connection_ended(&self, why: Error) {
        let callback = {
            let mut st = self.conn.lock().unwrap_or_else(|e| e.into_inner());
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

    fn post_connection_callback(&self, cb: ConnCallback) {
        let why = self
            .conn
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .ended
            .clone()
            .unwrap_or_else(|| Fail::new(PieStatus::Internal, "connection state lost"));
        let _ = self.dispatcher.post(Box::new(move || {
            let message = to_cstring(&why.message);
            // SAFETY: host callback with the host's pointer; `message` lives during the call.
            unsafe { (cb.call)(cb.drop.user_data.get(), why.status, message.as_ptr()) };
            cb.drop.run();
        }));
    }

    /// Close, report the end to the connection callback, and let queued callbacks run: what
    /// pie_client_free promises before it returns.
    fn shut_down(self: &Arc<Self>) {
        if on_runtime_thread() {
            // Cannot wait here; the close still happens (a dropped PieOp would cancel it, so
            // this is a plain task).
            let core = self.core.clone();
            self.rt.handle().spawn(async move {
                let _ = core.close().await;
            });
            return;
        }
        let _ = self.op_close().block();
        let watcher = self
            .watcher
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(w) = watcher {
            // Resolves right after the close; bounded in case the core is slow to report it.
            let _ = self
                .rt
                .handle()
                .block_on(async { tokio::time::timeout(Duration::from_secs(2), w).await });
        }
        self.connection_ended(Error::new(ErrorKind::ClientClosed, "the client was closed"));
        self.dispatcher.barrier();
    }

    // ---- the event fd: readable while `ready` > 0 ----

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
        let mut w = self.wake.lock().unwrap_or_else(|e| e.into_inner());
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

/// The client's wake fd (created by the first pie_client_event_fd) and how many poll-mode
/// instances have their `ready` flag set: the fd is readable iff `ready` > 0. Both change only
/// under the same lock, so they cannot disagree.
#[derive(Default)]
struct WakeState {
    fd: Option<WakeFd>,
    ready: usize,
}

impl Drop for ClientShared {
    fn drop(&mut self) {
        // A connection callback that never fired can no longer fire: honour its drop half.
        let cb = self
            .conn
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .callback
            .take();
        if let Some(cb) = cb {
            cb.drop.run();
        }
        if !self.core.is_closed() {
            let core = self.core.clone();
            self.rt.handle().spawn(async move {
                let _ = core.close().await;
            });
        }
    }
}

impl PieClient {
    pub(crate) fn into_raw(shared: Arc<ClientShared>) -> *mut PieClient {
        Box::into_raw(Box::new(PieClient { shared }))
    }
}

/// Borrows the shared state behind a client handle.
unsafe fn client_arg<'a>(client: *const PieClient) -> FfiResult<&'a Arc<ClientShared>> {
    Ok(&arg_ref(client, "client")?.shared)
}

// ------------------------------------------------------------------------------------------
// Options
// ------------------------------------------------------------------------------------------

/// Creates connection options holding the defaults: connect timeout 10 s, request timeout 30 s,
/// 1 launch in flight, 64 MiB instance queue limit, TCP quickack on, webpki trusted roots.
/// Owned by the caller: free with pie_connect_options_free. Returns NULL only if out of memory.
#[no_mangle]
pub extern "C" fn pie_connect_options_new() -> *mut PieConnectOptions {
    ffi_value(std::ptr::null_mut(), || {
        Ok(Box::into_raw(Box::new(PieConnectOptions::default())))
    })
}

/// Frees connection options. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn pie_connect_options_free(options: *mut PieConnectOptions) {
    ffi_value((), || {
        if !options.is_null() {
            drop(Box::from_raw(options));
        }
        Ok(())
    })
}

unsafe fn with_options(
    options: *mut PieConnectOptions,
    out_err: *mut *mut PieError,
    set: impl FnOnce(&mut PieConnectOptions) -> FfiResult,
) -> PieStatus {
    ffi_call(out_err, || {
        let o = arg_out(options, "options")?;
        set(o)
    })
}

fn positive_ms(ms: u32, name: &str) -> FfiResult<Duration> {
    if ms == 0 {
        return Err(Fail::new(
            PieStatus::InvalidArgument,
            format!("`{name}` must be greater than 0"),
        ));
    }
    Ok(Duration::from_millis(u64::from(ms)))
}

/// Sets the time allowed to establish the connection (TCP, TLS and WebSocket handshake), in
/// milliseconds (> 0). Errors: PIE_STATUS_NULL_POINTER, PIE_STATUS_INVALID_ARGUMENT (0).
#[no_mangle]
pub unsafe extern "C" fn pie_connect_options_set_connect_timeout_ms(
    options: *mut PieConnectOptions,
    timeout_ms: u32,
    out_err: *mut *mut PieError,
) -> PieStatus {
    with_options(options, out_err, |o| {
        o.connect_timeout = positive_ms(timeout_ms, "timeout_ms")?;
        Ok(())
    })
}

/// Sets the time allowed for each request's reply, in milliseconds (> 0). Blocking calls are
/// bounded by it (uploads and registry launches: the wait for their final reply).
/// Errors: PIE_STATUS_NULL_POINTER, PIE_STATUS_INVALID_ARGUMENT (0).
#[no_mangle]
pub unsafe extern "C" fn pie_connect_options_set_request_timeout_ms(
    options: *mut PieConnectOptions,
    timeout_ms: u32,
    out_err: *mut *mut PieError,
) -> PieStatus {
    with_options(options, out_err, |o| {
        o.request_timeout = positive_ms(timeout_ms, "timeout_ms")?;
        Ok(())
    })
}

/// Sets how many launches may wait for their reply at once (default 1, which avoids a known
/// server deadlock; 0 = unlimited). Further launches queue inside libpie.
/// Errors: PIE_STATUS_NULL_POINTER.
#[no_mangle]
pub unsafe extern "C" fn pie_connect_options_set_max_launches_in_flight(
    options: *mut PieConnectOptions,
    max: u32,
    out_err: *mut *mut PieError,
) -> PieStatus {
    with_options(options, out_err, |o| {
        o.max_launches_in_flight = max as usize;
        Ok(())
    })
}

/// Sets the per-instance bound on queued event payload bytes (default 64 MiB; 0 = unlimited).
/// When it is reached, non-terminal events are discarded and a PIE_EVENT_KIND_OVERFLOW event
/// tells how many. Errors: PIE_STATUS_NULL_POINTER.
#[no_mangle]
pub unsafe extern "C" fn pie_connect_options_set_instance_queue_limit_bytes(
    options: *mut PieConnectOptions,
    limit_bytes: u64,
    out_err: *mut *mut PieError,
) -> PieStatus {
    with_options(options, out_err, |o| {
        o.instance_queue_limit_bytes = usize::try_from(limit_bytes).unwrap_or(usize::MAX);
        Ok(())
    })
}

/// Turns TCP quickack (Linux; ignored elsewhere) on or off (default on: replies to small
/// requests are not held back by delayed ACKs). Errors: PIE_STATUS_NULL_POINTER.
#[no_mangle]
pub unsafe extern "C" fn pie_connect_options_set_tcp_quickack(
    options: *mut PieConnectOptions,
    enabled: bool,
    out_err: *mut *mut PieError,
) -> PieStatus {
    with_options(options, out_err, |o| {
        o.tcp_quickack = enabled;
        Ok(())
    })
}

/// Adds PEM certificate(s) trusted as roots for wss:// URLs, in addition to the built-in webpki
/// roots. `pem` (`pem_len` bytes) is copied. The PEM is parsed when connecting: an invalid one
/// makes pie_client_connect fail with PIE_STATUS_INVALID_ARGUMENT or
/// PIE_STATUS_CONNECTION_FAILED. Errors: PIE_STATUS_NULL_POINTER, PIE_STATUS_INVALID_ARGUMENT
/// (empty).
#[no_mangle]
pub unsafe extern "C" fn pie_connect_options_add_root_cert_pem(
    options: *mut PieConnectOptions,
    pem: *const u8,
    pem_len: usize,
    out_err: *mut *mut PieError,
) -> PieStatus {
    with_options(options, out_err, |o| {
        let pem = arg_bytes(pem, pem_len, "pem")?;
        if pem.is_empty() {
            return Err(Fail::new(PieStatus::InvalidArgument, "`pem` is empty"));
        }
        o.extra_root_certs_pem.push(pem.to_vec());
        Ok(())
    })
}

// ------------------------------------------------------------------------------------------
// Connecting, closing, freeing
// ------------------------------------------------------------------------------------------

unsafe fn connect_op(
    url: *const c_char,
    options: *const PieConnectOptions,
) -> FfiResult<Arc<PieOp>> {
    let url = arg_str(url, "url")?.to_owned();
    let opts = match options.as_ref() {
        Some(o) => o,
        None => &PieConnectOptions::default(),
    };
    let config = opts.to_config();
    let request_timeout = opts.request_timeout;
    let rt = Rt::acquire()?;
    let dispatcher = Arc::new(Dispatcher::default());
    let ctx = OpCtx {
        rt: rt.clone(),
        dispatcher: Arc::clone(&dispatcher),
        client: None,
    };
    // The core bounds the handshake by connect_timeout; no outer limit needed.
    Ok(PieOp::start(ctx, None, async move {
        let core = Client::connect_with(&url, config).await?;
        Ok(OpValue::Client(ClientShared::new(
            core,
            rt,
            dispatcher,
            request_timeout,
        )))
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
    let make = || {
        arg_out(out_client, "out_client")?;
        connect_op(url, options)
    };
    blocking(out_err, make, |v| {
        *out_client = PieClient::into_raw(v.into_client()?);
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
    start_async(out_op, out_err, || connect_op(url, options))
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
    ffi_call(out_err, || {
        let c = client_arg(client)?;
        // A close that fails (e.g. the server never answers the close frame) still leaves the
        // client closed; only misuse is reported.
        if let Err(f) = c.op_close().block() {
            if f.status == PieStatus::Busy {
                return Err(f);
            }
        }
        c.connection_ended(Error::new(ErrorKind::ClientClosed, "the client was closed"));
        Ok(())
    })
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
    ffi_value((), || {
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
    callback: Option<
        unsafe extern "C" fn(user_data: *mut c_void, status: PieStatus, message: *const c_char),
    >,
    user_data: *mut c_void,
    drop: Option<unsafe extern "C" fn(user_data: *mut c_void)>,
    out_err: *mut *mut PieError,
) -> PieStatus {
    ffi_call(out_err, || {
        let c = client_arg(client)?;
        let call =
            callback.ok_or_else(|| Fail::new(PieStatus::NullPointer, "`callback` is NULL"))?;
        let cb = ConnCallback {
            call,
            drop: DropFn {
                drop,
                user_data: UserData(user_data),
            },
        };
        let (old, now) = {
            let mut st = c.conn.lock().unwrap_or_else(|e| e.into_inner());
            if st.ended.is_some() {
                (None, Some(cb))
            } else {
                (st.callback.replace(cb), None)
            }
        };
        if let Some(old) = old {
            c.dispatcher.post(Box::new(move || old.drop.run()))?;
        }
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
    ffi_call(out_err, || {
        let c = client_arg(client)?;
        let out = arg_out(out_fd, "out_fd")?;
        let mut wake = c.wake.lock().unwrap_or_else(|e| e.into_inner());
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
// Requests. Each `op_*` builds the operation; the extern pairs only convert arguments.
// ------------------------------------------------------------------------------------------

impl ClientShared {
    fn op_authenticate(
        self: &Arc<Self>,
        username: String,
        key: Option<Arc<PrivateKey>>,
    ) -> Arc<PieOp> {
        let core = self.core.clone();
        self.op(async move {
            core.authenticate(&username, key.as_deref()).await?;
            Ok(OpValue::Unit)
        })
    }

    fn op_internal_authenticate(self: &Arc<Self>, token: String) -> Arc<PieOp> {
        let core = self.core.clone();
        self.op(async move {
            core.internal_authenticate(&token).await?;
            Ok(OpValue::Unit)
        })
    }

    fn op_close(self: &Arc<Self>) -> Arc<PieOp> {
        let core = self.core.clone();
        // The core bounds close by itself (about 1 s for the server's Close); an outer limit
        // derived from a short request timeout would only cut the handshake short.
        self.long_op(async move {
            core.close().await?;
            Ok(OpValue::Unit)
        })
    }

    fn op_ping(self: &Arc<Self>) -> Arc<PieOp> {
        let core = self.core.clone();
        self.op(async move {
            core.ping().await?;
            Ok(OpValue::Unit)
        })
    }

    fn op_query(self: &Arc<Self>, subject: String, record: String) -> Arc<PieOp> {
        let core = self.core.clone();
        self.op(async move {
            Ok(OpValue::Text(to_cstring(
                &core.query(&subject, &record).await?,
            )))
        })
    }

    fn op_program_exists(self: &Arc<Self>, hash: String) -> Arc<PieOp> {
        let core = self.core.clone();
        self.op(async move { Ok(OpValue::Bool(core.program_exists(&hash).await?)) })
    }

    fn op_upload_program(
        self: &Arc<Self>,
        data: Vec<u8>,
        progress: Option<Progress>,
    ) -> Arc<PieOp> {
        let core = self.core.clone();
        self.long_op(async move {
            let f = progress.map(Progress::into_fn);
            let hash = core
                .upload_program_with_progress(&data, f.as_deref())
                .await?;
            Ok(OpValue::Text(to_cstring(&hash)))
        })
    }

    fn op_launch(self: &Arc<Self>, what: Launch, args: Vec<String>, detached: bool) -> Arc<PieOp> {
        let me = Arc::clone(self);
        let fut = async move {
            let inst = match what {
                Launch::Hash(h) => me.core.launch_instance(&h, args, detached).await?,
                Launch::Registry(n) => {
                    me.core
                        .launch_instance_from_registry(&n, args, detached)
                        .await?
                }
                Launch::Attach(id) => me.core.attach_instance(&id).await?,
            };
            Ok(OpValue::Instance(InstanceShared::new(me, inst)))
        };
        self.long_op(fut)
    }

    fn op_list(self: &Arc<Self>) -> Arc<PieOp> {
        let core = self.core.clone();
        self.op(async move {
            Ok(OpValue::List(Box::new(PieInstanceList::new(
                core.list_instances().await?,
            ))))
        })
    }

    pub(crate) fn op_terminate(self: &Arc<Self>, id: String) -> Arc<PieOp> {
        let core = self.core.clone();
        self.op(async move {
            core.terminate_instance(&id).await?;
            Ok(OpValue::Unit)
        })
    }
}

/// What to launch (or attach): one code path for the three instance-producing calls.
enum Launch {
    Hash(String),
    Registry(String),
    Attach(String),
}

/// A host progress callback, carried to the runtime thread that reports upload progress.
#[derive(Clone, Copy)]
pub(crate) struct Progress {
    call: unsafe extern "C" fn(*mut c_void, u64, u64),
    user_data: UserData,
}

impl Progress {
    pub(crate) fn new(
        call: Option<unsafe extern "C" fn(*mut c_void, u64, u64)>,
        user_data: *mut c_void,
    ) -> Option<Progress> {
        call.map(|call| Progress {
            call,
            user_data: UserData(user_data),
        })
    }

    pub(crate) fn into_fn(self) -> Box<crate::client::ProgressFn> {
        Box::new(move |sent, total| {
            // SAFETY: host callback with the host's pointer (header: valid until the upload ends).
            unsafe { (self.call)(self.user_data.get(), sent, total) }
        })
    }
}

/// Writes a hash into the caller's buffer of at least PIE_HASH_BUFFER_SIZE bytes.
unsafe fn write_hash(out: *mut c_char, hash: &[u8]) {
    let n = hash.len().min(PIE_HASH_BUFFER_SIZE - 1);
    std::ptr::copy_nonoverlapping(hash.as_ptr(), out.cast::<u8>(), n);
    *out.add(n) = 0;
}

// Argument conversion shared by each blocking function and its `_async` twin: every pointer is
// checked and every input copied here, before anything is sent.

unsafe fn authenticate_op(
    client: *const PieClient,
    username: *const c_char,
    key: *const PieKey,
) -> FfiResult<Arc<PieOp>> {
    let c = client_arg(client)?;
    let username = arg_str(username, "username")?.to_owned();
    Ok(c.op_authenticate(username, PieKey::shared(key)))
}

unsafe fn internal_authenticate_op(
    client: *const PieClient,
    token: *const c_char,
) -> FfiResult<Arc<PieOp>> {
    let c = client_arg(client)?;
    Ok(c.op_internal_authenticate(arg_str(token, "token")?.to_owned()))
}

unsafe fn ping_op(client: *const PieClient) -> FfiResult<Arc<PieOp>> {
    Ok(client_arg(client)?.op_ping())
}

unsafe fn query_op(
    client: *const PieClient,
    subject: *const c_char,
    record: *const c_char,
) -> FfiResult<Arc<PieOp>> {
    let c = client_arg(client)?;
    let subject = arg_str(subject, "subject")?.to_owned();
    Ok(c.op_query(subject, arg_str(record, "record")?.to_owned()))
}

unsafe fn program_exists_op(
    client: *const PieClient,
    hash: *const c_char,
) -> FfiResult<Arc<PieOp>> {
    let c = client_arg(client)?;
    Ok(c.op_program_exists(arg_str(hash, "hash")?.to_owned()))
}

unsafe fn upload_program_op(
    client: *const PieClient,
    data: *const u8,
    len: usize,
    progress: Option<unsafe extern "C" fn(*mut c_void, u64, u64)>,
    user_data: *mut c_void,
) -> FfiResult<Arc<PieOp>> {
    let c = client_arg(client)?;
    let data = arg_bytes(data, len, "data")?.to_vec();
    Ok(c.op_upload_program(data, Progress::new(progress, user_data)))
}

/// The three instance-producing calls differ only in what they send.
unsafe fn launch_op(
    client: *const PieClient,
    what: impl FnOnce() -> FfiResult<Launch>,
    argv: *const *const c_char,
    argc: usize,
    detached: bool,
) -> FfiResult<Arc<PieOp>> {
    let c = client_arg(client)?;
    Ok(c.op_launch(what()?, arg_argv(argv, argc)?, detached))
}

unsafe fn list_op(client: *const PieClient) -> FfiResult<Arc<PieOp>> {
    Ok(client_arg(client)?.op_list())
}

unsafe fn terminate_op(client: *const PieClient, id: *const c_char) -> FfiResult<Arc<PieOp>> {
    let c = client_arg(client)?;
    Ok(c.op_terminate(arg_str(id, "id")?.to_owned()))
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
    blocking(out_err, || authenticate_op(client, username, key), ignore)
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
    start_async(out_op, out_err, || authenticate_op(client, username, key))
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
    blocking(out_err, || internal_authenticate_op(client, token), ignore)
}

/// Asynchronous pie_client_internal_authenticate (no result value).
#[no_mangle]
pub unsafe extern "C" fn pie_client_internal_authenticate_async(
    client: *const PieClient,
    token: *const c_char,
    out_op: *mut *mut PieOp,
    out_err: *mut *mut PieError,
) -> PieStatus {
    start_async(out_op, out_err, || internal_authenticate_op(client, token))
}

/// Round trip to the server. Errors: PIE_STATUS_NULL_POINTER, PIE_STATUS_TIMEOUT,
/// PIE_STATUS_CONNECTION_CLOSED, PIE_STATUS_CLIENT_CLOSED.
#[no_mangle]
pub unsafe extern "C" fn pie_client_ping(
    client: *const PieClient,
    out_err: *mut *mut PieError,
) -> PieStatus {
    blocking(out_err, || ping_op(client), ignore)
}

/// Asynchronous pie_client_ping (no result value).
#[no_mangle]
pub unsafe extern "C" fn pie_client_ping_async(
    client: *const PieClient,
    out_op: *mut *mut PieOp,
    out_err: *mut *mut PieError,
) -> PieStatus {
    start_async(out_op, out_err, || ping_op(client))
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
    let make = || {
        arg_out(out_result, "out_result")?;
        query_op(client, subject, record)
    };
    blocking(out_err, make, |v| {
        *out_result = v.into_text()?.into_raw();
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
    start_async(out_op, out_err, || query_op(client, subject, record))
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
    let make = || {
        arg_out(out_exists, "out_exists")?;
        program_exists_op(client, hash)
    };
    blocking(out_err, make, |v| {
        *out_exists = v.into_bool()?;
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
    start_async(out_op, out_err, || program_exists_op(client, hash))
}

/// Uploads a program (a WebAssembly component, `len` bytes, copied) and writes its hash, 64 hex
/// digits and a NUL, into `out_hash` (at least PIE_HASH_BUFFER_SIZE bytes). `progress` (may be
/// NULL) is called as progress(user_data, bytes_sent, bytes_total) each time a 256 KiB chunk has
/// been handed to the socket, on a libpie runtime thread; it must return quickly and must not
/// make blocking libpie calls (they fail with PIE_STATUS_BUSY). It is never called after the
/// upload has finished. A successful upload always ends with a call where bytes_sent ==
/// bytes_total, before this function returns.
/// Errors: PIE_STATUS_NULL_POINTER, PIE_STATUS_INVALID_ARGUMENT (not a WebAssembly component:
/// refused before sending, as the server would drop the connection), PIE_STATUS_SERVER (refused;
/// the server's text), PIE_STATUS_TIMEOUT, PIE_STATUS_CONNECTION_CLOSED, PIE_STATUS_CLIENT_CLOSED.
#[no_mangle]
pub unsafe extern "C" fn pie_client_upload_program(
    client: *const PieClient,
    data: *const u8,
    len: usize,
    progress: Option<
        unsafe extern "C" fn(user_data: *mut c_void, bytes_sent: u64, bytes_total: u64),
    >,
    user_data: *mut c_void,
    out_hash: *mut c_char,
    out_err: *mut *mut PieError,
) -> PieStatus {
    if progress.is_none() && !on_runtime_thread() {
        // Without a progress callback (documented to run on a runtime thread) the upload is
        // driven right here, borrowing the caller's buffer until this call returns: no copy of
        // the program (its whole size in RSS, and ~0.4 ms per MiB; docs/BENCHMARKS.md).
        return ffi_call(out_err, || {
            let c = Arc::clone(client_arg(client)?);
            arg_out(out_hash, "out_hash")?;
            let data = arg_bytes(data, len, "data")?;
            let hash =
                c.rt.handle()
                    .block_on(c.core.upload_program_with_progress(data, None))?;
            write_hash(out_hash, hash.as_bytes());
            Ok(())
        });
    }
    let make = || {
        arg_out(out_hash, "out_hash")?;
        upload_program_op(client, data, len, progress, user_data)
    };
    blocking(out_err, make, |v| {
        write_hash(out_hash, v.into_text()?.as_bytes());
        Ok(())
    })
}

/// Asynchronous pie_client_upload_program; the hash is pie_op_result_string(op). `user_data`
/// must stay valid until the operation finishes.
#[no_mangle]
pub unsafe extern "C" fn pie_client_upload_program_async(
    client: *const PieClient,
    data: *const u8,
    len: usize,
    progress: Option<
        unsafe extern "C" fn(user_data: *mut c_void, bytes_sent: u64, bytes_total: u64),
    >,
    user_data: *mut c_void,
    out_op: *mut *mut PieOp,
    out_err: *mut *mut PieError,
) -> PieStatus {
    start_async(out_op, out_err, || {
        upload_program_op(client, data, len, progress, user_data)
    })
}

/// Launches the program with hash `hash` with `argc` arguments `argv` (UTF-8, copied; `argv` may
/// be NULL when `argc` is 0). The instance goes to `*out_instance` (owned by the caller:
/// pie_instance_free). A `detached` instance runs without sending events to this connection:
/// attach it to receive them. Errors: PIE_STATUS_NULL_POINTER (also for a NULL argv[i]),
/// PIE_STATUS_INVALID_UTF8, PIE_STATUS_SERVER (e.g. program not found; the server's text),
/// PIE_STATUS_TIMEOUT, PIE_STATUS_CONNECTION_CLOSED, PIE_STATUS_CLIENT_CLOSED.
#[no_mangle]
pub unsafe extern "C" fn pie_client_launch_instance(
    client: *const PieClient,
    hash: *const c_char,
    argv: *const *const c_char,
    argc: usize,
    detached: bool,
    out_instance: *mut *mut PieInstance,
    out_err: *mut *mut PieError,
) -> PieStatus {
    let what = || Ok(Launch::Hash(arg_str(hash, "hash")?.to_owned()));
    let make = || {
        arg_out(out_instance, "out_instance")?;
        launch_op(client, what, argv, argc, detached)
    };
    blocking(out_err, make, |v| {
        *out_instance = PieInstance::into_raw(v.into_instance()?);
        Ok(())
    })
}

/// Asynchronous pie_client_launch_instance; the instance is pie_op_take_instance(op, ...).
#[no_mangle]
pub unsafe extern "C" fn pie_client_launch_instance_async(
    client: *const PieClient,
    hash: *const c_char,
    argv: *const *const c_char,
    argc: usize,
    detached: bool,
    out_op: *mut *mut PieOp,
    out_err: *mut *mut PieError,
) -> PieStatus {
    let what = || Ok(Launch::Hash(arg_str(hash, "hash")?.to_owned()));
    start_async(out_op, out_err, || {
        launch_op(client, what, argv, argc, detached)
    })
}

/// Launches an inferlet from the server's registry by `name` ("namespace/name@version" or
/// "name@version"; the server may download it first, so this may take longer than a request
/// timeout). Otherwise as pie_client_launch_instance.
#[no_mangle]
pub unsafe extern "C" fn pie_client_launch_instance_from_registry(
    client: *const PieClient,
    name: *const c_char,
    argv: *const *const c_char,
    argc: usize,
    detached: bool,
    out_instance: *mut *mut PieInstance,
    out_err: *mut *mut PieError,
) -> PieStatus {
    let what = || Ok(Launch::Registry(arg_str(name, "name")?.to_owned()));
    let make = || {
        arg_out(out_instance, "out_instance")?;
        launch_op(client, what, argv, argc, detached)
    };
    blocking(out_err, make, |v| {
        *out_instance = PieInstance::into_raw(v.into_instance()?);
        Ok(())
    })
}

/// Asynchronous pie_client_launch_instance_from_registry (pie_op_take_instance).
#[no_mangle]
pub unsafe extern "C" fn pie_client_launch_instance_from_registry_async(
    client: *const PieClient,
    name: *const c_char,
    argv: *const *const c_char,
    argc: usize,
    detached: bool,
    out_op: *mut *mut PieOp,
    out_err: *mut *mut PieError,
) -> PieStatus {
    let what = || Ok(Launch::Registry(arg_str(name, "name")?.to_owned()));
    start_async(out_op, out_err, || {
        launch_op(client, what, argv, argc, detached)
    })
}

/// Attaches this connection to the running instance `id` (a UUID, e.g. from
/// pie_client_list_instances or a detached launch), so that its events come here. The new handle
/// goes to `*out_instance` (pie_instance_free). Errors: PIE_STATUS_NULL_POINTER,
/// PIE_STATUS_INVALID_UTF8, PIE_STATUS_SERVER (no such instance, or already attached elsewhere),
/// PIE_STATUS_TIMEOUT, PIE_STATUS_CONNECTION_CLOSED, PIE_STATUS_CLIENT_CLOSED.
#[no_mangle]
pub unsafe extern "C" fn pie_client_attach_instance(
    client: *const PieClient,
    id: *const c_char,
    out_instance: *mut *mut PieInstance,
    out_err: *mut *mut PieError,
) -> PieStatus {
    let what = || Ok(Launch::Attach(arg_str(id, "id")?.to_owned()));
    let (argv, argc, detached) = (std::ptr::null(), 0, false);
    let make = || {
        arg_out(out_instance, "out_instance")?;
        launch_op(client, what, argv, argc, detached)
    };
    blocking(out_err, make, |v| {
        *out_instance = PieInstance::into_raw(v.into_instance()?);
        Ok(())
    })
}

/// Asynchronous pie_client_attach_instance (pie_op_take_instance).
#[no_mangle]
pub unsafe extern "C" fn pie_client_attach_instance_async(
    client: *const PieClient,
    id: *const c_char,
    out_op: *mut *mut PieOp,
    out_err: *mut *mut PieError,
) -> PieStatus {
    let what = || Ok(Launch::Attach(arg_str(id, "id")?.to_owned()));
    start_async(out_op, out_err, || {
        launch_op(client, what, std::ptr::null(), 0, false)
    })
}

/// Lists the instances on the server visible to this session; `*out_list` is owned by the caller
/// (pie_instance_list_free). Errors: PIE_STATUS_NULL_POINTER, PIE_STATUS_TIMEOUT,
/// PIE_STATUS_CONNECTION_CLOSED, PIE_STATUS_CLIENT_CLOSED.
#[no_mangle]
pub unsafe extern "C" fn pie_client_list_instances(
    client: *const PieClient,
    out_list: *mut *mut PieInstanceList,
    out_err: *mut *mut PieError,
) -> PieStatus {
    let make = || {
        arg_out(out_list, "out_list")?;
        list_op(client)
    };
    blocking(out_err, make, |v| {
        *out_list = Box::into_raw(v.into_list()?);
        Ok(())
    })
}

/// Asynchronous pie_client_list_instances (pie_op_take_instance_list).
#[no_mangle]
pub unsafe extern "C" fn pie_client_list_instances_async(
    client: *const PieClient,
    out_op: *mut *mut PieOp,
    out_err: *mut *mut PieError,
) -> PieStatus {
    start_async(out_op, out_err, || list_op(client))
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
    blocking(out_err, || terminate_op(client, id), ignore)
}

/// Asynchronous pie_client_terminate_instance (no result value).
#[no_mangle]
pub unsafe extern "C" fn pie_client_terminate_instance_async(
    client: *const PieClient,
    id: *const c_char,
    out_op: *mut *mut PieOp,
    out_err: *mut *mut PieError,
) -> PieStatus {
    start_async(out_op, out_err, || terminate_op(client, id))
}
