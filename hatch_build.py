"""Build step: compile lxcri's C helpers from the sources in the repository.

The in-container init must run inside any rootfs, so it is linked statically.
The monitor links liblxc dynamically (it is one small process per container).
The client is the `lxcri` command (see libexec/src/client.c). Each helper is
compiled from its set of sources below. All land in
runtime/lxcri/libexec/bin, which the wheel ships as artifacts and an editable
install sees in place; the client is also installed as the `lxcri` script.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

HERE = Path(__file__).resolve().parent
SRC = HERE / "runtime" / "lxcri" / "libexec" / "src"
OUT = HERE / "runtime" / "lxcri" / "libexec" / "bin"
CFLAGS = ["-O2", "-Wall", "-Wextra", "-Werror", "-D_GNU_SOURCE", "-fno-strict-aliasing"]


def _pkg_config(*args: str) -> list[str]:
    out = subprocess.run(["pkg-config", *args, "lxc"], check=True, capture_output=True, text=True)
    return shlex.split(out.stdout)


# The sources of each helper: one program may be several units (init.c is its flow, the
# init_*.c units its steps by concern); wire.c is the protocols' framing and fd passing,
# linked into every helper that speaks them (see wire.h). Headers are found beside them.
INIT_SOURCES = ["init.c", "init_sync.c", "init_spec.c", "init_fds.c", "init_mounts.c", "init_creds.c",
                "init_seccomp.c", "init_start.c", "init_exec.c", "wire.c"]
MONITOR_SOURCES = ["monitor.c"]
CLIENT_SOURCES = ["client.c", "client_spawn.c", "wire.c"]


def _sources(names: list[str]) -> list[str]:
    return [str(SRC / n) for n in names]


def build_helpers() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    cc = os.environ.get("CC", "cc")
    # in-container init: static, no libc surprises inside foreign rootfs
    subprocess.run([cc, *CFLAGS, "-static", "-o", str(OUT / "lxcri-init"), *_sources(INIT_SOURCES), "-lseccomp"],
                   check=True)
    subprocess.run(
        [cc, *CFLAGS, *_pkg_config("--cflags"), "-o", str(OUT / "lxcri-monitor"), *_sources(MONITOR_SOURCES),
         *_pkg_config("--libs")],
        check=True,
    )
    # the `lxcri` command itself: hands calls to the warm server, else execs lxcri-py beside it
    subprocess.run([cc, *CFLAGS, "-o", str(OUT / "lxcri-client"), *_sources(CLIENT_SOURCES)], check=True)


class CustomBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        build_helpers()
        build_data["pure_python"] = False
        build_data["infer_tag"] = True


if __name__ == "__main__":
    build_helpers()
