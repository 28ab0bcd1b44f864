//! The messages of PROTOCOL.md §4, with their fields in the wire order of the field tables
//! (§4.1 client → server, §4.2 server → client, §7.4 `InstanceInfo`).

/// Every message a client sends (§4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// The only request without a `corr_id` (§6.9).
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

/// Every message a server sends (§4.2). `Challenge` and `ServerEvent` are defined but never
/// sent (§7.8, §7.9); they are here so that tests can encode and decode them.
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// One entry of `live_instances` (§7.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceInfo {
    pub id: String,
    pub arguments: Vec<String>,
    pub status: InstanceStatus,
    pub username: String,
    pub elapsed_secs: u64,
    pub kv_pages_used: u32,
}

/// Sent as a str holding the variant name (§2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceStatus {
    Attached,
    Detached,
    Finished,
}

impl InstanceStatus {
    pub fn name(self) -> &'static str {
        match self {
            InstanceStatus::Attached => "Attached",
            InstanceStatus::Detached => "Detached",
            InstanceStatus::Finished => "Finished",
        }
    }
}

/// Sent as a single-entry map `{"Stdout": text}` / `{"Stderr": text}` (§7.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamingOutput {
    Stdout(String),
    Stderr(String),
}
