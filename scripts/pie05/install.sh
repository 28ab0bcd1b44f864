#!/usr/bin/env bash
# Installs a real pie-server 0.5.2 for libpie's end-to-end tests and benchmarks, on a CPU-only
# Debian machine. Safe to re-run: every finished step is recognised and skipped (a re-run takes
# about a second), so CI calls it before each stage that needs the server.
#
#   scripts/pie05/install.sh            # prints one line per step with its duration
#
# What it installs (all under $PIE05_CACHE, default ${XDG_CACHE_HOME:-~/.cache}/libpie/pie05):
#   venv/            Python venv: pie-server 0.5.2 (the server, with its wgpu engine), the
#                    python language component, the Python pie-client 0.5.3 (benchmarks
#                    compare against it), msgpack + websockets (the raw benchmark client) and
#                    numpy + tokenizers (the model generator)
#   model/           a random-weight model in the one geometry 0.5.2 loads (gen_model.py)
# plus Debian's Vulkan software rasteriser (lavapipe) through apt: the wgpu engine runs on it.
#
# Environment: PIE05_CACHE (see above), PIE05_PYTHON (interpreter for the venv; default python3,
# 3.10 or newer), PIE_NO_INSTALL=1 (do not call apt-get; fail with a message instead).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/pie05/env.sh
. "$HERE/env.sh"

started=$EPOCHREALTIME
note() { awk -v a="$started" -v b="$EPOCHREALTIME" -v m="$*" 'BEGIN { printf "[install %6.1fs] %s\n", b - a, m }'; }

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
apt_install() {
  if [ "${PIE_NO_INSTALL:-0}" = 1 ]; then
    echo "missing Debian packages: $* (PIE_NO_INSTALL=1: not installing them)" >&2
    exit 1
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

mkdir -p "$PIE05_CACHE"

# 1. Debian packages: lavapipe (mesa-vulkan-drivers) and the Vulkan loader.
needed=()
for pkg in mesa-vulkan-drivers libvulkan1; do
  dpkg -s "$pkg" >/dev/null 2>&1 || needed+=("$pkg")
done
if [ "${#needed[@]}" -gt 0 ]; then
  echo "apt: installing ${needed[*]}"
  apt_install "${needed[@]}"
fi
note "apt packages present (mesa-vulkan-drivers libvulkan1)"

# 2. The venv. Debian's python3 needs python3-venv for `-m venv` to work.
if [ ! -x "$PIE05_VENV/bin/python" ]; then
  python="${PIE05_PYTHON:-python3}"
  if ! "$python" -c 'import sys; assert sys.version_info >= (3, 10)' 2>/dev/null; then
    echo "error: $python is missing or older than 3.10 (set PIE05_PYTHON)" >&2
    exit 1
  fi
  if ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
    apt_install python3-venv
  fi
  rm -rf "$PIE05_VENV.partial"
  "$python" -m venv "$PIE05_VENV.partial"
  mv "$PIE05_VENV.partial" "$PIE05_VENV"
  note "venv created with $("$PIE05_VENV/bin/python" --version)"
fi

# 3. Pinned Python packages. The check imports them, so a half-finished pip run is redone.
if ! "$PIE05_VENV/bin/python" "$HERE/check_venv.py" 2>/dev/null; then
  "$PIE05_VENV/bin/python" -m pip install -q --disable-pip-version-check "${PIE05_PIP_PACKAGES[@]}"
  "$PIE05_VENV/bin/python" "$HERE/check_venv.py"
  note "pip: installed ${PIE05_PIP_PACKAGES[*]}"
else
  note "pip packages present"
fi

# 4. The model. Written to a temporary folder and renamed when complete, so an interrupted run
# never leaves a model that looks finished.
if [ ! -f "$PIE05_MODEL/$PIE05_MODEL_STAMP" ]; then
  rm -rf "$PIE05_MODEL" "$PIE05_MODEL.partial"
  "$PIE05_VENV/bin/python" "$HERE/gen_model.py" "$PIE05_MODEL.partial"
  touch "$PIE05_MODEL.partial/$PIE05_MODEL_STAMP"
  mv "$PIE05_MODEL.partial" "$PIE05_MODEL"
  note "model generated in $PIE05_MODEL"
else
  note "model present in $PIE05_MODEL"
fi
note "ready (PIE05_CACHE=$PIE05_CACHE)"
