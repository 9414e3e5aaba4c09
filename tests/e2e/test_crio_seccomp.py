"""CRI-O 1.37 (../shared/kube's binary) with conmon drives lxcri for a RuntimeDefault pod: the
profile CRI-O writes (its `clone` rule has seven conditions on one argument) loads, and the
process sees the profile's decisions. CRI-O, its storage and crictl run in private mount and
network namespaces; nothing outlives the test.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from callers import LXCRI, remove_tree

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "seccomp"
sys.path.insert(0, str(REPO / "tests" / "integration"))
from test_seccomp_profiles import PINNED  # noqa: E402


def shared_dir() -> Path:
    for p in (REPO.parent / "shared", Path(os.environ.get("LXCRI_SHARED", "/work/shared"))):
        if (p / "kube" / "bin" / "crio.xz").exists():
            return p
    pytest.skip(f"CRI-O 1.37 comes from ../shared/kube (not beside {REPO}, LXCRI_SHARED unset): "
                "this test needs it")


RUN_CRIO = """#!/bin/sh
# in private mount and network namespaces: CRI-O in the background, then "$@"
mount --make-rslave /
ip link set lo up
CRIO_CLAMP_FOR_VM=1 "$W/crio" --config /dev/null --config-dir "$W/conf.d" > "$W/crio.log" 2>&1 &
crio=$!
i=0
while [ ! -S "$W/crio.sock" ] && [ $i -lt 150 ]; do sleep 0.2; i=$((i+1)); done
"$@"
rc=$?
kill $crio
wait $crio
exit $rc
"""

STEPS = """#!/bin/sh
set -e
C="$W/crictl --runtime-endpoint unix://$W/crio.sock --image-endpoint unix://$W/crio.sock --timeout 60s"
$C info > "$W/info.json"
pod=$($C runp "$W/pod.json")
for name in probe rro; do
    ctr=$($C create "$pod" "$W/$name.json" "$W/pod.json")
    cp "$W/run/vfs-containers/$ctr/userdata/config.json" "$W/$name.config.json"
    $C start "$ctr"
    i=0
    while ! $C inspect "$ctr" | grep -q CONTAINER_EXITED && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
    $C inspect "$ctr" | grep '"exitCode"' > "$W/$name.exit"
    cp "$W/logs/$name.log" "$W/$name.log"
    $C rm -f "$ctr" >/dev/null
done
$C stopp "$pod" >/dev/null
$C rmp "$pod" >/dev/null
"""


def test_runtime_default_pod_through_crio():
    shared = shared_dir()
    for tool in ("conmon", "podman", "unshare", "ip"):
        assert shutil.which(tool), f"{tool} is not installed (bash scripts/setup.sh)"
    w = Path(f"/tmp/lxcri-seccomp-crio-{uuid.uuid4().hex[:6]}")  # podman wants a runroot under 50 characters
    (w / "conf.d").mkdir(parents=True)
    (w / "logs").mkdir()
    binaries = (("crio", "kube/bin/crio.xz"), ("pinns", "kube/bin/pinns.xz"), ("crictl", "critest/bin/crictl.xz"))
    for name, src in binaries:
        with open(w / name, "wb") as out:
            subprocess.run(["xz", "-dc", str(shared / src)], stdout=out, check=True)
        (w / name).chmod(0o755)
    # an image with the probe and a /pause for the sandbox
    rootfs = w / "rootfs"
    sys.path.insert(0, str(REPO / "scripts"))
    from busybox import make_rootfs

    make_rootfs(rootfs)
    subprocess.run(["cc", "-O2", "-static", "-o", str(rootfs / "seccomp-probe"), str(FIXTURES / "probe.c")], check=True)
    (rootfs / "pause").write_text("#!/bin/sh\ntrap 'exit 0' TERM INT\nwhile :; do sleep 1; done\n")
    (rootfs / "pause").chmod(0o755)
    subprocess.run(["tar", "-C", str(rootfs), "-cf", str(w / "img.tar"), "."], check=True)
    storage = ["--root", str(w / "root"), "--runroot", str(w / "run"), "--storage-driver", "vfs"]
    image = "localhost/lxcri-seccomp-probe:1"
    r = subprocess.run(["podman", *storage, "import", str(w / "img.tar"), image], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    (w / "conf.d" / "10-lxcri-test.conf").write_text(f"""[crio]
