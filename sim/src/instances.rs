//! Instances: states and routing of PROTOCOL.md §8.
//!
//! Each instance runs as a tokio task (its behaviour, see `behaviour.rs`). Output goes either
//! to the connection it is attached to — as pre-encoded frames pushed into that connection's
//! single session queue, so it is ordered with the replies (§3.2) — or, while detached, into
//! two 1 MiB ring buffers (stdout/stderr); messages and blobs emitted while detached are
//! discarded. Lock order: the instance map before an instance's state.

use crate::codec::{encode, event_code, InstanceInfo, InstanceStatus, CHUNK_SIZE};
use crate::faults::Faults;
use crate::session::{ConnRef, Item};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use uuid::Uuid;

/// Bytes kept per detached output stream (§7.6).
pub const RING_CAPACITY: usize = 1 << 20;

#[derive(Default)]
struct Ring(VecDeque<u8>);

impl Ring {
    fn push(&mut self, data: &[u8]) {
        if data.len() >= RING_CAPACITY {
            self.0.clear();
            self.0.extend(&data[data.len() - RING_CAPACITY..]);
            return;
        }
        let overflow = (self.0.len() + data.len()).saturating_sub(RING_CAPACITY);
        self.0.drain(..overflow);
        self.0.extend(data);
    }

    /// The buffered text, decoded lossily (§7.6), leaving the ring empty.
    fn take(&mut self) -> Option<String> {
        if self.0.is_empty() {
            return None;
        }
        let bytes: Vec<u8> = self.0.drain(..).collect();
        Some(String::from_utf8_lossy(&bytes).into_owned())
    }
}

#[derive(Default)]
struct State {
    attached: Option<Arc<ConnRef>>,
    /// Set when the instance finished while detached: (event code, text).
    finished: Option<(u32, String)>,
    stdout: Ring,
    stderr: Ring,
    /// Terminated by request: emits nothing more.
    terminated: bool,
}

/// What an instance emits.
pub enum Emission {
    Stdout(String),
    Stderr(String),
    Message(String),
    Blob(Vec<u8>),
    /// A raw `instance_event` with any (non-terminal for the simulator) code, e.g. 9.
    Event(u32, String),
}

pub struct Instance {
    pub id: Uuid,
    pub id_str: String,
    pub arguments: Vec<String>,
    pub username: String,
    started: Instant,
    state: Mutex<State>,
    msg_tx: mpsc::UnboundedSender<String>,
    blob_tx: mpsc::UnboundedSender<Vec<u8>>,
    task: Mutex<Option<AbortHandle>>,
    /// A busy-looping instance: `terminate_instance` has no effect on it (§16).
    pub(crate) ignores_terminate: AtomicBool,
    faults: Arc<Faults>,
}

/// The receiving ends an instance's behaviour reads from.
pub struct Inbox {
    pub messages: mpsc::UnboundedReceiver<String>,
    pub blobs: mpsc::UnboundedReceiver<Vec<u8>>,
}

/// Result of a successful attach: what to send right after `Instance attached`.
pub struct Replay {
    pub stdout: Option<String>,
    pub stderr: Option<String>,
    /// `Some` if the instance had already finished (it has now been removed).
    pub terminal: Option<(u32, String)>,
}

impl Instance {
    fn terminal_code(&self, code: u32) -> u32 {
        if Faults::on(&self.faults.unknown_event_code) {
            9
        } else {
            code
        }
    }

    /// Emit output. While attached, waits for room in the connection's queue (backpressure).
    pub async fn emit(&self, what: Emission) {
        loop {
            let conn = {
                let mut st = self.state.lock().unwrap();
                if st.terminated {
                    return;
                }
                let Some(conn) = st.attached.clone() else {
                    Self::buffer(&mut st, &what);
                    return;
                };
                match conn.sem.clone().try_acquire_owned() {
                    Ok(permit) => {
                        let item = Item::Frames(self.encode(&what), Some(permit));
                        if conn.tx.send(item).is_err() {
                            // The connection's session is gone: detach, as it would shortly.
                            st.attached = None;
                            Self::buffer(&mut st, &what);
                        }
                        return;
                    }
                    Err(tokio::sync::TryAcquireError::Closed) => {
                        st.attached = None;
                        Self::buffer(&mut st, &what);
                        return;
                    }
                    Err(tokio::sync::TryAcquireError::NoPermits) => conn,
                }
            };
            // Queue full: wait for room outside the lock, then re-check the routing.
            let Ok(permit) = conn.sem.clone().acquire_owned().await else {
                continue;
            };
            let mut st = self.state.lock().unwrap();
            if st.terminated {
                return;
            }
            match &st.attached {
                Some(c) if Arc::ptr_eq(c, &conn) => {
                    let item = Item::Frames(self.encode(&what), Some(permit));
                    if conn.tx.send(item).is_err() {
                        st.attached = None;
                        Self::buffer(&mut st, &what);
                    }
                    return;
                }
                _ => continue,
            }
        }
    }

