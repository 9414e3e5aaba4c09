"""exec: run another process in a running container, as runc exec does.

The static helper (libexec/src/init_exec.c) is spawned, moved into the
container's cgroups, joins the namespaces of the container's init, and forks the
process. The process's pid (as the host sees it) comes back over the sync socket
with the kernel's credentials. With --detach the helper exits at once and the
process is re-parented to the caller's subreaper (conmon, the shim), which reaps
it from --pid-file; without, lxcri waits and exits with the process's status.
"""

from __future__ import annotations

import os

from lxcri import proc
from lxcri.cgroups import Cgroup
from lxcri.container import helper
from lxcri.container.rundir import RunDir
from lxcri.container.status import PAUSED, oci_state, status
from lxcri.container.translate import process_spec
from lxcri.errors import LxcriError, SpecError, StateError
from lxcri.libexec import protocol
from lxcri.lxcconf.process import RLIMITS, UNLIMITED
from lxcri.oci import capabilities, seccomp
from lxcri.oci import spec as oci_spec
from lxcri.oci.spec import check_lsm, check_process
from lxcri.settings import Settings

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class ExecOptions:
    """exec's flags, typed: what the CLI parsed, in the runtime's terms."""

    __slots__ = ("additional_gids", "apparmor", "args", "caps", "console_socket", "cwd", "detach", "env",
                 "no_new_privs", "pid_file", "preserve_fds", "process_file", "process_label", "tty", "user")

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


def _process(cfg: dict[str, Any], o: ExecOptions) -> dict[str, Any]:
    """The process to run: --process FILE whole, or the container's own process with the flags applied."""
    import json

    if o.process_file:
        try:
            with open(o.process_file) as f:
                p = json.load(f)
        except (OSError, ValueError) as e:
            raise SpecError(f"--process {o.process_file}: {e}", field="--process") from e
        check_process(p, "process")
        return p  # type: ignore[no-any-return]
    if not o.args:
        raise SpecError("exec: give a command, or --process FILE", field="--process")
    base = oci_spec.process(cfg)
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
        except ValueError as e:
            raise SpecError(f"--user {o.user!r}: use UID[:GID]", field="--user") from e
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
            raise SpecError(f"process.rlimits: unknown type {name!r}", field="process.rlimits")
        out.append((getattr(resource, name), int(rl.get("soft", UNLIMITED)), int(rl.get("hard", UNLIMITED))))
    return out


def execute(settings: Settings, cid: str, o: ExecOptions, spawner: helper.Spawner = helper.DIRECT) -> int:
    with RunDir.open(settings.root, cid) as rd:
        rec = rd.load()
        st = status(rd, rec)
        if st is PAUSED:
            raise StateError(f"cannot exec in container {cid}: it is paused", cid=cid)
        if not st.can_exec:
            raise StateError(f"cannot exec in container {cid}: container not running", cid=cid)
        cfg = rd.load_spec(rec)
        p = _process(cfg, o)
        lowest = 3 + o.preserve_fds
        spec = process_spec(p, cfg, o.preserve_fds)  # the container's own seccomp filter included
        spec.target_pid, spec.detach, spec.rlimits = rec.init_pid, o.detach, _rlimits(p)
        spec.apparmor, spec.selinux = _labels(p, o)
        fds: list[int] = []
        parent, child_fd = helper.sync_socket(lowest)
        fds.append(child_fd)
        pid = 0
        try:
            # with a console socket, the helper opens a pty in the container's devpts (see create.py);
            # in the foreground without one, too, and we proxy it to our stdio (ttyproxy.py)
            proxied = bool(p.get("terminal")) and not o.console_socket and not o.detach
            spec.new_pty = bool(p.get("terminal") and o.console_socket) or proxied
            masters: list[int] = []
            spec.console_size = _console_size(p, proxied)
            pid = helper.spawn(spawner, settings.helper("lxcri-init"), ["exec", str(child_fd)],
                               keep=(*range(3, lowest), child_fd))
            os.close(child_fd)
            fds.remove(child_fd)
            Cgroup(rec.cgroup_dirs).enter(pid)
            parent.sendall(protocol.encode(spec))
            parent.settimeout(settings.create_timeout)
            try:
                reply, started = helper.await_reply(
                    parent, o.console_socket, p.get("consoleSize"),
                    lambda fd, sender: seccomp.send_to_listener(cfg, fd, sender, oci_state(rec, st)),
                    on_master=masters.append if proxied else None)
            except EOFError as e:
                raise LxcriError(f"exec in container {cid} failed: the helper died", cid=cid) from e
            if reply[:1] == protocol.ERROR:
                raise LxcriError(reply[1:].decode(errors="replace"), cid=cid)
            if reply != protocol.READY or started <= 0 or len(masters) != int(proxied):
                raise LxcriError(f"exec in container {cid}: unexpected answer {reply[:20]!r}", cid=cid)
            if o.pid_file:
                helper.write_pid_file(o.pid_file, started)
        except BaseException:
            for fd in masters:
                os.close(fd)
            if pid:
                proc.kill(pid, proc.SIGKILL)
                try:
                    os.waitpid(pid, 0)
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
        helper.reap_helper(pid, settings.kill_timeout)
        return 0
    if proxied:
        from lxcri.container.ttyproxy import proxy

        return helper.exit_code(proxy(masters[0], pid))
    # the helper is our child: what the caller is sent goes on to the process
    return helper.exit_code(helper.wait_forwarding(pid, lambda sig: proc.kill(pid, sig),
                                                   (*helper.FORWARDED, "SIGWINCH")))


def _console_size(p: dict[str, Any], proxied: bool) -> tuple[int, int]:
    """The new pty's (rows, columns): our terminal's when we proxy one, else process.consoleSize."""
    if proxied and os.isatty(0):
        import fcntl
        import struct
        import termios

        try:
            rows, cols = struct.unpack("HHHH", fcntl.ioctl(0, termios.TIOCGWINSZ, b"\0" * 8))[:2]
            if rows or cols:
                return rows, cols
        except OSError:
            pass
    return helper.console_size(p.get("consoleSize"))
