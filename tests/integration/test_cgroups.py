"""Where a container's cgroups are, and that they go again: real containers through liblxc.

What real callers do and once broke lxcri (issue 10):
- kubelet makes its pod cgroups with cgroup.clone_children=0: a new v1 cpuset cgroup below
  one is empty and no task can enter it. Every level a create makes gets cpus and mems.
- CRI-O passes an absolute cgroupsPath, meant from the cgroup root, while conmon (and on a
  kind node pid 1) sits in a cgroup of its own. The container's cgroup must be exactly
  /sys/fs/cgroup/<hierarchy>/<cgroupsPath>, where its /sys/fs/cgroup mount points.
- A failed create, whatever failed, leaves no cgroup in any hierarchy (the container's, the
  levels above it that it made, its monitor's); delete removes the same, and nothing that
  existed before.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lxcri_testlib import LXCRI, leftovers, reap, reap_any

CG = Path("/sys/fs/cgroup")


def hierarchies() -> list[Path]:
    return sorted(top for top in CG.iterdir() if (top / "cgroup.procs").exists())


def cpuset() -> Path | None:
    top = CG / "cpuset"
    return top if (top / "cpuset.cpus").exists() else None


def init_cpuset(d: Path) -> None:
    """Fill a v1 cpuset cgroup made by a test from its parent, as kubelet (runc) does."""
    for name in ("cpuset.cpus", "cpuset.mems"):
        if not (d / name).read_text().strip():
            (d / name).write_text((d.parent / name).read_text().strip())


def in_proc_cgroup(pid: int) -> dict[str, str]:
    """/proc/PID/cgroup as {hierarchy directory name: path}."""
    out = {}
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, ctrls, path = line.split(":", 2)
        out[ctrls] = path
    return out


def hierarchy_of(ctrls: str) -> Path:
    if ctrls == "":
        return next(h for h in hierarchies() if (h / "cgroup.controllers").exists())
    names = ctrls.split(",")
    return next(h for h in hierarchies() if h.name in names or h.name == ctrls.removeprefix("name="))


class Tree:
    """Test-owned cgroups named NAME in every hierarchy, removed deepest first at the end."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.made: list[Path] = []

    def make(self, rel: str, clone_children: int | None = None) -> list[Path]:
        dirs = []
        for top in hierarchies():
            d = top / rel
            d.mkdir(parents=True, exist_ok=True)
            self.made.append(d)
            if clone_children is not None and (d / "cgroup.clone_children").exists():
                (d / "cgroup.clone_children").write_text(str(clone_children))
            if top.name == "cpuset":
                for level in reversed([d, *d.parents][: len(Path(rel).parts)]):
                    init_cpuset(level)
            dirs.append(d)
        return dirs

    def existing(self) -> list[str]:
        """Every dir below /sys/fs/cgroup/*/NAME, in every hierarchy."""
        found = []
        for top in hierarchies():
            for dirpath, _dirnames, _ in os.walk(top / self.name):
                found.append(dirpath)
        return sorted(found)

    def clean(self) -> None:
        for top in hierarchies():
            below = [os.path.join(dp, n) for dp, dn, _ in os.walk(top / self.name, topdown=False) for n in dn]
            for d in [*below, str(top / self.name)]:
                for _ in range(100):
                    try:
                        os.rmdir(d)
                        break
                    except FileNotFoundError:
                        break
                    except OSError:
                        time.sleep(0.05)


@pytest.fixture
def tree(request: pytest.FixtureRequest, lxcri) -> Iterator[Tree]:
    t = Tree(f"lxcri-test-{os.getpid()}-{request.node.name[:40].replace('[', '-').replace(']', '')}")
    t.clean()
    yield t
    for cid in lxcri.ids:  # a failed test's containers first: they hold the tree
        lxcri("delete", "--force", cid)
    reap_any()
    t.clean()


def caller_script(caller: str, command: str) -> str:
    """sh: move into CALLER in every hierarchy (as conmon sits in a cgroup of its own), then command."""
    enter = "; ".join(f"echo $$ > {top / caller}/cgroup.procs" for top in hierarchies())
    return f"{enter}; {command}"


def assert_placed_at(pid: int, path: str) -> None:
    """The init's cgroup is PATH from the root, in every hierarchy, and its directory is there."""
    seen = in_proc_cgroup(pid)
    assert set(seen.values()) == {path}, seen
    for ctrls in seen:
        assert (hierarchy_of(ctrls) / path.lstrip("/") / "cgroup.procs").is_file(), (ctrls, path)
        assert str(pid) in (hierarchy_of(ctrls) / path.lstrip("/") / "cgroup.procs").read_text().split()


