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

#include "testutil.h"

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
