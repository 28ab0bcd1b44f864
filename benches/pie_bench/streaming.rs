//! Event streaming: one instance of the simulator's `flood` inferlet writes N short Stdout
//! frames as fast as it can; we measure events/s delivered to the host through the C API
//! (polled recv, callbacks), the Rust core, and a raw client (`rawping::RawClient`: one thread,
//! one blocking socket, 64 KiB buffered reads, no WebSocket library) that only reads and counts
//! the same frames (the ceiling of simulator + loopback + this machine). Client CPU
//! time per event and allocations per event (counting allocator) are recorded alongside.

use crate::alloc::{self, Counts};
use crate::report::{pct, per_sec, Report};
use crate::{capi, core, sim::Sim, sys, Ctx};
use futures_util::{SinkExt, StreamExt};
use pie::ffi::PieEventKind;
use pie::wire::{self, ClientMessage, ServerMessage};
use pie::InstanceEvent;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

#[derive(Clone, Copy)]
pub struct Run {
    pub events: u64,
    pub secs: f64,
    pub cpu: Duration,
    pub sim_cpu: Duration,
    pub switches: u64,
    pub allocs: Counts,
}

impl Run {
    fn rate(&self) -> f64 {
        self.events as f64 / self.secs
    }
    fn cpu_per_event_us(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.events as f64
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Path {
    Raw,
    Rust,
    RustTask,
    CPoll,
    CPollDrain,
    CCallback,
}

impl Path {
    fn key(self) -> &'static str {
        match self {
            Path::Raw => "raw",
            Path::Rust => "rust",
            Path::RustTask => "rusttask",
            Path::CPoll => "cpoll",
            Path::CPollDrain => "cdrain",
            Path::CCallback => "ccb",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Path::Raw => "raw client: one thread, blocking socket, counts Stdout frames (ceiling)",
            Path::Rust => "Rust core, recv awaited from a host thread (block_on)",
            Path::RustTask => "Rust core, recv awaited in a task on the app runtime",
            Path::CPoll => "C API polled (pie_instance_recv, -1)",
            Path::CPollDrain => "C API polled, recv(0) until empty, then recv(-1)",
            Path::CCallback => "C API callbacks (pie_instance_set_callback)",
        }
    }
}

pub fn run(ctx: &Ctx, rep: &mut Report) -> Result<(), String> {
    let count: u64 = if ctx.quick { 100_000 } else { 1_000_000 };
    let reps = if ctx.quick { 2 } else { 5 };
    let sim = Sim::start()?;
    let program = pie_sim::script_program("behaviour flood");
    let hash = ctx.rt.block_on(async {
        let c = core::connect(&sim.url, true).await?;
        let h = c
            .upload_program(&program)
            .await
            .map_err(|e| e.to_string())?;
        c.close().await.map_err(|e| e.to_string())?;
        Ok::<_, String>(h)
    })?;
    let all = [
        Path::Raw,
        Path::Rust,
        Path::RustTask,
        Path::CPoll,
        Path::CPollDrain,
        Path::CCallback,
    ];
    // PIE_BENCH_STREAM_PATHS=raw,rust,cpoll,cdrain,ccb restricts the paths (for profiling).
    let only = std::env::var("PIE_BENCH_STREAM_PATHS").ok();
    let paths: Vec<Path> = all
        .into_iter()
        .filter(|p| {
            only.as_deref()
                .map_or(true, |o| o.split(',').any(|x| x == p.key()))
        })
        .collect();
    // Throughput on this shared 2-core machine depends on what else runs, so every path runs
    // `reps` times, interleaved, and the best run counts (client CPU per event is the steadier
    // figure and is shown too).
    let mut best: Vec<(Path, Run)> = Vec::new();
    for _ in 0..reps {
        for &p in &paths {
            let r = one(ctx, &sim, &hash, count, p)?;
            match best.iter_mut().find(|(q, _)| *q == p) {
                Some((_, b)) if b.rate() >= r.rate() => {}
                Some((_, b)) => *b = r,
                None => best.push((p, r)),
            }
        }
    }
    let get = |p: Path| best.iter().find(|(q, _)| *q == p).map(|(_, r)| *r);
    let raw_rate = get(Path::Raw).map(|r| r.rate());
    for (p, r) in &best {
        let n = r.events as f64;
        rep.row(
            "streaming",
            format!("{} — events/s (best of {reps}, {count} events)", p.label()),
            per_sec(r.rate()),
            format!(
                "{} of raw; client CPU {:.2} µs/event, simulator CPU {:.2} µs/event; \
                 client context switches/event {:.3}; \
                 allocations/event: network threads {:.2}, consumer thread {:.2}",
                raw_rate.map_or("-".to_string(), |raw| pct(r.rate() / raw)),
                r.cpu_per_event_us(),
                r.sim_cpu.as_secs_f64() * 1e6 / n,
                r.switches as f64 / n,
                r.allocs.of(alloc::NETWORK) as f64 / n,
                (r.allocs.of(alloc::MAIN) + r.allocs.of(alloc::CALLBACK)) as f64 / n,
            ),
        );
    }
    rep.reference(
        "streaming",
        "100,000 short Stdout lines to a minimal client, frames/s",
        "370,000–400,000",
    );
    decode_allocations(rep);
    let (Some(raw), Some(rust), Some(rust_task), Some(cpoll), Some(ccb)) = (
        get(Path::Raw),
        get(Path::Rust),
        get(Path::RustTask),
        get(Path::CPoll),
        get(Path::CCallback),
    ) else {
        return Ok(()); // a restricted (profiling) run: no targets
    };
    for (p, r) in [
        (Path::RustTask, rust_task),
        (Path::CPoll, cpoll),
        (Path::CCallback, ccb),
    ] {
        rep.check_noisy(
            format!("streaming ≥ 50 % of raw WebSocket: {}", p.label()),
            pct(r.rate() / raw.rate()),
            r.rate() >= 0.5 * raw.rate(),
        );
    }
    // The ceiling is on what the client controls: its CPU per event. Events/s is bound by the
    // simulator (≈ 0.8 µs of its CPU per event), whose writes batch better when a client reads
    // in bursts, so a library path may exceed the raw client's events/s without doing less work
    // (docs/BENCHMARKS.md, "Raw ceilings").
    let cheapest = [rust, rust_task, cpoll, ccb]
        .iter()
        .map(|r| r.cpu_per_event_us())
        .fold(f64::INFINITY, f64::min);
    rep.check_noisy(
        "streaming: the raw ceiling holds (raw client CPU/event ≤ every library path's)",
        format!(
            "raw {:.2} µs vs cheapest library path {:.2} µs",
            raw.cpu_per_event_us(),
            cheapest
        ),
        raw.cpu_per_event_us() <= cheapest,
    );
    for (p, r) in [(Path::CPoll, cpoll), (Path::CCallback, ccb)] {
        let slower = 1.0 - r.rate() / rust.rate();
        rep.check_noisy(
            // Like for like: the C API is called from host threads, so it is compared with
            // the Rust core awaited from a host thread.
            format!(
                "streaming: {} ≤ 5 % slower than Rust core from a host thread",
                p.label()
            ),
            format!(
                "{} vs {} events/s ({:+.1} %); client CPU/event {:.2} vs {:.2} µs",
                per_sec(r.rate()),
                per_sec(rust.rate()),
                -slower * 100.0,
                r.cpu_per_event_us(),
                rust.cpu_per_event_us(),
            ),
            slower <= 0.05,
        );
    }
    // Callback path: allocations per event, all threads. tungstenite allocates twice per frame
    // and the event text is one allocation; anything beyond those 3.00 is overhead of libpie.
    // (The raw client decodes in place into one reused buffer: about 0 per event.)
    let n = ccb.events as f64;
    let cb_thread = ccb.allocs.of(alloc::CALLBACK) as f64 / n;
    let total = ccb.allocs.total() as f64 / n;
    let raw_total = raw.allocs.total() as f64 / raw.events as f64;
    rep.row(
        "streaming",
        "C callback path: allocations per event (all threads / callback thread)",
        format!("{total:.2} / {cb_thread:.2}"),
        format!(
            "raw client: {raw_total:.2}/event (reused buffer, borrowed decode); Rust core: {:.2}/event",
            rust.allocs.total() as f64 / rust.events as f64
        ),
    );
    rep.check(
        "callback path ≤ 3.00 allocations per event (tungstenite 2 + the text 1)",
        format!("{total:.2} allocations/event; {cb_thread:.2} on the callback thread"),
        // Printed with two decimals: 3.004 shows as 3.00 and passes.
        total < 3.005,
    );
    Ok(())
}

/// Where the client's per-event allocations come from, and what decoding costs: one
/// streaming_output frame through `wire::decode_server`.
fn decode_allocations(rep: &mut Report) {
    let frame = wire::encode_server(&ServerMessage::StreamingOutput {
        instance_id: "0b7d7c1e-5f44-4a63-9a55-2f2d8c3c9a11".into(),
        output: wire::StreamingOutput::Stdout("12345\n".into()),
    });
    let (ok, counts) = alloc::counting(|| {
        let mut ok = true;
        for _ in 0..1000 {
            ok &= std::hint::black_box(wire::decode_server(&frame)).is_ok();
        }
        ok
    });
    let n = 200_000u32;
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(wire::decode_server(std::hint::black_box(&frame)).is_ok());
    }
    let per = t.elapsed() / n;
    if ok {
        rep.row(
            "streaming",
            "wire::decode_server of one streaming_output frame: allocations, time",
            format!(
                "{:.2}, {} ns",
                counts.total() as f64 / 1000.0,
                per.as_nanos()
            ),
            "allocations include the text (1) and the instance id (1)",
        );
    }
}

