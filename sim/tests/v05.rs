//! The Pie 0.5 simulator (`pie_sim::v05`) through a raw test-side client: tokio-tungstenite
//! plus a small MessagePack encoder/decoder written here (nothing of the simulator's codec or
//! the client library's), checking PROTOCOL-0.5.md behaviour and every defect switch.

use futures_util::{SinkExt, StreamExt};
use pie_sim::v05::{Config, Faults, Simulator};
use std::collections::VecDeque;
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

const TIMEOUT: Duration = Duration::from_secs(10);

// ------------------------------------------------------------------------------------------
// MessagePack, test side
// ------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Mp {
    Nil,
    Bool(bool),
    Int(i128),
    Str(String),
    Bin(Vec<u8>),
    Array(Vec<Mp>),
    Map(Vec<(Mp, Mp)>),
}

impl Mp {
    fn get(&self, key: &str) -> Option<&Mp> {
        match self {
            Mp::Map(kv) => kv
                .iter()
                .find(|(k, _)| *k == Mp::Str(key.into()))
                .map(|(_, v)| v),
            _ => None,
        }
    }
    fn str(&self, key: &str) -> &str {
        match self.get(key) {
            Some(Mp::Str(s)) => s,
            other => panic!("{key} is not a string in {self:?}: {other:?}"),
        }
    }
    fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }
}

fn s(v: &str) -> Mp {
    Mp::Str(v.into())
}

fn u(v: u64) -> Mp {
    Mp::Int(i128::from(v))
}

fn msg(fields: &[(&str, Mp)]) -> Mp {
    Mp::Map(fields.iter().map(|(k, v)| (s(k), v.clone())).collect())
}

