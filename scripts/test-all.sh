#!/usr/bin/env bash
# README command 2 — every check of the repository; CI (.ci/run) runs it with --full.
#
#   scripts/test-all.sh              the default stages (<= 10 minutes on 2 cores from a fresh
#                                    clone, build included; README "Tests" gives each stage's time)
#   scripts/test-all.sh --full       also the long stages: bench, fuzz, tsan, real05 (PIE_FULL=1 does the same)
#   scripts/test-all.sh fmt go       only the named stages (default or long)
#
# Default stages: fmt, clippy, build, test (cargo test --workspace: wire, keys, client core,
# reliability, footprint, the C programs, examples, packaging, header, simulator), conformance,
# conformance05, c_valgrind, c_asan, go, csharp (bindings/csharp under Mono), sdl (the SDL2
# example under Xvfb). Long stages: bench (scripts/bench.sh --quick --check,
# release build), fuzz (scripts/fuzz.sh, nightly), tsan (scripts/tsan.sh, nightly), real05 (a real pie-server
# 0.5.2: scripts/pie05).
#
# One debug build in ${CARGO_TARGET_DIR:-target} is shared by the default stages; the long
# stages build their own (release, fuzz/target, target/tsan). Each stage passes, fails, or is
# skipped with the reason printed — and under CI=true a stage never skips: a missing tool
# fails it. Ends with "N passed, M failed" and exits non-zero if a stage failed.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

FULL="${PIE_FULL:-0}"
only=()
for arg in "$@"; do
  case "$arg" in
    --full) FULL=1 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    -*) echo "unknown option: $arg" >&2; exit 2 ;;
    *) only+=("${arg//-/_}") ;;
  esac
done

TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
export CARGO_TARGET_DIR="$TARGET_DIR"
LIB_DIR="$TARGET_DIR/debug"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

# Missing tools are installed first (scripts/install-deps.sh: apt-get, with sudo when not root),
# unless PIE_NO_INSTALL=1.
missing_tools=()
for tool in cargo cc c++ clang valgrind cmake pkg-config go ssh-keygen python3 make nm readelf git; do
  command -v "$tool" >/dev/null 2>&1 || missing_tools+=("$tool")
done
if [ "${#missing_tools[@]}" -gt 0 ] && [ "${PIE_NO_INSTALL:-0}" != 1 ]; then
  echo "== missing: ${missing_tools[*]}: running scripts/install-deps.sh"
  bash scripts/install-deps.sh || echo "warning: installing dependencies failed; stages needing them will fail"
fi

# A stage that cannot run: skipped (exit 77) on a developer's machine, a failure under CI.
skip() {
  echo "$*"
  if [ "${CI:-}" = true ]; then
    echo "CI=true: a stage that cannot run fails"
    return 1
  fi
  return 77
}

have_nightly() {
  rustup toolchain list 2>/dev/null | grep -q '^nightly'
}

# ---------------------------------------------------------------------------------------------
# Default stages. Each returns 0 (passed), 77 (skipped, reason printed) or anything else (failed).
# ---------------------------------------------------------------------------------------------

stage_fmt() {
  cargo fmt --all -- --check
}

stage_clippy() {
  cargo clippy --workspace --all-targets -- -D warnings
}

# Builds the library, the simulator binary and every test once; later stages reuse them.
# (Other stages call it too: after this stage it is a no-op. A narrower `cargo build -p ...`
# would resolve features differently and rebuild the library.)
build_all() {
  cargo build --workspace --all-targets &&
    ln -sf libpie.so "$LIB_DIR/libpie.so.0.2"
}

stage_build() {
  build_all
}

stage_test() {
  cargo test --workspace
}

