"""A foreground exec as CRI-O runs one: with a pty of the caller's as stdio and no console socket
(critest "exec with tty=true"), and killed when it times out (critest "execSync with timeout")."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import struct
import subprocess
import termios
import time
from pathlib import Path

from test_console import read_all
from test_operations import running

from lxcri_testlib import LXCRI


def _processes_named(args: str) -> list[int]:
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if (p / "cmdline").read_bytes().replace(b"\0", b" ").strip() == args.encode():
                    out.append(int(p.name))
            except OSError:
                pass
    return out


def test_tty_exec_on_the_callers_pty(lxcri, make_bundle, tmp_path):
    _, cid = running(lxcri, make_bundle)
    script = "test -t 0 && test -t 1 && echo IS-A-TTY; stty size; read x; echo got:$x; exit 3"
    process = {"terminal": True, "cwd": "/", "env": ["PATH=/bin:/usr/bin"], "user": {"uid": 0, "gid": 0},
               "args": ["sh", "-c", script]}
    (tmp_path / "process.json").write_text(json.dumps(process))
    master, peer = os.openpty()
    fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 27, 91, 0, 0))

    def own_terminal() -> None:  # CRI-O's way: the pty is the controlling terminal of the runtime's session
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    p = subprocess.Popen([str(LXCRI), "--root", str(lxcri.root), "exec", "--process", str(tmp_path / "process.json"),
                          cid], stdin=peer, stdout=peer, stderr=peer, start_new_session=True, preexec_fn=own_terminal)
    os.close(peer)
    out = read_all(master, b"27 91")
    os.write(master, b"hello\n")
    out += read_all(master, b"got:hello")
    assert p.wait(timeout=30) == 3, out
    assert b"IS-A-TTY" in out and b"27 91" in out, out  # a terminal, with the caller's window size
    assert out.count(b"hello") == 2, out  # echoed once, by the inner pty: ours was put into raw mode
    os.close(master)


def test_killed_foreground_exec_takes_its_process(lxcri, make_bundle):
    _, cid = running(lxcri, make_bundle)
    p = subprocess.Popen([str(LXCRI), "--root", str(lxcri.root), "exec", cid, "sleep", "4321"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    end = time.time() + 10
    while not _processes_named("sleep 4321") and time.time() < end:
        time.sleep(0.02)
    assert _processes_named("sleep 4321"), "the exec'd process never ran"
    p.send_signal(signal.SIGKILL)  # what CRI-O does when an ExecSync times out
    p.wait(timeout=10)
    end = time.time() + 5
    while _processes_named("sleep 4321") and time.time() < end:
        time.sleep(0.02)
    assert not _processes_named("sleep 4321"), "the exec'd process outlived the killed lxcri exec"
    # the container itself runs on
    assert lxcri.state(cid)["status"] == "running"