    fn buffer(st: &mut State, what: &Emission) {
        match what {
            Emission::Stdout(t) => st.stdout.push(t.as_bytes()),
            Emission::Stderr(t) => st.stderr.push(t.as_bytes()),
            // Messages, blobs and events emitted while detached are discarded (Q16).
            _ => {}
        }
    }

    fn encode(&self, what: &Emission) -> Vec<Vec<u8>> {
        match what {
            Emission::Stdout(t) => vec![encode::streaming_output(&self.id_str, false, t)],
            Emission::Stderr(t) => vec![encode::streaming_output(&self.id_str, true, t)],
            Emission::Message(t) => {
                vec![encode::instance_event(&self.id_str, event_code::MESSAGE, t)]
            }
            Emission::Event(code, t) => vec![encode::instance_event(&self.id_str, *code, t)],
            Emission::Blob(data) => {
                // An empty blob produces no message at all (§7.7).
                let hash = crate::codec::hash_blob(data);
                let total = data.len().div_ceil(CHUNK_SIZE) as u64;
                data.chunks(CHUNK_SIZE)
                    .enumerate()
                    .map(|(i, c)| encode::download_blob(0, &self.id_str, &hash, i as u64, total, c))
                    .collect()
            }
        }
    }

    pub fn status(&self) -> InstanceStatus {
        let st = self.state.lock().unwrap();
        if st.finished.is_some() {
            InstanceStatus::Finished
        } else if st.attached.is_some() {
            InstanceStatus::Attached
        } else {
            InstanceStatus::Detached
        }
    }
}

#[derive(Default)]
pub struct Instances {
    map: Mutex<HashMap<Uuid, Arc<Instance>>>,
    /// Busy-looping instances: each pins a worker thread of the real server (§16).
    busy: AtomicUsize,
}

impl Instances {
    /// `inst` turned into a busy loop: it ignores terminate from now on.
    pub fn mark_busy(&self, inst: &Instance) {
        if !inst.ignores_terminate.swap(true, Ordering::SeqCst) {
            self.busy.fetch_add(1, Ordering::SeqCst);
        }
    }

    pub fn busy_count(&self) -> usize {
        self.busy.load(Ordering::Relaxed)
    }

    pub fn len(&self) -> usize {
        self.map.lock().unwrap().len()
    }

    /// Create an instance (attached to `conn` unless `None`) and register it. The caller starts
    /// its behaviour with the returned inbox and records the task with [`Instances::set_task`].
    pub fn create(
        &self,
        arguments: Vec<String>,
        username: &str,
        conn: Option<Arc<ConnRef>>,
        faults: Arc<Faults>,
    ) -> (Arc<Instance>, Inbox) {
        let (msg_tx, messages) = mpsc::unbounded_channel();
        let (blob_tx, blobs) = mpsc::unbounded_channel();
        let id = Uuid::new_v4();
        let inst = Arc::new(Instance {
            id,
            id_str: id.hyphenated().to_string(),
            arguments,
            username: username.to_string(),
            started: Instant::now(),
            state: Mutex::new(State {
                attached: conn,
                ..State::default()
            }),
            msg_tx,
            blob_tx,
            task: Mutex::new(None),
            ignores_terminate: AtomicBool::new(false),
            faults,
        });
        self.map.lock().unwrap().insert(id, inst.clone());
        (inst, Inbox { messages, blobs })
    }

    pub fn set_task(&self, inst: &Instance, handle: AbortHandle) {
        *inst.task.lock().unwrap() = Some(handle);
    }

    /// The instance's behaviour ended with a terminal event.
    pub fn finish(&self, inst: &Arc<Instance>, code: u32, text: String) {
        let mut map = self.map.lock().unwrap();
        let mut st = inst.state.lock().unwrap();
        if st.terminated || st.finished.is_some() {
            return;
        }
        if let Some(conn) = st.attached.take() {
            let frame = encode::instance_event(&inst.id_str, inst.terminal_code(code), &text);
            if conn.tx.send(Item::Frames(vec![frame], None)).is_ok() {
                // Delivered to the attached connection: the instance is gone (§8.1).
                map.remove(&inst.id);
                return;
            }
        }
        st.finished = Some((code, text));
    }