def monitor_dirs(cid: str) -> list[Path]:
    return [d for top in hierarchies() for d in (top / "lxcri.monitor").glob(f"{cid}*")]


# -- cpuset: every level a create makes, below a parent with clone_children=0 ---------------------


@pytest.mark.skipif(cpuset() is None, reason="this host has no cgroup v1 cpuset hierarchy (v2 inherits cpus)")
@pytest.mark.parametrize("below", ["pod/ctr", "new1/new2/ctr"], ids=["leaf-below-pod", "two-new-levels"])
def test_cpuset_below_a_parent_without_clone_children(lxcri, make_bundle, tree, below):
    """kubelet's shape: <parent>/pod (initialised, clone_children=0) and the container below; and
    two levels the create makes itself. The container starts, with its parent's cpus and mems."""
    tree.make(tree.name, clone_children=0)
    tree.make(f"{tree.name}/pod", clone_children=0)
    before = tree.existing()
    path = f"/{tree.name}/{below}"
    b = make_bundle(["sh", "-c", "grep -E '^(Cpus|Mems)_allowed_list' /proc/self/status; sleep 1000"])
    b.config["linux"]["cgroupsPath"] = path
    b.save()
    cid = lxcri.new_id()
    r = lxcri.create(b, cid)
    assert r.returncode == 0, r.stderr
    pid = lxcri.state(cid)["pid"]
    assert_placed_at(pid, path)
    assert lxcri("start", cid).returncode == 0
    pod = cpuset() / tree.name / "pod"  # type: ignore[operator]
    leaf = cpuset() / path.lstrip("/")  # type: ignore[operator]
    assert (leaf / "cpuset.cpus").read_text().strip() == (cpuset() / tree.name / "cpuset.cpus").read_text().strip()
    assert (leaf / "cpuset.mems").read_text().strip()
    assert (pod / "cgroup.clone_children").read_text().strip() == "0"  # kubelet's cgroup as it was
    for _ in range(100):
        out = (b.path / "out").read_text()
        if "Mems" in out:
            break
        time.sleep(0.05)
    assert f"Cpus_allowed_list:\t{(leaf / 'cpuset.cpus').read_text().strip()}" in out, out
    assert lxcri("delete", "--force", cid).returncode == 0
    reap_any()
    # what the create made is gone in every hierarchy (both new levels too), what was there stays
    assert tree.existing() == before
    assert monitor_dirs(cid) == []


@pytest.mark.skipif(cpuset() is None or (CG / "cpuset" / "cpuset.cpus").read_text().strip() in ("0", ""),
                    reason="needs a v1 cpuset hierarchy and two CPUs to narrow a cpuset")
def test_an_existing_narrowed_first_level_keeps_its_cpus(lxcri, make_bundle, tree):
    """liblxc writes the root's cpus and clone_children=1 into the first level of the path even
    when it exists: an admin's narrowed cpuset (here CPU 0 only) is put back, and the container
    below it gets CPU 0."""
    top = CG / "cpuset" / tree.name
    tree.make(tree.name, clone_children=0)
    (top / "cpuset.cpus").write_text("0")
    b = make_bundle(["sleep", "1000"])
    b.config["linux"]["cgroupsPath"] = f"/{tree.name}/ctr"
    b.save()
    cid = lxcri.new_id()
    r = lxcri.create(b, cid)
    assert r.returncode == 0, r.stderr
    assert (top / "cpuset.cpus").read_text().strip() == "0"
    assert (top / "cgroup.clone_children").read_text().strip() == "0"
    assert (top / "ctr" / "cpuset.cpus").read_text().strip() == "0"
    assert lxcri("delete", "--force", cid).returncode == 0
    reap_any()


# -- placement: from the root, whatever cgroup the caller (or pid 1) sits in -----------------------


