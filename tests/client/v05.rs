//! The Rust client core against Pie 0.5 (PROTOCOL-0.5.md): detection, the January-2026 API
//! mapped onto 0.5, 0.5's own calls, input checks, and the server's defects (§9).
//!
//! Most tests run against a small scripted 0.5 server in this file that behaves as §1–§12
//! describe for the frames each test needs (it is a fake for corner cases; the independent
//! oracles are the 0.5 simulator and the real server). One test detects the January-2026
//! simulator. `real_server_end_to_end` runs against a real pie-server 0.5 (`PIE05_URL`, e.g.
//! `ws://127.0.0.1:PORT`); it is ignored by a plain `cargo test` and run with `--ignored` by the
//! real05 stage (scripts/pie05/e2e.sh), where a missing URL fails it.

use futures_util::{SinkExt, StreamExt};
use pie::wire05::{self, ClientMessage, ServerMessage};
use pie::{Client, ClientConfig, ErrorKind, Instance, InstanceEvent, Protocol};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::Message;

/// Upper bound for anything a test waits on.
const DEADLINE: Duration = Duration::from_secs(20);
const PID: &str = "43342f95-1069-45e5-bb68-6fa2c29553bf";

/// What a scripted server answers to one decoded client frame.
enum Out {
    Bin(Vec<u8>),
    Text(String),
}

fn resp(corr_id: u32, ok: bool, result: &str) -> Out {
    Out::Bin(wire05::encode_server(&ServerMessage::Response {
        corr_id,
        ok,
        result: result.into(),
    }))
}

fn event(pid: &str, event: &str, value: &str) -> Out {
    Out::Bin(wire05::encode_server(&ServerMessage::ProcessEvent {
        process_id: pid.into(),
        event: event.into(),
        value: value.into(),
    }))
}

fn turn_done() -> Out {
    Out::Text("{\"type\":\"turn_done\"}".into())
}

fn text_error(reason: &str) -> Out {
    Out::Text(
        serde_json::json!({"type": "error", "message": format!("bad client frame: {reason}")})
            .to_string(),
    )
}

/// What the fake server saw: the upgrade's path and identity header, and every frame.
#[derive(Default)]
struct Seen {
    path: String,
    identity: Option<String>,
    frames: Vec<Vec<u8>>,
}

/// A 0.5 server for one connection. Frames that do not decode as 0.5 get the §7 text error,
/// except before the first valid frame (silently dropped, §7). `answer` gets every decoded
/// frame; `auth_identify` is answered here unless `answer` returns something for it.
async fn fake05(
    mut answer: impl FnMut(&ClientMessage<'_>) -> Vec<Out> + Send + 'static,
) -> (String, Arc<Mutex<Seen>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let seen2 = seen.clone();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let s3 = seen2.clone();
        #[allow(clippy::result_large_err)] // the signature tungstenite's callback requires
        let callback = move |req: &Request, resp: Response| {
            let mut s = s3.lock().unwrap();
            s.path = req.uri().path().to_string();
            s.identity = req
                .headers()
                .get("x-pie-identity")
                .map(|v| v.to_str().unwrap().to_string());
            Ok(resp)
        };
        let mut ws = tokio_tungstenite::accept_hdr_async(tcp, callback)
            .await
            .unwrap();
        let mut valid_seen = false;
        while let Some(Ok(msg)) = ws.next().await {
            let Message::Binary(data) = msg else { continue };
            seen2.lock().unwrap().frames.push(data.to_vec());
            let outs = match wire05::decode_client(&data) {
                Ok(m) => {
                    valid_seen = true;
                    let mut outs = answer(&m);
                    if outs.is_empty() {
                        if let ClientMessage::AuthIdentify { corr_id, .. } = m {
                            outs = vec![resp(corr_id, true, "Already authenticated"), turn_done()];
                        }
                    }
                    outs
                }
                Err(e) if valid_seen => vec![text_error(&e.0)],
                Err(_) => vec![],
            };
            for o in outs {
                let r = match o {
                    Out::Bin(b) => ws.send(Message::Binary(b.into())).await,
                    Out::Text(t) => ws.send(Message::Text(t.into())).await,
                };
                if r.is_err() {
                    return;
                }
            }
        }
    });
    (format!("ws://{addr}"), seen)
}

