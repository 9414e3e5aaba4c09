"""Runtime settings: built-in defaults < the installed tree's settings < /etc/lxcri/lxcri.yaml
< LXCRI_* variables < flags.

CRI-O scrubs the environment of the runtime, so nothing may *depend* on
variables; they only override. The YAML file is parsed only when it exists, so
the common path pays no import of yaml.

A runtime the node agent installed (frozen, at ``<prefix>/lib/<id>/lxcri-py``) first reads
``<prefix>/etc/lxcri.json``, which the agent writes: the CRI runtime passes no settings of
its own, and the paths the agent's pod shares with the runtime (the call log it drains, the
lxcfs mount the chart runs) must be the ones the runtime uses. JSON, not YAML: that file
exists on every node the agent serves, and json costs no import the runtime does not pay
anyway. The admin's /etc file still wins.
"""

from __future__ import annotations

import os
import sys

from lxcri.errors import UsageError

CONFIG_FILE = "/etc/lxcri/lxcri.yaml"  # LXCRI_CONFIG names another, read at each load()
DEFAULTS: dict[str, object] = {
    "root": "/run/lxcri",
    "log": "",
    "log_format": "text",
    "debug": False,
    "systemd_cgroup": False,
    "libexec": "",
    "create_timeout": 60.0,  # seconds create waits for the container init to report
    "kill_timeout": 10.0,  # seconds delete waits for the container and its monitor to go
    "warm_server": True,  # short commands run in a fork of a started lxcri (see warm/)
    "lxcfs": False,  # lxcfs views for every container, unless its annotation says otherwise
    "lxcfs_path": "/var/lib/lxcfs",  # where lxcfs is mounted (Debian's default)
    "call_log": "/run/lxcri/calls.log",  # one line per call for the agent's metrics, if it exists
}


def default_libexec() -> str:
    return os.path.join(os.path.dirname(os.path.realpath(__file__)), "libexec", "bin")


class Settings:
    """Plain attributes (no dataclass: its import costs ~5 ms on every call)."""

    root: str
    log: str
    log_format: str
    debug: bool
    systemd_cgroup: bool
    libexec: str
    create_timeout: float
    kill_timeout: float
    warm_server: bool
    lxcfs: bool
    lxcfs_path: str
    call_log: str

    def __init__(self) -> None:
        for k, v in DEFAULTS.items():
            setattr(self, k, v)

    def helper(self, name: str) -> str:
        return os.path.join(self.libexec or default_libexec(), name)


def _coerce(name: str, kind: type, raw: object) -> object:
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        return str(raw).strip().lower() in ("1", "true", "yes", "on")
    try:
        return kind(raw)
    except (TypeError, ValueError) as e:
        raise UsageError(f"setting {name}: invalid value {raw!r}") from e


def installed_config() -> str:
    """``<prefix>/etc/lxcri.json`` of a frozen tree at ``<prefix>/lib/<id>/``; "" when not frozen."""
    if not getattr(sys, "frozen", False):
        return ""
    lib = os.path.dirname(os.path.dirname(sys.executable))
    return os.path.join(os.path.dirname(lib), "etc", "lxcri.json")


def _apply(s: Settings, types: dict[str, type], source: str, data: object) -> None:
    if not isinstance(data, dict):
        raise UsageError(f"{source}: expected a mapping of settings")
    for key, raw in data.items():
        name = str(key).replace("-", "_")
        if name not in types:
            raise UsageError(f"{source}: unknown setting {key!r}")
        setattr(s, name, _coerce(name, types[name], raw))


def load_installed(s: Settings, types: dict[str, type], path: str) -> None:
    """The agent's settings file, when there is one (one failed open otherwise)."""
    try:
        with open(path, "rb") as f:
            text = f.read()
    except FileNotFoundError:
        return
    except OSError as e:
        raise UsageError(f"{path}: {e}") from e
    import json

    try:
        data = json.loads(text)
    except ValueError as e:
        raise UsageError(f"{path}: {e}") from e
    _apply(s, types, path, data)


def load() -> Settings:
    s = Settings()
    types = {k: type(v) for k, v in DEFAULTS.items()}
    installed = installed_config()
    if installed:
        load_installed(s, types, installed)
    config_file = os.environ.get("LXCRI_CONFIG", CONFIG_FILE)
    if os.path.isfile(config_file):
        import yaml

        try:
            with open(config_file) as f:
                data = yaml.safe_load(f) or {}
        except (OSError, yaml.YAMLError) as e:
            raise UsageError(f"{config_file}: {e}") from e
        _apply(s, types, config_file, data or {})
    for name, kind in types.items():
        raw = os.environ.get("LXCRI_" + name.upper())
        if raw is not None:
            setattr(s, name, _coerce(name, kind, raw))
    return s
