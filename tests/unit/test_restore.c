/*
 * Unit tests for lib/restore.c: points made by chom_backup_run() into a
 * file:// store, read back through every check into memory, a command and
 * a directory; and parts damaged on disk, refused with the part named and
 * nothing handed on.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backup.h"
#include "exitcode.h"
#include "manifest.h"
#include "restore.h"
#include "run.h"
#include "sha256.h"

#include "testutil.h"

#define DUMP_LEN (3 * 1000 * 1000 + 17)

struct fixture {
	char dir[64];
	char url[160], dump[160], path[PATH_MAX];
	struct chom_store *store;
	struct chom_age_keys *keys; /* an identity: encrypts and decrypts */
	struct chom_manifest m;
	unsigned char *text;
	struct chom_restore_opts ro;
};

static int
setup(void **state)
{
	struct fixture *fx = TU_FIXTURE_NEW(struct fixture, dir, "restore");
	char secret[CHOM_AGE_SECRET_SIZE], recip[CHOM_AGE_RECIPIENT_SIZE];
	struct chom_err e = { 0 };

	if (!fx)
		return -1;
	snprintf(fx->url, sizeof(fx->url), "file://%s/store", fx->dir);
	snprintf(fx->dump, sizeof(fx->dump), "%s/dump.sql", fx->dir);
	fx->text = tu_gen_text(DUMP_LEN, 42);
	tu_put_file(fx->dump, fx->text, DUMP_LEN);
	fx->keys = chom_age_keys_new();
	if (chom_age_keygen(secret, sizeof(secret), recip, sizeof(recip), &e) <
		0 ||
	    chom_age_add_identity(fx->keys, secret, &e) < 0 ||
	    chom_store_open(fx->url, &fx->store, &e) < 0)
		return -1;
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;

	chom_store_free(fx->store);
	chom_age_keys_free(fx->keys);
	free(fx->text);
	return tu_fixture_free(fx, fx->dir);
}

/* A point of the dump and of dir's tree (if not NULL), read back into m. */
static void
backup(struct fixture *fx, enum chom_compress c, const char *tree)
{
	char cmd[256];
	const char *files[1] = { tree };
	struct chom_backup_result r;
	struct chom_err e = { 0 };

	snprintf(cmd, sizeof(cmd), "cat '%s'", fx->dump);
	if (chom_backup_run(
		&(struct chom_backup_opts){ .stores = &fx->store,
					    .nstores = 1,
					    .host = "web1",
					    .db_cmd = cmd,
					    .files = files,
					    .nfiles = tree ? 1 : 0,
					    .compress = c,
					    .level =
						c == CHOM_COMPRESS_ZSTD ? 3 : 6,
					    .threads = 2,
					    .recipients = fx->keys },
		&r, &e) < 0)
		TU_FAILF("backup: %s", e.msg);
	if (chom_manifest_parse(r.manifest, strlen(r.manifest), &fx->m, &e) < 0)
		TU_FAILF("manifest: %s", e.msg);
	free(r.manifest);
	fx->ro = (struct chom_restore_opts){ .store = fx->store,
					     .host = "web1",
					     .point = fx->m.point,
					     .identities = fx->keys };
	snprintf(fx->path, sizeof(fx->path), "%s/store/web1/%s/%s", fx->dir,
		 fx->m.point, fx->m.parts[0].name);
}

/* Overwrites one byte of the db part at off. */
static void
flip(struct fixture *fx, off_t off)
{
	int fd = open(fx->path, O_RDWR);
	unsigned char c;

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &c, 1, off), 1);
	c ^= 0x20;
	assert_int_equal(pwrite(fd, &c, 1, off), 1);
	close(fd);
}

/* Restoring the db part into memory fails, saying want. */
static void
expect_refused(struct fixture *fx, const char *want)
{
	struct tu_buf out;
	struct chom_err e = { 0 };

	if (chom_restore_part(&fx->ro, &fx->m.parts[0],
			      tu_mem_new(&out, 2 * DUMP_LEN, 0), &e) == 0)
		TU_FAILF("a damaged part was restored");
	assert_int_equal(e.code, CHOM_EXIT_FAIL);
	if (strncmp(e.msg, fx->m.parts[0].name, strlen(fx->m.parts[0].name)))
		TU_FAILF("'%s' does not name the part", e.msg);
	if (!strstr(e.msg, want))
		TU_FAILF("'%s' does not say '%s'", e.msg, want);
	free(out.p);
}

