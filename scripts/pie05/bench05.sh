#!/usr/bin/env bash
# Benchmarks libpie against the Python pie-client 0.5.3 and a minimal raw Python client on one
# real pie-server 0.5.2 (started here, stopped at the end). Options: bench05.py.
#   scripts/pie05/bench05.sh [--quick] [--libpie COMMAND] [--json FILE]
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/pie05/env.sh
. "$HERE/env.sh"
bash "$HERE/install.sh"
exec bash "$HERE/with_server.sh" --no-install --retries 0 -- "$PIE05_VENV/bin/python" "$HERE/bench05.py" "$@"
