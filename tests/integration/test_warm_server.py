"""The warm server: short commands run in a fork of a started lxcri, with the caller's stdio,
cwd, environment and exit status, and the same results as a direct call."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from lxcri_testlib import LXCRI, reap, reap_any

SOCK_DIR = Path("/run/lxcri-zygote")  # the warm server's socket directory (its name kept for installed clients)


def server_pid() -> int | None:
    """The running server of this installation (its pid is in the lock it holds), if any."""
    import sys

    sys.path.insert(0, str(LXCRI.parent.parent.parent / "runtime"))
    from lxcri.warm.wire import socket_path

    lock = Path(socket_path(os.path.realpath(LXCRI.parent / "lxcri-py")) + ".lock")
    reap_any()  # a server started by a call of this test process comes back to it (a subreaper)
    try:
        pid = int(lock.read_text().split()[0])
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, ValueError, IndexError):
        return None
    return None if state in ("Z", "X") else pid


def stop_server() -> None:
    pid = server_pid()
    if pid:
        os.kill(pid, signal.SIGTERM)
        for _ in range(200):
            if server_pid() is None:
                return
            time.sleep(0.01)


def wait_server(timeout: float = 10) -> int:
    end = time.time() + timeout
    while time.time() < end:
        pid = server_pid()
        if pid and Path(f"/proc/{pid}/cmdline").read_bytes().endswith(b"--warm-server\0"):
            return pid
        time.sleep(0.02)
    raise AssertionError("no warm server started")


def call(*args: str, env: dict[str, str] | None = None, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LXCRI), *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})}, **kw)


def test_first_call_starts_a_server_outside_the_callers_cgroup():
    stop_server()
    r = call("--version")
    assert r.returncode == 0 and "lxcri" in r.stdout  # answered directly: there was no server
    pid = wait_server()
    cgroups = Path(f"/proc/{pid}/cgroup").read_text()
    assert all(line.endswith("/lxcri.warm") for line in cgroups.splitlines()), cgroups
    assert os.getsid(pid) == pid  # its own session: no terminal or caller's signals
    assert call("--version").stdout == r.stdout


def test_warm_and_direct_calls_agree(lxcri, make_bundle, tmp_path):
    call("--version")
    wait_server()
    b = make_bundle(["sleep", "100"])
    cid = lxcri.new_id()
    assert lxcri.create(b, cid, pid_file=tmp_path / "pid").returncode == 0
    root = str(lxcri.root)
    for args in (("state", cid), ("list", "--format", "json"), ("ps", "--format", "json", cid)):
        warm = call("--root", root, *args)
        direct = call("--root", root, *args, env={"LXCRI_WARM_SERVER": "0"})
        assert warm.returncode == direct.returncode == 0, (warm.stderr, direct.stderr)
        assert json.loads(warm.stdout) == json.loads(direct.stdout)
    # an error: the same line on stderr and the same status
    warm, direct = call("--root", root, "state", "nope"), call("--root", root, "state", "nope",
                                                                  env={"LXCRI_WARM_SERVER": "0"})
    assert warm.returncode == direct.returncode == 1
    assert warm.stderr == direct.stderr == "lxcri: container nope does not exist\n"
    assert call("--root", root, "--bogus").returncode == 1
    # the caller's environment: LXCRI_ROOT picks the state directory
    assert json.loads(call("state", cid, env={"LXCRI_ROOT": root}).stdout)["id"] == cid
    # kill through the server; the caller (a subreaper) still reaps the container's init
    assert call("--root", root, "start", cid).returncode == 0
    assert call("--root", root, "kill", cid, "KILL").returncode == 0
    status = reap(int((tmp_path / "pid").read_text()))
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert call("--root", root, "delete", cid).returncode == 0
    assert not (lxcri.root / cid).exists()


def test_caller_stdin_and_cwd(lxcri, make_bundle, tmp_path):
    call("--version")
    wait_server()
    # cwd: spec writes config.json into the caller's directory
    work = tmp_path / "spec"
    work.mkdir()
    assert call("spec", cwd=work).returncode == 0
    assert json.loads((work / "config.json").read_text())["ociVersion"]
    # stdin: update reads the resources from it
    b = make_bundle(["sleep", "100"])
    cid = lxcri.new_id()
    assert lxcri.create(b, cid).returncode == 0
    r = call("--root", str(lxcri.root), "update", "--resources", "-", cid,
             input=json.dumps({"pids": {"limit": 123}}))
    assert r.returncode == 0, r.stderr
    rec = json.loads((lxcri.root / cid / "state.json").read_text())
    pids_dir = next(d for k, d in rec["cgroup_dirs"].items() if "pids" in k.split(","))
    assert Path(pids_dir, "pids.max").read_text().strip() == "123"


def test_commands_that_need_the_callers_process_tree_run_directly(lxcri, make_bundle, tmp_path):
    call("--version")
    wait_server()
    b = make_bundle(["sh", "-c", "echo $PPID"])
    cid = lxcri.new_id()
    out = tmp_path / "out"
    with open(out, "w") as o:
        r = subprocess.run([str(LXCRI), "--root", str(lxcri.root), "run", "--bundle", str(b.path), cid],
                           stdout=o, stderr=subprocess.PIPE, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert out.read_text().strip() == "0"  # the container's init, as a direct run gives it


def test_detached_exec_through_the_server_comes_back_to_the_caller(lxcri, make_bundle, tmp_path):
    """exec --detach (how the containerd shim and conmon run probes): the client starts the
    helper, so the process descends from the caller, which reaps it with its status."""
    call("--version")
    wait_server()
    b = make_bundle(["sleep", "100"])
    cid = lxcri.new_id()
    assert lxcri.create(b, cid).returncode == 0
    lxcri("start", cid, check=True)
    pidf = tmp_path / "exec.pid"
    r = call("--root", str(lxcri.root), "exec", "--detach", "--pid-file", str(pidf), cid, "sh", "-c", "exit 7")
    assert r.returncode == 0, r.stderr
    status = reap(int(pidf.read_text()))
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 7


def test_new_code_on_disk_retires_the_server():
    call("--version")
    old = wait_server()
    module = Path(LXCRI.parent.parent.parent / "runtime" / "lxcri" / "container" / "ps.py")
    if not module.exists():
        pytest.skip("not an editable install: no module source to touch")
    st = module.stat()
    os.utime(module, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    try:
        r = call("--version")  # answered directly: the server will not run code older than the disk's
        assert r.returncode == 0
        for _ in range(200):
            if server_pid() != old:
                break
            time.sleep(0.01)
        else:
            raise AssertionError("the server with stale code did not exit")
        call("--version")
        assert wait_server() != old
    finally:
        os.utime(module, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_setting_off_means_direct_calls(tmp_path):
    # a private copy of the installation: its own server identity, which no other caller uses
    import shutil

    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name in ("lxcri", "lxcri-py"):
        shutil.copy2(LXCRI.parent / name, bindir / name)
    lock = Path(socket_path_for(bindir / "lxcri-py") + ".lock")
    r = subprocess.run([str(bindir / "lxcri"), "--version"], capture_output=True, text=True,
                       env={**os.environ, "LXCRI_WARM_SERVER": "0"})
    assert r.returncode == 0 and "lxcri" in r.stdout
    time.sleep(0.5)
    assert not lock.exists()  # no server was started for it
    r = subprocess.run([str(bindir / "lxcri"), "--version"], capture_output=True, text=True)
    assert r.returncode == 0
    for _ in range(500):
        if lock.exists() and lock.read_text().strip():
            break
        time.sleep(0.01)
    pid = int(lock.read_text())
    os.kill(pid, signal.SIGTERM)


def socket_path_for(entry: Path) -> str:
    import sys

    sys.path.insert(0, str(LXCRI.parent.parent.parent / "runtime"))
    from lxcri.warm.wire import socket_path

    return socket_path(os.path.realpath(entry))


def test_callers_umask_and_namespace(tmp_path):
    call("--version")
    wait_server()
    # the files a call makes get the caller's umask, not the server's
    work = tmp_path / "spec"
    work.mkdir()
    r = subprocess.run(["sh", "-c", f"umask 077; exec {LXCRI} spec"], cwd=work, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert (work / "config.json").stat().st_mode & 0o777 == 0o600
    # a caller in another mount namespace (a pod given the host's /run) is not served: the client
    # then runs the call itself, with its own rights and view
    import sys

    sys.path.insert(0, str(LXCRI.parent.parent.parent / "runtime"))
    from lxcri.warm.peers import same_context

    other = subprocess.Popen(["unshare", "-m", "sleep", "30"])
    try:
        for _ in range(100):
            if os.readlink(f"/proc/{other.pid}/ns/mnt") != os.readlink("/proc/self/ns/mnt"):
                break
            time.sleep(0.01)
        assert same_context(os.getpid())
        assert not same_context(other.pid)
    finally:
        other.kill()
        other.wait()
    r = subprocess.run(["unshare", "-m", str(LXCRI), "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and "lxcri" in r.stdout


def test_caller_with_fewer_rights_runs_its_call_itself(lxcri, make_bundle, tmp_path):
    """A worker acts with the server's rights: a caller with no_new_privs (or fewer capabilities)
    must not get a worker to run its hooks; its call runs in its own process."""
    call("--version")
    wait_server()
    b = make_bundle(["true"])
    seen = tmp_path / "poststop.status"
    b.config["hooks"] = {"poststop": [{"path": "/bin/sh", "args": ["sh", "-c", f"cat /proc/self/status > {seen}"]}]}
    b.save()
    cid = lxcri.new_id()
    pidf = tmp_path / "pid"
    assert lxcri.create(b, cid, pid_file=pidf).returncode == 0
    lxcri("start", cid, check=True)
    reap(int(pidf.read_text()))
    r = subprocess.run(["setpriv", "--no-new-privs", str(LXCRI), "--root", str(lxcri.root), "delete", cid],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "NoNewPrivs:\t1" in seen.read_text()  # the hook ran in the caller's process tree


def test_low_open_file_limit_and_closed_stdin(lxcri, make_bundle, tmp_path):
    import resource

    call("--version")
    wait_server()

    def low() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))  # systemd's default soft limit

    b = make_bundle(["sleep", "100"])
    cid = lxcri.new_id()
    assert lxcri.create(b, cid, preexec_fn=low).returncode == 0, (b.path / "out.err").read_text()
    r = subprocess.run([str(LXCRI), "--root", str(lxcri.root), "exec", "--detach", cid, "true"],
                       capture_output=True, text=True, timeout=60, preexec_fn=low)
    assert r.returncode == 0, r.stderr
    # with stdin closed the call must not read from anything else (it ran directly before)
    r = subprocess.run(f"exec {LXCRI} --root {lxcri.root} update -r - {cid} 0<&-", shell=True,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1


def test_interrupted_create_cleans_up_as_a_direct_one(lxcri, make_bundle, tmp_path):
    from lxcri_testlib import leftovers

    call("--version")
    wait_server()
    b = make_bundle(["true"])
    b.config["hooks"] = {"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "3"]}]}
    b.save()
    cid = lxcri.new_id()
    p = subprocess.Popen([str(LXCRI), "--root", str(lxcri.root), "create", "--bundle", str(b.path), cid],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.2)
    p.send_signal(signal.SIGINT)
    p.wait(timeout=30)
    assert p.returncode != 0
    for _ in range(100):
        if not leftovers(cid, lxcri.root):
            break
        time.sleep(0.05)
    assert leftovers(cid, lxcri.root) == []


def test_bad_setting_or_ignored_signal_behave_as_directly():
    call("--version")
    pid = wait_server()
    # a call with a bad setting is reported as a direct one reports it; the server stays
    warm = call("state", "nope", env={"LXCRI_KILL_TIMEOUT": "abc"})
    direct = call("state", "nope", env={"LXCRI_KILL_TIMEOUT": "abc", "LXCRI_WARM_SERVER": "0"})
    assert warm.returncode == direct.returncode == 1 and warm.stderr == direct.stderr
    assert server_pid() == pid
    # a signal the caller ignores stays ignored (nohup, background jobs): the call finishes
    r = subprocess.run(["sh", "-c", f"trap '' HUP; {LXCRI} --version & c=$!; kill -HUP $c; wait $c"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "lxcri" in r.stdout


def _server_socket() -> str:
    return socket_path_for(LXCRI.parent / "lxcri-py")


def _children(pid: int) -> list[int]:
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if int((p / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(p.name))
            except (OSError, IndexError, ValueError):
                pass
    return out


@pytest.mark.parametrize("warm", [True, False], ids=["warm", "direct"])
def test_hooks_get_the_callers_limits_and_cgroup(lxcri, make_bundle, tmp_path, warm):
    """A hook runs with the caller's rlimits and in the caller's cgroups, as runc's do (they are
    the runtime's children); through the warm server as when called directly."""
    call("--version")
    server = wait_server()
    name = f"faults-caller-{os.getpid()}-{int(warm)}"
    dirs = [Path("/sys/fs/cgroup") / h / name for h in ("pids", "memory", "unified")
            if (Path("/sys/fs/cgroup") / h / "cgroup.procs").exists()]
    for d in dirs:
        d.mkdir()
    b = make_bundle(["true"])
    b.config["process"].pop("rlimits", None)  # runc's 1024 files: above the caller's 777
    hook = ("cat /proc/self/limits > {out}.limits; cat /proc/self/cgroup > {out}.cgroup; "
            "cut -d' ' -f4 /proc/$PPID/stat > {out}.grandparent")
    b.config["hooks"] = {
        point: [{"path": "/bin/sh", "args": ["sh", "-c", hook.format(out=tmp_path / point)]}]
        for point in ("createRuntime", "poststart")}
    b.save()
    cid = lxcri.new_id()
    enter = "; ".join(f"echo $$ > {d}/cgroup.procs" for d in dirs)
    env = {**os.environ, "LXCRI_WARM_SERVER": "1" if warm else "0"}
    try:
        for args in (f"create --bundle {b.path} {cid}", f"start {cid}"):
            with open(tmp_path / "err", "w+") as err:  # files, not pipes: the container inherits them
                r = subprocess.run(["sh", "-c", f"{enter}; ulimit -n 777; exec {LXCRI} --root {lxcri.root} {args}"],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, timeout=60,
                                   env=env)
                err.seek(0)
                assert r.returncode == 0, err.read()
        for point in ("createRuntime", "poststart"):
            limits = (tmp_path / f"{point}.limits").read_text()
            assert any(ln.startswith("Max open files") and ln.split()[3:5] == ["777", "777"]
                       for ln in limits.splitlines()), limits
            cgroup = (tmp_path / f"{point}.cgroup").read_text()
            for d in dirs:
                hier = "" if d.parent.name == "unified" else d.parent.name
                assert f":{hier}:/{name}\n" in cgroup, (point, cgroup)
            grandparent = int((tmp_path / f"{point}.grandparent").read_text())
            # through the server, the hook's parent is a worker; directly, a process of the caller's
            assert (grandparent == server) == warm, (point, grandparent, server)
    finally:
        lxcri("delete", "--force", cid)
        reap_any()
        for d in dirs:
            for _ in range(100):
                try:
                    d.rmdir()
                    break
                except OSError:
                    time.sleep(0.05)


