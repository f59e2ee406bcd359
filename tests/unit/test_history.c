/*
 * Unit tests for lib/history.c: appending and reading BASE/.chom/history,
 * and the rollback stack replayed from it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "exitcode.h"
#include "history.h"

#include "testutil.h"

struct fixture {
	char dir[64];
	char path[96];
};

static int
setup(void **state)
{
	struct fixture *fx = TU_FIXTURE_NEW(struct fixture, dir, "history");

	if (!fx)
		return -1;
	snprintf(fx->path, sizeof(fx->path), "%s/history", fx->dir);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;

	tu_fixture_free(fx, fx->dir);
	unsetenv("SUDO_USER");
	return 0;
}

static void
test_append_then_read(void **state)
{
	struct fixture *fx = *state;
	struct chom_history_entry *h;
	struct chom_err e = { 0 };
	time_t t0 = time(NULL), t1;
	size_t n;

	setenv("SUDO_USER", "alice", 1);
	assert_int_equal(chom_history_append(fx->path, "stage", "", "v1", &e),
			 0);
	assert_int_equal(
	    chom_history_append(fx->path, "switch", NULL, "v1", &e), 0);
	assert_int_equal(chom_history_append(fx->path, "prune", "v0", "", &e),
			 0);
	t1 = time(NULL);
	assert_int_equal(chom_history_read(fx->path, &h, &n, &e), 0);
	assert_int_equal(n, 3);
	assert_string_equal(h[0].action, "stage");
	assert_string_equal(h[0].from, "");
	assert_string_equal(h[0].to, "v1");
	assert_string_equal(h[0].user, "alice");
	assert_true(h[0].when >= t0 && h[0].when <= t1);
	assert_string_equal(h[1].action, "switch");
	assert_string_equal(h[1].from, "");
	assert_string_equal(h[1].to, "v1");
	assert_string_equal(h[2].action, "prune");
	assert_string_equal(h[2].from, "v0");
	assert_string_equal(h[2].to, "");
	free(h);
}

static void
test_line_format(void **state)
{
	struct fixture *fx = *state;
	struct chom_err e = { 0 };
	char line[256], stamp[32], action[32], from[80], to[80], user[80];
	struct tm tm;
	FILE *f;

	setenv("SUDO_USER", "bob", 1);
	assert_int_equal(
	    chom_history_append(fx->path, "switch", "v1", "v2", &e), 0);
	f = fopen(fx->path, "r");
	assert_non_null(f);
	assert_non_null(fgets(line, sizeof(line), f));
	assert_null(fgets(line + 200, 50, f)); /* one line only */
	fclose(f);
	assert_int_equal(sscanf(line,
				"%31[^\t]\t%31[^\t]\t%79[^\t]\t%79[^\t]\t"
				"%79[^\n]",
				stamp, action, from, to, user),
			 5);
	memset(&tm, 0, sizeof(tm));
	assert_non_null(strptime(stamp, "%Y-%m-%dT%H:%M:%SZ", &tm));
	assert_string_equal(action, "switch");
	assert_string_equal(from, "v1");
	assert_string_equal(to, "v2");
	assert_string_equal(user, "bob");
	assert_int_equal(line[strlen(line) - 1], '\n');
}

static void
test_user_without_sudo(void **state)
{
	struct fixture *fx = *state;
	struct chom_history_entry *h;
	struct chom_err e = { 0 };
	size_t n;

	unsetenv("SUDO_USER");
	assert_int_equal(chom_history_append(fx->path, "stage", "", "v1", &e),
			 0);
	assert_int_equal(chom_history_read(fx->path, &h, &n, &e), 0);
	assert_int_equal(n, 1);
	assert_true(h[0].user[0] != '\0');
	assert_null(strchr(h[0].user, '\t'));
	free(h);
}

static void
test_read_missing(void **state)
{
	struct fixture *fx = *state;
	struct chom_history_entry *h = (void *)1;
	struct chom_err e = { 0 };
	size_t n = 7;

	assert_int_equal(chom_history_read(fx->path, &h, &n, &e), 0);
	assert_int_equal(n, 0);
	assert_null(h);
}

