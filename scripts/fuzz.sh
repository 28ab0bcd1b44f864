#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ for $FUZZ_SECONDS seconds each (default 60).
#
#   scripts/fuzz.sh                      # all targets, 60 s each (the CI run)
#   FUZZ_SECONDS=3600 scripts/fuzz.sh    # the long run (docs/RELIABILITY.md)
#   scripts/fuzz.sh decode_server key_der  # only these targets
#
# Needs the nightly toolchain; installs cargo-fuzz if it is missing. Seeds in fuzz/seeds/<target>
# are copied into the working corpus fuzz/corpus/<target> (not committed). A crash stops the run
# with a non-zero status; the input is in fuzz/artifacts/<target>/ — add it to
# tests/reliability/regressions.rs and fix the bug.
set -euo pipefail

cd "$(dirname "$0")/.."
FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
# A separate target dir: sanitizer builds must not mix with the normal build cache.
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$PWD/fuzz/target}"

if ! rustup toolchain list | grep -q '^nightly'; then
    rustup toolchain install nightly --profile minimal
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cd fuzz && cargo +nightly fuzz list)
fi

# Key derivation (up to 1024 bcrypt rounds, ~20 s under ASan) and the client round trip are
# slow per input; give them room before
# libFuzzer calls an input a hang.
declare -A EXTRA=(
    [client_frames]="-timeout=20 -max_len=4096"
    [key_der]="-timeout=60 -max_len=8192"
    [key_from_bytes]="-timeout=60 -max_len=16384"
)

for t in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$t"
    if [ -d "fuzz/seeds/$t" ]; then
        cp -n fuzz/seeds/"$t"/* "fuzz/corpus/$t/" 2>/dev/null || true
    fi
    echo "== fuzzing $t for ${FUZZ_SECONDS}s"
    # shellcheck disable=SC2086
    (cd fuzz && cargo +nightly fuzz run "$t" "corpus/$t" -- \
        -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 -print_final_stats=1 \
        ${EXTRA[$t]:-})
done
echo "fuzz: all ${#targets[@]} targets ran ${FUZZ_SECONDS}s without a crash"
