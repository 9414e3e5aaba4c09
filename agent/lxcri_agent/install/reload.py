"""Applying a config change: restart containerd, reload or restart CRI-O — only when owed.

The host's systemd is reached over its D-Bus socket (mounted under the host root), with
jeepney, a pure-Python D-Bus implementation: no systemctl, no host binaries, no chroot. Hosts
without systemd name a command in the configuration instead. A host with neither gets a clear
message and the restart stays owed in the manifest, so the next run retries it.
"""

from __future__ import annotations

import shlex
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import AgentError
from ..hostfs import HostRoot

SYSTEMD_SOCKET = "/run/dbus/system_bus_socket"


class Reloader(Protocol):
    def apply(self, service: str, action: str) -> None:
        """Make ``service`` ("containerd" | "crio") pick up its config: action "restart" or "reload"."""


@dataclass
class CommandReloader:
    """Commands from the configuration, e.g. ``nsenter -t 1 -m -- rc-service containerd restart``."""

    commands: dict[str, str]

    def apply(self, service: str, action: str) -> None:
        cmd = self.commands.get(f"{service}-{action}") or self.commands.get(f"{service}-restart")
        if not cmd:
            raise AgentError(f"no command configured to {action} {service}")
        r = subprocess.run(shlex.split(cmd), capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise AgentError(f"{cmd!r} failed ({r.returncode}): {r.stderr.strip()[-300:]}")


@dataclass
class SystemdReloader:
    """systemd's Manager API over the host's system bus: RestartUnit / ReloadUnit, then wait for active."""

    address: str
    units: dict[str, str] = field(default_factory=lambda: {"containerd": "containerd.service", "crio": "crio.service"})
    timeout: float = 120.0

    def _call(self, conn: Any, path: str, iface: str, method: str, sig: str, body: tuple[Any, ...]) -> Any:
        from jeepney import DBusAddress, new_method_call
        from jeepney.wrappers import unwrap_msg

        addr = DBusAddress(path, bus_name="org.freedesktop.systemd1", interface=iface)
        return unwrap_msg(conn.send_and_get_reply(new_method_call(addr, method, sig, body), timeout=30))

    def _prop(self, conn: Any, path: str, iface: str, name: str) -> Any:
        (value,) = self._call(conn, path, "org.freedesktop.DBus.Properties", "Get", "ss", (iface, name))
        return value[1] if isinstance(value, tuple) else value

    def apply(self, service: str, action: str) -> None:
        from jeepney.io.blocking import open_dbus_connection
        from jeepney.wrappers import DBusErrorResponse

        unit = self.units[service]
        method = "ReloadUnit" if action == "reload" else "RestartUnit"
        mgr, mgr_iface = "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager"
        try:
            with open_dbus_connection(bus=self.address) as conn:
                (job,) = self._call(conn, mgr, mgr_iface, method, "ss", (unit, "replace"))
                (unit_path,) = self._call(conn, mgr, mgr_iface, "GetUnit", "s", (unit,))
                deadline = time.monotonic() + self.timeout
                # The unit still reads "active" until the job has stopped it: wait for the job to
                # finish (its object goes away), then for the unit to be active again.
                while True:
                    try:
                        self._prop(conn, job, "org.freedesktop.systemd1.Job", "State")
                        job_done = False
                    except DBusErrorResponse:
                        job_done = True
                    if job_done:
                        value = self._prop(conn, unit_path, "org.freedesktop.systemd1.Unit", "ActiveState")
                        if value == "active":
                            return
                        if value == "failed":
                            raise AgentError(f"{unit} failed after {method}: see journalctl -u {unit} on the node")
                    else:
                        value = "job running"
                    if time.monotonic() > deadline:
                        raise AgentError(f"{unit} not active {self.timeout:.0f}s after {method} ({value})")
                    time.sleep(0.2)
        except DBusErrorResponse as err:
            if err.name == "org.freedesktop.DBus.Error.ServiceUnknown":
                raise AgentError(
                    f"the host's D-Bus has no systemd to {action} {unit}: configure --restart-cmd"
                ) from err
            raise AgentError(f"systemd refused {method} {unit}: {err.name}: {err.data}") from err
        except OSError as err:
            raise AgentError(f"cannot reach the host's systemd at {self.address}: {err}") from err


def running(service: str, proc: str = "/proc") -> bool:
    """Is a process of this CRI runtime alive in our PID namespace (the host's, in the DaemonSet)?"""
    from pathlib import Path

    comm = {"containerd": "containerd", "crio": "crio"}[service]
    for p in Path(proc).glob("[0-9]*/comm"):
        try:
            if p.read_text().strip() == comm:
                return True
        except OSError:
            continue
    return False


@dataclass
class NoReloader:
    """Neither systemd nor a command: say so plainly; the change stays owed. Unless the CRI
    runtime is not running at all (a node being provisioned): it reads the config when it starts,
    so nothing is owed and install does not exit 3."""

    reason: str
    proc: str = "/proc"

    def apply(self, service: str, action: str) -> None:
        if not running(service, self.proc):
            return
        raise AgentError(f"{service} must {action} to use the new config, but {self.reason}")


def choose(host: HostRoot, commands: dict[str, str], socket: str | None = None, proc: str = "/proc") -> Reloader:
    """Configured commands win (the admin knows best); else systemd when its bus socket is there.
    ``proc``: where to look for the CRI runtimes' processes (the settings' LXCRI_PROC, for tests)."""
    if commands:
        return CommandReloader(commands)
    # the socket is what the DaemonSet mounts (not /run/systemd): whether systemd answers on that
    # bus is found out by asking it, and a bus without systemd gets its own message
    sock = host.real(socket or SYSTEMD_SOCKET)
    if sock.exists():
        return SystemdReloader(f"unix:path={sock}")
    return NoReloader(
        proc=proc,
        reason=f"the host has no systemd bus (no {socket or SYSTEMD_SOCKET} under the host root) "
        "and no reload command is configured (--restart-cmd SERVICE=CMD)",
    )
