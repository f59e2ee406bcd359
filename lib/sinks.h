/* Small pipeline stages: counting and hashing, and a tee to many sinks. */
#ifndef CHOM_SINKS_H
#define CHOM_SINKS_H

#include "sha256.h"
#include "sink.h"

/* Passes bytes on to next, adding their count to *count and, when h is
 * not NULL, hashing them. Neither is owned. */
struct chom_sink *chom_sink_measure_new(struct chom_sink *next,
					struct chom_sha256 *h,
					unsigned long long *count,
					struct chom_err *e);
/* As chom_sink_measure_new, but a write that would take *count past max
 * fails (code 1) and passes none of its bytes on: "more than MAX bytes
 * WHAT: stopped there". The count starts at *count. */
struct chom_sink *chom_sink_limit_new(struct chom_sink *next,
				      struct chom_sha256 *h,
				      unsigned long long *count,
				      unsigned long long max, const char *what,
				      struct chom_err *e);
/* Writes every byte to each of the n sinks, which it owns. */
struct chom_sink *chom_sink_tee_new(struct chom_sink **sinks, size_t n,
				    struct chom_err *e);

/* Discards everything: the end of a pipeline that only verifies. */
struct chom_sink *chom_sink_null_new(struct chom_err *e);
/* Writes everything to fd, which it owns: close() and free() close it.
 * what names it in errors. */
struct chom_sink *chom_sink_fd_new(int fd, const char *what,
				   struct chom_err *e);
#endif