fn one(ctx: &Ctx, sim: &Sim, hash: &str, count: u64, path: Path) -> Result<Run, String> {
    let args = ["--count".to_string(), count.to_string()];
    let cpu0 = sys::cpu_time();
    let csw0 = sys::context_switches();
    let sim0 = sys::cpu_time_of(sim.pid());
    let (r, allocs) = match path {
        Path::Raw => {
            // Connect outside the measured region.
            let mut raw = crate::rawping::RawClient::connect(&sim.url)?;
            alloc::counting(|| raw.stream(hash, &args))
        }
        Path::Rust => {
            let c = ctx.rt.block_on(core::connect(&sim.url, true))?;
            let r = alloc::counting(|| {
                ctx.rt.block_on(async {
                    let t = Instant::now();
                    let inst = c
                        .launch_instance(hash, args.to_vec(), false)
                        .await
                        .map_err(|e| e.to_string())?;
                    let (mut n, mut bytes) = (0u64, 0usize);
                    loop {
                        let ev = inst.recv().await.map_err(|e| e.to_string())?;
                        if let InstanceEvent::Stdout(s) = &ev {
                            n += 1;
                            bytes += s.len();
                        }
                        if ev.is_terminal() {
                            break;
                        }
                    }
                    std::hint::black_box(bytes);
                    Ok::<_, String>((n, t.elapsed()))
                })
            });
            ctx.rt.block_on(c.close()).map_err(|e| e.to_string())?;
            r
        }
        Path::RustTask => {
            let c = ctx.rt.block_on(core::connect(&sim.url, true))?;
            let r = alloc::counting(|| {
                let c = c.clone();
                let hash = hash.to_string();
                let args = args.to_vec();
                let task = ctx.rt.spawn(async move {
                    let t = Instant::now();
                    let inst = c
                        .launch_instance(&hash, args, false)
                        .await
                        .map_err(|e| e.to_string())?;
                    let (mut n, mut bytes) = (0u64, 0usize);
                    loop {
                        let ev = inst.recv().await.map_err(|e| e.to_string())?;
                        if let InstanceEvent::Stdout(s) = &ev {
                            n += 1;
                            bytes += s.len();
                        }
                        if ev.is_terminal() {
                            break;
                        }
                    }
                    std::hint::black_box(bytes);
                    Ok::<_, String>((n, t.elapsed()))
                });
                ctx.rt.block_on(task).map_err(|e| e.to_string())?
            });
            ctx.rt.block_on(c.close()).map_err(|e| e.to_string())?;
            r
        }
        Path::CPoll => {
            let c = capi::connect(&sim.url, true)?;
            let argv: Vec<&str> = args.iter().map(String::as_str).collect();
            alloc::counting(|| {
                let t = Instant::now();
                let inst = capi::launch(&c, hash, &argv)?;
                let (mut n, mut bytes) = (0u64, 0usize);
                loop {
                    let ev = capi::recv(&inst, -1)
                        .map_err(|s| format!("recv: {s:?}"))?
                        .ok_or("recv timed out")?;
                    if ev.kind() == PieEventKind::Stdout {
                        n += 1;
                        bytes += ev.text_len();
                    }
                    if ev.is_terminal() {
                        break;
                    }
                }
                std::hint::black_box(bytes);
                Ok((n, t.elapsed()))
            })
        }
        Path::CPollDrain => {
            let c = capi::connect(&sim.url, true)?;
            let argv: Vec<&str> = args.iter().map(String::as_str).collect();
            alloc::counting(|| {
                let t = Instant::now();
                let inst = capi::launch(&c, hash, &argv)?;
                let (mut n, mut bytes) = (0u64, 0usize);
                loop {
                    // Non-blocking first: answered on this thread without the runtime.
                    let ev = match capi::recv(&inst, 0).map_err(|s| format!("recv: {s:?}"))? {
                        Some(ev) => ev,
                        None => capi::recv(&inst, -1)
                            .map_err(|s| format!("recv: {s:?}"))?
                            .ok_or("recv timed out")?,
                    };
                    if ev.kind() == PieEventKind::Stdout {
                        n += 1;
                        bytes += ev.text_len();
                    }
                    if ev.is_terminal() {
                        break;
                    }
                }
                std::hint::black_box(bytes);
                Ok((n, t.elapsed()))
            })
        }
        Path::CCallback => {
            let c = capi::connect(&sim.url, true)?;
            let argv: Vec<&str> = args.iter().map(String::as_str).collect();
            let sink = Arc::new(capi::CbSink::default());
            alloc::counting(|| {
                let t = Instant::now();
                let inst = capi::launch(&c, hash, &argv)?;
                capi::set_callback(&inst, &sink)?;
                let bad = sink.wait_finals(1, Duration::from_secs(120))?;
                if bad != 0 {
                    return Err("the stream ended abnormally".to_string());
                }
                let n = sink.stdout.load(std::sync::atomic::Ordering::Relaxed);
                Ok((n, t.elapsed()))
            })
        }
    };
    let (events, elapsed) = r?;
    if events != count {
        return Err(format!(
            "{path:?}: {events} Stdout events, expected {count}"
        ));
    }
    Ok(Run {
        events,
        secs: elapsed.as_secs_f64(),
        cpu: sys::cpu_time().saturating_sub(cpu0),
        sim_cpu: sys::cpu_time_of(sim.pid()).saturating_sub(sim0),
        switches: sys::context_switches().saturating_sub(csw0),
        allocs,
    })
}

type RawWs =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects and identifies (authentication is disabled on the simulator).
pub async fn raw_connect(url: &str) -> Result<RawWs, String> {
    // Reads of 4 KiB, as libpie's (src/client/transport.rs).
    let config = WebSocketConfig::default().read_buffer_size(4 * 1024);
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), false)
        .await
        .map_err(|e| format!("raw connect: {e}"))?;
    let ident = wire::encode_client(&ClientMessage::Identification {
        corr_id: 1,
        username: "bench".into(),
    });
    ws.send(Message::Binary(ident.into()))
        .await
        .map_err(|e| e.to_string())?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Binary(_))) => return Ok(ws),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("raw: connection ended during identification".into()),
        }
    }
}
