/*
 * lxcri-monitor ROOT ID
 *
 * Runs liblxc's start in the foreground, so this process is liblxc's monitor
 * while the container is set up: the init is its child. Once the init reports
 * ready, lxcri create kills this process (the init has cleared its parent-death
 * signal) and the init is re-parented to the caller's subreaper, which reaps it
 * (see runtime/lxcri/container/create.py). Should the container end while this
 * still runs (lxcri run, a crash in between), it exits as the init did: the same
 * code, or killed by the same signal.
 *
 * Written in C and linked to the shared liblxc: it starts in ~1 ms; all policy
 * lives in the Python runtime, which writes the config this loads from ROOT/ID/config.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lxc/lxccontainer.h>

#include "sealed.h"

/*
 * liblxc 5 reports the init's end in error_num as a wait status for an exit
 * (code << 8), but a death by signal as (sig << 8) | 0x7f, the shape of a
 * "stopped" status (measured: SIGKILL -> 2431, SIGTERM -> 3967). Accept both
 * that and a true WIFSIGNALED status.
 */
static int death_signal(int status)
{
	if ((status & 0xff) == 0x7f)
		return (status >> 8) & 0xff;
	if (WIFSIGNALED(status))
		return WTERMSIG(status);
	return 0;
}

static void exit_like(int status)
{
	int sig = death_signal(status);

	if (sig > 0) {
		struct rlimit nocore = {0, 0};
		sigset_t set;

		/* No core file of the monitor for a container that dumped core. */
		setrlimit(RLIMIT_CORE, &nocore);
		signal(sig, SIG_DFL);
		sigemptyset(&set);
		sigaddset(&set, sig);
		sigprocmask(SIG_UNBLOCK, &set, NULL);
		kill(getpid(), sig);
		/* only reached for signals whose default action is not fatal */
		_exit(128 + sig);
	}
	if (WIFEXITED(status))
		_exit(WEXITSTATUS(status));
	_exit(255);
}

/*
 * liblxc writes a user namespace's uid and gid maps through newuidmap/newgidmap
 * whenever it finds both on PATH (the uidmap package), even when it runs as root,
 * and those tools then insist on an /etc/subuid range, which root seldom has:
 * create failed on nodes with the package. runc and crun, as root, write
 * /proc/PID/uid_map and gid_map themselves, and so does liblxc when it finds no
 * such tool. So, as root, liblxc's start runs with no PATH: nothing in it looks a
 * command up by name (lxcri's hook command, the init helper and /bin/sh for hooks
 * are absolute paths; OCI hooks run with their own env). A non-root lxcri keeps
 * PATH: it can only map through those tools.
 */
static void map_ids_directly_as_root(void)
{
	if (geteuid() == 0)
		unsetenv("PATH");
}

/* The first five fields of a mountinfo line, split in place (fields[4] is the mount point,
 * fields[3] the mount's root in its filesystem); the number found. */
static int mountinfo_fields(char *line, char *fields[5])
{
	char *save = NULL, *tok;
	int i = 0;

	for (tok = strtok_r(line, " ", &save); tok && i < 5; tok = strtok_r(NULL, " ", &save))
		fields[i++] = tok;
	return i;
}

/*
 * An absolute linux.cgroupsPath is meant from the cgroup root, whatever cgroup the caller
 * (conmon, the containerd shim, a kind node's kubelet) sits in. liblxc places
 * lxc.cgroup.dir.container and .monitor below a base cgroup per hierarchy: as root, the
 * cgroup of /proc/1 (a container's or kind node's pid 1 is seldom in the root cgroup);
 * with lxc.cgroup.relative = 1 (lxcri's config has it), its own. So the monitor first moves
 * itself into the root cgroup of every mounted hierarchy, and liblxc's base is the root.
 * (liblxc then moves it into lxc.cgroup.dir.monitor at once.) A hierarchy that refuses
 * fails the create: the container would land somewhere else than its config says.
 * Not as non-root: such a monitor can only use cgroups below its own.
 */
