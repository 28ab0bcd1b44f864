//! The client's codec (`pie::wire`) and the simulator's own (`pie_sim::codec`) are two
//! independent readings of PROTOCOL.md. Both are checked against the §12 vectors
//! (tests/wire/vectors.rs, sim/tests/vectors.rs); this test checks that they also agree on
//! everything near those frames: every message is mutated at random (bytes replaced, inserted,
//! removed) and both decoders must accept the same frames and read the same message from them
//! (compared by re-encoding each with its own encoder, which must give the same bytes).

use pie::wire as client;
use pie_sim::codec as sim;

const ID: &str = "67e55044-10b1-426f-9247-bb680e5fe0c8";
const ABC: &str = "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85";

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Every client → server message, encoded by the client.
fn client_frames() -> Vec<Vec<u8>> {
    use client::ClientMessage::*;
    let args = strings(&["--prompt", "hi"]);
    [
        Identification {
            corr_id: 0,
            username: "alice".into(),
        },
        Signature {
            corr_id: 1,
            signature: "AAEC".into(),
        },
        Query {
            corr_id: 2,
            subject: "program_exists".into(),
            record: ABC.into(),
        },
        UploadProgram {
            corr_id: 300,
            program_hash: ABC.into(),
            chunk_index: 70_000,
            total_chunks: 5_000_000_000,
            chunk_data: b"abc".to_vec(),
        },
        LaunchInstance {
            corr_id: 4,
            program_hash: ABC.into(),
            arguments: args.clone(),
            detached: false,
        },
        LaunchInstanceFromRegistry {
            corr_id: 5,
            inferlet: "std/text-completion@0.1.0".into(),
            arguments: vec![],
            detached: true,
        },
        AttachInstance {
            corr_id: 6,
            instance_id: ID.into(),
        },
        LaunchServerInstance {
            corr_id: 10,
            port: 9000,
            program_hash: ABC.into(),
            arguments: args,
        },
        SignalInstance {
            instance_id: ID.into(),
            message: "hello".into(),
        },
        UploadBlob {
            corr_id: 7,
            instance_id: ID.into(),
            blob_hash: ABC.into(),
            chunk_index: 0,
            total_chunks: 1,
            chunk_data: vec![0, 1, 2, 255],
        },
        TerminateInstance {
            corr_id: 8,
            instance_id: ID.into(),
        },
        AttachRemoteService {
            corr_id: 11,
            endpoint: "ipc://x".into(),
            service_type: "model".into(),
            service_name: "m".into(),
        },
        InternalAuthenticate {
            corr_id: 70_000,
            token: "tok".into(),
        },
        Ping { corr_id: u32::MAX },
        ListInstances { corr_id: 9 },
    ]
    .iter()
    .map(client::encode_client)
    .collect()
}

/// Every server → client message, encoded by the simulator.
fn server_frames() -> Vec<Vec<u8>> {
    use sim::ServerMessage::*;
    [
        Response {
            corr_id: 1,
            successful: true,
            result: "Pong".into(),
        },
        InstanceLaunchResult {
            corr_id: 4,
            successful: false,
            message: format!("No such program with hash={ABC}"),
        },
        InstanceAttachResult {
            corr_id: 200,
            successful: true,
            message: "Instance attached".into(),
        },
        InstanceEvent {
            instance_id: ID.into(),
            event: 3,
            message: "Runtime error: \"boom\"".into(),
        },
        DownloadBlob {
            corr_id: 0,
            instance_id: ID.into(),
            blob_hash: ABC.into(),
            chunk_index: 1,
            total_chunks: 2,
            chunk_data: b"abc".to_vec(),
        },
        ServerEvent {
            message: "x".into(),
        },
        Challenge {
            corr_id: 0,
            challenge: "AAAA".into(),
        },
        LiveInstances {
            corr_id: 9,
            instances: vec![sim::InstanceInfo {
                id: ID.into(),
                arguments: strings(&["a"]),
                status: sim::InstanceStatus::Detached,
                username: "alice".into(),
                elapsed_secs: 42,
                kv_pages_used: 0,
            }],
        },
        StreamingOutput {
            instance_id: ID.into(),
            output: sim::StreamingOutput::Stdout("hello\n".into()),
        },
        StreamingOutput {
            instance_id: ID.into(),
            output: sim::StreamingOutput::Stderr("oops\n".into()),
        },
    ]
    .iter()
    .map(sim::encode_server)
    .collect()
}

