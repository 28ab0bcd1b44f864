//! Connections as processes see them, and the process table (PROTOCOL-0.5.md §5.4–§5.9, §8).
//!
//! One rule keeps every process's event stream well-formed (output, then exactly one terminal
//! event, nothing after it): the process table decides who ends a process (the process itself
//! or `terminate_process` / a disconnect — whoever removes it from the table), and every frame
//! of a process is queued to its connection while holding the process's state lock after
//! checking it is still alive.

use super::codec;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::task::AbortHandle;
use uuid::Uuid;

/// Frames a connection may have queued for a slow reader before its processes wait.
pub const QUEUE_LIMIT: usize = 1024;

/// What a connection's writer task sends.
pub enum Out {
    Binary(Vec<u8>, Option<OwnedSemaphorePermit>),
    Text(String),
    Ping(Vec<u8>),
}

/// A frame a test makes the simulator send (see `Simulator::inject`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inject {
    /// A binary frame with exactly these bytes.
    Binary(Vec<u8>),
    /// A text frame.
    Text(String),
    /// A WebSocket ping with this payload (the real server was not seen sending any).
    Ping(Vec<u8>),
}

/// A connection, as the session and the processes attached to it reach it.
pub struct Conn {
    pub id: u64,
    /// The `x-pie-identity` of the upgrade request.
    pub identity: String,
    out: mpsc::UnboundedSender<Out>,
    sem: Arc<Semaphore>,
}

impl Conn {
    pub fn new(id: u64, identity: String, out: mpsc::UnboundedSender<Out>) -> Conn {
        Conn {
            id,
            identity,
            out,
            sem: Arc::new(Semaphore::new(QUEUE_LIMIT)),
        }
    }

    pub fn binary(&self, frame: Vec<u8>) {
        let _ = self.out.send(Out::Binary(frame, None));
    }

    pub fn text(&self, text: String) {
        let _ = self.out.send(Out::Text(text));
    }

    pub fn inject(&self, frame: Inject) {
        let _ = self.out.send(match frame {
            Inject::Binary(b) => Out::Binary(b, None),
            Inject::Text(t) => Out::Text(t),
            Inject::Ping(p) => Out::Ping(p),
        });
    }
}

/// A file arriving in `transfer_file` chunks.
#[derive(Default)]
struct Partial {
    chunks: u32,
    data: Vec<u8>,
}

struct State {
    alive: bool,
    owner: Option<Arc<Conn>>,
    task: Option<AbortHandle>,
    partial_files: HashMap<String, Partial>,
    file_waiter: Option<oneshot::Sender<Vec<u8>>>,
    file_queue: VecDeque<Vec<u8>>,
}

pub struct Proc {
    pub id: Uuid,
    pub id_text: String,
    seq: u64,
    /// `name@version`.
    pub program: String,
    /// The launch input exactly as given.
    pub input: String,
    /// Identity of the launching connection (for the per-identity view when §9.8 is off).
    pub identity: String,
    pub started: Instant,
    /// `capture_outputs` of the launch: without it only the terminal event is ever delivered.
    pub captured: bool,
    signals: mpsc::UnboundedSender<String>,
    state: Mutex<State>,
}

/// What a file sent to a process became.
#[derive(Debug, PartialEq, Eq)]
pub enum FileOutcome {
    /// More chunks expected.
    Partial,
    Delivered,
    Queued,
    /// Complete and correct, but nobody was waiting in `receive_file()` (§9.12).
    Dropped,
    HashMismatch {
        expected: String,
        got: String,
    },
}

impl Proc {
    pub fn owner_id(&self) -> Option<u64> {
        self.state.lock().unwrap().owner.as_ref().map(|c| c.id)
    }

    /// Attach `conn` if nobody is attached; false if somebody is.
    pub fn try_attach(&self, conn: &Arc<Conn>) -> bool {
        let mut st = self.state.lock().unwrap();
        if st.owner.is_some() || !st.alive {
            return false;
        }
        st.owner = Some(conn.clone());
        true
    }

    pub fn signal(&self, message: String) {
        let _ = self.signals.send(message);
    }

    /// Queue a non-terminal frame (stdout/stderr/message/file) to the attached connection, if
    /// outputs are captured; waits while that connection has [`QUEUE_LIMIT`] frames unsent.
    pub async fn emit(&self, frame: Vec<u8>) {
        let conn = {
            let st = self.state.lock().unwrap();
            match (&st.owner, st.alive && self.captured) {
                (Some(c), true) => c.clone(),
                _ => return,
            }
        };
        let permit = conn.sem.clone().acquire_owned().await.ok();
        let st = self.state.lock().unwrap();
        if let (true, Some(c)) = (st.alive, &st.owner) {
            if c.id == conn.id {
                let _ = c.out.send(Out::Binary(frame, permit));
            }
        }
    }

    /// Wait for the next complete file (`session.receive_file()`).
    pub async fn receive_file(&self) -> Option<Vec<u8>> {
        let rx = {
            let mut st = self.state.lock().unwrap();
            if let Some(f) = st.file_queue.pop_front() {
                return Some(f);
            }
            let (tx, rx) = oneshot::channel();
            st.file_waiter = Some(tx);
            rx
        };
        rx.await.ok()
    }

