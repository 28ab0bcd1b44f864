//! The byte-exact vectors of PROTOCOL.md §12 and the encoding rules of §2.2–2.4, checked against
//! the simulator's own codec (`pie_sim::codec`). The hex strings are the specification's; the
//! message values are its "Logical content" lines. (`tests/wire_vectors.rs` checks the same
//! vectors against the client's codec.)

use pie_sim::codec::{
    chunk_count, chunks, decode_client, decode_server, encode, encode_client, encode_server,
    event_code, hash_blob, ClientMessage, InstanceInfo, InstanceStatus, ServerMessage,
    StreamingOutput, CHUNK_SIZE, COMPONENT_PREAMBLE, TEXT_AUTH_DISABLED,
};

/// The example instance id of §12.
const ID: &str = "67e55044-10b1-426f-9247-bb680e5fe0c8";
/// blake3("abc") (§12.1).
const ABC: &str = "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85";
/// The 48 challenge bytes 0x00..0x2f in base64 (§12.3).
const CHALLENGE_B64: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4v";
/// The Ed25519 signature of §12.3 in base64.
const SIGNATURE_B64: &str =
    "QAdQW1K8NRekM/rZnQiBmPjeZJBKJtDyZgcjCje2tgTFBij0BOjkJg/HNo67UZRY+tIJb3anhMgIITtBFOyADg==";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    let clean: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    (0..clean.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&clean[i..i + 2], 16).expect("hex"))
        .collect()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

// ---------------------------------------------------------------------------------------------
// §12.4 and §12.5, verbatim.

/// C1. ping, corr_id 1 (20 bytes).
const C1: &str = "82a474797065a470696e67a7636f72725f696401";

/// C2. identification (username "alice", corr_id 0) (45 bytes).
const C2: &str =
    "83a474797065ae6964656e74696669636174696f6ea7636f72725f696400a8757365726e616d65a5616c696365";

/// C3. signature (short placeholder signature "AAEC", corr_id 1) (40 bytes).
const C3: &str = "83a474797065a97369676e6174757265a7636f72725f696401a97369676e6174757265a441414543";

/// C4. signature carrying the Ed25519 test signature of section 12.3 (125 bytes).
const C4: &str = "83a474797065a97369676e6174757265a7636f72725f696401a97369676e6174757265d9585141645157314b384e52656b4d2f725a6e5169426d506a655a4a424b4a7444795a67636a436a65327467544642696a30424f6a6b4a672f484e6f3637555a52592b74494a6233616e684d674949547442464f794144673d3d";

/// C5. internal_authenticate (token "tok", corr_id 0) (47 bytes).
const C5: &str = "83a474797065b5696e7465726e616c5f61757468656e746963617465a7636f72725f696400a5746f6b656ea3746f6b";

/// C6. query program_exists for blake3("abc") (117 bytes).
const C6: &str = "84a474797065a57175657279a7636f72725f696402a77375626a656374ae70726f6772616d5f657869737473a67265636f7264d94036343337623361633338343635313333666662363362373532373361386462353438633535383436356437396462303366643335396336636435626439643835";

/// C7. upload_program: the 3-byte program "abc" as a single chunk (152 bytes).
const C7: &str = "86a474797065ae75706c6f61645f70726f6772616da7636f72725f696403ac70726f6772616d5f68617368d94036343337623361633338343635313333666662363362373532373361386462353438633535383436356437396462303366643335396336636435626439643835ab6368756e6b5f696e64657800ac746f74616c5f6368756e6b7301aa6368756e6b5f64617461c403616263";

/// C8. launch_instance (attached, two arguments) (143 bytes).
const C8: &str = "85a474797065af6c61756e63685f696e7374616e6365a7636f72725f696404ac70726f6772616d5f68617368d94036343337623361633338343635313333666662363362373532373361386462353438633535383436356437396462303366643335396336636435626439643835a9617267756d656e747392a82d2d70726f6d7074a26869a86465746163686564c2";

/// C9. launch_instance_from_registry (detached, no arguments) (101 bytes).
const C9: &str = "85a474797065bd6c61756e63685f696e7374616e63655f66726f6d5f7265676973747279a7636f72725f696405a8696e6665726c6574b97374642f746578742d636f6d706c6574696f6e40302e312e30a9617267756d656e747390a86465746163686564c3";

/// C10. attach_instance (81 bytes).
const C10: &str = "83a474797065af6174746163685f696e7374616e6365a7636f72725f696406ab696e7374616e63655f6964d92436376535353034342d313062312d343236662d393234372d626236383065356665306338";

/// C11. signal_instance (no corr_id) (86 bytes).
const C11: &str = "83a474797065af7369676e616c5f696e7374616e6365ab696e7374616e63655f6964d92436376535353034342d313062312d343236662d393234372d626236383065356665306338a76d657373616765a568656c6c6f";

/// C12. upload_blob: 3-byte blob "abc" as a single chunk (196 bytes).
const C12: &str = "87a474797065ab75706c6f61645f626c6f62a7636f72725f696407ab696e7374616e63655f6964d92436376535353034342d313062312d343236662d393234372d626236383065356665306338a9626c6f625f68617368d94036343337623361633338343635313333666662363362373532373361386462353438633535383436356437396462303366643335396336636435626439643835ab6368756e6b5f696e64657800ac746f74616c5f6368756e6b7301aa6368756e6b5f64617461c403616263";

