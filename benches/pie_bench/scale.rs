//! Scale: N concurrent instances on one connection. Each instance waits for one message, echoes
//! it to stdout, then writes K short lines and completes. We measure the launch rate (the client
//! keeps one launch in flight by default: PROTOCOL.md §16's server deadlock), the client's RSS
//! growth per idle instance, and events/s once every instance is signalled. Runs in a fresh
//! child process per API so RSS is not disturbed by the other sections.

use crate::report::{per_sec, Report};
use crate::{capi, core, field, run_child, sim::Sim, sys, Ctx};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SCRIPT: &str = "recv\nbehaviour flood";

pub fn run(ctx: &Ctx, rep: &mut Report) -> Result<(), String> {
    let n: usize = if ctx.quick { 1_000 } else { 10_000 };
    let k: usize = 10;
    for api in ["c", "rust"] {
        // A fresh simulator each time: 10,000 finished instances are not free for it either.
        let sim = Sim::start()?;
        let kv = run_child(&["scale", &sim.url, api, &n.to_string(), &k.to_string()])?;
        let label = if api == "c" { "C API" } else { "Rust core" };
        let launch = field(&kv, "launch_secs")?;
        let per_inst = field(&kv, "per_instance_bytes")?;
        let events = field(&kv, "events")?;
        let ev_secs = field(&kv, "event_secs")?;
        rep.row(
            "scale",
            format!("{label}: launch {n} instances one after another (1 in flight)"),
            format!("{:.2} s", launch),
            format!("{} launches/s", per_sec(n as f64 / launch)),
        );
        rep.row(
            "scale",
            format!("{label}: client RSS growth per idle instance"),
            format!("{:.0} B", per_inst),
            format!(
                "RSS {:.1} → {:.1} MiB for {n} instances",
                field(&kv, "rss_base_kib")? / 1024.0,
                field(&kv, "rss_after_kib")? / 1024.0
            ),
        );
        rep.row(
            "scale",
            format!("{label}: events/s with {n} instances streaming at once"),
            per_sec(events / ev_secs),
            format!(
                "{events:.0} events ({} per instance) in {ev_secs:.2} s, after signalling all",
                k + 2
            ),
        );
        rep.check(
            format!("< 2 KiB client memory per idle instance ({label})"),
            format!("{per_inst:.0} B"),
            per_inst < 2048.0,
        );
    }
    Ok(())
}

pub fn child(url: &str, api: &str, n: usize, k: usize) -> Result<(), String> {
    let program = pie_sim::script_program(SCRIPT);
    let args = ["--count".to_string(), k.to_string()];
    let expected = (n * (k + 2)) as u64;
    match api {
        "c" => {
            let c = capi::connect(url, true)?;
            let hash = capi::upload(&c, &program)?;
            let argv: Vec<&str> = args.iter().map(String::as_str).collect();
            // One instance first so one-time allocations land in the baseline.
            let warm = capi::launch(&c, &hash, &argv)?;
            let base = sys::rss_kib();
            let t = Instant::now();
            let mut insts = Vec::with_capacity(n);
            for _ in 0..n {
                insts.push(capi::launch(&c, &hash, &argv)?);
            }
            let launch = t.elapsed();
            let after = sys::rss_kib();
            let sink = Arc::new(capi::CbSink::default());
            for i in &insts {
                capi::set_callback(i, &sink)?;
            }
            let t = Instant::now();
            for i in &insts {
                capi::send(i, c"go")?;
            }
            let bad = sink.wait_finals(n as u64, Duration::from_secs(300))?;
            let ev_secs = t.elapsed();
            let events = sink.events.load(Relaxed);
            if bad != 0 || events != expected {
                return Err(format!(
                    "{events} events (expected {expected}), {bad} abnormal ends"
                ));
            }
            print_results(n, launch, base, after, events, ev_secs);
            drop(insts);
            drop(warm);
            Ok(())
        }
        "rust" => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async {
                let c = core::connect(url, true).await?;
                let hash = c
                    .upload_program(&program)
                    .await
                    .map_err(|e| e.to_string())?;
                let warm = c
                    .launch_instance(&hash, args.to_vec(), false)
                    .await
                    .map_err(|e| e.to_string())?;
                let base = sys::rss_kib();
                let t = Instant::now();
                let mut insts = Vec::with_capacity(n);
                for _ in 0..n {
                    let i = c
                        .launch_instance(&hash, args.to_vec(), false)
                        .await
                        .map_err(|e| e.to_string())?;
                    insts.push(Arc::new(i));
                }
                let launch = t.elapsed();
                let after = sys::rss_kib();
                let tasks: Vec<_> = insts
                    .iter()
                    .map(|i| {
                        let i = i.clone();
                        tokio::spawn(async move {
                            let mut got = 0u64;
                            loop {
                                let ev = i.recv().await.map_err(|e| e.to_string())?;
                                got += 1;
                                if ev.is_terminal() {
                                    return Ok::<_, String>(got);
                                }
                            }
                        })
                    })
                    .collect();
                let t = Instant::now();
                for i in &insts {
                    i.send("go").await.map_err(|e| e.to_string())?;
                }
                let mut events = 0;
                for task in tasks {
                    events += task.await.map_err(|e| e.to_string())??;
                }
                let ev_secs = t.elapsed();
                if events != expected {
                    return Err(format!("{events} events (expected {expected})"));
                }
                print_results(n, launch, base, after, events, ev_secs);
                drop(warm);
                c.close().await.map_err(|e| e.to_string())
            })
        }
        _ => Err(format!("unknown api {api}")),
    }
}

fn print_results(n: usize, launch: Duration, base: u64, after: u64, events: u64, ev: Duration) {
    println!("launch_secs={}", launch.as_secs_f64());
    println!("rss_base_kib={base}");
    println!("rss_after_kib={after}");
    println!(
        "per_instance_bytes={}",
        after.saturating_sub(base) as f64 * 1024.0 / n as f64
    );
    println!("events={events}");
    println!("event_secs={}", ev.as_secs_f64());
}