def _raw(payload: bytes, fds: list[int] | None = None, wait: float = 10.0) -> bytes:
    """What the server answers a client that sends payload (and fds), or b'' if it closes silently."""
    import socket

    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(wait)
    try:
        s.connect(_server_socket())
        if payload or fds:
            s.sendmsg([payload], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, bytes(memoryview(
                __import__("array").array("i", fds))))] if fds else [])
        return s.recv(16)
    finally:
        s.close()


def test_bad_clients_do_not_hold_or_retire_the_server():
    """Garbage, a huge length, silence, or a wrong tag: that call is answered 'run it yourself'
    within the handshake deadline, no worker is forked, and the server stays."""
    import struct

    call("--version")
    server = wait_server()
    t = time.monotonic()
    assert _raw(struct.pack("<I", 0x7FFFFFFF) + b"x" * 100) == b"D"  # a length far beyond any call
    assert _raw(struct.pack("<I", 5) + b"hello") == b"D"  # garbage, complete
    assert _raw(struct.pack("<I", 5) + b"hello, and more than announced") == b"D"
    assert _raw(b"") == b"D"  # silence: dropped at the handshake deadline
    with open("/dev/null") as f:
        fds = [f.fileno()] * 4
        body = b"LXZ9\0" + b"22\0" + b"1\0" + b"state\0"
        assert _raw(struct.pack("<I", len(body)) + body, fds) == b"D"  # another protocol's tag
    assert time.monotonic() - t < 30  # each bounded by the handshake deadline, not held forever
    assert server_pid() == server
    assert _children(server) == []
    r = call("--version")
    assert r.returncode == 0 and server_pid() == server


