"""Typed options, one class per command, read from what args.py parsed.

The parser knows only names and kinds (it is a table: commands.py); the handlers in main.py
take these, so that a flag's type is checked by mypy at every use, not looked up by name.
(Plain slotted classes: a dataclass import costs start-up time on every call.)
"""

from __future__ import annotations

import os

from lxcri.cli.args import Parsed

TYPE_CHECKING = False

if TYPE_CHECKING:
    from lxcri.container.create import CreateOptions
    from lxcri.container.exec import ExecOptions
    from lxcri.container.run import RunOptions

# the global flags that override a setting of the same name when given
SETTINGS_FLAGS = ("root", "log", "log_format", "debug", "systemd_cgroup", "libexec")


class Globals:
    __slots__ = ("help", "overrides", "version")

    def __init__(self, a: Parsed) -> None:
        self.version = a.flag("version")
        self.help = a.flag("help")
        # only what was given: the rest keeps the settings' value (file, environment, default)
        self.overrides = {k: a.values[k] for k in SETTINGS_FLAGS if a.values.get(k) is not None}


class Target:
    """A command about one container: start, state, pause, resume, and the base of the rest."""

    __slots__ = ("id",)

    def __init__(self, a: Parsed) -> None:
        self.id = a.text("id")


class Kill(Target):
    __slots__ = ("all", "signal")

    def __init__(self, a: Parsed) -> None:
        super().__init__(a)
        self.signal = a.text("signal")
        self.all = a.flag("all")


class Delete(Target):
    __slots__ = ("force",)

    def __init__(self, a: Parsed) -> None:
        super().__init__(a)
        self.force = a.flag("force")


class Listing:
    __slots__ = ("format", "quiet")

    def __init__(self, a: Parsed) -> None:
        self.format = a.text("format")
        self.quiet = a.flag("quiet")


class Ps(Target):
    __slots__ = ("format", "ps_args")

    def __init__(self, a: Parsed) -> None:
        super().__init__(a)
        self.format = a.text("format")
        self.ps_args = a.texts("ps_args")


class Update(Target):
    __slots__ = ("limits", "resources")

    NOT_LIMITS = frozenset({"id", "resources", "root", "log", "log_format", "libexec", "rootless", "criu"})

    def __init__(self, a: Parsed) -> None:
        super().__init__(a)
        self.resources = a.text("resources")
        # the limit flags given (--memory 100M ...), by their flag names
        self.limits = {k.replace("_", "-"): v for k, v in a.values.items()
                       if isinstance(v, str) and v and k not in self.NOT_LIMITS}


class Events(Target):
    __slots__ = ("interval", "stats")

    def __init__(self, a: Parsed) -> None:
        super().__init__(a)
        self.stats = a.flag("stats")
        self.interval = a.text("interval")


class Hook(Target):
    __slots__ = ("kind", "sync_fd")

    def __init__(self, a: Parsed) -> None:
        super().__init__(a)
        self.kind = a.text("kind")
        self.sync_fd = a.number("sync_fd")


class Spec:
    __slots__ = ("bundle",)

    def __init__(self, a: Parsed) -> None:
        self.bundle = a.text("bundle") or os.getcwd()


def create(a: Parsed, keyring_flags: bool = True) -> CreateOptions:
    from lxcri.container.create import CreateOptions

    return CreateOptions(bundle=a.text("bundle") or os.getcwd(), pid_file=a.text("pid_file"),
                         console_socket=a.text("console_socket"), preserve_fds=a.number("preserve_fds"),
                         no_pivot=a.flag("no_pivot") and keyring_flags,
                         no_new_keyring=a.flag("no_new_keyring") and keyring_flags)


def run(a: Parsed) -> RunOptions:
    from lxcri.container.run import RunOptions

    # run has always created with its bundle, pid file, console socket and fds only
    return RunOptions(create(a, keyring_flags=False), detach=a.flag("detach"), keep=a.flag("keep"))


def exec_(a: Parsed) -> ExecOptions:
    from lxcri.container.exec import ExecOptions

    return ExecOptions(
        process_file=a.text("process"), args=a.texts("cmd_args"), pid_file=a.text("pid_file"),
        detach=a.flag("detach"), tty=a.flag("tty"), console_socket=a.text("console_socket"), cwd=a.text("cwd"),
        env=a.texts("env"), user=a.text("user"), caps=a.texts("cap"), additional_gids=a.texts("additional_gids"),
        preserve_fds=a.number("preserve_fds"), no_new_privs=a.flag("no_new_privs"), apparmor=a.text("apparmor"),
        process_label=a.text("process_label"))
