//! The raw ping ceiling: a minimal client that only does the I/O. One thread, one blocking
//! socket: it writes a pre-encoded, pre-masked `ping` frame and reads the reply frame, with no
//! runtime, no task, no channel and no other thread. It pays what any client must pay on this
//! machine (a write and a read syscall, the simulator's work, loopback) and what libpie pays by
//! design for the same frames (TCP_NODELAY, and TCP_QUICKACK re-armed before every socket read,
//! PROTOCOL.md §16), nothing else. If libpie ever beats it, the ceiling is wrong.
//!
//! The WebSocket framing is written here (RFC 6455 §5.2): client frames are masked, server
//! frames are not. Each reply is decoded and its corr_id checked, so the ceiling cannot count
//! a frame it did not get.

use pie::wire::{self, ClientMessage, ServerMessage};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

/// The raw clients' socket. Request/reply (`nap` off): TCP_QUICKACK re-armed before every
/// blocking read (two syscalls a read, the least a blocking client can do). Streaming (`nap`
/// on), as libpie's reader does during a flood: a read that finds data returns it at once, one
/// that finds nothing sleeps libpie's default batching window and tries again, and only a read
/// that would then wait re-arms TCP_QUICKACK. The ceiling thus batches exactly as much as the
/// library may, so its CPU per event stays a floor for every library path.
struct QuickAck {
    stream: TcpStream,
    nap: bool,
}

/// libpie's default `event_batch_window`.
const NAP: std::time::Duration = std::time::Duration::from_millis(1);

