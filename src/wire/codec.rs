//! Encoding and decoding of whole frames.
//!
//! Encoding yields exactly the canonical bytes of §2.1–2.2 (smallest integer encodings, str for
//! strings, bin for chunk data, fixmap headers): client frames by hand (`crate::msgpack`),
//! server frames through rmp-serde's "named" form, which produces the same canonical form.
//! Decoding goes through the same serde definitions and is therefore as lenient as the server
//! (§2.4): keys in any order, unknown keys ignored, bin accepted for strings, any integer
//! encoding that fits, the compact array form, trailing bytes ignored. It never panics: every
//! malformed input is a `DecodeError`.

use super::messages::{ClientMessage, ServerMessage};
use crate::msgpack::{self, Frame, Out, Put};
use std::fmt;

/// A frame that is not a message of the protocol (not MessagePack, unknown `type`, missing or
/// mistyped fields, ...). The text is for logs and error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "undecodable frame: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}

fn encode<T: serde::Serialize>(msg: &T) -> Vec<u8> {
    // Serializing these plain data types into a Vec cannot fail: no maps with non-string keys,
    // no sequences of unknown length, and writing to memory is infallible.
    // Most messages are small: one allocation, not a Vec grown four times.
    let mut out = Vec::with_capacity(128);
    rmp_serde::encode::write_named(&mut out, msg).expect("protocol messages always serialize");
    out
}

fn decode<'a, T: serde::Deserialize<'a>>(frame: &'a [u8]) -> Result<T, DecodeError> {
    if frame.is_empty() {
        return Err(DecodeError("empty frame".into()));
    }
    // Only a map (named form) or an array (compact form) can be a message. Checking the first
    // byte up front also keeps scalars from reaching serde's buffering.
    // `scan` then bounds nesting depth and value count before serde buffers anything.
    let first = frame[0];
    let is_map = matches!(first, 0x80..=0x8f | 0xde | 0xdf);
    let is_array = matches!(first, 0x90..=0x9f | 0xdc | 0xdd);
    if !is_map && !is_array {
        return Err(DecodeError(format!(
            "expected a MessagePack map or array, first byte 0x{first:02x}"
        )));
    }
    scan(frame)?;
    let mut de = rmp_serde::Deserializer::from_read_ref(frame);
    // Belt and braces with `scan`: rmp-serde fails when its counter reaches zero, hence +1.
    de.set_max_depth(MAX_NESTING + 1);
    T::deserialize(&mut de).map_err(|e| DecodeError(e.to_string()))
}

/// Deepest nesting of maps/arrays accepted. The protocol needs 4 (`live_instances` → array →
/// `InstanceInfo` → `arguments`). The real server only has rmp-serde's limit of 1024, but serde
/// recurses once per level while buffering an internally tagged message, so ~1000 levels
/// overflow a 2 MiB thread stack in debug builds; frames nested deeper than this are rejected.
pub(crate) const MAX_NESTING: usize = 16;

/// Most MessagePack values accepted in one frame. serde buffers every value of an internally
/// tagged message (about 32 bytes each) before decoding, so a frame of 16 million one-byte
/// integers would cost 512 MiB. The largest legitimate frame, a 256 KiB chunk sent as an array
/// of integers (§2.4), has 262144 values; this leaves four times that.
pub(crate) const MAX_VALUES: usize = 1 << 20;

