/* Unit tests for lib/metrics.c: node_exporter textfile collector files. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "exitcode.h"
#include "metrics.h"

#include "testutil.h"

struct fixture {
	char dir[64];
	char prom[128];
};

static int
setup(void **state)
{
	struct fixture *fx = TU_FIXTURE_NEW(struct fixture, dir, "metrics");

	if (!fx)
		return -1;
	snprintf(fx->prom, sizeof(fx->prom), "%s/chom_switch.prom", fx->dir);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;

	return tu_fixture_free(fx, fx->dir);
}

static const char text1[] =
    "# HELP chom_release_info The release BASE/current points at.\n"
    "# TYPE chom_release_info gauge\n"
    "chom_release_info{release=\"v1\"} 1\n";

static void
test_write_content_and_mode(void **state)
{
	struct fixture *fx = *state;
	struct chom_err e = { 0 };
	char buf[512];
	struct stat st;
	mode_t old = umask(077);

	/* 0644 for node_exporter, whatever the umask. */
	assert_int_equal(chom_metrics_write(fx->dir, "chom_switch", text1, &e),
			 0);
	umask(old);
	tu_read(fx->prom, buf, sizeof(buf));
	assert_string_equal(buf, text1);
	assert_int_equal(stat(fx->prom, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0644);
	assert_int_equal(tu_count_names(fx->dir, "*"), 1);
}

static void
test_write_replaces(void **state)
{
	struct fixture *fx = *state;
	struct chom_err e = { 0 };
	char buf[512];
	struct stat st;

	tu_write(fx->prom,
		 "old content, much longer than the new content will be, "
		 "old content, old content\n");
	assert_int_equal(chmod(fx->prom, 0600), 0);
	assert_int_equal(
	    chom_metrics_write(fx->dir, "chom_switch", "x 1\n", &e), 0);
	tu_read(fx->prom, buf, sizeof(buf));
	assert_string_equal(buf, "x 1\n");
	assert_int_equal(stat(fx->prom, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);
	/* No temporary file left beside it. */
	assert_int_equal(tu_count_names(fx->dir, "*"), 1);
}

static void
test_write_empty_text(void **state)
{
	struct fixture *fx = *state;
	struct chom_err e = { 0 };
	struct stat st;

	assert_int_equal(chom_metrics_write(fx->dir, "chom_switch", "", &e), 0);
	assert_int_equal(stat(fx->prom, &st), 0);
	assert_int_equal(st.st_size, 0);
}

static void
test_missing_dir(void **state)
{
	struct fixture *fx = *state;
	struct chom_err e = { 0 };
	char p[128];

	snprintf(p, sizeof(p), "%s/nope", fx->dir);
	assert_int_equal(chom_metrics_write(p, "chom_switch", text1, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_FAIL);
	assert_non_null(strstr(e.msg, "nope"));
}

static void
test_path_too_long(void **state)
{
	struct chom_err e = { 0 };
	char *big = malloc(PATH_MAX + 1);

	assert_non_null(big);
	memset(big, 'd', PATH_MAX);
	big[0] = '/';
	big[PATH_MAX] = '\0';
	assert_int_equal(chom_metrics_write(big, "chom_switch", text1, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_USAGE);
	assert_non_null(strstr(e.msg, "too long"));
	free(big);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_write_content_and_mode),
		T(test_write_replaces),
		T(test_write_empty_text),
		T(test_missing_dir),
		cmocka_unit_test(test_path_too_long),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
