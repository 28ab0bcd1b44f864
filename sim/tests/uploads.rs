//! Program uploads (§6.3), queries (§6.2) and the fixed-answer requests.
mod common;

use common::*;
use pie_sim::wire::{self, ClientMessage, ServerMessage, CHUNK_SIZE};
use pie_sim::{script_program, SimConfig, Simulator};
use std::time::Duration;

fn chunk(corr_id: u32, hash: &str, index: u64, total: u64, data: &[u8]) -> ClientMessage {
    ClientMessage::UploadProgram {
        corr_id,
        program_hash: hash.into(),
        chunk_index: index,
        total_chunks: total,
        chunk_data: data.to_vec(),
    }
}

#[tokio::test]
async fn single_and_multi_chunk_uploads() {
    let sim = sim();
    let mut c = Raw::login(&sim, "u").await;
    let small = script_program("complete ok");
    let h = wire::hash_blob(&small);
    assert!(!sim.program_exists(&h));
    let r = c
        .request(&ClientMessage::Query {
            corr_id: 3,
            subject: "program_exists".into(),
            record: h.clone(),
        })
        .await;
    assert_eq!(r, response(3, true, "false"));
    assert_eq!(c.install(&small).await, h);
    assert!(sim.program_exists(&h));
    let r = c
        .request(&ClientMessage::Query {
            corr_id: 4,
            subject: "program_exists".into(),
            record: h.to_uppercase(),
        })
        .await;
    assert_eq!(r, response(4, true, "false"));
    // Duplicate upload succeeds.
    assert_eq!(c.install(&small).await, h);

    // 3 chunks: no reply before the last one.
    let mut big = script_program("complete big");
    big.extend(pie_sim::custom_section(
        "pad",
        &vec![0x5a; 2 * CHUNK_SIZE + 10],
    ));
    let hb = wire::hash_blob(&big);
    let parts: Vec<_> = wire::chunks(&big).collect();
    assert_eq!(parts.len(), 3);
    for (i, data) in &parts[..2] {
        c.send(&chunk(77, &hb, *i, 3, data)).await;
    }
    c.expect_silence(Duration::from_millis(200)).await;
    c.send(&chunk(77, &hb, 2, 3, parts[2].1)).await;
    assert_eq!(c.recv().await, response(77, true, &hb));
    assert!(sim.program_exists(&hb));
    // Hash of earlier chunks is not checked (Q9).
    c.send(&chunk(78, "whatever", 0, 2, parts[0].1)).await;
    let rest: Vec<u8> = big[CHUNK_SIZE..].to_vec();
    let mut tail = rest.clone();
    tail.truncate(CHUNK_SIZE);
    let two = [parts[0].1, &tail[..]].concat();
    let h2 = wire::hash_blob(&two);
    c.send(&chunk(78, &h2, 1, 2, &tail)).await;
    assert_eq!(c.recv().await, response(78, true, &h2));
}

#[tokio::test]
async fn upload_error_strings_in_order() {
    let sim = sim();
    let mut c = Raw::login(&sim, "u").await;
    let zero = "0".repeat(64);
    // First chunk index.
    let r = c.request(&chunk(31, &zero, 1, 2, b"abc")).await;
    assert_eq!(r, response(31, false, "First chunk index must be 0"));
    // Out of order, then the slot is clear again.
    c.send(&chunk(41, &zero, 0, 3, b"aaaa")).await;
    let r = c.request(&chunk(41, &zero, 2, 3, b"cccc")).await;
    assert_eq!(
        r,
        response(41, false, "Out-of-order chunk: expected 1, got 2")
    );
    // Count mismatch.
    c.send(&chunk(51, &zero, 0, 3, b"aaaa")).await;
    let r = c.request(&chunk(51, &zero, 1, 4, b"bbbb")).await;
    assert_eq!(
        r,
        response(51, false, "Chunk count mismatch: expected 3, got 4")
    );
    // Chunk size is checked first, even on a fresh slot with a wrong index.
    let r = c
        .request(&chunk(61, &zero, 5, 2, &vec![0x5a; CHUNK_SIZE + 1]))
        .await;
    assert_eq!(
        r,
        response(61, false, "Chunk size 262145 exceeds limit 262144")
    );
    // Hash mismatch names the hash as sent and the computed one.
    let p = script_program("complete x");
    let r = c.request(&chunk(21, &zero, 0, 1, &p)).await;
    let want = format!(
        "Hash mismatch: expected {zero}, got {}",
        wire::hash_blob(&p)
    );
    assert_eq!(r, response(21, false, &want));
    assert!(!sim.program_exists(&zero));
    // Q7: a failed upload answers every remaining chunk.
    c.send(&chunk(90, &zero, 0, 4, b"a")).await;
    c.send(&chunk(90, &zero, 2, 4, b"c")).await;
    c.send(&chunk(90, &zero, 3, 4, b"d")).await;
    assert_eq!(
        c.recv().await,
        response(90, false, "Out-of-order chunk: expected 1, got 2")
    );
    assert_eq!(
        c.recv().await,
        response(90, false, "First chunk index must be 0")
    );
    // Q8: total_chunks 0 never completes and never replies; the slot stays busy.
    c.send(&chunk(95, &zero, 0, 0, b"")).await;
    c.expect_silence(Duration::from_millis(200)).await;
    let r = c.request(&chunk(96, &zero, 0, 1, b"")).await;
    assert_eq!(
        r,
        response(96, false, "Chunk count mismatch: expected 0, got 1")
    );
    c.ping().await;
}

