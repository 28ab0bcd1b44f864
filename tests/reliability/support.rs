//! Helpers shared by the reliability and stress tests (simulator, runtime, timing).
#![allow(dead_code)]

use pie::{Client, ClientConfig, Error, ErrorKind, Instance, InstanceEvent};
use pie_sim::{script_program, SimConfig, Simulator};
use std::future::Future;
use std::time::{Duration, Instant};

/// "Every pending call returns an error within 1 s" (issue 7): the bound these tests hold
/// libpie to, times `PIE_TIME_SCALE` (sanitizers and loaded machines are slower).
pub fn prompt() -> Duration {
    slack(Duration::from_secs(1))
}

/// How long to wait for something that must happen but carries no latency promise (an event,
/// a count reaching its value): generous, so a loaded machine never fails a test that is
/// right; times `PIE_TIME_SCALE`.
pub fn deadline() -> Duration {
    slack(Duration::from_secs(20))
}

/// A fresh simulator (authentication off, every fault off).
pub fn sim() -> Simulator {
    Simulator::start(SimConfig::default()).expect("simulator starts")
}

/// A runtime like a host application's: multi-threaded, two workers (the CI machine has 2 cores).
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Short timeouts so the tests that wait for them stay fast.
pub fn short(request_ms: u64) -> ClientConfig {
    ClientConfig {
        connect_timeout: Duration::from_millis(2000),
        request_timeout: Duration::from_millis(request_ms),
        ..ClientConfig::default()
    }
}

/// A latency bound, multiplied by `PIE_TIME_SCALE` (scripts/tsan.sh sets it: everything runs
/// several times slower under a sanitizer).
pub fn slack(base: Duration) -> Duration {
    let scale: u32 = std::env::var("PIE_TIME_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    base * scale.max(1)
}

/// Connected and identified (authentication is off in the simulator).
pub async fn login(sim: &Simulator, config: ClientConfig) -> Client {
    let c = Client::connect_with(&sim.url(), config)
        .await
        .expect("connect");
    c.authenticate("alice", None).await.expect("identify");
    c
}

/// Registers a scripted program directly in the simulator; returns its hash.
pub fn program(sim: &Simulator, script: &str) -> String {
    sim.add_program(script_program(script))
}

/// A script writing `n` stdout lines `line i` and then running until terminated.
pub fn lines_then_forever(n: usize) -> String {
    let mut s = String::new();
    for i in 0..n {
        s.push_str(&format!("stdout line {i}\n"));
    }
    s.push_str("forever");
    s
}

/// Awaits `fut`, failing the test if it takes longer than `limit`. Returns the output and the
/// time it took.
pub async fn within<F: Future>(limit: Duration, what: &str, fut: F) -> (F::Output, Duration) {
    let start = Instant::now();
    match tokio::time::timeout(limit, fut).await {
        Ok(v) => (v, start.elapsed()),
        Err(_) => panic!("{what}: not finished within {limit:?}"),
    }
}

/// Polls `cond` every 5 ms for up to `limit`.
pub async fn eventually(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < limit,
            "{what}: not reached within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Whether the error means "the connection is gone" (the server's doing, not ours).
pub fn is_closed(e: &Error) -> bool {
    e.kind() == ErrorKind::ConnectionClosed
}

/// Receives until `pred` matches, with an overall limit; returns everything received.
pub async fn recv_until(
    inst: &Instance,
    limit: Duration,
    mut pred: impl FnMut(&InstanceEvent) -> bool,
) -> Vec<InstanceEvent> {
    let mut got = Vec::new();
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ev = tokio::time::timeout(left, inst.recv())
            .await
            .unwrap_or_else(|_| panic!("no matching event within {limit:?}; got {got:?}"))
            .unwrap_or_else(|e| panic!("recv failed: {e}; got {got:?}"));
        let stop = pred(&ev);
        got.push(ev);
        if stop {
            return got;
        }
    }
}

/// Number of threads of this process. Panics when /proc cannot be read: a count of 0 would
/// make every leak check pass.
pub fn thread_count() -> usize {
    let count = std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task must be readable to count threads")
        .count();
    assert!(count > 0, "/proc/self/task lists no thread");
    count
}

/// Resident set size of this process in KiB. Panics when /proc/self/status has no VmRSS line:
/// a size of 0 would make every memory check pass.
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status")
        .expect("/proc/self/status must be readable to measure memory");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("/proc/self/status has a VmRSS line");
    assert!(kib > 0, "VmRSS of 0 kB");
    kib
}

/// Names of this process's threads (for leak diagnostics).
pub fn thread_names() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir("/proc/self/task")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| std::fs::read_to_string(e.path().join("comm")).ok())
                .map(|s| s.trim().to_string())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}