/// Walk the structure of the first MessagePack object in `frame` without recursion or
/// allocation proportional to declared lengths, enforcing `MAX_NESTING` and `MAX_VALUES` and
/// checking that declared lengths fit in the frame. Only then does serde see the frame.
fn scan(frame: &[u8]) -> Result<(), DecodeError> {
    let truncated = || DecodeError("truncated MessagePack data".into());
    // Items still expected in each open container (a map's count is doubled: keys + values).
    let mut open: Vec<u64> = Vec::with_capacity(MAX_NESTING);
    let mut pos = 0usize;
    let mut values = 0usize;
    loop {
        let marker = *frame.get(pos).ok_or_else(truncated)?;
        values += 1;
        if values > MAX_VALUES {
            return Err(DecodeError(format!(
                "more than {MAX_VALUES} MessagePack values in one frame"
            )));
        }
        let be = |n: usize| -> Result<u64, DecodeError> {
            let bytes = frame.get(pos + 1..pos + 1 + n).ok_or_else(truncated)?;
            Ok(bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
        };
        // (bytes of this value excluding children, number of child items)
        let (size, children): (u64, u64) = match marker {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (1, 0),
            0x80..=0x8f => (1, 2 * u64::from(marker & 0x0f)),
            0x90..=0x9f => (1, u64::from(marker & 0x0f)),
            0xa0..=0xbf => (1 + u64::from(marker & 0x1f), 0),
            0xc1 => return Err(DecodeError("invalid MessagePack marker 0xc1".into())),
            0xc4 | 0xd9 => (2 + be(1)?, 0),
            0xc5 | 0xda => (3 + be(2)?, 0),
            0xc6 | 0xdb => (5 + be(4)?, 0),
            0xc7 => (3 + be(1)?, 0),
            0xc8 => (4 + be(2)?, 0),
            0xc9 => (6 + be(4)?, 0),
            0xca => (5, 0),
            0xcb => (9, 0),
            0xcc | 0xd0 => (2, 0),
            0xcd | 0xd1 => (3, 0),
            0xce | 0xd2 => (5, 0),
            0xcf | 0xd3 => (9, 0),
            0xd4 => (3, 0),
            0xd5 => (4, 0),
            0xd6 => (6, 0),
            0xd7 => (10, 0),
            0xd8 => (18, 0),
            0xdc => (3, be(2)?),
            0xdd => (5, be(4)?),
            0xde => (3, 2 * be(2)?),
            0xdf => (5, 2 * be(4)?),
        };
        let remaining = (frame.len() - pos) as u64;
        if size > remaining {
            return Err(truncated());
        }
        pos += size as usize;
        if children > 0 {
            // Every child takes at least one byte: a count beyond the frame is a lie.
            if children > (frame.len() - pos) as u64 {
                return Err(truncated());
            }
            if open.len() == MAX_NESTING {
                return Err(DecodeError(format!(
                    "MessagePack nesting deeper than {MAX_NESTING} levels"
                )));
            }
            open.push(children);
            continue;
        }
        // A complete value: it fills one slot of its container; a container whose last slot
        // is filled is itself complete and fills a slot of its parent.
        loop {
            match open.last_mut() {
                None => return Ok(()),
                Some(left) => {
                    *left -= 1;
                    if *left > 0 {
                        break;
                    }
                    open.pop();
                }
            }
        }
    }
}

/// Encode a client → server message in canonical form: by hand, byte for byte what serde's
/// derived encoding gives (a unit test holds both to it), at a tenth of the cost.
pub fn encode_client(msg: &ClientMessage) -> Vec<u8> {
    msgpack::encode(msg)
}

impl Frame for ClientMessage {
    fn write<P: Put>(&self, o: &mut Out<P>) {
        use ClientMessage as M;
        match self {
            M::Identification { corr_id, username } => {
                o.header(2, "identification");
                o.key_uint("corr_id", (*corr_id).into());
                o.key_str("username", username);
            }
            M::Signature { corr_id, signature } => {
                o.header(2, "signature");
                o.key_uint("corr_id", (*corr_id).into());
                o.key_str("signature", signature);
            }
            M::Query {
                corr_id,
                subject,
                record,
            } => {
                o.header(3, "query");
                o.key_uint("corr_id", (*corr_id).into());
                o.key_str("subject", subject);
                o.key_str("record", record);
            }
            M::UploadProgram {
                corr_id,
                program_hash,
                chunk_index,
                total_chunks,
                chunk_data,
            } => {
                o.header(5, "upload_program");
                o.key_uint("corr_id", (*corr_id).into());
                o.key_str("program_hash", program_hash);
                o.key_uint("chunk_index", *chunk_index);
                o.key_uint("total_chunks", *total_chunks);
                o.key_bin("chunk_data", chunk_data);
            }
            M::LaunchInstance {
                corr_id,
                program_hash,
                arguments,
                detached,
            } => {
                o.header(4, "launch_instance");
                o.key_uint("corr_id", (*corr_id).into());
                o.key_str("program_hash", program_hash);
                o.key_str_array("arguments", arguments);
                o.key_bool("detached", *detached);
            }
            M::LaunchInstanceFromRegistry {
                corr_id,
                inferlet,
                arguments,
                detached,
            } => {
                o.header(4, "launch_instance_from_registry");
                o.key_uint("corr_id", (*corr_id).into());
                o.key_str("inferlet", inferlet);
                o.key_str_array("arguments", arguments);
                o.key_bool("detached", *detached);
            }
            M::AttachInstance {
                corr_id,
                instance_id,
            } => {
                o.header(2, "attach_instance");
                o.key_uint("corr_id", (*corr_id).into());
                o.key_str("instance_id", instance_id);
            }
            M::LaunchServerInstance {
                corr_id,
                port,
                program_hash,
                arguments,
            } => {
                o.header(4, "launch_server_instance");
                o.key_uint("corr_id", (*corr_id).into());
                o.key_uint("port", (*port).into());
                o.key_str("program_hash", program_hash);
                o.key_str_array("arguments", arguments);
            }
            M::SignalInstance {
                instance_id,
                message,
            } => {
                o.header(2, "signal_instance");
                o.key_str("instance_id", instance_id);
                o.key_str("message", message);
            }
            M::UploadBlob {
                corr_id,
                instance_id,
                blob_hash,
                chunk_index,
                total_chunks,
                chunk_data,
            } => {
                o.header(6, "upload_blob");
                o.key_uint("corr_id", (*corr_id).into());
                o.key_str("instance_id", instance_id);
                o.key_str("blob_hash", blob_hash);
                o.key_uint("chunk_index", *chunk_index);
                o.key_uint("total_chunks", *total_chunks);
                o.key_bin("chunk_data", chunk_data);
            }
            M::TerminateInstance {
                corr_id,
                instance_id,
            } => {
                o.header(2, "terminate_instance");
                o.key_uint("corr_id", (*corr_id).into());
                o.key_str("instance_id", instance_id);
            }
            M::AttachRemoteService {
                corr_id,
                endpoint,
                service_type,
                service_name,
            } => {
                o.header(4, "attach_remote_service");
                o.key_uint("corr_id", (*corr_id).into());
                o.key_str("endpoint", endpoint);
                o.key_str("service_type", service_type);
                o.key_str("service_name", service_name);
            }
            M::InternalAuthenticate { corr_id, token } => {
                o.header(2, "internal_authenticate");
                o.key_uint("corr_id", (*corr_id).into());
                o.key_str("token", token);
            }
            M::Ping { corr_id } => {
                o.header(1, "ping");
                o.key_uint("corr_id", (*corr_id).into());
            }
            M::ListInstances { corr_id } => {
                o.header(1, "list_instances");
                o.key_uint("corr_id", (*corr_id).into());
            }
        }
    }
}

/// Encode a server → client message in canonical form.
pub fn encode_server(msg: &ServerMessage) -> Vec<u8> {
    encode(msg)
}

/// Decode a client → server frame (what a server receives).
pub fn decode_client(frame: &[u8]) -> Result<ClientMessage, DecodeError> {
    decode(frame)
}

/// Decode a server → client frame (what a client receives).
pub fn decode_server(frame: &[u8]) -> Result<ServerMessage, DecodeError> {
    // Output and event frames are most of a client's traffic: take the allocation-light path
    // for their canonical form, and the lenient serde path for everything else.
    if let Some(msg) = super::fast::decode_event_message(frame) {
        return Ok(msg);
    }
    if let Some(msg) = super::fast::decode_response(frame) {
        return Ok(msg);
    }
    decode(frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every client message, with values that exercise each integer and length width.
    fn every_client_message() -> Vec<ClientMessage> {
        use ClientMessage as M;
        let long = "x".repeat(300);
        let args = |n: usize| (0..n).map(|i| format!("arg{i}")).collect::<Vec<_>>();
        let mut all = Vec::new();
        for corr_id in [0, 1, 127, 128, 255, 256, 65_535, 65_536, u32::MAX] {
            all.push(M::Ping { corr_id });
            all.push(M::ListInstances { corr_id });
            all.push(M::Identification {
                corr_id,
                username: "alice".into(),
            });
        }
        for chunk_index in [0u64, 200, 70_000, u64::from(u32::MAX) + 1, u64::MAX] {
            all.push(M::UploadProgram {
                corr_id: 7,
                program_hash: "ab".repeat(32),
                chunk_index,
                total_chunks: chunk_index.saturating_add(1),
                chunk_data: vec![0xc1; (chunk_index % 70_000) as usize],
            });
            all.push(M::UploadBlob {
                corr_id: 8,
                instance_id: "i".into(),
                blob_hash: "h".into(),
                chunk_index,
                total_chunks: 1,
                chunk_data: Vec::new(),
            });
        }
        for n in [0, 1, 15, 16, 70_000] {
            all.push(M::LaunchInstance {
                corr_id: 9,
                program_hash: "p".into(),
                arguments: args(n),
                detached: n % 2 == 0,
            });
        }
        all.extend([
            M::Signature {
                corr_id: 2,
                signature: long.clone(),
            },
            M::Query {
                corr_id: 3,
                subject: "program_exists".into(),
                record: "x".repeat(70_000),
            },
            M::LaunchInstanceFromRegistry {
                corr_id: 4,
                inferlet: "text-completion@0.1.0".into(),
                arguments: args(3),
                detached: true,
            },
            M::AttachInstance {
                corr_id: 5,
                instance_id: "7e9c".into(),
            },
            M::LaunchServerInstance {
                corr_id: 6,
                port: 8080,
                program_hash: "p".into(),
                arguments: args(2),
            },
            M::SignalInstance {
                instance_id: "i".into(),
                message: "é ünïcode".into(),
            },
            M::TerminateInstance {
                corr_id: 10,
                instance_id: String::new(),
            },
            M::AttachRemoteService {
                corr_id: 11,
                endpoint: "tcp://a".into(),
                service_type: "t".into(),
                service_name: long,
            },
            M::InternalAuthenticate {
                corr_id: 12,
                token: "tok".into(),
            },
        ]);
        all
    }

    #[test]
    fn hand_encoding_is_serdes_canonical_form() {
        for msg in every_client_message() {
            assert_eq!(encode_client(&msg), encode(&msg), "{msg:?}");
            assert_eq!(decode_client(&encode_client(&msg)).as_ref(), Ok(&msg));
        }
    }
}
