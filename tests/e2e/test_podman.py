"""podman (4.3) with conmon driving lxcri: what a podman user sees.

The image is imported from a local tarball; lxcri is configured as runtime `lxcri`, a name
in `runtime_supports_json`, so conmon passes `--log-format=json --log` as with CRI-O.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest
from callers import IMAGE, LXCRI, LXCRI_DEFAULT_ROOT, Podman, lxcri_leftovers, unique

# full ids of every container these tests made, for the leftover check at the end
MADE: list[str] = []


@pytest.fixture(scope="module")
def cidfiles(e2e_work: Path) -> Path:
    d = e2e_work / "cidfiles"
    d.mkdir(exist_ok=True)
    return d


def prun(podman: Podman, cidfiles: Path, *args: str, runtime: str = "lxcri",
         timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`podman run ARGS`, remembering the container's id."""
    cidfile = cidfiles / unique("cid")
    r = podman("run", "--cidfile", str(cidfile), *args, runtime=runtime, timeout=timeout)
    if cidfile.exists():
        MADE.append(cidfile.read_text().strip())
    return r


def started(podman: Podman, cidfiles: Path, *cmd: str) -> str:
    """A detached container running cmd; its name."""
    name = unique("e2e")
    r = prun(podman, cidfiles, "-d", "--name", name, IMAGE, *cmd)
    assert r.returncode == 0, r.stderr
    return name


def inspect(podman: Podman, name: str, fmt: str) -> str:
    r = podman("inspect", "--format", fmt, name)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def lxcri_state(cid: str) -> str:
    r = subprocess.run([str(LXCRI), "state", cid], capture_output=True, text=True, timeout=30, check=False)
    assert r.returncode == 0, r.stderr
    return str(json.loads(r.stdout)["status"])


def wait_for(check, timeout: float = 15, every: float = 0.1):  # type: ignore[no-untyped-def]
    end = time.time() + timeout
    while True:
        got = check()
        if got or time.time() > end:
            return got
        time.sleep(every)


def test_run_prints_output_through_lxcri(podman, cidfiles):
    r = prun(podman, cidfiles, "--rm", IMAGE, "sh", "-c", "echo hello-podman $$")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hello-podman 1\n"  # pid 1 of its own pid namespace


def test_container_is_run_by_lxcri(podman, cidfiles):
    name = started(podman, cidfiles, "sleep", "100")
    assert inspect(podman, name, "{{.OCIRuntime}}") == "lxcri"
    cid = inspect(podman, name, "{{.Id}}")
    assert lxcri_state(cid) == "running"
    assert podman("rm", "-f", "-t", "0", name).returncode == 0


def test_exit_code_passes_through(podman, cidfiles):
    r = prun(podman, cidfiles, "--rm", IMAGE, "sh", "-c", "echo before-exit; exit 3")
    assert r.returncode == 3, r.stderr
    assert "before-exit" in r.stdout


def test_killed_by_signal_is_137(podman, cidfiles):
    name = started(podman, cidfiles, "sleep", "100")
    assert podman("kill", "--signal", "KILL", name).returncode == 0
    r = podman("wait", name)
    assert r.returncode == 0 and r.stdout.strip() == "137", (r.stdout, r.stderr)
    assert inspect(podman, name, "{{.State.ExitCode}}") == "137"
    assert podman("rm", name).returncode == 0


def test_exec_without_tty(podman, cidfiles):
    name = started(podman, cidfiles, "sleep", "100")
    r = podman("exec", name, "sh", "-c",
               "echo in-exec; cat /proc/1/cmdline | tr '\\0' ' '; [ -t 1 ] || echo no-tty; exit 5")
    assert r.returncode == 5, r.stderr
    assert r.stdout.splitlines() == ["in-exec", "sleep 100 no-tty"]
    r = podman("exec", "-e", "FOO=bar", "-w", "/tmp", name, "sh", "-c", "echo $FOO $(pwd)")
    assert (r.returncode, r.stdout.strip()) == (0, "bar /tmp"), r.stderr
    assert podman("rm", "-f", "-t", "0", name).returncode == 0


def test_exec_with_tty(podman, cidfiles):
    name = started(podman, cidfiles, "sleep", "100")
    r = podman("exec", "-t", name, "sh", "-c", "[ -t 0 ] && [ -t 1 ] && echo is-a-tty; stty -a; exit 4")
    assert r.returncode == 4, r.stderr
    assert r.stdout.startswith("is-a-tty")
    assert "speed 38400 baud" in r.stdout and " icanon " in r.stdout, r.stdout  # termios works on it
    assert podman("rm", "-f", "-t", "0", name).returncode == 0


