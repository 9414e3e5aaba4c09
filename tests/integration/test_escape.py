"""A hostile container trying to get out, for real: each of these attacks reached host root once.

- The CVE-2019-5736 class: container root grabs /proc/PID/exe of a runtime helper in its pid
  namespace and reopens it for writing once the helper has exec'd (exe_grabber.c does it).
- The CVE-2024-21626 class: process.cwd (a pod's workingDir) = /proc/self/fd/N, resolved
  through an fd of the runtime's that points at a host directory.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from lxcri_testlib import LXCRI, leftovers, reap_any

HOSTILE = Path(__file__).resolve().parent / "hostile"
LIBEXEC = Path(__file__).resolve().parents[2] / "runtime" / "lxcri" / "libexec" / "bin"
EXECS = 200
# Kubernetes' default capabilities (what a pod's root has unless it asks for fewer)
K8S_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
            "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
            "CAP_KILL", "CAP_AUDIT_WRITE"]


def reap(pid: int, timeout: float = 30) -> int:
    """Reap the pid-file process as a subreaper would, and every other orphan on the way: the
    container's pid 1 cannot finish exiting while a process of its namespace is an unreaped
    zombie of ours (an exec whose helper was killed)."""
    end = time.time() + timeout
    while time.time() < end:
        try:
            got, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if got == pid:
            return status
        if got == 0:
            time.sleep(0.01)
    raise AssertionError(f"pid-file process {pid} did not exit")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _host_binaries() -> dict[tuple[int, int], Path]:
    """The helpers lxcri ever runs where a container could see them, by (dev, inode)."""
    out = {}
    for p in [*LIBEXEC.iterdir(), Path(LXCRI).resolve()]:
        st = p.stat()
        out[(st.st_dev, st.st_ino)] = p
    return out


@pytest.fixture(scope="module")
def grabber(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("hostile") / "exe_grabber"
    subprocess.run(["cc", "-O2", "-static", "-o", str(out), str(HOSTILE / "exe_grabber.c")], check=True)
    return out


def _hostile(make_bundle: Any, grabber: Path, args: list[str]) -> Any:
    b = make_bundle(args)
    shutil.copy2(grabber, b.path / "rootfs" / "bin" / "exe_grabber")
    caps = b.config["process"]["capabilities"]
    for k in ("bounding", "effective", "permitted"):
        caps[k] = list(K8S_CAPS)
    b.config["process"]["noNewPrivileges"] = False  # as a default pod
    return b.save()


def _check_grabs(log: str, before: dict[Path, str]) -> tuple[int, int]:
    """No open for writing of a host binary, no write that landed; (helpers grabbed, opens)."""
    host = _host_binaries()
    grabbed = opens = 0
    for line in log.splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "seen":
            grabbed += 1
        elif kind == "open":
            opens += 1
            dev, ino, _target = rest.split(" ", 2)
            assert (int(dev), int(ino)) not in host, f"the container opened a host binary for writing: {line}"
        elif kind == "write":
            assert not rest.startswith("OK"), f"the container wrote a runtime helper: {line}"
    for p, digest in before.items():
        assert _sha(p) == digest, f"{p} changed"
    return grabbed, opens


def test_exec_helper_exe_cannot_be_written(lxcri, make_bundle, grabber, tmp_path):
    """200 `exec -d` while container root grabs every new process's exe: the helper it sees is
    a sealed private copy, never the host's lxcri-init, and no write lands anywhere."""
    before = {p: _sha(p) for p in LIBEXEC.iterdir()}
    b = _hostile(make_bundle, grabber, ["/bin/exe_grabber"])
    cid = lxcri.new_id("escape")
    pidf = tmp_path / "pid"
    assert lxcri.create(b, cid, pid_file=pidf).returncode == 0, (b.path / "out.err").read_text()
    lxcri("start", cid, check=True)
    failed = []
    for i in range(EXECS):
        r = lxcri("exec", "--detach", cid, "true")
        if r.returncode != 0:
            failed.append(r.stderr.strip())
        if i % 20 == 0:
            reap_any()
    reap_any()
    # the grabber retries its fds once per scan of /proc: give it a few scans after the last exec
    lxcri("exec", cid, "sleep", "0.3", check=True)
    log = (b.path / "out").read_text()
    lxcri("kill", cid, "KILL", check=True)
    reap(int(pidf.read_text()))
    assert not failed, f"{len(failed)} of {EXECS} execs failed (Text file busy?): {failed[:3]}"
    grabbed, opens = _check_grabs(log, before)
    seen = [ln for ln in log.splitlines() if ln.startswith("seen")]
    assert all("/memfd:lxcri-init" in ln for ln in seen), seen[:5]
    # the attack did reach the helpers (else this test proves nothing)
    assert grabbed > 0, log[-2000:]
    print(f"\n{EXECS} execs: {grabbed} helper exes grabbed, {opens} reopened for writing "
          "(all sealed copies), 0 writes landed")


