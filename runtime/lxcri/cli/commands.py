"""runc's command line: the global flags and every command with its flags and positionals.

A table only (parsed by args.py, dispatched by main.py): the warm server's worker reads it
too, to tell the calls it may serve from those that must run directly.
"""

from __future__ import annotations

from lxcri.cli.args import Command, Flag

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
