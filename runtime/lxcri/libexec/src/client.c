/*
 * lxcri: the command callers run. It holds no runtime logic: it hands the call
 * (argv, cwd, environment, and stdin/stdout/stderr as fds) to the warm lxcri
 * server of this installation (lxcri/warm/), which forks a copy of an
 * interpreter that has already started and imported lxcri, runs the command
 * there, and sends back the exit status. Every runtime call is a new process
 * and CRI-O and the containerd shim call `state` all the time, so this saves
 * the interpreter's start-up (most of a short command's cost) on each call.
 *
 * Whenever the server is not there, or says the command must run in the
 * caller's own process tree (run, exec in the foreground, events), the client
 * execs the Python entry point beside it (lxcri-py), which is the whole runtime.
 * A worker that needs a process to descend from the caller (create's monitor)
 * has the client start it (client_spawn.c). The protocol is in wire.h.
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
#include <signal.h>
#include <unistd.h>

#include "client.h"
#include "wire.h"

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

/* One tag byte from the server, with any fds sent along (close-on-exec) in *fds. */
static ssize_t read_tag(int sock, char *tag, struct fdset *fds)
{
	return wire_recv_fds(sock, tag, 1, fds->fd, MAX_FDS, &fds->n);
}

/* The worker's pid (sent with WARM_WORKER): signals the caller sends us go on to it, as they would
 * reach a direct lxcri, which then cleans up as it does for them (create's abort). */
static volatile pid_t worker;
static volatile sig_atomic_t forwarded;

void forward(int sig)
{
	if (worker > 0)
		kill(worker, sig);
	forwarded = sig;
}

int main(int argc, char **argv)
{
	char real[PATH_MAX], num[16];
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	struct fdset none = {0};
	char *buf = NULL;
	size_t len = 4, cap = 4096;
	int fd, fds[WARM_CALL_FDS] = {0, 1, 2, -1};
	char status[4], wpid[4];
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
	snprintf(addr.sun_path, sizeof(addr.sun_path), WARM_SOCK_DIR "/%016llx.sock", (unsigned long long)fnv1a(real));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		run_direct(argv, 1);

	/* WARM_CALL_MAGIC, umask (octal), argc, argv..., then the environment, each NUL-terminated,
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
		if (append(&buf, &len, &cap, WARM_CALL_MAGIC) < 0 || append(&buf, &len, &cap, octal) < 0 ||
		    append(&buf, &len, &cap, num) < 0)
			run_direct(argv, 0);
	}
	for (int i = 1; i < argc; i++)
		if (append(&buf, &len, &cap, argv[i]) < 0)
			run_direct(argv, 0);
	for (char **e = environ; *e; e++)
		if (append(&buf, &len, &cap, *e) < 0)
			run_direct(argv, 0);
	wire_put_u32(buf, (uint32_t)(len - 4));
	{
		size_t sent;

		got = wire_send_fds(fd, buf, len, fds, WARM_CALL_FDS, MSG_NOSIGNAL);
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
	/* WARM_RUN_HERE: run it yourself (nothing was done); WARM_RETIRING: the same, and the
	 * server retires; WARM_WORKER and the worker's pid: a worker runs it, may ask us to start
	 * helpers (WARM_SPAWN), and ends with WARM_EXIT_STATUS and its status */
	got = read_tag(fd, num, &none);
	close_all(&none);
	if (got != 1 || num[0] == WARM_RUN_HERE || num[0] == WARM_RETIRING)
		/* no answer (the server went away) or retiring (new code on disk): the entry
		 * point starts a new server after this call */
		run_direct(argv, got != 1 || num[0] == WARM_RETIRING);
	if (num[0] != WARM_WORKER || wire_read_full(fd, wpid, sizeof(wpid)) < 0) {
		fputs("lxcri: unexpected answer from the lxcri server\n", stderr);
		return 1;
	}
	worker = (pid_t)(int32_t)wire_get_u32(wpid);
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
		if (got == 1 && num[0] == WARM_SPAWN) {
			spawn_helper(fd, &given);
			continue;
		}
		close_all(&given);
		if (got != 1 || num[0] != WARM_EXIT_STATUS || wire_read_full(fd, status, sizeof(status)) < 0) {
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
	return (int)(wire_get_u32(status) & 0xff);
}
