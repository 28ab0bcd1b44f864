#!/usr/bin/env bash
# Start the real pie-server 0.5.2 installed by install.sh; prints `READY ws://127.0.0.1:PORT/v1/ws`
# on stdout once it accepts connections. Options: see `start.sh --help` (serve.py).
#   scripts/pie05/start.sh > server.out &      # then read the READY line; kill -TERM to stop
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/pie05/env.sh
. "$HERE/env.sh"
if [ ! -x "$PIE05_VENV/bin/python" ]; then
  echo "pie-server 0.5.2 is not installed in $PIE05_VENV: run scripts/pie05/install.sh" >&2
  exit 2
fi
exec "$PIE05_VENV/bin/python" "$HERE/serve.py" --model "$PIE05_MODEL" --server-home "$PIE05_SERVER_HOME" "$@"
