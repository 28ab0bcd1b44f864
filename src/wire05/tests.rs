//! The hex vectors of PROTOCOL-0.5.md §10 (captured from a live pie-server 0.5.2), plus the
//! decoder's leniency and robustness.

use super::*;

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len() % 2 == 0, "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

const ID: &str = "43342f95-1069-45e5-bb68-6fa2c29553bf";

/// Client → server vectors: our encoding is byte-identical, and decodes back.
#[test]
fn client_vectors() {
    let cases: Vec<(ClientMessage<'_>, &str)> = vec![
        (
            ClientMessage::Ping { corr_id: 1 },
            "82a474797065a470696e67a7636f72725f696401",
        ),
        (
            ClientMessage::AuthIdentify {
                corr_id: 1,
                username: "bob",
            },
            "83a474797065ad617574685f6964656e74696679a7636f72725f696401a8757365726e616d65a3626f62",
        ),
        (
            ClientMessage::AuthProve {
                corr_id: 4,
                signature: "AAAA",
            },
            "83a474797065aa617574685f70726f7665a7636f72725f696404a97369676e6174757265a441414141",
        ),
        (
            ClientMessage::CheckProgram {
                corr_id: 7,
                name: "compat-openai",
                version: "0.1.0",
            },
            "84a474797065ad636865636b5f70726f6772616da7636f72725f696407a46e616d65ad636f6d7061742d6f70656e6169a776657273696f6ea5302e312e30",
        ),
        (
            ClientMessage::ListProcesses { corr_id: 2 },
            "82a474797065ae6c6973745f70726f636573736573a7636f72725f696402",
        ),
        (
            ClientMessage::LaunchProcess {
                corr_id: 38,
                inferlet: "stream-lines@0.1.0",
                input: "{\"n\": 5}",
                capture_outputs: true,
            },
            "85a474797065ae6c61756e63685f70726f63657373a7636f72725f696426a8696e6665726c6574b273747265616d2d6c696e657340302e312e30a5696e707574a87b226e223a20357daf636170747572655f6f757470757473c3",
        ),
    ];
    for (msg, want) in cases {
        let bytes = encode_client(&msg);
        assert_eq!(bytes, hex(want), "{msg:?}");
        assert_eq!(decode_client(&bytes).unwrap(), msg);
    }
}

/// Server → client vectors: they decode to the right message and re-encode identically.
#[test]
fn server_vectors() {
    let prefix = format!(
        "84a474797065ad70726f636573735f6576656e74aa70726f636573735f6964d924{}a56576656e74",
        ID.bytes().map(|b| format!("{b:02x}")).collect::<String>()
    );
    let cases: Vec<(String, ServerMessage)> = vec![
        (
            "84a474797065a8726573706f6e7365a7636f72725f696401a26f6bc3a6726573756c74a4506f6e67".into(),
            ServerMessage::Response { corr_id: 1, ok: true, result: "Pong".into() },
        ),
        (
            "84a474797065a8726573706f6e7365a7636f72725f696401a26f6bc3a6726573756c74b5416c72656164792061757468656e74696361746564".into(),
            ServerMessage::Response { corr_id: 1, ok: true, result: "Already authenticated".into() },
        ),
        (
            "84a474797065a8726573706f6e7365a7636f72725f696404a26f6bc2a6726573756c74b5416c72656164792061757468656e74696361746564".into(),
            ServerMessage::Response { corr_id: 4, ok: false, result: "Already authenticated".into() },
        ),
        (
            "84a474797065a8726573706f6e7365a7636f72725f696407a26f6bc3a6726573756c74a474727565".into(),
            ServerMessage::Response { corr_id: 7, ok: true, result: "true".into() },
        ),
        (
            "84a474797065a8726573706f6e7365a7636f72725f696402a26f6bc3a6726573756c74a25b5d".into(),
            ServerMessage::Response { corr_id: 2, ok: true, result: "[]".into() },
        ),
        (
            "84a474797065a8726573706f6e7365a7636f72725f696426a26f6bc3a6726573756c74d92434333334326639352d313036392d343565352d626236382d366661326332393535336266".into(),
            ServerMessage::Response { corr_id: 38, ok: true, result: ID.into() },
        ),
        (
            format!("{prefix}a67374646f7574a576616c7565a76c696e6520300a"),
            ServerMessage::ProcessEvent { process_id: ID.into(), event: "stdout".into(), value: "line 0\n".into() },
        ),
        (
            format!("{prefix}a672657475726ea576616c7565a135"),
            ServerMessage::ProcessEvent { process_id: ID.into(), event: "return".into(), value: "5".into() },
        ),
    ];
    for (h, want) in cases {
        let bytes = hex(&h);
        assert_eq!(decode_server(&bytes).unwrap(), want, "{h}");
        assert_eq!(encode_server(&want), bytes);
    }
}

