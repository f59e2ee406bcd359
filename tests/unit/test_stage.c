/*
 * Unit tests for lib/stage.c: --link paths, the removal of temporary
 * directories left by dead runs, and whole stagings of small tar.gz
 * artifacts built here with libarchive.
 */
#include <archive_entry.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exitcode.h"
#include "fsutil.h"
#include "history.h"
#include "lock.h"
#include "release.h"
#include "sha256.h"
#include "stage.h"

#include "testutil.h"

/* Room for any layout path and a name after it. */
#define PATHBUF (PATH_MAX + 128)

struct fixture {
	char root[64];
	char base[96];    /* ROOT/base */
	char outside[96]; /* ROOT/outside: must survive everything */
	char tgz[96];     /* ROOT/a.tar.gz */
	char releases[128], shared[128]; /* short copies of l's, for paths */
	struct chom_layout l;
	pid_t child;
};

static int
setup(void **state)
{
	struct fixture *fx = TU_FIXTURE_NEW(struct fixture, root, "stage");
	char p[160];

	if (!fx)
		return -1;
	*state = fx;
	snprintf(fx->base, sizeof(fx->base), "%s/base", fx->root);
	snprintf(fx->outside, sizeof(fx->outside), "%s/outside", fx->root);
	snprintf(fx->tgz, sizeof(fx->tgz), "%s/a.tar.gz", fx->root);
	if (mkdir(fx->outside, 0755) < 0 || tu_layout(&fx->l, fx->base) < 0)
		return -1;
	snprintf(fx->releases, sizeof(fx->releases), "%s/releases", fx->base);
	snprintf(fx->shared, sizeof(fx->shared), "%s/shared", fx->base);
	snprintf(p, sizeof(p), "%s/keep.txt", fx->outside);
	tu_write(p, "precious");
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;

	tu_reap(&fx->child);
	return tu_fixture_free(fx, fx->root);
}

static pid_t
dead_pid(void)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0)
		_exit(0);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	return pid;
}

static void
mktmp(struct fixture *fx, const char *name, char *path, size_t size)
{
	snprintf(path, size, "%s/%s", fx->releases, name);
	assert_int_equal(mkdir(path, 0755), 0);
}

/* ---- chom_stage_check_link ---- */

static void
test_check_link(void **state)
{
	static const char *const ok[] = {
		"storage",   "shared/uploads", ".env", "a..b",
		"a/.hidden", "var/log/app",    "...",
	};
	static const char *const bad[] = {
		"",  "/abs", "/",     "..",   "../x", "a/../b", "a/..",
		".", "./a",  "a/./b", "a//b", "a/",   "a/.",    "storage/",
	};
	struct chom_err e;
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		chom_err_clear(&e);
		if (chom_stage_check_link(ok[i], &e) != 0)
			TU_FAILF("--link %s refused: %s", ok[i], e.msg);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		chom_err_clear(&e);
		if (chom_stage_check_link(bad[i], &e) != -1)
			TU_FAILF("--link \"%s\" accepted", bad[i]);
		assert_int_equal(e.code, CHOM_EXIT_USAGE);
		assert_non_null(strstr(e.msg, "--link"));
	}
}

/* ---- chom_stage_clean_stale ---- */

/* Child: once the directory path exists, holds a flock on it. */
static int
hold_dir(void *path)
{
	int fd;

	/* Until the parent has made it. */
	while ((fd = open(path, O_RDONLY | O_DIRECTORY)) < 0)
		usleep(10000);
	return flock(fd, LOCK_EX);
}

