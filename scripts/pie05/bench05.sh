#!/usr/bin/env bash
# Benchmarks libpie against the Python pie-client 0.5.3 and a minimal raw Python client on one
# real pie-server 0.5.2 (started here, stopped at the end). Options: bench05.py.
#   scripts/pie05/bench05.sh [--quick] [--json FILE]
# libpie's client is benches/bench05_client.rs (release build, made here unless --libpie COMMAND
# names another client that prints the same JSON): column "libpie" through the C ABI (--c-api),
# column "libpie-core" through the Rust core.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
# shellcheck source=scripts/pie05/env.sh
. "$HERE/env.sh"
bash "$HERE/install.sh"

args=("$@")
if [[ " $* " != *" --libpie "* ]]; then
  echo "bench05: building libpie's bench client (cargo bench --bench bench05_client --no-run)" >&2
  built="$(cd "$ROOT" && cargo bench --bench bench05_client --no-run 2>&1 | tee /dev/stderr |
    sed -n 's/^ *Executable .*(\(.*\))$/\1/p' | tail -1)"
  if [ -z "$built" ]; then
    echo "bench05: building the libpie client failed" >&2
    exit 1
  fi
  case "$built" in /*) ;; *) built="$ROOT/$built" ;; esac
  args+=(--libpie "$built --c-api" --libpie-core "$built" --floor "$built")
fi
exec bash "$HERE/with_server.sh" --no-install --retries 0 -- "$PIE05_VENV/bin/python" "$HERE/bench05.py" "${args[@]}"
