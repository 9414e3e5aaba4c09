"""create: translate the bundle, start the container with liblxc, return once its init waits.

The processes while create runs:

  caller (conmon / containerd-shim: a subreaper)
    `- lxcri create            exits when the init is ready
         `- lxcri-monitor      runs liblxc's start in the foreground
              `- container init: lxcri-init, then the user's process

Callers need one pid that is everything at once: the process they reap to learn
the container's exit status (conmon and the shim are subreapers and can only
reap their re-parented descendants), the container's process as the host sees it
(`nsenter -t PID`; containerd's CRI joins a pod's containers to the sandbox's
namespaces through /proc/PID/ns/*; podman's `--pid container:`), and the process
whose /proc/PID/cgroup names the container's cgroup (the shim's metrics and OOM
events). That is the container's init, as with runc.

So once the init has reported ready, the monitor steps aside: the init helper has
cleared the parent-death signal liblxc gave it, create kills the monitor, and the
kernel re-parents the init to the nearest subreaper above it, the caller (an orphan
is re-parented by its father's pid-namespace level, so a level-0 subreaper gets
the container's pid 1). --pid-file and state.pid both name the init; the caller
reaps it with its real status. No lxcri process stays per container. What the
monitor would have done afterwards is lxcri's: signals go straight to the init,
delete removes the cgroups, the mounts die with the container's mount namespace.
"""

from __future__ import annotations

import _socket as socket
import fcntl
import os
import struct
import sys
import time

from lxcri import jsonlite, lxcconf, proc
from lxcri.cgroups import Cgroup, host_version, levels
from lxcri.cgroups import fs as cgroup_fs
from lxcri.cgroups.fs import controllers as cgroup_controllers
from lxcri.cgroups.fs import hierarchies
from lxcri.container import hooks as oci_hooks
from lxcri.container import mountclone, nspaths, teardown
from lxcri.container.rundir import Record, RunDir, check_id
from lxcri.container.status import oci_state
from lxcri.errors import LxcriError, NotFoundError, SpecError, StateError, TranslateError
from lxcri.libexec.protocol import Hook, InitSpec, encode
from lxcri.lxcconf import base, cgroups, mounts, namespaces
from lxcri.lxcconf import process as lxcprocess
from lxcri.oci import capabilities, seccomp
from lxcri.oci.devices import check_devices
from lxcri.oci.spec import Bundle, check_lsm, check_text, load_bundle, personality
from lxcri.settings import Settings

TYPE_CHECKING = False

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


class CreateOptions:
    def __init__(self, bundle: str, pid_file: str = "", console_socket: str = "", preserve_fds: int = 0,
                 no_pivot: bool = False, no_new_keyring: bool = False) -> None:
        self.bundle = bundle
        self.pid_file = pid_file
        self.console_socket = console_socket
        self.preserve_fds = preserve_fds
        self.no_pivot = no_pivot  # liblxc always pivots; accepted for runc compatibility
        self.no_new_keyring = no_new_keyring


def _now_rfc3339() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"


def _kind_of_host(path: str) -> str | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    import stat

    return "dir" if stat.S_ISDIR(st.st_mode) else "file"


def _kind_in_container(rootfs: str) -> mounts.KindOf:
    """What a container path is, for masks: /proc and /sys are the kernel's, the rest the rootfs's."""

    def kind(path: str) -> str | None:
        if path == "/proc" or path.startswith(("/proc/", "/sys/")) or path == "/sys":
            return _kind_of_host(path)
        try:
            st = os.lstat(os.path.join(rootfs, path.lstrip("/")))
        except OSError:
            return None
        import stat

        if stat.S_ISLNK(st.st_mode):
            return None  # never follow a rootfs symlink from the host
        if stat.S_ISFIFO(st.st_mode) or stat.S_ISSOCK(st.st_mode):
            return "fifo"  # liblxc would block opening it: the init helper masks these
        return "dir" if stat.S_ISDIR(st.st_mode) else "file"

    return kind


