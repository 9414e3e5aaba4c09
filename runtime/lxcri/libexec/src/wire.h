/*
 * wire.h: the two protocols the C helpers speak with the Python runtime, defined
 * once for C, and the one implementation of their framing and fd passing.
 *
 * Every tag and number here has a twin on the Python side; change one, change
 * both, in the same commit. There is no version negotiation: the helpers ship in
 * the package whose Python speaks to them, and the warm server retires when the
 * client's binary changes on disk.
 *
 *   1. The sync socket (SYNC_*): lxcri create and lxcri exec <-> lxcri-init (and
 *      the mount hook, libexec/hook.py, which is Python on both ends). The Python
 *      mirror of this protocol: runtime/lxcri/libexec/protocol.py (the spec and its
 *      flags), with the frames read in container/create.py and container/exec.py.
 *   2. The warm socket (WARM_*): the `lxcri` client <-> the warm server. The Python
 *      mirror of this protocol: runtime/lxcri/warm/wire.py.
 *
 * Tags are one byte, named for what they carry: the same byte may mean different
 * things on the two sockets ('R' is "ready" on one, "retire" on the other).
 * Numbers on both sockets are little-endian (Python's struct "<I" and "<i"), on
 * any host; fds travel as SCM_RIGHTS with the first byte of their message.
 */
#ifndef LXCRI_WIRE_H
#define LXCRI_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- 1. The sync socket: lxcri create / exec <-> lxcri-init ----
 *
 * Frames to lxcri: a u32 length, then that many bytes; the first is the tag. The
 * receiver has SO_PASSCRED, so every frame also tells lxcri the sender's pid as
 * the host sees it. A frame carrying an fd is exactly 1 byte long (just its tag).
 */
#define SYNC_HELLO 'H'            /* init: I exist (lxcri learns the init's pid) */
#define SYNC_READY 'R'            /* init: set up; waiting for start (create) or about to exec (exec) */
#define SYNC_ERROR 'E'            /* init: it failed; the rest of the frame says why */
#define SYNC_PTY_MASTER 'T'       /* init: the master of a new pty in the container's devpts, as an fd */
#define SYNC_SECCOMP_LISTENER 'N' /* init: the listener fd of a filter with SCMP_ACT_NOTIFY */
#define SYNC_HOOK_REQUEST 'M'     /* mount hook: run prestart and createRuntime on the host (Python only) */
#define SYNC_HOOK_DONE 'K'        /* lxcri's answer to it: they ran; SYNC_ERROR with text if not (Python only) */

/* From lxcri to the init: the spec, a u32 length and a body that opens with this
 * magic (read_spec() in init_spec.c; encode() in protocol.py), then, if the spec
 * names shared bind mounts, one bare byte SYNC_SHARED_MOUNTS (no length) carrying
 * their fds, in the spec's order. */
#define SYNC_SPEC_MAGIC 0x3153584cu /* "LXS1" */
#define SYNC_SPEC_MAX (64u << 20)
#define SYNC_SHARED_MOUNTS 'F'

/* the spec's flags (protocol.py's FLAG_*, EXEC_*, NO_UMASK) */
#define FLAG_TERMINAL 1u
#define FLAG_CAPS 2u
#define FLAG_READONLY 4u
#define FLAG_NEW_PTY 8u
#define FLAG_NO_PROCESS 16u /* config.json has no process: wait, never exec (start refuses) */
#define NO_UMASK 0xffffffffu
#define NO_PERSONALITY 0xffffffffu /* protocol.py sends NO_UMASK's value for "leave it" */
#define EXEC_DETACH 1u
#define EXEC_NO_NEW_PRIVS 2u

/* ---- 2. The warm socket: the lxcri client <-> the warm server ----
 *
 * One server per installation listens at WARM_SOCK_DIR/<FNV-1a 64 of the Python
 * entry's real path, 16 hex digits>.sock.
 *
 * The call (client -> server): a u32 length, then NUL-terminated strings:
 * WARM_CALL_MAGIC, the umask in octal, argc, the arguments, then the environment;
 * WARM_CALL_FDS fds go with it: stdin, stdout, stderr and the working directory.
 *
 * The server answers with one tag:
 *   WARM_RUN_HERE          nothing was done: run the call yourself;
 *   WARM_RETIRING          the same, and the server retires (new code on disk);
 *   WARM_WORKER, i32 pid   a worker runs the call; then, any number of times,
 *     WARM_SPAWN (the fds come with this byte), u32 length, body: start a helper
 *       (client_spawn.c), which the client answers WARM_SPAWNED, i32 pid or
 *       WARM_SPAWN_FAILED, i32 -errno;
 *   and last WARM_EXIT_STATUS, u32 status.
 */
#define WARM_SOCK_DIR "/run/lxcri-zygote"
#define WARM_CALL_MAGIC "LXZ3"
#define WARM_CALL_FDS 4
#define WARM_RUN_HERE 'D'
#define WARM_RETIRING 'R'
#define WARM_WORKER 'W'
#define WARM_SPAWN 'S'
#define WARM_EXIT_STATUS 'X'
#define WARM_SPAWNED 'P'
#define WARM_SPAWN_FAILED 'E'

/* ---- Framing and fd passing, shared by every helper (wire.c) ---- */

/* The most fds one message may carry here (a spec's shared mounts: at most 250). */
#define WIRE_MAX_FDS 256

static inline void wire_put_u32(void *p, uint32_t v)
{
	unsigned char *b = p;

	for (int i = 0; i < 4; i++)
		b[i] = (unsigned char)(v >> (8 * i));
}

static inline uint32_t wire_get_u32(const void *p)
{
	const unsigned char *b = p;

	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* len bytes, retrying short reads and EINTR: 0, or -1 on error or end of stream. */
int wire_read_full(int fd, void *buf, size_t len);

/* One sendmsg of buf with nfds fds (SCM_RIGHTS): what sendmsg returns. The fds stay open. */
ssize_t wire_send_fds(int sock, const void *buf, size_t len, const int *fds, int nfds, int flags);

/* One recvmsg into buf (retrying EINTR), taking at most max fds, close-on-exec, into fds
 * and their count into *nfds; any beyond max are closed. What recvmsg returns. */
ssize_t wire_recv_fds(int sock, void *buf, size_t len, int *fds, int max, int *nfds);

#endif
