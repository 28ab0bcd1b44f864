//! Server defects (PROTOCOL.md §15/§16) and hostile input, injected through the simulator's
//! fault switches: calls time out as configured, garbage is ignored or reported as documented
//! (docs/RELIABILITY.md), and the connection keeps working afterwards.

use crate::support::*;
use pie::{ErrorKind, InstanceEvent};
use pie_sim::Garbage;
use std::time::{Duration, Instant};

const T: u64 = 300; // request timeout of these tests, ms

fn assert_timeout(r: pie::Result<impl std::fmt::Debug>, took: Duration, what: &str) {
    let e = r.expect_err(what);
    assert_eq!(e.kind(), ErrorKind::Timeout, "{what}: {e}");
    assert!(
        took >= Duration::from_millis(T - 10)
            && took < Duration::from_millis(T) + slack(Duration::from_millis(700)),
        "{what}: timed out after {took:?}, configured {T} ms"
    );
}

/// The server keeps the socket open but answers nothing (all workers pinned by busy
/// inferlets, §16): every call times out after `request_timeout`, nothing is left pending,
/// and once the server answers again the same connection works.
#[test]
fn silent_server_calls_time_out_and_the_connection_recovers() {
    let sim = sim();
    let hash = program(&sim, "stdout hi\ncomplete ok");
    rt().block_on(async {
        let c = login(&sim, short(T)).await;
        sim.faults().set_silence(true);
        let start = Instant::now();
        let (r, took) = within(prompt() * 2, "ping", c.ping()).await;
        assert_timeout(r, took, "ping");
        let (r, took) = within(prompt() * 2, "list", c.list_instances()).await;
        assert_timeout(r, took, "list_instances");
        let (r, took) = within(
            prompt() * 2,
            "launch",
            c.launch_instance(&hash, vec![], false),
        )
        .await;
        assert_timeout(r, took, "launch_instance");
        // Ten pings at once all time out together, not one after the other.
        let many = futures_util::future::join_all((0..10).map(|_| c.ping()));
        let (rs, took) = within(prompt() * 2, "10 pings", many).await;
        for r in rs {
            assert_timeout(r, took, "concurrent ping");
        }
        assert_eq!(
            c.debug_counts().pending,
            0,
            "timed-out calls leave nothing behind"
        );
        assert!(start.elapsed() < Duration::from_secs(3));

        sim.faults().set_silence(false);
        c.ping().await.expect("the connection works again");
        // The launch slot of the timed-out launch was released.
        let inst = c.launch_instance(&hash, vec![], false).await.unwrap();
        let evs = recv_until(&inst, prompt(), |e| e.is_terminal()).await;
        assert_eq!(
            evs,
            vec![
                InstanceEvent::Stdout("hi".into()),
                InstanceEvent::Completed("ok".into())
            ]
        );
    });
}

/// Q1: after a blob upload the real server's session deadlocks. The upload itself succeeds;
/// every later call times out (nothing retries or hangs), and close() still ends in ~1 s.
#[test]
fn q1_blob_hang_later_calls_time_out() {
    let sim = sim();
    sim.faults().set_q1_blob_hang(true);
    let hash = program(&sim, "recv-blob\nforever");
    rt().block_on(async {
        let c = login(&sim, short(T)).await;
        let inst = c.launch_instance(&hash, vec![], false).await.unwrap();
        inst.upload_blob(b"hello blob")
            .await
            .expect("the reply still comes");
        let (r, took) = within(prompt() * 2, "ping", c.ping()).await;
        assert_timeout(r, took, "ping after Q1");
        let (r, took) = within(prompt() * 2, "terminate", inst_terminate(&c, inst.id())).await;
        assert_timeout(r, took, "terminate after Q1");
        // No blob echo, no Aborted: the session is dead, recv just waits.
        assert!(
            tokio::time::timeout(Duration::from_millis(100), inst.recv())
                .await
                .is_err()
        );
        let (r, took) = within(prompt() * 3, "close", c.close()).await;
        r.unwrap();
        assert!(took < Duration::from_millis(1500), "close took {took:?}");
        let e = within(prompt(), "recv after close", inst.recv())
            .await
            .0
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ClientClosed);
    });
}

async fn inst_terminate(c: &pie::Client, id: &str) -> pie::Result<()> {
    c.terminate_instance(id).await
}

/// Q6: uploading bytes that are not a component would make the real server drop the
/// connection; libpie refuses them before sending, so the connection survives.
#[test]
fn q6_invalid_program_is_refused_client_side() {
    let sim = sim();
    sim.faults().set_q6_close_on_invalid_program(true);
    rt().block_on(async {
        let c = login(&sim, short(2000)).await;
        for bad in [&b""[..], b"not wasm at all", b"\0asm\x01\0\0\0"] {
            let e = c.upload_program(bad).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
        }
        c.ping().await.expect("still connected");
        assert!(!c.is_closed());
    });
}

