"""The helper protocol: what lxcri says with its C helpers over a sync socket (a socketpair).

Three kinds of process are at the other end: the container's init (lxcri-init; in exec
mode, the exec helper) and the runner of liblxc's mount hook (`lxcri hook`, which runs
in the container's mount namespace). The C side is libexec/src/ (read_spec() and
reply() in init_sync.c, framing in wire.h); the tags and the framing here are the same bytes.

Framing: a frame is a little-endian u32 length, then that many bytes, whose first is
the tag. The sender's pid comes with the frame as SCM_CREDENTIALS (SO_PASSCRED on
lxcri's end); a frame may carry one fd (SCM_RIGHTS). read_frame() is the one reader.

  from the init or exec helper to lxcri
    HELLO             the init is there (its pid: the credentials); create answers with the spec
    READY             the process is ready (create: waits on the exec fifo; exec: runs)
    ERROR + text      the helper failed; the text is the error the user sees
    PTY + fd          the master of a pty made in the container's devpts
    SECCOMP_LISTENER + fd   the listener of a seccomp filter with SCMP_ACT_NOTIFY
  from the mount hook's runner to lxcri create, and back
    HOST_HOOKS        run prestart and createRuntime on the host, please
    HOOKS_DONE        they ran; ERROR + text: one failed
  from lxcri to the init
    the spec (encode(): its own magic, after the frame length)
    CLONES            one unframed byte, the fds of the host's clones of shared binds with it

Little-endian u32 fields and length-prefixed strings in the spec, so the C side needs no
parser; the exact argv and env survive any bytes but NUL.
"""

from __future__ import annotations

import _socket as socket
import os
import struct

HELLO = b"H"
READY = b"R"
ERROR = b"E"
PTY = b"T"
SECCOMP_LISTENER = b"N"
HOST_HOOKS = b"M"
HOOKS_DONE = b"K"
CLONES = b"F"


def frame(payload: bytes) -> bytes:
    """One frame: the length, then the payload (tag first)."""
    return struct.pack("<I", len(payload)) + payload


