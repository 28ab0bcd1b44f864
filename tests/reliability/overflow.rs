//! A slow host: an instance whose events are not read must not make the client use unbounded
//! memory. Its queue is capped at `instance_queue_limit_bytes`; what does not fit is replaced
//! by an explicit `Overflow { dropped }` event; terminal events always get through; other
//! instances and request replies are not delayed by the unread one.

use crate::support::*;
use pie::{ClientConfig, ErrorKind, InstanceEvent};
use std::time::{Duration, Instant};

const LIMIT: usize = 1000;

fn limited() -> ClientConfig {
    let mut c = short(2000);
    c.instance_queue_limit_bytes = LIMIT;
    c
}

fn payload(e: &InstanceEvent) -> usize {
    match e {
        InstanceEvent::Stdout(s) | InstanceEvent::Stderr(s) | InstanceEvent::Message(s) => s.len(),
        InstanceEvent::Blob(b) => b.len(),
        _ => 0,
    }
}

#[test]
fn unread_instance_overflows_explicitly_and_does_not_delay_others() {
    let sim = sim();
    let mut flood = String::new();
    for i in 0..2000 {
        flood.push_str(&format!("stdout flood line {i:05}\n")); // 16 bytes each
    }
    flood.push_str("complete flooded");
    let flood = program(&sim, &flood);
    let chat = program(&sim, "stdout ready\nrecv\nrecv\ncomplete bye");
    rt().block_on(async {
        let c = login(&sim, limited()).await;
        let slow = c.launch_instance(&flood, vec![], false).await.unwrap();
        let fast = c.launch_instance(&chat, vec![], false).await.unwrap();
        // While the flood arrives and nobody reads it, the other instance and replies flow.
        let mut worst = Duration::ZERO;
        for round in 0..20 {
            let t = Instant::now();
            c.ping().await.unwrap();
            worst = worst.max(t.elapsed());
            if round == 0 {
                assert_eq!(
                    within(prompt(), "fast", fast.recv()).await.0.unwrap(),
                    InstanceEvent::Stdout("ready".into())
                );
            }
        }
        fast.send("one").await.unwrap();
        assert_eq!(
            within(prompt(), "echo", fast.recv()).await.0.unwrap(),
            InstanceEvent::Stdout("one".into())
        );
        assert!(
            worst < slack(Duration::from_millis(200)),
            "a ping took {worst:?}"
        );

        // Wait until the flood has completely arrived (its terminal event is queued).
        eventually(deadline(), "flood finished", || {
            c.debug_counts().instances == 1 // only `fast` is still routed
        })
        .await;
        // Memory stays bounded: the queue holds at most LIMIT payload bytes of lines.
        assert!(
            slow.pending_events() <= LIMIT / 16 + 3,
            "{}",
            slow.pending_events()
        );

        let mut kept = 0u64;
        let mut dropped = 0u64;
        let mut next_line = 0u64;
        let mut bytes = 0;
        let evs = recv_until(&slow, prompt(), |e| e.is_terminal()).await;
        for e in &evs {
            bytes += payload(e);
            match e {
                InstanceEvent::Stdout(s) => {
                    // Lines that are kept are in order; gaps are exactly the dropped ones.
                    let n: u64 = s["flood line ".len()..].parse().unwrap();
                    assert!(n >= next_line, "out of order: {n} after {next_line}");
                    next_line = n + 1;
                    kept += 1;
                }
                InstanceEvent::Overflow { dropped: d } => {
                    assert!(*d > 0);
                    dropped += d;
                }
                InstanceEvent::Completed(t) => assert_eq!(t, "flooded"),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(bytes <= LIMIT, "{bytes} queued payload bytes");
        assert!(dropped > 0, "the flood must have overflowed");
        assert_eq!(
            kept + dropped,
            2000,
            "every line is either delivered or counted"
        );
        assert!(matches!(evs.last(), Some(InstanceEvent::Completed(_))));
        assert_eq!(
            slow.recv().await.unwrap_err().kind(),
            ErrorKind::StreamEnded
        );
        fast.send("two").await.unwrap();
        let rest = recv_until(&fast, prompt(), |e| e.is_terminal()).await;
        assert_eq!(
            rest,
            vec![
                InstanceEvent::Stdout("two".into()),
                InstanceEvent::Completed("bye".into())
            ]
        );
    });
}

/// A queue that overflowed accepts events again once the host has drained it.
#[test]
fn overflowed_queue_recovers_after_draining() {
    let sim = sim();
    let mut script = String::new();
    for _ in 0..200 {
        script.push_str("stdout 0123456789\n");
    }
    script.push_str("recv\nrecv\ncomplete end");
    let hash = program(&sim, &script);
    rt().block_on(async {
        let c = login(&sim, limited()).await;
        let inst = c.launch_instance(&hash, vec![], false).await.unwrap();
        eventually(deadline(), "overflowed", || {
            // 1000 / 10 bytes = 100 lines fit, then one Overflow marker.
            inst.pending_events() == 101
        })
        .await;
        // The first 100 lines, then the marker: nothing before the limit was dropped.
        for _ in 0..100 {
            assert_eq!(
                inst.try_recv().unwrap(),
                Some(InstanceEvent::Stdout("0123456789".into()))
            );
        }
        // Drain the rest while the flood may still be arriving (the queue has room again, so
        // later lines can be kept): every one of the 200 is delivered or counted.
        let (mut kept, mut dropped) = (100u64, 0u64);
        let start = std::time::Instant::now();
        while kept + dropped < 200 {
            assert!(
                start.elapsed() < slack(prompt() * 3),
                "{kept} kept, {dropped} dropped"
            );
            match inst.try_recv().unwrap() {
                Some(InstanceEvent::Overflow { dropped: d }) => dropped += d,
                Some(InstanceEvent::Stdout(_)) => kept += 1,
                Some(other) => panic!("unexpected {other:?}"),
                None => tokio::time::sleep(Duration::from_millis(2)).await,
            }
        }
        assert!(dropped >= 1, "the queue overflowed");
        assert_eq!(inst.try_recv().unwrap(), None);
        inst.send("after drain").await.unwrap();
        assert_eq!(
            within(prompt(), "after drain", inst.recv())
                .await
                .0
                .unwrap(),
            InstanceEvent::Stdout("after drain".into())
        );
    });
}

/// A blob larger than the whole limit cannot be queued: it is dropped while it is being
/// reassembled (memory stays bounded) and reported as one Overflow event; the rest of the
/// stream is intact.
#[test]
fn blob_larger_than_the_limit_is_an_overflow() {
    let sim = sim();
    let big = "x".repeat(600 * 1024); // 3 download chunks
    let hash = program(
        &sim,
        &format!("stdout a\nblob {big}\nblob small\ncomplete end"),
    );
    rt().block_on(async {
        let c = login(&sim, limited()).await;
        let inst = c.launch_instance(&hash, vec![], false).await.unwrap();
        let evs = recv_until(&inst, prompt() * 3, |e| e.is_terminal()).await;
        assert_eq!(
            evs,
            vec![
                InstanceEvent::Stdout("a".into()),
                InstanceEvent::Overflow { dropped: 1 },
                InstanceEvent::Blob(b"small".to_vec()),
                InstanceEvent::Completed("end".into()),
            ]
        );
        assert_eq!(c.debug_counts().blob_assemblies, 0);
    });
}