static void
test_clean_stale(void **state)
{
	struct fixture *fx = *state;
	struct chom_err e = { 0 };
	char dead_dir[256], prune_dir[256], live_dir[256], held_dir[256],
	    rel[256], name[64], p[512];
	pid_t dead = dead_pid();
	struct stat st;
	int ready;

	/* A dead run's directory, with a tree and a symlink out of it. */
	snprintf(name, sizeof(name), ".tmp-v1-%ld", (long)dead);
	mktmp(fx, name, dead_dir, sizeof(dead_dir));
	snprintf(p, sizeof(p), "%s/sub", dead_dir);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/sub/file", dead_dir);
	tu_write(p, "x");
	snprintf(p, sizeof(p), "%s/sub/out", dead_dir);
	assert_int_equal(symlink(fx->outside, p), 0);
	/* What an interrupted prune leaves. */
	snprintf(name, sizeof(name), ".tmp-prune-v0-%ld", (long)dead);
	mktmp(fx, name, prune_dir, sizeof(prune_dir));
	/* A complete release. */
	mktmp(fx, "v1", rel, sizeof(rel));

	/* A live run's directory (its pid exists), and one flock'd by a live
	 * process whatever the pid in its name says. */
	snprintf(p, sizeof(p), "%s/.tmp-v3-%ld", fx->releases, (long)dead);
	ready = tu_fork_ready(&fx->child, hold_dir, p);
	snprintf(name, sizeof(name), ".tmp-v2-%ld", (long)fx->child);
	mktmp(fx, name, live_dir, sizeof(live_dir));
	snprintf(name, sizeof(name), ".tmp-v3-%ld", (long)dead);
	mktmp(fx, name, held_dir, sizeof(held_dir));
	tu_await_ready(ready);

	assert_int_equal(chom_stage_clean_stale(&fx->l, &e), 2);
	assert_int_equal(lstat(dead_dir, &st), -1);
	assert_int_equal(lstat(prune_dir, &st), -1);
	assert_int_equal(lstat(live_dir, &st), 0);
	assert_int_equal(lstat(held_dir, &st), 0);
	assert_int_equal(lstat(rel, &st), 0);
	snprintf(p, sizeof(p), "%s/keep.txt", fx->outside);
	assert_int_equal(lstat(p, &st), 0);

	/* Its owner gone, both go. */
	tu_reap(&fx->child);
	assert_int_equal(chom_stage_clean_stale(&fx->l, &e), 2);
	assert_int_equal(lstat(live_dir, &st), -1);
	assert_int_equal(lstat(held_dir, &st), -1);
	assert_int_equal(lstat(rel, &st), 0);
	assert_int_equal(chom_stage_clean_stale(&fx->l, &e), 0);
}

static void
test_clean_stale_no_releases(void **state)
{
	struct fixture *fx = *state;
	struct chom_err e = { 0 };

	assert_int_equal(rmdir(fx->l.releases), 0);
	assert_int_equal(chom_stage_clean_stale(&fx->l, &e), 0);
}

/* ---- chom_stage ---- */

static const struct tu_ent app_v1[] = {
	{ "./", AE_IFDIR, 0755, NULL },
	{ "index.php", AE_IFREG, 0644, "<?php echo 'v1';\n" },
	{ "storage/", AE_IFDIR, 0755, NULL },
	{ "storage/app.txt", AE_IFREG, 0644, "seed from v1\n" },
	{ "config/", AE_IFDIR, 0755, NULL },
	{ "config/app.ini", AE_IFREG, 0644, "name = app\n" },
};

