//! First output: from sending a launch to receiving the instance's first Stdout event, with the
//! client's TCP_QUICKACK re-arming off and on. The simulator, like the real server, leaves
//! Nagle on and writes the launch result and the first output as two small frames, so without
//! the mitigation the second waits for the client's delayed ACK (PROTOCOL.md §16).

use crate::report::{ms, Lat, Report};
use crate::{capi, core, sim::Sim, Ctx};
use pie::ffi::PieEventKind;
use pie::InstanceEvent;
use std::time::{Duration, Instant};

const SCRIPT: &str = "stdout first\\n\ncomplete done";

pub fn run(ctx: &Ctx, rep: &mut Report) -> Result<(), String> {
    let n = if ctx.quick { 8 } else { 30 };
    let sim = Sim::start()?;
    let program = pie_sim::script_program(SCRIPT);
    let mut medians = Vec::new();
    for quickack in [false, true] {
        // Rust core.
        let (first, after) = ctx.rt.block_on(async {
            let c = core::connect(&sim.url, quickack).await?;
            let hash = c
                .upload_program(&program)
                .await
                .map_err(|e| e.to_string())?;
            let (mut first, mut after) = (Vec::new(), Vec::new());
            for i in 0..n + 2 {
                let t = Instant::now();
                let inst = c
                    .launch_instance(&hash, vec![], false)
                    .await
                    .map_err(|e| e.to_string())?;
                let launched = t.elapsed();
                let mut got = None;
                loop {
                    let ev = inst.recv().await.map_err(|e| e.to_string())?;
                    if got.is_none() && matches!(ev, InstanceEvent::Stdout(_)) {
                        got = Some(t.elapsed());
                    }
                    if ev.is_terminal() {
                        break;
                    }
                }
                let got = got.ok_or("no Stdout event")?;
                if i >= 2 {
                    first.push(got);
                    after.push(got - launched);
                }
            }
            c.close().await.map_err(|e| e.to_string())?;
            Ok::<_, String>((first, after))
        })?;
        medians.push((
            "Rust core",
            quickack,
            report(rep, "Rust core", quickack, first, after),
        ));

        // C API: blocking launch, then blocking recv.
        let c = capi::connect(&sim.url, quickack)?;
        let hash = capi::upload(&c, &program)?;
        let (mut first, mut after) = (Vec::new(), Vec::new());
        for i in 0..n + 2 {
            let t = Instant::now();
            let inst = capi::launch(&c, &hash, &[])?;
            let launched = t.elapsed();
            let mut got = None;
            loop {
                let ev = capi::recv(&inst, -1)
                    .map_err(|s| format!("recv: {s:?}"))?
                    .ok_or("recv timed out")?;
                if got.is_none() && ev.kind() == PieEventKind::Stdout {
                    got = Some(t.elapsed());
                }
                if ev.is_terminal() {
                    break;
                }
            }
            let got = got.ok_or("no Stdout event")?;
            if i >= 2 {
                first.push(got);
                after.push(got - launched);
            }
        }
        drop(c);
        medians.push((
            "C API",
            quickack,
            report(rep, "C API", quickack, first, after),
        ));
    }
    for (api, _, median) in medians.iter().filter(|m| m.1) {
        rep.check_noisy(
            format!("launch → first Stdout ≤ 1 ms median ({api}, quickack on)"),
            ms(*median),
            *median <= Duration::from_millis(1),
        );
    }
    // The measurement proves something only if the stall is there without the mitigation
    // (the simulator reproduces the server's Nagle + the client's delayed ACK) and gone with it.
    let off: Vec<_> = medians.iter().filter(|m| !m.1).map(|m| m.2).collect();
    let on: Vec<_> = medians.iter().filter(|m| m.1).map(|m| m.2).collect();
    if let (Some(off), Some(on)) = (off.iter().min(), on.iter().max()) {
        let removed = off.saturating_sub(*on);
        rep.row(
            "first-out",
            "delayed-ACK stall removed by quickack (min off − max on)",
            ms(removed),
            "medians of the four rows above",
        );
        rep.check(
            "quickack removes a delayed-ACK stall of ≥ 20 ms (min off − max on)",
            ms(removed),
            removed >= Duration::from_millis(20),
        );
    }
    rep.reference(
        "first-out",
        "launch result → first Stdout, plain client socket / re-armed TCP_QUICKACK, median",
        "42.9 ms / 0.01 ms",
    );
    Ok(())
}

fn report(
    rep: &mut Report,
    api: &str,
    quickack: bool,
    first: Vec<Duration>,
    after: Vec<Duration>,
) -> Duration {
    let f = Lat::of(first);
    let a = Lat::of(after);
    rep.row(
        "first-out",
        format!(
            "{api}, quickack {}: launch → first Stdout, median / p99 (n={})",
            if quickack { "on" } else { "off" },
            f.n
        ),
        format!("{} / {}", ms(f.median), ms(f.p99)),
        format!("of which after the launch reply: median {}", ms(a.median)),
    );
    f.median
}
