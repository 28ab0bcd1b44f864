//! The Pie 0.5 frame codec of the simulator (PROTOCOL-0.5.md §1, §2, §5–§7), written for the
//! simulator alone (nothing shared with libpie's wire code).
//!
//! Decoding goes through serde — an internally tagged enum read by rmp-serde (binary frames) or
//! serde_json (text frames) — because the real server is a Rust/serde program: that way the
//! `bad client frame: …` reasons (unknown variant lists, `missing field`, `expected u32`,
//! `wrong msgpack marker Reserved`, …) come out with the server's exact wording. Encoding is
//! hand-written minimal MessagePack with the server's key order (§2).

use serde::Deserialize;

/// A client frame. The enum name and variant order are part of the error texts the real server
/// sends (`expected internally tagged enum ClientMessage`, `expected one of …`), so keep both.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    AuthIdentify {
        corr_id: u32,
        username: String,
    },
    AuthProve {
        corr_id: u32,
        signature: String,
    },
    CheckProgram {
        corr_id: u32,
        name: String,
        version: String,
    },
    Query {
        corr_id: u32,
        subject: String,
        record: String,
    },
    AddProgram {
        corr_id: u32,
        program_hash: String,
        manifest: String,
        force_overwrite: bool,
        chunk_index: u32,
        total_chunks: u32,
        #[serde(with = "serde_bytes")]
        chunk_data: Vec<u8>,
    },
    LaunchProcess {
        corr_id: u32,
        inferlet: String,
        input: String,
        capture_outputs: bool,
    },
    AttachProcess {
        corr_id: u32,
        process_id: String,
    },
    TerminateProcess {
        corr_id: u32,
        process_id: String,
    },
    SignalProcess {
        process_id: String,
        message: String,
    },
    TransferFile {
        process_id: String,
        file_hash: String,
        chunk_index: u32,
        total_chunks: u32,
        #[serde(with = "serde_bytes")]
        chunk_data: Vec<u8>,
    },
    ListProcesses {
        corr_id: u32,
    },
    Ping {
        corr_id: u32,
    },
}

/// Decode a binary frame (always MessagePack, §1). `Err` is the serde reason.
pub fn decode_binary(payload: &[u8]) -> Result<ClientMessage, String> {
    rmp_serde::from_slice(payload).map_err(|e| e.to_string())
}

/// Decode a text frame (one JSON object of the same shape, §1). `Err` is the serde reason.
pub fn decode_text(payload: &str) -> Result<ClientMessage, String> {
    serde_json::from_str(payload).map_err(|e| e.to_string())
}

/// The text frame that follows most handled frames (§7).
pub const TURN_DONE: &str = r#"{"type":"turn_done"}"#;

/// The text frame for a frame that could not be decoded (§7).
pub fn bad_frame_text(reason: &str) -> String {
    error_text(&format!("bad client frame: {reason}"))
}