def test_init_and_monitor_exe_seen_from_a_shared_pid_namespace(lxcri, make_bundle, grabber, tmp_path):
    """Containers joining a hostile container's pid namespace (a pod that shares it): the
    hostile one sees their inits from their first instruction (liblxc's child of the monitor,
    then the init helper waiting for start) and cannot open either's file for writing."""
    before = {p: _sha(p) for p in LIBEXEC.iterdir()}
    b = _hostile(make_bundle, grabber, ["/bin/exe_grabber"])
    cid = lxcri.new_id("escape")
    pidf = tmp_path / "pid"
    assert lxcri.create(b, cid, pid_file=pidf).returncode == 0, (b.path / "out.err").read_text()
    lxcri("start", cid, check=True)
    hostile_pid = int(pidf.read_text())
    for i in range(10):
        sb = make_bundle(["sleep", "0.2"])
        for ns in sb.config["linux"]["namespaces"]:
            if ns["type"] == "pid":
                ns["path"] = f"/proc/{hostile_pid}/ns/pid"
        sb.save()
        sid = lxcri.new_id("escape-sib")
        spid = tmp_path / f"sib{i}"
        assert lxcri.create(sb, sid, pid_file=spid).returncode == 0, (sb.path / "out.err").read_text()
        lxcri("exec", cid, "sleep", "0.05", check=True)  # a few scans while the init waits
        lxcri("start", sid, check=True)
        reap(int(spid.read_text()))
        lxcri("delete", "--force", sid, check=True)
    lxcri("exec", cid, "sleep", "0.3", check=True)
    log = (b.path / "out").read_text()
    lxcri("kill", cid, "KILL", check=True)
    reap(hostile_pid)
    grabbed, _ = _check_grabs(log, before)
    assert grabbed > 0, log[-2000:]
    inits = [ln for ln in log.splitlines() if ln.startswith("seen") and ".lxcri-init" in ln]
    assert inits, log[-2000:]  # the waiting init helpers were reached: a read-only bind refused the reopen
    kinds: dict[str, int] = {}
    for ln in log.splitlines():
        if ln.startswith(("seen", "open")):
            key = ln.split(" ", 1)[0] + " " + ln.rsplit(" ", 1)[-1] if ln.startswith("seen") else ln
            kinds[key] = kinds.get(key, 0) + 1
    print(f"\n10 creates in a hostile pid namespace: {kinds}")


@pytest.fixture
def host_marker() -> Any:
    """A file on the host's / that no container may read."""
    name = f"lxcri-escape-marker-{uuid.uuid4().hex[:8]}"
    secret = uuid.uuid4().hex
    path = Path("/") / name
    path.write_text(secret)
    yield name, secret
    path.unlink()


UP = "../" * 12
FDS = range(3, 41)


def _probe(marker: str) -> list[str]:
    """What the process runs: try to read the host's marker upwards from its cwd, print where it is."""
    return ["sh", "-c", f'cat {UP}{marker} 2>/dev/null; echo "cwd=$(pwd -P)"; ls {UP} | head -50']


