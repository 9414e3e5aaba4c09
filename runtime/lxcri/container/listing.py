"""list: every container under ROOT with its derived status."""

from __future__ import annotations

import os

from lxcri.container.rundir import RunDir
from lxcri.container.status import oci_state, status
from lxcri.errors import NotFoundError
from lxcri.ids import valid_id

TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any


def states(root: str) -> list[dict[str, Any]]:
    out = []
    try:
        names = sorted(os.listdir(root))
    except FileNotFoundError:
        return []
    for name in names:
        if not valid_id(name):
            continue
        try:
            with RunDir.open(root, name) as rd:
                rec = rd.load()
                out.append(oci_state(rec, status(rd, rec)))
        except (NotFoundError, OSError, ValueError, TypeError):
            continue
    return out
