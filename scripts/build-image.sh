#!/bin/bash
# Build the agent image offline, without a container engine daemon or a base image:
#
#     bash scripts/build-image.sh [TAG]        # default localhost/lxcri-agent:dev
#
# The image is a root filesystem put together from Debian packages (glibc, Python 3.11's
# interpreter and the stdlib modules the agent imports, busybox-static) plus the agent's own
# Python packages copied from .venv (scripts/setup.sh made it) and the self-contained runtime
# tree built here by `lxcri-agent build-tree`; `podman import` turns it into an image. No
# package manager runs inside the image, so no CA bundle has to be mounted into a build (the
# Dockerfile's build needs one: see docs/agent.md), and nothing the agent does not use ships.
#
# Debian packages come from apt's cache when they are there, else `apt-get download` (the
# machine's own apt sources and proxy). Needs root (podman's storage), podman, dpkg-deb.
set -euo pipefail
cd "$(dirname "$0")/.."
TAG=${1:-localhost/lxcri-agent:dev}
PODMAN=${PODMAN:-podman}
[ -x .venv/bin/lxcri-agent ] || { echo "build-image.sh: run scripts/setup.sh first (.venv)" >&2; exit 1; }
WORK=$(mktemp -d /var/tmp/lxcri-image.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
ROOT=$WORK/rootfs
mkdir -p "$ROOT" "$WORK/debs"
chmod 755 "$WORK" && chown _apt "$WORK/debs" 2>/dev/null || true

# 1. Debian packages: the interpreter, the C libraries its stdlib modules load, busybox
# lxcfs, libfuse3-3 and fuse3 (fusermount3): the chart's lxcfs DaemonSet runs this image too
PKGS=(libc6 libgcc-s1 python3.11-minimal libpython3.11-minimal libpython3.11-stdlib
      libssl3 libffi8 zlib1g libexpat1 libbz2-1.0 liblzma5 libuuid1 libcrypt1 busybox-static
      lxcfs libfuse3-3 fuse3)
for p in "${PKGS[@]}"; do
  deb=$(ls -v /var/cache/apt/archives/"${p}"_*_amd64.deb 2>/dev/null | tail -1 || true)
  if [ -z "$deb" ]; then
    (cd "$WORK/debs" && apt-get download -q "$p" >/dev/null 2>&1) || { echo "cannot download $p" >&2; exit 1; }
    deb=$(ls "$WORK/debs/${p}_"*.deb | head -1)
  fi
  dpkg-deb -x "$deb" "$ROOT"
done

# 2. what the agent never uses: docs, locales, gconv, the stdlib's tests, GUI, packaging tools
rm -rf "$ROOT"/usr/share/{doc,man,info,lintian,locale,binfmts,pixmaps,applications} "$ROOT"/usr/lib/x86_64-linux-gnu/gconv \
       "$ROOT"/usr/lib/python3.11/{test,idlelib,tkinter,turtledemo,ensurepip,lib2to3,pydoc_data,distutils,venv} \
       "$ROOT"/usr/lib/python3.11/config-* "$ROOT"/etc/python3.11/sitecustomize.py "$ROOT"/usr/bin/pydoc* \
       "$ROOT"/usr/lib/x86_64-linux-gnu/{engines-3,ossl-modules} "$ROOT"/sbin "$ROOT"/usr/sbin \
       "$ROOT"/etc/init.d "$ROOT"/lib/systemd "$ROOT"/lib/udev
find "$ROOT" -name __pycache__ -prune -exec rm -rf {} +

# 3. the agent's packages (lxcri, lxcri_agent and their runtime dependencies) from .venv;
#    not the liblxc bindings: only the runtime tree uses liblxc, and it brings its own
.venv/bin/python - "$ROOT/usr/lib/python3/dist-packages" <<'EOF'
import importlib.metadata as md, shutil, sys
from pathlib import Path
from packaging.requirements import Requirement
dest = Path(sys.argv[1]); dest.mkdir(parents=True, exist_ok=True)
skip = {"lxc"}
# lxcri with its agent extra (kopf, kubernetes, ...: the runtime alone does not need them);
# a requirement counts when its marker holds for one of the extras its parent was asked with
todo, seen = [("lxcri[agent]", {""})], set()
while todo:
    text, extras = todo.pop()
    req = Requirement(text)
    name = req.name.lower().replace("_", "-")
    if name in seen or name in skip or (req.marker and not any(req.marker.evaluate({"extra": e}) for e in extras)):
        continue
    seen.add(name)
    dist = md.distribution(name)
    todo += [(r, set(req.extras) or {""}) for r in dist.requires or []]
    for f in dist.files or []:
        src = Path(dist.locate_file(f))
        parts = Path(f).parts
        if parts[0] in ("..", "bin") or "__pycache__" in parts or not src.is_file() or "__editable__" in f.name \
                or f.name.endswith(".pth"):
            continue
        if parts[0] in ("kubernetes",) and len(parts) > 1 and parts[1] in ("aio", "test", "e2e_test"):
            continue  # the asyncio copy of the client and its tests: unused
        out = dest / f
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, out)
print("packages:", " ".join(sorted(seen)))
EOF
# .venv holds lxcri itself as an editable install: the agent's package from the repository (the
# runtime's package is not needed here, the tree below carries it)
cp -a agent/lxcri_agent "$ROOT/usr/lib/python3/dist-packages/"
find "$ROOT/usr/lib/python3/dist-packages" -name __pycache__ -prune -exec rm -rf {} +
# compiled once here (the pod's root filesystem is read-only: imports could never cache them), and
# shipped instead of the sources (both would double the size); the agent's own package keeps its
# sources too, for readable tracebacks
.venv/bin/python -m compileall -q -j 2 -b --invalidation-mode unchecked-hash \
  -s "$ROOT" -p / "$ROOT/usr/lib/python3.11" "$ROOT/usr/lib/python3/dist-packages" >/dev/null || true
