//! PROTOCOL.md §12 test vectors, §12.2 integer widths, §12.1 blake3, chunking (§6.3) and the
//! decoding leniency table of §2.4, against `pie::wire`.

use crate::support::*;
use pie::wire::{self, decode_client, decode_server, encode_client, encode_server};
use pie::wire::{ClientMessage, InstanceStatus, ServerMessage};

// ---------------------------------------------------------------------------------------------
// Hand-made MessagePack, to express the non-canonical inputs of §2.4.

fn st(x: &str) -> Vec<u8> {
    let b = x.as_bytes();
    let mut out = match b.len() {
        n @ 0..=31 => vec![0xa0 | n as u8],
        n @ 32..=255 => vec![0xd9, n as u8],
        n => {
            let mut v = vec![0xda];
            v.extend((n as u16).to_be_bytes());
            v
        }
    };
    out.extend(b);
    out
}

fn bin(b: &[u8]) -> Vec<u8> {
    assert!(b.len() < 256);
    let mut out = vec![0xc4, b.len() as u8];
    out.extend(b);
    out
}

fn uint(v: u64) -> Vec<u8> {
    match v {
        0..=127 => vec![v as u8],
        128..=255 => vec![0xcc, v as u8],
        256..=65535 => {
            let mut o = vec![0xcd];
            o.extend((v as u16).to_be_bytes());
            o
        }
        65536..=0xffff_ffff => {
            let mut o = vec![0xce];
            o.extend((v as u32).to_be_bytes());
            o
        }
        _ => {
            let mut o = vec![0xcf];
            o.extend(v.to_be_bytes());
            o
        }
    }
}

fn map(entries: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    assert!(entries.len() < 16);
    let mut out = vec![0x80 | entries.len() as u8];
    for (k, v) in entries {
        out.extend(k);
        out.extend(v);
    }
    out
}

fn arr(items: &[Vec<u8>]) -> Vec<u8> {
    let mut out = if items.len() < 16 {
        vec![0x90 | items.len() as u8]
    } else {
        let mut v = vec![0xdd];
        v.extend((items.len() as u32).to_be_bytes());
        v
    };
    for i in items {
        out.extend(i);
    }
    out
}

/// A map entry with a str key.
fn kv(key: &str, value: Vec<u8>) -> (Vec<u8>, Vec<u8>) {
    (st(key), value)
}

fn ping_with(corr_id: Vec<u8>) -> Vec<u8> {
    map(&[kv("type", st("ping")), kv("corr_id", corr_id)])
}

fn launch_with(detached: Vec<u8>) -> Vec<u8> {
    map(&[
        kv("type", st("launch_instance")),
        kv("corr_id", uint(4)),
        kv("program_hash", st(HASH_ABC)),
        kv("arguments", arr(&[st("--prompt"), st("hi")])),
        kv("detached", detached),
    ])
}

fn upload_with(chunk_data: Vec<u8>) -> Vec<u8> {
    map(&[
        kv("type", st("upload_program")),
        kv("corr_id", uint(3)),
        kv("program_hash", st(HASH_ABC)),
        kv("chunk_index", uint(0)),
        kv("total_chunks", uint(1)),
        kv("chunk_data", chunk_data),
    ])
}

fn upload_abc(chunk_data: Vec<u8>) -> ClientMessage {
    ClientMessage::UploadProgram {
        corr_id: 3,
        program_hash: HASH_ABC.into(),
        chunk_index: 0,
        total_chunks: 1,
        chunk_data,
    }
}

fn accepts(frame: &[u8], expected: ClientMessage) {
    match decode_client(frame) {
        Ok(m) => assert_eq!(m, expected, "frame {}", hex(frame)),
        Err(e) => panic!("frame {} rejected: {e}", hex(frame)),
    }
}

fn rejects(frame: &[u8]) {
    assert!(
        decode_client(frame).is_err(),
        "frame {} must be rejected, decoded to {:?}",
        hex(frame),
        decode_client(frame)
    );
}

