//! End-to-end tests of every client call against the simulator, success and failure paths.

use crate::support::*;
use pie::{Client, ClientConfig, ErrorKind, InstanceEvent, InstanceStatus, PrivateKey};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A burst of requests goes out in steps: the first request alone, then every 16 frames the
/// caller that buffered the 16th writes them itself. On a current-thread runtime the writer
/// task cannot run during the burst, so the count is exact: 47 buffered frames, written by
/// their callers at the 16th and the 32nd, the last 15 by the writer task.
#[tokio::test(flavor = "current_thread")]
async fn a_burst_is_written_by_its_callers_every_16_frames() {
    let sim = sim();
    let c = client(&sim).await;
    let before = c.debug_counts().burst_writes;
    let replies = futures_util::future::join_all((0..48).map(|_| c.ping())).await;
    assert!(replies.iter().all(Result::is_ok), "{replies:?}");
    assert_eq!(c.debug_counts().burst_writes - before, 2);
    // Still true after the burst: a lone request is written at once, not buffered.
    c.ping().await.unwrap();
    assert_eq!(c.debug_counts().burst_writes - before, 2);
}

#[tokio::test]
async fn basic_calls() {
    let sim = sim();
    let c = client(&sim).await;
    c.ping().await.unwrap();
    let status = c.query("model_status", "").await.unwrap();
    assert!(status.starts_with('{') && status.ends_with('}'), "{status}");
    let program =
        pie_sim::script_program("stdout hello\\n\nmessage hi\nstderr oops\ncomplete done");
    let hash = pie::hash_blob(&program);
    assert!(!c.program_exists(&hash).await.unwrap());
    assert_eq!(c.upload_program(&program).await.unwrap(), hash);
    assert!(c.program_exists(&hash).await.unwrap());
    assert!(sim.program_exists(&hash));
    // Exact, case-sensitive comparison on the server.
    assert!(!c.program_exists(&hash.to_uppercase()).await.unwrap());
    // Uploading known bytes again succeeds.
    assert_eq!(c.upload_program(&program).await.unwrap(), hash);

    let inst = c.launch_instance(&hash, vec![], false).await.unwrap();
    assert!(!inst.is_detached());
    assert_eq!(inst.id().len(), 36);
    assert_eq!(
        collect(&inst).await,
        vec![
            InstanceEvent::Stdout("hello\n".into()),
            InstanceEvent::Message("hi".into()),
            InstanceEvent::Stderr("oops".into()),
            InstanceEvent::Completed("done".into()),
        ]
    );
    assert_eq!(kind(inst.recv().await), ErrorKind::StreamEnded);
    assert_eq!(kind(inst.try_recv()), ErrorKind::StreamEnded);

    // terminate: any well-formed UUID succeeds; a malformed one is refused with the server text.
    c.terminate_instance("67e55044-10b1-426f-9247-bb680e5fe0c8")
        .await
        .unwrap();
    let e = err(c.terminate_instance("not-a-uuid").await);
    assert_eq!(
        (e.kind(), e.message()),
        (ErrorKind::Server, "Malformed instance ID")
    );
    c.close().await.unwrap();
}

