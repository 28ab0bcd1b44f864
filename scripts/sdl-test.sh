#!/usr/bin/env bash
# Tests examples-c/sdl_chat.c (SDL2 + SDL2_ttf) in a virtual X server (xvfb-run). Builds it
# against the debug libpie, has pie-sim stream a scripted completion of 15,000 tokens at
# >= 1,000 tokens/s into its window, and checks:
#   - from the pixels of its last frame: the text region equals the expected text drawn by the
#     same program (--render-text, no server), differs from a text with one word changed, and
#     is not blank;
#   - every token arrived, at >= 1,000 tokens/s;
#   - frame time (the main thread's time per frame, waiting for the next frame excluded)
#     p99 < 16.7 ms while streaming. A game owns the machine it runs on; a shared test machine
#     does not, so where allowed (root) the simulator, Xvfb and the example run with real-time
#     priority (chrt -f) — other builds must not steal the frames being measured — and that
#     check (alone) gets three tries. The main thread's CPU time per frame is printed too.
# Without SDL2/SDL2_ttf/xvfb-run/the font it exits 77 (skipped), except under CI=true, where
# everything is installed (scripts/install-deps.sh) and a missing piece is a failure.
#
#   scripts/sdl-test.sh            (after cargo build; uses ${CARGO_TARGET_DIR:-target}/debug)
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
LIB_DIR="$TARGET_DIR/debug"
FONT=/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf

missing=""
pkg-config --exists sdl2 SDL2_ttf 2>/dev/null || missing+=" libsdl2-dev/libsdl2-ttf-dev"
command -v xvfb-run >/dev/null || missing+=" xvfb"
[ -f "$FONT" ] || missing+=" fonts-dejavu-core"
command -v python3 >/dev/null || missing+=" python3"
if [ -n "$missing" ]; then
  echo "sdl-test: missing:$missing (scripts/install-deps.sh installs them)"
  [ "${CI:-}" = true ] && exit 1
  exit 77
fi
for f in "$LIB_DIR/libpie.so" "$LIB_DIR/pie-sim"; do
  [ -e "$f" ] || { echo "sdl-test: $f not found: run cargo build --workspace first"; exit 1; }
done
# The build tree needs the library under its SONAME too (what the linked program asks for).
SONAME="$(readelf -d "$LIB_DIR/libpie.so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')"
[ -n "$SONAME" ] && ln -sf libpie.so "$LIB_DIR/$SONAME"

