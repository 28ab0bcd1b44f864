//! Protocol corner cases the simulator never produces, against a tiny scripted fake server:
//! replies of the wrong type, the (never sent) `challenge` message, case-varying instance ids,
//! inconsistent blob downloads.

use crate::support::{collect, deadline, kind, recv};
use futures_util::{SinkExt, StreamExt};
use pie::wire::{decode_client, encode_server, ClientMessage, ServerMessage};
use pie::{Client, ErrorKind, InstanceEvent, PrivateKey};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

/// Serve one connection: every decoded request is passed to `answer`, whose frames are sent
/// back in order.
async fn fake_server(
    mut answer: impl FnMut(ClientMessage) -> Vec<Vec<u8>> + Send + 'static,
) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        while let Some(Ok(msg)) = ws.next().await {
            if let Message::Binary(data) = msg {
                if let Ok(req) = decode_client(&data) {
                    for frame in answer(req) {
                        if ws.send(Message::Binary(frame.into())).await.is_err() {
                            return;
                        }
                    }
                }
            }
        }
    });
    format!("ws://{addr}")
}

fn response(corr_id: u32, successful: bool, result: &str) -> Vec<u8> {
    encode_server(&ServerMessage::Response {
        corr_id,
        successful,
        result: result.into(),
    })
}

const ID: &str = "67e55044-10b1-426f-9247-bb680e5fe0c8";

#[tokio::test]
async fn wrong_reply_types_are_protocol_errors() {
    let url = fake_server(|req| match req {
        // A launch answered with a plain response, a ping with a launch result, a list with
        // an attach result: each is a protocol error for that call only.
        ClientMessage::LaunchInstance { corr_id, .. } => vec![response(corr_id, true, ID)],
        ClientMessage::Ping { corr_id } => {
            vec![encode_server(&ServerMessage::InstanceLaunchResult {
                corr_id,
                successful: true,
                message: ID.into(),
            })]
        }
        ClientMessage::ListInstances { corr_id } => {
            vec![encode_server(&ServerMessage::InstanceAttachResult {
                corr_id,
                successful: true,
                message: "Instance attached".into(),
            })]
        }
        ClientMessage::Query { corr_id, .. } => vec![response(corr_id, true, "fine")],
        _ => vec![],
    })
    .await;
    let c = Client::connect(&url).await.unwrap();
    let e = c.launch_instance("h", vec![], false).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol);
    assert!(e.message().contains("'response'"), "{e}");
    assert_eq!(kind(c.ping().await), ErrorKind::Protocol);
    assert_eq!(kind(c.list_instances().await), ErrorKind::Protocol);
    // The connection is fine and nothing leaked (no instance route from the bogus launch).
    assert_eq!(c.query("x", "y").await.unwrap(), "fine");
    let d = c.debug_counts();
    assert_eq!((d.pending, d.instances), (0, 0));
}

#[tokio::test]
async fn challenge_message_is_treated_as_a_response() {
    let challenge = [7u8; 48];
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(challenge);
    let seed = [3u8; 32];
    let kp = ssh_key::private::Ed25519Keypair::from_seed(&seed);
    let pem = ssh_key::PrivateKey::from(kp)
        .to_openssh(ssh_key::LineEnding::LF)
        .unwrap();
    let key = PrivateKey::from_bytes(pem.as_bytes(), None).unwrap();
    let expected = base64::engine::general_purpose::STANDARD.encode(key.sign(&challenge).unwrap());
    let url = fake_server(move |req| match req {
        ClientMessage::Identification { corr_id, .. } => {
            vec![encode_server(&ServerMessage::Challenge {
                corr_id,
                challenge: b64.clone(),
            })]
        }
        ClientMessage::Signature { corr_id, signature } => {
            vec![response(corr_id, signature == expected, "Authenticated")]
        }
        _ => vec![],
    })
    .await;
    let c = Client::connect(&url).await.unwrap();
    c.authenticate("alice", Some(&key)).await.unwrap();
}

#[tokio::test]
async fn bad_challenges_are_refused_client_side() {
    let url = fake_server(|req| match req {
        ClientMessage::Identification { corr_id, username } => {
            let text = if username == "short" {
                "AAEC"
            } else {
                "not base64!"
            };
            vec![response(corr_id, true, text)]
        }
        _ => vec![],
    })
    .await;
    let seed = [3u8; 32];
    let pem = ssh_key::PrivateKey::from(ssh_key::private::Ed25519Keypair::from_seed(&seed))
        .to_openssh(ssh_key::LineEnding::LF)
        .unwrap();
    let key = PrivateKey::from_bytes(pem.as_bytes(), None).unwrap();
    let c = Client::connect(&url).await.unwrap();
    let e = c.authenticate("short", Some(&key)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol);
    assert!(e.message().contains("expected 48"), "{e}");
    assert_eq!(
        kind(c.authenticate("other", Some(&key)).await),
        ErrorKind::Protocol
    );
}

