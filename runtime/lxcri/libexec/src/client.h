/*
 * client.h: what the two units of the `lxcri` client share: the fds that came
 * with a tag from the warm server, the handler that passes the caller's signals on
 * to the worker (client.c), and the helpers the client starts for that worker
 * (client_spawn.c). The protocol itself is in wire.h.
 */
#ifndef LXCRI_CLIENT_H
#define LXCRI_CLIENT_H

#include <unistd.h>

#define MAX_FDS 64

struct fdset {
	int n;
	int fd[MAX_FDS];
};

static inline void close_all(struct fdset *f)
{
	for (int i = 0; i < f->n; i++)
		close(f->fd[i]);
	f->n = 0;
}

/* client.c: the handler of the signals forwarded to the worker */
void forward(int sig);

/* client_spawn.c: a WARM_SPAWN request, answered on sock; the helpers' reaping */
void spawn_helper(int sock, struct fdset *given);
void reap_helpers(int quick);

#endif
