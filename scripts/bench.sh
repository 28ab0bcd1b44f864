#!/usr/bin/env bash
# libpie benchmarks: builds the simulator (release) and runs benches/pie_bench against it.
#
#   scripts/bench.sh            full run (~3-5 min on 2 cores)
#   scripts/bench.sh --quick    smaller counts, < 60 s (CI smoke test)
#   scripts/bench.sh --only streaming,upload    selected sections
#   scripts/bench.sh --check    exit non-zero if any target is missed (default: report only)
#
# Sections: ping, first-output, streaming, upload, scale, idle. The results table (Markdown) goes
# to stdout; progress to stderr. The machine is described first (for docs/BENCHMARKS.md).
# Exit status: non-zero if a measurement failed, or with --check if a target was missed.
set -euo pipefail

ROOT="$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
cd "$ROOT"

CHECK=0
ARGS=()
for a in "$@"; do
    case "$a" in
        --check) CHECK=1 ;;
        *) ARGS+=("$a") ;;
    esac
done

cargo build --release -p pie-sim --bin pie-sim
export PIE_SIM="${CARGO_TARGET_DIR:-$ROOT/target}/release/pie-sim"
cargo bench --bench pie_bench --no-run

echo "## Machine"
echo
echo "- CPUs (nproc): $(nproc)"
echo "- CPU model: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "- Kernel: $(uname -srm)"
echo "- rustc: $(rustc --version)"
echo "- Load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- Command: scripts/bench.sh ${*:-}"
echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo

OUT="$(mktemp)"
trap 'rm -f "$OUT"' EXIT
status=0
cargo bench --bench pie_bench -- "${ARGS[@]}" | tee "$OUT" || status=$?
echo
echo "- Load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$status" -ne 0 ]; then
    echo "pie_bench failed (status $status)" >&2
    exit "$status"
fi
if [ "$CHECK" -eq 1 ] && grep -q '\*\*MISS\*\*' "$OUT"; then
    echo "targets missed (see the table)" >&2
    exit 3
fi
