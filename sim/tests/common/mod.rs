//! A minimal raw Pie client for testing the simulator: tokio-tungstenite + the wire module.
#![allow(dead_code)]

use futures_util::{SinkExt, StreamExt};
use pie_sim::wire::{self, ClientMessage, ServerMessage};
use pie_sim::{SimConfig, Simulator};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

pub const TIMEOUT: Duration = Duration::from_secs(10);

pub fn sim() -> Simulator {
    Simulator::start(SimConfig::default()).expect("simulator starts")
}

/// What a read produced.
#[derive(Debug)]
pub enum Got {
    Msg(ServerMessage),
    /// The connection ended (Close frame or EOF).
    Closed,
    Timeout,
}

pub struct Raw {
    pub ws: WebSocketStream<TcpStream>,
    pub next: u32,
}

impl Raw {
    pub async fn connect(sim: &Simulator) -> Raw {
        let tcp = TcpStream::connect(sim.addr()).await.expect("tcp connect");
        tcp.set_nodelay(true).unwrap();
        let (ws, _) = tokio_tungstenite::client_async(format!("ws://{}/", sim.addr()), tcp)
            .await
            .expect("websocket handshake");
        Raw { ws, next: 1 }
    }

    /// Connected and identified with authentication off.
    pub async fn login(sim: &Simulator, user: &str) -> Raw {
        let mut c = Raw::connect(sim).await;
        let r = c
            .request(&ClientMessage::Identification {
                corr_id: 0,
                username: user.into(),
            })
            .await;
        assert_eq!(r, response(0, true, wire::TEXT_AUTH_DISABLED));
        c
    }

    pub async fn internal(sim: &Simulator) -> Raw {
        let mut c = Raw::connect(sim).await;
        let r = c
            .request(&ClientMessage::InternalAuthenticate {
                corr_id: 0,
                token: sim.internal_token().into(),
            })
            .await;
        assert_eq!(r, response(0, true, "Authenticated"));
        c
    }

    /// The corr_id the last `cid()` returned.
    pub fn cid_value(&self) -> u32 {
        self.next
    }

    pub fn cid(&mut self) -> u32 {
        self.next += 1;
        self.next
    }

    pub async fn send(&mut self, msg: &ClientMessage) {
        self.ws
            .send(Message::Binary(wire::encode_client(msg).into()))
            .await
            .expect("send");
    }

    pub async fn send_raw(&mut self, msg: Message) {
        self.ws.send(msg).await.expect("send");
    }

