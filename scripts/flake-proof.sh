#!/usr/bin/env bash
# Proof against flakes: `cargo test --workspace` N times in a row, per profile, while a load
# generator keeps both cores busy with another build.
#
#   scripts/flake-proof.sh                               10 rounds, release then debug
#   scripts/flake-proof.sh --rounds 2 --profile release  a quick look
#   options: --rounds N (default 10), --profile release|debug|both (default both),
#            --load-jobs J (parallel load builds, default: the number of cores),
#            --round-timeout S (a round taking longer fails as a hang; default 1800)
#
# For each profile: every test binary is built first (`cargo test --workspace [--release]
# --no-run`; the test stage of scripts/test-all.sh needs nothing more: the tests find libpie and
# pie-sim in their own target/<profile>); then a load generator starts in its own process group
# — J workers, each `cargo build --release -p pie-sim -j 1` into a scratch target dir under /tmp,
# `cargo clean`, again, for the whole run — and `cargo test --workspace` runs round after round,
# stopping at the first failure. Each round prints its number, profile, wall time, the load
# average (1-minute, min–max sampled every 5 s), the load generator's demand (its runnable
# threads, averaged over the samples; J means both cores are asked for all the time) and the CPU
# it actually got (in cores), and PASS/FAIL.
# Logs: ${CARGO_TARGET_DIR:-target}/flake-proof/<profile>-round-<n>.log (all kept; a failing
# round's path is printed). Ends with a line like
#   flake-proof: release 10/10 passed, debug 10/10 passed (load avg 2.9–7.4)
# and exits non-zero if a round failed or the load generator stopped. The load generator and
# every cargo/rustc under it are killed on exit (kill -- -PGID), and its scratch dir removed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

ROUNDS=10
PROFILE=both
LOAD_JOBS="$(nproc)"
ROUND_TIMEOUT=1800
while [ "$#" -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS="${2:?--rounds needs a number}"; shift 2 ;;
    --profile) PROFILE="${2:?--profile needs release, debug or both}"; shift 2 ;;
    --load-jobs) LOAD_JOBS="${2:?--load-jobs needs a number}"; shift 2 ;;
    --round-timeout) ROUND_TIMEOUT="${2:?--round-timeout needs seconds}"; shift 2 ;;
    -h|--help) awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$ROUNDS" in ''|*[!0-9]*|0) echo "--rounds must be a positive number" >&2; exit 2 ;; esac
case "$PROFILE" in
  release|debug) PROFILES=("$PROFILE") ;;
  both) PROFILES=(release debug) ;;
  *) echo "--profile must be release, debug or both" >&2; exit 2 ;;
esac

TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
export CARGO_TARGET_DIR="$TARGET_DIR"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
LOG_DIR="$TARGET_DIR/flake-proof"
mkdir -p "$LOG_DIR"

# The tools the test crates run (C compilers, CMake, binutils, ssh-keygen); scripts/install-deps.sh
# installs them.
for tool in cc c++ clang cmake make pkg-config nm readelf ssh-keygen timeout; do
  command -v "$tool" >/dev/null 2>&1 ||
    { echo "flake-proof: $tool is missing (scripts/install-deps.sh installs it)" >&2; exit 2; }
done

