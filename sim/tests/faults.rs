//! Fault switches and garbage injection, plus wss:// serving.
mod common;

use common::*;
use futures_util::StreamExt;
use pie_sim::wire::{self, ClientMessage, InstanceStatus, ServerMessage};
use pie_sim::{script_program, Garbage, SimConfig, Simulator};
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

async fn launch_builtin(c: &mut Raw, name: &str, args: &[&str]) -> String {
    match c.launch_registry(name, args, false).await {
        ServerMessage::InstanceLaunchResult {
            successful: true,
            message,
            ..
        } => message,
        other => panic!("{other:?}"),
    }
}

/// The next raw WebSocket message (text and undecodable frames included).
async fn raw_next(c: &mut Raw) -> Message {
    tokio::time::timeout(TIMEOUT, c.ws.next())
        .await
        .expect("a frame in time")
        .expect("connection open")
        .expect("no error")
}

/// The connection ends without a Close frame.
async fn expect_abrupt_end(c: &mut Raw) {
    loop {
        match tokio::time::timeout(TIMEOUT, c.ws.next()).await {
            Err(_) => panic!("connection still open"),
            Ok(None) | Ok(Some(Err(_))) => return,
            Ok(Some(Ok(Message::Close(_)))) => panic!("got a Close frame"),
            Ok(Some(Ok(_))) => continue,
        }
    }
}

async fn wait_for(mut cond: impl FnMut() -> bool) {
    // 5 s, times PIE_TIME_SCALE (valgrind and sanitizer runs set it).
    let scale: u32 = std::env::var("PIE_TIME_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1);
    for _ in 0..500 * scale {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not reached");
}

#[tokio::test]
async fn q1_blob_upload_hangs_the_connection() {
    let sim = sim();
    sim.faults().set_q1_blob_hang(true);
    let mut c = Raw::login(&sim, "u").await;
    let id = launch_builtin(&mut c, "blob-echo", &[]).await;
    let r = c.upload_blob(&id, b"abc").await;
    assert!(matches!(
        r,
        ServerMessage::Response {
            successful: true,
            ..
        }
    ));
    // Nothing more: neither the echoed blob nor a pong.
    c.send(&ClientMessage::Ping { corr_id: 5 }).await;
    c.expect_silence(Duration::from_millis(300)).await;
    c.close().await;
    // Its instances stay attached to the dead session.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut root = Raw::internal(&sim).await;
    let list = root.list().await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].status, InstanceStatus::Attached);
    let r = root.attach(&id).await;
    assert!(
        matches!(r, ServerMessage::InstanceAttachResult { successful: false, ref message, .. } if message == "Instance already attached")
    );

    // Default (off): early errors never hang, and completed uploads do not either.
    sim.faults().set_q1_blob_hang(false);
    let mut c = Raw::login(&sim, "u").await;
    let id = launch_builtin(&mut c, "blob-echo", &[]).await;
    assert!(matches!(
        c.upload_blob(&id, b"xyz").await,
        ServerMessage::Response {
            successful: true,
            ..
        }
    ));
    assert!(matches!(c.recv().await, ServerMessage::DownloadBlob { .. }));
    c.ping().await;
}

#[tokio::test]
async fn silence_keeps_sockets_open() {
    let sim = sim();
    let mut c = Raw::login(&sim, "u").await;
    sim.faults().set_silence(true);
    c.send(&ClientMessage::Ping { corr_id: 1 }).await;
    c.expect_silence(Duration::from_millis(300)).await;
    sim.faults().set_silence(false);
    c.ping().await;
}

#[tokio::test]
async fn drop_after_frames_and_kill_connections() {
    let sim = sim();
    sim.faults().set_drop_after_frames(3);
    let mut c = Raw::login(&sim, "u").await; // frame 1
    c.ping().await; // frame 2
    c.ping().await; // frame 3, then the socket is dropped
    expect_abrupt_end(&mut c).await;
    // The server forgets the dropped connection on its own task: wait for it before counting.
    wait_for(|| sim.connection_count() == 0).await;
    sim.faults().set_drop_after_frames(0);

    let mut a = Raw::login(&sim, "u").await;
    let h = a.install(&script_program("forever")).await;
    let id = a.launch(&h, &[], false).await;
    let mut b = Raw::login(&sim, "v").await;
    b.ping().await;
    assert_eq!(sim.connection_count(), 2);
    sim.kill_connections();
    expect_abrupt_end(&mut a).await;
    expect_abrupt_end(&mut b).await;
    wait_for(|| sim.connection_count() == 0).await;
    // The instance was detached, not terminated.
    let mut c = Raw::login(&sim, "u").await;
    let list = c.list().await;
    assert_eq!(list.len(), 1);
    assert_eq!(
        (list[0].id.as_str(), list[0].status),
        (id.as_str(), InstanceStatus::Detached)
    );
}

