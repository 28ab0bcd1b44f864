//! The Rust client core against the Pie 0.5 simulator (`pie_sim::v05`, its own codec: an
//! independent oracle), with its defaults = the real 0.5.2 server's defects.

use pie::{Client, ClientConfig, ErrorKind, Instance, InstanceEvent, Protocol};
use pie_sim::v05::{Config, Simulator};
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(20);

fn sim() -> Simulator {
    Simulator::start(Config::default()).expect("start the 0.5 simulator")
}

/// The URL a user would give: host and port only (the client adds `/v1/ws`).
fn base_url(sim: &Simulator) -> String {
    sim.url().trim_end_matches("/v1/ws").to_string()
}

fn manifest(name: &str) -> String {
    format!(
        "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\n\n[runtime]\nlanguage = \"python\"\n\
         entry = \"main\"\ncall = \"kwargs\"\n"
    )
}

/// Install a simulated test inferlet (the simulator runs it by its manifest name).
async fn install(c: &Client, name: &str) {
    let source =
        format!("# {name}: simulated by pie-sim\ndef main(**kwargs):\n    return kwargs\n");
    c.install_program(source.as_bytes(), &manifest(name))
        .await
        .expect("install");
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

fn stdout(events: &[InstanceEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            InstanceEvent::Stdout(s) => Some(s.as_str()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn detection_and_the_basic_calls() {
    let sim = sim();
    let c = Client::connect(&base_url(&sim)).await.unwrap();
    c.ping().await.unwrap();
    assert_eq!(c.protocol(), Some(Protocol::V05));
    c.authenticate("alice", None).await.unwrap();
    assert!(c.check_program("compat-openai", "0.1.0").await.unwrap());
    assert!(!c.check_program("echo-args", "0.1.0").await.unwrap());
    assert!(c
        .model_status()
        .await
        .unwrap()
        .contains("default.kv_pages_total"));
    let e = c.query("nope", "").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Server);
    assert!(e.message().starts_with("unknown query subject"), "{e}");
    assert!(c.list_instances().await.unwrap().is_empty());
    // After all that, nothing pending and nothing misattributed.
    c.ping().await.unwrap();
    assert_eq!(c.debug_counts().pending, 0);
}

#[tokio::test]
async fn install_launch_and_every_event_kind() {
    let sim = sim();
    let c = Client::connect(&base_url(&sim)).await.unwrap();
    for name in ["echo-args", "fail", "stream-lines"] {
        install(&c, name).await;
        assert!(c.check_program(name, "0.1.0").await.unwrap());
    }
    let inst = c
        .launch("echo-args@0.1.0", "{\"a\": 1}", false)
        .await
        .unwrap();
    let events = collect(&inst).await;
    assert_eq!(stdout(&events), "args: {\"a\": 1}\n");
    assert!(events.contains(&InstanceEvent::Message("{\"args\": {\"a\": 1}}".into())));
    assert_eq!(
        events.last(),
        Some(&InstanceEvent::Completed("{\"a\": 1}".into()))
    );

    let fail = c
        .launch("fail", "{\"message\": \"boom\"}", false)
        .await
        .unwrap();
    match collect(&fail).await.pop() {
        Some(InstanceEvent::Exception(t)) => assert!(t.starts_with("RuntimeError: boom"), "{t}"),
        other => panic!("{other:?}"),
    }
    // The January-2026 registry launch maps onto launch_process.
    let lines = c
        .launch_instance_from_registry("stream-lines", vec!["{\"n\": 3}".into()], false)
        .await
        .unwrap();
    let events = collect(&lines).await;
    assert_eq!(stdout(&events), "line 0\nline 1\nline 2\n");
    assert_eq!(events.last(), Some(&InstanceEvent::Completed("3".into())));

    // The server's own refusals, verbatim.
    let e = c.launch("nope@1.0.0", "{}", false).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Server);
    assert!(
        e.message()
            .starts_with("program nope@1.0.0 is not installed"),
        "{e}"
    );
    let e = c
        .install_program(
            b"x",
            "[package]\nname = \"bad\"\nversion = \"0.1.0\"\n[runtime]\nlanguage = \"cobol\"\n",
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Server);
    assert!(
        e.message()
            .starts_with("Invalid manifest: Failed to parse manifest TOML"),
        "{e}"
    );
}

#[tokio::test]
async fn chat_and_files_both_ways() {
    let sim = sim();
    let c = Client::connect(&base_url(&sim)).await.unwrap();
    install(&c, "chat-echo").await;
    install(&c, "file-echo").await;
    let chat = c.launch("chat-echo", "{}", false).await.unwrap();
    assert_eq!(recv(&chat).await, InstanceEvent::Message("ready".into()));
    for m in ["one", "two"] {
        chat.send(m).await.unwrap();
        assert_eq!(
            recv(&chat).await,
            InstanceEvent::Message(format!("echo: {m}"))
        );
    }
    chat.send("quit").await.unwrap();
    assert_eq!(
        recv(&chat).await,
        InstanceEvent::Completed("{\"echoed\": 2}".into())
    );

    let files = c.launch("file-echo", "{}", false).await.unwrap();
    assert_eq!(
        recv(&files).await,
        InstanceEvent::Message("send me a file".into())
    );
    // §5.9: a file that arrives before the inferlet waits for it is dropped; give it a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let payload: Vec<u8> = (0..600_000u32).map(|i| (i % 253) as u8).collect();
    let progress = |_: u64, _: u64| {};
    files
        .upload_blob_with_progress(&payload, Some(&progress))
        .await
        .unwrap();
    assert_eq!(
        collect(&files).await,
        vec![
            InstanceEvent::Blob(payload),
            InstanceEvent::Completed("600000".into())
        ]
    );
}

#[tokio::test]
async fn detached_list_attach_terminate() {
    let sim = sim();
    let c = Client::connect(&base_url(&sim)).await.unwrap();
    install(&c, "sleeper").await;
    let det = c
        .launch("sleeper", "{\"seconds\": 30}", true)
        .await
        .unwrap();
    assert!(det.is_detached());
    assert_eq!(
        det.id().len(),
        36,
        "the detached process was found by listing"
    );
    let list = c.list_processes().await.unwrap();
    let p = list.iter().find(|p| p.id == det.id()).expect("listed");
    assert_eq!(
        (p.program.as_str(), p.input.as_str()),
        ("sleeper@0.1.0", "{\"seconds\": 30}")
    );
    // Another connection attaches and is the owner; ours cannot attach any more.
    let other = Client::connect(&base_url(&sim)).await.unwrap();
    let att = other.attach_instance(det.id()).await.unwrap();
    let e = c.attach_instance(det.id()).await.unwrap_err();
    assert_eq!(
        (e.kind(), e.message()),
        (ErrorKind::Server, "Cannot attach: already attached")
    );
    c.terminate_instance(&det.id().to_uppercase())
        .await
        .unwrap();
    assert_eq!(
        collect(&att).await.pop(),
        Some(InstanceEvent::Aborted("Signal".into()))
    );
    let e = c.terminate_instance(det.id()).await.unwrap_err();
    assert_eq!(
        (e.kind(), e.message()),
        (ErrorKind::Server, "Process not found")
    );
}

#[tokio::test]
async fn text_generation_streams_messages_then_returns() {
    let sim = sim();
    let config = ClientConfig {
        protocol: Some(Protocol::V05),
        ..ClientConfig::default()
    };
    let c = Client::connect_with(&sim.url(), config).await.unwrap();
    let gen = c
        .launch(
            "compat-openai",
            "{\"prompt\": \"Hello\", \"max_tokens\": 3, \"stream\": true}",
            false,
        )
        .await
        .unwrap();
    let events = collect(&gen).await;
    let messages: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            InstanceEvent::Message(m) => Some(m.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(messages.len(), 4, "{events:?}");
    assert!(messages[0].contains("text_completion"));
    assert_eq!(messages[3], "{\"data\":\"[DONE]\"}");
    assert_eq!(
        events.last(),
        Some(&InstanceEvent::Completed(String::new()))
    );
}

#[tokio::test]
async fn a_wedged_engine_is_a_timeout_not_a_hang() {
    let sim = sim();
    pie_sim::v05::Faults::set(&sim.faults().engine_wedge, true);
    let config = ClientConfig {
        request_timeout: Duration::from_secs(2),
        ..ClientConfig::default()
    };
    let c = Client::connect_with(&base_url(&sim), config).await.unwrap();
    let gen = c
        .launch(
            "compat-openai",
            "{\"prompt\": \"Hi\", \"max_tokens\": 8, \"stream\": true}",
            false,
        )
        .await
        .unwrap();
    assert!(matches!(recv(&gen).await, InstanceEvent::Message(_)));
    // Stalled: no further event; the caller's timeout fires, the control plane still works.
    assert!(tokio::time::timeout(Duration::from_millis(500), gen.recv())
        .await
        .is_err());
    c.ping().await.unwrap();
    assert_eq!(c.list_processes().await.unwrap().len(), 1);
    c.terminate_instance(gen.id()).await.unwrap();
    assert_eq!(
        collect(&gen).await.pop(),
        Some(InstanceEvent::Aborted("Signal".into()))
    );
}

#[tokio::test]
async fn a_correct_server_returns_the_detached_id_itself() {
    let config = Config {
        faults: std::sync::Arc::new(pie_sim::v05::Faults::all_off()),
        ..Config::default()
    };
    let sim = Simulator::start(config).unwrap();
    let c = Client::connect(&base_url(&sim)).await.unwrap();
    install(&c, "sleeper").await;
    let det = c
        .launch("sleeper", "{\"seconds\": 30}", true)
        .await
        .unwrap();
    assert_eq!(det.id().len(), 36);
    let att = c.attach_instance(det.id()).await.unwrap();
    c.terminate_instance(det.id()).await.unwrap();
    assert_eq!(
        collect(&att).await.pop(),
        Some(InstanceEvent::Aborted("Signal".into()))
    );
}
