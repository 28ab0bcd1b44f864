//! Decoding: a direct parser for the flat maps of §5–§6 and the JSON text frames of §7.

use super::{ClientMessage, ServerMessage};
use std::fmt;

/// A frame that is not a message of the 0.5 protocol. The text is for logs and error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "undecodable 0.5 frame: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}

fn err<T>(why: impl Into<String>) -> Result<T, DecodeError> {
    Err(DecodeError(why.into()))
}

/// Deepest nesting skipped inside an unknown field (the protocol itself is flat).
const MAX_SKIP_DEPTH: usize = 16;
/// Most entries in the top-level map (the largest message has 8).
const MAX_FIELDS: usize = 64;

/// A top-level field value. Anything the protocol never uses at the top level is `Other`.
#[derive(Debug, Clone, Copy)]
enum Val<'a> {
    Str(&'a str),
    Bin(&'a [u8]),
    UInt(u64),
    Bool(bool),
    Nil,
    Other,
}

struct Parser<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    fn truncated() -> DecodeError {
        DecodeError("truncated MessagePack data".into())
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        let v = *self.b.get(self.pos).ok_or_else(Self::truncated)?;
        self.pos += 1;
        Ok(v)
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], DecodeError> {
        let n = usize::try_from(n).map_err(|_| Self::truncated())?;
        let end = self.pos.checked_add(n).ok_or_else(Self::truncated)?;
        let out = self.b.get(self.pos..end).ok_or_else(Self::truncated)?;
        self.pos = end;
        Ok(out)
    }

    fn be(&mut self, n: u64) -> Result<u64, DecodeError> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
    }

    fn utf8(bytes: &'a [u8]) -> Result<&'a str, DecodeError> {
        std::str::from_utf8(bytes).map_err(|_| DecodeError("string is not valid UTF-8".into()))
    }

    /// One value; containers and exotic scalars are skipped and reported as `Other`.
    fn value(&mut self) -> Result<Val<'a>, DecodeError> {
        let m = self.byte()?;
        Ok(match m {
            0x00..=0x7f => Val::UInt(u64::from(m)),
            0xcc => Val::UInt(self.be(1)?),
            0xcd => Val::UInt(self.be(2)?),
            0xce => Val::UInt(self.be(4)?),
            0xcf => Val::UInt(self.be(8)?),
            0xa0..=0xbf => Val::Str(Self::utf8(self.take(u64::from(m & 0x1f))?)?),
            0xd9 => {
                let n = self.be(1)?;
                Val::Str(Self::utf8(self.take(n)?)?)
            }
            0xda => {
                let n = self.be(2)?;
                Val::Str(Self::utf8(self.take(n)?)?)
            }
            0xdb => {
                let n = self.be(4)?;
                Val::Str(Self::utf8(self.take(n)?)?)
            }
            0xc4 => {
                let n = self.be(1)?;
                Val::Bin(self.take(n)?)
            }
            0xc5 => {
                let n = self.be(2)?;
                Val::Bin(self.take(n)?)
            }
            0xc6 => {
                let n = self.be(4)?;
                Val::Bin(self.take(n)?)
            }
            0xc2 => Val::Bool(false),
            0xc3 => Val::Bool(true),
            0xc0 => Val::Nil,
            _ => {
                self.pos -= 1;
                self.skip()?;
                Val::Other
            }
        })
    }

    /// Skip one value of any kind without recursion; nesting is bounded.
    fn skip(&mut self) -> Result<(), DecodeError> {
        let mut open: Vec<u64> = Vec::new();
        loop {
            let m = self.byte()?;
            let (size, children): (u64, u64) = match m {
                0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0),
                0x80..=0x8f => (0, 2 * u64::from(m & 0x0f)),
                0x90..=0x9f => (0, u64::from(m & 0x0f)),
                0xa0..=0xbf => (u64::from(m & 0x1f), 0),
                0xc1 => return err("invalid MessagePack marker 0xc1"),
                0xc4 | 0xd9 => (self.be(1)?, 0),
                0xc5 | 0xda => (self.be(2)?, 0),
                0xc6 | 0xdb => (self.be(4)?, 0),
                0xc7 => (self.be(1)? + 1, 0),
                0xc8 => (self.be(2)? + 1, 0),
                0xc9 => (self.be(4)? + 1, 0),
                0xca => (4, 0),
                0xcb => (8, 0),
                0xcc | 0xd0 => (1, 0),
                0xcd | 0xd1 => (2, 0),
                0xce | 0xd2 => (4, 0),
                0xcf | 0xd3 => (8, 0),
                0xd4 => (2, 0),
                0xd5 => (3, 0),
                0xd6 => (5, 0),
                0xd7 => (9, 0),
                0xd8 => (17, 0),
                0xdc => (0, self.be(2)?),
                0xdd => (0, self.be(4)?),
                0xde => (0, 2 * self.be(2)?),
                0xdf => (0, 2 * self.be(4)?),
            };
            self.take(size)?;
            if children > 0 {
                // Every child takes at least one byte: a count beyond the frame is a lie.
                if children > (self.b.len() - self.pos) as u64 {
                    return Err(Self::truncated());
                }
                if open.len() == MAX_SKIP_DEPTH {
                    return err("MessagePack nesting too deep");
                }
                open.push(children);
                continue;
            }
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

    /// The top-level map as (key, value) pairs, with its `type`.
    fn message(frame: &'a [u8]) -> Result<(&'a str, Fields<'a>), DecodeError> {
        let mut p = Parser { b: frame, pos: 0 };
        let m = p.byte().map_err(|_| DecodeError("empty frame".into()))?;
        let len = match m {
            0x80..=0x8f => u64::from(m & 0x0f),
            0xde => p.be(2)?,
            0xdf => p.be(4)?,
            _ => return err(format!("expected a MessagePack map, first byte 0x{m:02x}")),
        };
        if len as usize > MAX_FIELDS {
            return err(format!("map with {len} entries"));
        }
        let mut fields: Vec<(&'a str, Val<'a>)> = Vec::with_capacity(len as usize);
        for _ in 0..len {
            let Val::Str(key) = p.value()? else {
                return err("a map key is not a string");
            };
            let v = p.value()?;
            if fields.iter().any(|(k, _)| *k == key) {
                return err(format!("duplicate field `{key}`"));
            }
            fields.push((key, v));
        }
        let fields = Fields(fields);
        let kind = match fields.get("type") {
            Some(Val::Str(t)) => t,
            Some(_) => return err("`type` is not a string"),
            None => return err("missing field `type`"),
        };
        Ok((kind, fields))
    }
}

