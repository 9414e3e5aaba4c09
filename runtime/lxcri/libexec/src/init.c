/*
 * lxcri-init SYNC_FD FIFO_FD      the container's init (create)
 * lxcri-init exec SYNC_FD         the process of `lxcri exec` (init_exec.c)
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
 *   2. receives the exact argv, env, user, groups, capabilities, umask, the
 *      startContainer hooks and what liblxc leaves undone (mounts, labels, seccomp),
 *   3. finishes the container's mounts, becomes that user with those capabilities
 *      and resolves the executable, reporting failures (e.g. "not found") to create,
 *      so create fails as runc's does,
 *   4. blocks on the exec fifo until lxcri start writes a byte to it,
 *   5. runs the startContainer hooks, closes every fd the process must not
 *      inherit, and execs the process.
 * liblxc has already applied namespaces, the config's mounts, cgroups, rlimits
 * and no_new_privs before running this; the seccomp profile is loaded here.
 *
 * This file is the flow of both modes' entry; each step lives in the unit of its
 * concern (see init.h): init_sync.c (the socket to lxcri), init_spec.c (decoding
 * the spec), init_mounts.c, init_fds.c (fds, terminal, cwd), init_creds.c (user,
 * capabilities, labels), init_seccomp.c, init_start.c (executable, fifo, hooks)
 * and init_exec.c (exec mode). The protocol itself is in wire.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "init.h"
#include "sealed.h"

int main(int argc, char *argv[])
{
	struct spec s;
	int fifo_fd;
	char *exe;
	char byte;
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
	reply(SYNC_HELLO, NULL);
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
	apply_personality(&s);
	if (s.flags & FLAG_NO_PROCESS) {
		/* a container without a process: it exists until deleted; `lxcri start` refuses it */
		reply(SYNC_READY, NULL);
		close_sync();
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
	reply(SYNC_READY, NULL);
	close_sync();

	wait_for_start(fifo_fd);
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
