//! One connection: a reader task feeding one queue, and the session loop taking requests and
//! instance output from that queue strictly in arrival order (§3.2). Replies are written by the
//! session loop while it handles a request, so they leave in request order and always before
//! any output the request causes (that output is queued behind).

use crate::auth::{TEXT_ALREADY, TEXT_AUTHENTICATED, TEXT_INVALID_TOKEN};
use crate::codec::{self, encode, ClientMessage, ServerMessage, CHUNK_SIZE, TEXT_AUTH_DISABLED};
use crate::faults::{Faults, Garbage};
use crate::server::{ConnCtl, Shared};
use crate::{base64, behaviour, registry};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use uuid::Uuid;

/// Items a connection's queue holds before the session stops reading (about 1000 on the real
/// server, Q28). Requests and instance output share it; control items bypass it.
pub const QUEUE_LIMIT: usize = 1000;

/// How instances (and other connections) reach a connection.
pub struct ConnRef {
    pub id: u64,
    pub tx: mpsc::UnboundedSender<Item>,
    pub sem: Arc<Semaphore>,
}

pub enum Item {
    Request(ClientMessage, OwnedSemaphorePermit),
    /// Pre-encoded frames to send back to back (one output event, or all chunks of a blob).
    Frames(Vec<Vec<u8>>, Option<OwnedSemaphorePermit>),
    Garbage(Garbage),
    /// The client sent a Close frame.
    ClientClosed,
    /// The socket ended (EOF, reset, or a WebSocket protocol error).
    ReadEnded,
}

enum Phase {
    First,
    Challenge {
        username: String,
        challenge: [u8; 48],
    },
    Authed(String),
}

#[derive(Debug, PartialEq, Eq)]
enum End {
    /// Server-side reason: Close frame without status code, then drop.
    ServerClose,
    /// The client closed: answer its close handshake.
    ClientClose,
    /// The socket is gone.
    Gone,
    /// Killed: drop the socket without a Close frame.
    Abrupt,
}

struct Upload {
    total: u64,
    expected: u64,
    data: Vec<u8>,
}

type Sink<S> = SplitSink<WebSocketStream<S>, Message>;

struct Session<S> {
    shared: Arc<Shared>,
    conn: Arc<ConnRef>,
    sink: Sink<S>,
    phase: Phase,
    upload: Option<Upload>,
    blobs: HashMap<String, Upload>,
    client_closed: Arc<AtomicBool>,
    frames_sent: u64,
    write_broken: bool,
    /// Q1 / wedged: the session answers nothing any more and never tears down.
    hung: bool,
    drop_now: bool,
}

/// Serve one WebSocket connection until it ends.
pub async fn serve<S>(shared: Arc<Shared>, ws: WebSocketStream<S>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let id = shared.next_conn_id();
    let (sink, stream) = ws.split();
    let (tx, rx) = mpsc::unbounded_channel();
    let sem = Arc::new(Semaphore::new(QUEUE_LIMIT));
    let conn = Arc::new(ConnRef {
        id,
        tx: tx.clone(),
        sem: sem.clone(),
    });
    let (kill_tx, mut kill_rx) = watch::channel(false);
    shared.register_conn(
        id,
        ConnCtl {
            kill: kill_tx,
            tx: tx.clone(),
        },
    );
    let client_closed = Arc::new(AtomicBool::new(false));
    let reader = tokio::spawn(read_loop(stream, tx, sem, client_closed.clone()));
    let mut s = Session {
        shared: shared.clone(),
        conn,
        sink,
        phase: Phase::First,
        upload: None,
        blobs: HashMap::new(),
        client_closed,
        frames_sent: 0,
        write_broken: false,
        hung: false,
        drop_now: false,
    };
    let end = tokio::select! {
        end = s.run(rx) => end,
        _ = kill_rx.wait_for(|k| *k) => End::Abrupt,
    };
    reader.abort();
    let grace = Duration::from_secs(1);
    match end {
        End::ServerClose => {
            // A Close frame without status code (peers report 1005), then drop the socket.
            let _ = tokio::time::timeout(grace, s.sink.send(Message::Close(None))).await;
        }
        End::ClientClose => {
            // Writes the close reply tungstenite queued when it read the client's Close.
            let _ = tokio::time::timeout(grace, s.sink.flush()).await;
        }
        End::Gone | End::Abrupt => {}
    }
    drop(s);
    shared.unregister_conn(id);
    shared.instances.detach_all(id);
}

