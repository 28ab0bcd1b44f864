//! No thread or memory leaks across repeated server failures: the Rust core on a host runtime,
//! and the C API, whose hidden runtime must be gone (no libpie thread left) once the host has
//! freed everything. One test per binary section, run one after the other (thread counts are
//! per process, so nothing else may run concurrently in this binary).

use crate::capi;
use crate::support::*;
use pie::ffi::PieStatus;
use std::time::{Duration, Instant};

/// One failure scenario per repetition: connect, launch 20 streaming instances, receive, kill
/// the server's connections, observe the errors, drop everything.
async fn core_round(sim: &pie_sim::Simulator, hash: &str) {
    let c = login(sim, short(5000)).await;
    let mut insts = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..20 {
        let i = c.launch_instance(hash, vec![], false).await.unwrap();
        recv_until(&i, prompt(), |_| true).await;
        ids.push(i.id().to_string());
        insts.push(i);
    }
    // A request in flight and receivers waiting when the server dies.
    sim.faults().set_silence(true);
    let pending = tokio::spawn({
        let c = c.clone();
        async move { c.list_instances().await }
    });
    let waiters: Vec<_> = insts
        .into_iter()
        .map(|i| tokio::spawn(async move { while i.recv().await.is_ok() {} }))
        .collect();
    tokio::time::sleep(Duration::from_millis(20)).await;
    sim.kill_connections();
    sim.faults().set_silence(false);
    within(prompt(), "pending call", pending)
        .await
        .0
        .unwrap()
        .unwrap_err();
    for w in waiters {
        within(prompt(), "waiter", w).await.0.unwrap();
    }
    within(prompt(), "closed", c.closed()).await;
    drop(c);
    cleanup(sim, ids).await;
}

/// The simulator runs in this process: terminate the round's (now detached) instances so its
/// memory does not grow with them and RSS measures libpie alone.
async fn cleanup(sim: &pie_sim::Simulator, ids: Vec<String>) {
    let c = login(sim, short(5000)).await;
    for id in ids {
        c.terminate_instance(&id).await.unwrap();
    }
    c.close().await.unwrap();
    assert_eq!(sim.instance_count(), 0);
}

fn c_round(sim: &pie_sim::Simulator, hash: &str, cleaner: &tokio::runtime::Runtime) {
    let c = capi::connect(&sim.url(), 5000, 0).unwrap();
    let mut insts = Vec::new();
    for _ in 0..10 {
        let i = capi::launch(c, hash).unwrap();
        capi::recv(i, 2000).unwrap();
        insts.push(i);
    }
    let blocked: Vec<_> = insts
        .iter()
        .map(|&i| {
            std::thread::spawn(move || loop {
                // Drain whatever still arrives; the end of the stream is what we wait for.
                if let Err(f) = capi::recv(i, -1) {
                    return f;
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(20));
    sim.kill_connections();
    for t in blocked {
        assert_eq!(t.join().unwrap().0, PieStatus::ConnectionClosed);
    }
    let ids: Vec<String> = insts
        .iter()
        .map(|i| capi::c_str(unsafe { capi::pie_instance_id(i.0) }))
        .collect();
    for i in insts {
        capi::free_instance(i);
    }
    capi::free_client(c);
    cleaner.block_on(cleanup(sim, ids));
}

/// Under a sanitizer (scripts/tsan.sh sets PIE_SANITIZER) RSS mostly measures the sanitizer's
/// shadow memory and allocator, so only thread counts are checked there.
fn rss_meaningful() -> bool {
    std::env::var_os("PIE_SANITIZER").is_none()
}

pub fn no_thread_or_memory_leak_across_failures() {
    let reps: usize = std::env::var("PIE_LEAK_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let sim = sim();
    let hash = program(&sim, "stdout tick\nsleep 50\nstdout tick\nforever");
    // Let the simulator's runtime start all its threads before counting.
    std::thread::sleep(Duration::from_millis(100));

    // --- Rust core on a host runtime ---
    let runtime = rt();
    runtime.block_on(core_round(&sim, &hash)); // warm-up: lazily started threads, allocator
    runtime.block_on(core_round(&sim, &hash));
    let threads0 = thread_count();
    let rss0 = rss_kib();
    let start = Instant::now();
    let mut rss_half = 0;
    for n in 0..reps {
        runtime.block_on(core_round(&sim, &hash));
        assert!(
            thread_count() <= threads0,
            "threads grew: {} > {threads0}",
            thread_count()
        );
        if n == reps / 2 {
            rss_half = rss_kib();
        }
    }
    let rss1 = rss_kib();
    // Flat across repetitions: the second half of the rounds adds (almost) nothing.
    assert!(
        !rss_meaningful() || rss1 < rss_half + 1024,
        "RSS kept growing: {rss_half} KiB -> {rss1} KiB"
    );
    eprintln!(
        "core: {reps} rounds in {:?}; threads {threads0}; RSS {rss0} -> {rss_half} -> {rss1} KiB",
        start.elapsed()
    );
    assert!(
        !rss_meaningful() || rss1 < rss0 + 16 * 1024,
        "RSS grew from {rss0} KiB to {rss1} KiB"
    );
    drop(runtime);

    // --- C API: the hidden runtime goes away with the last object ---
    let cleaner = rt(); // its threads belong to the baseline
    std::thread::sleep(Duration::from_millis(50));
    let base = thread_count();
    let names = thread_names();
    c_round(&sim, &hash, &cleaner); // warm-up
    assert_eq!(
        thread_count(),
        base,
        "a libpie thread survived pie_client_free: {names:?} -> {:?}",
        thread_names()
    );
    let rss0 = rss_kib();
    let start = Instant::now();
    let mut rss_half = 0;
    for n in 0..reps {
        c_round(&sim, &hash, &cleaner);
        assert_eq!(
            thread_count(),
            base,
            "a libpie thread survived pie_client_free"
        );
        if n == reps / 2 {
            rss_half = rss_kib();
        }
    }
    let rss1 = rss_kib();
    assert!(
        !rss_meaningful() || rss1 < rss_half + 1024,
        "RSS kept growing: {rss_half} KiB -> {rss1} KiB"
    );
    eprintln!(
        "C API: {reps} rounds in {:?}; threads {base} before and after; RSS {rss0} -> {rss_half} -> {rss1} KiB",
        start.elapsed()
    );
    assert!(
        !rss_meaningful() || rss1 < rss0 + 16 * 1024,
        "RSS grew from {rss0} KiB to {rss1} KiB"
    );
}
