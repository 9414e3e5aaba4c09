"""linux.seccomp, as the process inside sees it: actions, errno values, arguments, and exec joins it."""

from __future__ import annotations

import os

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
                      "index must be 0..5")):
        b = make_bundle(["true"])
        b.config["linux"]["seccomp"] = bad
        b.save()
        cid = lxcri.new_id()
        r = lxcri.create(b, cid)
        assert r.returncode == 1 and msg in r.stderr, r.stderr
        assert leftovers(cid, lxcri.root) == []
