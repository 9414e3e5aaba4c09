"""`lxcri [global options] COMMAND [options] ARGS`, with runc's flags and exit codes: parse,
dispatch to the command's module in container/, report errors as one line.

Only the parser and the command's own modules are imported: every call is a new
process (CRI-O calls `state` constantly), so start-up time is product latency.
Whether a call is served by the warm server or runs here is not this module's
business (entry.py and warm/ decide); a call only gets the Spawner it must use.
"""

from __future__ import annotations

import os
import sys
import time

from lxcri import __version__, log
from lxcri import jsonlite as json
from lxcri.cli import options
from lxcri.cli.args import Parsed, command_usage, parse, usage
from lxcri.cli.commands import COMMANDS, GLOBAL_FLAGS
from lxcri.errors import LxcriError, UsageError

TYPE_CHECKING = False  # typing costs start-up time; mypy still reads the block below

if TYPE_CHECKING:
    from collections.abc import Callable

    from lxcri.container.helper import Spawner
    from lxcri.settings import Settings

__all__ = ["COMMANDS", "GLOBAL_FLAGS", "main"]


def apply_globals(g: options.Globals, s: Settings) -> None:
    for name, v in g.overrides.items():
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
# Each takes the parsed call, the settings and the call's Spawner (how helpers are started and
# where hooks run: see container/helper.py); each reads its typed options first.

def cmd_create(a: Parsed, s: Settings, sp: Spawner | None) -> int:
    from lxcri.container.create import create
    from lxcri.container.helper import DIRECT

    _need_systemd(s)
    create(s, options.Target(a).id, options.create(a), sp or DIRECT)
    return 0


def cmd_run(a: Parsed, s: Settings, sp: Spawner | None) -> int:
    from lxcri.container.run import run

    _need_systemd(s)
    return run(s, options.Target(a).id, options.run(a))


def cmd_start(a: Parsed, s: Settings, sp: Spawner | None) -> int:
    from lxcri.container.start import start

    start(s.root, options.Target(a).id, sp)
    return 0


def cmd_state(a: Parsed, s: Settings, sp: Spawner | None) -> int:
    from lxcri.container.rundir import RunDir
    from lxcri.container.status import oci_state, status

    with RunDir.open(s.root, options.Target(a).id) as rd:
        rec = rd.load()
        print(json.dumps(oci_state(rec, status(rd, rec)), indent=2))
    return 0


def cmd_kill(a: Parsed, s: Settings, sp: Spawner | None) -> int:
    from lxcri.container.kill import kill

    o = options.Kill(a)
    kill(s.root, o.id, o.signal, o.all)
    return 0


def cmd_delete(a: Parsed, s: Settings, sp: Spawner | None) -> int:
    from lxcri.container.delete import delete

    o = options.Delete(a)
    delete(s, o.id, o.force, sp)
    return 0