# The shared protocol conformance suite (conformance/pie_conformance.py) is not part of this
# repository: it is looked for in $PIE_SHARED, ../shared and ./shared.
stage_conformance() {
  local shared=""
  for dir in ${PIE_SHARED:+"$PIE_SHARED"} "$ROOT/../shared" "$ROOT/shared"; do
    if [ -f "$dir/conformance/pie_conformance.py" ]; then
      shared="$dir"
      break
    fi
  done
  if [ -z "$shared" ]; then
    skip "conformance suite not found (looked in \$PIE_SHARED, ../shared, ./shared; set PIE_SHARED)"
    return
  fi
  build_all || return 1
  PIE_SHARED="$shared" PIE_SIM="$LIB_DIR/pie-sim" bash scripts/conformance.sh
}

# The Pie 0.5 conformance suite (pie05/conformance05.py, also from the shared folder) against
# `pie-sim --protocol 0.5`; same lookup and CI rule as stage_conformance.
stage_conformance05() {
  bash scripts/conformance05.sh
  local rc=$?
  # Exit 2: the suite (or python3) is not there. Under CI that is a failure, elsewhere a skip.
  if [ "$rc" = 2 ] && [ "${CI:-}" != true ]; then return 77; fi
  return "$rc"
}

# The tests that run C programs (tests/c, the C reliability program, the examples) — not the
# CMake build of the examples nor the exported-symbol check, which run no C code of their own
# and are covered by the test stage.
C_PROGRAM_TESTS=(programs:: reliability_kill:: examples::
  --skip examples::cmake_builds_the_examples --skip programs::shared_library_exports_only_pie_symbols)

# The C programs of tests/c, the C reliability program and the examples under valgrind's
# memcheck: invalid accesses, uninitialised reads, and every leak kind except "reachable"
# (definite, indirect and possibly lost all fail the run; still-reachable blocks are the
# process-lifetime statics of the Rust runtime and libc, and are reported, not failed).
stage_c_valgrind() {
  if ! command -v valgrind >/dev/null; then
    echo "valgrind is not installed (scripts/install-deps.sh installs it)"
    return 1
  fi
  # Everything runs 10-50x slower under valgrind: the programs' time bounds are scaled.
  PIE_TIME_SCALE="${PIE_TIME_SCALE:-10}" PIE_C_TEST_WRAPPER="valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect,possible --show-leak-kinds=definite,indirect,possible --quiet" \
    cargo test --test capi --test ship -- "${C_PROGRAM_TESTS[@]}"
}

# The same C programs and examples compiled with AddressSanitizer (and UBSan), linked against
# the debug libpie. libpie itself is not instrumented here (Rust's own checks cover it; the
# instrumented library runs under ThreadSanitizer in the tsan stage).
stage_c_asan() {
  PIE_TIME_SCALE="${PIE_TIME_SCALE:-3}" PIE_C_TEST_ASAN=1 cargo test --test capi --test ship -- "${C_PROGRAM_TESTS[@]}"
}

stage_go() {
  if ! command -v go >/dev/null; then
    echo "go is not installed (scripts/install-deps.sh installs golang-go)"
    return 1
  fi
  build_all || return 1
  (
    cd bindings/go || exit 1
    unformatted="$(gofmt -l .)"
    if [ -n "$unformatted" ]; then
      echo "gofmt would change: $unformatted"
      exit 1
    fi
    export CGO_ENABLED=1 CGO_CFLAGS="-I$ROOT/include" \
      CGO_LDFLAGS="-L$LIB_DIR -Wl,-rpath,$LIB_DIR" \
      PIE_SIM="$LIB_DIR/pie-sim" GOPROXY=off GOTOOLCHAIN=local GOFLAGS=-mod=mod
    go vet ./... && go test -count=1 ./...
  )
}

# The C# binding (bindings/csharp) built with Mono's mcs and tested against pie-sim.
stage_csharp() {
  command -v mcs >/dev/null && command -v mono >/dev/null ||
    { [ "${PIE_NO_INSTALL:-0}" = 1 ] || bash scripts/install-deps.sh; }
  build_all || return 1
  bash bindings/csharp/test.sh
}

