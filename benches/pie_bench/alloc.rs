//! A counting global allocator: how many allocations (and reallocations) each kind of thread
//! makes while a measurement runs. Threads tag themselves (`set_category`); untagged threads
//! (the client's runtime workers: reader, writer, operation tasks) count as `NETWORK`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

pub const NETWORK: usize = 0;
pub const MAIN: usize = 1;
pub const CALLBACK: usize = 2;
const CATEGORIES: usize = 3;

/// One counter per cache line, so threads of different categories do not contend.
#[repr(align(64))]
struct Slot {
    allocs: AtomicU64,
    reallocs: AtomicU64,
}

static SLOTS: [Slot; CATEGORIES] = [const {
    Slot {
        allocs: AtomicU64::new(0),
        reallocs: AtomicU64::new(0),
    }
}; CATEGORIES];

/// Counting is off outside measurements: a relaxed load is all it costs then.
static ENABLED: AtomicBool = AtomicBool::new(false);

thread_local! {
    // const-initialised Cell without Drop: usable from inside the allocator (no lazy
    // initialisation, no destructor registration, so no recursion into `alloc`).
    static CATEGORY: Cell<u8> = const { Cell::new(NETWORK as u8) };
}

pub fn set_category(cat: usize) {
    CATEGORY.with(|c| c.set(cat as u8));
}

fn slot() -> &'static Slot {
    let cat = CATEGORY.try_with(|c| c.get() as usize).unwrap_or(NETWORK);
    &SLOTS[cat.min(CATEGORIES - 1)]
}

pub struct Counting;

// SAFETY: forwards every call to the system allocator unchanged; the counters are atomics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if ENABLED.load(Relaxed) {
            slot().allocs.fetch_add(1, Relaxed);
        }
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if ENABLED.load(Relaxed) {
            slot().allocs.fetch_add(1, Relaxed);
        }
        System.alloc_zeroed(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if ENABLED.load(Relaxed) {
            slot().reallocs.fetch_add(1, Relaxed);
        }
        System.realloc(ptr, layout, new_size)
    }
}

/// Counters per category: (allocations, reallocations).
#[derive(Clone, Copy, Debug, Default)]
pub struct Counts(pub [(u64, u64); CATEGORIES]);

impl Counts {
    pub fn now() -> Counts {
        let mut c = Counts::default();
        for (i, s) in SLOTS.iter().enumerate() {
            c.0[i] = (s.allocs.load(Relaxed), s.reallocs.load(Relaxed));
        }
        c
    }
    pub fn since(self, start: Counts) -> Counts {
        let mut c = Counts::default();
        for i in 0..CATEGORIES {
            c.0[i] = (self.0[i].0 - start.0[i].0, self.0[i].1 - start.0[i].1);
        }
        c
    }
    /// Allocations + reallocations of one category.
    pub fn of(&self, cat: usize) -> u64 {
        self.0[cat].0 + self.0[cat].1
    }
    pub fn total(&self) -> u64 {
        (0..CATEGORIES).map(|c| self.of(c)).sum()
    }
}

/// Counts allocations while `f` runs.
pub fn counting<T>(f: impl FnOnce() -> T) -> (T, Counts) {
    let start = Counts::now();
    ENABLED.store(true, Relaxed);
    let r = f();
    ENABLED.store(false, Relaxed);
    (r, Counts::now().since(start))
}
