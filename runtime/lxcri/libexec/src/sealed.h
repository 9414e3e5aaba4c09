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
#include <stdio.h>
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

	if (lxcri_running_sealed())
		return 0;
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
	syscall(SYS_execveat, mfd, "", argv, environ, AT_EMPTY_PATH);
	snprintf(err, errlen, "exec the sealed copy: %s", strerror(errno));
	close(mfd);
	return -1;
}

#endif
