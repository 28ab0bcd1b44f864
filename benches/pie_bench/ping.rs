//! Request/reply: `ping` round trips against one simulator process, through
//! * the raw ceiling (`rawping`: one thread writes the frame and reads the reply on a blocking
//!   socket, nothing else),
//! * the C API (blocking `pie_client_ping` from a host thread),
//! * the Rust core, awaited from a host thread (`block_on`) and in a task on the app runtime.
//!
//! Then 64 pings in flight at once (batches of 64 on one connection) through the raw client,
//! the C API (`pie_client_ping_async` × 64, then `pie_op_wait` each) and the Rust core (64
//! futures joined). Rounds alternate between the variants so drift hits all alike.
//!
//! The C API is measured twice: through this binary's Rust build of the library, and as it
//! ships (`shipped`: a C program linked with the library `make` builds). The targets against
//! the raw ceiling use the shipped library; the comparison with the Rust core uses the Rust
//! build, the same build as the core.

use crate::placement::Placement;
use crate::rawping::{self, RawClient, ThreadedRawClient};
use crate::report::{per_sec, us, Lat, Report};
use crate::{capi, core, sim::Sim, sys, Ctx};
use futures_util::future::join_all;
use std::time::{Duration, Instant};

/// Pings per batch in the "in flight" measurement.
const IN_FLIGHT: usize = 64;

/// Pinned (simulator on one core, clients on another) for the targets, then unpinned for
/// reference; unpinned only, targets included, on a machine of one core (`placement`).
pub fn run(ctx: &Ctx, rep: &mut Report) -> Result<(), String> {
    let result = match Placement::separate_cores() {
        Some(pinned) => run_at(ctx, rep, pinned, true)
            .and_then(|()| run_at(ctx, rep, Placement::UNPINNED, false)),
        None => run_at(ctx, rep, Placement::UNPINNED, true),
    };
    rep.name_suffix.clear();
    result
}