fn pack(v: &Mp, out: &mut Vec<u8>) {
    fn len_prefix(
        out: &mut Vec<u8>,
        n: usize,
        fix: u8,
        fixmax: usize,
        m8: Option<u8>,
        m16: u8,
        m32: u8,
    ) {
        if n <= fixmax {
            out.push(fix | n as u8);
        } else if let (Some(m), true) = (m8, n <= 0xff) {
            out.extend([m, n as u8]);
        } else if n <= 0xffff {
            out.push(m16);
            out.extend((n as u16).to_be_bytes());
        } else {
            out.push(m32);
            out.extend((n as u32).to_be_bytes());
        }
    }
    match v {
        Mp::Nil => out.push(0xc0),
        Mp::Bool(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Mp::Int(i) if (0..0x80).contains(i) => out.push(*i as u8),
        Mp::Int(i) if (-32..0).contains(i) => out.push(*i as i8 as u8),
        Mp::Int(i) if *i >= 0 && *i <= 0xffff_ffff => {
            out.push(0xce);
            out.extend((*i as u32).to_be_bytes());
        }
        Mp::Int(i) if *i >= 0 => {
            out.push(0xcf);
            out.extend((*i as u64).to_be_bytes());
        }
        Mp::Int(i) => {
            out.push(0xd3);
            out.extend((*i as i64).to_be_bytes());
        }
        Mp::Str(t) => {
            len_prefix(out, t.len(), 0xa0, 31, Some(0xd9), 0xda, 0xdb);
            out.extend(t.as_bytes());
        }
        Mp::Bin(b) => {
            len_prefix(out, b.len(), 0, 0, Some(0xc4), 0xc5, 0xc6);
            // A fixed form does not exist for bin: fix the zero-length case.
            if b.is_empty() {
                out.pop();
                out.extend([0xc4, 0]);
            }
            out.extend(b);
        }
        Mp::Array(items) => {
            len_prefix(out, items.len(), 0x90, 15, None, 0xdc, 0xdd);
            for x in items {
                pack(x, out);
            }
        }
        Mp::Map(kv) => {
            len_prefix(out, kv.len(), 0x80, 15, None, 0xde, 0xdf);
            for (k, x) in kv {
                pack(k, out);
                pack(x, out);
            }
        }
    }
}

fn encode(v: &Mp) -> Vec<u8> {
    let mut out = Vec::new();
    pack(v, &mut out);
    out
}

fn unpack(b: &[u8], p: &mut usize) -> Mp {
    let take = |p: &mut usize, n: usize| -> &[u8] {
        let r = &b[*p..*p + n];
        *p += n;
        r
    };
    let be = |x: &[u8]| x.iter().fold(0u64, |a, c| (a << 8) | u64::from(*c)) as usize;
    let t = take(p, 1)[0];
    let str_of = |p: &mut usize, n: usize| Mp::Str(String::from_utf8(take(p, n).to_vec()).unwrap());
    match t {
        0x00..=0x7f => Mp::Int(i128::from(t)),
        0xe0..=0xff => Mp::Int(i128::from(t as i8)),
        0x80..=0x8f => Mp::Map(
            (0..(t & 0x0f))
                .map(|_| (unpack(b, p), unpack(b, p)))
                .collect(),
        ),
        0x90..=0x9f => Mp::Array((0..(t & 0x0f)).map(|_| unpack(b, p)).collect()),
        0xa0..=0xbf => str_of(p, usize::from(t & 0x1f)),
        0xc0 => Mp::Nil,
        0xc2 => Mp::Bool(false),
        0xc3 => Mp::Bool(true),
        0xc4..=0xc6 => {
            let w = 1 << (t - 0xc4);
            let n = be(take(p, w));
            Mp::Bin(take(p, n).to_vec())
        }
        0xcc..=0xcf => {
            let w = 1 << (t - 0xcc);
            Mp::Int(be(take(p, w)) as i128)
        }
        0xd9..=0xdb => {
            let w = 1 << (t - 0xd9);
            let n = be(take(p, w));
            str_of(p, n)
        }
        other => panic!("unexpected MessagePack byte {other:#x}"),
    }
}

fn decode(b: &[u8]) -> Mp {
    let mut p = 0;
    let v = unpack(b, &mut p);
    assert_eq!(p, b.len(), "trailing bytes in a server frame");
    v
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn b3(data: &[u8]) -> String {
    blake3::hash(data).to_hex().to_string()
}

// ------------------------------------------------------------------------------------------
// Client, test side
// ------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Frame {
    Bin(Mp, Vec<u8>),
    Text(String),
}

struct Client {
    ws: WebSocketStream<TcpStream>,
    next: u32,
    backlog: VecDeque<Frame>,
}

/// The HTTP status of an upgrade to `path` with this identity header (None: no header).
async fn upgrade(
    addr: std::net::SocketAddr,
    path: &str,
    identity: Option<&str>,
) -> Result<WebSocketStream<TcpStream>, u16> {
    let mut req = format!("ws://{addr}{path}").into_client_request().unwrap();
    if let Some(id) = identity {
        req.headers_mut()
            .insert("x-pie-identity", HeaderValue::from_str(id).unwrap());
    }
    let tcp = TcpStream::connect(addr).await.unwrap();
    match tokio_tungstenite::client_async(req, tcp).await {
        Ok((ws, resp)) => {
            assert_eq!(resp.status().as_u16(), 101);
            Ok(ws)
        }
        Err(WsError::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("handshake: {e}"),
    }
}

impl Client {
    async fn connect(sim: &Simulator) -> Client {
        Client::connect_as(sim, "test/user").await
    }

    async fn connect_as(sim: &Simulator, identity: &str) -> Client {
        let ws = upgrade(sim.addr(), "/v1/ws", Some(identity))
            .await
            .expect("upgrade");
        Client {
            ws,
            next: 1000,
            backlog: VecDeque::new(),
        }
    }

    fn cid(&mut self) -> u32 {
        self.next += 1;
        self.next
    }

    async fn send(&mut self, m: &Mp) {
        self.ws
            .send(Message::Binary(encode(m).into()))
            .await
            .unwrap();
    }

    async fn send_raw(&mut self, m: Message) {
        self.ws.send(m).await.unwrap();
    }

    /// The next frame off the socket (None: nothing within `t`). Panics if the socket closes.
    async fn read(&mut self, t: Duration) -> Option<Frame> {
        loop {
            match tokio::time::timeout(t, self.ws.next()).await {
                Err(_) => return None,
                Ok(Some(Ok(Message::Binary(b)))) => return Some(Frame::Bin(decode(&b), b.into())),
                Ok(Some(Ok(Message::Text(t)))) => return Some(Frame::Text(t.to_string())),
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
                other => panic!("connection ended: {other:?}"),
            }
        }
    }

    /// The first frame (backlog first) that `pred` accepts; others stay in the backlog.
    async fn wait(&mut self, what: &str, pred: impl Fn(&Frame) -> bool) -> Frame {
        if let Some(i) = self.backlog.iter().position(&pred) {
            return self.backlog.remove(i).unwrap();
        }
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.read(left).await {
                None => panic!("no {what} within {TIMEOUT:?}; backlog {:?}", self.backlog),
                Some(f) if pred(&f) => return f,
                Some(f) => self.backlog.push_back(f),
            }
        }
    }

    /// Send a request (a corr_id is added) and return its response map and raw bytes.
    async fn request_raw(&mut self, fields: &[(&str, Mp)]) -> (Mp, Vec<u8>) {
        let c = self.cid();
        let mut all = vec![("corr_id", u(u64::from(c)))];
        all.extend(fields.iter().cloned());
        // `type` first, as clients do (order does not matter to the server).
        all.rotate_left(1);
        self.send(&msg(&all)).await;
        match self
            .wait("response", |f| matches!(f, Frame::Bin(m, _) if m.get("type") == Some(&s("response")) && m.get("corr_id") == Some(&u(u64::from(c)))))
            .await
        {
            Frame::Bin(m, raw) => (m, raw),
            Frame::Text(_) => unreachable!(),
        }
    }

    async fn request(&mut self, fields: &[(&str, Mp)]) -> (bool, String) {
        let (m, _) = self.request_raw(fields).await;
        (
            m.get("ok") == Some(&Mp::Bool(true)),
            m.str("result").to_owned(),
        )
    }

    async fn ping(&mut self) {
        assert_eq!(
            self.request(&[("type", s("ping"))]).await,
            (true, "Pong".into())
        );
    }

    async fn install(&mut self, artifact: &[u8], manifest: &str, chunk: usize) -> (bool, String) {
        let c = self.cid();
        let n = artifact.len().div_ceil(chunk).max(1);
        for i in 0..n {
            let part = artifact
                .get(i * chunk..((i + 1) * chunk).min(artifact.len()))
                .unwrap_or(&[]);
            self.send(&msg(&[
                ("type", s("add_program")),
                ("corr_id", u(u64::from(c))),
                ("program_hash", s(&b3(artifact))),
                ("manifest", s(manifest)),
                ("force_overwrite", Mp::Bool(false)),
                ("chunk_index", u(i as u64)),
                ("total_chunks", u(n as u64)),
                ("chunk_data", Mp::Bin(part.to_vec())),
            ]))
            .await;
        }
        let f = self
            .wait(
                "add_program response",
                |f| matches!(f, Frame::Bin(m, _) if m.get("corr_id") == Some(&u(u64::from(c)))),
            )
            .await;
        let Frame::Bin(m, _) = f else { unreachable!() };
        (
            m.get("ok") == Some(&Mp::Bool(true)),
            m.str("result").to_owned(),
        )
    }

    async fn launch(&mut self, inferlet: &str, input: &str, attached: bool) -> (bool, String) {
        self.request(&[
            ("type", s("launch_process")),
            ("inferlet", s(inferlet)),
            ("input", s(input)),
            ("capture_outputs", Mp::Bool(attached)),
        ])
        .await
    }

    /// Launch attached; must succeed; returns the process id.
    async fn start(&mut self, inferlet: &str, input: &str) -> String {
        let (ok, id) = self.launch(inferlet, input, true).await;
        assert!(ok && id.len() == 36, "launch {inferlet}: {id}");
        id
    }

    /// The next process_event / file frame of `pid`.
    async fn event(&mut self, pid: &str) -> Mp {
        match self
            .wait(
                "event",
                |f| matches!(f, Frame::Bin(m, _) if m.get("process_id") == Some(&s(pid))),
            )
            .await
        {
            Frame::Bin(m, _) => m,
            Frame::Text(_) => unreachable!(),
        }
    }

    /// Every frame of `pid` up to and including its terminal event.
    async fn events(&mut self, pid: &str) -> Vec<Mp> {
        let mut out = Vec::new();
        loop {
            let m = self.event(pid).await;
            let terminal = m.get("type") == Some(&s("process_event"))
                && matches!(m.str("event"), "return" | "error");
            out.push(m);
            if terminal {
                return out;
            }
        }
    }

    async fn list(&mut self) -> String {
        let (ok, text) = self.request(&[("type", s("list_processes"))]).await;
        assert!(ok);
        text
    }

    /// No binary frame arrives for `t` (`turn_done` text frames are skipped).
    async fn expect_no_binary(&mut self, t: Duration) {
        let deadline = tokio::time::Instant::now() + t;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.read(left).await {
                None => return,
                Some(Frame::Text(t)) if t == r#"{"type":"turn_done"}"# => continue,
                Some(f) => panic!("expected no binary frame, got {f:?}"),
            }
        }
    }

    /// Nothing at all (binary or text) arrives for `t`.
    async fn expect_silence(&mut self, t: Duration) {
        if let Some(f) = self.read(t).await {
            panic!("expected silence, got {f:?}");
        }
    }
}