async fn read_loop<S>(
    mut stream: SplitStream<WebSocketStream<S>>,
    tx: mpsc::UnboundedSender<Item>,
    sem: Arc<Semaphore>,
    client_closed: Arc<AtomicBool>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    while let Some(msg) = stream.next().await {
        match msg {
            Ok(Message::Binary(data)) => {
                // Undecodable frames are skipped without a trace (§1, §2.4).
                let Ok(req) = codec::decode_client(&data) else {
                    continue;
                };
                let Ok(permit) = sem.clone().acquire_owned().await else {
                    return;
                };
                if tx.send(Item::Request(req, permit)).is_err() {
                    return;
                }
            }
            Ok(Message::Close(_)) => {
                client_closed.store(true, Ordering::SeqCst);
                let _ = tx.send(Item::ClientClosed);
                return;
            }
            // Text frames are ignored; pings are answered by tungstenite itself.
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let _ = tx.send(Item::ReadEnded);
}

fn response(corr_id: u32, successful: bool, result: impl AsRef<str>) -> Vec<u8> {
    encode::response(corr_id, successful, result.as_ref())
}

impl<S> Session<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    async fn run(&mut self, mut rx: mpsc::UnboundedReceiver<Item>) -> End {
        loop {
            let item = match rx.try_recv() {
                Ok(item) => item,
                Err(mpsc::error::TryRecvError::Empty) => {
                    // Queue drained: push what was written so far onto the socket.
                    self.flush().await;
                    match rx.recv().await {
                        Some(item) => item,
                        None => return End::Gone,
                    }
                }
                Err(mpsc::error::TryRecvError::Disconnected) => return End::Gone,
            };
            if let Some(end) = self.handle_item(item).await {
                return end;
            }
            if self.drop_now {
                return End::Abrupt;
            }
        }
    }

    async fn flush(&mut self) {
        if !self.write_broken
            && !self.client_closed.load(Ordering::Relaxed)
            && self.sink.flush().await.is_err()
        {
            self.write_broken = true;
        }
    }

    async fn handle_item(&mut self, item: Item) -> Option<End> {
        match item {
            // A hung session (Q1) never goes through teardown: its instances stay attached.
            Item::ClientClosed if !self.hung => Some(End::ClientClose),
            Item::ReadEnded if !self.hung => Some(End::Gone),
            _ if self.hung || self.shared.silenced() => None,
            Item::Request(req, _permit) => self.handle_request(req).await,
            Item::Frames(frames, _permit) => {
                for f in frames {
                    self.write(f).await;
                }
                None
            }
            Item::Garbage(g) => {
                if matches!(self.phase, Phase::Authed(_)) {
                    self.send_garbage(g).await;
                }
                None
            }
            Item::ClientClosed | Item::ReadEnded => None,
        }
    }

    async fn write(&mut self, frame: Vec<u8>) {
        self.write_message(Message::Binary(frame.into())).await;
    }

    async fn write_message(&mut self, msg: Message) {
        // After the client's Close, unwritten output is discarded (§1).
        if self.write_broken || self.drop_now || self.client_closed.load(Ordering::Relaxed) {
            return;
        }
        // One socket write per frame, like the real server: with Nagle on, a small frame
        // written right behind another waits for the client's ACK (the delayed-ACK stall of
        // §16), which clients and benchmarks must be able to observe.
        if self.sink.send(msg).await.is_err() {
            self.write_broken = true;
            return;
        }
        self.frames_sent += 1;
        let limit = self.shared.faults.drop_after_frames.load(Ordering::Relaxed);
        if limit > 0 && self.frames_sent >= limit {
            self.drop_now = true;
        }
    }

    async fn respond(&mut self, corr_id: u32, successful: bool, result: impl AsRef<str>) {
        self.write(response(corr_id, successful, result)).await;
    }

    fn username(&self) -> &str {
        match &self.phase {
            Phase::Authed(u) => u,
            _ => "",
        }
    }

    async fn handle_request(&mut self, req: ClientMessage) -> Option<End> {
        match &self.phase {
            Phase::First => return self.first_message(req).await,
            Phase::Challenge { .. } => return self.signature_step(req).await,
            Phase::Authed(_) => {}
        }
        use ClientMessage::*;
        match req {
            Identification { corr_id, .. }
            | Signature { corr_id, .. }
            | InternalAuthenticate { corr_id, .. } => {
                self.respond(corr_id, true, TEXT_ALREADY).await;
            }
            Ping { corr_id } => self.respond(corr_id, true, "Pong").await,
            Query {
                corr_id,
                subject,
                record,
            } => match subject.as_str() {
                "program_exists" => {
                    let known = self.shared.programs.contains(&record);
                    self.respond(corr_id, true, if known { "true" } else { "false" })
                        .await;
                }
                // No models in the simulator: empty statistics.
                "model_status" => self.respond(corr_id, true, "{}").await,
                "backend_stats" => self.respond(corr_id, true, "").await,
                // Unknown subjects get no reply at all (Q11).
                _ => {}
            },
            UploadProgram {
                corr_id,
                program_hash,
                chunk_index,
                total_chunks,
                chunk_data,
            } => {
                return self
                    .upload_program(corr_id, program_hash, chunk_index, total_chunks, chunk_data)
                    .await;
            }
            LaunchInstance {
                corr_id,
                program_hash,
                arguments,
                detached,
            } => {
                if Faults::on(&self.shared.faults.wedge_launches) {
                    self.hung = true;
                    return None;
                }
                let program = self
                    .shared
                    .programs
                    .get(&program_hash)
                    .ok_or_else(|| format!("No such program with hash={program_hash}"));
                self.launch(corr_id, program, arguments, detached).await;
            }
            LaunchInstanceFromRegistry {
                corr_id,
                inferlet,
                arguments,
                detached,
            } => {
                if Faults::on(&self.shared.faults.wedge_launches) {
                    self.hung = true;
                    return None;
                }
                let program = registry::fetch(&self.shared.registry, &inferlet).and_then(|b| {
                    // A registry download that does not compile gets a proper failure (§6.5).
                    if !crate::programs::is_valid_program(&b) {
                        return Err(
                            "Failed to register program: Runtime error: Failed to compile".into(),
                        );
                    }
                    let hash = self.shared.programs.insert(b);
                    self.shared
                        .programs
                        .get(&hash)
                        .ok_or_else(|| format!("No such program with hash={hash}"))
                });
                self.launch(corr_id, program, arguments, detached).await;
            }
            AttachInstance {
                corr_id,
                instance_id,
            } => self.attach(corr_id, &instance_id).await,
            ListInstances { corr_id } => {
                let instances = self.shared.instances.list(self.username());
                let frame =
                    codec::encode_server(&ServerMessage::LiveInstances { corr_id, instances });
                self.write(frame).await;
            }
            TerminateInstance {
                corr_id,
                instance_id,
            } => match Uuid::parse_str(&instance_id) {
                Err(_) => self.respond(corr_id, false, "Malformed instance ID").await,
                Ok(id) => {
                    // Always succeeds (Q13). The instance is gone before the reply leaves; the
                    // attached connection's Aborted event goes through its queue, so on this
                    // connection it follows this response.
                    self.shared.instances.terminate(id);
                    self.respond(corr_id, true, "Instance terminated").await;
                }
            },
            SignalInstance {
                instance_id,
                message,
            } => {
                if let Ok(id) = Uuid::parse_str(&instance_id) {
                    self.shared.instances.signal(id, self.conn.id, message);
                }
            }
            UploadBlob {
                corr_id,
                instance_id,
                blob_hash,
                chunk_index,
                total_chunks,
                chunk_data,
            } => {
                self.upload_blob(
                    corr_id,
                    instance_id,
                    blob_hash,
                    chunk_index,
                    total_chunks,
                    chunk_data,
                )
                .await;
            }
            LaunchServerInstance { corr_id, .. } => {
                // Always reported as launched (Q21); the simulator serves no HTTP.
                self.respond(corr_id, true, "server launched").await;
            }
            AttachRemoteService { corr_id, .. } => {
                self.respond(
                    corr_id,
                    false,
                    "Remote service attachment is not supported in FFI mode",
                )
                .await;
            }
        }
        None
    }

    async fn first_message(&mut self, req: ClientMessage) -> Option<End> {
        let auth = &self.shared.auth;
        match req {
            ClientMessage::Identification { corr_id, username } => {
                if !auth.enabled {
                    self.phase = Phase::Authed(username);
                    self.respond(corr_id, true, TEXT_AUTH_DISABLED).await;
                    None
                } else if auth.users.contains_key(&username) {
                    let challenge = auth.new_challenge();
                    self.phase = Phase::Challenge {
                        username,
                        challenge,
                    };
                    self.respond(corr_id, true, base64::encode(&challenge))
                        .await;
                    None
                } else {
                    let text = format!("User '{username}' is not authorized");
                    self.respond(corr_id, false, text).await;
                    Some(End::ServerClose)
                }
            }
            ClientMessage::InternalAuthenticate { corr_id, token } => {
                if token == auth.internal_token {
                    self.phase = Phase::Authed("internal".into());
                    self.respond(corr_id, true, TEXT_AUTHENTICATED).await;
                    None
                } else {
                    tokio::time::sleep(auth.bad_token_delay()).await;
                    self.respond(corr_id, false, TEXT_INVALID_TOKEN).await;
                    Some(End::ServerClose)
                }
            }
            // Anything else first: close without a reply (§5.6).
            _ => Some(End::ServerClose),
        }
    }

    async fn signature_step(&mut self, req: ClientMessage) -> Option<End> {
        let ClientMessage::Signature { corr_id, signature } = req else {
            return Some(End::ServerClose);
        };
        let Phase::Challenge {
            username,
            challenge,
        } = std::mem::replace(&mut self.phase, Phase::First)
        else {
            return Some(End::ServerClose);
        };
        match self
            .shared
            .auth
            .check_signature(&username, &challenge, &signature)
        {
            Ok(()) => {
                self.phase = Phase::Authed(username);
                self.respond(corr_id, true, TEXT_AUTHENTICATED).await;
                None
            }
            Err(text) => {
                self.respond(corr_id, false, text).await;
                Some(End::ServerClose)
            }
        }
    }

    /// §6.3, checks in the server's order.
    async fn upload_program(
        &mut self,
        corr_id: u32,
        hash: String,
        index: u64,
        total: u64,
        data: Vec<u8>,
    ) -> Option<End> {
        if data.len() > CHUNK_SIZE {
            self.upload = None;
            let text = format!("Chunk size {} exceeds limit {CHUNK_SIZE}", data.len());
            self.respond(corr_id, false, text).await;
            return None;
        }
        if self.upload.is_none() {
            if index != 0 {
                self.respond(corr_id, false, "First chunk index must be 0")
                    .await;
                return None;
            }
            self.upload = Some(Upload {
                total,
                expected: 0,
                data: Vec::new(),
            });
        }
        let slot = self.upload.as_mut()?;
        if total != slot.total {
            let text = format!("Chunk count mismatch: expected {}, got {total}", slot.total);
            self.upload = None;
            self.respond(corr_id, false, text).await;
            return None;
        }
        if index != slot.expected {
            let text = format!(
                "Out-of-order chunk: expected {}, got {index}",
                slot.expected
            );
            self.upload = None;
            self.respond(corr_id, false, text).await;
            return None;
        }
        slot.data.extend_from_slice(&data);
        slot.expected += 1;
        if slot.expected != slot.total {
            return None;
        }
        let program = self.upload.take().map(|u| u.data).unwrap_or_default();
        let computed = codec::hash_blob(&program);
        if computed != hash {
            let text = format!("Hash mismatch: expected {hash}, got {computed}");
            self.respond(corr_id, false, text).await;
            return None;
        }
        if !self.shared.programs.contains(&hash) && !crate::programs::is_valid_program(&program) {
            if Faults::on(&self.shared.faults.q6_close_on_invalid_program) {
                // The real server's session crashes: no reply, connection closed (Q6).
                return Some(End::ServerClose);
            }
            let text = "Failed to register program: Runtime error: Failed to compile";
            self.respond(corr_id, false, text).await;
            return None;
        }
        self.shared.programs.insert(program);
        self.respond(corr_id, true, hash).await;
        None
    }

    async fn launch(
        &mut self,
        corr_id: u32,
        program: Result<Arc<Vec<u8>>, String>,
        arguments: Vec<String>,
        detached: bool,
    ) {
        let frame = match program {
            Err(text) => codec::encode_server(&ServerMessage::InstanceLaunchResult {
                corr_id,
                successful: false,
                message: text,
            }),
            Ok(bytes) => {
                let conn = (!detached).then(|| self.conn.clone());
                let username = self.username().to_string();
                let instances = self.shared.instances.clone();
                let (inst, inbox) =
                    instances.create(arguments, &username, conn, self.shared.faults.clone());
                let task = tokio::spawn({
                    let inst = inst.clone();
                    let instances = instances.clone();
                    async move { behaviour::run(instances, inst, inbox, &bytes).await }
                });
                instances.set_task(&inst, task.abort_handle());
                codec::encode_server(&ServerMessage::InstanceLaunchResult {
                    corr_id,
                    successful: true,
                    message: inst.id_str.clone(),
                })
            }
        };
        self.write(frame).await;
    }

    async fn attach(&mut self, corr_id: u32, instance_id: &str) {
        let result = |ok: bool, text: &str| {
            codec::encode_server(&ServerMessage::InstanceAttachResult {
                corr_id,
                successful: ok,
                message: text.to_string(),
            })
        };
        let Ok(id) = Uuid::parse_str(instance_id) else {
            self.write(result(false, "Invalid instance_id")).await;
            return;
        };
        match self.shared.instances.attach(id, &self.conn) {
            Err(text) => self.write(result(false, text)).await,
            Ok(replay) => {
                let id = id.hyphenated().to_string();
                self.write(result(true, "Instance attached")).await;
                if let Some(out) = replay.stdout {
                    self.write(encode::streaming_output(&id, false, &out)).await;
                }
                if let Some(err) = replay.stderr {
                    self.write(encode::streaming_output(&id, true, &err)).await;
                }
                if let Some((code, text)) = replay.terminal {
                    self.write(encode::instance_event(&id, code, &text)).await;
                }
            }
        }
    }

    /// §6.10, checks in the server's order.
    async fn upload_blob(
        &mut self,
        corr_id: u32,
        instance_id: String,
        hash: String,
        index: u64,
        total: u64,
        data: Vec<u8>,
    ) {
        let Ok(id) = Uuid::parse_str(&instance_id) else {
            let text = format!("Invalid instance_id: {instance_id}");
            self.respond(corr_id, false, text).await;
            return;
        };
        let Some(inst) = self.shared.instances.attached_to(id, self.conn.id) else {
            let text = format!("Instance not owned by client: {instance_id}");
            self.respond(corr_id, false, text).await;
            return;
        };
        if !self.blobs.contains_key(&hash) {
            if index != 0 {
                self.respond(corr_id, false, "First chunk index must be 0")
                    .await;
                return;
            }
            // Unlike the real server (Q10), no up-front reservation of total × 256 KiB.
            self.blobs.insert(
                hash.clone(),
                Upload {
                    total,
                    expected: 0,
                    data: Vec::new(),
                },
            );
        }
        let Some(upload) = self.blobs.get_mut(&hash) else {
            return;
        };
        let error = if total != upload.total {
            Some(format!(
                "Chunk count mismatch: expected {}, got {total}",
                upload.total
            ))
        } else if index != upload.expected {
            Some(format!(
                "Out-of-order chunk: expected {}, got {index}",
                upload.expected
            ))
        } else {
            None
        };
        if let Some(text) = error {
            self.blobs.remove(&hash);
            self.respond(corr_id, false, text).await;
            self.blob_upload_done();
            return;
        }
        let Some(upload) = self.blobs.get_mut(&hash) else {
            return;
        };
        upload.data.extend_from_slice(&data);
        upload.expected += 1;
        if upload.expected != upload.total {
            return;
        }
        let blob = self.blobs.remove(&hash).map(|u| u.data).unwrap_or_default();
        let computed = codec::hash_blob(&blob);
        if computed != hash {
            let text = format!("Hash mismatch: expected {hash}, got {computed}");
            self.respond(corr_id, false, text).await;
        } else {
            self.shared.instances.deliver_blob(&inst, blob);
            self.respond(corr_id, true, "Blob sent to instance").await;
        }
        self.blob_upload_done();
    }

    /// With fault Q1 on, the session hangs after the reply, as on the real server.
    fn blob_upload_done(&mut self) {
        if Faults::on(&self.shared.faults.q1_blob_hang) {
            self.hung = true;
        }
    }

    async fn send_garbage(&mut self, g: Garbage) {
        let target = |given: String, s: &Self| -> String {
            if !given.is_empty() {
                return given;
            }
            s.shared
                .instances
                .any_attached_to(s.conn.id)
                .unwrap_or_else(|| Uuid::new_v4().hyphenated().to_string())
        };
        match g {
            Garbage::Binary(bytes) => self.write(bytes).await,
            Garbage::Text(text) => self.write_message(Message::Text(text.into())).await,
            Garbage::UnknownType => {
                // {"type": "no_such_message", "corr_id": 0}
                let mut f = vec![0x82, 0xa4];
                f.extend_from_slice(b"type");
                f.push(0xaf);
                f.extend_from_slice(b"no_such_message");
                f.push(0xa7);
                f.extend_from_slice(b"corr_id");
                f.push(0);
                self.write(f).await;
            }
            Garbage::ReplyForUnknownCorrId(corr_id) => {
                self.respond(corr_id, true, "Pong").await;
            }
            Garbage::EventForUnknownInstance => {
                let id = Uuid::new_v4().hyphenated().to_string();
                self.write(encode::instance_event(&id, 0, "garbage")).await;
                self.write(encode::streaming_output(&id, false, "garbage"))
                    .await;
                self.write(encode::instance_event(&id, 1, "garbage")).await;
            }
            Garbage::BlobWithWrongHash(id) => {
                let id = target(id, self);
                let wrong = codec::hash_blob(b"not the data");
                self.write(encode::download_blob(0, &id, &wrong, 0, 1, b"garbage"))
                    .await;
            }
            Garbage::BlobChunkOutOfRange(id) => {
                let id = target(id, self);
                let hash = codec::hash_blob(b"x");
                self.write(encode::download_blob(0, &id, &hash, 5, 2, b"x"))
                    .await;
            }
        }
    }
}
