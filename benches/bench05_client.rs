//! libpie's side of scripts/pie05/bench05.sh: the Rust client core against a real
//! pie-server 0.5.2, measured exactly as scripts/pie05/bench05_client.py measures the Python
//! clients, printing the same JSON object.
//!
//!     cargo bench --bench bench05_client -- --url ws://127.0.0.1:PORT/v1/ws \
//!         [--pings N] [--events N] [--launches N] [--c-api]
//!     ... --url URL [--pings N] --ping-floor | --ping-floor-threaded
//!
//! `stream-lines@0.1.0` must be installed (bench05.py does it). CPU time: getrusage of this
//! process (all threads: the runtime's workers and the reader).

use pie::{Client, InstanceEvent};
use std::time::{Duration, Instant};

const STREAM: &str = "stream-lines@0.1.0";
const LIMIT: Duration = Duration::from_secs(300);

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes the struct it is given; RUSAGE_SELF is always valid.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn percentile(values: &mut [f64], fraction: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    values[((fraction * values.len() as f64) as usize).min(values.len() - 1)]
}

struct Args {
    url: String,
    pings: usize,
    events: usize,
    launches: usize,
    /// A current-thread runtime: the connection's reader runs on the calling thread, so no
    /// event crosses threads (default: a multi-thread runtime with one worker).
    current_thread: bool,
    /// `ClientConfig::event_batch_window` in µs (default: the library's default).
    batch_window_us: Option<u64>,
    /// `ClientConfig::tcp_quickack` off.
    no_quickack: bool,
    /// Through the C ABI (`pie::ffi::pie_*`, the functions a C host links: blocking calls from
    /// this thread, the library's own runtime thread) instead of the Rust core.
    c_api: bool,
    /// Only pings, by the smallest client there is (`ping_floor`): what any client must spend.
    ping_floor: bool,
    /// Only pings, by the smallest client with a network thread (`ping_floor_threaded`).
    ping_floor_threaded: bool,
}

