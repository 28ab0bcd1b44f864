//! WakeFd: the pollable descriptor behind pie_client_event_fd.

use super::error::Fail;
use super::error::FfiResult;
use super::status::PieStatus;

/// The wake-up descriptor of pie_client_event_fd: an eventfd on Linux, a non-blocking pipe
/// elsewhere. Readable while a poll-mode instance of the client has something for the host.
pub(crate) struct WakeFd {
    read_fd: i32,
    write_fd: i32,
}

impl WakeFd {
    pub(crate) fn new() -> FfiResult<WakeFd> {
        #[cfg(target_os = "linux")]
        {
            // SAFETY: plain syscall; the result is checked.
            let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
            if fd < 0 {
                return Err(last_os_error("eventfd"));
            }
            Ok(WakeFd {
                read_fd: fd,
                write_fd: fd,
            })
        }
        #[cfg(not(target_os = "linux"))]
        {
            let mut fds = [0i32; 2];
            // SAFETY: `fds` has room for the two descriptors.
            if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
                return Err(last_os_error("pipe"));
            }
            for fd in fds {
                // SAFETY: fcntl on descriptors we own.
                unsafe {
                    let fl = libc::fcntl(fd, libc::F_GETFL);
                    libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
                    libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
                }
            }
            Ok(WakeFd {
                read_fd: fds[0],
                write_fd: fds[1],
            })
        }
    }

    pub(crate) fn fd(&self) -> i32 {
        self.read_fd
    }

    /// Makes the descriptor readable.
    pub(crate) fn signal(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a local. A full pipe/eventfd counter means it is already
        // readable, which is all we want, so the result is deliberately ignored.
        unsafe {
            libc::write(self.write_fd, (&one as *const u64).cast(), 8);
        }
    }

    /// Makes the descriptor unreadable (reads until empty).
    pub(crate) fn drain(&self) {
        let mut buf = [0u8; 64];
        // SAFETY: reads into a local buffer from a non-blocking descriptor we own; bounded.
        for _ in 0..1024 {
            let n = unsafe { libc::read(self.read_fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                break;
            }
        }
    }
}

impl Drop for WakeFd {
    fn drop(&mut self) {
        // SAFETY: closing descriptors we own, once.
        unsafe {
            libc::close(self.read_fd);
            if self.write_fd != self.read_fd {
                libc::close(self.write_fd);
            }
        }
    }
}

fn last_os_error(what: &str) -> Fail {
    Fail::new(
        PieStatus::Io,
        format!("{what} failed: {}", std::io::Error::last_os_error()),
    )
}
