#!/usr/bin/env bash
# One command from a fresh clone to a running service on the embedded defaults
# (SQLite and local files under $DEEPSHIELD_HOME, default ./var).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/venv.sh" ""
cd "$root"
exec "$root/.venv/bin/deepshield" serve "$@"
