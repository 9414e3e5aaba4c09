/*
 * lxcri: the command callers run. It holds no runtime logic: it hands the call
 * (argv, cwd, environment, and stdin/stdout/stderr as fds) to the warm lxcri
 * server of this installation (lxcri/zygote.py), which forks a copy of an
 * interpreter that has already started and imported lxcri, runs the command
 * there, and sends back the exit status. Every runtime call is a new process
 * and CRI-O and the containerd shim call `state` all the time, so this saves
 * the interpreter's start-up (most of a short command's cost) on each call.
 *
 * Whenever the server is not there, or says the command must run in the
 * caller's own process tree (create, run, exec, events), the client execs the
 * Python entry point beside it (lxcri-py), which is the whole runtime.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define SOCK_DIR "/run/lxcri-zygote"

extern char **environ;

static char entry[PATH_MAX];

/* The Python entry point: lxcri-py in the directory of this binary (symlinks resolved). */
static void find_entry(void)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (n <= 0) {
		perror("lxcri: /proc/self/exe");
		exit(1);
	}
	self[n] = '\0';
	slash = strrchr(self, '/');
	*slash = '\0';
	if ((size_t)snprintf(entry, sizeof(entry), "%s/lxcri-py", self) >= sizeof(entry)) {
		fputs("lxcri: path too long\n", stderr);
		exit(1);
	}
}

static void run_direct(char **argv, int missing)
{
	if (missing)
		setenv("LXCRI_ZYGOTE_MISSING", "1", 1); /* the entry point may start a server */
	argv[0] = entry;
	execv(entry, argv);
	fprintf(stderr, "lxcri: cannot run %s: %s\n", entry, strerror(errno));
	exit(1);
}

/* LXCRI_WARM_SERVER=0 (or false, no, off): every call runs directly */
static int off(const char *v)
{
	return v && (strcmp(v, "0") == 0 || strcasecmp(v, "false") == 0 || strcasecmp(v, "no") == 0 ||
		     strcasecmp(v, "off") == 0);
}

/* FNV-1a 64 of the entry's real path: one server per installation. */
static uint64_t fnv1a(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ull;
	}
	return h;
}

static int append(char **buf, size_t *len, size_t *cap, const char *s)
{
	size_t n = strlen(s) + 1;

	if (*len + n > *cap) {
		size_t ncap = (*cap + n) * 2;
		char *nb = realloc(*buf, ncap);

		if (!nb)
			return -1;
		*buf = nb;
		*cap = ncap;
	}
	memcpy(*buf + *len, s, n);
	*len += n;
	return 0;
}

int main(int argc, char **argv)
{
	char real[PATH_MAX], cwd[PATH_MAX], num[16];
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	char *buf = NULL;
	size_t len = 4, cap = 4096;
	int fd, fds[3] = {0, 1, 2};
	uint32_t status;
	ssize_t got;

	find_entry();
	if (off(getenv("LXCRI_WARM_SERVER")) || !realpath(entry, real) || !getcwd(cwd, sizeof(cwd)))
		run_direct(argv, 0);
	snprintf(addr.sun_path, sizeof(addr.sun_path), SOCK_DIR "/%016llx.sock", (unsigned long long)fnv1a(real));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		run_direct(argv, 1);

	/* "LXZ1", cwd, argc, argv..., then the environment, each NUL-terminated,
	 * after a u32 length; stdin, stdout and stderr go along as fds */
	buf = malloc(cap);
	if (!buf)
		run_direct(argv, 0);
	snprintf(num, sizeof(num), "%d", argc - 1);
	if (append(&buf, &len, &cap, "LXZ1") < 0 || append(&buf, &len, &cap, cwd) < 0 ||
	    append(&buf, &len, &cap, num) < 0)
		run_direct(argv, 0);
	for (int i = 1; i < argc; i++)
		if (append(&buf, &len, &cap, argv[i]) < 0)
			run_direct(argv, 0);
	for (char **e = environ; *e; e++)
		if (append(&buf, &len, &cap, *e) < 0)
			run_direct(argv, 0);
	status = (uint32_t)(len - 4);
	memcpy(buf, &status, 4);
	{
		char cbuf[CMSG_SPACE(sizeof(fds))];
		struct iovec iov = {buf, len};
		struct msghdr msg = {0};
		struct cmsghdr *cm;
		size_t sent;

		for (int i = 0; i < 3; i++)
			if (fcntl(i, F_GETFD) < 0)
				run_direct(argv, 0); /* a closed stdio fd: let the full runtime cope */
		memset(cbuf, 0, sizeof(cbuf));
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
		msg.msg_control = cbuf;
		msg.msg_controllen = sizeof(cbuf);
		cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(fds));
		memcpy(CMSG_DATA(cm), fds, sizeof(fds));
		got = sendmsg(fd, &msg, MSG_NOSIGNAL);
		if (got <= 0)
			run_direct(argv, 1);
		for (sent = (size_t)got; sent < len; sent += (size_t)got) {
			got = send(fd, buf + sent, len - sent, MSG_NOSIGNAL);
			if (got <= 0) {
				fputs("lxcri: lost the lxcri server while sending the call\n", stderr);
				return 1;
			}
		}
	}
	/* 'D': run it yourself (nothing was done); 'W': a worker runs it, its u32 status follows */
	do {
		got = read(fd, num, 1);
	} while (got < 0 && errno == EINTR);
	if (got != 1 || num[0] == 'D')
		run_direct(argv, got != 1); /* no answer: the server went away (idle exit, upgrade) */
	if (num[0] != 'W') {
		fputs("lxcri: unexpected answer from the lxcri server\n", stderr);
		return 1;
	}
	for (size_t have = 0; have < sizeof(status); have += (size_t)got) {
		got = read(fd, (char *)&status + have, sizeof(status) - have);
		if (got < 0 && errno == EINTR) {
			got = 0;
			continue;
		}
		if (got <= 0) {
			fputs("lxcri: the lxcri server's worker died during the call\n", stderr);
			return 1;
		}
	}
	return (int)(status & 0xff);
}
