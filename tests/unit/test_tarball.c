/*
 * Unit tests for lib/tarball.c: a temporary tree (a file, a subdirectory
 * with a file, a symlink) archived into a memory sink and read back with
 * libarchive's reader: names without the leading '/', contents, modes,
 * mtimes, the symlink as a link; a missing path; a failing sink.
 */
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exitcode.h"
#include "tarball.h"

#include "testutil.h"

struct mem {
	struct chom_sink s;
	char *buf;
	size_t len, cap, fail_after;
	int closes;
};

static int
mem_write(struct chom_sink *s, const void *buf, size_t len, struct chom_err *e)
{
	struct mem *m = (struct mem *)s;

	if (m->fail_after && m->len + len > m->fail_after)
		return chom_err_set(e, CHOM_EXIT_FAIL, "mem: disk full");
	if (m->len + len > m->cap) {
		size_t cap = (m->len + len) * 2;
		char *nb = realloc(m->buf, cap);

		assert_non_null(nb);
		m->buf = nb;
		m->cap = cap;
	}
	memcpy(m->buf + m->len, buf, len);
	m->len += len;
	return 0;
}

static int
mem_close(struct chom_sink *s, struct chom_err *e)
{
	((struct mem *)s)->closes++;
	return 0;
}

static void
mem_free(struct chom_sink *s)
{
	(void)s;
}

struct fixture {
	char dir[64];
	char tree[128]; /* DIR/tree */
	struct mem m;
	struct lines {
		char text[4096];
		int n;
	} warnings;
};

static void
on_warning(void *ctx, const char *line)
{
	struct lines *l = ctx;
	size_t len = strlen(l->text);

	snprintf(l->text + len, sizeof(l->text) - len, "%s\n", line);
	l->n++;
}

static void
set_mtime(const char *path, time_t t)
{
	struct timespec ts[2] = { { t, 0 }, { t, 0 } };

	assert_int_equal(utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW), 0);
}

static int
setup(void **state)
{
	struct fixture *fx = TU_FIXTURE_NEW(struct fixture, dir, "tarball");
	char p[PATH_MAX];

	if (!fx)
		return -1;
	snprintf(fx->tree, sizeof(fx->tree), "%s/tree", fx->dir);
	fx->m.s = (struct chom_sink){ mem_write, mem_close, mem_free, NULL };
	if (mkdir(fx->tree, 0750) < 0)
		return -1;
	snprintf(p, sizeof(p), "%s/a.txt", fx->tree);
	tu_write(p, "hello, tar\n");
	chmod(p, 0640);
	set_mtime(p, 1600000000);
	snprintf(p, sizeof(p), "%s/sub", fx->tree);
	if (mkdir(p, 0700) < 0)
		return -1;
	snprintf(p, sizeof(p), "%s/sub/b.bin", fx->tree);
	{
		FILE *f = fopen(p, "w");
		int i;

		if (!f)
			return -1;
		/* 200 KiB with every byte value: more than one read. */
		for (i = 0; i < 200 * 1024; i++)
			fputc(i * 7 % 256, f);
		fclose(f);
	}
	chmod(p, 0755);
	snprintf(p, sizeof(p), "%s/link", fx->tree);
	if (symlink("a.txt", p) < 0)
		return -1;
	set_mtime(p, 1500000000);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;

	free(fx->m.buf);
	return tu_fixture_free(fx, fx->dir);
}

/* One entry read back. */
struct got {
	char name[PATH_MAX];
	int type;
	mode_t perm;
	time_t mtime;
	char link[PATH_MAX];
	char *data;
	size_t size;
};

