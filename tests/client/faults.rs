//! Connection loss, timeouts, garbage from the server, queue overflow, unknown event codes,
//! corr_id wrapping, close().

use crate::support::*;
use pie::{ClientConfig, ErrorKind, InstanceEvent};
use pie_sim::Garbage;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn short_timeout(ms: u64) -> ClientConfig {
    ClientConfig {
        request_timeout: Duration::from_millis(ms),
        ..ClientConfig::default()
    }
}

#[tokio::test]
async fn requests_without_reply_time_out_and_leave_nothing_behind() {
    let sim = sim();
    let c = client_with(&sim, short_timeout(300)).await;
    // Unknown query subjects get no reply (Q11).
    let t = Instant::now();
    let e = err(c.query("no_such_subject", "").await);
    assert_eq!(e.kind(), ErrorKind::Timeout);
    assert!(t.elapsed() >= Duration::from_millis(300) && t.elapsed() < Duration::from_secs(3));
    assert_eq!(c.debug_counts().pending, 0);
    c.ping().await.unwrap();
    // A silent (hung) server: everything times out; the pending entries are removed.
    sim.faults().set_silence(true);
    let (a, b) = tokio::join!(c.ping(), c.list_instances());
    assert_eq!(kind(a), ErrorKind::Timeout);
    assert_eq!(kind(b), ErrorKind::Timeout);
    assert_eq!(c.debug_counts().pending, 0);
    assert!(!c.is_closed());
}

#[tokio::test]
async fn blob_upload_hang_q1_ends_in_timeouts() {
    let sim = sim();
    sim.faults().set_q1_blob_hang(true);
    let c = client_with(&sim, short_timeout(300)).await;
    let echo = c
        .launch_instance_from_registry("std/blob-echo@0.1.0", vec![], false)
        .await
        .unwrap();
    // The reply to the final chunk still arrives; afterwards the connection is dead (Q1).
    echo.upload_blob(b"abc").await.unwrap();
    assert_eq!(kind(c.ping().await), ErrorKind::Timeout);
    assert_eq!(
        kind(c.launch_instance("x", vec![], false).await),
        ErrorKind::Timeout
    );
    assert_eq!(c.debug_counts().pending, 0);
}

#[tokio::test]
async fn wedged_launch_times_out_and_frees_the_launch_slot() {
    let sim = sim();
    let c = client_with(&sim, short_timeout(200)).await;
    sim.faults().set_wedge_launches(true);
    let h = upload_script(&c, "complete").await;
    let (a, b) = tokio::join!(
        c.launch_instance(&h, vec![], false),
        c.launch_instance(&h, vec![], false)
    );
    // The second launch waited for the first's slot, then timed out itself.
    assert_eq!(kind(a), ErrorKind::Timeout);
    assert_eq!(kind(b), ErrorKind::Timeout);
    assert_eq!(c.debug_counts().pending, 0);
}

#[tokio::test]
async fn server_killed_while_instance_streams() {
    let mut sim = sim();
    let c = client(&sim).await;
    let inst = c
        .launch_instance_from_registry("std/forever@0.1.0", args(&["--interval-ms", "2"]), false)
        .await
        .unwrap();
    for i in 1..=3 {
        assert_eq!(
            recv(&inst).await.unwrap(),
            InstanceEvent::Stdout(format!("tick {i}\n"))
        );
    }
    // Calls in flight that will never be answered.
    let c2 = c.clone();
    let q = tokio::spawn(async move { c2.query("no_such_subject", "").await });
    let c3 = c.clone();
    let closed = tokio::spawn(async move { c3.closed().await });
    // The query is in flight (registered, waiting for its reply) before the server goes.
    until(|| c.debug_counts().pending == 1).await;
    let t = Instant::now();
    sim.stop();
    let prompt = slack(Duration::from_secs(1));
    let e = tokio::time::timeout(prompt, q)
        .await
        .expect("pending call failed within 1 s")
        .unwrap()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionClosed);
    let why = tokio::time::timeout(prompt, closed).await.unwrap().unwrap();
    assert_eq!(why.kind(), ErrorKind::ConnectionClosed);
    assert!(t.elapsed() < prompt, "{:?}", t.elapsed());
    // Buffered ticks first, then ConnectionClosed, and it stays that way.
    let mut ticks = 0;
    let end = loop {
        match inst.recv().await {
            Ok(InstanceEvent::Stdout(s)) => {
                assert!(s.starts_with("tick "));
                ticks += 1;
                assert!(ticks < 10_000);
            }
            Ok(other) => panic!("unexpected {other:?}"),
            Err(e) => break e,
        }
    };
    assert_eq!(end.kind(), ErrorKind::ConnectionClosed);
    assert_eq!(kind(inst.try_recv()), ErrorKind::ConnectionClosed);
    assert!(c.is_closed());
    assert_eq!(kind(c.ping().await), ErrorKind::ConnectionClosed);
    assert_eq!(kind(inst.send("x").await), ErrorKind::ConnectionClosed);
    let d = c.debug_counts();
    assert_eq!((d.pending, d.instances), (0, 0));
}

