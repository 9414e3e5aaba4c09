/*
 * init_creds.c: who the process runs as: its user and groups, its capabilities,
 * its rlimits and personality (exec mode; liblxc set the init's), and the AppArmor
 * profile and SELinux label it is exec'd under.
 *
 * The order is runc's, because each step needs rights the next one gives up: the
 * bounding set is dropped while still privileged, the labels are written before
 * the uid changes, and capabilities are kept across setuid and set after it.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "init.h"

/* The process's user and capabilities, in runc's order: drop from the bounding set
 * while still privileged, keep the rest across the uid change, then set the
 * effective/permitted/inheritable sets and raise the ambient ones. */
void apply_user(const struct spec *s)
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

/* One write to an LSM attribute file of this thread (attr/exec). */
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
void set_exec_labels(const struct spec *s)
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

/* exec mode: the process's rlimits (liblxc set the init's from the config) */
void apply_rlimits(const struct spec *s)
{
	for (uint32_t i = 0; i < s->nrlimits; i++)
		if (setrlimit((int)s->rlimits[i].resource, &s->rlimits[i].lim) < 0)
			die("setrlimit %u: %s", s->rlimits[i].resource, strerror(errno));
}

/* the personality(2) domain the config asks for, if any */
void apply_personality(const struct spec *s)
{
	if (s->personality != NO_PERSONALITY && personality(s->personality) < 0)
		die("personality: %s", strerror(errno));
}