    /// One `transfer_file` chunk. Chunks are appended in arrival order; the file is complete
    /// once `total_chunks` chunks came.
    pub fn file_chunk(
        &self,
        file_hash: &str,
        total_chunks: u32,
        data: &[u8],
        drop_early: bool,
    ) -> FileOutcome {
        let mut st = self.state.lock().unwrap();
        let part = st.partial_files.entry(file_hash.to_owned()).or_default();
        part.chunks += 1;
        part.data.extend_from_slice(data);
        if part.chunks < total_chunks.max(1) {
            return FileOutcome::Partial;
        }
        let file = st.partial_files.remove(file_hash).unwrap_or_default().data;
        let got = blake3::hash(&file).to_hex().to_string();
        if got != file_hash {
            return FileOutcome::HashMismatch {
                expected: file_hash.to_owned(),
                got,
            };
        }
        if let Some(waiter) = st.file_waiter.take() {
            if let Err(file) = waiter.send(file) {
                // The waiter is gone (process ending): treat like nobody waiting.
                if !drop_early {
                    st.file_queue.push_back(file);
                    return FileOutcome::Queued;
                }
                return FileOutcome::Dropped;
            }
            return FileOutcome::Delivered;
        }
        if drop_early {
            FileOutcome::Dropped
        } else {
            st.file_queue.push_back(file);
            FileOutcome::Queued
        }
    }

    /// Mark dead and return the connection that must get the terminal event (if any).
    fn finish(&self) -> Option<Arc<Conn>> {
        let mut st = self.state.lock().unwrap();
        st.alive = false;
        if let Some(task) = st.task.take() {
            task.abort();
        }
        st.owner.take()
    }

    fn send_terminal(&self, event: &str, value: &str) {
        let mut st = self.state.lock().unwrap();
        st.alive = false;
        if let Some(task) = st.task.take() {
            // Ended by the server (terminate): stop the inferlet's task. A task ending by
            // itself has returned already.
            task.abort();
        }
        if let Some(owner) = st.owner.take() {
            owner.binary(codec::process_event(&self.id_text, event, value));
        }
    }
}

/// Every live process (finished ones vanish at once, §8).
#[derive(Default)]
pub struct Processes {
    map: Mutex<HashMap<Uuid, Arc<Proc>>>,
    next_seq: Mutex<u64>,
}

pub struct NewProc {
    pub program: String,
    pub input: String,
    pub identity: String,
    pub captured: bool,
    pub owner: Option<Arc<Conn>>,
}

impl Processes {
    /// Register a new process; the receiver is its `session.receive()` queue.
    pub fn create(&self, new: NewProc) -> (Arc<Proc>, mpsc::UnboundedReceiver<String>) {
        let id = Uuid::new_v4();
        let seq = {
            let mut n = self.next_seq.lock().unwrap();
            *n += 1;
            *n
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let proc = Arc::new(Proc {
            id,
            id_text: id.hyphenated().to_string(),
            seq,
            program: new.program,
            input: new.input,
            identity: new.identity,
            started: Instant::now(),
            captured: new.captured,
            signals: tx,
            state: Mutex::new(State {
                alive: true,
                owner: new.owner,
                task: None,
                partial_files: HashMap::new(),
                file_waiter: None,
                file_queue: VecDeque::new(),
            }),
        });
        self.map.lock().unwrap().insert(id, proc.clone());
        (proc, rx)
    }

    /// Remember the task running the process (aborted when the process is ended by the server).
    pub fn set_task(&self, proc: &Proc, task: AbortHandle) {
        let mut st = proc.state.lock().unwrap();
        if st.alive {
            st.task = Some(task);
        } else {
            task.abort();
        }
    }

    pub fn get(&self, id: &Uuid) -> Option<Arc<Proc>> {
        self.map.lock().unwrap().get(id).cloned()
    }

    fn take(&self, id: &Uuid) -> Option<Arc<Proc>> {
        self.map.lock().unwrap().remove(id)
    }

    /// The process ends by itself (`return` / `error`); no-op if it was ended already.
    pub fn end(&self, proc: &Proc, event: &str, value: &str) {
        if let Some(p) = self.take(&proc.id) {
            let mut st = p.state.lock().unwrap();
            st.alive = false;
            st.task = None;
            if let Some(owner) = st.owner.take() {
                owner.binary(codec::process_event(&p.id_text, event, value));
            }
        }
    }

    /// `terminate_process`: the attached connection gets `error` / `Signal`. False if the
    /// process was not (or no longer) live.
    pub fn terminate(&self, id: &Uuid) -> bool {
        match self.take(id) {
            Some(p) => {
                p.send_terminal("error", "Signal");
                true
            }
            None => false,
        }
    }

    /// A connection went away: every process attached to it is killed (no event).
    pub fn kill_owned_by(&self, conn_id: u64) {
        let victims: Vec<Arc<Proc>> = {
            let mut map = self.map.lock().unwrap();
            let ids: Vec<Uuid> = map
                .values()
                .filter(|p| p.owner_id() == Some(conn_id))
                .map(|p| p.id)
                .collect();
            ids.iter().filter_map(|id| map.remove(id)).collect()
        };
        for p in victims {
            p.finish();
        }
    }

    /// Live processes in launch order.
    pub fn list(&self) -> Vec<Arc<Proc>> {
        let mut all: Vec<Arc<Proc>> = self.map.lock().unwrap().values().cloned().collect();
        all.sort_by_key(|p| p.seq);
        all
    }

    pub fn len(&self) -> usize {
        self.map.lock().unwrap().len()
    }

    /// Kill everything (simulator shutdown).
    pub fn kill_all(&self) {
        let all: Vec<Arc<Proc>> = self.map.lock().unwrap().drain().map(|(_, p)| p).collect();
        for p in all {
            p.finish();
        }
    }
}
