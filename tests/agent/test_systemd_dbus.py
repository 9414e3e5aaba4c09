"""Restart/reload through the host's systemd over D-Bus, against a private dbus-daemon.

A fake systemd Manager (jeepney, in a thread) owns ``org.freedesktop.systemd1`` on a bus whose
socket sits where the host's would be under the host root; the agent must find it there, call
RestartUnit/ReloadUnit and wait for the unit to be active again.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lxcri_agent.errors import AgentError
from lxcri_agent.hostfs import HostRoot
from lxcri_agent.install import reload

pytestmark = pytest.mark.skipif(shutil.which("dbus-daemon") is None, reason="needs dbus-daemon (Debian dbus)")

BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>custom</type>
  <listen>unix:path={sock}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"""


@dataclass
class FakeSystemd:
    address: str
    states: dict[str, str] = field(default_factory=dict)  # unit -> ActiveState after a job
    calls: list[tuple[str, str, str]] = field(default_factory=list)
    polled_job: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def serve(self, ready: threading.Event) -> None:
        from jeepney import HeaderFields, MessageType, new_error, new_method_return
        from jeepney.bus_messages import message_bus
        from jeepney.io.blocking import open_dbus_connection

        with open_dbus_connection(bus=self.address) as conn:
            conn.send_and_get_reply(message_bus.RequestName("org.freedesktop.systemd1"))
            ready.set()
            units: dict[str, str] = {}
            job_polls = {"left": 0}
            while not self.stop.is_set():
                try:
                    msg = conn.receive(timeout=0.1)
                except TimeoutError:
                    continue
                if msg.header.message_type != MessageType.method_call:
                    continue
                member = msg.header.fields[HeaderFields.member]
                if member in ("RestartUnit", "ReloadUnit"):
                    unit, mode = msg.body
                    if unit not in self.states:
                        conn.send(new_error(msg, "org.freedesktop.systemd1.NoSuchUnit", "s", (f"{unit} not loaded",)))
                        continue
                    self.calls.append((member, unit, mode))
                    job_polls["left"] = 3  # the job runs for a few polls, then its object is gone
                    conn.send(new_method_return(msg, "o", ("/org/freedesktop/systemd1/job/7",)))
                elif member == "GetUnit":
                    (unit,) = msg.body
                    path = "/org/freedesktop/systemd1/unit/" + unit.replace(".", "_2e")
                    units[path] = unit
                    conn.send(new_method_return(msg, "o", (path,)))
                elif member == "Get" and msg.header.fields[HeaderFields.path].endswith("/job/7"):
                    if job_polls["left"] > 0:
                        job_polls["left"] -= 1
                        self.polled_job += 1
                        conn.send(new_method_return(msg, "v", (("s", "running"),)))
                    else:
                        conn.send(new_error(msg, "org.freedesktop.DBus.Error.UnknownObject"))
                elif member == "Get":
                    unit = units[msg.header.fields[HeaderFields.path]]
                    # while the job runs the unit is deactivating; a finished restart shows the end state
                    state = "deactivating" if job_polls["left"] > 0 else self.states[unit]
                    conn.send(new_method_return(msg, "v", (("s", state),)))
                else:
                    conn.send(new_error(msg, "org.freedesktop.DBus.Error.UnknownMethod"))


@pytest.fixture
def systemd_host(tmp_path: Path) -> Iterator[tuple[Path, FakeSystemd]]:
    root = tmp_path / "host"
    (root / "run/dbus").mkdir(parents=True)
    (root / "run/systemd/system").mkdir(parents=True)
    sock = root / "run/dbus/system_bus_socket"
    conf = tmp_path / "bus.conf"
    conf.write_text(BUS_CONFIG.format(sock=sock))
    daemon = subprocess.Popen(
        ["dbus-daemon", f"--config-file={conf}", "--nofork", "--print-address"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert daemon.stdout is not None
    daemon.stdout.readline()  # printed once the socket listens
    fake = FakeSystemd(f"unix:path={sock}", {"containerd.service": "active", "crio.service": "active"})
    ready = threading.Event()
    t = threading.Thread(target=fake.serve, args=(ready,), daemon=True)
    t.start()
    assert ready.wait(10)
    try:
        yield root, fake
    finally:
        fake.stop.set()
        t.join(5)
        daemon.terminate()
        daemon.wait(10)


def test_restart_and_reload_through_host_systemd(systemd_host: tuple[Path, FakeSystemd]) -> None:
    root, fake = systemd_host
    r = reload.choose(HostRoot(root), {})
    assert isinstance(r, reload.SystemdReloader)
    r.apply("containerd", "restart")
    r.apply("crio", "reload")
    assert fake.calls == [
        ("RestartUnit", "containerd.service", "replace"),
        ("ReloadUnit", "crio.service", "replace"),
    ]
    assert fake.polled_job == 6, "waited for both jobs to finish"


def test_failed_unit_is_reported(systemd_host: tuple[Path, FakeSystemd]) -> None:
    root, fake = systemd_host
    fake.states["containerd.service"] = "failed"
    with pytest.raises(AgentError, match=r"containerd\.service failed after RestartUnit"):
        reload.choose(HostRoot(root), {}).apply("containerd", "restart")


def test_missing_unit_is_reported(systemd_host: tuple[Path, FakeSystemd]) -> None:
    root, fake = systemd_host
    del fake.states["crio.service"]
    with pytest.raises(AgentError, match=r"systemd refused RestartUnit crio\.service"):
        reload.choose(HostRoot(root), {}).apply("crio", "restart")


def test_bus_without_systemd_says_so(tmp_path: Path) -> None:
    root = tmp_path / "host"
    (root / "run/dbus").mkdir(parents=True)
    sock = root / "run/dbus/system_bus_socket"
    conf = tmp_path / "bus.conf"
    conf.write_text(BUS_CONFIG.format(sock=sock))
    daemon = subprocess.Popen(
        ["dbus-daemon", f"--config-file={conf}", "--nofork", "--print-address"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert daemon.stdout is not None
        daemon.stdout.readline()
        with pytest.raises(AgentError, match=r"D-Bus has no systemd to restart containerd\.service"):
            reload.choose(HostRoot(root), {}).apply("containerd", "restart")
    finally:
        daemon.terminate()
        daemon.wait(10)


def test_no_systemd_no_command_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    proc = tmp_path / "proc"
    (proc / "77").mkdir(parents=True)
    (proc / "77" / "comm").write_text("containerd\n")
    r = reload.choose(HostRoot(tmp_path), {}, proc=str(proc))
    with pytest.raises(AgentError, match=r"no systemd.*--restart-cmd"):
        r.apply("containerd", "restart")
    (proc / "77" / "comm").write_text("sleep\n")  # containerd not running: it reads the config at start
    r.apply("containerd", "restart")


def test_configured_command_wins(tmp_path: Path) -> None:
    marker = tmp_path / "restarted"
    r = reload.choose(HostRoot(tmp_path), {"containerd-restart": f"touch {marker}"})
    r.apply("containerd", "restart")
    assert marker.exists()
