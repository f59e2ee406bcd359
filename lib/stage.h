/*
 * Staging: an artifact becomes BASE/releases/ID in one pass, through
 * releases/.tmp-ID-PID/, and BASE/next points at it.
 */
#ifndef CHOM_STAGE_H
#define CHOM_STAGE_H

#include <limits.h>
#include <signal.h>
#include <stddef.h>

#include "err.h"
#include "extract.h"
#include "release.h"
#include "sha256.h"

struct chom_stage_opts {
	const struct chom_layout *layout;
	const char *artifact;     /* a path, or "-" for stdin */
	const char *id;           /* the release ID, already validated */
	const char *sha256;       /* expected digest (lowercase hex), or NULL */
	const char *const *links; /* --link paths, relative to the release */
	size_t nlinks;
	unsigned long long max_bytes, max_files;
	double wait_s; /* for the deploy lock, taken only to publish */
	volatile sig_atomic_t *stop;
	chom_extract_progress_fn progress;
	void *progress_ctx;
};

struct chom_stage_result {
	char path[PATH_MAX];                 /* BASE/releases/ID */
	char sha256[CHOM_SHA256_HEXLEN + 1]; /* of the artifact as read */
	struct chom_extract_stats st;
	int removed_stale; /* temporary directories of dead runs removed */
};

int chom_stage(const struct chom_stage_opts *o, struct chom_stage_result *r,
	       struct chom_err *e);

/*
 * Removes releases/.tmp-* directories whose owner is gone (its flock on the
 * directory is free). Returns how many, or -1.
 */
int chom_stage_clean_stale(const struct chom_layout *l, struct chom_err *e);

/* Checks a --link path: relative, no "..", normal. */
int chom_stage_check_link(const char *path, struct chom_err *e);

#endif
