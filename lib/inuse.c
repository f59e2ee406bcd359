#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exitcode.h"
#include "fsutil.h"
#include "inuse.h"

static int
under(const char *path, const char *dir, size_t dlen)
{
	return !strncmp(path, dir, dlen) && (path[dlen] == '/' || !path[dlen]);
}

static int
link_under(int pfd, const char *name, const char *dir, size_t dlen)
{
	char target[PATH_MAX];
	ssize_t n = readlinkat(pfd, name, target, sizeof(target) - 1);

	if (n < 0)
		return 0;
	target[n] = '\0';
	/* An unlinked file shows as "PATH (deleted)": still in use. */
	return under(target, dir, dlen);
}

static int
fds_under(int pfd, const char *dir, size_t dlen)
{
	int fd = openat(pfd, "fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *d;
	DIR *fds;
	int hit = 0;

	if (fd < 0)
		return 0;
	fds = fdopendir(fd);
	if (!fds) {
		close(fd);
		return 0;
	}
	while (!hit && (d = readdir(fds)))
		if (d->d_name[0] != '.')
			hit = link_under(dirfd(fds), d->d_name, dir, dlen);
	closedir(fds);
	return hit;
}

int
chom_inuse(const char *dir, pid_t *pid, char *comm, size_t size,
	   struct chom_err *e)
{
	char real[PATH_MAX];
	struct dirent *d;
	size_t dlen;
	DIR *proc;
	int hit = 0;

	/* /proc shows resolved paths, so compare with the resolved directory.
	 */
	if (!realpath(dir, real))
		return chom_err_sys(e, CHOM_EXIT_FAIL, "resolve %s", dir);
	dlen = strlen(real);
	proc = opendir("/proc");
	if (!proc)
		return chom_err_sys(e, CHOM_EXIT_FAIL, "open /proc");
	while (!hit && (d = readdir(proc))) {
		int pfd;

		if (!isdigit((unsigned char)d->d_name[0]) ||
		    strtol(d->d_name, NULL, 10) == (long)getpid())
			continue;
		pfd = openat(dirfd(proc), d->d_name,
			     O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (pfd < 0)
			continue;
		hit = link_under(pfd, "cwd", real, dlen) ||
		      link_under(pfd, "root", real, dlen) ||
		      link_under(pfd, "exe", real, dlen) ||
		      fds_under(pfd, real, dlen);
		if (hit) {
			char buf[64] = "?";
			int cfd = openat(pfd, "comm", O_RDONLY | O_CLOEXEC);

			if (cfd >= 0) {
				ssize_t n = read(cfd, buf, sizeof(buf) - 1);

				buf[n > 0 ? n : 0] = '\0';
				buf[strcspn(buf, "\n")] = '\0';
				close(cfd);
			}
			*pid = (pid_t)strtol(d->d_name, NULL, 10);
			snprintf(comm, size, "%s", buf);
		}
		close(pfd);
	}
	closedir(proc);
	return hit;
}
