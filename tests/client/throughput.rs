//! Throughput under load (also correctness: nothing lost or reordered). Prints rates; the
//! numbers in debug builds are far below release builds.

use crate::support::*;
use pie::InstanceEvent;
use std::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_of_small_frames_arrives_complete_and_in_order() {
    const N: u64 = 100_000;
    let sim = sim();
    let c = client(&sim).await;
    let t = Instant::now();
    let inst = c
        .launch_instance_from_registry("std/flood@0.1.0", args(&["--count", &N.to_string()]), false)
        .await
        .unwrap();
    let mut next = 0u64;
    loop {
        match recv(&inst).await.unwrap() {
            InstanceEvent::Stdout(s) => {
                assert_eq!(s, format!("{next}\n"));
                next += 1;
            }
            InstanceEvent::Completed(s) => {
                assert_eq!(s, N.to_string());
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(next, N);
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{N} stdout frames in {secs:.3} s = {:.0} frames/s",
        N as f64 / secs
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_pings() {
    let sim = sim();
    let c = client(&sim).await;
    // Round trip, one at a time.
    let mut rtts = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        c.ping().await.unwrap();
        rtts.push(t.elapsed());
    }
    rtts.sort();
    // 64 in flight from 64 tasks sharing the client.
    const PER_TASK: usize = 200;
    let t = Instant::now();
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move {
                for _ in 0..PER_TASK {
                    c.ping().await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "ping: median RTT {:?}; 64 in flight: {:.0} pings/s",
        rtts[rtts.len() / 2],
        (64 * PER_TASK) as f64 / secs
    );
    assert_eq!(c.debug_counts().pending, 0);
}