#[test]
fn bogus_request_vector_and_text_frames() {
    // §10: the client frame that provoked the documented text error is a map of type `bogus`.
    let bogus = hex("82a474797065a5626f677573a7636f72725f69640c");
    assert!(decode_client(&bogus)
        .unwrap_err()
        .0
        .contains("unknown message type `bogus`"));
    let text = "{\"type\":\"error\",\"message\":\"bad client frame: unknown variant `bogus`, expected one of `auth_identify`, `auth_prove`, `check_program`, `query`, `add_program`, `launch_process`, `attach_process`, `terminate_process`, `signal_process`, `transfer_file`, `list_processes`, `ping`\"}";
    match decode_text(text).unwrap() {
        TextFrame::Error(m) => assert!(m.starts_with("bad client frame: unknown variant `bogus`")),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        decode_text("{\"type\":\"turn_done\"}").unwrap(),
        TextFrame::TurnDone
    );
    assert_eq!(
        decode_text("{\"x\":1}").unwrap(),
        TextFrame::Other(String::new())
    );
    assert!(decode_text("[1]").is_err());
    assert!(decode_text("nope").is_err());
}

#[test]
fn file_frames_round_trip_with_and_without_name() {
    for name in [None, Some("out.png".to_string())] {
        let m = ServerMessage::File {
            process_id: ID.into(),
            file_hash: hash(b"abc"),
            chunk_index: 0,
            total_chunks: 1,
            chunk_data: b"abc".to_vec(),
            name,
        };
        let bytes = encode_server(&m);
        assert_eq!(decode_server(&bytes).unwrap(), m);
    }
}

#[test]
fn decoder_is_lenient_about_order_widths_and_unknown_keys() {
    // Keys reordered, corr_id as uint32, an unknown nested key, name absent on a file.
    let mut b = Vec::new();
    rmp::encode::write_map_len(&mut b, 5).unwrap();
    rmp::encode::write_str(&mut b, "result").unwrap();
    rmp::encode::write_str(&mut b, "x").unwrap();
    rmp::encode::write_str(&mut b, "extra").unwrap();
    rmp::encode::write_array_len(&mut b, 2).unwrap();
    rmp::encode::write_map_len(&mut b, 1).unwrap();
    rmp::encode::write_str(&mut b, "k").unwrap();
    rmp::encode::write_f64(&mut b, 1.5).unwrap();
    rmp::encode::write_sint(&mut b, -3).unwrap();
    rmp::encode::write_str(&mut b, "ok").unwrap();
    rmp::encode::write_bool(&mut b, false).unwrap();
    rmp::encode::write_str(&mut b, "corr_id").unwrap();
    rmp::encode::write_u32(&mut b, 9).unwrap();
    rmp::encode::write_str(&mut b, "type").unwrap();
    rmp::encode::write_str(&mut b, "response").unwrap();
    assert_eq!(
        decode_server(&b).unwrap(),
        ServerMessage::Response {
            corr_id: 9,
            ok: false,
            result: "x".into()
        }
    );
}

