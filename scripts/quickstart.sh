#!/usr/bin/env bash
# README command 1: see libpie work, from a fresh checkout.
#
# Installs missing build dependencies (scripts/install-deps.sh; may use sudo apt-get), builds
# libpie and the pie-sim simulator, starts pie-sim on a free port, builds
# examples-c/quickstart.c with the plain cc line from the README and runs it: the completion
# streams to the terminal. The simulator is stopped on exit.
#
#   ./scripts/quickstart.sh [--protocol 2026-01|0.5] [--url URL] ["your prompt"]
#
# --protocol 0.5 starts the simulator as a Pie 0.5 server (pie-sim --protocol 0.5) instead of
# the January-2026 one (the default). --url runs the quick start against a server that is
# already running (e.g. a real pie-server 0.5: ws://127.0.0.1:8080) and starts no simulator.
# The quick start itself finds out which protocol the server speaks.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

PROTOCOL="2026-01"
URL=""
PROMPT="Tell me about the best apple pie"
while [ $# -gt 0 ]; do
  case "$1" in
    --protocol) PROTOCOL="${2:?--protocol needs 2026-01 or 0.5}"; shift 2 ;;
    --protocol=*) PROTOCOL="${1#--protocol=}"; shift ;;
    --url) URL="${2:?--url needs a ws:// URL}"; shift 2 ;;
    --url=*) URL="${1#--url=}"; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    ws://*|wss://*) URL="$1"; shift ;;
    *) PROMPT="$1"; shift ;;
  esac
done
case "$PROTOCOL" in
  2026-01|0.5) ;;
  *) echo "quickstart.sh: --protocol must be 2026-01 or 0.5, not '$PROTOCOL'" >&2; exit 2 ;;
esac

for tool in cargo cc; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "== $tool is missing: installing dependencies"
    bash scripts/install-deps.sh
    break
  fi
done

TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
LIB_DIR="$TARGET_DIR/debug"

echo "== building libpie and pie-sim (cargo build, debug)"
cargo build -p pie --lib -p pie-sim --bin pie-sim
# libpie.so's SONAME is libpie.so.0.2: give the build tree that name too.
ln -sf libpie.so "$LIB_DIR/libpie.so.0.2"

echo "== building examples-c/quickstart.c"
mkdir -p "$TARGET_DIR/examples-c"
EXE="$TARGET_DIR/examples-c/quickstart"
set -x
cc -std=c11 -Wall -Wextra -Werror -I include examples-c/quickstart.c -o "$EXE" \
  -L "$LIB_DIR" -lpie -Wl,-rpath,"$LIB_DIR"
{ set +x; } 2>/dev/null

WORK="$(mktemp -d)"
SIM_PID=""
cleanup() {
  if [ -n "$SIM_PID" ]; then
    kill "$SIM_PID" 2>/dev/null || true
    wait "$SIM_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

if [ -z "$URL" ]; then
  echo "== starting the simulator (protocol $PROTOCOL)"
  "$LIB_DIR/pie-sim" --protocol "$PROTOCOL" --listen 127.0.0.1:0 > "$WORK/sim.out" \
    2> "$WORK/sim.err" &
  SIM_PID=$!
  for _ in $(seq 1 200); do
    URL="$(sed -n 's/^listening on //p' "$WORK/sim.out" | head -n 1)"
    [ -n "$URL" ] && break
    kill -0 "$SIM_PID" 2>/dev/null || break
    sleep 0.05
  done
  if [ -z "$URL" ]; then
    echo "pie-sim did not start:" >&2
    cat "$WORK/sim.err" >&2
    exit 1
  fi
  echo "pie-sim is listening on $URL"
fi

echo "== running: $EXE $URL \"$PROMPT\""
echo
"$EXE" "$URL" "$PROMPT"
echo
echo "== done. Next: ./scripts/test-all.sh runs every test; README.md explains the API."
