//! Client configuration.

use super::v05::Protocol;
use std::time::Duration;

/// Settings of one client connection. `Default` gives the values documented per field.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// TCP connect + TLS + WebSocket handshake, together. Default 10 s.
    pub connect_timeout: Duration,
    /// Per request, from sending to the reply (uploads: no progress for this long, or no final
    /// reply this long after the last chunk was written). Default 30 s. The server has no
    /// timeouts of its own and leaves some requests unanswered (PROTOCOL.md §15 Q1, Q8, Q11).
    pub request_timeout: Duration,
    /// Launch/attach requests outstanding at once on this connection; others wait in the
    /// client. Default 1 (PROTOCOL.md §16: pipelined launches can deadlock the server).
    /// 0 = unlimited.
    pub max_launches_in_flight: usize,
    /// Queued event payload (text/blob bytes) per instance before non-terminal events are
    /// dropped and an `Overflow` marker is queued instead. Default 64 MiB. 0 = unlimited.
    pub instance_queue_limit_bytes: usize,
    /// Re-arm TCP_QUICKACK whenever the reader waits for data (Linux; ignored elsewhere). The server
    /// leaves Nagle on, so without this a second small frame waits ~40 ms for our delayed ACK
    /// (PROTOCOL.md §16). Default true.
    pub tcp_quickack: bool,
    /// Event batching window. During a flood of output (four wake-ups in a row, each less than
    /// 200 µs after the previous one; wake-ups that follow a reply do not count) and while no
    /// request waits for its reply, the reader waits
    /// up to this long between socket reads and takes what arrived meanwhile at once: one
    /// wake-up for many events instead of one each (client CPU per event falls several-fold;
    /// docs/PIE05-SERVER.md). Costs each event of such a flood at most this much extra latency;
    /// a first event and a token stream at model speed are never held back, and a request sent
    /// during a nap ends it. Zero turns it off. Default 1 ms.
    pub event_batch_window: Duration,
    /// TCP_NODELAY on the client socket (our own small requests go out at once). Default true.
    pub tcp_nodelay: bool,
    /// PEM certificates trusted for `wss://` in addition to the webpki (Mozilla) roots.
    pub extra_root_certs_pem: Vec<Vec<u8>>,
    /// The protocol to speak. `None` (default): detect it (PROTOCOL-0.5.md §12; see
    /// `Client::protocol`). `Some(..)` forces one; a forced January-2026 connection uses the
    /// URL exactly as given and sends no identity header.
    pub protocol: Option<Protocol>,
    /// Sent as the `x-pie-identity` upgrade header, which a Pie 0.5 server requires and takes
    /// as the caller's whole identity (e.g. `tenant/user`); also the username of the
    /// detection probe. Must not be empty. Default `libpie`.
    pub identity: String,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_launches_in_flight: 1,
            instance_queue_limit_bytes: 64 << 20,
            tcp_quickack: true,
            event_batch_window: Duration::from_millis(1),
            tcp_nodelay: true,
            extra_root_certs_pem: Vec::new(),
            protocol: None,
            identity: "libpie".to_string(),
        }
    }
}
