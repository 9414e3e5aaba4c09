/*
 * init_fds.c: what the process can reach through its fds and its working
 * directory, and its terminal.
 *
 * Every fd lxcri or liblxc left open is a way back to the host (as /proc/self/fd/N:
 * a cgroup directory, the runtime dir), which a pod's workingDir could name (the
 * CVE-2024-21626 class). So the init closes all but the caller's preserved fds
 * (3..3+preserve_fds-1) and its own sockets before it resolves the cwd, proves the
 * cwd is inside the container's root, and closes those too right before execve.
 * A new pty is opened in the container's own devpts and its master handed to
 * lxcri, as runc gives one.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "init.h"

/*
 * A terminal from the container's own devpts, as runc gives: open its ptmx,
 * make the peer our stdio, and hand the master to lxcri (a SYNC_PTY_MASTER frame with the fd),
 * which passes it on to the caller's --console-socket.
 */
void new_console(uint32_t rows, uint32_t cols)
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
	send_fd_frame(SYNC_PTY_MASTER, master, "pty");
}

void close_from(unsigned int lowest)
{
	if (syscall(SYS_close_range, lowest, ~0u, 0) == 0)
		return;
	for (int fd = (int)lowest; fd < 65536; fd++)
		close(fd);
}

/* Every fd from lowest on but one, which stays open (close-on-exec) until execve. */
void close_from_but(unsigned int lowest, int keep)
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
void close_all_but(unsigned int lowest, int a, int b)
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
void cwd_before_user(const char *cwd, int *deferred)
{
	int r = enter_cwd(cwd);

	*deferred = 0;
	if (r == -EACCES || r == -EPERM)
		*deferred = 1;
	else if (r < 0)
		die("chdir to cwd (\"%s\") set in config.json failed: %s", cwd, strerror(-r));
}

void cwd_after_user(const char *cwd, int deferred)
{
	int r;

	if (!deferred)
		return;
	r = enter_cwd(cwd);
	if (r < 0)
		die("chdir to cwd (\"%s\") set in config.json failed: %s", cwd, strerror(-r));
}
