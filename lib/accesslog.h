/*
 * Following an nginx access log and reading, from each line, the fields
 * chom-canary judges by: st=$status ua="$upstream_addr"
 * urt="$upstream_response_time" (key=value, anywhere in the line).
 */
#ifndef CHOM_ACCESSLOG_H
#define CHOM_ACCESSLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "err.h"

struct chom_alog_rec {
	const char *addr; /* the upstream that answered last, not 0-ended */
	size_t addrlen;
	int status;     /* $status */
	double seconds; /* its $upstream_response_time; -1 when "-" */
};

/*
 * Reads one line (without its newline). Returns 1 with r filled, 0 for a
 * line that names no upstream (ua="-", or no ua= at all), -1 for a line
 * without st= or with a malformed field.
 */
int chom_alog_parse(const char *line, size_t len, struct chom_alog_rec *r);

typedef void (*chom_alog_fn)(void *ctx, const struct chom_alog_rec *r);

struct chom_alog {
	char *path;
	int fd;
	dev_t dev;
	ino_t ino;
	off_t off;
	char *buf; /* an unfinished last line is kept here */
	size_t len, cap;
	unsigned long long lines, bad;
	/* The last bytes read, before off: a file truncated in place and
	 * written past off again no longer has them there. */
	char tail[64];
	size_t taillen;
};

/* Opens path and starts at its end: only lines written from now on count.
 * A log that does not exist yet is fine; it is opened when it appears. */
int chom_alog_open(struct chom_alog *l, const char *path, struct chom_err *e);
/* Reads what was appended since the last call and hands each complete line
 * that names an upstream to fn. A log rotated (a new file at path, or the
 * file truncated, even if it has grown past where it was read to since) is
 * read from its start once the old one is read out. */
int chom_alog_read(struct chom_alog *l, chom_alog_fn fn, void *ctx,
		   struct chom_err *e);
void chom_alog_close(struct chom_alog *l);

#endif
