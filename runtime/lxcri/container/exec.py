"""exec: run another process in a running container, as runc exec does.

The static helper (libexec/src/init.c, exec mode) is spawned, moved into the
container's cgroups, joins the namespaces of the container's init, and forks the
process. The process's pid (as the host sees it) comes back over the sync socket
with the kernel's credentials. With --detach the helper exits at once and the
process is re-parented to the caller's subreaper (conmon, the shim), which reaps
it from --pid-file; without, lxcri waits and exits with the process's status.
A terminal without a console socket (CRI-O's `kubectl exec -t`) is a new pty that
lxcri copies to its own stdio meanwhile (ttyproxy.py says why).
"""

from __future__ import annotations

import _socket as socket
import os

from lxcri import proc
from lxcri.cgroups import Cgroup
from lxcri.container.create import await_reply, high_fd, reap_helper, spawn, write_pid_file
from lxcri.container.rundir import RunDir
from lxcri.container.status import oci_state, status
from lxcri.errors import LxcriError, SpecError, StateError
from lxcri.libexec.protocol import InitSpec, encode
from lxcri.lxcconf.process import RLIMITS, UNLIMITED
from lxcri.oci import capabilities, seccomp
from lxcri.oci.spec import check_lsm, check_process, personality
from lxcri.settings import Settings

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class ExecOptions:
    def __init__(self, process_file: str = "", args: list[str] | None = None, pid_file: str = "",
                 detach: bool = False, tty: bool = False, console_socket: str = "", cwd: str = "",
                 env: list[str] | None = None, user: str = "", caps: list[str] | None = None,
                 additional_gids: list[str] | None = None, preserve_fds: int = 0, no_new_privs: bool = False,
                 apparmor: str = "", process_label: str = "") -> None:
        self.process_file = process_file
        self.args = args or []
        self.pid_file = pid_file
        self.detach = detach
        self.tty = tty
        self.console_socket = console_socket
        self.cwd = cwd
        self.env = env or []
        self.user = user
        self.caps = caps or []
        self.additional_gids = additional_gids or []
        self.preserve_fds = preserve_fds
        self.apparmor = apparmor
        self.process_label = process_label
        self.no_new_privs = no_new_privs


def _container_config(bundle: str) -> dict[str, Any]:
    import json

    try:
        with open(os.path.join(bundle, "config.json")) as f:
            cfg = json.load(f)
    except (OSError, ValueError) as e:
        raise SpecError(f"cannot read the container's config.json: {e}") from None
    return cfg if isinstance(cfg, dict) else {}


def _process(cfg: dict[str, Any], o: ExecOptions) -> dict[str, Any]:
    """The process to run: --process FILE whole, or the container's own process with the flags applied."""
    import json

    if o.process_file:
        try:
            with open(o.process_file) as f:
                p = json.load(f)
        except (OSError, ValueError) as e:
            raise SpecError(f"--process {o.process_file}: {e}") from None
        check_process(p, "process")
        return p  # type: ignore[no-any-return]
    if not o.args:
        raise SpecError("exec: give a command, or --process FILE")
    base = cfg.get("process") or {}
    p = {k: v for k, v in base.items() if k not in ("args", "terminal", "consoleSize")}
    p["args"] = o.args
    p["terminal"] = o.tty
    env = list(p.get("env") or [])
    for item in o.env:
        key = item.split("=", 1)[0]
        env = [x for x in env if x.split("=", 1)[0] != key] + [item]
    p["env"] = env
    if o.cwd:
        p["cwd"] = o.cwd
    if o.user:
        uid, _, gid = o.user.partition(":")
        try:
            p["user"] = {"uid": int(uid), "gid": int(gid or 0)}
        except ValueError:
            raise SpecError(f"--user {o.user!r}: use UID[:GID]") from None
    if o.additional_gids:
        p.setdefault("user", {})["additionalGids"] = [int(g) for g in o.additional_gids]
    if o.caps:
        caps = p.setdefault("capabilities", {})
        for k in capabilities.SETS:
            caps[k] = list(dict.fromkeys([*(caps.get(k) or []), *o.caps]))
    if o.no_new_privs:
        p["noNewPrivileges"] = True
    check_process(p, "process")
    return p


def _labels(p: dict[str, Any], o: ExecOptions) -> tuple[str, str]:
    """--apparmor and --process-label override the process's own; checked against the host as create does."""
    if o.apparmor:
        p["apparmorProfile"] = o.apparmor
    if o.process_label:
        p["selinuxLabel"] = o.process_label
    return check_lsm({"process": p})


