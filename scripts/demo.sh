#!/usr/bin/env bash
# The README's first command: install into .venv, build the demo world under var/demo/ and run
# the exporter, the receiver (and Prometheus + Alertmanager where installed) under supervisord in
# the foreground. Ctrl-C stops everything. Ports and paths: MW_DEMO_* (see docs/demo.md).
# `bash scripts/demo.sh --check` builds and validates without starting anything.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/python -m maintwatch.demo "$@"
