"""Load a bundle's config.json and check the parts lxcri relies on.

The bundle comes from the caller and lxcri runs as root, so the checks are about
what could hurt: types that would crash the translation, values that would
inject liblxc config lines (newlines, NULs), a rootfs that is not a directory.
Each failure names the field, in the user's terms.
"""

from __future__ import annotations

import os

from lxcri import jsonlite
from lxcri.errors import SpecError
from lxcri.text import control_char

TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

MAX_CONFIG = 16 << 20


def section(config: dict[str, Any], key: str) -> dict[str, Any]:
    """config[key] when it is an object, else an empty one (absent or null): the one way into a
    section, instead of `config.get(key) or {}` at every reader."""
    v = config.get(key)
    return v if isinstance(v, dict) else {}


def linux(config: dict[str, Any]) -> dict[str, Any]:
    return section(config, "linux")


def process(config: dict[str, Any]) -> dict[str, Any]:
    return section(config, "process")


def hooks(config: dict[str, Any]) -> dict[str, Any]:
    return section(config, "hooks")


def root(config: dict[str, Any]) -> dict[str, Any]:
    return section(config, "root")


def user(process: dict[str, Any]) -> dict[str, Any]:
    return section(process, "user")


class Bundle:
    def __init__(self, path: str, config: dict[str, Any], rootfs: str) -> None:
        self.path = path  # absolute
        self.config = config
        self.rootfs = rootfs  # absolute, symlinks resolved

    @property
    def process(self) -> dict[str, Any]:
        return process(self.config)

    @property
    def linux(self) -> dict[str, Any]:
        return linux(self.config)

    @property
    def annotations(self) -> dict[str, str]:
        return dict(section(self.config, "annotations"))

    @property
    def hooks(self) -> dict[str, list[dict[str, Any]]]:
        return hooks(self.config)


def _expect(cond: bool, msg: str, field: str = "") -> None:
    if not cond:
        raise SpecError(msg, field=field)


def check_text(value: object, field: str) -> str:
    """A string that may go into liblxc config (one `key = value` line, which liblxc ends at
    \n or \r) or a path: no control characters at all."""
    _expect(isinstance(value, str), f"config.json: {field} must be a string", field)
    assert isinstance(value, str)
    bad = control_char(value)
    _expect(bad is None, f"config.json: {field} must not contain newlines or other control characters "
                         f"(found {bad!r})", field)
    return value


def _strings(value: object, field: str) -> list[str]:
    _expect(isinstance(value, list) and all(isinstance(v, str) for v in value),
            f"config.json: {field} must be a list of strings", field)
    assert isinstance(value, list)
    _expect(all("\0" not in v for v in value), f"config.json: {field} must not contain NUL bytes", field)
    return value


def check_process(process: Any, where: str = "process") -> None:
    _expect(isinstance(process, dict), f"config.json: {where} must be an object")
    from lxcri.oci.schema import check_process_shape

    check_process_shape(process, where)
    args = process.get("args")
    _expect(args is not None, f"{where}.args is missing: nothing to run", f"{where}.args")
    _strings(args, f"{where}.args")
    _expect(len(args) > 0 and args[0] != "", f"{where}.args is empty: nothing to run", f"{where}.args")
    _strings(process.get("env", []), f"{where}.env")
    cwd = process.get("cwd", "/")
    check_text(cwd, f"{where}.cwd")
    _expect(cwd.startswith("/"), f"{where}.cwd must be an absolute path, got {cwd!r}", f"{where}.cwd")
    user = process.get("user", {})
    _expect(isinstance(user, dict), f"{where}.user must be an object")
    for k in ("uid", "gid", "umask"):
        if k in user:
            _expect(isinstance(user[k], int) and not isinstance(user[k], bool) and user[k] >= 0,
                    f"{where}.user.{k} must be a non-negative integer")
    gids = user.get("additionalGids", [])
    _expect(isinstance(gids, list) and all(isinstance(g, int) and g >= 0 for g in gids),
            f"{where}.user.additionalGids must be a list of non-negative integers")
    _expect(isinstance(process.get("terminal", False), bool), f"{where}.terminal must be a boolean")


PERSONALITIES = {"LINUX": 0x0000, "LINUX32": 0x0008}


def personality(process: dict[str, Any]) -> int | None:
    """process.personality as a personality(2) value (flags are not supported by any runtime today)."""
    p = process.get("personality")
    if p is None:
        return None
    _expect(isinstance(p, dict) and p.get("domain") in PERSONALITIES,
            "config.json: process.personality.domain must be LINUX or LINUX32")
    _expect(not p.get("flags"), "config.json: process.personality.flags are not supported")
    return PERSONALITIES[p["domain"]]


