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
#include <seccomp.h>
#include <linux/capability.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/statvfs.h>
#include <sys/vfs.h>
#include <linux/magic.h>
#include <sys/resource.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sealed.h"

#define FLAG_TERMINAL 1u
#define FLAG_CAPS 2u
#define FLAG_READONLY 4u
#define FLAG_NEW_PTY 8u
#define FLAG_NO_PROCESS 16u /* config.json has no process: wait, never exec (start refuses) */
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

struct sc_rule {
	char *name;
	uint32_t action;
	uint32_t nargs;
	struct scmp_arg_cmp *args;
};

struct sc_spec {
	uint32_t present;
	uint32_t def;
	uint32_t flags;
	uint32_t narches;
	char **arches;
	uint32_t nrules;
	struct sc_rule *rules;
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
	/* exec mode only */
	uint32_t target_pid;
	uint32_t exec_flags;
	char *cwd;
	uint32_t nrlimits;
	struct {
		uint32_t resource;
		struct rlimit lim;
	} *rlimits;
	struct sc_spec sc;
	char *domainname;
	uint32_t personality;
	struct strv readonly_paths;
	uint32_t npropagation;
	struct {
		uint32_t flags;
		char *path;
	} *propagation;
	char *hostname;
	char *apparmor;
	char *selinux;
	uint32_t nshared;
	struct {
		uint32_t flags;
		char *dest;
		int fd;
	} *shared;
	struct strv masked_paths;
	uint32_t nattrs; /* recursive mount attributes: see apply_mount_attrs */
	struct mount_attr_op {
		uint32_t set;
		uint32_t clr;
		uint32_t recursive;
		char *path;
	} *attrs;
	uint32_t rows, cols; /* window size of a new pty (0: the kernel's 0x0) */
};

#define NO_PERSONALITY 0xffffffffu

#define EXEC_DETACH 1u
#define EXEC_NO_NEW_PRIVS 2u

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

static void die(const char *fmt, ...);

/* A one-byte frame to lxcri with an fd (SCM_RIGHTS); the fd is closed here. */
static void send_fd_frame(char tag, int fd, const char *what)
{
	char frame[5] = {1, 0, 0, 0, tag};
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {frame, sizeof(frame)};
	struct msghdr msg = {0};
	struct cmsghdr *cm;

	memset(cbuf, 0, sizeof(cbuf));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cbuf;
	msg.msg_controllen = sizeof(cbuf);
	cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	if (sendmsg(sync_fd, &msg, 0) != (ssize_t)sizeof(frame))
		die("send the %s to lxcri: %s", what, strerror(errno));
	close(fd);
}

/*
 * A terminal from the container's own devpts, as runc gives: open its ptmx,
 * make the peer our stdio, and hand the master to lxcri (frame 'T' with the fd),
 * which passes it on to the caller's --console-socket.
 */
static void new_console(uint32_t rows, uint32_t cols)
{
	int unlock = 0, master, peer;
	struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};

	master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0)
		die("open the container's /dev/ptmx: %s", strerror(errno));
	if (ioctl(master, TIOCSPTLCK, &unlock) < 0)
		die("unlock the pty: %s", strerror(errno));
	/* before anything runs on it: a size set later by lxcri could come after the process read it */
	if ((rows || cols) && ioctl(master, TIOCSWINSZ, &ws) < 0)
		die("set the pty's window size: %s", strerror(errno));
	peer = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY);
	if (peer < 0)
		die("open the pty's peer: %s", strerror(errno));
	for (int fd = 0; fd < 3; fd++)
		if (dup2(peer, fd) < 0)
			die("dup2 the pty: %s", strerror(errno));
	if (peer > 2)
		close(peer);
	send_fd_frame('T', master, "pty");
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

