/*
 * init_mounts.c: the mount work liblxc leaves to lxcri-init, done after pivot_root
 * while the init still has CAP_SYS_ADMIN in the container's namespaces.
 *
 * liblxc cannot do these, or not in the order the runtime-spec needs: root.readonly
 * (liblxc would make the rootfs read-only before creating the mount points in it),
 * readonlyPaths (liblxc applies linux.sysctl after its mounts; /proc/sys must still
 * be writable then), masked FIFOs and sockets (liblxc refuses a FIFO mount target),
 * shared (Bidirectional) binds moved in from host clones, recursive mount attributes
 * (rro and the other r* options), the propagation of every mount (liblxc leaves
 * them all shared) and /dev/ptmx as a symlink into the container's devpts.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "init.h"

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

void remount_ro(const char *path)
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
void apply_propagation(const struct spec *s)
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
void apply_mount_attrs(const struct spec *s)
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

/* A clone's mount point that liblxc could not make: it lies below another clone (a volume
 * inside a volume), which only this side of pivot_root sees. Made as runc makes its mount
 * points, inside the container's root: the path cannot lead out of it any more. */
static void make_mount_point(const char *dest, int fd)
{
	char path[PATH_MAX];
	struct stat st;
	int f;

	if (lstat(dest, &st) == 0)
		return;
	if (fstat(fd, &st) < 0)
		die("stat the clone for %s: %s", dest, strerror(errno));
	if (snprintf(path, sizeof(path), "%s", dest) >= (int)sizeof(path))
		die("mount point %s: path too long", dest);
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			die("make the mount point %s: %s", path, strerror(errno));
		*p = '/';
	}
	if (S_ISDIR(st.st_mode)) {
		if (mkdir(dest, 0755) < 0 && errno != EEXIST)
			die("make the mount point %s: %s", dest, strerror(errno));
		return;
	}
	f = open(dest, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (f < 0)
		die("make the mount point %s: %s", dest, strerror(errno));
	close(f);
}

/* Each clone onto its destination: over liblxc's bind there (a Bidirectional volume: a peer
 * of the host's mount, so mounts made on either side show on the other), or, for a container
 * in a joined user namespace, over liblxc's placeholder or on a mount point made here. */
void move_shared(const struct spec *s)
{
	for (uint32_t i = 0; i < s->nshared; i++) {
		const char *dest = s->shared[i].dest;

		make_mount_point(dest, s->shared[i].fd);

		if (syscall(SYS_move_mount, s->shared[i].fd, "", AT_FDCWD, dest, MOVE_MOUNT_F_EMPTY_PATH) < 0)
			die("move the shared mount onto %s: %s", dest, strerror(errno));
		close(s->shared[i].fd);
		if (s->shared[i].flags)
			remount_bind(dest, s->shared[i].flags);
	}
}

/* /dev/ptmx as the runtime-spec wants it: a symlink to pts/ptmx, the container's own devpts
 * (liblxc's autodev leaves a device node there). Only where the config mounted a devpts. */
void ptmx_symlink(void)
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
void mask_specials(const struct strv *paths)
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
void readonly_paths(const struct strv *paths)
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