#[tokio::test]
async fn server_killed_mid_upload() {
    let sim = sim();
    let c = client(&sim).await;
    let mut program = pie_sim::script_program("complete");
    program.extend(pie_sim::custom_section("pad", &vec![0u8; 32 << 20]));
    let chunks_seen = Arc::new(AtomicUsize::new(0));
    let seen = chunks_seen.clone();
    let sim = Arc::new(std::sync::Mutex::new(Some(sim)));
    let sim2 = sim.clone();
    let progress = move |_: u64, _: u64| {
        if seen.fetch_add(1, Ordering::SeqCst) == 2 {
            // Abrupt close of every connection (no Close frame), like a killed server.
            if let Some(s) = sim2.lock().unwrap().as_ref() {
                s.kill_connections();
            }
        }
    };
    let t = Instant::now();
    let e = err(c
        .upload_program_with_progress(&program, Some(&progress))
        .await);
    assert_eq!(e.kind(), ErrorKind::ConnectionClosed, "{e}");
    assert!(t.elapsed() < Duration::from_secs(10));
    let n = chunks_seen.load(Ordering::SeqCst);
    assert!(
        (3..pie::wire::chunk_count(program.len()) as usize).contains(&n),
        "{n}"
    );
    assert_eq!(c.debug_counts().pending, 0);
    drop(sim);
}

