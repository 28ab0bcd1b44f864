//! Canonical MessagePack encoding (the form the 0.5 server itself emits, §2).

use super::{ClientMessage, ServerMessage};
use crate::msgpack::{self, Frame, Out, Put};

/// Encode a client → server message.
pub fn encode_client(msg: &ClientMessage<'_>) -> Vec<u8> {
    msgpack::encode(msg)
}

impl Frame for ClientMessage<'_> {
    fn write<P: Put>(&self, o: &mut Out<P>) {
        use ClientMessage as M;
        match *self {
            M::AuthIdentify { corr_id, username } => {
                o.header(2, "auth_identify");
                o.key_uint("corr_id", corr_id.into());
                o.key_str("username", username);
            }
            M::AuthProve { corr_id, signature } => {
                o.header(2, "auth_prove");
                o.key_uint("corr_id", corr_id.into());
                o.key_str("signature", signature);
            }
            M::Ping { corr_id } => {
                o.header(1, "ping");
                o.key_uint("corr_id", corr_id.into());
            }
            M::Query {
                corr_id,
                subject,
                record,
            } => {
                o.header(3, "query");
                o.key_uint("corr_id", corr_id.into());
                o.key_str("subject", subject);
                o.key_str("record", record);
            }
            M::CheckProgram {
                corr_id,
                name,
                version,
            } => {
                o.header(3, "check_program");
                o.key_uint("corr_id", corr_id.into());
                o.key_str("name", name);
                o.key_str("version", version);
            }
            M::AddProgram {
                corr_id,
                program_hash,
                manifest,
                force_overwrite,
                chunk_index,
                total_chunks,
                chunk_data,
            } => {
                o.header(7, "add_program");
                o.key_uint("corr_id", corr_id.into());
                o.key_str("program_hash", program_hash);
                o.key_str("manifest", manifest);
                o.key_bool("force_overwrite", force_overwrite);
                o.key_uint("chunk_index", chunk_index.into());
                o.key_uint("total_chunks", total_chunks.into());
                o.key_bin("chunk_data", chunk_data);
            }
            M::LaunchProcess {
                corr_id,
                inferlet,
                input,
                capture_outputs,
            } => {
                o.header(4, "launch_process");
                o.key_uint("corr_id", corr_id.into());
                o.key_str("inferlet", inferlet);
                o.key_str("input", input);
                o.key_bool("capture_outputs", capture_outputs);
            }
            M::AttachProcess {
                corr_id,
                process_id,
            } => {
                o.header(2, "attach_process");
                o.key_uint("corr_id", corr_id.into());
                o.key_str("process_id", process_id);
            }
            M::TerminateProcess {
                corr_id,
                process_id,
            } => {
                o.header(2, "terminate_process");
                o.key_uint("corr_id", corr_id.into());
                o.key_str("process_id", process_id);
            }
            M::ListProcesses { corr_id } => {
                o.header(1, "list_processes");
                o.key_uint("corr_id", corr_id.into());
            }
            M::SignalProcess {
                process_id,
                message,
            } => {
                o.header(2, "signal_process");
                o.key_str("process_id", process_id);
                o.key_str("message", message);
            }
            M::TransferFile {
                process_id,
                file_hash,
                chunk_index,
                total_chunks,
                chunk_data,
            } => {
                o.header(5, "transfer_file");
                o.key_str("process_id", process_id);
                o.key_str("file_hash", file_hash);
                o.key_uint("chunk_index", chunk_index.into());
                o.key_uint("total_chunks", total_chunks.into());
                o.key_bin("chunk_data", chunk_data);
            }
        }
    }
}

/// Encode a server → client message in the server's key order (for tests and fake servers).
pub fn encode_server(msg: &ServerMessage) -> Vec<u8> {
    msgpack::encode(msg)
}

impl Frame for ServerMessage {
    fn write<P: Put>(&self, o: &mut Out<P>) {
        match self {
            ServerMessage::Response {
                corr_id,
                ok,
                result,
            } => {
                o.header(3, "response");
                o.key_uint("corr_id", (*corr_id).into());
                o.key_bool("ok", *ok);
                o.key_str("result", result);
            }
            ServerMessage::ProcessEvent {
                process_id,
                event,
                value,
            } => {
                o.header(3, "process_event");
                o.key_str("process_id", process_id);
                o.key_str("event", event);
                o.key_str("value", value);
            }
            ServerMessage::File {
                process_id,
                file_hash,
                chunk_index,
                total_chunks,
                chunk_data,
                name,
            } => {
                o.header(6, "file");
                o.key_str("process_id", process_id);
                o.key_str("file_hash", file_hash);
                o.key_uint("chunk_index", *chunk_index);
                o.key_uint("total_chunks", *total_chunks);
                o.key_bin("chunk_data", chunk_data);
                o.key_opt_str("name", name.as_deref());
            }
        }
    }
}
