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
#include <sys/syscall.h>
#include <sys/wait.h>
#include <signal.h>
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

/* LXCRI_WARM_SERVER as the Python settings read it: set and not 1/true/yes/on means off */
static int off(const char *v)
{
	return v && !(strcmp(v, "1") == 0 || strcasecmp(v, "true") == 0 || strcasecmp(v, "yes") == 0 ||
		      strcasecmp(v, "on") == 0);
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

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1u << 2)
#endif
#define MAX_FDS 64

static void forward(int sig);

/* Numbers on the socket are little-endian (Python's struct "<I"), on any host. */
static void put_u32(void *p, uint32_t v)
{
	unsigned char *b = p;

	for (int i = 0; i < 4; i++)
		b[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const void *p)
{
	const unsigned char *b = p;

	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static int32_t get_i32(const void *p)
{
	return (int32_t)get_u32(p);
}
#define MAX_HELPERS 8

struct fdset {
	int n;
	int fd[MAX_FDS];
};

static pid_t helpers[MAX_HELPERS];
static int nhelpers;

static void close_all(struct fdset *f)
{
	for (int i = 0; i < f->n; i++)
		close(f->fd[i]);
	f->n = 0;
}

/* One tag byte from the server, with any fds sent along (SCM_RIGHTS, close-on-exec). */
static ssize_t read_tag(int sock, char *tag, struct fdset *fds)
{
	char cbuf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
	struct iovec iov = {tag, 1};
	struct msghdr msg = {0};
	ssize_t got;

	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cbuf;
	msg.msg_controllen = sizeof(cbuf);
	do {
		got = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	} while (got < 0 && errno == EINTR);
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		int n = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (int i = 0; i < n; i++) {
			int f;

			memcpy(&f, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (fds && fds->n < MAX_FDS)
				fds->fd[fds->n++] = f;
			else
				close(f);
		}
	}
	return got;
}

static int read_full(int sock, void *buf, size_t len)
{
	for (size_t have = 0; have < len;) {
		ssize_t got = read(sock, (char *)buf + have, len - have);

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return -1;
		have += (size_t)got;
	}
	return 0;
}

static void answer(int sock, char tag, int32_t value)
{
	char out[5];

	out[0] = tag;
	put_u32(out + 1, (uint32_t)value);
	if (send(sock, out, sizeof(out), MSG_NOSIGNAL) != (ssize_t)sizeof(out))
		exit(1);
}

/*
 * 'S': start a helper for the worker (create's monitor), so that it descends from us and
 * so from the caller. Body: u32 length, then path, argc, args and the fd numbers it must
 * have, NUL-separated; the fds themselves came with the tag, in the same order. The
 * helper gets a new session, our stdio (the caller's: the container's), those fds at
 * those numbers, and nothing else.
 */
static void spawn_helper(int sock, struct fdset *given)
{
	uint32_t len;
	char *body, *p, *end, *args[64];
	int argc, nargs = 0, targets[MAX_FDS], ntargets = 0;
	pid_t pid;

	if (read_full(sock, &len, sizeof(len)) < 0 || (len = get_u32(&len)) > (1u << 20) ||
	    !(body = calloc(1, len + 1)) || read_full(sock, body, len) < 0) {
		fputs("lxcri: bad start request from the lxcri server\n", stderr);
		exit(1);
	}
	p = body;
	end = body + len;
	args[nargs++] = p; /* argv[0] is the path */
	p += strlen(p) + 1;
	argc = p < end ? atoi(p) : -1;
	if (p < end)
		p += strlen(p) + 1;
	for (int i = 0; i < argc && p < end && nargs < 62; i++) {
		args[nargs++] = p;
		p += strlen(p) + 1;
	}
	args[nargs] = NULL;
	while (p < end && ntargets < MAX_FDS) {
		targets[ntargets++] = atoi(p);
		p += strlen(p) + 1;
	}
	if (argc < 0 || nargs != argc + 1 || ntargets != given->n || nhelpers >= MAX_HELPERS) {
		close_all(given);
		free(body);
		answer(sock, 'E', -EINVAL);
		return;
	}
	sigset_t block, saved;

	/* no forwarded signal may run our handler in the child before its exec */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGQUIT);
	sigprocmask(SIG_BLOCK, &block, &saved);
	pid = fork();
	if (pid == 0) {
		/* nothing the caller leaked to us may reach the helper, and from there the container */
		if (syscall(SYS_close_range, 3, ~0u, CLOSE_RANGE_CLOEXEC) < 0)
			for (int f = 3; f < 4096; f++)
				fcntl(f, F_SETFD, FD_CLOEXEC);
		/* move the fds out of the way of their targets (above all of them: not at a fixed
		 * number, which a low RLIMIT_NOFILE would refuse), then onto them */
		int above = 3;

		for (int i = 0; i < given->n; i++)
			if (targets[i] >= above)
				above = targets[i] + 1;
		for (int i = 0; i < given->n; i++) {
			int high = fcntl(given->fd[i], F_DUPFD_CLOEXEC, above);

			if (high < 0)
				_exit(127);
			given->fd[i] = high;
		}
		/* as a direct lxcri (Python ignores these) leaves them to the helper; our handlers
		 * for the forwarded signals go at exec */
		signal(SIGPIPE, SIG_IGN);
		signal(SIGXFSZ, SIG_IGN);
		for (int i = 0; i < given->n; i++)
			if (dup2(given->fd[i], targets[i]) < 0)
				_exit(127);
		setsid();
		for (int sig = 1; sig < NSIG; sig++) {
			struct sigaction cur;

			if (sigismember(&block, sig) && sigaction(sig, NULL, &cur) == 0 && cur.sa_handler == forward)
				signal(sig, SIG_DFL);
		}
		sigprocmask(SIG_SETMASK, &saved, NULL);
		char *env[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", NULL};
		execve(args[0], args, env);
		_exit(127);
	}
	sigprocmask(SIG_SETMASK, &saved, NULL);
	close_all(given);
	free(body);
	if (pid < 0) {
		answer(sock, 'E', -errno);
		return;
	}
	helpers[nhelpers++] = pid;
	answer(sock, 'P', pid);
}

/* The worker has killed the helpers it had us start (create's monitor steps aside once the
 * init is ready): reap them, as create does itself when it is the parent. */
static void reap_helpers(int quick)
{
	for (int i = 0; i < nhelpers; i++) {
		for (int tries = 0; tries < (quick ? 1 : 5000); tries++) {
			pid_t got = waitpid(helpers[i], NULL, WNOHANG);

			if (got != 0)
				break;
			usleep(1000);
		}
	}
}

/* The worker's pid (sent with 'W'): signals the caller sends us go on to it, as they would
 * reach a direct lxcri, which then cleans up as it does for them (create's abort). */
static volatile pid_t worker;
static volatile sig_atomic_t forwarded;

static void forward(int sig)
{
	if (worker > 0)
		kill(worker, sig);
	forwarded = sig;
}

int main(int argc, char **argv)
{
	char real[PATH_MAX], num[16];
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	char *buf = NULL;
	size_t len = 4, cap = 4096;
	int fd, fds[4] = {0, 1, 2, -1};
	uint32_t status;
	int32_t wpid;
	ssize_t got;

	find_entry();
	if (off(getenv("LXCRI_WARM_SERVER")) || !realpath(entry, real))
		run_direct(argv, 0);
	/* a closed stdio fd would be taken by our own socket: let the full runtime cope */
	for (int i = 0; i < 3; i++)
		if (fcntl(i, F_GETFD) < 0)
			run_direct(argv, 0);
	/* the working directory goes as an fd: a path may name something else in the server */
	fds[3] = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fds[3] < 0)
		run_direct(argv, 0);
	snprintf(addr.sun_path, sizeof(addr.sun_path), SOCK_DIR "/%016llx.sock", (unsigned long long)fnv1a(real));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		run_direct(argv, 1);

	/* "LXZ3", umask (octal), argc, argv..., then the environment, each NUL-terminated,
	 * after a u32 length (little-endian, as every later number); stdin, stdout, stderr and
	 * the working directory go along as fds */
	buf = malloc(cap);
	if (!buf)
		run_direct(argv, 0);
	{
		mode_t mask = umask(0);
		char octal[16];

		umask(mask);
		snprintf(octal, sizeof(octal), "%o", (unsigned)mask);
		snprintf(num, sizeof(num), "%d", argc - 1);
		if (append(&buf, &len, &cap, "LXZ3") < 0 || append(&buf, &len, &cap, octal) < 0 ||
		    append(&buf, &len, &cap, num) < 0)
			run_direct(argv, 0);
	}
	for (int i = 1; i < argc; i++)
		if (append(&buf, &len, &cap, argv[i]) < 0)
			run_direct(argv, 0);
	for (char **e = environ; *e; e++)
		if (append(&buf, &len, &cap, *e) < 0)
			run_direct(argv, 0);
	put_u32(buf, (uint32_t)(len - 4));
	{
		char cbuf[CMSG_SPACE(sizeof(fds))];
		struct iovec iov = {buf, len};
		struct msghdr msg = {0};
		struct cmsghdr *cm;
		size_t sent;

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
		/* nothing has run until the server answers: any failure before that means run it here */
		if (got <= 0)
			run_direct(argv, 1);
		for (sent = (size_t)got; sent < len; sent += (size_t)got) {
			got = send(fd, buf + sent, len - sent, MSG_NOSIGNAL);
			if (got <= 0)
				run_direct(argv, 0);
		}
	}
	close(fds[3]);
	/* 'D': run it yourself (nothing was done); 'R': the same, and the server retires;
	 * 'W' and the worker's pid: a worker runs it, may ask us to start helpers ('S'), and
	 * ends with 'X' and its status */
	got = read_tag(fd, num, NULL);
	if (got != 1 || num[0] == 'D' || num[0] == 'R')
		/* no answer (the server went away) or 'R' (it retires: new code on disk): the entry
		 * point starts a new server after this call */
		run_direct(argv, got != 1 || num[0] == 'R');
	if (num[0] != 'W' || read_full(fd, &wpid, sizeof(wpid)) < 0) {
		fputs("lxcri: unexpected answer from the lxcri server\n", stderr);
		return 1;
	}
	worker = (pid_t)get_i32(&wpid);
	{
		struct sigaction sa = {0};
		int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

		sa.sa_handler = forward;
		sa.sa_flags = SA_RESTART;
		for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
			struct sigaction old;

			/* what the caller ignores, a direct lxcri ignores too */
			if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler != SIG_IGN)
				sigaction(sigs[i], &sa, NULL);
		}
	}
	for (;;) {
		struct fdset given = {0};

		got = read_tag(fd, num, &given);
		if (got == 1 && num[0] == 'S') {
			spawn_helper(fd, &given);
			continue;
		}
		close_all(&given);
		if (got != 1 || num[0] != 'X' || read_full(fd, &status, sizeof(status)) < 0) {
			worker = 0; /* gone, or going: its pid may be reused */
			reap_helpers(forwarded != 0);
			if (forwarded) {
				/* the worker died of the signal we passed on: so do we, as a direct call would */
				signal(forwarded, SIG_DFL);
				raise(forwarded);
			}
			fputs("lxcri: the lxcri server's worker died during the call\n", stderr);
			return 1;
		}
		break;
	}
	worker = 0;
	reap_helpers(0);
	return (int)(get_u32(&status) & 0xff);
}
