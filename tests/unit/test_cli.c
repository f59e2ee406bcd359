/*
 * Unit tests for lib/cli.c: the option parsers and the name and verbosity
 * settings (the printing functions are left to the command-line tests).
 */
#include <limits.h>
#include <stdbool.h>
#include <string.h>

#include "cli.h"

#include "testutil.h"

static void
test_name_default_and_init(void **state)
{
	assert_string_equal(chom_cli_name(), "chom");
	chom_cli_init("chom-test");
	assert_string_equal(chom_cli_name(), "chom-test");
	chom_cli_init("chom-other");
	assert_string_equal(chom_cli_name(), "chom-other");
}

static void
test_verbosity(void **state)
{
	assert_int_equal(chom_cli_verbosity(), CHOM_NORMAL);
	chom_cli_set_verbosity(CHOM_QUIET);
	assert_int_equal(chom_cli_verbosity(), CHOM_QUIET);
	/* Quiet never shows progress, terminal or not. */
	assert_false(chom_cli_tty());
	chom_cli_set_verbosity(CHOM_VERBOSE);
	assert_int_equal(chom_cli_verbosity(), CHOM_VERBOSE);
	chom_cli_set_verbosity(CHOM_NORMAL);
	assert_int_equal(chom_cli_verbosity(), CHOM_NORMAL);
}

static void
test_parse_ll_valid(void **state)
{
	long long v = -7;

	assert_int_equal(chom_parse_ll("42", 0, 100, &v), 0);
	assert_true(v == 42);
	assert_int_equal(chom_parse_ll("0", 0, 100, &v), 0);
	assert_true(v == 0);
	assert_int_equal(chom_parse_ll("-5", -10, 10, &v), 0);
	assert_true(v == -5);
	assert_int_equal(chom_parse_ll("100", 0, 100, &v), 0);
	assert_true(v == 100);
	assert_int_equal(chom_parse_ll("9223372036854775807", 0, LLONG_MAX, &v),
			 0);
	assert_true(v == LLONG_MAX);
	assert_int_equal(
	    chom_parse_ll("-9223372036854775808", LLONG_MIN, 0, &v), 0);
	assert_true(v == LLONG_MIN);
}

static void
test_parse_ll_invalid(void **state)
{
	static const char *const bad[] = {
		"", "abc", "12x", "1.5", "5 ", "0x10", "--1", "1e3",
	};
	long long v = 123;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (chom_parse_ll(bad[i], LLONG_MIN, LLONG_MAX, &v) == 0)
			TU_FAILF("chom_parse_ll accepted \"%s\"", bad[i]);
	}
	assert_int_equal(chom_parse_ll(NULL, 0, 10, &v), -1);
	assert_true(v == 123); /* untouched on failure */
}

static void
test_parse_ll_range(void **state)
{
	long long v = 123;

	assert_int_equal(chom_parse_ll("101", 0, 100, &v), -1);
	assert_int_equal(chom_parse_ll("-1", 0, 100, &v), -1);
	assert_int_equal(chom_parse_ll("9223372036854775808", 0, LLONG_MAX, &v),
			 -1);
	assert_int_equal(
	    chom_parse_ll("-9223372036854775809", LLONG_MIN, 0, &v), -1);
	assert_int_equal(
	    chom_parse_ll("99999999999999999999999", LLONG_MIN, LLONG_MAX, &v),
	    -1);
	assert_true(v == 123);
}

static void
test_parse_size_valid(void **state)
{
	static const struct {
		const char *s;
		unsigned long long v;
	} ok[] = {
		{ "0", 0 },
		{ "1048576", 1048576 },
		{ "512K", 512ULL << 10 },
		{ "512k", 512ULL << 10 },
		{ "150M", 150ULL << 20 },
		{ "150m", 150ULL << 20 },
		{ "10G", 10ULL << 30 },
		{ "1T", 1ULL << 40 },
		{ "1t", 1ULL << 40 },
		{ "0K", 0 },
		{ "2KiB", 2048 },
		{ "3MB", 3ULL << 20 },
		{ "16777215T", 16777215ULL << 40 },
		{ "18446744073709551615", 18446744073709551615ULL },
	};
	unsigned long long v;
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		v = 1;
		if (chom_parse_size(ok[i].s, &v) != 0)
			TU_FAILF("chom_parse_size refused \"%s\"", ok[i].s);
		if (v != ok[i].v)
			TU_FAILF("chom_parse_size(\"%s\") = %llu, want %llu",
				 ok[i].s, v, ok[i].v);
	}
}

