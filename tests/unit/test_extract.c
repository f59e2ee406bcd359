/*
 * Unit tests for lib/extract.c: the name and symlink checks, and whole
 * extractions of small tar.gz archives built here with libarchive.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exitcode.h"
#include "extract.h"
#include "sha256.h"

#include "testutil.h"

struct fixture {
	char root[64];
	char out[96]; /* ROOT/out: the extraction directory */
	char tgz[96]; /* ROOT/a.tar.gz */
	char cwd[PATH_MAX];
};

static int
setup(void **state)
{
	struct fixture *fx = TU_FIXTURE_NEW(struct fixture, root, "extract");

	if (!fx)
		return -1;
	snprintf(fx->out, sizeof(fx->out), "%s/out", fx->root);
	snprintf(fx->tgz, sizeof(fx->tgz), "%s/a.tar.gz", fx->root);
	if (mkdir(fx->out, 0755) < 0 || !getcwd(fx->cwd, sizeof(fx->cwd)))
		return -1;
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;

	return tu_fixture_free(fx, fx->root);
}

struct progress_seen {
	int calls;
	unsigned long long entries;
};

static void
on_progress(void *ctx, const struct chom_extract_stats *st)
{
	struct progress_seen *p = ctx;

	p->calls++;
	p->entries = st->entries;
}

/* Extracts fx->tgz into fx->out; the cwd must be the same after. */
static int
extract(struct fixture *fx, struct chom_extract_opts *o,
	struct chom_extract_stats *st, struct chom_err *e)
{
	char cwd[PATH_MAX];
	int fd = open(fx->tgz, O_RDONLY), rc;

	assert_true(fd >= 0);
	o->in_fd = fd;
	o->dir = fx->out;
	rc = chom_extract(o, st, e);
	close(fd);
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_string_equal(cwd, fx->cwd);
	return rc;
}

/* Builds an archive of ents, expects a refusal naming `name` and `why`. */
static void
expect_refused(struct fixture *fx, const struct tu_ent *ents, size_t n,
	       const char *name, const char *why)
{
	struct chom_extract_opts o = { 0 };
	struct chom_extract_stats st;
	struct chom_err e = { 0 };

	tu_make_tgz(fx->tgz, ents, n);
	if (extract(fx, &o, &st, &e) != -1)
		TU_FAILF("archive with '%s' was extracted", name);
	assert_int_equal(e.code, CHOM_EXIT_FAIL);
	if (!strstr(e.msg, name) || !strstr(e.msg, why))
		TU_FAILF("\"%s\" should name '%s' and say '%s'", e.msg, name,
			 why);
}

static void
test_check_name_accepted(void **state)
{
	static const struct {
		const char *name, *norm;
	} ok[] = {
		{ "./a//b/", "a/b" },
		{ "a", "a" },
		{ "a/b/c.txt", "a/b/c.txt" },
		{ "a/./b", "a/b" },
		{ "./", "" },
		{ ".", "" },
		{ "..a", "..a" },
		{ "a..", "a.." },
		{ "...", "..." },
		{ ".hidden/x", ".hidden/x" },
		{ "caf\xc3\xa9", "caf\xc3\xa9" }, /* "café" */
		{ "\xe2\x82\xac/\xf0\x9f\x98\x80",
		  "\xe2\x82\xac/\xf0\x9f\x98\x80" },
		{ "a b/c\\d", "a b/c\\d" },
	};
	char norm[256];
	const char *why;
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		why = NULL;
		if (chom_extract_check_name(ok[i].name, norm, sizeof(norm),
					    &why) != 0)
			TU_FAILF("refused \"%s\": %s", ok[i].name, why);
		assert_string_equal(norm, ok[i].norm);
	}
}

static void
test_check_name_refused(void **state)
{
	static const struct {
		const char *name, *why;
	} bad[] = {
		{ "", "empty" },
		{ "/abs", "absolute" },
		{ "/", "absolute" },
		{ "a/../b", "'..'" },
		{ "..", "'..'" },
		{ "../a", "'..'" },
		{ "a/..", "'..'" },
		{ "a/../", "'..'" },
		{ "a\nb", "control character" },
		{ "a\tb", "control character" },
		{ "a\rb", "control character" },
		{ "a\x7f", "control character" },
		{ "\x1b[31m", "control character" },
		{ "\xff", "UTF-8" },
		{ "a/\xff/b", "UTF-8" },
		{ "\xc0\xaf", "UTF-8" },         /* overlong '/' */
		{ "\xe0\x80\xaf", "UTF-8" },     /* overlong '/' again */
		{ "\xf0\x80\x80\xaf", "UTF-8" }, /* and again */
		{ "\xed\xa0\x80", "UTF-8" },     /* a surrogate */
		{ "\xf4\x90\x80\x80", "UTF-8" }, /* beyond U+10FFFF */
		{ "caf\xe9", "UTF-8" },          /* Latin-1 */
		{ "\xc3", "UTF-8" },             /* cut short */
		{ "\x80", "UTF-8" },             /* a lone continuation */
	};
	char norm[256];
	const char *why;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		if (chom_extract_check_name(bad[i].name, norm, sizeof(norm),
					    &why) != -1)
			TU_FAILF("accepted name #%zu as \"%s\"", i, norm);
		assert_non_null(why);
		if (!strstr(why, bad[i].why))
			TU_FAILF("name #%zu: \"%s\" does not say %s", i, why,
				 bad[i].why);
	}
}

