#!/usr/bin/env bash
# One command from a fresh clone to the whole test suite: system packages, virtual environment, tests.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/system-packages.sh
bash scripts/venv.sh "train,dev,scale"
export PATH="$root/.venv/bin:$PATH"
exec "$root/.venv/bin/python" -m pytest "$@"
