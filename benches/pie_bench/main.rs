//! libpie benchmarks: the C API and the Rust core against the simulator (`pie-sim`, release
//! build, in its own process) over loopback, side by side with raw ceilings (minimal clients
//! that only do the I/O: `rawping` for request/reply, a bare WebSocket reader for streaming).
//!
//! `cargo bench --bench pie_bench [-- --quick] [-- --only SECTION,...]` (or scripts/bench.sh).
//! Sections: ping, first-output, streaming, upload, scale, idle. Prints Markdown tables of
//! absolute figures, ratios and PASS/MISS per target. Memory figures come from fresh child
//! processes (this binary re-executed with `--child MODE ...`), so they are not disturbed by
//! what the other measurements allocated.

mod alloc;
mod capi;
mod core;
mod first_output;
mod idle;
mod ping;
mod placement;
mod rawping;
mod report;
mod scale;
mod shipped;
mod sim;
mod stackping;
mod streaming;
mod sys;
mod upload;

use std::time::Instant;

#[global_allocator]
static GLOBAL: alloc::Counting = alloc::Counting;

pub const SECTIONS: &[&str] = &[
    "ping",
    "first-output",
    "streaming",
    "upload",
    "scale",
    "idle",
];

/// Settings shared by the sections.
pub struct Ctx {
    pub quick: bool,
    /// The runtime a Rust application would bring: multi-threaded, two workers (as many as the
    /// C API's hidden runtime has).
    pub rt: tokio::runtime::Runtime,
}

fn main() {
    alloc::set_category(alloc::MAIN);
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        std::process::exit(child(&args[1..]));
    }
    let quick = args.iter().any(|a| a == "--quick");
    let only: Option<Vec<String>> = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(|s| s.split(',').map(str::to_string).collect());
    if let Some(o) = &only {
        if let Some(bad) = o.iter().find(|s| !SECTIONS.contains(&s.as_str())) {
            eprintln!("unknown section {bad}; sections: {}", SECTIONS.join(", "));
            std::process::exit(2);
        }
    }
    let want = |s: &str| only.as_ref().map_or(true, |o| o.iter().any(|x| x == s));

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("app-runtime")
        .enable_all()
        .build()
        .expect("tokio runtime");
    let ctx = Ctx { quick, rt };
    let mut rep = report::Report::default();
    let started = Instant::now();
    eprintln!(
        "pie_bench{}: simulator {}",
        if quick { " --quick" } else { "" },
        sim::sim_binary().display()
    );

    type Section = fn(&Ctx, &mut report::Report) -> Result<(), String>;
    let sections: [(&str, Section); 6] = [
        ("ping", ping::run),
        ("first-output", first_output::run),
        ("streaming", streaming::run),
        ("upload", upload::run),
        ("scale", scale::run),
        ("idle", idle::run),
    ];
    for (name, f) in sections {
        if !want(name) {
            continue;
        }
        eprintln!("== {name} ({:.1} s)", started.elapsed().as_secs_f64());
        if let Err(e) = f(&ctx, &mut rep) {
            rep.fail(name, e);
        }
    }
    eprintln!("== done in {:.1} s", started.elapsed().as_secs_f64());
    println!();
    rep.print();
    println!();
    println!(
        "mode: {}; wall time {:.1} s",
        if quick { "quick" } else { "full" },
        started.elapsed().as_secs_f64()
    );
    // Read by scripts/bench.sh --check.
    println!();
    println!("stable targets missed: {}", rep.stable_misses());
    if !rep.failures.is_empty() {
        std::process::exit(1);
    }
}

/// Child modes (fresh process for memory measurements). Prints `key=value` lines.
fn child(args: &[String]) -> i32 {
    let r = match args {
        [mode, url, api, rest @ ..] if mode == "upload-rss" => {
            upload::child_rss(url, api, rest.first().and_then(|s| s.parse().ok()))
        }
        [mode, url, api, n, k] if mode == "scale" => match (n.parse(), k.parse()) {
            (Ok(n), Ok(k)) => scale::child(url, api, n, k),
            _ => Err("scale: bad numbers".into()),
        },
        [mode, url, api] if mode == "idle" => idle::child(url, api),
        _ => Err(format!("bad child arguments {args:?}")),
    };
    match r {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("child {args:?}: {e}");
            1
        }
    }
}

/// Runs this binary as a child with `args`; returns its `key=value` output lines.
pub fn run_child(args: &[&str]) -> Result<Vec<(String, String)>, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = std::process::Command::new(exe)
        .arg("--child")
        .args(args)
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run child: {e}"))?;
    if !out.status.success() {
        return Err(format!("child {args:?} failed ({})", out.status));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

/// A numeric value from a child's output.
pub fn field(kv: &[(String, String)], key: &str) -> Result<f64, String> {
    kv.iter()
        .find(|(k, _)| k == key)
        .and_then(|(_, v)| v.parse().ok())
        .ok_or_else(|| format!("child output lacks {key}"))
}
