//! The smallest client built on libpie's stack, with none of libpie: a current-thread tokio
//! runtime on a thread of its own, tokio-tungstenite, a writer task fed by an unbounded channel
//! (one flush per run of queued frames), and a reader task that hands the replies of each run
//! of buffered frames to the caller through a condition variable. The caller encodes each
//! request (`wire::encode_client`) and queues it, as a one-call-per-request API does. What it
//! costs over `ThreadedRawClient` is the stack (tokio's scheduler and reactor,
//! tokio-tungstenite's framing and per-message buffers, the channel); what libpie costs over it
//! is libpie's own request path.

use futures_util::{FutureExt, SinkExt, StreamExt};
use pie::wire::{self, ClientMessage, ServerMessage};
use std::collections::HashSet;
use std::sync::{Arc, Condvar, Mutex};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

#[derive(Default)]
struct Replies {
    state: Mutex<RepliesState>,
    arrived: Condvar,
}

#[derive(Default)]
struct RepliesState {
    done: HashSet<u32>,
    caller_waits: bool,
    ended: Option<String>,
}

/// A TCP stream that re-arms TCP_QUICKACK when a read finds nothing, as libpie's does: the
/// simulator leaves Nagle on, so without it a reply written in two segments waits for the
/// client's delayed ACK (PROTOCOL.md §16).
struct QuickAck(tokio::net::TcpStream);

impl tokio::io::AsyncRead for QuickAck {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let read = std::pin::Pin::new(&mut self.0).poll_read(cx, buf);
        if read.is_pending() {
            use std::os::fd::AsRawFd;
            let one: libc::c_int = 1;
            // SAFETY: setsockopt on a socket we own, with a live c_int and its size.
            unsafe {
                libc::setsockopt(
                    self.0.as_raw_fd(),
                    libc::IPPROTO_TCP,
                    libc::TCP_QUICKACK,
                    (&one as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
        }
        read
    }
}

impl tokio::io::AsyncWrite for QuickAck {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        b: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, b)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

async fn connect(url: &str) -> Result<tokio_tungstenite::WebSocketStream<QuickAck>, String> {
    let authority = url
        .strip_prefix("ws://")
        .and_then(|rest| rest.split('/').next())
        .ok_or_else(|| format!("stack: only ws:// URLs ({url})"))?;
    let tcp = tokio::net::TcpStream::connect(authority)
        .await
        .map_err(|e| e.to_string())?;
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    // Reads of 4 KiB, as libpie's (src/client/transport.rs): the 128 KiB default is zero-filled
    // before every read and would make this baseline slower than libpie.
    let config = WebSocketConfig::default().read_buffer_size(4 * 1024);
    let (ws, _) = tokio_tungstenite::client_async_with_config(url, QuickAck(tcp), Some(config))
        .await
        .map_err(|e| e.to_string())?;
    Ok(ws)
}

pub struct StackClient {
    requests: Option<mpsc::UnboundedSender<Vec<u8>>>,
    replies: Arc<Replies>,
    network: Option<std::thread::JoinHandle<()>>,
}

impl StackClient {
    pub fn connect(url: &str) -> Result<StackClient, String> {
        let (requests, mut queued) = mpsc::unbounded_channel::<Vec<u8>>();
        let replies = Arc::new(Replies::default());
        let shared = replies.clone();
        let url = url.to_string();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
        let network = std::thread::Builder::new()
            .name("stack-network".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async move {
                    let ws = match connect(&url).await {
                        Ok(ws) => ws,
                        Err(e) => {
                            let _ = ready_tx.send(Err(format!("stack connect: {e}")));
                            return;
                        }
                    };
                    let (mut sink, mut stream) = ws.split();
                    let writer = tokio::spawn(async move {
                        while let Some(first) = queued.recv().await {
                            if sink.feed(Message::Binary(first.into())).await.is_err() {
                                return;
                            }
                            while let Ok(next) = queued.try_recv() {
                                if sink.feed(Message::Binary(next.into())).await.is_err() {
                                    return;
                                }
                            }
                            if sink.flush().await.is_err() {
                                return;
                            }
                        }
                    });
                    let _ = ready_tx.send(Ok(()));
                    let mut run = Vec::new();
                    let why = 'read: loop {
                        let mut next = stream.next().await;
                        loop {
                            match next {
                                Some(Ok(Message::Binary(data))) => {
                                    if let Ok(ServerMessage::Response { corr_id, .. }) =
                                        wire::decode_server(&data)
                                    {
                                        run.push(corr_id);
                                    }
                                }
                                Some(Ok(_)) => {}
                                Some(Err(e)) => break 'read e.to_string(),
                                None => break 'read "the connection ended".to_string(),
                            }
                            // Frames already buffered are taken without waiting; the caller
                            // is woken once per run.
                            match stream.next().now_or_never() {
                                Some(more) => next = more,
                                None => break,
                            }
                        }
                        let mut st = shared.state.lock().unwrap();
                        st.done.extend(run.drain(..));
                        if st.caller_waits {
                            shared.arrived.notify_one();
                        }
                    };
                    writer.abort();
                    let mut st = shared.state.lock().unwrap();
                    st.ended = Some(why);
                    shared.arrived.notify_all();
                });
            })
            .map_err(|e| e.to_string())?;
        ready_rx
            .recv()
            .map_err(|_| "stack: the network thread ended".to_string())??;
        let mut c = StackClient {
            requests: Some(requests),
            replies,
            network: Some(network),
        };
        c.send(wire::encode_client(&ClientMessage::Identification {
            corr_id: 1,
            username: "bench".into(),
        }))?;
        c.wait_for(1)?;
        Ok(c)
    }

    fn send(&mut self, payload: Vec<u8>) -> Result<(), String> {
        self.requests
            .as_ref()
            .and_then(|r| r.send(payload).ok())
            .ok_or_else(|| "stack: the writer ended".to_string())
    }

    fn wait_for(&self, corr_id: u32) -> Result<(), String> {
        let mut st = self.replies.state.lock().unwrap();
        loop {
            if st.done.remove(&corr_id) {
                return Ok(());
            }
            if let Some(why) = &st.ended {
                return Err(format!("stack: {why}"));
            }
            st.caller_waits = true;
            st = self.replies.arrived.wait(st).unwrap();
            st.caller_waits = false;
        }
    }

    /// `n` pings (consecutive corr_ids from `first`), each encoded and queued as it is made,
    /// then each reply waited for in order.
    pub fn ping_batch(&mut self, first: u32, n: u32) -> Result<(), String> {
        for corr_id in first..first + n {
            self.send(wire::encode_client(&ClientMessage::Ping { corr_id }))?;
        }
        (first..first + n).try_for_each(|id| self.wait_for(id))
    }
}

impl Drop for StackClient {
    fn drop(&mut self) {
        // Ends the writer; the reader ends when the simulator closes the connection or the
        // process exits. Not joined: the reader may wait for the server.
        self.requests.take();
        self.network.take();
    }
}
