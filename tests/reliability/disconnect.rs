//! The server goes away (killed, socket dropped, Close) at every stage of a session: every
//! pending call fails within 1 s, every waiting receiver wakes, events already received are
//! still delivered before the "connection closed" error, and nothing hangs.

use crate::support::*;
use pie::{Client, ErrorKind, InstanceEvent};
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A TCP server that accepts connections and immediately drops them (a server dying while the
/// client connects).
#[test]
fn connect_to_a_server_that_drops_the_socket_fails_promptly() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let t = std::thread::spawn(move || {
        for _ in 0..2 {
            let (mut s, _) = listener.accept().unwrap();
            // Read part of the HTTP upgrade, then vanish without an answer.
            let mut buf = [0u8; 64];
            let _ = s.read(&mut buf);
            drop(s);
        }
    });
    rt().block_on(async {
        for _ in 0..2 {
            let url = format!("ws://{addr}");
            let (r, took) =
                within(prompt(), "connect", Client::connect_with(&url, short(5000))).await;
            let Err(e) = r else {
                panic!("connect must fail")
            };
            assert_eq!(e.kind(), ErrorKind::ConnectionFailed, "{e}");
            assert!(took < prompt(), "{took:?}");
        }
    });
    t.join().unwrap();
}

/// A server that accepts the TCP connection but never answers the WebSocket upgrade (the real
/// server's accept loop can do this, Q27): connect ends with Timeout after `connect_timeout`.
#[test]
fn connect_to_a_server_that_never_answers_times_out() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let t = std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        let _ = stop_rx.recv_timeout(Duration::from_secs(10));
        drop(s);
    });
    rt().block_on(async {
        let mut cfg = short(5000);
        cfg.connect_timeout = Duration::from_millis(300);
        let url = format!("ws://{addr}");
        let (r, took) = within(prompt() * 2, "connect", Client::connect_with(&url, cfg)).await;
        let Err(e) = r else {
            panic!("connect must fail")
        };
        assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
        assert!(took >= Duration::from_millis(290), "{took:?}");
    });
    stop_tx.send(()).unwrap();
    t.join().unwrap();
}

/// Requests waiting for replies (authentication among them) when the server dies: all fail
/// with ConnectionClosed within 1 s; later calls fail at once; `closed()` resolves.
#[test]
fn kill_during_auth_and_pending_requests() {
    let sim = sim();
    let hash = program(&sim, "forever");
    rt().block_on(async {
        let c = Client::connect_with(&sim.url(), short(30_000))
            .await
            .unwrap();
        // The server reads the requests but answers nothing: they stay pending.
        sim.faults().set_silence(true);
        let calls = vec![
            tokio::spawn({
                let c = c.clone();
                async move { c.authenticate("alice", None).await.map(|_| ()) }
            }),
            tokio::spawn({
                let c = c.clone();
                async move { c.ping().await }
            }),
            tokio::spawn({
                let c = c.clone();
                async move { c.list_instances().await.map(|_| ()) }
            }),
            tokio::spawn({
                let c = c.clone();
                async move { c.query("program_exists", "x").await.map(|_| ()) }
            }),
            tokio::spawn({
                let c = c.clone();
                let hash = hash.clone();
                async move { c.launch_instance(&hash, vec![], false).await.map(|_| ()) }
            }),
            // Waits for the launch slot held by the launch above (max_launches_in_flight = 1).
            tokio::spawn({
                let c = c.clone();
                let hash = hash.clone();
                async move { c.launch_instance(&hash, vec![], false).await.map(|_| ()) }
            }),
        ];
        eventually(prompt(), "requests pending", || {
            c.debug_counts().pending >= 5
        })
        .await;
        sim.kill_connections();
        let killed = Instant::now();
        for call in calls {
            let (r, _) = within(prompt(), "pending call", call).await;
            let e = r.unwrap().expect_err("must fail");
            assert!(is_closed(&e), "{e}");
        }
        assert!(killed.elapsed() < prompt());
        let (why, _) = within(prompt(), "closed()", c.closed()).await;
        assert!(is_closed(&why), "{why}");
        assert!(c.is_closed());
        let e = c.ping().await.unwrap_err();
        assert!(is_closed(&e), "{e}");
        assert_eq!(c.debug_counts().pending, 0);
        // close() after the server went away is still fine and quick.
        let (r, _) = within(prompt() * 2, "close", c.close()).await;
        r.unwrap();
    });
}