def lsm_enabled(name: str) -> bool:
    try:
        with open("/sys/kernel/security/lsm") as f:
            return name in f.read().strip().split(",")
    except OSError:
        return False


def check_lsm(config: dict[str, Any]) -> tuple[str, str]:
    """process.apparmorProfile and process.selinuxLabel (plus linux.mountLabel): applied where the
    host has the LSM, refused with the host's lack named where it has not (as runc fails there).

    Returns (AppArmor profile, SELinux label) for the init helper, which asks for them on its
    execve through /proc/thread-self/attr, as runc does.
    """
    proc, lx = process(config), linux(config)
    if lx.get("mountLabel"):
        check_text(lx["mountLabel"], "linux.mountLabel")  # refused even where it is then ignored
    if lx.get("mountLabel") and not lsm_enabled("selinux"):
        # a label for files has no meaning without SELinux (crun and go-selinux ignore it too);
        # the option would make the kernel refuse the mounts
        from lxcri import log

        log.warning("linux.mountLabel ignored: this host has no SELinux", label=str(lx.pop("mountLabel")))
    for value, lsm, field in ((proc.get("apparmorProfile"), "apparmor", "process.apparmorProfile"),
                              (proc.get("selinuxLabel"), "selinux", "process.selinuxLabel"),
                              (lx.get("mountLabel"), "selinux", "linux.mountLabel")):
        if value:
            check_text(value, field)
            if not lsm_enabled(lsm):
                name = "AppArmor" if lsm == "apparmor" else "SELinux"
                raise SpecError(f"config.json: {field} {value!r}: this host has no {name}", field=field)
    return proc.get("apparmorProfile") or "", proc.get("selinuxLabel") or ""


def load_bundle(bundle_dir: str, need_process: bool = True) -> Bundle:
    path = os.path.abspath(bundle_dir)
    _expect(os.path.isdir(path), f"bundle {path}: not a directory")
    cfg_path = os.path.join(path, "config.json")
    try:
        fd = os.open(cfg_path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except FileNotFoundError as e:
        raise SpecError(f"bundle {path}: no config.json") from e
    except OSError as e:
        raise SpecError(f"bundle {path}: cannot open config.json: {e.strerror}") from e
    with os.fdopen(fd, "rb") as f:
        raw = f.read(MAX_CONFIG + 1)
    _expect(len(raw) <= MAX_CONFIG, f"{cfg_path}: larger than {MAX_CONFIG} bytes")
    try:
        config = jsonlite.loads(raw.decode())
    except (ValueError, UnicodeDecodeError, RecursionError):
        import json  # only now: the full parser's error says where the JSON is broken

        try:
            config = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as e:
            raise SpecError(f"{cfg_path}: invalid JSON: {e}") from e
        except RecursionError as e:
            raise SpecError(f"{cfg_path}: nested too deeply to be a container config") from e
    _expect(isinstance(config, dict), f"{cfg_path}: the top level must be an object")
    from lxcri.oci.schema import check_config

    config = check_config(config)  # every field's type and range, named; nulls read as absent
    _expect(isinstance(config.get("ociVersion"), str), "config.json: ociVersion is missing")
    root = config.get("root")
    _expect(isinstance(root, dict) and isinstance(root.get("path"), str) and root["path"] != "",
            "config.json: root.path is missing")
    assert isinstance(root, dict)
    rootfs = os.path.join(path, check_text(root["path"], "root.path"))
    _expect(os.path.isdir(rootfs), f"rootfs {rootfs}: no such directory")
    if need_process or "process" in config:
        _expect("process" in config, "config.json: process is missing: nothing to run")
        check_process(config["process"])
    hostname = config.get("hostname")
    if hostname is not None:
        check_text(hostname, "hostname")
    for key in ("mounts",):
        _expect(isinstance(config.get(key, []), list), f"config.json: {key} must be a list")
    linux = config.get("linux", {})
    _expect(isinstance(linux, dict), "config.json: linux must be an object")
    _expect(isinstance(config.get("annotations", {}), dict), "config.json: annotations must be an object")
    _expect(isinstance(config.get("hooks", {}), dict), "config.json: hooks must be an object")
    return Bundle(path=path, config=config, rootfs=os.path.realpath(rootfs))


def read_config(bundle_dir: str) -> dict[str, Any]:
    """A bundle's config.json as it is now, for a container whose validated spec was not kept
    (created by an lxcri before the runtime dir held spec.json)."""
    try:
        with open(os.path.join(bundle_dir, "config.json")) as f:
            cfg = jsonlite.loads(f.read())
    except (OSError, ValueError) as e:
        raise SpecError(f"cannot read the container's config.json: {e}") from e
    return cfg if isinstance(cfg, dict) else {}
