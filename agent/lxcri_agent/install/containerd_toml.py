"""containerd's config as text: where our runtime goes, and edits that keep the admin's file.

Pure functions (no I/O), so that every layout an admin may have written is tested against
golden files. The table is inserted as text after the CRI plugin's last ``containerd`` table,
indented like its neighbours; tomlkit takes over for unusual layouts (inline tables) and for
correcting an existing entry. Every result is checked on the parsed documents: the original plus
our entry, nothing else.
"""

from __future__ import annotations

import copy
import fnmatch
import posixpath
import re
import tomllib
from typing import Any

from ..errors import AgentError
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
    return {"runtime_type": "io.containerd.runc.v2", "pod_annotations": list(s.pod_annotations), "options": options}


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
        f"{inner}pod_annotations = [{', '.join(chr(34) + x + chr(34) for x in want['pod_annotations'])}]",
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
        entry["pod_annotations"] = want["pod_annotations"]
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
        table.add("pod_annotations", want["pod_annotations"])
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
        f"  pod_annotations = [{', '.join(chr(34) + x + chr(34) for x in want['pod_annotations'])}]",
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