/// C13. terminate_instance (84 bytes).
const C13: &str = "83a474797065b27465726d696e6174655f696e7374616e6365a7636f72725f696408ab696e7374616e63655f6964d92436376535353034342d313062312d343236662d393234372d626236383065356665306338";

/// C14. list_instances (30 bytes).
const C14: &str = "82a474797065ae6c6973745f696e7374616e636573a7636f72725f696409";

/// C15. launch_server_instance (port 9000) (136 bytes).
const C15: &str = "85a474797065b66c61756e63685f7365727665725f696e7374616e6365a7636f72725f69640aa4706f7274cd2328ac70726f6772616d5f68617368d94036343337623361633338343635313333666662363362373532373361386462353438633535383436356437396462303366643335396336636435626439643835a9617267756d656e747390";

/// C16. attach_remote_service (88 bytes).
const C16: &str = "85a474797065b56174746163685f72656d6f74655f73657276696365a7636f72725f69640ba8656e64706f696e74a76970633a2f2f78ac736572766963655f74797065a56d6f64656cac736572766963655f6e616d65a16d";

/// S1. response to ping (48 bytes).
const S1: &str = "84a474797065a8726573706f6e7365a7636f72725f696401aa7375636365737366756cc3a6726573756c74a4506f6e67";

/// S2. response to identification when authentication is disabled (91 bytes).
const S2: &str = "84a474797065a8726573706f6e7365a7636f72725f696400aa7375636365737366756cc3a6726573756c74d92e41757468656e746963617465642028456e67696e652064697361626c65642061757468656e7469636174696f6e29";

/// S3. response carrying a challenge (the 48 bytes 0x00..0x2f) (109 bytes).
const S3: &str = "84a474797065a8726573706f6e7365a7636f72725f696400aa7375636365737366756cc3a6726573756c74d94041414543417751464267634943516f4c4441304f4478415245684d554652595847426b6147787764486838674953496a4a43556d4a7967704b6973734c533476";

/// S4. response to a program_exists query (48 bytes).
const S4: &str = "84a474797065a8726573706f6e7365a7636f72725f696402aa7375636365737366756cc3a6726573756c74a474727565";

/// S5. response to the final chunk of a successful program upload (109 bytes).
const S5: &str = "84a474797065a8726573706f6e7365a7636f72725f696403aa7375636365737366756cc3a6726573756c74d94036343337623361633338343635313333666662363362373532373361386462353438633535383436356437396462303366643335396336636435626439643835";

/// S6. instance_launch_result, success (96 bytes).
const S6: &str = "84a474797065b6696e7374616e63655f6c61756e63685f726573756c74a7636f72725f696404aa7375636365737366756cc3a76d657373616765d92436376535353034342d313062312d343236662d393234372d626236383065356665306338";

/// S7. instance_launch_result, failure (unknown program) (150 bytes).
const S7: &str = "84a474797065b6696e7374616e63655f6c61756e63685f726573756c74a7636f72725f696404aa7375636365737366756cc2a76d657373616765d95a4e6f20737563682070726f6772616d207769746820686173683d36343337623361633338343635313333666662363362373532373361386462353438633535383436356437396462303366643335396336636435626439643835";

/// S8. instance_attach_result, success (76 bytes).
const S8: &str = "84a474797065b6696e7374616e63655f6174746163685f726573756c74a7636f72725f696406aa7375636365737366756cc3a76d657373616765b1496e7374616e6365206174746163686564";

/// S9. instance_attach_result, failure (77 bytes).
const S9: &str = "84a474797065b6696e7374616e63655f6174746163685f726573756c74a7636f72725f696406aa7375636365737366756cc2a76d657373616765b2496e7374616e6365206e6f7420666f756e64";

/// S10. instance_event code 0 (Message) (89 bytes).
const S10: &str = "84a474797065ae696e7374616e63655f6576656e74ab696e7374616e63655f6964d92436376535353034342d313062312d343236662d393234372d626236383065356665306338a56576656e7400a76d657373616765a26869";

/// S11. instance_event code 1 (Completed) (91 bytes).
const S11: &str = "84a474797065ae696e7374616e63655f6576656e74ab696e7374616e63655f6964d92436376535353034342d313062312d343236662d393234372d626236383065356665306338a56576656e7401a76d657373616765a4646f6e65";

/// S12. instance_event code 2 (Aborted) (105 bytes).
const S12: &str = "84a474797065ae696e7374616e63655f6576656e74ab696e7374616e63655f6964d92436376535353034342d313062312d343236662d393234372d626236383065356665306338a56576656e7402a76d657373616765b25369676e616c207465726d696e6174696f6e";

/// S13. streaming_output, Stdout (95 bytes).
const S13: &str = "83a474797065b073747265616d696e675f6f7574707574ab696e7374616e63655f6964d92436376535353034342d313062312d343236662d393234372d626236383065356665306338a66f757470757481a65374646f7574a668656c6c6f0a";

/// S14. streaming_output, Stderr (94 bytes).
const S14: &str = "83a474797065b073747265616d696e675f6f7574707574ab696e7374616e63655f6964d92436376535353034342d313062312d343236662d393234372d626236383065356665306338a66f757470757481a6537464657272a56f6f70730a";

/// S15. live_instances with one entry (156 bytes).
const S15: &str = "83a474797065ae6c6976655f696e7374616e636573a7636f72725f696409a9696e7374616e6365739186a26964d92436376535353034342d313062312d343236662d393234372d626236383065356665306338a9617267756d656e747391a161a6737461747573a84465746163686564a8757365726e616d65a5616c696365ac656c61707365645f736563732aad6b765f70616765735f7573656400";

