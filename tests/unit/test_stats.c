/*
 * Unit tests for lib/stats.c against values computed once with numpy 1.24
 * and scipy 1.10 (Debian 12's python3-scipy): numpy.percentile(v, 95),
 * scipy.stats.norm.sf of the pooled two-proportion z, and
 * scipy.stats.mannwhitneyu(a, b, alternative="greater",
 * method="asymptotic", use_continuity=True).pvalue.
 */
#include <math.h>
#include <stdlib.h>

#include "stats.h"

#include "testutil.h"

#define CLOSE(got, want)                                                       \
	do {                                                                   \
		double g_ = (got), w_ = (want);                                \
		if (!(fabs(g_ - w_) <= 1e-9 * fmax(1.0, fabs(w_))))            \
			TU_FAILF("%s = %.17g, want %.17g", #got, g_, w_);      \
	} while (0)

static void
test_quantile(void **state)
{
	double a[] = { 50, 15, 40, 20, 35 }, one[] = { 7 }, v[100];
	size_t i;

	(void)state;
	CLOSE(chom_stats_quantile(a, 5, 0.95), 48);
	for (i = 0; i < 100; i++)
		v[i] = (double)((i * 37) % 101);
	CLOSE(chom_stats_quantile(v, 100, 0.95), 95.049999999999997);
	CLOSE(chom_stats_quantile(one, 1, 0.95), 7);
	CLOSE(chom_stats_quantile(a, 5, 0), 15);
	CLOSE(chom_stats_quantile(a, 5, 1), 50);
	assert_true(isnan(chom_stats_quantile(a, 0, 0.95)));
}

static int
cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The selection gives what interpolating a sorted copy gives, ties and
 * all. */
static void
test_quantile_select(void **state)
{
	double v[300], w[300], q, h, want;
	unsigned long long x = 88172645463325252ULL;
	size_t n, i, k;
	int t;

	(void)state;
	for (t = 0; t < 3000; t++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		n = 1 + x % 300;
		for (i = 0; i < n; i++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			v[i] = w[i] = (double)(x % (t % 2 ? 5 : 100000));
		}
		q = (double)(t % 101) / 100;
		qsort(w, n, sizeof(double), cmp);
		h = (double)(n - 1) * q;
		k = (size_t)h;
		want = k + 1 < n ? w[k] + (h - (double)k) * (w[k + 1] - w[k])
				 : w[k];
		CLOSE(chom_stats_quantile(v, n, q), want);
	}
}

static void
test_two_proportions(void **state)
{
	(void)state;
	CLOSE(chom_stats_two_prop_p(30, 100, 10, 100), 0.00020347600872247987);
	CLOSE(chom_stats_two_prop_p(5, 1000, 3, 1000), 0.23930956831481442);
	CLOSE(chom_stats_two_prop_p(10, 100, 30, 100), 0.9997965239912775);
	CLOSE(chom_stats_two_prop_p(55, 500, 50, 500), 0.30300431038634912);
	/* Nothing to tell apart, or nothing to go on. */
	CLOSE(chom_stats_two_prop_p(0, 100, 0, 100), 1);
	CLOSE(chom_stats_two_prop_p(100, 100, 100, 100), 1);
	assert_true(isnan(chom_stats_two_prop_p(0, 0, 1, 10)));
	assert_true(isnan(chom_stats_two_prop_p(1, 10, 0, 0)));
}

static void
test_mann_whitney(void **state)
{
	const double a[] = { 1.1, 2.3, 3.5, 4.2, 5.0, 5.0, 6.1 };
	const double b[] = { 0.9, 1.0, 2.3, 2.8, 3.0, 3.3 };
	double a2[200], b2[150], a4[60], b4[60];
	size_t i;

	(void)state;
	CLOSE(chom_stats_mann_whitney_p(a, 7, b, 6), 0.031282801340404433);
	for (i = 0; i < 200; i++)
		a2[i] = 100 + (double)((i * 37) % 50);
	for (i = 0; i < 150; i++)
		b2[i] = 90 + (double)((i * 41) % 50);
	CLOSE(chom_stats_mann_whitney_p(a2, 200, b2, 150),
	      4.0819257613968606e-09);
	CLOSE(chom_stats_mann_whitney_p(b2, 150, a2, 200), 0.99999999594383659);
	/* Many ties: the tie correction matters. */
	for (i = 0; i < 60; i++) {
		a4[i] = (double)(i % 7);
		b4[i] = (double)((i + 3) % 7);
	}
	CLOSE(chom_stats_mann_whitney_p(a4, 60, b4, 60), 0.70935564133204387);
	assert_true(isnan(chom_stats_mann_whitney_p(a, 0, b, 6)));
	assert_true(isnan(chom_stats_mann_whitney_p(a4, 1, a4, 1)));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_quantile),
		cmocka_unit_test(test_quantile_select),
		cmocka_unit_test(test_two_proportions),
		cmocka_unit_test(test_mann_whitney),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
