#!/bin/bash
# Install everything lxcri needs on a fresh Debian 12 machine (as root), idempotently:
# Debian packages (liblxc and its headers, the peers and real clients the tests use),
# a virtualenv in .venv with lxcri (its C helpers compiled by the package build) and the dev tools.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "setup.sh: run as root (containers need it)" >&2; exit 1; }

PKGS=(
  lxc lxc-dev pkg-config gcc libc6-dev          # liblxc, headers for the python bindings and the monitor
  libseccomp-dev                                # static libseccomp for the init helper (seccomp profiles)
  python3 python3-venv python3-dev              # the runtime's interpreter
  busybox-static                                # test and demo rootfs
  runc crun                                     # peers for the side-by-side benchmarks
  podman conmon containerd                      # real callers
  containernetworking-plugins iptables xz-utils # critest through CRI-O/containerd (tests/e2e/critest_env.py)
  iproute2 procps util-linux                    # ip, ps, nsenter
  containernetworking-plugins iptables openssl xz-utils skopeo  # ../shared/kube's cluster (pod tests, bench/pods.py)
  uidmap                                        # newuidmap, as on many nodes: lxcri must map ids without it
  dbus-daemon                                   # agent tests: a private bus with a fake systemd
  hyperfine                                     # CLI latency in bench/
  lxcfs fuse3                                   # per-container /proc views (lxcfs annotation)
  mmdebstrap                                    # tests: a Debian rootfs with systemd (system containers)
)
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# liblxc's compiled-in mount point for the rootfs must exist
mkdir -p /usr/lib/x86_64-linux-gnu/lxc/rootfs

if [ ! -x .venv/bin/python3 ]; then
  /usr/bin/python3 -m venv .venv
fi
.venv/bin/pip install -q --upgrade pip 2>/dev/null || true
.venv/bin/pip install -q -e '.[dev]'
echo "setup: done; .venv/bin/lxcri is the runtime"
# .venv/bin/lxcri is the C client; lxcri-py, the Python entry it falls back to, comes with a
# /bin/sh preamble that re-executes python with -I -S. On a venv we own we can point the
# shebang at the interpreter directly (-IS: no site, no PYTHON* variables) and save that exec.
sed -i "1s|.*|#!$PWD/.venv/bin/python3 -IS|" .venv/bin/lxcri-py
