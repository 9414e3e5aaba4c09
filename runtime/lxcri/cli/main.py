"""`lxcri [global options] COMMAND [options] ARGS`, with runc's flags and exit codes.

Only argparse and the command's own modules are imported: every call is a new
process (CRI-O calls `state` constantly), so start-up time is product latency.
"""

from __future__ import annotations

import os
import sys
import time

from lxcri import __version__, log
from lxcri import jsonlite as json
from lxcri.cli.args import Command, Flag, Parsed, command_usage, parse, usage
from lxcri.errors import LxcriError, UsageError

TYPE_CHECKING = False  # typing costs start-up time; mypy still reads the block below

if TYPE_CHECKING:
    from collections.abc import Callable

    from lxcri.settings import Settings


HELP = Flag("--help,-h", help="show help")
GLOBAL_FLAGS = [
    Flag("--version,-v", help="print the version"),
    Flag("--root", str, None, "runtime state directory (default /run/lxcri)"),
    Flag("--log", str, None, "log file (default: none)"),
    Flag("--log-format", str, None, "log format: text or json"),
    Flag("--debug", bool, None, "log debug messages and keep liblxc's debug log"),
    Flag("--systemd-cgroup", bool, None, "use systemd cgroup paths (needs a host running systemd)"),
    Flag("--libexec", str, None, "directory of lxcri's helpers"),
    Flag("--rootless", str, None, "accepted for runc compatibility"),
    Flag("--criu", str, None, "accepted for runc compatibility"),
    HELP,
]
CREATE_FLAGS = [
    Flag("--bundle,-b", str, "", "path to the bundle (default: current directory)"),
    Flag("--pid-file", str, "", "file to write the pid of the process callers reap"),
    Flag("--console-socket", str, "", "unix socket to send the pty master to"),
    Flag("--no-pivot", help="accepted for runc compatibility"),
    Flag("--no-new-keyring", help="accepted for runc compatibility"),
    Flag("--preserve-fds", int, 0, "pass N extra fds (from 3) to the container"),
    HELP,
]
FORMAT = Flag("--format,-f", str, "table", "table or json")
COMMANDS = {c.name: c for c in [
    Command("create", "create a container", CREATE_FLAGS, ("id",)),
    Command("start", "start a created container", [HELP], ("id",)),
    Command("run", "create and start a container, wait for it, delete it",
            [*CREATE_FLAGS, Flag("--detach,-d", help="do not wait for the container"),
             Flag("--keep", help="do not delete the container after it exits")], ("id",)),
    Command("state", "print the state of a container", [HELP], ("id",)),
    Command("kill", "send a signal (default SIGTERM) to a container",
            [Flag("--all,-a", help="signal every process of the container"), HELP], ("id",),
            (("signal", "SIGTERM"),)),
    Command("delete", "delete a container and everything it used",
            [Flag("--force,-f", help="kill the container if it still runs"), HELP], ("id",)),
    Command("list", "list containers", [FORMAT, Flag("--quiet,-q", help="print only the IDs"), HELP]),
    Command("ps", "list the processes of a container", [FORMAT, HELP], ("id",), rest="ps_args"),
    Command("pause", "freeze every process of a container", [HELP], ("id",)),
    Command("resume", "thaw a paused container", [HELP], ("id",)),
    Command("exec", "run a process in a running container", [
        Flag("--process,-p", str, "", "the process as an OCI process JSON file"),
        Flag("--pid-file", str, "", "file to write the process's pid to"),
        Flag("--detach,-d", help="do not wait for the process"),
        Flag("--tty,-t", help="give the process a terminal"),
        Flag("--console-socket", str, "", "unix socket to send the pty master to"),
        Flag("--cwd", str, "", "working directory in the container"),
        Flag("--env,-e", list, None, "set an environment variable KEY=VALUE (repeatable)"),
        Flag("--user,-u", str, "", "UID[:GID] to run as"),
        Flag("--cap,-c", list, None, "add a capability (repeatable)"),
        Flag("--additional-gids,-g", list, None, "add a supplementary group (repeatable)"),
        Flag("--preserve-fds", int, 0, "pass N extra fds (from 3) to the process"),
        Flag("--no-new-privs", help="set no_new_privs for the process"),
        Flag("--process-label", str, "", "SELinux label of the process (hosts with SELinux)"),
        Flag("--apparmor", str, "", "AppArmor profile of the process (hosts with AppArmor)"),
        HELP], ("id",), rest="cmd_args"),
    Command("update", "change the cgroup limits of a running container", [
        Flag("--resources,-r", str, "", "OCI linux.resources JSON file, or - for stdin"),
        *[Flag("--" + f, str, "", h) for f, h in (
            ("memory", "memory limit (e.g. 100M, -1 unlimited)"), ("memory-swap", "memory+swap limit"),
            ("memory-reservation", "memory soft limit"), ("kernel-memory", "kernel memory limit (v1)"),
            ("cpu-shares", "CPU shares"), ("cpu-quota", "CFS quota (us)"), ("cpu-period", "CFS period (us)"),
            ("cpu-rt-period", "realtime period (us)"), ("cpu-rt-runtime", "realtime runtime (us)"),
            ("cpuset-cpus", "CPUs to use"), ("cpuset-mems", "memory nodes to use"),
            ("pids-limit", "maximum number of tasks"), ("blkio-weight", "block IO weight (10-1000)"))],
        HELP], ("id",)),
    Command("events", "print container stats and OOM events as JSON lines", [
        Flag("--stats", help="print one stats object and exit"),
        Flag("--interval", str, "5s", "time between stats (e.g. 5s, 500ms)"), HELP], ("id",)),
    Command("features", "print the OCI features document", [HELP]),
    Command("hook", "(internal) run the OCI hooks of a liblxc hook point",
            [Flag("--sync-fd", int, -1, "lxcri create's sync socket"), HELP], ("id", "section", "kind")),
    Command("spec", "write a default config.json",
            [Flag("--bundle,-b", str, "", "bundle directory"), Flag("--rootless", help="unsupported"), HELP]),
]}