WORK="$(mktemp -d)"
SIM_PID=""
cleanup() {
  [ -n "$SIM_PID" ] && kill "$SIM_PID" 2>/dev/null && wait "$SIM_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

EXE="$WORK/sdl_chat"
# shellcheck disable=SC2046
cc -std=c11 -O2 -Wall -Wextra -Werror -I include examples-c/sdl_chat.c -o "$EXE" \
  $(pkg-config --cflags --libs sdl2 SDL2_ttf) -L "$LIB_DIR" -lpie -Wl,-rpath,"$LIB_DIR" || exit 1

# The scripted completion: 15,000 one-word tokens, a 1 ms pause after every sixth
# (at most 6,000 tokens/s), then Completed. expected.txt is what the window must show.
python3 - "$WORK" <<'PY' || exit 1
import sys
work = sys.argv[1]
TOKENS = 15000
words = ["crust", "apple", "butter", "oven", "golden", "flaky", "cinnamon", "slice", "warm",
         "sugar", "lattice", "filling", "bake", "dough", "cherry", "pecan", "cream", "tart"]
tokens = [" " + words[(i * 7 + i // 18) % len(words)] + ("," if i % 11 == 10 else "") for i in range(TOKENS)]
steps = []
for i, t in enumerate(tokens):
    steps.append("stdout " + t.replace(" ", "\\s"))
    if i % 6 == 5:
        steps.append("sleep 1")
steps.append("complete done")
open(f"{work}/steps", "w").write("\0".join(steps))
open(f"{work}/expected.txt", "w").write("".join(tokens))
wrong = tokens[:]
wrong[-5] = " zzz"
open(f"{work}/wrong.txt", "w").write("".join(wrong))
PY
mapfile -d '' STEPS < "$WORK/steps"   # one argument per step (xargs could split them)
"$LIB_DIR/pie-sim" make-program "${STEPS[@]}" > "$WORK/program.wasm" || exit 1

${RT[@]+"${RT[@]}"} "$LIB_DIR/pie-sim" --listen 127.0.0.1:0 > "$WORK/sim.out" 2> "$WORK/sim.err" &
SIM_PID=$!
URL=""
for _ in $(seq 1 200); do
  URL="$(sed -n 's/^listening on //p' "$WORK/sim.out" | head -n 1)"
  [ -n "$URL" ] && break
  sleep 0.05
done
[ -n "$URL" ] || { echo "sdl-test: pie-sim did not start"; cat "$WORK/sim.err"; exit 1; }

# Real-time priority for what is measured, when the system allows it.
RT=()
if command -v chrt >/dev/null && chrt -f 10 true 2>/dev/null; then RT=(chrt -f 10); fi

PROMPT="stream test"
XVFB=(xvfb-run -a -s "-screen 0 1024x768x24")
"${XVFB[@]}" "$EXE" --render-text "$WORK/expected.txt" --prompt "$PROMPT" \
  --screenshot "$WORK/expected.ppm" > /dev/null || exit 1
"${XVFB[@]}" "$EXE" --render-text "$WORK/wrong.txt" --prompt "$PROMPT" \
  --screenshot "$WORK/wrong.ppm" > /dev/null || exit 1

for attempt in 1 2 3; do
  echo "== sdl_chat $URL --program (attempt $attempt)"
  if ! ${RT[@]+"${RT[@]}"} "${XVFB[@]}" "$EXE" "$URL" --program "$WORK/program.wasm" --prompt "$PROMPT" \
      --exit-when-done --screenshot "$WORK/streamed.ppm" > "$WORK/run.out"; then
    cat "$WORK/run.out"
    echo "sdl-test: sdl_chat failed"
    exit 1
  fi
  cat "$WORK/run.out"
  python3 - "$WORK" <<'PY'
import re, sys
work = sys.argv[1]
out = open(f"{work}/run.out").read()

def ppm(path):
    data = open(path, "rb").read()
    magic, size, maxval, pixels = data.split(b"\n", 3)
    assert magic == b"P6" and maxval == b"255", path
    w, h = map(int, size.split())
    return w, h, pixels

x, y, w, h = map(int, re.search(r"text region (\d+) (\d+) (\d+) (\d+)", out).groups())
def region(path):
    W, H, px = ppm(path)
    return b"".join(px[(row * W + x) * 3:(row * W + x + w) * 3] for row in range(y, y + h))

streamed, expected, wrong = (region(f"{work}/{n}.ppm") for n in ("streamed", "expected", "wrong"))
background = streamed[:3]
inked = sum(1 for i in range(0, len(streamed), 3) if streamed[i:i + 3] != background)
failures = []
if inked < 0.03 * w * h:
    failures.append(f"text region nearly blank: {inked} inked pixels")
if streamed != expected:
    diff = sum(1 for i in range(0, len(streamed), 3) if streamed[i:i + 3] != expected[i:i + 3])
    failures.append(f"streamed text differs from the expected text in {diff} pixels")
if expected == wrong:
    failures.append("the pixel check cannot tell a changed word apart")

tokens, rate = re.search(r"tokens (\d+) in [\d.]+ s: (\d+) tokens/s", out).groups()
if int(tokens) != 15000:
    failures.append(f"{tokens} tokens arrived, 15000 were sent")
if int(rate) < 1000:
    failures.append(f"the simulator streamed only {rate} tokens/s (< 1,000)")
frames, p99 = re.search(r"(\d+) while streaming: frame time p50 [\d.]+ ms, p99 ([\d.]+) ms", out).groups()
if int(frames) < 60:
    failures.append(f"only {frames} frames while streaming")
print(f"pixels: text region {w}x{h}, {inked} inked, equal to the expected rendering: {streamed == expected}")
if failures:
    print("FAIL: " + "; ".join(failures))
    sys.exit(1)
if float(p99) >= 16.7:
    with open("/proc/loadavg") as f:
        print(f"frame time p99 {p99} ms >= 16.7 ms (load average {f.read().split()[0]})")
    sys.exit(3)
print(f"PASS: {tokens} tokens at {rate} tokens/s, frame time p99 {p99} ms over {frames} frames")
PY
  rc=$?
  [ "$rc" = 3 ] || exit "$rc"     # only a slow frame is tried again
done
echo "sdl-test: frame time p99 stayed >= 16.7 ms in 3 runs"
exit 1
