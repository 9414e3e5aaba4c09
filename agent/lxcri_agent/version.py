"""The agent's version, recorded in the manifest so that an upgrade knows what it replaces."""

from __future__ import annotations


def agent_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lxcri")
    except PackageNotFoundError:
        return "0+unknown"