fn forced05() -> ClientConfig {
    ClientConfig {
        protocol: Some(Protocol::V05),
        ..ClientConfig::default()
    }
}

async fn recv(inst: &Instance) -> InstanceEvent {
    tokio::time::timeout(DEADLINE, inst.recv())
        .await
        .expect("event within the deadline")
        .expect("event")
}

async fn collect(inst: &Instance) -> Vec<InstanceEvent> {
    let mut out = Vec::new();
    loop {
        let ev = recv(inst).await;
        let end = ev.is_terminal();
        out.push(ev);
        if end {
            return out;
        }
    }
}

#[tokio::test]
async fn detection_finds_v05_with_path_identity_and_one_extra_round_trip() {
    let (url, seen) = fake05(|m| match *m {
        ClientMessage::ListProcesses { corr_id } => vec![turn_done(), resp(corr_id, true, "[]")],
        ClientMessage::Ping { corr_id } => vec![resp(corr_id, true, "Pong"), turn_done()],
        _ => vec![],
    })
    .await;
    let c = Client::connect(&url).await.unwrap();
    // The first call goes out in January-2026 form; the probe's answer switches it.
    assert!(c.list_instances().await.unwrap().is_empty());
    assert_eq!(c.protocol(), Some(Protocol::V05));
    // authenticate without a key is fine on 0.5; the later calls are not confused by the
    // text error the server sends for anything left over.
    c.authenticate("alice", None).await.unwrap();
    c.ping().await.unwrap();
    let s = seen.lock().unwrap();
    assert_eq!(s.path, "/v1/ws");
    assert_eq!(s.identity.as_deref(), Some("libpie"));
    let kinds: Vec<String> = s
        .frames
        .iter()
        .map(|f| match wire05::decode_client(f) {
            Ok(m) => format!("{m:?}")
                .split([' ', '{'])
                .next()
                .unwrap()
                .to_string(),
            Err(_) => "January".into(),
        })
        .collect();
    // probe, the January-2026 list, the 0.5 list, then ping: never ping first.
    assert_eq!(kinds, ["AuthIdentify", "January", "ListProcesses", "Ping"]);
    let d = c.debug_counts();
    assert_eq!((d.pending, d.instances), (0, 0));
}

