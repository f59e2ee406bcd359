/*
 * Unit tests for lib/retention.c: which backup points --prune keeps, with
 * restic's rules (keep-last, keep-within relative to the newest point,
 * daily / ISO-weekly / monthly buckets in UTC), the newest complete point
 * always kept, and incomplete points given a day to finish.
 *
 * Points are written as ids, newest first; an id prefixed with '?' has no
 * manifest (incomplete). The expectation is a string with one character
 * per point: 'K' kept, '.' removed.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "retention.h"
#include "store.h"

#include "testutil.h"

#define MAXP 32

static time_t
t_of(const char *id)
{
	time_t t = 0;

	if (chom_point_time(id, &t) != 0)
		TU_FAILF("bad point id in the test: %s", id);
	return t;
}

/* Applies r to ids at now and compares with want (see the top). */
static void
expect(const char *const *ids, size_t n, const struct chom_retention *r,
       time_t now, const char *want)
{
	struct chom_point p[MAXP];
	bool keep[MAXP];
	const char *why[MAXP];
	char got[MAXP + 1];
	size_t i;

	assert_true(n <= MAXP);
	assert_int_equal(strlen(want), n);
	memset(p, 0, sizeof(p));
	for (i = 0; i < n; i++) {
		const char *id = ids[i];

		p[i].complete = id[0] != '?';
		if (!p[i].complete)
			id++;
		snprintf(p[i].id, sizeof(p[i].id), "%s", id);
		p[i].when = t_of(id);
		/* Garbage, to be sure apply sets every entry. */
		keep[i] = i % 2;
		why[i] = "stale";
	}
	chom_retention_apply(p, n, r, now, keep, why);
	for (i = 0; i < n; i++) {
		got[i] = keep[i] ? 'K' : '.';
		if (keep[i] && !why[i])
			TU_FAILF("%s kept without a reason", p[i].id);
		if (!keep[i] && why[i])
			TU_FAILF("%s removed with a reason (%s)", p[i].id,
				 why[i]);
	}
	got[n] = '\0';
	if (strcmp(got, want)) {
		print_message("# points:");
		for (i = 0; i < n; i++)
			print_message(" %s%s", ids[i], keep[i] ? "(K)" : "");
		print_message("\n");
		TU_FAILF("kept \"%s\", want \"%s\"", got, want);
	}
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Far after every point, so that no incomplete point is young. */
#define LATER t_of("20300101T000000Z")

static void
test_empty(void **state)
{
	struct chom_retention r = { 0 };

	assert_true(chom_retention_empty(&r));
	r.last = 1;
	assert_false(chom_retention_empty(&r));
	r = (struct chom_retention){ .within = 60 };
	assert_false(chom_retention_empty(&r));
	r = (struct chom_retention){ .daily = 1 };
	assert_false(chom_retention_empty(&r));
	r = (struct chom_retention){ .weekly = 1 };
	assert_false(chom_retention_empty(&r));
	r = (struct chom_retention){ .monthly = 1 };
	assert_false(chom_retention_empty(&r));
}

static void
test_no_points(void **state)
{
	struct chom_retention r = { .last = 3 };
	bool keep[1] = { true };
	const char *why[1] = { "x" };

	/* Nothing to do, and nothing touched. */
	chom_retention_apply(NULL, 0, &r, LATER, keep, why);
	assert_true(keep[0]);
}

static void
test_keep_last(void **state)
{
	static const char *const ids[] = {
		"20240615T120000Z", "20240615T060000Z", "20240614T120000Z",
		"20240613T120000Z", "20240601T120000Z",
	};
	struct chom_retention r = { .last = 3 };

	expect(ids, N(ids), &r, LATER, "KKK..");
	r.last = 1;
	expect(ids, N(ids), &r, LATER, "K....");
	r.last = 5;
	expect(ids, N(ids), &r, LATER, "KKKKK");
	r.last = 100;
	expect(ids, N(ids), &r, LATER, "KKKKK");
}

/* An old incomplete point is no backup: it goes, and takes no slot of
 * --keep-last from a complete one. */
static void
test_keep_last_skips_incomplete(void **state)
{
	static const char *const ids[] = {
		"20240615T120000Z", "?20240614T120000Z", "20240613T120000Z",
		"20240612T120000Z", "20240611T120000Z",
	};
	struct chom_retention r = { .last = 3 };

	expect(ids, N(ids), &r, LATER, "K.KK.");
}

/* Within is measured from the newest point, not from now: all of these
 * are years old. */
static void
test_keep_within_from_newest(void **state)
{
	static const char *const ids[] = {
		"20240610T120000Z", /* newest */
		"20240609T120000Z", /* 1 day */
		"20240608T130000Z", /* 47 h */
		"20240608T110000Z", /* 49 h */
		"20240605T120000Z", /* 5 days */
	};
	struct chom_retention r = { .within = 2 * 86400 };

	expect(ids, N(ids), &r, LATER, "KKK..");
	r.within = 3600;
	expect(ids, N(ids), &r, LATER, "K....");
	r.within = 6 * 86400;
	expect(ids, N(ids), &r, LATER, "KKKKK");
}

/* restic keeps what is strictly within: a point exactly the duration
 * older than the newest is out (restic 0.14 here removes it), as
 * man/chom-backup.1 says too: "less than DURATION older". */
static void
test_keep_within_boundary(void **state)
{
	static const char *const ids[] = {
		"20240610T120000Z",
		"20240608T120001Z", /* 2 days less a second */
		"20240608T120000Z", /* exactly 2 days */
	};
	struct chom_retention r = { .within = 2 * 86400 };

	expect(ids, N(ids), &r, LATER, "KK.");
}

/* Several points in one UTC day: the daily rule keeps the newest of the
 * day only. */
static void
test_keep_daily_newest_of_day(void **state)
{
	static const char *const ids[] = {
		"20240615T200000Z", "20240615T120000Z", "20240615T040000Z",
		"20240614T220000Z", "20240614T100000Z", "20240613T090000Z",
		"20240612T090000Z",
	};
	struct chom_retention r = { .daily = 2 };

	expect(ids, N(ids), &r, LATER, "K..K...");
	r.daily = 3;
	expect(ids, N(ids), &r, LATER, "K..K.K.");
}

/* Days with no point do not use up the count: the N most recent days
 * that have points. */
static void
test_keep_daily_skips_empty_days(void **state)
{
	static const char *const ids[] = {
		"20240620T120000Z",
		"20240610T120000Z",
		"20240601T120000Z",
		"20240520T120000Z",
	};
	struct chom_retention r = { .daily = 3 };

	expect(ids, N(ids), &r, LATER, "KKK.");
}

/*
 * Days are UTC days whatever the local zone. In America/New_York (EDT,
 * UTC-4 from 2024-03-10), 03:00Z and 05:00Z on the 11th are on two local
 * days but one UTC day; 23:30Z on the 10th and 00:30Z on the 11th are on
 * one local day but two UTC days.
 */
static void
test_keep_daily_utc(void **state)
{
	static const char *const ids[] = {
		"20240311T050000Z", /* UTC 11th (local 11th 01:00) */
		"20240311T030000Z", /* UTC 11th (local 10th 23:00) */
		"20240311T003000Z", /* UTC 11th (local 10th 20:30) */
		"20240310T233000Z", /* UTC 10th (local 10th 19:30) */
		"20240309T120000Z", /* UTC 9th */
	};
	struct chom_retention r = { .daily = 2 };
	char *old = getenv("TZ") ? strdup(getenv("TZ")) : NULL;

	setenv("TZ", "America/New_York", 1);
	tzset();
	expect(ids, N(ids), &r, LATER, "K..K.");
	if (old) {
		setenv("TZ", old, 1);
		free(old);
	} else {
		unsetenv("TZ");
	}
	tzset();
}

/*
 * ISO weeks run Monday to Sunday and straddle years: 2020-12-28 (Mon) to
 * 2021-01-03 (Sun) is 2020-W53; 2021-01-04 is 2021-W01. A bucket of
 * calendar year and week number would split 2020-W53 in two.
 */
static void
test_keep_weekly_iso_year_boundary(void **state)
{
	static const char *const ids[] = {
		"20210104T100000Z", /* 2021-W01 */
		"20210103T100000Z", /* 2020-W53, Sunday */
		"20210101T100000Z", /* 2020-W53, Friday */
		"20201231T100000Z", /* 2020-W53, Thursday */
		"20201228T100000Z", /* 2020-W53, Monday */
		"20201227T100000Z", /* 2020-W52, Sunday */
		"20201221T100000Z", /* 2020-W52, Monday */
		"20201220T100000Z", /* 2020-W51 */
	};
	struct chom_retention r = { .weekly = 3 };

	expect(ids, N(ids), &r, LATER, "KK...K..");
}

/* The other way: 2024-12-30 (Mon) is already 2025-W01. */
static void
test_keep_weekly_next_iso_year(void **state)
{
	static const char *const ids[] = {
		"20250102T000000Z", /* 2025-W01 */
		"20241230T000000Z", /* 2025-W01 */
		"20241229T230000Z", /* 2024-W52 */
		"20241223T000000Z", /* 2024-W52 */
		"20241222T000000Z", /* 2024-W51 */
	};
	struct chom_retention r = { .weekly = 2 };

	expect(ids, N(ids), &r, LATER, "K.K..");
}

/* Months in UTC: in Asia/Tokyo (UTC+9) 2024-03-31T23:00Z is April. */
static void
test_keep_monthly_utc(void **state)
{
	static const char *const ids[] = {
		"20240401T010000Z", "20240331T230000Z", "20240315T000000Z",
		"20240229T120000Z", "20240201T000000Z", "20240131T000000Z",
	};
	struct chom_retention r = { .monthly = 2 };
	char *old = getenv("TZ") ? strdup(getenv("TZ")) : NULL;

	setenv("TZ", "Asia/Tokyo", 1);
	tzset();
	expect(ids, N(ids), &r, LATER, "KK....");
	r.monthly = 3;
	expect(ids, N(ids), &r, LATER, "KK.K..");
	if (old) {
		setenv("TZ", old, 1);
		free(old);
	} else {
		unsetenv("TZ");
	}
	tzset();
}

/* A point kept by any rule is kept. */
static void
test_combination(void **state)
{
	static const char *const ids[] = {
		"20240615T120000Z", /* 0: last, daily, monthly */
		"20240615T060000Z", /* 1: last */
		"20240614T180000Z", /* 2: daily, within */
		"20240614T060000Z", /* 3: within 31h (30h old) */
		"20240613T120000Z", /* 4: daily */
		"20240601T000000Z", /* 5: nothing (June taken by 0) */
		"20240520T000000Z", /* 6: monthly */
		"20240510T000000Z", /* 7: nothing */
		"20240430T000000Z", /* 8: monthly */
		"20240301T000000Z", /* 9: nothing, the counts are used up */
	};
	struct chom_retention r = {
		.last = 2, .daily = 3, .monthly = 3, .within = 31 * 3600
	};

	expect(ids, N(ids), &r, LATER, "KKKKK.K.K.");
	r.within = 0;
	expect(ids, N(ids), &r, LATER, "KKK.K.K.K.");
	/* Weekly on top: 2024-W24 (0), W22 (5, Saturday 1 June), W21 (6). */
	r.weekly = 3;
	expect(ids, N(ids), &r, LATER, "KKK.KKK.K.");
}

/* The newest complete point stays whatever the rules say, even behind
 * newer incomplete points. */
static void
test_newest_complete_always_kept(void **state)
{
	static const char *const ids[] = {
		"?20240620T000000Z", /* incomplete, old: goes */
		"20240610T120000Z",  /* the newest complete point */
		"20240610T110000Z",
		"20240609T120000Z",
	};
	struct chom_retention r = { .within = 1 };

	expect(ids, N(ids), &r, LATER, ".K..");
	r = (struct chom_retention){ .last = 1 };
	expect(ids, N(ids), &r, LATER, ".K..");
	r = (struct chom_retention){ .monthly = 1 };
	expect(ids, N(ids), &r, LATER, ".K..");
}

/* An incomplete point may be a backup still running: kept for a day,
 * removed after, whatever the rules. */
static void
test_incomplete_points(void **state)
{
	static const char *const ids[] = {
		"?20240615T120000Z",                      /* 1 h before now */
		"?20240615T000000Z",                      /* 13 h */
		"?20240614T140000Z",                      /* 23 h */
		"20240614T120000Z",                       /* newest complete */
		"?20240614T110000Z",                      /* 26 h */
		"20240614T100000Z",  "?20240610T000000Z", /* days */
	};
	time_t now = t_of("20240615T130000Z");
	struct chom_retention r = { .last = 10 };

	expect(ids, N(ids), &r, now, "KKKK.K.");
	/* keep-daily does not count incomplete points either. */
	r = (struct chom_retention){ .daily = 1 };
	expect(ids, N(ids), &r, now, "KKKK...");
}

/* Only incomplete points: the young ones stay, the old go. */
static void
test_only_incomplete(void **state)
{
	static const char *const ids[] = {
		"?20240615T120000Z",
		"?20240613T120000Z",
	};
	struct chom_retention r = { .last = 5 };

	expect(ids, N(ids), &r, t_of("20240615T130000Z"), "K.");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_no_points),
		cmocka_unit_test(test_keep_last),
		cmocka_unit_test(test_keep_last_skips_incomplete),
		cmocka_unit_test(test_keep_within_from_newest),
		cmocka_unit_test(test_keep_within_boundary),
		cmocka_unit_test(test_keep_daily_newest_of_day),
		cmocka_unit_test(test_keep_daily_skips_empty_days),
		cmocka_unit_test(test_keep_daily_utc),
		cmocka_unit_test(test_keep_weekly_iso_year_boundary),
		cmocka_unit_test(test_keep_weekly_next_iso_year),
		cmocka_unit_test(test_keep_monthly_utc),
		cmocka_unit_test(test_combination),
		cmocka_unit_test(test_newest_complete_always_kept),
		cmocka_unit_test(test_incomplete_points),
		cmocka_unit_test(test_only_incomplete),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