/* Reads the tar in fx->m with libarchive; returns the entry count. */
static size_t
read_back(struct fixture *fx, struct got *g, size_t max)
{
	struct archive *a = archive_read_new();
	struct archive_entry *ent;
	size_t n = 0;
	int r;

	assert_non_null(a);
	assert_int_equal(archive_read_support_format_tar(a), ARCHIVE_OK);
	if (archive_read_open_memory(a, fx->m.buf, fx->m.len) != ARCHIVE_OK)
		TU_FAILF("not a tar: %s", archive_error_string(a));
	while ((r = archive_read_next_header(a, &ent)) == ARCHIVE_OK) {
		struct got *x = &g[n];
		la_int64_t size = archive_entry_size(ent);

		assert_true(n < max);
		snprintf(x->name, sizeof(x->name), "%s",
			 archive_entry_pathname(ent));
		x->type = (int)archive_entry_filetype(ent);
		x->perm = archive_entry_perm(ent);
		x->mtime = archive_entry_mtime(ent);
		snprintf(x->link, sizeof(x->link), "%s",
			 archive_entry_symlink(ent) ? archive_entry_symlink(ent)
						    : "");
		x->size = (size_t)size;
		x->data = NULL;
		if (size > 0) {
			x->data = malloc((size_t)size);
			assert_non_null(x->data);
			assert_int_equal(
			    archive_read_data(a, x->data, (size_t)size), size);
		}
		n++;
	}
	if (r != ARCHIVE_EOF)
		TU_FAILF("reading the tar: %s", archive_error_string(a));
	archive_read_free(a);
	return n;
}

static void
free_got(struct got *g, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(g[i].data);
}

static struct got *
find(struct got *g, size_t n, const char *name)
{
	size_t i;

	size_t len = strlen(name);

	/* A directory's name may end in '/', as tar(1) writes it. */
	for (i = 0; i < n; i++)
		if (!strncmp(g[i].name, name, len) &&
		    (!g[i].name[len] || !strcmp(g[i].name + len, "/")))
			return &g[i];
	return NULL;
}

static void
test_tree(void **state)
{
	struct fixture *fx = *state;
	const char *paths[] = { fx->tree };
	struct chom_err e = { 0 };
	unsigned long long entries = 0;
	struct got g[16], *x;
	char name[PATH_MAX];
	const char *rel = fx->tree + 1; /* without the leading '/' */
	size_t n, i;

	if (chom_tarball(paths, 1, &fx->m.s, on_warning, &fx->warnings,
			 &entries, NULL, &e) != 0)
		TU_FAILF("tarball: %s", e.msg);
	assert_int_equal(fx->m.closes, 0); /* the caller closes */
	assert_int_equal(entries, 5);
	assert_int_equal(fx->warnings.n, 0);
	n = read_back(fx, g, 16);
	assert_int_equal(n, 5);
	for (i = 0; i < n; i++)
		if (g[i].name[0] == '/')
			TU_FAILF("absolute name in the tar: %s", g[i].name);

	x = find(g, n, rel);
	if (!x)
		TU_FAILF("no entry %s (first: %s)", rel, g[0].name);
	assert_int_equal(x->type, AE_IFDIR);
	assert_int_equal(x->perm, 0750);

	snprintf(name, sizeof(name), "%s/a.txt", rel);
	x = find(g, n, name);
	assert_non_null(x);
	assert_int_equal(x->type, AE_IFREG);
	assert_int_equal(x->size, 11);
	assert_memory_equal(x->data, "hello, tar\n", 11);
	assert_int_equal(x->perm, 0640);
	assert_int_equal(x->mtime, 1600000000);

	snprintf(name, sizeof(name), "%s/sub", rel);
	x = find(g, n, name);
	assert_non_null(x);
	assert_int_equal(x->type, AE_IFDIR);
	assert_int_equal(x->perm, 0700);

	snprintf(name, sizeof(name), "%s/sub/b.bin", rel);
	x = find(g, n, name);
	assert_non_null(x);
	assert_int_equal(x->type, AE_IFREG);
	assert_int_equal(x->perm, 0755);
	assert_int_equal(x->size, 200 * 1024);
	for (i = 0; i < 200 * 1024; i++)
		if ((unsigned char)x->data[i] != i * 7 % 256)
			TU_FAILF("b.bin differs at byte %zu", i);

	snprintf(name, sizeof(name), "%s/link", rel);
	x = find(g, n, name);
	assert_non_null(x);
	assert_int_equal(x->type, AE_IFLNK);
	assert_string_equal(x->link, "a.txt");
	assert_int_equal(x->size, 0);
	assert_int_equal(x->mtime, 1500000000);
	free_got(g, n);
}