/// Both codecs encode every message to the same bytes.
#[test]
fn both_encoders_agree() {
    for frame in client_frames() {
        let msg = sim::decode_client(&frame).expect("the simulator decodes the client's frame");
        assert_eq!(sim::encode_client(&msg), frame);
    }
    for frame in server_frames() {
        let msg = client::decode_server(&frame).expect("the client decodes the simulator's frame");
        assert_eq!(client::encode_server(&msg), frame);
    }
}

/// xorshift64: a fixed sequence, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Markers where the two readings could most easily part: integer widths, str/bin/array
/// headers, nil, booleans, the invalid 0xc1.
const MARKERS: &[u8] = &[
    0x00, 0x01, 0x7f, 0x80, 0x81, 0x90, 0x91, 0xa0, 0xa1, 0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xca,
    0xcc, 0xcd, 0xce, 0xcf, 0xd0, 0xd3, 0xd4, 0xd9, 0xdc, 0xde, 0xff,
];

fn mutate(rng: &mut Rng, frame: &[u8]) -> Vec<u8> {
    let mut f = frame.to_vec();
    for _ in 0..1 + rng.below(3) {
        let pos = rng.below(f.len());
        match rng.below(4) {
            0 => f[pos] = rng.next() as u8,
            1 => f[pos] = MARKERS[rng.below(MARKERS.len())],
            2 => f.insert(pos, MARKERS[rng.below(MARKERS.len())]),
            _ => {
                f.remove(pos);
                if f.is_empty() {
                    f.push(0x80);
                }
            }
        }
    }
    f
}

/// One known, documented difference: serde (and so the client, and presumably the real server)
/// also takes an enum variant by its index (`type: 13`, or `{0: text}` for an output), which
/// depends on a declaration order the specification does not give; the simulator refuses it.
fn variant_by_index(sim_error: &str) -> bool {
    sim_error.starts_with("`type`:") || sim_error.starts_with("output stream name:")
}

#[test]
fn decoders_agree_on_mutated_frames() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut disagreements = Vec::new();
    let mut accepted = 0usize;
    for seed in client_frames() {
        for _ in 0..3000 {
            let frame = mutate(&mut rng, &seed);
            let by_client = client::decode_client(&frame).map(|m| client::encode_client(&m));
            let by_sim = sim::decode_client(&frame).map(|m| sim::encode_client(&m));
            match (&by_client, &by_sim) {
                (Ok(a), Ok(b)) if a == b => accepted += 1,
                (Err(_), Err(_)) => {}
                (Ok(_), Err(e)) if variant_by_index(e) => {}
                _ => disagreements.push((frame, by_client.is_ok(), by_sim)),
            }
        }
    }
    for seed in server_frames() {
        for _ in 0..3000 {
            let frame = mutate(&mut rng, &seed);
            let by_client = client::decode_server(&frame).map(|m| client::encode_server(&m));
            let by_sim = sim::decode_server(&frame).map(|m| sim::encode_server(&m));
            match (&by_client, &by_sim) {
                (Ok(a), Ok(b)) if a == b => accepted += 1,
                (Err(_), Err(_)) => {}
                (Ok(_), Err(e)) if variant_by_index(e) => {}
                _ => disagreements.push((frame, by_client.is_ok(), by_sim)),
            }
        }
    }
    for (frame, client_ok, by_sim) in disagreements.iter().take(10) {
        let hex: String = frame.iter().map(|b| format!("{b:02x}")).collect();
        eprintln!("{hex}: client accepts: {client_ok}, simulator: {by_sim:?}");
    }
    assert!(
        disagreements.is_empty(),
        "{} disagreements",
        disagreements.len()
    );
    // The mutations must leave enough frames decodable for the comparison to mean something.
    assert!(accepted > 1_000, "only {accepted} mutated frames decoded");
}