static void
round_trip(void **state, enum chom_compress c)
{
	struct fixture *fx = *state;
	struct tu_buf out;
	struct chom_err e = { 0 };

	backup(fx, c, NULL);
	if (chom_restore_part(&fx->ro, &fx->m.parts[0],
			      tu_mem_new(&out, 2 * DUMP_LEN, 0), &e) < 0)
		TU_FAILF("restore: %s", e.msg);
	assert_int_equal(out.closed, 1);
	tu_expect_same(&out, fx->text, DUMP_LEN, "the dump");
	free(out.p);
}

static void
test_round_trip_gzip(void **state)
{
	round_trip(state, CHOM_COMPRESS_GZIP);
}

static void
test_round_trip_zstd(void **state)
{
	round_trip(state, CHOM_COMPRESS_ZSTD);
}

static void
test_round_trip_none(void **state)
{
	round_trip(state, CHOM_COMPRESS_NONE);
}

static void
test_flipped_byte(void **state)
{
	struct fixture *fx = *state;

	backup(fx, CHOM_COMPRESS_GZIP, NULL);
	flip(fx, tu_file_size(fx->path) / 2);
	expect_refused(fx, "failed authentication");
}

static void
test_flipped_last_byte(void **state)
{
	struct fixture *fx = *state;

	backup(fx, CHOM_COMPRESS_ZSTD, NULL);
	flip(fx, tu_file_size(fx->path) - 1);
	/* The last chunk's tag: nothing of that chunk is handed on, and the
	 * digest is checked before the decrypter's last word. */
	expect_refused(fx, "SHA-256 does not match");
}

static void
test_truncated(void **state)
{
	struct fixture *fx = *state;

	backup(fx, CHOM_COMPRESS_GZIP, NULL);
	assert_int_equal(truncate(fx->path, tu_file_size(fx->path) - 100), 0);
	expect_refused(fx, "(truncated)");
}

static void
test_missing_part(void **state)
{
	struct fixture *fx = *state;

	backup(fx, CHOM_COMPRESS_GZIP, NULL);
	assert_int_equal(unlink(fx->path), 0);
	expect_refused(fx, "No such file");
}

static void
test_no_identity(void **state)
{
	struct fixture *fx = *state;
	struct tu_buf out;
	struct chom_err e = { 0 };

	backup(fx, CHOM_COMPRESS_GZIP, NULL);
	fx->ro.identities = NULL;
	assert_int_equal(chom_restore_part(&fx->ro, &fx->m.parts[0],
					   tu_mem_new(&out, 2 * DUMP_LEN, 0),
					   &e),
			 -1);
	assert_int_equal(e.code, CHOM_EXIT_USAGE);
	assert_non_null(strstr(e.msg, "is encrypted"));
	assert_int_equal(out.len, 0);
	free(out.p);
}

/* The part into `cat > FILE` in mode; FILE then holds the dump. */
static void
to_cmd(struct fixture *fx, enum chom_restore_mode mode, const char *spool)
{
	char cmd[256], out[192];
	struct chom_err e = { 0 };
	unsigned char *got;
	size_t n;

	snprintf(out, sizeof(out), "%s/out.sql", fx->dir);
	unlink(out);
	snprintf(cmd, sizeof(cmd), "cat > '%s'", out);
	if (chom_restore_to_cmd(&fx->ro, &fx->m.parts[0], cmd, "--db-cmd", mode,
				!spool   ? fx->dir
				: *spool ? spool
					 : NULL,
				&e) < 0)
		TU_FAILF("restore: %s", e.msg);
	got = tu_get_file(out, &n);
	assert_int_equal(n, DUMP_LEN);
	assert_memory_equal(got, fx->text, DUMP_LEN);
	free(got);
}

static void
test_to_cmd_modes(void **state)
{
	struct fixture *fx = *state;

	backup(fx, CHOM_COMPRESS_ZSTD, NULL);
	to_cmd(fx, CHOM_RESTORE_SPOOL, NULL);
	to_cmd(fx, CHOM_RESTORE_SPOOL, ""); /* memory: 3 MB fits anywhere */
	/* The spool never has a name in its directory. */
	assert_int_equal(tu_count_names(fx->dir, ".chom-restore*"), 0);
	to_cmd(fx, CHOM_RESTORE_TWICE, NULL);
	to_cmd(fx, CHOM_RESTORE_STREAM, NULL);
}

