//! libpie's side of scripts/pie05/bench05.sh: the Rust client core against a real
//! pie-server 0.5.2, measured exactly as scripts/pie05/bench05_client.py measures the Python
//! clients, printing the same JSON object.
//!
//!     cargo bench --bench bench05_client -- --url ws://127.0.0.1:PORT/v1/ws \
//!         [--pings N] [--events N] [--launches N]
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
            "--bench" => {} // added by `cargo bench`
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(!args.url.is_empty(), "--url is required");
    args
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

    format!(
        "{{\"client\": \"libpie\", \"pings\": {}, \"ping_median_us\": {:.3}, \"ping_p99_us\": {:.3}, \
         \"ping_cpu_us\": {:.3}, \"events\": {}, \"events_per_s\": {:.1}, \"event_cpu_us\": {:.4}, \
         \"launches\": {}, \"first_output_median_ms\": {:.3}, \"first_output_p90_ms\": {:.3}}}",
        rtts.len(),
        median(&mut rtts) * 1e6,
        percentile(&mut rtts, 0.99) * 1e6,
        ping_cpu / args.pings as f64 * 1e6,
        events,
        events as f64 / stream_wall,
        stream_cpu / events.max(1) as f64 * 1e6,
        firsts.len(),
        median(&mut firsts) * 1e3,
        percentile(&mut firsts, 0.9) * 1e3,
    )
}

fn main() {
    let args = parse_args();
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