def _lxcfs_mounts(path: str) -> lxcconf.Items:
    """lxcfs's binds, after a look at what is mounted at path and which views it serves."""
    from lxcri.lxcconf import lxcfs

    try:
        with open("/proc/self/mountinfo") as f:
            mountinfo = f.read()
    except OSError:
        mountinfo = ""
    present = {rel for rel in lxcfs.FILES if os.path.isfile(os.path.join(path, rel))}
    return lxcfs.mounts(path, mountinfo, present)


def translate(bundle: Bundle, ctx: lxcconf.Context, systemd: bool, lxcfs_default: bool = False,
              lxcfs_path: str = "/var/lib/lxcfs") -> lxcconf.Items:
    from lxcri.lxcconf import lxcfs

    cfg = bundle.config
    kind_of = _kind_in_container(bundle.rootfs)
    items: lxcconf.Items = []
    items += base.base(cfg, ctx)
    items += namespaces.namespaces(cfg, ctx)
    nspaths.check(cfg)
    items += cgroups.placement(ctx)
    items += cgroups.devices(cfg, ctx)
    items += cgroups.resources(cfg, ctx)
    items += lxcprocess.process(cfg)
    items += mounts.mounts(cfg, ctx, _kind_of_host)
    if lxcfs.wanted(cfg, lxcfs_default):
        items += _lxcfs_mounts(lxcfs_path)  # over the config's /proc and /sys, so after them
    items += mounts.masked_paths(cfg, kind_of)
    items += base.init_mount(ctx)
    items += mounts.devpts_guard(cfg)
    items += base.hooks(cfg, ctx)
    return items


def init_spec(cfg: dict[str, Any], preserve_fds: int) -> InitSpec:
    """What the init helper is told; its `state` (for startContainer hooks) is set once the init is known."""
    p = cfg["process"]
    user = p.get("user") or {}
    hooks = [Hook(path=h["path"], args=h.get("args") or [h["path"]], env=h.get("env") or [],
                  timeout=h.get("timeout") or 0)
             for h in (cfg.get("hooks") or {}).get("startContainer", [])]
    return InitSpec(
        args=p["args"], env=p.get("env") or [], terminal=bool(p.get("terminal")),
        umask=user.get("umask"), preserve_fds=preserve_fds,
        uid=user.get("uid", 0), gid=user.get("gid", 0), gids=list(user.get("additionalGids") or []),
        caps=capabilities.masks(p.get("capabilities")), hooks=hooks,
        no_new_privs=bool(p.get("noNewPrivileges")), cwd=p.get("cwd") or "/",
        seccomp=seccomp.encode((cfg.get("linux") or {}).get("seccomp")),
        domainname=check_text(cfg.get("domainname") or "", "domainname"), personality=personality(p),
        readonly_root=bool((cfg.get("root") or {}).get("readonly")), readonly_paths=mounts.readonly_paths(cfg),
        masked_paths=mounts.masked_path_list(cfg), mount_attrs=mounts.recursive_attrs(cfg),
        propagation=mounts.propagation(cfg), hostname=check_text(cfg.get("hostname") or "", "hostname"),
    )


def _hook_command(root: str) -> str:
    """What liblxc runs at its hook points: this very lxcri, `--root ROOT hook`.

    liblxc appends `ID lxc TYPE` and splits the command on spaces without any
    quoting, so neither path may contain whitespace.
    """
    me = os.path.realpath(sys.argv[0])
    if not os.access(me, os.X_OK):
        raise LxcriError(f"cannot find lxcri's own executable ({sys.argv[0]}) to run OCI hooks")
    for part in (me, root):
        if any(c.isspace() for c in part):
            raise LxcriError(f"{part!r} contains whitespace: liblxc cannot run hooks from there")
    return f"{me} --root {root} hook"


def high_fd(fd: int, lowest: int) -> int:
    """A copy of fd at lowest or above, so it cannot clash with --preserve-fds."""
    new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, lowest)
    os.close(fd)
    return new


