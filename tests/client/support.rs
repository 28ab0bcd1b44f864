//! Helpers shared by the client tests: a simulator per test, an authenticated client, and
//! event collection with a deadline (so a bug shows as a failure, not a hang).
#![allow(dead_code)]

use pie::{Client, ClientConfig, Error, ErrorKind, Instance, InstanceEvent};
use pie_sim::{SimConfig, Simulator};
use std::time::Duration;

/// Upper bound for anything a test waits on (generous: a loaded machine must not fail a
/// correct test), times `PIE_TIME_SCALE`.
pub fn deadline() -> Duration {
    slack(Duration::from_secs(20))
}

/// A time bound multiplied by `PIE_TIME_SCALE` (default 1; sanitizer runs set it higher).
pub fn slack(base: Duration) -> Duration {
    let scale: u32 = std::env::var("PIE_TIME_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    base * scale.max(1)
}

pub fn sim() -> Simulator {
    Simulator::start(SimConfig::default()).expect("start simulator")
}

pub fn sim_with(f: impl FnOnce(&mut SimConfig)) -> Simulator {
    let mut c = SimConfig::default();
    f(&mut c);
    Simulator::start(c).expect("start simulator")
}

pub async fn client(sim: &Simulator) -> Client {
    client_with(sim, ClientConfig::default()).await
}

pub async fn client_with(sim: &Simulator, config: ClientConfig) -> Client {
    let c = Client::connect_with(&sim.url(), config)
        .await
        .expect("connect");
    c.authenticate("alice", None).await.expect("authenticate");
    c
}

/// Upload a simulator script program and return its hash.
pub async fn upload_script(c: &Client, script: &str) -> String {
    c.upload_program(&pie_sim::script_program(script))
        .await
        .expect("upload program")
}

pub async fn recv(inst: &Instance) -> pie::Result<InstanceEvent> {
    tokio::time::timeout(deadline(), inst.recv())
        .await
        .expect("an event within the deadline")
}

/// Every event up to and including the terminal one.
pub async fn collect(inst: &Instance) -> Vec<InstanceEvent> {
    let mut out = Vec::new();
    loop {
        let ev = recv(inst).await.expect("event");
        let end = ev.is_terminal();
        out.push(ev);
        if end {
            return out;
        }
    }
}

pub fn kind<T: std::fmt::Debug>(r: pie::Result<T>) -> ErrorKind {
    r.expect_err("expected an error").kind()
}

pub fn err<T: std::fmt::Debug>(r: pie::Result<T>) -> Error {
    r.expect_err("expected an error")
}

pub fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// Poll `f` until it is true (bounded by deadline()).
pub async fn until(mut f: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !f() {
        assert!(
            start.elapsed() < deadline(),
            "condition not reached in time"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