def read_frame(sock: socket.socket, fds: list[int] | None = None) -> tuple[bytes, int]:
    """One frame from a helper, with the sender's pid (0 unless SO_PASSCRED is on);
    fds passed with it (SCM_RIGHTS) are appended to `fds`, or closed. EOFError when the
    other end is gone before a whole frame came."""
    pid = 0
    head = b""
    while len(head) < 4:
        data, anc, _flags, _addr = sock.recvmsg(4 - len(head), socket.CMSG_SPACE(12) + socket.CMSG_SPACE(16))
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("iII", payload[:12])[0]
            elif level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                got = list(struct.unpack(f"{len(payload) // 4}i", payload[: len(payload) // 4 * 4]))
                if fds is None:
                    for fd in got:
                        os.close(fd)
                else:
                    fds.extend(got)
        if not data:
            raise EOFError
        head += data
    (n,) = struct.unpack("<I", head)
    body = b""
    while len(body) < n:
        chunk = sock.recv(n - len(body))
        if not chunk:
            raise EOFError
        body += chunk
    return body, pid


def send_clones(sock: socket.socket, fds: list[int]) -> None:
    """The CLONES byte with the fds of the host's clones, in the order of the spec's shared_binds
    (lxcconf.mounts.host_binds)."""
    rights = struct.pack(f"{len(fds)}i", *fds)
    sock.sendmsg([CLONES], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, rights)])


MAGIC = 0x3153584C  # "LXS1"
FLAG_TERMINAL = 1
FLAG_CAPS = 2
FLAG_READONLY = 4
FLAG_NEW_PTY = 8
FLAG_NO_PROCESS = 16
NO_UMASK = 0xFFFFFFFF
EXEC_DETACH = 1
EXEC_NO_NEW_PRIVS = 2


class Hook:
    def __init__(self, path: str, args: list[str], env: list[str], timeout: int = 0) -> None:
        self.path, self.args, self.env, self.timeout = path, args, env, timeout


class InitSpec:
    def __init__(self, args: list[str], env: list[str], terminal: bool = False, umask: int | None = None,
                 preserve_fds: int = 0, uid: int = 0, gid: int = 0, gids: list[int] | None = None,
                 caps: list[int] | None = None, hooks: list[Hook] | None = None, state: str = "{}",
                 target_pid: int = 0, detach: bool = False, no_new_privs: bool = False, cwd: str = "",
                 rlimits: list[tuple[int, int, int]] | None = None, seccomp: bytes = b"\0\0\0\0",
                 domainname: str = "", personality: int | None = None, readonly_root: bool = False,
                 new_pty: bool = False, readonly_paths: list[str] | None = None,
                 propagation: list[tuple[str, int]] | None = None, hostname: str = "",
                 apparmor: str = "", selinux: str = "", shared_binds: list[tuple[str, int]] | None = None,
                 masked_paths: list[str] | None = None, no_process: bool = False,
                 mount_attrs: list[tuple[str, int, int, bool]] | None = None,
                 console_size: tuple[int, int] = (0, 0)) -> None:
        self.args = args
        self.env = env
        self.terminal = terminal
        self.umask = umask
        self.preserve_fds = preserve_fds
        self.uid = uid
        self.gid = gid
        self.gids = gids or []
        self.caps = caps  # bounding, effective, inheritable, permitted, ambient; None: leave as they are
        self.hooks = hooks or []
        self.state = state
        # exec only: whose namespaces to join, and what liblxc does for the init otherwise
        self.target_pid = target_pid
        self.detach = detach
        self.no_new_privs = no_new_privs
        self.cwd = cwd
        self.rlimits = rlimits or []  # (resource number, soft, hard)
        self.seccomp = seccomp  # oci.seccomp.encode(): loaded by the helper right before exec
        self.domainname = domainname  # set by the helper (liblxc has no item for it)
        self.personality = personality  # personality(2) domain, None: leave it
        self.readonly_root = readonly_root  # remount / read-only after pivot_root
        self.new_pty = new_pty  # open a pty in the container's devpts and send lxcri the master
        self.readonly_paths = readonly_paths or []  # linux.readonlyPaths, made read-only by the helper
        self.propagation = propagation or []  # (path, mount(2) propagation flags), in the order to apply
        self.hostname = hostname  # set again by the helper: liblxc sets it only in a uts namespace it made
        self.apparmor = apparmor  # profile the process is exec'd under ("" = the caller's)
        self.selinux = selinux  # SELinux label of the process ("" = the caller's)
        # (destination, MS_RDONLY|MS_NOSUID|MS_NODEV|MS_NOEXEC to set): the helper moves a host
        # clone onto each, its fd sent in an 'F' frame right after the spec, in this order
        self.shared_binds = shared_binds or []
        self.masked_paths = masked_paths or []  # the helper masks the FIFOs and sockets among them
        self.no_process = no_process  # config.json has no process: the helper only waits
        # (destination, MOUNT_ATTR_* to set, to clear, recursive): mount_setattr after the mounts
        self.mount_attrs = mount_attrs or []
        self.console_size = console_size  # (rows, columns) of a new pty, set before the process runs


def _s(v: str) -> bytes:
    b = v.encode("utf-8", "surrogateescape")
    return struct.pack("<I", len(b)) + b


def _v(vs: list[str]) -> bytes:
    return struct.pack("<I", len(vs)) + b"".join(_s(x) for x in vs)


def encode(spec: InitSpec) -> bytes:
    flags = ((FLAG_TERMINAL if spec.terminal else 0) | (FLAG_CAPS if spec.caps is not None else 0)
             | (FLAG_READONLY if spec.readonly_root else 0) | (FLAG_NEW_PTY if spec.new_pty else 0)
             | (FLAG_NO_PROCESS if spec.no_process else 0))
    out = [struct.pack("<IIIIIII", MAGIC, flags, NO_UMASK if spec.umask is None else spec.umask,
                       spec.preserve_fds, spec.uid, spec.gid, len(spec.gids))]
    out.append(b"".join(struct.pack("<I", g) for g in spec.gids))
    for m in spec.caps or [0, 0, 0, 0, 0]:
        out.append(struct.pack("<II", m & 0xFFFFFFFF, m >> 32))
    out.append(_v(spec.args))
    out.append(_v(spec.env))
    out.append(struct.pack("<I", len(spec.hooks)))
    for h in spec.hooks:
        out.append(struct.pack("<I", h.timeout) + _s(h.path) + _v(h.args) + _v(h.env))
    out.append(_s(spec.state))
    # NO_NEW_PRIVS also tells the helper when it may load seccomp (see load_seccomp in init_seccomp.c)
    out.append(struct.pack("<II", spec.target_pid, (EXEC_DETACH if spec.detach else 0)
                           | (EXEC_NO_NEW_PRIVS if spec.no_new_privs else 0)))
    out.append(_s(spec.cwd))
    out.append(struct.pack("<I", len(spec.rlimits)))
    for res, soft, hard in spec.rlimits:
        out.append(struct.pack("<IIIII", res, soft & 0xFFFFFFFF, soft >> 32, hard & 0xFFFFFFFF, hard >> 32))
    out.append(spec.seccomp)
    out.append(_s(spec.domainname))
    out.append(struct.pack("<I", NO_UMASK if spec.personality is None else spec.personality))
    out.append(_v(spec.readonly_paths))
    out.append(struct.pack("<I", len(spec.propagation)))
    for path, pflags in spec.propagation:
        out.append(struct.pack("<I", pflags) + _s(path))
    out.append(_s(spec.hostname))
    out.append(_s(spec.apparmor) + _s(spec.selinux))
    out.append(struct.pack("<I", len(spec.shared_binds)))
    for dest, mflags in spec.shared_binds:
        out.append(struct.pack("<I", mflags) + _s(dest))
    out.append(_v(spec.masked_paths))
    out.append(struct.pack("<I", len(spec.mount_attrs)))
    for dest, attr_set, attr_clr, recursive in spec.mount_attrs:
        out.append(struct.pack("<III", attr_set, attr_clr, 1 if recursive else 0) + _s(dest))
    out.append(struct.pack("<II", *(min(max(int(v), 0), 0xFFFF) for v in spec.console_size)))
    body = b"".join(out)
    return frame(body)