struct Fields<'a>(Vec<(&'a str, Val<'a>)>);

impl<'a> Fields<'a> {
    fn get(&self, key: &str) -> Option<Val<'a>> {
        self.0.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }
    fn missing(key: &str) -> DecodeError {
        DecodeError(format!("missing field `{key}`"))
    }
    fn str(&self, key: &str) -> Result<&'a str, DecodeError> {
        match self.get(key) {
            Some(Val::Str(s)) => Ok(s),
            Some(_) => err(format!("field `{key}` is not a string")),
            None => Err(Self::missing(key)),
        }
    }
    fn opt_str(&self, key: &str) -> Result<Option<&'a str>, DecodeError> {
        match self.get(key) {
            Some(Val::Str(s)) => Ok(Some(s)),
            Some(Val::Nil) | None => Ok(None),
            Some(_) => err(format!("field `{key}` is not a string or nil")),
        }
    }
    fn uint(&self, key: &str) -> Result<u64, DecodeError> {
        match self.get(key) {
            Some(Val::UInt(n)) => Ok(n),
            Some(_) => err(format!("field `{key}` is not an unsigned integer")),
            None => Err(Self::missing(key)),
        }
    }
    fn u32(&self, key: &str) -> Result<u32, DecodeError> {
        let n = self.uint(key)?;
        u32::try_from(n).map_err(|_| DecodeError(format!("field `{key}`: {n} exceeds u32")))
    }
    fn bool(&self, key: &str) -> Result<bool, DecodeError> {
        match self.get(key) {
            Some(Val::Bool(b)) => Ok(b),
            Some(_) => err(format!("field `{key}` is not a boolean")),
            None => Err(Self::missing(key)),
        }
    }
    fn bin(&self, key: &str) -> Result<&'a [u8], DecodeError> {
        match self.get(key) {
            Some(Val::Bin(b)) => Ok(b),
            Some(_) => err(format!("field `{key}` is not binary")),
            None => Err(Self::missing(key)),
        }
    }
}

