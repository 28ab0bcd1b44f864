# ThreadSanitizer run of the threaded C-ABI stress and reliability tests (nightly, std rebuilt
# with TSan instrumentation; separate target dir).
stage_tsan() {
  if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    echo "the nightly toolchain is not installed: ThreadSanitizer needs it"
    return 77
  fi
  bash scripts/tsan.sh
}
STAGES+=(tsan)
