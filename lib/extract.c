#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exitcode.h"
#include "extract.h"

#define READ_BLOCK (1 << 17)

/* A source of bytes for libarchive: the artifact, or the pipe from the
 * decompressing thread. The artifact's reader hashes what it reads. */
struct reader {
	int fd;
	int cancel_fd; /* readable: stop waiting for fd (-1: none) */
	struct chom_sha256 *hash;
	unsigned long long count; /* atomic: read by the other thread */
	volatile sig_atomic_t *stop;
	size_t pending; /* bytes already in buf, hashed, not yet handed on */
	int cancelled;  /* cancel_fd fired: what fails next is not an error */
	unsigned char buf[READ_BLOCK];
};

/* One read(2) into r->buf, hashed and counted; -1 with errno, ECANCELED
 * when cancelled, EINTR when a signal asked us to stop. */
static ssize_t
reader_read(struct reader *r)
{
	struct pollfd pfd[2] = { { r->fd, POLLIN, 0 },
				 { r->cancel_fd, POLLIN, 0 } };
	ssize_t n;

	if (r->pending) {
		n = (ssize_t)r->pending;
		r->pending = 0;
		return n;
	}
	for (;;) {
		if (r->stop && *r->stop) {
			errno = EINTR;
			return -1;
		}
		/* A stalled stdin must not keep us from stopping. */
		if (r->cancel_fd >= 0) {
			if (poll(pfd, 2, -1) < 0) {
				if (errno == EINTR)
					continue;
				return -1;
			}
			if (pfd[1].revents) {
				r->cancelled = 1;
				errno = ECANCELED;
				return -1;
			}
		}
		n = read(r->fd, r->buf, sizeof(r->buf));
		if (n >= 0 || errno != EINTR)
			break;
	}
	if (n > 0) {
		if (r->hash)
			chom_sha256_update(r->hash, r->buf, (size_t)n);
		__atomic_add_fetch(&r->count, (unsigned long long)n,
				   __ATOMIC_RELAXED);
	}
	return n;
}

static ssize_t
read_cb(struct archive *a, void *client, const void **buff)
{
	struct reader *r = client;
	ssize_t n = reader_read(r);

	if (n < 0) {
		archive_set_error(
		    a, errno, errno == EINTR ? "interrupted" : "read error");
		return -1;
	}
	*buff = r->buf;
	return n;
}

/* One node per path extracted, and per directory implied by one. */
struct node {
	char *path;
	int type; /* AE_IFREG, AE_IFDIR, AE_IFLNK */
};

static int
node_cmp(const void *a, const void *b)
{
	return strcmp(((const struct node *)a)->path,
		      ((const struct node *)b)->path);
}

static void
node_free(void *p)
{
	struct node *n = p;

	free(n->path);
	free(n);
}

static struct node *
node_find(void *const *root, const char *path)
{
	struct node key = { (char *)path, 0 };
	struct node *const *found = tfind(&key, root, node_cmp);

	return found ? *found : NULL;
}

static int
node_add(void **root, const char *path, int type)
{
	struct node *n = malloc(sizeof(*n));
	struct node *const *slot;

	if (!n || !(n->path = strdup(path))) {
		free(n);
		return -1;
	}
	n->type = type;
	slot = tsearch(n, root, node_cmp);
	if (!slot) {
		node_free(n);
		return -1;
	}
	if (*slot != n) { /* already there: update its type */
		(*slot)->type = type;
		node_free(n);
	}
	return 0;
}

/* The length of the UTF-8 sequence at s; 0 if malformed, overlong, a
 * surrogate or beyond U+10FFFF. */