fn blob_chunk(hash: &str, index: u64, total: u64, data: &[u8]) -> Vec<u8> {
    encode_server(&ServerMessage::DownloadBlob {
        corr_id: 0,
        instance_id: ID.into(),
        blob_hash: hash.into(),
        chunk_index: index,
        total_chunks: total,
        chunk_data: data.to_vec(),
    })
}

#[tokio::test]
async fn blob_reassembly_drops_inconsistent_downloads() {
    let good: Vec<u8> = (0..(2 * 262_144 + 10)).map(|i| (i % 253) as u8).collect();
    let gh = pie::hash_blob(&good);
    let other = b"second".to_vec();
    let oh = pie::hash_blob(&other);
    let url = fake_server(move |req| match req {
        ClientMessage::LaunchInstance { corr_id, .. } => {
            let mut f = vec![encode_server(&ServerMessage::InstanceLaunchResult {
                corr_id,
                successful: true,
                // Upper case on the wire: routing normalises ids.
                message: ID.to_uppercase(),
            })];
            let c = |i: usize| &good[i * 262_144..((i + 1) * 262_144).min(good.len())];
            // 1. chunk without a start; 2. a gap; 3. total changes; 4. wrong hash;
            // 5. a restart at chunk 0 then a complete, correct blob; 6. a one-chunk blob.
            f.push(blob_chunk(&gh, 1, 3, c(1)));
            f.push(blob_chunk(&gh, 0, 3, c(0)));
            f.push(blob_chunk(&gh, 2, 3, c(2)));
            f.push(blob_chunk(&gh, 0, 3, c(0)));
            f.push(blob_chunk(&gh, 1, 4, c(1)));
            let wrong = pie::hash_blob(b"wrong");
            f.push(blob_chunk(&wrong, 0, 1, b"data"));
            f.push(blob_chunk(&gh, 0, 3, c(0)));
            f.push(blob_chunk(&gh, 0, 3, c(0)));
            f.push(blob_chunk(&gh, 1, 3, c(1)));
            f.push(blob_chunk(&gh, 2, 3, c(2)));
            f.push(blob_chunk(&oh, 0, 1, &other));
            f.push(encode_server(&ServerMessage::InstanceEvent {
                instance_id: ID.into(),
                event: 1,
                message: "done".into(),
            }));
            f
        }
        ClientMessage::Ping { corr_id } => vec![response(corr_id, true, "Pong")],
        _ => vec![],
    })
    .await;
    let c = Client::connect(&url).await.unwrap();
    let inst = c.launch_instance("h", vec![], false).await.unwrap();
    assert_eq!(inst.id(), ID);
    let events = tokio::time::timeout(deadline(), collect(&inst))
        .await
        .unwrap();
    let good2: Vec<u8> = (0..(2 * 262_144 + 10)).map(|i| (i % 253) as u8).collect();
    assert_eq!(
        events,
        vec![
            InstanceEvent::Blob(good2),
            InstanceEvent::Blob(b"second".to_vec()),
            InstanceEvent::Completed("done".into())
        ]
    );
    c.ping().await.unwrap();
    let d = c.debug_counts();
    assert_eq!((d.blob_assemblies, d.instances), (0, 0));
    assert!(d.dropped_blobs >= 4, "{d:?}");
}

#[tokio::test]
async fn notify_hook_fires_per_event_and_at_stream_end() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let url = fake_server(|req| match req {
        ClientMessage::LaunchInstance { corr_id, .. } => {
            vec![encode_server(&ServerMessage::InstanceLaunchResult {
                corr_id,
                successful: true,
                message: ID.into(),
            })]
        }
        ClientMessage::SignalInstance { message, .. } => {
            let code = if message == "end" { 1 } else { 0 };
            vec![encode_server(&ServerMessage::InstanceEvent {
                instance_id: ID.into(),
                event: code,
                message,
            })]
        }
        _ => vec![],
    })
    .await;
    let c = Client::connect(&url).await.unwrap();
    let inst = c.launch_instance("h", vec![], false).await.unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let h2 = hits.clone();
    inst.set_notify(Some(Arc::new(move || {
        h2.fetch_add(1, Ordering::SeqCst);
    })));
    inst.send("a").await.unwrap();
    assert_eq!(
        recv(&inst).await.unwrap(),
        InstanceEvent::Message("a".into())
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    assert_eq!(inst.try_recv().unwrap(), None);
    inst.send("end").await.unwrap();
    assert_eq!(
        recv(&inst).await.unwrap(),
        InstanceEvent::Completed("end".into())
    );
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    // The stream of an instance that is still routed ends at close (one more notification).
    let inst2 = c.launch_instance("h", vec![], false).await.unwrap();
    let hits2 = Arc::new(AtomicUsize::new(0));
    let h3 = hits2.clone();
    inst2.set_notify(Some(Arc::new(move || {
        h3.fetch_add(1, Ordering::SeqCst);
    })));
    let t = std::time::Instant::now();
    c.close().await.unwrap();
    assert!(t.elapsed() < Duration::from_secs(3));
    assert_eq!(hits2.load(Ordering::SeqCst), 1);
    assert_eq!(kind(inst2.try_recv()), ErrorKind::ClientClosed);
}

