//! The Pie 0.5 simulator (pie-server 0.5.2, `../shared/pie05/PROTOCOL-0.5.md`): `pie-sim
//! --protocol 0.5`, or [`Simulator::start`] from tests.
//!
//! It serves the WebSocket path `/v1/ws` only (404 elsewhere) and requires a non-empty
//! `x-pie-identity` header (401 without), answers all twelve client messages with the real
//! server's texts, runs processes with the real lifecycles (attached / detached, attach,
//! terminate, disconnect kills), moves files both ways, and simulates the six test inferlets
//! by their manifest names plus the built-in `compat-openai`. The real server's defects (§9) are
//! reproduced by default and can be switched off ([`Faults`]).
//!
//! ```no_run
//! let sim = pie_sim::v05::Simulator::start(pie_sim::v05::Config::default()).unwrap();
//! println!("{}", sim.url()); // ws://127.0.0.1:PORT/v1/ws
//! ```

pub mod cli;
pub mod codec;
mod faults;
mod inferlets;
mod processes;
pub mod programs;
pub mod pyjson;
mod session;

pub use faults::{Faults, FAULT_NAMES};
pub use inferlets::{completion_tokens, SIMULATED};
pub use processes::Inject;

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;

/// The only WebSocket path of a 0.5 server.
pub const WS_PATH: &str = "/v1/ws";
/// The header that carries the identity (the only authentication of 0.5).
pub const IDENTITY_HEADER: &str = "x-pie-identity";

/// Configuration of a 0.5 simulator.
pub struct Config {
    /// Default 127.0.0.1 with a free port.
    pub listen: SocketAddr,
    /// Defect switches (default: as the real server; see [`Faults`]).
    pub faults: Arc<Faults>,
    /// Time from launch until the inferlet's code runs (default 50 ms; the real server takes
    /// ≈ 0.5 s, ≈ 17 s for the first launch of a python inferlet after boot). Files sent before
    /// the inferlet waits for one are lost (§9.12).
    pub startup_delay: Duration,
    /// Time per generated token of `compat-openai` (default 20 ms).
    pub token_delay: Duration,
    /// The server's `$HOME`, as shown in `program … is not installed (looked in
    /// $HOME/.pie/inferlets)`. Default: this process's `HOME` (or `/root`).
    pub home: String,
    /// Programs installed from the start: `(artifact, manifest TOML)`.
    pub programs: Vec<(Vec<u8>, String)>,
    /// KV pages the simulated model has (`default.kv_pages_total`, 64 on the real server).
    pub kv_pages_total: u64,
    /// Print the server's log lines (dropped frames, silent failures) to stderr.
    pub verbose: bool,
    /// Worker threads of the simulator's own runtime.
    pub worker_threads: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            faults: Arc::new(Faults::default()),
            startup_delay: Duration::from_millis(50),
            token_delay: Duration::from_millis(20),
            home: std::env::var("HOME")
                .ok()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "/root".into()),
            programs: Vec::new(),
            kv_pages_total: 64,
            verbose: false,
            worker_threads: 2,
        }
    }
}

#[derive(Default)]
pub(crate) struct Stats {
    pub kv_pages_used: AtomicU64,
    pub total_batches: AtomicU64,
    pub total_tokens_processed: AtomicU64,
}

type OpenConn = (watch::Sender<bool>, Arc<processes::Conn>);

pub(crate) struct Shared {
    pub faults: Arc<Faults>,
    pub programs: programs::ProgramStore,
    pub processes: processes::Processes,
    pub startup_delay: Duration,
    pub token_delay: Duration,
    pub home: String,
    pub kv_pages_total: u64,
    pub stats: Stats,
    verbose: bool,
    /// Open connections: their kill switch and handle.
    conns: Mutex<HashMap<u64, OpenConn>>,
    next_conn: AtomicU64,
}

impl Shared {
    pub fn log(&self, line: &str) {
        if self.verbose {
            eprintln!("pie-sim 0.5: {line}");
        }
    }

    pub fn next_conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// Register a connection; the receiver turns true when it must be dropped abruptly.
    pub fn register_conn(&self, conn: Arc<processes::Conn>) -> watch::Receiver<bool> {
        let (tx, rx) = watch::channel(false);
        self.conns.lock().unwrap().insert(conn.id, (tx, conn));
        rx
    }

    pub fn unregister_conn(&self, id: u64) {
        self.conns.lock().unwrap().remove(&id);
    }
}

/// A running 0.5 simulator on its own tokio runtime (works from sync tests, inside other
/// runtimes and under C test harnesses). Stopped on drop.
pub struct Simulator {
    runtime: Option<tokio::runtime::Runtime>,
    shared: Arc<Shared>,
    addr: SocketAddr,
}

