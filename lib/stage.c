#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "exitcode.h"
#include "fsutil.h"
#include "history.h"
#include "lock.h"
#include "stage.h"

#define TMP_PREFIX ".tmp-"

/* A temporary directory is stale when its owner holds no flock on it and
 * the pid in its name is gone: both, so that neither pid reuse nor the
 * instant between mkdir and flock can make us remove a live one. */
static int
stale(int dirfd_, const char *name)
{
	const char *dash = strrchr(name, '-');
	long pid = dash ? strtol(dash + 1, NULL, 10) : 0;
	int fd, free_;

	if (pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM))
		return 0;
	fd = openat(dirfd_, name,
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return 0;
	free_ = flock(fd, LOCK_EX | LOCK_NB) == 0;
	close(fd);
	return free_;
}

int
chom_stage_clean_stale(const struct chom_layout *l, struct chom_err *e)
{
	char path[PATH_MAX];
	struct dirent *d;
	DIR *dir;
	int n = 0;

	dir = opendir(l->releases);
	if (!dir) {
		if (errno == ENOENT)
			return 0;
		return chom_err_sys(e, CHOM_EXIT_FAIL, "open %s", l->releases);
	}
	while ((d = readdir(dir))) {
		if (strncmp(d->d_name, TMP_PREFIX, strlen(TMP_PREFIX)) ||
		    !stale(dirfd(dir), d->d_name))
			continue;
		if (chom_path(path, sizeof(path), e, "%s/%s", l->releases,
			      d->d_name) < 0 ||
		    chom_rmtree(path, e) < 0) {
			closedir(dir);
			return -1;
		}
		n++;
	}
	closedir(dir);
	return n;
}

int
chom_stage_check_link(const char *path, struct chom_err *e)
{
	const char *p;

	if (!*path || path[0] == '/')
		return chom_err_set(e, CHOM_EXIT_USAGE,
				    "--link %s: must be a relative path", path);
	for (p = path; *p;) {
		size_t len = strcspn(p, "/");

		if (len == 0 || (len == 1 && p[0] == '.') ||
		    (len == 2 && p[0] == '.' && p[1] == '.'))
			return chom_err_set(
			    e, CHOM_EXIT_USAGE,
			    "--link %s: empty, '.' or '..' component", path);
		p += len;
		if (*p == '/' && *++p == '\0')
			return chom_err_set(e, CHOM_EXIT_USAGE,
					    "--link %s: trailing '/'", path);
	}
	return 0;
}

static int
parent_of(const char *path, char *buf, size_t size, struct chom_err *e)
{
	char tmp[PATH_MAX];

	if (chom_path(tmp, sizeof(tmp), e, "%s", path) < 0)
		return -1;
	return chom_path(buf, size, e, "%s", dirname(tmp));
}

/* Replaces PATH in the release at dir by a symlink to BASE/shared/PATH,
 * seeding shared/PATH from the artifact the first time. */
static int
link_shared(const struct chom_layout *l, const char *dir, const char *path,
	    struct chom_err *e)
{
	char rel[PATH_MAX], shared[PATH_MAX], parent[PATH_MAX],
	    target[PATH_MAX];
	struct stat st;
	int in_release, in_shared, depth = 2;
	size_t o = 0;
	const char *p;

	if (chom_path(rel, sizeof(rel), e, "%s/%s", dir, path) < 0 ||
	    chom_path(shared, sizeof(shared), e, "%s/%s", l->shared, path) < 0)
		return -1;
	in_release = lstat(rel, &st) == 0;
	in_shared = lstat(shared, &st) == 0;
	if (!in_shared && !in_release)
		return chom_err_set(
		    e, CHOM_EXIT_FAIL,
		    "--link %s: neither the artifact nor %s has it", path,
		    l->shared);
	if (!in_shared) {
		if (parent_of(shared, parent, sizeof(parent), e) < 0 ||
		    chom_mkdir_p(parent, 0755, e) < 0)
			return -1;
		if (rename(rel, shared) < 0)
			return chom_err_sys(e, CHOM_EXIT_FAIL,
					    "--link %s: seed %s", path, shared);
	} else if (in_release && chom_rmtree(rel, e) < 0) {
		return -1;
	}
	if (parent_of(rel, parent, sizeof(parent), e) < 0 ||
	    chom_mkdir_p(parent, 0755, e) < 0)
		return -1;
	for (p = path; *p; p++)
		depth += *p == '/';
	while (depth-- > 0 && o + 3 < sizeof(target)) {
		memcpy(target + o, "../", 3);
		o += 3;
	}
	target[o] = '\0';
	if (chom_path(target + o, sizeof(target) - o, e, "shared/%s", path) < 0)
		return -1;
	if (symlink(target, rel) < 0)
		return chom_err_sys(e, CHOM_EXIT_FAIL, "--link %s: symlink",
				    path);
	return 0;
}

