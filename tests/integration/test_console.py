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
