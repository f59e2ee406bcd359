/* Restoring parts: read -> check -> decrypt -> decompress -> hand on. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "exitcode.h"
#include "extract.h"
#include "fsutil.h"
#include "gzpar.h"
#include "restore.h"
#include "sha256.h"
#include "sinks.h"
#include "zst.h"

/* Room left in a spool beyond the plaintext, for everything else. */
#define SPOOL_MARGIN (64ULL << 20)

/* The first stage: counts and hashes what is read, and tells progress. */
struct head {
	struct chom_sink s;
	struct chom_sink *next;
	struct chom_sha256 *h;
	unsigned long long n;
	const struct chom_restore_opts *o;
	const struct chom_manifest_part *p;
};

static int
head_write(struct chom_sink *s, const void *buf, size_t len, struct chom_err *e)
{
	struct head *h = (struct head *)s;

	/* A store that sends more than the manifest lists is cut off at
	 * once, not read to its end. */
	if (len > h->p->size - h->n)
		return chom_err_set(e, CHOM_EXIT_FAIL,
				    "more than the %llu bytes the manifest "
				    "lists: stopped reading",
				    h->p->size);
	chom_sha256_update(h->h, buf, len);
	h->n += len;
	if (h->o->progress)
		h->o->progress(h->o->ctx, h->p->name, h->n, h->p->size);
	return chom_sink_write(h->next, buf, len, e);
}

/* Passes everything on, noting whether a stage after it failed: two of
 * them around the decompressor tell its own errors from those it passes
 * on. */
struct watch {
	struct chom_sink s;
	struct chom_sink *next;
	int *failed;
};

static int
watch_write(struct chom_sink *s, const void *buf, size_t len,
	    struct chom_err *e)
{
	struct watch *w = (struct watch *)s;

	if (chom_sink_write(w->next, buf, len, e) < 0)
		return *w->failed = 1, -1;
	return 0;
}

static int
watch_close(struct chom_sink *s, struct chom_err *e)
{
	struct watch *w = (struct watch *)s;

	if (chom_sink_close(w->next, e) < 0)
		return *w->failed = 1, -1;
	return 0;
}

static void
watch_free(struct chom_sink *s)
{
	chom_sink_free(((struct watch *)s)->next);
	free(s);
}

static struct chom_sink *
watch_new(struct chom_sink *next, int *failed, struct chom_err *e)
{
	struct watch *w = calloc(1, sizeof(*w));

	if (!w) {
		chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
		return NULL;
	}
	w->s = (struct chom_sink){ watch_write, watch_close, watch_free, NULL };
	w->next = next;
	w->failed = failed;
	return &w->s;
}

/* e's message, prefixed with the part's name. */
static int
part_fail(const struct chom_manifest_part *p, struct chom_err *e)
{
	char msg[sizeof(e->msg)];

	snprintf(msg, sizeof(msg), "%s", e->msg);
	return chom_err_set(e, e->code ? e->code : CHOM_EXIT_FAIL, "%s: %s",
			    p->name, msg);
}

int
chom_restore_part(const struct chom_restore_opts *o,
		  const struct chom_manifest_part *p, struct chom_sink *out,
		  struct chom_err *e)
{
	unsigned long long plain = 0;
	int before = 0, after = 0; /* the decompressor failed, what follows */
	char hex[CHOM_SHA256_HEXLEN + 1];
	struct head head = { .o = o, .p = p };
	struct chom_sink *s = out, *n;
	int rc = -1;

