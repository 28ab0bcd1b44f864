//! Round trip: `ping` latency through the C API (blocking pie_client_ping from a host thread)
//! and through the Rust core (awaited in a task on the application's runtime, and awaited from
//! a host thread with block_on). Rounds alternate between the three so drift hits all alike.

use crate::report::{us, Lat, Report};
use crate::{capi, core, sim::Sim, Ctx};
use std::time::{Duration, Instant};

pub fn run(ctx: &Ctx, rep: &mut Report) -> Result<(), String> {
    let total = if ctx.quick { 2_000 } else { 10_000 };
    let rounds = 10;
    let per_round = total / rounds;
    let sim = Sim::start()?;
    let c = capi::connect(&sim.url, true)?;
    let rc = ctx.rt.block_on(core::connect(&sim.url, true))?;

    let c_round = |n: usize| -> Result<Vec<Duration>, String> {
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            capi::ping(&c)?;
            v.push(t.elapsed());
        }
        Ok(v)
    };
    let task_round = |n: usize| -> Result<Vec<Duration>, String> {
        let client = rc.clone();
        let h = ctx.rt.spawn(async move {
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                let t = Instant::now();
                client.ping().await.map_err(|e| e.to_string())?;
                v.push(t.elapsed());
            }
            Ok::<_, String>(v)
        });
        ctx.rt.block_on(h).map_err(|e| e.to_string())?
    };
    let block_round = |n: usize| -> Result<Vec<Duration>, String> {
        ctx.rt.block_on(async {
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                let t = Instant::now();
                rc.ping().await.map_err(|e| e.to_string())?;
                v.push(t.elapsed());
            }
            Ok(v)
        })
    };

    // Warm-up: connections, allocator, branch predictors.
    c_round(200)?;
    task_round(200)?;
    block_round(200)?;
    let (mut cv, mut tv, mut bv) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        cv.extend(c_round(per_round)?);
        tv.extend(task_round(per_round)?);
        bv.extend(block_round(per_round)?);
    }
    let (cl, tl, bl) = (Lat::of(cv), Lat::of(tv), Lat::of(bv));
    let line = |l: &Lat| format!("{} / {}", us(l.median), us(l.p99));
    rep.row(
        "ping",
        format!("C API pie_client_ping, median / p99 (n={})", cl.n),
        line(&cl),
        format!("{:.3}× Rust core task", ratio(cl.median, tl.median)),
    );
    rep.row(
        "ping",
        format!("Rust core, task on app runtime, median / p99 (n={})", tl.n),
        line(&tl),
        "PROTOCOL §16 reference (real server, minimal client): median 87 µs",
    );
    rep.row(
        "ping",
        format!(
            "Rust core, block_on from host thread, median / p99 (n={})",
            bl.n
        ),
        line(&bl),
        format!("{:.3}× Rust core task", ratio(bl.median, tl.median)),
    );
    // Like for like: a blocking C call from a host thread against the Rust core awaited from a
    // host thread. Both pay the wake-up of a parked host thread by the runtime worker that read
    // the reply; a task on the runtime does not (the reader wakes it on the same worker), so
    // that gap is not FFI overhead and is shown separately.
    let r_med = ratio(cl.median, bl.median);
    let r_p99 = ratio(cl.p99, bl.p99);
    rep.check(
        "ping: C API median ≤ 1.05 × Rust core (both called from a host thread)",
        format!(
            "{:.3}× ({} vs {}); p99 {:.3}×; vs a Rust task on the runtime {:.3}×",
            r_med,
            us(cl.median),
            us(bl.median),
            r_p99,
            ratio(cl.median, tl.median)
        ),
        r_med <= 1.05,
    );
    drop(c);
    ctx.rt.block_on(rc.close()).map_err(|e| e.to_string())?;
    Ok(())
}

pub fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-12)
}