def test_idle_connections_do_not_hold_workers():
    """1,000 clients that connect and say nothing hold no worker; real calls are still answered."""
    import resource
    import socket

    call("--version")
    server = wait_server()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    idle = []
    try:
        for _ in range(1000):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(_server_socket())
            idle.append(s)
        assert _children(server) == []
        r = call("--version")
        assert r.returncode == 0 and "lxcri" in r.stdout
        rss = int(next(ln for ln in Path(f"/proc/{server}/status").read_text().splitlines()
                       if ln.startswith("VmRSS")).split()[1])
        assert rss < 200_000, rss  # kB: one process, not a thousand workers
        # the server answers or drops every one of them (beyond the bound at once, the rest at
        # the handshake deadline)
        for s in idle:
            s.settimeout(15)
            assert s.recv(1) in (b"D", b"")
        assert server_pid() == server
    finally:
        for s in idle:
            s.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_busy_workers_are_bounded_and_the_rest_run_directly():
    """More calls at once than the server runs workers for: the server forks no more than its
    bound, and every call still gets its answer (the excess ran directly)."""
    import sys

    sys.path.insert(0, str(LXCRI.parent.parent.parent / "runtime"))
    from lxcri.warm.server import MAX_WORKERS

    call("--version")
    server = wait_server()
    calls = []
    try:
        for _ in range(MAX_WORKERS + 6):
            # update -r - blocks on the caller's stdin, here a pipe we hold open: a busy call
            calls.append(subprocess.Popen([str(LXCRI), "update", "-r", "-", "faults-no-such-container"],
                                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                          text=True))
        most = 0
        for _ in range(300):
            most = max(most, len(_children(server)))
            if most >= MAX_WORKERS:
                break
            time.sleep(0.01)
        time.sleep(0.3)
        most = max(most, len(_children(server)))
        assert 0 < most <= MAX_WORKERS, most
    finally:
        answers = [(p.communicate('{"pids": {"limit": 10}}', timeout=60)[1], p.returncode) for p in calls]
    wrong = [a for a in answers if a[1] != 1 or "does not exist" not in a[0]]
    assert wrong == [], wrong
    assert server_pid() == server
