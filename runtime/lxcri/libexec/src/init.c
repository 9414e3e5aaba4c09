/*
 * lxcri-init SYNC_FD FIFO_FD
 *
 * The first program liblxc executes inside the container (lxc.init.cmd). It is
 * linked statically because it must run inside any rootfs, and it is
 * bind-mounted read-only from the host, so the rootfs is not modified.
 *
 * Why it exists: liblxc starts the container's process at once, while the OCI
 * lifecycle splits create from start, and lxc.init.cmd is split on spaces with
 * no quoting. This helper
 *   1. tells lxcri create it exists (over SYNC_FD, a unix stream socket whose
 *      receiver has SO_PASSCRED: the kernel attaches our pid as the host sees it),
 *   2. receives the exact argv, env, user, groups, capabilities, umask and the
 *      startContainer hooks,
 *   3. becomes that user with those capabilities and resolves the executable,
 *      reporting failures (e.g. "not found") to create, so create fails as runc's does,
 *   4. blocks on the exec fifo until lxcri start writes a byte to it,
 *   5. runs the startContainer hooks, closes every fd the process must not
 *      inherit, and execs the process.
 * liblxc has already applied namespaces, mounts, cgroups, rlimits, no_new_privs
 * and seccomp before running this.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <linux/capability.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FLAG_TERMINAL 1u
#define FLAG_CAPS 2u
#define NO_UMASK 0xffffffffu

struct strv {
	uint32_t n;
	char **v; /* NULL-terminated */
};

struct hook {
	uint32_t timeout;
	char *path;
	struct strv args;
	struct strv env;
};

struct spec {
	uint32_t flags;
	uint32_t umask;
	uint32_t preserve_fds;
	uint32_t uid;
	uint32_t gid;
	uint32_t ngids;
	gid_t *gids;
	/* bounding, effective, inheritable, permitted, ambient */
	uint64_t caps[5];
	struct strv args;
	struct strv env;
	uint32_t nhooks;
	struct hook *hooks;
	char *state;
};

static int sync_fd = -1;

static void reply(char kind, const char *fmt, ...)
{
	char buf[4096];
	int len = 0;
	uint32_t n;
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
	n = (uint32_t)len;
	if (write(sync_fd, &n, sizeof(n)) != sizeof(n) || write(sync_fd, buf, len) != len)
		_exit(126);
}

static void die(const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (sync_fd >= 0)
		reply('E', "%s", msg);
	else
		dprintf(2, "lxcri-init: %s\n", msg);
	_exit(127);
}