def test_create_cwd_proc_self_fd(lxcri, make_bundle, tmp_path, host_marker):
    """process.cwd=/proc/self/fd/N for N = 3..40: each create fails naming the cwd, or the
    process starts inside the container's root and `..` never reaches the host's /."""
    name, secret = host_marker
    outcomes = {"refused": 0, "inside": 0}
    for n in FDS:
        b = make_bundle(_probe(name))
        b.config["process"]["cwd"] = f"/proc/self/fd/{n}"
        b.save()
        cid = lxcri.new_id("escape-cwd")
        pidf = tmp_path / f"pid{n}"
        r = lxcri.create(b, cid, pid_file=pidf)
        if r.returncode != 0:
            assert f"/proc/self/fd/{n}" in r.stderr and "cwd" in r.stderr, r.stderr
            assert leftovers(cid, lxcri.root) == []
            outcomes["refused"] += 1
            continue
        lxcri("start", cid, check=True)
        reap(int(pidf.read_text()))
        out = (b.path / "out").read_text()
        assert secret not in out, f"fd {n}: the container read the host's {name}"
        assert name not in out, f"fd {n}: the container listed the host's /"
        cwd = [ln for ln in out.splitlines() if ln.startswith("cwd=")]
        assert cwd and cwd[0].startswith("cwd=/"), (n, out)
        lxcri("delete", "--force", cid, check=True)
        outcomes["inside"] += 1
    print(f"\ncwd=/proc/self/fd/N, N=3..40: {outcomes}")


def test_exec_cwd_proc_self_fd(lxcri, make_bundle, tmp_path, host_marker):
    name, secret = host_marker
    b = make_bundle(["sleep", "60"])
    cid = lxcri.new_id("escape-cwd")
    pidf = tmp_path / "pid"
    assert lxcri.create(b, cid, pid_file=pidf).returncode == 0
    lxcri("start", cid, check=True)
    refused = 0
    for n in FDS:
        r = lxcri("exec", "--cwd", f"/proc/self/fd/{n}", cid, *_probe(name))
        assert secret not in r.stdout and name not in r.stdout, f"fd {n}: reached the host's /: {r.stdout}"
        if r.returncode != 0:
            assert f"/proc/self/fd/{n}" in r.stderr, r.stderr
            refused += 1
        else:
            assert "cwd=/" in r.stdout, r.stdout
    lxcri("kill", cid, "KILL", check=True)
    reap(int(pidf.read_text()))
    print(f"\nexec --cwd /proc/self/fd/N, N=3..40: {refused} refused, {len(FDS) - refused} inside")


def test_cwd_dotdot_stays_inside(lxcri, make_bundle, tmp_path, host_marker):
    """An ordinary deep cwd: `..` all the way up is the container's /, not the host's."""
    name, secret = host_marker
    b = make_bundle(_probe(name))
    (b.path / "rootfs" / "a" / "b" / "c").mkdir(parents=True)
    b.config["process"]["cwd"] = "/a/b/c"
    b.save()
    cid = lxcri.new_id("escape-cwd")
    pidf = tmp_path / "pid"
    assert lxcri.create(b, cid, pid_file=pidf).returncode == 0, (b.path / "out.err").read_text()
    lxcri("start", cid, check=True)
    reap(int(pidf.read_text()))
    out = (b.path / "out").read_text()
    assert "cwd=/a/b/c" in out and secret not in out and name not in out
    assert "bin" in out.split()  # it listed the container's own /


def test_cwd_missing_is_a_clear_error(lxcri, make_bundle, tmp_path):
    b = make_bundle(["true"])
    b.config["process"]["cwd"] = "/no/such/dir"
    b.save()
    cid = lxcri.new_id("escape-cwd")
    r = lxcri.create(b, cid)
    assert r.returncode == 1 and 'cwd ("/no/such/dir")' in r.stderr, r.stderr
    assert leftovers(cid, lxcri.root) == []

