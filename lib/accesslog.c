#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "accesslog.h"
#include "exitcode.h"

#define CHUNK (256 * 1024)
#define MAXLINE (64 * 1024) /* a longer line is dropped, not kept whole */

/* The value of key= in the line: a "quoted" value or a word. The key must
 * start the line or follow a space. */
static const char *
field(const char *s, size_t len, const char *key, size_t *vlen)
{
	size_t klen = strlen(key);
	const char *p = s, *end = s + len, *v, *q;

	while ((p = memmem(p, (size_t)(end - p), key, klen))) {
		if (p != s && p[-1] != ' ' && p[-1] != '\t') {
			p += klen;
			continue;
		}
		v = p + klen;
		if (v < end && *v == '"') {
			v++;
			q = memchr(v, '"', (size_t)(end - v));
			if (!q)
				return NULL;
		} else {
			for (q = v; q < end && *q != ' ' && *q != '\t'; q++)
				;
		}
		*vlen = (size_t)(q - v);
		return v;
	}
	return NULL;
}

/* The last element of an nginx list: "a, b" (next upstream tried) or
 * "a : b" (internal redirect). */
static const char *
last_elem(const char *v, size_t *len)
{
	const char *p, *start = v;

	for (p = v; p + 2 <= v + *len; p++)
		if ((p[0] == ',' && p[1] == ' ') ||
		    (p + 3 <= v + *len && p[0] == ' ' && p[1] == ':' &&
		     p[2] == ' '))
			start = p + (p[0] == ',' ? 2 : 3);
	*len -= (size_t)(start - v);
	return start;
}

int
chom_alog_parse(const char *line, size_t len, struct chom_alog_rec *r)
{
	const char *st, *ua, *urt;
	size_t stl, ual, urtl, i;
	char num[32], *end;

	if (!(st = field(line, len, "st=", &stl)) || stl != 3)
		return -1;
	r->status = 0;
	for (i = 0; i < 3; i++) {
		if (st[i] < '0' || st[i] > '9')
			return -1;
		r->status = r->status * 10 + (st[i] - '0');
	}
	if (!(ua = field(line, len, "ua=", &ual)))
		return 0;
	ua = last_elem(ua, &ual);
	if (!ual || (ual == 1 && *ua == '-'))
		return 0;
	r->addr = ua;
	r->addrlen = ual;
	r->seconds = -1;
	if ((urt = field(line, len, "urt=", &urtl))) {
		urt = last_elem(urt, &urtl);
		if (urtl && !(urtl == 1 && *urt == '-')) {
			if (urtl >= sizeof(num))
				return -1;
			memcpy(num, urt, urtl);
			num[urtl] = '\0';
			errno = 0;
			r->seconds = strtod(num, &end);
			if (errno || *end || r->seconds < 0)
				return -1;
		}
	}
	return 1;
}

