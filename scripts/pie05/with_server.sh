#!/usr/bin/env bash
# Run a command against a fresh real pie-server 0.5.2 (installed if needed, started on a free
# loopback port, watched, restarted on an engine wedge, always stopped). The command finds the
# server in $PIE05_URL. Details and options: with_server.py.
#   scripts/pie05/with_server.sh -- python3 conformance05.py --url '$PIE05_URL'   (quote $!)
#   scripts/pie05/with_server.sh -- sh -c 'cargo test --test real05 -- --ignored'
set -euo pipefail
exec python3 "$(dirname "${BASH_SOURCE[0]}")/with_server.py" "$@"
