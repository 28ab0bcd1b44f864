//! Helpers of the real-server tests: the server's URL, bounded waits, the test inferlets of
//! tests/inferlets05 and collecting a process's events.

use pie::{Client, Instance, InstanceEvent};
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

/// Bound on any single wait for the server (the first launch of a python inferlet after a
/// server start compiles the python component: ~17 s idle, more on a loaded CI machine).
pub const DEADLINE: Duration = Duration::from_secs(180);
/// Bound on a whole text generation on lavapipe (a token takes seconds; with_server.sh's
/// watchdog restarts an engine that stalls for longer than 150 s).
pub const GENERATION_DEADLINE: Duration = Duration::from_secs(400);

/// `PIE05_URL` (set by scripts/pie05/with_server.sh). These tests only run when asked for
/// (`--ignored`); asked for without a server, they fail rather than pass vacuously.
pub fn server_url() -> String {
    match std::env::var("PIE05_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "PIE05_URL is not set: these tests need a real pie-server 0.5.2; run them with \
             scripts/pie05/with_server.sh -- cargo test --test real05 -- --ignored"
        ),
    }
}

/// `fut`, or a panic naming what did not finish in time.
pub async fn within<T>(limit: Duration, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(limit, fut)
        .await
        .unwrap_or_else(|_| panic!("no answer from the server within {limit:?}"))
}

/// One test inferlet: its Python source (the artifact) and manifest.
pub struct TestInferlet {
    pub name: String,
    pub version: String,
    pub source: Vec<u8>,
    pub manifest: String,
}

impl TestInferlet {
    pub fn dir() -> PathBuf {
        std::env::var_os("PIE05_INFERLETS")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/inferlets05"))
    }

    /// `base` is the file name without extension: `echo_args`, `chat_echo`, ...
    pub fn load(base: &str) -> TestInferlet {
        let dir = Self::dir();
        let source = std::fs::read(dir.join(format!("{base}.py"))).expect("inferlet source");
        let manifest =
            std::fs::read_to_string(dir.join(format!("{base}.toml"))).expect("inferlet manifest");
        let field = |key: &str| -> String {
            manifest
                .lines()
                .find_map(|line| {
                    let (k, v) = line.split_once('=')?;
                    (k.trim() == key).then(|| v.trim().trim_matches('"').to_string())
                })
                .unwrap_or_else(|| panic!("{base}.toml has no {key}"))
        };
        TestInferlet {
            name: field("name"),
            version: field("version"),
            source,
            manifest,
        }
    }

    pub fn all() -> Vec<TestInferlet> {
        [
            "echo_args",
            "chat_echo",
            "fail",
            "stream_lines",
            "sleeper",
            "file_echo",
        ]
        .into_iter()
        .map(TestInferlet::load)
        .collect()
    }

    pub fn id(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }
}

pub async fn install(client: &Client, base: &str) {
    let program = TestInferlet::load(base);
    within(
        DEADLINE,
        client.install_program(&program.source, &program.manifest),
    )
    .await
    .unwrap_or_else(|e| panic!("install {}: {e}", program.id()));
}

/// An attached launch that must succeed.
pub async fn launch(client: &Client, inferlet: &str, input: &str) -> Instance {
    within(DEADLINE, client.launch(inferlet, input, false))
        .await
        .unwrap_or_else(|e| panic!("launch {inferlet} {input}: {e}"))
}

pub async fn next(instance: &Instance) -> InstanceEvent {
    within(DEADLINE, instance.recv())
        .await
        .unwrap_or_else(|e| panic!("recv from {}: {e}", instance.id()))
}

/// Everything a process sent, up to its terminal event.
#[derive(Debug, Default)]
pub struct Run {
    pub stdout: String,
    pub stderr: String,
    pub messages: Vec<String>,
    pub blobs: Vec<Vec<u8>>,
    pub end: Option<InstanceEvent>,
}

impl Run {
    pub fn end(&self) -> &InstanceEvent {
        self.end.as_ref().expect("terminal event")
    }
}

pub async fn drain(instance: &Instance) -> Run {
    drain_within(instance, DEADLINE).await
}

pub async fn drain_within(instance: &Instance, limit: Duration) -> Run {
    let mut run = Run::default();
    within(limit, async {
        loop {
            let event = instance
                .recv()
                .await
                .unwrap_or_else(|e| panic!("recv: {e}"));
            match event {
                InstanceEvent::Stdout(text) => run.stdout.push_str(&text),
                InstanceEvent::Stderr(text) => run.stderr.push_str(&text),
                InstanceEvent::Message(text) => run.messages.push(text),
                InstanceEvent::Blob(data) | InstanceEvent::NamedBlob { data, .. } => {
                    run.blobs.push(data)
                }
                terminal if terminal.is_terminal() => {
                    run.end = Some(terminal);
                    return;
                }
                other => panic!("unexpected event {other:?}"),
            }
        }
    })
    .await;
    run
}

pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}"))
}

pub fn assert_completed_json(event: &InstanceEvent, want: serde_json::Value) {
    match event {
        InstanceEvent::Completed(value) => assert_eq!(json(value), want),
        other => panic!("expected Completed({want}), got {other:?}"),
    }
}