/* A damaged part never starts the command in the default mode. */
static void
test_to_cmd_damaged_never_starts(void **state)
{
	struct fixture *fx = *state;
	char cmd[256], mark[192];
	struct chom_err e = { 0 };

	backup(fx, CHOM_COMPRESS_GZIP, NULL);
	flip(fx, tu_file_size(fx->path) - 1);
	snprintf(mark, sizeof(mark), "%s/started", fx->dir);
	snprintf(cmd, sizeof(cmd), "touch '%s'; cat >/dev/null", mark);
	assert_int_equal(chom_restore_to_cmd(&fx->ro, &fx->m.parts[0], cmd,
					     "--db-cmd", CHOM_RESTORE_SPOOL,
					     fx->dir, &e),
			 -1);
	assert_int_equal(access(mark, F_OK), -1);
	assert_int_equal(chom_restore_to_cmd(&fx->ro, &fx->m.parts[0], cmd,
					     "--db-cmd", CHOM_RESTORE_TWICE,
					     fx->dir, &e),
			 -1);
	assert_int_equal(access(mark, F_OK), -1);
	/* Streaming starts it: that is what --stream is. */
	assert_int_equal(chom_restore_to_cmd(&fx->ro, &fx->m.parts[0], cmd,
					     "--db-cmd", CHOM_RESTORE_STREAM,
					     fx->dir, &e),
			 -1);
	assert_int_equal(access(mark, F_OK), 0);
}

static void
test_to_cmd_status(void **state)
{
	struct fixture *fx = *state;
	struct chom_err e = { 0 };

	backup(fx, CHOM_COMPRESS_GZIP, NULL);
	assert_int_equal(chom_restore_to_cmd(
			     &fx->ro, &fx->m.parts[0], "cat >/dev/null; exit 3",
			     "--db-cmd", CHOM_RESTORE_SPOOL, fx->dir, &e),
			 -1);
	if (!strstr(e.msg, "exited with status 3"))
		TU_FAILF("'%s'", e.msg);
	assert_int_equal(chom_restore_to_cmd(
			     &fx->ro, &fx->m.parts[0], "head -c 10 >/dev/null",
			     "--db-cmd", CHOM_RESTORE_SPOOL, fx->dir, &e),
			 -1);
	assert_non_null(strstr(e.msg, "before reading all input"));
	assert_int_equal(chom_restore_to_cmd(&fx->ro, &fx->m.parts[0],
					     "kill -9 $$", "--db-cmd",
					     CHOM_RESTORE_STREAM, fx->dir, &e),
			 -1);
	assert_non_null(strstr(e.msg, "killed by signal 9"));
}

static void
test_spool_dir_missing(void **state)
{
	struct fixture *fx = *state;
	struct chom_err e = { 0 };

	backup(fx, CHOM_COMPRESS_GZIP, NULL);
	assert_int_equal(chom_restore_to_cmd(&fx->ro, &fx->m.parts[0],
					     "cat >/dev/null", "--db-cmd",
					     CHOM_RESTORE_SPOOL,
					     "/nonexistent/spool", &e),
			 -1);
	assert_int_equal(e.code, CHOM_EXIT_USAGE);
	assert_non_null(strstr(e.msg, "/nonexistent/spool"));
}

/* A tree: a file, a mode, a symlink, a subdirectory. */
static void
make_tree(struct fixture *fx, char *tree, size_t size)
{
	char p[PATH_MAX];

	snprintf(tree, size, "%s/app", fx->dir);
	tu_sh("mkdir -p '%s/sub' && printf secret > '%s/.env' && chmod 600 "
	      "'%s/.env' && ln -s .env '%s/link' && printf x > '%s/sub/f' && "
	      "ln -s /etc/nginx/sites-available/default '%s/abs' && "
	      "ln -s ../../../outside '%s/sub/up'",
	      tree, tree, tree, tree, tree, tree, tree);
	snprintf(p, sizeof(p), "%s/sub/f", tree);
	assert_int_equal(access(p, F_OK), 0);
}