static int enter_root_cgroups(char *err, size_t len)
{
	FILE *f;
	char *line = NULL;
	size_t cap = 0;
	int ret = 0;

	if (geteuid() != 0)
		return 0;
	f = fopen("/proc/self/mountinfo", "re");
	if (!f) {
		snprintf(err, len, "cannot read /proc/self/mountinfo: %s", strerror(errno));
		return -1;
	}
	while (ret == 0 && getline(&line, &cap, f) > 0) {
		char *fields[5], *sep, *fstype;
		char path[4096];
		int fd;

		sep = strstr(line, " - ");
		if (!sep)
			continue;
		fstype = sep + 3;
		if (strncmp(fstype, "cgroup ", 7) != 0 && strncmp(fstype, "cgroup2 ", 8) != 0)
			continue;
		*sep = '\0';
		/* A mount of a subtree (or with an escaped character in its path) is no hierarchy's
		 * root here. */
		if (mountinfo_fields(line, fields) < 5 || strcmp(fields[3], "/") != 0 || strchr(fields[4], '\\'))
			continue;
		if (snprintf(path, sizeof(path), "%s/cgroup.procs", fields[4]) >= (int)sizeof(path))
			continue;
		fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, "0", 1) != 1) {
			snprintf(err, len, "cannot move the monitor into the root cgroup %s: %s", fields[4],
				 strerror(errno));
			ret = -1;
		}
		if (fd >= 0)
			close(fd);
	}
	free(line);
	fclose(f);
	return ret;
}

/*
 * A container in a user namespace (new, or a pod's joined by path) mounts its own proc and
 * sysfs, and the kernel allows that only where the mount namespace holds a fully visible one:
 * none of its files covered by another mount. Nodes cover some (lxcfs on the host over
 * /proc/meminfo, a sandbox's fixed sysctls over /proc/sys/..., a fake /sys/kernel/mm/hugepages),
 * and the container's mount namespace is a copy of the monitor's, with those covers locked in.
 * So, for such a container only, the monitor takes a mount namespace of its own, made a slave
 * below /proc and /sys (nothing it does there reaches the host), and drops the mounts below
 * them there. The container then sees its own fresh proc and sysfs, as without a user
 * namespace; the host keeps every mount.
 */
static bool wants_user_namespace(struct lxc_container *c)
{
	char buf[256];
	int n;

	n = c->get_config_item(c, "lxc.namespace.share.user", buf, sizeof(buf));
	if (n > 0)
		return true;
	n = c->get_config_item(c, "lxc.namespace.clone", buf, sizeof(buf));
	if (n <= 0 || n >= (int)sizeof(buf))
		return false;
	for (char *save = NULL, *tok = strtok_r(buf, " \t\n", &save); tok; tok = strtok_r(NULL, " \t\n", &save))
		if (strcmp(tok, "user") == 0)
			return true;
	return false;
}

