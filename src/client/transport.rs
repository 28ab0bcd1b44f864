//! Opening the connection: URL parsing, TCP (socket options), TLS for `wss://`, and the
//! WebSocket handshake.
//!
//! Latency note (PROTOCOL.md §16): the server keeps Nagle's algorithm on, so when it writes two
//! small frames back to back the second waits for our ACK, which Linux delays by ~40 ms.
//! [`QuickAckTcp`] re-arms `TCP_QUICKACK` whenever the reader is about to wait (the kernel clears it on its
//! own), which makes us acknowledge immediately; TCP_NODELAY does the same for our own writes.

use super::config::ClientConfig;
use crate::error::{Error, ErrorKind, Result};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::WebSocketStream;

/// Bytes the WebSocket asks the socket for per read (`WebSocketConfig::read_buffer_size`).
const READ_BUFFER: usize = 4 * 1024;

pub(crate) type Ws = WebSocketStream<Transport>;

/// The parts of a `ws://` / `wss://` URL we need.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Target {
    pub tls: bool,
    /// Host as written (brackets of an IPv6 literal removed).
    pub host: String,
    pub port: u16,
}

fn bad_url(url: &str, why: &str) -> Error {
    Error::new(
        ErrorKind::InvalidArgument,
        format!("invalid server URL '{url}': {why}"),
    )
}