#[tokio::test]
async fn authenticate_detects_v05_and_a_key_is_unsupported() {
    let (url, _) = fake05(|_| vec![]).await;
    let config = ClientConfig {
        identity: "acme/alice".into(),
        ..ClientConfig::default()
    };
    let c = Client::connect_with(&url, config).await.unwrap();
    c.authenticate("alice", None).await.unwrap();
    assert_eq!(c.protocol(), Some(Protocol::V05));
    let pem = ssh_key::PrivateKey::from(ssh_key::private::Ed25519Keypair::from_seed(&[3; 32]))
        .to_openssh(ssh_key::LineEnding::LF)
        .unwrap();
    let key = pie::PrivateKey::from_bytes(pem.as_bytes(), None).unwrap();
    let e = c.authenticate("alice", Some(&key)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert!(e.message().contains("x-pie-identity"), "{e}");
    for (what, e) in [
        ("internal", c.internal_authenticate("t").await.unwrap_err()),
        (
            "exists",
            c.program_exists(&"0".repeat(64)).await.unwrap_err(),
        ),
        (
            "upload",
            c.upload_program(&pie::wire::COMPONENT_PREAMBLE)
                .await
                .unwrap_err(),
        ),
        (
            "launch",
            c.launch_instance(&"0".repeat(64), vec![], false)
                .await
                .unwrap_err(),
        ),
    ] {
        assert_eq!(e.kind(), ErrorKind::Unsupported, "{what}: {e}");
    }
    let e = c.program_exists("h").await.unwrap_err();
    assert!(e.message().contains("check_program"), "{e}");
}

#[tokio::test]
async fn detection_finds_the_january_server_and_v05_calls_are_unsupported_there() {
    let sim = pie_sim::Simulator::start(pie_sim::SimConfig::default()).unwrap();
    let c = Client::connect(&sim.url()).await.unwrap();
    assert_eq!(c.protocol(), None);
    c.authenticate("alice", None).await.unwrap();
    assert_eq!(c.protocol(), Some(Protocol::Jan2026));
    c.ping().await.unwrap();
    for e in [
        c.check_program("x", "0.1.0").await.unwrap_err(),
        c.model_status().await.unwrap_err(),
        c.launch("x", "{}", false).await.unwrap_err(),
        c.install_program(b"print(1)", "[package]")
            .await
            .unwrap_err(),
        c.list_processes().await.unwrap_err(),
    ] {
        assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
        assert!(e.message().contains("January-2026"), "{e}");
    }
    c.ping().await.unwrap();
    // Forcing January-2026 sends no probe at all.
    let forced = ClientConfig {
        protocol: Some(Protocol::Jan2026),
        ..ClientConfig::default()
    };
    let c2 = Client::connect_with(&sim.url(), forced).await.unwrap();
    assert_eq!(c2.protocol(), Some(Protocol::Jan2026));
    c2.authenticate("bob", None).await.unwrap();
    assert_eq!(c2.debug_counts().stray_replies, 0);
}

#[tokio::test]
async fn bad_input_is_refused_before_anything_is_sent() {
    let (url, seen) = fake05(|m| match *m {
        ClientMessage::Ping { corr_id } => vec![resp(corr_id, true, "Pong")],
        _ => vec![],
    })
    .await;
    let c = Client::connect_with(&url, forced05()).await.unwrap();
    let cases = [
        (
            "input",
            c.launch("echo", "not json", false).await.unwrap_err(),
        ),
        ("input", c.launch("echo", "", true).await.unwrap_err()),
        (
            "inferlet",
            c.launch("echo@1.0", "{}", false).await.unwrap_err(),
        ),
        (
            "inferlet",
            c.launch("bad name", "{}", false).await.unwrap_err(),
        ),
        ("version", c.check_program("echo", "1.0").await.unwrap_err()),
        ("version", c.check_program("echo", "").await.unwrap_err()),
        (
            "name",
            c.check_program("echo@0.1.0", "0.1.0").await.unwrap_err(),
        ),
        ("id", c.attach_instance("not-a-uuid").await.unwrap_err()),
        ("id", c.terminate_instance("1234").await.unwrap_err()),
        ("manifest", c.install_program(b"x", " ").await.unwrap_err()),
    ];
    for (param, e) in cases {
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{param}: {e}");
        assert!(e.message().starts_with(&format!("{param}: ")), "{e}");
    }
    c.ping().await.unwrap();
    // Forced 0.5: no probe; the ping is the only frame the server ever saw.
    assert_eq!(seen.lock().unwrap().frames.len(), 1);
}

#[tokio::test]
async fn text_errors_fail_their_request_promptly_and_turn_done_is_ignored() {
    let (url, _) = fake05(|m| match *m {
        // As if the server could not decode these frames (§7).
        ClientMessage::CheckProgram { .. } => vec![text_error("missing field `version`")],
        ClientMessage::Query {
            corr_id,
            subject: "model_status",
            ..
        } => {
            vec![
                turn_done(),
                resp(corr_id, true, "{\"default.kv_pages_total\":64}"),
                turn_done(),
                turn_done(),
            ]
        }
        ClientMessage::Query { .. } => vec![text_error("unknown variant `query`")],
        ClientMessage::SignalProcess { .. } => vec![],
        ClientMessage::Ping { corr_id } => vec![resp(corr_id, true, "Pong")],
        _ => vec![],
    })
    .await;
    let config = ClientConfig {
        request_timeout: Duration::from_millis(800),
        ..forced05()
    };
    let c = Client::connect_with(&url, config).await.unwrap();
    c.ping().await.unwrap();
    let t = Instant::now();
    let e = c.check_program("echo", "0.1.0").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol);
    assert_eq!(e.message(), "bad client frame: missing field `version`");
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "prompt, not a timeout"
    );
    assert!(c.model_status().await.unwrap().contains("kv_pages_total"));
    c.ping().await.unwrap();
    assert_eq!(c.debug_counts().pending, 0);
}

