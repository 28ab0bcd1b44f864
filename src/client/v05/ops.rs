//! The client's calls on a Pie 0.5 server (PROTOCOL-0.5.md §5, mapping of §11), and the 0.5
//! calls of the public API.

use super::{send, Protocol, Sent};
use crate::client::{upload, Client, Instance, InstanceInfo, InstanceStatus, ProgressFn};
use crate::error::{Error, ErrorKind, Result};
use crate::wire05::{self, ClientMessage as M};
use std::future::Future;
use std::time::Duration;
use tokio::sync::oneshot;

/// One process as `list_processes` shows it (§5.7). The server lists every process of every
/// connection, all with username `internal`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct ProcessInfo {
    /// Lowercase hyphenated UUID.
    pub id: String,
    #[serde(default)]
    pub username: String,
    /// `name@version`.
    #[serde(default)]
    pub program: String,
    /// The launch input, exactly as given.
    #[serde(default)]
    pub input: String,
    #[serde(default)]
    pub elapsed_secs: u64,
}

pub(crate) fn invalid(param: &str, why: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::InvalidArgument, format!("{param}: {why}"))
}

/// A January-2026 call that has no equivalent on the 0.5 server.
pub(crate) fn not_on_v05(what: &str, instead: &str) -> Error {
    Error::new(
        ErrorKind::Unsupported,
        format!("{what} is not possible on this server (Pie 0.5): {instead}"),
    )
}

/// A 0.5 call on a January-2026 server.
fn not_on_jan(what: &str, instead: &str) -> Error {
    Error::new(
        ErrorKind::Unsupported,
        format!("{what} exists only on Pie 0.5 servers; this is a January-2026 server: {instead}"),
    )
}

fn refused(result: String) -> Error {
    Error::new(ErrorKind::Server, result)
}

/// Launch arguments of the January-2026 API as 0.5 JSON input: no arguments → `{}`; a single
/// argument that is a JSON object → that object (keyword arguments); otherwise
/// `{"args": [..]}`.
pub(crate) fn args_to_input(args: &[String]) -> String {
    match args {
        [] => "{}".to_string(),
        [one] if serde_json::from_str::<serde_json::Value>(one).is_ok_and(|v| v.is_object()) => {
            one.clone()
        }
        _ => serde_json::json!({ "args": args }).to_string(),
    }
}

fn check_process_id(id: &str) -> Result<String> {
    wire05::normalize_uuid(id).ok_or_else(|| {
        invalid(
            "id",
            format!(
                "'{id}' is not a process id (a UUID such as 67e55044-10b1-426f-9247-bb680e5fe0c8)"
            ),
        )
    })
}

/// Whether a listed process is the one `inferlet` + `input` started.
fn same_launch(p: &super::ProcessInfo, inferlet: &str, input: &str) -> bool {
    let program = if inferlet.contains('@') {
        p.program == inferlet
    } else {
        p.program
            .strip_prefix(inferlet)
            .is_some_and(|rest| rest.starts_with('@'))
    };
    program && p.input == input
}

impl Client {
    /// The protocol of this connection: set by `ClientConfig::protocol`, or detected from the
    /// server's first answer (on a January-2026 server that is the answer to `authenticate`;
    /// on 0.5 the probe sent at connect is answered at once). `None` until then.
    pub fn protocol(&self) -> Option<super::Protocol> {
        self.shared().proto.get()
    }

    /// Run the January-2026 or the 0.5 form of a call. While the protocol is unknown, the
    /// January-2026 form is tried; if 0.5 is detected before it completes, it is abandoned
    /// (its pending entry is removed; the 0.5 server answers it with a text error that is
    /// then attributed to nobody) and the 0.5 form runs instead.
    pub(crate) async fn by_protocol<T, J, V, VF>(&self, jan: J, v05: V) -> Result<T>
    where
        J: Future<Output = Result<T>>,
        V: FnOnce() -> VF,
        VF: Future<Output = Result<T>>,
    {
        let proto = &self.shared().proto;
        match proto.get() {
            Some(Protocol::Jan2026) => jan.await,
            Some(Protocol::V05) => v05().await,
            None => {
                let outcome = tokio::select! {
                    biased;
                    _ = proto.wait_v05() => None,
                    r = jan => Some(r),
                };
                match outcome {
                    Some(r) if !proto.is_v05() => r,
                    _ => v05().await,
                }
            }
        }
    }

    /// The January-2026 side of a 0.5-only call: unsupported. While the protocol is unknown a
    /// `ping` is sent first, so that a January-2026 server answers (or closes an
    /// unauthenticated connection) instead of leaving the call waiting for a decision.
    async fn jan_only<T>(&self, what: &str, instead: &str) -> Result<T> {
        if self.protocol().is_none() {
            self.ping_jan().await?;
        }
        Err(not_on_jan(what, instead))
    }

