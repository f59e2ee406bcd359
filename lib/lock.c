#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "exitcode.h"
#include "fsutil.h"
#include "lock.h"

static int
held_error(int fd, const char *path, double wait_s, struct chom_err *e)
{
	char buf[256] = "";
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	char host[128] = "", since[64] = "";
	long pid = 0;

	if (n > 0) {
		buf[n] = '\0';
		sscanf(buf, "%ld %127s %63s", &pid, host, since);
	}
	if (pid > 0)
		return chom_err_set(e, CHOM_EXIT_BUSY,
				    "%s is held by pid %ld on %s since %s%s",
				    path, pid, host, since,
				    wait_s > 0 ? " (gave up waiting)" : "");
	return chom_err_set(e, CHOM_EXIT_BUSY, "%s is held by another run%s",
			    path, wait_s > 0 ? " (gave up waiting)" : "");
}

int
chom_lock_acquire(struct chom_lock *l, const char *path, double wait_s,
		  struct chom_err *e)
{
	return chom_lock_acquire_until(l, path, wait_s, NULL, e);
}

int
chom_lock_acquire_until(struct chom_lock *l, const char *path, double wait_s,
			volatile sig_atomic_t *stop, struct chom_err *e)
{
	char dir[PATH_MAX], host[128] = "?", stamp[32], line[256];
	double deadline = chom_mono() + wait_s;
	time_t t = time(NULL);
	int fd, n;

	l->fd = -1;
	snprintf(dir, sizeof(dir), "%s", path);
	if (chom_mkdir_p(dirname(dir), 0755, e) < 0)
		return -1;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return chom_err_sys(e, CHOM_EXIT_FAIL, "open %s", path);
	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EINTR)
			continue;
		if (errno != EWOULDBLOCK) {
			chom_err_sys(e, CHOM_EXIT_FAIL, "flock %s", path);
			close(fd);
			return -1;
		}
		if (stop && *stop) {
			chom_err_set(e, 128 + *stop,
				     "interrupted while waiting for %s", path);
			close(fd);
			return -1;
		}
		if (chom_mono() >= deadline) {
			held_error(fd, path, wait_s, e);
			close(fd);
			return -1;
		}
		usleep(20000);
	}
	gethostname(host, sizeof(host) - 1);
	chom_iso_time(t, stamp, sizeof(stamp));
	n = snprintf(line, sizeof(line), "%ld %s %s\n", (long)getpid(), host,
		     stamp);
	/* The holder's identity is advice for a refused run's message, so a
	 * failure to write it does not stop us. */
	if (ftruncate(fd, 0) == 0 && pwrite(fd, line, (size_t)n, 0) != n)
		(void)ftruncate(fd, 0);
	l->fd = fd;
	return 0;
}

void
chom_lock_release(struct chom_lock *l)
{
	if (l->fd < 0)
		return;
	if (ftruncate(l->fd, 0) < 0) {
		/* Stale text is harmless: it is only read while the lock is
		 * held. */
	}
	close(l->fd);
	l->fd = -1;
}