static int read_full(int fd, void *buf, size_t len)
{
	char *p = buf;
	while (len > 0) {
		ssize_t r = read(fd, p, len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		len -= (size_t)r;
	}
	return 0;
}

/* A cursor over the spec message. */
struct cur {
	const char *p;
	const char *end;
};

static uint32_t get_u32(struct cur *c)
{
	uint32_t v;
	if (c->end - c->p < 4)
		die("truncated spec");
	memcpy(&v, c->p, 4);
	c->p += 4;
	return v;
}

static char *get_str(struct cur *c)
{
	uint32_t n = get_u32(c);
	char *s;
	if ((size_t)(c->end - c->p) < n)
		die("truncated spec string");
	s = malloc(n + 1);
	if (!s)
		die("out of memory");
	memcpy(s, c->p, n);
	s[n] = '\0';
	c->p += n;
	return s;
}

static void get_strv(struct cur *c, struct strv *sv)
{
	sv->n = get_u32(c);
	if (sv->n > (1u << 20))
		die("spec vector too long");
	sv->v = calloc(sv->n + 1, sizeof(char *));
	if (!sv->v)
		die("out of memory");
	for (uint32_t i = 0; i < sv->n; i++)
		sv->v[i] = get_str(c);
}

static void read_spec(struct spec *s)
{
	uint32_t len;
	char *buf;
	struct cur c;

	if (read_full(sync_fd, &len, sizeof(len)) < 0 || len > (64u << 20))
		_exit(126); /* create went away: nothing to report to */
	buf = malloc(len);
	if (!buf || read_full(sync_fd, buf, len) < 0)
		_exit(126);
	c.p = buf;
	c.end = buf + len;
	if (get_u32(&c) != 0x3153584c) /* "LXS1" */
		die("bad spec magic");
	s->flags = get_u32(&c);
	s->umask = get_u32(&c);
	s->preserve_fds = get_u32(&c);
	s->uid = get_u32(&c);
	s->gid = get_u32(&c);
	s->ngids = get_u32(&c);
	if (s->ngids > 65536)
		die("too many additional gids");
	s->gids = calloc(s->ngids + 1, sizeof(gid_t));
	for (uint32_t i = 0; i < s->ngids; i++)
		s->gids[i] = get_u32(&c);
	for (int i = 0; i < 5; i++) {
		uint64_t lo = get_u32(&c), hi = get_u32(&c);
		s->caps[i] = lo | (hi << 32);
	}
	get_strv(&c, &s->args);
	get_strv(&c, &s->env);
	s->nhooks = get_u32(&c);
	if (s->nhooks > 1024)
		die("too many hooks");
	s->hooks = calloc(s->nhooks + 1, sizeof(struct hook));
	for (uint32_t i = 0; i < s->nhooks; i++) {
		s->hooks[i].timeout = get_u32(&c);
		s->hooks[i].path = get_str(&c);
		get_strv(&c, &s->hooks[i].args);
		get_strv(&c, &s->hooks[i].env);
	}
	s->state = get_str(&c);
	if (s->args.n == 0)
		die("process.args is empty");
}

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
static char *resolve(const char *name, const struct strv *env)
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

static void reset_signals(void)
{
	sigset_t none;
	for (int sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/* startContainer hooks: OCI state on stdin, killed at their timeout. */
static void run_hook(const struct hook *h, const char *state)
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

/* The process's user and capabilities, in runc's order: drop from the bounding set
 * while still privileged, keep the rest across the uid change, then set the
 * effective/permitted/inheritable sets and raise the ambient ones. */
static void apply_user(const struct spec *s)
{
	struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct data[2];
	int caps = s->flags & FLAG_CAPS;

	if (caps) {
		for (int cap = 0; cap < 64; cap++) {
			if (s->caps[0] & (1ULL << cap))
				continue;
			if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno == EINVAL)
				break; /* past the kernel's last capability */
		}
		if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
			die("keep capabilities: %s", strerror(errno));
	}
	if (setgroups(s->ngids, s->gids) < 0 && !(errno == EPERM && s->ngids == 0))
		die("setgroups: %s", strerror(errno));
	if (setgid(s->gid) < 0)
		die("setgid %u: %s", s->gid, strerror(errno));
	if (setuid(s->uid) < 0)
		die("setuid %u: %s", s->uid, strerror(errno));
	if (!caps)
		return;
	memset(data, 0, sizeof(data));
	for (int i = 0; i < 2; i++) {
		data[i].effective = (uint32_t)(s->caps[1] >> (32 * i));
		data[i].inheritable = (uint32_t)(s->caps[2] >> (32 * i));
		data[i].permitted = (uint32_t)(s->caps[3] >> (32 * i));
	}
	if (syscall(SYS_capset, &hdr, data) < 0)
		die("capset: %s", strerror(errno));
	prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	/* The kernel only raises an ambient capability that is also permitted and
	 * inheritable; like runc, skip the others instead of failing the container. */
	for (int cap = 0; cap < 64; cap++)
		if (s->caps[4] & (1ULL << cap))
			if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0 && errno != EPERM)
				die("raise ambient capability %d: %s", cap, strerror(errno));
}

static void close_from(unsigned int lowest)
{
	if (syscall(SYS_close_range, lowest, ~0u, 0) == 0)
		return;
	for (int fd = (int)lowest; fd < 65536; fd++)
		close(fd);
}

int main(int argc, char *argv[])
{
	struct spec s;
	int fifo_fd;
	char *exe;
	char byte;
	ssize_t r;

	if (argc != 3) {
		dprintf(2, "lxcri-init: must be started by lxcri\n");
		return 126;
	}
	sync_fd = atoi(argv[1]);
	fifo_fd = atoi(argv[2]);
	fcntl(sync_fd, F_SETFD, FD_CLOEXEC);
	fcntl(fifo_fd, F_SETFD, FD_CLOEXEC);

	reply('H', NULL);
	memset(&s, 0, sizeof(s));
	read_spec(&s);
	/* as runc does: become the process's user before the wait, so that create
	 * reports failures, and look the executable up with the user's rights */
	apply_user(&s);
	exe = resolve(s.args.v[0], &s.env);
	reply('R', NULL);
	close(sync_fd);
	sync_fd = -1;

	/* Wait for lxcri start. The fifo was opened read-write, so this read
	 * blocks until a byte arrives even while no writer has it open. */
	do {
		r = read(fifo_fd, &byte, 1);
	} while (r < 0 && errno == EINTR);
	if (r != 1)
		die("exec fifo: %s", r < 0 ? strerror(errno) : "closed");
	close(fifo_fd);

	reset_signals();
	for (uint32_t i = 0; i < s.nhooks; i++)
		run_hook(&s.hooks[i], s.state);

	if (s.flags & FLAG_TERMINAL) {
		/* liblxc made us a session leader; take the pty on stdin as our tty */
		if (ioctl(0, TIOCSCTTY, 0) < 0)
			dprintf(2, "lxcri-init: cannot set controlling terminal: %s\n", strerror(errno));
	}
	if (s.umask != NO_UMASK)
		umask((mode_t)s.umask);
	close_from(3 + s.preserve_fds);
	execve(exe, s.args.v, s.env.v);
	dprintf(2, "lxcri-init: exec %s: %s\n", exe, strerror(errno));
	return 127;
}
