#!/usr/bin/env bash
# Run the whole test suite: prepare the machine (Debian tools, local services), install into
# .venv, then pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/prepare-machine.sh
bash scripts/bootstrap.sh
exec .venv/bin/python -m pytest "$@"