fn parse_args() -> Args {
    let mut args = Args {
        url: String::new(),
        pings: 2000,
        events: 100_000,
        launches: 20,
        current_thread: false,
        batch_window_us: None,
        no_quickack: false,
        c_api: false,
        ping_floor: false,
        ping_floor_threaded: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => args.url = value(),
            "--pings" => args.pings = value().parse().expect("--pings N"),
            "--events" => args.events = value().parse().expect("--events N"),
            "--launches" => args.launches = value().parse().expect("--launches N"),
            "--current-thread" => args.current_thread = true,
            "--batch-window-us" => {
                args.batch_window_us = Some(value().parse().expect("--batch-window-us N"))
            }
            "--no-quickack" => args.no_quickack = true,
            "--c-api" => args.c_api = true,
            "--ping-floor" => args.ping_floor = true,
            "--ping-floor-threaded" => args.ping_floor_threaded = true,
            "--bench" => {} // added by `cargo bench`
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(!args.url.is_empty(), "--url is required");
    args
}

/// What one run measured (seconds), printed as bench05_client.py's JSON object.
struct Figures {
    rtts: Vec<f64>,
    ping_cpu: f64,
    events: usize,
    stream_wall: f64,
    stream_cpu: f64,
    firsts: Vec<f64>,
}

impl Figures {
    fn json(mut self, args: &Args) -> String {
        format!(
            "{{\"client\": \"libpie\", \"api\": \"{}\", \"pings\": {}, \"ping_median_us\": {:.3}, \
             \"ping_p99_us\": {:.3}, \"ping_cpu_us\": {:.3}, \"events\": {}, \"events_per_s\": {:.1}, \
             \"event_cpu_us\": {:.4}, \"launches\": {}, \"first_output_median_ms\": {:.3}, \
             \"first_output_p90_ms\": {:.3}}}",
            if args.c_api { "c" } else { "rust" },
            self.rtts.len(),
            median(&mut self.rtts) * 1e6,
            percentile(&mut self.rtts, 0.99) * 1e6,
            self.ping_cpu / args.pings as f64 * 1e6,
            self.events,
            self.events as f64 / self.stream_wall,
            self.stream_cpu / self.events.max(1) as f64 * 1e6,
            self.firsts.len(),
            median(&mut self.firsts) * 1e3,
            percentile(&mut self.firsts, 0.9) * 1e3,
        )
    }
}

async fn run(args: Args) -> String {
    let mut config = pie::ClientConfig::default();
    if let Some(us) = args.batch_window_us {
        config.event_batch_window = Duration::from_micros(us);
    }
    config.tcp_quickack = !args.no_quickack;
    let client = Client::connect_with(&args.url, config)
        .await
        .expect("connect");
    client
        .authenticate("libpie-bench05", None)
        .await
        .expect("authenticate");
    for _ in 0..50 {
        client.ping().await.expect("ping");
    }
    let mut rtts = Vec::with_capacity(args.pings);
    let cpu = cpu_seconds();
    for _ in 0..args.pings {
        let start = Instant::now();
        client.ping().await.expect("ping");
        rtts.push(start.elapsed().as_secs_f64());
    }
    let ping_cpu = cpu_seconds() - cpu;

    let cpu = cpu_seconds();
    let start = Instant::now();
    let input = format!("{{\"n\": {}}}", args.events);
    let process = client.launch(STREAM, &input, false).await.expect("launch");
    let mut events = 0usize;
    let mut pending_seen = 0usize;
    loop {
        pending_seen = pending_seen.max(client.debug_counts().pending);
        match process.recv().await.expect("recv") {
            InstanceEvent::Stdout(_) => events += 1,
            e if e.is_terminal() => break,
            _ => {}
        }
    }
    let stream_wall = start.elapsed().as_secs_f64();
    let naps = client.debug_counts().reader_naps;
    eprintln!("bench05_client: {naps} reader naps during the stream, at most {pending_seen} requests pending");
    let stream_cpu = cpu_seconds() - cpu;

    let mut firsts = Vec::with_capacity(args.launches);
    for _ in 0..args.launches {
        let start = Instant::now();
        let process = client
            .launch(STREAM, "{\"n\": 1}", false)
            .await
            .expect("launch");
        let mut event = process.recv().await.expect("recv");
        firsts.push(start.elapsed().as_secs_f64());
        while !event.is_terminal() {
            event = process.recv().await.expect("recv");
        }
    }
    client.close().await.ok();

    Figures {
        rtts,
        ping_cpu,
        events,
        stream_wall,
        stream_cpu,
        firsts,
    }
    .json(&args)
}

/// The same measurements through the C ABI, called the way a C host calls it.
mod c_api {
    use super::{cpu_seconds, Args, Figures, STREAM};
    use pie::ffi::*;
    use std::ffi::{CStr, CString};
    use std::ptr;
    use std::time::Instant;

    /// Panics with the library's message unless `status` is OK (frees the error object).
    unsafe fn ok(what: &str, status: PieStatus, err: *mut PieError) {
        if status != PieStatus::Ok {
            let message = if err.is_null() {
                String::new()
            } else {
                let m = CStr::from_ptr(pie_error_message(err))
                    .to_string_lossy()
                    .into_owned();
                pie_error_free(err);
                m
            };
            panic!("{what}: {status:?} {message}");
        }
    }

    /// Launches `input` and reads events until the terminal one; returns the Stdout count and
    /// the time of the first event after `start`.
    unsafe fn stream(client: *const PieClient, input: &str, start: Instant) -> (usize, f64) {
        let (inferlet, input) = (CString::new(STREAM).unwrap(), CString::new(input).unwrap());
        let (mut instance, mut err) = (ptr::null_mut(), ptr::null_mut());
        let st = pie_client_launch_process(
            client,
            inferlet.as_ptr(),
            input.as_ptr(),
            false,
            &mut instance,
            &mut err,
        );
        ok("pie_client_launch_process", st, err);
        let (mut stdout, mut first) = (0usize, None);
        loop {
            let (mut event, mut err) = (ptr::null_mut(), ptr::null_mut());
            ok(
                "pie_instance_recv",
                pie_instance_recv(instance, -1, &mut event, &mut err),
                err,
            );
            first.get_or_insert_with(|| start.elapsed().as_secs_f64());
            if pie_event_kind(event) == PieEventKind::Stdout {
                stdout += 1;
            }
            let terminal = pie_event_is_terminal(event);
            pie_event_free(event);
            if terminal {
                break;
            }
        }
        pie_instance_free(instance);
        (stdout, first.unwrap_or(0.0))
    }

    pub fn run(args: &Args) -> Figures {
        // SAFETY: every pointer passed is either a live handle from the library or a local
        // out-pointer / NUL-terminated string; each handle is freed once, at the end.
        unsafe {
            let (mut client, mut err) = (ptr::null_mut(), ptr::null_mut());
            let options = pie_connect_options_new();
            assert!(!options.is_null(), "pie_connect_options_new");
            if let Some(us) = args.batch_window_us {
                let st =
                    pie_connect_options_set_event_batch_window_us(options, us as u32, &mut err);
                ok("set_event_batch_window_us", st, err);
            }
            let st = pie_connect_options_set_tcp_quickack(options, !args.no_quickack, &mut err);
            ok("set_tcp_quickack", st, err);
            let url = CString::new(args.url.as_str()).unwrap();
            ok(
                "pie_client_connect",
                pie_client_connect(url.as_ptr(), options, &mut client, &mut err),
                err,
            );
            pie_connect_options_free(options);
            let user = CString::new("libpie-bench05").unwrap();
            let st = pie_client_authenticate(client, user.as_ptr(), ptr::null(), &mut err);
            ok("pie_client_authenticate", st, err);
            for _ in 0..50 {
                ok("pie_client_ping", pie_client_ping(client, &mut err), err);
            }
            let mut rtts = Vec::with_capacity(args.pings);
            let cpu = cpu_seconds();
            for _ in 0..args.pings {
                let start = Instant::now();
                ok("pie_client_ping", pie_client_ping(client, &mut err), err);
                rtts.push(start.elapsed().as_secs_f64());
            }
            let ping_cpu = cpu_seconds() - cpu;

            let cpu = cpu_seconds();
            let start = Instant::now();
            let (events, _) = stream(client, &format!("{{\"n\": {}}}", args.events), start);
            let stream_wall = start.elapsed().as_secs_f64();
            let stream_cpu = cpu_seconds() - cpu;

            let firsts = (0..args.launches)
                .map(|_| stream(client, "{\"n\": 1}", Instant::now()).1)
                .collect();
            ok("pie_client_close", pie_client_close(client, &mut err), err);
            pie_client_free(client);
            Figures {
                rtts,
                ping_cpu,
                events,
                stream_wall,
                stream_cpu,
                firsts,
            }
        }
    }
}

/// A server connection for the floors: the WebSocket upgrade written by hand on a blocking std
/// socket (TCP_NODELAY), server frames parsed from one buffer (they are unmasked and short:
/// 7-bit or 16-bit lengths).
struct FloorSocket {
    socket: std::net::TcpStream,
    buffer: Vec<u8>,
    start: usize,
    end: usize,
}

impl FloorSocket {
    fn connect(url: &str) -> FloorSocket {
        use std::io::{Read, Write};
        let address = url
            .strip_prefix("ws://")
            .and_then(|rest| rest.split('/').next())
            .expect("the ping floors need a ws://host:port/... URL");
        let mut socket = std::net::TcpStream::connect(address).expect("connect");
        socket.set_nodelay(true).expect("TCP_NODELAY");
        let upgrade = format!(
            "GET /v1/ws HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
             x-pie-identity: libpie/bench05-floor\r\n\r\n"
        );
        socket.write_all(upgrade.as_bytes()).expect("upgrade");
        let mut buffer = vec![0u8; 1 << 16];
        let mut end = 0usize;
        // The upgrade response: up to the blank line (the server sends nothing more before a
        // request).
        while !buffer[..end].windows(4).any(|w| w == b"\r\n\r\n") {
            let n = socket.read(&mut buffer[end..]).expect("upgrade response");
            assert!(n > 0, "closed during the upgrade");
            end += n;
        }
        assert!(buffer.starts_with(b"HTTP/1.1 101"), "upgrade refused");
        FloorSocket {
            socket,
            buffer,
            start: 0,
            end: 0,
        }
    }

    /// {"type": "ping", "corr_id": <u32>} in MessagePack, in a masked binary frame (zero mask).
    fn ping_frame(corr_id: u32) -> Vec<u8> {
        let mut body = vec![0x82, 0xa4];
        body.extend_from_slice(b"type");
        body.push(0xa4);
        body.extend_from_slice(b"ping");
        body.push(0xa7);
        body.extend_from_slice(b"corr_id");
        body.push(0xce);
        body.extend_from_slice(&corr_id.to_be_bytes());
        let mut out = vec![0x82, 0x80 | body.len() as u8, 0, 0, 0, 0];
        out.extend_from_slice(&body);
        out
    }

    /// The opcode of the whole frame at the front of the buffer, consumed; None if the
    /// buffer does not hold one.
    fn take_buffered_frame(&mut self) -> Option<u8> {
        let (start, end, buffer) = (self.start, self.end, &self.buffer);
        if end - start < 2 {
            return None;
        }
        let (opcode, len7) = (buffer[start] & 0x0f, (buffer[start + 1] & 0x7f) as usize);
        let (header, len) = match len7 {
            126 if end - start >= 4 => (
                4,
                u16::from_be_bytes([buffer[start + 2], buffer[start + 3]]) as usize,
            ),
            126 => return None,
            n => (2, n),
        };
        if end - start < header + len {
            return None;
        }
        self.start += header + len;
        Some(opcode)
    }

    /// Blocks until the next binary frame (the text `turn_done` frames are skipped).
    fn next_binary(&mut self) {
        use std::io::Read;
        loop {
            while let Some(opcode) = self.take_buffered_frame() {
                if opcode == 2 {
                    return;
                }
            }
            if self.start == self.end {
                (self.start, self.end) = (0, 0);
            }
            let n = self
                .socket
                .read(&mut self.buffer[self.end..])
                .expect("read");
            assert!(n > 0, "server closed the connection");
            self.end += n;
        }
    }

    /// Whether a whole binary frame is buffered (the next `next_binary` needs no read).
    fn holds_binary_frame(&mut self) -> bool {
        let (start, end) = (self.start, self.end);
        let binary = loop {
            match self.take_buffered_frame() {
                Some(2) => break true,
                Some(_) => continue,
                None => break false,
            }
        };
        (self.start, self.end) = (start, end);
        binary
    }
}

/// Runs `pings` round trips after 50 warm-up ones and prints the floor's JSON line.
fn measure_floor(name: &str, args: &Args, mut one_ping: impl FnMut(u32)) {
    for corr_id in 1..=50 {
        one_ping(corr_id);
    }
    let mut rtts = Vec::with_capacity(args.pings);
    let cpu = cpu_seconds();
    for corr_id in 0..args.pings as u32 {
        let t = Instant::now();
        one_ping(1000 + corr_id);
        rtts.push(t.elapsed().as_secs_f64());
    }
    let ping_cpu = cpu_seconds() - cpu;
    println!(
        "{{\"client\": \"{name}\", \"pings\": {}, \"ping_median_us\": {:.3}, \"ping_cpu_us\": {:.3}}}",
        rtts.len(),
        median(&mut rtts) * 1e6,
        ping_cpu / args.pings as f64 * 1e6
    );
}

/// The floor of a ping's client CPU: one thread writes a pre-encoded ping frame and reads
/// frames until the binary reply. No runtime, no decoding beyond the frame header. Prints the
/// ping figures only.
fn ping_floor(args: &Args) {
    use std::io::Write;
    let mut floor = FloorSocket::connect(&args.url);
    measure_floor("ping-floor", args, |corr_id| {
        floor
            .socket
            .write_all(&FloorSocket::ping_frame(corr_id))
            .expect("write");
        floor.next_binary();
    });
}

/// The same floor for a client with a network thread of its own, as libpie (and any library
/// whose calls return while its own thread reads the socket) is built: the caller writes the
/// frame and sleeps on a condition variable; the network thread blocks in `read`, and wakes the
/// caller when it has read the reply and no further reply is buffered. What it spends
/// over `ping_floor` is the thread hand-off alone.
fn ping_floor_threaded(args: &Args) {
    use std::io::Write;
    use std::sync::{Arc, Condvar, Mutex};
    let mut reading = FloorSocket::connect(&args.url);
    let mut writer = reading.socket.try_clone().expect("clone the socket");
    // (replies read, the caller sleeps)
    let shared = Arc::new((Mutex::new((0u64, false)), Condvar::new()));
    let network = Arc::clone(&shared);
    std::thread::Builder::new()
        .name("floor-network".into())
        .spawn(move || {
            let mut unpublished = 0u64;
            loop {
                reading.next_binary();
                unpublished += 1;
                if !reading.holds_binary_frame() {
                    let mut st = network.0.lock().unwrap();
                    st.0 += unpublished;
                    unpublished = 0;
                    if st.1 {
                        network.1.notify_one();
                    }
                }
            }
        })
        .expect("spawn the network thread");
    let mut sent = 0u64;
    measure_floor("ping-floor-threaded", args, |corr_id| {
        writer
            .write_all(&FloorSocket::ping_frame(corr_id))
            .expect("write");
        sent += 1;
        let mut st = shared.0.lock().unwrap();
        while st.0 < sent {
            st.1 = true;
            st = shared.1.wait(st).unwrap();
            st.1 = false;
        }
    });
    // The network thread blocks in `read` until the process exits.
}

fn main() {
    let args = parse_args();
    if args.ping_floor {
        ping_floor(&args);
        return;
    }
    if args.ping_floor_threaded {
        ping_floor_threaded(&args);
        return;
    }
    if args.c_api {
        println!("{}", c_api::run(&args).json(&args));
        return;
    }
    let runtime = if args.current_thread {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
    }
    .expect("runtime");
    let line = runtime.block_on(async {
        tokio::time::timeout(LIMIT, run(args))
            .await
            .expect("bench05 timed out")
    });
    println!("{line}");
}