static int
open_artifact(const char *artifact, int *fd, struct chom_err *e)
{
	struct stat st;

	if (!strcmp(artifact, "-")) {
		*fd = STDIN_FILENO;
		return 0;
	}
	*fd = open(artifact, O_RDONLY | O_CLOEXEC);
	if (*fd < 0)
		return chom_err_sys(e, CHOM_EXIT_FAIL, "open %s", artifact);
	if (fstat(*fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		close(*fd);
		*fd = -1;
		return chom_err_set(e, CHOM_EXIT_USAGE,
				    "%s is a directory, not an artifact",
				    artifact);
	}
	return 0;
}

static int
check_space(const struct chom_layout *l, int fd, struct chom_err *e)
{
	struct statvfs vfs;
	struct stat st;
	unsigned long long avail;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    statvfs(l->releases, &vfs) < 0)
		return 0;
	avail = (unsigned long long)vfs.f_bavail * vfs.f_frsize;
	if (avail < (unsigned long long)st.st_size)
		return chom_err_set(
		    e, CHOM_EXIT_FAIL,
		    "not enough space in %s: %llu bytes free, the "
		    "artifact alone is %llu",
		    l->releases, avail, (unsigned long long)st.st_size);
	return 0;
}

/*
 * Writeback while extracting: the files written so far are pushed to disk
 * every quarter second, so that the syncfs() that makes the release
 * durable finds little left to do rather than the whole tree at once.
 */
struct flusher {
	int fd;
	int done;
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

static void *
flusher_main(void *arg)
{
	struct flusher *f = arg;
	struct timespec ts;

	pthread_mutex_lock(&f->mu);
	while (!f->done) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 250000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&f->cv, &f->mu, &ts);
		if (f->done)
			break;
		pthread_mutex_unlock(&f->mu);
		(void)syncfs(f->fd);
		pthread_mutex_lock(&f->mu);
	}
	pthread_mutex_unlock(&f->mu);
	return NULL;
}

/*
 * Under the deploy lock: the history line, then releases/ID appears whole,
 * then next points at it. The history goes first because it is what a full
 * disk refuses; a failure after it puts the release back where the caller
 * removes it, so nothing half-published remains.
 */
static int
publish(const struct chom_stage_opts *o, const char *tmp, const char *dst,
	struct chom_err *e)
{
	const struct chom_layout *l = o->layout;
	char prev[CHOM_ID_MAX + 1] = "", target[PATH_MAX];
	struct chom_lock lock;
	struct chom_err ignore;
	int rc = -1;

	if (chom_lock_acquire_until(&lock, l->lock, o->wait_s, o->stop, e) < 0)
		return -1;
	if (chom_release_link_id(l->next, prev, sizeof(prev), e) < 0)
		goto out;
	if (lstat(dst, &(struct stat){ 0 }) == 0) {
		chom_err_set(e, CHOM_EXIT_FAIL, "release %s already exists",
			     o->id);
		goto out;
	}
	if (chom_path(target, sizeof(target), e, "releases/%s", o->id) < 0 ||
	    chom_history_append(l->history, "stage", prev, o->id, e) < 0)
		goto out;
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, dst, RENAME_NOREPLACE) < 0) {
		if (errno == EEXIST || errno == ENOTEMPTY)
			chom_err_set(e, CHOM_EXIT_FAIL,
				     "release %s already exists", o->id);
		else
			chom_err_sys(e, CHOM_EXIT_FAIL, "rename to %s", dst);
		goto out;
	}
	if (chom_fsync_dir(l->releases, e) < 0 ||
	    chom_atomic_symlink(target, l->next, e) < 0) {
		if (rename(dst, tmp) == 0)
			chom_fsync_dir(l->releases, &ignore);
		goto out;
	}
	rc = 0;
