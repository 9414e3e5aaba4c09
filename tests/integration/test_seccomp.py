"""linux.seccomp, as the process inside sees it: actions, errno values, arguments, and exec joins it."""

from __future__ import annotations

import array
import fcntl
import json
import os
import select
import socket
import struct
import threading

from lxcri_testlib import leftovers, reap

ARCHES = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]


def run_with(lxcri, make_bundle, tmp_path, script, seccomp, nnp=True):
    b = make_bundle(["sh", "-c", script])
    b.config["linux"]["seccomp"] = seccomp
    b.config["process"]["noNewPrivileges"] = nnp
    b.save()
    cid = lxcri.new_id()
    r = lxcri.create(b, cid, pid_file=tmp_path / f"{cid}.pid")
    assert r.returncode == 0, r.stderr
    lxcri("start", cid, check=True)
    status = reap(int((tmp_path / f"{cid}.pid").read_text()))
    return b, cid, status, (b.path / "out").read_text() + (b.path / "out.err").read_text()


def test_errno_values_and_filter_mode(lxcri, make_bundle, tmp_path):
    sc = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ARCHES,
          "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
                       {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO"}]}
    for nnp in (True, False):  # without no_new_privs the helper loads it while still privileged
        _, _, status, out = run_with(lxcri, make_bundle, tmp_path,
                                     "mkdir /tmp/x; rmdir /; grep '^Seccomp:' /proc/self/status", sc, nnp)
        assert os.WEXITSTATUS(status) == 0
        assert "Function not implemented" in out  # errnoRet 38 (ENOSYS)
        assert "Operation not permitted" in out  # the default errno is EPERM
        assert "Seccomp:\t2" in out  # filter mode


def test_default_errno_with_allow_list_and_args(lxcri, make_bundle, tmp_path):
    # deny by default; allow what busybox sh needs; personality only with one argument value
    allowed = ["read", "write", "exit", "exit_group", "execve", "brk", "mmap", "munmap", "arch_prctl",
               "set_tid_address", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "getpid", "getppid", "getuid",
               "geteuid", "getgid", "getegid", "fcntl", "dup2", "close", "wait4", "fork", "vfork", "clone",
               "clone3", "ioctl", "newfstatat", "fstat", "stat", "lstat", "openat", "open", "access", "prlimit64",
               "readlink", "getcwd", "uname", "set_robust_list", "rseq", "mprotect", "getdents64", "lseek",
               "pread64", "sigaltstack", "futex", "gettid", "tgkill", "kill", "chdir", "pipe", "pipe2", "dup",
               "dup3", "faccessat", "faccessat2", "statx", "setpgid", "getpgrp", "getpgid", "poll", "ppoll"]
    sc = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 13, "architectures": ARCHES,
          "syscalls": [{"names": allowed, "action": "SCMP_ACT_ALLOW"},
                       {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                        "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]}]}
    _, _, status, out = run_with(lxcri, make_bundle, tmp_path, "echo allowed; mkdir /tmp/y; echo done", sc)
    assert os.WEXITSTATUS(status) == 0
    assert "allowed" in out and "done" in out
    assert "Permission denied" in out  # mkdir: the default action's errno 13 (EACCES)


def test_kill_process_action(lxcri, make_bundle, tmp_path):
    sc = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ARCHES,
          "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL_PROCESS"}]}
    _, _, status, _ = run_with(lxcri, make_bundle, tmp_path, "exec mkdir /tmp/z", sc)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == 31  # SIGSYS, seen by the caller