fn kinds(evs: &[Mp]) -> Vec<(String, String)> {
    evs.iter()
        .filter(|m| m.get("type") == Some(&s("process_event")))
        .map(|m| (m.str("event").to_owned(), m.str("value").to_owned()))
        .collect()
}

// ------------------------------------------------------------------------------------------
// Fixtures
// ------------------------------------------------------------------------------------------

fn manifest(name: &str, version: &str) -> String {
    format!(
        "[package]\nname = \"{name}\"\nversion = \"{version}\"\n\n[runtime]\nlanguage = \"python\"\nentry = \"main\"\ncall = \"kwargs\"\n"
    )
}

/// The artifact bytes do not matter to the simulator (it simulates by manifest name), but are
/// stored and hashed: give each a distinct source.
fn source(name: &str) -> Vec<u8> {
    format!("# {name}: test inferlet source\ndef main(**kwargs):\n    return kwargs\n").into_bytes()
}

fn sim_with(faults: Faults) -> Simulator {
    Simulator::start(Config {
        faults: std::sync::Arc::new(faults),
        startup_delay: Duration::from_millis(5),
        token_delay: Duration::from_millis(2),
        ..Config::default()
    })
    .expect("0.5 simulator starts")
}

fn sim() -> Simulator {
    sim_with(Faults::default())
}

fn off(flag: &AtomicBool) {
    Faults::set(flag, false);
}

async fn installed(sim: &Simulator, c: &mut Client, name: &str) -> String {
    let (ok, text) = c.install(&source(name), &manifest(name, "0.1.0"), 64).await;
    assert_eq!(
        (ok, text.as_str()),
        (true, "Program installed successfully")
    );
    assert!(sim.installed().contains(&format!("{name}@0.1.0")));
    format!("{name}@0.1.0")
}

// ------------------------------------------------------------------------------------------
// Transport, detection
// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn upgrade_needs_path_and_identity() {
    let sim = sim();
    assert_eq!(upgrade(sim.addr(), "/v1/ws", None).await.err(), Some(401));
    assert_eq!(
        upgrade(sim.addr(), "/v1/ws", Some("")).await.err(),
        Some(401)
    );
    assert_eq!(upgrade(sim.addr(), "/", Some("a/b")).await.err(), Some(404));
    assert_eq!(
        upgrade(sim.addr(), "/ws", Some("a/b")).await.err(),
        Some(404)
    );
    assert!(upgrade(sim.addr(), "/v1/ws", Some("alice")).await.is_ok());
    assert!(sim.url().ends_with("/v1/ws"));
}

