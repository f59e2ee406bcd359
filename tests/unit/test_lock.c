/*
 * Unit tests for lib/lock.c: the deploy lock, taken by this process and
 * fought over by forked children.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "exitcode.h"
#include "lock.h"

#include "testutil.h"

struct fixture {
	char dir[64];
	char lock[128]; /* DIR/.chom/lock: its directory does not exist yet */
	pid_t child;
};

/* What a child tells its parent through a pipe. */
struct report {
	int rc, code;
	double elapsed;
	long holder; /* the pid in the lock file once the child got it */
	char msg[1024];
};

static int
setup(void **state)
{
	struct fixture *fx = TU_FIXTURE_NEW(struct fixture, dir, "lock");

	if (!fx)
		return -1;
	snprintf(fx->lock, sizeof(fx->lock), "%s/.chom/lock", fx->dir);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;

	tu_reap(&fx->child);
	return tu_fixture_free(fx, fx->dir);
}

static long
holder_pid(const char *path)
{
	char buf[256] = "";
	long pid = 0;
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	if (fgets(buf, sizeof(buf), f))
		sscanf(buf, "%ld", &pid);
	fclose(f);
	return pid;
}

/*
 * Forks a child that tries the lock with wait_s and reports. inherited is
 * the parent's lock fd, which the child closes first: it shares the
 * parent's flock and would keep the lock alive after the parent releases.
 * With ready >= 0 the child writes one byte there just before trying.
 */
static pid_t
try_in_child(const char *path, double wait_s, int inherited, int ready, int out)
{
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	{
		struct report r;
		struct chom_lock l;
		struct chom_err e = { 0 };
		double t0;

		memset(&r, 0, sizeof(r));
		if (inherited >= 0)
			close(inherited);
		if (ready >= 0 && write(ready, "r", 1) != 1)
			_exit(2);
		t0 = tu_now();
		r.rc = chom_lock_acquire(&l, path, wait_s, &e);
		r.elapsed = tu_now() - t0;
		r.code = e.code;
		snprintf(r.msg, sizeof(r.msg), "%s", e.msg);
		if (r.rc == 0) {
			r.holder = holder_pid(path);
			chom_lock_release(&l);
		}
		if (write(out, &r, sizeof(r)) != (ssize_t)sizeof(r))
			_exit(2);
		_exit(0);
	}
}

