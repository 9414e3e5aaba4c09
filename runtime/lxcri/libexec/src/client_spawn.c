/*
 * client_spawn.c: the `lxcri` client starting a helper for the warm server's
 * worker (WARM_SPAWN in wire.h), and reaping it.
 *
 * A worker that runs `create` needs create's monitor, and through it the
 * container's init, to descend from the caller (whose subreaper reaps the init),
 * as when the Python entry runs create itself; the worker descends from the warm
 * server instead. So it asks the client, which is the caller's child, to start the
 * helper: with a new session, the caller's stdio, exactly the fds the worker sent at
 * the numbers it names, and nothing else the caller may have leaked to the client.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client.h"
#include "wire.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1u << 2)
#endif
#define MAX_HELPERS 8

static pid_t helpers[MAX_HELPERS];
static int nhelpers;

/* The answer to WARM_SPAWN: WARM_SPAWNED and the pid, or WARM_SPAWN_FAILED and -errno. */
static void answer(int sock, char tag, int32_t value)
{
	char out[5];

	out[0] = tag;
	wire_put_u32(out + 1, (uint32_t)value);
	if (send(sock, out, sizeof(out), MSG_NOSIGNAL) != (ssize_t)sizeof(out))
		exit(1);
}

/*
 * WARM_SPAWN: start a helper for the worker (create's monitor), so that it descends from us and
 * so from the caller. Body: u32 length, then path, argc, args and the fd numbers it must
 * have, NUL-separated; the fds themselves came with the tag, in the same order. The
 * helper gets a new session, our stdio (the caller's: the container's), those fds at
 * those numbers, and nothing else.
 */
void spawn_helper(int sock, struct fdset *given)
{
	uint32_t len;
	char head[4], *body, *p, *end, *args[64];
	int argc, nargs = 0, targets[MAX_FDS], ntargets = 0;
	pid_t pid;

	if (wire_read_full(sock, head, sizeof(head)) < 0 || (len = wire_get_u32(head)) > (1u << 20) ||
	    !(body = calloc(1, len + 1)) || wire_read_full(sock, body, len) < 0) {
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
		answer(sock, WARM_SPAWN_FAILED, -EINVAL);
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
		answer(sock, WARM_SPAWN_FAILED, -errno);
		return;
	}
	helpers[nhelpers++] = pid;
	answer(sock, WARM_SPAWNED, pid);
}

/* The worker has killed the helpers it had us start (create's monitor steps aside once the
 * init is ready): reap them, as create does itself when it is the parent. */
void reap_helpers(int quick)
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