static void
test_read_skips_bad_lines(void **state)
{
	struct fixture *fx = *state;
	struct chom_history_entry *h;
	struct chom_err e = { 0 };
	size_t n;

	tu_write(
	    fx->path,
	    "2026-11-27T07:00:00Z\tstage\t-\tv1\troot\n"
	    "garbage\n"
	    "\n"
	    "2026-11-27T07:00:01Z\tswitch\t-\tv1\n" /* 4 fields */
	    "not-a-time\tswitch\t-\tv1\troot\n"
	    "2026-11-27T07:00:02Z\tan-action-too-long-to-keep\t-\tv1\troot\n"
	    "2026-11-27T07:00:03Z\tswitch\t-\tv1\troot\n"
	    "2026-11-27T07:00:04Z\trollback\tv1\t-\troot"); /* no newline */
	assert_int_equal(chom_history_read(fx->path, &h, &n, &e), 0);
	assert_int_equal(n, 3);
	assert_string_equal(h[0].action, "stage");
	assert_int_equal(h[0].when, 1795762800);
	assert_string_equal(h[0].user, "root");
	assert_string_equal(h[1].action, "switch");
	assert_int_equal(h[1].when, 1795762803);
	assert_string_equal(h[2].action, "rollback");
	assert_string_equal(h[2].from, "v1");
	assert_string_equal(h[2].to, "");
	free(h);
}

static void
test_read_many(void **state)
{
	struct fixture *fx = *state;
	struct chom_history_entry *h;
	struct chom_err e = { 0 };
	size_t n, i;
	FILE *f = fopen(fx->path, "w");

	assert_non_null(f);
	for (i = 0; i < 300; i++)
		fprintf(f, "2026-11-27T07:00:00Z\tstage\t-\tr%zu\troot\n", i);
	fclose(f);
	assert_int_equal(chom_history_read(fx->path, &h, &n, &e), 0);
	assert_int_equal(n, 300);
	assert_string_equal(h[299].to, "r299");
	free(h);
}

