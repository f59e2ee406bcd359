/* The store interface and its file:// backend. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exitcode.h"
#include "fsutil.h"
#include "store.h"

struct store_ops {
	int (*lock)(struct chom_store *s, const char *host, struct chom_err *e);
	int (*begin)(struct chom_store *s, const char *host, const char *point,
		     struct chom_err *e);
	struct chom_sink *(*part)(struct chom_store *s, const char *name,
				  struct chom_err *e);
	int (*commit)(struct chom_store *s, const char *manifest,
		      struct chom_err *e);
	void (*abort)(struct chom_store *s);
	int (*list)(struct chom_store *s, const char *host,
		    struct chom_point **out, size_t *n, struct chom_err *e);
	int (*remove)(struct chom_store *s, const char *host, const char *point,
		      struct chom_err *e);
	int (*read)(struct chom_store *s, const char *host, const char *point,
		    const char *name, struct chom_sink *out,
		    volatile sig_atomic_t *stop, struct chom_err *e);
	int (*hosts)(struct chom_store *s, char ***out, size_t *n,
		     struct chom_err *e);
	void (*free)(struct chom_store *s);
};

struct chom_store {
	const struct store_ops *ops;
	char url[PATH_MAX];
	/* file:// */
	char root[PATH_MAX];
	char point_dir[PATH_MAX]; /* the point begun, until committed */
	int lock_fd;
};

void
chom_point_id(time_t t, char id[CHOM_POINT_LEN + 1])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(id, CHOM_POINT_LEN + 1, "%Y%m%dT%H%M%SZ", &tm);
}

int
chom_point_time(const char *id, time_t *t)
{
	char back[CHOM_POINT_LEN + 1];
	struct tm tm;
	const char *end;

	if (strlen(id) != CHOM_POINT_LEN)
		return -1;
	memset(&tm, 0, sizeof(tm));
	end = strptime(id, "%Y%m%dT%H%M%SZ", &tm);
	if (!end || *end)
		return -1;
	*t = timegm(&tm);
	/* 20240230T... would roll over to March: not a point's name. */
	chom_point_id(*t, back);
	return strcmp(back, id) ? -1 : 0;
}

/* file:// */

/*
 * Parts are written behind: as each window of FLUSH_WINDOW bytes fills, its
 * writeback is started, and the window before it is waited for and dropped
 * from the page cache. A backup of many GB then leaves at most two windows
 * dirty, its final fsync() has little left to write, and it does not push
 * the application's hot files out of memory. Errors are left to fsync().
 */
#define FLUSH_WINDOW ((off_t)8 << 20)

struct file_part {
	struct chom_sink s;
	int fd;
	off_t written, started; /* bytes written; writeback started up to */
	char tmp[PATH_MAX], path[PATH_MAX], dir[PATH_MAX];
};

static void
write_behind(struct file_part *p)
{
	while (p->written - p->started >= FLUSH_WINDOW) {
		(void)sync_file_range(p->fd, p->started, FLUSH_WINDOW,
				      SYNC_FILE_RANGE_WRITE);
		if (p->started >= FLUSH_WINDOW) {
			off_t prev = p->started - FLUSH_WINDOW;

			(void)sync_file_range(p->fd, prev, FLUSH_WINDOW,
					      SYNC_FILE_RANGE_WAIT_BEFORE |
						  SYNC_FILE_RANGE_WRITE |
						  SYNC_FILE_RANGE_WAIT_AFTER);
			(void)posix_fadvise(p->fd, prev, FLUSH_WINDOW,
					    POSIX_FADV_DONTNEED);
		}
		p->started += FLUSH_WINDOW;
	}
}

static int
fpart_write(struct chom_sink *s, const void *buf, size_t len,
	    struct chom_err *e)
{
	struct file_part *p = (struct file_part *)s;
	const char *c = buf;