find "$ROOT/usr/lib/python3.11" "$ROOT/usr/lib/python3/dist-packages" -name '*.py' -not -path '*/lxcri_agent/*' \
  -exec sh -c 'for f; do if [ -f "${f}c" ]; then rm "$f"; fi; done' sh {} +

# 4. the runtime tree the agent installs on nodes (interpreter, liblxc and the helpers bundled)
.venv/bin/lxcri-agent --log-format text build-tree "$ROOT/usr/lib/lxcri-agent/tree" >/dev/null

# 5. entry points, a shell and nsenter (busybox), users (kopf looks up its uid's name), dirs
for cmd in lxcri-agent:lxcri_agent.cli lxcri-operator:lxcri_agent.operator.main; do
  printf '#!/usr/bin/python3.11 -I\nimport sys\nfrom %s import main\nsys.exit(main())\n' "${cmd#*:}" > "$ROOT/usr/bin/${cmd%%:*}"
  chmod 755 "$ROOT/usr/bin/${cmd%%:*}"
done
ln -sf python3.11 "$ROOT/usr/bin/python3"
for a in sh nsenter mount umount mkdir cat ls env unshare sleep rm grep; do ln -sf busybox "$ROOT/bin/$a"; done
mkdir -p "$ROOT"/{etc,tmp,host,run/lxc,root,var/tmp,proc,sys,dev}
chmod 1777 "$ROOT/tmp" "$ROOT/var/tmp"
printf 'root:x:0:0:root:/root:/bin/sh\nnonroot:x:65532:65532:nonroot:/nonexistent:/bin/false\n' > "$ROOT/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' > "$ROOT/etc/group"
printf 'passwd: files\ngroup: files\nhosts: files dns\n' > "$ROOT/etc/nsswitch.conf"

# 6. the image, then the checks a broken build must fail: the agent starts, its packages import,
#    and the tree runs with neither Python's nor the distro's liblxc in reach (env -i)
SIZE=$(du -sm "$ROOT" | cut -f1)
tar -C "$ROOT" --numeric-owner -cf - . | "$PODMAN" import \
  --change 'ENTRYPOINT ["lxcri-agent"]' --change 'CMD ["run"]' \
  --change 'ENV PATH=/usr/bin:/bin' --change 'ENV LXCRI_HOST_ROOT=/host' --change 'ENV PYTHONDONTWRITEBYTECODE=1' \
  --change 'USER 0' - "$TAG" >/dev/null
# runc: crun 1.8 (Debian 12's, podman's default) refuses hybrid cgroup hosts
OCI=$(command -v runc || true)
RUN=("$PODMAN" run ${OCI:+--runtime "$OCI"} --rm --network none --ulimit nofile=20000:20000 --ulimit nproc=20000:20000)
"${RUN[@]}" --entrypoint /usr/bin/python3.11 "$TAG" -I -c \
  'import kopf, kubernetes, aiohttp, jeepney, tomlkit, prometheus_client, lxcri_agent.cli, lxcri_agent.operator.main, lxcri_agent.report, lxcri_agent.leave'
"${RUN[@]}" --entrypoint /usr/bin/lxcfs "$TAG" --version >/dev/null
"${RUN[@]}" "$TAG" --version >/dev/null
"${RUN[@]}" --entrypoint /bin/env "$TAG" -i /usr/lib/lxcri-agent/tree/lxcri --version >/dev/null
"${RUN[@]}" --entrypoint /bin/env "$TAG" -i /usr/lib/lxcri-agent/tree/lxcri features >/dev/null
[ "$("${RUN[@]}" --entrypoint /bin/sh "$TAG" -c 'echo $PATH')" = /usr/bin:/bin ] || { echo "PATH is wrong in $TAG" >&2; exit 1; }
"${RUN[@]}" --user 65532 --entrypoint /usr/bin/python3.11 "$TAG" -I -c 'import getpass; getpass.getuser()'
echo "built $TAG (${SIZE} MB uncompressed)"
