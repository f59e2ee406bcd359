#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exitcode.h"
#include "sinks.h"
#include <unistd.h>

struct measure {
	struct chom_sink s;
	struct chom_sink *next;
	struct chom_sha256 *h;
	unsigned long long *count;
	unsigned long long max; /* ULLONG_MAX: no limit */
	char what[256];
};

static int
measure_write(struct chom_sink *s, const void *buf, size_t len,
	      struct chom_err *e)
{
	struct measure *m = (struct measure *)s;

	/* Refused before a byte of it passes: what comes after the limit is
	 * never written, however much more there would be. */
	if (*m->count > m->max || len > m->max - *m->count)
		return chom_err_set(e, CHOM_EXIT_FAIL,
				    "more than %llu bytes%s%s: stopped there",
				    m->max, *m->what ? " " : "", m->what);
	if (m->h)
		chom_sha256_update(m->h, buf, len);
	*m->count += len;
	return chom_sink_write(m->next, buf, len, e);
}

/* The next stage's space, up to the limit: bytes read there are counted
 * and hashed by the write that follows, before the next stage has them. */
static void *
measure_space(struct chom_sink *s, size_t *len)
{
	struct measure *m = (struct measure *)s;
	void *p;

	if (*m->count >= m->max || !(p = chom_sink_space(m->next, len)))
		return NULL;
	if (*len > m->max - *m->count)
		*len = (size_t)(m->max - *m->count);
	return p;
}

static int
measure_close(struct chom_sink *s, struct chom_err *e)
{
	return chom_sink_close(((struct measure *)s)->next, e);
}

static void
measure_free(struct chom_sink *s)
{
	chom_sink_free(((struct measure *)s)->next);
	free(s);
}

struct chom_sink *
chom_sink_limit_new(struct chom_sink *next, struct chom_sha256 *h,
		    unsigned long long *count, unsigned long long max,
		    const char *what, struct chom_err *e)
{
	struct measure *m = calloc(1, sizeof(*m));

	if (!m) {
		chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
		return NULL;
	}
	m->s = (struct chom_sink){ measure_write, measure_close, measure_free,
				   measure_space };
	m->next = next;
	m->h = h;
	m->count = count;
	m->max = max;
	snprintf(m->what, sizeof(m->what), "%s", what ? what : "");
	return &m->s;
}

struct chom_sink *
chom_sink_measure_new(struct chom_sink *next, struct chom_sha256 *h,
		      unsigned long long *count, struct chom_err *e)
{
	return chom_sink_limit_new(next, h, count, ULLONG_MAX, NULL, e);
}

struct tee {
	struct chom_sink s;
	size_t n;
	struct chom_sink *v[];
};

static int
tee_write(struct chom_sink *s, const void *buf, size_t len, struct chom_err *e)
{
	struct tee *t = (struct tee *)s;
	size_t i;

	for (i = 0; i < t->n; i++)
		if (chom_sink_write(t->v[i], buf, len, e) < 0)
			return -1;
	return 0;
}

static int
tee_close(struct chom_sink *s, struct chom_err *e)
{
	struct tee *t = (struct tee *)s;
	size_t i;

	for (i = 0; i < t->n; i++)
		if (chom_sink_close(t->v[i], e) < 0)
			return -1;
	return 0;
}

static void
tee_free(struct chom_sink *s)
{
	struct tee *t = (struct tee *)s;
	size_t i;

	for (i = 0; i < t->n; i++)
		chom_sink_free(t->v[i]);
	free(t);
}

struct chom_sink *
chom_sink_tee_new(struct chom_sink **sinks, size_t n, struct chom_err *e)
{
	struct tee *t = calloc(1, sizeof(*t) + n * sizeof(t->v[0]));

	if (!t) {
		chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
		return NULL;
	}
	t->s = (struct chom_sink){ tee_write, tee_close, tee_free, NULL };
	t->n = n;
	memcpy(t->v, sinks, n * sizeof(t->v[0]));
	return &t->s;
}

static int
null_write(struct chom_sink *s, const void *buf, size_t len, struct chom_err *e)
{
	(void)s;
	(void)buf;
	(void)len;
	(void)e;
	return 0;
}

static int
null_close(struct chom_sink *s, struct chom_err *e)
{
	(void)s;
	(void)e;
	return 0;
}

static void
null_free(struct chom_sink *s)
{
	free(s);
}

struct chom_sink *
chom_sink_null_new(struct chom_err *e)
{
	struct chom_sink *s = malloc(sizeof(*s));

	if (!s) {
		chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
		return NULL;
	}
	*s = (struct chom_sink){ null_write, null_close, null_free, NULL };
	return s;
}

struct fdsink {
	struct chom_sink s;
	int fd;
	char what[256];
};

static int
fd_write(struct chom_sink *s, const void *buf, size_t len, struct chom_err *e)
{
	struct fdsink *f = (struct fdsink *)s;
	const char *p = buf;

	while (len) {
		ssize_t n = write(f->fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return chom_err_sys(e, CHOM_EXIT_FAIL, "write %s",
					    f->what);
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
fd_close(struct chom_sink *s, struct chom_err *e)
{
	struct fdsink *f = (struct fdsink *)s;
	int fd = f->fd;

	f->fd = -1;
	if (fd >= 0 && close(fd) < 0)
		return chom_err_sys(e, CHOM_EXIT_FAIL, "close %s", f->what);
	return 0;
}

static void
fd_free(struct chom_sink *s)
{
	struct fdsink *f = (struct fdsink *)s;

	if (f->fd >= 0)
		close(f->fd);
	free(f);
}

struct chom_sink *
chom_sink_fd_new(int fd, const char *what, struct chom_err *e)
{
	struct fdsink *f = calloc(1, sizeof(*f));

	if (!f) {
		chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
		return NULL;
	}
	f->s = (struct chom_sink){ fd_write, fd_close, fd_free, NULL };
	f->fd = fd;
	snprintf(f->what, sizeof(f->what), "%s", what);
	return &f->s;
}
