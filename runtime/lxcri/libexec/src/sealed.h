/*
 * Run a helper from a sealed, anonymous copy of itself (the CVE-2019-5736 class).
 *
 * A process that enters a container's pid namespace shows the container its
 * executable as /proc/PID/exe. Were that the host's file, container root could
 * open it with O_PATH, wait for the helper to exec the user's program, reopen the
 * fd through /proc/self/fd for writing and replace the host's binary (and, while
 * holding it open for writing, make every other exec on the node fail with
 * ETXTBSY). So a helper that will be seen there first copies itself into a memfd,
 * seals it against any write, resize or further sealing, and re-executes from it:
 * the container can only ever reach that sealed copy, which is private to this
 * process and gone once it exits. The kernel cannot write a sealed memfd, and
 * nothing of the host's file is reachable from the copy.
 *
 * Header-only so that the static init and the dynamic monitor share it.
 */
#ifndef LXCRI_SEALED_H
#define LXCRI_SEALED_H

#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U /* Linux 6.3: asked for where vm.memfd_noexec would refuse the exec */
#endif
#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif
#ifndef AT_EMPTY_PATH
#define AT_EMPTY_PATH 0x1000
#endif

#define LXCRI_SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

extern char **environ;

/*
 * The sealed copy is loaded from a memfd, so an $ORIGIN-relative RPATH (what the
 * node tree gives the helpers, to find liblxc beside them) no longer points
 * anywhere. Before the re-exec we hand the loader the directories of the libraries
 * this process already has mapped, through LD_LIBRARY_PATH, and remember the
 * caller's own value in LXCRI_SEALED_LDPATH ("=" and the value, or "" for unset); the copy puts it back
 * first thing, so nothing it starts sees our path. Only libraries the loader
 * already trusted for this process are named, so nothing new can be injected.
 */
#define LXCRI_LDPATH_MARK "LXCRI_SEALED_LDPATH"

struct lxcri_ldpath {
	char buf[4096];
	size_t len;
	int full;
};

static int lxcri_collect_libdir(struct dl_phdr_info *info, size_t size, void *data)
{
	struct lxcri_ldpath *p = data;
	const char *name = info->dlpi_name, *slash;
	size_t dlen;

	(void)size;
	if (!name || name[0] != '/' || !(slash = strrchr(name, '/')))
		return 0;
	dlen = (size_t)(slash - name);
	if (dlen == 0)
		dlen = 1;
	/* skip a directory we already named; ':' separates, so a name holding one is unusable */
	if (memchr(name, ':', dlen))
		return 0;
	for (const char *q = p->buf; q && *q;) {
		const char *end = strchr(q, ':');
		size_t qlen = end ? (size_t)(end - q) : strlen(q);

		if (qlen == dlen && strncmp(q, name, dlen) == 0)
			return 0;
		q = end ? end + 1 : NULL;
	}
	if (p->len + dlen + 2 > sizeof(p->buf)) {
		p->full = 1;
		return 0;
	}
	if (p->len)
		p->buf[p->len++] = ':';
	memcpy(p->buf + p->len, name, dlen);
	p->len += dlen;
	p->buf[p->len] = '\0';
	return 0;
}

/* Before the re-exec: point the loader at our libraries' directories. */
static void lxcri_ldpath_for_copy(void)
{
	static struct lxcri_ldpath p;
	const char *old = getenv("LD_LIBRARY_PATH");

	p.len = 0;
	p.full = 0;
	p.buf[0] = '\0';
	dl_iterate_phdr(lxcri_collect_libdir, &p);
	if (p.len == 0 || p.full)
		return; /* static, or too many to name: the copy's loader uses its defaults */
	if (old) {
		size_t n = strlen(old) + 2;
		char *mark = malloc(n);

		if (!mark)
			return;
		snprintf(mark, n, "=%s", old);
		setenv(LXCRI_LDPATH_MARK, mark, 1);
		free(mark);
	} else {
		setenv(LXCRI_LDPATH_MARK, "", 1);
	}
	setenv("LD_LIBRARY_PATH", p.buf, 1);
}

/* In the copy: give back the caller's LD_LIBRARY_PATH (or its absence). */
static void lxcri_ldpath_restore(void)
{
	const char *old = getenv(LXCRI_LDPATH_MARK);

	if (!old)
		return;
	if (old[0] == '=')
		setenv("LD_LIBRARY_PATH", old + 1, 1);
	else
		unsetenv("LD_LIBRARY_PATH");
	unsetenv(LXCRI_LDPATH_MARK);
}

/* Is this process's executable a memfd with all our seals? */
static int lxcri_running_sealed(void)
{
	int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	int seals;

	if (fd < 0)
		return 0;
	seals = fcntl(fd, F_GET_SEALS);
	close(fd);
	return seals >= 0 && (seals & LXCRI_SEALS) == LXCRI_SEALS;
}

/*
 * Re-execute argv from a sealed memfd copy unless already running from one.
 * Returns only on failure, with a message in err (the caller reports it: running on
 * from the host's file would expose it). fds without close-on-exec survive, as
 * with any exec; the memfd itself is close-on-exec.
 */
static int lxcri_reexec_sealed(const char *name, char **argv, char *err, size_t errlen)
{
	struct stat st;
	off_t off = 0;
	int src, mfd;

	char self[64];
	ssize_t len;

	if (lxcri_running_sealed()) {
		lxcri_ldpath_restore();
		return 0;
	}
	/* a memfd without our seals: something went wrong after the re-exec; never loop */
	len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (len > 0 && (self[len] = '\0', strncmp(self, "/memfd:", 7) == 0)) {
		snprintf(err, errlen, "running from %s, which is not sealed", self);
		return -1;
	}
	src = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	if (src < 0 || fstat(src, &st) < 0) {
		snprintf(err, errlen, "open own executable: %s", strerror(errno));
		return -1;
	}
	mfd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
	if (mfd < 0 && errno == EINVAL) /* a kernel before 6.3 knows no MFD_EXEC */
		mfd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (mfd < 0) {
		snprintf(err, errlen, "memfd_create: %s", strerror(errno));
		close(src);
		return -1;
	}
	while (off < st.st_size) {
		ssize_t n = sendfile(mfd, src, &off, (size_t)(st.st_size - off));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, errlen, "copy own executable: %s", n < 0 ? strerror(errno) : "short file");
			close(src);
			close(mfd);
			return -1;
		}
	}
	close(src);
	if (fcntl(mfd, F_ADD_SEALS, LXCRI_SEALS) < 0) {
		snprintf(err, errlen, "seal the copy: %s", strerror(errno));
		close(mfd);
		return -1;
	}
	lxcri_ldpath_for_copy();
	syscall(SYS_execveat, mfd, "", argv, environ, AT_EMPTY_PATH);
	lxcri_ldpath_restore();
	snprintf(err, errlen, "exec the sealed copy: %s", strerror(errno));
	close(mfd);
	return -1;
}

#endif
