#!/usr/bin/env bash
# Runs the threaded reliability tests under ThreadSanitizer (nightly, std rebuilt with TSan
# instrumentation so Arc/Mutex/atomics in std are understood), in a separate target dir.
#
#   scripts/tsan.sh                 # footprint's stress_threads + reliability's ffi:: tests
#                                   # (C ABI from 8 threads, callbacks, kills)
#   PIE_STRESS_ITERS=2000 scripts/tsan.sh
#   TSAN_CRATES="footprint reliability" TSAN_FILTERS="stress_threads disconnect::" scripts/tsan.sh
#   TSAN_FILTERS="" scripts/tsan.sh  # every test of the crates
#
# Any data race, lock-order inversion or thread leak report fails the run (halt_on_error).
# scripts/tsan.supp holds suppressions for documented false positives only (none so far).
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=x86_64-unknown-linux-gnu
rustup component add rust-src --toolchain nightly >/dev/null 2>&1 || true
export CARGO_TARGET_DIR="${TSAN_TARGET_DIR:-$PWD/target/tsan}"
# --target keeps the flags away from build scripts and proc macros (they run uninstrumented).
export RUSTFLAGS="-Zsanitizer=thread -Cforce-frame-pointers=yes"
export RUSTDOCFLAGS="-Zsanitizer=thread"
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 report_signal_unsafe=0 suppressions=$PWD/scripts/tsan.supp ${TSAN_OPTIONS:-}"
# TSan slows everything ~5-15x: fewer stress iterations, and latency bounds are scaled
# (PIE_TIME_SCALE). By default only the threaded C-ABI tests run; every reliability test
# passes under TSan too (TSAN_TESTS above).
export PIE_STRESS_ITERS="${PIE_STRESS_ITERS:-300}"
export PIE_TIME_SCALE="${PIE_TIME_SCALE:-5}"
# RSS under TSan is mostly shadow memory: footprint::leaks then checks thread counts only.
export PIE_SANITIZER=thread

tests=()
for t in ${TSAN_CRATES:-footprint reliability}; do
    tests+=(--test "$t")
done
# Name filters (substrings) applied in every crate: footprint has no ffi:: tests, reliability
# no stress_threads.
read -r -a filters <<<"${TSAN_FILTERS-stress_threads ffi::}"
cargo +nightly test -Zbuild-std --target "$TARGET" --no-fail-fast "${tests[@]}" -- --test-threads=1 \
    ${filters[@]+"${filters[@]}"}
echo "tsan: no data race, deadlock or leak reported"