/// Q11: an unknown query subject gets no reply: Timeout, and the connection is fine.
#[test]
fn q11_unknown_query_subject_times_out() {
    let sim = sim();
    rt().block_on(async {
        let c = login(&sim, short(T)).await;
        let (r, took) = within(prompt() * 2, "query", c.query("no_such_subject", "x")).await;
        assert_timeout(r, took, "unknown query subject");
        c.ping().await.unwrap();
        assert_eq!(c.debug_counts().pending, 0);
    });
}

/// Q8: a `total_chunks = 0` upload never completes on the server. libpie never sends one: an
/// empty blob goes out as one empty chunk and gets its reply.
#[test]
fn q8_empty_upload_is_one_chunk_and_completes() {
    assert_eq!(pie::wire::chunk_count(0), 1);
    let sim = sim();
    let hash = program(&sim, "recv-blob\nrecv\ncomplete done");
    rt().block_on(async {
        let c = login(&sim, short(2000)).await;
        let inst = c.launch_instance(&hash, vec![], false).await.unwrap();
        let (r, _) = within(prompt() * 2, "empty blob", inst.upload_blob(b"")).await;
        r.expect("an empty blob upload is answered");
        c.ping().await.unwrap();
    });
}

/// Q7: a failed multi-chunk upload is answered once per chunk, all with the same corr_id. The
/// first reply is the result; the extra ones are ignored and never taken for the reply to a
/// later request.
#[test]
fn q7_extra_failure_replies_are_ignored() {
    let sim = sim();
    let hash = program(&sim, "complete quick");
    rt().block_on(async {
        let c = login(&sim, short(2000)).await;
        let inst = c.launch_instance(&hash, vec![], false).await.unwrap();
        recv_until(&inst, prompt(), |e| e.is_terminal()).await;
        // Finished: the server refuses every chunk of the 1 MiB (4-chunk) blob.
        let e = inst.upload_blob(&vec![1u8; 1 << 20]).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Server, "{e}");
        assert!(
            e.message().starts_with("Instance not owned by client"),
            "{e}"
        );
        // How many chunks the server saw before libpie stopped sending (and so how many extra
        // replies come back) depends on timing; none of them may be taken for a later reply.
        for _ in 0..20 {
            c.ping().await.expect("pings get their own replies");
        }
        let list = c.list_instances().await.unwrap();
        assert!(list.iter().all(|i| i.id != inst.id()));
        // The server answers the chunks in order, before the pings: by now every chunk it saw
        // has been answered. The first refusal is the upload's reply; each later chunk's
        // refusal is a stray. How many chunks went out before that first refusal came back
        // depends on timing (libpie stops sending when it arrives, possibly before chunk 2):
        // 0 to 3 strays for the 4 chunks, and none of them taken for a ping's reply above.
        let chunk_strays = c.debug_counts().stray_replies;
        assert!(
            chunk_strays <= 3,
            "{chunk_strays} stray replies for a 4-chunk upload"
        );
        // Injected replies for corr_ids nobody waits for: same treatment, each counted once.
        for id in [0, 7, u32::MAX] {
            sim.inject(Garbage::ReplyForUnknownCorrId(id));
        }
        c.ping().await.unwrap();
        eventually(prompt(), "3 more stray replies", || {
            c.debug_counts().stray_replies >= chunk_strays + 3
        })
        .await;
        assert_eq!(c.debug_counts().stray_replies, chunk_strays + 3);
    });
}

/// §16 deadlock under pipelined launches (modelled by `wedge_launches`): the launch times
/// out, a second launch queued behind it (one launch in flight by default) times out too
/// instead of waiting forever, and close() works.
#[test]
fn wedged_launch_times_out_and_queued_launch_does_not_hang() {
    let sim = sim();
    let hash = program(&sim, "forever");
    rt().block_on(async {
        let c = login(&sim, short(T)).await;
        sim.faults().set_wedge_launches(true);
        let a = tokio::spawn({
            let c = c.clone();
            let h = hash.clone();
            async move { c.launch_instance(&h, vec![], false).await.map(|_| ()) }
        });
        let b = tokio::spawn({
            let c = c.clone();
            let h = hash.clone();
            async move { c.launch_instance(&h, vec![], false).await.map(|_| ()) }
        });
        let start = Instant::now();
        let (ra, _) = within(prompt() * 2, "launch a", a).await;
        let (rb, _) = within(prompt() * 2, "launch b", b).await;
        assert_eq!(ra.unwrap().unwrap_err().kind(), ErrorKind::Timeout);
        assert_eq!(rb.unwrap().unwrap_err().kind(), ErrorKind::Timeout);
        // Sequential (one launch in flight): about two timeouts, not more.
        let took = start.elapsed();
        assert!(
            took < Duration::from_millis(2 * T) + slack(Duration::from_millis(700)),
            "{took:?}"
        );
        assert_eq!(c.debug_counts().pending, 0);
        within(prompt() * 3, "close", c.close()).await.0.unwrap();
    });
}