static int uncover_proc_and_sys(char *err, size_t len)
{
	char *paths[256];
	int count = 0, ret = 0;
	FILE *f;
	char *line = NULL;
	size_t cap = 0;

	if (geteuid() != 0)
		return 0;
	if (unshare(CLONE_NEWNS) < 0) {
		snprintf(err, len, "cannot make the monitor's mount namespace: %s", strerror(errno));
		return -1;
	}
	if (mount(NULL, "/proc", NULL, MS_REC | MS_SLAVE, NULL) < 0 ||
	    mount(NULL, "/sys", NULL, MS_REC | MS_SLAVE, NULL) < 0) {
		snprintf(err, len, "cannot make /proc and /sys slave mounts: %s", strerror(errno));
		return -1;
	}
	f = fopen("/proc/self/mountinfo", "re");
	if (!f) {
		snprintf(err, len, "cannot read /proc/self/mountinfo: %s", strerror(errno));
		return -1;
	}
	while (getline(&line, &cap, f) > 0 && count < 256) {
		char *fields[5], *target;

		/* an escaped character (\040 ...) is no path umount2 takes as it stands: skip it */
		if (mountinfo_fields(line, fields) < 5 || strchr(fields[4], '\\'))
			continue;
		target = fields[4];
		/* /sys/fs/cgroup stays: liblxc places the container's cgroups through it, and its
		 * mounts sit on sysfs's permanently empty directory, which the kernel allows */
		if (strncmp(target, "/proc/", 6) == 0 ||
		    (strncmp(target, "/sys/", 5) == 0 && strcmp(target, "/sys/fs/cgroup") != 0 &&
		     strncmp(target, "/sys/fs/cgroup/", 15) != 0))
			paths[count++] = strdup(target);
	}
	free(line);
	fclose(f);
	/* mountinfo lists a mount after its parent: the deepest go first */
	for (int i = count - 1; i >= 0; i--) {
		if (paths[i] && umount2(paths[i], MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT && ret == 0) {
			snprintf(err, len, "cannot uncover %s in the monitor's mount namespace: %s", paths[i],
				 strerror(errno));
			ret = -1;
		}
		free(paths[i]);
	}
	return ret;
}

/* What went wrong before liblxc ran, where lxcri create looks for it (ROOT/ID/monitor-error). */
static void report(const char *root, const char *id, const char *msg)
{
	char path[4096];
	int fd;

	fprintf(stderr, "lxcri-monitor: %s\n", msg);
	if (snprintf(path, sizeof(path), "%s/%s/monitor-error", root, id) >= (int)sizeof(path))
		return;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return;
	if (write(fd, msg, strlen(msg)) < 0) {
		/* nothing more to say: stderr has it */
	}
	close(fd);
}

int main(int argc, char *argv[])
{
	struct lxc_container *c;
	bool started;
	int status;

	if (argc != 3) {
		fprintf(stderr, "usage: lxcri-monitor ROOT ID\n");
		return 2;
	}
	/* The container's init is our child until it execs the init helper: in the container's
	 * pid namespace (or a pod's shared one) it shows our executable. A sealed copy only. */
	{
		char err[256];

		if (lxcri_reexec_sealed("lxcri-monitor", argv, err, sizeof(err)) < 0) {
			fprintf(stderr, "lxcri-monitor: run from a sealed copy: %s\n", err);
			return 1;
		}
	}
	/* do not pin the caller's cwd (often the bundle) for the container's lifetime */
	if (chdir("/") < 0)
		return 1;
	{
		char err[512];

		if (enter_root_cgroups(err, sizeof(err)) < 0) {
			report(argv[1], argv[2], err);
			return 1;
		}
	}
	c = lxc_container_new(argv[2], argv[1]);
	if (!c) {
		fprintf(stderr, "lxcri-monitor: cannot load container %s in %s\n", argv[2], argv[1]);
		return 1;
	}
	if (wants_user_namespace(c)) {
		char err[512];

		if (uncover_proc_and_sys(err, sizeof(err)) < 0) {
			report(argv[1], argv[2], err);
			lxc_container_put(c);
			return 1;
		}
	}
	/* Keep the fds lxcri create handed down (sync socket, exec fifo, --preserve-fds):
	 * liblxc passes them to the init, whose helper closes what the process must not see. */
	c->want_close_all_fds(c, false);
	c->want_daemonize(c, false);
	map_ids_directly_as_root();
	started = c->start(c, 0, NULL);
	status = c->error_num;
	if (!started) {
		/* liblxc failed before or while starting the init; the reason is in lxc.log */
		lxc_container_put(c);
		_exit(status > 0 && WIFEXITED(status) && WEXITSTATUS(status) ? WEXITSTATUS(status) : 1);
	}
	lxc_container_put(c);
	exit_like(status);
	return 255;
}
