//! Upload: a 64 MiB program through the Rust core and the C API (hashing + chunking +
//! sending, until the server's reply), against a raw WebSocket client sending the same chunk
//! frames, pre-encoded, and blake3 hashing alone. Every upload is a distinct program so the
//! server does the same work each time. The client's peak RSS growth during an upload is
//! measured in a fresh child process.

use crate::report::{pct, Report};
use crate::streaming::raw_connect;
use crate::{capi, core, run_child, sim::Sim, sys, Ctx};
use futures_util::{SinkExt, StreamExt};
use pie::wire::{self, ClientMessage, ServerMessage};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

const MIB: usize = 1 << 20;

/// A simulated program of about `size` bytes: the preamble, a script section, and a custom
/// section of pseudo-random padding derived from `seed` (distinct programs, all pages touched).
pub fn make_program(size: usize, seed: u64) -> Vec<u8> {
    let head = pie_sim::script_program("complete uploaded");
    let name = b"bench-pad";
    let payload = size.saturating_sub(head.len() + name.len() + 12).max(16);
    let body = 1 + name.len() + payload; // name length fits one LEB128 byte
    let mut out = Vec::with_capacity(head.len() + body + 12);
    out.extend_from_slice(&head);
    out.push(0);
    let mut v = body;
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            break;
        }
        out.push(b | 0x80);
    }
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let start = out.len();
    out.resize(start + payload, 0);
    for chunk in out[start..].chunks_mut(8) {
        // xorshift64: cheap, non-zero, incompressible enough.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let bytes = x.to_le_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
    out
}

fn mbps(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / MIB as f64 / d.as_secs_f64()
}

pub fn run(ctx: &Ctx, rep: &mut Report) -> Result<(), String> {
    let size = if ctx.quick { 16 * MIB } else { 64 * MIB };
    let reps = if ctx.quick { 1 } else { 5 };
    let sim = Sim::start()?;
    let mut seed = 1u64;
    let mut next = || {
        seed += 1;
        make_program(size, seed)
    };

    // blake3 alone (the hash libpie computes: hex of blake3).
    let p = next();
    let mut hash_best = Duration::MAX;
    for _ in 0..reps.max(2) {
        let t = Instant::now();
        std::hint::black_box(pie::hash_blob(&p));
        hash_best = hash_best.min(t.elapsed());
    }
    // What the blocking C call does before anything else: copy the host's buffer.
    let mut copy_best = Duration::MAX;
    for _ in 0..reps.max(2) {
        let t = Instant::now();
        let v = std::hint::black_box(p.to_vec());
        copy_best = copy_best.min(t.elapsed());
        drop(v);
    }
    drop(p);

    let c = capi::connect(&sim.url, true)?;
    let rc = ctx.rt.block_on(core::connect(&sim.url, true))?;
    let mut encode_best = Duration::MAX;
    let (mut raw_best, mut rust_best, mut task_best, mut c_best) =
        (Duration::MAX, Duration::MAX, Duration::MAX, Duration::MAX);
    for _ in 0..reps {
        // Raw: frames encoded before the clock starts.
        let p = next();
        let hash = pie::hash_blob(&p);
        let total = wire::chunk_count(p.len());
        let t = Instant::now();
        let frames: Vec<Vec<u8>> = wire::chunks(&p)
            .map(|(i, chunk)| {
                wire::encode_client(&ClientMessage::UploadProgram {
                    corr_id: 7,
                    program_hash: hash.clone(),
                    chunk_index: i,
                    total_chunks: total,
                    chunk_data: chunk.to_vec(),
                })
            })
            .collect();
        encode_best = encode_best.min(t.elapsed());
        drop(p);
        let d = ctx.rt.block_on(raw_upload(&sim.url, frames))?;
        raw_best = raw_best.min(d);

        let p = next();
        let t = Instant::now();
        ctx.rt
            .block_on(rc.upload_program(&p))
            .map_err(|e| format!("Rust core upload: {e}"))?;
        rust_best = rust_best.min(t.elapsed());
        drop(p);

        // The same call awaited in a task on the application's runtime.
        let p = std::sync::Arc::new(next());
        let (client, prog) = (rc.clone(), p.clone());
        let task = ctx.rt.spawn(async move {
            let t = Instant::now();
            client.upload_program(&prog).await.map(|_| t.elapsed())
        });
        let d = ctx
            .rt
            .block_on(task)
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("Rust core upload in a task: {e}"))?;
        task_best = task_best.min(d);
        drop(p);

        let p = next();
        let t = Instant::now();
        capi::upload(&c, &p)?;
        c_best = c_best.min(t.elapsed());
    }
    let mib = size / MIB;
    let raw = mbps(size, raw_best);
    rep.row(
        "upload",
        format!("blake3 hash of {mib} MiB (pie::hash_blob), MB/s"),
        format!("{:.0}", mbps(size, hash_best)),
        format!("{:.1} ms", hash_best.as_secs_f64() * 1e3),
    );
    rep.row(
        "upload",
        format!("copy of {mib} MiB into a fresh buffer (what pie_client_upload_program did before its fix)"),
        format!("{:.1} ms", copy_best.as_secs_f64() * 1e3),
        "page faults + memcpy",
    );
    rep.row(
        "upload",
        format!("chunk + encode {mib} MiB into upload_program frames (copy + wire::encode_client)"),
        format!("{:.1} ms", encode_best.as_secs_f64() * 1e3),
        "client work besides hashing that the raw ceiling does not do",
    );
    rep.row(
        "upload",
        format!("raw WebSocket, pre-encoded chunk frames, {mib} MiB, MB/s (best of {reps})"),
        format!("{raw:.0}"),
        format!(
            "{:.1} ms incl. the server's reply",
            raw_best.as_secs_f64() * 1e3
        ),
    );
    // Targets: the C API, and the Rust core as a Rust application calls it (in a task). The
    // block_on row shows what a future driven from a host thread costs (see BENCHMARKS.md).
    for (name, d, target) in [
        ("Rust core upload_program in a task", task_best, true),
        (
            "Rust core upload_program via block_on from a host thread",
            rust_best,
            false,
        ),
        ("C API pie_client_upload_program", c_best, true),
    ] {
        let r = mbps(size, d);
        rep.row(
            "upload",
            format!("{name}, {mib} MiB, MB/s (best of {reps})"),
            format!("{r:.0}"),
            format!("{:.1} ms; {} of raw", d.as_secs_f64() * 1e3, pct(r / raw)),
        );
        if target {
            rep.check_noisy(
                format!("upload ≥ 80 % of raw: {name}"),
                pct(r / raw),
                r >= 0.8 * raw,
            );
        }
    }
    rep.reference(
        "upload",
        "uploading a new 32 MiB program (dominated by the server compiling it)",
        "≈ 176 ms",
    );
    drop(c);
    ctx.rt.block_on(rc.close()).map_err(|e| e.to_string())?;

    // Peak RSS growth, fresh processes.
    let size_mib = (size / MIB).to_string();
    for api in ["rust", "c"] {
        let kv = run_child(&["upload-rss", &sim.url, api, &size_mib])?;
        let growth = crate::field(&kv, "growth_kib")?;
        let base = crate::field(&kv, "base_kib")?;
        let prog = crate::field(&kv, "program_kib")?;
        let limit = prog + 8.0 * 1024.0;
        let label = if api == "c" { "C API" } else { "Rust core" };
        rep.row(
            "upload",
            format!("{label}: peak RSS growth during a {mib} MiB upload"),
            format!("{:.1} MiB", growth / 1024.0),
            format!(
                "program {:.1} MiB already in memory; RSS before {:.1} MiB",
                prog / 1024.0,
                base / 1024.0
            ),
        );
        rep.check(
            format!("upload peak RSS growth ≤ program + 8 MiB ({label})"),
            format!("{:.1} MiB ≤ {:.1} MiB", growth / 1024.0, limit / 1024.0),
            growth <= limit,
        );
    }
    Ok(())
}

