//! One 0.5 connection: requests are handled one at a time in arrival order (replies leave in
//! request order, PROTOCOL-0.5.md §3); a writer task sends the replies and the frames of the
//! processes attached to the connection.

use super::codec::{self, ClientMessage};
use super::faults::Faults;
use super::inferlets;
use super::processes::{Conn, FileOutcome, NewProc, Out, Proc};
use super::programs::{self, Wanted};
use super::Shared;
use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use uuid::Uuid;

/// An `add_program` upload in progress (keyed by its declared hash).
#[derive(Default)]
struct Upload {
    chunks: u32,
    data: Vec<u8>,
}

struct Session {
    shared: Arc<Shared>,
    conn: Arc<Conn>,
    uploads: HashMap<String, Upload>,
}

/// Serve one upgraded connection until it ends; then kill the processes attached to it.
pub async fn serve<S>(shared: Arc<Shared>, ws: WebSocketStream<S>, identity: String)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let id = shared.next_conn_id();
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Out>();
    let conn = Arc::new(Conn::new(id, identity, tx));
    let mut kill = shared.register_conn(conn.clone());
    let writer = tokio::spawn(async move {
        // Frames queued together go out in one flush (a reply and its turn_done, a burst of
        // output); their queue permits are released once written.
        let mut permits = Vec::new();
        while let Some(first) = rx.recv().await {
            let mut next = Some(first);
            let mut batch = 0;
            while let Some(out) = next.take() {
                let frame = match out {
                    Out::Binary(frame, permit) => {
                        permits.extend(permit);
                        Message::Binary(frame.into())
                    }
                    Out::Text(text) => Message::Text(text.into()),
                    Out::Ping(payload) => Message::Ping(payload.into()),
                };
                if sink.feed(frame).await.is_err() {
                    return;
                }
                batch += 1;
                if batch < 64 {
                    next = rx.try_recv().ok();
                }
            }
            if sink.flush().await.is_err() {
                return;
            }
            permits.clear();
        }
        // Every sender is gone: the session ended normally. Close (or answer the client's
        // Close) and drop the socket.
        let _ = tokio::time::timeout(Duration::from_secs(1), sink.close()).await;
    });
    let mut session = Session {
        shared: shared.clone(),
        conn,
        uploads: HashMap::new(),
    };
    let mut seen_valid = false;
    let mut abrupt = false;
    loop {
        let next = tokio::select! {
            m = stream.next() => m,
            _ = kill.wait_for(|k| *k) => { abrupt = true; break; }
        };
        let decoded = match next {
            Some(Ok(Message::Binary(b))) => codec::decode_binary(&b),
            Some(Ok(Message::Text(t))) => codec::decode_text(&t),
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
            Some(Ok(_)) => continue, // ping/pong: tungstenite answers pings itself
        };
        match decoded {
            Ok(msg) => {
                seen_valid = true;
                session.handle(msg);
            }
            Err(reason) => {
                // §7 / §9.6: before the first valid frame a bad frame is dropped silently.
                if seen_valid || !Faults::on(&shared.faults.silent_early_bad_frames) {
                    session.conn.text(codec::bad_frame_text(&reason));
                } else {
                    shared.log(&format!("dropped undecodable first frame: {reason}"));
                }
            }
        }
    }
    // Closing the connection kills every process attached to it (§6.5, §8).
    shared.processes.kill_owned_by(id);
    shared.unregister_conn(id);
    drop(session);
    if abrupt {
        writer.abort();
    } else if tokio::time::timeout(Duration::from_secs(3), writer)
        .await
        .is_err()
    {
        // A process still holds the connection (it is being torn down): give up on it.
    }
}

impl Session {
    fn reply(&self, corr_id: u32, ok: bool, result: &str) {
        self.conn.binary(codec::response(corr_id, ok, result));
    }

    fn turn_done(&self) {
        if Faults::on(&self.shared.faults.turn_done) {
            self.conn.text(codec::TURN_DONE.to_owned());
        }
    }

    /// A fire-and-forget failure: logged; reported to the sender only with §9.5 switched off.
    fn silent_failure(&self, line: String) {
        self.shared.log(&line);
        if !Faults::on(&self.shared.faults.silent_fire_and_forget) {
            self.conn.text(codec::error_text(&line));
        }
    }

    /// The process, if this connection may see it (§9.8).
    fn visible(&self, id: &Uuid) -> Option<Arc<Proc>> {
        let p = self.shared.processes.get(id)?;
        if Faults::on(&self.shared.faults.shared_process_view) || p.identity == self.conn.identity {
            Some(p)
        } else {
            None
        }
    }

