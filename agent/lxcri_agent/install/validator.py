"""``containerd config dump`` as the judge of every containerd config the agent would write:
the node's own containerd when it can be run, else one on the agent's PATH."""

from __future__ import annotations

import os
import subprocess
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import AgentError
from ..hostfs import HostRoot
from .settings import Settings


@dataclass
class Validator:
    """Runs ``containerd --config X config dump``, preferring the node's own containerd:

    * chrooted into the host root, when that works (the host's loader and libc are there):
      imports then resolve to host paths, so only this mode may judge a drop-in;
    * else the host's binary run directly (a DaemonSet that mounts only the binary): the right
      version, reading the candidate file by its path under the host root;
    * else ``binary`` from the agent's own PATH.
    """

    host: HostRoot
    binary: str | None = None  # an explicit containerd on the agent's PATH, used without chroot
    _mode: tuple[str, str] | None = field(default=None, init=False, repr=False)  # (how, binary), found once

    def _host_binary(self) -> str | None:
        for cand in ("/usr/bin/containerd", "/usr/local/bin/containerd"):
            if self.host.real(cand).is_file() and os.access(self.host.real(cand), os.X_OK):
                return cand
        return None

    def _choose(self) -> tuple[str, str]:
        if self._mode is None:
            hb = self._host_binary()
            mode = ("own", self.binary) if self.binary else ("none", "")
            if hb is not None:
                if self._runs(["chroot", str(self.host.root), hb, "--version"]):
                    mode = ("chroot", hb)
                elif self._runs([str(self.host.real(hb)), "--version"]):
                    mode = ("direct", str(self.host.real(hb)))
            self._mode = mode
        return self._mode

    @staticmethod
    def _runs(cmd: list[str]) -> bool:
        try:
            return subprocess.run(cmd, capture_output=True, timeout=30).returncode == 0
        except OSError:
            return False

    def available(self) -> bool:
        return self._choose()[0] != "none"

    def chrooted(self) -> bool:
        return self._choose()[0] == "chroot"

    def hosts_own(self) -> bool:
        """The node's own containerd (its version reads the config as the daemon will)."""
        return self._choose()[0] in ("chroot", "direct")

    def dump(self, host_config: str) -> dict[str, Any]:
        """The effective config containerd would run with; AgentError in containerd's words if not."""
        mode, binary = self._choose()
        if mode == "chroot":
            cmd = ["chroot", str(self.host.root), binary, "--config", host_config, "config", "dump"]
        elif mode in ("direct", "own"):
            cmd = [binary, "--config", str(self.host.real(host_config)), "config", "dump"]
        else:
            raise AgentError("no containerd binary to validate with")
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            msg = (r.stderr.strip().splitlines() or ["(no message)"])[-1]
            raise AgentError(f"containerd rejects {host_config}: {msg}")
        doc = tomllib.loads(r.stdout)
        doc.pop("imports", None)  # lists the files read, differs by construction
        return doc

    def dump_text(self, s: Settings, text: str) -> dict[str, Any]:
        """Dump a candidate config written next to the real one (same dir, so relative imports agree)."""
        real = self.host.real(s.containerd_config)
        try:
            fd, tmp = tempfile.mkstemp(prefix=".config.", suffix=".lxcri-check.toml", dir=real.parent)
            with os.fdopen(fd, "w") as f:
                f.write(text)
        except OSError as err:
            raise self.host.error("write a candidate next to", real, err) from err
        try:
            return self.dump(self.host.host_name(Path(tmp)))
        finally:
            os.unlink(tmp)
