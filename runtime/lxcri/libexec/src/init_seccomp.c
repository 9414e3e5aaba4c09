/*
 * init_seccomp.c: the container's seccomp profile, loaded with libseccomp (linked
 * statically into the init, as all of it is).
 *
 * It is loaded as the last step before execve, or, when no_new_privs is off, before
 * the init gives up its privileges (loading a filter needs one or the other); a
 * filter with a listener (SCMP_ACT_NOTIFY) is loaded while lxcri still listens on the
 * sync socket, which takes its fd to linux.seccomp.listenerPath. Syscalls this kernel
 * does not know are skipped, as runc does.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <seccomp.h>

#include "init.h"

/* Does the filter hand syscalls to a listener (SCMP_ACT_NOTIFY)? Then it is loaded
 * while lxcri still listens on the sync socket, which passes the fd on. */
int has_notify(const struct sc_spec *sc)
{
	if (!sc->present)
		return 0;
	for (uint32_t i = 0; i < sc->nrules; i++)
		if (sc->rules[i].action == SCMP_ACT_NOTIFY)
			return 1;
	return 0;
}

/* The listener's fd goes to lxcri (a SYNC_SECCOMP_LISTENER frame with the fd), which sends it on to
 * linux.seccomp.listenerPath with the container's state. */
static void send_notify_fd(int fd)
{
	send_fd_frame(SYNC_SECCOMP_LISTENER, fd, "seccomp listener fd");
}

/* The OCI seccomp profile, loaded with libseccomp as the last step before exec
 * (or before giving up privileges, when no_new_privs is off: loading a filter
 * needs either). Syscalls this kernel does not know are skipped, as runc does. */
void load_seccomp(const struct sc_spec *sc)
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