def forward_console(path: str, master: int, size: dict[str, Any] | None) -> None:
    """The pty master the helper made in the container, to the caller's console socket."""
    try:
        if size:
            import termios

            fcntl.ioctl(master, termios.TIOCSWINSZ,
                        struct.pack("HHHH", int(size.get("height", 0)), int(size.get("width", 0)), 0, 0))
        send_console(path, master)
    finally:
        os.close(master)


def await_reply(sock: socket.socket, console_socket: str, size: dict[str, Any] | None,
                on_listener_fd: Callable[[int, int], None] | None = None,
                on_master: Callable[[int], None] | None = None) -> tuple[bytes, int]:
    """The helper's answer to the spec ('R' or 'E...'), forwarding on the way a pty master ('T':
    to the console socket, or to `on_master`, which then owns it) and a seccomp listener fd ('N',
    given to `on_listener_fd` with the sender's pid)."""
    while True:
        fds: list[int] = []
        reply, pid = recv_frame(sock, fds)
        if reply not in (b"T", b"N"):
            for fd in fds:
                os.close(fd)
            return reply, pid
        if len(fds) != 1:
            for fd in fds:
                os.close(fd)
            raise LxcriError("the container's init sent a frame without its fd")
        if reply == b"T" and on_master is not None:
            on_master(fds[0])
            continue
        if reply == b"T":
            forward_console(console_socket, fds[0], size)  # closes it
            continue
        try:
            if on_listener_fd is None:
                raise LxcriError("the container's init sent a seccomp listener fd nobody asked for")
            on_listener_fd(fds[0], pid)
        finally:
            os.close(fds[0])


