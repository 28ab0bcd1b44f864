//! Canonical encoding (§2.1–2.2): a map whose first entry is `"type"`, then every field in the
//! order of §4, smallest encodings. The frames instances produce in bulk (output, events, blob
//! chunks) have borrowing encoders of their own, so a flood instance streaming hundreds of
//! thousands of frames per second builds no message value per frame.

use super::messages::{ClientMessage, InstanceInfo, ServerMessage, StreamingOutput as Output};
use super::msgpack::Writer;

/// Map header for `fields` fields plus the `type` entry, then the `type` entry.
fn envelope(w: &mut Writer, type_name: &str, fields: usize) {
    w.map(fields + 1);
    w.key_str("type", type_name);
}

/// `streaming_output` with `{"Stdout": text}` or `{"Stderr": text}` (§7.6).
pub fn streaming_output(instance_id: &str, stderr: bool, text: &str) -> Vec<u8> {
    let mut w = Writer::with_capacity(80 + text.len());
    envelope(&mut w, "streaming_output", 2);
    w.key_str("instance_id", instance_id);
    w.str("output");
    w.map(1);
    w.key_str(if stderr { "Stderr" } else { "Stdout" }, text);
    w.buf
}

/// `instance_event` (§7.5).
pub fn instance_event(instance_id: &str, event: u32, message: &str) -> Vec<u8> {
    let mut w = Writer::with_capacity(80 + message.len());
    envelope(&mut w, "instance_event", 3);
    w.key_str("instance_id", instance_id);
    w.key_uint("event", u64::from(event));
    w.key_str("message", message);
    w.buf
}

/// One `download_blob` chunk (§7.7).
pub fn download_blob(
    corr_id: u32,
    instance_id: &str,
    blob_hash: &str,
    chunk_index: u64,
    total_chunks: u64,
    data: &[u8],
) -> Vec<u8> {
    let mut w = Writer::with_capacity(200 + data.len());
    envelope(&mut w, "download_blob", 6);
    w.key_uint("corr_id", u64::from(corr_id));
    w.key_str("instance_id", instance_id);
    w.key_str("blob_hash", blob_hash);
    w.key_uint("chunk_index", chunk_index);
    w.key_uint("total_chunks", total_chunks);
    w.str("chunk_data");
    w.bin(data);
    w.buf
}

/// `response`, `instance_launch_result` and `instance_attach_result` share one layout.
fn reply(type_name: &str, corr_id: u32, successful: bool, text_key: &str, text: &str) -> Vec<u8> {
    let mut w = Writer::with_capacity(64 + text.len());
    envelope(&mut w, type_name, 3);
    w.key_uint("corr_id", u64::from(corr_id));
    w.key_bool("successful", successful);
    w.key_str(text_key, text);
    w.buf
}

/// `response` (§7.1).
pub fn response(corr_id: u32, successful: bool, result: &str) -> Vec<u8> {
    reply("response", corr_id, successful, "result", result)
}

fn instance_info(w: &mut Writer, info: &InstanceInfo) {
    w.map(6);
    w.key_str("id", &info.id);
    w.key_strs("arguments", &info.arguments);
    w.key_str("status", info.status.name());
    w.key_str("username", &info.username);
    w.key_uint("elapsed_secs", info.elapsed_secs);
    w.key_uint("kv_pages_used", u64::from(info.kv_pages_used));
}

/// Encode a server → client message.
pub fn encode_server(msg: &ServerMessage) -> Vec<u8> {
    use ServerMessage::*;
    match msg {
        Response {
            corr_id,
            successful,
            result,
        } => response(*corr_id, *successful, result),
        InstanceLaunchResult {
            corr_id,
            successful,
            message,
        } => reply(
            "instance_launch_result",
            *corr_id,
            *successful,
            "message",
            message,
        ),
        InstanceAttachResult {
            corr_id,
            successful,
            message,
        } => reply(
            "instance_attach_result",
            *corr_id,
            *successful,
            "message",
            message,
        ),
        InstanceEvent {
            instance_id,
            event,
            message,
        } => instance_event(instance_id, *event, message),
        DownloadBlob {
            corr_id,
            instance_id,
            blob_hash,
            chunk_index,
            total_chunks,
            chunk_data,
        } => download_blob(
            *corr_id,
            instance_id,
            blob_hash,
            *chunk_index,
            *total_chunks,
            chunk_data,
        ),
        ServerEvent { message } => {
            let mut w = Writer::with_capacity(32 + message.len());
            envelope(&mut w, "server_event", 1);
            w.key_str("message", message);
            w.buf
        }
        Challenge { corr_id, challenge } => {
            let mut w = Writer::with_capacity(48 + challenge.len());
            envelope(&mut w, "challenge", 2);
            w.key_uint("corr_id", u64::from(*corr_id));
            w.key_str("challenge", challenge);
            w.buf
        }
        LiveInstances { corr_id, instances } => {
            let mut w = Writer::with_capacity(48 + 160 * instances.len());
            envelope(&mut w, "live_instances", 2);
            w.key_uint("corr_id", u64::from(*corr_id));
            w.str("instances");
            w.array(instances.len());
            for info in instances {
                instance_info(&mut w, info);
            }
            w.buf
        }
        StreamingOutput {
            instance_id,
            output,
        } => match output {
            Output::Stdout(t) => streaming_output(instance_id, false, t),
            Output::Stderr(t) => streaming_output(instance_id, true, t),
        },
    }
}

