/*
 * Unit tests for lib/release.c: release IDs, the layout's paths, the
 * current and next links, and the list of releases.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "exitcode.h"
#include "release.h"

#include "testutil.h"

struct fixture {
	char base[64];
	struct chom_layout l;
};

static int
setup(void **state)
{
	struct fixture *fx = TU_FIXTURE_NEW(struct fixture, base, "release");

	if (!fx)
		return -1;
	*state = fx;
	return tu_layout(&fx->l, fx->base);
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;

	return tu_fixture_free(fx, fx->base);
}

static void
test_id_valid(void **state)
{
	static const char *const ok[] = {
		"v1",
		"app-v1.1",
		"a_b",
		"20261127T070000Z",
		"A",
		"1",
		"a..b",
		"x.",
		"-x",
		"01234567890123456789012345678901234567890123456789012345678901"
		"23",
	};
	static const char *const bad[] = {
		"",
		".",
		"..",
		".hidden",
		"a/b",
		"a b",
		"a\nb",
		"caf\xc3\xa9",
		"a:b",
		"~a",
		"a*",
		"01234567890123456789012345678901234567890123456789012345678901"
		"234",
	};
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (!chom_release_id_valid(ok[i]))
			TU_FAILF("\"%s\" should be a valid ID", ok[i]);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (chom_release_id_valid(bad[i]))
			TU_FAILF("\"%s\" should not be a valid ID", bad[i]);
}

static void
test_id_from_name(void **state)
{
	static const struct {
		const char *artifact, *id;
	} ok[] = {
		{ "app-v1.1.tar.gz", "app-v1.1" },
		{ "/srv/incoming/app-v1.1.tar.gz", "app-v1.1" },
		{ "./dist/app-v2.tgz", "app-v2" },
		{ "x.tar.zst", "x" },
		{ "x.tzst", "x" },
		{ "x.tar.xz", "x" },
		{ "x.txz", "x" },
		{ "x.tar.bz2", "x" },
		{ "x.tbz2", "x" },
		{ "x.tar", "x" },
		{ "x.zip", "x" },
		{ "noext", "noext" },
		{ "app.gz", "app.gz" }, /* not an archive extension */
		{ "app.tar.gz.tar", "app.tar.gz" }, /* one extension only */
		{ "release-2026.11.27", "release-2026.11.27" },
	};
	static const char *const bad[] = {
		".tar.gz",
		"dir/.tar.gz",
		"my app.tar.gz",
		".hidden.tgz",
		"dir/",
		"",
		"01234567890123456789012345678901234567890123456789012345678901"
		"234"
		".tar.gz",
	};
	char id[CHOM_ID_MAX + 1];
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		id[0] = '\0';
		if (chom_release_id_from_name(ok[i].artifact, id, sizeof(id)) !=
		    0)
			TU_FAILF("no ID from \"%s\"", ok[i].artifact);
		assert_string_equal(id, ok[i].id);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (chom_release_id_from_name(bad[i], id, sizeof(id)) == 0)
			TU_FAILF("ID \"%s\" from \"%s\"", id, bad[i]);
	/* A buffer too small is an error, not a truncated ID. */
	assert_int_equal(chom_release_id_from_name("abcdef.tgz", id, 4), -1);
	assert_int_equal(chom_release_id_from_name("abc.tgz", id, 4), 0);
	assert_string_equal(id, "abc");
}

static void
test_id_time(void **state)
{
	char buf[17];

	chom_release_id_time(0, buf, sizeof(buf));
	assert_string_equal(buf, "19700101T000000Z");
	/* 2026-11-27 07:00:00 UTC, whatever the local time zone. */
	setenv("TZ", "America/New_York", 1);
	tzset();
	chom_release_id_time(1795762800, buf, sizeof(buf));
	unsetenv("TZ");
	tzset();
	assert_string_equal(buf, "20261127T070000Z");
	assert_true(chom_release_id_valid(buf));
}

