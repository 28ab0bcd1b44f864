//! Lenient decoding, as the server decodes (§2.4): a map with keys in any order (unknown keys
//! ignored, a repeated known key or `type` refused, keys and strings as str or as bin holding
//! UTF-8), or the compact array `[type, field…]` with exactly the declared fields; integers in any
//! encoding whose value fits; `chunk_data` as bin, str or an array of byte values; booleans only as
//! `c2`/`c3`; no nil anywhere; bytes after the first complete value ignored. Everything else is an
//! error, and the server skips such a frame without a reply.
//!
//! Two things §2.4 does not list follow from the serde/rmp-serde decoder the server uses (§2.4
//! says so): integer map keys name fields by index and other non-string keys are refused (see
//! [`Reader::key`]), and nesting is limited ([`super::msgpack::MAX_DEPTH`]). A `type` given as a
//! variant index is not accepted here: the specification does not fix the variants' order.
//!
//! The field lists below are the wire-order tables of §4.1/§4.2; they drive both the map and
//! the array form, so the two cannot disagree.

use super::messages::{
    ClientMessage, InstanceInfo, InstanceStatus, ServerMessage, StreamingOutput,
};
use super::msgpack::{Error, Head, Key, Reader};

/// Fields after `type`, in wire order (§4.1).
fn client_fields(type_name: &str) -> Option<&'static [&'static str]> {
    Some(match type_name {
        "identification" => &["corr_id", "username"],
        "signature" => &["corr_id", "signature"],
        "query" => &["corr_id", "subject", "record"],
        "upload_program" => &[
            "corr_id",
            "program_hash",
            "chunk_index",
            "total_chunks",
            "chunk_data",
        ],
        "launch_instance" => &["corr_id", "program_hash", "arguments", "detached"],
        "launch_instance_from_registry" => &["corr_id", "inferlet", "arguments", "detached"],
        "attach_instance" => &["corr_id", "instance_id"],
        "launch_server_instance" => &["corr_id", "port", "program_hash", "arguments"],
        "signal_instance" => &["instance_id", "message"],
        "upload_blob" => &[
            "corr_id",
            "instance_id",
            "blob_hash",
            "chunk_index",
            "total_chunks",
            "chunk_data",
        ],
        "terminate_instance" => &["corr_id", "instance_id"],
        "attach_remote_service" => &["corr_id", "endpoint", "service_type", "service_name"],
        "internal_authenticate" => &["corr_id", "token"],
        "ping" => &["corr_id"],
        "list_instances" => &["corr_id"],
        _ => return None,
    })
}

/// Fields after `type`, in wire order (§4.2).
fn server_fields(type_name: &str) -> Option<&'static [&'static str]> {
    Some(match type_name {
        "response" => &["corr_id", "successful", "result"],
        "instance_launch_result" | "instance_attach_result" => {
            &["corr_id", "successful", "message"]
        }
        "instance_event" => &["instance_id", "event", "message"],
        "download_blob" => &[
            "corr_id",
            "instance_id",
            "blob_hash",
            "chunk_index",
            "total_chunks",
            "chunk_data",
        ],
        "server_event" => &["message"],
        "challenge" => &["corr_id", "challenge"],
        "live_instances" => &["corr_id", "instances"],
        "streaming_output" => &["instance_id", "output"],
        _ => return None,
    })
}

/// `InstanceInfo` (§7.4); the last three may be absent (older servers) and then default.
const INSTANCE_INFO: &[&str] = &[
    "id",
    "arguments",
    "status",
    "username",
    "elapsed_secs",
    "kv_pages_used",
];
const INSTANCE_INFO_REQUIRED: usize = 3;

const MAX_FIELDS: usize = 6;

/// The raw values of one struct's fields, by position in its field list.
struct Fields<'a> {
    names: &'static [&'static str],
    values: [Option<Reader<'a>>; MAX_FIELDS],
}