static void
collect(struct fixture *fx, int in, struct report *r)
{
	int status;

	assert_int_equal(read(in, r, sizeof(*r)), sizeof(*r));
	assert_int_equal(waitpid(fx->child, &status, 0), fx->child);
	fx->child = 0;
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void
test_acquire_records_holder(void **state)
{
	struct fixture *fx = *state;
	struct chom_lock l;
	struct chom_err e = { 0 };
	char buf[256] = "", host[128] = "", fhost[128] = "", stamp[64] = "";
	long pid = 0;
	struct tm tm;
	struct stat st;
	FILE *f;

	assert_int_equal(chom_lock_acquire(&l, fx->lock, 0, &e), 0);
	assert_true(l.fd >= 0);
	f = fopen(fx->lock, "r");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	assert_int_equal(sscanf(buf, "%ld %127s %63s", &pid, fhost, stamp), 3);
	assert_int_equal(pid, getpid());
	gethostname(host, sizeof(host) - 1);
	assert_string_equal(fhost, host);
	memset(&tm, 0, sizeof(tm));
	assert_non_null(strptime(stamp, "%Y-%m-%dT%H:%M:%SZ", &tm));
	assert_int_equal(strlen(stamp), 20);
	assert_non_null(strchr(buf, '\n'));

	chom_lock_release(&l);
	assert_int_equal(l.fd, -1);
	/* The holder's text goes with the lock. */
	assert_int_equal(stat(fx->lock, &st), 0);
	assert_int_equal(st.st_size, 0);
	chom_lock_release(&l); /* twice is harmless */
	assert_int_equal(l.fd, -1);
}

static void
test_reacquire_after_release(void **state)
{
	struct fixture *fx = *state;
	struct chom_lock l;
	struct chom_err e = { 0 };

	assert_int_equal(chom_lock_acquire(&l, fx->lock, 0, &e), 0);
	chom_lock_release(&l);
	assert_int_equal(chom_lock_acquire(&l, fx->lock, 0, &e), 0);
	chom_lock_release(&l);
}

/* Has a child try the lock with wait_s while this process holds it. */
static void
try_while_held(struct fixture *fx, double wait_s, struct report *r)
{
	struct chom_lock l;
	struct chom_err e = { 0 };
	int p[2];

	assert_int_equal(chom_lock_acquire(&l, fx->lock, 0, &e), 0);
	assert_int_equal(pipe(p), 0);
	fx->child = try_in_child(fx->lock, wait_s, l.fd, -1, p[1]);
	assert_true(fx->child > 0);
	close(p[1]);
	collect(fx, p[0], r);
	close(p[0]);
	chom_lock_release(&l);
}

static void
test_child_refused_names_holder(void **state)
{
	struct fixture *fx = *state;
	struct report r;
	char want[64], host[128] = "";

	try_while_held(fx, 0, &r);

	assert_int_equal(r.rc, -1);
	assert_int_equal(r.code, CHOM_EXIT_BUSY);
	snprintf(want, sizeof(want), "held by pid %ld ", (long)getpid());
	if (!strstr(r.msg, want))
		TU_FAILF("\"%s\" does not contain \"%s\"", r.msg, want);
	gethostname(host, sizeof(host) - 1);
	assert_non_null(strstr(r.msg, host));
	assert_non_null(strstr(r.msg, fx->lock));
	assert_null(strstr(r.msg, "gave up"));
	/* Refused at once. */
	assert_true(r.elapsed < 1.0);
}

static void
test_child_gives_up_waiting(void **state)
{
	struct fixture *fx = *state;
	struct report r;
	char want[64];

	try_while_held(fx, 0.3, &r);

	assert_int_equal(r.rc, -1);
	assert_int_equal(r.code, CHOM_EXIT_BUSY);
	snprintf(want, sizeof(want), "held by pid %ld ", (long)getpid());
	if (!strstr(r.msg, want))
		TU_FAILF("\"%s\" does not contain \"%s\"", r.msg, want);
	assert_non_null(strstr(r.msg, "(gave up waiting)"));
	assert_true(r.elapsed >= 0.29);
	assert_true(r.elapsed < 10.0);
}

static void
test_child_waits_for_release(void **state)
{
	struct fixture *fx = *state;
	struct chom_lock l;
	struct chom_err e = { 0 };
	struct report r;
	char c;
	int p[2], ready[2];

	assert_int_equal(chom_lock_acquire(&l, fx->lock, 0, &e), 0);
	assert_int_equal(pipe(p), 0);
	assert_int_equal(pipe(ready), 0);
	fx->child = try_in_child(fx->lock, 20, l.fd, ready[1], p[1]);
	assert_true(fx->child > 0);
	close(p[1]);
	close(ready[1]);
	assert_int_equal(read(ready[0], &c, 1), 1);
	close(ready[0]);
	usleep(300000); /* the child is waiting on the lock now */
	chom_lock_release(&l);
	collect(fx, p[0], &r);
	close(p[0]);

	if (r.rc != 0)
		TU_FAILF("child failed: code %d: %s", r.code, r.msg);
	assert_true(r.elapsed >= 0.2);
	assert_true(r.elapsed < 10.0);
	/* The new holder wrote its own pid. */
	assert_true(r.holder > 0);
	assert_true(r.holder != (long)getpid());
}

static void
test_holder_without_text(void **state)
{
	struct fixture *fx = *state;
	struct chom_lock l;
	struct chom_err e = { 0 };
	int fd;

	/* A lock held by an open file description that wrote nothing. */
	snprintf(fx->lock, sizeof(fx->lock), "%s/lock", fx->dir);
	fd = open(fx->lock, O_RDWR | O_CREAT, 0644);
	assert_true(fd >= 0);
	assert_int_equal(flock(fd, LOCK_EX), 0);
	assert_int_equal(chom_lock_acquire(&l, fx->lock, 0, &e), -1);
	close(fd);
	assert_int_equal(e.code, CHOM_EXIT_BUSY);
	assert_non_null(strstr(e.msg, "held by another run"));
	assert_int_equal(l.fd, -1);
}

/* Child: takes the lock at path and keeps it. */
static int
hold_lock(void *path)
{
	struct chom_lock cl;
	struct chom_err ce;

	return chom_lock_acquire(&cl, path, 0, &ce) < 0 ? -1 : 0;
}

static void
test_dead_holder_frees_lock(void **state)
{
	struct fixture *fx = *state;
	struct chom_lock l;
	struct chom_err e = { 0 };

	tu_spawn(&fx->child, hold_lock, fx->lock);
	assert_int_equal(chom_lock_acquire(&l, fx->lock, 0, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_BUSY);
	tu_reap(&fx->child);
	/* The kernel dropped the flock with its holder; its text is stale. */
	assert_int_equal(chom_lock_acquire(&l, fx->lock, 0, &e), 0);
	assert_int_equal(holder_pid(fx->lock), getpid());
	chom_lock_release(&l);
}

static void
test_symlink_lock_refused(void **state)
{
	struct fixture *fx = *state;
	struct chom_lock l;
	struct chom_err e = { 0 };
	char target[128], p[128];
	struct stat st;

	snprintf(target, sizeof(target), "%s/elsewhere", fx->dir);
	snprintf(p, sizeof(p), "%s/lock", fx->dir);
	assert_int_equal(symlink(target, p), 0);
	assert_int_equal(chom_lock_acquire(&l, p, 0, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_FAIL);
	assert_int_equal(l.fd, -1);
	/* Not followed: nothing was created at the target. */
	assert_int_equal(lstat(target, &st), -1);
}

static void
test_unmakeable_directory(void **state)
{
	struct fixture *fx = *state;
	struct chom_lock l;
	struct chom_err e = { 0 };
	char file[128], p[160];

	snprintf(file, sizeof(file), "%s/file", fx->dir);
	tu_write(file, "");
	snprintf(p, sizeof(p), "%s/sub/lock", file);
	assert_int_equal(chom_lock_acquire(&l, p, 0, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_FAIL);
	assert_int_equal(l.fd, -1);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_acquire_records_holder),
		T(test_reacquire_after_release),
		T(test_child_refused_names_holder),
		T(test_child_gives_up_waiting),
		T(test_child_waits_for_release),
		T(test_holder_without_text),
		T(test_dead_holder_frees_lock),
		T(test_symlink_lock_refused),
		T(test_unmakeable_directory),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