#[tokio::test]
async fn an_error_behind_a_fire_and_forget_frame_times_out_and_a_wedge_is_a_timeout() {
    let (url, _) = fake05(|m| match *m {
        ClientMessage::LaunchProcess {
            corr_id,
            inferlet: "chat",
            ..
        } => {
            vec![resp(corr_id, true, PID)]
        }
        // The signal went through; the server could not decode the query: the error cannot
        // be told apart from an error about the signal, so the query times out.
        ClientMessage::Query { .. } => vec![text_error("unknown variant `query`")],
        // A wedged engine: the launch is never answered.
        ClientMessage::LaunchProcess { .. } => vec![],
        ClientMessage::Ping { corr_id } => vec![resp(corr_id, true, "Pong")],
        _ => vec![],
    })
    .await;
    let config = ClientConfig {
        request_timeout: Duration::from_millis(600),
        ..forced05()
    };
    let c = Client::connect_with(&url, config).await.unwrap();
    let inst = c.launch("chat", "{}", false).await.unwrap();
    inst.send("hello").await.unwrap();
    let e = c.query("q", "").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    let t = Instant::now();
    let e = c.launch("wedged", "{}", false).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(t.elapsed() < Duration::from_secs(3));
    // The connection still works and nothing is left pending.
    c.ping().await.unwrap();
    assert_eq!(c.debug_counts().pending, 0);
}

#[tokio::test]
async fn early_events_are_kept_and_event_kinds_map_like_january() {
    let data: Vec<u8> = (0..(wire05::CHUNK_SIZE + 100))
        .map(|i| (i % 251) as u8)
        .collect();
    let data2 = data.clone();
    let (url, _) = fake05(move |m| match *m {
        ClientMessage::LaunchProcess {
            corr_id, inferlet, ..
        } => {
            let h = wire05::hash(&data2);
            let file = |i: u64, part: &[u8], name: Option<&str>, hash: &str, total: u64| {
                Out::Bin(wire05::encode_server(&ServerMessage::File {
                    process_id: PID.into(),
                    file_hash: hash.into(),
                    chunk_index: i,
                    total_chunks: total,
                    chunk_data: part.to_vec(),
                    name: name.map(str::to_string),
                }))
            };
            let end = match inferlet {
                "ok" => event(PID, "return", "5"),
                "killed" => event(PID, "error", "Signal"),
                _ => event(PID, "error", "RuntimeError: boom\nTraceback ..."),
            };
            vec![
                // Output before the launch reply (§6.2): must not be lost.
                event(PID, "stdout", "line 0\n"),
                event(PID, "message", "{\"args\": {}}"),
                resp(corr_id, true, PID),
                event(PID, "stderr", "warn"),
                file(0, &data2[..wire05::CHUNK_SIZE], Some("out.bin"), &h, 2),
                file(1, &data2[wire05::CHUNK_SIZE..], Some("out.bin"), &h, 2),
                file(0, b"tiny", None, &wire05::hash(b"tiny"), 1),
                // A file whose hash does not verify is dropped.
                file(0, b"bad", None, &wire05::hash(b"other"), 1),
                end,
            ]
        }
        _ => vec![],
    })
    .await;
    let c = Client::connect(&url).await.unwrap();
    let inst = c.launch("ok", "{}", false).await.unwrap();
    assert_eq!(inst.id(), PID);
    assert_eq!(
        collect(&inst).await,
        vec![
            InstanceEvent::Stdout("line 0\n".into()),
            InstanceEvent::Message("{\"args\": {}}".into()),
            InstanceEvent::Stderr("warn".into()),
            InstanceEvent::NamedBlob {
                data,
                name: "out.bin".into()
            },
            InstanceEvent::Blob(b"tiny".to_vec()),
            InstanceEvent::Completed("5".into()),
        ]
    );
    assert_eq!(
        inst.recv().await.unwrap_err().kind(),
        ErrorKind::StreamEnded
    );
    let killed = c.launch("killed", "{}", false).await.unwrap();
    assert_eq!(
        collect(&killed).await.pop(),
        Some(InstanceEvent::Aborted("Signal".into()))
    );
    let failed = c.launch("fails", "{}", false).await.unwrap();
    match collect(&failed).await.pop() {
        Some(InstanceEvent::Exception(t)) => assert!(t.starts_with("RuntimeError: boom")),
        other => panic!("{other:?}"),
    }
    assert_eq!(c.debug_counts().instances, 0);
}

