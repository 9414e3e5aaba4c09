"""--console-socket: the pty master reaches the caller over a unix socket (SCM_RIGHTS), as with runc."""

from __future__ import annotations

import array
import os
import socket
import threading
import time

from lxcri_testlib import reap


def receive_master(path):
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(path))
    srv.listen(1)
    got = {}

    def accept():
        conn, _ = srv.accept()
        fds = array.array("i")
        msg, anc, _, _ = conn.recvmsg(1024, socket.CMSG_SPACE(fds.itemsize))
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(data[: fds.itemsize])
        got["fd"] = fds[0]
        got["name"] = msg
        conn.close()
        srv.close()

    t = threading.Thread(target=accept)
    t.start()
    return t, got


def read_all(fd, until, timeout=10):
    buf = b""
    end = time.time() + timeout
    os.set_blocking(fd, False)
    while time.time() < end and until not in buf:
        try:
            buf += os.read(fd, 4096)
        except BlockingIOError:
            time.sleep(0.02)
        except OSError:
            break
    return buf


def test_console_socket_gives_a_real_tty(lxcri, make_bundle, tmp_path):
    b = make_bundle(["sh", "-c", "test -t 0 && test -t 1 && echo IS-A-TTY; stty size; read line; echo got:$line"])
    b.config["process"]["terminal"] = True
    b.config["process"]["consoleSize"] = {"height": 33, "width": 111}
    b.save()
    sock = tmp_path / "console.sock"
    t, got = receive_master(sock)
    cid = lxcri.new_id()
    pidf = tmp_path / "pid"
    r = lxcri.create(b, cid, pid_file=pidf, extra=("--console-socket", str(sock)))
    assert r.returncode == 0, r.stderr
    t.join(5)
    master = got["fd"]
    lxcri("start", cid, check=True)
    os.write(master, b"hello\n")
    out = read_all(master, b"got:hello")
    assert b"IS-A-TTY" in out
    assert b"33 111" in out
    assert b"got:hello" in out
    assert os.WEXITSTATUS(reap(int(pidf.read_text()))) == 0
    os.close(master)


def test_exec_terminal_without_console_socket_as_crio_runs_it(lxcri, make_bundle, tmp_path):
    """CRI-O's `kubectl exec -t`: `exec --process F` in the foreground, "terminal": true, no console
    socket, stdio a pty that is already the controlling terminal of lxcri's own session (CRI-O
    starts the runtime with setsid and that pty). The process must still get a terminal of its
    own that it controls (/dev/tty opens), in the container's /dev/pts, with the caller's size;
    input reaches it and its exit code comes back."""
    import fcntl
    import json
    import pty
    import struct
    import subprocess
    import termios

    from lxcri_testlib import LXCRI

    b = make_bundle(["sleep", "100"])
    cid = lxcri.new_id()
    assert lxcri.create(b, cid).returncode == 0
    lxcri("start", cid, check=True)
    proc = dict(b.config["process"], terminal=True,
                args=["sh", "-c", "tty; echo via-dev-tty > /dev/tty && echo ctty-ok; stty size; read line; "
                              "echo got:$line; exit 6"])
    pf = tmp_path / "process.json"
    pf.write_text(json.dumps(proc))
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 27, 91, 0, 0))

    def own_session_and_tty():
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    p = subprocess.Popen([str(LXCRI), "--root", str(lxcri.root), "exec", "--process", str(pf), cid],
                         stdin=slave, stdout=slave, stderr=slave, preexec_fn=own_session_and_tty)
    os.close(slave)
    out = read_all(master, b"27 91")
    os.write(master, b"hello\r")
    out += read_all(master, b"got:hello")
    assert p.wait(timeout=30) == 6, out
    os.close(master)
    text = out.decode(errors="replace")
    assert "/dev/pts/" in text and "not a tty" not in text, text
    assert "ctty-ok" in text and "via-dev-tty" in text, text
    assert "27 91" in text, text
    assert "got:hello" in text, text