impl Simulator {
    /// Bind and start serving. Errors: the address cannot be bound, a preinstalled program is
    /// rejected (the message is the reply text the server would send).
    pub fn start(config: Config) -> io::Result<Simulator> {
        let shared = Arc::new(Shared {
            faults: config.faults.clone(),
            programs: programs::ProgramStore::default(),
            processes: processes::Processes::default(),
            startup_delay: config.startup_delay,
            token_delay: config.token_delay,
            home: config.home.clone(),
            kv_pages_total: config.kv_pages_total,
            stats: Stats::default(),
            verbose: config.verbose,
            conns: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(1),
        });
        for (artifact, manifest) in &config.programs {
            let hash = blake3::hash(artifact).to_hex().to_string();
            let program = programs::build(manifest, artifact.clone(), hash)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            shared.programs.install(program);
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.worker_threads.max(1))
            .thread_name("pie-sim-05")
            .enable_all()
            .build()?;
        let std_listener = std::net::TcpListener::bind(config.listen)?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let listener = {
            let _guard = runtime.enter();
            TcpListener::from_std(std_listener)?
        };
        runtime.spawn(accept_loop(shared.clone(), listener));
        Ok(Simulator {
            runtime: Some(runtime),
            shared,
            addr,
        })
    }

    /// `ws://127.0.0.1:PORT/v1/ws`.
    pub fn url(&self) -> String {
        format!("ws://{}{WS_PATH}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The live defect switches.
    pub fn faults(&self) -> &Arc<Faults> {
        &self.shared.faults
    }

    /// Live processes (attached or detached; finished ones vanish at once).
    pub fn process_count(&self) -> usize {
        self.shared.processes.len()
    }

    /// `name@version` of every installed program (built-ins not included).
    pub fn installed(&self) -> Vec<String> {
        self.shared.programs.list()
    }

    /// Install a program directly (as a successful `add_program` would). `Err`: the reply
    /// text the server would send.
    pub fn install(&self, artifact: Vec<u8>, manifest: &str) -> Result<String, String> {
        let hash = blake3::hash(&artifact).to_hex().to_string();
        let program = programs::build(manifest, artifact, hash)?;
        let ident = program.ident();
        self.shared.programs.install(program);
        Ok(ident)
    }

    /// Open WebSocket connections.
    pub fn connection_count(&self) -> usize {
        self.shared.conns.lock().unwrap().len()
    }

    /// Drop every open connection without a Close frame (their processes are killed).
    pub fn kill_connections(&self) {
        for (kill, _) in self.shared.conns.lock().unwrap().values() {
            let _ = kill.send(true);
        }
    }

    /// Send a frame to every open connection, out of band (for client robustness tests:
    /// a text `error` without corr_id, a `process_event` for an unknown id, a WebSocket ping…).
    pub fn inject(&self, frame: Inject) {
        for (_, conn) in self.shared.conns.lock().unwrap().values() {
            conn.inject(frame.clone());
        }
    }

    /// Stop serving: closes the listener, every connection and every process.
    pub fn stop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            self.shared.processes.kill_all();
            rt.shutdown_background();
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.stop();
    }
}

fn reject(status: StatusCode) -> ErrorResponse {
    let mut resp = ErrorResponse::new(Some(
        status.canonical_reason().unwrap_or("error").to_owned(),
    ));
    *resp.status_mut() = status;
    resp
}

/// Check the upgrade request as the real server does: path `/v1/ws` (else 404), a non-empty
/// `x-pie-identity` (else 401). `Ok` carries the identity.
pub fn check_upgrade(path: &str, identity: Option<&str>) -> Result<String, StatusCode> {
    if path != WS_PATH {
        return Err(StatusCode::NOT_FOUND);
    }
    match identity {
        Some(id) if !id.is_empty() => Ok(id.to_owned()),
        _ => Err(StatusCode::UNAUTHORIZED),
    }
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        let tcp = match listener.accept().await {
            Ok((tcp, _)) => {
                // Assumed, not measured: the 0.5 server (tokio) answers a ping without a
                // delayed-ACK stall, so small frames (a reply, then turn_done) are not held
                // back by Nagle's algorithm.
                let _ = tcp.set_nodelay(true);
                tcp
            }
            Err(_) => {
                // E.g. out of file descriptors: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let identity = Arc::new(Mutex::new(String::new()));
            let seen = identity.clone();
            // The signature is tungstenite's (its error type is an HTTP response).
            #[allow(clippy::result_large_err)]
            let callback = move |req: &Request, resp: Response| {
                let header = req
                    .headers()
                    .get(IDENTITY_HEADER)
                    .map(|v| v.to_str().unwrap_or("?"));
                match check_upgrade(req.uri().path(), header) {
                    Ok(id) => {
                        *seen.lock().unwrap() = id;
                        Ok(resp)
                    }
                    Err(status) => Err(reject(status)),
                }
            };
            if let Ok(ws) = tokio_tungstenite::accept_hdr_async_with_config(
                tcp,
                callback,
                crate::server::ws_config(),
            )
            .await
            {
                let identity = identity.lock().unwrap().clone();
                session::serve(shared, ws, identity).await;
            }
        });
    }
}
