/*
 * Unit tests for lib/fsutil.c: atomic writes and symlinks, mkdir -p, rm -rf
 * that never follows symlinks, readlink, the path builder, and moving the
 * entries of a directory all or nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exitcode.h"
#include "fsutil.h"

#include "testutil.h"

struct fixture {
	char dir[64];
};

static int
setup(void **state)
{
	struct fixture *fx = TU_FIXTURE_NEW(struct fixture, dir, "fsutil");

	*state = fx;
	return fx ? 0 : -1;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;

	return tu_fixture_free(fx, fx->dir);
}

static void
test_atomic_write_creates(void **state)
{
	struct fixture *fx = *state;
	struct chom_err e = { 0 };
	char path[128], buf[64];
	struct stat st;

	snprintf(path, sizeof(path), "%s/file", fx->dir);
	assert_int_equal(chom_atomic_write(path, "hello\n", 6, 0640, &e), 0);
	tu_read(path, buf, sizeof(buf));
	assert_string_equal(buf, "hello\n");
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	assert_int_equal(tu_count_names(fx->dir, "*.tmp-*"), 0);
}

static void
test_atomic_write_replaces(void **state)
{
	struct fixture *fx = *state;
	struct chom_err e = { 0 };
	char path[128], buf[256];
	struct stat st;
	ino_t before;
	mode_t old = umask(077);

	snprintf(path, sizeof(path), "%s/file", fx->dir);
	tu_write(path, "a much longer old content that must vanish entirely\n");
	assert_int_equal(stat(path, &st), 0);
	before = st.st_ino;
	assert_int_equal(chom_atomic_write(path, "new", 3, 0644, &e), 0);
	umask(old);
	tu_read(path, buf, sizeof(buf));
	assert_string_equal(buf, "new");
	assert_int_equal(stat(path, &st), 0);
	/* A new inode renamed into place, with the mode asked despite umask. */
	assert_true(st.st_ino != before);
	assert_int_equal(st.st_size, 3);
	assert_int_equal(st.st_mode & 07777, 0644);
	assert_int_equal(tu_count_names(fx->dir, "*.tmp-*"), 0);
}

static void
test_atomic_write_binary_and_empty(void **state)
{
	struct fixture *fx = *state;
	struct chom_err e = { 0 };
	static const char data[] = { 'a', '\0', 'b', '\n', '\0' };
	char path[128], buf[16];
	struct stat st;
	int fd;

	snprintf(path, sizeof(path), "%s/bin", fx->dir);
	assert_int_equal(chom_atomic_write(path, data, sizeof(data), 0600, &e),
			 0);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, buf, sizeof(buf)), sizeof(data));
	close(fd);
	assert_memory_equal(buf, data, sizeof(data));
	assert_int_equal(chom_atomic_write(path, "", 0, 0600, &e), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 0);
	assert_int_equal(tu_count_names(fx->dir, "*.tmp-*"), 0);
}

