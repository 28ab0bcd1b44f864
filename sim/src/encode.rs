//! Direct canonical encoders for the frames instances produce in bulk (streaming output,
//! instance events, blob chunks). They write the same bytes as `wire::encode_server` (checked
//! by the tests below) without building a `ServerMessage` per frame, which matters when a
//! flood instance streams hundreds of thousands of frames per second.

fn str_header(len: usize, out: &mut Vec<u8>) {
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else if len <= 0xff {
        out.extend_from_slice(&[0xd9, len as u8]);
    } else if len <= 0xffff {
        out.push(0xda);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

fn put_str(s: &str, out: &mut Vec<u8>) {
    str_header(s.len(), out);
    out.extend_from_slice(s.as_bytes());
}

fn put_uint(n: u64, out: &mut Vec<u8>) {
    if n < 0x80 {
        out.push(n as u8);
    } else if n <= 0xff {
        out.extend_from_slice(&[0xcc, n as u8]);
    } else if n <= 0xffff {
        out.push(0xcd);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else if n <= 0xffff_ffff {
        out.push(0xce);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(0xcf);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn put_bin(b: &[u8], out: &mut Vec<u8>) {
    let len = b.len();
    if len <= 0xff {
        out.extend_from_slice(&[0xc4, len as u8]);
    } else if len <= 0xffff {
        out.push(0xc5);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xc6);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
    out.extend_from_slice(b);
}

/// `streaming_output` with `{"Stdout": text}` or `{"Stderr": text}`.
pub fn streaming_output(instance_id: &str, stderr: bool, text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(80 + text.len());
    out.push(0x83);
    put_str("type", &mut out);
    put_str("streaming_output", &mut out);
    put_str("instance_id", &mut out);
    put_str(instance_id, &mut out);
    put_str("output", &mut out);
    out.push(0x81);
    put_str(if stderr { "Stderr" } else { "Stdout" }, &mut out);
    put_str(text, &mut out);
    out
}

/// `instance_event`.
pub fn instance_event(instance_id: &str, event: u32, message: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(80 + message.len());
    out.push(0x84);
    put_str("type", &mut out);
    put_str("instance_event", &mut out);
    put_str("instance_id", &mut out);
    put_str(instance_id, &mut out);
    put_str("event", &mut out);
    put_uint(u64::from(event), &mut out);
    put_str("message", &mut out);
    put_str(message, &mut out);
    out
}

/// One `download_blob` chunk (corr_id is always 0).
pub fn download_blob(
    instance_id: &str,
    blob_hash: &str,
    chunk_index: u64,
    total_chunks: u64,
    data: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(200 + data.len());
    out.push(0x87);
    put_str("type", &mut out);
    put_str("download_blob", &mut out);
    put_str("corr_id", &mut out);
    out.push(0);
    put_str("instance_id", &mut out);
    put_str(instance_id, &mut out);
    put_str("blob_hash", &mut out);
    put_str(blob_hash, &mut out);
    put_str("chunk_index", &mut out);
    put_uint(chunk_index, &mut out);
    put_str("total_chunks", &mut out);
    put_uint(total_chunks, &mut out);
    put_str("chunk_data", &mut out);
    put_bin(data, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{encode_server, ServerMessage, StreamingOutput};

    const ID: &str = "67e55044-10b1-426f-9247-bb680e5fe0c8";

    #[test]
    fn same_bytes_as_the_wire_module() {
        for text in [
            "",
            "hello\n",
            &"x".repeat(40),
            &"y".repeat(300),
            &"z".repeat(70000),
        ] {
            for stderr in [false, true] {
                let output = if stderr {
                    StreamingOutput::Stderr(text.to_string())
                } else {
                    StreamingOutput::Stdout(text.to_string())
                };
                let want = encode_server(&ServerMessage::StreamingOutput {
                    instance_id: ID.into(),
                    output,
                });
                assert_eq!(streaming_output(ID, stderr, text), want);
            }
            for event in [0, 1, 2, 3, 4, 9, 200, 70000] {
                let want = encode_server(&ServerMessage::InstanceEvent {
                    instance_id: ID.into(),
                    event,
                    message: text.to_string(),
                });
                assert_eq!(instance_event(ID, event, text), want);
            }
            let data = text.as_bytes();
            for (index, total) in [(0u64, 1u64), (300, 70000), (5_000_000_000, 5_000_000_001)] {
                let want = encode_server(&ServerMessage::DownloadBlob {
                    corr_id: 0,
                    instance_id: ID.into(),
                    blob_hash: "ab".into(),
                    chunk_index: index,
                    total_chunks: total,
                    chunk_data: data.to_vec(),
                });
                assert_eq!(download_blob(ID, "ab", index, total, data), want);
            }
        }
    }

    #[test]
    fn vector_s13() {
        let hex: String = streaming_output(ID, false, "hello\n")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(hex, "83a474797065b073747265616d696e675f6f7574707574ab696e7374616e63655f6964d92436376535353034342d313062312d343236662d393234372d626236383065356665306338a66f757470757481a65374646f7574a668656c6c6f0a");
    }
}
