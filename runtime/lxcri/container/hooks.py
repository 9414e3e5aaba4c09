"""Run OCI hooks: the state JSON on stdin, the hook's own argv and env, its timeout honoured."""

from __future__ import annotations

from lxcri.errors import LxcriError, SpecError

TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

    from lxcri.container.helper import Spawner

POINTS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")


def check(hooks: object) -> dict[str, list[dict[str, Any]]]:
    """Validate the hooks section up front, so that a bad hook fails create, not a later step."""
    if not isinstance(hooks, dict):
        raise SpecError("config.json: hooks must be an object")
    out: dict[str, list[dict[str, Any]]] = {}
    for point, entries in hooks.items():
        if point not in POINTS:
            raise SpecError(f"config.json: unknown hook point {point!r}")
        if not isinstance(entries, list):
            raise SpecError(f"config.json: hooks.{point} must be a list")
        for i, h in enumerate(entries):
            where = f"hooks.{point}[{i}]"
            if not isinstance(h, dict) or not isinstance(h.get("path"), str) or not h["path"].startswith("/"):
                raise SpecError(f"config.json: {where}.path must be an absolute path")
            for key in ("args", "env"):
                v = h.get(key, [])
                if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                    raise SpecError(f"config.json: {where}.{key} must be a list of strings")
            t = h.get("timeout")
            if t is not None and (not isinstance(t, int) or isinstance(t, bool) or t <= 0):
                raise SpecError(f"config.json: {where}.timeout must be a positive integer")
        out[point] = entries
    return out


def run(point: str, hooks: list[dict[str, Any]], state: dict[str, Any], spawner: Spawner | None = None) -> None:
    """Run one point's hooks in order; the first failure is the error. `spawner`: the call's,
    which puts a warm worker where a direct call would run hooks (the caller's cgroups)."""
    import subprocess  # only when there are hooks: start and delete stay light

    from lxcri import jsonlite

    if hooks and spawner is not None:
        spawner.before_hooks()

    data = jsonlite.dumps(state).encode()
    for i, h in enumerate(hooks):
        path = h["path"]
        args = h.get("args") or [path]
        env = dict(e.split("=", 1) for e in h.get("env", []) if "=" in e)
        try:
            r = subprocess.run(args, executable=path, input=data, env=env, capture_output=True,
                               timeout=h.get("timeout"), cwd="/", check=False)
        except subprocess.TimeoutExpired as e:
            raise LxcriError(f"{point} hook {i} ({path}) timed out after {h.get('timeout')}s") from e
        except OSError as e:
            raise LxcriError(f"{point} hook {i} ({path}): {e.strerror}") from e
        if r.returncode != 0:
            detail = (r.stderr or r.stdout).decode(errors="replace").strip().splitlines()
            why = f": {detail[-1]}" if detail else ""
            raise LxcriError(f"{point} hook {i} ({path}) failed with status {r.returncode}{why}")
