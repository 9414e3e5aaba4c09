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

This module is the transaction (Creation: each step recorded, so that abort() undoes
all of it); what the container is made of is translate.py's, the talking to helpers
helper.py's.
"""

from __future__ import annotations

import os
import time

from lxcri import jsonlite, lxcconf, proc
from lxcri.cgroups import Cgroup, host_version, levels
from lxcri.cgroups import fs as cgroup_fs
from lxcri.cgroups.fs import controllers as cgroup_controllers
from lxcri.cgroups.fs import hierarchies
from lxcri.container import helper, mountclone, nspaths, teardown
from lxcri.container import hooks as oci_hooks
from lxcri.container.rundir import Record, RunDir
from lxcri.container.status import CREATED, CREATING, oci_state
from lxcri.container.translate import hook_command, init_spec, translate
from lxcri.errors import LxcriError, NotFoundError, SpecError, StateError, TranslateError
from lxcri.ids import check_id
from lxcri.libexec import protocol
from lxcri.lxcconf import cgroups, mounts, namespaces
from lxcri.oci import seccomp
from lxcri.oci import spec as oci_spec
from lxcri.oci.devices import check_devices
from lxcri.oci.spec import check_lsm, load_bundle
from lxcri.settings import Settings


class CreateOptions:
    """create's own flags (run's too), typed: what the CLI parsed, in the runtime's terms."""

    __slots__ = ("bundle", "console_socket", "no_new_keyring", "no_pivot", "pid_file", "preserve_fds")

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