    async fn request05(
        &self,
        what: &str,
        make: impl FnOnce(u32) -> Vec<u8>,
    ) -> Result<(bool, String)> {
        let t = self.config().request_timeout;
        self.request_response_frame(what, t, make).await
    }

    pub(crate) async fn ping05(&self) -> Result<()> {
        self.settled(|done| self.start_ping_as(Protocol::V05, done))
            .await
    }

    pub(crate) async fn query05(&self, subject: &str, record: &str) -> Result<String> {
        let (ok, result) = self
            .request05("query", |corr_id| {
                wire05::encode_client(&M::Query {
                    corr_id,
                    subject,
                    record,
                })
            })
            .await?;
        if ok {
            Ok(result)
        } else {
            Err(refused(result))
        }
    }

    /// `query model_status` (Pie 0.5 only): JSON object text with the model's counters
    /// (`default.kv_pages_used`, `default.kv_pages_total`, ...).
    pub async fn model_status(&self) -> Result<String> {
        self.by_protocol(
            self.jan_only(
                "model_status",
                "use query(subject, record) with the subjects this server knows",
            ),
            || self.query05(wire05::SUBJECT_MODEL_STATUS, ""),
        )
        .await
    }

    /// Whether `name@version` is installed (or built in) on a Pie 0.5 server (§5.2).
    /// `version` must be `major.minor.patch`.
    pub async fn check_program(&self, name: &str, version: &str) -> Result<bool> {
        wire05::check_inferlet(name)
            .and_then(|()| {
                if name.contains('@') {
                    Err(format!(
                        "'{name}' contains '@': give the version separately"
                    ))
                } else {
                    Ok(())
                }
            })
            .map_err(|e| invalid("name", e))?;
        wire05::check_version(version).map_err(|e| invalid("version", e))?;
        self.by_protocol(
            self.jan_only(
                "check_program",
                "programs are found by hash there: use program_exists(hash)",
            ),
            || async {
                let (ok, result) = self
                    .request05("check_program", |corr_id| {
                        wire05::encode_client(&M::CheckProgram {
                            corr_id,
                            name,
                            version,
                        })
                    })
                    .await?;
                match (ok, result.as_str()) {
                    (true, "true") => Ok(true),
                    (true, "false") => Ok(false),
                    (true, other) => Err(Error::new(
                        ErrorKind::Protocol,
                        format!("check_program: unexpected answer '{other}'"),
                    )),
                    (false, _) => Err(refused(result)),
                }
            },
        )
        .await
    }

    /// Install a program on a Pie 0.5 server (§5.3): the artifact (a WebAssembly component,
    /// or the script source when the manifest says `[runtime] language = "python"` /
    /// `"javascript"`) and its manifest (TOML text, sent with every chunk). Returns the
    /// artifact's hash. A manifest or artifact the server refuses gives `ErrorKind::Server`
    /// with the server's text verbatim. Note: the server replaces an installed
    /// `name@version` silently, whatever `force_overwrite` says (§9.3).
    pub async fn install_program(&self, artifact: &[u8], manifest: &str) -> Result<String> {
        self.install_program_with_progress(artifact, manifest, false, None)
            .await
    }

    /// `install_program` with `force_overwrite` and progress after each chunk is handed to
    /// the socket (bytes of the artifact).
    pub async fn install_program_with_progress(
        &self,
        artifact: &[u8],
        manifest: &str,
        force_overwrite: bool,
        progress: Option<&ProgressFn>,
    ) -> Result<String> {
        if manifest.trim().is_empty() {
            return Err(invalid(
                "manifest",
                "is empty (it must be the program's TOML manifest with [package] name and version)",
            ));
        }
        self.by_protocol(
            self.jan_only(
                "install_program",
                "use upload_program(bytes) with a WebAssembly component",
            ),
            || async {
                self.check_open()?;
                let hash = wire05::hash(artifact);
                let (ok, result) = upload::upload(
                    self.shared(),
                    self.config().request_timeout,
                    "install_program",
                    artifact,
                    |corr_id, index, total, chunk| {
                        wire05::encode_client(&M::AddProgram {
                            corr_id,
                            program_hash: &hash,
                            manifest,
                            force_overwrite,
                            chunk_index: index as u32,
                            total_chunks: total as u32,
                            chunk_data: chunk,
                        })
                    },
                    progress,
                )
                .await?;
                if ok {
                    Ok(hash)
                } else {
                    Err(refused(result))
                }
            },
        )
        .await
    }

