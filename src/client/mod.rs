//! The async Rust client core: [`Client`] (one WebSocket connection to a Pie server, shared by
//! any number of tasks) and [`Instance`] (one running program and its event stream).
//!
//! See docs/DESIGN.md for the contract and PROTOCOL.md for the protocol. Module map:
//! `transport` (URL, TCP options, TLS, handshake), `connection` (reader and writer tasks),
//! `pending` (corr_id correlation), `events` (per-instance queues), `upload` (chunking),
//! `instance` (the `Instance` handle), `v05` (Pie 0.5: detection and its calls).

mod config;
mod connection;
mod events;
mod instance;
mod pending;
pub(crate) use pending::{on_run_settled, settling_run};
mod started;
pub(crate) use started::{Settles, Started};
mod transport;
mod upload;
mod v05;

pub use crate::wire::{InstanceInfo, InstanceStatus};
pub use config::ClientConfig;
pub use events::InstanceEvent;
pub use instance::Instance;
pub use v05::{ProcessInfo, Protocol};

use crate::error::{Error, ErrorKind, Result};
use crate::keys::PrivateKey;
use crate::log::Level;
use crate::pie_log;
use crate::wire::{self, ClientMessage};
use base64::Engine as _;
use connection::{Shared, Stats, WriterCmd, CLOSE_WAIT};
use futures_util::StreamExt;
use pending::{Expect, PendingGuard, PendingMap, QueueHandoff, Reply};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::{mpsc, watch, Notify, Semaphore, SemaphorePermit};

/// Progress of an upload: (bytes_sent, bytes_total). Called from a runtime task; must not block.
pub type ProgressFn = dyn Fn(u64, u64) + Send + Sync;

/// `internal_authenticate` waits at least this long: the server delays a refusal by 1–3 s
/// (§5.3), which must end in an `Auth` error, not a timeout.
const INTERNAL_AUTH_MIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Counters for tests and diagnostics (not a stable API).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DebugCounts {
    /// Requests waiting for a reply.
    pub pending: usize,
    /// Instances the reader routes events to.
    pub instances: usize,
    /// Blob downloads being reassembled.
    pub blob_assemblies: usize,
    pub undecodable_frames: u64,
    pub ignored_frames: u64,
    pub stray_replies: u64,
    pub unrouted_events: u64,
    pub dropped_blobs: u64,
    /// Naps of the reader during floods of output (`ClientConfig::event_batch_window`).
    pub reader_naps: u64,
    /// Writes of a burst's frames made on a caller's thread.
    pub burst_writes: u64,
}

/// A connection to a Pie server. Cheap to clone (all clones share the connection);
/// `Send + Sync`; any number of requests may be in flight at once.
///
/// `connect` must run on a tokio runtime: the connection's reader and writer tasks are spawned
/// on it. The connection stays open until `close()`, until the server ends it, or until the
/// last `Client` clone and the last attached `Instance` are dropped (then it is closed without
/// waiting).
#[derive(Clone)]
pub struct Client {
    inner: Arc<ClientInner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

struct ClientInner {
    shared: Arc<Shared>,
    config: ClientConfig,
    launch_slots: Option<Semaphore>,
}

impl Drop for ClientInner {
    fn drop(&mut self) {
        // Last handle gone (clients and instances): end the connection politely but without
        // waiting. The writer sends Close and forces the end after CLOSE_WAIT.
        let shared = &self.shared;
        if !shared.closing.swap(true, Ordering::SeqCst) {
            let _ = shared.end.set(Error::new(
                ErrorKind::ClientClosed,
                "the client was dropped",
            ));
            if shared.writer.send(WriterCmd::Close).is_err() {
                shared.shutdown.notify_one();
            }
        }
    }
}

impl Client {
    /// Connect with the default configuration.
    pub async fn connect(url: &str) -> Result<Client> {
        Client::connect_with(url, ClientConfig::default()).await
    }