static void
test_layout_init_absolute(void **state)
{
	struct chom_layout l;
	struct chom_err e = { 0 };

	assert_int_equal(chom_layout_init(&l, "/var/www/app//", &e), 0);
	assert_string_equal(l.base, "/var/www/app");
	assert_string_equal(l.releases, "/var/www/app/releases");
	assert_string_equal(l.shared, "/var/www/app/shared");
	assert_string_equal(l.current, "/var/www/app/current");
	assert_string_equal(l.next, "/var/www/app/next");
	assert_string_equal(l.dotchom, "/var/www/app/.chom");
	assert_string_equal(l.lock, "/var/www/app/.chom/lock");
	assert_string_equal(l.history, "/var/www/app/.chom/history");
	/* Made absolute, not resolved. */
	assert_int_equal(chom_layout_init(&l, "/srv/./x/../y", &e), 0);
	assert_string_equal(l.base, "/srv/./x/../y");
	assert_string_equal(l.current, "/srv/./x/../y/current");
}

static void
test_layout_init_relative(void **state)
{
	struct chom_layout l;
	struct chom_err e = { 0 };
	char cwd[PATH_MAX], want[PATH_MAX + 32];

	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chom_layout_init(&l, "deploy/app/", &e), 0);
	snprintf(want, sizeof(want), "%s/deploy/app", cwd);
	assert_string_equal(l.base, want);
	snprintf(want, sizeof(want), "%s/deploy/app/releases", cwd);
	assert_string_equal(l.releases, want);
}

