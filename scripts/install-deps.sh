#!/usr/bin/env bash
# Installs what building and testing libpie needs on a fresh Debian machine. Safe to re-run:
# it only installs what is missing. Needs root (or sudo) for apt-get. --full adds the nightly
# toolchain (rust-src) and cargo-fuzz for the long test stages (CI passes it).
set -euo pipefail

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

# Debian packages: C toolchains for the C/C++ tests and examples, valgrind, CMake and
# pkg-config for the packaging tests, Go for the Go binding, ssh-keygen/openssl for key tests,
# python3 for the protocol conformance suite, git (scripts locate the repository with it), binutils
# (nm/readelf: the packaging test checks exported symbols and the SONAME; objcopy: make install
# splits the debug info off), make (make install), Mono (the C# binding: mcs compiler, runtime),
# SDL2 + SDL2_ttf, a monospace font and Xvfb (the SDL2 example, tested in a virtual X server).
apt_packages=(build-essential clang valgrind cmake pkg-config golang-go openssh-client openssl python3
              git binutils make mono-mcs mono-runtime libsdl2-dev libsdl2-ttf-dev fonts-dejavu-core
              xvfb xauth)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo (Rust) is required: install it from your distribution or rustup" >&2
  exit 1
fi
if command -v rustup >/dev/null 2>&1; then
  installed="$(rustup component list --installed 2>/dev/null || true)"
  for c in clippy rustfmt; do
    grep -q "^$c" <<<"$installed" || rustup component add "$c"
  done
else
  for c in clippy fmt; do
    cargo "$c" --version >/dev/null 2>&1 ||
      echo "warning: cargo $c is missing (install rustup, or Debian's rust-clippy/rustfmt)" >&2
  done
fi
# --full: also what the long stages of scripts/test-all.sh --full need (CI): the nightly
# toolchain with rust-src (ThreadSanitizer rebuilds std) and cargo-fuzz.
if [ "${1:-}" = --full ]; then
  if ! command -v rustup >/dev/null 2>&1; then
    echo "error: --full needs rustup (nightly toolchain for fuzzing and ThreadSanitizer)" >&2
    exit 1
  fi
  rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
  rustup component list --toolchain nightly --installed 2>/dev/null | grep -q '^rust-src' ||
    rustup component add rust-src --toolchain nightly
  cargo +nightly fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked
fi
echo "dependencies ready"
