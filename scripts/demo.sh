#!/bin/bash
# The main job: install, then run a busybox container through a private containerd (as a
# Kubernetes node would run it: containerd -> containerd-shim-runc-v2 -> lxcri), no cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python scripts/demo.py "$@"
