/*
 * Unit tests for lib/inuse.c: finding a process that uses a directory
 * through /proc, with forked children as the users.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exitcode.h"
#include "inuse.h"

#include "testutil.h"

struct fixture {
	char dir[64];
	pid_t child;
};

static int
setup(void **state)
{
	struct fixture *fx = TU_FIXTURE_NEW(struct fixture, dir, "inuse");

	*state = fx;
	return fx ? 0 : -1;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;

	tu_reap(&fx->child);
	return tu_fixture_free(fx, fx->dir);
}

static void
sub(struct fixture *fx, const char *name, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s", fx->dir, name);
}

enum how { CWD, OPEN_FILE, OPEN_DELETED };

struct use {
	const char *path;
	enum how how;
};

/* Child: uses u->path as u->how says. */
static int
use_path(void *arg)
{
	const struct use *u = arg;
	int fd;

	if (u->how == CWD)
		return chdir(u->path);
	fd = open(u->path, O_RDONLY);
	if (fd < 0)
		return -1;
	if (u->how == OPEN_DELETED && unlink(u->path) < 0)
		return -1;
	return 0;
}

/* A child that uses path as `how` says, then sleeps until killed. */
static void
spawn_user(struct fixture *fx, const char *path, enum how how)
{
	struct use u = { path, how };

	tu_spawn(&fx->child, use_path, &u);
}

static void
expect_user(struct fixture *fx, const char *dir)
{
	struct chom_err e = { 0 };
	char comm[64] = "";
	pid_t pid = 0;
	int rc = chom_inuse(dir, &pid, comm, sizeof(comm), &e);

	if (rc != 1)
		TU_FAILF("chom_inuse(%s) = %d (%s), want 1", dir, rc, e.msg);
	assert_int_equal(pid, fx->child);
	/* The child is this test program: its comm is our name. */
	assert_string_equal(comm, "test_inuse");
}

static void
expect_unused(const char *dir)
{
	struct chom_err e = { 0 };
	char comm[64] = "";
	pid_t pid = 0;
	int rc = chom_inuse(dir, &pid, comm, sizeof(comm), &e);

	if (rc != 0)
		TU_FAILF("chom_inuse(%s) = %d: pid %ld (%s)", dir, rc,
			 (long)pid, comm);
}

static void
test_cwd_user_found(void **state)
{
	struct fixture *fx = *state;
	char rel[128];

	sub(fx, "release", rel, sizeof(rel));
	assert_int_equal(mkdir(rel, 0755), 0);
	spawn_user(fx, rel, CWD);
	expect_user(fx, rel);
	/* And from the directory above it. */
	expect_user(fx, fx->dir);
}

static void
test_cwd_below_found(void **state)
{
	struct fixture *fx = *state;
	char rel[128], deep[160];

	sub(fx, "release", rel, sizeof(rel));
	assert_int_equal(mkdir(rel, 0755), 0);
	snprintf(deep, sizeof(deep), "%s/public", rel);
	assert_int_equal(mkdir(deep, 0755), 0);
	snprintf(deep, sizeof(deep), "%s/public/assets", rel);
	assert_int_equal(mkdir(deep, 0755), 0);
	spawn_user(fx, deep, CWD);
	expect_user(fx, rel);
}

static void
test_unused_dir(void **state)
{
	struct fixture *fx = *state;
	char rel[128];

	int here = open(".", O_RDONLY | O_DIRECTORY), fd;

	sub(fx, "release", rel, sizeof(rel));
	assert_int_equal(mkdir(rel, 0755), 0);
	expect_unused(rel);
	/* The caller itself does not count: chom-switch may run from inside
	 * the release it prunes. */
	assert_true(here >= 0);
	fd = open(rel, O_RDONLY | O_DIRECTORY);
	assert_true(fd >= 0);
	assert_int_equal(chdir(rel), 0);
	expect_unused(rel);
	assert_int_equal(fchdir(here), 0);
	close(here);
	close(fd);
}

static void
test_prefix_is_not_a_parent(void **state)
{
	struct fixture *fx = *state;
	char used[128], other[128];

	/* A user of ".../v10" does not use ".../v1". */
	sub(fx, "v10", used, sizeof(used));
	sub(fx, "v1", other, sizeof(other));
	assert_int_equal(mkdir(used, 0755), 0);
	assert_int_equal(mkdir(other, 0755), 0);
	spawn_user(fx, used, CWD);
	expect_user(fx, used);
	expect_unused(other);
}

/* A child holding release/NAME open (as how says) uses release. */
static void
expect_open_file_user(struct fixture *fx, const char *name, enum how how)
{
	char rel[128], file[160];

	sub(fx, "release", rel, sizeof(rel));
	assert_int_equal(mkdir(rel, 0755), 0);
	snprintf(file, sizeof(file), "%s/%s", rel, name);
	tu_write(file, "");
	spawn_user(fx, file, how);
	expect_user(fx, rel);
}

static void
test_open_file_found(void **state)
{
	expect_open_file_user(*state, "app.log", OPEN_FILE);
}

static void
test_open_deleted_file_found(void **state)
{
	expect_open_file_user(*state, "cache.bin", OPEN_DELETED);
}

static void
test_through_symlink(void **state)
{
	struct fixture *fx = *state;
	char rel[128], link[128];

	/* /proc shows resolved paths; the query may name a symlink. */
	sub(fx, "release", rel, sizeof(rel));
	sub(fx, "current", link, sizeof(link));
	assert_int_equal(mkdir(rel, 0755), 0);
	assert_int_equal(symlink("release", link), 0);
	spawn_user(fx, rel, CWD);
	expect_user(fx, link);
}

static void
test_missing_dir(void **state)
{
	struct fixture *fx = *state;
	struct chom_err e = { 0 };
	char p[128], comm[16];
	pid_t pid;

	sub(fx, "missing", p, sizeof(p));
	assert_int_equal(chom_inuse(p, &pid, comm, sizeof(comm), &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_FAIL);
	assert_non_null(strstr(e.msg, p));
}

static void
test_exited_user_gone(void **state)
{
	struct fixture *fx = *state;
	char rel[128];

	sub(fx, "release", rel, sizeof(rel));
	assert_int_equal(mkdir(rel, 0755), 0);
	spawn_user(fx, rel, CWD);
	expect_user(fx, rel);
	tu_reap(&fx->child);
	expect_unused(rel);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_cwd_user_found),   T(test_cwd_below_found),
		T(test_unused_dir),       T(test_prefix_is_not_a_parent),
		T(test_open_file_found),  T(test_open_deleted_file_found),
		T(test_through_symlink),  T(test_missing_dir),
		T(test_exited_user_gone),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
