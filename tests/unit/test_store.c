/*
 * Unit tests for lib/store.c, the file:// backend: URLs it refuses, the
 * per-host lock fought over with a forked child, a point begun, written
 * part by part and committed with its manifest, parts dropped unclosed,
 * aborted points, listing, removal (manifest first, watched with
 * inotify) and point ids.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exitcode.h"
#include "store.h"

#include "testutil.h"

struct fixture {
	char dir[64];
	char url[160];  /* file://DIR/store */
	char root[128]; /* DIR/store */
	pid_t child;
	struct chom_store *s;
};

static int
setup(void **state)
{
	struct fixture *fx = TU_FIXTURE_NEW(struct fixture, dir, "store");

	if (!fx)
		return -1;
	snprintf(fx->root, sizeof(fx->root), "%s/store", fx->dir);
	snprintf(fx->url, sizeof(fx->url), "file://%s", fx->root);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;

	tu_reap(&fx->child);
	chom_store_free(fx->s);
	return tu_fixture_free(fx, fx->dir);
}

static void
open_store(struct fixture *fx)
{
	struct chom_err e = { 0 };

	if (chom_store_open(fx->url, &fx->s, &e) != 0)
		TU_FAILF("open %s: %s", fx->url, e.msg);
	assert_non_null(fx->s);
}

static int
is_dir(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int
exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

/* Writes text into a new part and closes it. */
static void
put_part(struct chom_store *s, const char *name, const char *text)
{
	struct chom_err e = { 0 };
	struct chom_sink *p = chom_store_part(s, name, &e);

	if (!p)
		TU_FAILF("part %s: %s", name, e.msg);
	assert_int_equal(chom_sink_write(p, text, strlen(text), &e), 0);
	if (chom_sink_close(p, &e) != 0)
		TU_FAILF("close %s: %s", name, e.msg);
	chom_sink_free(p);
}

/* A point made by hand: DIR/store/HOST/ID, with a manifest if complete. */
static void
make_point(struct fixture *fx, const char *host, const char *id, int complete)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", fx->root, host);
	mkdir(fx->root, 0700);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/%s/%s", fx->root, host, id);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/%s/%s/db.sql.gz.age", fx->root, host,
		 id);
	tu_write(path, "part");
	if (complete) {
		snprintf(path, sizeof(path), "%s/%s/%s/manifest.json", fx->root,
			 host, id);
		tu_write(path, "{}\n");
	}
}

static void
test_open_refuses_other_schemes(void **state)
{
	static const char *const bad[] = {
		"s3://",         "file://relative/path", "file:/x",
		"/plain/path",   "http://example.com/",  "",
		"FILE:///upper", "s3:///prefix",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct chom_store *s = (struct chom_store *)1;
		struct chom_err e = { 0 };

		if (chom_store_open(bad[i], &s, &e) != -1)
			TU_FAILF("'%s' was taken", bad[i]);
		assert_int_equal(e.code, CHOM_EXIT_USAGE);
		assert_true(strlen(e.msg) > 0);
		assert_null(s);
	}
}

