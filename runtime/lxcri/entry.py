"""The runtime's entry (bin/lxcri-py, `python -m lxcri`, the frozen tree's program): it decides
between serving and running.

`--warm-server` alone makes this process the warm server (warm/). Anything else is a call,
run here by the CLI (cli/main.py). The C client sets LXCRI_ZYGOTE_MISSING=1 when it found no
server for this installation (the name is the client's, kept for installed clients): once
the call is done, one is started in the background, unless the settings turn it off.
"""

from __future__ import annotations

import os
import sys

MISSING = "LXCRI_ZYGOTE_MISSING"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--warm-server"]:
        from lxcri.warm.server import serve

        return serve()
    missing = os.environ.pop(MISSING, None) == "1"
    from lxcri.cli.main import main as call

    try:
        return call(argv)
    finally:
        if missing:
            _start_server()


def _start_server() -> None:
    from lxcri import settings
    from lxcri.errors import LxcriError

    try:
        on = settings.load().warm_server
    except LxcriError:
        return
    if on:
        from lxcri.warm.server import start_in_background

        start_in_background()
