/* Unit tests for lib/metrics.c: node_exporter textfile collector files. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

static const char *const kt[] = { "kind", "target", NULL };

/* A set with the two metrics of the tests below declared. */
static struct chom_metrics *
declared(void)
{
	struct chom_metrics *m = chom_metrics_new();
	struct chom_err e = { 0 };

	assert_non_null(m);
	assert_int_equal(
	    chom_metrics_declare(m, "x_status", "gauge", "Status.", kt, &e), 0);
	assert_int_equal(chom_metrics_declare(m, "x_size_bytes", "gauge",
					      "Size\\of \"it\"\nnow.", kt, &e),
			 0);
	return m;
}

static void
test_declare_refuses(void **state)
{
	struct chom_metrics *m = declared();
	struct chom_err e = { 0 };
	const char *const twice[] = { "a", "a", NULL };
	const char *const reserved[] = { "__name__", NULL };
	const char *const bad[] = { "a-b", NULL };

	(void)state;
	assert_int_equal(
	    chom_metrics_declare(m, "x_status", "gauge", "h", kt, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_USAGE);
	assert_int_equal(chom_metrics_declare(m, "9x", "gauge", "h", NULL, &e),
			 -1);
	assert_int_equal(chom_metrics_declare(m, "x y", "gauge", "h", NULL, &e),
			 -1);
	assert_int_equal(
	    chom_metrics_declare(m, "y", "histogram", "h", NULL, &e), -1);
	assert_int_equal(chom_metrics_declare(m, "y", "gauge", "h", twice, &e),
			 -1);
	assert_int_equal(
	    chom_metrics_declare(m, "y", "gauge", "h", reserved, &e), -1);
	assert_int_equal(chom_metrics_declare(m, "y", "gauge", "h", bad, &e),
			 -1);
	assert_int_equal(chom_metrics_set(m, "nope", NULL, 1, &e), -1);
	assert_non_null(strstr(e.msg, "nope"));
	chom_metrics_free(m);
}

static void
test_format_sorted_escaped(void **state)
{
	struct chom_metrics *m = declared();
	struct chom_err e = { 0 };
	const char *const b[] = { "files", "s3://b/p" };
	const char *const a[] = { "db", "file:///x\"y\\z\nw" };
	const char *const c[] = { "db", "s3://b/p" };
	double v;
	char *text;

	(void)state;
	assert_int_equal(chom_metrics_set(m, "x_size_bytes", b, 12, &e), 0);
	assert_int_equal(chom_metrics_set(m, "x_size_bytes", a, 1e15, &e), 0);
	assert_int_equal(chom_metrics_set(m, "x_size_bytes", c, 0.25, &e), 0);
	assert_int_equal(chom_metrics_set(m, "x_size_bytes", c, 221.412, &e),
			 0);
	assert_true(chom_metrics_get(m, "x_size_bytes", c, &v));
	assert_true(v == 221.412);
	assert_false(chom_metrics_get(m, "x_status", c, &v));
	text = chom_metrics_format(m, &e);
	assert_non_null(text);
	/* No HELP or TYPE for a metric without series; one series of c. */
	assert_string_equal(
	    text,
	    "# HELP x_size_bytes Size\\\\of \"it\"\\nnow.\n"
	    "# TYPE x_size_bytes gauge\n"
	    "x_size_bytes{kind=\"db\",target=\"file:///x\\\"y\\\\z\\nw\"} "
	    "1000000000000000\n"
	    "x_size_bytes{kind=\"db\",target=\"s3://b/p\"} 221.412\n"
	    "x_size_bytes{kind=\"files\",target=\"s3://b/p\"} 12\n");
	free(text);
	chom_metrics_free(m);
}

static void
test_load_merges(void **state)
{
	struct fixture *fx = *state;
	struct chom_metrics *m = declared();
	struct chom_err e = { 0 };
	const char *const db[] = { "db", "file:///a\"b" };
	const char *const files[] = { "files", "file:///a\"b" };
	size_t dropped = 99;
	double v;
	char *text;

	tu_write(fx->prom,
		 "# HELP x_status Status.\n"
		 "# TYPE x_status gauge\n"
		 "x_status{kind=\"db\",target=\"file:///a\\\"b\"} 0\n"
		 "x_status{target=\"file:///a\\\"b\",kind=\"files\"} 3 "
		 "1700000000000\n"
		 "x_status{target=\"old-format\"} 0\n"
		 "x_status{kind=\"db\",target=\"t\",extra=\"1\"} 0\n"
		 "x_status{kind=\"db\",target=\"unterminated} 0\n"
		 "x_status{kind=\"db\",target=\"t\"} notanumber\n"
		 "x_status{kind=\"db\",target=\"t\"}0\n"
		 "other_metric 5\n"
		 "   \n"
		 "x_size_bytes { kind = \"db\" , target = \"t\" , } +Inf\n");
	/* Left out: the series without a kind, with another label, with an
	 * unterminated value, with no number, with no space before its
	 * value, and the other metric. */
	assert_int_equal(
	    chom_metrics_load(m, fx->dir, "chom_switch", &dropped, &e), 0);
	assert_int_equal(dropped, 6);
	assert_true(chom_metrics_get(m, "x_status", db, &v));
	assert_true(v == 0);
	assert_true(chom_metrics_get(m, "x_status", files, &v));
	assert_true(v == 3);
	assert_int_equal(chom_metrics_set(m, "x_status", db, 1, &e), 0);
	assert_int_equal(chom_metrics_save(m, fx->dir, "chom_switch", &e), 0);
	chom_metrics_free(m);

	/* Read back: what was kept and what was set, nothing else. */
	m = declared();
	assert_int_equal(
	    chom_metrics_load(m, fx->dir, "chom_switch", &dropped, &e), 0);
	assert_int_equal(dropped, 0);
	text = chom_metrics_format(m, &e);
	assert_non_null(text);
	assert_string_equal(
	    text, "# HELP x_status Status.\n"
		  "# TYPE x_status gauge\n"
		  "x_status{kind=\"db\",target=\"file:///a\\\"b\"} 1\n"
		  "x_status{kind=\"files\",target=\"file:///a\\\"b\"} 3\n"
		  "# HELP x_size_bytes Size\\\\of \"it\"\\nnow.\n"
		  "# TYPE x_size_bytes gauge\n"
		  "x_size_bytes{kind=\"db\",target=\"t\"} +Inf\n");
	free(text);
	chom_metrics_free(m);
}

static void
test_load_missing_file(void **state)
{
	struct fixture *fx = *state;
	struct chom_metrics *m = declared();
	struct chom_err e = { 0 };
	size_t dropped = 99;
	char *text;

	assert_int_equal(
	    chom_metrics_load(m, fx->dir, "chom_switch", &dropped, &e), 0);
	assert_int_equal(dropped, 0);
	text = chom_metrics_format(m, &e);
	assert_string_equal(text, "");
	free(text);
	chom_metrics_free(m);
}

/* Thousands of series with long label values: the text grows as needed. */
static void
test_many_long_series(void **state)
{
	struct fixture *fx = *state;
	struct chom_metrics *m = declared();
	struct chom_err e = { 0 };
	char target[600], *text;
	const char *const lv[] = { "db", target };
	size_t i, dropped = 99;
	double v;

	for (i = 0; i < 2000; i++) {
		snprintf(target, sizeof(target), "file:///%0500zu", i);
		assert_int_equal(
		    chom_metrics_set(m, "x_status", lv, (double)i, &e), 0);
	}
	assert_int_equal(chom_metrics_save(m, fx->dir, "chom_switch", &e), 0);
	chom_metrics_free(m);
	m = declared();
	assert_int_equal(
	    chom_metrics_load(m, fx->dir, "chom_switch", &dropped, &e), 0);
	assert_int_equal(dropped, 0);
	for (i = 0; i < 2000; i += 199) {
		snprintf(target, sizeof(target), "file:///%0500zu", i);
		assert_true(chom_metrics_get(m, "x_status", lv, &v));
		assert_true(v == (double)i);
	}
	text = chom_metrics_format(m, &e);
	assert_non_null(text);
	assert_true(strlen(text) > 2000 * 500);
	free(text);
	chom_metrics_free(m);
}

static void
test_lock(void **state)
{
	struct fixture *fx = *state;
	struct chom_err e = { 0 };
	char p[128];
	int fd, fd2;

	fd = chom_metrics_lock(fx->dir, 0, &e);
	assert_true(fd >= 0);
	/* Another open file description: another run. */
	assert_int_equal(chom_metrics_lock(fx->dir, 0.2, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_BUSY);
	assert_non_null(strstr(e.msg, fx->dir));
	close(fd);
	fd2 = chom_metrics_lock(fx->dir, 0, &e);
	assert_true(fd2 >= 0);
	close(fd2);
	/* Nothing made in the directory. */
	assert_int_equal(tu_count_names(fx->dir, "*"), 0);
	snprintf(p, sizeof(p), "%s/nope", fx->dir);
	assert_int_equal(chom_metrics_lock(p, 0, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_FAIL);
	assert_non_null(strstr(e.msg, "nope"));
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
		cmocka_unit_test(test_declare_refuses),
		cmocka_unit_test(test_format_sorted_escaped),
		T(test_load_merges),
		T(test_load_missing_file),
		T(test_many_long_series),
		T(test_lock),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