// ---------------------------------------------------------------------------------------------
// §12.4 / §12.5

#[test]
fn client_vectors_12_4() {
    let vectors = client_vectors();
    assert_eq!(vectors.len(), 16);
    for (name, hexstr, len, expected) in vectors {
        let bytes = unhex(hexstr);
        assert_eq!(bytes.len(), len, "{name}: documented length");
        let decoded = decode_client(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(decoded, expected, "{name}: logical content");
        assert_eq!(
            hex(&encode_client(&expected)),
            hexstr,
            "{name}: canonical encoding"
        );
        assert_eq!(encode_client(&decoded), bytes, "{name}: re-encoding");
        // Client message types are unknown to the server→client decoder.
        assert!(
            decode_server(&bytes).is_err(),
            "{name} decoded as a server message"
        );
    }
}

#[test]
fn server_vectors_12_5() {
    let vectors = server_vectors();
    assert_eq!(vectors.len(), 19);
    for (name, hexstr, len, expected) in vectors {
        let bytes = unhex(hexstr);
        assert_eq!(bytes.len(), len, "{name}: documented length");
        let decoded = decode_server(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(decoded, expected, "{name}: logical content");
        assert_eq!(
            hex(&encode_server(&expected)),
            hexstr,
            "{name}: canonical encoding"
        );
        assert_eq!(encode_server(&decoded), bytes, "{name}: re-encoding");
        // "Unknown type (including server→client type names)" is rejected by the server.
        assert!(
            decode_client(&bytes).is_err(),
            "{name} decoded as a client message"
        );
    }
}

#[test]
fn corr_id_accessor() {
    for (name, _, _, msg) in client_vectors() {
        let expected = match &msg {
            ClientMessage::SignalInstance { .. } => None,
            _ => Some(match name {
                "C2" | "C5" => 0,
                "C1" | "C3" | "C4" => 1,
                "C6" => 2,
                "C7" => 3,
                "C8" => 4,
                "C9" => 5,
                "C10" => 6,
                "C12" => 7,
                "C13" => 8,
                "C14" => 9,
                "C15" => 10,
                "C16" => 11,
                other => panic!("unexpected vector {other}"),
            }),
        };
        assert_eq!(msg.corr_id(), expected, "{name}");
    }
}

// ---------------------------------------------------------------------------------------------
// §12.2 integer widths and rare headers

#[test]
fn integer_widths_12_2() {
    let table = [
        (1u32, "82a474797065a470696e67a7636f72725f696401"),
        (200, "82a474797065a470696e67a7636f72725f6964ccc8"),
        (300, "82a474797065a470696e67a7636f72725f6964cd012c"),
        (70000, "82a474797065a470696e67a7636f72725f6964ce00011170"),
        (
            4294967295,
            "82a474797065a470696e67a7636f72725f6964ceffffffff",
        ),
    ];
    for (corr_id, expected) in table {
        let msg = ClientMessage::Ping { corr_id };
        assert_eq!(hex(&encode_client(&msg)), expected, "corr_id {corr_id}");
        assert_eq!(decode_client(&unhex(expected)).unwrap(), msg);
    }
    assert_eq!(
        hex(&encode_client(&ClientMessage::Ping { corr_id: 0 }))[38..],
        *"00"
    );
}

#[test]
fn u64_widths_in_upload_program() {
    let msg = ClientMessage::UploadProgram {
        corr_id: 3,
        program_hash: "h".into(),
        chunk_index: 70000,
        total_chunks: 5_000_000_000,
        chunk_data: vec![],
    };
    let bytes = encode_client(&msg);
    let h = hex(&bytes);
    // key "chunk_index" then ce 00 01 11 70; key "total_chunks" then cf 00 00 00 01 2a 05 f2 00.
    assert!(
        h.contains(&format!("{}ce00011170", hex(&st("chunk_index")))),
        "{h}"
    );
    assert!(
        h.contains(&format!("{}cf000000012a05f200", hex(&st("total_chunks")))),
        "{h}"
    );
    assert!(
        h.ends_with(&format!("{}c400", hex(&st("chunk_data")))),
        "{h}"
    );
    assert_eq!(decode_client(&bytes).unwrap(), msg);
}

#[test]
fn rare_headers_12_2() {
    // 40-byte string: d9 28.
    let user = "u".repeat(40);
    let bytes = encode_client(&ClientMessage::Identification {
        corr_id: 0,
        username: user.clone(),
    });
    assert!(hex(&bytes).contains(&format!("d928{}", hex(user.as_bytes()))));

    let upload = |n: usize| ClientMessage::UploadProgram {
        corr_id: 3,
        program_hash: "h".into(),
        chunk_index: 0,
        total_chunks: 1,
        chunk_data: vec![0x5a; n],
    };
    // 300 bytes: c5 01 2c.
    let bytes = encode_client(&upload(300));
    let tail = bytes.len() - 300;
    assert_eq!(bytes[tail - 3..tail], [0xc5, 0x01, 0x2c]);
    // A full chunk: c6 00 04 00 00, and the whole message is 262232 bytes.
    let bytes = encode_client(&upload(wire::CHUNK_SIZE));
    assert_eq!(bytes.len(), 262232);
    let tail = bytes.len() - wire::CHUNK_SIZE;
    assert_eq!(bytes[tail - 5..tail], [0xc6, 0x00, 0x04, 0x00, 0x00]);
    assert_eq!(decode_client(&bytes).unwrap(), upload(wire::CHUNK_SIZE));
    // Empty chunk: c4 00.
    assert!(encode_client(&upload(0)).ends_with(&[0xc4, 0x00]));
}

// ---------------------------------------------------------------------------------------------
// §12.1 blake3 and §6.3 chunking

#[test]
fn blake3_12_1() {
    let table: [(&[u8], &str); 4] = [
        (
            b"",
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262",
        ),
        (
            b"hello",
            "ea8f163db38682925e4491c5e58d4bb3506ef8c14eb78a86e908c5624a67200f",
        ),
        (
            b"abc",
            "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85",
        ),
        (
            &[0, 1, 2],
            "e1be4d7a8ab5560aa4199eea339849ba8e293d55ca0a81006726d184519e647f",
        ),
    ];
    for (input, expected) in table {
        assert_eq!(pie::hash_blob(input), expected, "{input:?}");
    }
    let big = vec![0x5au8; 262_145];
    assert_eq!(
        pie::hash_blob(&big),
        "9ac56e356092bbb3cc81ce489e7121bb3cf163f1592be357b18f826cf4d4500a"
    );
}

#[test]
fn chunking() {
    assert_eq!(wire::CHUNK_SIZE, 262_144);
    let empty: Vec<_> = wire::chunks(&[]).collect();
    assert_eq!(wire::chunk_count(0), 1);
    assert_eq!(empty, vec![(0u64, &[][..])]);

    let big = vec![0x5au8; 262_145];
    assert_eq!(wire::chunk_count(big.len()), 2);
    let parts: Vec<_> = wire::chunks(&big).collect();
    assert_eq!(parts.len(), 2);
    assert_eq!((parts[0].0, parts[0].1.len()), (0, 262_144));
    assert_eq!((parts[1].0, parts[1].1.len()), (1, 1));

    for (len, count) in [
        (1, 1),
        (262_143, 1),
        (262_144, 1),
        (524_288, 2),
        (524_289, 3),
    ] {
        assert_eq!(wire::chunk_count(len), count, "len {len}");
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let parts: Vec<_> = wire::chunks(&data).collect();
        assert_eq!(parts.len() as u64, count);
        assert!(parts
            .iter()
            .enumerate()
            .all(|(i, (idx, _))| *idx == i as u64));
        assert!(parts[..parts.len() - 1]
            .iter()
            .all(|(_, c)| c.len() == wire::CHUNK_SIZE));
        let joined: Vec<u8> = parts.iter().flat_map(|(_, c)| c.iter().copied()).collect();
        assert_eq!(joined, data);
    }
}

// ---------------------------------------------------------------------------------------------
// §2.4 leniency table, row by row

#[test]
fn keys_in_any_order() {
    accepts(
        &map(&[kv("corr_id", uint(1)), kv("type", st("ping"))]),
        ClientMessage::Ping { corr_id: 1 },
    );
    let reversed = map(&[
        kv("detached", vec![0xc2]),
        kv("arguments", arr(&[st("--prompt"), st("hi")])),
        kv("program_hash", st(HASH_ABC)),
        kv("corr_id", uint(4)),
        kv("type", st("launch_instance")),
    ]);
    accepts(&reversed, decode_client(&unhex(C8)).unwrap());
}

#[test]
fn extra_keys_ignored() {
    let signal = map(&[
        kv("type", st("signal_instance")),
        kv("corr_id", uint(12)),
        kv("instance_id", st(INSTANCE_ID)),
        kv("message", st("hello")),
    ]);
    accepts(&signal, decode_client(&unhex(C11)).unwrap());
    let nested = map(&[
        kv("type", st("ping")),
        kv(
            "zzz",
            map(&[kv("a", arr(&[uint(1), vec![0xc0], map(&[])]))]),
        ),
        kv("corr_id", uint(1)),
    ]);
    accepts(&nested, ClientMessage::Ping { corr_id: 1 });
}

#[test]
fn duplicate_key_rejected() {
    rejects(&map(&[
        kv("type", st("ping")),
        kv("corr_id", uint(1)),
        kv("corr_id", uint(2)),
    ]));
    rejects(&map(&[
        kv("type", st("ping")),
        kv("type", st("ping")),
        kv("corr_id", uint(1)),
    ]));
}

#[test]
fn missing_field_rejected() {
    rejects(&map(&[
        kv("type", st("launch_instance")),
        kv("corr_id", uint(4)),
        kv("program_hash", st(HASH_ABC)),
        kv("arguments", arr(&[])),
    ]));
    rejects(&map(&[kv("type", st("ping"))]));
    rejects(&map(&[
        kv("type", st("signal_instance")),
        kv("instance_id", st(INSTANCE_ID)),
    ]));
}

#[test]
fn missing_or_unknown_type_rejected() {
    rejects(&map(&[kv("corr_id", uint(1))]));
    rejects(&map(&[kv("type", st("pong")), kv("corr_id", uint(1))]));
    rejects(&map(&[kv("type", st("Ping")), kv("corr_id", uint(1))]));
    rejects(&map(&[kv("type", uint(1)), kv("corr_id", uint(1))]));
    // Server → client type names sent to the server.
    rejects(&unhex(S1));
    rejects(&map(&[
        kv("type", st("challenge")),
        kv("corr_id", uint(0)),
        kv("challenge", st("A")),
    ]));
    // And the other direction.
    assert!(decode_server(&unhex(C1)).is_err());
    assert!(decode_server(&map(&[kv("type", st("nope"))])).is_err());
}

#[test]
fn bin_accepted_for_strings() {
    // `type` value, a key, and a string field as bin.
    accepts(
        &map(&[kv("type", bin(b"ping")), (bin(b"corr_id"), uint(1))]),
        ClientMessage::Ping { corr_id: 1 },
    );
    accepts(
        &map(&[
            (bin(b"type"), bin(b"identification")),
            kv("corr_id", uint(0)),
            kv("username", bin(b"alice")),
        ]),
        ClientMessage::Identification {
            corr_id: 0,
            username: "alice".into(),
        },
    );
    // Arguments array items as bin.
    accepts(
        &map(&[
            kv("type", st("launch_instance")),
            kv("corr_id", uint(4)),
            kv("program_hash", bin(HASH_ABC.as_bytes())),
            kv("arguments", arr(&[bin(b"--prompt"), st("hi")])),
            kv("detached", vec![0xc2]),
        ]),
        decode_client(&unhex(C8)).unwrap(),
    );
    // Not valid UTF-8: rejected.
    rejects(&map(&[
        kv("type", st("identification")),
        kv("corr_id", uint(0)),
        kv("username", bin(&[0xff, 0xfe])),
    ]));
    // The server decoder is the same machinery.
    assert_eq!(
        decode_server(&map(&[
            kv("type", bin(b"server_event")),
            kv("message", bin(b"x")),
        ]))
        .unwrap(),
        ServerMessage::ServerEvent {
            message: "x".into()
        }
    );
}

#[test]
fn chunk_data_as_str_or_int_array() {
    accepts(&upload_with(st("abc")), upload_abc(b"abc".to_vec()));
    accepts(
        &upload_with(arr(&[uint(0x61), uint(0x62), uint(0x63)])),
        upload_abc(b"abc".to_vec()),
    );
    accepts(
        &upload_with(arr(&[uint(255), vec![0xd0, 0x05]])),
        upload_abc(vec![255, 5]),
    );
    accepts(&upload_with(arr(&[])), upload_abc(vec![]));
    // An item that does not fit a byte is not a byte.
    rejects(&upload_with(arr(&[uint(256)])));
    rejects(&upload_with(arr(&[vec![0xff]]))); // -1
    rejects(&upload_with(uint(3)));
    rejects(&upload_with(vec![0xc0]));
}

#[test]
fn integers_in_any_encoding_that_fits() {
    let one = ClientMessage::Ping { corr_id: 7 };
    for enc in [
        vec![0x07],
        vec![0xcc, 0x07],
        vec![0xcd, 0x00, 0x07],
        vec![0xce, 0, 0, 0, 7],
        vec![0xcf, 0, 0, 0, 0, 0, 0, 0, 7],
        vec![0xd0, 0x07],
        vec![0xd1, 0x00, 0x07],
        vec![0xd2, 0, 0, 0, 7],
        vec![0xd3, 0, 0, 0, 0, 0, 0, 0, 7],
    ] {
        accepts(&ping_with(enc), one.clone());
    }
    accepts(
        &ping_with(vec![0xcf, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]),
        ClientMessage::Ping { corr_id: u32::MAX },
    );
    // u64 fields take the full range, in any width.
    let mut frame = upload_with(bin(b"abc"));
    let key = st("chunk_index");
    let at = frame
        .windows(key.len())
        .position(|w| w == key.as_slice())
        .unwrap()
        + key.len();
    frame.splice(at..at + 1, [0xd3, 0, 0, 0, 0, 0, 0, 0, 9]);
    match decode_client(&frame).unwrap() {
        ClientMessage::UploadProgram { chunk_index, .. } => assert_eq!(chunk_index, 9),
        other => panic!("{other:?}"),
    }
    let mut frame = upload_with(bin(b"abc"));
    frame.splice(
        at..at + 1,
        [0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
    );
    match decode_client(&frame).unwrap() {
        ClientMessage::UploadProgram { chunk_index, .. } => assert_eq!(chunk_index, u64::MAX),
        other => panic!("{other:?}"),
    }
    // `port` is a u32 too.
    let port_too_big = map(&[
        kv("type", st("launch_server_instance")),
        kv("corr_id", uint(10)),
        kv("port", uint(1 << 32)),
        kv("program_hash", st(HASH_ABC)),
        kv("arguments", arr(&[])),
    ]);
    rejects(&port_too_big);
}

#[test]
fn corr_id_out_of_range_negative_or_float_rejected() {
    rejects(&ping_with(uint(1 << 32)));
    rejects(&ping_with(uint(u64::MAX)));
    rejects(&ping_with(vec![0xff])); // -1, negative fixint
    rejects(&ping_with(vec![0xe0])); // -32
    rejects(&ping_with(vec![0xd0, 0xfb])); // -5
    rejects(&ping_with(vec![
        0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    ]));
    rejects(&ping_with(vec![0xca, 0x3f, 0x80, 0x00, 0x00])); // 1.0f32
    rejects(&ping_with(vec![0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0])); // 1.0f64
    rejects(&ping_with(st("1")));
    rejects(&ping_with(vec![0xc3]));
}

#[test]
fn bool_as_integer_rejected() {
    accepts(&launch_with(vec![0xc2]), decode_client(&unhex(C8)).unwrap());
    rejects(&launch_with(uint(0)));
    rejects(&launch_with(uint(1)));
    rejects(&launch_with(st("false")));
    rejects(&launch_with(vec![0xc0]));
}

#[test]
fn nil_rejected() {
    rejects(&map(&[
        kv("type", st("identification")),
        kv("corr_id", uint(0)),
        kv("username", vec![0xc0]),
    ]));
    rejects(&map(&[
        kv("type", st("launch_instance_from_registry")),
        kv("corr_id", uint(5)),
        kv("inferlet", st("std/text-completion@0.1.0")),
        kv("arguments", vec![0xc0]),
        kv("detached", vec![0xc3]),
    ]));
    rejects(&ping_with(vec![0xc0]));
    rejects(&map(&[kv("type", vec![0xc0]), kv("corr_id", uint(1))]));
}

#[test]
fn compact_array_form_12_6() {
    let frame = unhex("92a470696e6703");
    accepts(&frame, ClientMessage::Ping { corr_id: 3 });
    assert_eq!(frame, arr(&[st("ping"), uint(3)]));
    accepts(
        &arr(&[st("identification"), uint(0), st("alice")]),
        ClientMessage::Identification {
            corr_id: 0,
            username: "alice".into(),
        },
    );
    accepts(
        &arr(&[
            st("upload_program"),
            uint(3),
            st(HASH_ABC),
            uint(0),
            uint(1),
            bin(b"abc"),
        ]),
        decode_client(&unhex(C7)).unwrap(),
    );
    // Fields in the wrong order or missing fail.
    rejects(&arr(&[st("identification"), st("alice"), uint(0)]));
    rejects(&arr(&[st("identification"), uint(0)]));
    rejects(&arr(&[st("ping")]));
    rejects(&arr(&[]));
    // The server decoder accepts it too.
    assert_eq!(
        decode_server(&arr(&[st("response"), uint(1), vec![0xc3], st("Pong")])).unwrap(),
        decode_server(&unhex(S1)).unwrap()
    );
}

#[test]
fn trailing_bytes_ignored() {
    let mut frame = unhex(C1);
    frame.extend([0xc1, 0xff, 0x00]);
    accepts(&frame, ClientMessage::Ping { corr_id: 1 });
    let mut frame = unhex(C2);
    frame.extend(unhex(C1));
    accepts(
        &frame,
        ClientMessage::Identification {
            corr_id: 0,
            username: "alice".into(),
        },
    );
    let mut frame = unhex(S1);
    frame.extend(b"garbage");
    assert_eq!(
        decode_server(&frame).unwrap(),
        decode_server(&unhex(S1)).unwrap()
    );
}

#[test]
fn empty_and_non_container_frames_rejected() {
    rejects(&[]);
    assert!(decode_server(&[]).is_err());
    rejects(&st("ping"));
    rejects(&uint(1));
    rejects(&[0xc0]);
    rejects(&[0xc1]);
    // Truncations of a valid frame.
    let c7 = unhex(C7);
    for cut in 1..c7.len() {
        rejects(&c7[..cut]);
    }
}

#[test]
fn live_instances_older_server_defaults() {
    // InstanceInfo without username/elapsed_secs/kv_pages_used decodes with defaults.
    let frame = map(&[
        kv("type", st("live_instances")),
        kv("corr_id", uint(9)),
        kv(
            "instances",
            arr(&[map(&[
                kv("id", st(INSTANCE_ID)),
                kv("arguments", arr(&[])),
                kv("status", st("Finished")),
            ])]),
        ),
    ]);
    match decode_server(&frame).unwrap() {
        ServerMessage::LiveInstances {
            corr_id: 9,
            instances,
        } => {
            assert_eq!(instances.len(), 1);
            assert_eq!(instances[0].status, InstanceStatus::Finished);
            assert_eq!(instances[0].username, "");
            assert_eq!(instances[0].elapsed_secs, 0);
        }
        other => panic!("{other:?}"),
    }
    // An unknown status is not an InstanceStatus.
    let bad = map(&[
        kv("type", st("live_instances")),
        kv("corr_id", uint(9)),
        kv(
            "instances",
            arr(&[map(&[
                kv("id", st(INSTANCE_ID)),
                kv("arguments", arr(&[])),
                kv("status", st("Running")),
            ])]),
        ),
    ]);
    assert!(decode_server(&bad).is_err());
}

// ---------------------------------------------------------------------------------------------
// Limits added in codec.rs (nesting depth, value count)

fn ping_with_extra(value: Vec<u8>) -> Vec<u8> {
    map(&[
        kv("type", st("ping")),
        kv("x", value),
        kv("corr_id", uint(1)),
    ])
}

#[test]
fn nesting_limit() {
    // The ping map is one level; 15 nested arrays make 16 — accepted; 16 make 17 — rejected.
    let nested = |levels: usize| {
        let mut v = vec![0x91u8; levels - 1];
        v.push(0x90);
        v
    };
    accepts(
        &ping_with_extra(nested(15)),
        ClientMessage::Ping { corr_id: 1 },
    );
    rejects(&ping_with_extra(nested(16)));
    let err = decode_client(&ping_with_extra(nested(5000))).unwrap_err();
    assert!(err.to_string().contains("nesting deeper than 16"), "{err}");
    // Deep maps, and deep nesting inside the server decoder.
    let mut deep_map = Vec::new();
    for _ in 0..10_000 {
        deep_map.push(0x81); // fixmap with one entry
        deep_map.extend(st("a"));
    }
    deep_map.push(0x01);
    rejects(&ping_with_extra(deep_map.clone()));
    assert!(decode_server(&deep_map).is_err());
    // The protocol's own deepest message (4 levels) is far inside the limit.
    assert!(decode_server(&unhex(S15)).is_ok());
}

#[test]
fn value_count_limit() {
    // A 256 KiB chunk sent as an array of integers (§2.4) is accepted...
    let data: Vec<u8> = (0..wire::CHUNK_SIZE).map(|i| (i % 128) as u8).collect();
    let mut ints = vec![0xdd];
    ints.extend((data.len() as u32).to_be_bytes());
    ints.extend(&data); // every value < 128 is its own positive fixint
    accepts(&upload_with(ints), upload_abc(data));
    // ...but a frame of more than 2^20 values is not.
    let n = (1u32 << 20) + 1;
    let mut many = vec![0xdd];
    many.extend(n.to_be_bytes());
    many.extend(std::iter::repeat(0x01).take(n as usize));
    let err = decode_client(&ping_with_extra(many)).unwrap_err();
    assert!(err.to_string().contains("more than 1048576"), "{err}");
}

#[test]
fn huge_declared_lengths_rejected_cheaply() {
    for header in [
        vec![0xdd, 0xff, 0xff, 0xff, 0xff],
        vec![0xdf, 0xff, 0xff, 0xff, 0xff],
        vec![0xdc, 0xff, 0xff],
        vec![0xde, 0xff, 0xff],
        vec![0xc6, 0xff, 0xff, 0xff, 0xff],
        vec![0xdb, 0xff, 0xff, 0xff, 0xff],
        vec![0xc9, 0xff, 0xff, 0xff, 0xff, 0x01],
    ] {
        let mut frame = header.clone();
        frame.extend([0u8; 16]);
        rejects(&frame);
        assert!(decode_server(&frame).is_err());
        rejects(&ping_with_extra(frame.clone()));
        rejects(&upload_with(frame));
    }
}
