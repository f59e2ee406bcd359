/*
 * The statistics a canary is judged by: a quantile (p95), the pooled
 * two-proportion z-test (error rates), and the Mann-Whitney U test
 * (latencies), each one-sided: is the canary worse than stable?
 */
#ifndef CHOM_STATS_H
#define CHOM_STATS_H

#include <stddef.h>

/* The q-quantile (0-1) of n values, interpolated between the two nearest
 * ranks (numpy's default, Hyndman and Fan's type 7). Reorders v. NAN if
 * n is 0. */
double chom_stats_quantile(double *v, size_t n, double q);

/* The p-value of "xa/na is greater than xb/nb": a one-sided pooled
 * two-proportion z-test. NAN when either n is 0; 1 when neither pool
 * had an error (nothing to tell apart). */
double chom_stats_two_prop_p(unsigned long xa, unsigned long na,
			     unsigned long xb, unsigned long nb);

/* The p-value of "values of a tend to be greater than those of b": a
 * one-sided Mann-Whitney U test, normal approximation with the tie and
 * continuity corrections (scipy's method="asymptotic"). NAN when either
 * is empty or every value is the same. */
double chom_stats_mann_whitney_p(const double *a, size_t na, const double *b,
				 size_t nb);

#endif