class Creation:
    """One create, with everything it made, so a failure can undo all of it."""

    def __init__(self, settings: Settings, cid: str, opts: CreateOptions,
                 spawner: helper.Spawner = helper.DIRECT) -> None:
        self.settings = settings
        self.spawner = spawner  # how the monitor is started, and the host's hooks are run
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
        validated = jsonlite.dumps(cfg)  # kept for later commands (exec), before lxcri completes it below
        from lxcri.container.rootpath import resolve_mounts
        from lxcri.lxcconf import system

        # destinations through the image's symlinks (/var/run -> /run), before anything reads them
        resolve_mounts(cfg, bundle.rootfs)
        if system.wanted(cfg.get("annotations")):
            system.apply(cfg)  # systemd as PID 1: cgroup namespace, writable cgroups, /run tmpfs
        if nspaths.sysfs_needs_host_view(cfg):
            mounts.sysfs_as_bind(cfg)  # a hostUsers: false pod in a netns its user ns does not own
        no_process = "process" not in cfg
        if no_process:
            cfg["process"] = {"args": [], "cwd": "/", "user": {"uid": 0, "gid": 0}}
        hook_spec = oci_hooks.check(oci_spec.hooks(cfg))
        # built (and so validated: user, caps, seccomp) before any work; the state comes later
        spec = init_spec(cfg, opts.preserve_fds)
        spec.new_pty = bool(opts.console_socket and spec.terminal)
        spec.console_size = helper.console_size(cfg["process"].get("consoleSize"))
        spec.no_process = no_process
        spec.apparmor, spec.selinux = check_lsm(cfg)
        if oci_spec.linux(cfg).get("intelRdt"):
            # as runc on such a host: resource control asked for and not available is an error
            if not os.path.isdir("/sys/fs/resctrl/info"):
                raise SpecError("config.json: linux.intelRdt: this host has no resctrl filesystem mounted",
                                field="linux.intelRdt")
            raise SpecError("config.json: linux.intelRdt: Intel RDT is not applied by this lxcri version",
                            field="linux.intelRdt")
        if opts.preserve_fds < 0:
            raise SpecError("--preserve-fds must not be negative", field="--preserve-fds")
        for fd in range(3, 3 + opts.preserve_fds):
            try:
                os.fstat(fd)
            except OSError as e:
                raise SpecError(f"--preserve-fds {opts.preserve_fds}: fd {fd} is not open",
                                field="--preserve-fds") from e
        helper.check_outputs(opts.pid_file, opts.console_socket)
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
        rd.save_spec(validated)
        # (after the claims are saved: what this makes is among them)
        cpuset = levels.prepare_cpuset(cgroup_path)
        self.first_level = levels.snapshot_first_level(cgroup_path)

        lowest = 3 + opts.preserve_fds
        clones: list[int] = []
        cloned: dict[int, bool] = {}
        if "user" not in namespaces.created_namespaces(cfg):
            # (a new user namespace is made by liblxc, after these: its binds stay liblxc's)
            spec.shared_binds, clones, cloned = mountclone.clone(cfg, every=nspaths.joins_user_namespace(cfg))
            self.fds += clones
        parent, child_fd = helper.sync_socket(lowest)
        self.fds.append(child_fd)
        os.mkfifo(rd.file("exec.fifo"), 0o600)
        # read-write: the helper's read blocks until start writes, even with no writer open
        fifo_fd = helper.high_fd(os.open(rd.file("exec.fifo"), os.O_RDWR | os.O_CLOEXEC), lowest)
        self.fds.append(fifo_fd)

        ctx = lxcconf.Context(
            container_id=self.cid, runtime_dir=rd.path, rootfs=bundle.rootfs,
            init_path=s.helper("lxcri-init"),
            hook_cmd=hook_command(s.root),
            sync_fd=child_fd, fifo_fd=fifo_fd, cgroup_path=self.cgroup_path, cgroup_version=version,
            debug=s.debug, controllers=cgroup_controllers(),
            hierarchies=[(os.path.basename(h.mountpoint), h.mountpoint) for h in hierarchies()],
            cpuset=cpuset,
        )
        if cloned:
            ctx.cloned = cloned
            os.mkdir(ctx.placeholder_dir, 0o555)
            os.close(os.open(ctx.placeholder_file, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o444))
        items = translate(bundle, ctx, s.systemd_cgroup, s.lxcfs, s.lxcfs_path)
        # runc's --no-new-keyring: keep the caller's session keyring instead of a fresh one
        items.append(("lxc.keyring.session", "0" if opts.no_new_keyring else "1"))
        os.mkdir(ctx.rootfs_mount, 0o711)
        self._write_lxc_config(items)

        terminal = bool(bundle.process.get("terminal"))
        if terminal and not opts.console_socket:
            raise SpecError("process.terminal is true but no --console-socket was given", field="process.terminal")

        pid = helper.spawn(self.spawner, s.helper("lxcri-monitor"), [s.root, self.cid],
                           keep=(*range(3, lowest), child_fd, fifo_fd))
        self.monitor_pid = pid
        # recorded at once: if create dies from here on, delete --force can still stop the monitor
        rec.monitor_pid, rec.monitor_start = pid, proc.start_time(pid)
        rd.save(rec)
        os.close(child_fd)
        self.fds.remove(child_fd)

        parent.settimeout(s.create_timeout)
        try:
            while True:
                msg, sender = protocol.read_frame(parent)
                if msg == protocol.HOST_HOOKS:  # the mount hook asks for prestart/createRuntime
                    parent.sendall(self._host_hooks(rec, hook_spec, sender))
                    continue
                break
            init_pid = sender
            if msg != protocol.HELLO or init_pid <= 0:
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
            spec.state = jsonlite.dumps(oci_state(rec, CREATED))
            parent.sendall(protocol.encode(spec))
            if clones:
                protocol.send_clones(parent, clones)
                for fd in clones:
                    os.close(fd)
                    self.fds.remove(fd)
            reply, _ = helper.await_reply(
                parent, opts.console_socket, bundle.process.get("consoleSize"),
                lambda fd, pid: seccomp.send_to_listener(cfg, fd, pid, oci_state(rec, CREATING)))
        except EOFError as e:
            raise LxcriError(self._start_failure()) from e
        except TimeoutError as e:
            raise LxcriError(f"container did not start within {s.create_timeout:.0f}s") from e
        finally:
            parent.close()
        if reply[:1] == protocol.ERROR:
            raise LxcriError(reply[1:].decode(errors="replace"))
        if reply != protocol.READY:
            raise LxcriError(f"unexpected answer from the container init: {reply[:40]!r}")

        # The monitor steps aside: the init has cleared liblxc's parent-death signal, so it
        # outlives the monitor and is re-parented to the caller's subreaper, which reaps it.
        proc.kill(self.monitor_pid, proc.SIGKILL)
        helper.reap_helper(self.monitor_pid, s.kill_timeout)
        self.monitor_pid = rec.monitor_pid = rec.monitor_start = 0
        self._remove_monitor_cgroup(rec)
        rd.save(rec)
        if opts.pid_file:
            try:
                helper.write_pid_file(opts.pid_file, init_pid)
            except OSError as e:
                raise LxcriError(f"--pid-file {opts.pid_file}: {e.strerror}", field="--pid-file") from e
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

    def _host_hooks(self, rec: Record, hook_spec: dict[str, list[dict[str, object]]], runner: int) -> bytes:
        """Run prestart and createRuntime on the host; the answer frame for the mount hook."""
        state = oci_state(rec, CREATED)  # as crun, and as the runtime-tools suite expects
        state["pid"] = proc.parent_pid(runner)  # the runner is the container init's child
        try:
            for point in ("prestart", "createRuntime"):
                oci_hooks.run(point, hook_spec.get(point, []), state, self.spawner)
        except LxcriError as e:
            self.hook_error = str(e)
            return protocol.frame(protocol.ERROR + str(e).encode())
        return protocol.frame(protocol.HOOKS_DONE)

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
            helper.reap_helper(self.monitor_pid, 5.0)
        if self.hook_error:
            return self.hook_error
        for name in ("hook-error", "monitor-error"):  # an OCI hook's, or the monitor's before liblxc ran
            try:
                with open(self.rd.file(name)) as f:
                    return f.read().strip()
            except OSError:
                pass
        why = helper.liblxc_error(self.rd)
        return f"container failed to start: {why}" if why else "container failed to start (liblxc gave no reason)"

    def abort(self) -> None:
        """Undo a failed create: no process, cgroup, mount or runtime dir may stay."""
        if self.monitor_pid:
            proc.kill(self.monitor_pid, proc.SIGKILL)
            helper.reap_helper(self.monitor_pid, self.settings.kill_timeout)
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
                raise StateError(f"container {cid} already exists", cid=cid)
            teardown.destroy(rd, rec, settings.kill_timeout)
        rd.remove()
    return RunDir.make(settings.root, cid)


def create(settings: Settings, cid: str, opts: CreateOptions, spawner: helper.Spawner = helper.DIRECT) -> Record:
    c = Creation(settings, cid, opts, spawner)
    rec = c.run()
    if c.rd is not None:
        c.rd.close()
    return rec
