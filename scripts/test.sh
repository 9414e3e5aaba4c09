#!/bin/bash
# Install everything, then run all checks and tests: lint, types, unit, integration (real
# containers through liblxc), e2e (podman + conmon, containerd's runc shim), agent, operator, chart.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check runtime agent tests bench
.venv/bin/mypy
# setsid: a test that goes wrong must never be able to signal the shell that runs the suite
exec setsid --wait .venv/bin/pytest -q -p no:cacheprovider "$@"
