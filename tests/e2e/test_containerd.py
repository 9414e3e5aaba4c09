"""containerd 1.6 (Debian) with its runc shim (containerd-shim-runc-v2) driving lxcri: what a
`ctr` user (and so a kubelet through the same shim) sees. One private containerd for the session.
"""

from __future__ import annotations

import json
import os
import selectors
import shlex
import subprocess
import time
from pathlib import Path

import pytest
from callers import IMAGE, LXCRI, Containerd, lxcri_leftovers, unique

MADE: list[str] = []


def new_id() -> str:
    cid = unique("e2e")
    MADE.append(cid)
    return cid


def ctr_run(c: Containerd, cid: str, *cmd: str, detach: bool = False) -> subprocess.CompletedProcess[str]:
    args = ["run", "--runc-binary", str(LXCRI)]
    args += ["-d"] if detach else ["--rm"]
    return c.ctr(*args, IMAGE, cid, *cmd)


def ctr_run_background(c: Containerd, cid: str, *cmd: str) -> subprocess.Popen[str]:
    """`ctr run --rm` in the foreground of another process: its exit status is the container's."""
    return subprocess.Popen(c.ctr_cmd("run", "--rm", "--runc-binary", str(LXCRI), IMAGE, cid, *cmd),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def read_line(p: subprocess.Popen[str], timeout: float = 30) -> str:
    """The next line the container prints, or "" if none comes in time (a test must not hang)."""
    assert p.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(p.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            return ""
    return p.stdout.readline()


def in_a_terminal(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    """cmd with a pty as its terminal (`ctr -t` needs one): script(1) from util-linux; its exit status is cmd's."""
    return subprocess.run(["script", "--quiet", "--return", "--command", shlex.join(cmd), "/dev/null"],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, check=False)


def wait_status(c: Containerd, cid: str, want: str, timeout: float = 20) -> str:
    end = time.time() + timeout
    while True:
        st = c.tasks().get(cid, (0, "ABSENT"))[1]
        if st == want or time.time() > end:
            return st
        time.sleep(0.05)


def lxcri_state(c: Containerd, cid: str) -> dict[str, object]:
    r = subprocess.run([str(LXCRI), "--root", str(c.shim_root), "state", cid], capture_output=True, text=True,
                       timeout=30, check=False)
    assert r.returncode == 0, r.stderr
    st: dict[str, object] = json.loads(r.stdout)
    return st


def remove(c: Containerd, cid: str) -> None:
    if c.tasks().get(cid, (0, "STOPPED"))[1] != "STOPPED":
        c.ctr("task", "kill", "--signal", "SIGKILL", cid)
        wait_status(c, cid, "STOPPED")
    c.ctr("task", "delete", cid)
    c.ctr("container", "delete", cid)


def test_run_prints_output(containerd):
    r = ctr_run(containerd, new_id(), "sh", "-c", "echo hello-ctr $$")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hello-ctr 1\n"  # pid 1 of its own pid namespace


def test_default_seccomp_profile(containerd):
    # `ctr run --seccomp`: containerd's own default profile, what its CRI gives RuntimeDefault pods
    cid = new_id()
    r = containerd.ctr("run", "--rm", "--seccomp", "--runc-binary", str(LXCRI), IMAGE, cid, "sh", "-c",
                       "grep ^Seccomp: /proc/self/status; unshare -U true || echo unshare-denied; "
                       "(echo forked) & wait")
    assert r.returncode == 0, r.stderr
    assert "Seccomp:\t2" in r.stdout and "forked" in r.stdout
    assert "unshare-denied" in r.stdout and "Operation not permitted" in r.stderr  # the profile's EPERM


def test_task_is_run_by_lxcri(containerd):
    cid = new_id()
    assert ctr_run(containerd, cid, "sleep", "100", detach=True).returncode == 0
    assert wait_status(containerd, cid, "RUNNING") == "RUNNING"
    st = lxcri_state(containerd, cid)  # the shim's runtime root holds lxcri's state
    assert st["status"] == "running" and st["id"] == cid
    remove(containerd, cid)


def test_exit_code_passes_through(containerd):
    r = ctr_run(containerd, new_id(), "sh", "-c", "echo before-exit; exit 7")
    assert r.returncode == 7, r.stderr
    assert r.stdout == "before-exit\n"


def test_sigterm_with_a_trap(containerd):
    cid = new_id()
    p = ctr_run_background(containerd, cid, "sh", "-c",
                           "trap 'echo got-term; exit 42' TERM; echo ready; while true; do sleep 0.1; done")
    try:
        assert read_line(p) == "ready\n"
        r = containerd.ctr("task", "kill", cid)  # SIGTERM by default
        assert r.returncode == 0, r.stderr
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            remove(containerd, cid)
            p.wait(timeout=30)
    assert out == "got-term\n"
    assert p.returncode == 42, err


def test_sigkill_is_137(containerd):
    cid = new_id()
    p = ctr_run_background(containerd, cid, "sh", "-c", "echo ready; exec sleep 100")
    try:
        assert read_line(p) == "ready\n"
        r = containerd.ctr("task", "kill", "--signal", "SIGKILL", cid)
        assert r.returncode == 0, r.stderr
        p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            remove(containerd, cid)
            p.wait(timeout=30)
    assert p.returncode == 137


def test_task_exec(containerd):
    cid = new_id()
    assert ctr_run(containerd, cid, "sleep", "100", detach=True).returncode == 0
    r = containerd.ctr("task", "exec", "--exec-id", unique("x"), cid, "sh", "-c",
                       "echo in-exec; cat /proc/1/cmdline | tr '\\0' ' '; exit 6")
    assert r.returncode == 6, r.stderr
    assert r.stdout == "in-exec\nsleep 100 "
    r = containerd.ctr("task", "exec", "--exec-id", unique("x"), "--cwd", "/tmp", "--user", "65534", cid,
                       "sh", "-c", "echo $(id -u) $(pwd)")
    assert (r.returncode, r.stdout) == (0, "65534 /tmp\n"), r.stderr
    remove(containerd, cid)


def test_run_with_tty(containerd):
    """`ctr run -t`: the shim passes --console-socket; the process runs on a terminal, exit status passes."""
    r = in_a_terminal(containerd.ctr_cmd("run", "--rm", "-t", "--runc-binary", str(LXCRI), IMAGE, new_id(),
                                         "sh", "-c", "[ -t 0 ] && [ -t 1 ] && echo is-a-tty; exit 3"))
    assert r.returncode == 3, r.stdout + r.stderr
    assert "is-a-tty" in r.stdout.replace("^@", "").splitlines()


def test_task_exec_with_tty(containerd):
    cid = new_id()
    assert ctr_run(containerd, cid, "sleep", "100", detach=True).returncode == 0
    r = in_a_terminal(containerd.ctr_cmd("task", "exec", "-t", "--exec-id", unique("x"), cid,
                                         "sh", "-c", "[ -t 0 ] && [ -t 1 ] && echo is-a-tty; exit 4"))
    assert r.returncode == 4, r.stdout + r.stderr
    assert "is-a-tty" in r.stdout.replace("^@", "").splitlines()
    remove(containerd, cid)


@pytest.mark.parametrize("runtime", ["runc", "lxcri"])
def test_terminal_is_the_containers_pts(containerd, runtime):
    """`tty` names the terminal, a pty of the container's own /dev/pts (runc: /dev/pts/0)."""
    binary = "/usr/bin/runc" if runtime == "runc" else str(LXCRI)
    r = in_a_terminal(containerd.ctr_cmd("run", "--rm", "-t", "--runc-binary", binary, IMAGE, new_id(),
                                         "sh", "-c", "tty; ls /dev/pts"))
    assert r.returncode == 0, r.stdout + r.stderr
    tty, *pts = r.stdout.replace("^@", "").split()  # a NUL on the terminal comes back as ^@
    assert tty.startswith("/dev/pts/") and tty.rsplit("/", 1)[1] in pts, r.stdout


@pytest.mark.parametrize("runtime", ["runc", "lxcri"])
def test_join_namespaces_by_task_pid(containerd, runtime):
    """containerd's CRI puts a pod's app containers in /proc/<sandbox task pid>/ns/{net,ipc,uts} (and pid when
    shared): the task pid must be in the sandbox's namespaces. Here with `ctr run --with-ns`: the sandbox's
    processes and network (lo only), not the host's."""
    binary = "/usr/bin/runc" if runtime == "runc" else str(LXCRI)
    sandbox = new_id()
    assert containerd.ctr("run", "-d", "--runc-binary", binary, IMAGE, sandbox, "sleep", "100").returncode == 0
    try:
        assert wait_status(containerd, sandbox, "RUNNING") == "RUNNING"
        pid = containerd.tasks()[sandbox][0]
        joins = [a for kind, ns in (("pid", "pid"), ("ipc", "ipc"), ("uts", "uts"), ("network", "net"))
                 for a in ("--with-ns", f"{kind}:/proc/{pid}/ns/{ns}")]
        r = containerd.ctr("run", "--rm", "--runc-binary", binary, *joins, IMAGE, new_id(),
                           "sh", "-c", "ps -o pid,args; echo --; tail -n +3 /proc/net/dev | cut -d: -f1")
        assert r.returncode == 0, r.stderr
        ps, netdevs = r.stdout.split("--\n")
        procs = [ln.split(None, 1) for ln in ps.splitlines()[1:]]
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
        got = {"pid 1": procs[0], "network devices": netdevs.split()}
        assert got == {"pid 1": ["1", "sleep 100"], "network devices": ["lo"]}, f"task pid {pid} ({comm})"
    finally:
        remove(containerd, sandbox)


def _pids_running(argv: bytes, pidns: str) -> list[int]:
    """Host pids of the processes with this argv in this pid namespace."""
    found = []
    for p in Path("/proc").iterdir():
        try:
            if p.name.isdigit() and (p / "cmdline").read_bytes() == argv and os.readlink(p / "ns" / "pid") == pidns:
                state = (p / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state not in ("Z", "X"):
                    found.append(int(p.name))
        except OSError:
            continue
    return found


@pytest.mark.parametrize("runtime", ["runc", "lxcri"])
def test_sigkill_of_an_init_sharing_a_pid_namespace_takes_its_children(containerd, runtime):
    """issue 10: in a container without a pid namespace of its own (a pod's shared one, nginx's
    master and workers), SIGKILL of the init leaves its children; the shim then runs
    `kill --all ID 9`, which must reach them though the init is dead. Then delete succeeds."""
    binary = "/usr/bin/runc" if runtime == "runc" else str(LXCRI)
    sandbox = new_id()
    assert containerd.ctr("run", "-d", "--runc-binary", binary, IMAGE, sandbox, "sleep", "1000").returncode == 0
    try:
        assert wait_status(containerd, sandbox, "RUNNING") == "RUNNING"
        pidns = os.readlink(f"/proc/{containerd.tasks()[sandbox][0]}/ns/pid")
        app = new_id()
        r = containerd.ctr("run", "-d", "--runc-binary", binary, "--with-ns",
                           f"pid:/proc/{containerd.tasks()[sandbox][0]}/ns/pid", IMAGE, app,
                           "sh", "-c", "sh -c 'trap \"\" TERM; exec sleep 999' & wait")
        assert r.returncode == 0, r.stderr
        assert wait_status(containerd, app, "RUNNING") == "RUNNING"
        for _ in range(500):
            child = _pids_running(b"sleep\x00999\x00", pidns)
            if child:
                break
            time.sleep(0.01)
        assert len(child) == 1
        r = containerd.ctr("task", "kill", "--signal", "SIGKILL", app)
        assert r.returncode == 0, r.stderr
        assert wait_status(containerd, app, "STOPPED", timeout=30) == "STOPPED"
        for _ in range(1000):
            if not _pids_running(b"sleep\x00999\x00", pidns):
                break
            time.sleep(0.01)
        assert _pids_running(b"sleep\x00999\x00", pidns) == []
        r = containerd.ctr("task", "delete", app, timeout=60)
        assert r.returncode == 0, r.stderr
        containerd.ctr("container", "delete", app)
        if runtime == "lxcri":
            assert lxcri_leftovers(containerd.shim_root, [app]) == []
    finally:
        remove(containerd, sandbox)


def test_task_ps_lists_the_containers_processes(containerd):
    cid = new_id()
    assert ctr_run(containerd, cid, "sh", "-c", "sleep 101 & sleep 102 & wait", detach=True).returncode == 0
    wait_status(containerd, cid, "RUNNING")

    def cmdlines() -> list[str]:
        r = containerd.ctr("task", "ps", cid)
        assert r.returncode == 0, r.stderr
        pids = [int(ln.split()[0]) for ln in r.stdout.splitlines()[1:] if ln.strip()]
        return sorted(Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip() for p in pids)

    end = time.time() + 10
    while (got := cmdlines()) != ["sh -c sleep 101 & sleep 102 & wait", "sleep 101", "sleep 102"] \
            and time.time() < end:
        time.sleep(0.1)
    assert got == ["sh -c sleep 101 & sleep 102 & wait", "sleep 101", "sleep 102"]
    remove(containerd, cid)


def test_pause_and_resume(containerd):
    cid = new_id()
    assert ctr_run(containerd, cid, "sleep", "100", detach=True).returncode == 0
    assert wait_status(containerd, cid, "RUNNING") == "RUNNING"
    assert containerd.ctr("task", "pause", cid).returncode == 0
    assert containerd.tasks()[cid][1] == "PAUSED"
    assert lxcri_state(containerd, cid)["status"] == "paused"
    r = containerd.ctr("task", "exec", "--exec-id", unique("x"), cid, "true")
    assert r.returncode != 0  # nothing runs in a paused container
    assert containerd.ctr("task", "resume", cid).returncode == 0
    assert containerd.tasks()[cid][1] == "RUNNING"
    r = containerd.ctr("task", "exec", "--exec-id", unique("x"), cid, "echo", "alive")
    assert (r.returncode, r.stdout) == (0, "alive\n"), r.stderr
    remove(containerd, cid)


def test_task_delete(containerd):
    cid = new_id()
    assert ctr_run(containerd, cid, "sleep", "100", detach=True).returncode == 0
    assert wait_status(containerd, cid, "RUNNING") == "RUNNING"
    r = containerd.ctr("task", "delete", cid)
    assert r.returncode != 0 and "running" in r.stderr  # a running task is not deleted
    assert containerd.ctr("task", "kill", "--signal", "SIGKILL", cid).returncode == 0
    assert wait_status(containerd, cid, "STOPPED") == "STOPPED"
    r = containerd.ctr("task", "delete", cid)
    assert r.returncode == 0, r.stderr
    assert cid not in containerd.tasks()
    assert lxcri_leftovers(containerd.shim_root, [cid]) == []
    assert containerd.ctr("container", "delete", cid).returncode == 0


def test_task_metrics(containerd):
    """The shim reads the cgroup of the pid-file process: it must be the container's."""
    cid = new_id()
    assert ctr_run(containerd, cid, "sh", "-c", "sleep 101 & sleep 102 & sleep 103 & wait",
                   detach=True).returncode == 0
    assert wait_status(containerd, cid, "RUNNING") == "RUNNING"
    r = containerd.ctr("task", "metrics", "--format", "json", cid)
    assert r.returncode == 0, r.stderr
    m = json.loads(r.stdout)
    # sh and three sleeps (the monitor may count as one more task, as documented)
    assert 4 <= m["pids"]["current"] <= 5, m["pids"]
    assert m["memory"]["usage"]["usage"] > 0
    assert m["cpu"]["usage"]["total"] > 0
    remove(containerd, cid)


def test_bad_entrypoint_reaches_user(containerd):
    cid = new_id()
    r = ctr_run(containerd, cid, "no-such-command")
    assert r.returncode != 0
    assert 'exec: "no-such-command": executable file not found in $PATH' in r.stderr, r.stderr
    assert cid not in containerd.tasks()
    assert lxcri_leftovers(containerd.shim_root, [cid]) == []


def test_exec_into_stopped_container_fails_clearly(containerd, tmp_path):
    cid = new_id()
    assert ctr_run(containerd, cid, "true", detach=True).returncode == 0
    assert wait_status(containerd, cid, "STOPPED") == "STOPPED"
    # through ctr: the shim itself refuses
    r = containerd.ctr("task", "exec", "--exec-id", unique("x"), cid, "echo", "never")
    assert r.returncode != 0 and "never" not in r.stdout
    assert "stopped" in r.stderr, r.stderr
    # the call the shim makes when the container stops under it: lxcri's own answer
    process = tmp_path / "process.json"
    process.write_text(json.dumps({"args": ["echo", "never"], "cwd": "/", "env": ["PATH=/bin"],
                                   "user": {"uid": 0, "gid": 0}}))
    log = tmp_path / "log.json"
    r = subprocess.run([str(LXCRI), "--root", str(containerd.shim_root), "--log", str(log), "--log-format", "json",
                        "exec", "--process", str(process), "--detach", "--pid-file", str(tmp_path / "pid"), cid],
                       capture_output=True, text=True, timeout=30, check=False)
    assert r.returncode == 1
    assert r.stderr.strip() == f"lxcri: cannot exec in container {cid}: container not running"
    last = json.loads(log.read_text().splitlines()[-1])
    assert last["level"] == "error" and "container not running" in last["msg"]
    assert not (tmp_path / "pid").exists()
    remove(containerd, cid)


def test_lxcri_runtime_handler_is_configured(containerd):
    r = subprocess.run(["containerd", "--config", str(containerd.config), "config", "dump"], capture_output=True,
                       text=True, timeout=60, check=False)
    assert r.returncode == 0, r.stderr
    dump = r.stdout
    head = '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.lxcri]'
    assert head in dump, dump
    section = dump.split(head, 1)[1].split("\n\n", 1)[0]
    assert 'runtime_type = "io.containerd.runc.v2"' in section, section
    opts = dump.split(head[:-1] + ".options]", 1)[1].split("\n\n", 1)[0]
    assert f'BinaryName = "{LXCRI}"' in opts, opts


def test_nothing_of_lxcri_left(containerd):
    """Last: every container these tests made is gone from lxcri's root (the shim's), no monitor left."""
    assert MADE
    for cid in list(containerd.tasks()):
        remove(containerd, cid)
    assert lxcri_leftovers(containerd.shim_root, MADE) == []
    assert not containerd.shim_root.exists() or list(containerd.shim_root.iterdir()) == []
