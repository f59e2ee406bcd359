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
#include "s3.h"
#include "sha256.h"
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
	/* s3:// */
	struct chom_s3 *s3;
	char bucket[256];
	char prefix[512];    /* PREFIX/ or "" */
	char point_key[768]; /* PREFIX/HOST/POINT/ begun, or "" */
	char **written;      /* keys of its objects that may exist */
	size_t nwritten;
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
	p->s = (struct chom_sink){ fpart_write, fpart_close, fpart_free, NULL };
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

/* Takes the lock file at path for HOST, held until the store is freed. */
static int
lock_path(struct chom_store *s, const char *host, const char *path,
	  struct chom_err *e)
{
	s->lock_fd =
	    open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
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
file_lock(struct chom_store *s, const char *host, struct chom_err *e)
{
	char dir[PATH_MAX], path[PATH_MAX];

	if (s->lock_fd >= 0)
		return 0; /* held already, by this run */
	if (chom_path(dir, sizeof(dir), e, "%s/%s", s->root, host) < 0 ||
	    chom_path(path, sizeof(path), e, "%s/.lock", dir) < 0 ||
	    chom_mkdir_p(dir, 0700, e) < 0)
		return -1;
	return lock_path(s, host, path, e);
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
		int exists = errno == EEXIST;

		chom_err_sys(e, CHOM_EXIT_FAIL, "mkdir %s", s->point_dir);
		s->point_dir[0] = '\0';
		return exists ? -2 : -1;
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

static int s3_open(struct chom_store *s, const char *url,
		   const struct chom_store_opts *o, struct chom_err *e);

int
chom_store_open_opts(const char *url, const struct chom_store_opts *o,
		     struct chom_store **out, struct chom_err *e)
{
	struct chom_store *s;

	*out = NULL;
	if (strncmp(url, "s3://", 5) &&
	    (strncmp(url, "file://", 7) || url[7] != '/'))
		return chom_err_set(e, CHOM_EXIT_USAGE,
				    "target '%s': want file:///PATH or "
				    "s3://BUCKET/PREFIX",
				    url);
	s = calloc(1, sizeof(*s));
	if (!s)
		return chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
	s->lock_fd = -1;
	if (chom_path(s->url, sizeof(s->url), e, "%s", url) < 0) {
		free(s);
		return -1;
	}
	if (!strncmp(url, "s3://", 5)) {
		if (s3_open(s, url, o, e) < 0) {
			free(s);
			return -1;
		}
	} else {
		s->ops = &file_ops;
		if (chom_path(s->root, sizeof(s->root), e, "%s", url + 7) < 0) {
			free(s);
			return -1;
		}
	}
	*out = s;
	return 0;
}

int
chom_store_open(const char *url, struct chom_store **out, struct chom_err *e)
{
	return chom_store_open_opts(url, NULL, out, e);
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

/* s3:// */

/* One run per HOST of a target on this machine: S3 itself has no lock. */
static int
s3_lock(struct chom_store *s, const char *host, struct chom_err *e)
{
	char id[CHOM_SHA256_HEXLEN + 1], path[PATH_MAX], what[PATH_MAX + 300];
	const char *dir = getenv("CHOM_LOCK_DIR");
	struct chom_sha256 *h;

	if (s->lock_fd >= 0)
		return 0;
	if (!(h = chom_sha256_new()))
		return chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
	/* The target as written to, whatever the URL's slashes. */
	snprintf(what, sizeof(what), "s3://%s/%s\n%s", s->bucket, s->prefix,
		 host);
	chom_sha256_update(h, what, strlen(what));
	chom_sha256_final_hex(h, id);
	chom_sha256_free(h);
	if (!dir || !*dir)
		dir = access("/run/lock", W_OK) == 0 ? "/run/lock" : "/tmp";
	if (chom_path(path, sizeof(path), e, "%s/chom-s3-%.24s.lock", dir, id) <
	    0)
		return -1;
	return lock_path(s, host, path, e);
}

static int
s3_begin(struct chom_store *s, const char *host, const char *point,
	 struct chom_err *e)
{
	struct chom_s3_listing l;
	int exists;

	if ((size_t)snprintf(s->point_key, sizeof(s->point_key), "%s%s/%s/",
			     s->prefix, host, point) >= sizeof(s->point_key))
		return chom_err_set(e, CHOM_EXIT_USAGE, "s3: prefix too long");
	if (chom_s3_list(s->s3, s->point_key, "/", &l, e) < 0) {
		s->point_key[0] = '\0';
		return -1;
	}
	exists = l.nobjects > 0;
	chom_s3xml_listing_free(&l);
	if (exists) {
		chom_err_set(e, CHOM_EXIT_FAIL, "%s: point %s/%s exists",
			     s->url, host, point);
		s->point_key[0] = '\0';
		return -2;
	}
	return 0;
}

/* A part's upload; its key remembered for an abort before it completes: a
 * completion whose answer is lost may have made the object. */
struct s3_part {
	struct chom_sink s;
	struct chom_sink *up;
	struct chom_store *st;
	char key[1024];
};

static int
s3p_write(struct chom_sink *sk, const void *buf, size_t len, struct chom_err *e)
{
	return chom_sink_write(((struct s3_part *)sk)->up, buf, len, e);
}

/* Remembers key for an abort (deleting a key never made is harmless). */
static int
remember(struct chom_store *st, const char *key, struct chom_err *e)
{
	char **v = realloc(st->written, (st->nwritten + 1) * sizeof(*v));
	char *k = strdup(key);

	if (v)
		st->written = v;
	if (!v || !k) {
		free(k);
		return chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
	}
	st->written[st->nwritten++] = k;
	return 0;
}

static int
s3p_close(struct chom_sink *sk, struct chom_err *e)
{
	struct s3_part *p = (struct s3_part *)sk;

	if (remember(p->st, p->key, e) < 0)
		return -1;
	return chom_sink_close(p->up, e);
}

static void
s3p_free(struct chom_sink *sk)
{
	struct s3_part *p = (struct s3_part *)sk;

	chom_sink_free(p->up);
	free(p);
}

static struct chom_sink *
s3_part(struct chom_store *s, const char *name, struct chom_err *e)
{
	struct s3_part *p = calloc(1, sizeof(*p));

	if (!p) {
		chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
		return NULL;
	}
	p->s = (struct chom_sink){ s3p_write, s3p_close, s3p_free, NULL };
	p->st = s;
	snprintf(p->key, sizeof(p->key), "%s%s", s->point_key, name);
	if (!(p->up = chom_s3_upload_new(s->s3, p->key, e))) {
		free(p);
		return NULL;
	}
	return &p->s;
}

static void
forget_written(struct chom_store *s)
{
	size_t i;

	for (i = 0; i < s->nwritten; i++)
		free(s->written[i]);
	free(s->written);
	s->written = NULL;
	s->nwritten = 0;
}

static int
s3_commit(struct chom_store *s, const char *manifest, struct chom_err *e)
{
	char key[1024];

	snprintf(key, sizeof(key), "%smanifest.json", s->point_key);
	/* Left by a PUT whose answer was lost, it would make a point of
	 * the parts the abort deletes. */
	if (remember(s, key, e) < 0 ||
	    chom_s3_put(s->s3, key, manifest, strlen(manifest), false, e) < 0)
		return -1;
	s->point_key[0] = '\0';
	forget_written(s);
	return 0;
}

static void
s3_abort(struct chom_store *s)
{
	struct chom_err ignore;

	if (s->nwritten) {
		chom_s3_cleaning_up(s->s3);
		chom_s3_delete(s->s3, (const char *const *)s->written,
			       s->nwritten, &ignore);
	}
	forget_written(s);
	s->point_key[0] = '\0';
}

static int
s3_list(struct chom_store *s, const char *host, struct chom_point **out,
	size_t *n, struct chom_err *e)
{
	char prefix[768];
	struct chom_s3_listing l;
	struct chom_point *v = NULL;
	size_t len = 0, i, j;

	*out = NULL;
	*n = 0;
	snprintf(prefix, sizeof(prefix), "%s%s/", s->prefix, host);
	if (chom_s3_list(s->s3, prefix, NULL, &l, e) < 0)
		return -1;
	for (i = 0; i < l.nobjects; i++) {
		const char *rest = l.objects[i].key + strlen(prefix);
		char id[CHOM_POINT_LEN + 1];
		struct chom_point p = { 0 };

		if (strlen(rest) <= CHOM_POINT_LEN ||
		    rest[CHOM_POINT_LEN] != '/')
			continue;
		memcpy(id, rest, CHOM_POINT_LEN);
		id[CHOM_POINT_LEN] = '\0';
		if (chom_point_time(id, &p.when) < 0)
			continue;
		for (j = 0; j < len && strcmp(v[j].id, id); j++)
			;
		if (j == len) {
			struct chom_point *nv =
			    realloc(v, (len + 1) * sizeof(*v));

			if (!nv) {
				free(v);
				chom_s3xml_listing_free(&l);
				return chom_err_set(e, CHOM_EXIT_FAIL,
						    "out of memory");
			}
			v = nv;
			strcpy(p.id, id);
			v[len++] = p;
		}
		if (!strcmp(rest + CHOM_POINT_LEN + 1, "manifest.json"))
			v[j].complete = true;
	}
	chom_s3xml_listing_free(&l);
	if (len)
		qsort(v, len, sizeof(*v), newest_first);
	*out = v;
	*n = len;
	return 0;
}

static int
s3_remove(struct chom_store *s, const char *host, const char *point,
	  struct chom_err *e)
{
	char prefix[768], mf[800];
	const char *one[1] = { mf };
	struct chom_s3_listing l;
	const char **keys;
	size_t i;
	int rc;

	snprintf(prefix, sizeof(prefix), "%s%s/%s/", s->prefix, host, point);
	snprintf(mf, sizeof(mf), "%smanifest.json", prefix);
	/* The manifest first: from then on the point does not exist. */
	if (chom_s3_delete(s->s3, one, 1, e) < 0 ||
	    chom_s3_list(s->s3, prefix, NULL, &l, e) < 0)
		return -1;
	if (!(keys = calloc(l.nobjects + 1, sizeof(*keys)))) {
		chom_s3xml_listing_free(&l);
		return chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
	}
	for (i = 0; i < l.nobjects; i++)
		keys[i] = l.objects[i].key;
	rc = l.nobjects ? chom_s3_delete(s->s3, keys, l.nobjects, e) : 0;
	free(keys);
	chom_s3xml_listing_free(&l);
	return rc;
}

static int
s3_read(struct chom_store *s, const char *host, const char *point,
	const char *name, struct chom_sink *out, volatile sig_atomic_t *stop,
	struct chom_err *e)
{
	char key[1024];
	bool missing;

	(void)stop; /* the client's own, given at open */
	snprintf(key, sizeof(key), "%s%s/%s/%s", s->prefix, host, point, name);
	if (chom_s3_get(s->s3, key, out, &missing, e) < 0)
		return missing ? chom_err_set(e, CHOM_EXIT_FAIL,
					      "%s/%s/%s: missing from %s", host,
					      point, name, s->url)
			       : -1;
	return 0;
}

static int
s3_hosts(struct chom_store *s, char ***out, size_t *n, struct chom_err *e)
{
	struct chom_s3_listing l;
	char **v;
	size_t i, len = 0;

	*out = NULL;
	*n = 0;
	if (chom_s3_list(s->s3, s->prefix, "/", &l, e) < 0)
		return -1;
	if (!(v = calloc(l.nprefixes + 1, sizeof(*v)))) {
		chom_s3xml_listing_free(&l);
		return chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
	}
	for (i = 0; i < l.nprefixes; i++) {
		char *h = l.prefixes[i] + strlen(s->prefix);

		h[strcspn(h, "/")] = '\0';
		if (*h && !(v[len++] = strdup(h))) {
			chom_store_hosts_free(v, len - 1);
			chom_s3xml_listing_free(&l);
			return chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
		}
	}
	chom_s3xml_listing_free(&l);
	*out = v;
	*n = len;
	return 0;
}

static void
s3_free(struct chom_store *s)
{
	forget_written(s);
	chom_s3_free(s->s3);
	if (s->lock_fd >= 0)
		close(s->lock_fd);
}

static const struct store_ops s3_ops = {
	s3_lock, s3_begin,  s3_part, s3_commit, s3_abort,
	s3_list, s3_remove, s3_read, s3_hosts,  s3_free,
};

static int
s3_open(struct chom_store *s, const char *url, const struct chom_store_opts *o,
	struct chom_err *e)
{
	const char *b = url + 5, *slash = strchr(b, '/');
	char bucket[256];
	size_t blen = slash ? (size_t)(slash - b) : strlen(b);
	const char *prefix = slash ? slash + 1 : "";
	size_t plen = strlen(prefix);

	while (plen && prefix[plen - 1] == '/')
		plen--;
	if (!blen || blen >= sizeof(bucket) || plen + 2 > sizeof(s->prefix))
		return chom_err_set(e, CHOM_EXIT_USAGE,
				    "target '%s': want s3://BUCKET/PREFIX",
				    url);
	memcpy(bucket, b, blen);
	bucket[blen] = '\0';
	snprintf(s->bucket, sizeof(s->bucket), "%s", bucket);
	snprintf(s->prefix, sizeof(s->prefix), "%.*s%s", (int)plen, prefix,
		 plen ? "/" : "");
	s->ops = &s3_ops;
	return chom_s3_new(
	    &(struct chom_s3_opts){ .bucket = bucket,
				    .path_style = -1,
				    .parallel = o ? o->s3_parallel : 0,
				    .storage_class =
					o ? o->s3_storage_class : NULL,
				    .stop = o ? o->stop : NULL },
	    &s->s3, e);
}
