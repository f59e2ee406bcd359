#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "retention.h"

bool
chom_retention_empty(const struct chom_retention *r)
{
	return !r->last && !r->daily && !r->weekly && !r->monthly &&
	       r->within <= 0;
}

/* The calendar bucket of t for a rule: day, ISO week or month, in UTC. */
static long
bucket(time_t t, char rule)
{
	struct tm tm;
	char buf[16];

	gmtime_r(&t, &tm);
	if (rule == 'd')
		return (tm.tm_year + 1900L) * 1000 + tm.tm_yday;
	if (rule == 'm')
		return (tm.tm_year + 1900L) * 100 + tm.tm_mon;
	strftime(buf, sizeof(buf), "%G%V", &tm);
	return strtol(buf, NULL, 10);
}

static void
by_bucket(const struct chom_point *p, size_t n, long count, char rule,
	  const char *name, bool *keep, const char **why)
{
	long seen = 0, last = -1;
	size_t i;

	for (i = 0; i < n && seen < count; i++) {
		long b;

		if (!p[i].complete)
			continue;
		b = bucket(p[i].when, rule);
		if (b == last)
			continue;
		last = b;
		seen++;
		if (!keep[i]) {
			keep[i] = true;
			why[i] = name;
		}
	}
}

void
chom_retention_apply(const struct chom_point *p, size_t n,
		     const struct chom_retention *r, time_t now, bool *keep,
		     const char **why)
{
	time_t newest = 0;
	long seen = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		keep[i] = false;
		why[i] = NULL;
		if (p[i].complete && !newest)
			newest = p[i].when;
	}
	for (i = 0; i < n; i++) {
		if (!p[i].complete) {
			/* Maybe a backup still running: a day to finish. */
			if (now - p[i].when < 86400) {
				keep[i] = true;
				why[i] = "incomplete, less than a day old";
			}
			continue;
		}
		if (p[i].when == newest) {
			keep[i] = true;
			why[i] = "newest";
		} else if (r->last && seen < r->last) {
			keep[i] = true;
			why[i] = "last";
		} else if (r->within > 0 &&
			   difftime(newest, p[i].when) < r->within) {
			keep[i] = true;
			why[i] = "within";
		}
		seen++;
	}
	by_bucket(p, n, r->daily, 'd', "daily", keep, why);
	by_bucket(p, n, r->weekly, 'w', "weekly", keep, why);
	by_bucket(p, n, r->monthly, 'm', "monthly", keep, why);
}
