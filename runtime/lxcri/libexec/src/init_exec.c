/*
 * init_exec.c: lxcri-init's exec mode (`lxcri-init exec SYNC_FD`): the process
 * of `lxcri exec`, joining a container that already runs.
 *
 * lxcri has put this helper in the container's cgroup and runs it from a sealed
 * copy (sealed.h: its child shows in the container's pid namespace). It reads the
 * same spec as the init, joins the container's namespaces, forks (a pid namespace
 * is entered by the children of the joiner), and the child does what liblxc and
 * the init do for a container's first process: terminal, fds, cwd, rlimits,
 * personality, labels, seccomp, user, then execve. Without --detach the parent
 * waits and exits exactly as the child did; with it, it exits at once and the
 * process is re-parented to the caller's subreaper, which reaps it.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sched.h>
#include <unistd.h>

#include "init.h"

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

int exec_main(void)
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
		apply_rlimits(&s);
		apply_personality(&s);
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
		reply(SYNC_READY, NULL); /* the caller learns our pid from the socket's credentials */
		close_sync();
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
	close_sync();
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