    /// §6.6. `Err` carries the failure text.
    pub fn attach(&self, id: Uuid, conn: &Arc<ConnRef>) -> Result<Replay, &'static str> {
        let mut map = self.map.lock().unwrap();
        let inst = map.get(&id).cloned().ok_or("Instance not found")?;
        let mut st = inst.state.lock().unwrap();
        if st.attached.is_some() {
            return Err("Instance already attached");
        }
        let stdout = st.stdout.take();
        let stderr = st.stderr.take();
        let terminal = st
            .finished
            .take()
            .map(|(code, text)| (inst.terminal_code(code), text));
        if terminal.is_some() {
            // A finished instance can be attached once (Q17).
            st.terminated = true;
            drop(st);
            map.remove(&id);
        } else {
            st.attached = Some(conn.clone());
        }
        Ok(Replay {
            stdout,
            stderr,
            terminal,
        })
    }

    /// §6.8: stop and remove the instance if it exists; the attached connection (if any) gets
    /// `Signal termination` through its queue, after the requester's `response`.
    pub fn terminate(&self, id: Uuid) {
        let mut map = self.map.lock().unwrap();
        let Some(inst) = map.get(&id).cloned() else {
            return;
        };
        if inst.ignores_terminate.load(Ordering::SeqCst) {
            // A busy-looping instance never gets to notice the request (§16).
            return;
        }
        map.remove(&id);
        let mut st = inst.state.lock().unwrap();
        st.terminated = true;
        if let Some(handle) = inst.task.lock().unwrap().take() {
            handle.abort();
        }
        if st.finished.is_none() {
            if let Some(conn) = st.attached.take() {
                let code = inst.terminal_code(event_code::ABORTED);
                let frame = encode::instance_event(&inst.id_str, code, "Signal termination");
                let _ = conn.tx.send(Item::Frames(vec![frame], None));
            }
        }
    }

    /// §6.9: delivered only if attached to this connection.
    pub fn signal(&self, id: Uuid, conn_id: u64, message: String) {
        if let Some(inst) = self.attached_to(id, conn_id) {
            let _ = inst.msg_tx.send(message);
        }
    }

    /// The instance if it is attached to connection `conn_id`.
    pub fn attached_to(&self, id: Uuid, conn_id: u64) -> Option<Arc<Instance>> {
        let inst = self.map.lock().unwrap().get(&id).cloned()?;
        let attached = matches!(&inst.state.lock().unwrap().attached, Some(c) if c.id == conn_id);
        attached.then_some(inst)
    }

    pub fn deliver_blob(&self, inst: &Instance, blob: Vec<u8>) {
        let _ = inst.blob_tx.send(blob);
    }

    /// Disconnect: every instance attached to `conn_id` becomes detached (§10).
    pub fn detach_all(&self, conn_id: u64) {
        let map = self.map.lock().unwrap();
        for inst in map.values() {
            let mut st = inst.state.lock().unwrap();
            if matches!(&st.attached, Some(c) if c.id == conn_id) {
                st.attached = None;
            }
        }
    }

    /// Any instance attached to this connection (for garbage injection).
    pub fn any_attached_to(&self, conn_id: u64) -> Option<String> {
        let map = self.map.lock().unwrap();
        map.values()
            .find(|i| matches!(&i.state.lock().unwrap().attached, Some(c) if c.id == conn_id))
            .map(|i| i.id_str.clone())
    }

    /// §6.7: the user's instances (all for `internal`), running first, then finished.
    pub fn list(&self, username: &str) -> Vec<InstanceInfo> {
        let map = self.map.lock().unwrap();
        let mut out: Vec<(bool, InstanceInfo)> = map
            .values()
            .filter(|i| username == "internal" || i.username == username)
            .map(|i| {
                let status = i.status();
                (
                    status == InstanceStatus::Finished,
                    InstanceInfo {
                        id: i.id_str.clone(),
                        arguments: i.arguments.clone(),
                        status,
                        username: i.username.clone(),
                        elapsed_secs: i.started.elapsed().as_secs(),
                        kv_pages_used: 0,
                    },
                )
            })
            .collect();
        out.sort_by_key(|(finished, _)| *finished);
        out.into_iter().map(|(_, info)| info).collect()
    }
}
