#!/usr/bin/env bash
# README command 2 — and what CI runs (.ci/run): every check of the repository.
#
# Stages (each a function below; all run even if one fails):
#   fmt, clippy, build, test (cargo test --workspace: Rust core, C API, examples, packaging,
#   header check, simulator), conformance, c-valgrind, c-asan, go, csharp, sdl
# and any stage added by a file in scripts/stages.d/ (see "HOOKS" below).
#
# One build is shared by all stages: the debug profile in ${CARGO_TARGET_DIR:-target}; the
# packaging test installs that build (no release build). Ends with "N passed, M failed" and
# exits non-zero if a stage failed. Run only some stages: ./scripts/test-all.sh fmt go
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

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

# ---------------------------------------------------------------------------------------------
# Stages. Each returns 0 (passed), 1 (failed) or 77 (skipped: a prerequisite is absent and the
# reason is printed).
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
# repository: it is looked for in $PIE_SHARED, ../shared and ./shared; without it the stage is
# reported as SKIPPED (not passed).
stage_conformance() {
  local shared=""
  for dir in ${PIE_SHARED:+"$PIE_SHARED"} "$ROOT/../shared" "$ROOT/shared"; do
    if [ -f "$dir/conformance/pie_conformance.py" ]; then
      shared="$dir"
      break
    fi
  done
  if [ -z "$shared" ]; then
    echo "conformance suite not found (looked in \$PIE_SHARED, ../shared, ./shared; set PIE_SHARED)"
    # CI always has the shared folder beside the clone: a missing suite there is a failure.
    if [ "${CI:-}" = true ]; then return 1; fi
    return 77
  fi
  PIE_SHARED="$shared" bash scripts/conformance.sh
}

# The C API test programs (tests/c) and the examples under valgrind's memcheck: leaks,
# invalid accesses.
stage_c_valgrind() {
  if ! command -v valgrind >/dev/null; then
    echo "valgrind is not installed (scripts/install-deps.sh installs it)"
    return 1
  fi
  PIE_C_TEST_WRAPPER="valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --quiet" \
    cargo test --test c_api --test examples
}

# The same programs built with AddressSanitizer (libpie itself is not instrumented).
stage_c_asan() {
  PIE_C_TEST_ASAN=1 cargo test --test c_api --test examples
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
    CGO_ENABLED=1 CGO_CFLAGS="-I$ROOT/include" \
        CGO_LDFLAGS="-L$LIB_DIR -Wl,-rpath,$LIB_DIR" \
        PIE_SIM="$LIB_DIR/pie-sim" GOPROXY=off GOTOOLCHAIN=local GOFLAGS=-mod=mod \
        go vet ./... &&
      CGO_ENABLED=1 CGO_CFLAGS="-I$ROOT/include" \
        CGO_LDFLAGS="-L$LIB_DIR -Wl,-rpath,$LIB_DIR" \
        PIE_SIM="$LIB_DIR/pie-sim" GOPROXY=off GOTOOLCHAIN=local GOFLAGS=-mod=mod \
        go test -count=1 ./...
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

STAGES=(fmt clippy build test conformance c_valgrind c_asan go csharp sdl)

# ---------------------------------------------------------------------------------------------
# HOOKS for further stages (benchmarks, fuzzing, ThreadSanitizer, ...). Either define the
# function here and list it in STAGES, or — preferred, no edit of this file needed — add a file
# scripts/stages.d/NAME.sh that defines `stage_NAME() { ...; }` and appends it:
#     STAGES+=(NAME)
# Files are sourced in name order, after the stages above, with ROOT, TARGET_DIR, LIB_DIR and
# CARGO_TARGET_DIR set. Placeholders, for the owners to fill in:
#   stage_bench  — benchmark stage (scripts/stages.d/bench.sh)
#   stage_fuzz   — fuzzing smoke run (scripts/stages.d/fuzz.sh)
#   stage_tsan   — ThreadSanitizer run of the threaded C tests (scripts/stages.d/tsan.sh)
# ---------------------------------------------------------------------------------------------
for hook in scripts/stages.d/*.sh; do
  [ -e "$hook" ] || continue
  # shellcheck source=/dev/null
  . "$hook"
done

if [ "$#" -gt 0 ]; then
  STAGES=("${@//-/_}")
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
  echo "=================== stage: $stage"
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
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
