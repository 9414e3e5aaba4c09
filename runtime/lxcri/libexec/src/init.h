/*
 * init.h: what the units of lxcri-init share: the spec lxcri sends it (decoded
 * by init_spec.c from the sync socket's message, see wire.h), the sync socket
 * itself, and the steps each unit provides to the two flows in init.c (create)
 * and init_exec.c (exec). One header, so that every unit sees the same spec.
 */
#ifndef LXCRI_INIT_H
#define LXCRI_INIT_H

#include <stdint.h>
#include <seccomp.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "wire.h"

struct strv {
	uint32_t n;
	char **v; /* NULL-terminated */
};

/* a startContainer hook */
struct hook {
	uint32_t timeout;
	char *path;
	struct strv args;
	struct strv env;
};

/* the seccomp profile, as oci/seccomp.py encoded it */
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

/* The spec: what lxcri tells the init, field by field in protocol.py's order. */
struct spec {
	uint32_t flags; /* FLAG_* (wire.h) */
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
	uint32_t exec_flags; /* EXEC_* (wire.h) */
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

/* init_sync.c: the sync socket to lxcri (-1 once closed) and what goes over it */
extern int sync_fd;
void reply(char kind, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
void send_fd_frame(char tag, int fd, const char *what);
void receive_shared(struct spec *s);
void close_sync(void);

/* init_spec.c */
void read_spec(struct spec *s);

/* init_fds.c: what the process can reach: its fds, its terminal, its working directory */
void new_console(uint32_t rows, uint32_t cols);
void close_from(unsigned int lowest);
void close_from_but(unsigned int lowest, int keep);
void close_all_but(unsigned int lowest, int a, int b);
void cwd_before_user(const char *cwd, int *deferred);
void cwd_after_user(const char *cwd, int deferred);

/* init_mounts.c: the mount work liblxc leaves to the init, after pivot_root */
void remount_ro(const char *path);
void readonly_paths(const struct strv *paths);
void move_shared(const struct spec *s);
void apply_mount_attrs(const struct spec *s);
void mask_specials(const struct strv *paths);
void apply_propagation(const struct spec *s);
void ptmx_symlink(void);

/* init_creds.c: who the process runs as */
void apply_user(const struct spec *s);
void set_exec_labels(const struct spec *s);
void apply_rlimits(const struct spec *s);
void apply_personality(const struct spec *s);

/* init_seccomp.c */
int has_notify(const struct sc_spec *sc);
void load_seccomp(const struct sc_spec *sc);

/* init_start.c: the last steps before execve */
char *resolve(const char *name, const struct strv *env);
void reset_signals(void);
void run_hook(const struct hook *h, const char *state);
void wait_for_start(int fifo_fd);

/* init_exec.c */
int exec_main(void);

#endif
