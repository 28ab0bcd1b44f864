//! The one error type of the Rust core. Every error has a kind (which the C layer maps 1:1 to a
//! status code) and a readable message meant for a human.

use std::fmt;

/// What went wrong, coarsely. Stable: the C status codes are derived from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// A caller-supplied argument is invalid (bad URL, not a component, bad UTF-8, ...).
    InvalidArgument,
    /// Could not establish the connection (DNS, TCP, TLS or WebSocket handshake).
    ConnectionFailed,
    /// The connection ended (server closed it, network failure) while or before the call ran.
    ConnectionClosed,
    /// The client was closed by its owner.
    ClientClosed,
    /// No reply within the configured timeout.
    Timeout,
    /// The server answered the request with `successful: false`; the message is the server's text.
    Server,
    /// Authentication was refused or could not be carried out.
    Auth,
    /// A private key could not be loaded or used.
    Key,
    /// The server sent something the protocol does not allow here.
    Protocol,
    /// The instance was launched detached: attach it before receiving or sending.
    Detached,
    /// The instance's event stream has ended (its terminal event was already received).
    StreamEnded,
    /// The server does not offer this call (a January-2026 call on a Pie 0.5 server or the
    /// reverse); the message says what to use on this server instead.
    Unsupported,
    /// Local I/O failure (reading a key file, ...).
    Io,
    /// Anything else; a bug if it ever shows up.
    Internal,
}

/// An error with its kind and a readable message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
        }
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T, E = Error> = std::result::Result<T, E>;