out:
	chom_lock_release(&lock);
	return rc;
}

int
chom_stage(const struct chom_stage_opts *o, struct chom_stage_result *r,
	   struct chom_err *e)
{
	const struct chom_layout *l = o->layout;
	char tmp[PATH_MAX], prev[CHOM_ID_MAX + 1];
	struct chom_extract_opts xo;
	struct chom_sha256 *hash = NULL;
	struct stat st;
	int in = -1, tmpfd = -1, made = 0, rc = -1, n;
	size_t i;

	memset(r, 0, sizeof(*r));
	if (chom_layout_prepare(l, e) < 0)
		return -1;
	n = chom_stage_clean_stale(l, e);
	if (n < 0)
		return -1;
	r->removed_stale = n;
	if (chom_layout_release(l, o->id, r->path, sizeof(r->path), e) < 0 ||
	    chom_path(tmp, sizeof(tmp), e, "%s/" TMP_PREFIX "%s-%ld",
		      l->releases, o->id, (long)getpid()) < 0)
		return -1;
	if (lstat(r->path, &st) == 0)
		return chom_err_set(e, CHOM_EXIT_FAIL,
				    "release %s already exists", o->id);
	/* A next that is a directory, or another base's, is refused before
	 * any work rather than after it. */
	if (chom_release_link_id(l->next, prev, sizeof(prev), e) < 0)
		return -1;
	if (open_artifact(o->artifact, &in, e) < 0 || check_space(l, in, e) < 0)
		goto out;
	if (mkdir(tmp, 0755) < 0) {
		chom_err_sys(e, CHOM_EXIT_FAIL, "mkdir %s", tmp);
		goto out;
	}
	made = 1;
	tmpfd = open(tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (tmpfd < 0 || flock(tmpfd, LOCK_EX | LOCK_NB) < 0) {
		chom_err_sys(e, CHOM_EXIT_FAIL, "lock %s", tmp);
		goto out;
	}
	hash = chom_sha256_new();
	if (!hash) {
		chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
		goto out;
	}
	xo = (struct chom_extract_opts){
		.in_fd = in,
		.dir = tmp,
		.max_bytes = o->max_bytes,
		.max_files = o->max_files,
		.hash = hash,
		.progress = o->progress,
		.progress_ctx = o->progress_ctx,
		.stop = o->stop,
	};
	{
		struct flusher f = { tmpfd, 0, PTHREAD_MUTEX_INITIALIZER,
				     PTHREAD_COND_INITIALIZER };
		pthread_t tid;
		sigset_t all, old;
		int started, xrc;

		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		started = pthread_create(&tid, NULL, flusher_main, &f) == 0;
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		xrc = chom_extract(&xo, &r->st, e);
		if (started) {
			pthread_mutex_lock(&f.mu);
			f.done = 1;
			pthread_cond_signal(&f.cv);
			pthread_mutex_unlock(&f.mu);
			pthread_join(tid, NULL);
		}
		if (xrc < 0)
			goto out;
	}
	chom_sha256_final_hex(hash, r->sha256);
	if (o->sha256 && strcmp(o->sha256, r->sha256)) {
		chom_err_set(
		    e, CHOM_EXIT_FAIL,
		    "checksum mismatch: expected %s, the artifact is %s",
		    o->sha256, r->sha256);
		goto out;
	}
	for (i = 0; i < o->nlinks; i++)
		if (link_shared(l, tmp, o->links[i], e) < 0)
			goto out;
	/* One syncfs instead of an fsync per file: the whole tree is durable
	 * before the rename makes it visible. */
	if (syncfs(tmpfd) < 0) {
		chom_err_sys(e, CHOM_EXIT_FAIL, "sync %s", tmp);
		goto out;
	}
	if (o->stop && *o->stop) {
		chom_err_set(e, 128 + *o->stop, "interrupted");
		goto out;
	}
	if (publish(o, tmp, r->path, e) < 0)
		goto out;
	made = 0;
	rc = 0;
out:
	if (made) {
		struct chom_err ignore;

		chom_rmtree(tmp, &ignore);
	}
	if (tmpfd >= 0)
		close(tmpfd);
	if (in > STDIN_FILENO)
		close(in);
	chom_sha256_free(hash);
	return rc;
}