/* An S3 target without credentials: a usage error that says so. */
static void
test_open_s3_needs_credentials(void **state)
{
	char home[128];
	struct chom_store *s = NULL;
	struct chom_err e = { 0 };
	struct fixture *fx = *state;

	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	unsetenv("AWS_PROFILE");
	unsetenv("AWS_SHARED_CREDENTIALS_FILE");
	snprintf(home, sizeof(home), "%s", fx->dir);
	setenv("HOME", home, 1);
	assert_int_equal(chom_store_open("s3://bucket/chom", &s, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_USAGE);
	assert_non_null(strstr(e.msg, "no credentials"));
	assert_null(s);
	/* With them, it opens: nothing is asked of the server yet. */
	setenv("AWS_ACCESS_KEY_ID", "AKIDTEST", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "secret", 1);
	assert_int_equal(chom_store_open("s3://bucket/chom/", &s, &e), 0);
	assert_string_equal(chom_store_url(s), "s3://bucket/chom/");
	chom_store_free(s);
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
}

static void
test_open_file_url(void **state)
{
	struct fixture *fx = *state;

	open_store(fx);
	assert_string_equal(chom_store_url(fx->s), fx->url);
	/* Opening creates nothing. */
	assert_false(exists(fx->root));
}

static int
child_lock(void *arg)
{
	struct fixture *fx = arg;
	struct chom_store *s;
	struct chom_err e;

	if (chom_store_open(fx->url, &s, &e) != 0 ||
	    chom_store_lock(s, "web1", &e) != 0)
		return 1;
	return 0; /* s held open while the child pauses */
}

static void
test_lock_busy(void **state)
{
	struct fixture *fx = *state;
	struct chom_store *other = NULL;
	struct chom_err e = { 0 };

	tu_spawn(&fx->child, child_lock, fx);
	open_store(fx);
	assert_int_equal(chom_store_lock(fx->s, "web1", &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_BUSY);
	assert_non_null(strstr(e.msg, "web1"));
	/* Another host of the same store is not held. */
	assert_int_equal(chom_store_open(fx->url, &other, &e), 0);
	if (chom_store_lock(other, "web2", &e) != 0)
		TU_FAILF("web2: %s", e.msg);
	chom_store_free(other);
	/* Once the holder is gone, the lock is ours. */
	tu_reap(&fx->child);
	if (chom_store_lock(fx->s, "web1", &e) != 0)
		TU_FAILF("after the holder died: %s", e.msg);
}

static void
test_lock_released_by_free(void **state)
{
	struct fixture *fx = *state;
	struct chom_store *a = NULL, *b = NULL;
	struct chom_err e = { 0 };

	assert_int_equal(chom_store_open(fx->url, &a, &e), 0);
	assert_int_equal(chom_store_lock(a, "web1", &e), 0);
	assert_int_equal(chom_store_open(fx->url, &b, &e), 0);
	assert_int_equal(chom_store_lock(b, "web1", &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_BUSY);
	chom_store_free(a);
	if (chom_store_lock(b, "web1", &e) != 0)
		TU_FAILF("after free: %s", e.msg);
	chom_store_free(b);
}

static void
test_begin_part_commit(void **state)
{
	struct fixture *fx = *state;
	const char *point = "20240615T120000Z";
	char pdir[256], path[PATH_MAX], buf[256];
	struct chom_err e = { 0 };
	struct chom_sink *p;
	struct stat st;

	open_store(fx);
	if (chom_store_begin(fx->s, "web1", point, &e) != 0)
		TU_FAILF("begin: %s", e.msg);
	snprintf(pdir, sizeof(pdir), "%s/web1/%s", fx->root, point);
	assert_true(is_dir(pdir));
	/* Before commit the point does not exist. */
	snprintf(path, sizeof(path), "%s/manifest.json", pdir);
	assert_false(exists(path));

	/* A part written in pieces: invisible under its name until closed. */
	p = chom_store_part(fx->s, "db.sql.gz.age", &e);
	if (!p)
		TU_FAILF("part: %s", e.msg);
	assert_int_equal(chom_sink_write(p, "hello ", 6, &e), 0);
	assert_int_equal(chom_sink_write(p, "", 0, &e), 0);
	assert_int_equal(chom_sink_write(p, "world\n", 6, &e), 0);
	snprintf(path, sizeof(path), "%s/db.sql.gz.age", pdir);
	assert_false(exists(path));
	assert_int_equal(chom_sink_close(p, &e), 0);
	chom_sink_free(p);
	tu_read(path, buf, sizeof(buf));
	assert_string_equal(buf, "hello world\n");
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 077, 0);

	put_part(fx->s, "files.tar.gz.age", "files");
	put_part(fx->s, "sysinfo.txt.age", "");
	if (chom_store_commit(fx->s, "{\"format\": 1}\n", &e) != 0)
		TU_FAILF("commit: %s", e.msg);
	snprintf(path, sizeof(path), "%s/manifest.json", pdir);
	tu_read(path, buf, sizeof(buf));
	assert_string_equal(buf, "{\"format\": 1}\n");
	snprintf(path, sizeof(path), "%s/sysinfo.txt.age", pdir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 0);
	/* The parts and the manifest, and no temporary file. */
	assert_int_equal(tu_count_names(pdir, "*"), 4);
	assert_int_equal(tu_count_names(pdir, ".*"), 0);
	assert_int_equal(tu_count_names(pdir, "*tmp*"), 0);

	/* After commit, abort is a no-op: the committed point stays. */
	chom_store_abort(fx->s);
	assert_true(exists(path));
}

/*
 * A part of 37 MiB and a bit, written in pieces of odd sizes across the
 * 8 MiB windows it is flushed and dropped from the cache by: read back whole.
 */
static void
test_large_part_written_behind(void **state)
{
	struct fixture *fx = *state;
	const size_t total = (37u << 20) + 12345, piece = 1000003;
	unsigned char *buf = malloc(total), *back = malloc(total);
	char path[PATH_MAX];
	struct chom_err e = { 0 };
	struct chom_sink *p;
	size_t off, n;
	FILE *f;

	assert_non_null(buf);
	assert_non_null(back);
	for (off = 0; off < total; off++)
		buf[off] = (unsigned char)(off * 2654435761u >> 13);
	open_store(fx);
	if (chom_store_begin(fx->s, "web1", "20240615T120000Z", &e) != 0)
		TU_FAILF("begin: %s", e.msg);
	if (!(p = chom_store_part(fx->s, "db.sql.gz.age", &e)))
		TU_FAILF("part: %s", e.msg);
	for (off = 0; off < total; off += n) {
		n = total - off < piece ? total - off : piece;
		assert_int_equal(chom_sink_write(p, buf + off, n, &e), 0);
	}
	if (chom_sink_close(p, &e) != 0)
		TU_FAILF("close: %s", e.msg);
	chom_sink_free(p);
	snprintf(path, sizeof(path), "%s/web1/20240615T120000Z/db.sql.gz.age",
		 fx->root);
	assert_non_null(f = fopen(path, "rb"));
	assert_int_equal(fread(back, 1, total, f), total);
	assert_int_equal(fgetc(f), EOF);
	fclose(f);
	assert_memory_equal(back, buf, total);
	free(buf);
	free(back);
}

static void
test_begin_existing_point(void **state)
{
	struct fixture *fx = *state;
	struct chom_err e = { 0 };
	char path[PATH_MAX];

	make_point(fx, "web1", "20240615T120000Z", 1);
	open_store(fx);
	assert_int_equal(
	    chom_store_begin(fx->s, "web1", "20240615T120000Z", &e), -2);
	assert_int_equal(e.code, CHOM_EXIT_FAIL);
	/* Aborting the failed begin must not touch the existing point. */
	chom_store_abort(fx->s);
	snprintf(path, sizeof(path), "%s/web1/20240615T120000Z/manifest.json",
		 fx->root);
	assert_true(exists(path));
}

static void
test_part_freed_unclosed_leaves_nothing(void **state)
{
	struct fixture *fx = *state;
	char pdir[256], big[65536];
	struct chom_err e = { 0 };
	struct chom_sink *p;
	int i;

	open_store(fx);
	assert_int_equal(
	    chom_store_begin(fx->s, "web1", "20240615T120000Z", &e), 0);
	snprintf(pdir, sizeof(pdir), "%s/web1/20240615T120000Z", fx->root);
	p = chom_store_part(fx->s, "db.sql.gz.age", &e);
	assert_non_null(p);
	memset(big, 'x', sizeof(big));
	for (i = 0; i < 16; i++)
		assert_int_equal(chom_sink_write(p, big, sizeof(big), &e), 0);
	/* Something is being written... */
	assert_int_equal(tu_count_names(pdir, ".*"), 1);
	chom_sink_free(p);
	/* ...and nothing is left of it. */
	assert_int_equal(tu_count_names(pdir, "*"), 0);
	assert_int_equal(tu_count_names(pdir, ".*"), 0);
}

static void
test_abort_removes_point(void **state)
{
	struct fixture *fx = *state;
	char pdir[256], hdir[PATH_MAX];
	struct chom_err e = { 0 };
	struct chom_sink *p;

	make_point(fx, "web1", "20240614T120000Z", 1);
	open_store(fx);
	assert_int_equal(chom_store_lock(fx->s, "web1", &e), 0);
	assert_int_equal(
	    chom_store_begin(fx->s, "web1", "20240615T120000Z", &e), 0);
	put_part(fx->s, "db.sql.gz.age", "one");
	p = chom_store_part(fx->s, "files.tar.gz.age", &e);
	assert_non_null(p);
	assert_int_equal(chom_sink_write(p, "two", 3, &e), 0);
	chom_sink_free(p);
	chom_store_abort(fx->s);
	snprintf(pdir, sizeof(pdir), "%s/web1/20240615T120000Z", fx->root);
	assert_false(exists(pdir));
	/* The other point is untouched. */
	snprintf(hdir, sizeof(hdir), "%s/web1", fx->root);
	assert_int_equal(tu_count_names(hdir, "2*"), 1);
	assert_true(is_dir(hdir));
}

static void
test_list(void **state)
{
	struct fixture *fx = *state;
	struct chom_point *p = NULL;
	struct chom_err e = { 0 };
	char path[PATH_MAX];
	size_t n = 99;

	open_store(fx);
	/* No host directory yet: no points, no error. */
	assert_int_equal(chom_store_list(fx->s, "web1", &p, &n, &e), 0);
	assert_int_equal(n, 0);
	free(p);
	p = NULL;

	make_point(fx, "web1", "20240101T000000Z", 1);
	make_point(fx, "web1", "20240615T120000Z", 1);
	make_point(fx, "web1", "20240615T130000Z", 0);
	make_point(fx, "web1", "20231231T235959Z", 1);
	make_point(fx, "web2", "20250101T000000Z", 1);
	/* Not points: other names, a file with a point's name. */
	snprintf(path, sizeof(path), "%s/web1/notes", fx->root);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/web1/2024", fx->root);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/web1/.20240102T000000Z.tmp", fx->root);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/web1/.lock", fx->root);
	tu_write(path, "");

	assert_int_equal(chom_store_list(fx->s, "web1", &p, &n, &e), 0);
	assert_int_equal(n, 4);
	assert_string_equal(p[0].id, "20240615T130000Z");
	assert_false(p[0].complete);
	assert_string_equal(p[1].id, "20240615T120000Z");
	assert_true(p[1].complete);
	assert_string_equal(p[2].id, "20240101T000000Z");
	assert_true(p[2].complete);
	assert_string_equal(p[3].id, "20231231T235959Z");
	assert_true(p[3].complete);
	assert_int_equal(p[1].when, 1718452800);
	assert_int_equal(p[3].when, 1704067199);
	free(p);
}

/* Removal unlinks the manifest before anything else, so a removal cut
 * short never leaves a "complete" point with missing parts. inotify
 * tells the order of the deletions in the point's directory. */
static void
test_remove_manifest_first(void **state)
{
	struct fixture *fx = *state;
	char pdir[256], buf[4096]
	    __attribute__((aligned(__alignof__(struct inotify_event))));
	struct chom_err e = { 0 };
	char first[NAME_MAX + 1] = "";
	int fd, wd, deletions = 0;
	ssize_t len;
	char *q;

	make_point(fx, "web1", "20240615T120000Z", 1);
	make_point(fx, "web1", "20240614T120000Z", 1);
	snprintf(pdir, sizeof(pdir), "%s/web1/20240615T120000Z", fx->root);
	snprintf(buf, sizeof(buf), "%s/a-part", pdir);
	tu_write(buf, "x");
	snprintf(buf, sizeof(buf), "%s/zz-part", pdir);
	tu_write(buf, "x");
	fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	assert_true(fd >= 0);
	wd = inotify_add_watch(fd, pdir, IN_DELETE);
	assert_true(wd >= 0);

	open_store(fx);
	if (chom_store_remove(fx->s, "web1", "20240615T120000Z", &e) != 0)
		TU_FAILF("remove: %s", e.msg);
	assert_false(exists(pdir));
	len = read(fd, buf, sizeof(buf));
	close(fd);
	assert_true(len > 0);
	for (q = buf; q < buf + len;) {
		struct inotify_event *ev = (struct inotify_event *)q;

		if ((ev->mask & IN_DELETE) && ev->len) {
			if (!deletions++)
				snprintf(first, sizeof(first), "%s", ev->name);
		}
		q += sizeof(*ev) + ev->len;
	}
	assert_int_equal(deletions, 4);
	assert_string_equal(first, "manifest.json");

	/* The other point is untouched; removing a missing point is fine
	 * or an error, but never removes anything else. */
	snprintf(pdir, sizeof(pdir), "%s/web1/20240614T120000Z/manifest.json",
		 fx->root);
	assert_true(exists(pdir));
	chom_store_remove(fx->s, "web1", "20240101T000000Z", &e);
	assert_true(exists(pdir));
}

static void
test_remove_incomplete(void **state)
{
	struct fixture *fx = *state;
	struct chom_err e = { 0 };
	char pdir[256];

	make_point(fx, "web1", "20240615T120000Z", 0);
	open_store(fx);
	if (chom_store_remove(fx->s, "web1", "20240615T120000Z", &e) != 0)
		TU_FAILF("remove: %s", e.msg);
	snprintf(pdir, sizeof(pdir), "%s/web1/20240615T120000Z", fx->root);
	assert_false(exists(pdir));
}

static void
test_point_id_round_trip(void **state)
{
	static const struct {
		time_t t;
		const char *id;
	} v[] = {
		{ 0, "19700101T000000Z" },
		{ 1700000000, "20231114T221320Z" },
		{ 1709208000, "20240229T120000Z" }, /* leap day */
		{ 1704067199, "20231231T235959Z" },
		{ 4102444800, "21000101T000000Z" },
	};
	char id[CHOM_POINT_LEN + 1];
	char *old = getenv("TZ") ? strdup(getenv("TZ")) : NULL;
	size_t i;

	/* UTC whatever the local zone. */
	setenv("TZ", "Asia/Kolkata", 1);
	tzset();
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		time_t t = -1;

		chom_point_id(v[i].t, id);
		assert_string_equal(id, v[i].id);
		assert_int_equal(strlen(id), CHOM_POINT_LEN);
		assert_int_equal(chom_point_time(v[i].id, &t), 0);
		assert_int_equal(t, v[i].t);
	}
	if (old) {
		setenv("TZ", old, 1);
		free(old);
	} else {
		unsetenv("TZ");
	}
	tzset();
}