root = "{w}/root"
runroot = "{w}/run"
storage_driver = "vfs"
clean_shutdown_file = ""
version_file = "{w}/version"
log_dir = "{w}/podlogs"
[crio.nri]
enable_nri = false
[crio.api]
listen = "{w}/crio.sock"
[crio.runtime]
default_runtime = "lxcri"
cgroup_manager = "cgroupfs"
conmon = "/usr/bin/conmon"
pinns_path = "{w}/pinns"
namespaces_dir = "{w}/ns"
container_exits_dir = "{w}/exits"
container_attach_socket_dir = "{w}/attach"
[crio.runtime.runtimes.lxcri]
runtime_path = "{LXCRI}"
runtime_type = "oci"
runtime_root = "{w}/lxcri"
[crio.image]
pause_image = "{image}"
pause_command = "/pause"
[crio.network]
network_dir = "{w}/cni"
""")
    runtime_default = {"profile_type": 0}
    (w / "pod.json").write_text(json.dumps({
        "metadata": {"name": "seccomp", "namespace": "default", "uid": w.name, "attempt": 0},
        "log_directory": str(w / "logs"),
        "linux": {"cgroup_parent": f"/{w.name}",
                  "security_context": {"namespace_options": {"network": 2}, "seccomp": runtime_default}}}))
    (w / "probe.json").write_text(json.dumps({
        "metadata": {"name": "probe"}, "image": {"image": image}, "command": ["/seccomp-probe"],
        "log_path": "probe.log", "linux": {"security_context": {"seccomp": runtime_default}}}))
    # a recursiveReadOnly volume (critest's case): a host tree with a tmpfs mounted below it
    (w / "tree" / "sub").mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "lxcri-seccomp-rro", str(w / "tree" / "sub")],
                   check=True)
    (w / "rro.json").write_text(json.dumps({
        "metadata": {"name": "rro"}, "image": {"image": image}, "log_path": "rro.log",
        "command": ["sh", "-c", "touch /mnt/top /mnt/sub/f 2>&1; true"],
        "mounts": [{"container_path": "/mnt", "host_path": str(w / "tree"), "readonly": True,
                    "recursive_read_only": True}]}))
    (w / "run-crio.sh").write_text(RUN_CRIO)
    (w / "steps.sh").write_text(STEPS)
    try:
        r = subprocess.run(["unshare", "--mount", "--net", "--fork", "sh", str(w / "run-crio.sh"), "sh",
                            str(w / "steps.sh")], env=dict(os.environ, W=str(w)), capture_output=True, text=True,
                           timeout=300, check=False)
        log = (w / "crio.log").read_text()[-3000:] if (w / "crio.log").exists() else ""
        assert r.returncode == 0, f"{r.stdout}\n{r.stderr}\n{log}"
        # what CRI-O wrote is the fixture the integration test loads
        seccomp = json.loads((w / "probe.config.json").read_text())["linux"]["seccomp"]
        assert seccomp == json.loads((FIXTURES / "crio.json").read_text())
        assert any(len(rule.get("args") or []) == 7 for rule in seccomp["syscalls"])
        assert '"exitCode": 0' in (w / "probe.exit").read_text()
        lines = [ln.split(" ", 3)[-1] for ln in (w / "probe.log").read_text().splitlines()]
        got = dict((k, int(v)) for k, v in (ln.split("=") for ln in lines))
        for name, want in PINNED["crio"].items():
            assert got.get(name) == want, f"{name}: {got.get(name)}, want {want}: {got}"
        # CRI-O saw "rro" in `lxcri features`, so it reports recursive read-only mounts and uses them
        handlers = json.loads((w / "info.json").read_text())["runtimeHandlers"]
        assert any(h.get("name") == "lxcri" and h["features"].get("recursive_read_only_mounts") for h in handlers)
        mnt = [m for m in json.loads((w / "rro.config.json").read_text())["mounts"] if m["destination"] == "/mnt"]
        assert "rro" in mnt[0]["options"], mnt
        rro_log = (w / "rro.log").read_text()
        assert rro_log.count("Read-only file system") == 2, rro_log
        assert not (w / "tree" / "top").exists() and not (w / "tree" / "sub" / "f").exists()
    finally:
        subprocess.run(["umount", "-l", str(w / "tree" / "sub")], check=False)
        for top in Path("/sys/fs/cgroup").iterdir():  # the pod's parent cgroup, when CRI-O leaves it
            if (top / w.name).is_dir():
                subprocess.run(["find", str(top / w.name), "-depth", "-type", "d", "-delete"], check=False)
        remove_tree(w)
