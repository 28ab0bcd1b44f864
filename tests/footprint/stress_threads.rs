//! Eight host threads hammer one client through the C API at once — launch, send, recv (poll
//! and callbacks), list, terminate, ping, free — and one of them closes the client in the
//! middle. Every call must return a documented status (never INTERNAL/PANIC), nothing may hang,
//! every callback's drop runs exactly once, and no libpie thread survives the final free.
//! scripts/tsan.sh runs this under ThreadSanitizer. `PIE_STRESS_ITERS` sets the iterations per
//! thread (default 1000).

use crate::capi::*;
use pie::ffi::{PieEvent, PieInstance, PieStatus};
use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

const THREADS: usize = 8;

struct Xorshift(u64);
impl Xorshift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Default)]
struct Counters {
    callbacks_set: AtomicU64,
    drops: AtomicU64,
    events: AtomicU64,
    finals: AtomicU64,
}

unsafe extern "C" fn cb_event(ud: *mut c_void, _status: PieStatus, ev: *const PieEvent) {
    let c = &*(ud as *const Counters);
    if ev.is_null() {
        c.finals.fetch_add(1, Ordering::SeqCst);
    } else {
        c.events.fetch_add(1, Ordering::SeqCst);
    }
}

unsafe extern "C" fn cb_drop(ud: *mut c_void) {
    (*(ud as *const Counters))
        .drops
        .fetch_add(1, Ordering::SeqCst);
}

/// Statuses that are a legitimate outcome of a call in this test. Anything else (INTERNAL,
/// PANIC, NULL_POINTER, INVALID_ARGUMENT, ...) is a bug.
fn allowed(what: &str, st: PieStatus, closed: bool) -> bool {
    use PieStatus::*;
    match st {
        Ok | Timeout | StreamEnded => true,
        // Only once the racing close has begun.
        ClientClosed => closed,
        // recv on an instance that has a callback.
        Busy => what == "recv",
        _ => false,
    }
}

pub fn stress_8_threads_one_client_c_api() {
    let iters: u64 = std::env::var("PIE_STRESS_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let sim = crate::support::sim();
    let chat = crate::support::program(&sim, "behaviour chat");
    let short_lived = crate::support::program(&sim, "stdout a\nmessage b\ncomplete c");
    std::thread::sleep(Duration::from_millis(50));
    let threads_before = crate::support::thread_count();

    let c = connect(&sim.url(), 10_000, 0).unwrap();
    let shared_inst = launch(c, &chat).unwrap();
    let counters = Arc::new(Counters::default());
    let closing = Arc::new(AtomicBool::new(false));
    let statuses = Arc::new(Mutex::new(HashMap::<(&'static str, PieStatus), u64>::new()));
    let barrier = Arc::new(Barrier::new(THREADS));
    let start = Instant::now();

    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (chat, short_lived) = (chat.clone(), short_lived.clone());
            let (counters, closing, statuses, barrier) = (
                counters.clone(),
                closing.clone(),
                statuses.clone(),
                barrier.clone(),
            );
            std::thread::spawn(move || {
                let mut rng = Xorshift(0x9E37_79B9_7F4A_7C15 ^ ((t as u64 + 1) * 0x1000_0001));
                let mut mine: Vec<H<PieInstance>> = Vec::new();
                let note = |what: &'static str, r: Result<(), Failure>| {
                    let st = r.as_ref().map_or_else(|f| f.0, |_| PieStatus::Ok);
                    let closed = closing.load(Ordering::SeqCst);
                    assert!(allowed(what, st, closed), "thread {t}: {what} -> {r:?}");
                    *statuses.lock().unwrap().entry((what, st)).or_default() += 1;
                };
                barrier.wait();
                for n in 0..iters {
                    if t == 0 && n == iters * 3 / 4 {
                        closing.store(true, Ordering::SeqCst);
                        note("close", close(c));
                    }
                    match rng.below(10) {
                        0 | 1 if mine.len() < 4 => {
                            let h = if rng.below(3) == 0 {
                                &short_lived
                            } else {
                                &chat
                            };
                            match launch(c, h) {
                                Ok(i) => mine.push(i),
                                Err(f) => note("launch", Err(f)),
                            }
                        }
                        2 => {
                            if let Some(&i) = mine.get(rng.below(4) as usize) {
                                note("send", send(i, &format!("t{t} n{n}")));
                            }
                            note("send", send(shared_inst, &format!("shared t{t} n{n}")));
                        }
                        3 => {
                            let timeout = rng.below(4) as i32;
                            let target = mine
                                .get(rng.below(5) as usize)
                                .copied()
                                .unwrap_or(shared_inst);
                            note("recv", recv(target, timeout).map(|_| ()));
                        }
                        4 => note("list", list(c).map(|_| ())),
                        5 => {
                            if let Some(&i) = mine.get(rng.below(4) as usize) {
                                note("terminate", terminate(i));
                            }
                        }
                        6 => note("ping", ping(c)),
                        7 => {
                            if !mine.is_empty() {
                                let i = mine.swap_remove(rng.below(mine.len() as u64) as usize);
                                free_instance(i);
                            }
                        }
                        8 => {
                            if let Some(&i) = mine.get(rng.below(4) as usize) {
                                let ud = Arc::as_ptr(&counters) as *mut c_void;
                                let st = unsafe {
                                    pie_instance_set_callback(
                                        i.0,
                                        Some(cb_event),
                                        ud,
                                        Some(cb_drop),
                                        std::ptr::null_mut(),
                                    )
                                };
                                // Documented errors are NULL_POINTER/DETACHED/IO only.
                                assert_eq!(st, PieStatus::Ok, "thread {t}: set_callback");
                                counters.callbacks_set.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                        _ => note("recv", recv(shared_inst, 1).map(|_| ())),
                    }
                }
                for i in mine {
                    free_instance(i);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("a stress thread failed");
    }
    let took = start.elapsed();
    // After the close everything reports CLIENT_CLOSED.
    assert_eq!(ping(c).unwrap_err().0, PieStatus::ClientClosed);
    free_instance(shared_inst);
    free_client(c);
    assert_eq!(
        counters.drops.load(Ordering::SeqCst),
        counters.callbacks_set.load(Ordering::SeqCst),
        "every callback's drop ran exactly once"
    );
    let deadline = Instant::now() + Duration::from_secs(2);
    while crate::support::thread_count() > threads_before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        crate::support::thread_count(),
        threads_before,
        "libpie threads left"
    );
    let mut s: Vec<_> = statuses
        .lock()
        .unwrap()
        .iter()
        .map(|(k, v)| (*k, *v))
        .collect();
    s.sort_by_key(|((w, st), _)| (*w, *st as u32));
    eprintln!(
        "{THREADS} threads × {iters} iterations in {took:?}; callbacks set {}, events by callback {}, final calls {}; statuses {s:?}",
        counters.callbacks_set.load(Ordering::SeqCst),
        counters.events.load(Ordering::SeqCst),
        counters.finals.load(Ordering::SeqCst),
    );
    assert!(s
        .iter()
        .any(|((w, st), _)| *w == "ping" && *st == PieStatus::Ok));
}
