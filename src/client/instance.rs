//! The `Instance` handle.

use super::events::{EventQueue, InstanceEvent, NotifyFn};
use super::{upload, Client, ProgressFn, Protocol};
use crate::error::{Error, ErrorKind, Result};
use crate::wire::{self, ClientMessage};
use std::sync::Arc;

/// One instance (a launched program) as seen from this connection. `Send + Sync`; all methods
/// take `&self`, so one handle can serve several threads/tasks.
///
/// A detached instance (launched with `detached = true`) has no event stream here: its
/// `recv`/`try_recv`/`send`/`upload_blob` fail with `ErrorKind::Detached`.
pub struct Instance {
    id: String,
    client: Client,
    queue: Option<Arc<EventQueue>>,
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance")
            .field("id", &self.id)
            .field("detached", &self.queue.is_none())
            .finish()
    }
}

impl Instance {
    pub(crate) fn new(client: Client, id: String, queue: Option<Arc<EventQueue>>) -> Instance {
        Instance { id, client, queue }
    }

    /// The instance id (lowercase hyphenated UUID).
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn is_detached(&self) -> bool {
        self.queue.is_none()
    }

    fn detached_error(&self, what: &str) -> Error {
        Error::new(
            ErrorKind::Detached,
            format!(
                "instance {} was launched detached, so this handle cannot {what}; call \
                 attach_instance(\"{}\") to get an attached handle",
                self.id, self.id
            ),
        )
    }

    fn queue(&self, what: &str) -> Result<&EventQueue> {
        self.queue
            .as_deref()
            .ok_or_else(|| self.detached_error(what))
    }

    /// Send a text message to the instance (`signal_instance`: no reply; the server drops it
    /// silently unless this connection is attached to the instance). Pie 0.5:
    /// `signal_process`, equally silent about failures (§5.8).
    pub async fn send(&self, message: &str) -> Result<()> {
        self.queue("send messages")?;
        let client = &self.client;
        if client.protocol() == Some(Protocol::V05) {
            return client.signal05(&self.id, message).await;
        }
        let shared = client.shared();
        if shared.closing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(shared.end_error());
        }
        let frame = wire::encode_client(&ClientMessage::SignalInstance {
            instance_id: self.id.clone(),
            message: message.to_string(),
        });
        // Never waits: the frame is written or queued for the writer at once.
        shared.send_frame(frame, None)
    }

    /// Upload a blob to the instance (§6.10). Note: the January-2026 server stops serving the
    /// connection after a blob upload completes (Q1).
    pub async fn upload_blob(&self, blob: &[u8]) -> Result<()> {
        self.upload_blob_with_progress(blob, None).await
    }

    /// Pie 0.5: `transfer_file`, fire-and-forget: `Ok` means every chunk was handed to the
    /// socket, not that the process got the file. The server reports no failure (bad hash,
    /// unknown process), and drops a file that arrives before the process waits for one in
    /// `receive_file()` (§5.9): send files only after the inferlet said it is ready.
    pub async fn upload_blob_with_progress(
        &self,
        blob: &[u8],
        progress: Option<&ProgressFn>,
    ) -> Result<()> {
        self.queue("upload blobs")?;
        if self.client.protocol() == Some(Protocol::V05) {
            return self.client.transfer05(&self.id, blob, progress).await;
        }
        let shared = self.client.shared();
        if shared.closing.load(std::sync::atomic::Ordering::SeqCst) || shared.end.get().is_some() {
            return Err(shared.end_error());
        }
        let hash = wire::hash_blob(blob);
        let (ok, result) = upload::upload(
            shared,
            self.client.config().request_timeout,
            "upload_blob",
            blob,
            |corr_id, chunk_index, total_chunks, chunk_data| {
                wire::encode_client(&ClientMessage::UploadBlob {
                    corr_id,
                    instance_id: self.id.clone(),
                    blob_hash: hash.clone(),
                    chunk_index,
                    total_chunks,
                    chunk_data: chunk_data.to_vec(),
                })
            },
            progress,
        )
        .await?;
        if !ok {
            return Err(Error::new(ErrorKind::Server, result));
        }
        Ok(())
    }

    /// The next event, in server order. After the terminal event: `StreamEnded`. When the
    /// connection ends, buffered events come first, then `ConnectionClosed` (`ClientClosed`
    /// after `close()`).
    pub async fn recv(&self) -> Result<InstanceEvent> {
        self.queue("receive events")?.pop().await
    }

    /// Like `recv` without waiting: `Ok(None)` when no event is queued yet.
    pub fn try_recv(&self) -> Result<Option<InstanceEvent>> {
        self.queue("receive events")?.try_pop()
    }

    /// Called on the client's reader task each time an event is queued for this instance or its
    /// stream ends. Must be cheap and must not block (the FFI layer uses it to wake threads / an
    /// fd). If events are already queued or the stream has already ended when a hook is
    /// installed, it is also called once immediately, on the calling thread, so no wake-up is
    /// missed. No effect on a detached handle.
    pub fn set_notify(&self, notify: Option<Arc<dyn Fn() + Send + Sync>>) {
        if let Some(q) = &self.queue {
            let hook: Option<NotifyFn> = notify;
            q.set_hook(hook);
        }
    }

    /// Events queued and not yet received.
    pub fn pending_events(&self) -> usize {
        self.queue.as_ref().map_or(0, |q| q.len())
    }

    /// Whether a non-blocking receive would return something now (an event, or the end of
    /// the stream). False for a detached handle.
    pub(crate) fn has_news(&self) -> bool {
        self.queue.as_ref().is_some_and(|q| q.has_news())
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(q) = &self.queue {
            // Free the buffer now and let the reader forget the route.
            q.abandon();
            let _ = self.client.shared().forget.send(self.id.clone());
        }
    }
}