@pytest.mark.parametrize("warm", [False, True], ids=["direct", "warm"])
def test_absolute_path_is_from_the_root_for_a_caller_in_its_own_cgroup(lxcri, make_bundle, tree, warm):
    """conmon's shape: the caller sits in a non-root cgroup in every hierarchy and passes an absolute
    cgroupsPath. The cgroup is /sys/fs/cgroup/<hierarchy>/<cgroupsPath>, and the container's own
    /sys/fs/cgroup/memory (bound from there) shows its limit."""
    caller = f"{tree.name}/conmon"
    tree.make(caller)
    path = f"/{tree.name}/crio/crio-x"
    b = make_bundle(["sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max"])
    b.config["linux"]["cgroupsPath"] = path
    b.config["linux"]["resources"] = {"memory": {"limit": 40 << 20}, "pids": {"limit": 37},
                                      "cpu": {"period": 0, "quota": 0, "shares": 0}}  # CRI-O's zeros: unset
    b.save()
    cid = lxcri.new_id("crio")
    env = {**os.environ, "LXCRI_WARM_SERVER": "1" if warm else "0"}
    cmd = caller_script(caller, f"exec {LXCRI} --root {lxcri.root} create --bundle {b.path} {cid}")
    with open(b.path / "out", "w") as out, open(b.path / "err", "w+") as err:  # files: the container keeps them
        r = subprocess.run(["sh", "-c", cmd], stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, timeout=60)
        err.seek(0)
        assert r.returncode == 0, err.read()
    pid = lxcri.state(cid)["pid"]
    assert_placed_at(pid, path)
    for top in hierarchies():
        assert not (top / caller / "crio").exists(), f"a cgroup below the caller's in {top}"
    assert monitor_dirs(cid) == []  # the monitor's cgroups went with it at the end of create
    assert lxcri("start", cid).returncode == 0
    status = reap(pid)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    assert (b.path / "out").read_text().split() == [str(40 << 20), "37"]
    assert lxcri("delete", cid).returncode == 0
    assert leftovers(cid, lxcri.root) == []
    assert tree.existing() == sorted(str(top / p) for top in hierarchies() for p in (tree.name, caller))


def test_absolute_path_is_from_the_root_when_pid_1_is_in_its_own_cgroup(lxcri, make_bundle, tree):
    """A kind node, or this VM seen from a container: pid 1 is not in the root cgroup. liblxc
    (as root) would take pid 1's cgroup as the base of every path. In a new pid namespace whose
    pid 1 sits in a non-root cgroup in every hierarchy, the container still lands at the path."""
    caller = f"{tree.name}/node"
    tree.make(caller)
    path = f"/{tree.name}/kubepods/ctr"
    b = make_bundle(["sleep", "1000"])
    b.config["linux"]["cgroupsPath"] = path
    b.save()
    cid = lxcri.new_id()
    lx = f"{LXCRI} --root {lxcri.root}"
    inner = caller_script(caller, (
        "grep -v ':/$' /proc/1/cgroup | wc -l; "  # pid 1 (this shell) is out of the root cgroup
        f"{lx} create --bundle {b.path} {cid} </dev/null >/dev/null || exit 9; "
        f"pid=$({lx} state {cid} | tr -d ' \\n' | sed 's/.*\"pid\":\\([0-9]*\\).*/\\1/'); "
        f"cat /proc/$pid/cgroup; {lx} delete --force {cid}"))
    r = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "sh", "-c", inner],
                       capture_output=True, text=True, timeout=60, env={**os.environ, "LXCRI_WARM_SERVER": "0"})
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.split()
    assert int(lines[0]) == len(hierarchies()), r.stdout
    paths = {ln.split(":", 2)[2] for ln in lines[1:]}
    assert paths == {path}, r.stdout
    assert leftovers(cid, lxcri.root) == []
    assert tree.existing() == sorted(str(top / p) for top in hierarchies() for p in (tree.name, caller))


def test_relative_cgroups_path(lxcri, make_bundle, tree):
    """runtime-tools' linux_cgroups_relative_* shape: a relative cgroupsPath, from the root too."""
    path = f"{tree.name}/rel/ctr"
    b = make_bundle(["sleep", "1000"])
    b.config["linux"]["cgroupsPath"] = path
    b.config["linux"]["resources"] = {"memory": {"limit": 50 << 20}, "cpu": {"shares": 300}}
    b.save()
    cid = lxcri.new_id()
    r = lxcri.create(b, cid)
    assert r.returncode == 0, r.stderr
    assert_placed_at(lxcri.state(cid)["pid"], "/" + path)
    assert (CG / "memory" / path / "memory.limit_in_bytes").read_text().strip() == str(50 << 20)
    assert (CG / "cpu" / path / "cpu.shares").read_text().strip() == "300"
    assert lxcri("delete", "--force", cid).returncode == 0
    reap_any()
    assert tree.existing() == []  # every level was the create's


# -- cleanup: a failed create, and delete, remove every cgroup made and nothing else ----------------


