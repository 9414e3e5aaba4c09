"""process and linux.sysctl -> the liblxc items for what liblxc applies before the init.

rlimits, no_new_privs, oom_score_adj and sysctls are set by liblxc. User, groups,
capabilities, umask, env, argv and the working directory are applied by lxcri's init
helper right before exec (see libexec/src/init_creds.c and init_start.c), so they are not here.
"""

from __future__ import annotations

from lxcri.errors import TranslateError
from lxcri.lxcconf import Items
from lxcri.oci import spec as oci_spec
from lxcri.oci.spec import check_text

RLIMITS = {
    "RLIMIT_AS": "as", "RLIMIT_CORE": "core", "RLIMIT_CPU": "cpu", "RLIMIT_DATA": "data",
    "RLIMIT_FSIZE": "fsize", "RLIMIT_LOCKS": "locks", "RLIMIT_MEMLOCK": "memlock",
    "RLIMIT_MSGQUEUE": "msgqueue", "RLIMIT_NICE": "nice", "RLIMIT_NOFILE": "nofile",
    "RLIMIT_NPROC": "nproc", "RLIMIT_RSS": "rss", "RLIMIT_RTPRIO": "rtprio",
    "RLIMIT_RTTIME": "rttime", "RLIMIT_SIGPENDING": "sigpending", "RLIMIT_STACK": "stack",
}
UNLIMITED = 2**64 - 1


def _limit(v: object, field: str) -> str:
    if not isinstance(v, int) or isinstance(v, bool) or v < 0 or v > UNLIMITED:
        raise TranslateError(f"config.json: {field} must be an integer between 0 and 2^64-1")
    return "unlimited" if v == UNLIMITED else str(v)


def process(config: dict[str, object]) -> Items:
    proc = oci_spec.process(config)
    # liblxc would chdir to the cwd with its own fds open (cgroup dirs, the runtime dir), and
    # process.cwd may say /proc/self/fd/N: a host directory. The init helper enters the cwd
    # once only the container's fds are left, and checks it is inside the root (init_fds.c).
    items: Items = [("lxc.init.cwd", "/")]
    seen: set[str] = set()
    for i, rl in enumerate(proc.get("rlimits") or []):
        if not isinstance(rl, dict) or rl.get("type") not in RLIMITS:
            raise TranslateError(f"config.json: process.rlimits[{i}] has an unknown type {rl!r}")
        if rl["type"] in seen:
            raise TranslateError(f"config.json: rlimit {rl['type']} listed twice")
        seen.add(rl["type"])
        soft = _limit(rl.get("soft"), f"process.rlimits[{i}].soft")
        hard = _limit(rl.get("hard"), f"process.rlimits[{i}].hard")
        if soft != "unlimited" and (hard != "unlimited" and int(soft) > int(hard)):
            raise TranslateError(f"config.json: {rl['type']} soft limit {soft} exceeds the hard limit {hard}")
        items.append((f"lxc.prlimit.{RLIMITS[rl['type']]}", f"{soft}:{hard}"))
    if proc.get("noNewPrivileges"):
        items.append(("lxc.no_new_privs", "1"))
    adj = proc.get("oomScoreAdj")
    if adj is not None:
        if not isinstance(adj, int) or isinstance(adj, bool) or not -1000 <= adj <= 1000:
            raise TranslateError("config.json: process.oomScoreAdj must be an integer in [-1000, 1000]")
        items.append(("lxc.proc.oom_score_adj", str(adj)))
    linux = oci_spec.linux(config)
    sysctl = linux.get("sysctl") or {}
    if not isinstance(sysctl, dict):
        raise TranslateError("config.json: linux.sysctl must be an object")
    for key, value in sysctl.items():
        k = check_text(key, "linux.sysctl key")
        if not k or "/" in k or "=" in k or " " in k:
            raise TranslateError(f"config.json: linux.sysctl key {key!r} is not a sysctl name")
        items.append((f"lxc.sysctl.{k}", check_text(value, f"linux.sysctl[{key}]")))
    return items
