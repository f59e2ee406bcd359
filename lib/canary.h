/*
 * Judging a canary: what each pool did during a step (requests, errors,
 * a uniform reservoir of latencies), and the verdict of one sample, from
 * absolute thresholds and a comparison with the stable pool.
 */
#ifndef CHOM_CANARY_H
#define CHOM_CANARY_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

#define CHOM_POOL_RESERVOIR 100000 /* latencies kept per pool and step */

struct chom_pool {
	unsigned long long requests, errors; /* exact */
	double *lat;                         /* seconds, a uniform sample */
	size_t nlat;
	unsigned long long seen; /* latencies offered to the reservoir */
	unsigned long long rng;
};

void chom_pool_init(struct chom_pool *p);
void chom_pool_reset(struct chom_pool *p);
void chom_pool_free(struct chom_pool *p);
/* One request: its status, and its latency in seconds (< 0: unknown). */
int chom_pool_add(struct chom_pool *p, int status, double seconds);
/* NAN when no latency is known. Sorts a copy. */
double chom_pool_p95(const struct chom_pool *p);
/* NAN when there were no requests. */
double chom_pool_error_rate(const struct chom_pool *p);

enum chom_verdict {
	CHOM_PASS = 0,
	CHOM_INCONCLUSIVE = 1,
	CHOM_FAIL = 2,
};
const char *chom_verdict_name(enum chom_verdict v);

struct chom_judge {
	double max_error_rate; /* fraction */
	double max_p95;        /* seconds */
	unsigned long long min_requests;
	double alpha;
};

/* What a pool looked like in a sample, for the verdict and the output. */
struct chom_pool_view {
	bool counted; /* requests and errors are known */
	unsigned long long requests, errors;
	double error_rate, p95; /* NAN when unknown */
};

struct chom_pool_view chom_pool_view(const struct chom_pool *p);

/*
 * The verdict from counted pools (access log, probes). The canary fails
 * when it is over a threshold and significantly worse than stable (a
 * one-sided pooled two-proportion test for errors, Mann-Whitney U for
 * latencies, at alpha); when stable has fewer than min_requests, the
 * threshold alone judges. Fewer than min_requests canary requests:
 * inconclusive. why gets the reason.
 */
enum chom_verdict chom_judge_counts(const struct chom_judge *j,
				    const struct chom_pool *canary,
				    const struct chom_pool *stable, char *why,
				    size_t size);

/*
 * The verdict from values only (Prometheus): a value below 0 was not
 * measured and passes; NAN for canary is
 * inconclusive; over a threshold while stable is not (or has no value)
 * fails; when both are over it, only when the canary's value is more than
 * 1.5 times stable's.
 */
enum chom_verdict chom_judge_values(const struct chom_judge *j,
				    const struct chom_pool_view *canary,
				    const struct chom_pool_view *stable,
				    char *why, size_t size);

#endif