static void
test_atomic_write_missing_dir(void **state)
{
	struct fixture *fx = *state;
	struct chom_err e = { 0 };
	char path[128];

	snprintf(path, sizeof(path), "%s/no/such/file", fx->dir);
	assert_int_equal(chom_atomic_write(path, "x", 1, 0644, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_FAIL);
	assert_non_null(strstr(e.msg, "no/such/file"));
}

static void
test_atomic_symlink_creates_and_replaces(void **state)
{
	struct fixture *fx = *state;
	struct chom_err e = { 0 };
	char link[128], buf[128];
	struct stat st;

	snprintf(link, sizeof(link), "%s/current", fx->dir);
	assert_int_equal(chom_atomic_symlink("releases/v1", link, &e), 0);
	assert_int_equal(chom_readlink(link, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "releases/v1");
	assert_int_equal(chom_atomic_symlink("releases/v2", link, &e), 0);
	assert_int_equal(lstat(link, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	assert_int_equal(chom_readlink(link, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "releases/v2");
	assert_int_equal(tu_count_names(fx->dir, "*.tmp-*"), 0);
}

static void
test_atomic_symlink_replaces_link_to_dir(void **state)
{
	struct fixture *fx = *state;
	struct chom_err e = { 0 };
	char link[128], d1[128], buf[128];
	struct stat st;

	/* A symlink to a directory is replaced itself, not followed. */
	snprintf(d1, sizeof(d1), "%s/d1", fx->dir);
	snprintf(link, sizeof(link), "%s/current", fx->dir);
	assert_int_equal(mkdir(d1, 0755), 0);
	assert_int_equal(symlink("d1", link), 0);
	assert_int_equal(chom_atomic_symlink("d2", link, &e), 0);
	assert_int_equal(chom_readlink(link, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "d2");
	assert_int_equal(lstat(d1, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	snprintf(buf, sizeof(buf), "%s/d1/d2", fx->dir);
	assert_int_equal(lstat(buf, &st), -1);
}

static void
test_atomic_symlink_refuses_directory(void **state)
{
	struct fixture *fx = *state;
	struct chom_err e = { 0 };
	char link[128], inside[160];
	struct stat st;

	snprintf(link, sizeof(link), "%s/current", fx->dir);
	snprintf(inside, sizeof(inside), "%s/index.php", link);
	assert_int_equal(mkdir(link, 0755), 0);
	tu_write(inside, "<?php\n");
	assert_int_equal(chom_atomic_symlink("releases/v1", link, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_USAGE);
	assert_non_null(strstr(e.msg, link));
	assert_int_equal(lstat(link, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(lstat(inside, &st), 0);
	assert_int_equal(tu_count_names(fx->dir, "*.tmp-*"), 0);
}

static void
test_atomic_symlink_refuses_empty_directory(void **state)
{
	struct fixture *fx = *state;
	struct chom_err e = { 0 };
	char link[128];
	struct stat st;

	/* rename(2) would happily replace an empty directory. */
	snprintf(link, sizeof(link), "%s/current", fx->dir);
	assert_int_equal(mkdir(link, 0755), 0);
	assert_int_equal(chom_atomic_symlink("releases/v1", link, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_USAGE);
	assert_int_equal(lstat(link, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
}

static void
test_atomic_symlink_refuses_file(void **state)
{
	struct fixture *fx = *state;
	struct chom_err e = { 0 };
	char link[128];
	struct stat st;

	snprintf(link, sizeof(link), "%s/current", fx->dir);
	tu_write(link, "x");
	assert_int_equal(chom_atomic_symlink("releases/v1", link, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_USAGE);
	assert_int_equal(lstat(link, &st), 0);
	assert_true(S_ISREG(st.st_mode));
}

static void
test_atomic_symlink_stale_tmp(void **state)
{
	struct fixture *fx = *state;
	struct chom_err e = { 0 };
	char link[128], tmp[160], buf[64];

	/* A temporary name left by a crashed run of the same pid. */
	snprintf(link, sizeof(link), "%s/current", fx->dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp-%ld", link, (long)getpid());
	assert_int_equal(symlink("stale", tmp), 0);
	assert_int_equal(chom_atomic_symlink("fresh", link, &e), 0);
	assert_int_equal(chom_readlink(link, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "fresh");
	assert_int_equal(tu_count_names(fx->dir, "*.tmp-*"), 0);
}

static void
test_mkdir_p(void **state)
{
	struct fixture *fx = *state;
	struct chom_err e = { 0 };
	char path[128];
	struct stat st;

	snprintf(path, sizeof(path), "%s/a/b/c", fx->dir);
	assert_int_equal(chom_mkdir_p(path, 0755, &e), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	/* Again: existing directories are fine. */
	assert_int_equal(chom_mkdir_p(path, 0755, &e), 0);
	assert_int_equal(chom_mkdir_p(fx->dir, 0755, &e), 0);
	/* A trailing slash and doubled slashes. */
	snprintf(path, sizeof(path), "%s/x//y/", fx->dir);
	assert_int_equal(chom_mkdir_p(path, 0755, &e), 0);
	snprintf(path, sizeof(path), "%s/x/y", fx->dir);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
}

static void
test_mkdir_p_through_file(void **state)
{
	struct fixture *fx = *state;
	struct chom_err e = { 0 };
	char path[128];

	snprintf(path, sizeof(path), "%s/file", fx->dir);
	tu_write(path, "x");
	/* The last component is a file. */
	assert_int_equal(chom_mkdir_p(path, 0755, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_FAIL);
	assert_non_null(strstr(e.msg, "not a directory"));
	/* A file on the way. */
	snprintf(path, sizeof(path), "%s/file/sub", fx->dir);
	assert_int_equal(chom_mkdir_p(path, 0755, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_FAIL);
}

static void
test_mkdir_p_through_symlink(void **state)
{
	struct fixture *fx = *state;
	struct chom_err e = { 0 };
	char path[128], link[128];
	struct stat st;

	/* A symlink to a directory counts as the directory (like mkdir -p). */
	snprintf(path, sizeof(path), "%s/real", fx->dir);
	snprintf(link, sizeof(link), "%s/link", fx->dir);
	assert_int_equal(mkdir(path, 0755), 0);
	assert_int_equal(symlink("real", link), 0);
	snprintf(path, sizeof(path), "%s/link/sub", fx->dir);
	assert_int_equal(chom_mkdir_p(path, 0755, &e), 0);
	snprintf(path, sizeof(path), "%s/real/sub", fx->dir);
	assert_int_equal(stat(path, &st), 0);
}

static void
test_rmtree_nested_with_symlinks(void **state)
{
	struct fixture *fx = *state;
	struct chom_err e = { 0 };
	char tree[128], outside[128], p[256];
	struct stat st;

	snprintf(tree, sizeof(tree), "%s/tree", fx->dir);
	snprintf(outside, sizeof(outside), "%s/outside", fx->dir);
	assert_int_equal(mkdir(outside, 0755), 0);
	snprintf(p, sizeof(p), "%s/keep.txt", outside);
	tu_write(p, "precious");
	snprintf(p, sizeof(p), "%s/sub", outside);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/sub/deep.txt", outside);
	tu_write(p, "also precious");

	snprintf(p, sizeof(p), "%s/a/b/c", tree);
	assert_int_equal(chom_mkdir_p(p, 0755, &e), 0);
	snprintf(p, sizeof(p), "%s/a/b/c/file", tree);
	tu_write(p, "1");
	snprintf(p, sizeof(p), "%s/a/file", tree);
	tu_write(p, "2");
	snprintf(p, sizeof(p), "%s/top", tree);
	tu_write(p, "3");
	snprintf(p, sizeof(p), "%s/a/b/to-outside", tree);
	assert_int_equal(symlink(outside, p), 0);
	snprintf(p, sizeof(p), "%s/rel-to-outside", tree);
	assert_int_equal(symlink("../outside", p), 0);
	snprintf(p, sizeof(p), "%s/a/to-file", tree);
	assert_int_equal(symlink("../../outside/keep.txt", p), 0);
	snprintf(p, sizeof(p), "%s/dangling", tree);
	assert_int_equal(symlink("/nonexistent/chom", p), 0);
	snprintf(p, sizeof(p), "%s/empty", tree);
	assert_int_equal(mkdir(p, 0700), 0);

	assert_int_equal(chom_rmtree(tree, &e), 0);
	assert_int_equal(lstat(tree, &st), -1);
	assert_int_equal(errno, ENOENT);
	snprintf(p, sizeof(p), "%s/keep.txt", outside);
	assert_int_equal(lstat(p, &st), 0);
	snprintf(p, sizeof(p), "%s/sub/deep.txt", outside);
	assert_int_equal(lstat(p, &st), 0);
}

static void
test_rmtree_top_symlink(void **state)
{
	struct fixture *fx = *state;
	struct chom_err e = { 0 };
	char link[128], outside[128], p[256];
	struct stat st;

	/* rmtree of a symlink to a directory removes the link only. */
	snprintf(outside, sizeof(outside), "%s/outside", fx->dir);
	snprintf(link, sizeof(link), "%s/link", fx->dir);
	assert_int_equal(mkdir(outside, 0755), 0);
	snprintf(p, sizeof(p), "%s/keep.txt", outside);
	tu_write(p, "precious");
	assert_int_equal(symlink("outside", link), 0);
	assert_int_equal(chom_rmtree(link, &e), 0);
	assert_int_equal(lstat(link, &st), -1);
	assert_int_equal(lstat(p, &st), 0);
}

static void
test_rmtree_file_and_missing(void **state)
{
	struct fixture *fx = *state;
	struct chom_err e = { 0 };
	char p[128];
	struct stat st;

	snprintf(p, sizeof(p), "%s/file", fx->dir);
	tu_write(p, "x");
	assert_int_equal(chom_rmtree(p, &e), 0);
	assert_int_equal(lstat(p, &st), -1);
	/* A missing path is fine. */
	assert_int_equal(chom_rmtree(p, &e), 0);
	snprintf(p, sizeof(p), "%s/no/such/dir", fx->dir);
	assert_int_equal(chom_rmtree(p, &e), 0);
}

static void
test_readlink(void **state)
{
	struct fixture *fx = *state;
	char link[128], file[128], buf[64];

	snprintf(link, sizeof(link), "%s/l", fx->dir);
	snprintf(file, sizeof(file), "%s/f", fx->dir);
	assert_int_equal(symlink("releases/v1", link), 0);
	tu_write(file, "x");
	memset(buf, 'Z', sizeof(buf));
	assert_int_equal(chom_readlink(link, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "releases/v1");
	/* Exactly room for the target and its NUL. */
	assert_int_equal(chom_readlink(link, buf, 12), 0);
	assert_string_equal(buf, "releases/v1");
	/* One byte short: an error, not a truncated target. */
	errno = 0;
	assert_int_equal(chom_readlink(link, buf, 11), -1);
	assert_int_equal(errno, ENAMETOOLONG);
	errno = 0;
	assert_int_equal(chom_readlink(file, buf, sizeof(buf)), -1);
	assert_int_equal(errno, EINVAL);
	errno = 0;
	snprintf(file, sizeof(file), "%s/missing", fx->dir);
	assert_int_equal(chom_readlink(file, buf, sizeof(buf)), -1);
	assert_int_equal(errno, ENOENT);
}

static void
test_path(void **state)
{
	struct chom_err e = { 0 };
	char buf[8];

	assert_int_equal(chom_path(buf, sizeof(buf), &e, "%s/%s", "ab", "cd"),
			 0);
	assert_string_equal(buf, "ab/cd");
	/* Seven characters and the NUL fill it exactly. */
	assert_int_equal(chom_path(buf, sizeof(buf), &e, "%s", "1234567"), 0);
	assert_string_equal(buf, "1234567");
	assert_int_equal(e.code, 0);
}

static void
test_path_overflow(void **state)
{
	struct chom_err e = { 0 };
	char buf[8], big[PATH_MAX + 100], want[64];

	assert_int_equal(chom_path(buf, sizeof(buf), &e, "%s", "12345678"), -1);
	assert_int_equal(e.code, CHOM_EXIT_USAGE);
	assert_non_null(strstr(e.msg, "path too long"));
	assert_int_equal(strlen(buf), 7); /* still a string */

	memset(big, 'p', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	chom_err_clear(&e);
	{
		char path[PATH_MAX];

		assert_int_equal(chom_path(path, sizeof(path), &e, "/%s", big),
				 -1);
	}
	assert_int_equal(e.code, CHOM_EXIT_USAGE);
	/* The message shows the start of the path, not all of it. */
	snprintf(want, sizeof(want), "path too long: /ppp");
	assert_non_null(strstr(e.msg, want));
	assert_true(strlen(e.msg) < 200);
}

static void
test_fsync_dir(void **state)
{
	struct fixture *fx = *state;
	struct chom_err e = { 0 };
	char p[128];

	assert_int_equal(chom_fsync_dir(fx->dir, &e), 0);
	snprintf(p, sizeof(p), "%s/missing", fx->dir);
	assert_int_equal(chom_fsync_dir(p, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_FAIL);
	assert_non_null(strstr(e.msg, "missing"));
}

/* Whether dir/name is there (not followed if a symlink). */
static bool
exists(const char *dir, const char *name)
{
	char p[256];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return lstat(p, &st) == 0;
}

/* fx->dir/from with a and c, files, and b, a directory with a file in
 * it; fx->dir/to, empty. */
static void
make_entries(const struct fixture *fx, char from[128], char to[128])
{
	char p[256];

	snprintf(from, 128, "%s/from", fx->dir);
	snprintf(to, 128, "%s/to", fx->dir);
	assert_int_equal(mkdir(from, 0755), 0);
	assert_int_equal(mkdir(to, 0755), 0);
	snprintf(p, sizeof(p), "%s/b", from);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/b/in-b", from);
	tu_write(p, "in-b");
	snprintf(p, sizeof(p), "%s/a", from);
	tu_write(p, "a");
	snprintf(p, sizeof(p), "%s/c", from);
	tu_write(p, "c");
}

static void
test_move_entries(void **state)
{
	struct chom_err e = { 0 };
	char from[128], to[128];

	make_entries(*state, from, to);
	assert_int_equal(chom_move_entries(from, to, &e), 0);
	for (const char *n = "a\0b\0c\0"; *n; n += 2) {
		assert_true(exists(to, n));
		assert_false(exists(from, n));
	}
	assert_true(exists(to, "b/in-b"));
}

/* c cannot be moved (a directory with something in it is in the way):
 * a and b, moved before it, go back; to holds what it held. */
static void
test_move_entries_all_or_nothing(void **state)
{
	struct fixture *fx = *state;
	struct chom_err e = { 0 };
	char from[128], to[128], p[256];

	make_entries(fx, from, to);
	snprintf(p, sizeof(p), "%s/c", to);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/c/keep", to);
	assert_int_equal(mkdir(p, 0755), 0);
	assert_int_equal(chom_move_entries(from, to, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_FAIL);
	assert_non_null(strstr(e.msg, "from/c"));
	for (const char *n = "a\0b\0c\0"; *n; n += 2)
		assert_true(exists(from, n));
	assert_true(exists(from, "b/in-b"));
	assert_false(exists(to, "a"));
	assert_false(exists(to, "b"));
	assert_true(exists(to, "c/keep"));
	/* A directory that is not there. */
	snprintf(p, sizeof(p), "%s/missing", fx->dir);
	assert_int_equal(chom_move_entries(p, to, &e), -1);
	assert_non_null(strstr(e.msg, "missing"));
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_atomic_write_creates),
		T(test_move_entries),
		T(test_move_entries_all_or_nothing),
		T(test_atomic_write_replaces),
		T(test_atomic_write_binary_and_empty),
		T(test_atomic_write_missing_dir),
		T(test_atomic_symlink_creates_and_replaces),
		T(test_atomic_symlink_replaces_link_to_dir),
		T(test_atomic_symlink_refuses_directory),
		T(test_atomic_symlink_refuses_empty_directory),
		T(test_atomic_symlink_refuses_file),
		T(test_atomic_symlink_stale_tmp),
		T(test_mkdir_p),
		T(test_mkdir_p_through_file),
		T(test_mkdir_p_through_symlink),
		T(test_rmtree_nested_with_symlinks),
		T(test_rmtree_top_symlink),
		T(test_rmtree_file_and_missing),
		T(test_readlink),
		T(test_path),
		T(test_path_overflow),
		T(test_fsync_dir),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