#[test]
fn decoder_rejects_without_panicking() {
    let good = encode_server(&ServerMessage::Response {
        corr_id: 1,
        ok: true,
        result: "Pong".into(),
    });
    // Every truncation, and every single-byte corruption, fails or decodes: never panics.
    for n in 0..good.len() {
        assert!(decode_server(&good[..n]).is_err(), "prefix {n}");
    }
    for i in 0..good.len() {
        for v in [0x00u8, 0x7f, 0xc1, 0xdf, 0xdd, 0xff] {
            let mut b = good.clone();
            b[i] = v;
            let _ = decode_server(&b);
        }
    }
    // A corr_id beyond u32, a string corr_id, a missing field, an unknown type.
    let mut big = Vec::new();
    rmp::encode::write_map_len(&mut big, 4).unwrap();
    for (k, v) in [("type", "response"), ("result", "r")] {
        rmp::encode::write_str(&mut big, k).unwrap();
        rmp::encode::write_str(&mut big, v).unwrap();
    }
    rmp::encode::write_str(&mut big, "ok").unwrap();
    rmp::encode::write_bool(&mut big, true).unwrap();
    rmp::encode::write_str(&mut big, "corr_id").unwrap();
    rmp::encode::write_u64(&mut big, 1 << 32).unwrap();
    assert!(decode_server(&big).unwrap_err().0.contains("exceeds u32"));
    assert!(decode_server(&hex("81a474797065a470696e67"))
        .unwrap_err()
        .0
        .contains("unknown message type"));
    assert!(decode_server(&hex("81a474797065a8726573706f6e7365"))
        .unwrap_err()
        .0
        .contains("missing field"));
    // Deep nesting in an unknown key is bounded, a lying array length is caught.
    let mut deep = hex("82a474797065a8726573706f6e7365a178");
    deep.extend(std::iter::repeat(0x91).take(10_000));
    deep.push(0x01);
    assert!(decode_server(&deep).is_err());
    assert!(decode_server(&hex("82a474797065a8726573706f6e7365a178dd7fffffff")).is_err());
}

#[test]
fn chunking() {
    assert_eq!(chunk_count(0), 1);
    assert_eq!(chunk_count(CHUNK_SIZE), 1);
    assert_eq!(chunk_count(CHUNK_SIZE + 1), 2);
    let data = vec![7u8; CHUNK_SIZE * 2 + 5];
    let parts: Vec<_> = chunks(&data).map(|(i, c)| (i, c.len())).collect();
    assert_eq!(parts, vec![(0, CHUNK_SIZE), (1, CHUNK_SIZE), (2, 5)]);
    assert_eq!(chunks(&[]).count(), 1);
    // §2: blake3, lowercase hex.
    assert_eq!(
        hash(b""),
        "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
    );
}