/// S16. live_instances with no entries (41 bytes).
const S16: &str =
    "83a474797065ae6c6976655f696e7374616e636573a7636f72725f696409a9696e7374616e63657390";

/// S17. download_blob: 3-byte blob "abc" in one chunk (198 bytes).
const S17: &str = "87a474797065ad646f776e6c6f61645f626c6f62a7636f72725f696400ab696e7374616e63655f6964d92436376535353034342d313062312d343236662d393234372d626236383065356665306338a9626c6f625f68617368d94036343337623361633338343635313333666662363362373532373361386462353438633535383436356437396462303366643335396336636435626439643835ab6368756e6b5f696e64657800ac746f74616c5f6368756e6b7301aa6368756e6b5f64617461c403616263";

/// S18. server_event (defined, never sent by the server) (29 bytes).
const S18: &str = "82a474797065ac7365727665725f6576656e74a76d657373616765a178";

/// S19. challenge (defined, never sent by the server) (40 bytes).
const S19: &str =
    "83a474797065a96368616c6c656e6765a7636f72725f696400a96368616c6c656e6765a441414141";

fn client_vectors() -> Vec<(&'static str, &'static str, ClientMessage)> {
    use ClientMessage::*;
    vec![
        ("C1", C1, Ping { corr_id: 1 }),
        (
            "C2",
            C2,
            Identification {
                corr_id: 0,
                username: "alice".into(),
            },
        ),
        (
            "C3",
            C3,
            Signature {
                corr_id: 1,
                signature: "AAEC".into(),
            },
        ),
        (
            "C4",
            C4,
            Signature {
                corr_id: 1,
                signature: SIGNATURE_B64.into(),
            },
        ),
        (
            "C5",
            C5,
            InternalAuthenticate {
                corr_id: 0,
                token: "tok".into(),
            },
        ),
        (
            "C6",
            C6,
            Query {
                corr_id: 2,
                subject: "program_exists".into(),
                record: ABC.into(),
            },
        ),
        (
            "C7",
            C7,
            UploadProgram {
                corr_id: 3,
                program_hash: ABC.into(),
                chunk_index: 0,
                total_chunks: 1,
                chunk_data: b"abc".to_vec(),
            },
        ),
        (
            "C8",
            C8,
            LaunchInstance {
                corr_id: 4,
                program_hash: ABC.into(),
                arguments: strings(&["--prompt", "hi"]),
                detached: false,
            },
        ),
        (
            "C9",
            C9,
            LaunchInstanceFromRegistry {
                corr_id: 5,
                inferlet: "std/text-completion@0.1.0".into(),
                arguments: vec![],
                detached: true,
            },
        ),
        (
            "C10",
            C10,
            AttachInstance {
                corr_id: 6,
                instance_id: ID.into(),
            },
        ),
        (
            "C11",
            C11,
            SignalInstance {
                instance_id: ID.into(),
                message: "hello".into(),
            },
        ),
        (
            "C12",
            C12,
            UploadBlob {
                corr_id: 7,
                instance_id: ID.into(),
                blob_hash: ABC.into(),
                chunk_index: 0,
                total_chunks: 1,
                chunk_data: b"abc".to_vec(),
            },
        ),
        (
            "C13",
            C13,
            TerminateInstance {
                corr_id: 8,
                instance_id: ID.into(),
            },
        ),
        ("C14", C14, ListInstances { corr_id: 9 }),
        (
            "C15",
            C15,
            LaunchServerInstance {
                corr_id: 10,
                port: 9000,
                program_hash: ABC.into(),
                arguments: vec![],
            },
        ),
        (
            "C16",
            C16,
            AttachRemoteService {
                corr_id: 11,
                endpoint: "ipc://x".into(),
                service_type: "model".into(),
                service_name: "m".into(),
            },
        ),
    ]
}

fn response(corr_id: u32, successful: bool, result: &str) -> ServerMessage {
    ServerMessage::Response {
        corr_id,
        successful,
        result: result.into(),
    }
}

fn event(code: u32, message: &str) -> ServerMessage {
    ServerMessage::InstanceEvent {
        instance_id: ID.into(),
        event: code,
        message: message.into(),
    }
}

