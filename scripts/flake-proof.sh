#!/usr/bin/env bash
# Proof against flakes: `cargo test --workspace` N times in a row, per profile, while a load
# generator keeps both cores busy with another build.
#
#   scripts/flake-proof.sh                               10 rounds, release then debug
#   scripts/flake-proof.sh --rounds 2 --profile release  a quick look
#   options: --rounds N (default 10), --profile release|debug|both (default both),
#            --load-jobs J (the load build's -j, default: the number of cores),
#            --round-timeout S (a round taking longer fails as a hang; default 1800)
#
# For each profile: every test binary is built first (`cargo test --workspace [--release]
# --no-run`; the test stage of scripts/test-all.sh needs nothing more: the tests find libpie and
# pie-sim in their own target/<profile>); then a load generator starts in its own process group
# — `cargo build --release -p pie-sim -j J` into a scratch target dir under /tmp, `cargo clean`,
# again, for the whole run — and `cargo test --workspace` runs round after round, stopping at the
# first failure. Each round prints its number, profile, wall time, the load average (1-minute,
# min–max sampled during the round), the CPU the load generator used (in cores) and PASS/FAIL.
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
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
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
  # setsid: the loop leads a process group of its own, so one kill reaches every cargo and rustc
  # under it. (The background subshell is not a group leader, so setsid execs without forking
  # and $! is the new group's id.)
  CARGO_TARGET_DIR="$LOAD_DIR/target" CARGO_INCREMENTAL=0 setsid bash -c '
    while true; do
      cargo build --release -p pie-sim -j "$1" --quiet || sleep 1
      cargo clean --quiet
    done' flake-proof-load "$LOAD_JOBS" >"$LOG_DIR/load.log" 2>&1 &
  LOAD_PGID=$!
  sleep 1
  if [ "$(ps -o pgid= -p "$LOAD_PGID" | tr -d ' ')" != "$LOAD_PGID" ]; then
    echo "flake-proof: the load generator is not in a process group of its own" >&2
    exit 1
  fi
  echo "flake-proof: load generator (process group $LOAD_PGID): cargo build --release -p pie-sim -j $LOAD_JOBS in $LOAD_DIR, cargo clean, repeat"
}

# CPU clock ticks used so far by the load generator's process group: live processes plus what
# they reaped from finished children.
load_ticks() {
  local total=0 f line rest
  local -a fields
  for f in /proc/[0-9]*/stat; do
    read -r line 2>/dev/null <"$f" || continue
    rest="${line##*) }"
    read -r -a fields <<<"$rest"
    # fields[2] = pgrp, [11..14] = utime stime cutime cstime
    if [ "${fields[2]}" = "$LOAD_PGID" ]; then
      total=$((total + fields[11] + fields[12] + fields[13] + fields[14]))
    fi
  done
  echo "$total"
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

  [ -n "$LOAD_PGID" ] || start_load
  # Let the load reach both cores before the first round.
  sleep 20

  passed=0
  for round in $(seq 1 "$ROUNDS"); do
    if ! kill -0 -- "-$LOAD_PGID" 2>/dev/null; then
      echo "flake-proof: the load generator stopped (see $LOG_DIR/load.log)" >&2
      failed=1
      break
    fi
    log="$LOG_DIR/$profile-round-$round.log"
    start_ns=$(date +%s%N)
    ticks_before=$(load_ticks)
    round_min=""
    round_max=""
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
      fi
      polls=$((polls + 1))
      sleep 1
    done
    rc=0
    wait "$test_pid" || rc=$?
    TEST_PGID=""
    elapsed_ns=$(($(date +%s%N) - start_ns))
    wall=$(awk -v ns="$elapsed_ns" 'BEGIN { printf "%.1f", ns / 1e9 }')
    load_cores=$(awk -v t="$(($(load_ticks) - ticks_before))" -v hz="$TICKS_PER_SECOND" -v ns="$elapsed_ns" \
      'BEGIN { printf "%.2f", (t / hz) / (ns / 1e9) }')
    if awk -v c="$load_cores" 'BEGIN { exit !(c < 1) }'; then
      echo "flake-proof: warning: the load generator used only $load_cores cores during round $round (see $LOG_DIR/load.log)"
    fi
    if [ "$rc" = 0 ]; then
      verdict=PASS
      passed=$((passed + 1))
    else
      verdict="FAIL (exit $rc)"
      [ "$rc" != 124 ] || verdict="FAIL (timed out after ${ROUND_TIMEOUT}s)"
    fi
    printf 'round %2d/%d  %-7s  %7ss  load avg %s–%s  load generator %s cores  %s\n' \
      "$round" "$ROUNDS" "$profile" "$wall" "$round_min" "$round_max" "$load_cores" "$verdict"
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
