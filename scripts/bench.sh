#!/usr/bin/env bash
# libpie benchmarks: builds the simulator (release) and runs benches/pie_bench against it.
#
#   scripts/bench.sh            full run (~3-5 min on 2 cores)
#   scripts/bench.sh --quick    smaller counts, < 60 s (CI smoke test)
#   scripts/bench.sh --only streaming,upload    selected sections
#   scripts/bench.sh --check    exit 3 if a STABLE target is missed (allocation counts, memory,
#                               the delayed-ACK stall); noisy targets (latency and throughput
#                               ratios on a shared machine) are reported, never enforced
#   scripts/bench.sh --quick --check    the smoke run of the default test command
#   scripts/bench.sh --update-doc   also replace the results in docs/BENCHMARKS.md (between the
#                                   "results:begin" and "results:end" markers)
#
# Sections: ping, first-output, streaming, upload, scale, idle. The results table (Markdown) goes
# to stdout; progress to stderr. The machine is described first (for docs/BENCHMARKS.md).
# Exit status: non-zero if a measurement failed, or with --check if a stable target was missed.
set -euo pipefail

ROOT="$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
cd "$ROOT"

CHECK=0
UPDATE_DOC=0
ARGS=()
for a in "$@"; do
    case "$a" in
        --check) CHECK=1 ;;
        --update-doc) UPDATE_DOC=1 ;;
        *) ARGS+=("$a") ;;
    esac
done

TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
cargo build --release -p pie-sim --bin pie-sim
export PIE_SIM="$TARGET/release/pie-sim"
# The C API as it ships: the library `make` builds (crate types cdylib + staticlib only, which
# LTO optimises better than the benchmark's own Rust build), copied aside before the benchmark
# build replaces it, and a C driver linked with the copy (benches/pie_bench/shipped.rs).
make lib >&2
SHIPPED="$TARGET/shipped"
mkdir -p "$SHIPPED"
SONAME="$(readelf -d "$TARGET/release/libpie.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')"
cp "$TARGET/release/libpie.so" "$SHIPPED/$SONAME"
ln -sf "$SONAME" "$SHIPPED/libpie.so"
cc -O2 -Wall -Wextra -Werror -std=c11 -D_POSIX_C_SOURCE=200809L -Iinclude \
    benches/c/ping_driver.c -o "$SHIPPED/ping_driver" \
    -L"$SHIPPED" -lpie -Wl,-rpath,"$SHIPPED"
export PIE_BENCH_SHIPPED_DRIVER="$SHIPPED/ping_driver"
cargo bench --bench pie_bench --no-run

OUT="$(mktemp)"
trap 'rm -f "$OUT" "$OUT.bench"' EXIT
{
echo "### Machine"
echo
echo "- CPUs (nproc): $(nproc)"
echo "- CPU model: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "- Kernel: $(uname -srm)"
echo "- rustc: $(rustc --version)"
echo "- Load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- Command: scripts/bench.sh ${*:-}"
echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
} | tee "$OUT"

status=0
cargo bench --bench pie_bench -- "${ARGS[@]}" > "$OUT.bench" || status=$?
cat "$OUT.bench" | tee -a "$OUT"
rm -f "$OUT.bench"
echo | tee -a "$OUT"
echo "- Load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT"
if [ "$status" -ne 0 ]; then
    echo "pie_bench failed (status $status)" >&2
    exit "$status"
fi
if [ "$UPDATE_DOC" -eq 1 ]; then
    DOC="$ROOT/docs/BENCHMARKS.md"
    # Everything between the markers is replaced by this run's output.
    awk -v res="$OUT" '
        /<!-- results:begin -->/ { print; while ((getline line < res) > 0) print line; skip = 1; next }
        /<!-- results:end -->/ { skip = 0 }
        !skip { print }
    ' "$DOC" > "$DOC.tmp" && mv "$DOC.tmp" "$DOC"
    echo "updated $DOC" >&2
fi
if [ "$CHECK" -eq 1 ]; then
    missed="$(sed -n 's/^stable targets missed: \([0-9]*\)$/\1/p' "$OUT")"
    if [ -z "$missed" ]; then
        echo "no 'stable targets missed' line in the output" >&2
        exit 3
    fi
    if [ "$missed" -ne 0 ]; then
        echo "$missed stable target(s) missed (see the table)" >&2
        exit 3
    fi
fi
