/* A quantile, the two-proportion z-test and the Mann-Whitney U test. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "stats.h"

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Reorders v[0..n) so that v[k] is the value a sort would put there, with
 * nothing larger before it and nothing smaller after (Hoare's selection,
 * median-of-three pivots): linear time on average, where a sort of a
 * canary's 100,000 latencies at every sample would cost n log n. */
static void
select_kth(double *v, size_t n, size_t k)
{
	size_t lo = 0, hi = n - 1;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2, i = lo, j = hi;
		double a = v[lo], b = v[mid], c = v[hi], pivot, t;

		pivot = a < b ? (b < c   ? b
				 : a < c ? c
					 : a)
			      : (a < c   ? a
				 : b < c ? c
					 : b);
		while (i <= j) {
			while (v[i] < pivot)
				i++;
			while (v[j] > pivot)
				j--;
			if (i <= j) {
				t = v[i];
				v[i] = v[j];
				v[j] = t;
				i++;
				if (j == 0)
					break;
				j--;
			}
		}
		if (k <= j)
			hi = j;
		else if (k >= i)
			lo = i;
		else
			return; /* between j and i: equal to the pivot */
	}
}

double
chom_stats_quantile(double *v, size_t n, double q)
{
	double h, lo, next;
	size_t i, k;

	if (!n)
		return NAN;
	h = (double)(n - 1) * (q < 0 ? 0 : q > 1 ? 1 : q);
	i = (size_t)h;
	select_kth(v, n, i);
	lo = v[i];
	if (i + 1 >= n)
		return lo;
	/* The next order statistic: the smallest of what follows. */
	for (next = v[i + 1], k = i + 2; k < n; k++)
		if (v[k] < next)
			next = v[k];
	return lo + (h - (double)i) * (next - lo);
}

/* P(Z > z) for a standard normal Z. */
static double
upper_tail(double z)
{
	return 0.5 * erfc(z / sqrt(2.0));
}

double
chom_stats_two_prop_p(unsigned long xa, unsigned long na, unsigned long xb,
		      unsigned long nb)
{
	double pa, pb, p, se;

	if (!na || !nb)
		return NAN;
	pa = (double)xa / (double)na;
	pb = (double)xb / (double)nb;
	p = (double)(xa + xb) / (double)(na + nb);
	se = sqrt(p * (1 - p) * (1.0 / (double)na + 1.0 / (double)nb));
	if (se == 0) /* no error in either pool, or all errors in both */
		return pa > pb ? 0 : 1;
	return upper_tail((pa - pb) / se);
}

struct ranked {
	double v;
	int from_a;
};

static int
cmp_ranked(const void *a, const void *b)
{
	return cmp_double(&((const struct ranked *)a)->v,
			  &((const struct ranked *)b)->v);
}

double
chom_stats_mann_whitney_p(const double *a, size_t na, const double *b,
			  size_t nb)
{
	size_t n = na + nb, i, j;
	struct ranked *r;
	double ra = 0, ties = 0, u, mu, sigma, nn;

	if (!na || !nb || !(r = malloc(n * sizeof(*r))))
		return NAN;
	for (i = 0; i < na; i++)
		r[i] = (struct ranked){ a[i], 1 };
	for (i = 0; i < nb; i++)
		r[na + i] = (struct ranked){ b[i], 0 };
	qsort(r, n, sizeof(*r), cmp_ranked);
	/* Ranks from 1, a run of ties sharing their mean rank. */
	for (i = 0; i < n; i = j) {
		double rank, t;

		for (j = i + 1; j < n && r[j].v == r[i].v; j++)
			;
		rank = (double)(i + 1 + j) / 2.0;
		t = (double)(j - i);
		ties += t * t * t - t;
		for (size_t k = i; k < j; k++)
			if (r[k].from_a)
				ra += rank;
	}
	free(r);
	nn = (double)n;
	u = ra - (double)na * ((double)na + 1) / 2.0;
	mu = (double)na * (double)nb / 2.0;
	sigma = sqrt((double)na * (double)nb / 12.0 *
		     ((nn + 1) - ties / (nn * (nn - 1))));
	if (sigma == 0)
		return NAN;
	return upper_tail((u - mu - 0.5) / sigma);
}
