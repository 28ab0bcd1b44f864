//! PieStatus: the result code of every fallible call, and its printable name.

use std::ffi::{c_char, CStr};

use crate::ErrorKind;

/// Result of every fallible libpie call. The numbers are stable and are never reused or
/// renumbered; new codes are only ever appended.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PieStatus {
    /// Success.
    Ok = 0,
    /// An argument is invalid (a malformed URL, a hash that is not 64 hex digits, an index out of
    /// range, a result of the wrong type requested from a PieOp, ...).
    InvalidArgument = 1,
    /// The connection could not be established (DNS, TCP, TLS or WebSocket handshake).
    ConnectionFailed = 2,
    /// The connection ended (the server closed it or the network failed).
    ConnectionClosed = 3,
    /// The client was closed by the host (pie_client_close or pie_client_free).
    ClientClosed = 4,
    /// No reply within the configured timeout, or nothing arrived within a recv timeout.
    Timeout = 5,
    /// The server refused the request; the error message is the server's text, verbatim.
    Server = 6,
    /// Authentication was refused or could not be carried out.
    Auth = 7,
    /// A private key could not be loaded or used.
    Key = 8,
    /// The server sent something the protocol does not allow.
    Protocol = 9,
    /// The instance was launched detached: attach it (pie_client_attach_instance) first.
    Detached = 10,
    /// The instance's event stream has ended: its terminal event was already delivered.
    StreamEnded = 11,
    /// Local input/output failure (reading a key file, creating the event fd, ...).
    Io = 12,
    /// An internal error of libpie (a bug if it ever shows up).
    Internal = 13,
    /// A required pointer argument was NULL; the error message names the parameter.
    NullPointer = 14,
    /// A string argument was not valid UTF-8; the error message names the parameter.
    InvalidUtf8 = 15,
    /// libpie panicked while serving the call (a bug); the state of the objects involved is
    /// still consistent and they can be freed.
    Panic = 16,
    /// The operation has not finished yet (pie_op_poll, pie_op_wait, pie_op_take_*).
    Pending = 17,
    /// The object is in a mode that does not allow the call (e.g. pie_instance_recv on an
    /// instance whose events go to a callback; a blocking call made from inside a progress
    /// callback).
    Busy = 18,
    /// The caller's output buffer is too small.
    BufferTooSmall = 19,
    /// The operation was cancelled (pie_op_cancel, or pie_op_free of a pending operation).
    Cancelled = 20,
}

impl PieStatus {
    const ALL: [PieStatus; 21] = [
        PieStatus::Ok,
        PieStatus::InvalidArgument,
        PieStatus::ConnectionFailed,
        PieStatus::ConnectionClosed,
        PieStatus::ClientClosed,
        PieStatus::Timeout,
        PieStatus::Server,
        PieStatus::Auth,
        PieStatus::Key,
        PieStatus::Protocol,
        PieStatus::Detached,
        PieStatus::StreamEnded,
        PieStatus::Io,
        PieStatus::Internal,
        PieStatus::NullPointer,
        PieStatus::InvalidUtf8,
        PieStatus::Panic,
        PieStatus::Pending,
        PieStatus::Busy,
        PieStatus::BufferTooSmall,
        PieStatus::Cancelled,
    ];

    fn name(self) -> &'static CStr {
        match self {
            PieStatus::Ok => c"PIE_STATUS_OK",
            PieStatus::InvalidArgument => c"PIE_STATUS_INVALID_ARGUMENT",
            PieStatus::ConnectionFailed => c"PIE_STATUS_CONNECTION_FAILED",
            PieStatus::ConnectionClosed => c"PIE_STATUS_CONNECTION_CLOSED",
            PieStatus::ClientClosed => c"PIE_STATUS_CLIENT_CLOSED",
            PieStatus::Timeout => c"PIE_STATUS_TIMEOUT",
            PieStatus::Server => c"PIE_STATUS_SERVER",
            PieStatus::Auth => c"PIE_STATUS_AUTH",
            PieStatus::Key => c"PIE_STATUS_KEY",
            PieStatus::Protocol => c"PIE_STATUS_PROTOCOL",
            PieStatus::Detached => c"PIE_STATUS_DETACHED",
            PieStatus::StreamEnded => c"PIE_STATUS_STREAM_ENDED",
            PieStatus::Io => c"PIE_STATUS_IO",
            PieStatus::Internal => c"PIE_STATUS_INTERNAL",
            PieStatus::NullPointer => c"PIE_STATUS_NULL_POINTER",
            PieStatus::InvalidUtf8 => c"PIE_STATUS_INVALID_UTF8",
            PieStatus::Panic => c"PIE_STATUS_PANIC",
            PieStatus::Pending => c"PIE_STATUS_PENDING",
            PieStatus::Busy => c"PIE_STATUS_BUSY",
            PieStatus::BufferTooSmall => c"PIE_STATUS_BUFFER_TOO_SMALL",
            PieStatus::Cancelled => c"PIE_STATUS_CANCELLED",
        }
    }
}