#[tokio::test]
async fn launch_failures_and_unknown_instances() {
    let sim = sim();
    let c = client(&sim).await;
    let wrong = pie::hash_blob(b"no such program");
    let e = err(c.launch_instance(&wrong, vec![], false).await);
    assert_eq!(e.kind(), ErrorKind::Server);
    assert_eq!(e.message(), format!("No such program with hash={wrong}"));
    let e = err(c.launch_instance(&wrong, vec![], true).await);
    assert_eq!(e.kind(), ErrorKind::Server);

    let e = err(c
        .attach_instance("67e55044-10b1-426f-9247-bb680e5fe0c8")
        .await);
    assert_eq!(
        (e.kind(), e.message()),
        (ErrorKind::Server, "Instance not found")
    );
    let e = err(c.attach_instance("nonsense").await);
    assert_eq!(
        (e.kind(), e.message()),
        (ErrorKind::Server, "Invalid instance_id")
    );

    let e = err(c
        .launch_instance_from_registry("std/no-such-thing@1.0.0", vec![], false)
        .await);
    assert_eq!(e.kind(), ErrorKind::Server);
    assert!(!e.message().is_empty());

    // A failing program ends with an Exception event.
    let h = upload_script(&c, "stdout x\nfail boom").await;
    let inst = c.launch_instance(&h, vec![], false).await.unwrap();
    assert_eq!(
        collect(&inst).await,
        vec![
            InstanceEvent::Stdout("x".into()),
            InstanceEvent::Exception("Runtime error: boom".into())
        ]
    );
    // Nothing is left behind by failed calls.
    c.ping().await.unwrap();
    let d = c.debug_counts();
    assert_eq!((d.pending, d.instances), (0, 0));
}

#[tokio::test]
async fn registry_launch_and_arguments() {
    let sim = sim();
    let c = client(&sim).await;
    let inst = c
        .launch_instance_from_registry("std/echo@0.1.0", args(&["a", "b c"]), false)
        .await
        .unwrap();
    assert_eq!(
        collect(&inst).await,
        vec![
            InstanceEvent::Stdout("a\n".into()),
            InstanceEvent::Stdout("b c\n".into()),
            InstanceEvent::Stderr("echo: 2 arguments\n".into()),
            InstanceEvent::Message("a b c".into()),
            InstanceEvent::Completed("echo: a b c".into()),
        ]
    );
}

#[tokio::test]
async fn send_terminate_and_list() {
    let sim = sim();
    let c = client(&sim).await;
    let chat = c
        .launch_instance_from_registry("std/chat@0.1.0", args(&["x"]), false)
        .await
        .unwrap();
    chat.send("hello").await.unwrap();
    assert_eq!(
        recv(&chat).await.unwrap(),
        InstanceEvent::Message("you said: hello".into())
    );
    let list = c.list_instances().await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].id, chat.id());
    assert_eq!(list[0].status, InstanceStatus::Attached);
    assert_eq!(list[0].arguments, args(&["x"]));
    assert_eq!(list[0].username, "alice");

    c.terminate_instance(chat.id()).await.unwrap();
    assert_eq!(
        recv(&chat).await.unwrap(),
        InstanceEvent::Aborted("Signal termination".into())
    );
    assert_eq!(kind(chat.recv().await), ErrorKind::StreamEnded);
    assert!(c.list_instances().await.unwrap().is_empty());
}

#[tokio::test]
async fn refused_programs_never_reach_the_server() {
    let sim = sim();
    sim.faults().set_q6_close_on_invalid_program(true);
    let c = client(&sim).await;
    for bad in [&b""[..], b"abc", b"\0asm\x01\0\0\0"] {
        let e = err(c.upload_program(bad).await);
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert!(e.message().contains("not a WebAssembly component"), "{e}");
    }
    // The connection survived (the server would have dropped it had the bytes been sent).
    c.ping().await.unwrap();
}

