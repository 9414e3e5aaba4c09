/*
 * init_start.c: the last steps of lxcri-init before execve: finding the
 * executable as execvp would, but with the container's PATH and the process's
 * user (so that create reports "not found" as runc's does), waiting on the exec
 * fifo for lxcri start, restoring the signal dispositions, and running the
 * startContainer hooks in the container.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "init.h"

static const char *env_get(const struct strv *env, const char *key)
{
	size_t k = strlen(key);
	for (uint32_t i = 0; i < env->n; i++)
		if (strncmp(env->v[i], key, k) == 0 && env->v[i][k] == '=')
			return env->v[i] + k + 1;
	return NULL;
}

static int executable(const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return -errno;
	if (S_ISDIR(st.st_mode))
		return -EACCES;
	if (access(path, X_OK) < 0)
		return -errno;
	return 0;
}

/* Resolve argv[0] the way execvp would, but with the container's PATH. */
char *resolve(const char *name, const struct strv *env)
{
	const char *path = env_get(env, "PATH");
	char buf[PATH_MAX];
	int err = -ENOENT;

	if (strchr(name, '/')) {
		int r = executable(name);
		if (r < 0)
			die("exec: \"%s\": %s", name, strerror(-r));
		return strdup(name);
	}
	if (!path)
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	while (*path) {
		const char *colon = strchrnul(path, ':');
		size_t dlen = (size_t)(colon - path);
		int r;

		if (dlen == 0)
			snprintf(buf, sizeof(buf), "./%s", name);
		else
			snprintf(buf, sizeof(buf), "%.*s/%s", (int)dlen, path, name);
		r = executable(buf);
		if (r == 0)
			return strdup(buf);
		if (r == -EACCES)
			err = r;
		path = *colon ? colon + 1 : colon;
	}
	if (err == -EACCES)
		die("exec: \"%s\": permission denied", name);
	die("exec: \"%s\": executable file not found in $PATH", name);
	return NULL;
}

void reset_signals(void)
{
	sigset_t none;
	for (int sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/* startContainer hooks: OCI state on stdin, killed at their timeout. */
void run_hook(const struct hook *h, const char *state)
{
	int pfd[2];
	pid_t pid;
	int status;
	struct timespec start, now;

	if (pipe2(pfd, O_CLOEXEC) < 0)
		die("startContainer hook %s: pipe: %s", h->path, strerror(errno));
	pid = fork();
	if (pid < 0)
		die("startContainer hook %s: fork: %s", h->path, strerror(errno));
	if (pid == 0) {
		dup2(pfd[0], 0);
		execve(h->path, h->args.n ? h->args.v : (char *[]){h->path, NULL}, h->env.v);
		dprintf(2, "lxcri-init: startContainer hook %s: %s\n", h->path, strerror(errno));
		_exit(127);
	}
	close(pfd[0]);
	signal(SIGPIPE, SIG_IGN);
	if (write(pfd[1], state, strlen(state)) < 0) {
		/* the hook need not read its stdin */
	}
	close(pfd[1]);
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR)
			die("startContainer hook %s: wait: %s", h->path, strerror(errno));
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (h->timeout && now.tv_sec - start.tv_sec >= (time_t)h->timeout) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			dprintf(2, "lxcri-init: startContainer hook %s timed out after %us\n", h->path, h->timeout);
			_exit(1);
		}
		usleep(2000);
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		dprintf(2, "lxcri-init: startContainer hook %s failed (status %d)\n", h->path, status);
		_exit(1);
	}
}

/* Wait for lxcri start. The fifo was opened read-write, so this read blocks until a
 * byte arrives even while no writer has it open. */
void wait_for_start(int fifo_fd)
{
	char byte;
	ssize_t r;

	do {
		r = read(fifo_fd, &byte, 1);
	} while (r < 0 && errno == EINTR);
	if (r != 1)
		die("exec fifo: %s", r < 0 ? strerror(errno) : "closed");
}
