"""containerd registration: a ``runtimes.lxcri`` entry in the CRI plugin of the right config version.

containerd 1.x merges ``imports`` per plugin, so a drop-in that adds one runtime silently
replaces the admin's whole CRI plugin section (measured with 1.6: the runc runtime and the
snapshotter setting vanish from ``config dump``). A drop-in is therefore used only when the
admin's config already imports a directory *and* the host's own containerd proves, by
``config dump`` before and after, that the drop-in adds our runtime and changes nothing else.
Otherwise the admin's file is edited in place with tomlkit, which keeps comments and layout,
after a byte-identical backup.

Every candidate is checked before it reaches the real path: it must parse, and the parsed
document must equal the original plus our entry and nothing else; where a containerd binary
is available its ``config dump`` must accept it too.
"""

from __future__ import annotations

import copy
import fnmatch
import os
import posixpath
import re
import subprocess
import tempfile
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import AgentError
from ..hostfs import HostRoot, sha256_bytes
from ..manifest import Edit, Manifest, Owned
from .settings import Settings

# The CRI plugin id per config version (1: containerd <1.5 style ids, 2: 1.x, 3: 2.x).
PLUGIN_IDS = {1: "cri", 2: "io.containerd.grpc.v1.cri", 3: "io.containerd.cri.v1.runtime"}
HEADER = "# lxcri-agent: the lxcri runtime handler; removed by `lxcri-agent uninstall`.\n"


def config_version(doc: dict[str, Any]) -> int:
    v = doc.get("version", 1)
    if not isinstance(v, int) or v not in PLUGIN_IDS:
        raise AgentError(f"unsupported containerd config version {v!r}")
    return v


def runtime_keys(version: int, handler: str) -> list[str]:
    return ["plugins", PLUGIN_IDS[version], "containerd", "runtimes", handler]