fn server_vectors() -> Vec<(&'static str, &'static str, ServerMessage)> {
    use ServerMessage::*;
    vec![
        ("S1", S1, response(1, true, "Pong")),
        ("S2", S2, response(0, true, TEXT_AUTH_DISABLED)),
        ("S3", S3, response(0, true, CHALLENGE_B64)),
        ("S4", S4, response(2, true, "true")),
        ("S5", S5, response(3, true, ABC)),
        (
            "S6",
            S6,
            InstanceLaunchResult {
                corr_id: 4,
                successful: true,
                message: ID.into(),
            },
        ),
        (
            "S7",
            S7,
            InstanceLaunchResult {
                corr_id: 4,
                successful: false,
                message: format!("No such program with hash={ABC}"),
            },
        ),
        (
            "S8",
            S8,
            InstanceAttachResult {
                corr_id: 6,
                successful: true,
                message: "Instance attached".into(),
            },
        ),
        (
            "S9",
            S9,
            InstanceAttachResult {
                corr_id: 6,
                successful: false,
                message: "Instance not found".into(),
            },
        ),
        ("S10", S10, event(event_code::MESSAGE, "hi")),
        ("S11", S11, event(event_code::COMPLETED, "done")),
        ("S12", S12, event(event_code::ABORTED, "Signal termination")),
        (
            "S13",
            S13,
            StreamingOutput {
                instance_id: ID.into(),
                output: pie_sim::codec::StreamingOutput::Stdout("hello\n".into()),
            },
        ),
        (
            "S14",
            S14,
            StreamingOutput {
                instance_id: ID.into(),
                output: pie_sim::codec::StreamingOutput::Stderr("oops\n".into()),
            },
        ),
        (
            "S15",
            S15,
            LiveInstances {
                corr_id: 9,
                instances: vec![InstanceInfo {
                    id: ID.into(),
                    arguments: strings(&["a"]),
                    status: InstanceStatus::Detached,
                    username: "alice".into(),
                    elapsed_secs: 42,
                    kv_pages_used: 0,
                }],
            },
        ),
        (
            "S16",
            S16,
            LiveInstances {
                corr_id: 9,
                instances: vec![],
            },
        ),
        (
            "S17",
            S17,
            DownloadBlob {
                corr_id: 0,
                instance_id: ID.into(),
                blob_hash: ABC.into(),
                chunk_index: 0,
                total_chunks: 1,
                chunk_data: b"abc".to_vec(),
            },
        ),
        (
            "S18",
            S18,
            ServerEvent {
                message: "x".into(),
            },
        ),
        (
            "S19",
            S19,
            Challenge {
                corr_id: 0,
                challenge: "AAAA".into(),
            },
        ),
    ]
}

#[test]
fn client_messages_encode_to_the_vectors() {
    for (name, want, msg) in client_vectors() {
        assert_eq!(hex(&encode_client(&msg)), want, "{name}");
    }
}

#[test]
fn client_vectors_decode_to_their_logical_content() {
    for (name, frame, msg) in client_vectors() {
        assert_eq!(decode_client(&unhex(frame)), Ok(msg), "{name}");
    }
}

#[test]
fn server_messages_encode_to_the_vectors() {
    for (name, want, msg) in server_vectors() {
        assert_eq!(hex(&encode_server(&msg)), want, "{name}");
    }
}

#[test]
fn server_vectors_decode_to_their_logical_content() {
    for (name, frame, msg) in server_vectors() {
        assert_eq!(decode_server(&unhex(frame)), Ok(msg), "{name}");
    }
}

/// The borrowing encoders behind the simulator's streaming path produce the same vectors.
#[test]
fn bulk_frame_encoders_produce_the_vectors() {
    assert_eq!(hex(&encode::streaming_output(ID, false, "hello\n")), S13);
    assert_eq!(hex(&encode::streaming_output(ID, true, "oops\n")), S14);
    assert_eq!(hex(&encode::instance_event(ID, 0, "hi")), S10);
    assert_eq!(hex(&encode::instance_event(ID, 1, "done")), S11);
    assert_eq!(
        hex(&encode::instance_event(ID, 2, "Signal termination")),
        S12
    );
    assert_eq!(hex(&encode::download_blob(0, ID, ABC, 0, 1, b"abc")), S17);
    assert_eq!(hex(&encode::response(1, true, "Pong")), S1);
}

/// Every strict prefix of a vector is a truncated frame, which never decodes.
#[test]
fn truncated_vectors_never_decode() {
    for (name, frame, _) in client_vectors() {
        let frame = unhex(frame);
        for cut in 0..frame.len() {
            assert!(decode_client(&frame[..cut]).is_err(), "{name} cut at {cut}");
        }
    }
    for (name, frame, _) in server_vectors() {
        let frame = unhex(frame);
        for cut in 0..frame.len() {
            assert!(decode_server(&frame[..cut]).is_err(), "{name} cut at {cut}");
        }
    }
}

/// A client frame is not a server message and vice versa (the type names differ).
#[test]
fn each_direction_refuses_the_other_directions_types() {
    for (name, frame, _) in client_vectors() {
        assert!(decode_server(&unhex(frame)).is_err(), "{name}");
    }
    for (name, frame, _) in server_vectors() {
        assert!(decode_client(&unhex(frame)).is_err(), "{name}");
    }
}

// ---------------------------------------------------------------------------------------------
// §2.3, §12.1, §12.2, §12.6.

#[test]
fn worked_example_of_section_2_3() {
    let ping = encode_client(&ClientMessage::Ping { corr_id: 1 });
    assert_eq!(ping.len(), 20);
    assert_eq!(ping, unhex("82 a474797065 a470696e67 a7636f72725f6964 01"));
}

