# Benchmark smoke run: every benchmark section with small counts (release build, < 1 minute of
# measurements). It fails only when a measurement cannot be taken; targets are reported, not
# enforced, because throughput on a shared 2-core CI machine moves by tens of percent between
# runs (docs/BENCHMARKS.md). The full run is `scripts/bench.sh`.
stage_bench() {
  bash scripts/bench.sh --quick
}
STAGES+=(bench)