def parse(text: str, name: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise AgentError(f"{name} is not valid TOML ({err}); containerd cannot read it either: left untouched") from err


def _get(doc: dict[str, Any], keys: list[str]) -> Any:
    cur: Any = doc
    for k in keys:
        if not isinstance(cur, dict) or k not in cur:
            return None
        cur = cur[k]
    return cur


def _without(doc: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    """The document minus one nested key, with now-empty parents pruned (what it was before we added it)."""
    out = copy.deepcopy(doc)
    chain: list[dict[str, Any]] = [out]
    for k in keys[:-1]:
        nxt = chain[-1].get(k)
        if not isinstance(nxt, dict):
            return out
        chain.append(nxt)
    chain[-1].pop(keys[-1], None)
    for i in range(len(keys) - 2, -1, -1):
        if not chain[i + 1]:
            chain[i].pop(keys[i], None)
    return out


def desired_entry(doc: dict[str, Any], version: int, s: Settings) -> dict[str, Any]:
    """Our runtime entry; it follows the default runtime's cgroup driver so kubelet and shim agree."""
    options: dict[str, Any] = {"BinaryName": s.runtime_path, "Root": s.runtime_root}
    runtimes = _get(doc, runtime_keys(version, s.handler)[:-1]) or {}
    default = _get(doc, ["plugins", PLUGIN_IDS[version], "containerd", "default_runtime_name"]) or "runc"
    systemd = _get(runtimes, [default, "options", "SystemdCgroup"])
    if isinstance(systemd, bool):
        options["SystemdCgroup"] = systemd
    return {"runtime_type": "io.containerd.runc.v2", "options": options}


_HEADER = re.compile(r"^([ \t]*)\[([^\[\]]+)\][ \t]*(#.*)?$")


def _header_path(inner: str) -> list[str] | None:
    """The key path of a ``[a."b.c".d]`` header, by letting a TOML parser read it."""
    try:
        doc: Any = tomllib.loads(f"[{inner}]\n")
    except tomllib.TOMLDecodeError:
        return None
    path = []
    while isinstance(doc, dict) and len(doc) == 1:
        k = next(iter(doc))
        path.append(k)
        doc = doc[k]
    return path


def _render(keys: list[str], want: dict[str, Any], indent: str) -> str:
    head = ".".join(f'"{k}"' if "." in k else k for k in keys)
    inner = indent + "  "
    lines = [
        f"{indent}[{head}]",
        f'{inner}runtime_type = "{want["runtime_type"]}"',
        "",
        f"{inner}[{head}.options]",
    ]
    for k, v in want["options"].items():
        val = "true" if v is True else "false" if v is False else f'"{v}"'
        lines.append(f"{inner}  {k} = {val}")
    return "\n".join(lines) + "\n"


def _insert_text(text: str, keys: list[str], want: dict[str, Any]) -> str:
    """Add our table right after the CRI plugin's last ``containerd`` table, indented like its
    siblings; at the end of the file when the plugin has no such table."""
    lines = text.splitlines(keepends=True)
    scope = keys[:-2]  # [..., "containerd"]
    last = -1
    indent = ""
    for i, line in enumerate(lines):
        m = _HEADER.match(line.rstrip("\n"))
        if not m:
            continue
        path = _header_path(m.group(2))
        if path is None or path[: len(scope)] != scope:
            continue
        last = i
        if path[: len(keys) - 1] == keys[:-1] and len(path) == len(keys):
            indent = m.group(1)  # a sibling runtime: copy its indentation
        elif path == scope and not indent:
            indent = m.group(1) + "  "
    if last < 0:
        sep = "" if not text or text.endswith("\n\n") else "\n" if text.endswith("\n") else "\n\n"
        return text + sep + _render(keys, want, "")
    end = len(lines)
    for j in range(last + 1, len(lines)):
        if _HEADER.match(lines[j].rstrip("\n")) or lines[j].lstrip().startswith("[["):
            end = j
            break
    # comments and blank lines just above the next header belong to that header
    while end > last + 1 and (not lines[end - 1].strip() or lines[end - 1].lstrip().startswith("#")):
        end -= 1
    before = "".join(lines[:end])
    if before and not before.endswith("\n"):
        before += "\n"
    after = "".join(lines[end:])
    gap = "\n" if after.strip() and after.split("\n", 1)[0].strip() else ""
    return before + "\n" + _render(keys, want, indent) + gap + after


def edit_text(text: str, s: Settings) -> str:
    """The admin's config with our entry added or corrected; unchanged text when it is already right."""
    import tomlkit

    doc = parse(text, s.containerd_config)
    version = config_version(doc)
    keys = runtime_keys(version, s.handler)
    want = desired_entry(doc, version, s)
    have = _get(doc, keys)
    if have == want:
        return text
    if have is None:
        out = _insert_text(text, keys, want)
        try:
            check_edit(text, out, s)
            return out
        except AgentError:
            pass  # an unusual layout (inline tables, dotted keys): let tomlkit place it
    tdoc = tomlkit.parse(text)
    cur: Any = tdoc
    for k in keys[:-1]:
        if k not in cur:
            cur[k] = tomlkit.table(is_super_table=True)
        cur = cur[k]
    if have is not None and isinstance(have.get("options"), dict):
        entry = cur[keys[-1]]  # correct values in place, keeping the admin's extra keys out of it
        entry["runtime_type"] = want["runtime_type"]
        opts_t = entry["options"]
        for k, v in want["options"].items():
            if k in opts_t:
                opts_t[k] = v
                continue
            opts_t[k] = v
            siblings = [opts_t.item(x) for x in opts_t if x != k]
            if siblings:  # a new key lines up with the admin's keys
                opts_t.item(k).trivia.indent = siblings[0].trivia.indent
        for k in list(entry.keys()):
            if k not in want:
                del entry[k]
        for k in list(entry["options"].keys()):
            if k not in want["options"]:
                del entry["options"][k]
    else:
        from tomlkit.items import InlineTable

        inline = isinstance(cur, InlineTable)  # the admin wrote `runtimes = { ... }`: stay inline
        table: Any = tomlkit.inline_table() if inline else tomlkit.table()
        table.add("runtime_type", want["runtime_type"])
        opts: Any = tomlkit.inline_table() if inline else tomlkit.table()
        for k, v in want["options"].items():
            opts.add(k, v)
        table.add("options", opts)
        cur[keys[-1]] = table
    out = tomlkit.dumps(tdoc)
    check_edit(text, out, s)
    return out


def remove_text(text: str, s: Settings) -> str:
    """The config without our entry (used when the admin changed the file after we edited it)."""
    import tomlkit

    doc = parse(text, s.containerd_config)
    keys = runtime_keys(config_version(doc), s.handler)
    if _get(doc, keys) is None:
        return text
    tdoc = tomlkit.parse(text)
    cur: Any = tdoc
    for k in keys[:-1]:
        cur = cur[k]
    del cur[keys[-1]]
    out = tomlkit.dumps(tdoc)
    if parse(out, s.containerd_config) != _without(doc, keys):
        raise AgentError(f"removing our entry from {s.containerd_config} would change other settings: left as is")
    return out


def check_edit(before: str, after: str, s: Settings) -> None:
    """The edit adds our entry and changes nothing else, judged on the parsed documents."""
    a = parse(after, s.containerd_config + " (as edited)")
    b = parse(before, s.containerd_config)
    keys = runtime_keys(config_version(b), s.handler)
    if _without(a, keys) != _without(b, keys) or _get(a, keys) != desired_entry(b, config_version(b), s):
        raise AgentError(f"editing {s.containerd_config} would change more than the {s.handler} runtime: not applied")


def dropin_text(version: int, s: Settings, doc: dict[str, Any]) -> str:
    keys = runtime_keys(version, s.handler)
    head = ".".join(f'"{k}"' if "." in k else k for k in keys)
    want = desired_entry(doc, version, s)
    lines = [
        HEADER.rstrip("\n"),
        f"version = {version}",
        "",
        f"[{head}]",
        f'  runtime_type = "{want["runtime_type"]}"',
        f"  [{head}.options]",
    ]
    for k, v in want["options"].items():
        lines.append(f"    {k} = " + ("true" if v is True else "false" if v is False else f'"{v}"'))
    return "\n".join(lines) + "\n"


def import_dir(doc: dict[str, Any], config_path: str, name: str) -> str | None:
    """The host directory an existing ``imports`` glob covers for a drop-in called ``name``."""
    imports = doc.get("imports")
    if not isinstance(imports, list):
        return None
    base = posixpath.dirname(config_path)
    for pattern in imports:
        if not isinstance(pattern, str):
            continue
        full = pattern if pattern.startswith("/") else posixpath.join(base, pattern)
        directory, glob = posixpath.split(full)
        if any(c in directory for c in "*?[") or not fnmatch.fnmatch(name, glob):
            continue
        return directory
    return None


# -- validation with a containerd binary ---------------------------------------------------------


@dataclass
class Validator:
    """Runs ``containerd --config X config dump``, preferring the node's own containerd:

    * chrooted into the host root, when that works (the host's loader and libc are there):
      imports then resolve to host paths, so only this mode may judge a drop-in;
    * else the host's binary run directly (a DaemonSet that mounts only the binary): the right
      version, reading the candidate file by its path under the host root;
    * else ``binary`` from the agent's own PATH.
    """

    host: HostRoot
    binary: str | None = None  # an explicit containerd on the agent's PATH, used without chroot
    _mode: tuple[str, str] | None = field(default=None, init=False, repr=False)  # (how, binary), found once

    def _host_binary(self) -> str | None:
        for cand in ("/usr/bin/containerd", "/usr/local/bin/containerd"):
            if self.host.path(cand).is_file() and os.access(self.host.path(cand), os.X_OK):
                return cand
        return None

    def _choose(self) -> tuple[str, str]:
        if self._mode is None:
            hb = self._host_binary()
            mode = ("own", self.binary) if self.binary else ("none", "")
            if hb is not None:
                if self._runs(["chroot", str(self.host.root), hb, "--version"]):
                    mode = ("chroot", hb)
                elif self._runs([str(self.host.path(hb)), "--version"]):
                    mode = ("direct", str(self.host.path(hb)))
            self._mode = mode
        return self._mode

    @staticmethod
    def _runs(cmd: list[str]) -> bool:
        try:
            return subprocess.run(cmd, capture_output=True, timeout=30).returncode == 0
        except OSError:
            return False

    def available(self) -> bool:
        return self._choose()[0] != "none"

    def chrooted(self) -> bool:
        return self._choose()[0] == "chroot"

    def hosts_own(self) -> bool:
        """The node's own containerd (its version reads the config as the daemon will)."""
        return self._choose()[0] in ("chroot", "direct")

    def dump(self, host_config: str) -> dict[str, Any]:
        """The effective config containerd would run with; AgentError in containerd's words if not."""
        mode, binary = self._choose()
        if mode == "chroot":
            cmd = ["chroot", str(self.host.root), binary, "--config", host_config, "config", "dump"]
        elif mode in ("direct", "own"):
            cmd = [binary, "--config", str(self.host.path(host_config)), "config", "dump"]
        else:
            raise AgentError("no containerd binary to validate with")
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            msg = (r.stderr.strip().splitlines() or ["(no message)"])[-1]
            raise AgentError(f"containerd rejects {host_config}: {msg}")
        doc = tomllib.loads(r.stdout)
        doc.pop("imports", None)  # lists the files read, differs by construction
        return doc

    def dump_text(self, s: Settings, text: str) -> dict[str, Any]:
        """Dump a candidate config written next to the real one (same dir, so relative imports agree)."""
        real = self.host.path(s.containerd_config)
        try:
            fd, tmp = tempfile.mkstemp(prefix=".config.", suffix=".lxcri-check.toml", dir=real.parent)
            with os.fdopen(fd, "w") as f:
                f.write(text)
        except OSError as err:
            raise self.host.error("write a candidate next to", real, err) from err
        try:
            return self.dump(self.host.host_name(Path(tmp)))
        finally:
            os.unlink(tmp)


# -- applying to the host ------------------------------------------------------------------------


def present(host: HostRoot, s: Settings) -> bool:
    return host.path(posixpath.dirname(s.containerd_config)).is_dir()


def register(
    host: HostRoot, m: Manifest, s: Settings, validator: Validator, wanted: set[str], save: Callable[[], None]
) -> bool:
    """Register the runtime; True when containerd's effective config changed (it must restart)."""
    cfg = s.containerd_config
    data = host.read(cfg)
    if data is None or (cfg in m.owned and sha256_bytes(data) == m.owned[cfg].sha256):
        return _own_config(host, m, s, validator, wanted, save)
    try:
        text = data.decode()
    except UnicodeDecodeError as err:
        raise AgentError(f"{cfg} is not UTF-8 text ({err}): left untouched") from err
    doc = parse(text, cfg)
    if cfg in m.owned:
        _take_over(host, m, s, save, data, text)
    version = config_version(doc)
    directory = import_dir(doc, cfg, s.containerd_dropin_name)
    if directory is not None and validator.chrooted() and cfg not in m.edits:
        changed = _try_dropin(
            host, m, s, validator, wanted, save, doc, version, f"{directory}/{s.containerd_dropin_name}"
        )
        if changed is not None:
            return changed
    return _edit(host, m, s, validator, wanted, save, data, text)


def _take_over(host: HostRoot, m: Manifest, s: Settings, save: Callable[[], None], data: bytes, text: str) -> None:
    """The admin edited the config file we created: it is theirs now. From here on it is an edit
    like any other, whose "original" is their content without our entry."""
    from ..manifest import backup_path

    cfg = s.containerd_config
    base = remove_text(text, s).removeprefix(HEADER).encode()
    backup = backup_path(host, cfg)
    host.makedirs(posixpath.dirname(backup), 0o700)
    host.write_atomic(backup, base, 0o600)
    m.edits[cfg] = Edit(backup, sha256_bytes(base), sha256_bytes(data), service="containerd")
    del m.owned[cfg]
    save()


def _own_config(
    host: HostRoot, m: Manifest, s: Settings, validator: Validator, wanted: set[str], save: Callable[[], None]
) -> bool:
    """No config on the host: containerd runs on defaults, so a whole file of ours (version 2,
    which containerd 1.6 to 2.x all read) only adds the runtime."""
    cfg = s.containerd_config
    data = dropin_text(2, s, {}).encode()
    wanted.add(cfg)
    m.owned[cfg] = Owned("file", sha256_bytes(data), service="containerd")
    if host.read(cfg) == data:
        return False
    parent = posixpath.dirname(cfg)
    if not host.path(parent).is_dir():
        m.owned[parent] = Owned("dir")
        save()
        host.makedirs(parent)
    if parent in m.owned:
        wanted.add(parent)
    if validator.available():
        validator.dump_text(s, data.decode())
    save()
    host.write_atomic(cfg, data, 0o644)
    return True


def _try_dropin(
    host: HostRoot,
    m: Manifest,
    s: Settings,
    validator: Validator,
    wanted: set[str],
    save: Callable[[], None],
    doc: dict[str, Any],
    version: int,
    name: str,
) -> bool | None:
    """Use the admin's ``imports``; None when containerd shows the drop-in would change more than ours."""
    from .. import log

    data = dropin_text(version, s, doc).encode()
    keys = runtime_keys(version, s.handler)
    cur = host.read(name)
    if cur is not None and name not in m.owned and cur != data:
        raise AgentError(f"{name} exists and was not written by lxcri-agent: not overwritten")
    if cur == data and name in m.owned:
        wanted.add(name)
        return False
    if cur is not None:
        host.remove(name)
    before = validator.dump(s.containerd_config)
    m.owned[name] = Owned("file", sha256_bytes(data), service="containerd")
    save()
    host.write_atomic(name, data, 0o644)
    try:
        after = validator.dump(s.containerd_config)
    except AgentError:
        after = {}
    entry = _get(after, keys) or {}
    if (
        _without(after, keys) == _without(before, keys)
        and entry.get("runtime_type") == "io.containerd.runc.v2"
        and (entry.get("options") or {}).get("BinaryName") == s.runtime_path
    ):
        wanted.add(name)
        return True
    log.get("containerd").warning("imports would drop other settings of the CRI plugin; editing in place", dropin=name)
    host.remove(name)
    del m.owned[name]
    save()
    return None


def _edit(
    host: HostRoot,
    m: Manifest,
    s: Settings,
    validator: Validator,
    wanted: set[str],
    save: Callable[[], None],
    data: bytes,
    text: str,
) -> bool:
    """Edit the admin's file in place after a byte-identical backup recorded in the manifest."""
    from ..manifest import backup_path

    cfg = s.containerd_config
    ed = m.edits.get(cfg)
    if ed is not None and sha256_bytes(data) == ed.result_sha256:
        wanted.add(cfg)
        return False
    new = edit_text(text, s)
    if new == text:
        # the entry is already right: the admin's own (not ours to record) or our crashed run's
        if ed is not None:
            wanted.add(cfg)
        return False
    if validator.available():
        dumped = validator.dump_text(s, new)
        version = config_version(parse(text, cfg))
        # the dump shows v1 configs under v2 plugin ids; a containerd 1.x that is not the host's
        # own binary ignores v3 plugin ids, so then it can only prove that the file parses
        entry = _get(dumped, runtime_keys(version, s.handler)) or _get(dumped, runtime_keys(2, s.handler)) or {}
        must_see = validator.hosts_own() or version < 3
        if must_see and (entry.get("options") or {}).get("BinaryName") != s.runtime_path:
            raise AgentError(f"containerd does not see the {s.handler} runtime in the edited {cfg}: not applied")
    newdata = new.encode()
    backup = backup_path(host, cfg)
    host.makedirs(posixpath.dirname(backup), 0o700)
    # a file the admin changed since our last edit: the new backup is their version, not our old one
    host.write_atomic(backup, data, 0o600)
    m.edits[cfg] = Edit(backup, sha256_bytes(data), sha256_bytes(newdata), service="containerd")
    wanted.add(cfg)
    save()
    host.write_atomic(cfg, newdata)
    return True
