//! The `pie-sim` binary: start-up line, serving, clean exit on SIGTERM, make-program.
mod common;

use pie_sim::wire::{self, ClientMessage, ServerMessage};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_pie-sim");

#[test]
fn make_program_outputs() {
    let out = Command::new(BIN)
        .args(["make-program", "stdout hi\\n"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout, pie_sim::script_program("stdout hi\\n"));
    let out = Command::new(BIN)
        .args(["make-program", "stdout a", "complete b"])
        .output()
        .unwrap();
    assert_eq!(out.stdout, pie_sim::script_program("stdout a\ncomplete b"));
    let out = Command::new(BIN)
        .args(["make-program", "--builtin", "echo"])
        .output()
        .unwrap();
    assert_eq!(out.stdout, pie_sim::script_program("behaviour echo"));
    let out = Command::new(BIN)
        .args(["make-program", "--builtin", "nope"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let out = Command::new(BIN).args(["--bogus"]).output().unwrap();
    assert!(!out.status.success());
}

#[tokio::test]
async fn serves_and_exits_on_sigterm() {
    let program = std::env::temp_dir().join(format!("pie-sim-bin-{}.wasm", std::process::id()));
    std::fs::write(&program, pie_sim::script_program("complete from file")).unwrap();
    let mut child = Command::new(BIN)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--internal-token",
            "secret",
            "--program",
        ])
        .arg(&program)
        .args(["--bad-token-delay-ms", "10-20"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .expect(&line)
        .to_string();
    let addr = url.strip_prefix("ws://").unwrap().to_string();
    let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let (ws, _) = tokio_tungstenite::client_async(url.clone(), tcp)
        .await
        .unwrap();
    let mut c = common::Raw { ws, next: 1 };
    let r = c
        .request(&ClientMessage::InternalAuthenticate {
            corr_id: 1,
            token: "secret".into(),
        })
        .await;
    assert_eq!(r, common::response(1, true, "Authenticated"));
    let hash = wire::hash_blob(&std::fs::read(&program).unwrap());
    let id = c.launch(&hash, &[], false).await;
    assert_eq!(
        common::kinds(&c.until_terminal(&id).await),
        vec!["ev1:from file"]
    );
    let r = c.launch_registry("echo", &[], true).await;
    assert!(matches!(
        r,
        ServerMessage::InstanceLaunchResult {
            successful: true,
            ..
        }
    ));
    send_sigterm(child.id());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let _ = std::fs::remove_file(&program);
}

fn send_sigterm(pid: u32) {
    let ok = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}