impl<'a> Fields<'a> {
    fn new(names: &'static [&'static str]) -> Fields<'a> {
        Fields {
            names,
            values: Default::default(),
        }
    }

    /// Fill from the `n` entries of a map at nesting `depth`; unknown keys are skipped, a
    /// known key twice is an error, and with `tagged` the `type` key is left to [`envelope`].
    fn fill_from_map(
        &mut self,
        r: &mut Reader<'a>,
        n: u64,
        depth: usize,
        tagged: bool,
    ) -> Result<(), Error> {
        for _ in 0..n {
            let key = r.key()?;
            let value = r.value(depth)?;
            let index = match key {
                Key::Name(b"type") if tagged => continue,
                Key::Name(name) => self.names.iter().position(|n| n.as_bytes() == name),
                Key::Index(i) => (i < self.names.len() as u64).then_some(i as usize),
            };
            if let Some(i) = index {
                if self.values[i].replace(value).is_some() {
                    return Err(format!("duplicate field `{}`", self.names[i]));
                }
            }
        }
        Ok(())
    }

    /// Fill from `n` array items in declared order, at nesting `depth`.
    fn fill_from_array(&mut self, r: &mut Reader<'a>, n: u64, depth: usize) -> Result<(), Error> {
        if n > self.names.len() as u64 {
            return Err(format!(
                "array of {n} fields, expected {}",
                self.names.len()
            ));
        }
        for i in 0..n as usize {
            self.values[i] = Some(r.value(depth)?);
        }
        Ok(())
    }

    fn get(&mut self, i: usize) -> Result<Reader<'a>, Error> {
        self.values[i]
            .take()
            .ok_or_else(|| format!("missing field `{}`", self.names[i]))
    }

    fn u32(&mut self, i: usize) -> Result<u32, Error> {
        Ok(self.get(i)?.uint(u64::from(u32::MAX))? as u32)
    }

    fn u64(&mut self, i: usize) -> Result<u64, Error> {
        self.get(i)?.uint(u64::MAX)
    }

    fn text(&mut self, i: usize) -> Result<String, Error> {
        Ok(self.get(i)?.text()?.to_owned())
    }

    fn bool(&mut self, i: usize) -> Result<bool, Error> {
        self.get(i)?.bool()
    }

    fn bytes(&mut self, i: usize) -> Result<Vec<u8>, Error> {
        self.get(i)?.bytes()
    }

    fn texts(&mut self, i: usize) -> Result<Vec<String>, Error> {
        self.get(i)?.texts()
    }
}

/// Split a frame into its `type` and the fields that type declares.
fn envelope<'a>(
    frame: &'a [u8],
    fields_of: fn(&str) -> Option<&'static [&'static str]>,
) -> Result<(&'a str, Fields<'a>), Error> {
    if frame.is_empty() {
        return Err("empty frame".into());
    }
    let mut r = Reader::new(frame);
    match r.head()? {
        Head::Map(n) => {
            let n = r.container_len(n)?;
            // First pass: find the one `type` entry, wherever it is.
            let body = r.clone();
            let mut type_name = None;
            for _ in 0..n {
                let key = r.key()?;
                let mut value = r.value(1)?;
                if matches!(key, Key::Name(b"type")) {
                    if type_name.is_some() {
                        return Err("duplicate field `type`".into());
                    }
                    type_name = Some(value.text().map_err(|e| format!("`type`: {e}"))?);
                }
            }
            let type_name = type_name.ok_or("missing field `type`")?;
            let names =
                fields_of(type_name).ok_or_else(|| format!("unknown type `{type_name}`"))?;
            // Second pass: the fields.
            let mut fields = Fields::new(names);
            fields.fill_from_map(&mut body.clone(), n, 1, true)?;
            Ok((type_name, fields))
        }
        Head::Array(n) => {
            let n = r.container_len(n)?;
            if n == 0 {
                return Err("empty array".into());
            }
            let type_name = r.text().map_err(|e| format!("`type`: {e}"))?;
            let names =
                fields_of(type_name).ok_or_else(|| format!("unknown type `{type_name}`"))?;
            if n - 1 != names.len() as u64 {
                return Err(format!(
                    "`{type_name}` as an array of {} fields, expected {}",
                    n - 1,
                    names.len()
                ));
            }
            let mut fields = Fields::new(names);
            fields.fill_from_array(&mut r, n - 1, 1)?;
            Ok((type_name, fields))
        }
        _ => Err("expected a MessagePack map or array".into()),
    }
}

/// Decode a client → server frame (what the simulator receives).
pub fn decode_client(frame: &[u8]) -> Result<ClientMessage, Error> {
    use ClientMessage::*;
    let (type_name, mut f) = envelope(frame, client_fields)?;
    Ok(match type_name {
        "identification" => Identification {
            corr_id: f.u32(0)?,
            username: f.text(1)?,
        },
        "signature" => Signature {
            corr_id: f.u32(0)?,
            signature: f.text(1)?,
        },
        "query" => Query {
            corr_id: f.u32(0)?,
            subject: f.text(1)?,
            record: f.text(2)?,
        },
        "upload_program" => UploadProgram {
            corr_id: f.u32(0)?,
            program_hash: f.text(1)?,
            chunk_index: f.u64(2)?,
            total_chunks: f.u64(3)?,
            chunk_data: f.bytes(4)?,
        },
        "launch_instance" => LaunchInstance {
            corr_id: f.u32(0)?,
            program_hash: f.text(1)?,
            arguments: f.texts(2)?,
            detached: f.bool(3)?,
        },
        "launch_instance_from_registry" => LaunchInstanceFromRegistry {
            corr_id: f.u32(0)?,
            inferlet: f.text(1)?,
            arguments: f.texts(2)?,
            detached: f.bool(3)?,
        },
        "attach_instance" => AttachInstance {
            corr_id: f.u32(0)?,
            instance_id: f.text(1)?,
        },
        "launch_server_instance" => LaunchServerInstance {
            corr_id: f.u32(0)?,
            port: f.u32(1)?,
            program_hash: f.text(2)?,
            arguments: f.texts(3)?,
        },
        "signal_instance" => SignalInstance {
            instance_id: f.text(0)?,
            message: f.text(1)?,
        },
        "upload_blob" => UploadBlob {
            corr_id: f.u32(0)?,
            instance_id: f.text(1)?,
            blob_hash: f.text(2)?,
            chunk_index: f.u64(3)?,
            total_chunks: f.u64(4)?,
            chunk_data: f.bytes(5)?,
        },
        "terminate_instance" => TerminateInstance {
            corr_id: f.u32(0)?,
            instance_id: f.text(1)?,
        },
        "attach_remote_service" => AttachRemoteService {
            corr_id: f.u32(0)?,
            endpoint: f.text(1)?,
            service_type: f.text(2)?,
            service_name: f.text(3)?,
        },
        "internal_authenticate" => InternalAuthenticate {
            corr_id: f.u32(0)?,
            token: f.text(1)?,
        },
        "ping" => Ping { corr_id: f.u32(0)? },
        "list_instances" => ListInstances { corr_id: f.u32(0)? },
        other => return Err(format!("unknown type `{other}`")),
    })
}