def _rlimits(p: dict[str, Any]) -> list[tuple[int, int, int]]:
    import resource

    out = []
    for rl in p.get("rlimits") or []:
        name = rl.get("type")
        if name not in RLIMITS:
            raise SpecError(f"process.rlimits: unknown type {name!r}")
        out.append((getattr(resource, name), int(rl.get("soft", UNLIMITED)), int(rl.get("hard", UNLIMITED))))
    return out


def execute(settings: Settings, cid: str, o: ExecOptions) -> int:
    with RunDir.open(settings.root, cid) as rd:
        rec = rd.load()
        st = status(rd, rec)
        if st == "paused":
            raise StateError(f"cannot exec in container {cid}: it is paused")
        if st not in ("running", "created"):
            raise StateError(f"cannot exec in container {cid}: container not running")
        cfg = _container_config(rec.bundle)
        p = _process(cfg, o)
        spec_state = "{}"
        lowest = 3 + o.preserve_fds
        user = p.get("user") or {}
        spec = InitSpec(
            args=p["args"], env=p.get("env") or [], terminal=bool(p.get("terminal")), umask=user.get("umask"),
            preserve_fds=o.preserve_fds, uid=user.get("uid", 0), gid=user.get("gid", 0),
            gids=list(user.get("additionalGids") or []), caps=capabilities.masks(p.get("capabilities")),
            state=spec_state, target_pid=rec.init_pid, detach=o.detach,
            no_new_privs=bool(p.get("noNewPrivileges")), cwd=p.get("cwd") or "/", rlimits=_rlimits(p),
            seccomp=seccomp.encode((cfg.get("linux") or {}).get("seccomp")),  # the container's own filter
            personality=personality(p),
        )
        spec.apparmor, spec.selinux = _labels(p, o)
        fds: list[int] = []
        masters: list[int] = []  # the pty lxcri copies to its stdio (terminal, no console socket)
        proxied = bool(p.get("terminal") and not o.console_socket and not o.detach and os.isatty(0))
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        parent.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        child_fd = high_fd(child.detach(), lowest)
        child.close()
        fds.append(child_fd)
        helper = 0
        try:
            # with a console socket, the helper opens a pty in the container's devpts (see create.py)
            spec.new_pty = bool(p.get("terminal") and o.console_socket) or proxied
            helper = spawn(settings.helper("lxcri-init"), ["exec", str(child_fd)],
                           keep=(*range(3, lowest), child_fd))
            os.close(child_fd)
            fds.remove(child_fd)
            Cgroup(rec.cgroup_dirs).enter(helper)
            parent.sendall(encode(spec))
            parent.settimeout(settings.create_timeout)
            try:
                reply, pid = await_reply(parent, o.console_socket, p.get("consoleSize"),
                                         lambda fd, pid: seccomp.send_to_listener(cfg, fd, pid, oci_state(rec, st)),
                                         masters if proxied else None)
            except EOFError:
                raise LxcriError(f"exec in container {cid} failed: the helper died") from None
            if reply[:1] == b"E":
                raise LxcriError(reply[1:].decode(errors="replace"))
            if reply != b"R" or pid <= 0:
                raise LxcriError(f"exec in container {cid}: unexpected answer {reply[:20]!r}")
            if proxied and len(masters) != 1:
                raise LxcriError(f"exec in container {cid}: the helper sent no pty")
            if o.pid_file:
                write_pid_file(o.pid_file, pid)
        except BaseException:
            for fd in masters:
                os.close(fd)
            if helper:
                proc.kill(helper, proc.SIGKILL)
                try:
                    os.waitpid(helper, 0)
                except ChildProcessError:
                    pass
            raise
        finally:
            parent.close()
            for fd in fds:
                try:
                    os.close(fd)
                except OSError:
                    pass
    # the lock is released: a long exec must not block state or delete
    if o.detach:
        # the helper exits once its child runs; the child is then the caller's subreaper's
        reap_helper(helper, settings.kill_timeout)
        return 0
    return _wait_forwarding(helper, masters[0] if masters else -1)


def _wait_forwarding(helper: int, master: int = -1) -> int:
    import signal

    def forward(sig: int, _frame: object) -> None:
        proc.kill(helper, sig)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2,
                signal.SIGWINCH):
        signal.signal(sig, forward)
    if master >= 0:
        from lxcri.container import ttyproxy

        code = os.waitstatus_to_exitcode(ttyproxy.proxy(master, helper))
        return code if code >= 0 else 128 - code
    while True:
        try:
            _, status = os.waitpid(helper, 0)
            break
        except InterruptedError:
            continue
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code

