#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exitcode.h"
#include "fsutil.h"

int
chom_path(char *buf, size_t size, struct chom_err *e, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= size)
		return chom_err_set(e, CHOM_EXIT_USAGE,
				    "path too long: %.64s...", buf);
	return 0;
}

static void
dir_of(const char *path, char *dir, size_t size)
{
	char tmp[PATH_MAX];

	snprintf(tmp, sizeof(tmp), "%s", path);
	snprintf(dir, size, "%s", dirname(tmp));
}

int
chom_fsync_dir(const char *dir, struct chom_err *e)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return chom_err_sys(e, CHOM_EXIT_FAIL, "open %s", dir);
	if (fsync(fd) < 0) {
		chom_err_sys(e, CHOM_EXIT_FAIL, "fsync %s", dir);
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

int
chom_atomic_write(const char *path, const void *data, size_t len, mode_t mode,
		  struct chom_err *e)
{
	char tmp[PATH_MAX], dir[PATH_MAX];
	const char *p = data;
	int fd;

	if (chom_path(tmp, sizeof(tmp), e, "%s.tmp-%ld", path, (long)getpid()) <
	    0)
		return -1;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
		  mode);
	if (fd < 0)
		return chom_err_sys(e, CHOM_EXIT_FAIL, "create %s", tmp);
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			chom_err_sys(e, CHOM_EXIT_FAIL, "write %s", tmp);
			goto fail;
		}
		p += n;
		len -= (size_t)n;
	}
	if (fchmod(fd, mode) < 0 || fsync(fd) < 0) {
		chom_err_sys(e, CHOM_EXIT_FAIL, "sync %s", tmp);
		goto fail;
	}
	if (close(fd) < 0) {
		fd = -1;
		chom_err_sys(e, CHOM_EXIT_FAIL, "close %s", tmp);
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		chom_err_sys(e, CHOM_EXIT_FAIL, "rename %s", path);
		goto fail;
	}
	dir_of(path, dir, sizeof(dir));
	return chom_fsync_dir(dir, e);
fail:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return -1;
}

int
chom_atomic_symlink(const char *target, const char *linkpath,
		    struct chom_err *e)
{
	char tmp[PATH_MAX], dir[PATH_MAX];
	struct stat st;

	/* rename(2) over a real directory would fail with EISDIR or succeed
	 * on an empty one: neither is a switch, so refuse it up front. */
	if (lstat(linkpath, &st) == 0 && !S_ISLNK(st.st_mode))
		return chom_err_set(
		    e, CHOM_EXIT_USAGE,
		    "%s exists and is not a symlink; refusing to "
		    "replace it",
		    linkpath);
	if (chom_path(tmp, sizeof(tmp), e, "%s.tmp-%ld", linkpath,
		      (long)getpid()) < 0)
		return -1;
	unlink(tmp);
	if (symlink(target, tmp) < 0)
		return chom_err_sys(e, CHOM_EXIT_FAIL, "symlink %s", tmp);
	if (rename(tmp, linkpath) < 0) {
		chom_err_sys(e, CHOM_EXIT_FAIL, "rename %s to %s", tmp,
			     linkpath);
		unlink(tmp);
		return -1;
	}
	dir_of(linkpath, dir, sizeof(dir));
	return chom_fsync_dir(dir, e);
}

int
chom_mkdir_p(const char *path, mode_t mode, struct chom_err *e)
{
	char buf[PATH_MAX];
	char *p;

	if (chom_path(buf, sizeof(buf), e, "%s", path) < 0)
		return -1;
	for (p = buf + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;

		*p = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return chom_err_sys(e, CHOM_EXIT_FAIL, "mkdir %s", buf);
		*p = c;
		if (c == '\0')
			break;
	}
	struct stat st;

	if (stat(path, &st) < 0)
		return chom_err_sys(e, CHOM_EXIT_FAIL, "stat %s", path);
	if (!S_ISDIR(st.st_mode))
		return chom_err_set(e, CHOM_EXIT_FAIL, "%s is not a directory",
				    path);
	return 0;
}

static int
rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (type == FTW_DP) {
		if (rmdir(path) < 0 && errno != ENOENT)
			return -1;
	} else if (unlink(path) < 0 && errno != ENOENT) {
		/* A directory we could not list (FTW_DNR): try it empty. */
		if (errno == EISDIR && rmdir(path) == 0)
			return 0;
		return -1;
	}
	return 0;
}

int
chom_rmtree(const char *path, struct chom_err *e)
{
	struct stat st;

	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		return chom_err_sys(e, CHOM_EXIT_FAIL, "stat %s", path);
	}
	if (!S_ISDIR(st.st_mode)) {
		if (unlink(path) < 0 && errno != ENOENT)
			return chom_err_sys(e, CHOM_EXIT_FAIL, "remove %s",
					    path);
		return 0;
	}
	if (nftw(path, rm_one, 64, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) < 0)
		return chom_err_sys(e, CHOM_EXIT_FAIL, "remove %s", path);
	return 0;
}

static int
not_dots(const struct dirent *d)
{
	return strcmp(d->d_name, ".") && strcmp(d->d_name, "..");
}

int
chom_move_entries(const char *from, const char *to, struct chom_err *e)
{
	struct dirent **names = NULL;
	int n, i, moved = 0, rc = -1;
	int ffd = open(from, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int tfd = open(to, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (ffd < 0 || tfd < 0) {
		chom_err_sys(e, CHOM_EXIT_FAIL, "open %s", ffd < 0 ? from : to);
		goto out;
	}
	if ((n = scandir(from, &names, not_dots, alphasort)) < 0) {
		chom_err_sys(e, CHOM_EXIT_FAIL, "read %s", from);
		goto out;
	}
	for (i = 0; i < n; i++, moved++)
		if (renameat(ffd, names[i]->d_name, tfd, names[i]->d_name) <
		    0) {
			chom_err_sys(e, CHOM_EXIT_FAIL, "rename %s/%s", from,
				     names[i]->d_name);
			break;
		}
	if (moved == n)
		rc = 0;
	/* All or nothing: those moved go back. */
	while (rc < 0 && moved > 0) {
		moved--;
		(void)renameat(tfd, names[moved]->d_name, ffd,
			       names[moved]->d_name);
	}
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
out:
	if (ffd >= 0)
		close(ffd);
	if (tfd >= 0)
		close(tfd);
	return rc;
}

int
chom_readlink(const char *path, char *buf, size_t size)
{
	ssize_t n = readlink(path, buf, size);

	if (n < 0)
		return -1;
	if ((size_t)n >= size) {
		errno = ENAMETOOLONG;
		return -1;
	}
	buf[n] = '\0';
	return 0;
}