    /// Open the WebSocket (`ws://` or `wss://`) and start the reader and writer tasks on the
    /// current tokio runtime. Does not authenticate.
    pub async fn connect_with(url: &str, config: ClientConfig) -> Result<Client> {
        pie_log!(Level::Debug, "pie::connection", "connecting to {url}");
        let opened =
            match tokio::time::timeout(config.connect_timeout, transport::open(url, &config)).await
            {
                Ok(r) => r,
                Err(_) => Err(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "cannot connect to {url}: no connection within {:?}",
                        config.connect_timeout
                    ),
                )),
            };
        let ws = match opened {
            Ok(ws) => ws,
            Err(e) => {
                pie_log!(Level::Warn, "pie::connection", "{}", e.message());
                return Err(e);
            }
        };
        pie_log!(
            Level::Info,
            "pie::connection",
            "connected to {url} (TCP_NODELAY {}, TCP_QUICKACK re-arming {})",
            if config.tcp_nodelay { "on" } else { "off" },
            if config.tcp_quickack { "on" } else { "off" }
        );
        let read_gate = transport::WakeGate::of(&ws);
        let (sink, stream) = ws.split();
        let (writer_tx, writer_rx) = mpsc::unbounded_channel();
        let (forget_tx, forget_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            pending: PendingMap::new(),
            sink: tokio::sync::Mutex::new(sink),
            queued: AtomicUsize::new(0),
            direct_writes: AtomicBool::new(true),
            flush_requested: AtomicBool::new(false),
            buffered_frames: AtomicUsize::new(0),
            writer: writer_tx,
            shutdown: Notify::new(),
            end: OnceLock::new(),
            ended: watch::Sender::new(None),
            closing: AtomicBool::new(false),
            forget: forget_tx,
            writer_abort: Mutex::new(None),
            queue_limit: config.instance_queue_limit_bytes,
            batch_window: config.event_batch_window,
            read_gate,
            stats: Stats::default(),
            proto: v05::ProtoShared::new(&config),
        });
        let writer = tokio::spawn(connection::writer_task(writer_rx, shared.clone()));
        *shared
            .writer_abort
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(writer.abort_handle());
        tokio::spawn(connection::reader_task(stream, shared.clone(), forget_rx));
        tokio::spawn(pending::sweep_task(shared.clone()));
        let launch_slots = match config.max_launches_in_flight {
            0 => None,
            n => Some(Semaphore::new(n)),
        };
        let client = Client {
            inner: Arc::new(ClientInner {
                shared,
                config,
                launch_slots,
            }),
        };
        if client.config().protocol.is_none() {
            v05::send_probe(client.shared(), &client.config().identity).await?;
        }
        Ok(client)
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    pub(crate) fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// Close the connection: send a WebSocket Close, wait up to ~1 s for the server's Close or
    /// the TCP end, then fail every pending call with `ClientClosed` and end every event stream
    /// (after their buffered events). Idempotent; never hangs.
    pub async fn close(&self) -> Result<()> {
        let shared = self.shared();
        let mut ended = shared.ended.subscribe();
        // The reason first: a call that sees `closing` must find it (and fail with
        // CLIENT_CLOSED, not with a reason-less CONNECTION_CLOSED). A connection that already
        // ended keeps its own reason.
        let _ = shared
            .end
            .set(Error::new(ErrorKind::ClientClosed, "the client was closed"));
        if !shared.closing.swap(true, Ordering::SeqCst) {
            pie_log!(Level::Info, "pie::connection", "closing the connection");
            // Queued requests go out first; if the writer is gone the reader is told to stop.
            if shared.writer.send(WriterCmd::Close).is_err() {
                shared.shutdown.notify_one();
            }
        }
        let wait = CLOSE_WAIT + Duration::from_millis(200);
        if tokio::time::timeout(wait, ended.wait_for(|e| e.is_some()))
            .await
            .is_err()
        {
            shared.shutdown.notify_one();
            let _ = tokio::time::timeout(wait, ended.wait_for(|e| e.is_some())).await;
        }
        Ok(())
    }

    /// Whether `close()` was called or the connection has ended.
    pub fn is_closed(&self) -> bool {
        let shared = self.shared();
        shared.closing.load(Ordering::SeqCst) || shared.ended.borrow().is_some()
    }

    /// Resolves when the connection has ended (and every pending call and stream was failed),
    /// with the reason.
    pub async fn closed(&self) -> Error {
        let shared = self.shared();
        let mut rx = shared.ended.subscribe();
        let r = rx.wait_for(|e| e.is_some()).await.map(|e| e.clone());
        match r {
            Ok(Some(e)) => e,
            _ => shared.end_error(),
        }
    }

    fn check_open(&self) -> Result<()> {
        let shared = self.shared();
        if shared.closing.load(Ordering::SeqCst) || shared.end.get().is_some() {
            return Err(shared.end_error());
        }
        Ok(())
    }

    /// Send one request and wait for its reply (of the kind `expect`) within `timeout`.
    async fn request(
        &self,
        what: &str,
        expect: Expect,
        timeout: Duration,
        make: impl FnOnce(u32) -> ClientMessage,
    ) -> Result<Reply> {
        self.request_frame(what, expect, timeout, |id| wire::encode_client(&make(id)))
            .await
    }

    /// `request` with the frame encoded by `make(corr_id)` (either protocol).
    async fn request_frame(
        &self,
        what: &str,
        expect: Expect,
        timeout: Duration,
        make: impl FnOnce(u32) -> Vec<u8>,
    ) -> Result<Reply> {
        self.check_open()?;
        let shared = self.shared();
        let (id, rx) = shared.pending.register(expect)?;
        let mut guard = PendingGuard::new(&shared.pending, id);
        let frame = make(id);
        let exchange = async {
            v05::send(shared, v05::Sent::Request(id), frame, None).await?;
            Ok::<_, Error>(rx.await)
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(Ok(reply)) => {
                guard.disarm();
                reply.map_err(|_| shared.end_error())?
            }
            Ok(Err(e)) => Err(e),
            Err(_) => {
                pie_log!(
                    Level::Warn,
                    "pie::protocol",
                    "request {id} ({what}): no reply within {timeout:?}; a late reply will be ignored"
                );
                Err(Error::new(
                    ErrorKind::Timeout,
                    format!("{what}: no reply within {timeout:?}"),
                ))
            }
        }
    }

    async fn request_response(
        &self,
        what: &str,
        timeout: Duration,
        make: impl FnOnce(u32) -> ClientMessage,
    ) -> Result<(bool, String)> {
        self.request_response_frame(what, timeout, |id| wire::encode_client(&make(id)))
            .await
    }

    async fn request_response_frame(
        &self,
        what: &str,
        timeout: Duration,
        make: impl FnOnce(u32) -> Vec<u8>,
    ) -> Result<(bool, String)> {
        match self
            .request_frame(what, Expect::Response, timeout, make)
            .await?
        {
            Reply::Response { successful, result } => Ok((successful, result)),
            _ => Err(Error::new(
                ErrorKind::Protocol,
                format!("{what}: wrong reply type"),
            )),
        }
    }

    /// User authentication (§5.1/§5.2). `key` is needed only when the server has
    /// authentication enabled and sends a challenge.
    async fn authenticate_jan(&self, username: &str, key: Option<&PrivateKey>) -> Result<()> {
        let t = self.config().request_timeout;
        let (ok, result) = self
            .request_response("identification", t, |corr_id| {
                ClientMessage::Identification {
                    corr_id,
                    username: username.to_string(),
                }
            })
            .await?;
        if !ok {
            pie_log!(
                Level::Warn,
                "pie::auth",
                "identification as '{username}' refused: {result}"
            );
            return Err(Error::new(ErrorKind::Auth, result));
        }
        // Auth disabled (recognised only by the exact text, Q2), or already authenticated.
        if result == wire::TEXT_AUTH_DISABLED || result == "Already authenticated" {
            pie_log!(
                Level::Info,
                "pie::auth",
                "identified as '{username}' without a signature: server said '{result}'"
            );
            return Ok(());
        }
        let Some(key) = key else {
            pie_log!(
                Level::Warn,
                "pie::auth",
                "the server sent a challenge for '{username}' but no key was given"
            );
            return Err(Error::new(
                ErrorKind::Auth,
                format!(
                    "the server requires authentication for user '{username}' and sent a \
                     challenge, but no private key was given (the server will close this \
                     connection; reconnect and authenticate with a key)"
                ),
            ));
        };
        let challenge = base64::engine::general_purpose::STANDARD
            .decode(result.as_bytes())
            .map_err(|e| {
                Error::new(
                    ErrorKind::Protocol,
                    format!("the server's authentication challenge is not valid base64: {e}"),
                )
            })?;
        if challenge.len() != 48 {
            return Err(Error::new(
                ErrorKind::Protocol,
                format!(
                    "the server's authentication challenge has {} bytes, expected 48",
                    challenge.len()
                ),
            ));
        }
        pie_log!(
            Level::Debug,
            "pie::auth",
            "signing the server's challenge for '{username}' with a {:?} key",
            key.algorithm()
        );
        let signature = key.sign(&challenge)?;
        let signature = base64::engine::general_purpose::STANDARD.encode(signature);
        let (ok, result) = self
            .request_response("signature", t, |corr_id| ClientMessage::Signature {
                corr_id,
                signature,
            })
            .await?;
        if !ok {
            pie_log!(
                Level::Warn,
                "pie::auth",
                "signature for '{username}' refused: {result}"
            );
            return Err(Error::new(ErrorKind::Auth, result));
        }
        pie_log!(Level::Info, "pie::auth", "authenticated as '{username}'");
        Ok(())
    }

    /// Internal-token authentication (§5.3). A refusal takes the server 1–3 s; the timeout used
    /// here is at least 5 s whatever `request_timeout` says.
    async fn internal_authenticate_jan(&self, token: &str) -> Result<()> {
        let t = self.config().request_timeout.max(INTERNAL_AUTH_MIN_TIMEOUT);
        let (ok, result) = self
            .request_response("internal_authenticate", t, |corr_id| {
                ClientMessage::InternalAuthenticate {
                    corr_id,
                    token: token.to_string(),
                }
            })
            .await?;
        if !ok {
            pie_log!(Level::Warn, "pie::auth", "internal token refused: {result}");
            return Err(Error::new(ErrorKind::Auth, result));
        }
        pie_log!(
            Level::Info,
            "pie::auth",
            "authenticated with the internal token"
        );
        Ok(())
    }

    /// `query` (§6.2). Unknown subjects get no reply from the server: they end in `Timeout`.
    async fn query_jan(&self, subject: &str, record: &str) -> Result<String> {
        let t = self.config().request_timeout;
        let (ok, result) = self
            .request_response("query", t, |corr_id| ClientMessage::Query {
                corr_id,
                subject: subject.to_string(),
                record: record.to_string(),
            })
            .await?;
        if !ok {
            return Err(Error::new(ErrorKind::Server, result));
        }
        Ok(result)
    }

    /// Whether the server knows a program with exactly this hash (case-sensitive, §6.2).
    async fn program_exists_jan(&self, hash: &str) -> Result<bool> {
        Ok(self.query_jan("program_exists", hash).await? == "true")
    }

    /// Upload a program; returns its hash (blake3, lowercase hex). January-2026 servers only
    /// (Pie 0.5: `ErrorKind::Unsupported`, use `install_program`).
    pub async fn upload_program(&self, program: &[u8]) -> Result<String> {
        self.upload_program_with_progress(program, None).await
    }

    /// Upload a program, reporting progress after each chunk is handed to the socket.
    /// Bytes that do not start with the WebAssembly component preamble are refused here: the
    /// real server would drop the connection without a reply (Q6).
    async fn upload_program_with_progress_jan(
        &self,
        program: &[u8],
        progress: Option<&ProgressFn>,
    ) -> Result<String> {
        if !wire::is_component(program) {
            pie_log!(
                Level::Warn,
                "pie::upload",
                "refused to upload {} bytes that are not a WebAssembly component",
                program.len()
            );
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!(
                    "not a WebAssembly component ({} bytes; a component starts with 00 61 73 6d \
                     0d 00 01 00): the server would close the connection instead of answering",
                    program.len()
                ),
            ));
        }
        self.check_open()?;
        let hash = wire::hash_blob(program);
        pie_log!(
            Level::Info,
            "pie::upload",
            "uploading program {hash} ({} bytes)",
            program.len()
        );
        let (ok, result) = upload::upload(
            self.shared(),
            self.config().request_timeout,
            "upload_program",
            program,
            |corr_id, chunk_index, total_chunks, chunk_data| {
                wire::encode_client(&ClientMessage::UploadProgram {
                    corr_id,
                    program_hash: hash.clone(),
                    chunk_index,
                    total_chunks,
                    chunk_data: chunk_data.to_vec(),
                })
            },
            progress,
        )
        .await?;
        if !ok {
            pie_log!(
                Level::Warn,
                "pie::upload",
                "the server refused program {hash}: {result}"
            );
            return Err(Error::new(ErrorKind::Server, result));
        }
        pie_log!(Level::Info, "pie::upload", "uploaded program {hash}");
        Ok(hash)
    }

    async fn launch_slot(&self) -> Result<Option<SemaphorePermit<'_>>> {
        match &self.inner.launch_slots {
            None => Ok(None),
            Some(sem) => {
                let shared = self.shared();
                let mut ended = shared.ended.subscribe();
                // Queued launches must not outlive the connection.
                tokio::select! {
                    p = sem.acquire() => p.map(Some).map_err(|_| shared.end_error()),
                    _ = ended.wait_for(|e| e.is_some()) => Err(shared.end_error()),
                }
            }
        }
    }

    async fn instance_request(
        &self,
        what: &str,
        expect: Expect,
        make: impl FnOnce(u32) -> ClientMessage,
    ) -> Result<Instance> {
        self.check_open()?;
        let _slot = self.launch_slot().await?;
        let t = self.config().request_timeout;
        match self.request(what, expect, t, make).await? {
            Reply::Instance {
                successful: true,
                id,
                queue,
                ..
            } => {
                pie_log!(Level::Info, "pie::launch", "{what}: instance {id}");
                Ok(Instance::new(
                    self.clone(),
                    id,
                    queue.and_then(QueueHandoff::take),
                ))
            }
            Reply::Instance { message, .. } => {
                pie_log!(Level::Warn, "pie::launch", "{what} refused: {message}");
                Err(Error::new(ErrorKind::Server, message))
            }
            _ => Err(Error::new(
                ErrorKind::Protocol,
                format!("{what}: wrong reply type"),
            )),
        }
    }

    /// Launch an uploaded program (§6.4). A detached instance's handle cannot receive or send;
    /// call [`Client::attach_instance`] with its id for that.
    async fn launch_instance_jan(
        &self,
        hash: &str,
        args: Vec<String>,
        detached: bool,
    ) -> Result<Instance> {
        self.instance_request("launch_instance", Expect::Launch { detached }, |corr_id| {
            ClientMessage::LaunchInstance {
                corr_id,
                program_hash: hash.to_string(),
                arguments: args,
                detached,
            }
        })
        .await
    }

    /// Launch a program from the registry, e.g. `std/text-completion@0.1.0` (§6.5).
    async fn launch_instance_from_registry_jan(
        &self,
        name: &str,
        args: Vec<String>,
        detached: bool,
    ) -> Result<Instance> {
        self.instance_request(
            "launch_instance_from_registry",
            Expect::Launch { detached },
            |corr_id| ClientMessage::LaunchInstanceFromRegistry {
                corr_id,
                inferlet: name.to_string(),
                arguments: args,
                detached,
            },
        )
        .await
    }

    /// Attach to a detached or finished instance (§6.6). Buffered output is replayed first.
    async fn attach_instance_jan(&self, id: &str) -> Result<Instance> {
        let norm = connection::normalize_id(id);
        self.instance_request(
            "attach_instance",
            Expect::Attach { id: norm.clone() },
            |corr_id| ClientMessage::AttachInstance {
                corr_id,
                instance_id: norm,
            },
        )
        .await
    }

    /// Instances of this user (all instances for `internal`), §6.7.
    async fn list_instances_jan(&self) -> Result<Vec<InstanceInfo>> {
        let t = self.config().request_timeout;
        match self
            .request("list_instances", Expect::List, t, |corr_id| {
                ClientMessage::ListInstances { corr_id }
            })
            .await?
        {
            Reply::List(list) => Ok(list),
            _ => Err(Error::new(
                ErrorKind::Protocol,
                "list_instances: wrong reply type",
            )),
        }
    }

    /// Terminate an instance by id (§6.8). Succeeds for any well-formed UUID.
    async fn terminate_instance_jan(&self, id: &str) -> Result<()> {
        let t = self.config().request_timeout;
        let (ok, result) = self
            .request_response("terminate_instance", t, |corr_id| {
                ClientMessage::TerminateInstance {
                    corr_id,
                    instance_id: id.to_string(),
                }
            })
            .await?;
        if !ok {
            return Err(Error::new(ErrorKind::Server, result));
        }
        Ok(())
    }

    /// Application-level ping (§6.1).
    async fn ping_jan(&self) -> Result<()> {
        self.settled(|done| self.start_ping_as(Protocol::Jan2026, done))
            .await
    }

    /// Internal counters (tests, diagnostics). Not a stable API.
    #[doc(hidden)]
    pub fn debug_counts(&self) -> DebugCounts {
        let s = self.shared();
        let st = &s.stats;
        DebugCounts {
            pending: s.pending.len(),
            instances: st.routes.load(Ordering::Relaxed) + s.proto.routes().len(),
            blob_assemblies: st.blob_assemblies.load(Ordering::Relaxed),
            undecodable_frames: st.undecodable_frames.load(Ordering::Relaxed),
            ignored_frames: st.ignored_frames.load(Ordering::Relaxed),
            stray_replies: st.stray_replies.load(Ordering::Relaxed),
            unrouted_events: st.unrouted_events.load(Ordering::Relaxed),
            dropped_blobs: st.dropped_blobs.load(Ordering::Relaxed),
            reader_naps: st.reader_naps.load(Ordering::Relaxed),
            burst_writes: st.burst_writes.load(Ordering::Relaxed),
        }
    }

    /// Benchmark hook: `false` hands every frame to the writer task, as before callers wrote
    /// their own frames (docs/BENCHMARKS.md, "Thread hand-offs per request").
    #[doc(hidden)]
    pub fn debug_set_direct_writes(&self, on: bool) {
        self.shared().direct_writes.store(on, Ordering::Relaxed);
    }

    /// Test hook: the next corr_id to try (e.g. near `u32::MAX` to exercise wrapping).
    #[doc(hidden)]
    pub fn debug_set_next_corr_id(&self, next: u32) {
        self.shared().pending.set_next(next);
    }
}