	if (p->encrypted && !o->identities) {
		chom_sink_free(out);
		return chom_err_set(e, CHOM_EXIT_USAGE,
				    "%s is encrypted: give -i IDENTITY_FILE or "
				    "--passphrase-file",
				    p->name);
	}
	/* Built back to front: each stage owns the next. The plaintext
	 * stops at the manifest's size, before a spool or a directory can
	 * fill with what a forged manifest or a decompression bomb gives. */
	if (!(n = chom_sink_limit_new(s, NULL, &plain, p->plain,
				      "of plaintext, the size the manifest "
				      "lists (a decompression bomb or a forged "
				      "manifest)",
				      e)))
		goto fail;
	s = n;
	if (p->compress != CHOM_PART_NONE) {
		if (!(n = watch_new(s, &after, e)))
			goto fail;
		s = n;
		n = p->compress == CHOM_PART_GZIP ? chom_gunzip_new(s, e)
						  : chom_unzstd_new(s, e);
		if (!n)
			goto fail;
		s = n;
		if (!(n = watch_new(s, &before, e)))
			goto fail;
		s = n;
	}
	if (p->encrypted) {
		if (!(n = chom_age_decrypt_new(s, o->identities, e)))
			goto fail;
		s = n;
	}
	if (!(head.h = chom_sha256_new())) {
		chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
		goto fail;
	}
	head.s = (struct chom_sink){ head_write, NULL, NULL, NULL };
	head.next = s;
	if (chom_store_read(o->store, o->host, o->point, p->name, &head.s,
			    o->stop, e) < 0)
		goto fail;
	/* The store's word before the decoders': they would only say
	 * "truncated" of a part that is simply not the one listed. */
	if (head.n != p->size) {
		chom_err_set(e, CHOM_EXIT_FAIL,
			     "%llu bytes where the manifest lists %llu%s",
			     head.n, p->size,
			     head.n < p->size ? " (truncated)" : "");
		goto fail;
	}
	chom_sha256_final_hex(head.h, hex);
	if (strcmp(hex, p->sha256)) {
		chom_err_set(e, CHOM_EXIT_FAIL,
			     "SHA-256 does not match the manifest (%.12s... "
			     "where it lists %.12s...)",
			     hex, p->sha256);
		goto fail;
	}
	if (chom_sink_close(s, e) < 0)
		goto fail;
	if (plain != p->plain) {
		chom_err_set(e, CHOM_EXIT_FAIL,
			     "%llu bytes of plaintext where the manifest lists "
			     "%llu",
			     plain, p->plain);
		goto fail;
	}
	rc = 0;
	if (o->progress)
		o->progress(o->ctx, NULL, 0, 0);
fail:
	chom_sha256_free(head.h);
	chom_sink_free(s);
	if (rc < 0 && before && !after && e->code == CHOM_EXIT_FAIL) {
		char msg[sizeof(e->msg)];

		snprintf(msg, sizeof(msg), "%s", e->msg);
		chom_err_set(e, CHOM_EXIT_FAIL, "decompression error: %s", msg);
	}
	if (rc < 0 && o->progress)
		o->progress(o->ctx, NULL, 0, 0);
	/* Usage errors (no key given) and signals keep their own words. */
	return rc < 0 && e->code == CHOM_EXIT_FAIL ? part_fail(p, e) : rc;
}

static int
verify_only(const struct chom_restore_opts *o,
	    const struct chom_manifest_part *p, struct chom_err *e)
{
	struct chom_sink *null = chom_sink_null_new(e);

	return null ? chom_restore_part(o, p, null, e) : -1;
}

/* An unnamed file of mode 0600 in dir; -1 with errno. */
static int
spool_open(const char *dir)
{
	char path[PATH_MAX];
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR))
		return fd;
	/* A filesystem without O_TMPFILE: a name, for an instant. */
	if (snprintf(path, sizeof(path), "%s/.chom-restore-XXXXXX", dir) >=
	    (int)sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((fd = mkostemp(path, O_CLOEXEC)) >= 0)
		unlink(path);
	return fd;
}

struct feed_tick {
	const struct chom_restore_opts *o;
	const char *what;
	unsigned long long total;
};

static void
feed_tick(void *ctx, unsigned long long done)
{
	struct feed_tick *t = ctx;

	t->o->progress(t->o->ctx, t->what, done, t->total);
}

static int
feed_spool(const struct chom_restore_opts *o,
	   const struct chom_manifest_part *p, const char *cmd,
	   const char *what, int fd, struct chom_err *e)
{
	char label[96];
	struct feed_tick t = { o, label, p->plain };
	int status, rc;

	if (o->stop && *o->stop)
		return chom_err_set(e, 128 + *o->stop, "interrupted");
	/* The command reads the spool itself: no copy through a pipe. */
	snprintf(label, sizeof(label), "into %s", what);
	rc = chom_run_from_file(cmd, fd, what, o->progress ? feed_tick : NULL,
				&t, o->stop, &status, e);
	if (o->progress)
		o->progress(o->ctx, NULL, 0, 0);
	return rc;
}

/* MemAvailable of /proc/meminfo in bytes; 0 if unknown. */
static unsigned long long
mem_available(void)
{
	unsigned long long kb = 0;
	char line[256];
	FILE *f = fopen("/proc/meminfo", "re");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
			break;
	fclose(f);
	return kb * 1024;
}

/*
 * Where the plaintext of p waits while it is checked: memory when it is at
 * most a quarter of what the machine has available (it then never touches
 * a disk), else spool_dir, else the default directory; -1 with errno, or
 * -2 when the directory has no room (a note told).
 */