impl QuickAck {
    #[cfg(target_os = "linux")]
    fn read_now(&mut self, buf: &mut [u8]) -> Option<std::io::Result<usize>> {
        use std::os::fd::AsRawFd;
        // SAFETY: recv into a live buffer of the given length on a socket we own.
        let n = unsafe {
            libc::recv(
                self.stream.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n >= 0 {
            return Some(Ok(n as usize));
        }
        let e = std::io::Error::last_os_error();
        (e.kind() != std::io::ErrorKind::WouldBlock).then_some(Err(e))
    }

    #[cfg(not(target_os = "linux"))]
    fn read_now(&mut self, _: &mut [u8]) -> Option<std::io::Result<usize>> {
        None
    }
}

impl Read for QuickAck {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.nap {
            if let Some(done) = self.read_now(buf) {
                return done;
            }
            std::thread::sleep(NAP);
            if let Some(done) = self.read_now(buf) {
                return done;
            }
        }
        arm_quickack(&self.stream);
        self.stream.read(buf)
    }
}

#[cfg(target_os = "linux")]
fn arm_quickack(s: &TcpStream) {
    use std::os::fd::AsRawFd;
    let one: libc::c_int = 1;
    // SAFETY: setsockopt on a socket we own with a pointer to a live c_int and its size.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_QUICKACK,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn arm_quickack(_: &TcpStream) {}

pub struct RawClient {
    writer: TcpStream,
    reader: BufReader<QuickAck>,
    payload: Vec<u8>,
}

/// One masked binary client frame carrying `payload` (fixed mask key: any key is valid).
fn client_frame(payload: &[u8]) -> Vec<u8> {
    const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
    let mut f = Vec::with_capacity(payload.len() + 14);
    f.push(0x82); // FIN + binary
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n if n <= 0xffff => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&MASK);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    f
}

/// The encoded ping frame for `corr_id`, ready to write.
pub fn ping_frame(corr_id: u32) -> Vec<u8> {
    client_frame(&wire::encode_client(&ClientMessage::Ping { corr_id }))
}

impl RawClient {
    /// Connects to `ws://HOST:PORT[/PATH]`, performs the WebSocket handshake and identifies
    /// (authentication is disabled on the simulator).
    pub fn connect(url: &str) -> Result<RawClient, String> {
        let rest = url
            .strip_prefix("ws://")
            .ok_or_else(|| format!("raw ping: only ws:// URLs ({url})"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let stream = TcpStream::connect(authority).map_err(|e| format!("raw connect: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let writer = stream.try_clone().map_err(|e| e.to_string())?;
        let mut c = RawClient {
            writer,
            reader: BufReader::with_capacity(64 * 1024, QuickAck { stream, nap: false }),
            payload: Vec::with_capacity(256),
        };
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: cGllLWJlbmNoLXJhdy1waW5n\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n"
        );
        c.writer
            .write_all(request.as_bytes())
            .map_err(|e| e.to_string())?;
        let mut status = String::new();
        c.reader.read_line(&mut status).map_err(|e| e.to_string())?;
        if !status.starts_with("HTTP/1.1 101") {
            return Err(format!("raw handshake refused: {status:?}"));
        }
        loop {
            let mut line = String::new();
            let n = c.reader.read_line(&mut line).map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("raw handshake: connection ended".into());
            }
            if line == "\r\n" {
                break;
            }
        }
        let ident = wire::encode_client(&ClientMessage::Identification {
            corr_id: 1,
            username: "bench".into(),
        });
        c.writer
            .write_all(&client_frame(&ident))
            .map_err(|e| e.to_string())?;
        c.read_reply(1)?;
        Ok(c)
    }

    /// Reads the next binary frame into `self.payload`.
    fn read_frame(&mut self) -> Result<(), String> {
        loop {
            let mut head = [0u8; 2];
            self.reader
                .read_exact(&mut head)
                .map_err(|e| format!("raw read: {e}"))?;
            let opcode = head[0] & 0x0f;
            let len = match head[1] & 0x7f {
                126 => {
                    let mut b = [0u8; 2];
                    self.reader.read_exact(&mut b).map_err(|e| e.to_string())?;
                    u16::from_be_bytes(b) as usize
                }
                127 => {
                    let mut b = [0u8; 8];
                    self.reader.read_exact(&mut b).map_err(|e| e.to_string())?;
                    u64::from_be_bytes(b) as usize
                }
                n => n as usize,
            };
            if head[1] & 0x80 != 0 {
                return Err("raw read: masked server frame".into());
            }
            self.payload.resize(len, 0);
            self.reader
                .read_exact(&mut self.payload)
                .map_err(|e| e.to_string())?;
            match opcode {
                0x2 if head[0] & 0x80 != 0 => return Ok(()),
                0x8 => return Err("raw read: the server closed the connection".into()),
                0x2 | 0x0 => return Err("raw read: fragmented frame (not expected)".into()),
                _ => continue, // text, ping, pong: not part of this exchange
            }
        }
    }

    /// Reads one reply; returns its corr_id if it is a successful response.
    fn read_response(&mut self) -> Result<u32, String> {
        self.read_frame()?;
        match wire::decode_server(&self.payload) {
            Ok(ServerMessage::Response {
                corr_id,
                successful: true,
                ..
            }) => Ok(corr_id),
            other => Err(format!("raw read: expected a response, got {other:?}")),
        }
    }

    /// Reads one reply and checks it answers `corr_id`.
    fn read_reply(&mut self, corr_id: u32) -> Result<(), String> {
        match self.read_response()? {
            got if got == corr_id => Ok(()),
            got => Err(format!("raw read: reply to {got}, expected {corr_id}")),
        }
    }

    /// One round trip: write the frame, read its reply.
    pub fn ping(&mut self, frame: &[u8], corr_id: u32) -> Result<(), String> {
        self.writer.write_all(frame).map_err(|e| e.to_string())?;
        self.read_reply(corr_id)
    }

    /// `frames` (`n` pings with the consecutive corr_ids from `first`) written with one write,
    /// then every reply read, in whatever order the server sends them.
    pub fn ping_batch(&mut self, frames: &[u8], first: u32, n: u32) -> Result<(), String> {
        self.writer.write_all(frames).map_err(|e| e.to_string())?;
        let mut seen = vec![false; n as usize];
        for _ in 0..n {
            let id = self.read_response()?;
            match id.checked_sub(first).map(|i| i as usize) {
                Some(i) if i < seen.len() && !seen[i] => seen[i] = true,
                _ => return Err(format!("raw read: unexpected reply to {id}")),
            }
        }
        Ok(())
    }

    /// The streaming ceiling: launches `hash` (attached) and reads frames until its terminal
    /// event, counting the Stdout outputs (each frame classified with the same borrowed-id fast
    /// decoder the client uses). One thread, one blocking socket read into a 64 KiB buffer, no
    /// runtime: if libpie streams faster, this ceiling is wrong. Ends with an error on anything
    /// but a Completed event. Returns (Stdout frames, time from the launch).
    pub fn stream(
        &mut self,
        hash: &str,
        args: &[String],
    ) -> Result<(u64, std::time::Duration), String> {
        let t = std::time::Instant::now();
        let launch = wire::encode_client(&ClientMessage::LaunchInstance {
            corr_id: 2,
            program_hash: hash.to_string(),
            arguments: args.to_vec(),
            detached: false,
        });
        self.writer
            .write_all(&client_frame(&launch))
            .map_err(|e| e.to_string())?;
        let mut stdout = 0u64;
        // A flood from here on: batch reads as libpie's reader does (see `QuickAck`).
        self.reader.get_mut().nap = true;
        let result = self.stream_events(t, &mut stdout);
        self.reader.get_mut().nap = false;
        result
    }

    fn stream_events(
        &mut self,
        t: std::time::Instant,
        stdout: &mut u64,
    ) -> Result<(u64, std::time::Duration), String> {
        loop {
            self.read_frame()?;
            match wire::decode_event_frame(&self.payload) {
                Some(wire::EventFrame {
                    body: wire::EventBody::Output(wire::StreamingOutput::Stdout(text)),
                    ..
                }) => {
                    *stdout += 1;
                    std::hint::black_box(text);
                }
                Some(wire::EventFrame {
                    body: wire::EventBody::Event { code, message },
                    ..
                }) if code != wire::event_code::MESSAGE => {
                    if code != wire::event_code::COMPLETED {
                        return Err(format!("raw: instance ended with {code}: {message}"));
                    }
                    return Ok((*stdout, t.elapsed()));
                }
                // The launch result, Stderr, messages: not Stdout, not the end.
                _ => {}
            }
        }
    }
}

/// The raw client with a network thread: the smallest client shaped like libpie (and like any
/// library whose calls return while a thread of its own reads the socket). The caller writes
/// its pre-encoded frames itself (as libpie's direct writes do, and all of a batch in one write,
/// which libpie's one-call-per-request API cannot), then sleeps on a condition variable; the
/// network thread blocks in `read`, decodes every reply it has, and wakes the caller once per
/// run of buffered frames (libpie's batching too). No runtime, no allocation per request.
/// What it costs over `RawClient` is the price of the thread hand-off alone: libpie cannot
/// beat this client without giving up its network thread.
pub struct ThreadedRawClient {
    writer: TcpStream,
    replies: std::sync::Arc<Replies>,
    network: Option<std::thread::JoinHandle<()>>,
}

#[derive(Default)]
struct Replies {
    state: std::sync::Mutex<RepliesState>,
    arrived: std::sync::Condvar,
}

#[derive(Default)]
struct RepliesState {
    done: std::collections::HashSet<u32>,
    caller_waits: bool,
    ended: Option<String>,
}

/// Whether `buffered` starts with a whole server frame (unmasked; 7-, 16- or 64-bit length).
fn holds_whole_frame(buffered: &[u8]) -> bool {
    if buffered.len() < 2 {
        return false;
    }
    let (header, len) = match buffered[1] & 0x7f {
        126 if buffered.len() >= 4 => (4, u16::from_be_bytes([buffered[2], buffered[3]]) as usize),
        127 if buffered.len() >= 10 => {
            let mut b = [0u8; 8];
            b.copy_from_slice(&buffered[2..10]);
            (10, u64::from_be_bytes(b) as usize)
        }
        126 | 127 => return false,
        n => (2, n as usize),
    };
    buffered.len() >= header + len
}

impl RawClient {
    /// The same connection, its replies read from now on by a network thread.
    pub fn into_threaded(self) -> ThreadedRawClient {
        let replies = std::sync::Arc::new(Replies::default());
        let shared = replies.clone();
        let mut reading = self;
        let writer = reading.writer.try_clone().expect("clone the raw socket");
        let network = std::thread::Builder::new()
            .name("raw-network".into())
            .spawn(move || {
                let mut run = Vec::new();
                let why = loop {
                    match reading.read_response() {
                        Ok(id) => run.push(id),
                        Err(e) => break e,
                    }
                    // The next read would wait (or the next frame is incomplete): hand the run
                    // over, waking the caller only if it sleeps.
                    if !holds_whole_frame(reading.reader.buffer()) {
                        let mut st = shared.state.lock().unwrap();
                        st.done.extend(run.drain(..));
                        if st.caller_waits {
                            shared.arrived.notify_one();
                        }
                    }
                };
                let mut st = shared.state.lock().unwrap();
                st.done.extend(run.drain(..));
                st.ended = Some(why);
                shared.arrived.notify_all();
            })
            .expect("spawn the raw network thread");
        ThreadedRawClient {
            writer,
            replies,
            network: Some(network),
        }
    }
}

impl ThreadedRawClient {
    fn wait_for(&self, corr_id: u32) -> Result<(), String> {
        let mut st = self.replies.state.lock().unwrap();
        loop {
            if st.done.remove(&corr_id) {
                return Ok(());
            }
            if let Some(why) = &st.ended {
                return Err(format!("raw (threaded): {why}"));
            }
            st.caller_waits = true;
            st = self.replies.arrived.wait(st).unwrap();
            st.caller_waits = false;
        }
    }

    /// One round trip: write the frame, sleep until the network thread has its reply.
    pub fn ping(&mut self, frame: &[u8], corr_id: u32) -> Result<(), String> {
        self.writer.write_all(frame).map_err(|e| e.to_string())?;
        self.wait_for(corr_id)
    }

    /// `n` pings (consecutive corr_ids from `first`), then each reply waited for in order (as
    /// a host waits for its operations one by one). `gathered`: all frames in one write (what
    /// a client can do when it knows the whole batch); otherwise a write per request as it is
    /// made (what a call-per-request API does when it sends each request at once).
    pub fn ping_batch(
        &mut self,
        frames: &[u8],
        first: u32,
        n: u32,
        gathered: bool,
    ) -> Result<(), String> {
        let chunk = if gathered {
            frames.len()
        } else {
            frames.len() / n as usize
        };
        for frame in frames.chunks(chunk) {
            self.writer.write_all(frame).map_err(|e| e.to_string())?;
        }
        (first..first + n).try_for_each(|id| self.wait_for(id))
    }
}

impl Drop for ThreadedRawClient {
    fn drop(&mut self) {
        let _ = self.writer.shutdown(std::net::Shutdown::Both);
        if let Some(network) = self.network.take() {
            let _ = network.join();
        }
    }
}
