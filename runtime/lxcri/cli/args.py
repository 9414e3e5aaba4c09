"""A small parser for runc's command line shape, instead of argparse.

Why not argparse: every runtime call is a new process, and argparse (with re,
gettext and friends) costs ~7 ms of imports on each one; CRI-O alone calls
`state` for 44% of its calls. This parser knows exactly runc's shape: global
flags, a command, its flags and positionals, `--flag=value` or `--flag value`,
short aliases, `--` to end flags.
"""

from __future__ import annotations

from lxcri.errors import UsageError


class Flag:
    __slots__ = ("default", "dest", "help", "kind", "names")

    def __init__(self, names: str, kind: type = bool, default: object = None, help: str = "") -> None:
        self.names = tuple(names.split(","))
        self.dest = self.names[0].lstrip("-").replace("-", "_")
        self.kind = kind
        self.default = (False if kind is bool else default) if default is None else default
        self.help = help


class Command:
    __slots__ = ("flags", "help", "name", "optional", "positional", "rest")

    def __init__(self, name: str, help: str, flags: list[Flag], positional: tuple[str, ...] = (),
                 optional: tuple[tuple[str, str], ...] = (), rest: str = "") -> None:
        self.name = name
        self.help = help
        self.flags = flags
        self.positional = positional  # required, in order
        self.optional = optional  # (name, default) after the required ones
        self.rest = rest  # name of a trailing argv list (exec's command, ps's options)


class Parsed:
    """What parse() found: the command and every flag's and positional's value by name (defaults
    filled in). Read through the typed getters; cli/options.py turns it into one typed options
    object per command."""

    __slots__ = ("command", "values")

    def __init__(self) -> None:
        self.command = ""
        self.values: dict[str, object] = {}

    def text(self, name: str) -> str:
        v = self.values.get(name)
        return v if isinstance(v, str) else ""

    def flag(self, name: str) -> bool:
        return self.values.get(name) is True

    def number(self, name: str) -> int:
        v = self.values.get(name)
        return v if isinstance(v, int) and not isinstance(v, bool) else 0

    def texts(self, name: str) -> list[str]:
        v = self.values.get(name)
        return [x for x in v if isinstance(x, str)] if isinstance(v, list) else []


def _convert(flag: Flag, name: str, raw: str) -> object:
    if flag.kind is int:
        try:
            return int(raw)
        except ValueError as e:
            raise UsageError(f"flag {name}: {raw!r} is not a number") from e
    if flag.kind is list:
        return raw
    return raw


def _take_flags(argv: list[str], i: int, flags: list[Flag], out: dict[str, object], where: str,
                stop_after: int = -1) -> tuple[int, list[str]]:
    """Consume argv[i:]: flags into out, the rest as positionals.

    Global flags stop at the first non-flag (the command). A command with a trailing argv
    (exec ID CMD...) stops reading flags once it has `stop_after` positionals.
    """
    by_name = {n: f for f in flags for n in f.names}
    positionals: list[str] = []
    while i < len(argv):
        a = argv[i]
        if 0 <= stop_after <= len(positionals) and positionals:
            positionals.extend(argv[i:])
            return len(argv), positionals
        if a == "--":
            positionals.extend(argv[i + 1:])
            return len(argv), positionals
        if not a.startswith("-") or a == "-":
            if where == "global":
                return i, positionals
            positionals.append(a)
            i += 1
            continue
        name, eq, value = a.partition("=")
        flag = by_name.get(name)
        if flag is None:
            if where == "global":
                raise UsageError(f"unknown global flag {name}")
            raise UsageError(f"unknown flag {name} for {where}")
        if flag.kind is bool:
            out[flag.dest] = value.lower() in ("1", "true", "yes") if eq else True
        else:
            if not eq:
                i += 1
                if i >= len(argv):
                    raise UsageError(f"flag {name} needs a value")
                value = argv[i]
            v = _convert(flag, name, value)
            if flag.kind is list:
                lst = out.setdefault(flag.dest, [])
                assert isinstance(lst, list)
                lst.append(v)
            else:
                out[flag.dest] = v
        i += 1
    return i, positionals


def parse(argv: list[str], global_flags: list[Flag], commands: dict[str, Command]) -> Parsed:
    p = Parsed()
    for f in global_flags:
        p.values[f.dest] = [] if f.kind is list else f.default
    i, _ = _take_flags(argv, 0, global_flags, p.values, "global")
    if i >= len(argv):
        return p
    name = argv[i]
    cmd = commands.get(name)
    if cmd is None:
        raise UsageError(f"unknown command {name!r}; see lxcri --help")
    p.command = name
    for f in cmd.flags:
        p.values[f.dest] = [] if f.kind is list else f.default
    _, pos = _take_flags(argv, i + 1, cmd.flags, p.values, name,
                         stop_after=len(cmd.positional) if cmd.rest else -1)
    if p.values.get("help"):
        return p
    if len(pos) < len(cmd.positional):
        raise UsageError(f"{name}: missing {cmd.positional[len(pos)]}")
    for k, v in zip(cmd.positional, pos, strict=False):
        p.values[k] = v
    extra = pos[len(cmd.positional):]
    for k, default in cmd.optional:
        p.values[k] = extra.pop(0) if extra else default
    if cmd.rest:
        p.values[cmd.rest] = extra
    elif extra:
        raise UsageError(f"{name}: unexpected argument {extra[0]!r}")
    return p


def usage(global_flags: list[Flag], commands: dict[str, Command]) -> str:
    lines = ["usage: lxcri [global options] COMMAND [options] ARGS", "", "commands:"]
    lines += [f"  {c.name:<10} {c.help}" for c in commands.values()]
    lines += ["", "global options:"]
    lines += [f"  {', '.join(f.names):<24} {f.help}" for f in global_flags]
    return "\n".join(lines) + "\n"


def command_usage(cmd: Command) -> str:
    args = " ".join(n.upper() for n in cmd.positional) + "".join(f" [{n.upper()}]" for n, _ in cmd.optional)
    if cmd.rest:
        args += f" [{cmd.rest.upper()}...]"
    lines = [f"usage: lxcri {cmd.name} [options] {args}".rstrip(), "", cmd.help, "", "options:"]
    lines += [f"  {', '.join(f.names):<24} {f.help}" for f in cmd.flags]
    return "\n".join(lines) + "\n"