/// A server that answers launches after `delay`, and reports how many launch requests had
/// arrived (read off the socket) at the moment each reply was sent.
async fn slow_launch_server(
    delay: Duration,
) -> (String, tokio::sync::mpsc::UnboundedReceiver<usize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (report_tx, report_rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        let (mut sink, mut stream) = ws.split();
        let arrived = Arc::new(AtomicUsize::new(0));
        let (req_tx, mut req_rx) = tokio::sync::mpsc::unbounded_channel();
        let a2 = arrived.clone();
        tokio::spawn(async move {
            while let Some(Ok(Message::Binary(data))) = stream.next().await {
                if let Ok(ClientMessage::LaunchInstance { corr_id, .. }) = decode_client(&data) {
                    a2.fetch_add(1, Ordering::SeqCst);
                    let _ = req_tx.send(corr_id);
                }
            }
        });
        let mut n = 0u32;
        while let Some(corr_id) = req_rx.recv().await {
            tokio::time::sleep(delay).await;
            n += 1;
            let _ = report_tx.send(arrived.load(Ordering::SeqCst));
            let reply = encode_server(&ServerMessage::InstanceLaunchResult {
                corr_id,
                successful: true,
                message: format!("00000000-0000-0000-0000-{n:012}"),
            });
            if sink.send(Message::Binary(reply.into())).await.is_err() {
                return;
            }
        }
    });
    (format!("ws://{addr}"), report_rx)
}

#[tokio::test]
async fn launches_in_flight_are_limited() {
    for (limit, expect_max) in [(1usize, 1usize), (2, 2), (0, 5)] {
        let (url, mut reports) = slow_launch_server(Duration::from_millis(30)).await;
        let config = pie::ClientConfig {
            max_launches_in_flight: limit,
            ..pie::ClientConfig::default()
        };
        let c = Client::connect_with(&url, config).await.unwrap();
        let launches: Vec<_> = (0..5)
            .map(|_| c.launch_instance("h", vec![], false))
            .collect();
        let instances = futures_util::future::join_all(launches).await;
        let mut ids: Vec<String> = instances
            .into_iter()
            .map(|r| r.unwrap().id().to_string())
            .collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 5);
        // At reply k (1-based), how many launches had the server received? With a limit of
        // L, at most k - 1 + L.
        let mut max_outstanding = 0;
        for k in 1..=5usize {
            let arrived = reports.recv().await.unwrap();
            max_outstanding = max_outstanding.max(arrived - (k - 1));
        }
        assert_eq!(max_outstanding, expect_max, "limit {limit}");
    }
}

#[tokio::test]
async fn a_launch_cancelled_after_its_reply_leaves_no_route() {
    use std::future::Future;
    let url = fake_server(|req| match req {
        ClientMessage::LaunchInstance { corr_id, .. } => vec![
            encode_server(&ServerMessage::InstanceLaunchResult {
                corr_id,
                successful: true,
                message: ID.into(),
            }),
            encode_server(&ServerMessage::StreamingOutput {
                instance_id: ID.into(),
                output: pie::wire::StreamingOutput::Stdout("unread".into()),
            }),
        ],
        ClientMessage::Ping { corr_id } => vec![response(corr_id, true, "Pong")],
        _ => vec![],
    })
    .await;
    let c = Client::connect(&url).await.unwrap();
    let mut launch = Box::pin(c.launch_instance("h", vec![], false));
    // One poll sends the request; then the reply is delivered while nobody polls.
    std::future::poll_fn(|cx| {
        let _ = launch.as_mut().poll(cx);
        std::task::Poll::Ready(())
    })
    .await;
    crate::support::until(|| {
        let d = c.debug_counts();
        d.pending == 0 && d.instances == 1
    })
    .await;
    drop(launch);
    c.ping().await.unwrap();
    assert_eq!(c.debug_counts().instances, 0);
}