/// The whole section with one placement; `targets`: whether its figures are the ones checked.
fn run_at(ctx: &Ctx, rep: &mut Report, placement: Placement, targets: bool) -> Result<(), String> {
    let total = if ctx.quick { 2_000 } else { 10_000 };
    let rounds = 10;
    let per_round = total / rounds;
    rep.name_suffix = placement.tag();
    let sim = Sim::start_on(placement.server_cpu)?;
    // Before any client starts: their threads (and the C driver's process) inherit it.
    let _pinned = placement.pin_clients()?;
    let c = capi::connect(&sim.url, true)?;
    let rc = ctx.rt.block_on(core::connect(&sim.url, true))?;
    // The same core with every frame handed to the writer task (the request path before
    // callers wrote their own frames): the hand-off it costs, measured side by side.
    let rq = ctx.rt.block_on(core::connect(&sim.url, true))?;
    rq.debug_set_direct_writes(false);
    let mut raw = RawClient::connect(&sim.url)?;
    let mut raw_id = 1000u32;
    let mut raw2 = RawClient::connect(&sim.url)?.into_threaded();
    let mut raw2_id = 1000u32;
    let mut shipped = crate::shipped::ShippedC::start(&sim.url)?;
    if shipped.is_none() {
        rep.row(
            "ping",
            "C API as shipped (make-built libpie.so, from a C program)",
            "not measured",
            format!(
                "{} is not set (scripts/bench.sh sets it): the targets below use the Rust build",
                crate::shipped::DRIVER_ENV
            ),
        );
    }

    let mut raw_round = |n: usize| -> Result<Vec<Duration>, String> {
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            raw_id = raw_id.wrapping_add(1);
            let frame = rawping::ping_frame(raw_id);
            let t = Instant::now();
            raw.ping(&frame, raw_id)?;
            v.push(t.elapsed());
        }
        Ok(v)
    };
    let mut raw2_round = |n: usize| -> Result<Vec<Duration>, String> {
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            raw2_id = raw2_id.wrapping_add(1);
            let frame = rawping::ping_frame(raw2_id);
            let t = Instant::now();
            raw2.ping(&frame, raw2_id)?;
            v.push(t.elapsed());
        }
        Ok(v)
    };
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
    let block_round = |client: &pie::Client, n: usize| -> Result<Vec<Duration>, String> {
        ctx.rt.block_on(async {
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                let t = Instant::now();
                client.ping().await.map_err(|e| e.to_string())?;
                v.push(t.elapsed());
            }
            Ok(v)
        })
    };

    let mut shipped_round = |n: usize| -> Result<Vec<Duration>, String> {
        match shipped.as_mut() {
            Some(driver) => driver.pings(n),
            None => Ok(Vec::new()),
        }
    };

    // Warm-up: connections, allocator, branch predictors.
    shipped_round(200)?;
    raw_round(200)?;
    raw2_round(200)?;
    c_round(200)?;
    task_round(200)?;
    block_round(&rc, 200)?;
    block_round(&rq, 200)?;
    let mut sv = Vec::new();
    let (mut rv, mut r2v, mut cv, mut tv, mut bv, mut qv) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    // Context switches of this process per ping: each thread hand-off on the way of a request
    // shows up as a sleeping thread woken (the raw client sleeps once, in its read).
    let mut csw = [0u64; 6];
    let switches = |slot: &mut u64, f: &mut dyn FnMut() -> Result<Vec<Duration>, String>| {
        let before = sys::context_switches();
        let r = f();
        *slot += sys::context_switches().saturating_sub(before);
        r
    };
    for _ in 0..rounds {
        rv.extend(switches(&mut csw[0], &mut || raw_round(per_round))?);
        cv.extend(switches(&mut csw[1], &mut || c_round(per_round))?);
        tv.extend(switches(&mut csw[2], &mut || task_round(per_round))?);
        bv.extend(switches(&mut csw[3], &mut || block_round(&rc, per_round))?);
        qv.extend(switches(&mut csw[4], &mut || block_round(&rq, per_round))?);
        r2v.extend(switches(&mut csw[5], &mut || raw2_round(per_round))?);
        sv.extend(shipped_round(per_round)?);
    }
    let per_ping = |slot: u64| slot as f64 / (per_round * rounds) as f64;
    let (rl, r2l, cl, tl, bl, ql) = (
        Lat::of(rv),
        Lat::of(r2v),
        Lat::of(cv),
        Lat::of(tv),
        Lat::of(bv),
        Lat::of(qv),
    );
    let line = |l: &Lat| format!("{} / {}", us(l.median), us(l.p99));
    let vs_raw = |l: &Lat, slot: u64| {
        format!(
            "{:.2}× raw (p99 {:.2}×); {:.2} context switches per ping",
            ratio(l.median, rl.median),
            ratio(l.p99, rl.p99),
            per_ping(slot)
        )
    };
    rep.row(
        "ping",
        format!(
            "raw ceiling: one thread, blocking socket, median / p99 (n={})",
            rl.n
        ),
        line(&rl),
        format!(
            "write frame + read reply, nothing else; {:.2} context switches per ping",
            per_ping(csw[0])
        ),
    );
    rep.row(
        "ping",
        format!(
            "raw with a network thread: the caller writes, a thread of its own reads and wakes it, median / p99 (n={})",
            r2l.n
        ),
        line(&r2l),
        format!(
            "{}: the price of the hand-off alone",
            vs_raw(&r2l, csw[5])
        ),
    );
    rep.row(
        "ping",
        format!(
            "C API (Rust build) pie_client_ping, median / p99 (n={})",
            cl.n
        ),
        line(&cl),
        vs_raw(&cl, csw[1]),
    );
    rep.row(
        "ping",
        format!(
            "Rust core, block_on from host thread, median / p99 (n={})",
            bl.n
        ),
        line(&bl),
        vs_raw(&bl, csw[3]),
    );
    rep.row(
        "ping",
        format!(
            "Rust core, block_on, frames via the writer task (before), median / p99 (n={})",
            ql.n
        ),
        line(&ql),
        vs_raw(&ql, csw[4]),
    );
    rep.row(
        "ping",
        format!("Rust core, task on app runtime, median / p99 (n={})", tl.n),
        line(&tl),
        vs_raw(&tl, csw[2]),
    );
    // The shipped library's latencies, when measured: what a C host gets.
    let (sl, which) = if sv.is_empty() {
        (cl, "Rust build")
    } else {
        let sl = Lat::of(sv);
        rep.row(
            "ping",
            format!(
                "C API as shipped (make-built libpie.so, from a C program) pie_client_ping, median / p99 (n={})",
                sl.n
            ),
            line(&sl),
            format!(
                "{:.2}× raw (p99 {:.2}×); {:.2}× the Rust build's median",
                ratio(sl.median, rl.median),
                ratio(sl.p99, rl.p99),
                ratio(sl.median, cl.median)
            ),
        );
        (sl, "as shipped")
    };
    // The unpinned run is a reference: its rows show the same ratios, unchecked.
    if targets {
        rep.reference("ping", "ping round trip, median", "87 µs");
        let (p50, p99) = (ratio(sl.median, rl.median), ratio(sl.p99, rl.p99));
        rep.check_noisy(
            "ping: C API median ≤ 1.3 × raw ceiling",
            format!(
                "{p50:.2}× ({} vs {}; {which})",
                us(sl.median),
                us(rl.median)
            ),
            p50 <= 1.3,
        );
        rep.check_noisy(
            "ping: C API p99 ≤ 1.5 × raw ceiling",
            format!("{p99:.2}× ({} vs {}; {which})", us(sl.p99), us(rl.p99)),
            p99 <= 1.5,
        );
        // Like for like: a blocking C call from a host thread against the Rust core awaited from a
        // host thread. Both pay the wake-up of a parked host thread by the runtime worker that read
        // the reply; a task on the runtime does not.
        let r_med = ratio(cl.median, bl.median);
        rep.check_noisy(
            "ping: C API median ≤ 1.05 × Rust core (both called from a host thread)",
            format!(
                "{:.3}× ({} vs {}); p99 {:.3}×",
                r_med,
                us(cl.median),
                us(bl.median),
                ratio(cl.p99, bl.p99),
            ),
            r_med <= 1.05,
        );
    }

    let mut references = References {
        raw: &mut raw,
        threaded: &mut raw2,
        stack: crate::stackping::StackClient::connect(&sim.url)?,
    };
    in_flight(
        ctx,
        rep,
        targets,
        &mut references,
        &c,
        shipped.as_mut(),
        &rc,
        &rq,
    )?;
    drop(references);
    drop(raw2);
    drop(c);
    ctx.rt.block_on(rc.close()).map_err(|e| e.to_string())?;
    ctx.rt.block_on(rq.close()).map_err(|e| e.to_string())?;
    Ok(())
}