@pytest.mark.parametrize("how", ["run", "exec"])
@pytest.mark.parametrize("runtime", ["runc", "lxcri"])
def test_terminal_is_the_containers_pts(podman, cidfiles, runtime, how):
    """`tty` in the container names the terminal, a pty of the container's own /dev/pts (runc: /dev/pts/0)."""
    probe = ["sh", "-c", "tty; ls /dev/pts"]
    if how == "run":
        r = prun(podman, cidfiles, "--rm", "-t", IMAGE, *probe, runtime=runtime)
    else:
        name = unique("e2e")
        assert prun(podman, cidfiles, "-d", "--name", name, IMAGE, "sleep", "100",
                    runtime=runtime).returncode == 0
        r = podman("exec", "-t", name, *probe, runtime=runtime)
        podman("rm", "-f", "-t", "0", name, runtime=runtime)
    assert r.returncode == 0, r.stderr
    tty, *pts = r.stdout.split()
    assert re.fullmatch(r"/dev/pts/\d+", tty), r.stdout
    assert tty.rsplit("/", 1)[1] in pts, r.stdout


@pytest.mark.parametrize("runtime", ["runc", "lxcri"])
def test_top_shows_the_containers_processes(podman, cidfiles, runtime):
    """`podman top` joins the pid namespace of the pid conmon got from --pid-file."""
    name = unique("e2e")
    assert prun(podman, cidfiles, "-d", "--name", name, IMAGE, "sleep", "100", runtime=runtime).returncode == 0
    try:
        pid = inspect(podman, name, "{{.State.Pid}}")
        r = podman("top", name, "pid", "args", runtime=runtime)
        assert r.returncode == 0, r.stderr
        rows = [ln.strip().split(None, 1) for ln in r.stdout.splitlines()[1:]]
        assert rows == [["1", "sleep 100"]], f"State.Pid {pid} ({Path(f'/proc/{pid}/comm').read_text().strip()}):" \
                                              f" {r.stdout[:300]}"
    finally:
        podman("rm", "-f", "-t", "0", name, runtime=runtime)


@pytest.mark.parametrize("runtime", ["runc", "lxcri"])
def test_join_another_containers_pid_namespace(podman, cidfiles, runtime):
    """`--pid container:A` joins /proc/<A's State.Pid>/ns/pid: A's processes, never the host's."""
    name = unique("e2e")
    assert prun(podman, cidfiles, "-d", "--name", name, IMAGE, "sleep", "100", runtime=runtime).returncode == 0
    try:
        r = prun(podman, cidfiles, "--rm", "--pid", f"container:{name}", IMAGE, "ps", "-o", "pid,args",
                 runtime=runtime)
        assert r.returncode == 0, r.stderr
        procs = [ln.split(None, 1) for ln in r.stdout.splitlines()[1:]]
        assert procs[0] == ["1", "sleep 100"] and len(procs) == 2, r.stdout[:300]
    finally:
        podman("rm", "-f", "-t", "0", name, runtime=runtime)


@pytest.mark.parametrize("runtime", ["runc", "lxcri"])
def test_read_only_rootfs(podman, cidfiles, runtime):
    """--read-only: / is read-only, podman's tmpfs on /tmp, /var/tmp, /run are writable (made if missing)."""
    r = prun(podman, cidfiles, "--rm", "--read-only", IMAGE, "sh", "-c",
             "touch /x 2>/dev/null && echo root-writable; touch /var/tmp/y /tmp/y /run/y && echo tmpfs-ok",
             runtime=runtime)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "tmpfs-ok\n"


@pytest.mark.parametrize("runtime", ["runc", "lxcri"])
def test_memory_limit_visible_in_container(podman, cidfiles, runtime):
    """--memory: the container sees its own limit at /sys/fs/cgroup/memory (cgroup v1 host), as the JVM and
    Go's automaxprocs look for it."""
    r = prun(podman, cidfiles, "--rm", "--memory", "64m", IMAGE, "cat",
             "/sys/fs/cgroup/memory/memory.limit_in_bytes", runtime=runtime)
    assert (r.returncode, r.stdout) == (0, "67108864\n"), r.stderr


def test_pause_and_unpause(podman, cidfiles):
    name = started(podman, cidfiles, "sh", "-c", "i=0; while true; do i=$((i+1)); echo $i; sleep 0.05; done")

    def last() -> int:
        out = podman("logs", name).stdout.split()
        return int(out[-1]) if out else 0

    assert wait_for(lambda: last() > 2)
    assert podman("pause", name).returncode == 0
    assert inspect(podman, name, "{{.State.Status}}") == "paused"
    assert lxcri_state(inspect(podman, name, "{{.Id}}")) == "paused"
    frozen = last()
    time.sleep(0.5)
    assert last() == frozen, "the container kept running while paused"
    assert podman("unpause", name).returncode == 0
    assert inspect(podman, name, "{{.State.Status}}") == "running"
    assert wait_for(lambda: last() > frozen + 2)
    assert podman("rm", "-f", "-t", "0", name).returncode == 0


