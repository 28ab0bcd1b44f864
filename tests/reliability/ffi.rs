//! Server faults seen through the C API (the `extern "C"` functions, called as a C host calls
//! them): blocked C threads wake with PIE_STATUS_CONNECTION_CLOSED within 1 s, queued events
//! come first, callbacks get their final call and their drop, and the connection callback runs.

use crate::capi::*;
use crate::support::{deadline, lines_then_forever, program, prompt, sim, slack};
use pie::ffi::{PieEvent, PieEventKind, PieStatus};
use std::ffi::{c_char, c_void};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Threads blocked in pie_instance_recv(-1) and in a blocking pie_client_ping all return
/// CONNECTION_CLOSED within 1 s of the server dying.
#[test]
fn c_blocked_threads_wake_on_kill() {
    let sim = sim();
    let hash = program(&sim, "stdout started\nforever");
    let c = connect(&sim.url(), 30_000, 0).unwrap();
    let mut insts = Vec::new();
    for _ in 0..3 {
        let i = launch(c, &hash).unwrap();
        assert_eq!(recv(i, 2000).unwrap(), stdout("started"));
        insts.push(i);
    }
    let mut threads = Vec::new();
    for &i in &insts {
        for _ in 0..2 {
            threads.push(std::thread::spawn(move || {
                let r = recv(i, -1);
                (r.map(|_| ()), Instant::now())
            }));
        }
    }
    sim.faults().set_silence(true);
    for _ in 0..2 {
        threads.push(std::thread::spawn(move || (ping(c), Instant::now())));
    }
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        threads.iter().all(|t| !t.is_finished()),
        "everybody is blocked"
    );
    let killed = Instant::now();
    sim.kill_connections();
    for t in threads {
        let (r, at) = t.join().unwrap();
        let (st, msg) = r.expect_err("must fail");
        assert_eq!(st, PieStatus::ConnectionClosed, "{msg}");
        assert!(at.duration_since(killed) < prompt());
    }
    // New calls fail at once with the same status.
    assert_eq!(ping(c).unwrap_err().0, PieStatus::ConnectionClosed);
    assert_eq!(
        recv(insts[0], 0).unwrap_err().0,
        PieStatus::ConnectionClosed
    );
    for i in insts {
        free_instance(i);
    }
    free_client(c);
}

/// Events already received when the connection dies are all delivered through
/// pie_instance_recv before CONNECTION_CLOSED.
#[test]
fn c_queued_events_come_before_connection_closed() {
    let sim = sim();
    let hash = program(&sim, &lines_then_forever(20));
    let c = connect(&sim.url(), 5000, 0).unwrap();
    let state = Arc::new(CbState::default());
    let ud = Arc::as_ptr(&state) as *mut c_void;
    let st = unsafe {
        pie_client_set_connection_callback(
            c.0,
            Some(on_conn),
            ud,
            Some(on_conn_drop),
            std::ptr::null_mut(),
        )
    };
    assert_eq!(st, PieStatus::Ok);
    // The server drops the socket right after its 22nd frame: identification reply, launch
    // result, the 20 lines. The bytes before the drop all reach the client, in order.
    sim.faults().set_drop_after_frames(22);
    let i = launch(c, &hash).unwrap();
    // Wait for the connection's end (the event itself, not a guess at how long it takes);
    // nothing has been read from the instance yet, so all 20 lines are queued.
    let start = Instant::now();
    while state.conn.lock().unwrap().is_none() {
        assert!(start.elapsed() < deadline(), "the connection did not end");
        std::thread::sleep(Duration::from_millis(2));
    }
    for n in 0..20 {
        assert_eq!(recv(i, 0).unwrap(), stdout(&format!("line {n}")));
    }
    for _ in 0..2 {
        assert_eq!(recv(i, 0).unwrap_err().0, PieStatus::ConnectionClosed);
    }
    free_instance(i);
    free_client(c);
    assert_eq!(state.conn_drops.load(Ordering::SeqCst), 1);
}

#[derive(Default)]
struct CbState {
    events: Mutex<Vec<Ev>>,
    final_status: Mutex<Option<(PieStatus, Instant)>>,
    calls_after_final: AtomicU64,
    drops: AtomicU64,
    conn: Mutex<Option<(PieStatus, String)>>,
    conn_drops: AtomicU64,
}

unsafe extern "C" fn on_event(ud: *mut c_void, status: PieStatus, ev: *const PieEvent) {
    let st = &*(ud as *const CbState);
    if st.final_status.lock().unwrap().is_some() {
        st.calls_after_final.fetch_add(1, Ordering::SeqCst);
    }
    if ev.is_null() {
        *st.final_status.lock().unwrap() = Some((status, Instant::now()));
        return;
    }
    st.events.lock().unwrap().push(copy_event(ev));
    // A slow host callback: events back up in the queue while the connection dies.
    std::thread::sleep(Duration::from_millis(2));
}

