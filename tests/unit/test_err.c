/*
 * Unit tests for lib/err.c: chom_err_set, chom_err_sys, chom_err_clear and
 * chom_escape.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "exitcode.h"

#include "testutil.h"

static void
test_set_formats_and_returns_minus_one(void **state)
{
	struct chom_err e;

	assert_int_equal(
	    chom_err_set(&e, CHOM_EXIT_USAGE, "bad %s: %d", "x", 42), -1);
	assert_int_equal(e.code, CHOM_EXIT_USAGE);
	assert_string_equal(e.msg, "bad x: 42");
}

static void
test_set_truncates_long_message(void **state)
{
	struct chom_err e;
	char big[3000];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memset(e.msg, 'Z', sizeof(e.msg));
	assert_int_equal(chom_err_set(&e, CHOM_EXIT_FAIL, "%s", big), -1);
	assert_int_equal(e.code, CHOM_EXIT_FAIL);
	assert_int_equal(strlen(e.msg), sizeof(e.msg) - 1);
	assert_int_equal(e.msg[0], 'x');
}

static void
test_sys_appends_strerror(void **state)
{
	struct chom_err e;
	char want[256];

	snprintf(want, sizeof(want), "open /nowhere: %s", strerror(ENOENT));
	errno = ENOENT;
	assert_int_equal(
	    chom_err_sys(&e, CHOM_EXIT_FAIL, "open %s", "/nowhere"), -1);
	assert_int_equal(e.code, CHOM_EXIT_FAIL);
	assert_string_equal(e.msg, want);
	/* errno is the caller's still. */
	assert_int_equal(errno, ENOENT);
}

static void
test_sys_uses_errno_at_the_call(void **state)
{
	struct chom_err e;
	char want[256];

	snprintf(want, sizeof(want), "x: %s", strerror(EACCES));
	errno = EACCES;
	chom_err_sys(&e, CHOM_EXIT_USAGE, "x");
	assert_string_equal(e.msg, want);
	assert_int_equal(e.code, CHOM_EXIT_USAGE);
}

static void
test_sys_long_message_stays_terminated(void **state)
{
	struct chom_err e;
	char big[2000];

	memset(big, 'y', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	errno = EIO;
	assert_int_equal(chom_err_sys(&e, CHOM_EXIT_FAIL, "%s", big), -1);
	assert_int_equal(strlen(e.msg), sizeof(e.msg) - 1);
	assert_int_equal(errno, EIO);
}

static void
test_clear(void **state)
{
	struct chom_err e;

	chom_err_set(&e, CHOM_EXIT_BUSY, "held");
	chom_err_clear(&e);
	assert_int_equal(e.code, 0);
	assert_string_equal(e.msg, "");
}

static void
test_escape(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "plain name.txt", "plain name.txt" },
		{ "", "" },
		{ "a\nb", "a\\x0ab" },
		{ "tab\there", "tab\\x09here" },
		{ "\x1b[31m", "\\x1b[31m" },
		{ "del\x7f", "del\\x7f" },
		{ "caf\xc3\xa9", "caf\\xc3\\xa9" },
		{ "\xff", "\\xff" },
		{ "back\\slash 'q' \"dq\"", "back\\slash 'q' \"dq\"" },
	};
	char out[128];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		chom_escape(cases[i].in, out, sizeof(out));
		assert_string_equal(out, cases[i].out);
	}
}

static void
test_escape_fits(void **state)
{
	char out[16];

	/* Room to spare: nothing is cut. */
	chom_escape("0123456789a", out, sizeof(out));
	assert_string_equal(out, "0123456789a");
}

static void
test_escape_cut_shows_ellipsis(void **state)
{
	static const char *const long_names[] = {
		"abcdefghijklmnopqrstuvwxyz",
		"\n\n\n\n\n\n\n\n",
		"abcdefghij\n\n\n\n",
	};
	char out[16];
	size_t i, n;
	int bad = 0;

	/* "and \"...\" when cut to fit size" */
	for (i = 0; i < sizeof(long_names) / sizeof(long_names[0]); i++) {
		memset(out, 'Z', sizeof(out));
		chom_escape(long_names[i], out, sizeof(out));
		n = strnlen(out, sizeof(out));
		assert_true(n < sizeof(out));
		if (n < 3 || strcmp(out + n - 3, "...")) {
			print_message("# input #%zu cut to \"%s\" without "
				      "\"...\"\n",
				      i, out);
			bad++;
		}
	}
	assert_int_equal(bad, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_set_formats_and_returns_minus_one),
		cmocka_unit_test(test_set_truncates_long_message),
		cmocka_unit_test(test_sys_appends_strerror),
		cmocka_unit_test(test_sys_uses_errno_at_the_call),
		cmocka_unit_test(test_sys_long_message_stays_terminated),
		cmocka_unit_test(test_clear),
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_escape_fits),
		cmocka_unit_test(test_escape_cut_shows_ellipsis),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
