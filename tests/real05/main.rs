//! libpie against a real pie-server 0.5.2 (issue 12, item 6): the Rust client core and the C
//! API, end to end. The server comes from scripts/pie05 (installed from PyPI, random-weight
//! model on lavapipe); the test inferlets from tests/inferlets05.
//!
//! Every test is `#[ignore]`d because it needs that server: a plain `cargo test` lists them as
//! ignored. The `real05` stage of scripts/test-all.sh runs them:
//!     scripts/pie05/with_server.sh -- cargo test --test real05 -- --ignored --test-threads=1
//! When asked to run (`--ignored`) without `PIE05_URL`, each test fails: it never passes
//! without having talked to the server.

mod capi;
mod support;

use pie::{Client, InstanceEvent, Protocol};
use std::time::Duration;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real pie-server 0.5.2: scripts/pie05/with_server.sh (see the file's doc)"]
async fn detects_the_05_server_ping_and_model_status() {
    let client = connect().await;
    within(DEADLINE, client.ping()).await.expect("ping");
    assert_eq!(client.protocol(), Some(Protocol::V05));
    let status = within(DEADLINE, client.model_status())
        .await
        .expect("model_status");
    let status: serde_json::Value = serde_json::from_str(&status).expect("model_status is JSON");
    assert!(
        status.get("default.kv_pages_total").is_some(),
        "model_status: {status}"
    );
    assert!(
        within(DEADLINE, client.check_program("compat-openai", "0.1.0"))
            .await
            .unwrap()
    );
    assert!(
        !within(DEADLINE, client.check_program("no-such-program", "1.0.0"))
            .await
            .unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real pie-server 0.5.2: scripts/pie05/with_server.sh (see the file's doc)"]
async fn installs_and_launches_each_test_inferlet() {
    let client = connect().await;
    for program in TestInferlet::all() {
        let hash = within(
            DEADLINE,
            client.install_program(&program.source, &program.manifest),
        )
        .await
        .unwrap_or_else(|e| panic!("install {}: {e}", program.id()));
        assert_eq!(hash.len(), 64, "blake3 hex of the source");
        assert!(within(
            DEADLINE,
            client.check_program(&program.name, &program.version)
        )
        .await
        .unwrap());
    }

    // echo-args: stdout (one event per write), one message, the arguments returned.
    let echo = launch(&client, "echo-args@0.1.0", r#"{"x": 1, "y": "two"}"#).await;
    let run = drain(&echo).await;
    assert_eq!(run.stdout, "args: {\"x\": 1, \"y\": \"two\"}\n");
    assert_eq!(
        json(&run.messages[0]),
        serde_json::json!({"args": {"x": 1, "y": "two"}})
    );
    assert_completed_json(run.end(), serde_json::json!({"x": 1, "y": "two"}));

    // fail: a Python exception is EXCEPTION with the traceback text.
    let fail = launch(&client, "fail@0.1.0", r#"{"message": "on purpose"}"#).await;
    let run = drain(&fail).await;
    assert_eq!(run.stdout, "about to fail\n");
    match run.end() {
        InstanceEvent::Exception(text) => {
            assert!(text.starts_with("RuntimeError: on purpose"), "{text}")
        }
        other => panic!("fail ended with {other:?}"),
    }

    // stream-lines: every line, in order.
    let lines = launch(&client, "stream-lines", r#"{"n": 500}"#).await; // bare name: latest
    let run = drain(&lines).await;
    let want: String = (0..500).map(|i| format!("line {i}\n")).collect();
    assert_eq!(run.stdout, want);
    assert_completed_json(run.end(), serde_json::json!(500));

    // sleeper: a str return value comes back as-is.
    let sleeper = launch(&client, "sleeper@0.1.0", r#"{"seconds": 0.2}"#).await;
    let run = drain(&sleeper).await;
    assert!(run.stdout.starts_with("sleeping"), "{:?}", run.stdout);
    assert_eq!(run.end(), &InstanceEvent::Completed("slept".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real pie-server 0.5.2: scripts/pie05/with_server.sh (see the file's doc)"]
async fn chat_with_chat_echo() {
    let client = connect().await;
    install(&client, "chat_echo").await;
    let chat = launch(&client, "chat-echo@0.1.0", r#"{"greeting": "hi there"}"#).await;
    assert_eq!(next(&chat).await, InstanceEvent::Message("hi there".into()));
    for text in ["one", "two", "three ünïcode"] {
        within(DEADLINE, chat.send(text)).await.expect("send");
        assert_eq!(
            next(&chat).await,
            InstanceEvent::Message(format!("echo: {text}"))
        );
    }
    within(DEADLINE, chat.send("quit"))
        .await
        .expect("send quit");
    assert_completed_json(&next(&chat).await, serde_json::json!({"echoed": 3}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real pie-server 0.5.2: scripts/pie05/with_server.sh (see the file's doc)"]
async fn files_both_ways_with_file_echo() {
    let client = connect().await;
    install(&client, "file_echo").await;
    let file = launch(&client, "file-echo@0.1.0", "{}").await;
    // The server drops a file that arrives before the inferlet waits for it (§5.9): wait for
    // its "send me a file", then give it a moment to enter receive_file().
    assert_eq!(
        next(&file).await,
        InstanceEvent::Message("send me a file".into())
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let data: Vec<u8> = (0..700 * 1024u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    within(DEADLINE, file.upload_blob(&data))
        .await
        .expect("upload_blob");
    let run = drain(&file).await;
    assert_eq!(run.blobs.len(), 1, "one file back");
    assert!(run.blobs[0] == data, "the same {} bytes back", data.len());
    assert_completed_json(run.end(), serde_json::json!(data.len()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real pie-server 0.5.2: scripts/pie05/with_server.sh (see the file's doc)"]
async fn detached_list_attach_terminate() {
    let client = connect().await;
    install(&client, "sleeper").await;
    // A unique input tells our process apart from any other in the server-wide list.
    let input = format!("{{\"seconds\": 120.{}}}", std::process::id());
    let detached = within(DEADLINE, client.launch("sleeper@0.1.0", &input, true))
        .await
        .expect("detached launch");
    assert!(detached.is_detached());
    let id = detached.id().to_string();
    assert_eq!(
        id.len(),
        36,
        "the client found the detached process's id: {id:?}"
    );

    let listed = within(DEADLINE, client.list_processes())
        .await
        .expect("list");
    let row = listed
        .iter()
        .find(|p| p.id == id)
        .unwrap_or_else(|| panic!("{id} not in {listed:?}"));
    assert_eq!(row.program, "sleeper@0.1.0");
    assert_eq!(row.input, input);

    // Attach from another connection, as a user coming back later would.
    let other = connect().await;
    let attached = within(DEADLINE, other.attach_instance(&id))
        .await
        .expect("attach");
    within(DEADLINE, client.terminate_instance(&id))
        .await
        .expect("terminate");
    assert_eq!(
        next(&attached).await,
        InstanceEvent::Aborted("Signal".into())
    );
    let listed = within(DEADLINE, client.list_processes())
        .await
        .expect("list");
    assert!(
        listed.iter().all(|p| p.id != id),
        "{id} gone after terminate"
    );
    let again = within(DEADLINE, other.attach_instance(&id)).await;
    assert!(again.is_err(), "attach to an ended process fails");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real pie-server 0.5.2: scripts/pie05/with_server.sh (see the file's doc)"]
async fn text_generation_streams_through_compat_openai() {
    let client = connect().await;
    let generation = launch(
        &client,
        "compat-openai@0.1.0",
        r#"{"prompt": "Hello", "max_tokens": 3, "stream": true}"#,
    )
    .await;
    let run = drain_within(&generation, GENERATION_DEADLINE).await;
    assert!(!run.messages.is_empty(), "streamed chunks");
    assert_eq!(
        json(run.messages.last().unwrap()),
        serde_json::json!({"data": "[DONE]"})
    );
    for chunk in &run.messages[..run.messages.len() - 1] {
        let chunk = json(chunk);
        assert_eq!(chunk["data"]["object"], "text_completion", "{chunk}");
    }
    assert_eq!(run.end(), &InstanceEvent::Completed(String::new()));
}

/// Connect as a user would: a plain URL, then authenticate (on 0.5 this sets nothing new: the
/// identity header went with the upgrade; the call must still succeed).
async fn connect() -> Client {
    let url = server_url();
    let client = within(DEADLINE, Client::connect(&url))
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
    within(DEADLINE, client.authenticate("libpie-tests", None))
        .await
        .unwrap_or_else(|e| panic!("authenticate on {url}: {e}"));
    client
}

/// A C program streams a compat-openai generation through the C API, given the plain
/// `ws://host:port` (no path): libpie finds the 0.5 server by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real pie-server 0.5.2: scripts/pie05/with_server.sh (see the file's doc)"]
async fn c_program_streams_a_generation() {
    let url = server_url();
    let plain = url.trim_end_matches("/v1/ws").to_string();
    let program = capi::Program::build("generate");
    let (code, stdout, stderr) =
        tokio::task::spawn_blocking(move || program.run(&[&plain, "3"], GENERATION_DEADLINE))
            .await
            .unwrap();
    assert_eq!(code, 0, "generate failed:\n{stdout}\n{stderr}");
    let chunks: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|line| line.strip_prefix("chunk "))
        .map(json)
        .collect();
    assert!(chunks.len() >= 2, "token chunks and [DONE]: {stdout}");
    assert_eq!(
        chunks.last().unwrap(),
        &serde_json::json!({"data": "[DONE]"})
    );
    for chunk in &chunks[..chunks.len() - 1] {
        assert_eq!(chunk["data"]["object"], "text_completion", "{chunk}");
    }
    assert_eq!(stdout.lines().last(), Some("completed "), "{stdout}");
}