static void
test_check_name_too_long(void **state)
{
	char norm[8];
	const char *why = NULL;

	assert_int_equal(
	    chom_extract_check_name("abcdefghijkl", norm, sizeof(norm), &why),
	    -1);
	assert_non_null(why);
	assert_non_null(strstr(why, "too long"));
	assert_int_equal(
	    chom_extract_check_name("abc/def/ghi", norm, sizeof(norm), &why),
	    -1);
}

static void
test_check_symlink(void **state)
{
	static const struct {
		const char *path, *target;
		int ok;
		const char *why;
	} cases[] = {
		{ "a/l", "../x", 1, NULL },
		{ "l", "x", 1, NULL },
		{ "l", "./x", 1, NULL },
		{ "l", "x/y/", 1, NULL },
		{ "a/l", "..", 1, NULL },
		{ "a/l", "./../x", 1, NULL },
		{ "a/b/l", "../../x", 1, NULL },
		{ "a/b/l", "../c/d", 1, NULL },
		{ "l", "../x", 0, "leaves" },
		{ "l", "..", 0, "leaves" },
		{ "a/b/l", "../../../x", 0, "leaves" },
		{ "a/l", "b/../../x", 0, "after a name" },
		{ "l", "x/../y", 0, "after a name" },
		{ "l", "/etc", 0, "absolute" },
		{ "a/l", "/", 0, "absolute" },
		{ "l", "", 0, "empty" },
	};
	const char *why;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc;

		why = NULL;
		rc = chom_extract_check_symlink(cases[i].path, cases[i].target,
						&why);
		if (cases[i].ok && rc != 0)
			TU_FAILF("%s -> %s refused: %s", cases[i].path,
				 cases[i].target, why);
		if (!cases[i].ok && rc != -1)
			TU_FAILF("%s -> %s accepted", cases[i].path,
				 cases[i].target);
		if (!cases[i].ok && (!why || !strstr(why, cases[i].why)))
			TU_FAILF("%s -> %s: \"%s\" does not say %s",
				 cases[i].path, cases[i].target,
				 why ? why : "(null)", cases[i].why);
	}
}