static const struct tu_ent app_v2[] = {
	{ "index.php", AE_IFREG, 0644, "<?php echo 'v2';\n" },
	{ "storage/", AE_IFDIR, 0755, NULL },
	{ "storage/app.txt", AE_IFREG, 0644,
	  "from v2, must not reach shared/\n" },
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static int
stage(struct fixture *fx, const char *id, const char *sha,
      const char *const *links, size_t nlinks, struct chom_stage_result *r,
      struct chom_err *e)
{
	struct chom_stage_opts o = {
		.layout = &fx->l,
		.artifact = fx->tgz,
		.id = id,
		.sha256 = sha,
		.links = links,
		.nlinks = nlinks,
	};

	return chom_stage(&o, r, e);
}

static void
test_stage_publishes(void **state)
{
	struct fixture *fx = *state;
	struct chom_stage_result r;
	struct chom_err e = { 0 };
	char want[PATHBUF], p[PATHBUF], buf[256], sha[CHOM_SHA256_HEXLEN + 1];
	struct stat st;

	tu_make_tgz(fx->tgz, app_v1, N(app_v1));
	assert_int_equal(chom_sha256_file(fx->tgz, sha, &e), 0);
	if (stage(fx, "v1", NULL, NULL, 0, &r, &e) != 0)
		TU_FAILF("stage failed: %s", e.msg);
	snprintf(want, sizeof(want), "%s/releases/v1", fx->base);
	assert_string_equal(r.path, want);
	assert_string_equal(r.sha256, sha);
	assert_int_equal(r.st.entries, 5);
	assert_int_equal(r.removed_stale, 0);
	snprintf(p, sizeof(p), "%s/index.php", r.path);
	tu_read(p, buf, sizeof(buf));
	assert_string_equal(buf, "<?php echo 'v1';\n");
	assert_int_equal(stat(r.path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(chom_readlink(fx->l.next, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "releases/v1");
	tu_expect_last_history(fx->l.history, "stage", "", "v1");
	assert_int_equal(tu_count_names(fx->l.releases, ".tmp-*"), 0);
	/* The lock is free again. */
	tu_expect_lock_free(fx->l.lock);

	/* A second release moves next and records where it was. */
	tu_make_tgz(fx->tgz, app_v2, N(app_v2));
	if (stage(fx, "v2", NULL, NULL, 0, &r, &e) != 0)
		TU_FAILF("stage failed: %s", e.msg);
	assert_int_equal(chom_readlink(fx->l.next, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "releases/v2");
	tu_expect_last_history(fx->l.history, "stage", "v1", "v2");
}

static void
test_stage_checksum(void **state)
{
	struct fixture *fx = *state;
	struct chom_stage_result r;
	struct chom_err e = { 0 };
	char sha[CHOM_SHA256_HEXLEN + 1], p[PATHBUF];
	struct stat st;

	tu_make_tgz(fx->tgz, app_v1, N(app_v1));
	assert_int_equal(chom_sha256_file(fx->tgz, sha, &e), 0);
	assert_int_equal(stage(fx, "bad",
			       "00000000000000000000000000000000"
			       "00000000000000000000000000000000",
			       NULL, 0, &r, &e),
			 -1);
	assert_int_equal(e.code, CHOM_EXIT_FAIL);
	assert_non_null(strstr(e.msg, "checksum mismatch"));
	assert_non_null(strstr(e.msg, sha));
	snprintf(p, sizeof(p), "%s/bad", fx->releases);
	assert_int_equal(lstat(p, &st), -1);
	assert_int_equal(lstat(fx->l.next, &st), -1);
	assert_int_equal(tu_count_names(fx->l.releases, ".tmp-*"), 0);

	if (stage(fx, "good", sha, NULL, 0, &r, &e) != 0)
		TU_FAILF("stage with the right digest failed: %s", e.msg);
	assert_string_equal(r.sha256, sha);
}

static void
test_stage_existing_release(void **state)
{
	struct fixture *fx = *state;
	struct chom_stage_result r;
	struct chom_err e = { 0 };
	char p[PATHBUF], buf[64];

	tu_make_tgz(fx->tgz, app_v1, N(app_v1));
	assert_int_equal(stage(fx, "v1", NULL, NULL, 0, &r, &e), 0);
	tu_make_tgz(fx->tgz, app_v2, N(app_v2));
	assert_int_equal(stage(fx, "v1", NULL, NULL, 0, &r, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_FAIL);
	assert_non_null(strstr(e.msg, "already exists"));
	snprintf(p, sizeof(p), "%s/v1/index.php", fx->releases);
	tu_read(p, buf, sizeof(buf));
	assert_string_equal(buf, "<?php echo 'v1';\n");
	assert_int_equal(tu_count_names(fx->l.releases, ".tmp-*"), 0);
}

static void
test_stage_refused_archive(void **state)
{
	static const struct tu_ent evil[] = {
		{ "index.php", AE_IFREG, 0644, "x" },
		{ "../evil", AE_IFREG, 0644, "pwned" },
	};
	struct fixture *fx = *state;
	struct chom_stage_result r;
	struct chom_err e = { 0 };
	char p[PATHBUF];
	struct stat st;

	tu_make_tgz(fx->tgz, evil, N(evil));
	assert_int_equal(stage(fx, "v1", NULL, NULL, 0, &r, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_FAIL);
	assert_non_null(strstr(e.msg, "evil"));
	assert_int_equal(tu_count_names(fx->l.releases, ".tmp-*"), 0);
	snprintf(p, sizeof(p), "%s/v1", fx->releases);
	assert_int_equal(lstat(p, &st), -1);
	snprintf(p, sizeof(p), "%s/evil", fx->releases);
	assert_int_equal(lstat(p, &st), -1);
	assert_int_equal(lstat(fx->l.next, &st), -1);
}

static void
test_stage_bad_artifact(void **state)
{
	struct fixture *fx = *state;
	struct chom_stage_result r;
	struct chom_err e = { 0 };
	struct chom_stage_opts o = { .layout = &fx->l, .id = "v1" };

	o.artifact = fx->tgz; /* missing */
	assert_int_equal(chom_stage(&o, &r, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_FAIL);
	assert_non_null(strstr(e.msg, fx->tgz));
	o.artifact = fx->outside; /* a directory */
	assert_int_equal(chom_stage(&o, &r, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_USAGE);
	assert_int_equal(tu_count_names(fx->l.releases, ".tmp-*"), 0);
}

static void
test_stage_links(void **state)
{
	static const char *const links[] = { "storage", "config/app.ini" };
	struct fixture *fx = *state;
	struct chom_stage_result r;
	struct chom_err e = { 0 };
	char p[PATHBUF], buf[256];
	struct stat st;

	tu_make_tgz(fx->tgz, app_v1, N(app_v1));
	if (stage(fx, "v1", NULL, links, 2, &r, &e) != 0)
		TU_FAILF("stage failed: %s", e.msg);
	/* Seeded from the first artifact... */
	snprintf(p, sizeof(p), "%s/storage/app.txt", fx->shared);
	tu_read(p, buf, sizeof(buf));
	assert_string_equal(buf, "seed from v1\n");
	snprintf(p, sizeof(p), "%s/config/app.ini", fx->shared);
	tu_read(p, buf, sizeof(buf));
	assert_string_equal(buf, "name = app\n");
	/* ...and linked with relative targets that resolve. */
	snprintf(p, sizeof(p), "%s/storage", r.path);
	assert_int_equal(lstat(p, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	assert_int_equal(chom_readlink(p, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "../../shared/storage");
	snprintf(p, sizeof(p), "%s/config/app.ini", r.path);
	assert_int_equal(chom_readlink(p, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "../../../shared/config/app.ini");
	snprintf(p, sizeof(p), "%s/storage/app.txt", r.path);
	tu_read(p, buf, sizeof(buf));
	assert_string_equal(buf, "seed from v1\n");

	/* The next release's copy is dropped: shared/ wins. */
	tu_make_tgz(fx->tgz, app_v2, N(app_v2));
	if (stage(fx, "v2", NULL, links, 1, &r, &e) != 0)
		TU_FAILF("stage failed: %s", e.msg);
	snprintf(p, sizeof(p), "%s/storage/app.txt", r.path);
	tu_read(p, buf, sizeof(buf));
	assert_string_equal(buf, "seed from v1\n");
	snprintf(p, sizeof(p), "%s/storage/app.txt", fx->shared);
	tu_read(p, buf, sizeof(buf));
	assert_string_equal(buf, "seed from v1\n");
}

static void
test_stage_link_missing(void **state)
{
	static const char *const links[] = { "nowhere" };
	struct fixture *fx = *state;
	struct chom_stage_result r;
	struct chom_err e = { 0 };
	char p[PATHBUF];
	struct stat st;

	tu_make_tgz(fx->tgz, app_v1, N(app_v1));
	assert_int_equal(stage(fx, "v1", NULL, links, 1, &r, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_FAIL);
	assert_non_null(strstr(e.msg, "nowhere"));
	snprintf(p, sizeof(p), "%s/v1", fx->releases);
	assert_int_equal(lstat(p, &st), -1);
	assert_int_equal(tu_count_names(fx->l.releases, ".tmp-*"), 0);
}

static void
test_stage_removes_stale(void **state)
{
	struct fixture *fx = *state;
	struct chom_stage_result r;
	struct chom_err e = { 0 };
	char name[64], dir[PATHBUF];
	struct stat st;

	snprintf(name, sizeof(name), ".tmp-v0-%ld", (long)dead_pid());
	mktmp(fx, name, dir, sizeof(dir));
	tu_make_tgz(fx->tgz, app_v1, N(app_v1));
	assert_int_equal(stage(fx, "v1", NULL, NULL, 0, &r, &e), 0);
	assert_int_equal(r.removed_stale, 1);
	assert_int_equal(lstat(dir, &st), -1);
}

static void
test_stage_lock_held(void **state)
{
	struct fixture *fx = *state;
	struct chom_stage_result r;
	struct chom_err e = { 0 };
	struct chom_lock lk;
	char p[PATHBUF];
	struct stat st;

	tu_make_tgz(fx->tgz, app_v1, N(app_v1));
	assert_int_equal(chom_lock_acquire(&lk, fx->l.lock, 0, &e), 0);
	assert_int_equal(stage(fx, "v1", NULL, NULL, 0, &r, &e), -1);
	chom_lock_release(&lk);
	assert_int_equal(e.code, CHOM_EXIT_BUSY);
	snprintf(p, sizeof(p), "%s/v1", fx->releases);
	assert_int_equal(lstat(p, &st), -1);
	assert_int_equal(lstat(fx->l.next, &st), -1);
	assert_int_equal(tu_count_names(fx->l.releases, ".tmp-*"), 0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check_link),
		T(test_clean_stale),
		T(test_clean_stale_no_releases),
		T(test_stage_publishes),
		T(test_stage_checksum),
		T(test_stage_existing_release),
		T(test_stage_refused_archive),
		T(test_stage_bad_artifact),
		T(test_stage_links),
		T(test_stage_link_missing),
		T(test_stage_removes_stale),
		T(test_stage_lock_held),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