/// The server dies in the middle of a 16 MiB program upload (killed from the progress callback
/// after the first chunk went out): the upload fails with ConnectionClosed within 1 s.
#[test]
fn kill_mid_upload() {
    let sim = Arc::new(sim());
    // A valid simulated program padded to 16 MiB with a custom section.
    let mut bytes = pie_sim::script_program("complete big");
    bytes.extend(pie_sim::custom_section("padding", &vec![7u8; 16 << 20]));
    rt().block_on(async {
        let c = login(&sim, short(10_000)).await;
        let killed_at = Arc::new(std::sync::Mutex::new(None::<Instant>));
        let progress_calls = Arc::new(AtomicU64::new(0));
        let progress = {
            let sim = sim.clone();
            let killed_at = killed_at.clone();
            let calls = progress_calls.clone();
            move |_sent: u64, _total: u64| {
                if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                    *killed_at.lock().unwrap() = Some(Instant::now());
                    sim.kill_connections();
                }
            }
        };
        let (r, _) = within(
            Duration::from_secs(10),
            "upload",
            c.upload_program_with_progress(&bytes, Some(&progress)),
        )
        .await;
        let e = r.expect_err("the upload cannot succeed: the server died after chunk 1");
        assert!(is_closed(&e), "{e}");
        let since_kill = killed_at
            .lock()
            .unwrap()
            .expect("progress was reported")
            .elapsed();
        assert!(
            since_kill < prompt(),
            "upload failed {since_kill:?} after the kill"
        );
        assert!(
            progress_calls.load(Ordering::SeqCst) < 64,
            "not every chunk went out"
        );
        assert_eq!(c.debug_counts().pending, 0);
    });
}