/// The public calls of the January-2026 API, on either protocol (PROTOCOL-0.5.md §11). While
/// the protocol is not known yet, each first tries its January-2026 form (see `v05`).
impl Client {
    /// Authenticate. January-2026: `identification`, then the key challenge if the server
    /// has authentication enabled (`key` is needed only then). Pie 0.5: the connection is
    /// already identified by its `x-pie-identity` header (`ClientConfig::identity`), so
    /// this succeeds at once without a key; with a key it fails with `Unsupported` (0.5 has
    /// no key authentication), and the connection stays usable.
    pub async fn authenticate(&self, username: &str, key: Option<&PrivateKey>) -> Result<()> {
        self.by_protocol(self.authenticate_jan(username, key), || async {
            match key {
                None => Ok(()),
                Some(_) => Err(v05::not_on_v05(
                    "key authentication",
                    "a Pie 0.5 server has no users or keys (no challenge exists); the \
                     connection is identified by its x-pie-identity header (the identity \
                     connect option) and is already usable: authenticate without a key, or \
                     skip the call",
                )),
            }
        })
        .await
    }

    /// Internal-token authentication (January-2026, §5.3). Pie 0.5: `Unsupported` (there is
    /// no internal token; the connection is already trusted).
    pub async fn internal_authenticate(&self, token: &str) -> Result<()> {
        self.by_protocol(self.internal_authenticate_jan(token), || async {
            Err(v05::not_on_v05(
                "internal_authenticate",
                "a Pie 0.5 server has no internal token; the connection is already trusted \
                 through its x-pie-identity header, so skip this call",
            ))
        })
        .await
    }

