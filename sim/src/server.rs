//! Shared simulator state and the accept loop.

use crate::auth::Auth;
use crate::faults::{Faults, Garbage};
use crate::instances::Instances;
use crate::programs::ProgramStore;
use crate::registry::RegistryMap;
use crate::session::{self, Item};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// The WebSocket settings of both protocols: the library's defaults, except reads of 4 KiB
/// (tungstenite 0.24's chunk) instead of 128 KiB; tungstenite zero-fills the free part of the
/// read buffer before every socket read, which with the default would cost more per small
/// request than the rest of the WebSocket layer.
pub(crate) fn ws_config() -> Option<WebSocketConfig> {
    Some(WebSocketConfig::default().read_buffer_size(4 * 1024))
}

/// Control handle of one open connection.
pub struct ConnCtl {
    pub kill: watch::Sender<bool>,
    pub tx: mpsc::UnboundedSender<Item>,
}

pub struct Shared {
    pub auth: Auth,
    pub programs: ProgramStore,
    pub instances: Arc<Instances>,
    pub faults: Arc<Faults>,
    pub registry: RegistryMap,
    /// With this many busy-looping instances every connection stops answering, like a real
    /// server whose worker threads are all pinned (§16). 0: never.
    pub busy_worker_limit: usize,
    conns: Mutex<HashMap<u64, ConnCtl>>,
    next_conn: AtomicU64,
}

impl Shared {
    pub fn new(
        auth: Auth,
        faults: Arc<Faults>,
        registry: RegistryMap,
        busy_worker_limit: usize,
    ) -> Shared {
        Shared {
            auth,
            programs: ProgramStore::default(),
            instances: Arc::new(Instances::default()),
            faults,
            registry,
            busy_worker_limit,
            conns: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(1),
        }
    }

    /// Whether sessions must drop everything: the `silence` fault, or all workers pinned.
    pub fn silenced(&self) -> bool {
        Faults::on(&self.faults.silence)
            || (self.busy_worker_limit > 0 && self.instances.busy_count() >= self.busy_worker_limit)
    }

    pub fn next_conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    pub fn register_conn(&self, id: u64, ctl: ConnCtl) {
        self.conns.lock().unwrap().insert(id, ctl);
    }

    pub fn unregister_conn(&self, id: u64) {
        self.conns.lock().unwrap().remove(&id);
    }

    pub fn connection_count(&self) -> usize {
        self.conns.lock().unwrap().len()
    }

    /// Drop every open connection at once, without Close frames.
    pub fn kill_connections(&self) {
        for ctl in self.conns.lock().unwrap().values() {
            let _ = ctl.kill.send(true);
        }
    }

    /// Queue garbage for every open connection (authenticated ones send it).
    pub fn inject(&self, garbage: &Garbage) {
        for ctl in self.conns.lock().unwrap().values() {
            let _ = ctl.tx.send(Item::Garbage(garbage.clone()));
        }
    }
}

/// Accept connections forever. Unlike the real server (Q27) the WebSocket handshake runs in the
/// connection's own task, so one silent TCP client cannot block everybody else.
pub async fn accept_loop(shared: Arc<Shared>, listener: TcpListener, tls: Option<TlsAcceptor>) {
    loop {
        let tcp = match listener.accept().await {
            Ok((tcp, _)) => tcp,
            Err(_) => {
                // E.g. out of file descriptors: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        // Nagle's algorithm stays on (no TCP_NODELAY), as on the real server: clients must
        // cope with the delayed-ACK stall of §16, and a benchmark reproduces it.
        let shared = shared.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                Some(acceptor) => {
                    let Ok(stream) = acceptor.accept(tcp).await else {
                        return;
                    };
                    if let Ok(ws) =
                        tokio_tungstenite::accept_async_with_config(stream, ws_config()).await
                    {
                        session::serve(shared, ws).await;
                    }
                }
                None => {
                    if let Ok(ws) =
                        tokio_tungstenite::accept_async_with_config(tcp, ws_config()).await
                    {
                        session::serve(shared, ws).await;
                    }
                }
            }
        });
    }
}