#[tokio::test]
async fn unknown_event_code_busy_and_wedge() {
    let sim = sim();
    let mut c = Raw::login(&sim, "u").await;
    sim.faults().set_unknown_event_code(true);
    let id = launch_builtin(&mut c, "echo", &["x"]).await;
    let frames = c.until_terminal(&id).await;
    assert_eq!(kinds(&frames).last().unwrap(), "ev9:echo: x");
    let id = launch_builtin(&mut c, "forever", &[]).await;
    c.terminate(&id).await;
    assert_eq!(
        kinds(&c.until_terminal(&id).await).last().unwrap(),
        "ev9:Signal termination"
    );
    sim.faults().set_unknown_event_code(false);
    // The built-in unknown-event instance ends with code 9 by itself.
    let id = launch_builtin(&mut c, "unknown-event", &[]).await;
    assert_eq!(
        kinds(&c.until_terminal(&id).await).last().unwrap(),
        "ev9:simulated unknown event"
    );

    // A busy-looping instance ignores terminate_instance and says nothing.
    let id = launch_builtin(&mut c, "busy", &[]).await;
    assert!(matches!(
        c.terminate(&id).await,
        ServerMessage::Response {
            successful: true,
            ..
        }
    ));
    c.expect_silence(Duration::from_millis(200)).await;
    assert!(c.list().await.iter().any(|i| i.id == id));

    // Wedged launches: no reply, and the connection stops answering.
    sim.faults().set_wedge_launches(true);
    c.send(&ClientMessage::LaunchInstanceFromRegistry {
        corr_id: 1,
        inferlet: "echo".into(),
        arguments: vec![],
        detached: false,
    })
    .await;
    c.send(&ClientMessage::Ping { corr_id: 2 }).await;
    c.expect_silence(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn garbage_injection() {
    let sim = sim();
    let mut unauth = Raw::connect(&sim).await;
    let mut c = Raw::login(&sim, "u").await;
    let id = launch_builtin(&mut c, "forever", &["--interval-ms", "100000"]).await;

    sim.inject(Garbage::Binary(vec![0xc1, 0x00]));
    assert_eq!(
        raw_next(&mut c).await,
        Message::Binary(vec![0xc1, 0x00].into())
    );

    sim.inject(Garbage::Text("hello".into()));
    assert_eq!(raw_next(&mut c).await, Message::Text("hello".into()));

    sim.inject(Garbage::UnknownType);
    let Message::Binary(b) = raw_next(&mut c).await else {
        panic!()
    };
    assert!(wire::decode_server(&b).is_err());

    sim.inject(Garbage::ReplyForUnknownCorrId(777));
    assert_eq!(c.recv().await, response(777, true, "Pong"));

    sim.inject(Garbage::EventForUnknownInstance);
    for _ in 0..3 {
        match c.recv().await {
            ServerMessage::InstanceEvent { instance_id, .. }
            | ServerMessage::StreamingOutput { instance_id, .. } => assert_ne!(instance_id, id),
            other => panic!("{other:?}"),
        }
    }

    sim.inject(Garbage::BlobWithWrongHash(String::new()));
    match c.recv().await {
        ServerMessage::DownloadBlob {
            instance_id,
            blob_hash,
            chunk_data,
            ..
        } => {
            assert_eq!(instance_id, id);
            assert_ne!(blob_hash, wire::hash_blob(&chunk_data));
        }
        other => panic!("{other:?}"),
    }

    sim.inject(Garbage::BlobChunkOutOfRange(id.clone()));
    match c.recv().await {
        ServerMessage::DownloadBlob {
            instance_id,
            chunk_index,
            total_chunks,
            ..
        } => {
            assert_eq!(instance_id, id);
            assert!(chunk_index >= total_chunks);
        }
        other => panic!("{other:?}"),
    }
    c.ping().await;
    // Connections that are not authenticated get nothing.
    unauth.expect_silence(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn wss_with_a_self_signed_certificate() {
    let rcgen::CertifiedKey { cert, key_pair } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let sim = Simulator::start(SimConfig {
        tls: Some((
            cert.pem().into_bytes(),
            key_pair.serialize_pem().into_bytes(),
        )),
        ..SimConfig::default()
    })
    .unwrap();
    assert!(sim.url().starts_with("wss://127.0.0.1:"));
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.der().clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(sim.addr()).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async("wss://localhost/", tls)
        .await
        .unwrap();
    use futures_util::SinkExt;
    ws.send(Message::Binary(
        wire::encode_client(&ClientMessage::Identification {
            corr_id: 1,
            username: "t".into(),
        })
        .into(),
    ))
    .await
    .unwrap();
    let Some(Ok(Message::Binary(b))) = ws.next().await else {
        panic!()
    };
    assert_eq!(
        wire::decode_server(&b).unwrap(),
        response(1, true, wire::TEXT_AUTH_DISABLED)
    );
}

#[test]
fn works_from_sync_code_and_stops() {
    let mut sim = Simulator::start(SimConfig::default()).unwrap();
    let addr = sim.addr();
    assert!(std::net::TcpStream::connect(addr).is_ok());
    sim.stop();
    std::thread::sleep(Duration::from_millis(50));
    assert!(std::net::TcpStream::connect(addr).is_err());
}

#[tokio::test]
async fn busy_instances_pin_all_workers() {
    let sim = Simulator::start(SimConfig {
        busy_worker_limit: 2,
        ..SimConfig::default()
    })
    .unwrap();
    let mut c = Raw::login(&sim, "u").await;
    let mut other = Raw::login(&sim, "v").await;
    let r = c.launch_registry("busy", &[], true).await;
    assert!(matches!(
        r,
        ServerMessage::InstanceLaunchResult {
            successful: true,
            ..
        }
    ));
    other.ping().await;
    let r = c.launch_registry("busy", &[], true).await;
    assert!(matches!(
        r,
        ServerMessage::InstanceLaunchResult {
            successful: true,
            ..
        }
    ));
    // Give the second one time to start spinning, then nobody gets answers any more.
    tokio::time::sleep(Duration::from_millis(50)).await;
    other.send(&ClientMessage::Ping { corr_id: 9 }).await;
    other.expect_silence(Duration::from_millis(300)).await;
    c.send(&ClientMessage::Ping { corr_id: 9 }).await;
    c.expect_silence(Duration::from_millis(100)).await;
}
