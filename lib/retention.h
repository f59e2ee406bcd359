/*
 * Which backup points to keep, with restic's rules: --keep-last N, the N
 * newest; --keep-within D, those within D of the newest; --keep-daily,
 * -weekly, -monthly N, the newest point of each of the N most recent days,
 * ISO weeks, months (UTC) that have points. A point kept by any rule is
 * kept. The newest complete point is always kept; incomplete points (no
 * manifest) are removed once older than a day, else left to finish.
 */
#ifndef CHOM_RETENTION_H
#define CHOM_RETENTION_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "store.h"

struct chom_retention {
	long last, daily, weekly, monthly; /* 0: rule not used */
	double within;                     /* seconds; 0: rule not used */
};

/* True when no rule is set: pruning would keep only the newest. */
bool chom_retention_empty(const struct chom_retention *r);

/* For points newest first: keep[i] and why[i] ("last", "daily", ...;
 * NULL when it goes). */
void chom_retention_apply(const struct chom_point *p, size_t n,
			  const struct chom_retention *r, time_t now,
			  bool *keep, const char **why);

#endif