#[test]
fn validation() {
    for v in ["0.1.0", "10.20.30"] {
        check_version(v).unwrap();
    }
    for v in [
        "",
        "1",
        "1.2",
        "1.2.3.4",
        "a.b.c",
        "1..3",
        "1.2.3-rc1",
        " 1.2.3",
    ] {
        assert!(check_version(v).is_err(), "{v}");
    }
    for i in ["echo-args", "echo_args@0.1.0", "a", "X9"] {
        check_inferlet(i).unwrap();
    }
    for i in ["", "-x", "a b", "echo@", "echo@1.2", "@0.1.0", "a@b@0.1.0"] {
        assert!(check_inferlet(i).is_err(), "{i}");
    }
    check_json("{\"n\": 5}").unwrap();
    check_json(" [1, 2] ").unwrap();
    check_json("\"s\"").unwrap();
    for j in ["", "{", "{n: 5}", "1 2", "undefined"] {
        assert!(check_json(j).is_err(), "{j}");
    }
    let c = "67e55044-10b1-426f-9247-bb680e5fe0c8";
    for v in [
        c,
        "67E55044-10B1-426F-9247-BB680E5FE0C8",
        "67e5504410b1426f9247bb680e5fe0c8",
        "urn:uuid:67e55044-10b1-426f-9247-bb680e5fe0c8",
        "{67e55044-10b1-426f-9247-bb680e5fe0c8}",
    ] {
        assert_eq!(normalize_uuid(v).as_deref(), Some(c), "{v}");
    }
    for v in [
        "",
        "not-a-uuid",
        "67e55044-10b1-426f-9247-bb680e5fe0c",
        "67e55044x10b1-426f-9247-bb680e5fe0c8",
        "67e55044-10b1-426f-9247-bb680e5fe0cg",
        "\u{20ac}\u{20ac}\u{20ac}\u{20ac}\u{20ac}\u{20ac}\u{20ac}\u{20ac}\u{20ac}\u{20ac}\u{20ac}\u{20ac}",
    ] {
        assert_eq!(normalize_uuid(v), None, "{v}");
    }
}

/// The in-place `process_event` decoder accepts exactly the frames the full decoder turns into
/// a `ProcessEvent`, with the same strings; everything else is left to the full decoder.
#[test]
fn process_event_fast_path_agrees_with_full_decoder() {
    fn agree(frame: &[u8]) {
        let fast = decode_process_event(frame);
        match decode_server(frame) {
            Ok(ServerMessage::ProcessEvent {
                process_id,
                event,
                value,
            }) => {
                let f = fast.expect("a process_event the fast path refused");
                assert_eq!(
                    (f.process_id, f.event, f.value),
                    (&*process_id, &*event, &*value)
                );
            }
            _ => assert_eq!(fast, None, "{frame:02x?}"),
        }
    }
    let prefix = format!(
        "84a474797065ad70726f636573735f6576656e74aa70726f636573735f6964d924{}a56576656e74",
        ID.bytes().map(|b| format!("{b:02x}")).collect::<String>()
    );
    let stdout = hex(&format!(
        "{prefix}a67374646f7574a576616c7565a76c696e6520300a"
    ));
    assert_eq!(
        decode_process_event(&stdout),
        Some(ProcessEventRef {
            process_id: ID,
            event: "stdout",
            value: "line 0\n"
        })
    );
    // Every truncation and single-byte corruption of a real frame.
    for n in 0..=stdout.len() {
        agree(&stdout[..n]);
    }
    for i in 0..stdout.len() {
        for v in [0x00u8, 0x7f, 0xa0, 0xc0, 0xc1, 0xc3, 0xd9, 0xdf, 0xff] {
            let mut b = stdout.clone();
            b[i] = v;
            agree(&b);
        }
    }
    // Reordered keys, an unknown key (kept apart from a duplicate one), a long value, a response.
    let mut b = Vec::new();
    rmp::encode::write_map_len(&mut b, 6).unwrap();
    for (k, v) in [
        ("value", "x".repeat(70_000).as_str()),
        ("extra", "1"),
        ("event", "stderr"),
        ("other", "2"),
        ("process_id", "P"),
        ("type", "process_event"),
    ] {
        rmp::encode::write_str(&mut b, k).unwrap();
        rmp::encode::write_str(&mut b, v).unwrap();
    }
    assert_eq!(decode_process_event(&b).unwrap().value.len(), 70_000);
    agree(&b);
    let mut dup = b.clone();
    dup[0] = 0x87;
    rmp::encode::write_str(&mut dup, "extra").unwrap();
    rmp::encode::write_str(&mut dup, "3").unwrap();
    agree(&dup);
    assert_eq!(decode_process_event(&dup), None);
    agree(&encode_server(&ServerMessage::Response {
        corr_id: 1,
        ok: true,
        result: "Pong".into(),
    }));
}
