/* The unit tests' shared fixtures: see testutil.h. */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "testutil.h"

#include "exitcode.h"
#include "history.h"
#include "lock.h"

void *
tu_fixture_new(size_t size, size_t off, size_t dirsize, const char *name)
{
	char *fx = calloc(1, size);

	if (!fx)
		return NULL;
	snprintf(fx + off, dirsize, "/tmp/chom-test-%s-XXXXXX", name);
	if (!mkdtemp(fx + off)) {
		free(fx);
		return NULL;
	}
	return fx;
}

int
tu_fixture_free(void *fx, const char *dir)
{
	tu_rm_rf(dir);
	free(fx);
	return 0;
}

static int
rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	return type == FTW_DP ? rmdir(path) : unlink(path);
}

void
tu_rm_rf(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void
put(const char *path, const char *mode, const char *text)
{
	FILE *f = fopen(path, mode);

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

void
tu_write(const char *path, const char *text)
{
	put(path, "w", text);
}

void
tu_append(const char *path, const char *text)
{
	put(path, "a", text);
}

void
tu_read(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		TU_FAILF("cannot open %s: %s", path, strerror(errno));
	n = fread(buf, 1, size - 1, f);
	buf[n] = '\0';
	fclose(f);
}

int
tu_count_names(const char *dir, const char *pattern)
{
	DIR *d = opendir(dir);
	struct dirent *ent;
	int n = 0;

	assert_non_null(d);
	while ((ent = readdir(d)))
		if (strcmp(ent->d_name, ".") && strcmp(ent->d_name, "..") &&
		    !fnmatch(pattern, ent->d_name, 0))
			n++;
	closedir(d);
	return n;
}

void
tu_reap(pid_t *pid)
{
	if (*pid > 0) {
		kill(*pid, SIGKILL);
		waitpid(*pid, NULL, 0);
	}
	*pid = 0;
}

int
tu_fork_ready(pid_t *pid, int (*fn)(void *), void *arg)
{
	int ready[2];

	assert_int_equal(pipe(ready), 0);
	*pid = fork();
	assert_true(*pid >= 0);
	if (*pid == 0) {
		close(ready[0]);
		if (fn(arg) != 0 || write(ready[1], "r", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(ready[1]);
	return ready[0];
}

void
tu_await_ready(int fd)
{
	char c = 0;

	assert_int_equal(read(fd, &c, 1), 1);
	close(fd);
}

void
tu_spawn(pid_t *pid, int (*fn)(void *), void *arg)
{
	tu_await_ready(tu_fork_ready(pid, fn, arg));
}

void
tu_make_tgz(const char *path, const struct tu_ent *ents, size_t n)
{
	struct archive *a = archive_write_new();
	size_t i;

	assert_non_null(a);
	assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
	assert_int_equal(archive_write_set_format_pax_restricted(a),
			 ARCHIVE_OK);
	assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
	for (i = 0; i < n; i++) {
		const struct tu_ent *t = &ents[i];
		struct archive_entry *ae = archive_entry_new();
		size_t len = 0;

		assert_non_null(ae);
		archive_entry_set_pathname(ae, t->name);
		archive_entry_set_perm(ae, (mode_t)t->mode);
		archive_entry_set_mtime(ae, 1700000000, 0);
		archive_entry_set_uid(ae, 4321);
		archive_entry_set_gid(ae, 4321);
		archive_entry_set_uname(ae, "nobody-here");
		archive_entry_set_gname(ae, "nobody-here");
		switch (t->type) {
		case AE_IFREG:
			len = strlen(t->data);
			archive_entry_set_filetype(ae, AE_IFREG);
			archive_entry_set_size(ae, (la_int64_t)len);
			break;
		case TU_HARDLINK:
			archive_entry_set_filetype(ae, AE_IFREG);
			archive_entry_set_hardlink(ae, t->data);
			archive_entry_set_size(ae, 0);
			break;
		case AE_IFLNK:
			archive_entry_set_filetype(ae, AE_IFLNK);
			archive_entry_set_symlink(ae, t->data);
			break;
		default:
			archive_entry_set_filetype(ae, (unsigned)t->type);
			break;
		}
		if (archive_write_header(a, ae) < ARCHIVE_WARN)
			TU_FAILF("write header %s: %s", t->name,
				 archive_error_string(a));
		if (len)
			assert_int_equal(archive_write_data(a, t->data, len),
					 (la_ssize_t)len);
		archive_entry_free(ae);
	}
	assert_int_equal(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
}

int
tu_layout(struct chom_layout *l, const char *base)
{
	struct chom_err e;

	if (chom_layout_init(l, base, &e) < 0 || chom_layout_prepare(l, &e) < 0)
		return -1;
	return 0;
}

void
tu_history_staged(const char *history, const char *id, time_t when)
{
	char line[256], stamp[32];
	struct tm tm;

	gmtime_r(&when, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(line, sizeof(line), "%s\tstage\t-\t%s\ttester\n", stamp, id);
	tu_append(history, line);
}

void
tu_expect_last_history(const char *history, const char *action,
		       const char *from, const char *to)
{
	struct chom_history_entry *h;
	struct chom_err e = { 0 };
	size_t n;

	assert_int_equal(chom_history_read(history, &h, &n, &e), 0);
	assert_true(n > 0);
	if (strcmp(h[n - 1].action, action) || strcmp(h[n - 1].from, from) ||
	    strcmp(h[n - 1].to, to)) {
		char got[256];

		snprintf(got, sizeof(got), "%s %s %s", h[n - 1].action,
			 h[n - 1].from, h[n - 1].to);
		free(h);
		TU_FAILF("last history line \"%s\", want \"%s %s %s\"", got,
			 action, from, to);
	}
	free(h);
}

void
tu_expect_lock_free(const char *path)
{
	struct chom_lock lk;
	struct chom_err e = { 0 };

	if (chom_lock_acquire(&lk, path, 0, &e) != 0)
		TU_FAILF("the lock is still held: %s", e.msg);
	chom_lock_release(&lk);
}

/* A tu_mem_new() sink, into a struct tu_buf. */
struct mem {
	struct chom_sink sink;
	struct tu_buf *b;
	size_t limit;
	int fail_close;
};

static int
mem_write(struct chom_sink *s, const void *p, size_t len, struct chom_err *e)
{
	struct mem *m = (struct mem *)s;
	struct tu_buf *b = m->b;

	if (b->len + len > m->limit)
		return chom_err_set(e, CHOM_EXIT_UNSAFE, "disk full");
	if (b->len + len > b->cap) {
		b->cap = (b->len + len) * 2;
		b->p = realloc(b->p, b->cap);
		assert_non_null(b->p);
	}
	memcpy(b->p + b->len, p, len);
	b->len += len;
	return 0;
}

static int
mem_close(struct chom_sink *s, struct chom_err *e)
{
	struct mem *m = (struct mem *)s;

	if (m->fail_close)
		return chom_err_set(e, CHOM_EXIT_UNSAFE, "close failed");
	m->b->closed++;
	return 0;
}

static void
mem_free(struct chom_sink *s)
{
	free(s);
}

struct chom_sink *
tu_mem_new(struct tu_buf *b, size_t limit, int fail_close)
{
	struct mem *m = calloc(1, sizeof(*m));

	assert_non_null(m);
	memset(b, 0, sizeof(*b));
	m->sink.write = mem_write;
	m->sink.close = mem_close;
	m->sink.free = mem_free;
	m->b = b;
	m->limit = limit;
	m->fail_close = fail_close;
	return &m->sink;
}

static uint64_t
rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dULL;
}

static const char *const words[] = {
	"the",      "order",   "customer", "id",        "name",     "status",
	"created",  "value",   "item",     "price",     "total",    "user",
	"account",  "invoice", "payment",  "address",   "city",     "shipped",
	"pending",  "return",  "count",    "buffer",    "length",   "error",
	"result",   "config",  "server",   "request",   "response", "table",
	"index",    "key",     "product",  "category",  "stock",    "warehouse",
	"delivery", "note",    "email",    "phone",     "country",  "region",
	"discount", "tax",     "currency", "quantity",  "session",  "token",
	"cache",    "queue",   "worker",   "thread",    "handler",  "timeout",
	"retry",    "backup",  "restore",  "snapshot",  "release",  "deploy",
	"health",   "metric",  "latency",  "throughput"
};
#define NWORDS (sizeof(words) / sizeof(words[0]))

/* Frequent words often, rare ones now and then, as in real text. */
static const char *
word(uint64_t *s)
{
	uint64_t r = rnd(s);

	return words[(r & 1 ? (r >> 1) % 12 : (r >> 1) % NWORDS)];
}

unsigned char *
tu_gen_text(size_t n, uint64_t seed)
{
	unsigned char *p = malloc(n ? n : 1);
	uint64_t s = seed * 0x9e3779b97f4a7c15ULL + 1;
	unsigned long id = 1;
	char line[4096];
	size_t off = 0;

	assert_non_null(p);
	while (off < n) {
		uint64_t kind = rnd(&s) % 100;
		int len = 0, i, tuples;

		if (kind < 60) {
			tuples = 3 + (int)(rnd(&s) % 12);
			len = snprintf(line, sizeof(line),
				       "INSERT INTO `%s_%s` VALUES ", word(&s),
				       word(&s));
			for (i = 0; i < tuples; i++)
				len += snprintf(
				    line + len, sizeof(line) - (size_t)len,
				    "(%lu,'%s %s %s','2024-%02d-%02d "
				    "%02d:%02d:%02d',%lu.%02lu,%s)%s",
				    id++, word(&s), word(&s), word(&s),
				    (int)(rnd(&s) % 12) + 1,
				    (int)(rnd(&s) % 28) + 1,
				    (int)(rnd(&s) % 24), (int)(rnd(&s) % 60),
				    (int)(rnd(&s) % 60),
				    (unsigned long)(rnd(&s) % 10000),
				    (unsigned long)(rnd(&s) % 100),
				    rnd(&s) % 3 ? "NULL" : "'shipped'",
				    i + 1 < tuples ? "," : ";\n");
		} else if (kind < 85) {
			len = snprintf(line, sizeof(line),
				       "\tif (%s->%s_%s == %s)\n\t\treturn "
				       "%s_%s(%s, %d);\n",
				       word(&s), word(&s), word(&s), word(&s),
				       word(&s), word(&s), word(&s),
				       (int)(rnd(&s) % 100));
		} else {
			len = snprintf(line, sizeof(line),
				       "-- Table structure for table `%s_%s`\n"
				       "  `%s_id` int(11) NOT NULL DEFAULT "
				       "'%d',\n",
				       word(&s), word(&s), word(&s),
				       (int)(rnd(&s) % 1000));
		}
		if ((size_t)len > n - off)
			len = (int)(n - off);
		memcpy(p + off, line, (size_t)len);
		off += (size_t)len;
	}
	return p;
}

unsigned char *
tu_gen_random(size_t n, uint64_t seed)
{
	unsigned char *p = malloc(n ? n : 1);
	uint64_t s = seed + 0x1234567;

	assert_non_null(p);
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(rnd(&s) >> 56);
	return p;
}

int
tu_feed(struct chom_sink *s, const unsigned char *p, size_t n, size_t chunk,
	struct chom_err *e)
{
	size_t off, k;

	if (!chunk)
		chunk = n ? n : 1;
	for (off = 0; off < n; off += k) {
		k = n - off < chunk ? n - off : chunk;
		if (chom_sink_write(s, p + off, k, e))
			return -1;
	}
	return chom_sink_close(s, e);
}

int
tu_feed_in_place(struct chom_sink *s, const unsigned char *p, size_t n,
		 size_t chunk, struct chom_err *e)
{
	size_t off = 0, room, k;
	unsigned char *dst;

	for (;;) {
		room = 0;
		if (!(dst = chom_sink_space(s, &room)) || !room)
			TU_FAILF("no space at byte %zu of %zu", off, n);
		if (off == n)
			break;
		k = n - off < room ? n - off : room;
		if (chunk && k > chunk)
			k = chunk;
		memcpy(dst, p + off, k);
		if (chom_sink_write(s, dst, k, e))
			return -1;
		off += k;
	}
	return chom_sink_close(s, e);
}

void
tu_put_file(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
}

unsigned char *
tu_get_file(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	struct stat st;
	unsigned char *p;

	assert_non_null(f);
	assert_int_equal(fstat(fileno(f), &st), 0);
	p = malloc((size_t)st.st_size + 1);
	assert_non_null(p);
	*n = fread(p, 1, (size_t)st.st_size, f);
	assert_int_equal(*n, (size_t)st.st_size);
	fclose(f);
	return p;
}

off_t
tu_file_size(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

void
tu_sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	if (st != 0)
		TU_FAILF("`%s` exited with status %d", cmd, st);
}

double
tu_now(void)
{
	return chom_mono();
}

void
tu_expect_same(const struct tu_buf *out, const unsigned char *p, size_t n,
	       const char *what)
{
	if (out->len != n || (n && memcmp(out->p, p, n)))
		TU_FAILF("%s: %zu bytes back for %zu, or different", what,
			 out->len, n);
}

void
tu_shared_testdata(const char *name, char *out, size_t size)
{
	const char *env = getenv("CHOM_SHARED");
	char exe[PATH_MAX], probe[PATH_MAX + 32], *slash;
	ssize_t n;

	*out = '\0';
	if (env && *env) {
		snprintf(out, size, "%s/testdata/%s", env, name);
		return;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return;
	exe[n] = '\0';
	while ((slash = strrchr(exe, '/')) && slash != exe) {
		*slash = '\0';
		snprintf(probe, sizeof(probe), "%s/lib/sink.h", exe);
		if (access(probe, F_OK) == 0) {
			snprintf(out, size, "%s/../shared/testdata/%s", exe,
				 name);
			return;
		}
	}
}
