//! The client's reader and routing logic under hostile server output. A fake server (in this
//! process, over loopback) answers the client's launch, then sends frames built from the fuzz
//! input — raw bytes, text frames, events for the instance / other ids / odd spellings of its
//! id, blob chunks with any index/total/hash, replies with any corr_id and type — and may drop
//! the connection. Afterwards the client must still answer a ping (or report the dropped
//! connection), never panic, and the instance's stream must obey the documented invariants.
#![no_main]

use futures_util::{SinkExt, StreamExt};
use libfuzzer_sys::fuzz_target;
use pie::wire::{self, ClientMessage, ServerMessage, StreamingOutput};
use pie::{Client, ClientConfig, ErrorKind, InstanceEvent};
use std::sync::OnceLock;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

const ID: &str = "67e55044-10b1-426f-9247-bb680e5fe0c8";
const QUEUE_LIMIT: usize = 4096;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

/// Reads the fuzz input as a sequence of (op, payload) records.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn bytes(&mut self) -> &'a [u8] {
        let n = (self.byte().unwrap_or(0) as usize).min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }
    fn text(&mut self) -> String {
        String::from_utf8_lossy(self.bytes()).into_owned()
    }
    fn id(&mut self) -> String {
        match self.byte().unwrap_or(0) % 5 {
            0 | 1 => ID.to_string(),
            2 => ID.to_ascii_uppercase(),
            3 => ID.replace('-', ""),
            _ => self.text(),
        }
    }
}

enum Out {
    Frame(Message),
    Drop,
}

fn frames(data: &[u8]) -> Vec<Out> {
    let mut inp = Input(data);
    let mut out = Vec::new();
    while let Some(op) = inp.byte() {
        let msg = match op % 9 {
            0 => Message::Binary(inp.bytes().to_vec().into()),
            1 => Message::Text(inp.text().into()),
            2 => {
                let id = inp.id();
                let code = inp.byte().unwrap_or(0) as u32 % 12;
                enc(ServerMessage::InstanceEvent {
                    instance_id: id,
                    event: code,
                    message: inp.text(),
                })
            }
            3 => {
                let id = inp.id();
                let t = inp.text();
                let output = if inp.byte().unwrap_or(0) % 2 == 0 {
                    StreamingOutput::Stdout(t)
                } else {
                    StreamingOutput::Stderr(t)
                };
                enc(ServerMessage::StreamingOutput {
                    instance_id: id,
                    output,
                })
            }
            4 => {
                let id = inp.id();
                let sel = inp.byte().unwrap_or(0);
                let chunk_index = (sel & 3) as u64;
                let total_chunks = ((sel >> 2) & 3) as u64;
                let data = inp.bytes().to_vec();
                let blob_hash = match sel >> 4 {
                    0..=7 => wire::hash_blob(&data),
                    8..=11 => wire::hash_blob(b"fuzz blob"),
                    _ => inp.text(),
                };
                enc(ServerMessage::DownloadBlob {
                    corr_id: 0,
                    instance_id: id,
                    blob_hash,
                    chunk_index,
                    total_chunks,
                    chunk_data: data,
                })
            }
            5 => {
                let corr_id = inp.byte().unwrap_or(0) as u32 % 6;
                let successful = inp.byte().unwrap_or(0) % 2 == 0;
                enc(ServerMessage::Response {
                    corr_id,
                    successful,
                    result: inp.text(),
                })
            }
            6 => {
                let corr_id = inp.byte().unwrap_or(0) as u32 % 6;
                let successful = inp.byte().unwrap_or(0) % 2 == 0;
                let message = inp.id();
                if inp.byte().unwrap_or(0) % 2 == 0 {
                    enc(ServerMessage::InstanceLaunchResult {
                        corr_id,
                        successful,
                        message,
                    })
                } else {
                    enc(ServerMessage::InstanceAttachResult {
                        corr_id,
                        successful,
                        message,
                    })
                }
            }
            7 => {
                let corr_id = inp.byte().unwrap_or(0) as u32 % 6;
                enc(ServerMessage::LiveInstances {
                    corr_id,
                    instances: vec![],
                })
            }
            _ => {
                out.push(Out::Drop);
                break;
            }
        };
        out.push(Out::Frame(msg));
    }
    out
}

fn enc(m: ServerMessage) -> Message {
    Message::Binary(wire::encode_server(&m).into())
}

async fn fake_server(listener: TcpListener, script: Vec<Out>) {
    let Ok((tcp, _)) = listener.accept().await else {
        return;
    };
    let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
        return;
    };
    let mut script = Some(script);
    while let Some(Ok(msg)) = ws.next().await {
        let Message::Binary(data) = msg else { continue };
        let Ok(req) = wire::decode_client(&data) else {
            continue;
        };
        let reply = match req {
            ClientMessage::LaunchInstance { corr_id, .. } => ServerMessage::InstanceLaunchResult {
                corr_id,
                successful: true,
                message: ID.into(),
            },
            ClientMessage::Ping { corr_id } => ServerMessage::Response {
                corr_id,
                successful: true,
                result: "Pong".into(),
            },
            _ => continue,
        };
        if ws.send(enc(reply)).await.is_err() {
            return;
        }
        if let Some(script) = script.take() {
            for out in script {
                match out {
                    Out::Frame(m) => {
                        if ws.send(m).await.is_err() {
                            return;
                        }
                    }
                    // Abrupt end, no Close frame.
                    Out::Drop => return,
                }
            }
        }
    }
}

async fn run(data: &[u8]) {
    let script = frames(data);
    let dropped = script.iter().any(|o| matches!(o, Out::Drop));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(fake_server(listener, script));
    let config = ClientConfig {
        request_timeout: Duration::from_secs(5),
        instance_queue_limit_bytes: QUEUE_LIMIT,
        ..ClientConfig::default()
    };
    let client = Client::connect_with(&url, config).await.expect("connect");
    let inst = client
        .launch_instance("h", vec![], false)
        .await
        .expect("launch");
    assert_eq!(inst.id(), ID);
    match client.ping().await {
        Ok(()) => {}
        // A fuzzed reply for the ping's corr_id may win the race against the real one.
        Err(e) if matches!(e.kind(), ErrorKind::Server | ErrorKind::Protocol) => {}
        Err(e) if dropped && e.kind() == ErrorKind::ConnectionClosed => {}
        Err(e) => panic!("ping failed: {e}"),
    }
    // The instance's stream: nothing after a terminal event, overflow markers count > 0.
    let mut terminal = false;
    loop {
        match inst.try_recv() {
            Ok(Some(ev)) => {
                assert!(!terminal, "event after the terminal event: {ev:?}");
                terminal = ev.is_terminal();
                if let InstanceEvent::Overflow { dropped } = ev {
                    assert!(dropped > 0);
                }
                if let InstanceEvent::Blob(b) = &ev {
                    assert!(b.len() <= QUEUE_LIMIT);
                }
            }
            Ok(None) => break,
            Err(e) => {
                assert!(
                    matches!(
                        e.kind(),
                        ErrorKind::StreamEnded | ErrorKind::ConnectionClosed
                    ),
                    "{e}"
                );
                break;
            }
        }
    }
    tokio::time::timeout(Duration::from_secs(3), client.close())
        .await
        .expect("close is bounded")
        .unwrap();
    drop(inst);
    server.abort();
}

fuzz_target!(|data: &[u8]| {
    runtime().block_on(run(data));
});