def test_exec_joins_the_containers_filter(lxcri, make_bundle):
    b = make_bundle(["sleep", "100"])
    b.config["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ARCHES,
                                    "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                                                  "errnoRet": 38}]}
    b.save()
    cid = lxcri.new_id()
    lxcri.create(b, cid)
    lxcri("start", cid, check=True)
    r = lxcri("exec", cid, "sh", "-c", "mkdir /tmp/q")
    assert r.returncode == 1 and "Function not implemented" in r.stderr


def test_bad_seccomp_is_refused_cleanly(lxcri, make_bundle):
    for bad, msg in (({"defaultAction": "SCMP_ACT_NOPE"}, "unknown seccomp action"),
                     ({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_Z80"]}, "unknown"),
                     ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO",
                                                                        "args": [{"index": 9, "op": "SCMP_CMP_EQ"}]}]},
                      "index must be 0..5"),
                     ({"defaultAction": "SCMP_ACT_ALLOW",
                       "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]},
                      "needs linux.seccomp.listenerPath"),
                     ({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/run/x.sock"},
                      "cannot be the default action"),
                     ({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/x.sock",
                       "syscalls": [{"names": ["write"], "action": "SCMP_ACT_NOTIFY"}]}, "cannot be used for write")):
        b = make_bundle(["true"])
        b.config["linux"]["seccomp"] = bad
        b.save()
        cid = lxcri.new_id()
        r = lxcri.create(b, cid)
        assert r.returncode == 1 and msg in r.stderr, r.stderr
        assert leftovers(cid, lxcri.root) == []


# <linux/seccomp.h>: struct seccomp_notif is 80 bytes, struct seccomp_notif_resp 24
NOTIF_RECV, NOTIF_SEND = 0xC0502100, 0xC0182101
EXDEV = 18


class Listener(threading.Thread):
    """A seccomp agent at listenerPath: takes the fd and the state, fails each notified syscall with EXDEV."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(4)
        self.sock.settimeout(20)
        self.states, self.syscalls = [], []

    def run(self):
        fds = []
        try:
            while len(self.states) < 2:  # the container's init, then an exec
                conn, _ = self.sock.accept()
                fdarr = array.array("i")
                msg, anc, _, _ = conn.recvmsg(65536, socket.CMSG_SPACE(4))
                for level, kind, data in anc:
                    if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                        fdarr.frombytes(data[: len(data) - len(data) % 4])
                self.states.append(json.loads(msg))
                fds += list(fdarr)
                conn.close()
                self.serve(fds, 0.2)
            self.serve(fds, 3)
        except (OSError, TimeoutError):
            pass

    def serve(self, fds, timeout):
        while True:
            ready, _, _ = select.select(fds, [], [], timeout)
            if not ready:
                return
            for fd in ready:
                buf = bytearray(80)
                try:
                    fcntl.ioctl(fd, NOTIF_RECV, buf)
                except OSError:
                    fds.remove(fd)
                    continue
                nid, _pid, _flags, nr = struct.unpack_from("<QIIi", buf)
                self.syscalls.append(nr)
                fcntl.ioctl(fd, NOTIF_SEND, bytearray(struct.pack("<QqiI", nid, 0, -EXDEV, 0)))


def test_notify_hands_syscalls_to_the_listener(lxcri, make_bundle, tmp_path):
    listener = Listener(tmp_path / "agent.sock")
    listener.start()
    sc = {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": str(tmp_path / "agent.sock"),
          "listenerMetadata": "pod=web", "architectures": ARCHES,
          "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]}
    b = make_bundle(["sh", "-c", "mkdir /tmp/a; sleep 30"])
    b.config["linux"]["seccomp"] = sc
    b.save()
    cid = lxcri.new_id()
    pidf = tmp_path / "pid"
    r = lxcri.create(b, cid, pid_file=pidf)
    assert r.returncode == 0, r.stderr
    init = int(pidf.read_text())
    lxcri("start", cid, check=True)
    e = lxcri("exec", cid, "mkdir", "/tmp/b")
    assert e.returncode != 0 and "Invalid cross-device link" in e.stderr, e.stderr
    lxcri("kill", cid, "KILL", check=True)
    reap(init)
    listener.join(10)
    out = (b.path / "out").read_text() + (b.path / "out.err").read_text()
    assert "Invalid cross-device link" in out  # the container's own mkdir, answered by the listener
    first, second = listener.states
    assert first["fds"] == ["seccompFd"] and first["metadata"] == "pod=web"
    assert first["pid"] == init and first["state"]["id"] == cid and first["state"]["status"] == "creating"
    assert second["state"]["status"] == "running" and second["pid"] != init
    assert len(listener.syscalls) == 2
