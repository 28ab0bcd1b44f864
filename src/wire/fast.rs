//! A fast path for the frames that dominate a client's traffic: `streaming_output` and
//! `instance_event`, in the exact canonical form the server emits (§7.5, §7.6, §12.5 S10–S14),
//! and `response`, the reply to most requests (§7.1, S1–S5).
//!
//! Serde's internally tagged enums buffer every field into an intermediate tree before building
//! the message (three extra allocations and ~250 ns per frame, measured by the benchmarks).
//! This parser reads the canonical bytes directly and allocates only the two strings. Anything
//! that is not exactly canonical (other key order, bin strings, extra keys, ...) returns `None`
//! and goes through the lenient serde path, so the accepted language is unchanged.

use super::messages::{ServerMessage, StreamingOutput};

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn expect(&mut self, literal: &[u8]) -> Option<()> {
        let end = self.pos.checked_add(literal.len())?;
        (self.bytes.get(self.pos..end)? == literal).then(|| self.pos = end)
    }

    fn byte(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let out = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }

    fn be(&mut self, n: usize) -> Option<u64> {
        Some(
            self.take(n)?
                .iter()
                .fold(0u64, |acc, b| (acc << 8) | *b as u64),
        )
    }

    /// A MessagePack str as an owned String (see [`owned`]).
    fn string(&mut self) -> Option<String> {
        self.borrowed_str().map(owned)
    }

    fn u32(&mut self) -> Option<u32> {
        let v = match self.byte()? {
            b @ 0x00..=0x7f => b as u64,
            0xcc => self.be(1)?,
            0xcd => self.be(2)?,
            0xce => self.be(4)?,
            _ => return None,
        };
        u32::try_from(v).ok()
    }
}

/// `raw` as an owned String with one spare byte of capacity for the C layer's NUL terminator.
fn owned(raw: &str) -> String {
    let mut s = String::with_capacity(raw.len() + 1);
    s.push_str(raw);
    s
}

// Canonical prefixes: map header, "type" key and value, then the "instance_id" key.
const STREAMING_OUTPUT: &[u8] = b"\x83\xa4type\xb0streaming_output\xabinstance_id";
const INSTANCE_EVENT: &[u8] = b"\x84\xa4type\xaeinstance_event\xabinstance_id";
const RESPONSE: &[u8] = b"\x84\xa4type\xa8response\xa7corr_id";

/// What an output/event frame carries, with the instance id borrowed from the frame so that
/// routing it costs no allocation beyond the text itself.
#[derive(Debug, PartialEq, Eq)]
pub struct EventFrame<'a> {
    pub instance_id: &'a str,
    pub body: EventBody,
}

/// The payload of an [`EventFrame`].
#[derive(Debug, PartialEq, Eq)]
pub enum EventBody {
    /// A `streaming_output` frame.
    Output(StreamingOutput),
    /// An `instance_event` frame: the event code and its message.
    Event { code: u32, message: String },
}

impl<'a> Reader<'a> {
    fn borrowed_str(&mut self) -> Option<&'a str> {
        let len = match self.byte()? {
            b @ 0xa0..=0xbf => (b & 0x1f) as usize,
            0xd9 => self.be(1)? as usize,
            0xda => self.be(2)? as usize,
            0xdb => self.be(4)? as usize,
            _ => return None,
        };
        std::str::from_utf8(self.take(len)?).ok()
    }
}

/// Decode a canonical `streaming_output` / `instance_event` frame without copying the instance
/// id, or `None` when the frame is anything else (then use [`super::decode_server`]).
pub fn decode_event_frame(frame: &[u8]) -> Option<EventFrame<'_>> {
    let mut r = Reader {
        bytes: frame,
        pos: 0,
    };
    if frame.starts_with(STREAMING_OUTPUT) {
        r.pos = STREAMING_OUTPUT.len();
        let instance_id = r.borrowed_str()?;
        r.expect(b"\xa6output\x81\xa6")?;
        let stream = r.take(6)?;
        let text = r.string()?;
        let output = match stream {
            b"Stdout" => StreamingOutput::Stdout(text),
            b"Stderr" => StreamingOutput::Stderr(text),
            _ => return None,
        };
        Some(EventFrame {
            instance_id,
            body: EventBody::Output(output),
        })
    } else if frame.starts_with(INSTANCE_EVENT) {
        r.pos = INSTANCE_EVENT.len();
        let instance_id = r.borrowed_str()?;
        r.expect(b"\xa5event")?;
        let code = r.u32()?;
        r.expect(b"\xa7message")?;
        let message = r.string()?;
        Some(EventFrame {
            instance_id,
            body: EventBody::Event { code, message },
        })
    } else {
        None
    }
}

/// A canonical `response` frame with its result borrowed from the frame: a reply whose result
/// nobody reads (a successful ping) costs no allocation.
#[derive(Debug, PartialEq, Eq)]
pub struct ResponseFrame<'a> {
    pub corr_id: u32,
    pub successful: bool,
    pub result: &'a str,
}

/// Decode a canonical `response` frame, or `None` when the frame is anything else (then use
/// [`super::decode_server`]).
pub fn decode_response_frame(frame: &[u8]) -> Option<ResponseFrame<'_>> {
    if !frame.starts_with(RESPONSE) {
        return None;
    }
    let mut r = Reader {
        bytes: frame,
        pos: RESPONSE.len(),
    };
    let corr_id = r.u32()?;
    r.expect(b"\xaasuccessful")?;
    let successful = match r.byte()? {
        0xc2 => false,
        0xc3 => true,
        _ => return None,
    };
    r.expect(b"\xa6result")?;
    let result = r.borrowed_str()?;
    // Trailing bytes: not canonical (serde decides).
    (r.pos == frame.len()).then_some(ResponseFrame {
        corr_id,
        successful,
        result,
    })
}

