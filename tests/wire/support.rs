//! The test vectors of PROTOCOL.md §12.4/§12.5 (hex copied verbatim from the document) and
//! the logical content each must decode to, shared by the wire tests.
#![allow(dead_code)]

use pie::wire::StreamingOutput as Output;
use pie::wire::{ClientMessage, InstanceInfo, InstanceStatus, ServerMessage};

pub const INSTANCE_ID: &str = "67e55044-10b1-426f-9247-bb680e5fe0c8";
pub const HASH_ABC: &str = "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85";
pub const SIG_12_3: &str =
    "QAdQW1K8NRekM/rZnQiBmPjeZJBKJtDyZgcjCje2tgTFBij0BOjkJg/HNo67UZRY+tIJb3anhMgIITtBFOyADg==";
pub const CHALLENGE_B64: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4v";

pub fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len() % 2 == 0, "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// C1. ping, corr_id 1 (20 bytes)
pub const C1: &str = "82a474797065a470696e67a7636f72725f696401";
/// C2. identification (username "alice", corr_id 0) (45 bytes)
pub const C2: &str =
    "83a474797065ae6964656e74696669636174696f6ea7636f72725f696400a8757365726e616d65a5616c696365";
/// C3. signature (short placeholder signature "AAEC", corr_id 1) (40 bytes)
pub const C3: &str =
    "83a474797065a97369676e6174757265a7636f72725f696401a97369676e6174757265a441414543";