/// A server with a process table: detached launches answer "" like 0.5.2 (§9.2).
#[tokio::test]
async fn detached_launch_finds_its_id_by_listing() {
    let table: Arc<Mutex<Vec<(String, String, String)>>> = Arc::default();
    let t2 = table.clone();
    let mut n = 0u32;
    let (url, _) = fake05(move |m| match *m {
        ClientMessage::LaunchProcess {
            corr_id,
            inferlet,
            input,
            capture_outputs: false,
        } => {
            n += 1;
            let id = format!("00000000-0000-4000-8000-{n:012}");
            let program = if inferlet.contains('@') {
                inferlet.to_string()
            } else {
                format!("{inferlet}@0.1.0")
            };
            let mut t = t2.lock().unwrap();
            t.push((id, program, input.to_string()));
            if inferlet == "twin" {
                // Someone else launched the same thing at the same moment.
                n += 1;
                t.push((
                    format!("00000000-0000-4000-8000-{n:012}"),
                    "twin@0.1.0".into(),
                    input.to_string(),
                ));
            }
            vec![resp(corr_id, true, "")]
        }
        ClientMessage::ListProcesses { corr_id } => {
            let list: Vec<_> = t2
                .lock()
                .unwrap()
                .iter()
                .map(|(id, program, input)| {
                    serde_json::json!({"id": id, "username": "internal", "program": program,
                                       "input": input, "elapsed_secs": 0})
                })
                .collect();
            vec![resp(
                corr_id,
                true,
                &serde_json::Value::from(list).to_string(),
            )]
        }
        ClientMessage::AttachProcess {
            corr_id,
            process_id,
        } => {
            vec![
                resp(corr_id, true, "Process attached"),
                event(process_id, "return", "\"slept\""),
            ]
        }
        _ => vec![],
    })
    .await;
    let c = Client::connect_with(&url, forced05()).await.unwrap();
    let a = c.launch("sleeper", "{\"seconds\": 5}", true).await.unwrap();
    let b = c.launch("sleeper", "{\"seconds\": 6}", true).await.unwrap();
    assert!(a.is_detached());
    assert_eq!(a.id(), "00000000-0000-4000-8000-000000000001");
    assert_eq!(b.id(), "00000000-0000-4000-8000-000000000002");
    assert_eq!(a.recv().await.unwrap_err().kind(), ErrorKind::Detached);
    let twin = c.launch("twin", "{}", true).await.unwrap();
    assert_eq!(twin.id(), "", "ambiguous: documented as an empty id");
    let list = c.list_processes().await.unwrap();
    assert_eq!(list.len(), 4);
    assert_eq!(list[0].program, "sleeper@0.1.0");
    let attached = c.attach_instance(a.id()).await.unwrap();
    assert_eq!(
        recv(&attached).await,
        InstanceEvent::Completed("\"slept\"".into())
    );
}

#[tokio::test]
async fn install_program_sends_chunks_with_the_manifest_and_reports_progress() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (url, _) = fake05(move |m| match *m {
        ClientMessage::AddProgram {
            corr_id,
            program_hash,
            manifest,
            chunk_index,
            total_chunks,
            chunk_data,
            ..
        } => {
            tx.send((chunk_index, total_chunks, chunk_data.len(), manifest.to_string(), program_hash.to_string()))
                .unwrap();
            if chunk_index + 1 < total_chunks {
                vec![turn_done()]
            } else if manifest.contains("language = \"cobol\"") {
                vec![resp(corr_id, false, "Invalid manifest: Failed to parse manifest TOML: unknown variant `cobol`, expected `python` or `javascript`")]
            } else {
                vec![resp(corr_id, true, "Program installed successfully")]
            }
        }
        _ => vec![],
    })
    .await;
    let c = Client::connect(&url).await.unwrap();
    let artifact = vec![b'#'; 2 * wire05::CHUNK_SIZE + 1];
    let manifest =
        "[package]\nname = \"big\"\nversion = \"0.1.0\"\n[runtime]\nlanguage = \"python\"\n";
    let marks = Arc::new(Mutex::new(Vec::new()));
    let m2 = marks.clone();
    let progress = move |done: u64, total: u64| m2.lock().unwrap().push((done, total));
    let hash = c
        .install_program_with_progress(&artifact, manifest, false, Some(&progress))
        .await
        .unwrap();
    assert_eq!(hash, wire05::hash(&artifact));
    let total = artifact.len() as u64;
    assert_eq!(marks.lock().unwrap().last(), Some(&(total, total)));
    let mut chunks = Vec::new();
    while let Ok(c) = rx.try_recv() {
        chunks.push(c);
    }
    assert_eq!(chunks.len(), 3);
    for (i, (index, n, _, m, h)) in chunks.iter().enumerate() {
        assert_eq!((*index as usize, *n), (i, 3));
        assert_eq!((m.as_str(), h.as_str()), (manifest, hash.as_str()));
    }
    let e = c
        .install_program(b"print(1)", "[runtime]\nlanguage = \"cobol\"\n")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Server);
    assert!(e
        .message()
        .starts_with("Invalid manifest: Failed to parse manifest TOML: unknown variant `cobol`"));
}

