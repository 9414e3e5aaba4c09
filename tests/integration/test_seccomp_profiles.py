"""The RuntimeDefault profiles CRI-O, containerd and Docker put into config.json, loaded as they come.

Each fixture (tests/fixtures/seccomp, see generate.py there) is linux.seccomp as the caller
writes it for a container with the caller's default capabilities. A probe inside makes the
system calls the profiles decide on and prints each result; runc runs the same bundle as the
reference, and a few results are pinned on their own (CRI-O's clone rule has seven conditions
on one argument: the namespace flags must fail with its EPERM, not the default ENOSYS).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from lxcri_testlib import leftovers, reap

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "seccomp"
CRIO_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_SETGID", "CAP_SETUID",
             "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_KILL"]
DOCKER_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
               "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
               "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]
EPERM, ENOSYS = 1, 38
# what each profile must decide, whatever runc does: {profile: {probe: errno}}
PINNED = {
    "crio": {"fork": 0, "mkdir": 0, "clone_newuser": EPERM, "clone_newns": EPERM, "clone_newnet": EPERM,
             "clone3": ENOSYS, "unshare_newuser": ENOSYS, "personality_query": 0, "personality_bsd": ENOSYS,
             "socket_unix": 0},
    "containerd": {"fork": 0, "mkdir": 0, "clone_newuser": EPERM, "clone_newns": EPERM, "clone3": ENOSYS,
                   "unshare_newuser": EPERM, "personality_query": 0, "personality_bsd": EPERM, "socket_unix": 0},
    "docker": {"fork": 0, "mkdir": 0, "clone_newuser": EPERM, "clone_newns": EPERM, "clone3": ENOSYS,
               "unshare_newuser": EPERM, "personality_query": 0, "personality_bsd": EPERM, "socket_unix": 0},
}
CAPS = {"crio": CRIO_CAPS, "containerd": DOCKER_CAPS, "docker": DOCKER_CAPS}


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("probe") / "seccomp-probe"
    subprocess.run(["cc", "-O2", "-static", "-o", str(out), str(FIXTURES / "probe.c")], check=True)
    return out


def probe_bundle(make_bundle: Any, probe: Path, profile: str, nnp: bool) -> Any:
    b = make_bundle(["/seccomp-probe"])
    shutil.copy2(probe, b.path / "rootfs" / "seccomp-probe")
    caps = CAPS[profile]
    b.config["process"]["capabilities"] = {k: list(caps) for k in ("bounding", "effective", "permitted")}
    b.config["process"]["noNewPrivileges"] = nnp
    b.config["linux"]["seccomp"] = json.loads((FIXTURES / f"{profile}.json").read_text())
    return b.save()


def parse(out: str) -> dict[str, int]:
    return {k: int(v) for k, v in (ln.split("=", 1) for ln in out.splitlines() if "=" in ln)}


def run_runc(bundle: Any, tmp_path: Path, cid: str) -> dict[str, int]:
    r = subprocess.run(["runc", "--root", str(tmp_path / "runc-root"), "run", "--bundle", str(bundle.path), cid],
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, check=False)
    subprocess.run(["runc", "--root", str(tmp_path / "runc-root"), "delete", "--force", cid],
                   capture_output=True, check=False)
    assert r.returncode == 0, f"runc: {r.stderr}"
    return parse(r.stdout)


@pytest.mark.parametrize("profile", ["crio", "containerd", "docker"])
def test_runtime_default_profile(lxcri, make_bundle, tmp_path, probe, profile):
    for nnp in (False, True):  # kubelet's default is false: the helper then loads it while privileged
        b = probe_bundle(make_bundle, probe, profile, nnp)
        cid = lxcri.new_id(f"seccomp-{profile}")
        pidf = tmp_path / f"{cid}.pid"
        r = lxcri.create(b, cid, pid_file=pidf)
        assert r.returncode == 0, r.stderr
        lxcri("start", cid, check=True)
        status = reap(int(pidf.read_text()))
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, (status, (b.path / "out.err").read_text())
        got = parse((b.path / "out").read_text())
        for name, want in PINNED[profile].items():
            assert got.get(name) == want, f"{profile}: {name} gave {got.get(name)}, want {want}: {got}"
        reference = run_runc(b, tmp_path, f"seccomp-runc-{cid}")
        assert got == reference, f"{profile}: lxcri {got} but runc {reference}"
        lxcri("delete", cid, check=True)
        assert leftovers(cid, lxcri.root) == []