    fn handle(&mut self, msg: ClientMessage) {
        match msg {
            ClientMessage::AuthIdentify { corr_id, .. } => {
                self.reply(corr_id, true, "Already authenticated");
                self.turn_done();
            }
            ClientMessage::AuthProve { corr_id, .. } => {
                self.reply(corr_id, false, "Already authenticated");
                self.turn_done();
            }
            ClientMessage::Ping { corr_id } => {
                self.reply(corr_id, true, "Pong");
                self.turn_done();
            }
            ClientMessage::Query {
                corr_id, subject, ..
            } => {
                if subject == "model_status" {
                    let status = self.shared.model_status();
                    self.reply(corr_id, true, &status);
                } else {
                    let text = format!("unknown query subject {subject:?} (known: model_status)");
                    self.reply(corr_id, false, &text);
                }
                self.turn_done();
            }
            ClientMessage::CheckProgram {
                corr_id,
                name,
                version,
            } => {
                match programs::parse_ident(&format!("{name}@{version}")) {
                    Ok(Wanted::Exact(n, v)) => {
                        let exists = self.shared.programs.exists(&n, v);
                        self.reply(corr_id, true, if exists { "true" } else { "false" });
                    }
                    Ok(Wanted::Latest(_)) => unreachable!("an identifier with '@'"),
                    Err(text) => self.reply(corr_id, false, &text),
                }
                self.turn_done();
            }
            ClientMessage::AddProgram {
                corr_id,
                program_hash,
                manifest,
                force_overwrite,
                chunk_index,
                total_chunks,
                chunk_data,
            } => {
                self.add_program_chunk(
                    corr_id,
                    program_hash,
                    &manifest,
                    force_overwrite,
                    chunk_index,
                    total_chunks,
                    &chunk_data,
                );
                self.turn_done();
            }
            ClientMessage::LaunchProcess {
                corr_id,
                inferlet,
                input,
                capture_outputs,
            } => self.launch(corr_id, &inferlet, input, capture_outputs),
            ClientMessage::AttachProcess {
                corr_id,
                process_id,
            } => {
                // No turn_done after attach_process (§7).
                let (ok, text) = match Uuid::parse_str(&process_id) {
                    Err(_) => (false, "Invalid process_id"),
                    Ok(id) => match self.visible(&id) {
                        None => (false, "Process not found"),
                        Some(p) if p.try_attach(&self.conn) => (true, "Process attached"),
                        Some(_) => (false, "Cannot attach: already attached"),
                    },
                };
                self.reply(corr_id, ok, text);
            }
            ClientMessage::TerminateProcess {
                corr_id,
                process_id,
            } => {
                let (ok, text) = match Uuid::parse_str(&process_id) {
                    Err(_) => (false, "Invalid process ID"),
                    Ok(id) => match self.visible(&id) {
                        Some(p) if self.shared.processes.terminate(&p.id) => {
                            (true, "Process terminated")
                        }
                        _ => (false, "Process not found"),
                    },
                };
                self.reply(corr_id, ok, text);
                self.turn_done();
            }
            ClientMessage::ListProcesses { corr_id } => {
                let list = self.list_json();
                self.reply(corr_id, true, &list);
                self.turn_done();
            }
            ClientMessage::SignalProcess {
                process_id,
                message,
            } => {
                match self.fire_and_forget_target("SignalProcess", &process_id) {
                    Ok(p) => p.signal(message),
                    Err(line) => self.silent_failure(line),
                }
                self.turn_done();
            }
            ClientMessage::TransferFile {
                process_id,
                file_hash,
                chunk_index: _,
                total_chunks,
                chunk_data,
            } => {
                match self.fire_and_forget_target("TransferFile", &process_id) {
                    Ok(p) => {
                        let drop_early = Faults::on(&self.shared.faults.drop_early_files);
                        match p.file_chunk(&file_hash, total_chunks, &chunk_data, drop_early) {
                            FileOutcome::HashMismatch { expected, got } => self.silent_failure(
                                format!("TransferFile hash mismatch: expected {expected}, got {got}"),
                            ),
                            FileOutcome::Dropped => self.silent_failure(format!(
                                "TransferFile: process {process_id} is not waiting in receive_file(); file dropped"
                            )),
                            FileOutcome::Partial
                            | FileOutcome::Delivered
                            | FileOutcome::Queued => {}
                        }
                    }
                    Err(line) => self.silent_failure(line),
                }
                self.turn_done();
            }
        }
    }

    /// The process a signal or file is for; `Err` is the server log line.
    fn fire_and_forget_target(&self, what: &str, process_id: &str) -> Result<Arc<Proc>, String> {
        let id = Uuid::parse_str(process_id)
            .map_err(|_| format!("{what}: invalid process_id {process_id}"))?;
        let p = self
            .visible(&id)
            .ok_or_else(|| format!("{what}: process {process_id} not found"))?;
        // §5.8: only the attached connection reaches the process.
        if Faults::on(&self.shared.faults.owner_only_signals) && p.owner_id() != Some(self.conn.id)
        {
            return Err(format!(
                "{what}: process {process_id} is not attached to this connection"
            ));
        }
        Ok(p)
    }

