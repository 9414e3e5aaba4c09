#!/usr/bin/env python3
"""cri-tools' critest through a real CRI (containerd 1.6 or CRI-O 1.37), with `runc` and `lxcri`
as runtime handlers of the same daemon, one run after the other, and the comparison of the two.

    critest_env.py run --cri crio|containerd DIR [--focus RE] [--timeout S]   # run both, print report
    critest_env.py report DIR                                                # print it again

Why it is built this way:
- Nothing may listen outside or touch the host: the registry that serves critest's images, the CRI
  and critest run in private network, IPC and mount namespaces, with a private /run (shim sockets,
  lxcri's warm server, lock files) and everything else under DIR. No private pid namespace: liblxc
  places v1 cgroups relative to the pid namespace's init (see ../shared/critest/README.md).
- Everything started must go, also on failure or timeout: this process makes itself a child
  subreaper, so every daemon, shim, conmon, warm server and container process stays its
  descendant; at the end it kills all of them (and anything else in the private namespaces),
  then removes the cgroups critest's pods were given (`/test.slice`). The mounts and the network
  namespace die with the last process in them.
- The images are built once (build-images.py) into a cache keyed by the builder's hash.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import fcntl
import hashlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LXCRI = Path(os.environ.get("LXCRI_BIN", REPO / ".venv" / "bin" / "lxcri"))
RUNC = Path("/usr/bin/runc")
CONMON = Path("/usr/bin/conmon")
CACHE = Path(os.environ.get("LXCRI_CRITEST_CACHE", "/var/cache/lxcri-critest"))
HANDLERS = ("runc", "lxcri")
CRIS = ("containerd", "crio")
PORT = 5000  # the registry, inside the private network namespace
MIRRORED = ("registry.k8s.io", "gcr.io", "k8s.gcr.io", "docker.io", "quay.io")
CGROUP_PARENT = "test.slice"  # where critest puts its pods, in every hierarchy
CGROOT = Path("/sys/fs/cgroup")
# images the specs use without removing them: pulled once before both runs, so neither pays for them
PREPULL = ("registry.k8s.io/e2e-test-images/busybox:1.29-2", "registry.k8s.io/e2e-test-images/nginx:1.14-2",
           "registry.k8s.io/e2e-test-images/httpd:2.4.39-4", "registry.k8s.io/e2e-test-images/nonewprivs:1.3",
           "gcr.io/k8s-staging-cri-tools/hostnet-nginx-amd64:latest", "registry.k8s.io/pause:3.9")


def shared_dir() -> Path | None:
    """../shared beside the repository (as in CI), else $LXCRI_SHARED; None when neither has critest."""
    for p in (REPO.parent / "shared", Path(os.environ.get("LXCRI_SHARED", "/work/shared"))):
        if (p / "critest" / "bin" / "critest.xz").exists() and (p / "kube" / "bin" / "crio.xz").exists():
            return p
    return None


def log(msg: str) -> None:
    print(f"critest_env {time.strftime('%H:%M:%S')}: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- preparation (host side)

def image_data(shared: Path) -> Path:
    """The registry's data dir, built by build-images.py once per version of the builder."""
    src = shared / "critest"
    h = hashlib.sha256()
    for f in [src / "build-images.py", *sorted((src / "src").glob("*"))]:
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    out = CACHE / f"images-{h.hexdigest()[:16]}"
    if (out / "images.txt").exists():
        return out
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another run may be building the same
        if not (out / "images.txt").exists():
            log(f"building critest's images into {out}")
            env = dict(os.environ, CRITEST_DEBS=str(CACHE / "debs"))
            subprocess.run([sys.executable, str(src / "build-images.py"), str(out)], env=env, check=True,
                           stdout=sys.stderr)
    return out