def cmd_list(a: Parsed, s: Settings, sp: Spawner | None) -> int:
    from lxcri.container.listing import states

    o = options.Listing(a)
    all_states = states(s.root)
    if o.quiet:
        for st in all_states:
            print(st["id"])
    elif o.format == "json":
        print(json.dumps(all_states))
    else:
        rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
        rows += [(st["id"], str(st["pid"]), st["status"], st["bundle"], st["created"], "root") for st in all_states]
        widths = [max(len(r[i]) for r in rows) for i in range(6)]
        for r in rows:
            print("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return 0


def cmd_ps(a: Parsed, s: Settings, sp: Spawner | None) -> int:
    from lxcri.container.ps import pids

    o = options.Ps(a)
    found = pids(s.root, o.id)
    if o.format == "json":
        print(json.dumps(found))
        return 0
    import subprocess

    out = subprocess.run(["ps", *(o.ps_args or ["-ef"])], capture_output=True, text=True, check=False)
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


def cmd_pause(a: Parsed, s: Settings, sp: Spawner | None) -> int:
    from lxcri.container.pause import set_paused

    set_paused(s.root, options.Target(a).id, True)
    return 0


def cmd_resume(a: Parsed, s: Settings, sp: Spawner | None) -> int:
    from lxcri.container.pause import set_paused

    set_paused(s.root, options.Target(a).id, False)
    return 0


def cmd_features(a: Parsed, s: Settings, sp: Spawner | None) -> int:
    from lxcri.features import features

    print(json.dumps(features(s.lxcfs_path), indent=2))
    return 0


def cmd_spec(a: Parsed, s: Settings, sp: Spawner | None) -> int:
    from lxcri.oci.default_spec import default_spec

    path = os.path.join(options.Spec(a).bundle, "config.json")
    if os.path.exists(path):
        raise UsageError(f"{path} already exists; remove it first")
    with open(path, "x") as f:
        f.write(json.dumps(default_spec(), indent=2))
        f.write("\n")
    return 0


def cmd_exec(a: Parsed, s: Settings, sp: Spawner | None) -> int:
    from lxcri.container.exec import execute
    from lxcri.container.helper import DIRECT

    return execute(s, options.Target(a).id, options.exec_(a), sp or DIRECT)


def cmd_update(a: Parsed, s: Settings, sp: Spawner | None) -> int:
    from lxcri.container.update import from_flags, read_resources, update

    o = options.Update(a)
    res = read_resources(o.resources) if o.resources else {}
    for key, val in from_flags(o.limits).items():
        res.setdefault(key, {}).update(val)
    if not res:
        raise UsageError("update: give --resources FILE|- or at least one limit flag")
    update(s.root, o.id, res)
    return 0


def cmd_events(a: Parsed, s: Settings, sp: Spawner | None) -> int:
    from lxcri.container.events import events

    o = options.Events(a)
    text = o.interval.strip()
    try:
        interval = float(text[:-2]) / 1000 if text.endswith("ms") else float(text.rstrip("s"))
    except ValueError as e:
        raise UsageError(f"--interval {text!r}: use e.g. 5s or 500ms", field="--interval") from e
    if interval <= 0:
        raise UsageError("--interval must be positive", field="--interval")
    events(s.root, o.id, o.stats, interval)
    return 0


def cmd_hook(a: Parsed, s: Settings, sp: Spawner | None) -> int:
    from lxcri.container.mounthook import run_point

    o = options.Hook(a)
    return run_point(s.root, o.id, o.kind, o.sync_fd)


RUN: dict[str, Callable[[Parsed, Settings, Spawner | None], int]] = {
    "hook": cmd_hook,
    "exec": cmd_exec,
    "update": cmd_update,
    "events": cmd_events,
    "create": cmd_create, "run": cmd_run, "start": cmd_start, "state": cmd_state, "kill": cmd_kill,
    "delete": cmd_delete, "list": cmd_list, "ps": cmd_ps, "pause": cmd_pause, "resume": cmd_resume,
    "features": cmd_features, "spec": cmd_spec,
}


def main(argv: list[str], loaded: tuple[Settings, Parsed] | None = None, spawner: Spawner | None = None) -> int:
    """One call: its exit status. `loaded`: the settings and parsed argv, when the warm server's
    worker has them already; `spawner`: the worker's (None: a direct call, which starts its
    helpers itself)."""
    from lxcri import settings

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
        g = options.Globals(args)
        apply_globals(g, s)
        log.setup(s.log, s.log_format, s.debug)
        if g.version:
            sys.stdout.write(version())
            return 0
        if g.help:
            sys.stdout.write(command_usage(COMMANDS[args.command]) if args.command else usage(GLOBAL_FLAGS, COMMANDS))
            return 0
        if not args.command:
            raise UsageError("no command given; see lxcri --help")
        log.debug("command", argv=" ".join(argv))
        command = args.command
        code = RUN[args.command](args, s, spawner)
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


def _report(e: LxcriError, argv: list[str], s: Settings | None) -> None:
    if s is not None and not s.log:
        # flags may not have been applied yet (a usage error): find --log by hand
        for i, a in enumerate(argv):
            if a == "--log" and i + 1 < len(argv):
                log.setup(argv[i + 1], "json" if "json" in argv else "text", False)
            elif a.startswith("--log="):
                log.setup(a[6:], "json" if "json" in argv else "text", False)
    extra: dict[str, object] = {}
    if s is not None and s.debug:  # the log line stays as it was unless debugging
        if e.field:
            extra["field"] = e.field
        if e.cid:
            extra["id"] = e.cid
        if e.cause is not None:
            extra["cause"] = repr(e.cause)  # what the message put in the user's terms, as it was
    log.error(str(e), **extra)
    print(f"lxcri: {e}", file=sys.stderr)