static uint64_t get_u64(struct cur *c)
{
	uint64_t lo = get_u32(c), hi = get_u32(c);
	return lo | (hi << 32);
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

static void read_mount_attrs(struct cur *c, struct spec *s)
{
	s->nattrs = get_u32(c);
	if (s->nattrs > 4096)
		die("spec: too many mount attribute changes");
	s->attrs = calloc(s->nattrs + 1, sizeof(*s->attrs));
	if (!s->attrs)
		die("out of memory");
	for (uint32_t i = 0; i < s->nattrs; i++) {
		s->attrs[i].set = get_u32(c);
		s->attrs[i].clr = get_u32(c);
		s->attrs[i].recursive = get_u32(c);
		s->attrs[i].path = get_str(c);
	}
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
	s->target_pid = get_u32(&c);
	s->exec_flags = get_u32(&c);
	s->cwd = get_str(&c);
	s->nrlimits = get_u32(&c);
	if (s->nrlimits > 64)
		die("too many rlimits");
	s->rlimits = calloc(s->nrlimits + 1, sizeof(*s->rlimits));
	for (uint32_t i = 0; i < s->nrlimits; i++) {
		uint64_t lo, hi;
		s->rlimits[i].resource = get_u32(&c);
		lo = get_u32(&c), hi = get_u32(&c);
		s->rlimits[i].lim.rlim_cur = lo | (hi << 32);
		lo = get_u32(&c), hi = get_u32(&c);
		s->rlimits[i].lim.rlim_max = lo | (hi << 32);
	}
	s->sc.present = get_u32(&c);
	if (s->sc.present) {
		s->sc.def = get_u32(&c);
		s->sc.flags = get_u32(&c);
		s->sc.narches = get_u32(&c);
		if (s->sc.narches > 32)
			die("seccomp: too many architectures");
		s->sc.arches = calloc(s->sc.narches + 1, sizeof(char *));
		for (uint32_t i = 0; i < s->sc.narches; i++)
			s->sc.arches[i] = get_str(&c);
		s->sc.nrules = get_u32(&c);
		if (s->sc.nrules > 65536)
			die("seccomp: too many rules");
		s->sc.rules = calloc(s->sc.nrules + 1, sizeof(struct sc_rule));
		for (uint32_t i = 0; i < s->sc.nrules; i++) {
			struct sc_rule *r = &s->sc.rules[i];
			r->name = get_str(&c);
			r->action = get_u32(&c);
			r->nargs = get_u32(&c);
			if (r->nargs > 6)
				die("seccomp: rule for %s has more than 6 arguments", r->name);
			r->args = calloc(r->nargs + 1, sizeof(struct scmp_arg_cmp));
			for (uint32_t j = 0; j < r->nargs; j++) {
				r->args[j].arg = get_u32(&c);
				r->args[j].op = (enum scmp_compare)get_u32(&c);
				r->args[j].datum_a = get_u64(&c);
				r->args[j].datum_b = get_u64(&c);
			}
		}
	}
	s->domainname = get_str(&c);
	s->personality = get_u32(&c);
	get_strv(&c, &s->readonly_paths);
	s->npropagation = get_u32(&c);
	if (s->npropagation > 4096)
		die("spec: too many propagation entries");
	s->propagation = calloc(s->npropagation + 1, sizeof(*s->propagation));
	for (uint32_t i = 0; i < s->npropagation; i++) {
		s->propagation[i].flags = get_u32(&c);
		s->propagation[i].path = get_str(&c);
	}
	s->hostname = get_str(&c);
	s->apparmor = get_str(&c);
	s->selinux = get_str(&c);
	s->nshared = get_u32(&c);
	if (s->nshared > 250)
		die("spec: too many shared bind mounts");
	s->shared = calloc(s->nshared + 1, sizeof(*s->shared));
	for (uint32_t i = 0; i < s->nshared; i++) {
		s->shared[i].flags = get_u32(&c);
		s->shared[i].dest = get_str(&c);
		s->shared[i].fd = -1;
	}
	get_strv(&c, &s->masked_paths);
	read_mount_attrs(&c, s);
	s->rows = get_u32(&c);
	s->cols = get_u32(&c);
	if (s->args.n == 0 && !(s->flags & FLAG_NO_PROCESS))
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

/* A bind mount given more flags (`add`), keeping those it has (a bind remount must repeat
 * them); remount_ro makes one read-only. root.readonly is done so after pivot_root, because
 * liblxc would make the rootfs read-only before creating the mount points in it. */
static void remount_bind(const char *path, unsigned long add)
{
	struct statvfs sv;
	unsigned long flags = MS_BIND | MS_REMOUNT | add;

	if (statvfs(path, &sv) < 0)
		die("statvfs %s: %s", path, strerror(errno));
	if (sv.f_flag & ST_RDONLY)
		flags |= MS_RDONLY;
	if (sv.f_flag & ST_NOSUID)
		flags |= MS_NOSUID;
	if (sv.f_flag & ST_NODEV)
		flags |= MS_NODEV;
	if (sv.f_flag & ST_NOEXEC)
		flags |= MS_NOEXEC;
	if (sv.f_flag & ST_NOATIME)
		flags |= MS_NOATIME;
	if (sv.f_flag & ST_NODIRATIME)
		flags |= MS_NODIRATIME;
	if (sv.f_flag & ST_RELATIME)
		flags |= MS_RELATIME;
	if (mount(NULL, path, NULL, flags, NULL) < 0)
		die("remount %s: %s", path, strerror(errno));
}

static void remount_ro(const char *path)
{
	remount_bind(path, MS_RDONLY);
}

/* Is path at or below one of the mounts that carry a propagation option of their own? */
static int has_own_propagation(const struct spec *s, const char *path)
{
	for (uint32_t i = 1; i < s->npropagation; i++) {
		const char *own = s->propagation[i].path;
		size_t n = strlen(own);

		if (strncmp(path, own, n) == 0 && (path[n] == '\0' || path[n] == '/'))
			return 1;
	}
	return 0;
}

/* mountinfo escapes space, tab, newline and backslash as \ooo */
static void unescape_octal(char *p)
{
	char *out = p;

	for (; *p; p++) {
		if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' && p[3] >= '0' && p[3] <= '7') {
			*out++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
			p += 3;
		} else {
			*out++ = *p;
		}
	}
	*out = '\0';
}

/* rootfsPropagation, then each mount's propagation option, after pivot_root:
 * liblxc leaves every mount shared within the container whatever it was asked.
 * Each visible mount without an option of its own first becomes a slave (what
 * stays of its tie to the host is its master), then takes the root's setting;
 * mount by mount, so that neither step touches the mounts with an option of
 * their own, which get it last. runc reaches the same state by setting the root
 * before it makes the mounts. */
static void apply_propagation(const struct spec *s)
{
	FILE *f;
	char *line = NULL;
	size_t cap = 0;
	unsigned long root_flags;

	if (s->npropagation == 0)
		return;
	root_flags = s->propagation[0].flags & ~(unsigned long)MS_REC;
	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		die("open /proc/self/mountinfo: %s", strerror(errno));
	while (getline(&line, &cap, f) > 0) {
		char *mp = line;

		/* the fifth field is the mount point */
		for (int field = 0; field < 4 && mp; field++) {
			mp = strchr(mp, ' ');
			if (mp)
				mp++;
		}
		if (!mp)
			continue;
		*strchrnul(mp, ' ') = '\0';
		unescape_octal(mp);
		if (has_own_propagation(s, mp))
			continue;
		if ((mount(NULL, mp, NULL, MS_SLAVE, NULL) < 0
		     || (root_flags != MS_SLAVE && mount(NULL, mp, NULL, root_flags, NULL) < 0))
		    && errno != ENOENT && errno != EACCES)
			die("set mount propagation of %s: %s", mp, strerror(errno));
	}
	free(line);
	fclose(f);
	for (uint32_t i = 1; i < s->npropagation; i++)
		if (mount(NULL, s->propagation[i].path, NULL, s->propagation[i].flags, NULL) < 0)
			die("set mount propagation of %s: %s", s->propagation[i].path, strerror(errno));
}

#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif

/* linux/mount.h's struct mount_attr (glibc 2.36 has no wrapper) */
struct lxcri_mount_attr {
	uint64_t attr_set;
	uint64_t attr_clr;
	uint64_t propagation;
	uint64_t userns_fd;
};

/*
 * The mounts' recursive attributes (rro and the other r* options), once every mount
 * is made, in the order lxcri computed: mount_setattr on the mount at each
 * destination, with AT_RECURSIVE for the option itself, without it where a mount
 * the config made below gets a flag cleared again (see lxcconf/mounts.py).
 */
static void apply_mount_attrs(const struct spec *s)
{
	for (uint32_t i = 0; i < s->nattrs; i++) {
		struct lxcri_mount_attr attr = {s->attrs[i].set, s->attrs[i].clr, 0, 0};
		unsigned int flags = AT_SYMLINK_NOFOLLOW | (s->attrs[i].recursive ? AT_RECURSIVE : 0);

		if (syscall(SYS_mount_setattr, AT_FDCWD, s->attrs[i].path, flags, &attr, sizeof(attr)) < 0)
			die("set the mount attributes of %s: %s", s->attrs[i].path, strerror(errno));
	}
}

#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif

/* The fds of the host's clones of shared bind mounts: one 'F' frame after the spec. */
static void receive_shared(struct spec *s)
{
	char byte;
	size_t space = CMSG_SPACE(sizeof(int) * s->nshared);
	char *cbuf;
	struct iovec iov = {&byte, 1};
	struct msghdr msg = {0};
	struct cmsghdr *cm;

	if (s->nshared == 0)
		return;
	cbuf = calloc(1, space);
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cbuf;
	msg.msg_controllen = space;
	if (recvmsg(sync_fd, &msg, MSG_CMSG_CLOEXEC) != 1 || byte != 'F')
		die("no shared mount fds from lxcri");
	cm = CMSG_FIRSTHDR(&msg);
	if (!cm || cm->cmsg_type != SCM_RIGHTS || cm->cmsg_len != CMSG_LEN(sizeof(int) * s->nshared))
		die("shared mount fds: expected %u", s->nshared);
	for (uint32_t i = 0; i < s->nshared; i++)
		memcpy(&s->shared[i].fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
	free(cbuf);
}

/* Each clone onto its destination, over liblxc's bind there: a peer of the host's
 * mount, so mounts made on either side show on the other (Bidirectional). */
static void move_shared(const struct spec *s)
{
	for (uint32_t i = 0; i < s->nshared; i++) {
		const char *dest = s->shared[i].dest;

		if (syscall(SYS_move_mount, s->shared[i].fd, "", AT_FDCWD, dest, MOVE_MOUNT_F_EMPTY_PATH) < 0)
			die("move the shared mount onto %s: %s", dest, strerror(errno));
		close(s->shared[i].fd);
		if (s->shared[i].flags)
			remount_bind(dest, s->shared[i].flags);
	}
}

/* /dev/ptmx as the runtime-spec wants it: a symlink to pts/ptmx, the container's own devpts
 * (liblxc's autodev leaves a device node there). Only where the config mounted a devpts. */
static void ptmx_symlink(void)
{
	struct stat st;
	struct statfs sf;

	/* the guard over the config's devpts (see lxcconf/mounts.py), should liblxc have left it */
	if (statfs("/dev/pts", &sf) == 0 && sf.f_type == TMPFS_MAGIC && umount2("/dev/pts", MNT_DETACH) < 0)
		die("unmount the guard over /dev/pts: %s", strerror(errno));

	if (lstat("/dev/pts/ptmx", &st) < 0 || (lstat("/dev/ptmx", &st) == 0 && S_ISLNK(st.st_mode)))
		return;
	if (unlink("/dev/ptmx") < 0 && errno != ENOENT)
		die("remove /dev/ptmx: %s", strerror(errno));
	if (symlink("pts/ptmx", "/dev/ptmx") < 0)
		die("symlink /dev/ptmx: %s", strerror(errno));
}

/* maskedPaths that are FIFOs or sockets, under /dev/null: liblxc blocks opening a FIFO
 * mount target, so it leaves these to us (it masked the rest). */
static void mask_specials(const struct strv *paths)
{
	for (uint32_t i = 0; i < paths->n; i++) {
		struct stat st;

		if (lstat(paths->v[i], &st) < 0 || !(S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)))
			continue;
		if (mount("/dev/null", paths->v[i], NULL, MS_BIND, NULL) < 0)
			die("mask %s: %s", paths->v[i], strerror(errno));
	}
}

/* readonlyPaths: bound onto themselves read-only. Here rather than as liblxc mount
 * entries because liblxc applies linux.sysctl after its mounts, and /proc/sys
 * must still be writable then (runc also makes these read-only last). */
static void readonly_paths(const struct strv *paths)
{
	for (uint32_t i = 0; i < paths->n; i++) {
		const char *p = paths->v[i];
		struct stat st;

		if (lstat(p, &st) < 0 || S_ISLNK(st.st_mode))
			continue; /* absent in this container (or a symlink we will not follow) */
		if (mount(p, p, NULL, MS_BIND | MS_REC, NULL) < 0)
			die("bind %s: %s", p, strerror(errno));
		remount_ro(p);
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

/* The OCI seccomp profile, loaded with libseccomp as the last step before exec
 * (or before giving up privileges, when no_new_privs is off: loading a filter
 * needs either). Syscalls this kernel does not know are skipped, as runc does. */
static void write_attr(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		die("%s: %s", path, strerror(errno));
	n = write(fd, value, strlen(value));
	if (n < 0)
		die("%s: %s", path, strerror(errno));
	close(fd);
}

/* The AppArmor profile and SELinux label the process gets on its execve: written
 * to this thread's attr/exec, which the kernel applies at the next exec (runc's
 * way). lxcri checked that the host has the LSM before asking. */
static void set_exec_labels(const struct spec *s)
{
	char buf[4200];

	if (s->apparmor[0]) {
		snprintf(buf, sizeof(buf), "exec %s", s->apparmor);
		if (access("/proc/thread-self/attr/apparmor/exec", W_OK) == 0)
			write_attr("/proc/thread-self/attr/apparmor/exec", buf);
		else if (access("/proc/thread-self/attr/exec", W_OK) == 0)
			write_attr("/proc/thread-self/attr/exec", buf);
		else
			die("AppArmor profile %s: no attr/exec in the container's /proc", s->apparmor);
	}
	if (s->selinux[0]) {
		if (access("/proc/thread-self/attr/exec", W_OK) != 0)
			die("SELinux label %s: no attr/exec in the container's /proc", s->selinux);
		write_attr("/proc/thread-self/attr/exec", s->selinux);
	}
}

/* Does the filter hand syscalls to a listener (SCMP_ACT_NOTIFY)? Then it is loaded
 * while lxcri still listens on the sync socket, which passes the fd on. */
static int has_notify(const struct sc_spec *sc)
{
	if (!sc->present)
		return 0;
	for (uint32_t i = 0; i < sc->nrules; i++)
		if (sc->rules[i].action == SCMP_ACT_NOTIFY)
			return 1;
	return 0;
}

/* The listener's fd goes to lxcri (frame 'N' with the fd), which sends it on to
 * linux.seccomp.listenerPath with the container's state. */
static void send_notify_fd(int fd)
{
	send_fd_frame('N', fd, "seccomp listener fd");
}

static void load_seccomp(const struct sc_spec *sc)
{
	scmp_filter_ctx ctx;
	int r, notify_fd = -1;

	if (!sc->present)
		return;
	ctx = seccomp_init(sc->def);
	if (!ctx)
		die("seccomp: invalid default action");
	/* no_new_privs is the process's own setting, not libseccomp's to impose */
	seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
	if ((sc->flags & 1) && seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1) < 0)
		die("seccomp: flag SECCOMP_FILTER_FLAG_TSYNC is not supported here");
	if ((sc->flags & 2) && seccomp_attr_set(ctx, SCMP_FLTATR_CTL_LOG, 1) < 0)
		die("seccomp: flag SECCOMP_FILTER_FLAG_LOG is not supported here");
	if ((sc->flags & 4) && seccomp_attr_set(ctx, SCMP_FLTATR_CTL_SSB, 1) < 0)
		die("seccomp: flag SECCOMP_FILTER_FLAG_SPEC_ALLOW is not supported here");
	for (uint32_t i = 0; i < sc->narches; i++) {
		uint32_t arch = seccomp_arch_resolve_name(sc->arches[i]);
		if (!arch)
			die("seccomp: unknown architecture %s", sc->arches[i]);
		r = seccomp_arch_add(ctx, arch);
		if (r < 0 && r != -EEXIST)
			die("seccomp: cannot add architecture %s: %s", sc->arches[i], strerror(-r));
	}
	for (uint32_t i = 0; i < sc->nrules; i++) {
		const struct sc_rule *rule = &sc->rules[i];
		int nr = seccomp_syscall_resolve_name(rule->name);

		if (nr == __NR_SCMP_ERROR || rule->action == sc->def)
			continue;
		/* at most one comparison per argument: lxcri split the others (oci/seccomp.py) */
		r = seccomp_rule_add_array(ctx, rule->action, nr, rule->nargs, rule->args);
		if (r < 0)
			die("seccomp: rule for %s: %s", rule->name, strerror(-r));
	}
	r = seccomp_load(ctx);
	if (r < 0)
		die("seccomp: cannot load the filter: %s", strerror(-r));
	if (has_notify(sc)) {
		r = seccomp_notify_fd(ctx);
		if (r < 0)
			die("seccomp: the filter has no listener fd: %s", strerror(-r));
		notify_fd = fcntl(r, F_DUPFD_CLOEXEC, 3);
		if (notify_fd < 0)
			die("seccomp: dup the listener fd: %s", strerror(errno));
	}
	seccomp_release(ctx);
	if (notify_fd >= 0)
		send_notify_fd(notify_fd);
}

static void close_from(unsigned int lowest)
{
	if (syscall(SYS_close_range, lowest, ~0u, 0) == 0)
		return;
	for (int fd = (int)lowest; fd < 65536; fd++)
		close(fd);
}

/* Every fd from lowest on but one, which stays open (close-on-exec) until execve. */
static void close_from_but(unsigned int lowest, int keep)
{
	if (keep < (int)lowest) {
		close_from(lowest);
		return;
	}
	for (int fd = (int)lowest; fd < keep; fd++)
		close(fd);
	close_from((unsigned int)keep + 1);
}

/* fds from..to closed (close_range, or one by one on an old kernel) */
static void close_span(unsigned int from, unsigned int to)
{
	if (from > to)
		return;
	if (syscall(SYS_close_range, from, to, 0) == 0)
		return;
	for (unsigned int fd = from; fd <= to && fd < 65536; fd++)
		close((int)fd);
}

/*
 * Every fd from lowest on closed but `a` and `b` (-1: none), before the working directory
 * is resolved: whatever lxcri's or liblxc's fd stays open is a way back to the host, as
 * /proc/self/fd/N (a cgroup directory, the runtime dir), which a pod's workingDir can
 * name (the CVE-2024-21626 class). The preserved fds (3..lowest-1) are the caller's.
 */
static void close_all_but(unsigned int lowest, int a, int b)
{
	int keep[2] = {a < b ? a : b, a < b ? b : a};
	unsigned int from = lowest;

	for (int i = 0; i < 2; i++) {
		if (keep[i] < 0 || keep[i] < (int)from)
			continue;
		close_span(from, (unsigned int)keep[i] - 1);
		from = (unsigned int)keep[i] + 1;
	}
	close_span(from, ~0u);
}

/*
 * chdir to the process's cwd, resolved in the container's mount namespace after
 * pivot_root, then proved to be inside the container's root: the kernel's getcwd
 * answers "(unreachable)..." for a directory outside the root (a leaked fd's, a
 * host path through a magic link), which no path in the container can name.
 * Returns 0, or -errno of chdir (a directory outside the root is fatal at once).
 */
static int enter_cwd(const char *cwd)
{
	char buf[PATH_MAX + 64];
	long n;

	if (chdir(cwd) < 0)
		return -errno;
	n = syscall(SYS_getcwd, buf, sizeof(buf));
	if (n < 0)
		die("cwd \"%s\": cannot verify it: %s", cwd, strerror(errno));
	if (buf[0] != '/') {
		/* leave no way out before failing: back to the container's root */
		if (chdir("/") < 0)
			_exit(127);
		die("cwd \"%s\" is outside the container's root filesystem", cwd);
	}
	return 0;
}

/* As runc: the cwd is entered with root's rights if it can be (a directory only root may
 * search), else again once the process's user is set (a directory root cannot search,
 * e.g. on a root-squashed network share); *deferred says to try again after apply_user. */
static void cwd_before_user(const char *cwd, int *deferred)
{
	int r = enter_cwd(cwd);

	*deferred = 0;
	if (r == -EACCES || r == -EPERM)
		*deferred = 1;
	else if (r < 0)
		die("chdir to cwd (\"%s\") set in config.json failed: %s", cwd, strerror(-r));
}

static void cwd_after_user(const char *cwd, int deferred)
{
	int r;

	if (!deferred)
		return;
	r = enter_cwd(cwd);
	if (r < 0)
		die("chdir to cwd (\"%s\") set in config.json failed: %s", cwd, strerror(-r));
}

/*
 * lxcri-init exec SYNC_FD: the process of `lxcri exec`. lxcri has put us in the
 * container's cgroup; we join its namespaces, fork (a pid namespace is entered by
 * the children of the joiner), and the child becomes the process. Without
 * --detach we wait and exit exactly as it did; with it we exit at once and the
 * process is re-parented to the caller's subreaper, which reaps it.
 */
static pid_t exec_child;

static void forward(int sig)
{
	if (exec_child > 0)
		kill(exec_child, sig);
}

static void join_namespaces(pid_t target)
{
	/* user first (it grants the rights for the others), mnt last (it changes /proc) */
	static const char *const order[] = {"user", "ipc", "uts", "net", "pid", "cgroup", "time", "mnt"};
	int fds[8];
	char path[64];

	for (int i = 0; i < 8; i++) {
		struct stat theirs, ours;

		fds[i] = -1;
		snprintf(path, sizeof(path), "/proc/%d/ns/%s", target, order[i]);
		if (stat(path, &theirs) < 0)
			continue; /* a namespace type this kernel lacks */
		snprintf(path, sizeof(path), "/proc/self/ns/%s", order[i]);
		if (stat(path, &ours) == 0 && ours.st_ino == theirs.st_ino && ours.st_dev == theirs.st_dev)
			continue; /* shared with the host */
		snprintf(path, sizeof(path), "/proc/%d/ns/%s", target, order[i]);
		fds[i] = open(path, O_RDONLY | O_CLOEXEC);
		if (fds[i] < 0)
			die("cannot open %s namespace of the container: %s", order[i], strerror(errno));
	}
	for (int i = 0; i < 8; i++) {
		if (fds[i] < 0)
			continue;
		if (setns(fds[i], 0) < 0)
			die("cannot join the container's %s namespace: %s", order[i], strerror(errno));
		close(fds[i]);
	}
}

static int exec_main(void)
{
	struct spec s;
	char *exe;
	int status, cwd_deferred = 0;

	pid_t caller = getppid();

	memset(&s, 0, sizeof(s));
	read_spec(&s);
	/*
	 * In the foreground, the process lives no longer than the `lxcri exec` its caller
	 * started, as with runc: CRI-O ends a timed-out ExecSync, or a streaming exec whose
	 * client went away, by killing that process, and expects the command gone with it.
	 */
	if (!(s.exec_flags & EXEC_DETACH) &&
	    (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 || getppid() != caller))
		_exit(137);
	join_namespaces((pid_t)s.target_pid);
	exec_child = fork();
	if (exec_child < 0)
		die("fork: %s", strerror(errno));
	if (exec_child == 0) {
		/* our parent as seen from here: 0 when it is outside the pid namespace we joined */
		pid_t parent = getppid();

		setsid();
		if (s.flags & FLAG_NEW_PTY)
			new_console(s.rows, s.cols);
		if ((s.flags & FLAG_TERMINAL) && isatty(0) && ioctl(0, TIOCSCTTY, 0) < 0)
			die("cannot make the terminal the controlling one: %s", strerror(errno));
		/* nothing of the host's is left open to resolve the cwd through */
		close_all_but(3 + s.preserve_fds, sync_fd, -1);
		cwd_before_user(s.cwd[0] ? s.cwd : "/", &cwd_deferred);
		for (uint32_t i = 0; i < s.nrlimits; i++)
			if (setrlimit((int)s.rlimits[i].resource, &s.rlimits[i].lim) < 0)
				die("setrlimit %u: %s", s.rlimits[i].resource, strerror(errno));
		if (s.personality != NO_PERSONALITY && personality(s.personality) < 0)
			die("personality: %s", strerror(errno));
		set_exec_labels(&s);
		if (!(s.exec_flags & EXEC_NO_NEW_PRIVS) || has_notify(&s.sc))
			load_seccomp(&s.sc);
		apply_user(&s);
		cwd_after_user(s.cwd[0] ? s.cwd : "/", cwd_deferred);
		if ((s.exec_flags & EXEC_NO_NEW_PRIVS) && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
			die("no_new_privs: %s", strerror(errno));
		exe = resolve(s.args.v[0], &s.env);
		/* after the credentials changed (that clears it); a parent already gone shows as a new ppid */
		if (!(s.exec_flags & EXEC_DETACH) &&
		    (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 || getppid() != parent))
			_exit(137);
		reply('R', NULL); /* the caller learns our pid from the socket's credentials */
		close(sync_fd);
		sync_fd = -1;
		if (s.umask != NO_UMASK)
			umask((mode_t)s.umask);
		reset_signals();
		close_from(3 + s.preserve_fds);
		if ((s.exec_flags & EXEC_NO_NEW_PRIVS) && !has_notify(&s.sc))
			load_seccomp(&s.sc);
		execve(exe, s.args.v, s.env.v);
		dprintf(2, "lxcri exec: %s: %s\n", exe, strerror(errno));
		_exit(127);
	}
	close(sync_fd);
	sync_fd = -1;
	if (s.exec_flags & EXEC_DETACH)
		_exit(0);
	for (int sig = 1; sig < 32; sig++)
		if (sig != SIGCHLD && sig != SIGKILL && sig != SIGSTOP)
			signal(sig, forward);
	while (waitpid(exec_child, &status, 0) < 0)
		if (errno != EINTR)
			_exit(255);
	if (WIFSIGNALED(status)) {
		struct rlimit nocore = {0, 0};
		int sig = WTERMSIG(status);

		setrlimit(RLIMIT_CORE, &nocore);
		signal(sig, SIG_DFL);
		kill(getpid(), sig);
		_exit(128 + sig);
	}
	_exit(WEXITSTATUS(status));
}

int main(int argc, char *argv[])
{
	struct spec s;
	int fifo_fd;
	char *exe;
	char byte;
	ssize_t r;
	int cwd_deferred = 0;

	if (argc == 3 && strcmp(argv[1], "exec") == 0) {
		char err[256];

		sync_fd = atoi(argv[2]);
		/* this helper's child enters the container's pid namespace: from a sealed copy only */
		if (lxcri_reexec_sealed("lxcri-init", argv, err, sizeof(err)) < 0)
			die("run the exec helper from a sealed copy: %s", err);
		fcntl(sync_fd, F_SETFD, FD_CLOEXEC);
		return exec_main();
	}
	if (argc != 3) {
		dprintf(2, "lxcri-init: must be started by lxcri\n");
		return 126;
	}
	sync_fd = atoi(argv[1]);
	fifo_fd = atoi(argv[2]);
	fcntl(sync_fd, F_SETFD, FD_CLOEXEC);
	fcntl(fifo_fd, F_SETFD, FD_CLOEXEC);

	/* liblxc gave us a parent-death signal tied to its monitor; lxcri create kills
	 * the monitor once we are ready, so that we are re-parented to the caller's
	 * subreaper, which reaps us like runc's init (see container/create.py) */
	if (prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0) < 0)
		die("clear the parent-death signal: %s", strerror(errno));
	reply('H', NULL);
	memset(&s, 0, sizeof(s));
	read_spec(&s);
	receive_shared(&s);
	ptmx_symlink();
	if (s.flags & FLAG_NEW_PTY)
		new_console(s.rows, s.cols);
	/* still privileged: what needs CAP_SYS_ADMIN in the container's namespaces */
	if (s.flags & FLAG_READONLY)
		remount_ro("/");
	readonly_paths(&s.readonly_paths);
	move_shared(&s);
	apply_mount_attrs(&s);
	mask_specials(&s.masked_paths);
	/* after the binds of readonlyPaths: an unbindable root refuses them */
	apply_propagation(&s);
	/* liblxc sets the hostname only in a uts namespace it made; a joined one gets it here, as runc does */
	if (s.hostname[0] && sethostname(s.hostname, strlen(s.hostname)) < 0)
		die("sethostname %s: %s", s.hostname, strerror(errno));
	if (s.domainname[0] && setdomainname(s.domainname, strlen(s.domainname)) < 0)
		die("setdomainname %s: %s", s.domainname, strerror(errno));
	if (s.personality != NO_PERSONALITY && personality(s.personality) < 0)
		die("personality: %s", strerror(errno));
	if (s.flags & FLAG_NO_PROCESS) {
		/* a container without a process: it exists until deleted; `lxcri start` refuses it */
		reply('R', NULL);
		close(sync_fd);
		sync_fd = -1;
		while (read(fifo_fd, &byte, 1) < 0 && errno == EINTR)
			;
		return 0;
	}
	/* nothing of the host's is left open to resolve the cwd through (see close_all_but) */
	close_all_but(3 + s.preserve_fds, sync_fd, fifo_fd);
	cwd_before_user(s.cwd[0] ? s.cwd : "/", &cwd_deferred);
	/* without no_new_privs, loading a filter needs privileges we are about to drop;
	 * a filter with a listener is loaded while lxcri can still pass its fd on */
	set_exec_labels(&s);
	if (!(s.exec_flags & EXEC_NO_NEW_PRIVS) || has_notify(&s.sc))
		load_seccomp(&s.sc);
	/* as runc does: become the process's user before the wait, so that create
	 * reports failures, and look the executable up with the user's rights */
	apply_user(&s);
	cwd_after_user(s.cwd[0] ? s.cwd : "/", cwd_deferred);
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
	/* fifo_fd stays open, close-on-exec, until execve: `lxcri start` waits for it to close, so
	 * that it returns once the process runs (a signal to the container's pid 1 before then
	 * would meet no handler and be dropped) */

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
	close_from_but(3 + s.preserve_fds, fifo_fd);
	if ((s.exec_flags & EXEC_NO_NEW_PRIVS) && !has_notify(&s.sc))
		load_seccomp(&s.sc);
	execve(exe, s.args.v, s.env.v);
	dprintf(2, "lxcri-init: exec %s: %s\n", exe, strerror(errno));
	return 127;
}
