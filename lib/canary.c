#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canary.h"
#include "exitcode.h"
#include "stats.h"

void
chom_pool_init(struct chom_pool *p)
{
	memset(p, 0, sizeof(*p));
	p->rng = 0x9e3779b97f4a7c15ULL;
}

void
chom_pool_reset(struct chom_pool *p)
{
	p->requests = p->errors = p->seen = 0;
	p->nlat = 0;
}

void
chom_pool_free(struct chom_pool *p)
{
	free(p->lat);
	p->lat = NULL;
	p->nlat = 0;
}

static unsigned long long
next_rand(struct chom_pool *p)
{
	/* xorshift64*: enough to pick reservoir slots uniformly */
	p->rng ^= p->rng >> 12;
	p->rng ^= p->rng << 25;
	p->rng ^= p->rng >> 27;
	return p->rng * 0x2545F4914F6CDD1DULL;
}

int
chom_pool_add(struct chom_pool *p, int status, double seconds)
{
	unsigned long long j;

	p->requests++;
	if (status >= 500)
		p->errors++;
	if (seconds < 0)
		return 0;
	if (!p->lat && !(p->lat = malloc(CHOM_POOL_RESERVOIR * sizeof(double))))
		return -1;
	p->seen++;
	if (p->nlat < CHOM_POOL_RESERVOIR) {
		p->lat[p->nlat++] = seconds;
		return 0;
	}
	/* Algorithm R: keep the new value with probability size / seen. */
	j = next_rand(p) % p->seen;
	if (j < CHOM_POOL_RESERVOIR)
		p->lat[j] = seconds;
	return 0;
}

double
chom_pool_p95(const struct chom_pool *p)
{
	double *v, q;

	if (!p->nlat)
		return NAN;
	if (!(v = malloc(p->nlat * sizeof(double))))
		return NAN;
	memcpy(v, p->lat, p->nlat * sizeof(double));
	q = chom_stats_quantile(v, p->nlat, 0.95);
	free(v);
	return q;
}

double
chom_pool_error_rate(const struct chom_pool *p)
{
	return p->requests ? (double)p->errors / (double)p->requests : NAN;
}

struct chom_pool_view
chom_pool_view(const struct chom_pool *p)
{
	return (struct chom_pool_view){
		.counted = true,
		.requests = p->requests,
		.errors = p->errors,
		.error_rate = chom_pool_error_rate(p),
		.p95 = chom_pool_p95(p),
	};
}

const char *
chom_verdict_name(enum chom_verdict v)
{
	switch (v) {
	case CHOM_PASS: return "pass";
	case CHOM_INCONCLUSIVE: return "inconclusive";
	default: return "fail";
	}
}

enum chom_verdict
chom_judge_counts(const struct chom_judge *j, const struct chom_pool *canary,
		  const struct chom_pool *stable, char *why, size_t size)
{
	bool compare = stable->requests >= j->min_requests && stable->requests;
	double cr, sr, c95, s95, p;

	if (canary->requests < j->min_requests || !canary->requests) {
		snprintf(why, size,
			 "%llu canary requests, fewer than --min-requests %llu",
			 canary->requests, j->min_requests);
		return CHOM_INCONCLUSIVE;
	}
	why[0] = '\0';
	cr = chom_pool_error_rate(canary);
	if (cr > j->max_error_rate) {
		if (!compare) {
			snprintf(why, size,
				 "error rate %.2f%% is over %.2f%% (stable: "
				 "too few requests to compare)",
				 cr * 100, j->max_error_rate * 100);
			return CHOM_FAIL;
		}
		sr = chom_pool_error_rate(stable);
		p = chom_stats_two_prop_p(canary->errors, canary->requests,
					  stable->errors, stable->requests);
		if (p < j->alpha) {
			snprintf(why, size,
				 "error rate %.2f%% is over %.2f%% and worse "
				 "than stable's %.2f%% (p=%.2g)",
				 cr * 100, j->max_error_rate * 100, sr * 100,
				 p);
			return CHOM_FAIL;
		}
		snprintf(why, size,
			 "error rate %.2f%% is over %.2f%%, but stable's "
			 "%.2f%% is as high (p=%.2g)",
			 cr * 100, j->max_error_rate * 100, sr * 100, p);
	}
	c95 = chom_pool_p95(canary);
	if (c95 > j->max_p95) {
		s95 = chom_pool_p95(stable);
		if (!compare || !stable->nlat) {
			snprintf(why, size,
				 "p95 %.0f ms is over %.0f ms (stable: too "
				 "few requests to compare)",
				 c95 * 1000, j->max_p95 * 1000);
			return CHOM_FAIL;
		}
		p = chom_stats_mann_whitney_p(canary->lat, canary->nlat,
					      stable->lat, stable->nlat);
		if (p < j->alpha) {
			snprintf(why, size,
				 "p95 %.0f ms is over %.0f ms and slower "
				 "than stable's %.0f ms (p=%.2g)",
				 c95 * 1000, j->max_p95 * 1000, s95 * 1000, p);
			return CHOM_FAIL;
		}
		if (!why[0])
			snprintf(why, size,
				 "p95 %.0f ms is over %.0f ms, but stable's "
				 "%.0f ms is as slow (p=%.2g)",
				 c95 * 1000, j->max_p95 * 1000, s95 * 1000,
				 isnan(p) ? 1.0 : p);
	}
	return CHOM_PASS;
}

/* One value against its threshold and stable's value. */
static enum chom_verdict
judge_value(const char *what, double c, double s, double max, double unit,
	    const char *u, char *why, size_t size)
{
	if (c < 0) /* not asked for */
		return CHOM_PASS;
	if (isnan(c)) {
		snprintf(why, size, "canary %s: no value", what);
		return CHOM_INCONCLUSIVE;
	}
	if (c <= max)
		return CHOM_PASS;
	if (isnan(s) || s <= max) {
		snprintf(why, size, "%s %.3g%s is over %.3g%s%s", what,
			 c * unit, u, max * unit, u,
			 isnan(s) ? " (stable: no value)" : "");
		return CHOM_FAIL;
	}
	if (c > 1.5 * s) {
		snprintf(why, size,
			 "%s %.3g%s is over %.3g%s and 1.5 times stable's "
			 "%.3g%s",
			 what, c * unit, u, max * unit, u, s * unit, u);
		return CHOM_FAIL;
	}
	snprintf(why, size,
		 "%s %.3g%s is over %.3g%s, but stable's %.3g%s is as high",
		 what, c * unit, u, max * unit, u, s * unit, u);
	return CHOM_PASS;
}

enum chom_verdict
chom_judge_values(const struct chom_judge *j,
		  const struct chom_pool_view *canary,
		  const struct chom_pool_view *stable, char *why, size_t size)
{
	enum chom_verdict a, b;
	char wa[256] = "", wb[256] = "";

	a = judge_value("error rate", canary->error_rate, stable->error_rate,
			j->max_error_rate, 100, "%", wa, sizeof(wa));
	b = judge_value("p95", canary->p95, stable->p95, j->max_p95, 1000,
			" ms", wb, sizeof(wb));
	/* The worse of the two speaks. */
	if (a >= b)
		snprintf(why, size, "%s", wa[0] ? wa : wb);
	else
		snprintf(why, size, "%s", wb[0] ? wb : wa);
	return a > b ? a : b;
}