# The SDL2 example under Xvfb: streamed text checked from pixels, tokens/s, frame time p99.
stage_sdl() {
  command -v xvfb-run >/dev/null && pkg-config --exists sdl2 SDL2_ttf 2>/dev/null ||
    { [ "${PIE_NO_INSTALL:-0}" = 1 ] || bash scripts/install-deps.sh; }
  build_all || return 1
  bash scripts/sdl-test.sh
}

# ---------------------------------------------------------------------------------------------
# Long stages (--full, and CI).
# ---------------------------------------------------------------------------------------------

# Benchmarks: release build, every section with small counts; --check fails on a missed stable
# target (scripts/bench.sh says which targets are checked and which are only reported).
stage_bench() {
  bash scripts/bench.sh --quick --check
}

# Fuzzing: every cargo-fuzz target for $FUZZ_SECONDS (default 60) seconds each (nightly).
stage_fuzz() {
  have_nightly || { skip "the nightly toolchain is not installed: cargo fuzz needs it (rustup toolchain install nightly)"; return; }
  FUZZ_SECONDS="${FUZZ_SECONDS:-60}" bash scripts/fuzz.sh
}

# ThreadSanitizer: the threaded C-ABI tests with libpie and std instrumented (nightly).
stage_tsan() {
  have_nightly || { skip "the nightly toolchain is not installed: ThreadSanitizer needs it (rustup toolchain install nightly)"; return; }
  bash scripts/tsan.sh
}

# A real pie-server 0.5.2 (installed from PyPI into ~/.cache/libpie/pie05 on first use, ~1 min;
# ~3 GB RSS while it runs): conformance05.py, the test inferlets, a generation and libpie's 0.5
# end-to-end tests against it (scripts/pie05/e2e.sh; a wedged engine is restarted and reported).
stage_real05() {
  # The examples and the C test link libpie.so.X.Y from the shared debug build (build_all makes
  # that SONAME link), also when this stage runs alone.
  build_all || return 1
  timeout 3600 bash scripts/pie05/with_server.sh -- bash scripts/pie05/e2e.sh
}

DEFAULT_STAGES=(fmt clippy build test conformance conformance05 c_valgrind c_asan go csharp sdl)
LONG_STAGES=(bench fuzz tsan real05)

if [ "${#only[@]}" -gt 0 ]; then
  STAGES=("${only[@]}")
elif [ "$FULL" = 1 ]; then
  STAGES=("${DEFAULT_STAGES[@]}" "${LONG_STAGES[@]}")
else
  STAGES=("${DEFAULT_STAGES[@]}")
fi

passed=0
failed=0
skipped=0
summary=()
for stage in "${STAGES[@]}"; do
  if ! declare -F "stage_$stage" >/dev/null; then
    echo "unknown stage: $stage" >&2
    failed=$((failed + 1))
    summary+=("FAILED  $stage (no such stage)")
    continue
  fi
  echo
  echo "=================== stage: $stage ($(date -u +%H:%M:%S) UTC)"
  start=$(date +%s)
  ( set -o pipefail; "stage_$stage" )
  rc=$?
  secs=$(($(date +%s) - start))
  if [ "$rc" = 0 ]; then
    passed=$((passed + 1))
    summary+=("passed  $stage (${secs}s)")
  elif [ "$rc" = 77 ]; then
    skipped=$((skipped + 1))
    summary+=("SKIPPED $stage (${secs}s)")
  else
    failed=$((failed + 1))
    summary+=("FAILED  $stage (${secs}s, exit $rc)")
  fi
done

echo
echo "=================== summary"
printf '  %s\n' "${summary[@]}"
[ "$skipped" -gt 0 ] && echo "$skipped skipped"
[ "$FULL" = 1 ] || [ "${#only[@]}" -gt 0 ] || echo "(long stages ${LONG_STAGES[*]} not run: --full runs them)"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
