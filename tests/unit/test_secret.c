/* lib/secret.c: secrets only from files that their owner alone reads. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "exitcode.h"
#include "secret.h"
#include "testutil.h"

struct fx {
	char dir[PATH_MAX];
	char path[PATH_MAX + 16];
};

static int
setup(void **state)
{
	struct fx *fx = TU_FIXTURE_NEW(struct fx, dir, "secret");

	if (!fx)
		return -1;
	snprintf(fx->path, sizeof(fx->path), "%s/pw", fx->dir);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;

	return tu_fixture_free(fx, fx->dir);
}

static void
test_reads_and_strips_newline(void **state)
{
	struct fx *fx = *state;
	struct chom_err e = { 0 };
	char *s = NULL;

	tu_write(fx->path, "s3cret pass\r\n\n");
	chmod(fx->path, 0600);
	assert_int_equal(chom_secret_read(fx->path, &s, &e), 0);
	assert_string_equal(s, "s3cret pass");
	chom_secret_free(s);
}

static void
test_group_readable_refused(void **state)
{
	struct fx *fx = *state;
	struct chom_err e = { 0 };
	char *s = NULL;

	tu_write(fx->path, "x\n");
	chmod(fx->path, 0640);
	assert_int_equal(chom_secret_read(fx->path, &s, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_USAGE);
	assert_non_null(strstr(e.msg, "640"));
	assert_null(s);
	chmod(fx->path, 0604);
	assert_int_equal(chom_secret_read(fx->path, &s, &e), -1);
}

static void
test_empty_missing_and_directory_refused(void **state)
{
	struct fx *fx = *state;
	struct chom_err e = { 0 };
	char *s = NULL;

	tu_write(fx->path, "\n");
	chmod(fx->path, 0600);
	assert_int_equal(chom_secret_read(fx->path, &s, &e), -1);
	assert_non_null(strstr(e.msg, "empty"));
	assert_int_equal(chom_secret_read("/nonexistent/pw", &s, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_USAGE);
	chmod(fx->dir, 0700);
	assert_int_equal(chom_secret_read(fx->dir, &s, &e), -1);
	assert_non_null(strstr(e.msg, "regular"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_reads_and_strips_newline,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_group_readable_refused,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_empty_missing_and_directory_refused, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