static void
test_extract_tree(void **state)
{
	static const struct tu_ent ents[] = {
		{ "./", AE_IFDIR, 0755, NULL },
		{ "app/", AE_IFDIR, 0755, NULL },
		{ "app/hello.txt", AE_IFREG, 0644, "hello\n" },
		{ "app/bin/run", AE_IFREG, 04755, "#!/bin/sh\n" },
		{ "app/sgid", AE_IFREG, 02750, "g" },
		{ "app/link", AE_IFLNK, 0777, "hello.txt" },
		{ "app/hard", TU_HARDLINK, 0644, "app/hello.txt" },
		{ "./app//x.txt", AE_IFREG, 0600, "normalised" },
	};
	struct fixture *fx = *state;
	struct chom_extract_opts o = { 0 };
	struct chom_extract_stats st;
	struct chom_err e = { 0 };
	struct progress_seen seen = { 0 };
	struct stat sb, sb2;
	char p[256], buf[256], want[CHOM_SHA256_HEXLEN + 1],
	    got[CHOM_SHA256_HEXLEN + 1], *bytes;
	struct chom_sha256 *h = chom_sha256_new(), *h2 = chom_sha256_new();
	int fd;

	assert_non_null(h);
	assert_non_null(h2);
	tu_make_tgz(fx->tgz, ents, sizeof(ents) / sizeof(ents[0]));
	o.hash = h;
	o.progress = on_progress;
	o.progress_ctx = &seen;
	if (extract(fx, &o, &st, &e) != 0)
		TU_FAILF("extract failed: %s", e.msg);

	snprintf(p, sizeof(p), "%s/app/hello.txt", fx->out);
	tu_read(p, buf, sizeof(buf));
	assert_string_equal(buf, "hello\n");
	assert_int_equal(lstat(p, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0644);
	/* Times are restored, owners are not. */
	assert_int_equal(sb.st_mtime, 1700000000);
	assert_int_equal(sb.st_uid, geteuid());
	assert_int_equal(sb.st_gid, getegid());
	snprintf(p, sizeof(p), "%s/app/x.txt", fx->out);
	tu_read(p, buf, sizeof(buf));
	assert_string_equal(buf, "normalised");
	/* setuid and setgid are stripped, the rest of the mode is kept. */
	snprintf(p, sizeof(p), "%s/app/bin/run", fx->out);
	tu_read(p, buf, sizeof(buf));
	assert_string_equal(buf, "#!/bin/sh\n");
	assert_int_equal(lstat(p, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0755);
	snprintf(p, sizeof(p), "%s/app/sgid", fx->out);
	assert_int_equal(lstat(p, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0750);
	/* The symlink as it was, the hard link to the same inode. */
	snprintf(p, sizeof(p), "%s/app/link", fx->out);
	assert_int_equal(lstat(p, &sb), 0);
	assert_true(S_ISLNK(sb.st_mode));
	assert_int_equal(readlink(p, buf, sizeof(buf)), 9);
	assert_memory_equal(buf, "hello.txt", 9);
	snprintf(p, sizeof(p), "%s/app/hard", fx->out);
	assert_int_equal(lstat(p, &sb), 0);
	snprintf(p, sizeof(p), "%s/app/hello.txt", fx->out);
	assert_int_equal(lstat(p, &sb2), 0);
	assert_true(sb.st_ino == sb2.st_ino);
	/* Nothing outside the target. */
	snprintf(p, sizeof(p), "%s/app", fx->root);
	assert_int_equal(lstat(p, &sb), -1);

	/* Statistics: "./" is not an entry of the release. */
	assert_int_equal(st.entries, 7);
	assert_int_equal(st.bytes, 6 + 10 + 1 + 10);
	assert_int_equal(lstat(fx->tgz, &sb), 0);
	assert_int_equal(st.in_total, sb.st_size);
	assert_int_equal(st.in_bytes, sb.st_size);
	assert_true(seen.calls >= 1);
	assert_int_equal(seen.entries, 7);

	/* The hash is that of every byte of the artifact. */
	chom_sha256_final_hex(h, got);
	bytes = malloc((size_t)sb.st_size);
	assert_non_null(bytes);
	fd = open(fx->tgz, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, bytes, (size_t)sb.st_size), sb.st_size);
	close(fd);
	chom_sha256_update(h2, bytes, (size_t)sb.st_size);
	chom_sha256_final_hex(h2, want);
	assert_string_equal(got, want);
	free(bytes);
	chom_sha256_free(h);
	chom_sha256_free(h2);
}

static void
test_extract_hashes_trailing_bytes(void **state)
{
	static const struct tu_ent ents[] = {
		{ "f", AE_IFREG, 0644, "data" },
	};
	struct fixture *fx = *state;
	struct chom_extract_opts o = { 0 };
	struct chom_extract_stats st;
	struct chom_err e = { 0 };
	char want[CHOM_SHA256_HEXLEN + 1], got[CHOM_SHA256_HEXLEN + 1];
	struct chom_sha256 *h = chom_sha256_new();
	struct stat sb;

	assert_non_null(h);
	tu_make_tgz(fx->tgz, ents, 1);
	/* Bytes after the gzip stream are part of the artifact's digest. */
	tu_append(fx->tgz, "\n");
	o.hash = h;
	assert_int_equal(chom_sha256_file(fx->tgz, want, &e), 0);
	if (extract(fx, &o, &st, &e) != 0)
		TU_FAILF("extract failed: %s", e.msg);
	chom_sha256_final_hex(h, got);
	chom_sha256_free(h);
	assert_string_equal(got, want);
	assert_int_equal(lstat(fx->tgz, &sb), 0);
	assert_int_equal(st.in_bytes, sb.st_size);
}

static void
test_extract_dotdot_refused(void **state)
{
	static const struct tu_ent ents[] = {
		{ "ok.txt", AE_IFREG, 0644, "fine" },
		{ "../evil", AE_IFREG, 0644, "pwned" },
	};
	struct fixture *fx = *state;
	struct chom_extract_opts o = { 0 };
	struct chom_extract_stats st;
	struct chom_err e = { 0 };
	char p[160];
	struct stat sb;

	tu_make_tgz(fx->tgz, ents, 2);
	assert_int_equal(extract(fx, &o, &st, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_FAIL);
	if (!strstr(e.msg, "evil"))
		TU_FAILF("\"%s\" does not name the entry", e.msg);
	snprintf(p, sizeof(p), "%s/evil", fx->root);
	assert_int_equal(lstat(p, &sb), -1);
	assert_int_equal(errno, ENOENT);
}

static void
test_extract_absolute_refused(void **state)
{
	struct fixture *fx = *state;
	char abs[160];
	struct tu_ent ents[] = {
		{ abs, AE_IFREG, 0644, "x" },
	};
	struct stat sb;

	snprintf(abs, sizeof(abs), "%s/abs-evil", fx->root);
	expect_refused(fx, ents, 1, "abs-evil", "absolute path");
	assert_int_equal(lstat(abs, &sb), -1);
}

static void
test_extract_symlink_refusals(void **state)
{
	static const struct tu_ent absolute[] = {
		{ "etc", AE_IFLNK, 0777, "/etc" },
	};
	static const struct tu_ent leaving[] = {
		{ "a/", AE_IFDIR, 0755, NULL },
		{ "a/up", AE_IFLNK, 0777, "../../x" },
	};
	static const struct tu_ent after_name[] = {
		{ "a/l", AE_IFLNK, 0777, "b/../../x" },
	};
	struct fixture *fx = *state;

	expect_refused(fx, absolute, 1, "etc", "absolute symlink");
	expect_refused(fx, leaving, 2, "a/up", "leaves");
	expect_refused(fx, after_name, 1, "a/l", "after a name");
}

static void
test_extract_through_symlink_refused(void **state)
{
	static const struct tu_ent ents[] = {
		{ "sub/", AE_IFDIR, 0755, NULL },
		{ "d", AE_IFLNK, 0777, "sub" },
		{ "d/x", AE_IFREG, 0644, "via the link" },
	};
	struct fixture *fx = *state;
	char p[160];
	struct stat sb;

	expect_refused(fx, ents, 3, "d/x", "symlink");
	snprintf(p, sizeof(p), "%s/sub/x", fx->out);
	assert_int_equal(lstat(p, &sb), -1);
}

static void
test_extract_other_refusals(void **state)
{
	static const struct tu_ent dup[] = {
		{ "f", AE_IFREG, 0644, "one" },
		{ "./f", AE_IFREG, 0644, "two" },
	};
	static const struct tu_ent fifo[] = {
		{ "pipe", AE_IFIFO, 0644, NULL },
	};
	static const struct tu_ent hard_missing[] = {
		{ "h", TU_HARDLINK, 0644, "nowhere" },
	};
	static const struct tu_ent hard_out[] = {
		{ "h", TU_HARDLINK, 0644, "../../etc/passwd" },
	};
	static const struct tu_ent ctrl[] = {
		{ "bad\nname", AE_IFREG, 0644, "x" },
	};
	struct fixture *fx = *state;
	char p[160];
	struct stat sb;

	expect_refused(fx, dup, 2, "f", "duplicate");
	expect_refused(fx, fifo, 1, "pipe", "FIFO");
	expect_refused(fx, hard_missing, 1, "h", "hard link");
	expect_refused(fx, hard_out, 1, "h", "hard link");
	/* The control character is shown escaped. */
	expect_refused(fx, ctrl, 1, "bad\\x0aname", "control character");
	snprintf(p, sizeof(p), "%s/bad\nname", fx->out);
	assert_int_equal(lstat(p, &sb), -1);
}

static void
test_extract_repeated_directory(void **state)
{
	static const struct tu_ent ents[] = {
		{ "d/", AE_IFDIR, 0755, NULL },
		{ "d/f", AE_IFREG, 0644, "x" },
		{ "./d", AE_IFDIR, 0755, NULL },
	};
	struct fixture *fx = *state;
	struct chom_extract_opts o = { 0 };
	struct chom_extract_stats st;
	struct chom_err e = { 0 };

	tu_make_tgz(fx->tgz, ents, 3);
	if (extract(fx, &o, &st, &e) != 0)
		TU_FAILF("extract failed: %s", e.msg);
}

static void
test_extract_limits(void **state)
{
	static const struct tu_ent three[] = {
		{ "a", AE_IFREG, 0644, "1" },
		{ "b", AE_IFREG, 0644, "2" },
		{ "c", AE_IFREG, 0644, "3" },
	};
	static const struct tu_ent big[] = {
		{ "big", AE_IFREG, 0644,
		  "0123456789012345678901234567890123456789"
		  "0123456789012345678901234567890123456789" },
	};
	struct fixture *fx = *state;
	struct chom_extract_opts o = { 0 };
	struct chom_extract_stats st;
	struct chom_err e = { 0 };

	tu_make_tgz(fx->tgz, three, 3);
	o.max_files = 3;
	if (extract(fx, &o, &st, &e) != 0)
		TU_FAILF("3 files refused with --max-files 3: %s", e.msg);
	assert_int_equal(st.entries, 3);

	tu_rm_rf(fx->out);
	assert_int_equal(mkdir(fx->out, 0755), 0);
	o.max_files = 2;
	assert_int_equal(extract(fx, &o, &st, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_FAIL);
	assert_non_null(strstr(e.msg, "--max-files"));

	tu_rm_rf(fx->out);
	assert_int_equal(mkdir(fx->out, 0755), 0);
	tu_make_tgz(fx->tgz, big, 1);
	o.max_files = 0;
	o.max_bytes = 50;
	assert_int_equal(extract(fx, &o, &st, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_FAIL);
	assert_non_null(strstr(e.msg, "--max-bytes"));
	assert_non_null(strstr(e.msg, "big"));
}

static void
test_extract_stop(void **state)
{
	static const struct tu_ent ents[] = {
		{ "a", AE_IFREG, 0644, "1" },
	};
	struct fixture *fx = *state;
	struct chom_extract_opts o = { 0 };
	struct chom_extract_stats st;
	struct chom_err e = { 0 };
	volatile sig_atomic_t stop = SIGTERM;

	tu_make_tgz(fx->tgz, ents, 1);
	o.stop = &stop;
	assert_int_equal(extract(fx, &o, &st, &e), -1);
	assert_int_equal(e.code, 128 + SIGTERM);
}

static void
test_extract_not_an_archive(void **state)
{
	struct fixture *fx = *state;
	struct chom_extract_opts o = { 0 };
	struct chom_extract_stats st;
	struct chom_err e = { 0 };

	tu_write(fx->tgz, "this is not an archive, only a line of text\n");
	assert_int_equal(extract(fx, &o, &st, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_FAIL);
	assert_non_null(strstr(e.msg, "bad archive"));
}

static void
test_extract_truncated(void **state)
{
	static const struct tu_ent ents[] = {
		{ "big", AE_IFREG, 0644,
		  "Lorem ipsum dolor sit amet, consectetur adipiscing elit, "
		  "sed do "
		  "eiusmod tempor incididunt ut labore et dolore magna "
		  "aliqua." },
	};
	struct fixture *fx = *state;
	struct chom_extract_opts o = { 0 };
	struct chom_extract_stats st;
	struct chom_err e = { 0 };
	struct stat sb;

	tu_make_tgz(fx->tgz, ents, 1);
	assert_int_equal(lstat(fx->tgz, &sb), 0);
	assert_int_equal(truncate(fx->tgz, sb.st_size / 2), 0);
	assert_int_equal(extract(fx, &o, &st, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_FAIL);
}

static void
test_extract_missing_dir(void **state)
{
	static const struct tu_ent ents[] = {
		{ "a", AE_IFREG, 0644, "1" },
	};
	struct fixture *fx = *state;
	struct chom_extract_opts o = { 0 };
	struct chom_extract_stats st;
	struct chom_err e = { 0 };
	char cwd[PATH_MAX];
	int fd;

	tu_make_tgz(fx->tgz, ents, 1);
	assert_int_equal(rmdir(fx->out), 0);
	fd = open(fx->tgz, O_RDONLY);
	assert_true(fd >= 0);
	o.in_fd = fd;
	o.dir = fx->out;
	assert_int_equal(chom_extract(&o, &st, &e), -1);
	close(fd);
	assert_int_equal(e.code, CHOM_EXIT_FAIL);
	assert_non_null(strstr(e.msg, fx->out));
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_string_equal(cwd, fx->cwd);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check_name_accepted),
		cmocka_unit_test(test_check_name_refused),
		cmocka_unit_test(test_check_name_too_long),
		cmocka_unit_test(test_check_symlink),
		T(test_extract_tree),
		T(test_extract_hashes_trailing_bytes),
		T(test_extract_dotdot_refused),
		T(test_extract_absolute_refused),
		T(test_extract_symlink_refusals),
		T(test_extract_through_symlink_refused),
		T(test_extract_other_refusals),
		T(test_extract_repeated_directory),
		T(test_extract_limits),
		T(test_extract_stop),
		T(test_extract_not_an_archive),
		T(test_extract_truncated),
		T(test_extract_missing_dir),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