static void
test_tree(void **state)
{
	struct fixture *fx = *state;
	const struct chom_manifest_part *p;
	char tree[PATH_MAX], dir[PATH_MAX], path[PATH_MAX * 3], buf[64];
	unsigned long long entries;
	struct chom_err e = { 0 };
	struct stat st;

	make_tree(fx, tree, sizeof(tree));
	backup(fx, CHOM_COMPRESS_GZIP, tree);
	p = chom_manifest_part(&fx->m, "files");
	assert_non_null(p);
	snprintf(dir, sizeof(dir), "%s/restored/new", fx->dir);
	if (chom_restore_tree(&fx->ro, p, dir, &entries, &e) < 0)
		TU_FAILF("restore: %s", e.msg);
	assert_true(entries >= 4);
	snprintf(path, sizeof(path), "%s%s/.env", dir, tree);
	tu_read(path, buf, sizeof(buf));
	assert_string_equal(buf, "secret");
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	snprintf(path, sizeof(path), "%s%s/link", dir, tree);
	assert_int_equal(readlink(path, buf, sizeof(buf)), 4);
	/* Symlinks as they were, even absolute or out of the tree (Debian's
	 * /etc/nginx/sites-enabled). */
	snprintf(path, sizeof(path), "%s%s/abs", dir, tree);
	memset(buf, 0, sizeof(buf));
	assert_true(readlink(path, buf, sizeof(buf) - 1) > 0);
	assert_string_equal(buf, "/etc/nginx/sites-available/default");
	snprintf(path, sizeof(path), "%s%s/sub/up", dir, tree);
	memset(buf, 0, sizeof(buf));
	assert_true(readlink(path, buf, sizeof(buf) - 1) > 0);
	assert_string_equal(buf, "../../../outside");
	assert_int_equal(tu_count_names(dir, ".chom-restore*"), 0);

	/* Not empty now: refused, and left as it is. */
	assert_int_equal(chom_restore_tree(&fx->ro, p, dir, &entries, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_USAGE);
	assert_non_null(strstr(e.msg, "not empty"));
}

static void
test_tree_damaged_leaves_nothing(void **state)
{
	struct fixture *fx = *state;
	struct chom_manifest_part p;
	char tree[PATH_MAX], dir[PATH_MAX], part[PATH_MAX];
	unsigned long long entries;
	struct chom_err e = { 0 };

	make_tree(fx, tree, sizeof(tree));
	backup(fx, CHOM_COMPRESS_ZSTD, tree);
	p = *chom_manifest_part(&fx->m, "files");
	snprintf(part, sizeof(part), "%s/store/web1/%s/%s", fx->dir,
		 fx->m.point, p.name);
	assert_int_equal(truncate(part, tu_file_size(part) - 1), 0);
	/* A new directory: gone again. */
	snprintf(dir, sizeof(dir), "%s/new", fx->dir);
	assert_int_equal(chom_restore_tree(&fx->ro, &p, dir, &entries, &e), -1);
	assert_non_null(strstr(e.msg, p.name));
	assert_int_equal(access(dir, F_OK), -1);
	/* An empty directory: still there, still empty. */
	assert_int_equal(mkdir(dir, 0755), 0);
	assert_int_equal(chom_restore_tree(&fx->ro, &p, dir, &entries, &e), -1);
	assert_int_equal(tu_count_names(dir, "*"), 0);
	assert_int_equal(tu_count_names(dir, ".*"), 0);
}

/* The db part's plaintext read with the manifest understating it: refused
 * once the count passes what it lists, with no more than that handed on. */
static void
understated(struct fixture *fx, enum chom_compress c)
{
	struct chom_manifest_part p;
	struct tu_buf out;
	struct chom_err e = { 0 };

	backup(fx, c, NULL);
	p = fx->m.parts[0];
	p.plain = 1000;
	/* A sink of 2 MB: a check only at the end would fill it first. */
	assert_int_equal(
	    chom_restore_part(&fx->ro, &p, tu_mem_new(&out, 2 << 20, 0), &e),
	    -1);
	assert_int_equal(e.code, CHOM_EXIT_FAIL);
	if (strncmp(e.msg, p.name, strlen(p.name)) ||
	    !strstr(e.msg, "more than 1000 bytes of plaintext"))
		TU_FAILF("'%s'", e.msg);
	assert_true(out.len <= 1000);
	free(out.p);
}

static void
test_plain_understated(void **state)
{
	understated(*state, CHOM_COMPRESS_GZIP);
	understated(*state, CHOM_COMPRESS_ZSTD);
	understated(*state, CHOM_COMPRESS_NONE);
}

/* A stored size understated: the read stops there. */
static void
test_size_understated(void **state)
{
	struct fixture *fx = *state;
	struct chom_manifest_part p;
	struct tu_buf out;
	struct chom_err e = { 0 };

	backup(fx, CHOM_COMPRESS_GZIP, NULL);
	p = fx->m.parts[0];
	p.size -= 100000;
	assert_int_equal(chom_restore_part(&fx->ro, &p,
					   tu_mem_new(&out, 2 * DUMP_LEN, 0),
					   &e),
			 -1);
	if (strncmp(e.msg, p.name, strlen(p.name)) ||
	    !strstr(e.msg, "more than the") ||
	    !strstr(e.msg, "bytes the manifest lists: stopped reading"))
		TU_FAILF("'%s'", e.msg);
	free(out.p);
}

/*
 * A decompression bomb: a part of a few hundred kB (gzip, zstd, not
 * encrypted) that inflates to 64 MB, the manifest listing 1 MiB of
 * plaintext. Stopped at 1 MiB into memory, and the command fed by a spool
 * never starts.
 */
static void
bomb(struct fixture *fx, const char *name, const char *cmd,
     enum chom_part_compress c)
{
	struct chom_manifest_part p = { .compress = c, .plain = 1 << 20 };
	char dir[PATH_MAX], path[PATH_MAX + 64], sh[256], mark[192];
	struct chom_restore_opts ro = { .store = fx->store,
					.host = "web1",
					.point = "20260101T000000Z" };
	struct tu_buf out;
	struct chom_err e = { 0 };

	snprintf(dir, sizeof(dir), "%s/store/web1/%s", fx->dir, ro.point);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	tu_sh("mkdir -p '%s' && head -c 64000000 /dev/zero | %s > '%s'", dir,
	      cmd, path);
	snprintf(p.name, sizeof(p.name), "%s", name);
	snprintf(p.kind, sizeof(p.kind), "db");
	p.size = (unsigned long long)tu_file_size(path);
	assert_true(p.size < 1000000);
	if (chom_sha256_file(path, p.sha256, &e) < 0)
		TU_FAILF("%s", e.msg);
	assert_int_equal(
	    chom_restore_part(&ro, &p, tu_mem_new(&out, 2 << 20, 0), &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_FAIL);
	if (strncmp(e.msg, name, strlen(name)) ||
	    !strstr(e.msg, "more than 1048576 bytes of plaintext"))
		TU_FAILF("'%s'", e.msg);
	assert_true(out.len <= 1 << 20);
	free(out.p);

	snprintf(mark, sizeof(mark), "%s/started", fx->dir);
	snprintf(sh, sizeof(sh), "touch '%s'; cat >/dev/null", mark);
	assert_int_equal(chom_restore_to_cmd(&ro, &p, sh, "--db-cmd",
					     CHOM_RESTORE_SPOOL, fx->dir, &e),
			 -1);
	assert_non_null(strstr(e.msg, "bytes of plaintext"));
	assert_int_equal(access(mark, F_OK), -1);
	assert_int_equal(chom_restore_to_cmd(&ro, &p, sh, "--db-cmd",
					     CHOM_RESTORE_SPOOL, NULL, &e),
			 -1);
	assert_int_equal(access(mark, F_OK), -1);
}

static void
test_decompression_bomb(void **state)
{
	bomb(*state, "db.sql.gz", "gzip -1", CHOM_PART_GZIP);
	bomb(*state, "db.sql.zst", "zstd -q -1", CHOM_PART_ZSTD);
}

/* A part not encrypted whose compressed bytes were changed, the manifest
 * made to match: only the decompressor can tell, and the message says it
 * was the decompressor. */
static void
corrupt(struct fixture *fx, const char *name, const char *cmd,
	enum chom_part_compress c, const char *want)
{
	struct chom_manifest_part p = { .compress = c, .plain = DUMP_LEN };
	char dir[PATH_MAX - 128], path[PATH_MAX];
	struct chom_restore_opts ro = { .store = fx->store,
					.host = "web1",
					.point = "20260101T000001Z" };
	struct tu_buf out;
	struct chom_err e = { 0 };

	snprintf(dir, sizeof(dir), "%s/store/web1/%s", fx->dir, ro.point);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	tu_sh("mkdir -p '%s' && %s < '%s' > '%s'", dir, cmd, fx->dump, path);
	snprintf(p.name, sizeof(p.name), "%s", name);
	snprintf(p.kind, sizeof(p.kind), "db");
	snprintf(fx->path, sizeof(fx->path), "%s", path);
	flip(fx, tu_file_size(path) / 2);
	p.size = (unsigned long long)tu_file_size(path);
	if (chom_sha256_file(path, p.sha256, &e) < 0)
		TU_FAILF("%s", e.msg);
	assert_int_equal(
	    chom_restore_part(&ro, &p, tu_mem_new(&out, 2 * DUMP_LEN, 0), &e),
	    -1);
	assert_int_equal(e.code, CHOM_EXIT_FAIL);
	if (strncmp(e.msg, name, strlen(name)) || !strstr(e.msg, want))
		TU_FAILF("'%s' does not say '%s'", e.msg, want);
	free(out.p);
}

static void
test_decompression_error(void **state)
{
	corrupt(*state, "db.sql.gz", "gzip -6", CHOM_PART_GZIP,
		": decompression error: gzip: ");
	corrupt(*state, "db.sql.zst", "zstd -q -3", CHOM_PART_ZSTD,
		": decompression error: zstd: ");
}

/*
 * A target two levels below a directory that does not exist, and a part
 * that fails: every directory this run made is removed again, and none
 * that was there before.
 */
static void
test_tree_damaged_removes_made_parents(void **state)
{
	struct fixture *fx = *state;
	struct chom_manifest_part p;
	char tree[PATH_MAX], dir[PATH_MAX], part[PATH_MAX], keep[PATH_MAX];
	unsigned long long entries;
	struct chom_err e = { 0 };

	make_tree(fx, tree, sizeof(tree));
	backup(fx, CHOM_COMPRESS_GZIP, tree);
	p = *chom_manifest_part(&fx->m, "files");
	snprintf(part, sizeof(part), "%s/store/web1/%s/%s", fx->dir,
		 fx->m.point, p.name);
	assert_int_equal(truncate(part, tu_file_size(part) - 1), 0);
	snprintf(dir, sizeof(dir), "%s/x/y/z/", fx->dir);
	assert_int_equal(chom_restore_tree(&fx->ro, &p, dir, &entries, &e), -1);
	assert_non_null(strstr(e.msg, p.name));
	snprintf(keep, sizeof(keep), "%s/x", fx->dir);
	assert_int_equal(access(keep, F_OK), -1);
	assert_int_equal(access(fx->dir, F_OK), 0);
	/* x there before, with a file: it stays, y and z go. */
	assert_int_equal(mkdir(keep, 0700), 0);
	snprintf(keep, sizeof(keep), "%s/x/keep", fx->dir);
	tu_put_file(keep, (const unsigned char *)"k", 1);
	assert_int_equal(chom_restore_tree(&fx->ro, &p, dir, &entries, &e), -1);
	snprintf(keep, sizeof(keep), "%s/x", fx->dir);
	assert_int_equal(tu_count_names(keep, "*"), 1);
	assert_int_equal(tu_count_names(keep, ".*"), 0);
	/* A target under a file: refused, nothing made. */
	snprintf(dir, sizeof(dir), "%s/x/keep/a/b", fx->dir);
	assert_int_equal(chom_restore_tree(&fx->ro, &p, dir, &entries, &e), -1);
	assert_int_equal(tu_count_names(keep, "*"), 1);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_round_trip_gzip),
		T(test_round_trip_zstd),
		T(test_round_trip_none),
		T(test_flipped_byte),
		T(test_flipped_last_byte),
		T(test_truncated),
		T(test_missing_part),
		T(test_no_identity),
		T(test_to_cmd_modes),
		T(test_to_cmd_damaged_never_starts),
		T(test_to_cmd_status),
		T(test_spool_dir_missing),
		T(test_tree),
		T(test_tree_damaged_leaves_nothing),
		T(test_plain_understated),
		T(test_size_understated),
		T(test_decompression_bomb),
		T(test_decompression_error),
		T(test_tree_damaged_removes_made_parents),
	};

	/* As the tools do: a command that stops reading is an error, not a
	 * signal. */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