/// C4. signature carrying the Ed25519 test signature of section 12.3 (125 bytes)
pub const C4: &str = "83a474797065a97369676e6174757265a7636f72725f696401a97369676e6174757265d9585141645157314b384e52656b4d2f725a6e5169426d506a655a4a424b4a7444795a67636a436a65327467544642696a30424f6a6b4a672f484e6f3637555a52592b74494a6233616e684d674949547442464f794144673d3d";
/// C5. internal_authenticate (token "tok", corr_id 0) (47 bytes)
pub const C5: &str = "83a474797065b5696e7465726e616c5f61757468656e746963617465a7636f72725f696400a5746f6b656ea3746f6b";
/// C6. query program_exists for blake3("abc") (117 bytes)
pub const C6: &str = "84a474797065a57175657279a7636f72725f696402a77375626a656374ae70726f6772616d5f657869737473a67265636f7264d94036343337623361633338343635313333666662363362373532373361386462353438633535383436356437396462303366643335396336636435626439643835";
/// C7. upload_program: the 3-byte program "abc" as a single chunk (152 bytes)
pub const C7: &str = "86a474797065ae75706c6f61645f70726f6772616da7636f72725f696403ac70726f6772616d5f68617368d94036343337623361633338343635313333666662363362373532373361386462353438633535383436356437396462303366643335396336636435626439643835ab6368756e6b5f696e64657800ac746f74616c5f6368756e6b7301aa6368756e6b5f64617461c403616263";
/// C8. launch_instance (attached, two arguments) (143 bytes)
pub const C8: &str = "85a474797065af6c61756e63685f696e7374616e6365a7636f72725f696404ac70726f6772616d5f68617368d94036343337623361633338343635313333666662363362373532373361386462353438633535383436356437396462303366643335396336636435626439643835a9617267756d656e747392a82d2d70726f6d7074a26869a86465746163686564c2";
/// C9. launch_instance_from_registry (detached, no arguments) (101 bytes)
pub const C9: &str = "85a474797065bd6c61756e63685f696e7374616e63655f66726f6d5f7265676973747279a7636f72725f696405a8696e6665726c6574b97374642f746578742d636f6d706c6574696f6e40302e312e30a9617267756d656e747390a86465746163686564c3";
/// C10. attach_instance (81 bytes)
pub const C10: &str = "83a474797065af6174746163685f696e7374616e6365a7636f72725f696406ab696e7374616e63655f6964d92436376535353034342d313062312d343236662d393234372d626236383065356665306338";
/// C11. signal_instance (no corr_id) (86 bytes)
pub const C11: &str = "83a474797065af7369676e616c5f696e7374616e6365ab696e7374616e63655f6964d92436376535353034342d313062312d343236662d393234372d626236383065356665306338a76d657373616765a568656c6c6f";
/// C12. upload_blob: 3-byte blob "abc" as a single chunk (196 bytes)
pub const C12: &str = "87a474797065ab75706c6f61645f626c6f62a7636f72725f696407ab696e7374616e63655f6964d92436376535353034342d313062312d343236662d393234372d626236383065356665306338a9626c6f625f68617368d94036343337623361633338343635313333666662363362373532373361386462353438633535383436356437396462303366643335396336636435626439643835ab6368756e6b5f696e64657800ac746f74616c5f6368756e6b7301aa6368756e6b5f64617461c403616263";
/// C13. terminate_instance (84 bytes)
pub const C13: &str = "83a474797065b27465726d696e6174655f696e7374616e6365a7636f72725f696408ab696e7374616e63655f6964d92436376535353034342d313062312d343236662d393234372d626236383065356665306338";
/// C14. list_instances (30 bytes)
pub const C14: &str = "82a474797065ae6c6973745f696e7374616e636573a7636f72725f696409";
/// C15. launch_server_instance (port 9000) (136 bytes)
pub const C15: &str = "85a474797065b66c61756e63685f7365727665725f696e7374616e6365a7636f72725f69640aa4706f7274cd2328ac70726f6772616d5f68617368d94036343337623361633338343635313333666662363362373532373361386462353438633535383436356437396462303366643335396336636435626439643835a9617267756d656e747390";
/// C16. attach_remote_service (88 bytes)
pub const C16: &str = "85a474797065b56174746163685f72656d6f74655f73657276696365a7636f72725f69640ba8656e64706f696e74a76970633a2f2f78ac736572766963655f74797065a56d6f64656cac736572766963655f6e616d65a16d";
/// S1. response to ping (48 bytes)
pub const S1: &str = "84a474797065a8726573706f6e7365a7636f72725f696401aa7375636365737366756cc3a6726573756c74a4506f6e67";
/// S2. response to identification when authentication is disabled (91 bytes)
pub const S2: &str = "84a474797065a8726573706f6e7365a7636f72725f696400aa7375636365737366756cc3a6726573756c74d92e41757468656e746963617465642028456e67696e652064697361626c65642061757468656e7469636174696f6e29";
/// S3. response carrying a challenge (the 48 bytes 0x00..0x2f) (109 bytes)
pub const S3: &str = "84a474797065a8726573706f6e7365a7636f72725f696400aa7375636365737366756cc3a6726573756c74d94041414543417751464267634943516f4c4441304f4478415245684d554652595847426b6147787764486838674953496a4a43556d4a7967704b6973734c533476";
/// S4. response to a program_exists query (48 bytes)
pub const S4: &str = "84a474797065a8726573706f6e7365a7636f72725f696402aa7375636365737366756cc3a6726573756c74a474727565";
/// S5. response to the final chunk of a successful program upload (109 bytes)
pub const S5: &str = "84a474797065a8726573706f6e7365a7636f72725f696403aa7375636365737366756cc3a6726573756c74d94036343337623361633338343635313333666662363362373532373361386462353438633535383436356437396462303366643335396336636435626439643835";
/// S6. instance_launch_result, success (96 bytes)
pub const S6: &str = "84a474797065b6696e7374616e63655f6c61756e63685f726573756c74a7636f72725f696404aa7375636365737366756cc3a76d657373616765d92436376535353034342d313062312d343236662d393234372d626236383065356665306338";
/// S7. instance_launch_result, failure (unknown program) (150 bytes)
pub const S7: &str = "84a474797065b6696e7374616e63655f6c61756e63685f726573756c74a7636f72725f696404aa7375636365737366756cc2a76d657373616765d95a4e6f20737563682070726f6772616d207769746820686173683d36343337623361633338343635313333666662363362373532373361386462353438633535383436356437396462303366643335396336636435626439643835";
/// S8. instance_attach_result, success (76 bytes)
pub const S8: &str = "84a474797065b6696e7374616e63655f6174746163685f726573756c74a7636f72725f696406aa7375636365737366756cc3a76d657373616765b1496e7374616e6365206174746163686564";
/// S9. instance_attach_result, failure (77 bytes)
pub const S9: &str = "84a474797065b6696e7374616e63655f6174746163685f726573756c74a7636f72725f696406aa7375636365737366756cc2a76d657373616765b2496e7374616e6365206e6f7420666f756e64";
/// S10. instance_event code 0 (Message) (89 bytes)
pub const S10: &str = "84a474797065ae696e7374616e63655f6576656e74ab696e7374616e63655f6964d92436376535353034342d313062312d343236662d393234372d626236383065356665306338a56576656e7400a76d657373616765a26869";
/// S11. instance_event code 1 (Completed) (91 bytes)
pub const S11: &str = "84a474797065ae696e7374616e63655f6576656e74ab696e7374616e63655f6964d92436376535353034342d313062312d343236662d393234372d626236383065356665306338a56576656e7401a76d657373616765a4646f6e65";
/// S12. instance_event code 2 (Aborted) (105 bytes)
pub const S12: &str = "84a474797065ae696e7374616e63655f6576656e74ab696e7374616e63655f6964d92436376535353034342d313062312d343236662d393234372d626236383065356665306338a56576656e7402a76d657373616765b25369676e616c207465726d696e6174696f6e";
/// S13. streaming_output, Stdout (95 bytes)
pub const S13: &str = "83a474797065b073747265616d696e675f6f7574707574ab696e7374616e63655f6964d92436376535353034342d313062312d343236662d393234372d626236383065356665306338a66f757470757481a65374646f7574a668656c6c6f0a";
/// S14. streaming_output, Stderr (94 bytes)
pub const S14: &str = "83a474797065b073747265616d696e675f6f7574707574ab696e7374616e63655f6964d92436376535353034342d313062312d343236662d393234372d626236383065356665306338a66f757470757481a6537464657272a56f6f70730a";
/// S15. live_instances with one entry (156 bytes)
pub const S15: &str = "83a474797065ae6c6976655f696e7374616e636573a7636f72725f696409a9696e7374616e6365739186a26964d92436376535353034342d313062312d343236662d393234372d626236383065356665306338a9617267756d656e747391a161a6737461747573a84465746163686564a8757365726e616d65a5616c696365ac656c61707365645f736563732aad6b765f70616765735f7573656400";
/// S16. live_instances with no entries (41 bytes)
pub const S16: &str =
    "83a474797065ae6c6976655f696e7374616e636573a7636f72725f696409a9696e7374616e63657390";
