//! Latency with the server's Nagle + our delayed ACK (PROTOCOL.md §16): with TCP_QUICKACK
//! re-armed before every read, the second small frame of a burst is not held back ~40 ms.

use crate::support::*;
use pie::ClientConfig;
use std::time::{Duration, Instant};

async fn median_first_output(quickack: bool, runs: usize) -> Duration {
    let sim = sim();
    let config = ClientConfig {
        tcp_quickack: quickack,
        ..ClientConfig::default()
    };
    let c = client_with(&sim, config).await;
    let h = upload_script(&c, "stdout x\ncomplete").await;
    let mut samples = Vec::new();
    for _ in 0..runs {
        let inst = c.launch_instance(&h, vec![], false).await.unwrap();
        // The launch result and the first stdout are two small frames back to back: the
        // second is what Nagle holds back until our ACK.
        let t = Instant::now();
        recv(&inst).await.unwrap();
        samples.push(t.elapsed());
        collect(&inst).await;
    }
    samples.sort();
    samples[runs / 2]
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quickack_removes_the_delayed_ack_stall() {
    let on = median_first_output(true, 15).await;
    let off = median_first_output(false, 15).await;
    println!("launch result -> first stdout, median: quickack on {on:?}, off {off:?}");
    // Both halves must show, or the test proves nothing: without QUICKACK the second frame
    // waits for Linux's delayed ACK (>= 40 ms; the simulator keeps Nagle on, like the real
    // server) — if it does not, the simulator no longer reproduces the stall; with QUICKACK
    // the stall is gone — if it is not, the option is a no-op. Relative, so a loaded machine
    // (slower everywhere) does not fail it.
    assert!(
        off >= Duration::from_millis(30),
        "quickack off: {off:?} — the delayed-ACK stall is not reproduced (on: {on:?})"
    );
    assert!(
        on * 4 < off,
        "quickack on: {on:?} is not far below off: {off:?} — quickack had no effect"
    );
}