/// [`decode_response_frame`] as an owned [`ServerMessage`].
pub(super) fn decode_response(frame: &[u8]) -> Option<ServerMessage> {
    decode_response_frame(frame).map(|r| ServerMessage::Response {
        corr_id: r.corr_id,
        successful: r.successful,
        result: owned(r.result),
    })
}

/// [`decode_event_frame`] as an owned [`ServerMessage`].
pub(super) fn decode_event_message(frame: &[u8]) -> Option<ServerMessage> {
    let EventFrame { instance_id, body } = decode_event_frame(frame)?;
    let instance_id = instance_id.to_owned();
    Some(match body {
        EventBody::Output(output) => ServerMessage::StreamingOutput {
            instance_id,
            output,
        },
        EventBody::Event { code, message } => ServerMessage::InstanceEvent {
            instance_id,
            event: code,
            message,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{decode_server, encode_server};

    fn serde_decode(frame: &[u8]) -> Option<ServerMessage> {
        rmp_serde::from_slice(frame).ok()
    }

    #[test]
    fn agrees_with_serde_on_canonical_frames() {
        let long = "x".repeat(70_000);
        let messages = [
            ServerMessage::StreamingOutput {
                instance_id: "67e55044-10b1-426f-9247-bb680e5fe0c8".into(),
                output: StreamingOutput::Stdout("hello\n".into()),
            },
            ServerMessage::StreamingOutput {
                instance_id: "i".into(),
                output: StreamingOutput::Stderr(long.clone()),
            },
            ServerMessage::InstanceEvent {
                instance_id: "67e55044-10b1-426f-9247-bb680e5fe0c8".into(),
                event: 4_000_000_000,
                message: "x".repeat(300),
            },
            ServerMessage::InstanceEvent {
                instance_id: String::new(),
                event: 0,
                message: String::new(),
            },
            ServerMessage::Response {
                corr_id: 1,
                successful: true,
                result: "Pong".into(),
            },
            ServerMessage::Response {
                corr_id: u32::MAX,
                successful: false,
                result: long.clone(),
            },
        ];
        for m in messages {
            let frame = encode_server(&m);
            let fast = |f: &[u8]| decode_event_message(f).or_else(|| decode_response(f));
            assert_eq!(fast(&frame).as_ref(), Some(&m));
            assert_eq!(decode_server(&frame).unwrap(), m);
            // Every truncation is either refused by both paths or decoded identically.
            for cut in 0..frame.len().min(200) {
                let fast = fast(&frame[..cut]);
                if fast.is_some() {
                    assert_eq!(fast, serde_decode(&frame[..cut]));
                }
            }
        }
    }

    #[test]
    fn non_canonical_frames_defer_to_serde() {
        // Stdout text sent as bin: valid for serde, not for the fast path.
        let mut frame = encode_server(&ServerMessage::StreamingOutput {
            instance_id: "i".into(),
            output: StreamingOutput::Stdout("ab".into()),
        });
        let n = frame.len();
        frame[n - 3] = 0xc4;
        frame.insert(n - 2, 2);
        assert_eq!(decode_event_message(&frame), None);
        assert!(decode_server(&frame).is_ok());
        // Invalid UTF-8 in the text and an unknown stream name are refused by both.
        let mut bad = encode_server(&ServerMessage::StreamingOutput {
            instance_id: "i".into(),
            output: StreamingOutput::Stdout("ab".into()),
        });
        let n = bad.len();
        bad[n - 1] = 0xff;
        assert_eq!(decode_event_message(&bad), None);
        assert!(decode_server(&bad).is_err());
        let odd = String::from_utf8_lossy(&encode_server(&ServerMessage::StreamingOutput {
            instance_id: "i".into(),
            output: StreamingOutput::Stdout("ab".into()),
        }))
        .replace("Stdout", "Stdoux");
        assert_eq!(decode_event_message(odd.as_bytes()), None);
        assert!(decode_server(odd.as_bytes()).is_err());
        // An event code that does not fit u32.
        let mut big = b"\x84\xa4type\xaeinstance_event\xabinstance_id\xa1i\xa5event".to_vec();
        big.extend_from_slice(b"\xcf\x00\x00\x00\x01\x00\x00\x00\x00\xa7message\xa0");
        assert_eq!(decode_event_message(&big), None);
        assert!(decode_server(&big).is_err());
        // A response with its keys in another order, or its result as bin: serde's.
        let reordered = b"\x84\xa4type\xa8response\xaasuccessful\xc3\xa7corr_id\x01\xa6result\xa0";
        assert_eq!(decode_response(reordered), None);
        assert!(matches!(
            decode_server(reordered),
            Ok(ServerMessage::Response { corr_id: 1, .. })
        ));
        let bin = b"\x84\xa4type\xa8response\xa7corr_id\x01\xaasuccessful\xc3\xa6result\xc4\x00";
        assert_eq!(decode_response(bin), None);
        assert!(decode_server(bin).is_ok());
        // Trailing garbage after a canonical response: refused by both.
        let mut long = encode_server(&ServerMessage::Response {
            corr_id: 7,
            successful: true,
            result: "x".into(),
        });
        long.push(0xc0);
        assert_eq!(decode_response(&long), None);
    }
}