static size_t
utf8_len(const unsigned char *s)
{
	unsigned char c = s[0];
	size_t n, i;
	unsigned long cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, cp = c & 0x07;
	else
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

int
chom_extract_check_name(const char *name, char *norm, size_t size,
			const char **why)
{
	const unsigned char *p = (const unsigned char *)name;
	size_t o = 0;

	if (!name || !*name)
		return *why = "empty name", -1;
	while (*p) {
		size_t n = utf8_len(p);

		if (n == 0)
			return *why = "name is not valid UTF-8", -1;
		if (n == 1 && (*p < 0x20 || *p == 0x7f))
			return *why = "control character in name", -1;
		p += n;
	}
	if (name[0] == '/')
		return *why = "absolute path", -1;
	for (p = (const unsigned char *)name; *p;) {
		const char *c = (const char *)p;
		size_t len = strcspn(c, "/");

		p += len;
		if (*p == '/')
			p++;
		if (len == 0 || (len == 1 && c[0] == '.'))
			continue;
		if (len == 2 && c[0] == '.' && c[1] == '.')
			return *why = "'..' in path", -1;
		if (o + (o ? 1 : 0) + len + 1 > size)
			return *why = "name too long", -1;
		if (o)
			norm[o++] = '/';
		memcpy(norm + o, c, len);
		o += len;
	}
	norm[o] = '\0';
	return 0;
}

int
chom_extract_check_symlink(const char *path, const char *target,
			   const char **why)
{
	long depth = 0;
	int named = 0;
	const char *p;

	if (!target || !*target)
		return *why = "symlink with an empty target", -1;
	if (target[0] == '/')
		return *why = "absolute symlink", -1;
	for (p = path; *p; p++)
		depth += *p == '/';
	/* Only leading "..": they climb real directories of the tree, so what
	 * is checked here is what the kernel resolves. A ".." after a name
	 * could climb out of a symlinked directory. */
	for (p = target; *p;) {
		size_t len = strcspn(p, "/");

		if (len == 2 && p[0] == '.' && p[1] == '.') {
			if (named)
				return *why = "'..' after a name in symlink "
					      "target",
				       -1;
			if (--depth < 0)
				return *why = "symlink leaves the release", -1;
		} else if (len > 0 && !(len == 1 && p[0] == '.')) {
			named = 1;
		}
		p += len;
		if (*p == '/')
			p++;
	}
	return 0;
}

/* The first proper prefix of path that the archive made a symlink, if any. */
static const char *
through_symlink(void *const *root, const char *path, char *buf, size_t size)
{
	const char *s;

	for (s = strchr(path, '/'); s; s = strchr(s + 1, '/')) {
		struct node *n;
		size_t len = (size_t)(s - path);

		if (len >= size)
			return NULL;
		memcpy(buf, path, len);
		buf[len] = '\0';
		n = node_find(root, buf);
		if (n && n->type == AE_IFLNK)
			return buf;
	}
	return NULL;
}

static int
add_parents(void **root, const char *path)
{
	char buf[4096];
	const char *s;

	for (s = strchr(path, '/'); s; s = strchr(s + 1, '/')) {
		size_t len = (size_t)(s - path);

		if (len >= sizeof(buf))
			return -1;
		memcpy(buf, path, len);
		buf[len] = '\0';
		if (!node_find(root, buf) && node_add(root, buf, AE_IFDIR) < 0)
			return -1;
	}
	return 0;
}

/*
 * The decompressing thread: reads and hashes the artifact, and writes it
 * decompressed (libarchive's raw format behind every filter) into a pipe
 * that the extracting thread reads. Inflating on one core while the other
 * creates files is what keeps a one-pass stage as fast as a pipeline of
 * gzip and tar.
 */
struct pump {
	struct reader in;
	int out_fd;
	int failed;
	struct chom_err err;
	unsigned char out[READ_BLOCK];
};

struct job {
	const struct chom_extract_opts *o;
	struct chom_extract_stats *st;
	struct chom_err *e;
	struct archive *in, *out;
	unsigned long long *in_count; /* bytes of the artifact read so far */
	void *paths;
	char norm[4096], link[4096], tmp[4096], shown[512];
};

static int
refuse(struct job *j, const char *name, const char *why)
{
	chom_escape(name, j->shown, sizeof(j->shown));
	return chom_err_set(j->e, CHOM_EXIT_FAIL, "refused entry '%s': %s",
			    j->shown, why);
}

static int
disk_error(struct job *j, struct archive *a, const char *name)
{
	int errnum = archive_errno(a);

	chom_escape(name, j->shown, sizeof(j->shown));
	if (errnum == ENOSPC || errnum == EDQUOT)
		return chom_err_set(j->e, CHOM_EXIT_FAIL,
				    "no space left on device writing '%s'",
				    j->shown);
	return chom_err_set(j->e, CHOM_EXIT_FAIL, "cannot write '%s': %s",
			    j->shown, archive_error_string(a));
}

static int
read_error(struct job *j, struct archive *a)
{
	if (j->o->stop && *j->o->stop)
		return chom_err_set(j->e, 128 + *j->o->stop, "interrupted");
	return chom_err_set(j->e, CHOM_EXIT_FAIL, "bad archive: %s",
			    archive_error_string(a));
}

/* Vets one entry, rewriting its names to their normal form. 1: skip it. */
static int
vet(struct job *j, struct archive_entry *ent)
{
	const char *name = archive_entry_pathname(ent);
	const char *hl = archive_entry_hardlink(ent);
	const char *why, *via;
	int type = archive_entry_filetype(ent);
	struct node *n;

	if (!name)
		return chom_err_set(j->e, CHOM_EXIT_FAIL,
				    "refused entry without a readable name");
	if (chom_extract_check_name(name, j->norm, sizeof(j->norm), &why) < 0)
		return refuse(j, name, why);
	if (j->norm[0] == '\0')
		return 1; /* "./": the release directory itself */
	if (hl) {
		if (chom_extract_check_name(hl, j->link, sizeof(j->link),
					    &why) < 0)
			return refuse(j, name, "hard link leaves the release");
		n = node_find(&j->paths, j->link);
		if (!n || n->type != AE_IFREG)
			return refuse(
			    j, name,
			    "hard link to a path that is not an earlier "
			    "file of the archive");
		type = AE_IFREG;
	} else {
		switch (type) {
		case AE_IFREG:
		case AE_IFDIR: break;
		case AE_IFLNK:
			if (j->o->any_symlink) {
				const char *t = archive_entry_symlink(ent);

				if (!t || !*t)
					return refuse(
					    j, name,
					    "symlink with an empty target");
				break;
			}
			if (chom_extract_check_symlink(
				j->norm, archive_entry_symlink(ent), &why) < 0)
				return refuse(j, name, why);
			break;
		case AE_IFCHR:
		case AE_IFBLK: return refuse(j, name, "device node");
		case AE_IFIFO: return refuse(j, name, "FIFO");
		case AE_IFSOCK: return refuse(j, name, "socket");
		default: return refuse(j, name, "unsupported entry type");
		}
	}
	via = through_symlink(&j->paths, j->norm, j->tmp, sizeof(j->tmp));
	if (via)
		return refuse(j, name, "path passes through a symlink");
	n = node_find(&j->paths, j->norm);
	if (n && !(n->type == AE_IFDIR && type == AE_IFDIR))
		return refuse(j, name, "duplicate entry");
	if (j->o->max_files && j->st->entries + 1 > j->o->max_files)
		return chom_err_set(j->e, CHOM_EXIT_FAIL,
				    "more than %llu entries (--max-files)",
				    j->o->max_files);
	if (archive_entry_size_is_set(ent) && j->o->max_bytes &&
	    j->st->bytes + (unsigned long long)archive_entry_size(ent) >
		j->o->max_bytes)
		return refuse(j, name, "the release would exceed --max-bytes");
	if (add_parents(&j->paths, j->norm) < 0 ||
	    node_add(&j->paths, j->norm, type) < 0)
		return chom_err_set(j->e, CHOM_EXIT_FAIL, "out of memory");
	archive_entry_set_pathname(ent, j->norm);
	if (hl)
		archive_entry_set_hardlink(ent, j->link);
	archive_entry_set_perm(ent, archive_entry_perm(ent) & 01777);
	return 0;
}

static int
copy_data(struct job *j, const char *name)
{
	const void *buf;
	size_t size;
	la_int64_t off;
	int r;

	for (;;) {
		r = archive_read_data_block(j->in, &buf, &size, &off);
		if (r == ARCHIVE_EOF)
			return 0;
		if (r < ARCHIVE_WARN)
			return read_error(j, j->in);
		j->st->bytes += size;
		if (j->o->max_bytes && j->st->bytes > j->o->max_bytes)
			return refuse(j, name,
				      "the release would exceed --max-bytes");
		/* A failed write(2) is only ARCHIVE_WARN to libarchive, which
		 * then pads the file to size: for us it is the end. */
		if (archive_write_data_block(j->out, buf, size, off) !=
		    ARCHIVE_OK)
			return disk_error(j, j->out, name);
	}
}

static int
run(struct job *j)
{
	struct archive_entry *ent;
	int r;

	for (;;) {
		r = archive_read_next_header(j->in, &ent);
		if (r == ARCHIVE_EOF)
			return 0;
		if (r < ARCHIVE_WARN)
			return read_error(j, j->in);
		r = vet(j, ent);
		if (r < 0)
			return -1;
		if (r > 0)
			continue;
		if (j->o->stop && *j->o->stop)
			return chom_err_set(j->e, 128 + *j->o->stop,
					    "interrupted");
		if (archive_write_header(j->out, ent) != ARCHIVE_OK)
			return disk_error(j, j->out, j->norm);
		if (archive_entry_size(ent) > 0 && copy_data(j, j->norm) < 0)
			return -1;
		if (archive_write_finish_entry(j->out) != ARCHIVE_OK)
			return disk_error(j, j->out, j->norm);
		j->st->entries++;
		if (j->o->progress && (j->st->entries & 63) == 0) {
			j->st->in_bytes =
			    __atomic_load_n(j->in_count, __ATOMIC_RELAXED);
			j->o->progress(j->o->progress_ctx, j->st);
		}
	}
}

static int
write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void
pump_fail(struct pump *p, struct archive *a, const char *what)
{
	if (p->in.cancelled)
		return; /* the extractor failed first and said why */
	p->failed = 1;
	if (p->in.stop && *p->in.stop)
		chom_err_set(&p->err, 128 + *p->in.stop, "interrupted");
	else if (a)
		chom_err_set(&p->err, CHOM_EXIT_FAIL, "bad archive: %s",
			     archive_error_string(a) ? archive_error_string(a)
						     : what);
	else
		chom_err_sys(&p->err, CHOM_EXIT_FAIL, "%s", what);
}

static int
is_zip(const unsigned char *p, size_t n)
{
	return n >= 4 && !memcmp(p, "PK\3\4", 4);
}

static void *
pump_main(void *arg)
{
	struct pump *p = arg;
	struct archive_entry *ent;
	struct archive *a;
	ssize_t n;
	int first = 1;

	a = archive_read_new();
	if (!a) {
		pump_fail(p, NULL, "out of memory");
		goto out;
	}
	archive_read_support_filter_all(a);
	archive_read_support_format_raw(a);
	if (archive_read_open(a, &p->in, NULL, read_cb, NULL) != ARCHIVE_OK ||
	    archive_read_next_header(a, &ent) != ARCHIVE_OK) {
		pump_fail(p, a, "unreadable");
		goto out;
	}
	while ((n = archive_read_data(a, p->out, sizeof(p->out))) != 0) {
		if (n < 0) {
			pump_fail(p, a, "corrupt data");
			goto out;
		}
		if (first && is_zip(p->out, (size_t)n)) {
			p->failed = 1;
			chom_err_set(&p->err, CHOM_EXIT_FAIL,
				     "bad archive: a zip inside a compressed "
				     "stream is not supported");
			goto out;
		}
		first = 0;
		if (write_all(p->out_fd, p->out, (size_t)n) < 0) {
			if (errno == EPIPE)
				break; /* the archive ended before its padding
					*/
			pump_fail(p, NULL, "write to extractor");
			goto out;
		}
	}
	/* Hash what the decompressor did not need (trailing bytes), unless
	 * the extraction failed and the digest no longer matters. */
	while ((n = reader_read(&p->in)) != 0) {
		if (n < 0) {
			if (errno != ECANCELED)
				pump_fail(p, NULL, "read artifact");
			break;
		}
	}
out:
	archive_read_free(a);
	close(p->out_fd);
	return NULL;
}

/*
 * A zip's directory, with the Unix modes and symlinks, is at its end, so a
 * zip is copied (and hashed) into an unnamed file in the target directory
 * and read from there with seeks: what is extracted is what was hashed,
 * from a file or from stdin alike.
 */
static int
open_zip(struct job *j, struct reader *in, int *spool)
{
	ssize_t n;

	*spool = open(j->o->dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (*spool < 0)
		return chom_err_sys(j->e, CHOM_EXIT_FAIL, "spool zip in %s",
				    j->o->dir);
	while ((n = reader_read(in)) != 0) {
		if (n < 0)
			return chom_err_sys(j->e,
					    errno == EINTR ? 128 + *j->o->stop
							   : CHOM_EXIT_FAIL,
					    "read artifact");
		if (write_all(*spool, in->buf, (size_t)n) < 0)
			return chom_err_sys(j->e, CHOM_EXIT_FAIL,
					    errno == ENOSPC
						? "no space left on device "
						  "spooling the zip"
						: "spool zip");
	}
	if (lseek(*spool, 0, SEEK_SET) < 0)
		return chom_err_sys(j->e, CHOM_EXIT_FAIL, "seek zip spool");
	if (archive_read_open_fd(j->in, *spool, READ_BLOCK) != ARCHIVE_OK)
		return read_error(j, j->in);
	return 0;
}

/* Any other format: decompressed by the pump thread into a pipe. */
static int
start_pump(struct job *j, struct pump *p, struct reader *rd, pthread_t *tid,
	   int *cancel_fd)
{
	sigset_t all, old;
	int pipefd[2], rc;

	*cancel_fd = eventfd(0, EFD_CLOEXEC);
	if (*cancel_fd < 0)
		return chom_err_sys(j->e, CHOM_EXIT_FAIL, "eventfd");
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return chom_err_sys(j->e, CHOM_EXIT_FAIL, "pipe");
	(void)fcntl(pipefd[1], F_SETPIPE_SZ, 1 << 20);
	p->in.cancel_fd = *cancel_fd;
	p->out_fd = pipefd[1];
	*rd = (struct reader){ .fd = pipefd[0],
			       .cancel_fd = -1,
			       .stop = j->o->stop };
	/* Signals go to the extracting thread, which then cancels the pump;
	 * a write to the pipe after the extractor is done fails with EPIPE. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(tid, NULL, pump_main, p);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		close(pipefd[0]);
		close(pipefd[1]);
		rd->fd = -1;
		return chom_err_set(j->e, CHOM_EXIT_FAIL,
				    "cannot start a thread");
	}
	if (archive_read_open(j->in, rd, NULL, read_cb, NULL) != ARCHIVE_OK)
		return read_error(j, j->in);
	return 0;
}

int
chom_extract(const struct chom_extract_opts *o, struct chom_extract_stats *st,
	     struct chom_err *e)
{
	struct job j = { .o = o, .st = st, .e = e };
	struct reader *rd = NULL;
	struct pump *p = NULL;
	struct stat sb;
	pthread_t tid;
	ssize_t n;
	int cwd = -1, dir = -1, cancel = -1, spool = -1, rc = -1;

	memset(st, 0, sizeof(*st));
	if (fstat(o->in_fd, &sb) == 0 && S_ISREG(sb.st_mode))
		st->in_total = (unsigned long long)sb.st_size;
	rd = calloc(1, sizeof(*rd));
	p = calloc(1, sizeof(*p));
	if (!rd || !p) {
		chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
		goto out;
	}
	*rd = (struct reader){ .fd = -1, .cancel_fd = -1 };
	p->in = (struct reader){ .fd = o->in_fd,
				 .cancel_fd = -1,
				 .hash = o->hash,
				 .stop = o->stop };
	j.in_count = &p->in.count;
	cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cwd < 0)
		cwd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	dir = open(o->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	j.in = archive_read_new();
	j.out = archive_write_disk_new();
	if (cwd < 0 || dir < 0) {
		chom_err_sys(e, CHOM_EXIT_FAIL, "open %s", o->dir);
		goto out;
	}
	if (!j.in || !j.out) {
		chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
		goto out;
	}
	archive_read_support_filter_all(j.in);
	archive_read_support_format_all(j.in);
	/*
	 * No ARCHIVE_EXTRACT_SECURE_SYMLINKS: it opens every directory of
	 * every path (six times the system calls of tar on a Laravel tree),
	 * and vet() already refuses any entry that passes through a symlink:
	 * the directory starts empty and only vetted entries are written in
	 * it, so no other symlink can be on a path. The cheap string checks
	 * stay as a second guard.
	 */
	archive_write_disk_set_options(
	    j.out, ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM |
		       ARCHIVE_EXTRACT_SECURE_NODOTDOT |
		       ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS);
	/* The first block says whether this is a zip. */
	n = reader_read(&p->in);
	if (n <= 0) {
		if (n == 0)
			chom_err_set(e, CHOM_EXIT_FAIL, "bad archive: empty");
		else
			chom_err_sys(
			    e, errno == EINTR ? 128 + *o->stop : CHOM_EXIT_FAIL,
			    "read artifact");
		goto out;
	}
	p->in.pending = (size_t)n;
	if (is_zip(p->in.buf, (size_t)n)
		? open_zip(&j, &p->in, &spool) < 0
		: start_pump(&j, p, rd, &tid, &cancel) < 0)
		goto out;
	/* libarchive's secure flags judge relative names, so extract with the
	 * target as working directory and give it names relative to it. */
	if (fchdir(dir) < 0) {
		chom_err_sys(e, CHOM_EXIT_FAIL, "chdir %s", o->dir);
		goto out;
	}
	rc = run(&j);
	if (rc == 0 && st->entries == 0)
		rc = chom_err_set(e, CHOM_EXIT_FAIL,
				  "bad archive: no entries to extract");
	/* Directory modes and times are set at close, still inside the
	 * target. */
	if (archive_write_close(j.out) != ARCHIVE_OK && rc == 0)
		rc = disk_error(&j, j.out, ".");
	if (fchdir(cwd) < 0 && rc == 0)
		rc = chom_err_sys(e, CHOM_EXIT_FAIL, "chdir back");
out:
	if (rd && rd->fd >= 0) {
		uint64_t one = 1;

		/* Whatever the outcome, the pump finishes: cancelled if we
		 * failed, else hashing the artifact to its end. */
		if (rc < 0 && write(cancel, &one, sizeof(one)) < 0)
			rc = -1;
		close(rd->fd);
		pthread_join(tid, NULL);
		/* The pump saw the cause (a corrupt stream, a read error) of
		 * what the extractor saw as a truncated archive. */
		if (p->failed) {
			*e = p->err;
			rc = -1;
		}
	}
	if (p)
		st->in_bytes = __atomic_load_n(&p->in.count, __ATOMIC_RELAXED);
	if (rc == 0 && o->progress)
		o->progress(o->progress_ctx, st);
	archive_read_free(j.in);
	archive_write_free(j.out);
	tdestroy(j.paths, node_free);
	if (cwd >= 0)
		close(cwd);
	if (dir >= 0)
		close(dir);
	if (cancel >= 0)
		close(cancel);
	if (spool >= 0)
		close(spool);
	free(rd);
	free(p);
	return rc;
}