/// libpie's detection (§12): `auth_identify` and the January `identification` back to back.
/// A 0.5.2 server answers the first (byte-exact), then `turn_done`, then a text error for the
/// second, and keeps the connection.
#[tokio::test]
async fn detection_pair_on_the_05_simulator() {
    let sim = sim();
    let mut c = Client::connect(&sim).await;
    c.send(&msg(&[
        ("type", s("auth_identify")),
        ("corr_id", u(1)),
        ("username", s("bob")),
    ]))
    .await;
    c.send(&msg(&[
        ("type", s("identification")),
        ("corr_id", u(2)),
        ("username", s("bob")),
    ]))
    .await;
    match c.read(TIMEOUT).await {
        Some(Frame::Bin(_, raw)) => assert_eq!(
            hex(&raw),
            "84a474797065a8726573706f6e7365a7636f72725f696401a26f6bc3a6726573756c74b5416c72656164792061757468656e74696361746564"
        ),
        other => panic!("expected the auth_identify reply, got {other:?}"),
    }
    match c.read(TIMEOUT).await {
        Some(Frame::Text(t)) => assert_eq!(t, r#"{"type":"turn_done"}"#),
        other => panic!("expected turn_done, got {other:?}"),
    }
    match c.read(TIMEOUT).await {
        Some(Frame::Text(t)) => assert!(
            t.starts_with(r#"{"type":"error","message":"bad client frame: unknown variant `identification`, expected one of `auth_identify`"#),
            "{t}"
        ),
        other => panic!("expected a text error, got {other:?}"),
    }
    c.ping().await;
}

/// The same pair against the January-2026 simulator: `auth_identify` is an unknown message,
/// dropped without a reply and not counted as the first message; `identification` is answered.
/// The January server also ignores the /v1/ws path and the identity header.
#[tokio::test]
async fn detection_pair_on_the_january_simulator() {
    let sim = pie_sim::Simulator::start(pie_sim::SimConfig::default()).unwrap();
    let ws = upgrade(sim.addr(), "/v1/ws", Some("default/me"))
        .await
        .expect("upgrade");
    let mut c = Client {
        ws,
        next: 0,
        backlog: VecDeque::new(),
    };
    c.send(&msg(&[
        ("type", s("auth_identify")),
        ("corr_id", u(1)),
        ("username", s("me")),
    ]))
    .await;
    c.send(&msg(&[
        ("type", s("identification")),
        ("corr_id", u(2)),
        ("username", s("me")),
    ]))
    .await;
    match c.read(TIMEOUT).await {
        Some(Frame::Bin(m, _)) => {
            assert_eq!(m.get("type"), Some(&s("response")));
            assert_eq!(m.get("corr_id"), Some(&u(2)), "{m:?}");
            assert_eq!(m.get("successful"), Some(&Mp::Bool(true)), "{m:?}");
        }
        other => panic!("expected the identification reply, got {other:?}"),
    }
    c.expect_silence(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn bad_frames_are_silent_first_then_text_errors() {
    let sim = sim();
    let mut c = Client::connect(&sim).await;
    c.send_raw(Message::Binary(vec![0xc1].into())).await;
    c.expect_silence(Duration::from_millis(300)).await;
    c.ping().await;
    c.send_raw(Message::Binary(vec![0xc1].into())).await;
    let t = c
        .wait(
            "error",
            |f| matches!(f, Frame::Text(t) if t.contains("error")),
        )
        .await;
    assert!(
        matches!(&t, Frame::Text(t) if t == r#"{"type":"error","message":"bad client frame: wrong msgpack marker Reserved"}"#),
        "{t:?}"
    );
    c.send(&msg(&[("type", s("ping")), ("corr_id", Mp::Int(-1))]))
        .await;
    let t = c
        .wait(
            "error",
            |f| matches!(f, Frame::Text(t) if t.contains("error")),
        )
        .await;
    assert!(
        matches!(&t, Frame::Text(t) if t.contains("invalid value: integer `-1`, expected u32")),
        "{t:?}"
    );
    // JSON text frames are requests too; replies stay binary.
    c.send_raw(Message::Text(r#"{"type":"ping","corr_id":77}"#.into()))
        .await;
    let f = c
        .wait(
            "reply",
            |f| matches!(f, Frame::Bin(m, _) if m.get("corr_id") == Some(&u(77))),
        )
        .await;
    assert!(matches!(f, Frame::Bin(m, _) if m.str("result") == "Pong"));

    // §9.6 off: the first bad frame is reported too.
    let sim = sim_with(Faults::default());
    off(&sim.faults().silent_early_bad_frames);
    let mut c = Client::connect(&sim).await;
    c.send(&msg(&[("type", s("bogus")), ("corr_id", u(1))]))
        .await;
    let t = c.wait("error", |f| matches!(f, Frame::Text(_))).await;
    assert!(
        matches!(&t, Frame::Text(t) if t.contains("unknown variant `bogus`")),
        "{t:?}"
    );
}

#[tokio::test]
async fn turn_done_follows_handled_frames_unless_switched_off() {
    let sim = sim();
    let mut c = Client::connect(&sim).await;
    c.ping().await;
    let t = c.wait("turn_done", |f| matches!(f, Frame::Text(_))).await;
    assert!(matches!(t, Frame::Text(t) if t == r#"{"type":"turn_done"}"#));
    // None after attach_process (§7).
    let (ok, text) = c
        .request(&[
            ("type", s("attach_process")),
            ("process_id", s("00000000-0000-0000-0000-000000000000")),
        ])
        .await;
    assert_eq!((ok, text.as_str()), (false, "Process not found"));
    c.expect_silence(Duration::from_millis(300)).await;

    off(&sim.faults().turn_done);
    c.ping().await;
    c.expect_silence(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn simple_requests_and_texts() {
    let sim = sim();
    let mut c = Client::connect(&sim).await;
    type Case<'a> = (Vec<(&'a str, Mp)>, (bool, &'a str));
    let cases: Vec<Case> = vec![
        (
            vec![("type", s("auth_prove")), ("signature", s("AAAA"))],
            (false, "Already authenticated"),
        ),
        (
            vec![("type", s("auth_identify")), ("username", s("x"))],
            (true, "Already authenticated"),
        ),
        (
            vec![("type", s("query")), ("subject", s("x")), ("record", s(""))],
            (false, "unknown query subject \"x\" (known: model_status)"),
        ),
        (
            vec![
                ("type", s("check_program")),
                ("name", s("compat-openai")),
                ("version", s("0.1.0")),
            ],
            (true, "true"),
        ),
        (
            vec![
                ("type", s("check_program")),
                ("name", s("compat-gemini")),
                ("version", s("0.1.0")),
            ],
            (true, "true"),
        ),
        (
            vec![
                ("type", s("check_program")),
                ("name", s("nope")),
                ("version", s("1.0.0")),
            ],
            (true, "false"),
        ),
        (
            vec![
                ("type", s("check_program")),
                ("name", s("compat-openai")),
                ("version", s("")),
            ],
            (
                false,
                "Invalid program identifier 'compat-openai@': expected 'name@major.minor.patch'",
            ),
        ),
        (vec![("type", s("list_processes"))], (true, "[]")),
        (
            vec![("type", s("attach_process")), ("process_id", s("garbage"))],
            (false, "Invalid process_id"),
        ),
        (
            vec![
                ("type", s("terminate_process")),
                ("process_id", s("garbage")),
            ],
            (false, "Invalid process ID"),
        ),
        (
            vec![
                ("type", s("terminate_process")),
                ("process_id", s("00000000-0000-0000-0000-000000000000")),
            ],
            (false, "Process not found"),
        ),
    ];
    for (req, want) in cases {
        let got = c.request(&req).await;
        assert_eq!((got.0, got.1.as_str()), want, "{req:?}");
    }
    let (ok, status) = c
        .request(&[
            ("type", s("query")),
            ("subject", s("model_status")),
            ("record", s("default")),
        ])
        .await;
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(v["default.kv_pages_total"], 64);
    assert_eq!(v["default.kv_pages_used"], 0);
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let (ok, text) = c.launch("nope@1.0.0", "{}", true).await;
    assert_eq!(
        (ok, text),
        (
            false,
            format!("program nope@1.0.0 is not installed (looked in {home}/.pie/inferlets)")
        )
    );
    // corr_id is echoed over the whole u32 range.
    for cid in [0u64, 255, 65536, 4_294_967_295] {
        c.send(&msg(&[("type", s("ping")), ("corr_id", u(cid))]))
            .await;
        let f = c
            .wait(
                "pong",
                |f| matches!(f, Frame::Bin(m, _) if m.get("corr_id") == Some(&u(cid))),
            )
            .await;
        assert!(matches!(f, Frame::Bin(m, _) if m.str("result") == "Pong"));
    }
}

// ------------------------------------------------------------------------------------------
// Programs
// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn uploads_hashes_manifests_and_replacement() {
    let sim = sim();
    let mut c = Client::connect(&sim).await;
    let src = source("echo-args");
    let (ok, text) = c.install(&src, &manifest("echo-args", "0.1.0"), 7).await;
    assert_eq!(
        (ok, text.as_str()),
        (true, "Program installed successfully")
    );
    assert_eq!(
        c.request(&[
            ("type", s("check_program")),
            ("name", s("echo-args")),
            ("version", s("0.1.0"))
        ])
        .await,
        (true, "true".into())
    );

    let (ok, text) = c.install(&src, "not toml [", 1024).await;
    assert!(
        !ok && text.starts_with("Invalid manifest: Failed to parse manifest TOML:"),
        "{text}"
    );
    let (ok, text) = c
        .install(
            &src,
            &manifest("x", "0.1.0").replace("python", "cobol"),
            1024,
        )
        .await;
    assert!(
        !ok && text.contains("unknown variant `cobol`, expected `python` or `javascript`"),
        "{text}"
    );
    let wasm_manifest = "[package]\nname = \"w\"\nversion = \"1.0.0\"\n";
    assert_eq!(
        c.install(b"print(1)", wasm_manifest, 1024).await,
        (
            false,
            "Failed to compile WASM: failed to parse WebAssembly module".into()
        )
    );

    // Declared hash ≠ bytes; chunks out of order (§9.4: concatenated as they come).
    let cid = c.cid();
    let declared = "00".repeat(32);
    c.send(&msg(&[
        ("type", s("add_program")),
        ("corr_id", u(u64::from(cid))),
        ("program_hash", s(&declared)),
        ("manifest", s(&manifest("h", "0.1.0"))),
        ("force_overwrite", Mp::Bool(false)),
        ("chunk_index", u(0)),
        ("total_chunks", u(1)),
        ("chunk_data", Mp::Bin(src.clone())),
    ]))
    .await;
    let f = c
        .wait(
            "reply",
            |f| matches!(f, Frame::Bin(m, _) if m.get("corr_id") == Some(&u(u64::from(cid)))),
        )
        .await;
    assert!(
        matches!(&f, Frame::Bin(m, _) if m.str("result") == format!("Program hash mismatch: declared {declared}, uploaded {}", b3(&src))),
        "{f:?}"
    );

    let send_chunks = |order: [usize; 2], cid: u32| {
        let parts = [src[..10].to_vec(), src[10..].to_vec()];
        order.map(|i| {
            msg(&[
                ("type", s("add_program")),
                ("corr_id", u(u64::from(cid))),
                ("program_hash", s(&b3(&src))),
                ("manifest", s(&manifest("order", "0.1.0"))),
                ("force_overwrite", Mp::Bool(false)),
                ("chunk_index", u(i as u64)),
                ("total_chunks", u(2)),
                ("chunk_data", Mp::Bin(parts[i].clone())),
            ])
        })
    };
    let cid = c.cid();
    for m in send_chunks([1, 0], cid) {
        c.send(&m).await;
    }
    let f = c
        .wait(
            "reply",
            |f| matches!(f, Frame::Bin(m, _) if m.get("corr_id") == Some(&u(u64::from(cid)))),
        )
        .await;
    assert!(
        matches!(&f, Frame::Bin(m, _) if m.str("result").starts_with("Program hash mismatch")),
        "{f:?}"
    );
    off(&sim.faults().unchecked_chunk_order);
    let cid = c.cid();
    for m in send_chunks([1, 0], cid) {
        c.send(&m).await;
    }
    let f = c
        .wait(
            "reply",
            |f| matches!(f, Frame::Bin(m, _) if m.get("corr_id") == Some(&u(u64::from(cid)))),
        )
        .await;
    assert!(
        matches!(&f, Frame::Bin(m, _) if m.str("result") == "Upload chunk out of order: expected chunk 0, got 1"),
        "{f:?}"
    );

    // §9.3: a re-upload of the same name@version with other bytes replaces it silently...
    let (ok, _) = c
        .install(b"other bytes", &manifest("echo-args", "0.1.0"), 1024)
        .await;
    assert!(ok);
    // ...unless switched off: then only with force_overwrite.
    off(&sim.faults().silent_replace);
    assert_eq!(
        c.install(b"third", &manifest("echo-args", "0.1.0"), 1024)
            .await,
        (
            false,
            "Program echo-args@0.1.0 is already installed (set force_overwrite to replace it)"
                .into()
        )
    );
}

// ------------------------------------------------------------------------------------------
// Processes
// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn echo_args_events_in_order() {
    let sim = sim();
    let mut c = Client::connect(&sim).await;
    let ident = installed(&sim, &mut c, "echo-args").await;
    let pid = c.start(&ident, r#"{"b": "x", "a": 1}"#).await;
    let evs = kinds(&c.events(&pid).await);
    let want: Vec<(String, String)> = [
        ("stdout", "args:"),
        ("stdout", " "),
        ("stdout", r#"{"a": 1, "b": "x"}"#),
        ("stdout", "\n"),
        ("message", r#"{"args": {"b": "x", "a": 1}}"#),
        ("return", r#"{"b": "x", "a": 1}"#),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(evs, want);
    assert_eq!(c.list().await, "[]", "a finished process vanishes");

    // Input that is not JSON is wrapped; a JSON array is an error event; a bare name launches
    // the latest version.
    let pid = c.start("echo-args", "hello").await;
    assert_eq!(
        kinds(&c.events(&pid).await).last().unwrap().1,
        r#"{"input": "hello"}"#
    );
    let pid = c.start(&ident, "[1,2]").await;
    assert_eq!(
        kinds(&c.events(&pid).await),
        vec![(
            "error".to_string(),
            "echo-args@0.1.0 takes keyword arguments, so its input must be a JSON object"
                .to_string()
        )]
    );

    // §9.9 off: print() is one event.
    off(&sim.faults().print_per_write);
    let pid = c.start(&ident, "{}").await;
    assert_eq!(
        kinds(&c.events(&pid).await)[0],
        ("stdout".to_string(), "args: {}\n".to_string())
    );
}

#[tokio::test]
async fn stream_lines_fail_sleeper_and_type_errors() {
    let sim = sim();
    let mut c = Client::connect(&sim).await;
    let lines = installed(&sim, &mut c, "stream-lines").await;
    let fail = installed(&sim, &mut c, "fail").await;
    let sleeper = installed(&sim, &mut c, "sleeper").await;

    let pid = c.start(&lines, r#"{"n": 2000}"#).await;
    let evs = kinds(&c.events(&pid).await);
    assert_eq!(evs.len(), 2001);
    for (i, (kind, value)) in evs[..2000].iter().enumerate() {
        assert_eq!(
            (kind.as_str(), value.clone()),
            ("stdout", format!("line {i}\n"))
        );
    }
    assert_eq!(evs[2000], ("return".into(), "2000".into()));

    let pid = c.start(&fail, r#"{"message": "kaboom"}"#).await;
    let evs = kinds(&c.events(&pid).await);
    let out: String = evs
        .iter()
        .filter(|e| e.0 == "stdout")
        .map(|e| e.1.as_str())
        .collect();
    assert_eq!(out, "about to fail\n");
    let last = evs.last().unwrap();
    assert!(
        last.0 == "error" && last.1.starts_with("RuntimeError: kaboom\nTraceback"),
        "{last:?}"
    );

    let pid = c.start(&sleeper, r#"{"seconds": 0.05}"#).await;
    let evs = kinds(&c.events(&pid).await);
    let out: String = evs
        .iter()
        .filter(|e| e.0 == "stdout")
        .map(|e| e.1.as_str())
        .collect();
    assert_eq!(out, "sleeping 0.05\n");
    assert_eq!(
        evs.last().unwrap(),
        &("return".to_string(), "slept".to_string())
    );

    let pid = c.start(&sleeper, r#"{"zzz": 1}"#).await;
    let last = kinds(&c.events(&pid).await).pop().unwrap();
    assert!(
        last.0 == "error"
            && last
                .1
                .starts_with("TypeError: main() got an unexpected keyword argument 'zzz'\n"),
        "{last:?}"
    );
}

#[tokio::test]
async fn chat_echo_signals_are_owner_only() {
    let sim = sim();
    let mut c = Client::connect(&sim).await;
    let ident = installed(&sim, &mut c, "chat-echo").await;
    let pid = c.start(&ident, r#"{"greeting": "hi"}"#).await;
    assert_eq!(c.event(&pid).await.str("value"), "hi");
    // Another connection's signal has no effect (§5.8).
    let mut other = Client::connect(&sim).await;
    other
        .send(&msg(&[
            ("type", s("signal_process")),
            ("process_id", s(&pid)),
            ("message", s("from other")),
        ]))
        .await;
    other.ping().await;
    c.send(&msg(&[
        ("type", s("signal_process")),
        ("process_id", s(&pid)),
        ("message", s("hello")),
    ]))
    .await;
    assert_eq!(c.event(&pid).await.str("value"), "echo: hello");
    c.send(&msg(&[
        ("type", s("signal_process")),
        ("process_id", s(&pid)),
        ("message", s("quit")),
    ]))
    .await;
    let end = c.event(&pid).await;
    assert_eq!(
        (end.str("event"), end.str("value")),
        ("return", r#"{"echoed": 1}"#)
    );

    off(&sim.faults().owner_only_signals);
    let pid = c.start(&ident, "{}").await;
    assert_eq!(c.event(&pid).await.str("value"), "ready");
    other
        .send(&msg(&[
            ("type", s("signal_process")),
            ("process_id", s(&pid)),
            ("message", s("from other")),
        ]))
        .await;
    assert_eq!(c.event(&pid).await.str("value"), "echo: from other");
}

#[tokio::test]
async fn fire_and_forget_failures_are_silent_unless_switched() {
    let sim = sim();
    let mut c = Client::connect(&sim).await;
    c.ping().await;
    let _ = c.wait("turn_done", |f| matches!(f, Frame::Text(_))).await;
    c.send(&msg(&[
        ("type", s("signal_process")),
        ("process_id", s("garbage")),
        ("message", s("x")),
    ]))
    .await;
    c.send(&msg(&[
        ("type", s("transfer_file")),
        ("process_id", s("garbage")),
        ("file_hash", s(&"00".repeat(32))),
        ("chunk_index", u(0)),
        ("total_chunks", u(1)),
        ("chunk_data", Mp::Bin(b"abc".to_vec())),
    ]))
    .await;
    c.ping().await;
    assert!(
        c.backlog
            .iter()
            .all(|f| matches!(f, Frame::Text(t) if t == r#"{"type":"turn_done"}"#)),
        "{:?}",
        c.backlog
    );

    off(&sim.faults().silent_fire_and_forget);
    c.send(&msg(&[
        ("type", s("signal_process")),
        ("process_id", s("garbage")),
        ("message", s("x")),
    ]))
    .await;
    let t = c
        .wait(
            "error",
            |f| matches!(f, Frame::Text(t) if t.contains("error")),
        )
        .await;
    assert!(
        matches!(&t, Frame::Text(t) if t.contains("SignalProcess: invalid process_id garbage")),
        "{t:?}"
    );
}

#[tokio::test]
async fn files_both_ways_and_the_early_file_race() {
    // A long start-up, so that the early file surely completes before the inferlet waits.
    let sim = Simulator::start(Config {
        startup_delay: Duration::from_millis(1000),
        ..Config::default()
    })
    .unwrap();
    let mut c = Client::connect(&sim).await;
    let ident = installed(&sim, &mut c, "file-echo").await;
    let data: Vec<u8> = (0..300 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    let hash = b3(&data);
    let send_file = |pid: &str| {
        let parts: Vec<&[u8]> = data.chunks(100 * 1024).collect();
        let n = parts.len() as u64;
        parts
            .iter()
            .enumerate()
            .map(|(i, p)| {
                msg(&[
                    ("type", s("transfer_file")),
                    ("process_id", s(pid)),
                    ("file_hash", s(&hash)),
                    ("chunk_index", u(i as u64)),
                    ("total_chunks", u(n)),
                    ("chunk_data", Mp::Bin(p.to_vec())),
                ])
            })
            .collect::<Vec<_>>()
    };

    // §9.12: a file sent right after the launch (before receive_file()) is lost; the one sent
    // after the "ready" message arrives.
    let early = |pid: &str| {
        msg(&[
            ("type", s("transfer_file")),
            ("process_id", s(pid)),
            ("file_hash", s(&b3(b"early"))),
            ("chunk_index", u(0)),
            ("total_chunks", u(1)),
            ("chunk_data", Mp::Bin(b"early".to_vec())),
        ])
    };
    let pid = c.start(&ident, "{}").await;
    c.send(&early(&pid)).await;
    assert_eq!(c.event(&pid).await.str("value"), "send me a file");
    c.expect_no_binary(Duration::from_millis(300)).await;
    for m in send_file(&pid) {
        c.send(&m).await;
    }
    let evs = c.events(&pid).await;
    let files: Vec<&Mp> = evs
        .iter()
        .filter(|m| m.get("type") == Some(&s("file")))
        .collect();
    assert_eq!(files.len(), 2, "300 KiB come back in 256 KiB chunks");
    let mut back = Vec::new();
    for (i, f) in files.iter().enumerate() {
        assert_eq!(f.str("file_hash"), hash);
        assert_eq!(f.get("chunk_index"), Some(&u(i as u64)));
        assert_eq!(f.get("total_chunks"), Some(&u(2)));
        assert_eq!(f.get("name"), Some(&Mp::Nil));
        let Some(Mp::Bin(b)) = f.get("chunk_data") else {
            panic!("chunk_data is not bin")
        };
        back.extend_from_slice(b);
    }
    assert_eq!(back, data);
    let last = evs.last().unwrap();
    assert_eq!(
        (last.str("event"), last.str("value")),
        ("return", (300 * 1024).to_string().as_str())
    );

    // Switched off: the early file is queued and comes back.
    off(&sim.faults().drop_early_files);
    let pid = c.start(&ident, "{}").await;
    c.send(&early(&pid)).await;
    let evs = c.events(&pid).await;
    let back: Vec<&Mp> = evs
        .iter()
        .filter(|m| m.get("type") == Some(&s("file")))
        .collect();
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].get("chunk_data"), Some(&Mp::Bin(b"early".to_vec())));
}

#[tokio::test]
async fn detached_list_attach_terminate_and_disconnect() {
    let sim = sim();
    let mut c = Client::connect(&sim).await;
    let sleeper = installed(&sim, &mut c, "sleeper").await;
    // Long enough to be listed and attached before it ends, even on a loaded machine.
    let (ok, id) = c.launch(&sleeper, r#"{"seconds": 1.5}"#, false).await;
    assert_eq!(
        (ok, id.as_str()),
        (true, ""),
        "§9.2: no id for a detached launch"
    );
    let list: serde_json::Value = serde_json::from_str(&c.list().await).unwrap();
    let row = &list[0];
    assert_eq!(row["username"], "internal");
    assert_eq!(row["program"], sleeper.as_str());
    assert_eq!(row["input"], r#"{"seconds": 1.5}"#);
    assert!(row["elapsed_secs"].is_u64());
    let pid = row["id"].as_str().unwrap().to_owned();
    assert_eq!(
        c.request(&[("type", s("attach_process")), ("process_id", s(&pid))])
            .await,
        (true, "Process attached".into())
    );
    let mut other = Client::connect_as(&sim, "someone/else").await;
    assert_eq!(
        other
            .request(&[("type", s("attach_process")), ("process_id", s(&pid))])
            .await,
        (false, "Cannot attach: already attached".into())
    );
    // Output was not captured: only the terminal event reaches the attached client.
    assert_eq!(
        kinds(&c.events(&pid).await),
        vec![("return".to_string(), "slept".to_string())]
    );
    assert_eq!(
        c.request(&[("type", s("attach_process")), ("process_id", s(&pid))])
            .await,
        (false, "Process not found".into())
    );

    // Terminate from another connection: the owner gets error "Signal".
    let pid = c.start(&sleeper, r#"{"seconds": 30}"#).await;
    assert_eq!(
        other
            .request(&[("type", s("terminate_process")), ("process_id", s(&pid))])
            .await,
        (true, "Process terminated".into())
    );
    let evs = kinds(&c.events(&pid).await);
    assert_eq!(
        evs.last().unwrap(),
        &("error".to_string(), "Signal".to_string())
    );
    assert_eq!(
        c.request(&[("type", s("terminate_process")), ("process_id", s(&pid))])
            .await,
        (false, "Process not found".into())
    );

    // Closing the connection kills its processes.
    let _pid = c.start(&sleeper, r#"{"seconds": 30}"#).await;
    assert_eq!(sim.process_count(), 1);
    drop(c);
    let deadline = std::time::Instant::now() + TIMEOUT;
    while sim.process_count() != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "process survived its connection"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(other.list().await, "[]");

    // §9.2 off: the detached launch answers its id.
    off(&sim.faults().detached_empty_id);
    let (ok, id) = other.launch(&sleeper, r#"{"seconds": 0.01}"#, false).await;
    assert!(ok && id.len() == 36, "{id}");
}

#[tokio::test]
async fn per_identity_view_when_shared_view_is_off() {
    let sim = sim();
    off(&sim.faults().shared_process_view);
    let mut a = Client::connect_as(&sim, "tenant/a").await;
    let mut b = Client::connect_as(&sim, "tenant/b").await;
    let sleeper = installed(&sim, &mut a, "sleeper").await;
    let pid = a.start(&sleeper, r#"{"seconds": 30}"#).await;
    assert_eq!(b.list().await, "[]");
    assert_eq!(
        b.request(&[("type", s("terminate_process")), ("process_id", s(&pid))])
            .await,
        (false, "Process not found".into())
    );
    let list: serde_json::Value = serde_json::from_str(&a.list().await).unwrap();
    assert_eq!(list[0]["username"], "tenant/a");
    assert_eq!(
        a.request(&[("type", s("terminate_process")), ("process_id", s(&pid))])
            .await,
        (true, "Process terminated".into())
    );
}

#[tokio::test]
async fn compat_openai_streams_chunks_then_done_then_return() {
    let sim = sim();
    let mut c = Client::connect(&sim).await;
    let pid = c
        .start(
            "compat-openai@0.1.0",
            r#"{"prompt":"Hello","max_tokens":3,"stream":true}"#,
        )
        .await;
    let evs = kinds(&c.events(&pid).await);
    assert_eq!(evs.len(), 5, "{evs:?}");
    let mut text = String::new();
    for (i, (kind, value)) in evs[..3].iter().enumerate() {
        assert_eq!(kind, "message");
        let v: serde_json::Value = serde_json::from_str(value).unwrap();
        let chunk = &v["data"];
        assert_eq!(chunk["object"], "text_completion");
        assert_eq!(chunk["choices"][0]["index"], 0);
        let finish = if i == 2 {
            serde_json::json!("length")
        } else {
            serde_json::Value::Null
        };
        assert_eq!(chunk["choices"][0]["finish_reason"], finish);
        text.push_str(chunk["choices"][0]["text"].as_str().unwrap());
    }
    assert_eq!(text, pie_sim::v05::completion_tokens("Hello", 3).concat());
    assert_eq!(
        evs[3],
        ("message".to_string(), r#"{"data":"[DONE]"}"#.to_string())
    );
    assert_eq!(evs[4], ("return".to_string(), String::new()));
}

#[tokio::test]
async fn engine_wedge_stalls_generation_but_not_the_control_plane() {
    let sim = sim();
    Faults::set(&sim.faults().engine_wedge, true);
    let mut c = Client::connect(&sim).await;
    let pid = c
        .start(
            "compat-openai",
            r#"{"prompt":"Hi","max_tokens":4,"stream":true}"#,
        )
        .await;
    assert_eq!(c.event(&pid).await.str("event"), "message");
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.ping().await;
    assert!(c.list().await.contains(&pid));
    assert!(
        !c.backlog
            .iter()
            .any(|f| matches!(f, Frame::Bin(m, _) if m.has("process_id"))),
        "the wedged process produced more: {:?}",
        c.backlog
    );
    let (ok, status) = c
        .request(&[
            ("type", s("query")),
            ("subject", s("model_status")),
            ("record", s("")),
        ])
        .await;
    assert!(
        ok && status.contains(r#""default.kv_pages_used":1"#),
        "{status}"
    );
    assert_eq!(
        c.request(&[("type", s("terminate_process")), ("process_id", s(&pid))])
            .await,
        (true, "Process terminated".into())
    );
    assert_eq!(c.event(&pid).await.str("value"), "Signal");
}

#[tokio::test]
async fn kill_connections_drops_sockets_and_their_processes() {
    let sim = sim();
    let mut c = Client::connect(&sim).await;
    let sleeper = installed(&sim, &mut c, "sleeper").await;
    c.start(&sleeper, "{}").await;
    sim.kill_connections();
    let ended = tokio::time::timeout(TIMEOUT, async {
        loop {
            match c.ws.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(_)) => continue,
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the socket was not dropped");
    assert_eq!(sim.process_count(), 0);
}

/// The binary: `pie-sim --protocol 0.5` prints its /v1/ws URL first and serves 0.5 there;
/// `--protocol 2026-01` (the default) is the January-2026 simulator.
#[tokio::test]
async fn binary_protocol_switch() {
    use std::io::BufRead;
    let start = |extra: &[&str]| {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_pie-sim"))
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("pie-sim starts");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap()
            .to_owned();
        (child, url)
    };
    let (mut child, url) = start(&["--protocol", "0.5", "--fault", "turn-done=off"]);
    assert!(
        url.starts_with("ws://127.0.0.1:") && url.ends_with("/v1/ws"),
        "{url}"
    );
    let addr: std::net::SocketAddr = url["ws://".len()..url.len() - "/v1/ws".len()]
        .parse()
        .unwrap();
    assert_eq!(upgrade(addr, "/v1/ws", None).await.err(), Some(401));
    let mut c = Client {
        ws: upgrade(addr, "/v1/ws", Some("cli/test")).await.unwrap(),
        next: 0,
        backlog: VecDeque::new(),
    };
    c.ping().await;
    c.expect_silence(Duration::from_millis(200)).await; // turn-done=off took effect
    child.kill().unwrap();
    child.wait().unwrap();

    let (mut child, url) = start(&["--protocol", "2026-01"]);
    assert!(!url.ends_with("/v1/ws"), "{url}");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn injected_frames_reach_every_connection() {
    let sim = sim();
    let mut c = Client::connect(&sim).await;
    c.ping().await;
    while sim.connection_count() != 1 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    sim.inject(pie_sim::v05::Inject::Ping(b"hi".to_vec()));
    sim.inject(pie_sim::v05::Inject::Text(
        r#"{"type":"error","message":"injected"}"#.into(),
    ));
    let orphan = pie_sim::v05::codec::process_event(
        "00000000-0000-4000-8000-000000000000",
        "stdout",
        "orphan",
    );
    sim.inject(pie_sim::v05::Inject::Binary(orphan.clone()));
    let t = c
        .wait(
            "injected text",
            |f| matches!(f, Frame::Text(t) if t.contains("injected")),
        )
        .await;
    assert!(matches!(t, Frame::Text(_)));
    let b = c
        .wait(
            "injected event",
            |f| matches!(f, Frame::Bin(_, raw) if *raw == orphan),
        )
        .await;
    assert!(matches!(b, Frame::Bin(m, _) if m.str("value") == "orphan"));
    c.ping().await;
}

/// A python program of another name runs as a test inferlet when its source says so; one
/// without the line launches and fails with the simulator's explanation.
#[tokio::test]
async fn directive_line_and_programs_the_simulator_cannot_run() {
    let sim = sim();
    let mut c = Client::connect(&sim).await;
    let src = b"# pie-sim: behaves-as chat-echo\nasync def main(greeting='ready'): ...\n";
    let (ok, _) = c.install(src, &manifest("my-chat", "1.2.3"), 1024).await;
    assert!(ok);
    let pid = c.start("my-chat", "{}").await;
    assert_eq!(c.event(&pid).await.str("value"), "ready");
    assert!(c.list().await.contains(r#""program":"my-chat@1.2.3""#));

    let (ok, _) = c
        .install(b"def main(): pass\n", &manifest("other", "0.1.0"), 1024)
        .await;
    assert!(ok);
    let pid = c.start("other@0.1.0", "{}").await;
    let evs = kinds(&c.events(&pid).await);
    assert_eq!(evs.len(), 1);
    assert!(
        evs[0].0 == "error" && evs[0].1.contains("pie-sim cannot run other@0.1.0"),
        "{evs:?}"
    );
}