def apply_globals(args: Parsed, s: Settings) -> None:
    for name in ("root", "log", "log_format", "debug", "systemd_cgroup", "libexec"):
        v = args.values.get(name)
        if v is not None:
            setattr(s, name, v)
    if s.log_format not in ("text", "json"):
        raise UsageError(f"invalid log format {s.log_format!r}: use text or json")
    s.root = os.path.abspath(s.root)


def version() -> str:
    import _lxc

    from lxcri import OCI_VERSION

    return f"lxcri version {__version__}\nspec: {OCI_VERSION}\nliblxc: {_lxc.get_version()}\n"


def _need_systemd(s: Settings) -> None:
    if s.systemd_cgroup and not os.path.isdir("/run/systemd/system"):
        raise UsageError("--systemd-cgroup: this host does not run systemd; use the cgroupfs driver")


# -- commands -----------------------------------------------------------------

def cmd_create(a: Parsed, s: Settings) -> int:
    from lxcri.container.create import CreateOptions, create

    _need_systemd(s)
    create(s, a.id, CreateOptions(bundle=a.bundle or os.getcwd(), pid_file=a.pid_file,
                                  console_socket=a.console_socket, preserve_fds=a.preserve_fds,
                                  no_pivot=a.no_pivot, no_new_keyring=a.no_new_keyring))
    return 0


def cmd_run(a: Parsed, s: Settings) -> int:
    from lxcri.container.run import run

    _need_systemd(s)
    return run(s, a)


def cmd_start(a: Parsed, s: Settings) -> int:
    from lxcri.container.start import start

    start(s.root, a.id)
    return 0


def cmd_state(a: Parsed, s: Settings) -> int:
    from lxcri.container.rundir import RunDir
    from lxcri.container.status import oci_state, status

    with RunDir.open(s.root, a.id) as rd:
        rec = rd.load()
        print(json.dumps(oci_state(rec, status(rd, rec)), indent=2))
    return 0


def cmd_kill(a: Parsed, s: Settings) -> int:
    from lxcri.container.kill import kill

    kill(s.root, a.id, a.signal, a.all)
    return 0


def cmd_delete(a: Parsed, s: Settings) -> int:
    from lxcri.container.delete import delete

    delete(s, a.id, a.force)
    return 0