fn instance_status(mut r: Reader<'_>) -> Result<InstanceStatus, Error> {
    match r.text()? {
        "Attached" => Ok(InstanceStatus::Attached),
        "Detached" => Ok(InstanceStatus::Detached),
        "Finished" => Ok(InstanceStatus::Finished),
        other => Err(format!("unknown instance status `{other}`")),
    }
}

fn instance_info(r: &mut Reader<'_>) -> Result<InstanceInfo, Error> {
    let mut f = Fields::new(INSTANCE_INFO);
    match r.head()? {
        Head::Map(n) => {
            let n = r.container_len(n)?;
            f.fill_from_map(r, n, 3, false)?;
        }
        Head::Array(n) if n >= INSTANCE_INFO_REQUIRED as u64 => {
            let n = r.container_len(n)?;
            f.fill_from_array(r, n, 3)?;
        }
        _ => return Err("expected an InstanceInfo map".into()),
    }
    let present = |f: &Fields, i: usize| f.values[i].is_some();
    Ok(InstanceInfo {
        id: f.text(0)?,
        arguments: f.texts(1)?,
        status: instance_status(f.get(2)?)?,
        username: if present(&f, 3) {
            f.text(3)?
        } else {
            String::new()
        },
        elapsed_secs: if present(&f, 4) { f.u64(4)? } else { 0 },
        kv_pages_used: if present(&f, 5) { f.u32(5)? } else { 0 },
    })
}

fn live_instances(mut r: Reader<'_>) -> Result<Vec<InstanceInfo>, Error> {
    match r.head()? {
        Head::Array(n) => {
            let n = r.container_len(n)?;
            (0..n).map(|_| instance_info(&mut r)).collect()
        }
        _ => Err("expected an array of InstanceInfo".into()),
    }
}

fn streaming_output(mut r: Reader<'_>) -> Result<StreamingOutput, Error> {
    match r.head()? {
        Head::Map(1) => {}
        _ => return Err(r#"expected {"Stdout"|"Stderr": text}"#.into()),
    }
    match r.text().map_err(|e| format!("output stream name: {e}"))? {
        "Stdout" => Ok(StreamingOutput::Stdout(r.text()?.to_owned())),
        "Stderr" => Ok(StreamingOutput::Stderr(r.text()?.to_owned())),
        other => Err(format!("unknown output stream `{other}`")),
    }
}

/// Decode a server → client frame (the simulator's tests play the client with it).
pub fn decode_server(frame: &[u8]) -> Result<ServerMessage, Error> {
    use ServerMessage::*;
    let (type_name, mut f) = envelope(frame, server_fields)?;
    Ok(match type_name {
        "response" => Response {
            corr_id: f.u32(0)?,
            successful: f.bool(1)?,
            result: f.text(2)?,
        },
        "instance_launch_result" => InstanceLaunchResult {
            corr_id: f.u32(0)?,
            successful: f.bool(1)?,
            message: f.text(2)?,
        },
        "instance_attach_result" => InstanceAttachResult {
            corr_id: f.u32(0)?,
            successful: f.bool(1)?,
            message: f.text(2)?,
        },
        "instance_event" => InstanceEvent {
            instance_id: f.text(0)?,
            event: f.u32(1)?,
            message: f.text(2)?,
        },
        "download_blob" => DownloadBlob {
            corr_id: f.u32(0)?,
            instance_id: f.text(1)?,
            blob_hash: f.text(2)?,
            chunk_index: f.u64(3)?,
            total_chunks: f.u64(4)?,
            chunk_data: f.bytes(5)?,
        },
        "server_event" => ServerEvent {
            message: f.text(0)?,
        },
        "challenge" => Challenge {
            corr_id: f.u32(0)?,
            challenge: f.text(1)?,
        },
        "live_instances" => LiveInstances {
            corr_id: f.u32(0)?,
            instances: live_instances(f.get(1)?)?,
        },
        "streaming_output" => StreamingOutput {
            instance_id: f.text(0)?,
            output: streaming_output(f.get(1)?)?,
        },
        other => return Err(format!("unknown type `{other}`")),
    })
}