/// §16 busy inferlet: it produces nothing and ignores terminate. `recv` simply has nothing
/// (callers bound it with their own timeout), terminate is answered but no Aborted follows,
/// and the connection keeps working.
#[test]
fn busy_inferlet_produces_nothing_and_the_connection_works() {
    let sim = sim();
    let hash = program(&sim, "busy");
    rt().block_on(async {
        let c = login(&sim, short(1000)).await;
        let inst = c.launch_instance(&hash, vec![], false).await.unwrap();
        assert!(
            tokio::time::timeout(Duration::from_millis(150), inst.recv())
                .await
                .is_err()
        );
        c.terminate_instance(inst.id()).await.unwrap();
        assert!(
            tokio::time::timeout(Duration::from_millis(150), inst.recv())
                .await
                .is_err()
        );
        c.ping().await.unwrap();
        assert!(c
            .list_instances()
            .await
            .unwrap()
            .iter()
            .any(|i| i.id == inst.id()));
    });
}

/// An event code the client does not know ends the stream as `Unknown` (terminal), with the
/// server's text; nothing after it is delivered and the connection keeps working.
#[test]
fn unknown_event_codes_end_the_stream_as_unknown() {
    let sim = sim();
    let raw = program(
        &sim,
        "stdout before\nevent 9 mystery\nstdout after\ncomplete x",
    );
    let normal = program(&sim, "stdout a\ncomplete done");
    rt().block_on(async {
        let c = login(&sim, short(2000)).await;
        let inst = c.launch_instance(&raw, vec![], false).await.unwrap();
        let evs = recv_until(&inst, prompt(), |e| e.is_terminal()).await;
        assert_eq!(
            evs,
            vec![
                InstanceEvent::Stdout("before".into()),
                InstanceEvent::Unknown {
                    code: 9,
                    message: "mystery".into()
                }
            ]
        );
        assert_eq!(
            inst.recv().await.unwrap_err().kind(),
            ErrorKind::StreamEnded
        );

        sim.faults().set_unknown_event_code(true);
        let inst = c.launch_instance(&normal, vec![], false).await.unwrap();
        let evs = recv_until(&inst, prompt(), |e| e.is_terminal()).await;
        assert_eq!(
            evs,
            vec![
                InstanceEvent::Stdout("a".into()),
                InstanceEvent::Unknown {
                    code: 9,
                    message: "done".into()
                }
            ]
        );
        // "stdout after" and "complete x" of the first instance find no route: counted. The
        // simulator forgets an instance once its last frame is queued on the connection; a
        // ping answered after that comes behind those frames, so the client has seen them.
        eventually(deadline(), "both programs finished", || {
            sim.instance_count() == 0
        })
        .await;
        c.ping().await.unwrap();
        assert!(c.debug_counts().unrouted_events >= 2);
    });
}

/// Garbage of every kind the simulator can send, injected while an instance streams: each is
/// ignored (and counted), a ping succeeds afterwards, and the instance's own events arrive
/// complete and in order.
#[test]
fn garbage_is_ignored_and_the_instance_stream_is_intact() {
    let sim = sim();
    let mut script = String::new();
    for i in 0..30 {
        script.push_str(&format!("stdout line {i}\nsleep 10\n"));
    }
    script.push_str("blob real-blob\ncomplete done");
    let hash = program(&sim, &script);
    rt().block_on(async {
        let c = login(&sim, short(2000)).await;
        let inst = c.launch_instance(&hash, vec![], false).await.unwrap();
        let id = inst.id().to_string();
        let mut deep = vec![0x91u8; 10_000]; // 10,000 nested one-element arrays
        deep.push(0xc0);
        let garbage = vec![
            Garbage::Binary(vec![]),
            Garbage::Binary(vec![0xc1]), // never-used MessagePack byte
            Garbage::Binary(b"\x82\xa4type\xa8response".to_vec()), // truncated map
            Garbage::Binary(vec![0xdf, 0xff, 0xff, 0xff, 0xff]), // map of 2^32-1 entries
            Garbage::Binary(vec![0xc6, 0xff, 0xff, 0xff, 0xf0]), // bin of ~4 GiB, no data
            Garbage::Binary(deep),
            Garbage::Text("{\"type\":\"response\",\"corr_id\":1}".into()),
            Garbage::UnknownType,
            Garbage::ReplyForUnknownCorrId(123_456),
            Garbage::EventForUnknownInstance,
            Garbage::BlobWithWrongHash(id.clone()),
            Garbage::BlobChunkOutOfRange(id.clone()),
        ];
        for g in garbage {
            sim.inject(g);
            c.ping().await.expect("ping after garbage");
        }
        let evs = recv_until(&inst, Duration::from_secs(5), |e| e.is_terminal()).await;
        let mut want: Vec<InstanceEvent> = (0..30)
            .map(|i| InstanceEvent::Stdout(format!("line {i}")))
            .collect();
        want.push(InstanceEvent::Blob(b"real-blob".to_vec()));
        want.push(InstanceEvent::Completed("done".into()));
        assert_eq!(evs, want);
        let d = c.debug_counts();
        assert!(d.undecodable_frames >= 7, "{d:?}");
        assert!(d.ignored_frames >= 1, "{d:?}");
        assert!(d.stray_replies >= 1, "{d:?}");
        assert!(d.unrouted_events >= 3, "{d:?}");
        assert!(d.dropped_blobs >= 2, "{d:?}");
        assert_eq!(d.pending, 0);
    });
}