/* Several paths, one of them a single file, into one archive. */
static void
test_several_paths(void **state)
{
	struct fixture *fx = *state;
	char a[PATH_MAX], sub[PATH_MAX];
	const char *paths[] = { a, sub };
	struct chom_err e = { 0 };
	unsigned long long entries = 0;
	struct got g[16];
	size_t n;

	snprintf(a, sizeof(a), "%s/a.txt", fx->tree);
	snprintf(sub, sizeof(sub), "%s/sub", fx->tree);
	if (chom_tarball(paths, 2, &fx->m.s, on_warning, &fx->warnings,
			 &entries, NULL, &e) != 0)
		TU_FAILF("tarball: %s", e.msg);
	assert_int_equal(entries, 3);
	n = read_back(fx, g, 16);
	assert_int_equal(n, 3);
	assert_non_null(find(g, n, a + 1));
	assert_non_null(find(g, n, sub + 1));
	free_got(g, n);
}

/* A path that is not there is told to on_warning, by name, whatever
 * else happens. */
static void
test_missing_path_reported(void **state)
{
	struct fixture *fx = *state;
	char missing[PATH_MAX];
	const char *paths[] = { missing };
	struct chom_err e = { 0 };
	unsigned long long entries = 0;

	snprintf(missing, sizeof(missing), "%s/not-there", fx->dir);
	chom_tarball(paths, 1, &fx->m.s, on_warning, &fx->warnings, &entries,
		     NULL, &e);
	if (!strstr(fx->warnings.text, "not-there") &&
	    !strstr(e.msg, "not-there"))
		TU_FAILF("nothing names the missing path (warnings: '%s', "
			 "error: '%s')",
			 fx->warnings.text, e.msg);
	assert_int_equal(entries, 0);
}

/*
 * And it is an error, not an empty archive that a backup would store as
 * a success. (man/chom-backup.1 documents the opposite: a PATH that does
 * not exist is reported and left out, the backup goes on.)
 */
static void
test_missing_path_fails(void **state)
{
	struct fixture *fx = *state;
	char missing[PATH_MAX];
	const char *paths[] = { missing };
	struct chom_err e = { 0 };
	unsigned long long entries = 0;

	snprintf(missing, sizeof(missing), "%s/not-there", fx->dir);
	if (chom_tarball(paths, 1, &fx->m.s, on_warning, &fx->warnings,
			 &entries, NULL, &e) != -1)
		TU_FAILF("a missing path archived with success (%llu "
			 "entries, %zu bytes; warnings: %s)",
			 entries, fx->m.len, fx->warnings.text);
	assert_int_equal(e.code, CHOM_EXIT_FAIL);
	if (!strstr(e.msg, "not-there"))
		TU_FAILF("the message does not name the path: %s", e.msg);
}

/* Also when it comes after a good one. */
static void
test_missing_second_path_fails(void **state)
{
	struct fixture *fx = *state;
	char missing[PATH_MAX];
	const char *paths[] = { fx->tree, missing };
	struct chom_err e = { 0 };
	unsigned long long entries = 0;

	snprintf(missing, sizeof(missing), "%s/not-there", fx->dir);
	if (chom_tarball(paths, 2, &fx->m.s, on_warning, &fx->warnings,
			 &entries, NULL, &e) != -1)
		TU_FAILF("a missing second path archived with success (%llu "
			 "entries; warnings: %s)",
			 entries, fx->warnings.text);
	assert_int_equal(e.code, CHOM_EXIT_FAIL);
}

static void
test_failing_sink(void **state)
{
	struct fixture *fx = *state;
	const char *paths[] = { fx->tree };
	struct chom_err e = { 0 };
	unsigned long long entries = 0;

	fx->m.fail_after = 10000;
	assert_int_equal(chom_tarball(paths, 1, &fx->m.s, on_warning,
				      &fx->warnings, &entries, NULL, &e),
			 -1);
	assert_int_equal(e.code, CHOM_EXIT_FAIL);
	assert_non_null(strstr(e.msg, "disk full"));
}

static void
test_stop_flag(void **state)
{
	struct fixture *fx = *state;
	const char *paths[] = { fx->tree };
	struct chom_err e = { 0 };
	unsigned long long entries = 0;
	volatile sig_atomic_t stop = SIGINT;

	assert_int_equal(chom_tarball(paths, 1, &fx->m.s, on_warning,
				      &fx->warnings, &entries, &stop, &e),
			 -1);
	assert_int_equal(e.code, 128 + SIGINT);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_tree),
		T(test_several_paths),
		T(test_missing_path_reported),
		T(test_missing_path_fails),
		T(test_missing_second_path_fails),
		T(test_failing_sink),
		T(test_stop_flag),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