/// `{"type":"error","message":…}` with the keys in the server's order.
pub fn error_text(message: &str) -> String {
    let quoted = serde_json::to_string(message).unwrap_or_else(|_| "\"\"".into());
    format!(r#"{{"type":"error","message":{quoted}}}"#)
}

/// Chunk size of files the server sends (and of the uploads it expects from pie-client).
pub const CHUNK_SIZE: usize = 256 * 1024;

/// `{type:"response", corr_id, ok, result}` (§6.1).
pub fn response(corr_id: u32, ok: bool, result: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(40 + result.len());
    out.push(0x84);
    put_str(&mut out, "type");
    put_str(&mut out, "response");
    put_str(&mut out, "corr_id");
    put_uint(&mut out, u64::from(corr_id));
    put_str(&mut out, "ok");
    out.push(if ok { 0xc3 } else { 0xc2 });
    put_str(&mut out, "result");
    put_str(&mut out, result);
    out
}

/// `{type:"process_event", process_id, event, value}` (§6.2).
pub fn process_event(process_id: &str, event: &str, value: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(90 + value.len());
    out.push(0x84);
    put_str(&mut out, "type");
    put_str(&mut out, "process_event");
    put_str(&mut out, "process_id");
    put_str(&mut out, process_id);
    put_str(&mut out, "event");
    put_str(&mut out, event);
    put_str(&mut out, "value");
    put_str(&mut out, value);
    out
}

/// One `file` frame (§6.3); `name: None` is sent as nil (the key is always present).
pub fn file_chunk(
    process_id: &str,
    file_hash: &str,
    chunk_index: u32,
    total_chunks: u32,
    chunk: &[u8],
    name: Option<&str>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(200 + chunk.len());
    out.push(0x87);
    put_str(&mut out, "type");
    put_str(&mut out, "file");
    put_str(&mut out, "process_id");
    put_str(&mut out, process_id);
    put_str(&mut out, "file_hash");
    put_str(&mut out, file_hash);
    put_str(&mut out, "chunk_index");
    put_uint(&mut out, u64::from(chunk_index));
    put_str(&mut out, "total_chunks");
    put_uint(&mut out, u64::from(total_chunks));
    put_str(&mut out, "chunk_data");
    put_bin(&mut out, chunk);
    put_str(&mut out, "name");
    match name {
        Some(n) => put_str(&mut out, n),
        None => out.push(0xc0),
    }
    out
}

/// All `file` frames of one file: 256 KiB chunks, one (empty) chunk for an empty file.
pub fn file_frames(process_id: &str, data: &[u8], name: Option<&str>) -> Vec<Vec<u8>> {
    let hash = blake3::hash(data).to_hex().to_string();
    let chunks: Vec<&[u8]> = if data.is_empty() {
        vec![&[][..]]
    } else {
        data.chunks(CHUNK_SIZE).collect()
    };
    let total = chunks.len() as u32;
    chunks
        .iter()
        .enumerate()
        .map(|(i, c)| file_chunk(process_id, &hash, i as u32, total, c, name))
        .collect()
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let n = s.len();
    if n < 32 {
        out.push(0xa0 | n as u8);
    } else if n <= 0xff {
        out.push(0xd9);
        out.push(n as u8);
    } else if n <= 0xffff {
        out.push(0xda);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
    out.extend_from_slice(s.as_bytes());
}

fn put_bin(out: &mut Vec<u8>, b: &[u8]) {
    let n = b.len();
    if n <= 0xff {
        out.push(0xc4);
        out.push(n as u8);
    } else if n <= 0xffff {
        out.push(0xc5);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(0xc6);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
    out.extend_from_slice(b);
}

fn put_uint(out: &mut Vec<u8>, v: u64) {
    if v < 0x80 {
        out.push(v as u8);
    } else if v <= 0xff {
        out.push(0xcc);
        out.push(v as u8);
    } else if v <= 0xffff {
        out.push(0xcd);
        out.extend_from_slice(&(v as u16).to_be_bytes());
    } else if v <= 0xffff_ffff {
        out.push(0xce);
        out.extend_from_slice(&(v as u32).to_be_bytes());
    } else {
        out.push(0xcf);
        out.extend_from_slice(&v.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    // Test vectors of PROTOCOL-0.5.md §10.
    #[test]
    fn client_vectors_decode() {
        assert_eq!(
            decode_binary(&unhex("82a474797065a470696e67a7636f72725f696401")),
            Ok(ClientMessage::Ping { corr_id: 1 })
        );
        assert_eq!(
            decode_binary(&unhex(
                "83a474797065ad617574685f6964656e74696679a7636f72725f696401a8757365726e616d65a3626f62"
            )),
            Ok(ClientMessage::AuthIdentify {
                corr_id: 1,
                username: "bob".into()
            })
        );
        assert_eq!(
            decode_binary(&unhex(
                "85a474797065ae6c61756e63685f70726f63657373a7636f72725f696426a8696e6665726c6574b273747265616d2d6c696e657340302e312e30a5696e707574a87b226e223a20357daf636170747572655f6f757470757473c3"
            )),
            Ok(ClientMessage::LaunchProcess {
                corr_id: 38,
                inferlet: "stream-lines@0.1.0".into(),
                input: "{\"n\": 5}".into(),
                capture_outputs: true
            })
        );
    }

    #[test]
    fn server_vectors_encode() {
        assert_eq!(
            hex(&response(1, true, "Pong")),
            "84a474797065a8726573706f6e7365a7636f72725f696401a26f6bc3a6726573756c74a4506f6e67"
        );
        assert_eq!(
            hex(&response(4, false, "Already authenticated")),
            "84a474797065a8726573706f6e7365a7636f72725f696404a26f6bc2a6726573756c74b5416c72656164792061757468656e74696361746564"
        );
        let id = "43342f95-1069-45e5-bb68-6fa2c29553bf";
        assert_eq!(
            hex(&response(38, true, id)),
            "84a474797065a8726573706f6e7365a7636f72725f696426a26f6bc3a6726573756c74d92434333334326639352d313036392d343565352d626236382d366661326332393535336266"
        );
        assert_eq!(
            hex(&process_event(id, "stdout", "line 0\n")),
            "84a474797065ad70726f636573735f6576656e74aa70726f636573735f6964d92434333334326639352d313036392d343565352d626236382d366661326332393535336266a56576656e74a67374646f7574a576616c7565a76c696e6520300a"
        );
        assert!(hex(&process_event(id, "return", "5"))
            .ends_with("a56576656e74a672657475726ea576616c7565a135"));
    }

    #[test]
    fn decode_errors_have_the_server_wording() {
        let bogus =
            decode_binary(&unhex("82a474797065a5626f677573a7636f72725f69640c")).unwrap_err();
        assert_eq!(
            bad_frame_text(&bogus),
            "{\"type\":\"error\",\"message\":\"bad client frame: unknown variant `bogus`, expected one of `auth_identify`, `auth_prove`, `check_program`, `query`, `add_program`, `launch_process`, `attach_process`, `terminate_process`, `signal_process`, `transfer_file`, `list_processes`, `ping`\"}"
        );
        assert_eq!(
            decode_binary(&[0xc1]).unwrap_err(),
            "wrong msgpack marker Reserved"
        );
        assert_eq!(
            decode_binary(br#"{"type":"ping"}"#).unwrap_err(),
            "invalid type: integer `123`, expected internally tagged enum ClientMessage"
        );
        // {"type":"ping"} without corr_id
        assert_eq!(
            decode_binary(&unhex("81a474797065a470696e67")).unwrap_err(),
            "missing field `corr_id`"
        );
        // corr_id "abc", -1, 2^32
        let ping = |v: &str| unhex(&format!("82a474797065a470696e67a7636f72725f6964{v}"));
        assert_eq!(
            decode_binary(&ping("a3616263")).unwrap_err(),
            "invalid type: string \"abc\", expected u32"
        );
        assert_eq!(
            decode_binary(&ping("ff")).unwrap_err(),
            "invalid value: integer `-1`, expected u32"
        );
        assert_eq!(
            decode_binary(&ping("cf0000000100000000")).unwrap_err(),
            "invalid value: integer `4294967296`, expected u32"
        );
        assert_eq!(
            decode_text(r#"{"type":"ping","corr_id":78}"#),
            Ok(ClientMessage::Ping { corr_id: 78 })
        );
    }

    #[test]
    fn file_frames_chunk_and_name_nil() {
        let data = vec![7u8; CHUNK_SIZE + 1];
        let frames = file_frames("p", &data, None);
        assert_eq!(frames.len(), 2);
        assert_eq!(*frames[0].last().unwrap(), 0xc0);
        assert_eq!(file_frames("p", b"", Some("a.txt")).len(), 1);
    }
}