/// S17. download_blob: 3-byte blob "abc" in one chunk (198 bytes)
pub const S17: &str = "87a474797065ad646f776e6c6f61645f626c6f62a7636f72725f696400ab696e7374616e63655f6964d92436376535353034342d313062312d343236662d393234372d626236383065356665306338a9626c6f625f68617368d94036343337623361633338343635313333666662363362373532373361386462353438633535383436356437396462303366643335396336636435626439643835ab6368756e6b5f696e64657800ac746f74616c5f6368756e6b7301aa6368756e6b5f64617461c403616263";
/// S18. server_event (defined, never sent by the server) (29 bytes)
pub const S18: &str = "82a474797065ac7365727665725f6576656e74a76d657373616765a178";
/// S19. challenge (defined, never sent by the server) (40 bytes)
pub const S19: &str =
    "83a474797065a96368616c6c656e6765a7636f72725f696400a96368616c6c656e6765a441414141";

fn s(x: &str) -> String {
    x.to_string()
}

/// (name, hex, documented length, expected message) for every client → server vector.
pub fn client_vectors() -> Vec<(&'static str, &'static str, usize, ClientMessage)> {
    use ClientMessage::*;
    vec![
        ("C1", C1, 20, Ping { corr_id: 1 }),
        (
            "C2",
            C2,
            45,
            Identification {
                corr_id: 0,
                username: s("alice"),
            },
        ),
        (
            "C3",
            C3,
            40,
            Signature {
                corr_id: 1,
                signature: s("AAEC"),
            },
        ),
        (
            "C4",
            C4,
            125,
            Signature {
                corr_id: 1,
                signature: s(SIG_12_3),
            },
        ),
        (
            "C5",
            C5,
            47,
            InternalAuthenticate {
                corr_id: 0,
                token: s("tok"),
            },
        ),
        (
            "C6",
            C6,
            117,
            Query {
                corr_id: 2,
                subject: s("program_exists"),
                record: s(HASH_ABC),
            },
        ),
        (
            "C7",
            C7,
            152,
            UploadProgram {
                corr_id: 3,
                program_hash: s(HASH_ABC),
                chunk_index: 0,
                total_chunks: 1,
                chunk_data: b"abc".to_vec(),
            },
        ),
        (
            "C8",
            C8,
            143,
            LaunchInstance {
                corr_id: 4,
                program_hash: s(HASH_ABC),
                arguments: vec![s("--prompt"), s("hi")],
                detached: false,
            },
        ),
        (
            "C9",
            C9,
            101,
            LaunchInstanceFromRegistry {
                corr_id: 5,
                inferlet: s("std/text-completion@0.1.0"),
                arguments: vec![],
                detached: true,
            },
        ),
        (
            "C10",
            C10,
            81,
            AttachInstance {
                corr_id: 6,
                instance_id: s(INSTANCE_ID),
            },
        ),
        (
            "C11",
            C11,
            86,
            SignalInstance {
                instance_id: s(INSTANCE_ID),
                message: s("hello"),
            },
        ),
        (
            "C12",
            C12,
            196,
            UploadBlob {
                corr_id: 7,
                instance_id: s(INSTANCE_ID),
                blob_hash: s(HASH_ABC),
                chunk_index: 0,
                total_chunks: 1,
                chunk_data: b"abc".to_vec(),
            },
        ),
        (
            "C13",
            C13,
            84,
            TerminateInstance {
                corr_id: 8,
                instance_id: s(INSTANCE_ID),
            },
        ),
        ("C14", C14, 30, ListInstances { corr_id: 9 }),
        (
            "C15",
            C15,
            136,
            LaunchServerInstance {
                corr_id: 10,
                port: 9000,
                program_hash: s(HASH_ABC),
                arguments: vec![],
            },
        ),
        (
            "C16",
            C16,
            88,
            AttachRemoteService {
                corr_id: 11,
                endpoint: s("ipc://x"),
                service_type: s("model"),
                service_name: s("m"),
            },
        ),
    ]
}