#[tokio::test]
async fn chat_and_files_go_out_as_signal_and_transfer_file() {
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let (url, _) = fake05(move |m| match *m {
        ClientMessage::LaunchProcess { corr_id, .. } => {
            vec![resp(corr_id, true, PID), event(PID, "message", "ready")]
        }
        ClientMessage::SignalProcess {
            process_id,
            message,
        } => {
            tx.send(format!("signal {process_id} {message}")).unwrap();
            vec![event(PID, "message", &format!("echo: {message}"))]
        }
        ClientMessage::TransferFile {
            file_hash,
            chunk_index,
            total_chunks,
            chunk_data,
            ..
        } => {
            tx.send(format!(
                "file {chunk_index}/{total_chunks} {} {file_hash}",
                chunk_data.len()
            ))
            .unwrap();
            if chunk_index + 1 == total_chunks {
                vec![event(PID, "return", "3")]
            } else {
                vec![]
            }
        }
        _ => vec![],
    })
    .await;
    let c = Client::connect(&url).await.unwrap();
    let inst = c
        .launch("chat", "{\"greeting\": \"ready\"}", false)
        .await
        .unwrap();
    assert_eq!(recv(&inst).await, InstanceEvent::Message("ready".into()));
    inst.send("hi").await.unwrap();
    assert_eq!(recv(&inst).await, InstanceEvent::Message("echo: hi".into()));
    let blob = vec![1u8; wire05::CHUNK_SIZE + 3];
    let calls = Arc::new(Mutex::new(0));
    let k = calls.clone();
    let progress = move |_: u64, _: u64| *k.lock().unwrap() += 1;
    inst.upload_blob_with_progress(&blob, Some(&progress))
        .await
        .unwrap();
    assert_eq!(*calls.lock().unwrap(), 2);
    assert_eq!(recv(&inst).await, InstanceEvent::Completed("3".into()));
    let mut log = Vec::new();
    while let Ok(l) = rx.try_recv() {
        log.push(l);
    }
    let h = wire05::hash(&blob);
    assert_eq!(
        log,
        vec![
            format!("signal {PID} hi"),
            format!("file 0/2 {} {h}", wire05::CHUNK_SIZE),
            format!("file 1/2 3 {h}"),
        ]
    );
    // The January-2026 registry launch maps to launch_process with JSON input.
    let e = c
        .launch_instance_from_registry("bad name", vec![], false)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
}

#[tokio::test]
async fn http_refusals_of_a_v05_server_are_explained() {
    for (status, hint) in [(404u16, "/v1/ws"), (401u16, "identity")] {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let (mut tcp, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = tcp.read(&mut buf).await;
            let reply = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n");
            let _ = tcp.write_all(reply.as_bytes()).await;
        });
        let e = Client::connect(&format!("ws://{addr}")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConnectionFailed);
        assert!(e.message().contains(hint), "{e}");
    }
    let bad = ClientConfig {
        identity: String::new(),
        ..ClientConfig::default()
    };
    let e = Client::connect_with("ws://127.0.0.1:9", bad)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert!(e.message().starts_with("identity: "));
}

// ---------------------------------------------------------------------------------------------
// A real pie-server 0.5 (PIE05_URL), with inferlets written for this test.
// ---------------------------------------------------------------------------------------------

const ECHO_PY: &str = "\
import json


def main(**kwargs):
    print('kwargs', json.dumps(kwargs, sort_keys=True))
    from inferlet import session
    session.send({'got': kwargs})
    return kwargs
";

const FILES_PY: &str = "\
async def main():
    from inferlet import session
    session.send('ready for a file')
    data = await session.receive_file()
    session.send_file(data[::-1])
    return len(data)
";

const WAIT_PY: &str = "\
import time


