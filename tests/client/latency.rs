//! Latency with the server's Nagle + our delayed ACK (PROTOCOL.md §16): with TCP_QUICKACK
//! re-armed before every read, the second small frame of a burst is not held back ~40 ms.

use crate::support::*;
use pie::ClientConfig;
use std::time::{Duration, Instant};

/// Launch result -> first stdout, for `runs` launches, sorted.
async fn first_output_delays(quickack: bool, runs: usize) -> Vec<Duration> {
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
    samples
}

/// A delay that can only be the delayed ACK (>= 40 ms on Linux); far above a loopback reply.
const STALL: Duration = Duration::from_millis(30);

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quickack_removes_the_delayed_ack_stall() {
    const RUNS: usize = 20;
    let on = first_output_delays(true, RUNS).await;
    let off = first_output_delays(false, RUNS).await;
    let stalls = |s: &[Duration]| s.iter().filter(|d| **d >= STALL).count();
    println!(
        "launch result -> first stdout, median: quickack on {:?} ({} of {RUNS} stalled), \
         off {:?} ({} of {RUNS} stalled)",
        on[RUNS / 2],
        stalls(&on),
        off[RUNS / 2],
        stalls(&off)
    );
    // Both halves must show, or the test proves nothing. Without QUICKACK the second frame
    // waits for Linux's delayed ACK (the simulator keeps Nagle on, like the real server): if no
    // launch stalls, the simulator no longer reproduces it. (Not every launch stalls: when
    // the simulator is slow to write, both frames leave in one segment, so only "some" is
    // required.) With QUICKACK the stall is gone: if the typical launch still stalls, the
    // option is a no-op.
    assert!(
        stalls(&off) >= 1,
        "quickack off: no launch stalled ({off:?}) — the delayed-ACK stall is not reproduced"
    );
    assert!(
        on[RUNS / 2] < STALL,
        "quickack on: median {:?} — quickack had no effect ({on:?})",
        on[RUNS / 2]
    );
}