/// (name, hex, documented length, expected message) for every server → client vector.
pub fn server_vectors() -> Vec<(&'static str, &'static str, usize, ServerMessage)> {
    use ServerMessage::*;
    let event = |event: u32, message: &str| InstanceEvent {
        instance_id: s(INSTANCE_ID),
        event,
        message: s(message),
    };
    vec![
        (
            "S1",
            S1,
            48,
            Response {
                corr_id: 1,
                successful: true,
                result: s("Pong"),
            },
        ),
        (
            "S2",
            S2,
            91,
            Response {
                corr_id: 0,
                successful: true,
                result: s("Authenticated (Engine disabled authentication)"),
            },
        ),
        (
            "S3",
            S3,
            109,
            Response {
                corr_id: 0,
                successful: true,
                result: s(CHALLENGE_B64),
            },
        ),
        (
            "S4",
            S4,
            48,
            Response {
                corr_id: 2,
                successful: true,
                result: s("true"),
            },
        ),
        (
            "S5",
            S5,
            109,
            Response {
                corr_id: 3,
                successful: true,
                result: s(HASH_ABC),
            },
        ),
        (
            "S6",
            S6,
            96,
            InstanceLaunchResult {
                corr_id: 4,
                successful: true,
                message: s(INSTANCE_ID),
            },
        ),
        (
            "S7",
            S7,
            150,
            InstanceLaunchResult {
                corr_id: 4,
                successful: false,
                message: format!("No such program with hash={HASH_ABC}"),
            },
        ),
        (
            "S8",
            S8,
            76,
            InstanceAttachResult {
                corr_id: 6,
                successful: true,
                message: s("Instance attached"),
            },
        ),
        (
            "S9",
            S9,
            77,
            InstanceAttachResult {
                corr_id: 6,
                successful: false,
                message: s("Instance not found"),
            },
        ),
        ("S10", S10, 89, event(0, "hi")),
        ("S11", S11, 91, event(1, "done")),
        ("S12", S12, 105, event(2, "Signal termination")),
        (
            "S13",
            S13,
            95,
            StreamingOutput {
                instance_id: s(INSTANCE_ID),
                output: Output::Stdout(s("hello\n")),
            },
        ),
        (
            "S14",
            S14,
            94,
            StreamingOutput {
                instance_id: s(INSTANCE_ID),
                output: Output::Stderr(s("oops\n")),
            },
        ),
        (
            "S15",
            S15,
            156,
            LiveInstances {
                corr_id: 9,
                instances: vec![InstanceInfo {
                    id: s(INSTANCE_ID),
                    arguments: vec![s("a")],
                    status: InstanceStatus::Detached,
                    username: s("alice"),
                    elapsed_secs: 42,
                    kv_pages_used: 0,
                }],
            },
        ),
        (
            "S16",
            S16,
            41,
            LiveInstances {
                corr_id: 9,
                instances: vec![],
            },
        ),
        (
            "S17",
            S17,
            198,
            DownloadBlob {
                corr_id: 0,
                instance_id: s(INSTANCE_ID),
                blob_hash: s(HASH_ABC),
                chunk_index: 0,
                total_chunks: 1,
                chunk_data: b"abc".to_vec(),
            },
        ),
        ("S18", S18, 29, ServerEvent { message: s("x") }),
        (
            "S19",
            S19,
            40,
            Challenge {
                corr_id: 0,
                challenge: s("AAAA"),
            },
        ),
    ]
}

/// Every vector's bytes (client and server), for mutation-based tests.
pub fn all_vector_bytes() -> Vec<Vec<u8>> {
    client_vectors()
        .into_iter()
        .map(|v| unhex(v.1))
        .chain(server_vectors().into_iter().map(|v| unhex(v.1)))
        .collect()
}
