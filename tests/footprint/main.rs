//! Tests that measure the whole process — thread counts, resident memory, bytes allocated — and
//! so must not share it with any other test. libtest runs tests on parallel threads (and its own
//! test threads come and go, changing the thread count), so this crate has its own harness
//! (`harness = false` in Cargo.toml): the tests below run one after the other on the main
//! thread. Arguments: names (substrings) select tests as with libtest; `--skip NAME` excludes;
//! other flags are accepted and ignored.

#[path = "../reliability/capi.rs"]
mod capi;
mod leaks;
mod memory;
mod stress_threads;
#[path = "../reliability/support.rs"]
mod support;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

const TESTS: &[(&str, fn())] = &[
    (
        "leaks::no_thread_or_memory_leak_across_failures",
        leaks::no_thread_or_memory_leak_across_failures,
    ),
    (
        "memory::upload_memory_stays_at_a_few_chunks",
        memory::upload_memory_stays_at_a_few_chunks,
    ),
    (
        "memory::memory_is_flat_over_sequential_instances",
        memory::memory_is_flat_over_sequential_instances,
    ),
    (
        "stress_threads::stress_8_threads_one_client_c_api",
        stress_threads::stress_8_threads_one_client_c_api,
    ),
];

fn main() {
    let mut filters = Vec::new();
    let mut skips = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--skip" => skips.extend(args.next()),
            "--list" => {
                for (name, _) in TESTS {
                    println!("{name}: test");
                }
                return;
            }
            flag if flag.starts_with('-') => {}
            _ => filters.push(arg),
        }
    }
    let selected: Vec<_> = TESTS
        .iter()
        .filter(|(name, _)| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str())))
        .filter(|(name, _)| !skips.iter().any(|s| name.contains(s.as_str())))
        .collect();
    println!("\nrunning {} tests (one at a time)", selected.len());
    let mut failed = Vec::new();
    for (name, test) in &selected {
        let start = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(test));
        let secs = start.elapsed().as_secs_f64();
        match outcome {
            Ok(()) => println!("test {name} ... ok ({secs:.1}s)"),
            Err(_) => {
                println!("test {name} ... FAILED ({secs:.1}s)");
                failed.push(*name);
            }
        }
    }
    let passed = selected.len() - failed.len();
    if failed.is_empty() {
        println!("\ntest result: ok. {passed} passed; 0 failed\n");
    } else {
        println!("\nfailures:\n    {}", failed.join("\n    "));
        println!(
            "\ntest result: FAILED. {passed} passed; {} failed\n",
            failed.len()
        );
        std::process::exit(101);
    }
}