static void
test_layout_init_errors(void **state)
{
	struct chom_layout l;
	struct chom_err e = { 0 };
	char *big = malloc(PATH_MAX + 10);

	assert_int_equal(chom_layout_init(&l, "", &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_USAGE);
	chom_err_clear(&e);
	assert_int_equal(chom_layout_init(&l, NULL, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_USAGE);
	assert_non_null(big);
	memset(big, 'b', PATH_MAX + 9);
	big[0] = '/';
	big[PATH_MAX + 9] = '\0';
	chom_err_clear(&e);
	assert_int_equal(chom_layout_init(&l, big, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_USAGE);
	assert_non_null(strstr(e.msg, "too long"));
	/* Fits itself, but not with "/.chom/history" after it. */
	big[PATH_MAX - 5] = '\0';
	chom_err_clear(&e);
	assert_int_equal(chom_layout_init(&l, big, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_USAGE);
	free(big);
}

static void
test_layout_prepare_and_release(void **state)
{
	struct fixture *fx = *state;
	struct chom_err e = { 0 };
	char buf[PATH_MAX], want[PATH_MAX];
	struct stat st;

	assert_int_equal(stat(fx->l.releases, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(stat(fx->l.shared, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(stat(fx->l.dotchom, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	/* Again: nothing to do. */
	assert_int_equal(chom_layout_prepare(&fx->l, &e), 0);
	assert_int_equal(
	    chom_layout_release(&fx->l, "v1", buf, sizeof(buf), &e), 0);
	snprintf(want, sizeof(want), "%s/releases/v1", fx->base);
	assert_string_equal(buf, want);
	assert_int_equal(chom_layout_release(&fx->l, "v1", buf, 8, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_USAGE);
}

static void
test_link_id(void **state)
{
	struct fixture *fx = *state;
	struct chom_err e = { 0 };
	char id[CHOM_ID_MAX + 1], abs[PATH_MAX];

	/* Missing. */
	assert_int_equal(
	    chom_release_link_id(fx->l.current, id, sizeof(id), &e), 1);
	/* What chom writes. */
	assert_int_equal(symlink("releases/app-v1.1", fx->l.current), 0);
	assert_int_equal(
	    chom_release_link_id(fx->l.current, id, sizeof(id), &e), 0);
	assert_string_equal(id, "app-v1.1");
	/* An absolute link made by hand into this base. */
	snprintf(abs, sizeof(abs), "%s/releases/v2", fx->base);
	assert_int_equal(symlink(abs, fx->l.next), 0);
	assert_int_equal(chom_release_link_id(fx->l.next, id, sizeof(id), &e),
			 0);
	assert_string_equal(id, "v2");
	/* A dangling link is still a link to a release ID. */
	assert_int_equal(unlink(fx->l.current), 0);
	assert_int_equal(symlink("releases/gone", fx->l.current), 0);
	assert_int_equal(
	    chom_release_link_id(fx->l.current, id, sizeof(id), &e), 0);
	assert_string_equal(id, "gone");
}

static void
test_link_id_real_directory(void **state)
{
	struct fixture *fx = *state;
	struct chom_err e = { 0 };
	char id[CHOM_ID_MAX + 1];

	assert_int_equal(mkdir(fx->l.current, 0755), 0);
	assert_int_equal(
	    chom_release_link_id(fx->l.current, id, sizeof(id), &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_USAGE);
	assert_non_null(strstr(e.msg, "not a symlink"));
	assert_non_null(strstr(e.msg, "directory"));
	assert_int_equal(rmdir(fx->l.current), 0);
	tu_write(fx->l.current, "");
	chom_err_clear(&e);
	assert_int_equal(
	    chom_release_link_id(fx->l.current, id, sizeof(id), &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_USAGE);
	assert_non_null(strstr(e.msg, "file"));
}

static void
test_link_id_foreign(void **state)
{
	static const char *const targets[] = {
		"elsewhere/v1",     "/var/www/html",   "releases/",
		"releases/.hidden", "releases/v1/",    "myreleases/v1",
		"releases/a/b",     "shared/releases", "releases/a b",
	};
	struct fixture *fx = *state;
	struct chom_err e = { 0 };
	char id[CHOM_ID_MAX + 1];
	size_t i;

	for (i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
		unlink(fx->l.current);
		assert_int_equal(symlink(targets[i], fx->l.current), 0);
		chom_err_clear(&e);
		if (chom_release_link_id(fx->l.current, id, sizeof(id), &e) !=
		    -1)
			TU_FAILF("current -> %s taken for release \"%s\"",
				 targets[i], id);
		assert_int_equal(e.code, CHOM_EXIT_USAGE);
		assert_non_null(strstr(e.msg, targets[i]));
	}
}

static void
test_link_id_other_base(void **state)
{
	struct fixture *fx = *state;
	struct chom_err e = { 0 };
	char id[CHOM_ID_MAX + 1] = "";

	/* chom.7/chom-switch(1): a symlink "that does not point at a release
	 * of this BASE" is refused with status 2. */
	assert_int_equal(symlink("/srv/other-site/releases/v1", fx->l.current),
			 0);
	if (chom_release_link_id(fx->l.current, id, sizeof(id), &e) != -1)
		TU_FAILF(
		    "current -> /srv/other-site/releases/v1 taken for this "
		    "base's release \"%s\"",
		    id);
	assert_int_equal(e.code, CHOM_EXIT_USAGE);
}

static void
test_link_id_small_buffer(void **state)
{
	struct fixture *fx = *state;
	struct chom_err e = { 0 };
	char id[4];

	assert_int_equal(symlink("releases/v1234", fx->l.current), 0);
	assert_int_equal(
	    chom_release_link_id(fx->l.current, id, sizeof(id), &e), -1);
}

static void
mkrel(struct fixture *fx, const char *id, time_t mtime)
{
	char p[PATH_MAX + 128];
	struct timespec ts[2];

	snprintf(p, sizeof(p), "%s/%s", fx->l.releases, id);
	assert_int_equal(mkdir(p, 0755), 0);
	if (mtime) {
		ts[0].tv_sec = ts[1].tv_sec = mtime;
		ts[0].tv_nsec = ts[1].tv_nsec = 0;
		assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
	}
}

static void
test_release_list_order(void **state)
{
	struct fixture *fx = *state;
	struct chom_err e = { 0 };
	struct chom_release *v;
	size_t n;
	char p[PATH_MAX + 128];

	/* Staged times from the history win over the directories' mtimes. */
	mkrel(fx, "v1", 1800000300);
	mkrel(fx, "v2", 1800000200);
	mkrel(fx, "v3", 1800000100);
	tu_history_staged(fx->l.history, "v1", 1700000000);
	tu_history_staged(fx->l.history, "v2", 1700000100);
	tu_history_staged(fx->l.history, "v3", 1700000200);
	/* v1 staged again later: its last staging counts. */
	tu_history_staged(fx->l.history, "v1", 1700000300);
	/* No history line: its mtime. */
	mkrel(fx, "old", 1600000000);
	/* Same time: by ID, descending. */
	mkrel(fx, "tie-a", 1500000000);
	mkrel(fx, "tie-b", 1500000000);
	/* Not releases: temporary directories, files, symlinks, bad IDs. */
	mkrel(fx, ".tmp-v4-123", 1900000000);
	snprintf(p, sizeof(p), "%s/file", fx->l.releases);
	tu_write(p, "");
	snprintf(p, sizeof(p), "%s/link", fx->l.releases);
	assert_int_equal(symlink("v1", p), 0);
	mkrel(fx, "bad name", 1900000000);

	assert_int_equal(chom_release_list(&fx->l, &v, &n, &e), 0);
	assert_int_equal(n, 6);
	assert_string_equal(v[0].id, "v1");
	assert_int_equal(v[0].staged, 1700000300);
	assert_string_equal(v[1].id, "v3");
	assert_string_equal(v[2].id, "v2");
	assert_string_equal(v[3].id, "old");
	assert_int_equal(v[3].staged, 1600000000);
	assert_string_equal(v[4].id, "tie-b");
	assert_string_equal(v[5].id, "tie-a");
	free(v);
}

static void
test_release_list_empty(void **state)
{
	struct fixture *fx = *state;
	struct chom_err e = { 0 };
	struct chom_release *v = (void *)1;
	size_t n = 99;

	assert_int_equal(chom_release_list(&fx->l, &v, &n, &e), 0);
	assert_int_equal(n, 0);
	free(v);
	/* No releases/ at all. */
	assert_int_equal(rmdir(fx->l.releases), 0);
	assert_int_equal(chom_release_list(&fx->l, &v, &n, &e), 0);
	assert_int_equal(n, 0);
	free(v);
}

static void
test_release_list_many(void **state)
{
	struct fixture *fx = *state;
	struct chom_err e = { 0 };
	struct chom_release *v;
	size_t n, i;
	char id[16];

	/* More than the first allocation holds. */
	for (i = 0; i < 40; i++) {
		snprintf(id, sizeof(id), "r%02zu", i);
		mkrel(fx, id, 1700000000 + (time_t)i);
	}
	assert_int_equal(chom_release_list(&fx->l, &v, &n, &e), 0);
	assert_int_equal(n, 40);
	for (i = 0; i < 40; i++) {
		snprintf(id, sizeof(id), "r%02zu", 39 - i);
		assert_string_equal(v[i].id, id);
	}
	free(v);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_id_valid),
		cmocka_unit_test(test_id_from_name),
		cmocka_unit_test(test_id_time),
		cmocka_unit_test(test_layout_init_absolute),
		cmocka_unit_test(test_layout_init_relative),
		cmocka_unit_test(test_layout_init_errors),
		T(test_layout_prepare_and_release),
		T(test_link_id),
		T(test_link_id_real_directory),
		T(test_link_id_foreign),
		T(test_link_id_other_base),
		T(test_link_id_small_buffer),
		T(test_release_list_order),
		T(test_release_list_empty),
		T(test_release_list_many),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
