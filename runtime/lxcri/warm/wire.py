"""The warm-server protocol: what the `lxcri` client (libexec/src/client.c) and the warm server
say over the server's unix socket. The C side uses the same bytes.

Where: one server per installation, at SOCK_DIR/<FNV-1a 64 of the entry point's real path>.sock
(the directory keeps its old name, which installed clients look for).

  client -> server   the call: u32 length (little-endian), then CALL_MAGIC, the umask in octal,
                     argc, argv..., the environment..., each NUL-terminated; with it (SCM_RIGHTS)
                     four fds: stdin, stdout, stderr, the working directory
  server -> client   RUN_DIRECT          run the call yourself (nothing was done)
                     RETIRE              the same, and this server exits (new code on disk):
                                         start another
                     WORKER + i32 pid    a worker runs the call; the client forwards signals to it
                     START + u32 length + body, with fds
                                         (from the worker) start a helper for me: path, argc,
                                         args..., then the fd numbers it must have, NUL-terminated
                     EXIT + u32 status   the call's exit status; the end
  client -> server   STARTED + i32 pid   the helper runs, with that pid
                     START_FAILED + i32 -errno

Not to be confused with the helper protocol (libexec/protocol.py), where b"R" means READY:
here it means RETIRE.
"""

from __future__ import annotations

import os
import struct
import sys

TYPE_CHECKING = False

if TYPE_CHECKING:
    import socket

SOCK_DIR = "/run/lxcri-zygote"  # the name client.c and installed clients look for
CALL_MAGIC = b"LXZ3\0"
CALL_FDS = 4  # stdin, stdout, stderr, cwd

RUN_DIRECT = b"D"
RETIRE = b"R"
WORKER = b"W"
START = b"S"
EXIT = b"X"
STARTED = b"P"
START_FAILED = b"E"


def _fnv1a(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def entry_point() -> str:
    """The executable a client falls back to (lxcri-py): the installation's identity."""
    if getattr(sys, "frozen", False):
        return os.path.realpath(sys.executable)
    return os.path.realpath(sys.argv[0])


def socket_path(entry: str) -> str:
    return f"{SOCK_DIR}/{_fnv1a(entry.encode()):016x}.sock"


def call_size(data: bytes) -> int | None:
    """The length a call announces, once its first four bytes are in."""
    if len(data) < 4:
        return None
    size: int = struct.unpack("<I", data[:4])[0]
    return size


class Call:
    """A call as the client sent it (the body after the length)."""

    __slots__ = ("argv", "env", "umask")

    def __init__(self, umask: int, argv: list[str], env: list[bytes]) -> None:
        self.umask = umask
        self.argv = argv
        self.env = env  # KEY=VALUE, as the client's environ had them


def is_call(body: bytes, fds: list[int]) -> bool:
    return body.startswith(CALL_MAGIC) and len(fds) == CALL_FDS


def decode_call(body: bytes) -> Call:
    """ValueError (or IndexError) when the body is not a well-formed call."""
    parts = body.split(b"\0")
    argc = int(parts[2])
    return Call(int(parts[1], 8), [os.fsdecode(a) for a in parts[3:3 + argc]], [p for p in parts[3 + argc:] if p])


def answer(conn: socket.socket, tag: bytes) -> None:
    """A one-byte answer that ends the connection (RUN_DIRECT, RETIRE)."""
    try:
        conn.send(tag)
    except OSError:
        pass
    conn.close()


def worker(pid: int) -> bytes:
    return WORKER + struct.pack("<i", pid)


def exit_status(code: int) -> bytes:
    return EXIT + struct.pack("<I", code & 0xFF)


def start_request(path: str, args: list[str], keep: tuple[int, ...]) -> tuple[bytes, bytes]:
    """START for a helper at path with args and the fds in keep at the same numbers: the bytes,
    and the fds as SCM_RIGHTS data."""
    body = b"".join(f + b"\0" for f in [os.fsencode(path), str(len(args)).encode(), *(os.fsencode(a) for a in args),
                                           *(str(fd).encode() for fd in keep)])
    return START + struct.pack("<I", len(body)) + body, struct.pack(f"{len(keep)}i", *keep)


def read_exact(sock: socket.socket, n: int) -> bytes:
    """n bytes, or EOFError when the other end closes first."""
    raw = b""
    while len(raw) < n:
        chunk = sock.recv(n - len(raw))
        if not chunk:
            raise EOFError
        raw += chunk
    return raw


def read_started(sock: socket.socket) -> tuple[bytes, int]:
    """The client's answer to START: its tag and the pid (STARTED) or -errno (START_FAILED)."""
    tag = read_exact(sock, 1)
    (value,) = struct.unpack("<i", read_exact(sock, 4))
    return tag, int(value)
