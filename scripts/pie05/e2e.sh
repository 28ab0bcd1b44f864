#!/usr/bin/env bash
# Everything libpie checks against a real pie-server 0.5.2. Runs inside with_server.sh, which
# provides PIE05_URL (the test-all.sh stage `real05` does that):
#   scripts/pie05/with_server.sh -- bash scripts/pie05/e2e.sh
#
# Parts (each bounded by a timeout; all run even if one fails):
#   smoke        scripts/pie05/smoke05.py: the test inferlets and a compat-openai generation
#                through the raw Python client (proves the server set-up itself)
#   conformance  the shared conformance05.py (looked for in $PIE_SHARED/pie05, ../shared/pie05,
#                ./shared/pie05) with the repository's inferlets; SKIPPED when absent, except
#                under CI=true, where the shared folder is always beside the clone: then FAILED
#   libpie       the Rust end-to-end tests tests/real05 (ignored in a normal `cargo test`
#                because they need this server), which include the C programs
#   examples     the C examples of examples-c/ (the README's cc line), each run against the
#                server: the quick start and event_loop generate with compat-openai, chat,
#                upload (files both ways), detached and callbacks install tests/inferlets05
#   watchdog     watchdog_selftest.py: a (fake) engine panic in the server log makes
#                with_server.sh restart the server, and the same URL answers again
# Ends with "N passed, M failed" and a non-zero status if a part failed. Arguments name parts
# to run only those (e.g. `e2e.sh examples`).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT="$PWD"
# shellcheck source=scripts/pie05/env.sh
. scripts/pie05/env.sh

if [ -z "${PIE05_URL:-}" ]; then
  echo "PIE05_URL is not set: run this through scripts/pie05/with_server.sh" >&2
  exit 2
fi
INFERLETS="${PIE05_INFERLETS:-$ROOT/tests/inferlets05}"
passed=0
failed=0
skipped=0
summary=()
part() { # name rc seconds
  case "$2" in
    0) passed=$((passed + 1)); summary+=("passed  $1 (${3}s)") ;;
    77) skipped=$((skipped + 1)); summary+=("SKIPPED $1 (${3}s)") ;;
    *) failed=$((failed + 1)); summary+=("FAILED  $1 (${3}s, exit $2)") ;;
  esac
}
ONLY=" $* "
run_part() { # name command...
  local name="$1" start rc
  shift
  if [ "$ONLY" != "  " ] && [[ "$ONLY" != *" $name "* ]]; then
    return
  fi
  echo
  echo "---- real05 part: $name"
  start=$(date +%s)
  "$@"
  rc=$?
  part "$name" "$rc" "$(($(date +%s) - start))"
}

part_smoke() {
  timeout 900 "$PIE05_VENV/bin/python" scripts/pie05/smoke05.py --url "$PIE05_URL" --inferlets "$INFERLETS"
}

part_conformance() {
  local suite="" dir
  for dir in ${PIE_SHARED:+"$PIE_SHARED"} "$ROOT/../shared" "$ROOT/shared"; do
    if [ -f "$dir/pie05/conformance05.py" ]; then
      suite="$dir/pie05/conformance05.py"
      break
    fi
  done
  if [ -z "$suite" ]; then
    echo "SKIPPED: conformance05.py not found (looked in \$PIE_SHARED/pie05, ../shared/pie05, ./shared/pie05)"
    if [ "${CI:-}" = true ]; then
      echo "CI=true: the shared suite must be present"
      return 1
    fi
    return 77
  fi
  local out
  out="$(mktemp)"
  timeout 900 python3 "$suite" --url "$PIE05_URL" --inferlets "$INFERLETS" | tee "$out"
  local rc=${PIPESTATUS[0]}
  # A suite that ran nothing proves nothing.
  if [ "$rc" = 0 ] && ! grep -Eq '^[1-9][0-9]* passed, 0 failed' "$out"; then
    echo "conformance05.py did not report any passed check"
    rc=1
  fi
  rm -f "$out"
  return "$rc"
}

part_libpie() {
  if [ ! -f tests/real05/main.rs ]; then
    echo "SKIPPED: no libpie 0.5 end-to-end tests in this tree yet (tests/real05/main.rs)"
    return 77
  fi
  # --ignored: these tests need the real server and are ignored by a plain `cargo test`.
  timeout 1500 cargo test --test real05 -- --ignored --test-threads=1 &&
    timeout 600 cargo test --test client v05::real_server_end_to_end -- --ignored --exact
}

# Runs one example (timeout 600 s) and checks its output (stdout and stderr) has every given
# fragment.
run_example() { # expected... -- exe args...
  local want=() out rc w
  while [ "$1" != -- ]; do want+=("$1"); shift; done
  shift
  echo "\$ $*"
  out="$(PIE_INFERLETS05="$INFERLETS" PIE_MAX_TOKENS=3 timeout 600 "$@" 2>&1)"
  rc=$?
  printf '%s\n' "$out"
  if [ "$rc" != 0 ]; then
    echo "FAILED: $1 exited with $rc"
    return 1
  fi
  for w in "${want[@]}"; do
    if ! grep -qF -- "$w" <<<"$out"; then
      echo "FAILED: $1 did not print '$w'"
      return 1
    fi
  done
}

part_examples() {
  local lib="${CARGO_TARGET_DIR:-$ROOT/target}/debug" bin ok=0 name
  case "$lib" in /*) ;; *) lib="$ROOT/$lib" ;; esac
  bin="$(mktemp -d)"
  timeout 1500 cargo build -p pie --lib || return 1
  for name in quickstart chat upload detached callbacks event_loop; do
    cc -std=c11 -Wall -Wextra -Werror -pthread -I include "examples-c/$name.c" -o "$bin/$name" \
      -L "$lib" -lpie -Wl,-rpath,"$lib" || return 1
  done
  # A plain ws://host:port: the examples detect Pie 0.5 themselves.
  local url="${PIE05_URL%/v1/ws}"
  run_example "completed: " -- "$bin/quickstart" "$url" "Tell me about pie" || ok=1
  run_example "< echo: hello" "chat completed: {\"echoed\": 1}" -- "$bin/chat" "$url" hello || ok=1
  # echo-args, not file-echo: on pie-server 0.5.2 a file that arrives before the inferlet waits in
  # receive_file() is dropped (PROTOCOL-0.5 §5.9), and the example answers "send me a file" at
  # once, so file-echo lost its file in about one run in two here. Files both ways on the real
  # server are covered by tests/real05 (libpie part above).
  run_example "installed echo-args" "completed: " -- \
    "$bin/upload" "$url" "$INFERLETS/echo_args.py" || ok=1
  run_example "detached=1" "completed: slept" -- "$bin/detached" "$url" || ok=1
  run_example "stream ended: PIE_STATUS_STREAM_ENDED" -- "$bin/callbacks" "$url" plum || ok=1
  run_example "[first prompt] " "done in " -- "$bin/event_loop" "$url" || ok=1
  rm -rf "$bin"
  return "$ok"
}

run_part smoke part_smoke
run_part conformance part_conformance
run_part libpie part_libpie
run_part examples part_examples
# Last, because it replaces the server: the watchdog notices a wedge and restarts the engine.
run_part watchdog timeout 600 python3 scripts/pie05/watchdog_selftest.py

echo
echo "---- real05 summary (server $PIE05_URL)"
printf '  %s\n' "${summary[@]}"
[ "$skipped" -gt 0 ] && echo "$skipped skipped"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
