/*
 * An S3 client on libcurl, signed with sigv4.c: objects put, streamed out
 * (resumed with a Range request after a failure), listed, deleted in
 * batches, and uploaded as a stream of unknown length in parallel parts.
 * Failed requests (connection errors, timeouts, 5xx, 429) are retried
 * with exponential backoff and full jitter; others fail at once with the
 * server's Code and Message.
 */
#ifndef CHOM_S3_H
#define CHOM_S3_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "err.h"
#include "s3xml.h"
#include "sink.h"

#define CHOM_S3_PART_MIN (8ULL << 20) /* the first parts' size */
#define CHOM_S3_MAX_PARTS 10000

struct chom_s3_opts {
	const char *bucket;
	/* NULL: $AWS_ENDPOINT_URL_S3, $AWS_ENDPOINT_URL, else AWS's. */
	const char *endpoint;
	const char *region;        /* NULL: $AWS_REGION, else us-east-1 */
	int path_style;            /* -1: path-style for an endpoint given */
	int parallel;              /* parts in flight (0: 4) */
	const char *storage_class; /* NULL: the bucket's default */
	int attempts;              /* per request (0: 8) */
	double backoff;            /* the first wait in seconds (0: 0.25) */
	volatile sig_atomic_t *stop;
};

struct chom_s3;

/*
 * Credentials from $AWS_ACCESS_KEY_ID, $AWS_SECRET_ACCESS_KEY and
 * $AWS_SESSION_TOKEN, else from the profile $AWS_PROFILE (default
 * "default") of $AWS_SHARED_CREDENTIALS_FILE (default ~/.aws/credentials).
 * None: code 2.
 */
int chom_s3_new(const struct chom_s3_opts *o, struct chom_s3 **out,
		struct chom_err *e);
void chom_s3_free(struct chom_s3 *s);

/* One object, whole; in the storage class given at creation when
 * with_class (a manifest is not: it must stay readable at once). */
int chom_s3_put(struct chom_s3 *s, const char *key, const void *data,
		size_t len, bool with_class, struct chom_err *e);
/* Streams an object into out (not closed here). A missing one: code 1,
 * and *missing set when not NULL. */
int chom_s3_get(struct chom_s3 *s, const char *key, struct chom_sink *out,
		bool *missing, struct chom_err *e);
/* Every object under prefix (all pages); with delim, CommonPrefixes too. */
int chom_s3_list(struct chom_s3 *s, const char *prefix, const char *delim,
		 struct chom_s3_listing *out, struct chom_err *e);
/* DeleteObjects in batches of 1000; a key not deleted fails (code 1). */
int chom_s3_delete(struct chom_s3 *s, const char *const *keys, size_t n,
		   struct chom_err *e);

/*
 * From now on the client only cleans up after a failure: a signal no
 * longer stops its requests; each is tried 3 times at most, an attempt
 * 10 s at most, and none starts 30 s after the first call, so that a dead
 * server does not hold the exit up for minutes.
 */
void chom_s3_cleaning_up(struct chom_s3 *s);

/*
 * A sink that uploads what it is given to key: parts of CHOM_S3_PART_MIN,
 * growing so that any stream fits in CHOM_S3_MAX_PARTS, up to parallel of
 * them in flight (memory: parallel + 1 parts), each with its SHA-256
 * checksum. close() completes the upload (a stream smaller than a part is
 * one PUT); free() before that aborts it.
 */
/* Part n's size (1-based): CHOM_S3_PART_MIN, doubled every 1000 parts
 * (a 4 GiB part last, 7.8 TiB in all); 0 past CHOM_S3_MAX_PARTS. */
unsigned long long chom_s3_part_size(int n);

struct chom_sink *chom_s3_upload_new(struct chom_s3 *s, const char *key,
				     struct chom_err *e);

#endif