/// Decode a server → client binary frame.
pub fn decode_server(frame: &[u8]) -> Result<ServerMessage, DecodeError> {
    let (kind, f) = Parser::message(frame)?;
    Ok(match kind {
        "response" => ServerMessage::Response {
            corr_id: f.u32("corr_id")?,
            ok: f.bool("ok")?,
            result: f.str("result")?.to_owned(),
        },
        "process_event" => ServerMessage::ProcessEvent {
            process_id: f.str("process_id")?.to_owned(),
            event: f.str("event")?.to_owned(),
            value: f.str("value")?.to_owned(),
        },
        "file" => ServerMessage::File {
            process_id: f.str("process_id")?.to_owned(),
            file_hash: f.str("file_hash")?.to_owned(),
            chunk_index: f.uint("chunk_index")?,
            total_chunks: f.uint("total_chunks")?,
            chunk_data: f.bin("chunk_data")?.to_vec(),
            name: f.opt_str("name")?.map(str::to_owned),
        },
        other => return err(format!("unknown message type `{other}`")),
    })
}

/// Decode a client → server frame (what a 0.5 server receives; used by tests and fakes).
/// Strings and chunk data borrow from `frame`.
pub fn decode_client(frame: &[u8]) -> Result<ClientMessage<'_>, DecodeError> {
    use ClientMessage as M;
    let (kind, f) = Parser::message(frame)?;
    Ok(match kind {
        "auth_identify" => M::AuthIdentify {
            corr_id: f.u32("corr_id")?,
            username: f.str("username")?,
        },
        "auth_prove" => M::AuthProve {
            corr_id: f.u32("corr_id")?,
            signature: f.str("signature")?,
        },
        "ping" => M::Ping {
            corr_id: f.u32("corr_id")?,
        },
        "query" => M::Query {
            corr_id: f.u32("corr_id")?,
            subject: f.str("subject")?,
            record: f.str("record")?,
        },
        "check_program" => M::CheckProgram {
            corr_id: f.u32("corr_id")?,
            name: f.str("name")?,
            version: f.str("version")?,
        },
        "add_program" => M::AddProgram {
            corr_id: f.u32("corr_id")?,
            program_hash: f.str("program_hash")?,
            manifest: f.str("manifest")?,
            force_overwrite: f.bool("force_overwrite")?,
            chunk_index: f.u32("chunk_index")?,
            total_chunks: f.u32("total_chunks")?,
            chunk_data: f.bin("chunk_data")?,
        },
        "launch_process" => M::LaunchProcess {
            corr_id: f.u32("corr_id")?,
            inferlet: f.str("inferlet")?,
            input: f.str("input")?,
            capture_outputs: f.bool("capture_outputs")?,
        },
        "attach_process" => M::AttachProcess {
            corr_id: f.u32("corr_id")?,
            process_id: f.str("process_id")?,
        },
        "terminate_process" => M::TerminateProcess {
            corr_id: f.u32("corr_id")?,
            process_id: f.str("process_id")?,
        },
        "list_processes" => M::ListProcesses {
            corr_id: f.u32("corr_id")?,
        },
        "signal_process" => M::SignalProcess {
            process_id: f.str("process_id")?,
            message: f.str("message")?,
        },
        "transfer_file" => M::TransferFile {
            process_id: f.str("process_id")?,
            file_hash: f.str("file_hash")?,
            chunk_index: f.u32("chunk_index")?,
            total_chunks: f.u32("total_chunks")?,
            chunk_data: f.bin("chunk_data")?,
        },
        other => return err(format!("unknown message type `{other}`")),
    })
}