def unpack(shared: Path, bindir: Path, cri: str) -> None:
    bindir.mkdir(parents=True, exist_ok=True)
    names = [("critest", "critest/bin/critest.xz"), ("crictl", "critest/bin/crictl.xz")]
    if cri == "crio":
        names += [("crio", "kube/bin/crio.xz"), ("pinns", "kube/bin/pinns.xz")]
    for name, rel in names:
        if (bindir / name).exists():
            continue
        with open(bindir / f"{name}.part", "wb") as out:
            subprocess.run(["xz", "-dc", str(shared / rel)], stdout=out, check=True)
        (bindir / f"{name}.part").chmod(0o755)
        (bindir / f"{name}.part").rename(bindir / name)


def cni_conf(d: Path) -> None:
    (d / "cni" / "net.d").mkdir(parents=True, exist_ok=True)
    (d / "cni" / "net.d" / "10-critest.conflist").write_text(json.dumps({
        "cniVersion": "1.0.0", "name": "critest-pods",
        "plugins": [
            {"type": "bridge", "bridge": "cni0", "isGateway": True, "ipMasq": True, "hairpinMode": True,
             "ipam": {"type": "host-local", "dataDir": str(d / "cni" / "ipam"),
                      "ranges": [[{"subnet": "10.88.0.0/16"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ]}, indent=1))


def containerd_conf(d: Path) -> Path:
    """containerd 1.6 (config version 2): runc and lxcri, both through the runc v2 shim."""
    certs = d / "certs.d"
    for host in (*MIRRORED, "_default"):
        (certs / host).mkdir(parents=True, exist_ok=True)
        (certs / host / "hosts.toml").write_text(
            f'server = "http://127.0.0.1:{PORT}"\n[host."http://127.0.0.1:{PORT}"]\n'
            '  capabilities = ["pull", "resolve"]\n')
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    runtimes = "".join(f"""
[{cri}.containerd.runtimes.{name}]
  runtime_type = "io.containerd.runc.v2"
  [{cri}.containerd.runtimes.{name}.options]
    BinaryName = "{binary}"
""" for name, binary in (("runc", RUNC), ("lxcri", LXCRI)))
    conf = d / "containerd.toml"
    conf.write_text(f"""version = 2
root = "{d}/containerd/root"
state = "{d}/containerd/state"
oom_score = 0
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "{d}/cri.sock"
[ttrpc]
  address = "{d}/cri.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/containerd/opt"
[{cri}]
  sandbox_image = "registry.k8s.io/pause:3.6"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"
{runtimes}
[{cri}.cni]
  bin_dir = "/usr/lib/cni"
  conf_dir = "{d}/cni/net.d"
  max_conf_num = 1
[{cri}.registry]
  config_path = "{certs}"
""")
    return conf


def crio_conf(d: Path) -> list[str]:
    """CRI-O 1.37 with conmon: runc and lxcri as OCI runtimes, storage and state under d; the
    attach sockets in the private /run, where their paths stay within 108 bytes whatever d is."""
    c = d / "crio"
    (c / "conf.d").mkdir(parents=True, exist_ok=True)
    (c / "policy.json").write_text('{"default": [{"type": "insecureAcceptAnything"}]}\n')
    regs = ['unqualified-search-registries = []', 'short-name-mode = "disabled"']
    for host in MIRRORED:
        regs += ["[[registry]]", f'prefix = "{host}"', f'location = "{host}"',
                 "[[registry.mirror]]", f'location = "127.0.0.1:{PORT}"', "insecure = true"]
    (c / "registries.conf").write_text("\n".join(regs) + "\n")
    (c / "storage.conf").write_text(f'[storage]\ndriver = "overlay"\ngraphroot = "{c}/storage"\n'
                                    f'runroot = "{c}/run/storage"\n')
    runtimes = "".join(f"""
[crio.runtime.runtimes.{name}]
runtime_path = "{binary}"
runtime_type = "oci"
runtime_root = "{c}/run/{name}"
monitor_path = "{CONMON}"
monitor_cgroup = "pod"
monitor_env = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
""" for name, binary in (("runc", RUNC), ("lxcri", LXCRI)))
    (c / "crio.conf").write_text(f"""[crio]
root = "{c}/storage"
runroot = "{c}/run/storage"
storage_driver = "overlay"
log_dir = "{c}/pods"
version_file = "{c}/run/version"
version_file_persist = ""
clean_shutdown_file = ""
internal_wipe = true
[crio.api]
listen = "{d}/cri.sock"
stream_address = "127.0.0.1"
stream_port = "0"
[crio.runtime]
default_runtime = "runc"
conmon_cgroup = "pod"
cgroup_manager = "cgroupfs"
selinux = false
apparmor_profile = ""
hooks_dir = ["{c}/hooks.d"]
container_exits_dir = "{c}/run/exits"
container_attach_socket_dir = "/run/crio-attach"
namespaces_dir = "{c}/run/ns"
pinns_path = "{d}/bin/pinns"
irqbalance_config_file = "{c}/irqbalance"
irqbalance_config_restore_file = "{c}/orig_irq_banned_cpus"
enable_criu_support = false
drop_infra_ctr = true
{runtimes}
[crio.runtime.runtimes.crun]
runtime_path = "/nonexistent/crun-disabled-by-critest-env"
[crio.image]
pause_image = "registry.k8s.io/pause:3.9"
signature_policy = "{c}/policy.json"
short_name_mode = "disabled"
big_files_temporary_dir = "{d}/tmp"
[crio.network]
network_dir = "{d}/cni/net.d"
plugin_dirs = ["/usr/lib/cni"]
[crio.stats]
included_pod_metrics = ["all"]
[crio.metrics]
enable_metrics = false
[crio.nri]
enable_nri = false
""")
    return ["--config", str(c / "crio.conf"), "--config-dir", str(c / "conf.d"),
            "--registries-conf", str(c / "registries.conf")]


# ---------------------------------------------------------------- inside the private namespaces

def _daemon(cmd: list[str], logf: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    with open(logf, "ab") as out:
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env,
                                start_new_session=True)


def _wait_socket(sock: Path, proc: subprocess.Popen[bytes], what: str, logf: Path, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if sock.exists():
            return
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not come up: {logf.read_text(errors='replace')[-3000:]}")


def inside(cri: str, d: Path, focus: str | None) -> int:
    """Runs as root of the private namespaces: set them up, start registry and CRI, run critest twice."""
    shared = shared_dir()
    assert shared is not None
    sh = ["sh", "-ec", """
        mount --make-rshared /
        mount -t tmpfs -o mode=755,size=256m lxcri-critest-run /run
        mkdir -p /run/lock /run/netns
        mkdir -p /var/lib/cni
        mount --bind "$1/cni/cache" /var/lib/cni
        ip link set lo up
        sysctl -qw net.ipv4.conf.all.route_localnet=1
        iptables -w -t nat -I POSTROUTING -s 127.0.0.0/8 ! -d 127.0.0.0/8 -j MASQUERADE
    """, "setup", str(d)]
    (d / "cni" / "cache").mkdir(parents=True, exist_ok=True)
    subprocess.run(sh, check=True)
    logs = d / "logs"
    logs.mkdir(exist_ok=True)
    reg = _daemon([sys.executable, str(shared / "critest" / "registry.py"), str(PORT), str(image_data(shared)),
                   "--host", "127.0.0.1"], logs / "registry.log")
    path_env = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    sock = d / "cri.sock"
    if cri == "containerd":
        daemon = _daemon(["containerd", "--config", str(d / "containerd.toml")], logs / "containerd.log",
                         env={"PATH": path_env, "TMPDIR": str(d / "tmp")})
    else:
        c = d / "crio"
        env = {"PATH": path_env, "CRIO_CLAMP_FOR_VM": clamp_for_vm(), "TMPDIR": str(d / "tmp"),
               "CONTAINERS_STORAGE_CONF": str(c / "storage.conf"),
               "CONTAINERS_REGISTRIES_CONF": str(c / "registries.conf")}
        daemon = _daemon([str(d / "bin" / "crio"), *json.loads((d / "crio-args.json").read_text())],
                         logs / "crio.log", env=env)
    _wait_socket(sock, daemon, cri, logs / f"{cri}.log")
    crictl = [str(d / "bin" / "crictl"), "--runtime-endpoint", f"unix://{sock}", "--image-endpoint",
              f"unix://{sock}", "--timeout", "60s"]
    env = dict(os.environ, TMPDIR=str(d / "tmp"))
    for ref in PREPULL:
        r = subprocess.run([*crictl, "pull", ref], capture_output=True, text=True, env=env, check=False)
        if r.returncode:
            raise RuntimeError(f"pulling {ref} from the local registry failed: {r.stderr.strip()}")
    times: dict[str, float] = {}
    for handler in HANDLERS:
        out = d / handler
        out.mkdir(exist_ok=True)
        cmd = [str(d / "bin" / "critest"), "--runtime-endpoint", f"unix://{sock}", "--image-endpoint",
               f"unix://{sock}", "--runtime-handler", handler, "--runtime-service-timeout=90s",
               "--image-service-timeout=90s", "--ginkgo.timeout=20m", "--ginkgo.no-color",
               f"--ginkgo.json-report={out}/report.json", f"--ginkgo.junit-report={out}/junit.xml"]
        if focus:
            cmd.append(f"--ginkgo.focus={focus}")
        log(f"critest --runtime-handler {handler} through {cri}")
        t0 = time.monotonic()
        with open(out / "critest.log", "wb") as f:
            rc = subprocess.run(cmd, cwd=out, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                                env=env, check=False).returncode
        times[handler] = time.monotonic() - t0
        log(f"critest --runtime-handler {handler}: exit {rc}, {times[handler]:.0f} s")
        # pods a failed spec left behind must not count against the next handler
        subprocess.run([*crictl, "rmp", "--all", "--force"], capture_output=True, env=env, check=False)
    (d / "times.json").write_text(json.dumps(times))
    for p in (daemon, reg):
        p.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(timeout=20)
    return 0


def clamp_for_vm() -> str:
    """CRIO_CLAMP_FOR_VM=1 where the bounding set lacks CAP_SYS_RESOURCE (see ../shared/kube/README.md)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapBnd:"):
            return "0" if int(line.split()[1], 16) >> 24 & 1 else "1"
    return "1"


# ---------------------------------------------------------------- cleanup (host side)

def _procs() -> dict[int, int]:
    """{pid: ppid} of every process."""
    out: dict[int, int] = {}
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                out[int(p.name)] = int((p / "stat").read_text().rsplit(")", 1)[1].split()[1])
    return out


def _ns(pid: int, kind: str) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/{kind}")
    except OSError:
        return None


def _in_test_cgroup(pid: int) -> bool:
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return False
    return any(ln.split(":", 2)[2].startswith(f"/{CGROUP_PARENT}") for ln in lines if ln.count(":") >= 2)


def _leftovers(namespaces: set[str]) -> list[int]:
    """Our descendants (we are their subreaper), anything in the private namespaces, anything in
    the pods' cgroups."""
    me = os.getpid()
    procs = _procs()
    found = []
    for pid in procs:
        if pid == me:
            continue
        q, hops = pid, 0
        while q > 1 and q != me and hops < 64:
            q, hops = procs.get(q, 0), hops + 1
        if q == me or any(_ns(pid, k) in namespaces for k in ("net", "mnt", "ipc")) or _in_test_cgroup(pid):
            found.append(pid)
    return found


def run_ids(d: Path) -> set[str]:
    """Ids of the pods and containers this run's CRI still knows (a killed run leaves some)."""
    places = [d / "crio" / "storage" / "overlay-containers", *(d / "crio" / "run").glob("*"),
              d / "containerd" / "root" / "io.containerd.grpc.v1.cri" / "containers",
              d / "containerd" / "root" / "io.containerd.grpc.v1.cri" / "sandboxes",
              d / "containerd" / "state" / "io.containerd.runtime.v2.task" / "k8s.io"]
    ids = set()
    for place in places:
        if place.is_dir():
            ids |= {p.name for p in place.iterdir() if len(p.name) == 64 and all(c in HEX for c in p.name)}
    return ids


HEX = frozenset("0123456789abcdef")


def _cgroups_of(ids: set[str]) -> list[Path]:
    """Cgroup dirs (three levels deep at most) named after one of ids: what the runtimes made for
    containers that a killed run could not delete."""
    found = []
    for top in CGROOT.iterdir():
        level = [top]
        for _ in range(3):
            nxt = []
            for p in level:
                with contextlib.suppress(OSError):
                    nxt += [q for q in p.iterdir() if q.is_dir()]
            found += [q for q in nxt if any(i in q.name for i in ids)]
            level = [q for q in nxt if not any(i in q.name for i in ids)]
    return found


def sweep(namespaces: set[str], ids: set[str] | None = None, parents: set[Path] | None = None) -> list[str]:
    """Kill every leftover process, reap what we inherited, remove the pods' cgroups, those named
    after the run's containers and the given parents (CRI-O's /crio when the run made it).
    Returns what could not be removed (empty when all is gone)."""
    # done when nothing is left for half a second in a row: a container that ends as the CRI
    # stops has its conmon start CRI-O's exit command a moment later, which is killed as well
    end = time.monotonic() + 60
    quiet = 0
    while True:
        left = _leftovers(namespaces)
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        quiet = 0 if left else quiet + 1
        if quiet >= 5 or time.monotonic() > end:
            break
        time.sleep(0.1)
    problems = [f"process {p} still alive ({_describe(p)})" for p in _leftovers(namespaces)]
    bases = [b for b in (top / CGROUP_PARENT for top in CGROOT.iterdir()) if b.is_dir()]
    for base in [*bases, *(_cgroups_of(ids) if ids else []), *(parents or ())]:
        if not base.is_dir():
            continue
        for sub in sorted((p for p in base.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            _rmdir(sub, problems)
        _rmdir(base, problems)
    return problems


def _describe(pid: int) -> str:
    """What a leftover process is: its state, parent and command line (for the log)."""
    try:
        status = dict(ln.split(":\t", 1) for ln in Path(f"/proc/{pid}/status").read_text().splitlines() if ":\t" in ln)
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        cg = Path(f"/proc/{pid}/cgroup").read_text().splitlines()[0]
    except OSError:
        return "gone"
    return f"state {status.get('State', '?').strip()}, ppid {status.get('PPid', '?').strip()}, {cmd[:200]!r}, {cg}"


def _rmdir(p: Path, problems: list[str]) -> None:
    for _ in range(50):
        try:
            p.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.1)
    problems.append(f"cgroup {p} not removable")


# ---------------------------------------------------------------- the run

class Interrupted(Exception):
    pass


def _interrupt(signum: int, _frame: object) -> None:
    raise Interrupted(f"signal {signum}")


def run(cri: str, d: Path, focus: str | None = None, timeout: float = 1800) -> int:
    """Prepare DIR, run both handlers in private namespaces, clean up whatever happens, report."""
    shared = shared_dir()
    if shared is None:
        raise SystemExit("critest_env: ../shared (critest, CRI-O) is not beside the repository; set LXCRI_SHARED")
    if os.geteuid() != 0:
        raise SystemExit("critest_env: needs root (it runs a CRI and containers)")
    for tool in ("unshare", "ip", "iptables", "xz", *(("containerd",) if cri == "containerd" else ())):
        if not shutil.which(tool):
            raise SystemExit(f"critest_env: {tool} is not installed (bash scripts/setup.sh)")
    for binary in (RUNC, LXCRI, *((CONMON,) if cri == "crio" else ())):
        if not binary.exists():
            raise SystemExit(f"critest_env: {binary} missing (bash scripts/setup.sh)")
    busy = [str(p) for p in CGROOT.glob(f"*/{CGROUP_PARENT}") if (p / "cgroup.procs").exists()
            and any((q / "cgroup.procs").read_text().strip() for q in [p, *p.rglob("*")] if q.is_dir())]
    if busy:
        raise SystemExit(f"critest_env: processes already in {busy}: is another critest running?")
    d = d.resolve()
    if d.exists():
        for sub in (*HANDLERS, "logs", "times.json"):
            with contextlib.suppress(FileNotFoundError):
                shutil.rmtree(d / sub) if (d / sub).is_dir() else (d / sub).unlink()
    (d / "tmp").mkdir(parents=True, exist_ok=True)
    image_data(shared)
    unpack(shared, d / "bin", cri)
    cni_conf(d)
    if cri == "containerd":
        containerd_conf(d)
    else:
        (d / "crio-args.json").write_text(json.dumps(crio_conf(d)))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: every orphan of the run stays ours
    old = {s: signal.signal(s, _interrupt) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    namespaces: set[str] = set()
    ours = {n for k in ("net", "mnt", "ipc") if (n := _ns(os.getpid(), k))}
    crio_parents = {p for p in (top / "crio" for top in CGROOT.iterdir()) if p.is_dir()}
    rc = 1
    try:
        cmd = ["unshare", "--net", "--ipc", "--mount", "--fork", "--", sys.executable, str(Path(__file__).resolve()),
               "_inside", "--cri", cri, str(d)]
        if focus:
            cmd += ["--focus", focus]
        with open(d / "logs.txt", "wb") as out:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True)
        end = time.monotonic() + timeout
        status = None
        # reap every orphan we inherit the moment it exits, as init or a CRI that is a subreaper
        # would: a zombie conmon or shim looks alive to its CRI, a zombie command to critest's pgrep
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda _s, _f: None)
        while status is None:
            with contextlib.suppress(ChildProcessError):
                while (w := os.waitpid(-1, os.WNOHANG))[0] > 0:
                    if w[0] == proc.pid:
                        status = os.waitstatus_to_exitcode(w[1])
            if len(namespaces) < 3:  # the private ones, once unshare's child has them
                for pid, ppid in _procs().items():
                    if ppid == proc.pid:
                        namespaces |= {n for k in ("net", "mnt", "ipc") if (n := _ns(pid, k)) and n not in ours}
            if status is None and time.monotonic() > end:
                log(f"timeout after {timeout:.0f} s")
                status = 124
            with contextlib.suppress(InterruptedError):
                select.select([wake_r], [], [], 1.0)
            with contextlib.suppress(BlockingIOError):
                os.read(wake_r, 4096)
        rc = status
    except Interrupted as e:
        log(f"interrupted ({e}), cleaning up")
        rc = 130
    finally:
        made = {p for p in (top / "crio" for top in CGROOT.iterdir()) if p.is_dir()} - crio_parents
        problems = sweep(namespaces - ours, run_ids(d), made)
        for s, h in old.items():
            signal.signal(s, h)
        if problems:
            log("left behind: " + "; ".join(problems))
            rc = rc or 1
    print((d / "logs.txt").read_text(errors="replace")[-4000:], file=sys.stderr)
    if rc == 0:
        print(format_report(load(d)))
    return rc


# ---------------------------------------------------------------- reports

@dataclass
class Result:
    """One handler's run: spec name -> state ("passed", "failed", "skipped", ...), wall time."""

    handler: str
    states: dict[str, str] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    runtimes: dict[str, float] = field(default_factory=dict)
    wall: float = 0.0

    def count(self, state: str) -> int:
        return sum(1 for s in self.states.values() if s == state)

    def counts(self) -> str:
        return f"{self.count('passed')} passed, {self.count('failed')} failed, {self.count('skipped')} skipped"


def parse(report: Path, handler: str, wall: float) -> Result:
    """ginkgo's JSON report: the It specs (suite set-up nodes are not specs)."""
    res = Result(handler, wall=wall)
    for suite in json.loads(report.read_text()):
        for spec in suite.get("SpecReports") or []:
            if spec.get("LeafNodeType") != "It":
                continue
            name = " ".join([*(spec.get("ContainerHierarchyTexts") or []), spec.get("LeafNodeText", "")])
            state = spec.get("State", "")
            state = "failed" if state in ("panicked", "timedout", "interrupted", "aborted") else state
            res.states[name] = state
            res.runtimes[name] = spec.get("RunTime", 0) / 1e9
            if state == "failed":
                res.failures[name] = ((spec.get("Failure") or {}).get("Message") or "").strip()
    return res


def load(d: Path) -> dict[str, Result]:
    times = json.loads((d / "times.json").read_text())
    out = {}
    for h in HANDLERS:
        report = d / h / "report.json"
        if not report.exists():
            raise RuntimeError(f"no report from critest --runtime-handler {h}: see {d / h / 'critest.log'}")
        out[h] = parse(report, h, float(times[h]))
    return out


def regressions(results: dict[str, Result]) -> dict[str, str]:
    """Specs runc passes and lxcri does not (absent counts as not passed), with lxcri's failure."""
    runc, lxcri = results["runc"], results["lxcri"]
    return {name: lxcri.failures.get(name, lxcri.states.get(name, "absent"))
            for name, st in sorted(runc.states.items()) if st == "passed" and lxcri.states.get(name) != "passed"}


def format_report(results: dict[str, Result]) -> str:
    lines = [f"{h:6} {r.counts()}, {r.wall:.0f} s" for h, r in results.items()]
    bad = regressions(results)
    runc, lxcri = results["runc"], results["lxcri"]
    both = sorted(n for n, st in runc.states.items() if st == "failed" and lxcri.states.get(n) == "failed")
    lines.append(f"specs both fail: {len(both)}")
    lines += [f"  - {name}" for name in both]
    lines.append(f"specs lxcri fails that runc passes: {len(bad)}")
    for name, why in bad.items():
        lines.append(f"  - {name}\n      {' '.join(why.split())[:300]}")
    slower = sorted(((lxcri.runtimes[n] - t, n) for n, t in runc.runtimes.items() if n in lxcri.runtimes),
                    reverse=True)[:5]
    lines.append("specs where lxcri took longest beyond runc:")
    lines += [f"  {dt:+7.1f} s  {n}" for dt, n in slower]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run critest with both handlers through one CRI, then report")
    r.add_argument("--cri", choices=CRIS, required=True)
    r.add_argument("--focus", help="ginkgo focus regexp (both handlers)")
    r.add_argument("--timeout", type=float, default=1800, help="seconds for the whole run (default 1800)")
    r.add_argument("dir", type=Path)
    p = sub.add_parser("report", help="print the comparison of a finished run")
    p.add_argument("dir", type=Path)
    i = sub.add_parser("_inside")  # internal: the part in the private namespaces
    i.add_argument("--cri", choices=CRIS, required=True)
    i.add_argument("--focus")
    i.add_argument("dir", type=Path)
    a = ap.parse_args(argv)
    if a.cmd == "run":
        return run(a.cri, a.dir, a.focus, a.timeout)
    if a.cmd == "_inside":
        return inside(a.cri, a.dir, a.focus)
    print(format_report(load(a.dir)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