unsafe extern "C" fn on_drop(ud: *mut c_void) {
    (*(ud as *const CbState))
        .drops
        .fetch_add(1, Ordering::SeqCst);
}

unsafe extern "C" fn on_conn(ud: *mut c_void, status: PieStatus, msg: *const c_char) {
    *(*(ud as *const CbState)).conn.lock().unwrap() = Some((status, c_str(msg)));
}

unsafe extern "C" fn on_conn_drop(ud: *mut c_void) {
    (*(ud as *const CbState))
        .conn_drops
        .fetch_add(1, Ordering::SeqCst);
}

/// The server dies while event callbacks are firing (a slow callback, 2 ms per event, so most of
/// the 100 lines are still queued): every line is still delivered in order, then exactly one
/// final call with CONNECTION_CLOSED, then drop once; the connection callback reports it too.
#[test]
fn c_kill_while_callbacks_fire() {
    let sim = sim();
    let hash = program(&sim, &lines_then_forever(100));
    let c = connect(&sim.url(), 5000, 0).unwrap();
    let state = Arc::new(CbState::default());
    let ud = Arc::as_ptr(&state) as *mut c_void;
    unsafe {
        let st = pie_client_set_connection_callback(
            c.0,
            Some(on_conn),
            ud,
            Some(on_conn_drop),
            std::ptr::null_mut(),
        );
        assert_eq!(st, PieStatus::Ok);
    }
    let i = launch(c, &hash).unwrap();
    unsafe {
        let st =
            pie_instance_set_callback(i.0, Some(on_event), ud, Some(on_drop), std::ptr::null_mut());
        assert_eq!(st, PieStatus::Ok);
    }
    let start = Instant::now();
    while state.events.lock().unwrap().len() < 5 {
        assert!(start.elapsed() < prompt(), "callbacks started");
        std::thread::sleep(Duration::from_millis(1));
    }
    let killed = Instant::now();
    sim.kill_connections();
    // 100 × 2 ms of callbacks are still due; allow for them on top of the 1 s.
    let ends_by = killed + prompt() + slack(Duration::from_millis(400));
    while state.drops.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < ends_by, "the stream did not end in time");
        std::thread::sleep(Duration::from_millis(5));
    }
    let events = state.events.lock().unwrap().clone();
    let want: Vec<Ev> = (0..100).map(|n| stdout(&format!("line {n}"))).collect();
    assert_eq!(events, want, "every line, in order, before the end");
    let (status, _) = state.final_status.lock().unwrap().expect("final call");
    assert_eq!(status, PieStatus::ConnectionClosed);
    assert_eq!(state.calls_after_final.load(Ordering::SeqCst), 0);
    assert_eq!(state.drops.load(Ordering::SeqCst), 1);
    let start = Instant::now();
    while state.conn.lock().unwrap().is_none() {
        assert!(start.elapsed() < prompt(), "connection callback");
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(
        state.conn.lock().unwrap().as_ref().unwrap().0,
        PieStatus::ConnectionClosed
    );
    free_instance(i);
    free_client(c);
    assert_eq!(state.drops.load(Ordering::SeqCst), 1);
    assert_eq!(state.conn_drops.load(Ordering::SeqCst), 1);
}

/// A slow host through the C API: the unread instance overflows into an OVERFLOW event whose
/// count plus the delivered lines is the total; pings are not delayed meanwhile.
#[test]
fn c_overflow_event() {
    let sim = sim();
    let mut script = String::new();
    for n in 0..500 {
        script.push_str(&format!("stdout l{n:04}\n")); // 5 bytes each
    }
    script.push_str("complete end");
    let hash = program(&sim, &script);
    let c = connect(&sim.url(), 5000, 200).unwrap();
    let i = launch(c, &hash).unwrap();
    for _ in 0..10 {
        let t = Instant::now();
        ping(c).unwrap();
        assert!(t.elapsed() < slack(Duration::from_millis(200)));
    }
    // Everything must have reached the client before the host reads. The simulator forgets the
    // instance once its Completed frame is queued on the connection; a ping answered after that
    // comes behind all 501 frames, which the client has therefore routed.
    let start = Instant::now();
    while sim.instance_count() > 0 {
        assert!(start.elapsed() < deadline(), "the program did not finish");
        std::thread::sleep(Duration::from_millis(2));
    }
    ping(c).unwrap();
    let (mut lines, mut dropped) = (0u64, 0u64);
    loop {
        let e = recv(i, 1000).unwrap();
        match e.kind {
            PieEventKind::Stdout => lines += 1,
            PieEventKind::Overflow => {
                assert!(e.dropped > 0);
                dropped += e.dropped;
            }
            PieEventKind::Completed => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(dropped > 0);
    assert_eq!(lines + dropped, 500);
    assert_eq!(recv(i, 0).unwrap_err().0, PieStatus::StreamEnded);
    free_instance(i);
    free_client(c);
}