def cmd_list(a: Parsed, s: Settings) -> int:
    from lxcri.container.listing import states

    all_states = states(s.root)
    if a.quiet:
        for st in all_states:
            print(st["id"])
    elif a.format == "json":
        print(json.dumps(all_states))
    else:
        rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
        rows += [(st["id"], str(st["pid"]), st["status"], st["bundle"], st["created"], "root") for st in all_states]
        widths = [max(len(r[i]) for r in rows) for i in range(6)]
        for r in rows:
            print("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return 0


def cmd_ps(a: Parsed, s: Settings) -> int:
    from lxcri.container.ps import pids

    found = pids(s.root, a.id)
    if a.format == "json":
        print(json.dumps(found))
        return 0
    import subprocess

    out = subprocess.run(["ps", *(a.ps_args or ["-ef"])], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise LxcriError(f"ps: {out.stderr.strip()}")
    lines = out.stdout.splitlines()
    if not lines:
        return 0
    header = lines[0].split()
    col = header.index("PID") if "PID" in header else 0
    print(lines[0])
    wanted = set(found)
    for line in lines[1:]:
        fields = line.split()
        if len(fields) > col and fields[col].isdigit() and int(fields[col]) in wanted:
            print(line)
    return 0


def cmd_pause(a: Parsed, s: Settings) -> int:
    from lxcri.container.pause import set_paused

    set_paused(s.root, a.id, True)
    return 0


def cmd_resume(a: Parsed, s: Settings) -> int:
    from lxcri.container.pause import set_paused

    set_paused(s.root, a.id, False)
    return 0


def cmd_features(a: Parsed, s: Settings) -> int:
    from lxcri.features import features

    print(json.dumps(features(s.lxcfs_path), indent=2))
    return 0


def cmd_spec(a: Parsed, s: Settings) -> int:
    from lxcri.oci.default_spec import default_spec

    path = os.path.join(a.bundle or os.getcwd(), "config.json")
    if os.path.exists(path):
        raise UsageError(f"{path} already exists; remove it first")
    with open(path, "x") as f:
        f.write(json.dumps(default_spec(), indent=2))
        f.write("\n")
    return 0


def cmd_exec(a: Parsed, s: Settings) -> int:
    from lxcri.container.exec import ExecOptions, execute

    return execute(s, a.id, ExecOptions(
        process_file=a.process, args=a.cmd_args, pid_file=a.pid_file, detach=a.detach, tty=a.tty,
        console_socket=a.console_socket, cwd=a.cwd, env=a.env, user=a.user, caps=a.cap,
        additional_gids=a.additional_gids, preserve_fds=a.preserve_fds, no_new_privs=a.no_new_privs,
        apparmor=a.apparmor, process_label=a.process_label))


def cmd_update(a: Parsed, s: Settings) -> int:
    from lxcri.container.update import from_flags, read_resources, update

    flags = {k.replace("_", "-"): v for k, v in a.values.items() if isinstance(v, str) and v and k not in (
        "id", "resources", "root", "log", "log_format", "libexec", "rootless", "criu")}
    res = read_resources(a.resources) if a.resources else {}
    for key, val in from_flags(flags).items():
        res.setdefault(key, {}).update(val)
    if not res:
        raise UsageError("update: give --resources FILE|- or at least one limit flag")
    update(s.root, a.id, res)
    return 0


def cmd_events(a: Parsed, s: Settings) -> int:
    from lxcri.container.events import events

    text = a.interval.strip()
    try:
        interval = float(text[:-2]) / 1000 if text.endswith("ms") else float(text.rstrip("s"))
    except ValueError:
        raise UsageError(f"--interval {text!r}: use e.g. 5s or 500ms") from None
    if interval <= 0:
        raise UsageError("--interval must be positive")
    events(s.root, a.id, a.stats, interval)
    return 0


def cmd_hook(a: Parsed, s: Settings) -> int:
    from lxcri.libexec.hook import run_point

    return run_point(s.root, a.id, a.kind, a.sync_fd)


RUN: dict[str, Callable[[Parsed, Settings], int]] = {
    "hook": cmd_hook,
    "exec": cmd_exec,
    "update": cmd_update,
    "events": cmd_events,
    "create": cmd_create, "run": cmd_run, "start": cmd_start, "state": cmd_state, "kill": cmd_kill,
    "delete": cmd_delete, "list": cmd_list, "ps": cmd_ps, "pause": cmd_pause, "resume": cmd_resume,
    "features": cmd_features, "spec": cmd_spec,
}


def main(argv: list[str] | None = None, loaded: tuple[Settings, Parsed] | None = None) -> int:
    """`loaded`: the settings and parsed argv, when the warm server's worker has them already."""
    from lxcri import settings

    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--warm-server"]:
        from lxcri import zygote

        return zygote.serve()
    # the client found no warm server for this installation: start one once this call is done
    missing = os.environ.pop("LXCRI_ZYGOTE_MISSING", None) == "1"
    s: Settings | None = None
    started = time.perf_counter()
    command = ""
    code = 1
    try:
        if loaded is None:
            s = settings.load()
            args = parse(argv, GLOBAL_FLAGS, COMMANDS)
        else:
            s, args = loaded
        apply_globals(args, s)
        log.setup(s.log, s.log_format, s.debug)
        if args.version:
            sys.stdout.write(version())
            return 0
        if args.help:
            sys.stdout.write(command_usage(COMMANDS[args.command]) if args.command else usage(GLOBAL_FLAGS, COMMANDS))
            return 0
        if not args.command:
            raise UsageError("no command given; see lxcri --help")
        log.debug("command", argv=" ".join(argv))
        command = args.command
        code = RUN[args.command](args, s)
        return code
    except LxcriError as e:
        _report(e, argv, s)
        return 1
    except KeyboardInterrupt:
        code = 130
        return 130
    except Exception as e:  # an lxcri bug: still one line for the caller, the traceback in the log
        import traceback

        log.error(f"internal error: {e!r}", traceback=traceback.format_exc())
        print(f"lxcri: internal error: {e!r}", file=sys.stderr)
        return 1
    finally:
        if command and s is not None:
            from lxcri import calllog

            calllog.record(s.call_log, command, code, time.perf_counter() - started)
        if missing and s is not None and s.warm_server:
            from lxcri import zygote

            zygote.spawn()


def _report(e: LxcriError, argv: list[str], s: Settings | None) -> None:
    if s is not None and not s.log:
        # flags may not have been applied yet (a usage error): find --log by hand
        for i, a in enumerate(argv):
            if a == "--log" and i + 1 < len(argv):
                log.setup(argv[i + 1], "json" if "json" in argv else "text", False)
            elif a.startswith("--log="):
                log.setup(a[6:], "json" if "json" in argv else "text", False)
    log.error(str(e))
    print(f"lxcri: {e}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