static int
spool_for(const struct chom_restore_opts *o, const struct chom_manifest_part *p,
	  const char *spool_dir, struct chom_err *e)
{
	const char *dir = spool_dir;
	struct statvfs vfs;
	char note[PATH_MAX + 128];
	int fd;

	if (!dir) {
		if (p->plain + SPOOL_MARGIN <= mem_available() / 4 &&
		    (fd = memfd_create("chom-restore-spool", MFD_CLOEXEC)) >= 0)
			return fd;
		dir = getenv("TMPDIR");
		if (!dir || !*dir)
			dir = CHOM_RESTORE_SPOOL_DIR;
	}
	if (statvfs(dir, &vfs) < 0)
		return chom_err_sys(e, CHOM_EXIT_USAGE, "spool %s", dir);
	if ((unsigned long long)vfs.f_bavail * vfs.f_frsize <
	    p->plain + SPOOL_MARGIN) {
		snprintf(note, sizeof(note),
			 "%s has no room for the %llu bytes of %s: verifying "
			 "it in a first read instead",
			 dir, p->plain, p->name);
		if (o->on_message)
			o->on_message(o->ctx, note);
		return -2;
	}
	if ((fd = spool_open(dir)) < 0)
		return chom_err_sys(e, CHOM_EXIT_FAIL, "spool in %s", dir);
	return fd;
}

int
chom_restore_to_cmd(const struct chom_restore_opts *o,
		    const struct chom_manifest_part *p, const char *cmd,
		    const char *what, enum chom_restore_mode mode,
		    const char *spool_dir, struct chom_err *e)
{
	struct chom_sink *s;
	int status, fd = -1, dfd, rc;

	if (mode == CHOM_RESTORE_SPOOL) {
		fd = spool_for(o, p, spool_dir, e);
		if (fd == -1)
			return -1;
		if (fd == -2)
			mode = CHOM_RESTORE_TWICE;
	}
	if (mode == CHOM_RESTORE_TWICE && verify_only(o, p, e) < 0)
		return -1;
	if (mode != CHOM_RESTORE_SPOOL) {
		if (!(s = chom_run_stdin_new(cmd, what, &status, o->stop, e)))
			return -1;
		return chom_restore_part(o, p, s, e);
	}
	if ((dfd = dup(fd)) < 0) {
		close(fd);
		return chom_err_sys(e, CHOM_EXIT_FAIL, "dup");
	}
	if (!(s = chom_sink_fd_new(dfd, "the spool", e))) {
		close(dfd);
		close(fd);
		return -1;
	}
	rc = chom_restore_part(o, p, s, e);
	if (rc == 0)
		rc = feed_spool(o, p, cmd, what, fd, e);
	close(fd);
	return rc;
}

/* The part's pipeline on a thread, writing the tar into a pipe. */
struct producer {
	pthread_t tid;
	const struct chom_restore_opts *o;
	const struct chom_manifest_part *p;
	int fd;
	int rc;
	struct chom_err e;
};

static void *
produce(void *arg)
{
	struct producer *pr = arg;
	struct chom_sink *s = chom_sink_fd_new(pr->fd, "the extractor", &pr->e);

	if (!s) {
		close(pr->fd);
		pr->rc = -1;
		return NULL;
	}
	pr->rc = chom_restore_part(pr->o, pr->p, s, &pr->e);
	return NULL;
}

static void
drain(int fd)
{
	char buf[65536];
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0 ||
	       (n < 0 && errno == EINTR))
		;
}

/* Removes, deepest first, the directories of dir that make_target made. */
static void
unmake_target(const char *dir, size_t made)
{
	char buf[PATH_MAX];
	size_t len;

	if (!made || strlen(dir) >= sizeof(buf))
		return;
	len = strlen(dir);
	memcpy(buf, dir, len + 1);
	while (len > 1 && buf[len - 1] == '/')
		len--;
	while (len >= made) {
		buf[len] = '\0';
		if (rmdir(buf) < 0)
			return;
		while (len > 0 && buf[len - 1] != '/')
			len--;
		while (len > 0 && buf[len - 1] == '/')
			len--;
	}
}

/* Whether dir is missing (0), an empty directory (1), or neither (-1). */
static int
empty_dir(const char *dir, struct chom_err *e)
{
	struct dirent *d;
	DIR *dp = opendir(dir);

	if (!dp) {
		if (errno == ENOENT)
			return 0;
		return chom_err_sys(e, CHOM_EXIT_USAGE, "--target %s", dir);
	}
	while ((d = readdir(dp)))
		if (strcmp(d->d_name, ".") && strcmp(d->d_name, "..")) {
			closedir(dp);
			return chom_err_set(e, CHOM_EXIT_USAGE,
					    "--target %s is not empty", dir);
		}
	closedir(dp);
	return 1;
}