# --- the load generator ----------------------------------------------------------------------
LOAD_PGID=""
LOAD_DIR=""
TEST_PGID=""
stop_load() {
  if [ -n "$LOAD_PGID" ]; then
    kill -TERM -- "-$LOAD_PGID" 2>/dev/null || true
    # cargo forwards nothing on TERM; anything still alive after a moment is killed outright.
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      kill -0 -- "-$LOAD_PGID" 2>/dev/null || break
      sleep 0.5
    done
    kill -KILL -- "-$LOAD_PGID" 2>/dev/null || true
    wait "$LOAD_PGID" 2>/dev/null || true
    LOAD_PGID=""
  fi
  if [ -n "$LOAD_DIR" ]; then
    rm -rf "$LOAD_DIR"
    LOAD_DIR=""
  fi
}
cleanup() {
  # `timeout` runs each round in a process group of its own: an interrupted round goes too.
  [ -z "$TEST_PGID" ] || kill -TERM -- "-$TEST_PGID" 2>/dev/null || true
  stop_load
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_load() {
  LOAD_DIR="$(mktemp -d /tmp/flake-proof-load.XXXXXX)"
  # J workers, each one `cargo build -j 1` in its own target dir: every worker always has one
  # compiler running (a single -j J build has long one-core stretches: fat LTO, the last crates),
  # so the load asks for J cores the whole time. setsid: the workers share a process group of
  # their own, so one kill reaches every cargo and rustc under them. (The background subshell is
  # not a group leader, so setsid execs without forking and $! is the new group's id.)
  CARGO_INCREMENTAL=0 setsid bash -c '
    for worker in $(seq 1 "$1"); do
      ( export CARGO_TARGET_DIR="$2/worker-$worker"
        while true; do
          cargo build --release -p pie-sim -j 1 --quiet || sleep 1
          cargo clean --quiet
        done ) &
    done
    wait' flake-proof-load "$LOAD_JOBS" "$LOAD_DIR" >"$LOG_DIR/load.log" 2>&1 &
  LOAD_PGID=$!
  sleep 1
  if [ "$(ps -o pgid= -p "$LOAD_PGID" | tr -d ' ')" != "$LOAD_PGID" ]; then
    echo "flake-proof: the load generator is not in a process group of its own" >&2
    exit 1
  fi
  echo "flake-proof: load generator (process group $LOAD_PGID): $LOAD_JOBS x (cargo build --release -p pie-sim -j 1, cargo clean, repeat) under $LOAD_DIR"
}

# One look at the load generator's process group: "TICKS RUNNABLE" — the CPU clock ticks it used
# so far (live processes plus what they reaped from finished children) and how many of its
# threads are running or waiting for a core right now (its demand for CPU).
load_sample() {
  local ticks=0 runnable=0 f line rest task
  local -a fields
  for f in /proc/[0-9]*/stat; do
    read -r line 2>/dev/null <"$f" || continue
    rest="${line##*) }"
    read -r -a fields <<<"$rest"
    # fields[0] = state, [2] = pgrp, [11..14] = utime stime cutime cstime
    [ "${fields[2]}" = "$LOAD_PGID" ] || continue
    ticks=$((ticks + fields[11] + fields[12] + fields[13] + fields[14]))
    for task in "${f%/stat}"/task/[0-9]*/stat; do
      read -r line 2>/dev/null <"$task" || continue
      rest="${line##*) }"
      [ "${rest:0:1}" != R ] || runnable=$((runnable + 1))
    done
  done
  echo "$ticks $runnable"
}
TICKS_PER_SECOND="$(getconf CLK_TCK)"

# --- rounds ----------------------------------------------------------------------------------
LOAD_MIN=""
LOAD_MAX=""
summary=()
failed=0

note_load() { # keeps the run's min and max 1-minute load average
  local value="$1"
  if [ -z "$LOAD_MIN" ] || awk -v a="$value" -v b="$LOAD_MIN" 'BEGIN { exit !(a < b) }'; then LOAD_MIN="$value"; fi
  if [ -z "$LOAD_MAX" ] || awk -v a="$value" -v b="$LOAD_MAX" 'BEGIN { exit !(a > b) }'; then LOAD_MAX="$value"; fi
}

for profile in "${PROFILES[@]}"; do
  flag=()
  [ "$profile" = release ] && flag=(--release)
  echo "== flake-proof: building the $profile tests ($(date -u +%H:%M:%S) UTC)"
  cargo test --workspace "${flag[@]}" --no-run >"$LOG_DIR/$profile-build.log" 2>&1 ||
    { echo "flake-proof: the $profile build failed: $LOG_DIR/$profile-build.log" >&2; tail -30 "$LOG_DIR/$profile-build.log" >&2; exit 1; }

  if [ -z "$LOAD_PGID" ]; then
    start_load
    # The 1-minute load average lags: let it climb to J (at most 90 s) before the first round.
    for _ in $(seq 1 18); do
      read -r one _ </proc/loadavg
      awk -v a="$one" -v j="$LOAD_JOBS" 'BEGIN { exit !(a < j) }' || break
      sleep 5
    done
    echo "flake-proof: load average $(cut -d' ' -f1-3 /proc/loadavg) before the first round"
  fi

  passed=0
  for round in $(seq 1 "$ROUNDS"); do
    if ! kill -0 -- "-$LOAD_PGID" 2>/dev/null; then
      echo "flake-proof: the load generator stopped (see $LOG_DIR/load.log)" >&2
      failed=1
      break
    fi
    log="$LOG_DIR/$profile-round-$round.log"
    start_ns=$(date +%s%N)
    read -r ticks_before _ <<<"$(load_sample)"
    round_min=""
    round_max=""
    demand_sum=0
    demand_samples=0
    timeout --kill-after=30 "$ROUND_TIMEOUT" cargo test --workspace "${flag[@]}" >"$log" 2>&1 &
    test_pid=$!
    TEST_PGID=$test_pid
    polls=0
    while kill -0 "$test_pid" 2>/dev/null; do
      if [ $((polls % 5)) = 0 ]; then
        read -r one _ </proc/loadavg
        note_load "$one"
        if [ -z "$round_min" ] || awk -v a="$one" -v b="$round_min" 'BEGIN { exit !(a < b) }'; then round_min="$one"; fi
        if [ -z "$round_max" ] || awk -v a="$one" -v b="$round_max" 'BEGIN { exit !(a > b) }'; then round_max="$one"; fi
        read -r _ runnable <<<"$(load_sample)"
        demand_sum=$((demand_sum + runnable))
        demand_samples=$((demand_samples + 1))
      fi
      polls=$((polls + 1))
      sleep 1
    done
    rc=0
    wait "$test_pid" || rc=$?
    TEST_PGID=""
    elapsed_ns=$(($(date +%s%N) - start_ns))
    wall=$(awk -v ns="$elapsed_ns" 'BEGIN { printf "%.1f", ns / 1e9 }')
    read -r ticks_after _ <<<"$(load_sample)"
    load_cores=$(awk -v t="$((ticks_after - ticks_before))" -v hz="$TICKS_PER_SECOND" -v ns="$elapsed_ns" \
      'BEGIN { printf "%.2f", (t / hz) / (ns / 1e9) }')
    load_demand=$(awk -v s="$demand_sum" -v n="$demand_samples" 'BEGIN { printf "%.1f", n ? s / n : 0 }')
    if awk -v d="$load_demand" -v j="$LOAD_JOBS" 'BEGIN { exit !(d < j - 0.5) }'; then
      echo "flake-proof: warning: the load generator kept only $load_demand threads runnable on average during round $round, not $LOAD_JOBS (see $LOG_DIR/load.log)"
    fi
    if [ "$rc" = 0 ]; then
      verdict=PASS
      passed=$((passed + 1))
    else
      verdict="FAIL (exit $rc)"
      [ "$rc" != 124 ] || verdict="FAIL (timed out after ${ROUND_TIMEOUT}s)"
    fi
    printf 'round %2d/%d  %-7s  %7ss  load avg %s–%s  load generator: %s runnable, got %s cores  %s\n' \
      "$round" "$ROUNDS" "$profile" "$wall" "$round_min" "$round_max" "$load_demand" "$load_cores" "$verdict"
    if [ "$rc" != 0 ]; then
      echo "flake-proof: round $round ($profile) failed; full log: $log"
      grep -E '^(test .* FAILED|---- |failures:|error)|panicked' "$log" | head -20 || true
      failed=1
      break
    fi
  done
  summary+=("$profile $passed/$ROUNDS passed")
  [ "$failed" = 0 ] || break
done

stop_load
line="flake-proof: $(IFS=,; echo "${summary[*]}" | sed 's/,/, /g') (load avg ${LOAD_MIN:-?}–${LOAD_MAX:-?})"
echo "$line"
echo "$line" >>"$LOG_DIR/summary.log"
[ "$failed" = 0 ]
