/*
 * Unit tests for lib/config.c: which file is read, which sections reach the
 * callback, and how errors name the file and line.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "exitcode.h"

#include "testutil.h"

struct fixture {
	char dir[64];
	char file[128];
};

/* What the callback saw; the known keys are base, keep and wait. */
struct seen {
	char base[256];
	int keep;
	char wait[32];
	int calls;
	char log[1024]; /* "section.key=value;" for each call */
};

static int
cb(void *ctx, const char *section, const char *key, const char *value,
   struct chom_err *e)
{
	struct seen *s = ctx;
	size_t n = strlen(s->log);

	s->calls++;
	snprintf(s->log + n, sizeof(s->log) - n, "%s.%s=%s;", section, key,
		 value);
	if (!strcmp(key, "base")) {
		snprintf(s->base, sizeof(s->base), "%s", value);
	} else if (!strcmp(key, "keep")) {
		char *end;
		long v = strtol(value, &end, 10);

		if (!*value || *end || v < 0)
			return chom_err_set(e, CHOM_EXIT_USAGE,
					    "keep: '%s' is not a count", value);
		s->keep = (int)v;
	} else if (!strcmp(key, "wait")) {
		snprintf(s->wait, sizeof(s->wait), "%s", value);
	} else {
		return chom_err_set(e, CHOM_EXIT_USAGE, "unknown key '%s'",
				    key);
	}
	return 0;
}

static int
setup(void **state)
{
	struct fixture *fx = TU_FIXTURE_NEW(struct fixture, dir, "config");

	if (!fx)
		return -1;
	snprintf(fx->file, sizeof(fx->file), "%s/chom.conf", fx->dir);
	unsetenv("CHOM_CONFIG");
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;

	tu_fixture_free(fx, fx->dir);
	unsetenv("CHOM_CONFIG");
	return 0;
}

static void
test_path_choice(void **state)
{
	assert_string_equal(chom_config_path("/x/given.conf"), "/x/given.conf");
	assert_string_equal(chom_config_path(NULL), CHOM_CONFIG_DEFAULT);
	setenv("CHOM_CONFIG", "/x/env.conf", 1);
	assert_string_equal(chom_config_path(NULL), "/x/env.conf");
	/* -c wins over the environment. */
	assert_string_equal(chom_config_path("/x/given.conf"), "/x/given.conf");
	/* An empty CHOM_CONFIG is the same as none. */
	setenv("CHOM_CONFIG", "", 1);
	assert_string_equal(chom_config_path(NULL), CHOM_CONFIG_DEFAULT);
}

static void
test_sections_and_order(void **state)
{
	struct fixture *fx = *state;
	struct seen s = { .keep = -1 };
	struct chom_err e = { 0 };

	tu_write(fx->file, "; a comment\n"
			   "# another\n"
			   "[global]\n"
			   "base = /srv/app\n"
			   "\n"
			   "[switch]\n"
			   "unknown_to_stage = 1\n"
			   "keep = 99\n"
			   "[stage]\n"
			   "keep = 3\n"
			   "wait = 10s\n");
	assert_int_equal(chom_config_load(fx->file, "stage", cb, &s, &e), 0);
	/* [switch] belongs to another tool: never seen, never checked. */
	assert_string_equal(
	    s.log, "global.base=/srv/app;stage.keep=3;stage.wait=10s;");
	assert_int_equal(s.calls, 3);
	assert_string_equal(s.base, "/srv/app");
	assert_int_equal(s.keep, 3);
	assert_string_equal(s.wait, "10s");
}

static void
test_precedence_left_to_the_caller(void **state)
{
	struct fixture *fx = *state;
	struct seen s = { .keep = 5 };
	struct chom_err e = { 0 };

	/* The caller's defaults survive keys the file does not set, and what
	 * the caller applies after loading (environment, options) wins. */
	strcpy(s.wait, "default");
	tu_write(fx->file, "[global]\nbase = /from/file\n");
	assert_int_equal(chom_config_load(fx->file, "stage", cb, &s, &e), 0);
	assert_int_equal(s.keep, 5);
	assert_string_equal(s.wait, "default");
	assert_string_equal(s.base, "/from/file");
	assert_int_equal(cb(&s, "env", "base", "/from/env", &e), 0);
	assert_string_equal(s.base, "/from/env");
}