/// A server → client text frame (§7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextFrame {
    /// `{"type":"turn_done"}`: informational, unreliable; clients ignore it.
    TurnDone,
    /// `{"type":"error","message":…}`: a client frame could not be decoded. No corr_id.
    Error(String),
    /// Any other JSON object (its `type`, or empty when it has none).
    Other(String),
}

/// Decode a text frame. Not JSON, or not an object: `DecodeError`.
pub fn decode_text(text: &str) -> Result<TextFrame, DecodeError> {
    // The server sends this one after every frame it handles (§7): spare it the JSON parser.
    if text == r#"{"type":"turn_done"}"# {
        return Ok(TextFrame::TurnDone);
    }
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| DecodeError(format!("text frame: {e}")))?;
    let Some(obj) = v.as_object() else {
        return err("text frame is not a JSON object");
    };
    let kind = obj.get("type").and_then(|t| t.as_str()).unwrap_or("");
    Ok(match kind {
        "turn_done" => TextFrame::TurnDone,
        "error" => TextFrame::Error(
            obj.get("message")
                .and_then(|m| m.as_str())
                .unwrap_or("")
                .to_owned(),
        ),
        other => TextFrame::Other(other.to_owned()),
    })
}

/// A `process_event` frame with its strings borrowed from the frame (§6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessEventRef<'a> {
    pub process_id: &'a str,
    pub event: &'a str,
    pub value: &'a str,
}

/// The events of a running process are most of a client's traffic: decode a `process_event`
/// in place, without building the field list or copying any string, so that the reader can
/// route it by the borrowed id and allocate only the text it hands on. `None` for any other
/// frame, and for anything [`decode_server`] would refuse (then call it for the error): the
/// accepted language is the same.
pub fn decode_process_event(frame: &[u8]) -> Option<ProcessEventRef<'_>> {
    let mut p = Parser { b: frame, pos: 0 };
    let len = match p.byte().ok()? {
        m @ 0x80..=0x8f => u64::from(m & 0x0f),
        0xde => p.be(2).ok()?,
        0xdf => p.be(4).ok()?,
        _ => return None,
    };
    if len as usize > MAX_FIELDS {
        return None;
    }
    let (mut kind, mut process_id, mut event, mut value) = (None, None, None, None);
    // Keys seen that are not one of the four: a duplicate among them is refused too.
    let mut others: [&str; MAX_FIELDS] = [""; MAX_FIELDS];
    let mut n_others = 0;
    for _ in 0..len {
        let Ok(Val::Str(key)) = p.value() else {
            return None;
        };
        let v = p.value().ok()?;
        let slot = match key {
            "type" => &mut kind,
            "process_id" => &mut process_id,
            "event" => &mut event,
            "value" => &mut value,
            _ => {
                if others[..n_others].contains(&key) {
                    return None;
                }
                others[n_others] = key;
                n_others += 1;
                continue;
            }
        };
        // A duplicate, or a field that is not a string: the full decoder says why.
        let (None, Val::Str(s)) = (&slot, v) else {
            return None;
        };
        *slot = Some(s);
    }
    if kind? != "process_event" {
        return None;
    }
    Some(ProcessEventRef {
        process_id: process_id?,
        event: event?,
        value: value?,
    })
}