    #[allow(clippy::too_many_arguments)]
    fn add_program_chunk(
        &mut self,
        corr_id: u32,
        program_hash: String,
        manifest: &str,
        force_overwrite: bool,
        chunk_index: u32,
        total_chunks: u32,
        chunk_data: &[u8],
    ) {
        let faults = &self.shared.faults;
        let upload = self.uploads.entry(program_hash.clone()).or_default();
        if !Faults::on(&faults.unchecked_chunk_order) && chunk_index != upload.chunks {
            // Correct behaviour instead of §9.4 (the simulator's own wording).
            let text = format!(
                "Upload chunk out of order: expected chunk {}, got {chunk_index}",
                upload.chunks
            );
            self.uploads.remove(&program_hash);
            self.reply(corr_id, false, &text);
            return;
        }
        upload.chunks += 1;
        upload.data.extend_from_slice(chunk_data);
        if upload.chunks < total_chunks.max(1) {
            return; // more to come; a short upload never gets a reply (§9.4)
        }
        let data = self
            .uploads
            .remove(&program_hash)
            .map(|u| u.data)
            .unwrap_or_default();
        let result = self.install(program_hash, manifest, force_overwrite, data);
        match result {
            Ok(()) => self.reply(corr_id, true, "Program installed successfully"),
            Err(text) => self.reply(corr_id, false, &text),
        }
    }

    fn install(
        &self,
        declared: String,
        manifest: &str,
        force_overwrite: bool,
        data: Vec<u8>,
    ) -> Result<(), String> {
        let uploaded = blake3::hash(&data).to_hex().to_string();
        if uploaded != declared {
            return Err(format!(
                "Program hash mismatch: declared {declared}, uploaded {uploaded}"
            ));
        }
        let program = programs::build(manifest, data, uploaded)?;
        if !force_overwrite
            && !Faults::on(&self.shared.faults.silent_replace)
            && self.shared.programs.exists(&program.name, program.version)
        {
            // Correct behaviour instead of §9.3 (the simulator's own wording).
            return Err(format!(
                "Program {} is already installed (set force_overwrite to replace it)",
                program.ident()
            ));
        }
        self.shared.programs.install(program);
        Ok(())
    }

    fn launch(&self, corr_id: u32, inferlet: &str, input: String, capture_outputs: bool) {
        let target = programs::parse_ident(inferlet).and_then(|wanted| {
            self.shared.programs.resolve(&wanted).ok_or_else(|| {
                format!(
                    "program {inferlet} is not installed (looked in {}/.pie/inferlets)",
                    self.shared.home
                )
            })
        });
        let target = match target {
            Ok(t) => t,
            Err(text) => {
                // No turn_done after a failed launch (§7).
                self.reply(corr_id, false, &text);
                return;
            }
        };
        let behaviour = inferlets::behaviour_for(&target);
        let (proc, signals) = self.shared.processes.create(NewProc {
            program: target.ident(),
            input,
            identity: self.conn.identity.clone(),
            captured: capture_outputs,
            owner: capture_outputs.then(|| self.conn.clone()),
        });
        if capture_outputs {
            self.reply(corr_id, true, &proc.id_text);
            self.turn_done();
        } else {
            // §9.2: a detached launch answers "" (no turn_done either, §7).
            let id = if Faults::on(&self.shared.faults.detached_empty_id) {
                ""
            } else {
                proc.id_text.as_str()
            };
            self.reply(corr_id, true, id);
        }
        let task = tokio::spawn(inferlets::run(
            self.shared.clone(),
            proc.clone(),
            signals,
            behaviour,
        ));
        self.shared.processes.set_task(&proc, task.abort_handle());
    }

    /// `list_processes` result: every visible process, in launch order (§5.7).
    fn list_json(&self) -> String {
        let shared_view = Faults::on(&self.shared.faults.shared_process_view);
        let rows: Vec<String> = self
            .shared
            .processes
            .list()
            .into_iter()
            .filter(|p| shared_view || p.identity == self.conn.identity)
            .map(|p| {
                let username = if shared_view { "internal" } else { &p.identity };
                format!(
                    r#"{{"id":{},"username":{},"program":{},"input":{},"elapsed_secs":{}}}"#,
                    json(&p.id_text),
                    json(username),
                    json(&p.program),
                    json(&p.input),
                    p.started.elapsed().as_secs()
                )
            })
            .collect();
        format!("[{}]", rows.join(","))
    }
}

fn json(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

impl Shared {
    /// `query model_status` (§5.1): `<model>.<metric>` keys, sorted.
    pub(crate) fn model_status(&self) -> String {
        let s = &self.stats;
        let batches = s.total_batches.load(Ordering::Relaxed);
        format!(
            r#"{{"default.batch_size_hist":[{batches},0,0,0,0,0,0,0],"default.kv_pages_total":{},"default.kv_pages_used":{},"default.total_batches":{batches},"default.total_tokens_processed":{}}}"#,
            self.kv_pages_total,
            s.kv_pages_used.load(Ordering::Relaxed),
            s.total_tokens_processed.load(Ordering::Relaxed)
        )
    }
}