static void
test_unknown_key_names_file_and_line(void **state)
{
	struct fixture *fx = *state;
	struct seen s = { 0 };
	struct chom_err e = { 0 };
	char want[256];

	tu_write(fx->file, "[global]\n"
			   "base = /srv/app\n"
			   "\n"
			   "[stage]\n"
			   "colour = blue\n"
			   "keep = 3\n");
	assert_int_equal(chom_config_load(fx->file, "stage", cb, &s, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_USAGE);
	snprintf(want, sizeof(want), "%s:5: unknown key 'colour'", fx->file);
	assert_string_equal(e.msg, want);
	/* Nothing after the bad key is applied. */
	assert_int_equal(s.keep, 0);
}

static void
test_unknown_key_in_global(void **state)
{
	struct fixture *fx = *state;
	struct seen s = { 0 };
	struct chom_err e = { 0 };
	char want[256];

	/* [global] is the loader's: a typo there is refused for every tool,
	 * before the tool's callback sees it. */
	tu_write(fx->file, "[global]\nbsae = /typo\n");
	assert_int_equal(chom_config_load(fx->file, "switch", cb, &s, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_USAGE);
	snprintf(want, sizeof(want), "%s:2: unknown key 'bsae' in [global]",
		 fx->file);
	assert_string_equal(e.msg, want);
	assert_int_equal(s.calls, 0);
}

static void
test_bad_value_names_file_and_line(void **state)
{
	struct fixture *fx = *state;
	struct seen s = { 0 };
	struct chom_err e = { 0 };
	char want[256];

	tu_write(fx->file, "[stage]\nkeep = many\n");
	assert_int_equal(chom_config_load(fx->file, "stage", cb, &s, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_USAGE);
	snprintf(want, sizeof(want), "%s:2: keep: 'many' is not a count",
		 fx->file);
	assert_string_equal(e.msg, want);
}

static void
test_syntax_error(void **state)
{
	struct fixture *fx = *state;
	struct seen s = { 0 };
	struct chom_err e = { 0 };
	char want[256];

	tu_write(fx->file, "[global]\nbase = /srv\nthis line has no equals\n");
	assert_int_equal(chom_config_load(fx->file, "stage", cb, &s, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_USAGE);
	snprintf(want, sizeof(want), "%s:3: syntax error", fx->file);
	assert_string_equal(e.msg, want);
}

static void
test_syntax_error_then_unknown_key(void **state)
{
	struct fixture *fx = *state;
	struct seen s = { 0 };
	struct chom_err e = { 0 };

	/* Two errors: whichever the message reports, its line and its reason
	 * must belong together. */
	tu_write(fx->file, "[stage]\n"
			   "no equals sign here\n"
			   "keep = 1\n"
			   "colour = blue\n");
	assert_int_equal(chom_config_load(fx->file, "stage", cb, &s, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_USAGE);
	if (!strstr(e.msg, ":2: syntax error") &&
	    !strstr(e.msg, ":4: unknown key 'colour'"))
		TU_FAILF("line and reason do not match: \"%s\"", e.msg);
}

static void
test_missing_named_file_is_an_error(void **state)
{
	struct fixture *fx = *state;
	struct seen s = { 0 };
	struct chom_err e = { 0 };

	assert_int_equal(chom_config_load(fx->file, "stage", cb, &s, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_USAGE);
	assert_non_null(strstr(e.msg, fx->file));
	assert_int_equal(s.calls, 0);
}

static void
test_missing_env_file_is_an_error(void **state)
{
	struct fixture *fx = *state;
	struct seen s = { 0 };
	struct chom_err e = { 0 };

	setenv("CHOM_CONFIG", fx->file, 1);
	assert_int_equal(chom_config_load(NULL, "stage", cb, &s, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_USAGE);
	assert_non_null(strstr(e.msg, fx->file));
}

static void
test_env_file_is_read(void **state)
{
	struct fixture *fx = *state;
	struct seen s = { 0 };
	struct chom_err e = { 0 };
	char other[256];

	tu_write(fx->file, "[global]\nbase = /from/env\n");
	setenv("CHOM_CONFIG", fx->file, 1);
	assert_int_equal(chom_config_load(NULL, "stage", cb, &s, &e), 0);
	assert_string_equal(s.base, "/from/env");
	/* -c wins over CHOM_CONFIG. */
	snprintf(other, sizeof(other), "%s/other.conf", fx->dir);
	tu_write(other, "[global]\nbase = /from/option\n");
	assert_int_equal(chom_config_load(other, "stage", cb, &s, &e), 0);
	assert_string_equal(s.base, "/from/option");
}

static void
test_missing_default_is_fine(void **state)
{
	struct seen s = { 0 };
	struct chom_err e = { 0 };

	unsetenv("CHOM_CONFIG");
	if (access(CHOM_CONFIG_DEFAULT, F_OK) == 0 || errno != ENOENT) {
		print_message("# %s exists here; not checking its absence\n",
			      CHOM_CONFIG_DEFAULT);
		return;
	}
	assert_int_equal(chom_config_load(NULL, "stage", cb, &s, &e), 0);
	assert_int_equal(s.calls, 0);
}

static void
test_missing_default_named_by_c_is_an_error(void **state)
{
	struct seen s = { 0 };
	struct chom_err e = { 0 };

	/* "-c FILE: FILE must exist", even when FILE is the default's name. */
	if (access(CHOM_CONFIG_DEFAULT, F_OK) == 0 || errno != ENOENT) {
		print_message("# %s exists here; not checking its absence\n",
			      CHOM_CONFIG_DEFAULT);
		return;
	}
	if (chom_config_load(CHOM_CONFIG_DEFAULT, "stage", cb, &s, &e) != -1)
		TU_FAILF("-c %s accepted although the file does not exist",
			 CHOM_CONFIG_DEFAULT);
	assert_int_equal(e.code, CHOM_EXIT_USAGE);
}

static void
test_unreadable_path_is_an_error(void **state)
{
	struct fixture *fx = *state;
	struct seen s = { 0 };
	struct chom_err e = { 0 };

	/* A directory is not a configuration file: reading it fails, and a
	 * read error must not pass for an empty file. */
	if (chom_config_load(fx->dir, "stage", cb, &s, &e) != -1)
		TU_FAILF("-c %s (a directory) loaded as an empty file",
			 fx->dir);
	assert_int_equal(e.code, CHOM_EXIT_USAGE);
	assert_non_null(strstr(e.msg, fx->dir));
}

static void
test_empty_file(void **state)
{
	struct fixture *fx = *state;
	struct seen s = { 0 };
	struct chom_err e = { 0 };

	tu_write(fx->file, "");
	assert_int_equal(chom_config_load(fx->file, "stage", cb, &s, &e), 0);
	assert_int_equal(s.calls, 0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_path_choice),
		T(test_sections_and_order),
		T(test_precedence_left_to_the_caller),
		T(test_unknown_key_names_file_and_line),
		T(test_unknown_key_in_global),
		T(test_bad_value_names_file_and_line),
		T(test_syntax_error),
		T(test_syntax_error_then_unknown_key),
		T(test_missing_named_file_is_an_error),
		T(test_missing_env_file_is_an_error),
		T(test_env_file_is_read),
		T(test_missing_default_is_fine),
		T(test_missing_default_named_by_c_is_an_error),
		T(test_unreadable_path_is_an_error),
		T(test_empty_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