/*
 * Makes dir and those of its parents that are missing, one by one, so as
 * to know which this run made: *made is the length of the path of the
 * first one made (every deeper one was made too), 0 if none was.
 */
static int
make_target(const char *dir, size_t *made, struct chom_err *e)
{
	char buf[PATH_MAX];
	size_t len = strlen(dir), i;
	struct stat st;

	*made = 0;
	if (len >= sizeof(buf))
		return chom_err_set(e, CHOM_EXIT_USAGE,
				    "--target %s: path too long", dir);
	memcpy(buf, dir, len + 1);
	while (len > 1 && buf[len - 1] == '/')
		buf[--len] = '\0';
	for (i = 1; i <= len; i++) {
		if ((i < len && buf[i] != '/') || buf[i - 1] == '/')
			continue;
		buf[i] = '\0';
		if (mkdir(buf, 0755) == 0) {
			if (!*made)
				*made = i;
		} else if (errno != EEXIST || stat(buf, &st) < 0 ||
			   !S_ISDIR(st.st_mode)) {
			if (errno == EEXIST)
				errno = ENOTDIR;
			chom_err_sys(e, CHOM_EXIT_FAIL, "create %s", buf);
			if (i < len)
				buf[i] = '/';
			unmake_target(buf, *made);
			return -1;
		}
		if (i < len)
			buf[i] = '/';
	}
	return 0;
}

int
chom_restore_tree(const struct chom_restore_opts *o,
		  const struct chom_manifest_part *p, const char *dir,
		  unsigned long long *entries, struct chom_err *e)
{
	struct producer pr = { .o = o, .p = p };
	struct chom_extract_stats st = { 0 };
	struct chom_err xe = { 0 }, ignore;
	char tmp[PATH_MAX];
	size_t made = 0;
	int pfd[2], xrc, rc = -1, dfd, there;

	*entries = 0;
	if ((there = empty_dir(dir, e)) < 0)
		return -1;
	if (!there && make_target(dir, &made, e) < 0)
		return -1;
	if (chom_path(tmp, sizeof(tmp), e, "%s/.chom-restore-%ld", dir,
		      (long)getpid()) < 0 ||
	    (mkdir(tmp, 0700) < 0 &&
	     chom_err_sys(e, CHOM_EXIT_FAIL, "create %s", tmp))) {
		/* Not made here (or cut short): nothing of it to remove. */
		unmake_target(dir, made);
		return -1;
	}
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		chom_err_sys(e, CHOM_EXIT_FAIL, "pipe");
		goto out;
	}
	(void)fcntl(pfd[1], F_SETPIPE_SZ, 1 << 20);
	pr.fd = pfd[1];
	if ((errno = pthread_create(&pr.tid, NULL, produce, &pr))) {
		chom_err_sys(e, CHOM_EXIT_FAIL, "pthread_create");
		close(pfd[0]);
		close(pfd[1]);
		goto out;
	}
	xrc = chom_extract(&(struct chom_extract_opts){ .in_fd = pfd[0],
							.dir = tmp,
							.stop = o->stop,
							.any_symlink = 1 },
			   &st, &xe);
	/* An extractor that stopped early leaves the rest of the part to
	 * read: the producer runs to its end and checks all of it, so that
	 * a part that fails its checks is named as the cause, not what the
	 * extractor made of it (an archive cut short, a refused entry). */
	drain(pfd[0]);
	close(pfd[0]);
	pthread_join(pr.tid, NULL);
	if (pr.rc < 0) {
		*e = pr.e;
		goto out;
	}
	if (xrc < 0) {
		*e = xe;
		chom_err_set(e, e->code, "%s: %s", p->name, xe.msg);
		goto out;
	}
	if ((dfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    syncfs(dfd) < 0) {
		chom_err_sys(e, CHOM_EXIT_FAIL, "sync %s", tmp);
		if (dfd >= 0)
			close(dfd);
		goto out;
	}
	close(dfd);
	/* All or nothing: a target half filled is never left. */
	if (chom_move_entries(tmp, dir, e) < 0)
		goto out;
	rmdir(tmp);
	if (chom_fsync_dir(dir, e) < 0)
		goto out;
	*entries = st.entries;
	return 0;
out:
	chom_rmtree(tmp, &ignore);
	unmake_target(dir, made);
	return rc;
}
