/* Unit tests for lib/metrics.c: node_exporter textfile collector files. */
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "exitcode.h"
#include "metrics.h"

struct fixture {
	char dir[64];
	char prom[128];
};

static int
setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	if (!fx)
		return -1;
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/chom-test-metrics-XXXXXX");
	if (!mkdtemp(fx->dir)) {
		free(fx);
		return -1;
	}
	snprintf(fx->prom, sizeof(fx->prom), "%s/chom_switch.prom", fx->dir);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;
	struct dirent *d;
	char p[512];
	DIR *dir = opendir(fx->dir);

	while (dir && (d = readdir(dir))) {
		if (d->d_name[0] == '.' &&
		    (!d->d_name[1] || (d->d_name[1] == '.' && !d->d_name[2])))
			continue;
		snprintf(p, sizeof(p), "%s/%s", fx->dir, d->d_name);
		unlink(p);
	}
	if (dir)
		closedir(dir);
	rmdir(fx->dir);
	free(fx);
	return 0;
}

static void
slurp(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "r");
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, size - 1, f);
	buf[n] = '\0';
	fclose(f);
}

/* Files in dir other than "." and "..". */
static int
count_files(const char *path)
{
	DIR *dir = opendir(path);
	struct dirent *d;
	int n = 0;

	assert_non_null(dir);
	while ((d = readdir(dir)))
		if (strcmp(d->d_name, ".") && strcmp(d->d_name, ".."))
			n++;
	closedir(dir);
	return n;
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
	slurp(fx->prom, buf, sizeof(buf));
	assert_string_equal(buf, text1);
	assert_int_equal(stat(fx->prom, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0644);
	assert_int_equal(count_files(fx->dir), 1);
}

static void
test_write_replaces(void **state)
{
	struct fixture *fx = *state;
	struct chom_err e = { 0 };
	char buf[512];
	struct stat st;
	FILE *f = fopen(fx->prom, "w");

	assert_non_null(f);
	fputs("old content, much longer than the new content will be, "
	      "old content, old content\n",
	      f);
	fclose(f);
	assert_int_equal(chmod(fx->prom, 0600), 0);
	assert_int_equal(
	    chom_metrics_write(fx->dir, "chom_switch", "x 1\n", &e), 0);
	slurp(fx->prom, buf, sizeof(buf));
	assert_string_equal(buf, "x 1\n");
	assert_int_equal(stat(fx->prom, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);
	/* No temporary file left beside it. */
	assert_int_equal(count_files(fx->dir), 1);
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