    pub async fn next(&mut self, timeout: Duration) -> Got {
        loop {
            match tokio::time::timeout(timeout, self.ws.next()).await {
                Err(_) => return Got::Timeout,
                Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => {
                    return Got::Closed
                }
                Ok(Some(Ok(Message::Binary(b)))) => {
                    return Got::Msg(wire::decode_server(&b).expect("server frames decode"))
                }
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    pub async fn recv(&mut self) -> ServerMessage {
        match self.next(TIMEOUT).await {
            Got::Msg(m) => m,
            other => panic!("expected a message, got {other:?}"),
        }
    }

    pub async fn request(&mut self, msg: &ClientMessage) -> ServerMessage {
        self.send(msg).await;
        self.recv().await
    }

    pub async fn expect_closed(&mut self) {
        match self.next(Duration::from_secs(5)).await {
            Got::Closed => {}
            other => panic!("expected the connection to close, got {other:?}"),
        }
    }

    /// The server ends the session: a Close frame without status code (§1), nothing before it.
    pub async fn expect_close_without_code(&mut self) {
        match tokio::time::timeout(TIMEOUT, self.ws.next()).await {
            Ok(Some(Ok(Message::Close(None)))) => {}
            other => panic!("expected a Close frame without status code, got {other:?}"),
        }
    }

    pub async fn expect_silence(&mut self, dur: Duration) {
        match self.next(dur).await {
            Got::Timeout => {}
            other => panic!("expected silence, got {other:?}"),
        }
    }

    pub async fn ping(&mut self) {
        let c = self.cid();
        let r = self.request(&ClientMessage::Ping { corr_id: c }).await;
        assert_eq!(r, response(c, true, "Pong"));
    }

    pub async fn upload(&mut self, program: &[u8]) -> ServerMessage {
        let c = self.cid();
        let hash = wire::hash_blob(program);
        let total = wire::chunk_count(program.len());
        for (i, chunk) in wire::chunks(program) {
            self.send(&ClientMessage::UploadProgram {
                corr_id: c,
                program_hash: hash.clone(),
                chunk_index: i,
                total_chunks: total,
                chunk_data: chunk.to_vec(),
            })
            .await;
        }
        self.recv().await
    }

    /// Upload (must succeed) and return the hash.
    pub async fn install(&mut self, program: &[u8]) -> String {
        let hash = wire::hash_blob(program);
        let r = self.upload(program).await;
        assert!(
            matches!(&r, ServerMessage::Response { successful: true, result, .. } if *result == hash),
            "{r:?}"
        );
        hash
    }

    pub async fn launch(&mut self, hash: &str, args: &[&str], detached: bool) -> String {
        let c = self.cid();
        let r = self
            .request(&ClientMessage::LaunchInstance {
                corr_id: c,
                program_hash: hash.into(),
                arguments: args.iter().map(|s| s.to_string()).collect(),
                detached,
            })
            .await;
        match r {
            ServerMessage::InstanceLaunchResult {
                corr_id,
                successful: true,
                message,
            } if corr_id == c => message,
            other => panic!("launch failed: {other:?}"),
        }
    }

    pub async fn launch_registry(
        &mut self,
        name: &str,
        args: &[&str],
        detached: bool,
    ) -> ServerMessage {
        let c = self.cid();
        self.request(&ClientMessage::LaunchInstanceFromRegistry {
            corr_id: c,
            inferlet: name.into(),
            arguments: args.iter().map(|s| s.to_string()).collect(),
            detached,
        })
        .await
    }

    pub async fn attach(&mut self, id: &str) -> ServerMessage {
        let c = self.cid();
        self.request(&ClientMessage::AttachInstance {
            corr_id: c,
            instance_id: id.into(),
        })
        .await
    }

    pub async fn terminate(&mut self, id: &str) -> ServerMessage {
        let c = self.cid();
        self.request(&ClientMessage::TerminateInstance {
            corr_id: c,
            instance_id: id.into(),
        })
        .await
    }

    pub async fn list(&mut self) -> Vec<wire::InstanceInfo> {
        let c = self.cid();
        match self
            .request(&ClientMessage::ListInstances { corr_id: c })
            .await
        {
            ServerMessage::LiveInstances { corr_id, instances } if corr_id == c => instances,
            other => panic!("expected live_instances, got {other:?}"),
        }
    }

    pub async fn signal(&mut self, id: &str, message: &str) {
        self.send(&ClientMessage::SignalInstance {
            instance_id: id.into(),
            message: message.into(),
        })
        .await;
    }

    pub async fn upload_blob(&mut self, id: &str, blob: &[u8]) -> ServerMessage {
        let c = self.cid();
        let hash = wire::hash_blob(blob);
        let total = wire::chunk_count(blob.len());
        for (i, chunk) in wire::chunks(blob) {
            self.send(&ClientMessage::UploadBlob {
                corr_id: c,
                instance_id: id.into(),
                blob_hash: hash.clone(),
                chunk_index: i,
                total_chunks: total,
                chunk_data: chunk.to_vec(),
            })
            .await;
        }
        self.recv().await
    }

    /// Every frame until the terminal event of `id` (inclusive).
    pub async fn until_terminal(&mut self, id: &str) -> Vec<ServerMessage> {
        let mut out = Vec::new();
        loop {
            let m = self.recv().await;
            let done = matches!(&m, ServerMessage::InstanceEvent { instance_id, event, .. } if instance_id == id && *event != 0);
            out.push(m);
            if done {
                return out;
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

pub fn response(corr_id: u32, successful: bool, result: &str) -> ServerMessage {
    ServerMessage::Response {
        corr_id,
        successful,
        result: result.into(),
    }
}

/// A compact description of instance frames, for order assertions.
pub fn kinds(frames: &[ServerMessage]) -> Vec<String> {
    frames
        .iter()
        .map(|f| match f {
            ServerMessage::StreamingOutput { output, .. } => match output {
                wire::StreamingOutput::Stdout(t) => format!("out:{t}"),
                wire::StreamingOutput::Stderr(t) => format!("err:{t}"),
            },
            ServerMessage::InstanceEvent { event, message, .. } => format!("ev{event}:{message}"),
            ServerMessage::DownloadBlob {
                chunk_index,
                total_chunks,
                ..
            } => format!("blob:{chunk_index}/{total_chunks}"),
            other => format!("{other:?}"),
        })
        .collect()
}