    /// `query`. January-2026: unknown subjects get no reply (they end in `Timeout`). Pie 0.5:
    /// only `model_status` exists; other subjects are refused (`Server`).
    pub async fn query(&self, subject: &str, record: &str) -> Result<String> {
        self.by_protocol(self.query_jan(subject, record), || {
            self.query05(subject, record)
        })
        .await
    }

    /// Whether the server knows a program with exactly this hash (January-2026, §6.2).
    /// Pie 0.5 cannot look programs up by hash: `Unsupported` (use `check_program`).
    pub async fn program_exists(&self, hash: &str) -> Result<bool> {
        self.by_protocol(self.program_exists_jan(hash), || async {
            Err(v05::not_on_v05(
                "program_exists (by hash)",
                "programs are found by name@version: use check_program(name, version)",
            ))
        })
        .await
    }

    /// Upload a program, reporting progress after each chunk is handed to the socket.
    /// January-2026 only: bytes that do not start with the WebAssembly component preamble
    /// are refused here (the server would drop the connection without a reply, Q6).
    /// Pie 0.5: `Unsupported` (programs need a manifest: use `install_program`).
    pub async fn upload_program_with_progress(
        &self,
        program: &[u8],
        progress: Option<&ProgressFn>,
    ) -> Result<String> {
        self.by_protocol(
            self.upload_program_with_progress_jan(program, progress),
            || async {
                Err(v05::not_on_v05(
                    "upload_program (a program without a manifest)",
                    "use install_program(artifact, manifest_toml)",
                ))
            },
        )
        .await
    }