int
chom_alog_open(struct chom_alog *l, const char *path, struct chom_err *e)
{
	struct stat st;

	memset(l, 0, sizeof(*l));
	l->fd = -1;
	if (!(l->path = strdup(path)) || !(l->buf = malloc(CHUNK))) {
		free(l->path);
		return chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
	}
	l->cap = CHUNK;
	l->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (l->fd < 0) {
		if (errno == ENOENT)
			return 0;
		chom_err_sys(e, CHOM_EXIT_USAGE, "--access-log %s", path);
		chom_alog_close(l);
		return -1;
	}
	if (fstat(l->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		chom_err_set(e, CHOM_EXIT_USAGE,
			     "--access-log %s: not a regular file", path);
		chom_alog_close(l);
		return -1;
	}
	l->dev = st.st_dev;
	l->ino = st.st_ino;
	l->off = st.st_size;
	/* Its last bytes, for a truncation before the first read. */
	l->taillen = st.st_size < (off_t)sizeof(l->tail) ? (size_t)st.st_size
							 : sizeof(l->tail);
	if (pread(l->fd, l->tail, l->taillen, l->off - (off_t)l->taillen) !=
	    (ssize_t)l->taillen)
		l->taillen = 0;
	return 0;
}

static void
lines(struct chom_alog *l, chom_alog_fn fn, void *ctx, bool flush)
{
	char *p = l->buf, *end = l->buf + l->len, *nl;
	struct chom_alog_rec r;

	while ((nl = memchr(p, '\n', (size_t)(end - p))) ||
	       (flush && p < end)) {
		if (!nl)
			nl = end;
		l->lines++;
		switch (chom_alog_parse(p, (size_t)(nl - p), &r)) {
		case 1: fn(ctx, &r); break;
		case -1: l->bad++; break;
		}
		p = nl < end ? nl + 1 : end;
	}
	l->len = (size_t)(end - p);
	if (l->len >= MAXLINE) {
		l->bad++;
		l->len = 0; /* no newline in 64 KiB: not a log line */
	}
	memmove(l->buf, p, l->len);
}

/* Keeps the last bytes read: n of them at p, just read. */
static void
keep_tail(struct chom_alog *l, const char *p, size_t n)
{
	size_t keep;

	if (n >= sizeof(l->tail)) {
		memcpy(l->tail, p + n - sizeof(l->tail), sizeof(l->tail));
		l->taillen = sizeof(l->tail);
		return;
	}
	keep =
	    l->taillen < sizeof(l->tail) - n ? l->taillen : sizeof(l->tail) - n;
	memmove(l->tail, l->tail + l->taillen - keep, keep);
	memcpy(l->tail + keep, p, n);
	l->taillen = keep + n;
}

/* Whether the bytes before off are still the ones read there: not so
 * after a copytruncate, even when the file has since grown past off. */
static bool
same_tail(struct chom_alog *l)
{
	char b[sizeof(l->tail)];

	return !l->taillen ||
	       (pread(l->fd, b, l->taillen, l->off - (off_t)l->taillen) ==
		    (ssize_t)l->taillen &&
		!memcmp(b, l->tail, l->taillen));
}

/* Reads the open file to its end. */
static int
drain(struct chom_alog *l, chom_alog_fn fn, void *ctx, struct chom_err *e)
{
	ssize_t n;

	for (;;) {
		n = pread(l->fd, l->buf + l->len, l->cap - l->len, l->off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return chom_err_sys(e, CHOM_EXIT_FAIL, "read %s",
					    l->path);
		}
		if (n == 0)
			return 0;
		keep_tail(l, l->buf + l->len, (size_t)n);
		l->off += n;
		l->len += (size_t)n;
		lines(l, fn, ctx, false);
	}
}

int
chom_alog_read(struct chom_alog *l, chom_alog_fn fn, void *ctx,
	       struct chom_err *e)
{
	struct stat st, now;

	if (l->fd >= 0) {
		if (fstat(l->fd, &st) == 0 &&
		    (st.st_size < l->off || !same_tail(l))) {
			l->off = 0; /* truncated (copytruncate) */
			l->len = 0;
			l->taillen = 0;
		}
		if (drain(l, fn, ctx, e) < 0)
			return -1;
	}
	if (stat(l->path, &now) < 0)
		return 0; /* rotated away, the new one not there yet */
	if (l->fd >= 0 && now.st_dev == l->dev && now.st_ino == l->ino)
		return 0;
	/* A new file: what the old one ended with was its last line. */
	if (l->fd >= 0) {
		lines(l, fn, ctx, true);
		close(l->fd);
	}
	l->fd = open(l->path, O_RDONLY | O_CLOEXEC);
	if (l->fd < 0)
		return 0;
	if (fstat(l->fd, &st) < 0) {
		close(l->fd);
		l->fd = -1;
		return 0;
	}
	l->dev = st.st_dev;
	l->ino = st.st_ino;
	l->off = 0;
	l->len = 0;
	l->taillen = 0;
	return drain(l, fn, ctx, e);
}

void
chom_alog_close(struct chom_alog *l)
{
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
	free(l->path);
	free(l->buf);
	l->path = l->buf = NULL;
}
