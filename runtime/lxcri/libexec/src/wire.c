/*
 * wire.c: the framing and fd passing (SCM_RIGHTS) of the protocols in wire.h,
 * written once and linked into every helper that speaks them (the static init
 * and the client), so that the two ends of a socket cannot drift apart in C.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "wire.h"

int wire_read_full(int fd, void *buf, size_t len)
{
	for (size_t have = 0; have < len;) {
		ssize_t got = read(fd, (char *)buf + have, len - have);

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return -1;
		have += (size_t)got;
	}
	return 0;
}

/* A control buffer for WIRE_MAX_FDS fds, aligned for struct cmsghdr. */
union wire_cbuf {
	char buf[CMSG_SPACE(sizeof(int) * WIRE_MAX_FDS)];
	struct cmsghdr align;
};

ssize_t wire_send_fds(int sock, const void *buf, size_t len, const int *fds, int nfds, int flags)
{
	union wire_cbuf cbuf;
	struct iovec iov = {(void *)buf, len};
	struct msghdr msg = {0};
	struct cmsghdr *cm;

	if (nfds < 1 || nfds > WIRE_MAX_FDS) {
		errno = EINVAL;
		return -1;
	}
	memset(&cbuf, 0, sizeof(cbuf));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cbuf.buf;
	msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
	cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
	memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)nfds);
	return sendmsg(sock, &msg, flags);
}

ssize_t wire_recv_fds(int sock, void *buf, size_t len, int *fds, int max, int *nfds)
{
	union wire_cbuf cbuf;
	struct iovec iov = {buf, len};
	struct msghdr msg = {0};
	ssize_t got;

	if (max < 0 || max > WIRE_MAX_FDS)
		max = max < 0 ? 0 : WIRE_MAX_FDS;
	*nfds = 0;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cbuf.buf;
	/* room for max fds only: the kernel installs no more than fit */
	msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)max);
	do {
		got = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	} while (got < 0 && errno == EINTR);
	if (got < 0)
		return got;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
		int n;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		n = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (int i = 0; i < n; i++) {
			int f;

			memcpy(&f, CMSG_DATA(cm) + (size_t)i * sizeof(int), sizeof(int));
			if (*nfds < max)
				fds[(*nfds)++] = f;
			else
				close(f);
		}
	}
	return got;
}