#[tokio::test]
async fn close_is_prompt_idempotent_and_fails_everything_with_client_closed() {
    let sim = sim();
    let c = client(&sim).await;
    let h = upload_script(&c, "stdout one\nstdout two\nforever").await;
    let inst = c.launch_instance(&h, vec![], false).await.unwrap();
    // Let both outputs arrive, but do not consume them.
    until(|| inst.pending_events() == 2).await;
    let c2 = c.clone();
    let pending = tokio::spawn(async move { c2.query("no_such_subject", "").await });
    until(|| c.debug_counts().pending == 1).await;
    let t = Instant::now();
    c.close().await.unwrap();
    assert!(
        t.elapsed() < slack(Duration::from_millis(1500)),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(
        pending.await.unwrap().unwrap_err().kind(),
        ErrorKind::ClientClosed
    );
    assert_eq!(
        recv(&inst).await.unwrap(),
        InstanceEvent::Stdout("one".into())
    );
    assert_eq!(
        recv(&inst).await.unwrap(),
        InstanceEvent::Stdout("two".into())
    );
    assert_eq!(kind(inst.recv().await), ErrorKind::ClientClosed);
    assert!(c.is_closed());
    assert_eq!(c.closed().await.kind(), ErrorKind::ClientClosed);
    c.close().await.unwrap();
    assert_eq!(kind(c.ping().await), ErrorKind::ClientClosed);
    assert_eq!(
        kind(c.upload_program(&pie_sim::script_program("x")).await),
        ErrorKind::ClientClosed
    );
}

#[tokio::test]
async fn close_does_not_hang_on_a_silent_server() {
    let sim = sim();
    let c = client(&sim).await;
    sim.faults().set_silence(true);
    let t = Instant::now();
    c.close().await.unwrap();
    assert!(
        t.elapsed() < slack(Duration::from_millis(2500)),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(c.closed().await.kind(), ErrorKind::ClientClosed);
}

#[tokio::test]
async fn garbage_from_the_server_is_ignored() {
    let sim = sim();
    let c = client(&sim).await;
    let chat = c
        .launch_instance_from_registry("std/chat@0.1.0", vec![], false)
        .await
        .unwrap();
    for g in [
        Garbage::Binary(vec![0xc1, 0x00, 0xff]),
        Garbage::Binary(Vec::new()),
        Garbage::Text("hello".into()),
        Garbage::UnknownType,
        Garbage::ReplyForUnknownCorrId(4_000_000_000),
        Garbage::EventForUnknownInstance,
        Garbage::BlobWithWrongHash(chat.id().to_string()),
        Garbage::BlobChunkOutOfRange(chat.id().to_string()),
    ] {
        sim.inject(g);
    }
    c.ping().await.unwrap();
    let d = c.debug_counts();
    assert!(d.undecodable_frames >= 3, "{d:?}");
    assert!(d.ignored_frames >= 1, "{d:?}");
    assert!(d.stray_replies >= 1, "{d:?}");
    assert!(d.unrouted_events >= 2, "{d:?}");
    assert!(d.dropped_blobs >= 2, "{d:?}");
    assert_eq!(d.blob_assemblies, 0);
    // Nothing reached the instance; it still works.
    assert_eq!(chat.pending_events(), 0);
    chat.send("bye").await.unwrap();
    assert_eq!(
        collect(&chat).await,
        vec![InstanceEvent::Completed("bye".into())]
    );
}

#[tokio::test]
async fn unknown_event_codes_end_the_stream_without_harm() {
    let sim = sim();
    let c = client(&sim).await;
    let inst = c
        .launch_instance_from_registry("std/unknown-event@0.1.0", vec![], false)
        .await
        .unwrap();
    assert_eq!(
        collect(&inst).await,
        vec![
            InstanceEvent::Stdout("about to send event code 9\n".into()),
            InstanceEvent::Unknown {
                code: 9,
                message: "simulated unknown event".into()
            }
        ]
    );
    assert_eq!(kind(inst.recv().await), ErrorKind::StreamEnded);
    // The fault variant rewrites terminal codes; the client keeps working.
    sim.faults().set_unknown_event_code(true);
    let h = upload_script(&c, "complete ok").await;
    let inst = c.launch_instance(&h, vec![], false).await.unwrap();
    assert_eq!(
        collect(&inst).await,
        vec![InstanceEvent::Unknown {
            code: 9,
            message: "ok".into()
        }]
    );
    c.ping().await.unwrap();
    assert_eq!(c.debug_counts().instances, 0);
}

#[tokio::test]
async fn overflow_marker_at_the_point_of_loss() {
    let sim = sim();
    let config = ClientConfig {
        instance_queue_limit_bytes: 1000,
        ..ClientConfig::default()
    };
    let c = client_with(&sim, config).await;
    let inst = c
        .launch_instance_from_registry("std/flood@0.1.0", args(&["--count", "2000"]), false)
        .await
        .unwrap();
    // Do not consume until the instance has finished and everything has arrived.
    until(|| sim.instance_count() == 0).await;
    c.ping().await.unwrap();
    let events = collect(&inst).await;
    let mut next = 0u64;
    let mut bytes = 0;
    let mut dropped = None;
    for ev in &events {
        match ev {
            InstanceEvent::Stdout(s) => {
                assert!(
                    dropped.is_none(),
                    "no output after the marker (nothing was consumed)"
                );
                assert_eq!(*s, format!("{next}\n"));
                next += 1;
                bytes += s.len();
            }
            InstanceEvent::Overflow { dropped: d } => dropped = Some(*d),
            InstanceEvent::Completed(s) => assert_eq!(s, "2000"),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(bytes <= 1000 && bytes > 900, "{bytes}");
    assert_eq!(next + dropped.unwrap(), 2000);
    assert!(matches!(events.last(), Some(InstanceEvent::Completed(_))));
    assert_eq!(events.len() as u64, next + 2);
}

#[tokio::test]
async fn corr_ids_wrap_around() {
    let sim = sim();
    let c = client(&sim).await;
    let h = upload_script(&c, "stdout x\ncomplete y").await;
    c.debug_set_next_corr_id(u32::MAX - 3);
    for _ in 0..4 {
        c.ping().await.unwrap();
    }
    let inst = c.launch_instance(&h, vec![], false).await.unwrap();
    assert_eq!(collect(&inst).await.len(), 2);
    let pings: Vec<_> = (0..16).map(|_| c.ping()).collect();
    for r in futures_util::future::join_all(pings).await {
        r.unwrap();
    }
    assert_eq!(c.debug_counts().pending, 0);
}

#[tokio::test]
async fn interleaved_uploads_fail_cleanly_and_stray_replies_are_ignored() {
    // One program-upload slot per connection (Q7): concurrent multi-chunk uploads corrupt each
    // other on the server and produce several failure replies per corr_id.
    let sim = sim();
    let c = client(&sim).await;
    let programs: Vec<Vec<u8>> = (0..3)
        .map(|i| {
            let mut p = pie_sim::script_program(&format!("complete {i}"));
            p.extend(pie_sim::custom_section("pad", &vec![i as u8; 4 * 262_144]));
            p
        })
        .collect();
    let results =
        futures_util::future::join_all(programs.iter().map(|p| c.upload_program(p))).await;
    for r in &results {
        if let Err(e) = r {
            assert_eq!(e.kind(), ErrorKind::Server, "{e}");
        }
    }
    // Whatever happened, the client is consistent and later requests get their own replies.
    for _ in 0..10 {
        c.ping().await.unwrap();
    }
    assert_eq!(c.query("program_exists", "nope").await.unwrap(), "false");
    assert_eq!(c.debug_counts().pending, 0);
    if results.iter().any(|r| r.is_err()) {
        assert!(c.debug_counts().stray_replies >= 1);
    }
}

#[tokio::test]
async fn dropped_instance_handles_are_forgotten() {
    let sim = sim();
    let c = client(&sim).await;
    let inst = c
        .launch_instance_from_registry("std/forever@0.1.0", args(&["--interval-ms", "1"]), false)
        .await
        .unwrap();
    recv(&inst).await.unwrap();
    assert_eq!(c.debug_counts().instances, 1);
    drop(inst);
    // The next frame for it makes the reader drop the route.
    until(|| c.debug_counts().instances == 0).await;
}

#[tokio::test]
async fn dropping_the_last_handle_closes_the_connection() {
    let sim = sim();
    let c = client(&sim).await;
    let inst = c
        .launch_instance_from_registry("std/chat@0.1.0", vec![], false)
        .await
        .unwrap();
    until(|| sim.connection_count() == 1).await;
    // An attached instance keeps the connection alive.
    drop(c);
    inst.send("still here").await.unwrap();
    assert_eq!(
        recv(&inst).await.unwrap(),
        InstanceEvent::Message("you said: still here".into())
    );
    drop(inst);
    until(|| sim.connection_count() == 0).await;
}
