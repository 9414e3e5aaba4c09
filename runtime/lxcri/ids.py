"""Container IDs: what a name must look like before anything (a path, a cgroup) is derived from it.

Its own module, below every layer that derives something from an ID (the runtime dir, the
cgroup path), so that none of them reaches up into another to check one.
"""

from __future__ import annotations

from lxcri.errors import UsageError

# runc's rule, tightened: no slash, no leading dot, so no ID can name a path outside ROOT
_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_+-.")


def valid_id(cid: str) -> bool:
    return 0 < len(cid) <= 1024 and not cid.startswith(".") and set(cid) <= _ID_CHARS


def check_id(cid: str) -> str:
    if not valid_id(cid):
        raise UsageError(f"invalid container ID {cid!r}: use letters, digits and _+-. (not starting with a dot)",
                         field="id", cid=cid)
    return cid