	while (len > 0) {
		ssize_t n = write(p->fd, c, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return chom_err_sys(e, CHOM_EXIT_FAIL, "write %s",
					    p->path);
		c += n;
		len -= (size_t)n;
		p->written += n;
	}
	write_behind(p);
	return 0;
}

static int
fpart_close(struct chom_sink *s, struct chom_err *e)
{
	struct file_part *p = (struct file_part *)s;

	if (fsync(p->fd) < 0)
		return chom_err_sys(e, CHOM_EXIT_FAIL, "fsync %s", p->path);
	if (close(p->fd) < 0) {
		p->fd = -1;
		return chom_err_sys(e, CHOM_EXIT_FAIL, "close %s", p->path);
	}
	p->fd = -1;
	if (rename(p->tmp, p->path) < 0)
		return chom_err_sys(e, CHOM_EXIT_FAIL, "rename %s", p->path);
	p->tmp[0] = '\0';
	return chom_fsync_dir(p->dir, e);
}

static void
fpart_free(struct chom_sink *s)
{
	struct file_part *p = (struct file_part *)s;

	if (p->fd >= 0)
		close(p->fd);
	if (p->tmp[0])
		unlink(p->tmp);
	free(p);
}

static struct chom_sink *
file_part(struct chom_store *s, const char *name, struct chom_err *e)
{
	struct file_part *p = calloc(1, sizeof(*p));

	if (!p) {
		chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
		return NULL;
	}
	p->s = (struct chom_sink){ fpart_write, fpart_close, fpart_free };
	snprintf(p->dir, sizeof(p->dir), "%s", s->point_dir);
	if (chom_path(p->path, sizeof(p->path), e, "%s/%s", s->point_dir,
		      name) < 0 ||
	    chom_path(p->tmp, sizeof(p->tmp), e, "%s/.%s.tmp-%ld", s->point_dir,
		      name, (long)getpid()) < 0) {
		free(p);
		return NULL;
	}
	p->fd = open(p->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (p->fd < 0) {
		chom_err_sys(e, CHOM_EXIT_FAIL, "create %s", p->tmp);
		free(p);
		return NULL;
	}
	return &p->s;
}

static int
file_lock(struct chom_store *s, const char *host, struct chom_err *e)
{
	char dir[PATH_MAX], path[PATH_MAX];

	if (s->lock_fd >= 0)
		return 0; /* held already, by this run */
	if (chom_path(dir, sizeof(dir), e, "%s/%s", s->root, host) < 0 ||
	    chom_path(path, sizeof(path), e, "%s/.lock", dir) < 0 ||
	    chom_mkdir_p(dir, 0700, e) < 0)
		return -1;
	s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (s->lock_fd < 0)
		return chom_err_sys(e, CHOM_EXIT_FAIL, "open %s", path);
	if (flock(s->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		int busy = errno == EWOULDBLOCK;

		close(s->lock_fd);
		s->lock_fd = -1;
		if (busy)
			return chom_err_set(e, CHOM_EXIT_BUSY,
					    "another backup of %s to %s is "
					    "running (%s is locked)",
					    host, s->url, path);
		return chom_err_sys(e, CHOM_EXIT_FAIL, "flock %s", path);
	}
	return 0;
}

static int
file_begin(struct chom_store *s, const char *host, const char *point,
	   struct chom_err *e)
{
	char hostdir[PATH_MAX];

	if (chom_path(hostdir, sizeof(hostdir), e, "%s/%s", s->root, host) <
		0 ||
	    chom_path(s->point_dir, sizeof(s->point_dir), e, "%s/%s", hostdir,
		      point) < 0 ||
	    chom_mkdir_p(hostdir, 0700, e) < 0)
		return -1;
	if (mkdir(s->point_dir, 0700) < 0) {
		chom_err_sys(e, CHOM_EXIT_FAIL, "mkdir %s", s->point_dir);
		s->point_dir[0] = '\0';
		return -1;
	}
	return chom_fsync_dir(hostdir, e);
}

static int
file_commit(struct chom_store *s, const char *manifest, struct chom_err *e)
{
	char path[PATH_MAX];

	if (chom_path(path, sizeof(path), e, "%s/manifest.json", s->point_dir) <
		0 ||
	    chom_atomic_write(path, manifest, strlen(manifest), 0600, e) < 0)
		return -1;
	s->point_dir[0] = '\0';
	return 0;
}

static void
file_abort(struct chom_store *s)
{
	struct chom_err ignore;

	if (s->point_dir[0])
		chom_rmtree(s->point_dir, &ignore);
	s->point_dir[0] = '\0';
}

static int
newest_first(const void *a, const void *b)
{
	return strcmp(((const struct chom_point *)b)->id,
		      ((const struct chom_point *)a)->id);
}

static int
file_list(struct chom_store *s, const char *host, struct chom_point **out,
	  size_t *n, struct chom_err *e)
{
	char dir[PATH_MAX];
	struct chom_point *v = NULL;
	size_t len = 0, cap = 0;
	struct dirent *d;
	DIR *dp;

	*out = NULL;
	*n = 0;
	if (chom_path(dir, sizeof(dir), e, "%s/%s", s->root, host) < 0)
		return -1;
	dp = opendir(dir);
	if (!dp) {
		if (errno == ENOENT)
			return 0;
		return chom_err_sys(e, CHOM_EXIT_FAIL, "open %s", dir);
	}
	while ((d = readdir(dp))) {
		struct chom_point p = { 0 };
		char mf[PATH_MAX + 32];

		if (chom_point_time(d->d_name, &p.when) < 0)
			continue;
		strcpy(p.id, d->d_name);
		snprintf(mf, sizeof(mf), "%s/%s/manifest.json", dir, p.id);
		p.complete = access(mf, F_OK) == 0;
		if (len == cap) {
			struct chom_point *nv;

			cap = cap ? 2 * cap : 32;
			nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				free(v);
				closedir(dp);
				return chom_err_set(e, CHOM_EXIT_FAIL,
						    "out of memory");
			}
			v = nv;
		}
		v[len++] = p;
	}
	closedir(dp);
	if (len)
		qsort(v, len, sizeof(*v), newest_first);
	*out = v;
	*n = len;
	return 0;
}

static int
file_remove(struct chom_store *s, const char *host, const char *point,
	    struct chom_err *e)
{
	char dir[PATH_MAX], mf[PATH_MAX];

	if (chom_path(dir, sizeof(dir), e, "%s/%s/%s", s->root, host, point) <
		0 ||
	    chom_path(mf, sizeof(mf), e, "%s/manifest.json", dir) < 0)
		return -1;
	/* The manifest first: from then on the point does not exist, even
	 * if the removal of its parts is cut short. */
	if (unlink(mf) < 0 && errno != ENOENT)
		return chom_err_sys(e, CHOM_EXIT_FAIL, "remove %s", mf);
	return chom_rmtree(dir, e);
}

#define READ_BUF (1 << 20)

static int
file_read(struct chom_store *s, const char *host, const char *point,
	  const char *name, struct chom_sink *out, volatile sig_atomic_t *stop,
	  struct chom_err *e)
{
	char path[PATH_MAX];
	unsigned char *buf;
	int fd, rc = 0;
	ssize_t n;

	if (chom_path(path, sizeof(path), e, "%s/%s/%s/%s", s->root, host,
		      point, name) < 0)
		return -1;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return chom_err_sys(e, CHOM_EXIT_FAIL, "%s/%s/%s", host, point,
				    name);
	if (!(buf = malloc(READ_BUF))) {
		close(fd);
		return chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
	}
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	for (;;) {
		if (stop && *stop) {
			rc = chom_err_set(e, 128 + *stop, "interrupted");
			break;
		}
		n = read(fd, buf, READ_BUF);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = chom_err_sys(e, CHOM_EXIT_FAIL, "read %s", path);
			break;
		}
		if (n == 0 || chom_sink_write(out, buf, (size_t)n, e) < 0) {
			rc = n ? -1 : 0;
			break;
		}
	}
	free(buf);
	close(fd);
	return rc;
}

static int
file_hosts(struct chom_store *s, char ***out, size_t *n, struct chom_err *e)
{
	char **v = NULL;
	size_t len = 0;
	struct dirent *d;
	DIR *dp;

	*out = NULL;
	*n = 0;
	if (!(dp = opendir(s->root))) {
		if (errno == ENOENT)
			return 0;
		return chom_err_sys(e, CHOM_EXIT_FAIL, "open %s", s->root);
	}
	while ((d = readdir(dp))) {
		char **nv;

		if (d->d_name[0] == '.' || d->d_type != DT_DIR)
			continue;
		if ((nv = realloc(v, (len + 1) * sizeof(*v))))
			v = nv;
		if (!nv || !(v[len] = strdup(d->d_name))) {
			closedir(dp);
			chom_store_hosts_free(v, len);
			return chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
		}
		len++;
	}
	closedir(dp);
	*out = v;
	*n = len;
	return 0;
}

static void
file_free(struct chom_store *s)
{
	if (s->lock_fd >= 0)
		close(s->lock_fd);
}

static const struct store_ops file_ops = {
	file_lock, file_begin,  file_part, file_commit, file_abort,
	file_list, file_remove, file_read, file_hosts,  file_free,
};

int
chom_store_open(const char *url, struct chom_store **out, struct chom_err *e)
{
	struct chom_store *s;

	*out = NULL;
	if (strncmp(url, "file://", 7) || url[7] != '/')
		return chom_err_set(e, CHOM_EXIT_USAGE,
				    "target '%s': want file:///PATH (s3:// "
				    "is not supported yet)",
				    url);
	s = calloc(1, sizeof(*s));
	if (!s)
		return chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
	s->ops = &file_ops;
	s->lock_fd = -1;
	if (chom_path(s->url, sizeof(s->url), e, "%s", url) < 0 ||
	    chom_path(s->root, sizeof(s->root), e, "%s", url + 7) < 0) {
		free(s);
		return -1;
	}
	*out = s;
	return 0;
}

void
chom_store_free(struct chom_store *s)
{
	if (!s)
		return;
	s->ops->free(s);
	free(s);
}

const char *
chom_store_url(const struct chom_store *s)
{
	return s->url;
}

int
chom_store_lock(struct chom_store *s, const char *host, struct chom_err *e)
{
	return s->ops->lock(s, host, e);
}

int
chom_store_begin(struct chom_store *s, const char *host, const char *point,
		 struct chom_err *e)
{
	return s->ops->begin(s, host, point, e);
}

struct chom_sink *
chom_store_part(struct chom_store *s, const char *name, struct chom_err *e)
{
	return s->ops->part(s, name, e);
}

int
chom_store_commit(struct chom_store *s, const char *manifest,
		  struct chom_err *e)
{
	return s->ops->commit(s, manifest, e);
}

void
chom_store_abort(struct chom_store *s)
{
	s->ops->abort(s);
}

int
chom_store_list(struct chom_store *s, const char *host, struct chom_point **out,
		size_t *n, struct chom_err *e)
{
	return s->ops->list(s, host, out, n, e);
}

int
chom_store_remove(struct chom_store *s, const char *host, const char *point,
		  struct chom_err *e)
{
	return s->ops->remove(s, host, point, e);
}

int
chom_store_read(struct chom_store *s, const char *host, const char *point,
		const char *name, struct chom_sink *out,
		volatile sig_atomic_t *stop, struct chom_err *e)
{
	return s->ops->read(s, host, point, name, out, stop, e);
}

/* Collects what it is given, up to a limit. */
struct membuf {
	struct chom_sink s;
	char *buf;
	size_t len, max;
	const char *name;
};

static int
membuf_write(struct chom_sink *s, const void *buf, size_t len,
	     struct chom_err *e)
{
	struct membuf *m = (struct membuf *)s;
	char *nb;

	if (len > m->max - m->len)
		return chom_err_set(e, CHOM_EXIT_FAIL,
				    "%s: larger than %zu bytes", m->name,
				    m->max);
	if (!(nb = realloc(m->buf, m->len + len + 1)))
		return chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
	m->buf = nb;
	memcpy(m->buf + m->len, buf, len);
	m->len += len;
	m->buf[m->len] = '\0';
	return 0;
}

int
chom_store_get(struct chom_store *s, const char *host, const char *point,
	       const char *name, size_t max, char **out, size_t *len,
	       struct chom_err *e)
{
	struct membuf m = { .s = { membuf_write, NULL, NULL },
			    .max = max,
			    .name = name };

	*out = NULL;
	*len = 0;
	if (chom_store_read(s, host, point, name, &m.s, NULL, e) < 0) {
		free(m.buf);
		return -1;
	}
	if (!m.buf && !(m.buf = calloc(1, 1)))
		return chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
	*out = m.buf;
	*len = m.len;
	return 0;
}

int
chom_store_hosts(struct chom_store *s, char ***out, size_t *n,
		 struct chom_err *e)
{
	return s->ops->hosts(s, out, n, e);
}

void
chom_store_hosts_free(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}
