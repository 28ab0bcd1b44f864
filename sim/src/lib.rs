//! pie-sim: a Pie-compatible WebSocket server (PROTOCOL.md, January 2026) for tests.
//!
//! It speaks the real protocol byte for byte and reproduces the server's observable behaviour
//! (authentication, uploads, instances, routing, result strings). Programs cannot be run, so
//! instances follow a small script embedded in the program (see [`script_program`] and
//! sim/README.md) or a built-in behaviour. Known defects of the real server are off by
//! default and can be switched on as faults ([`Faults`]).
//!
//! ```no_run
//! let sim = pie_sim::Simulator::start(pie_sim::SimConfig::default()).unwrap();
//! println!("{}", sim.url());
//! ```

#[path = "../../src/wire/mod.rs"]
#[allow(dead_code)]
pub mod wire;

mod auth;
pub mod base64;
mod behaviour;
mod encode;
mod faults;
mod instances;
pub mod programs;
pub mod pubkey;
mod registry;
mod server;
mod session;
/// The Pie 0.5 simulator (pie-server 0.5.2): `pie-sim --protocol 0.5`.
pub mod v05;

pub use auth::random_token;
pub use behaviour::{completion_tokens, BUILTINS, CANNOT_RUN_WASM};
pub use faults::{Faults, Garbage};
pub use programs::{custom_section, script_program};
pub use registry::parse_name;

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

/// Configuration of a simulator. `Default`: authentication off, a random internal token,
/// listening on 127.0.0.1 with a free port, the real server's 1–3 s bad-token delay.
pub struct SimConfig {
    pub listen: SocketAddr,
    /// With authentication on, `identification` needs a known user and a signed challenge.
    pub auth_enabled: bool,
    /// Authorized users and their public keys (OpenSSH one-line or PEM texts).
    pub users: Vec<(String, Vec<String>)>,
    /// `None`: a random 64-character alphanumeric token (see [`Simulator::internal_token`]).
    pub internal_token: Option<String>,
    /// Delay before `Invalid token` (drawn uniformly from the range).
    pub bad_token_delay: Range<Duration>,
    /// Always send this challenge instead of a random one (for byte-exact tests).
    pub fixed_challenge: Option<[u8; 48]>,
    /// Extra registry entries `(namespace, name, version) → program bytes`, in addition to the
    /// built-in behaviours served under `std/<name>@<any version>`.
    pub registry: HashMap<(String, String, String), Vec<u8>>,
    /// Programs known from the start (like the real server's on-disk program store).
    pub programs: Vec<Vec<u8>>,
    /// Fault switches (shared: keep a clone to flip them later, or use [`Simulator::faults`]).
    pub faults: Arc<Faults>,
    /// `Some((certificate chain PEM, private key PEM))`: serve `wss://` instead of `ws://`.
    pub tls: Option<(Vec<u8>, Vec<u8>)>,
    /// Worker threads of the simulator's own runtime.
    pub worker_threads: usize,
    /// Worker threads of the simulated *server*: once this many `busy` instances exist, every
    /// connection stops answering (§16). Default 2 (a 2-core server); 0 = never.
    pub busy_worker_limit: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            auth_enabled: false,
            users: Vec::new(),
            internal_token: None,
            bad_token_delay: Duration::from_millis(1000)..Duration::from_millis(3000),
            fixed_challenge: None,
            registry: HashMap::new(),
            programs: Vec::new(),
            faults: Arc::new(Faults::default()),
            tls: None,
            worker_threads: 2,
            busy_worker_limit: 2,
        }
    }
}

/// A running simulator. It runs on its own tokio runtime, so it works from synchronous tests,
/// from async tests on another runtime, and under a C test harness. Stopped on drop.
pub struct Simulator {
    runtime: Option<tokio::runtime::Runtime>,
    shared: Arc<server::Shared>,
    addr: SocketAddr,
    tls: bool,
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

fn tls_acceptor(cert_pem: &[u8], key_pem: &[u8]) -> io::Result<tokio_rustls::TlsAcceptor> {
    let certs = rustls_pemfile::certs(&mut &cert_pem[..]).collect::<Result<Vec<_>, _>>()?;
    let key = rustls_pemfile::private_key(&mut &key_pem[..])?
        .ok_or_else(|| invalid("no private key in the TLS key PEM".into()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| invalid(e.to_string()))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

impl Simulator {
    /// Bind, start serving, and return. Errors: the address cannot be bound, a user's public
    /// key cannot be parsed (like the real server refusing its users file), bad TLS material.
    pub fn start(config: SimConfig) -> io::Result<Simulator> {
        let mut users = HashMap::new();
        for (name, keys) in &config.users {
            let mut parsed = Vec::new();
            for key in keys {
                parsed.push(
                    pubkey::PublicKey::parse(key)
                        .map_err(|e| invalid(format!("public key of user '{name}': {e}")))?,
                );
            }
            users
                .entry(name.clone())
                .or_insert_with(Vec::new)
                .extend(parsed);
        }
        let auth = auth::Auth {
            enabled: config.auth_enabled,
            users,
            internal_token: config.internal_token.clone().unwrap_or_else(random_token),
            bad_token_delay: config.bad_token_delay.clone(),
            fixed_challenge: config.fixed_challenge,
        };
        let tls = match &config.tls {
            Some((cert, key)) => Some(tls_acceptor(cert, key)?),
            None => None,
        };
        let shared = Arc::new(server::Shared::new(
            auth,
            config.faults.clone(),
            config.registry.clone(),
            config.busy_worker_limit,
        ));
        for p in &config.programs {
            shared.programs.insert(p.clone());
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.worker_threads.max(1))
            .thread_name("pie-sim")
            .enable_all()
            .build()?;
        let std_listener = std::net::TcpListener::bind(config.listen)?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let listener = {
            let _guard = runtime.enter();
            tokio::net::TcpListener::from_std(std_listener)?
        };
        runtime.spawn(server::accept_loop(shared.clone(), listener, tls.clone()));
        Ok(Simulator {
            runtime: Some(runtime),
            shared,
            addr,
            tls: tls.is_some(),
        })
    }

    /// `ws://127.0.0.1:PORT` (or `wss://…` with TLS).
    pub fn url(&self) -> String {
        let scheme = if self.tls { "wss" } else { "ws" };
        format!("{scheme}://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn internal_token(&self) -> &str {
        &self.shared.auth.internal_token
    }

    /// The live fault switches.
    pub fn faults(&self) -> &Arc<Faults> {
        &self.shared.faults
    }

    /// Abruptly close every open connection (no Close frame). Their instances are detached.
    pub fn kill_connections(&self) {
        self.shared.kill_connections();
    }

    /// Send garbage to every open, authenticated connection (see [`Garbage`]).
    pub fn inject(&self, garbage: Garbage) {
        self.shared.inject(&garbage);
    }

    /// Whether a program with exactly this hash is known.
    pub fn program_exists(&self, hash: &str) -> bool {
        self.shared.programs.contains(hash)
    }

    /// Register a program directly (as if uploaded) and return its hash.
    pub fn add_program(&self, bytes: Vec<u8>) -> String {
        self.shared.programs.insert(bytes)
    }

    /// Instances the engine holds (running, detached or finished-not-collected).
    pub fn instance_count(&self) -> usize {
        self.shared.instances.len()
    }

    /// Open WebSocket connections (including hung ones).
    pub fn connection_count(&self) -> usize {
        self.shared.connection_count()
    }

    /// Stop serving: closes the listener and drops every connection and instance.
    pub fn stop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            // Works from inside another runtime too (no blocking wait).
            rt.shutdown_background();
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.stop();
    }
}