def main(seconds: int = 30):
    print('waiting')
    time.sleep(seconds)
    return 'waited'
";

fn manifest(name: &str) -> String {
    format!(
        "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\ndescription = \"libpie client05 test\"\n\n\
         [runtime]\nlanguage = \"python\"\nentry = \"main\"\ncall = \"kwargs\"\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real pie-server 0.5 (PIE05_URL); the real05 stage runs it with --ignored"]
async fn real_server_end_to_end() {
    let url = std::env::var("PIE05_URL")
        .expect("PIE05_URL=ws://HOST:PORT of a real pie-server 0.5 is required by this test");
    // The first launch of a python inferlet compiles it (≈ 17 s, more under load).
    let config = ClientConfig {
        request_timeout: Duration::from_secs(120),
        ..ClientConfig::default()
    };
    let c = Client::connect_with(&url, config).await.unwrap();
    c.ping().await.unwrap();
    assert_eq!(c.protocol(), Some(Protocol::V05));
    c.authenticate("alice", None).await.unwrap();
    assert!(c.check_program("compat-openai", "0.1.0").await.unwrap());
    assert!(!c.check_program("client05-echo", "9.9.9").await.unwrap());
    let status = c.model_status().await.unwrap();
    assert!(status.contains("kv_pages_total"), "{status}");
    let e = c.query("nope", "").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Server);
    assert!(e.message().contains("unknown query subject"), "{e}");

    for (name, src) in [
        ("client05-echo", ECHO_PY),
        ("client05-files", FILES_PY),
        ("client05-wait", WAIT_PY),
    ] {
        let hash = c
            .install_program(src.as_bytes(), &manifest(name))
            .await
            .unwrap();
        assert_eq!(hash, pie::hash_blob(src.as_bytes()));
        assert!(c.check_program(name, "0.1.0").await.unwrap());
    }
    let e = c
        .install_program(b"x", "[package\nname=")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Server);
    assert!(e.message().starts_with("Invalid manifest: "), "{e}");
    let e = c
        .launch("client05-missing@1.0.0", "{}", false)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Server);
    assert!(e.message().contains("is not installed"), "{e}");

    // Attached launch: output, message, return.
    let inst = c
        .launch("client05-echo@0.1.0", "{\"x\": 1}", false)
        .await
        .unwrap();
    let events = collect(&inst).await;
    let stdout: String = events
        .iter()
        .filter_map(|e| match e {
            InstanceEvent::Stdout(s) => Some(s.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(stdout, "kwargs {\"x\": 1}\n");
    assert!(
        events.contains(&InstanceEvent::Message("{\"got\": {\"x\": 1}}".into())),
        "{events:?}"
    );
    assert_eq!(
        events.last(),
        Some(&InstanceEvent::Completed("{\"x\": 1}".into()))
    );

    // A file each way, after the inferlet says it is ready (§5.9).
    let files = c.launch("client05-files", "{}", false).await.unwrap();
    assert_eq!(
        recv(&files).await,
        InstanceEvent::Message("ready for a file".into())
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let payload: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
    files.upload_blob(&payload).await.unwrap();
    let mut back: Vec<u8> = payload.clone();
    back.reverse();
    let rest = collect(&files).await;
    assert_eq!(
        rest,
        vec![
            InstanceEvent::Blob(back),
            InstanceEvent::Completed("1000".into())
        ]
    );

    // Detached → found by listing → attach → terminate → Aborted.
    let det = c
        .launch("client05-wait", "{\"seconds\": 60}", true)
        .await
        .unwrap();
    assert_eq!(det.id().len(), 36, "detached id found");
    let listed = c.list_instances().await.unwrap();
    assert!(listed.iter().any(|i| i.id == det.id()));
    let att = c.attach_instance(det.id()).await.unwrap();
    let e = c.attach_instance(det.id()).await.unwrap_err();
    assert_eq!(e.message(), "Cannot attach: already attached");
    c.terminate_instance(att.id()).await.unwrap();
    let end = collect(&att).await;
    assert_eq!(end.last(), Some(&InstanceEvent::Aborted("Signal".into())));
    let e = c.terminate_instance(att.id()).await.unwrap_err();
    assert_eq!(
        (e.kind(), e.message()),
        (ErrorKind::Server, "Process not found")
    );
    c.close().await.unwrap();
}
