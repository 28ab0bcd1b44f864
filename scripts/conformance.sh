#!/usr/bin/env bash
# Run the shared Pie conformance suite against pie-sim, twice: (1) authentication off with an
# internal token, (2) authentication on with an Ed25519 user. Both with the echo program.
# Exits non-zero unless both runs end with "N passed, 0 failed" (N > 0) and no FAIL line.
set -euo pipefail

ROOT="$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
SHARED="${PIE_SHARED:-$ROOT/../shared}"
SUITE="$SHARED/conformance/pie_conformance.py"
[ -f "$SUITE" ] || { echo "conformance suite not found at $SUITE (set PIE_SHARED)" >&2; exit 2; }
command -v ssh-keygen >/dev/null || { echo "ssh-keygen is required" >&2; exit 2; }

cd "$ROOT"
cargo build -p pie-sim --bin pie-sim
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/pie-sim"

WORK="$(mktemp -d)"
SIM_PID=""
cleanup() {
    if [ -n "$SIM_PID" ]; then kill "$SIM_PID" 2>/dev/null || true; wait "$SIM_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

"$BIN" make-program --builtin echo > "$WORK/echo.wasm"
ssh-keygen -q -t ed25519 -N "" -C conformance -f "$WORK/alice" >/dev/null

# Start pie-sim with the given arguments on a free port; sets SIM_PID and URL.
start_sim() {
    : > "$WORK/sim.out"
    "$BIN" --listen 127.0.0.1:0 "$@" > "$WORK/sim.out" 2> "$WORK/sim.err" &
    SIM_PID=$!
    for _ in $(seq 1 100); do
        if grep -q '^listening on ' "$WORK/sim.out"; then break; fi
        sleep 0.05
    done
    URL="$(sed -n 's/^listening on //p' "$WORK/sim.out" | head -n1)"
    [ -n "$URL" ] || { echo "pie-sim did not start:"; cat "$WORK/sim.err"; exit 1; }
}

stop_sim() {
    kill "$SIM_PID"
    wait "$SIM_PID" || true
    SIM_PID=""
}

# Run the suite; fail unless it passes at least one check, reports 0 failures and prints no
# FAIL line ("0 passed, 0 failed" means nothing ran: a failure).
run_suite() {
    local name="$1"; shift
    echo "== conformance ($name) against $URL"
    local out="$WORK/$name.log"
    python3 "$SUITE" --url "$URL" "$@" | tee "$out" || true
    if grep -q '^FAIL' "$out" || ! grep -Eq '^[1-9][0-9]* passed, 0 failed$' "$out"; then
        echo "conformance ($name): FAILED" >&2
        return 1
    fi
}

status=0
TOKEN="conformance$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"

start_sim --internal-token "$TOKEN"
run_suite auth-off --internal-token "$TOKEN" \
    --program-behaviour "echo:$WORK/echo.wasm" --program "$WORK/echo.wasm" || status=1
stop_sim

start_sim --auth-user alice --auth-key "$WORK/alice.pub"
run_suite auth-on --auth-user alice --auth-key "$WORK/alice" \
    --program-behaviour "echo:$WORK/echo.wasm" --program "$WORK/echo.wasm" || status=1
stop_sim

if [ "$status" -eq 0 ]; then echo "conformance: both runs passed"; fi
exit "$status"