static void
test_parse_size_invalid(void **state)
{
	static const char *const bad[] = {
		"",
		"-1",
		"K",
		" 1",
		"1X",
		"1K2",
		"1.5G",
		"1KK",
		"1 K",
		"+1",
		"16777216T",
		"18446744073709551616",
		"17179869184G",
		"1Kx",
	};
	unsigned long long v = 99;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (chom_parse_size(bad[i], &v) == 0)
			TU_FAILF("chom_parse_size accepted \"%s\" as %llu",
				 bad[i], v);
	}
	assert_int_equal(chom_parse_size(NULL, &v), -1);
	assert_true(v == 99);
}

static void
test_parse_duration_valid(void **state)
{
	static const struct {
		const char *s;
		double v;
	} ok[] = {
		{ "0", 0 },     { "30", 30 },   { "30s", 30 },
		{ "5m", 300 },  { "2h", 7200 }, { "1.5s", 1.5 },
		{ "1.5", 1.5 }, { "0.5m", 30 }, { "250ms", 0.25 },
		{ "0s", 0 },
	};
	double v;
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		v = -1;
		if (chom_parse_duration(ok[i].s, &v) != 0)
			TU_FAILF("chom_parse_duration refused \"%s\"", ok[i].s);
		if (v < ok[i].v - 1e-9 || v > ok[i].v + 1e-9)
			TU_FAILF("chom_parse_duration(\"%s\") = %g, want %g",
				 ok[i].s, v, ok[i].v);
	}
}

static void
test_parse_duration_invalid(void **state)
{
	static const char *const bad[] = {
		"",     "-1", "+1",  "s",   "abc",   "5x",  "5 s",
		"5sec", "1d", "inf", "nan", "1e999", "5mm", "m5",
	};
	double v = 42;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (chom_parse_duration(bad[i], &v) == 0)
			TU_FAILF("chom_parse_duration accepted \"%s\" as %g",
				 bad[i], v);
	}
	assert_int_equal(chom_parse_duration(NULL, &v), -1);
	assert_true(v == 42);
}

static void
test_parsers_refuse_leading_space(void **state)
{
	long long ll = 7;
	unsigned long long ull = 7;
	double d = 7;
	int bad = 0;

	/* "Strict ... the whole string": chom_parse_size refuses a leading
	 * blank, and chom_parse_duration refuses a sign, so neither may slip
	 * in behind white space. */
	assert_int_equal(chom_parse_size(" 5", &ull), -1);
	if (chom_parse_ll(" 5", 0, 10, &ll) == 0) {
		print_message("# chom_parse_ll accepted \" 5\" as %lld\n", ll);
		bad++;
	}
	if (chom_parse_duration(" +5", &d) == 0) {
		print_message("# chom_parse_duration accepted \" +5\" as %g\n",
			      d);
		bad++;
	}
	if (chom_parse_duration("\t5", &d) == 0) {
		print_message("# chom_parse_duration accepted \"\\t5\" as %g\n",
			      d);
		bad++;
	}
	assert_int_equal(bad, 0);
}

static void
test_parse_bool(void **state)
{
	static const char *const yes[] = { "yes", "true", "1", "on",
					   "YES", "True", "ON" };
	static const char *const no[] = { "no", "false", "0",  "off",
					  "NO", "False", "Off" };
	static const char *const bad[] = { "",      "y",    "n",     "2",
					   "maybe", "yes ", "truee", "10" };
	bool v;
	size_t i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		v = false;
		if (chom_parse_bool(yes[i], &v) != 0 || !v)
			TU_FAILF("chom_parse_bool(\"%s\") is not true", yes[i]);
	}
	for (i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		v = true;
		if (chom_parse_bool(no[i], &v) != 0 || v)
			TU_FAILF("chom_parse_bool(\"%s\") is not false", no[i]);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = true;
		if (chom_parse_bool(bad[i], &v) == 0)
			TU_FAILF("chom_parse_bool accepted \"%s\"", bad[i]);
		assert_true(v);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_name_default_and_init),
		cmocka_unit_test(test_verbosity),
		cmocka_unit_test(test_parse_ll_valid),
		cmocka_unit_test(test_parse_ll_invalid),
		cmocka_unit_test(test_parse_ll_range),
		cmocka_unit_test(test_parse_size_valid),
		cmocka_unit_test(test_parse_size_invalid),
		cmocka_unit_test(test_parse_duration_valid),
		cmocka_unit_test(test_parse_duration_invalid),
		cmocka_unit_test(test_parsers_refuse_leading_space),
		cmocka_unit_test(test_parse_bool),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