static void
test_point_time_rejects(void **state)
{
	static const char *const bad[] = {
		"",
		"2024",
		"20240615T120000",
		"20240615T120000Z0",
		"20240615 120000Z",
		"20240615T120000z0",
		"2024-06-15T12:00",
		"20241315T120000Z",
		"notapointatall!!",
		".lock",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		time_t t = 0;

		if (chom_point_time(bad[i], &t) != -1)
			TU_FAILF("'%s' taken as a point id", bad[i]);
	}
}

/* An id is a point id only if it is what chom_point_id() would write for
 * its time: a directory named for 30 February is no point of ours, and
 * must not be listed (and so pruned) as 1 March. */
static void
test_point_time_canonical(void **state)
{
	static const char *const bad[] = {
		"20240230T120000Z",
		"20230229T120000Z",
		"20240615T250000Z",
		"20240615T126000Z",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		time_t t = 0;

		if (chom_point_time(bad[i], &t) != -1) {
			char back[CHOM_POINT_LEN + 1];

			chom_point_id(t, back);
			TU_FAILF("'%s' taken as a point id (of %s)", bad[i],
				 back);
		}
	}
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_open_refuses_other_schemes),
		T(test_open_s3_needs_credentials),
		T(test_open_file_url),
		T(test_lock_busy),
		T(test_lock_released_by_free),
		T(test_begin_part_commit),
		T(test_large_part_written_behind),
		T(test_begin_existing_point),
		T(test_part_freed_unclosed_leaves_nothing),
		T(test_abort_removes_point),
		T(test_list),
		T(test_remove_manifest_first),
		T(test_remove_incomplete),
		T(test_point_id_round_trip),
		T(test_point_time_rejects),
		T(test_point_time_canonical),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