/// Encode a client → server message (the simulator's tests play the client with it).
pub fn encode_client(msg: &ClientMessage) -> Vec<u8> {
    use ClientMessage::*;
    let mut w = Writer::with_capacity(match msg {
        UploadProgram { chunk_data, .. } | UploadBlob { chunk_data, .. } => 256 + chunk_data.len(),
        _ => 128,
    });
    match msg {
        Identification { corr_id, username } => {
            envelope(&mut w, "identification", 2);
            w.key_uint("corr_id", u64::from(*corr_id));
            w.key_str("username", username);
        }
        Signature { corr_id, signature } => {
            envelope(&mut w, "signature", 2);
            w.key_uint("corr_id", u64::from(*corr_id));
            w.key_str("signature", signature);
        }
        Query {
            corr_id,
            subject,
            record,
        } => {
            envelope(&mut w, "query", 3);
            w.key_uint("corr_id", u64::from(*corr_id));
            w.key_str("subject", subject);
            w.key_str("record", record);
        }
        UploadProgram {
            corr_id,
            program_hash,
            chunk_index,
            total_chunks,
            chunk_data,
        } => {
            envelope(&mut w, "upload_program", 5);
            w.key_uint("corr_id", u64::from(*corr_id));
            w.key_str("program_hash", program_hash);
            w.key_uint("chunk_index", *chunk_index);
            w.key_uint("total_chunks", *total_chunks);
            w.str("chunk_data");
            w.bin(chunk_data);
        }
        LaunchInstance {
            corr_id,
            program_hash,
            arguments,
            detached,
        } => {
            envelope(&mut w, "launch_instance", 4);
            w.key_uint("corr_id", u64::from(*corr_id));
            w.key_str("program_hash", program_hash);
            w.key_strs("arguments", arguments);
            w.key_bool("detached", *detached);
        }
        LaunchInstanceFromRegistry {
            corr_id,
            inferlet,
            arguments,
            detached,
        } => {
            envelope(&mut w, "launch_instance_from_registry", 4);
            w.key_uint("corr_id", u64::from(*corr_id));
            w.key_str("inferlet", inferlet);
            w.key_strs("arguments", arguments);
            w.key_bool("detached", *detached);
        }
        AttachInstance {
            corr_id,
            instance_id,
        } => {
            envelope(&mut w, "attach_instance", 2);
            w.key_uint("corr_id", u64::from(*corr_id));
            w.key_str("instance_id", instance_id);
        }
        LaunchServerInstance {
            corr_id,
            port,
            program_hash,
            arguments,
        } => {
            envelope(&mut w, "launch_server_instance", 4);
            w.key_uint("corr_id", u64::from(*corr_id));
            w.key_uint("port", u64::from(*port));
            w.key_str("program_hash", program_hash);
            w.key_strs("arguments", arguments);
        }
        SignalInstance {
            instance_id,
            message,
        } => {
            envelope(&mut w, "signal_instance", 2);
            w.key_str("instance_id", instance_id);
            w.key_str("message", message);
        }
        UploadBlob {
            corr_id,
            instance_id,
            blob_hash,
            chunk_index,
            total_chunks,
            chunk_data,
        } => {
            envelope(&mut w, "upload_blob", 6);
            w.key_uint("corr_id", u64::from(*corr_id));
            w.key_str("instance_id", instance_id);
            w.key_str("blob_hash", blob_hash);
            w.key_uint("chunk_index", *chunk_index);
            w.key_uint("total_chunks", *total_chunks);
            w.str("chunk_data");
            w.bin(chunk_data);
        }
        TerminateInstance {
            corr_id,
            instance_id,
        } => {
            envelope(&mut w, "terminate_instance", 2);
            w.key_uint("corr_id", u64::from(*corr_id));
            w.key_str("instance_id", instance_id);
        }
        AttachRemoteService {
            corr_id,
            endpoint,
            service_type,
            service_name,
        } => {
            envelope(&mut w, "attach_remote_service", 4);
            w.key_uint("corr_id", u64::from(*corr_id));
            w.key_str("endpoint", endpoint);
            w.key_str("service_type", service_type);
            w.key_str("service_name", service_name);
        }
        InternalAuthenticate { corr_id, token } => {
            envelope(&mut w, "internal_authenticate", 2);
            w.key_uint("corr_id", u64::from(*corr_id));
            w.key_str("token", token);
        }
        Ping { corr_id } => {
            envelope(&mut w, "ping", 1);
            w.key_uint("corr_id", u64::from(*corr_id));
        }
        ListInstances { corr_id } => {
            envelope(&mut w, "list_instances", 1);
            w.key_uint("corr_id", u64::from(*corr_id));
        }
    }
    w.buf
}