impl From<ErrorKind> for PieStatus {
    fn from(kind: ErrorKind) -> Self {
        match kind {
            ErrorKind::InvalidArgument => PieStatus::InvalidArgument,
            ErrorKind::ConnectionFailed => PieStatus::ConnectionFailed,
            ErrorKind::ConnectionClosed => PieStatus::ConnectionClosed,
            ErrorKind::ClientClosed => PieStatus::ClientClosed,
            ErrorKind::Timeout => PieStatus::Timeout,
            ErrorKind::Server => PieStatus::Server,
            ErrorKind::Auth => PieStatus::Auth,
            ErrorKind::Key => PieStatus::Key,
            ErrorKind::Protocol => PieStatus::Protocol,
            ErrorKind::Detached => PieStatus::Detached,
            ErrorKind::StreamEnded => PieStatus::StreamEnded,
            ErrorKind::Io => PieStatus::Io,
            ErrorKind::Internal => PieStatus::Internal,
        }
    }
}

/// The name of a status code as a static string ("PIE_STATUS_TIMEOUT"); never NULL. Values
/// that are not a PieStatus give "PIE_STATUS_UNKNOWN". Takes an int so that any value is safe.
#[no_mangle]
pub extern "C" fn pie_status_name(status: i32) -> *const c_char {
    PieStatus::ALL
        .iter()
        .find(|s| **s as i32 == status)
        .map_or(c"PIE_STATUS_UNKNOWN", |s| s.name())
        .as_ptr()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_numbers_are_stable() {
        // Appending is allowed; changing any of these numbers breaks every compiled host.
        let expected = [
            (PieStatus::Ok, 0),
            (PieStatus::InvalidArgument, 1),
            (PieStatus::ConnectionFailed, 2),
            (PieStatus::ConnectionClosed, 3),
            (PieStatus::ClientClosed, 4),
            (PieStatus::Timeout, 5),
            (PieStatus::Server, 6),
            (PieStatus::Auth, 7),
            (PieStatus::Key, 8),
            (PieStatus::Protocol, 9),
            (PieStatus::Detached, 10),
            (PieStatus::StreamEnded, 11),
            (PieStatus::Io, 12),
            (PieStatus::Internal, 13),
            (PieStatus::NullPointer, 14),
            (PieStatus::InvalidUtf8, 15),
            (PieStatus::Panic, 16),
            (PieStatus::Pending, 17),
            (PieStatus::Busy, 18),
            (PieStatus::BufferTooSmall, 19),
            (PieStatus::Cancelled, 20),
        ];
        assert_eq!(expected.len(), PieStatus::ALL.len());
        for (status, number) in expected {
            assert_eq!(status as i32, number);
            let name = unsafe { CStr::from_ptr(pie_status_name(number)) };
            assert_eq!(name, status.name());
        }
    }

    #[test]
    fn every_error_kind_has_its_own_status() {
        let kinds = [
            ErrorKind::InvalidArgument,
            ErrorKind::ConnectionFailed,
            ErrorKind::ConnectionClosed,
            ErrorKind::ClientClosed,
            ErrorKind::Timeout,
            ErrorKind::Server,
            ErrorKind::Auth,
            ErrorKind::Key,
            ErrorKind::Protocol,
            ErrorKind::Detached,
            ErrorKind::StreamEnded,
            ErrorKind::Io,
            ErrorKind::Internal,
        ];
        let statuses: std::collections::HashSet<PieStatus> =
            kinds.iter().map(|k| PieStatus::from(*k)).collect();
        assert_eq!(statuses.len(), kinds.len());
        assert!(!statuses.contains(&PieStatus::Ok));
    }
}
