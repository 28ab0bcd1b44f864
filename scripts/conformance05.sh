#!/usr/bin/env bash
# Run the shared Pie 0.5 conformance suite (pie05/conformance05.py, 40 checks of the real
# pie-server 0.5.2's behaviour) against `pie-sim --protocol 0.5`, with the simulator's default
# switches (the real server's defects on). The suite is looked for in $PIE_SHARED, ../shared
# and ./shared. Exits non-zero unless it ends with "N passed, 0 failed" (N > 0) and prints no
# FAIL line; 2 when the suite or python3 is missing.
set -euo pipefail

ROOT="$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
SUITE=""
for dir in ${PIE_SHARED:+"$PIE_SHARED"} "$ROOT/../shared" "$ROOT/shared"; do
    if [ -f "$dir/pie05/conformance05.py" ]; then
        SUITE="$dir/pie05/conformance05.py"
        break
    fi
done
[ -n "$SUITE" ] || { echo "pie05/conformance05.py not found (looked in \$PIE_SHARED, ../shared, ./shared; set PIE_SHARED)" >&2; exit 2; }
command -v python3 >/dev/null || { echo "python3 is required" >&2; exit 2; }

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

"$BIN" --protocol 0.5 --listen 127.0.0.1:0 > "$WORK/sim.out" 2> "$WORK/sim.err" &
SIM_PID=$!
for _ in $(seq 1 100); do
    if grep -q '^listening on ' "$WORK/sim.out"; then break; fi
    sleep 0.05
done
URL="$(sed -n 's/^listening on //p' "$WORK/sim.out" | head -n1)"
[ -n "$URL" ] || { echo "pie-sim --protocol 0.5 did not start:"; cat "$WORK/sim.err"; exit 1; }

echo "== conformance05 ($SUITE) against $URL"
python3 "$SUITE" --url "$URL" | tee "$WORK/suite.log" || true
if grep -q '^FAIL' "$WORK/suite.log" || ! grep -Eq '^[1-9][0-9]* passed, 0 failed' "$WORK/suite.log"; then
    echo "conformance05: FAILED" >&2
    exit 1
fi
echo "conformance05: passed"
