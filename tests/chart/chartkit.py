"""Helpers for the chart tests (a uniquely named module: test modules import it directly)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHART = Path(__file__).resolve().parents[2] / "charts" / "lxcri"
Objects = list[dict[str, Any]]


def one(objects: Objects, kind: str, name: str | None = None) -> dict[str, Any]:
    """The single object of that kind (and name): fails the test if there are none or several."""
    found = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, got {len(found)}"
    return found[0]