async fn raw_upload(url: &str, frames: Vec<Vec<u8>>) -> Result<Duration, String> {
    let mut ws = raw_connect(url).await?;
    let t = Instant::now();
    for f in frames {
        ws.feed(Message::Binary(f.into()))
            .await
            .map_err(|e| e.to_string())?;
    }
    ws.flush().await.map_err(|e| e.to_string())?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Binary(b))) => match wire::decode_server(&b) {
                Ok(ServerMessage::Response {
                    corr_id: 7,
                    successful,
                    result,
                }) => {
                    if !successful {
                        return Err(format!("raw upload refused: {result}"));
                    }
                    break;
                }
                _ => continue,
            },
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("raw upload: connection ended".into()),
        }
    }
    let d = t.elapsed();
    let _ = ws.close(None).await;
    Ok(d)
}

/// Child: peak RSS growth of one upload. The program is built first (the host's own copy),
/// then VmHWM is reset and the upload runs.
pub fn child_rss(url: &str, api: &str, size_mib: Option<usize>) -> Result<(), String> {
    let size = size_mib.unwrap_or(64) * MIB;
    let program = make_program(size, 0xfeed_0000 + size as u64 + api.len() as u64);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    enum Conn {
        C(capi::CClient),
        Rust(pie::Client),
    }
    let conn = match api {
        "c" => Conn::C(capi::connect(url, true)?),
        "rust" => Conn::Rust(rt.block_on(core::connect(url, true))?),
        _ => return Err(format!("unknown api {api}")),
    };
    // A small upload first, so one-time allocations (buffers, runtime internals) are in the
    // baseline rather than counted as upload growth.
    let warm = make_program(64 * 1024, 7);
    match &conn {
        Conn::C(c) => drop(capi::upload(c, &warm)?),
        Conn::Rust(c) => drop(
            rt.block_on(c.upload_program(&warm))
                .map_err(|e| e.to_string())?,
        ),
    }
    drop(warm);
    let base = sys::rss_kib();
    let reset = sys::reset_hwm();
    match &conn {
        Conn::C(c) => drop(capi::upload(c, &program)?),
        Conn::Rust(c) => drop(
            rt.block_on(c.upload_program(&program))
                .map_err(|e| e.to_string())?,
        ),
    }
    let hwm = sys::status_kib("VmHWM");
    println!("base_kib={base}");
    println!("hwm_kib={hwm}");
    println!("growth_kib={}", hwm.saturating_sub(base));
    println!("program_kib={}", program.len() / 1024);
    println!("hwm_reset={}", reset as u8);
    if !reset {
        return Err("cannot reset VmHWM (/proc/self/clear_refs)".into());
    }
    Ok(())
}