static void
test_append_missing_dir(void **state)
{
	struct fixture *fx = *state;
	struct chom_err e = { 0 };
	char p[160];

	snprintf(p, sizeof(p), "%s/no/history", fx->dir);
	assert_int_equal(chom_history_append(p, "stage", "", "v1", &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_FAIL);
	assert_non_null(strstr(e.msg, p));
}

/* Builds an in-memory history from "action from to" triples. */
static size_t
build(struct chom_history_entry *h, size_t max, const char *const *lines)
{
	size_t n = 0;

	for (; lines[n]; n++) {
		assert_true(n < max);
		memset(&h[n], 0, sizeof(h[n]));
		h[n].when = 1700000000 + (time_t)n;
		assert_int_equal(sscanf(lines[n], "%15s %64s %64s", h[n].action,
					h[n].from, h[n].to),
				 3);
		if (!strcmp(h[n].from, "-"))
			h[n].from[0] = '\0';
		if (!strcmp(h[n].to, "-"))
			h[n].to[0] = '\0';
	}
	return n;
}

/* The rollback target from current after lines; NULL: none. */
static void
expect_target(const char *const *lines, const char *current, const char *want)
{
	struct chom_history_entry h[32];
	char id[CHOM_ID_MAX + 1] = "";
	size_t n = build(h, 32, lines);
	int rc = chom_history_rollback_target(h, n, current, id, sizeof(id));

	if (want && rc != 0)
		TU_FAILF("no rollback target from %s, want %s", current, want);
	if (!want && rc != 1)
		TU_FAILF("rollback target %s from %s, want none", id, current);
	if (want)
		assert_string_equal(id, want);
}

static void
test_rollback_stack(void **state)
{
	static const char *const three[] = {
		"switch - v1",
		"switch v1 v2",
		"switch v2 v3",
		NULL,
	};
	static const char *const back1[] = {
		"switch - v1",    "switch v1 v2", "switch v2 v3",
		"rollback v3 v2", NULL,
	};
	static const char *const back2[] = {
		"switch - v1",    "switch v1 v2",   "switch v2 v3",
		"rollback v3 v2", "rollback v2 v1", NULL,
	};
	/* chom-switch(1): after the rollbacks, a switch to v4 pushes on v1. */
	static const char *const then_v4[] = {
		"switch - v1",
		"switch v1 v2",
		"switch v2 v3",
		"rollback v3 v2",
		"rollback v2 v1",
		"switch v1 v4",
		NULL,
	};

	expect_target(three, "v3", "v2");
	expect_target(back1, "v2", "v1");
	expect_target(back2, "v1", NULL);
	expect_target(then_v4, "v4", "v1");
}

static void
test_rollback_never_bounces(void **state)
{
	static const char *const lines[] = {
		"switch - v1",
		"switch v1 v2",
		"rollback v2 v1",
		NULL,
	};

	/* v2 was rolled back from: it is not a target any more. */
	expect_target(lines, "v1", NULL);
}

static void
test_revert_pops(void **state)
{
	static const char *const failed[] = {
		"switch - v1",  "switch v1 v2", "switch v2 v3",
		"revert v3 v2", NULL,
	};
	static const char *const first[] = {
		"switch - v1",
		"revert v1 -",
		NULL,
	};
	static const char *const only[] = {
		"switch - v1",
		"switch v1 v2",
		"revert v2 v1",
		NULL,
	};

	expect_target(failed, "v2", "v1");
	expect_target(first, "", NULL);
	expect_target(only, "v1", NULL);
}

static void
test_revert_after_rollback_pushes(void **state)
{
	/* A rollback whose --exec failed is reverted: the revert undoes the
	 * rollback's pop, so the stack is as before the rollback. */
	static const char *const lines[] = {
		"switch - v1",    "switch v1 v2", "switch v2 v3",
		"rollback v3 v2", "revert v2 v3", NULL,
	};
	static const char *const staged_between[] = {
		"switch - v1", "switch v1 v2", "rollback v2 v1",
		"stage - v3",  "revert v1 v2", NULL,
	};
	static const char *const then_rollback[] = {
		"switch - v1",  "switch v1 v2",
		"switch v2 v3", "rollback v3 v2",
		"revert v2 v3", "rollback v3 v2",
		NULL,
	};

	expect_target(lines, "v3", "v2");
	/* stage lines between do not change which entry is undone. */
	expect_target(staged_between, "v2", "v1");
	expect_target(then_rollback, "v2", "v1");
}

static void
test_rollback_current_changed_by_hand(void **state)
{
	static const char *const lines[] = {
		"switch - v1",
		"switch v1 v2",
		"switch v2 v3",
		NULL,
	};

	/* Not a stack entry: the newest entry goes. */
	expect_target(lines, "v9", "v3");
	/* Below the top: the newest entry that is not current. */
	expect_target(lines, "v2", "v3");
	/* Nothing live. */
	expect_target(lines, "", "v3");
	expect_target(lines, NULL, "v3");
}

static void
test_rollback_first_switch_from(void **state)
{
	static const char *const lines[] = {
		/* v0 was live before chom's first recorded switch. */
		"switch v0 v1",
		NULL,
	};
	static const char *const ignored[] = {
		"stage - v1",   "switch - v1", "stage v1 v2", "prune v0 -",
		"switch v1 v2", "stage - v3",  NULL,
	};

	expect_target(lines, "v1", "v0");
	/* stage and prune lines do not touch the stack. */
	expect_target(ignored, "v2", "v1");
}

static void
test_rollback_empty(void **state)
{
	static const char *const none[] = { NULL };
	static const char *const staged[] = { "stage - v1", NULL };
	static const char *const one[] = { "switch - v1", NULL };

	expect_target(none, "v1", NULL);
	expect_target(none, "", NULL);
	expect_target(staged, "", NULL);
	expect_target(one, "v1", NULL);
}

static void
test_rollback_deep(void **state)
{
	static const char *const lines[] = {
		"switch - v1",    "switch v1 v2",
		"switch v2 v3",   "switch v3 v4",
		"rollback v4 v3", "rollback v3 v2",
		"switch v2 v5",   NULL,
	};
	static const char *const repeat[] = {
		"switch - v1",
		"switch v1 v2",
		"switch v2 v1",
		NULL,
	};

	expect_target(lines, "v5", "v2");
	/* A forward switch back to an older release pushes it again. */
	expect_target(repeat, "v1", "v2");
}

static void
test_rollback_small_buffer(void **state)
{
	static const char *const lines[] = {
		"switch - release-one",
		"switch release-one v2",
		NULL,
	};
	struct chom_history_entry h[4];
	char id[4];
	size_t n = build(h, 4, lines);

	assert_int_equal(
	    chom_history_rollback_target(h, n, "v2", id, sizeof(id)), 1);
}

static void
test_staged(void **state)
{
	static const char *const lines[] = {
		"stage - v1", "switch - v1", "stage v1 v2", "stage v2 v1", NULL,
	};
	struct chom_history_entry h[8];
	size_t n = build(h, 8, lines);

	/* The last staging; a switch is not a staging. */
	assert_int_equal(chom_history_staged(h, n, "v1"), 1700000003);
	assert_int_equal(chom_history_staged(h, n, "v2"), 1700000002);
	assert_int_equal(chom_history_staged(h, n, "v3"), 0);
	assert_int_equal(chom_history_staged(h, 0, "v1"), 0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_append_then_read),
		T(test_line_format),
		T(test_user_without_sudo),
		T(test_read_missing),
		T(test_read_skips_bad_lines),
		T(test_read_many),
		T(test_append_missing_dir),
		cmocka_unit_test(test_rollback_stack),
		cmocka_unit_test(test_rollback_never_bounces),
		cmocka_unit_test(test_revert_pops),
		cmocka_unit_test(test_revert_after_rollback_pushes),
		cmocka_unit_test(test_rollback_current_changed_by_hand),
		cmocka_unit_test(test_rollback_first_switch_from),
		cmocka_unit_test(test_rollback_empty),
		cmocka_unit_test(test_rollback_deep),
		cmocka_unit_test(test_rollback_small_buffer),
		cmocka_unit_test(test_staged),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