#[tokio::test]
async fn small_uploads_always_report_completion() {
    // The server's reply can overtake the acknowledgement of a single small chunk; progress must
    // still end at (total, total) for every successful upload.
    let sim = sim();
    let c = client(&sim).await;
    for i in 0..50 {
        let program = pie_sim::script_program(&format!("complete small {i}"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s2 = seen.clone();
        let progress = move |sent: u64, total: u64| s2.lock().unwrap().push((sent, total));
        c.upload_program_with_progress(&program, Some(&progress))
            .await
            .unwrap();
        let n = program.len() as u64;
        assert_eq!(*seen.lock().unwrap(), vec![(n, n)], "upload {i}");
    }
}

#[tokio::test]
async fn upload_progress_and_chunking() {
    let sim = sim();
    let c = client(&sim).await;
    // A script program padded with a custom section to exactly 262145 bytes: two chunks.
    let base = pie_sim::script_program("complete big");
    let mut pad = 262_145 - base.len();
    let program = loop {
        let mut p = base.clone();
        p.extend(pie_sim::custom_section("pad", &vec![7u8; pad]));
        match p.len().cmp(&262_145) {
            std::cmp::Ordering::Equal => break p,
            std::cmp::Ordering::Greater => pad -= p.len() - 262_145,
            std::cmp::Ordering::Less => pad += 262_145 - p.len(),
        }
    };
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let progress = move |sent: u64, total: u64| s2.lock().unwrap().push((sent, total));
    let hash = c
        .upload_program_with_progress(&program, Some(&progress))
        .await
        .unwrap();
    assert_eq!(hash, pie::hash_blob(&program));
    assert_eq!(
        *seen.lock().unwrap(),
        vec![(262_144, 262_145), (262_145, 262_145)]
    );
    assert!(sim.program_exists(&hash));
    let inst = c.launch_instance(&hash, vec![], false).await.unwrap();
    assert_eq!(
        collect(&inst).await,
        vec![InstanceEvent::Completed("big".into())]
    );

    // A larger upload reports monotonically, one call per chunk, ending at the total.
    let mut big = pie_sim::script_program("complete huge");
    big.extend(pie_sim::custom_section("pad", &vec![1u8; 3 << 20]));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let progress = move |sent: u64, total: u64| s2.lock().unwrap().push((sent, total));
    c.upload_program_with_progress(&big, Some(&progress))
        .await
        .unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len() as u64, pie::wire::chunk_count(big.len()));
    assert!(seen.windows(2).all(|w| w[0].0 < w[1].0));
    assert_eq!(*seen.last().unwrap(), (big.len() as u64, big.len() as u64));
}

#[tokio::test]
async fn blobs_both_ways() {
    let sim = sim();
    let c = client(&sim).await;
    // Small blob emitted by a script.
    let h = upload_script(&c, "blob hello\ncomplete").await;
    let inst = c.launch_instance(&h, vec![], false).await.unwrap();
    assert_eq!(
        collect(&inst).await,
        vec![
            InstanceEvent::Blob(b"hello".to_vec()),
            InstanceEvent::Completed(String::new())
        ]
    );
    // A multi-chunk blob uploaded and echoed back (3 chunks each way), plus an empty one,
    // which the server never sends back (§7.7).
    let echo = c
        .launch_instance_from_registry("std/blob-echo@0.1.0", args(&["--count", "2"]), false)
        .await
        .unwrap();
    let data: Vec<u8> = (0..600_000u32).map(|i| (i % 251) as u8).collect();
    let calls = Arc::new(Mutex::new(0u32));
    let c2 = calls.clone();
    let progress = move |_: u64, _: u64| *c2.lock().unwrap() += 1;
    echo.upload_blob_with_progress(&data, Some(&progress))
        .await
        .unwrap();
    assert_eq!(*calls.lock().unwrap(), 3);
    echo.upload_blob(b"").await.unwrap();
    assert_eq!(
        collect(&echo).await,
        vec![
            InstanceEvent::Blob(data),
            InstanceEvent::Completed("echoed 2 blobs".into())
        ]
    );
    c.ping().await.unwrap();
    assert_eq!(c.debug_counts().blob_assemblies, 0);
}

#[tokio::test]
async fn detached_launch_attach_and_replay() {
    let sim = sim();
    let c = client(&sim).await;
    let h = upload_script(&c, "stdout a\nstdout b\nstderr e\nmessage lost\ncomplete x").await;
    let inst = c.launch_instance(&h, vec![], true).await.unwrap();
    assert!(inst.is_detached());
    let id = inst.id().to_string();
    for e in [
        err(inst.recv().await),
        err(inst.try_recv()),
        err(inst.send("x").await),
        err(inst.upload_blob(b"x").await),
    ] {
        assert_eq!(e.kind(), ErrorKind::Detached);
        assert!(
            e.message().contains(&format!("attach_instance(\"{id}\")")),
            "{e}"
        );
    }
    assert_eq!(inst.pending_events(), 0);
    // Wait until it finished while detached, then attach (upper case: the id is normalised).
    let start = std::time::Instant::now();
    loop {
        let list = c.list_instances().await.unwrap();
        if list
            .iter()
            .any(|i| i.id == id && i.status == InstanceStatus::Finished)
        {
            break;
        }
        assert!(start.elapsed() < deadline());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let attached = c.attach_instance(&id.to_uppercase()).await.unwrap();
    assert_eq!(attached.id(), id);
    assert!(!attached.is_detached());
    // Replay: buffered stdout as one message, then stderr; the message was discarded (Q16).
    assert_eq!(
        collect(&attached).await,
        vec![
            InstanceEvent::Stdout("ab".into()),
            InstanceEvent::Stderr("e".into()),
            InstanceEvent::Completed("x".into()),
        ]
    );
    // Finished instances attach once only.
    let e = err(c.attach_instance(&id).await);
    assert_eq!(
        (e.kind(), e.message()),
        (ErrorKind::Server, "Instance not found")
    );
}

#[tokio::test]
async fn attach_from_another_connection_after_disconnect() {
    let sim = sim();
    let c1 = client(&sim).await;
    let chat = c1
        .launch_instance_from_registry("std/chat@0.1.0", vec![], false)
        .await
        .unwrap();
    let id = chat.id().to_string();
    c1.close().await.unwrap();
    assert_eq!(kind(chat.recv().await), ErrorKind::ClientClosed);
    let c2 = client(&sim).await;
    // Detach on disconnect is asynchronous on the server (Q20): retry briefly.
    let start = std::time::Instant::now();
    let again = loop {
        match c2.attach_instance(&id).await {
            Ok(i) => break i,
            Err(e) if e.message() == "Instance already attached" => {
                assert!(start.elapsed() < deadline());
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err(e) => panic!("attach: {e}"),
        }
    };
    again.send("bye").await.unwrap();
    assert_eq!(
        collect(&again).await,
        vec![InstanceEvent::Completed("bye".into())]
    );
}

fn alice_key() -> PrivateKey {
    // PROTOCOL.md §12.3 Ed25519 seed, wrapped as an OpenSSH private key.
    let seed: [u8; 32] = (0..32u8)
        .map(|i| i * 7 + 1)
        .collect::<Vec<_>>()
        .try_into()
        .unwrap();
    key_from_seed(seed)
}

fn key_from_seed(seed: [u8; 32]) -> PrivateKey {
    let kp = ssh_key::private::Ed25519Keypair::from_seed(&seed);
    let key = ssh_key::PrivateKey::from(kp);
    let pem = key.to_openssh(ssh_key::LineEnding::LF).unwrap();
    PrivateKey::from_bytes(pem.as_bytes(), None).unwrap()
}

const ALICE_PUB: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOQDCZjP1a0XI8Fp+VaqC564YZtZkr1hLCr0KOvHn43w test";

#[tokio::test]
async fn authentication() {
    let key = alice_key();
    assert_eq!(
        key.public_key_openssh().unwrap().split(' ').nth(1),
        ALICE_PUB.split(' ').nth(1)
    );
    let sim = sim_with(|c| {
        c.auth_enabled = true;
        c.users = vec![("alice".into(), vec![ALICE_PUB.into()])];
        c.bad_token_delay = Duration::from_millis(10)..Duration::from_millis(20);
    });
    // Good key.
    let c = Client::connect(&sim.url()).await.unwrap();
    c.authenticate("alice", Some(&key)).await.unwrap();
    c.ping().await.unwrap();
    // Again on the same connection: "Already authenticated".
    c.authenticate("alice", Some(&key)).await.unwrap();

    // Unknown user: the server's text, then the server closes the connection.
    let c = Client::connect(&sim.url()).await.unwrap();
    let e = err(c.authenticate("bob", Some(&key)).await);
    assert_eq!(
        (e.kind(), e.message()),
        (ErrorKind::Auth, "User 'bob' is not authorized")
    );
    let why = tokio::time::timeout(deadline(), c.closed()).await.unwrap();
    assert_eq!(why.kind(), ErrorKind::ConnectionClosed);
    assert!(c.is_closed());
    assert_eq!(kind(c.ping().await), ErrorKind::ConnectionClosed);

    // Wrong key.
    let c = Client::connect(&sim.url()).await.unwrap();
    let e = err(c.authenticate("alice", Some(&key_from_seed([9; 32]))).await);
    assert_eq!(
        (e.kind(), e.message()),
        (ErrorKind::Auth, "Signature verification failed")
    );

    // Challenge but no key.
    let c = Client::connect(&sim.url()).await.unwrap();
    let e = err(c.authenticate("alice", None).await);
    assert_eq!(e.kind(), ErrorKind::Auth);
    assert!(e.message().contains("private key"), "{e}");

    // Internal token: good and bad.
    let c = Client::connect(&sim.url()).await.unwrap();
    c.internal_authenticate(sim.internal_token()).await.unwrap();
    c.ping().await.unwrap();
    let c = Client::connect(&sim.url()).await.unwrap();
    let e = err(c.internal_authenticate("wrong").await);
    assert_eq!((e.kind(), e.message()), (ErrorKind::Auth, "Invalid token"));
}

#[tokio::test]
async fn internal_auth_waits_for_the_slow_refusal() {
    // The real server takes 1-3 s to refuse a bad token; a short request timeout must not
    // turn that into a Timeout.
    let sim = sim_with(|c| {
        c.bad_token_delay = Duration::from_millis(1200)..Duration::from_millis(1300);
    });
    let config = ClientConfig {
        request_timeout: Duration::from_millis(300),
        ..ClientConfig::default()
    };
    let c = Client::connect_with(&sim.url(), config).await.unwrap();
    let e = err(c.internal_authenticate("wrong").await);
    assert_eq!((e.kind(), e.message()), (ErrorKind::Auth, "Invalid token"));
}

#[tokio::test]
async fn connect_failures() {
    // Nothing listens on this port (bound then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = err(Client::connect(&format!("ws://127.0.0.1:{port}")).await);
    assert_eq!(e.kind(), ErrorKind::ConnectionFailed);
    assert_eq!(
        kind(Client::connect("http://x").await),
        ErrorKind::InvalidArgument
    );
    // A listener that never completes the handshake: the connect timeout applies.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let config = ClientConfig {
        connect_timeout: Duration::from_millis(200),
        ..ClientConfig::default()
    };
    let t = std::time::Instant::now();
    let e = err(Client::connect_with(&format!("ws://{}", l.local_addr().unwrap()), config).await);
    assert_eq!(e.kind(), ErrorKind::Timeout);
    assert!(t.elapsed() < Duration::from_secs(2));
}

/// The handles and every call's future can move between threads (tokio::spawn, FFI runtime).
#[allow(dead_code)]
fn handles_and_futures_are_send_and_sync() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: T) {}
    fn check(c: Client, i: pie::Instance, p: &'static pie::ProgressFn) {
        send_sync(&c);
        send_sync(&i);
        send(c.close());
        send(c.closed());
        send(c.authenticate("u", None));
        send(c.internal_authenticate("t"));
        send(c.query("s", "r"));
        send(c.program_exists("h"));
        send(c.upload_program(b""));
        send(c.upload_program_with_progress(b"", Some(p)));
        send(c.launch_instance("h", vec![], false));
        send(c.launch_instance_from_registry("n", vec![], false));
        send(c.attach_instance("i"));
        send(c.list_instances());
        send(c.terminate_instance("i"));
        send(c.ping());
        send(i.send("m"));
        send(i.upload_blob(b""));
        send(i.upload_blob_with_progress(b"", Some(p)));
        send(i.recv());
        send(Client::connect("ws://x"));
        send(Client::connect_with("ws://x", ClientConfig::default()));
    }
    let _ = check;
}