def send_console(path: str, master: int) -> None:
    """Hand the pty master to the caller, as runc does: SCM_RIGHTS over a unix socket."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC, 0)
    s.settimeout(10)
    try:
        s.connect(path)
        s.sendmsg([b"/dev/ptmx"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("i", master))])
    except OSError as e:
        raise LxcriError(f"console socket {path}: {e.strerror or e}") from None
    finally:
        s.close()


def recv_frame(sock: socket.socket, fds: list[int] | None = None) -> tuple[bytes, int]:
    """One length-prefixed message from the helper, with the sender's pid (SO_PASSCRED);
    fds passed with it (SCM_RIGHTS) are appended to `fds`, or closed."""
    pid = 0
    head = b""
    while len(head) < 4:
        data, anc, _flags, _addr = sock.recvmsg(4 - len(head), socket.CMSG_SPACE(12) + socket.CMSG_SPACE(16))
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("iII", payload[:12])[0]
            elif level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                got = list(struct.unpack(f"{len(payload) // 4}i", payload[: len(payload) // 4 * 4]))
                if fds is None:
                    for fd in got:
                        os.close(fd)
                else:
                    fds.extend(got)
        if not data:
            raise EOFError
        head += data
    (n,) = struct.unpack("<I", head)
    body = b""
    while len(body) < n:
        chunk = sock.recv(n - len(body))
        if not chunk:
            raise EOFError
        body += chunk
    return body, pid


def liblxc_error(rd: RunDir) -> str:
    """The first error liblxc logged: usually the cause; the rest is the cascade."""
    try:
        with open(rd.file("lxc.log"), errors="replace") as f:
            lines = [ln.strip() for ln in f if " ERROR " in ln]
    except OSError:
        return ""
    if not lines:
        return ""
    first = lines[0]
    # "lxc ID TIMESTAMP ERROR module - file:func:line - message"
    return first.split(" - ", 2)[-1]


def spawn(path: str, args: list[str], keep: tuple[int, ...]) -> int:
    """posix_spawn a helper in a new session with our stdio and exactly the fds in `keep`.

    Every other fd this process holds is made close-on-exec first, so nothing the
    caller leaked to us reaches the helper, and from there the container.
    """
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in keep:
            try:
                os.set_inheritable(fd, False)
            except OSError:
                pass
    for fd in keep:
        os.set_inheritable(fd, True)
    warm = sys.modules.get("lxcri.zygote")
    if warm is not None and warm.CLIENT is not None:
        # a warm worker: the caller's client starts it, so that it descends from the caller
        pid: int = warm.spawn_in_client(path, args, keep)
        return pid
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
    return os.posix_spawn(path, [path, *args], env, setsid=True)


def reap_helper(pid: int, timeout: float) -> None:
    """Wait for a helper we started to die, at most timeout seconds: reaped if it is our child,
    else (a warm worker's helpers are the client's children, and the client reaps them) until
    it is a zombie, by which time its children have been re-parented."""
    end = time.monotonic() + timeout
    delay = 0.0001  # a SIGKILLed helper is gone within a fraction of a millisecond
    while True:
        try:
            got, _ = os.waitpid(pid, os.WNOHANG)
            if got == pid:
                return
        except ChildProcessError:
            if not proc.alive(pid, 0):
                return
        if time.monotonic() > end:
            return
        time.sleep(delay)
        delay = min(delay * 2, 0.002)


def check_outputs(opts: CreateOptions) -> None:
    """--pid-file and --console-socket, checked before anything is made: a clear error naming
    the flag, not a failure once the container exists."""
    import stat

    if opts.pid_file:
        path = os.path.abspath(opts.pid_file)
        parent = os.path.dirname(path)
        try:
            st = os.stat(parent)
        except OSError as e:
            raise LxcriError(f"--pid-file {opts.pid_file}: directory {parent}: {e.strerror}") from None
        if not stat.S_ISDIR(st.st_mode):
            raise LxcriError(f"--pid-file {opts.pid_file}: {parent} is not a directory")
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            pass
        except OSError as e:
            raise LxcriError(f"--pid-file {opts.pid_file}: {e.strerror}") from None
        else:
            if stat.S_ISDIR(st.st_mode):
                raise LxcriError(f"--pid-file {opts.pid_file}: is a directory")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise LxcriError(f"--pid-file {opts.pid_file}: directory {parent} is not writable")
    if opts.console_socket:
        try:
            st = os.stat(opts.console_socket)
        except OSError as e:
            raise LxcriError(f"--console-socket {opts.console_socket}: {e.strerror}") from None
        if not stat.S_ISSOCK(st.st_mode):
            raise LxcriError(f"--console-socket {opts.console_socket}: not a unix socket")


def write_pid_file(path: str, pid: int) -> None:
    path = os.path.abspath(path)
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
    try:
        os.write(fd, str(pid).encode())
    finally:
        os.close(fd)
    os.rename(tmp, path)


class Creation:
    """One create, with everything it made, so a failure can undo all of it."""

    def __init__(self, settings: Settings, cid: str, opts: CreateOptions) -> None:
        self.settings = settings
        self.cid = cid
        self.opts = opts
        self.rd: RunDir | None = None
        self.monitor_pid = 0
        self.hook_error = ""
        self.cgroup_path = ""
        self.rec: Record | None = None  # once saved: what abort() tears down
        self.pid_file_written = False
        self.fds: list[int] = []
        self.first_level: levels.FirstLevel | None = None

    def run(self) -> Record:
        try:
            return self._run()
        except BaseException:
            self.abort()
            raise
        finally:
            for fd in self.fds:
                try:
                    os.close(fd)
                except OSError:
                    pass

    def _run(self) -> Record:
        s, opts = self.settings, self.opts
        check_id(self.cid)  # before anything is derived from it (paths, cgroups)
        # OCI: process is needed by start, not by create; without it the container only exists
        bundle = load_bundle(opts.bundle, need_process=False)
        cfg = bundle.config
        from lxcri.container.rootpath import resolve_mounts
        from lxcri.lxcconf import system

        # destinations through the image's symlinks (/var/run -> /run), before anything reads them
        resolve_mounts(cfg, bundle.rootfs)
        if system.wanted(cfg.get("annotations")):
            system.apply(cfg)  # systemd as PID 1: cgroup namespace, writable cgroups, /run tmpfs
        no_process = "process" not in cfg
        if no_process:
            cfg["process"] = {"args": [], "cwd": "/", "user": {"uid": 0, "gid": 0}}
        hook_spec = oci_hooks.check(cfg.get("hooks") or {})
        # built (and so validated: user, caps, seccomp) before any work; the state comes later
        spec = init_spec(cfg, opts.preserve_fds)
        spec.new_pty = bool(opts.console_socket and spec.terminal)
        size = cfg["process"].get("consoleSize") or {}
        spec.console_size = (int(size.get("height") or 0), int(size.get("width") or 0))
        spec.no_process = no_process
        spec.apparmor, spec.selinux = check_lsm(cfg)
        if (cfg.get("linux") or {}).get("intelRdt"):
            # as runc on such a host: resource control asked for and not available is an error
            if not os.path.isdir("/sys/fs/resctrl/info"):
                raise SpecError("config.json: linux.intelRdt: this host has no resctrl filesystem mounted")
            raise SpecError("config.json: linux.intelRdt: Intel RDT is not applied by this lxcri version")
        if opts.preserve_fds < 0:
            raise SpecError("--preserve-fds must not be negative")
        for fd in range(3, 3 + opts.preserve_fds):
            try:
                os.fstat(fd)
            except OSError:
                raise SpecError(f"--preserve-fds {opts.preserve_fds}: fd {fd} is not open") from None
        check_outputs(opts)
        version = host_version()
        cgroup_path = cgroups.cgroup_path(cfg, self.cid, s.systemd_cgroup)
        self.rd = rd = make_run_dir(s, self.cid)
        self.cgroup_path = cgroup_path  # from here on, abort() removes it: it is this container's
        leaves, parents = teardown.claims(cgroup_path, self.cid)
        rec = Record(id=self.cid, bundle=bundle.path, rootfs=bundle.rootfs, created=_now_rfc3339(),
                     oci_version=str(cfg.get("ociVersion")), creator_pid=os.getpid(),
                     creator_start=proc.start_time(os.getpid()), cgroup_path=self.cgroup_path,
                     annotations=bundle.annotations, hooks=hook_spec, devices=check_devices(cfg),
                     no_process=no_process, ready=False,
                     cgroup_claims=leaves, cgroup_parents=parents)
        rd.save(rec)
        self.rec = rec
        # (after the claims are saved: what this makes is among them)
        cpuset = levels.prepare_cpuset(cgroup_path)
        self.first_level = levels.snapshot_first_level(cgroup_path)

        lowest = 3 + opts.preserve_fds
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        parent.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        clones: list[int] = []
        if "user" not in namespaces.created_namespaces(cfg):
            # (a user namespace's root cannot take a clone made in the host's: liblxc's bind stays)
            spec.shared_binds, clones = mountclone.clone(cfg)
            self.fds += clones
        child_fd = high_fd(child.detach(), lowest)
        child.close()
        self.fds.append(child_fd)
        os.mkfifo(rd.file("exec.fifo"), 0o600)
        # read-write: the helper's read blocks until start writes, even with no writer open
        fifo_fd = high_fd(os.open(rd.file("exec.fifo"), os.O_RDWR | os.O_CLOEXEC), lowest)
        self.fds.append(fifo_fd)

        ctx = lxcconf.Context(
            container_id=self.cid, runtime_dir=rd.path, rootfs=bundle.rootfs,
            init_path=s.helper("lxcri-init"),
            hook_cmd=_hook_command(s.root),
            sync_fd=child_fd, fifo_fd=fifo_fd, cgroup_path=self.cgroup_path, cgroup_version=version,
            debug=s.debug, controllers=cgroup_controllers(),
            hierarchies=[(os.path.basename(h.mountpoint), h.mountpoint) for h in hierarchies()],
            cpuset=cpuset,
        )
        items = translate(bundle, ctx, s.systemd_cgroup, s.lxcfs, s.lxcfs_path)
        # runc's --no-new-keyring: keep the caller's session keyring instead of a fresh one
        items.append(("lxc.keyring.session", "0" if opts.no_new_keyring else "1"))
        os.mkdir(ctx.rootfs_mount, 0o711)
        self._write_lxc_config(items)

        terminal = bool(bundle.process.get("terminal"))
        if terminal and not opts.console_socket:
            raise SpecError("process.terminal is true but no --console-socket was given")

        pid = spawn(s.helper("lxcri-monitor"), [s.root, self.cid], keep=(*range(3, lowest), child_fd, fifo_fd))
        self.monitor_pid = pid
        # recorded at once: if create dies from here on, delete --force can still stop the monitor
        rec.monitor_pid, rec.monitor_start = pid, proc.start_time(pid)
        rd.save(rec)
        os.close(child_fd)
        self.fds.remove(child_fd)

        parent.settimeout(s.create_timeout)
        try:
            while True:
                msg, sender = recv_frame(parent)
                if msg == b"M":  # the mount hook asks for prestart/createRuntime on the host
                    parent.sendall(self._host_hooks(rec, hook_spec, sender))
                    continue
                break
            init_pid = sender
            if msg != b"H" or init_pid <= 0:
                raise LxcriError("container init did not identify itself")
            rec.init_pid = init_pid
            rec.init_start = proc.start_time(init_pid)
            # recorded at once: the init has cleared liblxc's parent-death signal and outlives
            # the monitor, so if create dies from here on, only these tell delete what to kill
            rec.cgroup_dirs = Cgroup.of_pid(init_pid).dirs
            rec.monitor_cgroup_dirs = Cgroup.of_pid(self.monitor_pid).dirs
            rd.save(rec)
            levels.mark_made(rec.cgroup_parents)
            levels.restore_first_level(self.first_level)  # liblxc is done with the cgroups
            spec.state = jsonlite.dumps(oci_state(rec, "created"))
            parent.sendall(encode(spec))
            if clones:
                rights = struct.pack(f"{len(clones)}i", *clones)
                parent.sendmsg([b"F"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, rights)])
                for fd in clones:
                    os.close(fd)
                    self.fds.remove(fd)
            reply, _ = await_reply(parent, opts.console_socket, bundle.process.get("consoleSize"),
                                   lambda fd, pid: seccomp.send_to_listener(cfg, fd, pid, oci_state(rec, "creating")))
        except EOFError:
            raise LxcriError(self._start_failure()) from None
        except TimeoutError:
            raise LxcriError(f"container did not start within {s.create_timeout:.0f}s") from None
        finally:
            parent.close()
        if reply[:1] == b"E":
            raise LxcriError(reply[1:].decode(errors="replace"))
        if reply != b"R":
            raise LxcriError(f"unexpected answer from the container init: {reply[:40]!r}")

        # The monitor steps aside: the init has cleared liblxc's parent-death signal, so it
        # outlives the monitor and is re-parented to the caller's subreaper, which reaps it.
        proc.kill(self.monitor_pid, proc.SIGKILL)
        reap_helper(self.monitor_pid, s.kill_timeout)
        self.monitor_pid = rec.monitor_pid = rec.monitor_start = 0
        self._remove_monitor_cgroup(rec)
        rd.save(rec)
        if opts.pid_file:
            try:
                write_pid_file(opts.pid_file, init_pid)
            except OSError as e:
                raise LxcriError(f"--pid-file {opts.pid_file}: {e.strerror}") from None
            self.pid_file_written = True
        rec.ready = True
        rd.save(rec)
        return rec

    def _remove_monitor_cgroup(self, rec: Record) -> None:
        """The dead monitor's cgroups go at once, not at delete: nothing runs there any more.
        (One that will not go stays recorded, and delete tries again.)"""
        end = time.monotonic() + self.settings.kill_timeout
        mon = cgroup_fs.monitor_cgroup(self.cid)
        left = {k: d for k, d in rec.monitor_cgroup_dirs.items() if not cgroup_fs.rmdir_while_busy(d, end)}
        gone = set(rec.monitor_cgroup_dirs.values()) - set(left.values())
        rec.monitor_cgroup_dirs = left
        rec.cgroup_claims = [d for d in rec.cgroup_claims
                             if d not in gone and not (teardown.is_cgroup(d, mon) and not os.path.isdir(d))]

    def _host_hooks(self, rec: Record, hook_spec: dict[str, list[dict[str, Any]]], runner: int) -> bytes:
        """Run prestart and createRuntime on the host; the answer frame for the mount hook."""
        from lxcri.libexec.hook import parent_pid

        state = oci_state(rec, "created")  # as crun, and as the runtime-tools suite expects
        state["pid"] = parent_pid(runner)  # the runner is the container init's child
        try:
            for point in ("prestart", "createRuntime"):
                oci_hooks.run(point, hook_spec.get(point, []), state)
        except LxcriError as e:
            self.hook_error = str(e)
            return struct.pack("<I", 1 + len(str(e).encode())) + b"E" + str(e).encode()
        return struct.pack("<I", 1) + b"K"

    def _write_lxc_config(self, items: lxcconf.Items) -> None:
        assert self.rd is not None
        import _lxc

        c = _lxc.Container(self.cid, self.settings.root)
        for key, value in items:
            lxcconf.check_item(key, value)  # no value may carry a line of its own into liblxc's config
            # the raw setter: the high-level one silently keeps the old value on a mismatch
            if not c.set_config_item(key, value):
                raise TranslateError(f"liblxc rejected the config item {key} = {value}")
        if not c.save_config(self.rd.file("config")):
            raise LxcriError(f"cannot write {self.rd.file('config')}")

    def _start_failure(self) -> str:
        assert self.rd is not None
        if self.monitor_pid:
            reap_helper(self.monitor_pid, 5.0)
        if self.hook_error:
            return self.hook_error
        for name in ("hook-error", "monitor-error"):  # an OCI hook's, or the monitor's before liblxc ran
            try:
                with open(self.rd.file(name)) as f:
                    return f.read().strip()
            except OSError:
                pass
        why = liblxc_error(self.rd)
        return f"container failed to start: {why}" if why else "container failed to start (liblxc gave no reason)"

    def abort(self) -> None:
        """Undo a failed create: no process, cgroup, mount or runtime dir may stay."""
        if self.monitor_pid:
            proc.kill(self.monitor_pid, proc.SIGKILL)
            reap_helper(self.monitor_pid, self.settings.kill_timeout)
            self.monitor_pid = 0
        levels.restore_first_level(self.first_level)
        if self.pid_file_written:
            try:
                os.unlink(self.opts.pid_file)  # it names an init that is about to die
            except OSError:
                pass
        if self.rd is None:
            return
        try:
            if self.rec is not None:
                # the init may have outlived the monitor: kill what is in the container's
                # cgroups, remove them; if that fails the record stays for delete --force
                teardown.destroy(self.rd, self.rec, self.settings.kill_timeout)
            self.rd.remove()
        except (OSError, LxcriError) as e:
            from lxcri import log

            log.warning(f"undoing the failed create of {self.cid}: {e}")
        finally:
            self.rd.close()


def make_run_dir(settings: Settings, cid: str) -> RunDir:
    """The container's runtime dir; a dead create's leftovers under the same ID are undone first
    (a create killed mid-way is undone by the next delete --force, or by the next create)."""
    try:
        return RunDir.make(settings.root, cid)
    except StateError:
        pass
    try:
        rd = RunDir.open(settings.root, cid, incomplete=True, wait=False)
    except NotFoundError:
        return RunDir.make(settings.root, cid)  # deleted meanwhile
    with rd:
        if not rd.stateless:
            rec = rd.load()
            if rec.ready or proc.alive(rec.creator_pid, rec.creator_start):
                raise StateError(f"container {cid} already exists")
            teardown.destroy(rd, rec, settings.kill_timeout)
        rd.remove()
    return RunDir.make(settings.root, cid)


def create(settings: Settings, cid: str, opts: CreateOptions) -> Record:
    c = Creation(settings, cid, opts)
    rec = c.run()
    if c.rd is not None:
        c.rd.close()
    return rec
