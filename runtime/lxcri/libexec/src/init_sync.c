/*
 * init_sync.c: lxcri-init's side of the sync socket (the protocol is in wire.h).
 *
 * Everything the init says to lxcri goes through here: its frames (hello, ready,
 * an error's text), the fds it hands over (a pty master, a seccomp listener), and
 * the shared mounts' fds it receives after the spec. die() reports over the same
 * socket while it is open, so that lxcri create or exec fails with the init's
 * reason, as runc's would; after the socket is closed, it writes to stderr.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "init.h"

int sync_fd = -1;

/* A frame to lxcri: its u32 length, then the tag and the formatted text (if any). */
void reply(char kind, const char *fmt, ...)
{
	char buf[4096];
	int len = 0;
	char n[4];
	va_list ap;

	if (sync_fd < 0)
		return;
	buf[0] = kind;
	len = 1;
	if (fmt) {
		va_start(ap, fmt);
		len += vsnprintf(buf + 1, sizeof(buf) - 1, fmt, ap);
		va_end(ap);
		if (len > (int)sizeof(buf) - 1)
			len = sizeof(buf) - 1;
	}
	wire_put_u32(n, (uint32_t)len);
	if (write(sync_fd, n, sizeof(n)) != sizeof(n) || write(sync_fd, buf, len) != len)
		_exit(126);
}

void die(const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (sync_fd >= 0)
		reply(SYNC_ERROR, "%s", msg);
	else
		dprintf(2, "lxcri-init: %s\n", msg);
	_exit(127);
}

/* Done talking to lxcri: what the process runs must not inherit the socket. */
void close_sync(void)
{
	close(sync_fd);
	sync_fd = -1;
}

/* A one-byte frame to lxcri with an fd (SCM_RIGHTS); the fd is closed here. */
void send_fd_frame(char tag, int fd, const char *what)
{
	char frame[5];

	wire_put_u32(frame, 1);
	frame[4] = tag;
	if (wire_send_fds(sync_fd, frame, sizeof(frame), &fd, 1, 0) != (ssize_t)sizeof(frame))
		die("send the %s to lxcri: %s", what, strerror(errno));
	close(fd);
}

/* The fds of the host's clones of shared bind mounts: one SYNC_SHARED_MOUNTS byte after the spec. */
void receive_shared(struct spec *s)
{
	char byte;
	int fds[WIRE_MAX_FDS], n = 0;

	if (s->nshared == 0)
		return;
	if (wire_recv_fds(sync_fd, &byte, 1, fds, (int)s->nshared, &n) != 1 || byte != SYNC_SHARED_MOUNTS)
		die("no shared mount fds from lxcri");
	if (n != (int)s->nshared)
		die("shared mount fds: expected %u", s->nshared);
	for (uint32_t i = 0; i < s->nshared; i++)
		s->shared[i].fd = fds[i];
}