def _failing(kind: str, b, tmp_path: Path) -> str:
    """Make bundle b fail once liblxc has made the cgroups; the message the create must give."""
    if kind == "no-program":
        b.config["process"]["args"] = ["/no/such/program"]
        return "/no/such/program"
    if kind == "bad-mount":  # refused by the kernel when liblxc mounts it, in the container's set-up
        b.config["mounts"].append({"destination": "/data", "type": "tmpfs", "source": "tmpfs",
                                   "options": ["size=notanumber"]})
        return "Failed to mount"
    if kind == "seccomp-listener":  # the seccomp agent is not there: found after the init joined the cgroup
        b.config["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": str(tmp_path / "no.sock"),
                                        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}
        return "no.sock"
    if kind == "prestart-hook":
        b.config["hooks"] = {"prestart": [{"path": "/bin/false"}]}
        return "prestart"
    raise AssertionError(kind)


@pytest.mark.parametrize("warm", [False, True], ids=["direct", "warm"])
@pytest.mark.parametrize("kind", ["no-program", "bad-mount", "seccomp-listener", "prestart-hook"])
def test_failed_create_leaves_no_cgroup(lxcri, make_bundle, tree, tmp_path, kind, warm):
    """From a caller in its own cgroup, with a cgroupsPath two new levels below an existing parent:
    not one directory stays in any hierarchy (issue 10: 126 crio-<id> and 65 lxcri.monitor/<id>
    leaked in one critest run), and the parent that existed stays."""
    tree.make(f"{tree.name}/conmon")
    tree.make(f"{tree.name}/pods", clone_children=0)
    before = tree.existing()
    b = make_bundle(["true"])
    msg = _failing(kind, b, tmp_path)
    b.config["linux"]["cgroupsPath"] = f"/{tree.name}/pods/pod1/crio-1"
    b.save()
    cid = lxcri.new_id("crio")
    env = {**os.environ, "LXCRI_WARM_SERVER": "1" if warm else "0"}
    cmd = caller_script(f"{tree.name}/conmon", f"exec {LXCRI} --root {lxcri.root} create --bundle {b.path} {cid}")
    r = subprocess.run(["sh", "-c", cmd], stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env,
                       timeout=60)
    reap_any()
    assert r.returncode == 1 and msg in r.stderr, r.stderr
    assert tree.existing() == before
    assert monitor_dirs(cid) == []
    assert leftovers(cid, lxcri.root) == []


def test_killed_create_leaves_no_cgroup_after_delete_force(lxcri, make_bundle, tree):
    """The create SIGKILLed once the container's cgroup exists (conmon OOM-killed): the next
    delete --force removes every cgroup it made, the levels above the container's too."""
    tree.make(tree.name)
    before = tree.existing()
    path = f"/{tree.name}/pod/ctr"
    b = make_bundle(["sleep", "1000"])
    b.config["linux"]["cgroupsPath"] = path
    b.config["hooks"] = {"prestart": [{"path": "/bin/sleep", "args": ["sleep", "10"]}]}  # holds create there
    b.save()
    cid = lxcri.new_id()
    p = subprocess.Popen([str(LXCRI), "--root", str(lxcri.root), "create", "--bundle", str(b.path), cid],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         env={**os.environ, "LXCRI_WARM_SERVER": "0"})
    leaf = CG / "pids" / path.lstrip("/")
    end = time.monotonic() + 20
    while not (leaf.is_dir() and (leaf / "cgroup.procs").read_text().strip()):
        assert time.monotonic() < end, "the container's cgroup never filled"
        time.sleep(0.02)
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert json.loads((lxcri.root / cid / "state.json").read_text())["cgroup_parents"]
    r = lxcri("delete", "--force", cid, timeout=60)
    reap_any()
    assert r.returncode == 0, r.stderr
    assert tree.existing() == before
    assert monitor_dirs(cid) == []
    assert leftovers(cid, lxcri.root) == []


def test_a_level_made_by_one_create_goes_with_the_last_container_in_it(lxcri, make_bundle, tree):
    """Two containers below a level the first create made (a pod's cgroup that the sandbox's
    create made): deleting the first keeps it (the second is in it); deleting the second removes
    it, although the second's create found it there."""
    tree.make(tree.name)
    ids = []
    for n in ("a", "b"):
        b = make_bundle(["sleep", "1000"])
        b.config["linux"]["cgroupsPath"] = f"/{tree.name}/shared/{n}"
        b.save()
        cid = lxcri.new_id()
        assert lxcri.create(b, cid).returncode == 0
        ids.append(cid)
    assert lxcri("delete", "--force", ids[0]).returncode == 0
    for top in hierarchies():
        assert (top / tree.name / "shared" / "b").is_dir(), top
        assert not (top / tree.name / "shared" / "a").exists(), top
    assert lxcri("delete", "--force", ids[1]).returncode == 0
    reap_any()
    assert tree.existing() == sorted(str(top / tree.name) for top in hierarchies())
