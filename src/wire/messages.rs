//! Message definitions. Field order is the wire order of PROTOCOL.md §4, and serde's
//! internally tagged representation puts `type` first, as the server does (§2.1).

use serde::{Deserialize, Serialize};

/// Every message a client sends (§4.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    Identification {
        corr_id: u32,
        username: String,
    },
    Signature {
        corr_id: u32,
        signature: String,
    },
    Query {
        corr_id: u32,
        subject: String,
        record: String,
    },
    UploadProgram {
        corr_id: u32,
        program_hash: String,
        chunk_index: u64,
        total_chunks: u64,
        #[serde(with = "serde_bytes")]
        chunk_data: Vec<u8>,
    },
    LaunchInstance {
        corr_id: u32,
        program_hash: String,
        arguments: Vec<String>,
        detached: bool,
    },
    LaunchInstanceFromRegistry {
        corr_id: u32,
        inferlet: String,
        arguments: Vec<String>,
        detached: bool,
    },
    AttachInstance {
        corr_id: u32,
        instance_id: String,
    },
    LaunchServerInstance {
        corr_id: u32,
        port: u32,
        program_hash: String,
        arguments: Vec<String>,
    },
    SignalInstance {
        instance_id: String,
        message: String,
    },
    UploadBlob {
        corr_id: u32,
        instance_id: String,
        blob_hash: String,
        chunk_index: u64,
        total_chunks: u64,
        #[serde(with = "serde_bytes")]
        chunk_data: Vec<u8>,
    },
    TerminateInstance {
        corr_id: u32,
        instance_id: String,
    },
    AttachRemoteService {
        corr_id: u32,
        endpoint: String,
        service_type: String,
        service_name: String,
    },
    InternalAuthenticate {
        corr_id: u32,
        token: String,
    },
    Ping {
        corr_id: u32,
    },
    ListInstances {
        corr_id: u32,
    },
}

impl ClientMessage {
    /// The request's correlation id; `None` for `signal_instance`, which has none.
    pub fn corr_id(&self) -> Option<u32> {
        use ClientMessage::*;
        match self {
            Identification { corr_id, .. }
            | Signature { corr_id, .. }
            | Query { corr_id, .. }
            | UploadProgram { corr_id, .. }
            | LaunchInstance { corr_id, .. }
            | LaunchInstanceFromRegistry { corr_id, .. }
            | AttachInstance { corr_id, .. }
            | LaunchServerInstance { corr_id, .. }
            | UploadBlob { corr_id, .. }
            | TerminateInstance { corr_id, .. }
            | AttachRemoteService { corr_id, .. }
            | InternalAuthenticate { corr_id, .. }
            | Ping { corr_id }
            | ListInstances { corr_id } => Some(*corr_id),
            SignalInstance { .. } => None,
        }
    }
}

/// Every message a server sends (§4.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    Response {
        corr_id: u32,
        successful: bool,
        result: String,
    },
    InstanceLaunchResult {
        corr_id: u32,
        successful: bool,
        message: String,
    },
    InstanceAttachResult {
        corr_id: u32,
        successful: bool,
        message: String,
    },
    InstanceEvent {
        instance_id: String,
        event: u32,
        message: String,
    },
    DownloadBlob {
        corr_id: u32,
        instance_id: String,
        blob_hash: String,
        chunk_index: u64,
        total_chunks: u64,
        #[serde(with = "serde_bytes")]
        chunk_data: Vec<u8>,
    },
    ServerEvent {
        message: String,
    },
    Challenge {
        corr_id: u32,
        challenge: String,
    },
    LiveInstances {
        corr_id: u32,
        instances: Vec<InstanceInfo>,
    },
    StreamingOutput {
        instance_id: String,
        output: StreamingOutput,
    },
}

/// One entry of `live_instances` (§7.4). The last three fields default when absent, as older
/// servers did not send them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceInfo {
    pub id: String,
    pub arguments: Vec<String>,
    pub status: InstanceStatus,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub elapsed_secs: u64,
    #[serde(default)]
    pub kv_pages_used: u32,
}

/// Instance state as listed by `list_instances`: a MessagePack str holding the variant name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum InstanceStatus {
    Attached,
    Detached,
    Finished,
}

/// Output written by an instance: a single-entry map `{"Stdout": text}` / `{"Stderr": text}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamingOutput {
    Stdout(String),
    Stderr(String),
}