/// The clients that are not libpie, each on its own connection to the same simulator.
struct References<'a> {
    raw: &'a mut RawClient,
    threaded: &'a mut ThreadedRawClient,
    stack: crate::stackping::StackClient,
}

/// 64 pings in flight: batches of 64 on one connection, rate over all batches of each variant.
#[allow(clippy::too_many_arguments)]
fn in_flight(
    ctx: &Ctx,
    rep: &mut Report,
    targets: bool,
    references: &mut References,
    c: &capi::CClient,
    mut shipped: Option<&mut crate::shipped::ShippedC>,
    rc: &pie::Client,
    rq: &pie::Client,
) -> Result<(), String> {
    let References {
        raw,
        threaded: raw2,
        stack,
    } = references;
    let batches = if ctx.quick { 60 } else { 300 };
    let rounds = 10;
    let per_round = batches / rounds;
    let n = IN_FLIGHT as u32;
    let first = 1_000_000u32;
    let frames: Vec<u8> = (0..n)
        .flat_map(|i| rawping::ping_frame(first + i))
        .collect();

    let mut raw_round = |k: usize| -> Result<Duration, String> {
        let t = Instant::now();
        for _ in 0..k {
            raw.ping_batch(&frames, first, n)?;
        }
        Ok(t.elapsed())
    };
    let mut raw2_round = |k: usize, gathered: bool| -> Result<Duration, String> {
        let t = Instant::now();
        for _ in 0..k {
            raw2.ping_batch(&frames, first, n, gathered)?;
        }
        Ok(t.elapsed())
    };
    let mut stack_round = |k: usize| -> Result<Duration, String> {
        let t = Instant::now();
        for _ in 0..k {
            stack.ping_batch(first, n)?;
        }
        Ok(t.elapsed())
    };
    let c_round = |k: usize| -> Result<Duration, String> {
        let t = Instant::now();
        for _ in 0..k {
            capi::ping_in_flight(c, IN_FLIGHT)?;
        }
        Ok(t.elapsed())
    };
    // Measured inside the driver's process: its wall time, CPU and context switches.
    let mut shipped_round = |k: usize| -> Result<Option<crate::shipped::InFlightRound>, String> {
        shipped.as_mut().map(|d| d.in_flight(k)).transpose()
    };
    let core_round = |client: &pie::Client, k: usize| -> Result<Duration, String> {
        ctx.rt.block_on(async {
            let t = Instant::now();
            for _ in 0..k {
                for r in join_all((0..IN_FLIGHT).map(|_| client.ping())).await {
                    r.map_err(|e| e.to_string())?;
                }
            }
            Ok(t.elapsed())
        })
    };
    shipped_round(5)?;
    raw_round(5)?;
    raw2_round(5, true)?;
    raw2_round(5, false)?;
    stack_round(5)?;
    c_round(5)?;
    core_round(rc, 5)?;
    core_round(rq, 5)?;
    let (mut rt, mut r2t, mut r3t, mut st, mut ct, mut kt, mut qt) = (
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
    );
    // Per variant: context switches and CPU time of this process (every thread; the
    // simulator is another process), per ping.
    let mut cost = [(0u64, Duration::ZERO); 6];
    let mut shipped_time = Duration::ZERO;
    let measured = |slot: &mut (u64, Duration), f: &mut dyn FnMut() -> Result<Duration, String>| {
        let (csw, cpu) = (sys::context_switches(), sys::cpu_time());
        let r = f();
        slot.0 += sys::context_switches().saturating_sub(csw);
        slot.1 += sys::cpu_time().saturating_sub(cpu);
        r
    };
    for _ in 0..rounds {
        rt += measured(&mut cost[0], &mut || raw_round(per_round))?;
        r2t += measured(&mut cost[1], &mut || raw2_round(per_round, true))?;
        r3t += measured(&mut cost[2], &mut || raw2_round(per_round, false))?;
        st += measured(&mut cost[4], &mut || stack_round(per_round))?;
        ct += measured(&mut cost[3], &mut || c_round(per_round))?;
        kt += core_round(rc, per_round)?;
        qt += core_round(rq, per_round)?;
        if let Some(round) = shipped_round(per_round)? {
            shipped_time += round.wall;
            cost[5].0 += round.context_switches;
            cost[5].1 += round.cpu;
        }
    }
    let pings = (per_round * rounds * IN_FLIGHT) as f64;
    let per_request = |slot: (u64, Duration)| {
        format!(
            "{:.2} context switches and {:.2} µs of CPU per ping",
            slot.0 as f64 / pings,
            slot.1.as_secs_f64() * 1e6 / pings
        )
    };
    let rate = |d: Duration| pings / d.as_secs_f64().max(1e-9);
    let (raw_rate, raw2_rate, raw3_rate, stack_rate, c_rate, core_rate, queued_rate) = (
        rate(rt),
        rate(r2t),
        rate(r3t),
        rate(st),
        rate(ct),
        rate(kt),
        rate(qt),
    );
    rep.row(
        "ping",
        format!("raw ceiling: {IN_FLIGHT} pings in flight, pings/s ({pings} pings)"),
        per_sec(raw_rate),
        format!(
            "one write of 64 frames, then 64 replies read; {}",
            per_request(cost[0])
        ),
    );
    rep.row(
        "ping",
        format!("raw with a network thread: {IN_FLIGHT} pings in flight, one write, pings/s"),
        per_sec(raw2_rate),
        format!(
            "{:.2}× raw: one write of 64 frames, each reply waited for; {}",
            raw2_rate / raw_rate,
            per_request(cost[1])
        ),
    );
    rep.row(
        "ping",
        format!(
            "raw with a network thread: {IN_FLIGHT} pings in flight, a write per request, pings/s"
        ),
        per_sec(raw3_rate),
        format!(
            "{:.2}× raw: each frame written as its request is made; {}",
            raw3_rate / raw_rate,
            per_request(cost[2])
        ),
    );
    rep.row(
        "ping",
        format!(
            "libpie's stack without libpie (tokio, tokio-tungstenite, writer channel): {IN_FLIGHT} in flight, pings/s"
        ),
        per_sec(stack_rate),
        format!(
            "{:.2}× raw: each request encoded and queued as it is made; {}",
            stack_rate / raw_rate,
            per_request(cost[4])
        ),
    );
    rep.row(
        "ping",
        format!("C API (Rust build): {IN_FLIGHT} pie_client_ping_async in flight, pings/s"),
        per_sec(c_rate),
        format!("{:.2}× raw; {}", c_rate / raw_rate, per_request(cost[3])),
    );
    rep.row(
        "ping",
        format!("Rust core: {IN_FLIGHT} pings joined (block_on), pings/s"),
        per_sec(core_rate),
        format!("{:.2}× raw", core_rate / raw_rate),
    );
    rep.row(
        "ping",
        format!(
            "Rust core: {IN_FLIGHT} pings joined, frames via the writer task (before), pings/s"
        ),
        per_sec(queued_rate),
        format!("{:.2}× raw", queued_rate / raw_rate),
    );
    // What a C host gets, when measured (else the Rust build's figure, labelled so).
    let (target_rate, which) = if shipped_time.is_zero() {
        (c_rate, "Rust build")
    } else {
        let shipped_rate = rate(shipped_time);
        rep.row(
            "ping",
            format!(
                "C API as shipped (make-built libpie.so, from a C program): {IN_FLIGHT} pie_client_ping_async in flight, pings/s"
            ),
            per_sec(shipped_rate),
            format!(
                "{:.2}× raw, {:.2}× the Rust build; {} (the driver process)",
                shipped_rate / raw_rate,
                shipped_rate / c_rate,
                per_request(cost[5])
            ),
        );
        (shipped_rate, "as shipped")
    };
    if targets {
        rep.reference("ping", "64 pings in flight", "≈ 144,000/s");
        rep.check_noisy(
            format!("ping: C API with {IN_FLIGHT} in flight ≥ 0.8 × raw ceiling"),
            format!(
                "{:.2}× ({} vs {} pings/s; {which})",
                target_rate / raw_rate,
                per_sec(target_rate),
                per_sec(raw_rate)
            ),
            target_rate >= 0.8 * raw_rate,
        );
    }
    Ok(())
}

pub fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-12)
}