    /// Launch `name` or `name@version` on a Pie 0.5 server with `input` (JSON text; for
    /// `call = "kwargs"` programs a JSON object of keyword arguments), §5.4.
    ///
    /// Attached: the returned instance receives the process's events. Detached: the server
    /// does not say which process it started (§9.2). The client lists processes before and
    /// after the launch (its own launches are held back meanwhile) and takes the one new
    /// process with this program and exactly this input; its handle has that id. When there
    /// is no such process (it already ended) or more than one (another client launched the
    /// same program with the same input at the same moment), the handle's id is empty: the
    /// launch happened, but its id is unknown.
    pub async fn launch(&self, inferlet: &str, input: &str, detached: bool) -> Result<Instance> {
        wire05::check_inferlet(inferlet).map_err(|e| invalid("inferlet", e))?;
        wire05::check_json(input).map_err(|e| invalid("input", e))?;
        self.by_protocol(
            self.jan_only(
                "launch by name with JSON input",
                "use launch_instance_from_registry(name, args, detached)",
            ),
            || self.launch05(inferlet, input, detached),
        )
        .await
    }

    pub(crate) async fn launch05(
        &self,
        inferlet: &str,
        input: &str,
        detached: bool,
    ) -> Result<Instance> {
        self.check_open()?;
        let _slot = self.launch_slot().await?;
        let proto = &self.shared().proto;
        let send_launch = || {
            self.request05("launch_process", |corr_id| {
                wire05::encode_client(&M::LaunchProcess {
                    corr_id,
                    inferlet,
                    input,
                    capture_outputs: !detached,
                })
            })
        };
        if !detached {
            let _ours = proto.launches.read().await;
            let (ok, result) = send_launch().await?;
            if !ok {
                return Err(refused(result));
            }
            let id = wire05::normalize_uuid(&result).ok_or_else(|| {
                Error::new(
                    ErrorKind::Protocol,
                    format!("launch_process answered '{result}' instead of a process id"),
                )
            })?;
            let queue = proto.routes().register(&id);
            return Ok(Instance::new(self.clone(), id, Some(queue)));
        }
        let _alone = proto.launches.write().await;
        let before = self.list_processes05().await?;
        let (ok, result) = send_launch().await?;
        if !ok {
            return Err(refused(result));
        }
        // A server that does return the id (not 0.5.2) saves the search.
        if let Some(id) = wire05::normalize_uuid(&result) {
            return Ok(Instance::new(self.clone(), id, None));
        }
        let after = self.list_processes05().await.map_err(|e| {
            Error::new(
                e.kind(),
                format!(
                    "the detached process was launched, but listing the processes to find its \
                     id failed: {e}"
                ),
            )
        })?;
        let mut new = after
            .into_iter()
            .filter(|p| !before.iter().any(|b| b.id == p.id))
            .filter(|p| same_launch(p, inferlet, input));
        let id = match (new.next(), new.next()) {
            (Some(p), None) => p.id,
            _ => String::new(),
        };
        Ok(Instance::new(self.clone(), id, None))
    }

    pub(crate) async fn attach05(&self, id: &str) -> Result<Instance> {
        let id = check_process_id(id)?;
        self.check_open()?;
        let _slot = self.launch_slot().await?;
        let (ok, result) = self
            .request05("attach_process", |corr_id| {
                wire05::encode_client(&M::AttachProcess {
                    corr_id,
                    process_id: &id,
                })
            })
            .await?;
        if !ok {
            return Err(refused(result));
        }
        let queue = self.shared().proto.routes().register(&id);
        Ok(Instance::new(self.clone(), id, Some(queue)))
    }

    pub(crate) async fn terminate05(&self, id: &str) -> Result<()> {
        let id = check_process_id(id)?;
        let (ok, result) = self
            .request05("terminate_process", |corr_id| {
                wire05::encode_client(&M::TerminateProcess {
                    corr_id,
                    process_id: &id,
                })
            })
            .await?;
        if ok {
            Ok(())
        } else {
            Err(refused(result))
        }
    }

    pub(crate) async fn list_processes05(&self) -> Result<Vec<ProcessInfo>> {
        let (ok, result) = self
            .request05("list_processes", |corr_id| {
                wire05::encode_client(&M::ListProcesses { corr_id })
            })
            .await?;
        if !ok {
            return Err(refused(result));
        }
        serde_json::from_str(&result).map_err(|e| {
            Error::new(
                ErrorKind::Protocol,
                format!("list_processes: the server's list is not the expected JSON: {e}"),
            )
        })
    }

    /// Every process on a Pie 0.5 server (of all connections, §5.7).
    pub async fn list_processes(&self) -> Result<Vec<ProcessInfo>> {
        self.by_protocol(
            self.jan_only("list_processes", "use list_instances()"),
            || self.list_processes05(),
        )
        .await
    }