#[tokio::test]
async fn invalid_program_default_and_q6() {
    let sim = sim();
    let mut c = Raw::login(&sim, "u").await;
    for bad in [&b""[..], b"abc", b"\0asm\x01\0\0\0"] {
        let r = c.upload(bad).await;
        assert_eq!(
            r,
            response(
                r_corr(&r),
                false,
                "Failed to register program: Runtime error: Failed to compile"
            )
        );
        assert!(!sim.program_exists(&wire::hash_blob(bad)));
    }
    c.ping().await;
    sim.faults().set_q6_close_on_invalid_program(true);
    c.send(&chunk(5, &wire::hash_blob(b"abc"), 0, 1, b"abc"))
        .await;
    c.expect_closed().await;
}

fn r_corr(r: &ServerMessage) -> u32 {
    match r {
        ServerMessage::Response { corr_id, .. } => *corr_id,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn queries_and_fixed_answers() {
    let sim = sim();
    let mut c = Raw::login(&sim, "u").await;
    let q = |corr_id, subject: &str| ClientMessage::Query {
        corr_id,
        subject: subject.into(),
        record: String::new(),
    };
    assert_eq!(
        c.request(&q(1, "model_status")).await,
        response(1, true, "{}")
    );
    assert_eq!(
        c.request(&q(2, "backend_stats")).await,
        response(2, true, "")
    );
    c.send(&q(3, "nope")).await;
    c.expect_silence(Duration::from_millis(300)).await;
    let r = c
        .request(&ClientMessage::LaunchServerInstance {
            corr_id: 4,
            port: 70000,
            program_hash: "x".into(),
            arguments: vec![],
        })
        .await;
    assert_eq!(r, response(4, true, "server launched"));
    let r = c
        .request(&ClientMessage::AttachRemoteService {
            corr_id: 5,
            endpoint: "e".into(),
            service_type: "t".into(),
            service_name: "n".into(),
        })
        .await;
    assert_eq!(
        r,
        response(
            5,
            false,
            "Remote service attachment is not supported in FFI mode"
        )
    );
    // Pipelined requests are answered in order; corr_ids are echoed, including 0 and max.
    for id in [0u32, 4_294_967_295, 1, 2, 3] {
        c.send(&ClientMessage::Ping { corr_id: id }).await;
    }
    for id in [0u32, 4_294_967_295, 1, 2, 3] {
        assert_eq!(c.recv().await, response(id, true, "Pong"));
    }
}

#[tokio::test]
async fn lenient_decoding_and_ignored_frames() {
    use tokio_tungstenite::tungstenite::Message;
    let sim = sim();
    let mut c = Raw::login(&sim, "u").await;
    // Compact array form ["ping", 3].
    c.send_raw(Message::Binary(
        vec![0x92, 0xa4, b'p', b'i', b'n', b'g', 3].into(),
    ))
    .await;
    assert_eq!(c.recv().await, response(3, true, "Pong"));
    // Undecodable, empty, text frames and a launch without `detached`: no reply.
    c.send_raw(Message::Binary(vec![].into())).await;
    c.send_raw(Message::Binary(vec![0xc1, 0xc1].into())).await;
    c.send_raw(Message::Text("{\"type\":\"ping\"}".into()))
        .await;
    c.send_raw(Message::Ping(vec![1, 2].into())).await;
    // Duplicate key: rejected, no reply.
    let mut dup = vec![0x83, 0xa4];
    dup.extend(b"type\xa4ping\xa7corr_id\x01\xa7corr_id\x02");
    c.send_raw(Message::Binary(dup.into())).await;
    // `type` as bin and keys in another order: accepted.
    let mut bin = vec![0x82, 0xa7];
    bin.extend(b"corr_id\x07\xa4type\xc4\x04ping");
    c.send_raw(Message::Binary(bin.into())).await;
    assert_eq!(c.recv().await, response(7, true, "Pong"));
    c.ping().await;
}

#[tokio::test]
async fn programs_from_config_exist() {
    let p = script_program("complete preloaded");
    let sim = Simulator::start(SimConfig {
        programs: vec![p.clone()],
        ..SimConfig::default()
    })
    .unwrap();
    assert!(sim.program_exists(&wire::hash_blob(&p)));
    let h = sim.add_program(script_program("complete added"));
    let mut c = Raw::login(&sim, "u").await;
    let id = c.launch(&h, &[], false).await;
    assert_eq!(kinds(&c.until_terminal(&id).await), vec!["ev1:added"]);
}

#[tokio::test]
async fn client_close_is_echoed() {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    use tokio_tungstenite::tungstenite::Message;
    let sim = sim();
    let mut c = Raw::login(&sim, "u").await;
    c.ws.close(Some(CloseFrame {
        code: CloseCode::Away,
        reason: "".into(),
    }))
    .await
    .unwrap();
    match tokio::time::timeout(TIMEOUT, c.ws.next()).await.unwrap() {
        Some(Ok(Message::Close(Some(f)))) => assert_eq!(f.code, CloseCode::Away),
        other => panic!("expected the echoed Close, got {other:?}"),
    }
    // The session is torn down.
    for _ in 0..200 {
        if sim.connection_count() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("connection not torn down");
}