/// Several tasks blocked in `recv` on instances that produce nothing: the kill wakes all of
/// them with ConnectionClosed within 1 s.
#[test]
fn kill_while_recv_waits() {
    let sim = sim();
    let hash = program(&sim, "stdout started\nforever");
    rt().block_on(async {
        let c = login(&sim, short(5000)).await;
        let mut waiters = Vec::new();
        for _ in 0..3 {
            let inst = Arc::new(c.launch_instance(&hash, vec![], false).await.unwrap());
            let first = within(prompt(), "first event", inst.recv())
                .await
                .0
                .unwrap();
            assert_eq!(first, InstanceEvent::Stdout("started".into()));
            // Two receivers per instance: both must wake.
            for _ in 0..2 {
                let inst = inst.clone();
                waiters.push(tokio::spawn(async move { inst.recv().await }));
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        for w in &waiters {
            assert!(!w.is_finished(), "nothing was sent: recv must still wait");
        }
        sim.kill_connections();
        for w in waiters {
            let (r, _) = within(prompt(), "blocked recv", w).await;
            let e = r.unwrap().expect_err("stream must end");
            assert!(is_closed(&e), "{e}");
        }
    });
}

/// Events that arrived before the connection died are all delivered, in order, and only then
/// does `recv` report ConnectionClosed (and keeps reporting it).
#[test]
fn buffered_events_are_delivered_before_connection_closed() {
    let sim = sim();
    let hash = program(&sim, &lines_then_forever(50));
    rt().block_on(async {
        let c = login(&sim, short(5000)).await;
        let inst = c.launch_instance(&hash, vec![], false).await.unwrap();
        eventually(prompt() * 3, "50 events queued", || {
            inst.pending_events() == 50
        })
        .await;
        sim.kill_connections();
        within(prompt(), "closed()", c.closed()).await;
        for i in 0..50 {
            let ev = inst.try_recv().unwrap().expect("buffered event");
            assert_eq!(ev, InstanceEvent::Stdout(format!("line {i}")));
        }
        for _ in 0..2 {
            let e = within(prompt(), "recv after end", inst.recv())
                .await
                .0
                .unwrap_err();
            assert!(is_closed(&e), "{e}");
            assert!(is_closed(&inst.try_recv().unwrap_err()));
        }
    });
}

/// The server drops the socket in the middle of a burst of output (fault drop_after_frames):
/// the client delivers an in-order prefix of the output, then ConnectionClosed.
#[test]
fn connection_dropped_mid_stream_delivers_a_prefix_then_closed() {
    let sim = sim();
    let mut script = String::new();
    for i in 0..200 {
        script.push_str(&format!("stdout line {i}\n"));
    }
    script.push_str("complete all");
    let hash = program(&sim, &script);
    rt().block_on(async {
        let c = login(&sim, short(5000)).await;
        // identification reply = frame 1, launch result = frame 2, then 58 lines.
        sim.faults().set_drop_after_frames(60);
        let inst = c.launch_instance(&hash, vec![], false).await.unwrap();
        let mut n = 0;
        let e = loop {
            match within(prompt(), "recv", inst.recv()).await.0 {
                Ok(ev) => {
                    assert_eq!(ev, InstanceEvent::Stdout(format!("line {n}")));
                    n += 1;
                }
                Err(e) => break e,
            }
        };
        assert!(is_closed(&e), "{e}");
        assert_eq!(n, 58, "every frame written before the drop is delivered");
    });
}

/// 1,000 instances streaming output on one connection when the server dies: every one of the
/// 1,000 receivers (each draining its instance) ends with ConnectionClosed within 1 s.
#[test]
fn kill_while_1000_instances_stream() {
    let sim = sim();
    let mut script = String::new();
    for _ in 0..200 {
        script.push_str("stdout tick\nsleep 100\n");
    }
    // Never completes by itself, however slow the launches are (e.g. under a sanitizer).
    script.push_str("forever");
    let hash = program(&sim, &script);
    rt().block_on(async {
        let c = login(&sim, short(10_000)).await;
        let mut tasks = Vec::new();
        let start = Instant::now();
        // Receivers that have seen their instance's first event.
        let streaming = Arc::new(AtomicU64::new(0));
        for _ in 0..1000 {
            let inst = c.launch_instance(&hash, vec![], false).await.unwrap();
            let streaming = streaming.clone();
            tasks.push(tokio::spawn(async move {
                let mut events = 0u64;
                loop {
                    match inst.recv().await {
                        Ok(_) => {
                            events += 1;
                            if events == 1 {
                                streaming.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                        Err(e) => return (events, e),
                    }
                }
            }));
        }
        let launched = start.elapsed();
        // Every instance is streaming when the server dies.
        eventually(deadline(), "all 1000 instances streaming", || {
            streaming.load(Ordering::SeqCst) == 1000
        })
        .await;
        sim.kill_connections();
        let killed = Instant::now();
        let mut total = 0;
        for t in tasks {
            let ((events, e), _) = within(prompt(), "receiver", async { t.await.unwrap() }).await;
            assert!(is_closed(&e), "{e}");
            assert!(events >= 1, "each instance streamed before the kill");
            total += events;
        }
        let all_done = killed.elapsed();
        assert!(all_done < prompt(), "{all_done:?}");
        eprintln!("1000 launches in {launched:?}; {total} events; all receivers ended {all_done:?} after the kill");
        assert_eq!(c.debug_counts().instances, 0);
    });
}

/// The simulator process goes away entirely (runtime shut down, listener closed): the client
/// notices, and a reconnect attempt fails promptly instead of hanging.
#[test]
fn server_stop_then_reconnect_fails_promptly() {
    let mut sim = sim();
    let url = sim.url();
    rt().block_on(async {
        let c = login(&sim, short(5000)).await;
        sim.stop();
        let (why, _) = within(prompt(), "closed()", c.closed()).await;
        assert!(is_closed(&why), "{why}");
        let (r, _) = within(
            prompt(),
            "reconnect",
            Client::connect_with(&url, short(5000)),
        )
        .await;
        assert_eq!(r.err().unwrap().kind(), ErrorKind::ConnectionFailed);
    });
}
