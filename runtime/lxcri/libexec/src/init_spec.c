/*
 * init_spec.c: decoding the spec lxcri sends lxcri-init over the sync socket.
 *
 * The message is built by encode() in runtime/lxcri/libexec/protocol.py (the
 * Python mirror of this format): little-endian u32 fields and length-prefixed
 * strings, so that the exact argv and env survive any bytes but NUL and no parser
 * is needed here. Every count is bounded before it sizes an allocation; a short
 * or malformed message fails the init with the reason, never reads past its end.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "init.h"

/* A cursor over the spec message. */
struct cur {
	const char *p;
	const char *end;
};

static uint32_t get_u32(struct cur *c)
{
	uint32_t v;
	if (c->end - c->p < 4)
		die("truncated spec");
	v = wire_get_u32(c->p);
	c->p += 4;
	return v;
}

static uint64_t get_u64(struct cur *c)
{
	uint64_t lo = get_u32(c), hi = get_u32(c);
	return lo | (hi << 32);
}

static char *get_str(struct cur *c)
{
	uint32_t n = get_u32(c);
	char *s;
	if ((size_t)(c->end - c->p) < n)
		die("truncated spec string");
	s = malloc(n + 1);
	if (!s)
		die("out of memory");
	memcpy(s, c->p, n);
	s[n] = '\0';
	c->p += n;
	return s;
}

static void get_strv(struct cur *c, struct strv *sv)
{
	sv->n = get_u32(c);
	if (sv->n > (1u << 20))
		die("spec vector too long");
	sv->v = calloc(sv->n + 1, sizeof(char *));
	if (!sv->v)
		die("out of memory");
	for (uint32_t i = 0; i < sv->n; i++)
		sv->v[i] = get_str(c);
}

static void read_mount_attrs(struct cur *c, struct spec *s)
{
	s->nattrs = get_u32(c);
	if (s->nattrs > 4096)
		die("spec: too many mount attribute changes");
	s->attrs = calloc(s->nattrs + 1, sizeof(*s->attrs));
	if (!s->attrs)
		die("out of memory");
	for (uint32_t i = 0; i < s->nattrs; i++) {
		s->attrs[i].set = get_u32(c);
		s->attrs[i].clr = get_u32(c);
		s->attrs[i].recursive = get_u32(c);
		s->attrs[i].path = get_str(c);
	}
}

void read_spec(struct spec *s)
{
	uint32_t len;
	char head[4], *buf;
	struct cur c;

	if (wire_read_full(sync_fd, head, sizeof(head)) < 0 || (len = wire_get_u32(head)) > SYNC_SPEC_MAX)
		_exit(126); /* create went away: nothing to report to */
	buf = malloc(len);
	if (!buf || wire_read_full(sync_fd, buf, len) < 0)
		_exit(126);
	c.p = buf;
	c.end = buf + len;
	if (get_u32(&c) != SYNC_SPEC_MAGIC)
		die("bad spec magic");
	s->flags = get_u32(&c);
	s->umask = get_u32(&c);
	s->preserve_fds = get_u32(&c);
	s->uid = get_u32(&c);
	s->gid = get_u32(&c);
	s->ngids = get_u32(&c);
	if (s->ngids > 65536)
		die("too many additional gids");
	s->gids = calloc(s->ngids + 1, sizeof(gid_t));
	for (uint32_t i = 0; i < s->ngids; i++)
		s->gids[i] = get_u32(&c);
	for (int i = 0; i < 5; i++) {
		uint64_t lo = get_u32(&c), hi = get_u32(&c);
		s->caps[i] = lo | (hi << 32);
	}
	get_strv(&c, &s->args);
	get_strv(&c, &s->env);
	s->nhooks = get_u32(&c);
	if (s->nhooks > 1024)
		die("too many hooks");
	s->hooks = calloc(s->nhooks + 1, sizeof(struct hook));
	for (uint32_t i = 0; i < s->nhooks; i++) {
		s->hooks[i].timeout = get_u32(&c);
		s->hooks[i].path = get_str(&c);
		get_strv(&c, &s->hooks[i].args);
		get_strv(&c, &s->hooks[i].env);
	}
	s->state = get_str(&c);
	s->target_pid = get_u32(&c);
	s->exec_flags = get_u32(&c);
	s->cwd = get_str(&c);
	s->nrlimits = get_u32(&c);
	if (s->nrlimits > 64)
		die("too many rlimits");
	s->rlimits = calloc(s->nrlimits + 1, sizeof(*s->rlimits));
	for (uint32_t i = 0; i < s->nrlimits; i++) {
		uint64_t lo, hi;
		s->rlimits[i].resource = get_u32(&c);
		lo = get_u32(&c), hi = get_u32(&c);
		s->rlimits[i].lim.rlim_cur = lo | (hi << 32);
		lo = get_u32(&c), hi = get_u32(&c);
		s->rlimits[i].lim.rlim_max = lo | (hi << 32);
	}
	s->sc.present = get_u32(&c);
	if (s->sc.present) {
		s->sc.def = get_u32(&c);
		s->sc.flags = get_u32(&c);
		s->sc.narches = get_u32(&c);
		if (s->sc.narches > 32)
			die("seccomp: too many architectures");
		s->sc.arches = calloc(s->sc.narches + 1, sizeof(char *));
		for (uint32_t i = 0; i < s->sc.narches; i++)
			s->sc.arches[i] = get_str(&c);
		s->sc.nrules = get_u32(&c);
		if (s->sc.nrules > 65536)
			die("seccomp: too many rules");
		s->sc.rules = calloc(s->sc.nrules + 1, sizeof(struct sc_rule));
		for (uint32_t i = 0; i < s->sc.nrules; i++) {
			struct sc_rule *r = &s->sc.rules[i];
			r->name = get_str(&c);
			r->action = get_u32(&c);
			r->nargs = get_u32(&c);
			if (r->nargs > 6)
				die("seccomp: rule for %s has more than 6 arguments", r->name);
			r->args = calloc(r->nargs + 1, sizeof(struct scmp_arg_cmp));
			for (uint32_t j = 0; j < r->nargs; j++) {
				r->args[j].arg = get_u32(&c);
				r->args[j].op = (enum scmp_compare)get_u32(&c);
				r->args[j].datum_a = get_u64(&c);
				r->args[j].datum_b = get_u64(&c);
			}
		}
	}
	s->domainname = get_str(&c);
	s->personality = get_u32(&c);
	get_strv(&c, &s->readonly_paths);
	s->npropagation = get_u32(&c);
	if (s->npropagation > 4096)
		die("spec: too many propagation entries");
	s->propagation = calloc(s->npropagation + 1, sizeof(*s->propagation));
	for (uint32_t i = 0; i < s->npropagation; i++) {
		s->propagation[i].flags = get_u32(&c);
		s->propagation[i].path = get_str(&c);
	}
	s->hostname = get_str(&c);
	s->apparmor = get_str(&c);
	s->selinux = get_str(&c);
	s->nshared = get_u32(&c);
	if (s->nshared > 250)
		die("spec: too many shared bind mounts");
	s->shared = calloc(s->nshared + 1, sizeof(*s->shared));
	for (uint32_t i = 0; i < s->nshared; i++) {
		s->shared[i].flags = get_u32(&c);
		s->shared[i].dest = get_str(&c);
		s->shared[i].fd = -1;
	}
	get_strv(&c, &s->masked_paths);
	read_mount_attrs(&c, s);
	s->rows = get_u32(&c);
	s->cols = get_u32(&c);
	if (s->args.n == 0 && !(s->flags & FLAG_NO_PROCESS))
		die("process.args is empty");
}