    /// Launch an uploaded program by hash (January-2026, §6.4). A detached instance's handle
    /// cannot receive or send; call [`Client::attach_instance`] with its id for that.
    /// Pie 0.5 cannot launch by hash: `Unsupported` (use `launch`).
    pub async fn launch_instance(
        &self,
        hash: &str,
        args: Vec<String>,
        detached: bool,
    ) -> Result<Instance> {
        let run = self.launch_instance_jan(hash, args, detached);
        self.by_protocol(run, || async {
            Err(v05::not_on_v05(
                "launch_instance (by hash)",
                "launch an installed program by name: launch(\"name@version\", input_json, \
                 detached)",
            ))
        })
        .await
    }

    /// Launch a program by name, e.g. `std/text-completion@0.1.0` (January-2026 registry,
    /// §6.5). Pie 0.5: `launch_process` of an installed or built-in program (`name` or
    /// `name@version`), with the arguments as JSON input: none → `{}`, a single JSON object
    /// → that object, otherwise `{"args": [...]}`. See [`Client::launch`] for what a
    /// detached launch returns on 0.5.
    pub async fn launch_instance_from_registry(
        &self,
        name: &str,
        args: Vec<String>,
        detached: bool,
    ) -> Result<Instance> {
        let input = v05::args_to_input(&args);
        let run = self.launch_instance_from_registry_jan(name, args, detached);
        self.by_protocol(run, || async {
            crate::wire05::check_inferlet(name).map_err(|e| v05::invalid("name", e))?;
            self.launch05(name, &input, detached).await
        })
        .await
    }

