# Fuzzing smoke run: every cargo-fuzz target for $FUZZ_SECONDS (default 60) seconds each.
# Needs the nightly toolchain (cargo-fuzz is installed by scripts/fuzz.sh when missing).
stage_fuzz() {
  if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    echo "the nightly toolchain is not installed: cargo fuzz needs it (rustup toolchain install nightly)"
    return 77
  fi
  FUZZ_SECONDS="${FUZZ_SECONDS:-60}" bash scripts/fuzz.sh
}
STAGES+=(fuzz)
