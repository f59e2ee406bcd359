/*
 * Where backup points live. A store is a URL: file:///PATH now; s3:// is a
 * second backend behind the same calls. Inside it: HOST/POINT/ with the
 * parts and manifest.json, written last: a point exists iff it has one.
 */
#ifndef CHOM_STORE_H
#define CHOM_STORE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "err.h"
#include "sink.h"

#define CHOM_POINT_LEN 16 /* YYYYMMDDTHHMMSSZ */

struct chom_store;

struct chom_point {
	char id[CHOM_POINT_LEN + 1];
	time_t when;   /* from the id */
	bool complete; /* has its manifest */
};

struct chom_store_opts {
	int s3_parallel;              /* parts in flight (0: the default) */
	const char *s3_storage_class; /* NULL: the bucket's default */
	volatile sig_atomic_t *stop;
};

/* file:///PATH or s3://BUCKET[/PREFIX]; code 2 for a URL no backend
 * takes, or an S3 target without credentials. */
int chom_store_open(const char *url, struct chom_store **out,
		    struct chom_err *e);
int chom_store_open_opts(const char *url, const struct chom_store_opts *o,
			 struct chom_store **out, struct chom_err *e);
void chom_store_free(struct chom_store *s);
const char *chom_store_url(const struct chom_store *s);

/* One writer per HOST at a time: code 3 when another run holds it. */
int chom_store_lock(struct chom_store *s, const char *host, struct chom_err *e);

/* Starts HOST/POINT: 0; -1 on failure; -2 (code 1) when it exists. */
int chom_store_begin(struct chom_store *s, const char *host, const char *point,
		     struct chom_err *e);
/* A sink for one part of the point begun: durable under its name only
 * once closed; freed unclosed, it leaves nothing. */
struct chom_sink *chom_store_part(struct chom_store *s, const char *name,
				  struct chom_err *e);
/* Writes manifest.json last, making the point exist. */
int chom_store_commit(struct chom_store *s, const char *manifest,
		      struct chom_err *e);
/* Removes what the point begun has written. */
void chom_store_abort(struct chom_store *s);

/* HOST's points, newest first; *out freed by the caller. */
int chom_store_list(struct chom_store *s, const char *host,
		    struct chom_point **out, size_t *n, struct chom_err *e);
int chom_store_remove(struct chom_store *s, const char *host, const char *point,
		      struct chom_err *e);

/*
 * Streams object HOST/POINT/NAME into out (not closed here). A missing or
 * unreadable object, or a failed sink: code 1; stopped by *stop: 128+N.
 */
int chom_store_read(struct chom_store *s, const char *host, const char *point,
		    const char *name, struct chom_sink *out,
		    volatile sig_atomic_t *stop, struct chom_err *e);
/* A small object whole, NUL-terminated; larger than max: code 1. */
int chom_store_get(struct chom_store *s, const char *host, const char *point,
		   const char *name, size_t max, char **out, size_t *len,
		   struct chom_err *e);
/* The HOST folders of the store, in no order. */
int chom_store_hosts(struct chom_store *s, char ***out, size_t *n,
		     struct chom_err *e);
void chom_store_hosts_free(char **v, size_t n);
/* The point id for t, and back; -1 if s is not one. */
void chom_point_id(time_t t, char id[CHOM_POINT_LEN + 1]);
int chom_point_time(const char *id, time_t *t);

#endif