def test_stop_sends_sigterm_then_exit_code(podman, cidfiles):
    name = started(podman, cidfiles, "sh", "-c",
                   "trap 'echo got-term; exit 0' TERM; echo ready; while true; do sleep 0.1; done")
    assert wait_for(lambda: "ready" in podman("logs", name).stdout)
    r = podman("stop", "--time", "20", name)
    assert r.returncode == 0, r.stderr
    assert inspect(podman, name, "{{.State.Status}}") == "exited"
    assert inspect(podman, name, "{{.State.ExitCode}}") == "0"
    assert "got-term" in podman("logs", name).stdout
    assert podman("rm", name).returncode == 0


def test_stop_kills_after_timeout(podman, cidfiles):
    name = started(podman, cidfiles, "sleep", "100")  # pid 1 without a handler: SIGTERM does nothing
    t0 = time.time()
    assert podman("stop", "--time", "1", name).returncode == 0
    assert time.time() - t0 < 15
    assert inspect(podman, name, "{{.State.ExitCode}}") == "137"
    assert podman("rm", name).returncode == 0


def test_kill_delivers_the_signal(podman, cidfiles):
    name = started(podman, cidfiles, "sh", "-c",
                   "trap 'echo got-usr1' USR1; echo ready; while true; do sleep 0.1; done")
    assert wait_for(lambda: "ready" in podman("logs", name).stdout)
    assert podman("kill", "--signal", "USR1", name).returncode == 0
    assert wait_for(lambda: "got-usr1" in podman("logs", name).stdout)
    assert inspect(podman, name, "{{.State.Status}}") == "running"
    assert podman("kill", name).returncode == 0  # podman's default: SIGKILL
    assert podman("wait", name).stdout.strip() == "137"
    assert podman("rm", name).returncode == 0


def test_rm_removes_container(podman, cidfiles):
    name = started(podman, cidfiles, "sleep", "100")
    cid = inspect(podman, name, "{{.Id}}")
    assert (LXCRI_DEFAULT_ROOT / cid).is_dir()
    r = podman("rm", name)
    assert r.returncode != 0 and "running" in r.stderr  # podman refuses a running one without -f
    assert podman("rm", "--force", "--time", "0", name).returncode == 0
    assert podman("ps", "-a", "--filter", f"name={name}", "-q").stdout.strip() == ""
    assert wait_for(lambda: lxcri_leftovers(LXCRI_DEFAULT_ROOT, [cid]) == []), \
        lxcri_leftovers(LXCRI_DEFAULT_ROOT, [cid])


def test_logs(podman, cidfiles):
    name = unique("e2e")
    r = prun(podman, cidfiles, "--name", name, IMAGE, "sh", "-c", "echo to-stdout; echo to-stderr >&2")
    assert r.returncode == 0, r.stderr
    r = podman("logs", name)
    assert r.stdout.strip() == "to-stdout" and r.stderr.strip() == "to-stderr", (r.stdout, r.stderr)
    assert podman("rm", name).returncode == 0


@pytest.mark.parametrize("entrypoint, message", [
    ("no-such-command", 'exec: "no-such-command": executable file not found in $PATH'),
    ("/no/such/file", 'exec: "/no/such/file": No such file or directory'),
])
def test_bad_entrypoint_reaches_user_as_lxcri_message(podman, cidfiles, entrypoint, message):
    name = unique("e2e")
    r = prun(podman, cidfiles, "--name", name, IMAGE, entrypoint)
    assert r.returncode == 127, (r.returncode, r.stderr)  # podman: command not found
    assert r.stderr.startswith("Error: lxcri: "), r.stderr
    assert message in r.stderr, r.stderr
    cid = inspect(podman, name, "{{.Id}}")
    # conmon passed --log-format=json --log: the message came from lxcri's JSON log
    log = podman.work / "run" / "overlay-containers" / cid / "userdata" / "oci-log"
    last = json.loads(log.read_text().splitlines()[-1])
    assert last["level"] == "error" and message in last["msg"] and last["time"], last
    assert podman("rm", "--force", name).returncode == 0
    assert lxcri_leftovers(LXCRI_DEFAULT_ROOT, [cid]) == []


def test_exec_into_stopped_container_fails_clearly(podman, cidfiles):
    name = unique("e2e")
    assert prun(podman, cidfiles, "--name", name, IMAGE, "true").returncode == 0
    r = podman("exec", name, "echo", "never")
    assert r.returncode != 0 and "never" not in r.stdout
    assert "container state improper" in r.stderr or "not running" in r.stderr, r.stderr
    assert podman("rm", name).returncode == 0


def test_nothing_of_lxcri_left(podman):
    """Last: with every container removed, lxcri keeps no runtime dir and no monitor for any of them."""
    assert MADE, "no containers were made"
    assert podman("rm", "--all", "--force", "--time", "0").returncode == 0
    assert wait_for(lambda: lxcri_leftovers(LXCRI_DEFAULT_ROOT, MADE) == []), \
        lxcri_leftovers(LXCRI_DEFAULT_ROOT, MADE)