pub(crate) fn parse_url(url: &str) -> Result<Target> {
    let (tls, rest) = if let Some(r) = strip_prefix_ci(url, "ws://") {
        (false, r)
    } else if let Some(r) = strip_prefix_ci(url, "wss://") {
        (true, r)
    } else {
        return Err(bad_url(
            url,
            "expected ws://HOST[:PORT][/PATH] or wss://...",
        ));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    // Drop user info if present (the server has no HTTP authentication).
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let default_port = if tls { 443 } else { 80 };
    let (host, port) = if let Some(after) = authority.strip_prefix('[') {
        let (h, tail) = after
            .split_once(']')
            .ok_or_else(|| bad_url(url, "unterminated IPv6 literal"))?;
        let port = match tail.strip_prefix(':') {
            Some(p) => parse_port(url, p)?,
            None if tail.is_empty() => default_port,
            None => return Err(bad_url(url, "garbage after IPv6 literal")),
        };
        (h.to_string(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), parse_port(url, p)?),
            None => (authority.to_string(), default_port),
        }
    };
    if host.is_empty() {
        return Err(bad_url(url, "missing host"));
    }
    Ok(Target { tls, host, port })
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn parse_port(url: &str, p: &str) -> Result<u16> {
    p.parse::<u16>()
        .map_err(|_| bad_url(url, &format!("bad port '{p}'")))
}

/// A TCP stream that re-arms TCP_QUICKACK whenever a read finds nothing to read, when enabled
/// (see module docs).
pub(crate) struct QuickAckTcp {
    inner: TcpStream,
    quickack: bool,
    /// Armed since the last read that returned data. The reader finds nothing twice before it
    /// waits (a look, then the wait); the first arming has sent the ACK for what was read.
    armed: bool,
}

impl QuickAckTcp {
    #[cfg(target_os = "linux")]
    fn arm_quickack(&self) {
        use std::os::fd::AsRawFd;
        let one: libc::c_int = 1;
        // SAFETY: a plain setsockopt on a socket we own, with a pointer to a live c_int and its
        // size. Failure is harmless (only latency), so the result is ignored.
        unsafe {
            libc::setsockopt(
                self.inner.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_QUICKACK,
                &one as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn arm_quickack(&self) {}
}

thread_local! {
    /// A read of a connection's socket was attempted on this thread (`socket_was_read`).
    static SOCKET_READ: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether a connection's socket was read on this thread since the last call: the reader
/// settles the replies it held back after each socket read (`pending::flush_deferred_settles`),
/// once per run of frames rather than once per reply, and never while it holds the WebSocket.
pub(crate) fn socket_was_read() -> bool {
    SOCKET_READ.with(|r| r.replace(false))
}

impl AsyncRead for QuickAckTcp {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        // Replies the reader held back are settled once the frame being read is out (the
        // reader asks `socket_was_read`), not here: this runs inside the stream's half of the
        // split WebSocket lock, and a caller woken now would find the sink's half locked for
        // its own direct write and hand its frame to the writer task (26 % of pings against a
        // Pie 0.5 server: an eventfd write and a wake-up of the runtime thread each).
        SOCKET_READ.with(|r| r.set(true));
        let this = self.get_mut();
        let before = buf.filled().len();
        let read = Pin::new(&mut this.inner).poll_read(cx, buf);
        // Armed when the reader is about to wait: what arrives while it waits is ACKed at once
        // (arming also sends an ACK still scheduled). A read that returns data needs no arming:
        // the reader reads again, and arms when that read finds nothing; once per wait.
        match &read {
            Poll::Pending if this.quickack && !this.armed => {
                this.arm_quickack();
                this.armed = true;
            }
            Poll::Ready(Ok(())) if buf.filled().len() > before => this.armed = false,
            _ => {}
        }
        read
    }
}

impl AsyncWrite for QuickAckTcp {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, b)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Holds back the socket's readiness wake-ups while the reader naps during a flood of frames
/// (`ClientConfig::event_batch_window`). Without it a nap saves task polls but not thread
/// wake-ups: epoll still reports every segment that arrives. `SO_RCVLOWAT` makes the kernel
/// report the socket readable only once `HELD_LOWAT` bytes are buffered (or at its end), and
/// setting it back to 1 signals readability at once if data is waiting (Linux); elsewhere this
/// does nothing.
#[derive(Clone, Copy)]
pub(crate) struct WakeGate {
    #[cfg(target_os = "linux")]
    fd: Option<std::os::fd::RawFd>,
}

/// Buffered bytes that end a nap early: a nap of a millisecond gathers a few KiB of events;
/// large blobs still wake the reader promptly. Kept well under the default receive buffer,
/// which the kernel would otherwise grow to hold it.
#[cfg(target_os = "linux")]
const HELD_LOWAT: libc::c_int = 32 * 1024;

impl WakeGate {
    pub(crate) fn of(ws: &Ws) -> WakeGate {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let tcp = match ws.get_ref() {
                Transport::Plain(t) => &t.inner,
                Transport::Tls(t) => &t.get_ref().0.inner,
            };
            WakeGate {
                fd: Some(tcp.as_raw_fd()),
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = ws;
            WakeGate {}
        }
    }

    /// From now on, wake the reader only for `HELD_LOWAT` buffered bytes (or the end).
    pub(crate) fn hold(&self) {
        #[cfg(target_os = "linux")]
        self.set_lowat(HELD_LOWAT);
    }

    /// Back to waking for every byte; readable at once if data is waiting.
    pub(crate) fn release(&self) {
        #[cfg(target_os = "linux")]
        self.set_lowat(1);
    }

    #[cfg(target_os = "linux")]
    fn set_lowat(&self, bytes: libc::c_int) {
        let Some(fd) = self.fd else { return };
        // SAFETY: setsockopt on the connection's socket, which lives as long as the reader
        // that calls this (the reader owns the stream), with a pointer to a live c_int.
        // Failure only costs wake-ups, so the result is ignored.
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVLOWAT,
                &bytes as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
}

/// Plain TCP or TLS over TCP.
pub(crate) enum Transport {
    Plain(QuickAckTcp),
    Tls(Box<tokio_rustls::client::TlsStream<QuickAckTcp>>),
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_write(cx, b),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, b),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_flush(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

fn conn_err(url: &str, what: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::ConnectionFailed,
        format!("cannot connect to {url}: {what}"),
    )
}

/// rustls client configuration: webpki roots plus the caller's extra PEM certificates.
pub(crate) fn tls_config(extra_pems: &[Vec<u8>]) -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for pem in extra_pems {
        let mut found = 0;
        for cert in rustls_pemfile::certs(&mut &pem[..]) {
            let cert = cert.map_err(|e| {
                Error::new(
                    ErrorKind::InvalidArgument,
                    format!("extra root certificate: bad PEM: {e}"),
                )
            })?;
            roots.add(cert).map_err(|e| {
                Error::new(
                    ErrorKind::InvalidArgument,
                    format!("extra root certificate rejected: {e}"),
                )
            })?;
            found += 1;
        }
        if found == 0 {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "extra root certificate: no 'BEGIN CERTIFICATE' block in the PEM data",
            ));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::new(ErrorKind::Internal, format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

/// TCP connect, TLS (for wss), WebSocket handshake. The caller applies the connect timeout.
pub(crate) async fn open(url: &str, config: &ClientConfig) -> Result<Ws> {
    let target = parse_url(url)?;
    // Path and identity header for Pie 0.5 (and detection); January-2026 ignores both.
    let request = super::v05::handshake_request(url, config)?;
    // Build the TLS config first: bad extra certificates are the caller's error, not the net's.
    let tls = if target.tls {
        Some(tls_config(&config.extra_root_certs_pem)?)
    } else {
        None
    };
    let tcp = TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(|e| conn_err(url, e))?;
    if config.tcp_nodelay {
        tcp.set_nodelay(true).map_err(|e| conn_err(url, e))?;
    }
    let tcp = QuickAckTcp {
        inner: tcp,
        quickack: config.tcp_quickack,
        armed: false,
    };
    let transport = match tls {
        None => Transport::Plain(tcp),
        Some(cfg) => {
            let name = rustls::pki_types::ServerName::try_from(target.host.clone())
                .map_err(|e| bad_url(url, &format!("host is not a valid TLS name: {e}")))?;
            let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
            let s = connector
                .connect(name, tcp)
                .await
                .map_err(|e| conn_err(url, format!("TLS handshake failed: {e}")))?;
            Transport::Tls(Box::new(s))
        }
    };
    // Library defaults (64 MiB messages, 16 MiB frames) cover every server message, whose
    // largest regular form is a 256 KiB blob chunk or a long instance list. The read buffer
    // is not left at its 128 KiB default: tungstenite zero-fills the free part of it (up to
    // `read_buffer_size` bytes) before every socket read, which cost ~7,000 instructions per
    // ping with 64 in flight; 4 KiB is the chunk tungstenite 0.24 read with.
    let ws_config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
    let (ws, _response) =
        tokio_tungstenite::client_async_with_config(request, transport, Some(ws_config))
            .await
            .map_err(|e| {
                super::v05::handshake_error(url, &e)
                    .unwrap_or_else(|| conn_err(url, format!("WebSocket handshake failed: {e}")))
            })?;
    Ok(ws)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = parse_url("ws://127.0.0.1:8080").unwrap();
        assert_eq!((t.tls, t.host.as_str(), t.port), (false, "127.0.0.1", 8080));
        let t = parse_url("WSS://example.com/path?x").unwrap();
        assert_eq!((t.tls, t.host.as_str(), t.port), (true, "example.com", 443));
        let t = parse_url("ws://[::1]:9/").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 9));
        let t = parse_url("ws://u:p@h").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("h", 80));
        for bad in ["http://x", "ws://", "ws://h:99999", "ws://[::1", "x"] {
            assert_eq!(
                parse_url(bad).unwrap_err().kind(),
                ErrorKind::InvalidArgument,
                "{bad}"
            );
        }
    }
}