#[test]
fn blake3_vectors() {
    let cases: [(&[u8], &str); 4] = [
        (
            b"",
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262",
        ),
        (
            b"hello",
            "ea8f163db38682925e4491c5e58d4bb3506ef8c14eb78a86e908c5624a67200f",
        ),
        (b"abc", ABC),
        (
            &[0, 1, 2],
            "e1be4d7a8ab5560aa4199eea339849ba8e293d55ca0a81006726d184519e647f",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(hash_blob(input), want);
    }
    let big = vec![0x5a; 262_145];
    assert_eq!(
        hash_blob(&big),
        "9ac56e356092bbb3cc81ce489e7121bb3cf163f1592be357b18f826cf4d4500a"
    );
    // ... which uploads as 2 chunks: 262144 + 1 bytes.
    assert_eq!(chunk_count(big.len()), 2);
    let sizes: Vec<usize> = chunks(&big).map(|(_, c)| c.len()).collect();
    assert_eq!(sizes, [262_144, 1]);
    assert_eq!(CHUNK_SIZE, 262_144);
}

#[test]
fn integer_widths_of_section_12_2() {
    let cases = [
        (1, "82a474797065a470696e67a7636f72725f696401"),
        (200, "82a474797065a470696e67a7636f72725f6964ccc8"),
        (300, "82a474797065a470696e67a7636f72725f6964cd012c"),
        (70000, "82a474797065a470696e67a7636f72725f6964ce00011170"),
        (
            4294967295,
            "82a474797065a470696e67a7636f72725f6964ceffffffff",
        ),
    ];
    for (corr_id, want) in cases {
        let frame = encode_client(&ClientMessage::Ping { corr_id });
        assert_eq!(hex(&frame), want);
        assert_eq!(decode_client(&frame), Ok(ClientMessage::Ping { corr_id }));
    }
}

fn upload(chunk_index: u64, total_chunks: u64, hash: &str, data: Vec<u8>) -> ClientMessage {
    ClientMessage::UploadProgram {
        corr_id: 0,
        program_hash: hash.into(),
        chunk_index,
        total_chunks,
        chunk_data: data,
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn wide_fields_and_rare_headers_of_section_12_2() {
    // usize fields follow the same smallest-encoding rule.
    let frame = encode_client(&upload(70000, 5_000_000_000, "h", vec![]));
    assert!(contains(
        &frame,
        &unhex("ab 6368756e6b5f696e646578 ce00011170")
    ));
    assert!(contains(
        &frame,
        &unhex("ac 746f74616c5f6368756e6b73 cf000000012a05f200")
    ));
    assert_eq!(
        decode_client(&frame),
        Ok(upload(70000, 5_000_000_000, "h", vec![]))
    );
    // A 40-byte string starts d9 28; a 300-byte chunk_data c5 01 2c; an empty one c4 00.
    let frame = encode_client(&upload(0, 1, &"h".repeat(40), vec![7; 300]));
    assert!(contains(&frame, &unhex("d928")));
    assert!(contains(&frame, &unhex("aa 6368756e6b5f64617461 c5012c")));
    let frame = encode_client(&upload(0, 1, "h", vec![]));
    assert!(frame.ends_with(&unhex("aa 6368756e6b5f64617461 c400")));
    // A full chunk: c6 00 04 00 00, and the whole message with a 1-char hash is 262232 bytes.
    let frame = encode_client(&upload(0, 1, "h", vec![1; CHUNK_SIZE]));
    assert!(contains(&frame, &unhex("c600040000")));
    assert_eq!(frame.len(), 262_232);
    assert_eq!(
        decode_client(&frame),
        Ok(upload(0, 1, "h", vec![1; CHUNK_SIZE]))
    );
}

#[test]
fn compact_array_form_of_section_12_6() {
    assert_eq!(
        decode_client(&unhex("92 a470696e67 03")),
        Ok(ClientMessage::Ping { corr_id: 3 })
    );
}

// ---------------------------------------------------------------------------------------------
// §2.4: what decodes. Non-canonical frames are spelled out byte by byte.

/// A MessagePack str (fixstr or str8).
fn s(text: &str) -> Vec<u8> {
    let mut out = if text.len() < 32 {
        vec![0xa0 + text.len() as u8]
    } else {
        vec![0xd9, text.len() as u8]
    };
    out.extend_from_slice(text.as_bytes());
    out
}

/// A MessagePack bin8.
fn b(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0xc4, data.len() as u8];
    out.extend_from_slice(data);
    out
}

/// A fixmap from already-encoded keys and values.
fn map(entries: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut out = vec![0x80 + entries.len() as u8];
    for (k, v) in entries {
        out.extend_from_slice(k);
        out.extend_from_slice(v);
    }
    out
}

/// A fixarray from already-encoded items.
fn arr(items: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![0x90 + items.len() as u8];
    for item in items {
        out.extend_from_slice(item);
    }
    out
}

fn kv(key: &str, value: Vec<u8>) -> (Vec<u8>, Vec<u8>) {
    (s(key), value)
}

fn ping_with(corr_id: Vec<u8>) -> Vec<u8> {
    map(&[kv("type", s("ping")), kv("corr_id", corr_id)])
}

fn launch_without_detached() -> Vec<(Vec<u8>, Vec<u8>)> {
    vec![
        kv("type", s("launch_instance")),
        kv("corr_id", vec![4]),
        kv("program_hash", s(ABC)),
        kv("arguments", arr(&[])),
    ]
}

fn ping(corr_id: u32) -> Result<ClientMessage, String> {
    Ok(ClientMessage::Ping { corr_id })
}

#[test]
fn keys_in_any_order() {
    let frame = map(&[kv("corr_id", vec![7]), kv("type", s("ping"))]);
    assert_eq!(decode_client(&frame), ping(7));
    let frame = map(&[
        kv("message", s("m")),
        kv("instance_id", s(ID)),
        kv("type", s("signal_instance")),
    ]);
    assert_eq!(
        decode_client(&frame),
        Ok(ClientMessage::SignalInstance {
            instance_id: ID.into(),
            message: "m".into()
        })
    );
}

#[test]
fn unknown_keys_are_ignored() {
    // A corr_id on signal_instance (the example of §2.4), and values of kinds the protocol
    // never uses: nil, float, ext, nested containers.
    let frame = map(&[
        kv("type", s("signal_instance")),
        kv("corr_id", vec![5]),
        kv("instance_id", s(ID)),
        kv("message", s("m")),
        kv("nil", vec![0xc0]),
        kv("float", unhex("cb 3ff0000000000000")),
        kv("ext", unhex("d4 01 02")),
        kv("nested", map(&[kv("a", arr(&[arr(&[vec![0xc3]])]))])),
    ]);
    assert_eq!(
        decode_client(&frame),
        Ok(ClientMessage::SignalInstance {
            instance_id: ID.into(),
            message: "m".into()
        })
    );
}

#[test]
fn duplicate_keys_are_refused() {
    let twice = map(&[
        kv("type", s("ping")),
        kv("corr_id", vec![1]),
        kv("corr_id", vec![2]),
    ]);
    assert!(decode_client(&twice).is_err());
    let two_types = map(&[
        kv("type", s("ping")),
        kv("type", s("ping")),
        kv("corr_id", vec![1]),
    ]);
    assert!(decode_client(&two_types).is_err());
}

#[test]
fn missing_fields_and_types_are_refused() {
    assert!(decode_client(&map(&launch_without_detached())).is_err());
    let mut complete = launch_without_detached();
    complete.push(kv("detached", vec![0xc2]));
    assert!(decode_client(&map(&complete)).is_ok());
    assert!(decode_client(&map(&[kv("corr_id", vec![1])])).is_err());
    assert!(decode_client(&map(&[
        kv("type", s("no_such_type")),
        kv("corr_id", vec![1])
    ]))
    .is_err());
    // Server → client type names are unknown to the server.
    assert!(decode_client(&unhex(S1)).is_err());
}

#[test]
fn strings_may_arrive_as_bin_holding_utf8() {
    let frame = map(&[(b(b"type"), b(b"ping")), (b(b"corr_id"), vec![1])]);
    assert_eq!(decode_client(&frame), ping(1));
    let frame = map(&[
        kv("type", s("identification")),
        kv("corr_id", vec![0]),
        kv("username", b("alice".as_bytes())),
    ]);
    assert_eq!(
        decode_client(&frame),
        Ok(ClientMessage::Identification {
            corr_id: 0,
            username: "alice".into()
        })
    );
    let bad = map(&[
        kv("type", s("identification")),
        kv("corr_id", vec![0]),
        kv("username", b(&[0xff, 0xfe])),
    ]);
    assert!(decode_client(&bad).is_err());
}

fn blob_chunk(chunk_data: Vec<u8>) -> Vec<u8> {
    map(&[
        kv("type", s("upload_blob")),
        kv("corr_id", vec![7]),
        kv("instance_id", s(ID)),
        kv("blob_hash", s(ABC)),
        kv("chunk_index", vec![0]),
        kv("total_chunks", vec![1]),
        kv("chunk_data", chunk_data),
    ])
}

fn abc_blob() -> Result<ClientMessage, String> {
    Ok(ClientMessage::UploadBlob {
        corr_id: 7,
        instance_id: ID.into(),
        blob_hash: ABC.into(),
        chunk_index: 0,
        total_chunks: 1,
        chunk_data: b"abc".to_vec(),
    })
}

#[test]
fn chunk_data_as_str_or_as_an_array_of_byte_values() {
    assert_eq!(decode_client(&blob_chunk(b(b"abc"))), abc_blob());
    assert_eq!(decode_client(&blob_chunk(s("abc"))), abc_blob());
    let ints = arr(&[vec![0x61], unhex("cc62"), unhex("d063")]);
    assert_eq!(decode_client(&blob_chunk(ints)), abc_blob());
    assert!(decode_client(&blob_chunk(arr(&[unhex("cd0100")]))).is_err());
    assert!(decode_client(&blob_chunk(arr(&[vec![0xff]]))).is_err());
}

#[test]
fn integers_in_any_encoding_that_fits() {
    assert_eq!(
        decode_client(&ping_with(unhex("cf0000000000000007"))),
        ping(7)
    );
    assert_eq!(decode_client(&ping_with(unhex("d005"))), ping(5));
    assert_eq!(
        decode_client(&ping_with(unhex("d3000000000000002a"))),
        ping(42)
    );
    assert_eq!(
        decode_client(&ping_with(unhex("ceffffffff"))),
        ping(u32::MAX)
    );
    // corr_id ≥ 2³², negative, a float: refused.
    assert!(decode_client(&ping_with(unhex("cf0000000100000000"))).is_err());
    assert!(decode_client(&ping_with(vec![0xff])).is_err());
    assert!(decode_client(&ping_with(unhex("d0ff"))).is_err());
    assert!(decode_client(&ping_with(unhex("ca3f800000"))).is_err());
}

#[test]
fn booleans_only_as_true_or_false() {
    for not_a_bool in [vec![0x00], vec![0x01], vec![0xc0]] {
        let mut fields = launch_without_detached();
        fields.push(kv("detached", not_a_bool));
        assert!(decode_client(&map(&fields)).is_err());
    }
}

#[test]
fn nil_is_never_a_string_or_an_array() {
    let nil_string = map(&[
        kv("type", s("identification")),
        kv("corr_id", vec![0]),
        kv("username", vec![0xc0]),
    ]);
    assert!(decode_client(&nil_string).is_err());
    let mut fields = launch_without_detached();
    fields[3] = kv("arguments", vec![0xc0]);
    fields.push(kv("detached", vec![0xc2]));
    assert!(decode_client(&map(&fields)).is_err());
}

#[test]
fn compact_form_needs_exactly_the_declared_fields() {
    let full = arr(&[
        s("launch_instance"),
        vec![4],
        s(ABC),
        arr(&[s("a")]),
        vec![0xc3],
    ]);
    assert_eq!(
        decode_client(&full),
        Ok(ClientMessage::LaunchInstance {
            corr_id: 4,
            program_hash: ABC.into(),
            arguments: strings(&["a"]),
            detached: true
        })
    );
    let short = arr(&[s("launch_instance"), vec![4], s(ABC), arr(&[])]);
    assert!(decode_client(&short).is_err());
    let long = arr(&[s("ping"), vec![4], vec![5]]);
    assert!(decode_client(&long).is_err());
    assert!(decode_client(&arr(&[])).is_err());
}

#[test]
fn trailing_bytes_are_ignored() {
    let mut frame = unhex(C1);
    frame.extend_from_slice(&[0xc1, 0xff, 0x00]);
    assert_eq!(decode_client(&frame), ping(1));
}

#[test]
fn empty_and_non_message_frames_are_refused() {
    for frame in [
        vec![],
        vec![0xc1, 0xc1, 0xc1],
        vec![0x81],
        vec![0x01],
        s("ping"),
        unhex("df ffffffff"),
        unhex("dd ffffffff"),
    ] {
        assert!(decode_client(&frame).is_err(), "{}", hex(&frame));
    }
}

// ---------------------------------------------------------------------------------------------
// Beyond the §2.4 table: what follows from the serde/rmp-serde decoder §2.4 says the server uses.

/// Junk nested under an unknown key: up to 1023 containers deep in all (rmp-serde's limit),
/// skipped; one level more makes the frame undecodable.
#[test]
fn nesting_limit() {
    let frame = |depth: usize| {
        let mut junk = vec![0x91; depth];
        junk.push(0xc0);
        map(&[
            kv("type", s("ping")),
            kv("corr_id", vec![1]),
            kv("junk", junk),
        ])
    };
    // The message map is the first level.
    assert_eq!(decode_client(&frame(1022)), ping(1));
    assert!(decode_client(&frame(1023)).is_err());
    assert!(decode_client(&frame(100_000)).is_err());
}

#[test]
fn integer_keys_name_fields_by_index() {
    // {"type": "ping", 0: 7}: field 0 of ping is corr_id.
    assert_eq!(
        decode_client(&map(&[kv("type", s("ping")), (vec![0], vec![7])])),
        ping(7)
    );
    let eight_byte_key = unhex("cf0000000000000000");
    assert_eq!(
        decode_client(&map(&[kv("type", s("ping")), (eight_byte_key, vec![7])])),
        ping(7)
    );
    // An index past the fields is an unknown key; naming a field twice is a duplicate.
    let frame = map(&[
        kv("type", s("ping")),
        kv("corr_id", vec![1]),
        (vec![5], vec![7]),
    ]);
    assert_eq!(decode_client(&frame), ping(1));
    let frame = map(&[
        kv("type", s("ping")),
        kv("corr_id", vec![1]),
        (vec![0], vec![7]),
    ]);
    assert!(decode_client(&frame).is_err());
}

#[test]
fn other_keys() {
    // A str key that is not UTF-8 names no field: ignored.
    let frame = map(&[
        kv("type", s("ping")),
        kv("corr_id", vec![1]),
        (vec![0xa1, 0xff], vec![0]),
    ]);
    assert_eq!(decode_client(&frame), ping(1));
    // nil, bool, negative, two- and four-byte integer keys: undecodable.
    for key in [
        vec![0xc0],
        vec![0xc3],
        vec![0xff],
        unhex("cd0000"),
        unhex("ce00000000"),
    ] {
        let frame = map(&[
            kv("type", s("ping")),
            kv("corr_id", vec![1]),
            (key.clone(), vec![0]),
        ]);
        assert!(decode_client(&frame).is_err(), "{}", hex(&key));
    }
}

// ---------------------------------------------------------------------------------------------
// §7.4–7.6 shapes the client side of the tests relies on.

#[test]
fn instance_info_defaults_for_older_servers() {
    let info = map(&[
        kv("id", s(ID)),
        kv("arguments", arr(&[])),
        kv("status", s("Finished")),
    ]);
    let frame = map(&[
        kv("type", s("live_instances")),
        kv("corr_id", vec![9]),
        kv("instances", arr(&[info])),
    ]);
    assert_eq!(
        decode_server(&frame),
        Ok(ServerMessage::LiveInstances {
            corr_id: 9,
            instances: vec![InstanceInfo {
                id: ID.into(),
                arguments: vec![],
                status: InstanceStatus::Finished,
                username: String::new(),
                elapsed_secs: 0,
                kv_pages_used: 0,
            }]
        })
    );
}

#[test]
fn streaming_output_is_a_single_entry_map() {
    let frame = |output: Vec<u8>| {
        map(&[
            kv("type", s("streaming_output")),
            kv("instance_id", s(ID)),
            kv("output", output),
        ])
    };
    assert_eq!(
        decode_server(&frame(map(&[kv("Stderr", s("x"))]))),
        Ok(ServerMessage::StreamingOutput {
            instance_id: ID.into(),
            output: StreamingOutput::Stderr("x".into())
        })
    );
    assert!(decode_server(&frame(map(&[kv("Stdin", s("x"))]))).is_err());
    assert!(decode_server(&frame(map(&[]))).is_err());
    assert!(decode_server(&frame(map(&[kv("Stdout", s("x")), kv("Stderr", s("y"))]))).is_err());
}

#[test]
fn constants_of_the_specification() {
    assert_eq!(
        COMPONENT_PREAMBLE,
        [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00]
    );
    let codes = [
        event_code::MESSAGE,
        event_code::COMPLETED,
        event_code::ABORTED,
        event_code::EXCEPTION,
        event_code::SERVER_ERROR,
        event_code::OUT_OF_RESOURCES,
    ];
    assert_eq!(codes, [0, 1, 2, 3, 4, 5]);
}

// ---------------------------------------------------------------------------------------------
// §12.3: the simulator's base64 and Ed25519 verification.

#[test]
fn authentication_vector_of_section_12_3() {
    let challenge: Vec<u8> = (0u8..48).collect();
    assert_eq!(pie_sim::base64::encode(&challenge), CHALLENGE_B64);
    let key = pie_sim::pubkey::PublicKey::parse(
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOQDCZjP1a0XI8Fp+VaqC564YZtZkr1hLCr0KOvHn43w test",
    )
    .expect("the OpenSSH key of §12.3");
    let signature = pie_sim::base64::decode(SIGNATURE_B64.as_bytes()).expect("base64");
    assert_eq!(
        hex(&signature),
        "4007505b52bc3517a433fad99d088198f8de64904a26d0f26607230a37b6b604c50628f404e8e4260fc7368ebb519458fad2096f76a784c808213b4114ec800e"
    );
    assert!(key.verify(&challenge, &signature));
    // Signed over the base64 text instead of the raw bytes: does not verify.
    assert!(!key.verify(CHALLENGE_B64.as_bytes(), &signature));
}

#[test]
fn base64_decoder_checks_of_section_12_3() {
    let ok: [(&str, &[u8]); 3] = [
        ("AAEC", &[0, 1, 2]),
        ("AAE=", &[0, 1]),
        ("/+8=", &[0xff, 0xef]),
    ];
    for (text, want) in ok {
        assert_eq!(pie_sim::base64::decode(text.as_bytes()).unwrap(), want);
    }
    let bad = [
        ("AAE", "Invalid padding"),
        ("AA E=", "Invalid symbol 32, offset 2."),
        ("-_8=", "Invalid symbol 45, offset 0."),
        ("AAAAA", "Invalid input length: 5"),
    ];
    for (text, want) in bad {
        let err = pie_sim::base64::decode(text.as_bytes()).unwrap_err();
        assert_eq!(err.to_string(), want, "{text}");
    }
}

/// §2.2's size classes at every boundary: the value just inside and just outside each one.
#[test]
fn smallest_encodings_at_every_boundary() {
    let uints: [(u64, &str); 10] = [
        (0, "00"),
        (127, "7f"),
        (128, "cc80"),
        (255, "ccff"),
        (256, "cd0100"),
        (65535, "cdffff"),
        (65536, "ce00010000"),
        (4294967295, "ceffffffff"),
        (4294967296, "cf0000000100000000"),
        (u64::MAX, "cfffffffffffffffff"),
    ];
    for (value, want) in uints {
        let msg = upload(value, 1, "h", vec![]);
        let frame = encode_client(&msg);
        let key = unhex("ab 6368756e6b5f696e646578");
        assert!(contains(&frame, &[key, unhex(want)].concat()), "{value}");
        assert_eq!(decode_client(&frame), Ok(msg));
    }
    // str: fixstr up to 31 bytes, then d9 / da / db.
    for (len, head) in [
        (31, "bf"),
        (32, "d920"),
        (255, "d9ff"),
        (256, "da0100"),
        (65536, "db00010000"),
    ] {
        let text = "t".repeat(len);
        let frame = encode_server(&response(0, true, &text));
        let key = unhex("a6 726573756c74");
        assert!(contains(&frame, &[key, unhex(head)].concat()), "str {len}");
        assert_eq!(decode_server(&frame), Ok(response(0, true, &text)));
    }
    // bin: c4 up to 255 bytes, then c5 / c6.
    for (len, head) in [
        (0, "c400"),
        (255, "c4ff"),
        (256, "c50100"),
        (65535, "c5ffff"),
        (65536, "c600010000"),
    ] {
        let frame = encode_client(&upload(0, 1, "h", vec![9; len]));
        let key = unhex("aa 6368756e6b5f64617461");
        assert!(
            frame.ends_with(&[key, unhex(head), vec![9; len]].concat()),
            "bin {len}"
        );
    }
    // array: fixarray up to 15 items, then dc.
    for (count, head) in [(0, "90"), (15, "9f"), (16, "dc0010")] {
        let arguments = vec!["a".to_string(); count];
        let msg = ClientMessage::LaunchInstance {
            corr_id: 0,
            program_hash: "h".into(),
            arguments: arguments.clone(),
            detached: false,
        };
        let frame = encode_client(&msg);
        let key = unhex("a9 617267756d656e7473");
        assert!(
            contains(&frame, &[key, unhex(head)].concat()),
            "array {count}"
        );
        assert_eq!(decode_client(&frame), Ok(msg));
    }
}
