"""Which callers the server may serve: only those that could do what a worker does.

A worker acts with the server's rights and in its namespaces (the hooks it runs above all): a
root process in a pod given the host's /run, or a caller with fewer capabilities, runs its call
itself instead. So a peer must have the server's uid (checked by the server on accept), and
the same namespaces, root, capabilities, no_new_privs, seccomp (none) and LSM label.
"""

from __future__ import annotations

import os


def context(pid: int | str) -> tuple[object, ...]:
    """What a process may do: its namespaces, its root, its capabilities, no_new_privs, seccomp, label."""
    base = f"/proc/{pid}"
    names = sorted(n for n in os.listdir(f"{base}/ns") if not n.endswith("_for_children"))
    ns = tuple(os.readlink(f"{base}/ns/{n}") for n in names)
    root = os.stat(f"{base}/root")
    with open(f"{base}/status") as f:
        status = tuple(ln for ln in f.read().splitlines()
                       if ln.startswith(("CapEff:", "CapPrm:", "CapBnd:", "CapInh:", "CapAmb:", "NoNewPrivs:",
                                         "Seccomp:")))
    try:
        with open(f"{base}/attr/current", "rb") as f:
            label = f.read()
    except OSError:
        label = b""  # no LSM
    return (*ns, root.st_dev, root.st_ino, *status, label)


class Peers:
    """The server's own context, read once (it does not change), against which peers are checked."""

    __slots__ = ("_own",)

    def __init__(self) -> None:
        self._own: tuple[object, ...] | None = None

    def same_context(self, peer: int) -> bool:
        try:
            if self._own is None:
                self._own = context("self")
            # two seccomp filters read alike ("Seccomp: 2"): only callers without one are served
            return "Seccomp:\t0" in self._own and context(peer) == self._own
        except OSError:
            return False


def same_context(peer: int) -> bool:
    """One check, for a process that is not the server (tests, tools)."""
    return Peers().same_context(peer)
