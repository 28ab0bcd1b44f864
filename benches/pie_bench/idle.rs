//! Cost of an idle client: threads started and memory, in a fresh child process per API.
//! The C API starts its hidden runtime with the first client; a Rust application brings its
//! own runtime (created before the baseline here), so the core itself starts no thread.

use crate::report::Report;
use crate::{capi, core, field, run_child, sim::Sim, sys, Ctx};
use std::time::Duration;

pub fn run(_ctx: &Ctx, rep: &mut Report) -> Result<(), String> {
    let sim = Sim::start()?;
    for api in ["c", "rust"] {
        let kv = run_child(&["idle", &sim.url, api])?;
        let label = if api == "c" { "C API" } else { "Rust core" };
        let threads = field(&kv, "threads_started")?;
        let rss = field(&kv, "rss_delta_kib")?;
        let second = field(&kv, "second_client_kib")?;
        let note = if api == "c" {
            format!(
                "threads after pie_client_free: {:+.0} vs before connecting",
                field(&kv, "threads_after_free")?
            )
        } else {
            "the application's own 2-worker runtime exists before the baseline".to_string()
        };
        rep.row(
            "idle",
            format!("{label}: threads started by the first connected client"),
            format!("{threads:.0}"),
            note,
        );
        rep.row(
            "idle",
            format!("{label}: RSS of the first / a second connected idle client"),
            format!("{:.0} KiB / {:.0} KiB", rss, second),
            "first includes one-time runtime and TLS setup",
        );
    }
    Ok(())
}

pub fn child(url: &str, api: &str) -> Result<(), String> {
    let settle = || std::thread::sleep(Duration::from_millis(200));
    match api {
        "c" => {
            let (t0, r0) = (sys::threads(), sys::rss_kib());
            let c = capi::connect(url, true)?;
            settle();
            let (t1, r1) = (sys::threads(), sys::rss_kib());
            let c2 = capi::connect(url, true)?;
            settle();
            let r2 = sys::rss_kib();
            drop(c2);
            drop(c);
            settle();
            let t3 = sys::threads();
            println!("threads_started={}", t1 as i64 - t0 as i64);
            println!("rss_delta_kib={}", r1 as i64 - r0 as i64);
            println!("second_client_kib={}", r2 as i64 - r1 as i64);
            println!("threads_after_free={}", t3 as i64 - t0 as i64);
        }
        "rust" => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            // Let the workers start before the baseline.
            rt.block_on(async { tokio::time::sleep(Duration::from_millis(50)).await });
            let (t0, r0) = (sys::threads(), sys::rss_kib());
            let c = rt.block_on(core::connect(url, true))?;
            settle();
            let (t1, r1) = (sys::threads(), sys::rss_kib());
            let c2 = rt.block_on(core::connect(url, true))?;
            settle();
            let r2 = sys::rss_kib();
            rt.block_on(async {
                let _ = c2.close().await;
                let _ = c.close().await;
            });
            println!("threads_started={}", t1 as i64 - t0 as i64);
            println!("rss_delta_kib={}", r1 as i64 - r0 as i64);
            println!("second_client_kib={}", r2 as i64 - r1 as i64);
        }
        _ => return Err(format!("unknown api {api}")),
    }
    Ok(())
}