    /// Attach to an instance (§6.6; buffered output is replayed first). Pie 0.5: only a
    /// process that no connection is attached to (launched detached) can be attached, and
    /// nothing earlier is replayed; `id` must be a UUID (`InvalidArgument` otherwise, before
    /// anything is sent).
    pub async fn attach_instance(&self, id: &str) -> Result<Instance> {
        self.by_protocol(self.attach_instance_jan(id), || self.attach05(id))
            .await
    }

    /// Instances of this user (all instances for `internal`), §6.7. Pie 0.5: every process
    /// of the server, see `list_processes` (and `list_instances05` for the field mapping).
    pub async fn list_instances(&self) -> Result<Vec<InstanceInfo>> {
        self.by_protocol(self.list_instances_jan(), || self.list_instances05())
            .await
    }

    /// Terminate an instance by id (§6.8). Pie 0.5: `id` must be a UUID (`InvalidArgument`
    /// otherwise); the attached connection receives an `Aborted` event.
    pub async fn terminate_instance(&self, id: &str) -> Result<()> {
        self.by_protocol(self.terminate_instance_jan(id), || self.terminate05(id))
            .await
    }

    /// Application-level ping (§6.1; Pie 0.5 §5).
    pub async fn ping(&self) -> Result<()> {
        self.by_protocol(self.ping_jan(), || self.ping05()).await
    }
}