    /// `list_instances` on 0.5: `arguments` holds the input text, `status` is `Attached` for
    /// processes attached to this connection and `Detached` otherwise (0.5 does not say),
    /// `kv_pages_used` is 0.
    pub(crate) async fn list_instances05(&self) -> Result<Vec<InstanceInfo>> {
        let list = self.list_processes05().await?;
        let routes = self.shared().proto.routes();
        Ok(list
            .into_iter()
            .map(|p| InstanceInfo {
                status: if routes.queue(&p.id).is_some() {
                    InstanceStatus::Attached
                } else {
                    InstanceStatus::Detached
                },
                id: p.id,
                arguments: vec![p.input],
                username: p.username,
                elapsed_secs: p.elapsed_secs,
                kv_pages_used: 0,
            })
            .collect())
    }

    /// `signal_process` (§5.8): fire-and-forget; the server drops it silently when the
    /// process is unknown or not attached to this connection.
    pub(crate) async fn signal05(&self, id: &str, message: &str) -> Result<()> {
        let shared = self.shared();
        if shared.closing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(shared.end_error());
        }
        let frame = wire05::encode_client(&M::SignalProcess {
            process_id: id,
            message,
        });
        // Never waits: the frame is written or queued for the writer at once.
        send(shared, Sent::Forget, frame, None).await
    }

    /// `transfer_file` (§5.9): chunks handed to the socket in order, progress after each.
    /// Fire-and-forget: the server reports neither success nor failure, and drops a file
    /// that arrives before the process waits for one.
    pub(crate) async fn transfer05(
        &self,
        id: &str,
        data: &[u8],
        progress: Option<&ProgressFn>,
    ) -> Result<()> {
        let shared = self.shared();
        if shared.closing.load(std::sync::atomic::Ordering::SeqCst) || shared.end.get().is_some() {
            return Err(shared.end_error());
        }
        let t = self.config().request_timeout;
        let timed_out = |t: Duration| {
            Error::new(
                ErrorKind::Timeout,
                format!("upload_blob: no progress within the request timeout of {t:?}"),
            )
        };
        let hash = wire05::hash(data);
        let total = wire05::chunk_count(data.len());
        let total_bytes = data.len() as u64;
        let mut sent = 0u64;
        // At most two chunks queued ahead of the socket, as for uploads.
        let mut in_flight: std::collections::VecDeque<(oneshot::Receiver<()>, u64)> =
            Default::default();
        let wait_oldest = |ack: oneshot::Receiver<()>| async move {
            match tokio::time::timeout(t, ack).await {
                Err(_) => Err(timed_out(t)),
                Ok(Err(_)) => Err(shared.end_error()),
                Ok(Ok(())) => Ok(()),
            }
        };
        for (index, chunk) in wire05::chunks(data) {
            while in_flight.len() >= 2 {
                if let Some((ack, bytes)) = in_flight.pop_front() {
                    wait_oldest(ack).await?;
                    if let Some(p) = progress {
                        p(bytes, total_bytes);
                    }
                }
            }
            let frame = wire05::encode_client(&M::TransferFile {
                process_id: id,
                file_hash: &hash,
                chunk_index: index,
                total_chunks: total,
                chunk_data: chunk,
            });
            let (ack_tx, ack_rx) = oneshot::channel();
            match tokio::time::timeout(t, send(shared, Sent::Forget, frame, Some(ack_tx))).await {
                Err(_) => return Err(timed_out(t)),
                Ok(r) => r?,
            }
            sent += chunk.len() as u64;
            in_flight.push_back((ack_rx, sent));
        }
        while let Some((ack, bytes)) = in_flight.pop_front() {
            wait_oldest(ack).await?;
            if let Some(p) = progress {
                p(bytes, total_bytes);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launch_arguments_become_json_input() {
        assert_eq!(args_to_input(&[]), "{}");
        assert_eq!(args_to_input(&["{\"n\": 3}".into()]), "{\"n\": 3}");
        assert_eq!(
            args_to_input(&["--n".into(), "3".into()]),
            "{\"args\":[\"--n\",\"3\"]}"
        );
        assert_eq!(args_to_input(&["[1]".into()]), "{\"args\":[\"[1]\"]}");
    }

    #[test]
    fn detached_launch_matching() {
        let p = ProcessInfo {
            id: "x".into(),
            username: "internal".into(),
            program: "echo-args@0.1.0".into(),
            input: "{}".into(),
            elapsed_secs: 0,
        };
        assert!(same_launch(&p, "echo-args", "{}"));
        assert!(same_launch(&p, "echo-args@0.1.0", "{}"));
        assert!(!same_launch(&p, "echo-args@0.1.1", "{}"));
        assert!(!same_launch(&p, "echo", "{}"));
        assert!(!same_launch(&p, "echo-args", "{ }"));
    }
}
