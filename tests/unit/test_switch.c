/*
 * Unit tests for lib/switch.c: switching current to an ID, to next, back
 * by --rollback, reverting after a failed --exec, listing and pruning.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "exitcode.h"
#include "fsutil.h"
#include "history.h"
#include "lock.h"
#include "release.h"
#include "switch.h"

#include "testutil.h"

struct fixture {
	char root[64];
	char base[96];      /* ROOT/base */
	char releases[128]; /* ROOT/base/releases */
	char current[128];
	char next[128];
	struct chom_layout l;
	time_t clock; /* staging times handed out by mkrel */
	pid_t child;
};

static int
setup(void **state)
{
	struct fixture *fx = TU_FIXTURE_NEW(struct fixture, root, "switch");

	if (!fx)
		return -1;
	*state = fx;
	snprintf(fx->base, sizeof(fx->base), "%s/base", fx->root);
	snprintf(fx->releases, sizeof(fx->releases), "%s/releases", fx->base);
	snprintf(fx->current, sizeof(fx->current), "%s/current", fx->base);
	snprintf(fx->next, sizeof(fx->next), "%s/next", fx->base);
	fx->clock = 1790000000;
	return tu_layout(&fx->l, fx->base);
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;

	tu_reap(&fx->child);
	return tu_fixture_free(fx, fx->root);
}

/* releases/ID with a file in it, staged one minute after the last one. */
static void
mkrel(struct fixture *fx, const char *id)
{
	char p[256], text[128];

	snprintf(p, sizeof(p), "%s/%s", fx->releases, id);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/%s/index.php", fx->releases, id);
	snprintf(text, sizeof(text), "<?php echo '%s';\n", id);
	tu_write(p, text);
	fx->clock += 60;
	tu_history_staged(fx->l.history, id, fx->clock);
}

static void
set_next(struct fixture *fx, const char *id)
{
	char target[128];
	struct chom_err e = { 0 };

	snprintf(target, sizeof(target), "releases/%s", id);
	assert_int_equal(chom_atomic_symlink(target, fx->next, &e), 0);
}

static int
sw(struct fixture *fx, enum chom_switch_what what, const char *id,
   const char *exec, struct chom_switch_result *r, struct chom_err *e)
{
	struct chom_switch_opts o = {
		.layout = &fx->l,
		.what = what,
		.id = id,
		.exec_cmd = exec,
	};

	chom_err_clear(e);
	return chom_switch(&o, r, e);
}

/* Switches to id and insists on success. */
static void
sw_ok(struct fixture *fx, const char *id)
{
	struct chom_switch_result r;
	struct chom_err e;

	if (sw(fx, CHOM_SWITCH_ID, id, NULL, &r, &e) != 0)
		TU_FAILF("switch to %s failed: %s", id, e.msg);
}

/* current's target, "" when there is no current. */
static void
expect_current(struct fixture *fx, const char *id)
{
	char buf[256], want[128];

	if (!*id) {
		struct stat st;

		assert_int_equal(lstat(fx->current, &st), -1);
		return;
	}
	if (chom_readlink(fx->current, buf, sizeof(buf)) < 0)
		TU_FAILF("readlink %s: %s", fx->current, strerror(errno));
	snprintf(want, sizeof(want), "releases/%s", id);
	assert_string_equal(buf, want);
}

static size_t
history_len(struct fixture *fx)
{
	struct chom_history_entry *h;
	struct chom_err e = { 0 };
	size_t n;

	assert_int_equal(chom_history_read(fx->l.history, &h, &n, &e), 0);
	free(h);
	return n;
}

/* ---- chom_switch ---- */

static void
test_switch_to_id(void **state)
{
	struct fixture *fx = *state;
	struct chom_switch_result r;
	struct chom_err e;
	char want[256];

	mkrel(fx, "v1");
	mkrel(fx, "v2");
	assert_int_equal(sw(fx, CHOM_SWITCH_ID, "v1", NULL, &r, &e), 0);
	assert_string_equal(r.from, "");
	assert_string_equal(r.to, "v1");
	snprintf(want, sizeof(want), "%s/v1", fx->releases);
	assert_string_equal(r.path, want);
	assert_true(r.changed);
	assert_false(r.reverted);
	assert_true(r.seconds >= 0 && r.seconds < 60);
	expect_current(fx, "v1");
	tu_expect_last_history(fx->l.history, "switch", "", "v1");

	assert_int_equal(sw(fx, CHOM_SWITCH_ID, "v2", NULL, &r, &e), 0);
	assert_string_equal(r.from, "v1");
	assert_string_equal(r.to, "v2");
	assert_true(r.changed);
	expect_current(fx, "v2");
	tu_expect_last_history(fx->l.history, "switch", "v1", "v2");
	tu_expect_lock_free(fx->l.lock);
}

static void
test_switch_already_current(void **state)
{
	struct fixture *fx = *state;
	struct chom_switch_result r;
	struct chom_err e;
	size_t n;

	mkrel(fx, "v1");
	sw_ok(fx, "v1");
	n = history_len(fx);
	assert_int_equal(sw(fx, CHOM_SWITCH_ID, "v1", NULL, &r, &e), 0);
	assert_false(r.changed);
	assert_string_equal(r.from, "v1");
	assert_string_equal(r.to, "v1");
	expect_current(fx, "v1");
	assert_int_equal(history_len(fx), n);
}

static void
test_switch_next(void **state)
{
	struct fixture *fx = *state;
	struct chom_switch_result r;
	struct chom_err e;
	struct stat st;

	mkrel(fx, "v1");
	mkrel(fx, "v2");
	sw_ok(fx, "v1");
	set_next(fx, "v2");
	assert_int_equal(sw(fx, CHOM_SWITCH_NEXT, NULL, NULL, &r, &e), 0);
	assert_string_equal(r.from, "v1");
	assert_string_equal(r.to, "v2");
	assert_true(r.changed);
	expect_current(fx, "v2");
	/* next is used up. */
	assert_int_equal(lstat(fx->next, &st), -1);
	tu_expect_last_history(fx->l.history, "switch", "v1", "v2");

	assert_int_equal(sw(fx, CHOM_SWITCH_NEXT, NULL, NULL, &r, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_FAIL);
	assert_non_null(strstr(e.msg, "nothing staged"));
	expect_current(fx, "v2");

	/* next pointing at the live release: nothing changes but next goes. */
	set_next(fx, "v2");
	assert_int_equal(sw(fx, CHOM_SWITCH_NEXT, NULL, NULL, &r, &e), 0);
	assert_false(r.changed);
	assert_int_equal(lstat(fx->next, &st), -1);
}

static void
test_switch_next_foreign(void **state)
{
	struct fixture *fx = *state;
	struct chom_switch_result r;
	struct chom_err e;

	mkrel(fx, "v1");
	sw_ok(fx, "v1");
	assert_int_equal(symlink("/etc", fx->next), 0);
	assert_int_equal(sw(fx, CHOM_SWITCH_NEXT, NULL, NULL, &r, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_USAGE);
	expect_current(fx, "v1");
}

static void
test_switch_rollback(void **state)
{
	struct fixture *fx = *state;
	struct chom_switch_result r;
	struct chom_err e;
	size_t n;

	mkrel(fx, "v1");
	mkrel(fx, "v2");
	mkrel(fx, "v3");
	mkrel(fx, "v4");
	sw_ok(fx, "v1");
	sw_ok(fx, "v2");
	sw_ok(fx, "v3");

	assert_int_equal(sw(fx, CHOM_SWITCH_ROLLBACK, NULL, NULL, &r, &e), 0);
	assert_string_equal(r.from, "v3");
	assert_string_equal(r.to, "v2");
	expect_current(fx, "v2");
	tu_expect_last_history(fx->l.history, "rollback", "v3", "v2");

	assert_int_equal(sw(fx, CHOM_SWITCH_ROLLBACK, NULL, NULL, &r, &e), 0);
	assert_string_equal(r.to, "v1");
	expect_current(fx, "v1");

	n = history_len(fx);
	assert_int_equal(sw(fx, CHOM_SWITCH_ROLLBACK, NULL, NULL, &r, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_FAIL);
	assert_non_null(strstr(e.msg, "nothing to roll back to"));
	expect_current(fx, "v1");
	assert_int_equal(history_len(fx), n);

	/* chom-switch(1): a switch to v4 after that, then back to v1. */
	sw_ok(fx, "v4");
	assert_int_equal(sw(fx, CHOM_SWITCH_ROLLBACK, NULL, NULL, &r, &e), 0);
	assert_string_equal(r.from, "v4");
	assert_string_equal(r.to, "v1");
	expect_current(fx, "v1");
}

static void
test_switch_rollback_target_gone(void **state)
{
	struct fixture *fx = *state;
	struct chom_switch_result r;
	struct chom_err e;
	char p[256];

	mkrel(fx, "v1");
	mkrel(fx, "v2");
	sw_ok(fx, "v1");
	sw_ok(fx, "v2");
	snprintf(p, sizeof(p), "%s/v1/index.php", fx->releases);
	unlink(p);
	snprintf(p, sizeof(p), "%s/v1", fx->releases);
	assert_int_equal(rmdir(p), 0);
	assert_int_equal(sw(fx, CHOM_SWITCH_ROLLBACK, NULL, NULL, &r, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_FAIL);
	assert_non_null(strstr(e.msg, "v1"));
	expect_current(fx, "v2");
}

static void
test_exec_false_reverts(void **state)
{
	struct fixture *fx = *state;
	struct chom_switch_result r;
	struct chom_err e;

	mkrel(fx, "v1");
	mkrel(fx, "v2");
	sw_ok(fx, "v1");
	assert_int_equal(sw(fx, CHOM_SWITCH_ID, "v2", "false", &r, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_FAIL);
	assert_true(r.reverted);
	assert_int_equal(r.exec_status, 1);
	assert_non_null(strstr(e.msg, "switched back to v1"));
	expect_current(fx, "v1");
	tu_expect_last_history(fx->l.history, "revert", "v2", "v1");
	tu_expect_lock_free(fx->l.lock);

	/* The revert popped v2: there is nothing to roll back to. */
	assert_int_equal(sw(fx, CHOM_SWITCH_ROLLBACK, NULL, NULL, &r, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_FAIL);
	expect_current(fx, "v1");
}

static void
test_exec_fails_first_deploy(void **state)
{
	struct fixture *fx = *state;
	struct chom_switch_result r;
	struct chom_err e;

	mkrel(fx, "v1");
	assert_int_equal(sw(fx, CHOM_SWITCH_ID, "v1", "exit 3", &r, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_FAIL);
	assert_true(r.reverted);
	assert_int_equal(r.exec_status, 3);
	assert_non_null(strstr(e.msg, "nothing"));
	expect_current(fx, "");
	tu_expect_last_history(fx->l.history, "revert", "v1", "");
}

static void
test_exec_killed(void **state)
{
	struct fixture *fx = *state;
	struct chom_switch_result r;
	struct chom_err e;

	mkrel(fx, "v1");
	mkrel(fx, "v2");
	sw_ok(fx, "v1");
	assert_int_equal(sw(fx, CHOM_SWITCH_ID, "v2", "kill -TERM $$", &r, &e),
			 -1);
	assert_int_equal(e.code, CHOM_EXIT_FAIL);
	assert_int_equal(r.exec_status, 128 + SIGTERM);
	assert_true(r.reverted);
	expect_current(fx, "v1");
}

static void
test_exec_unchanged_fails(void **state)
{
	struct fixture *fx = *state;
	struct chom_switch_result r;
	struct chom_err e;

	mkrel(fx, "v1");
	sw_ok(fx, "v1");
	assert_int_equal(sw(fx, CHOM_SWITCH_ID, "v1", "false", &r, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_FAIL);
	assert_false(r.changed);
	assert_false(r.reverted);
	expect_current(fx, "v1");
}

static void
test_exec_environment(void **state)
{
	struct fixture *fx = *state;
	struct chom_switch_result r;
	struct chom_err e;
	char cmd[1024];

	mkrel(fx, "v1");
	mkrel(fx, "v2");
	sw_ok(fx, "v1");
	/* Runs after the switch, with the documented variables. */
	snprintf(
	    cmd, sizeof(cmd),
	    "test \"$CHOM_RELEASE\" = v2 && test \"$CHOM_PREVIOUS\" = v1 && "
	    "test \"$CHOM_BASE\" = '%s' && "
	    "test \"$CHOM_RELEASE_PATH\" = '%s/v2' && "
	    "test \"$(readlink \"$CHOM_BASE/current\")\" = releases/v2",
	    fx->base, fx->releases);
	if (sw(fx, CHOM_SWITCH_ID, "v2", cmd, &r, &e) != 0)
		TU_FAILF("--exec saw the wrong environment: %s", e.msg);
	assert_int_equal(r.exec_status, 0);
	assert_false(r.reverted);
	expect_current(fx, "v2");
}

static void
test_exec_fails_keeps_next(void **state)
{
	struct fixture *fx = *state;
	struct chom_switch_result r;
	struct chom_err e;
	char buf[64];

	mkrel(fx, "v1");
	mkrel(fx, "v2");
	sw_ok(fx, "v1");
	set_next(fx, "v2");
	assert_int_equal(sw(fx, CHOM_SWITCH_NEXT, NULL, "false", &r, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_FAIL);
	assert_true(r.reverted);
	expect_current(fx, "v1");
	/* next is consumed only once the release is live for good. */
	assert_int_equal(chom_readlink(fx->next, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "releases/v2");
}

static void
test_rollback_exec_fails(void **state)
{
	struct fixture *fx = *state;
	struct chom_switch_result r;
	struct chom_err e;

	mkrel(fx, "v1");
	mkrel(fx, "v2");
	mkrel(fx, "v3");
	sw_ok(fx, "v1");
	sw_ok(fx, "v2");
	sw_ok(fx, "v3");
	assert_int_equal(sw(fx, CHOM_SWITCH_ROLLBACK, NULL, "false", &r, &e),
			 -1);
	assert_int_equal(e.code, CHOM_EXIT_FAIL);
	assert_true(r.reverted);
	expect_current(fx, "v3");
	tu_expect_last_history(fx->l.history, "revert", "v2", "v3");
	/* The failed rollback is undone: the next one goes to v2 again. */
	assert_int_equal(sw(fx, CHOM_SWITCH_ROLLBACK, NULL, NULL, &r, &e), 0);
	assert_string_equal(r.to, "v2");
	expect_current(fx, "v2");
}

static volatile sig_atomic_t stop_flag;

static void
on_alarm(int sig)
{
	stop_flag = SIGTERM; /* as the tools' SIGTERM handler would */
}

static int
sw_stop(struct fixture *fx, const char *id, const char *exec,
	struct chom_switch_result *r, struct chom_err *e)
{
	struct chom_switch_opts o = {
		.layout = &fx->l,
		.what = CHOM_SWITCH_ID,
		.id = id,
		.exec_cmd = exec,
		.stop = &stop_flag,
	};

	chom_err_clear(e);
	return chom_switch(&o, r, e);
}

static void
test_stop_during_exec(void **state)
{
	struct fixture *fx = *state;
	struct chom_switch_result r;
	struct chom_err e;

	mkrel(fx, "v1");
	mkrel(fx, "v2");
	sw_ok(fx, "v1");
	/* The flag already up when the command ends: switch back anyway. */
	stop_flag = SIGTERM;
	assert_int_equal(sw_stop(fx, "v2", "true", &r, &e), -1);
	stop_flag = 0;
	assert_int_equal(e.code, 128 + SIGTERM);
	assert_true(r.reverted);
	assert_non_null(strstr(e.msg, "interrupted"));
	expect_current(fx, "v1");
	tu_expect_last_history(fx->l.history, "revert", "v2", "v1");
	/* Not up: a command that succeeds keeps the switch. */
	assert_int_equal(sw_stop(fx, "v2", "true", &r, &e), 0);
	expect_current(fx, "v2");
}

static void
test_signal_during_exec(void **state)
{
	struct fixture *fx = *state;
	struct chom_switch_result r;
	struct chom_err e;
	struct sigaction sa, old;
	struct itimerval it = { { 0, 0 }, { 0, 300000 } };
	struct timespec t0, t1;
	double secs;
	int rc;

	mkrel(fx, "v1");
	mkrel(fx, "v2");
	sw_ok(fx, "v1");
	/* A signal interrupts the wait for the command, which is sent the
	 * signal and reaped; then the switch is undone. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm; /* no SA_RESTART: waitpid sees EINTR */
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGALRM, &sa, &old), 0);
	stop_flag = 0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(setitimer(ITIMER_REAL, &it, NULL), 0);
	rc = sw_stop(fx, "v2", "exec sleep 30", &r, &e);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	sigaction(SIGALRM, &old, NULL);
	stop_flag = 0;
	secs =
	    (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	assert_int_equal(rc, -1);
	assert_int_equal(e.code, 128 + SIGTERM);
	assert_int_equal(r.exec_status, 128 + SIGTERM);
	assert_true(r.reverted);
	assert_true(secs < 10);
	expect_current(fx, "v1");
	tu_expect_lock_free(fx->l.lock);
}

static void
test_exec_revert_fails(void **state)
{
	struct fixture *fx = *state;
	struct chom_switch_result r;
	struct chom_err e;
	char cmd[512];

	mkrel(fx, "v1");
	mkrel(fx, "v2");
	sw_ok(fx, "v1");
	/* The command removes the release to switch back to, then fails. */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s/v1' && false", fx->releases);
	assert_int_equal(sw(fx, CHOM_SWITCH_ID, "v2", cmd, &r, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_UNSAFE);
	assert_false(r.reverted);
	if (!strstr(e.msg, "v2 is live"))
		TU_FAILF("\"%s\" does not name the live release", e.msg);
	expect_current(fx, "v2");
	tu_expect_lock_free(fx->l.lock);
}

static void
test_exec_runs_under_lock(void **state)
{
	struct fixture *fx = *state;
	struct chom_switch_result r;
	struct chom_err e;
	char cmd[512];

	mkrel(fx, "v1");
	/* flock(1) cannot take the deploy lock while the command runs; the
	 * command's status is 0 only if it was refused. */
	snprintf(cmd, sizeof(cmd),
		 "command -v flock >/dev/null || exit 0; "
		 "! flock -n '%s/.chom/lock' true",
		 fx->base);
	if (sw(fx, CHOM_SWITCH_ID, "v1", cmd, &r, &e) != 0)
		TU_FAILF("the lock was free while --exec ran: %s", e.msg);
	expect_current(fx, "v1");
}

static void
test_missing_release(void **state)
{
	struct fixture *fx = *state;
	struct chom_switch_result r;
	struct chom_err e;
	char p[256];
	size_t n;

	mkrel(fx, "v1");
	sw_ok(fx, "v1");
	n = history_len(fx);
	assert_int_equal(sw(fx, CHOM_SWITCH_ID, "v9", NULL, &r, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_FAIL);
	assert_non_null(strstr(e.msg, "no release v9"));
	expect_current(fx, "v1");
	assert_int_equal(history_len(fx), n);
	/* A file, or a symlink to a directory, is not a release either. */
	snprintf(p, sizeof(p), "%s/file", fx->releases);
	tu_write(p, "");
	assert_int_equal(sw(fx, CHOM_SWITCH_ID, "file", NULL, &r, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_FAIL);
	snprintf(p, sizeof(p), "%s/alias", fx->releases);
	assert_int_equal(symlink("v1", p), 0);
	assert_int_equal(sw(fx, CHOM_SWITCH_ID, "alias", NULL, &r, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_FAIL);
	expect_current(fx, "v1");
	tu_expect_lock_free(fx->l.lock);
}

static void
test_current_is_directory(void **state)
{
	struct fixture *fx = *state;
	struct chom_switch_result r;
	struct chom_err e;
	char p[256];
	struct stat st;

	mkrel(fx, "v1");
	assert_int_equal(mkdir(fx->current, 0755), 0);
	snprintf(p, sizeof(p), "%s/index.php", fx->current);
	tu_write(p, "");
	assert_int_equal(sw(fx, CHOM_SWITCH_ID, "v1", NULL, &r, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_USAGE);
	assert_int_equal(lstat(fx->current, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(lstat(p, &st), 0);
	assert_int_equal(history_len(fx), 1); /* the stage line only */
}

static void
test_lock_held(void **state)
{
	struct fixture *fx = *state;
	struct chom_switch_result r;
	struct chom_err e;
	struct chom_lock lk;

	mkrel(fx, "v1");
	assert_int_equal(chom_lock_acquire(&lk, fx->l.lock, 0, &e), 0);
	assert_int_equal(sw(fx, CHOM_SWITCH_ID, "v1", NULL, &r, &e), -1);
	chom_lock_release(&lk);
	assert_int_equal(e.code, CHOM_EXIT_BUSY);
	expect_current(fx, "");
}

static void
test_metrics(void **state)
{
	struct fixture *fx = *state;
	struct chom_switch_result r;
	struct chom_err e = { 0 };
	struct chom_switch_opts o = {
		.layout = &fx->l,
		.what = CHOM_SWITCH_ID,
		.id = "v2",
	};
	char dir[128], prom[192], buf[1024];
	struct stat st;

	snprintf(dir, sizeof(dir), "%s/metrics", fx->root);
	snprintf(prom, sizeof(prom), "%s/chom_switch.prom", dir);
	assert_int_equal(mkdir(dir, 0755), 0);
	o.metrics_dir = dir;
	mkrel(fx, "v2");
	if (chom_switch(&o, &r, &e) != 0)
		TU_FAILF("switch failed: %s", e.msg);
	tu_read(prom, buf, sizeof(buf));
	assert_non_null(strstr(buf, "chom_release_info{release=\"v2\"} 1\n"));
	assert_non_null(strstr(buf, "\nchom_switch_timestamp_seconds "));
	assert_int_equal(stat(prom, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);
}

/* ---- chom_switch_list ---- */

static void
expect_marks(const struct chom_release_info *v, size_t n, size_t i,
	     const char *id, bool cur, bool prev, bool nxt)
{
	assert_true(i < n);
	assert_string_equal(v[i].rel.id, id);
	if (v[i].current != cur || v[i].previous != prev || v[i].next != nxt)
		TU_FAILF(
		    "%s marked current=%d previous=%d next=%d, want %d %d %d",
		    id, v[i].current, v[i].previous, v[i].next, cur, prev, nxt);
}

static void
test_list_marks(void **state)
{
	struct fixture *fx = *state;
	struct chom_release_info *v;
	struct chom_switch_result r;
	struct chom_err e = { 0 };
	size_t n;

	mkrel(fx, "v1");
	mkrel(fx, "v2");
	mkrel(fx, "v3");
	mkrel(fx, "v4");
	sw_ok(fx, "v1");
	sw_ok(fx, "v2");
	sw_ok(fx, "v3");
	set_next(fx, "v4");
	assert_int_equal(chom_switch_list(&fx->l, &v, &n, &e), 0);
	assert_int_equal(n, 4);
	expect_marks(v, n, 0, "v4", false, false, true);
	expect_marks(v, n, 1, "v3", true, false, false);
	expect_marks(v, n, 2, "v2", false, true, false);
	expect_marks(v, n, 3, "v1", false, false, false);
	assert_true(v[0].rel.staged > v[1].rel.staged);
	free(v);

	assert_int_equal(sw(fx, CHOM_SWITCH_ROLLBACK, NULL, NULL, &r, &e), 0);
	assert_int_equal(chom_switch_list(&fx->l, &v, &n, &e), 0);
	assert_int_equal(n, 4);
	expect_marks(v, n, 1, "v3", false, false, false);
	expect_marks(v, n, 2, "v2", true, false, false);
	expect_marks(v, n, 3, "v1", false, true, false);
	free(v);
}

static void
test_list_empty_and_bad(void **state)
{
	struct fixture *fx = *state;
	struct chom_release_info *v;
	struct chom_err e = { 0 };
	size_t n = 9;

	assert_int_equal(chom_switch_list(&fx->l, &v, &n, &e), 0);
	assert_int_equal(n, 0);
	free(v);
	assert_int_equal(mkdir(fx->current, 0755), 0);
	assert_int_equal(chom_switch_list(&fx->l, &v, &n, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_USAGE);
}

/* ---- chom_switch_prune ---- */

static bool
rel_exists(struct fixture *fx, const char *id)
{
	char p[256];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", fx->releases, id);
	return lstat(p, &st) == 0;
}

static void
expect_item(const struct chom_prune_item *it, size_t n, size_t i,
	    const char *id, bool removed, const char *why)
{
	assert_true(i < n);
	assert_string_equal(it[i].id, id);
	if (it[i].removed != removed)
		TU_FAILF("%s removed=%d, want %d", id, it[i].removed, removed);
	if (why)
		assert_string_equal(it[i].why ? it[i].why : "(null)", why);
	else
		assert_null(it[i].why);
}

/* Six releases; v1, v2, v3 switched to in turn; next at v6. */
static void
six(struct fixture *fx)
{
	mkrel(fx, "v1");
	mkrel(fx, "v2");
	mkrel(fx, "v3");
	mkrel(fx, "v4");
	mkrel(fx, "v5");
	mkrel(fx, "v6");
	sw_ok(fx, "v1");
	sw_ok(fx, "v2");
	sw_ok(fx, "v3");
	set_next(fx, "v6");
}

static void
test_prune_keeps(void **state)
{
	struct fixture *fx = *state;
	struct chom_prune_item *it;
	struct chom_err e = { 0 };
	struct chom_history_entry *h;
	size_t n, nh;

	six(fx);
	if (chom_switch_prune(&fx->l, 2, false, 0, &it, &n, &e) != 0)
		TU_FAILF("prune failed: %s", e.msg);
	assert_int_equal(n, 6);
	expect_item(it, n, 0, "v6", false, "next");
	expect_item(it, n, 1, "v5", false, "newest");
	expect_item(it, n, 2, "v4", true, NULL);
	expect_item(it, n, 3, "v3", false, "current");
	expect_item(it, n, 4, "v2", false, "previous");
	expect_item(it, n, 5, "v1", true, NULL);
	free(it);
	assert_true(rel_exists(fx, "v6"));
	assert_true(rel_exists(fx, "v5"));
	assert_false(rel_exists(fx, "v4"));
	assert_true(rel_exists(fx, "v3"));
	assert_true(rel_exists(fx, "v2"));
	assert_false(rel_exists(fx, "v1"));
	assert_int_equal(tu_count_names(fx->releases, ".tmp-*"), 0);
	expect_current(fx, "v3");
	/* A prune line per removal, FROM being the release removed. */
	assert_int_equal(chom_history_read(fx->l.history, &h, &nh, &e), 0);
	assert_true(nh >= 2);
	assert_string_equal(h[nh - 2].action, "prune");
	assert_string_equal(h[nh - 2].from, "v4");
	assert_string_equal(h[nh - 2].to, "");
	assert_string_equal(h[nh - 1].action, "prune");
	assert_string_equal(h[nh - 1].from, "v1");
	free(h);
	tu_expect_lock_free(fx->l.lock);

	/* The rollback target survived: a rollback still works. */
	{
		struct chom_switch_result r;

		assert_int_equal(
		    sw(fx, CHOM_SWITCH_ROLLBACK, NULL, NULL, &r, &e), 0);
		assert_string_equal(r.to, "v2");
	}
}

static void
test_prune_keep_zero(void **state)
{
	struct fixture *fx = *state;
	struct chom_prune_item *it;
	struct chom_err e = { 0 };
	size_t n;

	six(fx);
	assert_int_equal(chom_switch_prune(&fx->l, 0, false, 0, &it, &n, &e),
			 0);
	assert_int_equal(n, 6);
	expect_item(it, n, 0, "v6", false, "next");
	expect_item(it, n, 1, "v5", true, NULL);
	free(it);
	assert_false(rel_exists(fx, "v5"));
	assert_true(rel_exists(fx, "v3"));
	assert_true(rel_exists(fx, "v2"));
}

/* Child: works in the directory path. */
static int
enter_dir(void *path)
{
	return chdir(path);
}

static void
test_prune_in_use(void **state)
{
	struct fixture *fx = *state;
	struct chom_prune_item *it;
	struct chom_err e = { 0 };
	char p[256], want[64];
	size_t n;

	six(fx);
	snprintf(p, sizeof(p), "%s/v1", fx->releases);
	tu_spawn(&fx->child, enter_dir, p);

	assert_int_equal(chom_switch_prune(&fx->l, 2, false, 0, &it, &n, &e),
			 0);
	snprintf(want, sizeof(want), "in use by pid %ld (test_switch)",
		 (long)fx->child);
	expect_item(it, n, 2, "v4", true, NULL);
	expect_item(it, n, 5, "v1", false, want);
	free(it);
	assert_true(rel_exists(fx, "v1"));

	/* --force removes it anyway. */
	assert_int_equal(chom_switch_prune(&fx->l, 2, true, 0, &it, &n, &e), 0);
	assert_int_equal(n, 5);
	expect_item(it, n, 4, "v1", true, NULL);
	free(it);
	assert_false(rel_exists(fx, "v1"));
	assert_int_equal(tu_count_names(fx->releases, ".tmp-*"), 0);
}

static void
test_prune_lock_held(void **state)
{
	struct fixture *fx = *state;
	struct chom_prune_item *it;
	struct chom_err e = { 0 };
	struct chom_lock lk;
	size_t n;

	six(fx);
	assert_int_equal(chom_lock_acquire(&lk, fx->l.lock, 0, &e), 0);
	assert_int_equal(chom_switch_prune(&fx->l, 0, false, 0, &it, &n, &e),
			 -1);
	chom_lock_release(&lk);
	free(it);
	assert_int_equal(e.code, CHOM_EXIT_BUSY);
	assert_true(rel_exists(fx, "v1"));
	assert_true(rel_exists(fx, "v4"));
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_switch_to_id),
		T(test_switch_already_current),
		T(test_switch_next),
		T(test_switch_next_foreign),
		T(test_switch_rollback),
		T(test_switch_rollback_target_gone),
		T(test_exec_false_reverts),
		T(test_exec_fails_first_deploy),
		T(test_exec_killed),
		T(test_exec_unchanged_fails),
		T(test_exec_environment),
		T(test_exec_fails_keeps_next),
		T(test_rollback_exec_fails),
		T(test_stop_during_exec),
		T(test_signal_during_exec),
		T(test_exec_revert_fails),
		T(test_exec_runs_under_lock),
		T(test_missing_release),
		T(test_current_is_directory),
		T(test_lock_held),
		T(test_metrics),
		T(test_list_marks),
		T(test_list_empty_and_bad),
		T(test_prune_keeps),
		T(test_prune_keep_zero),
		T(test_prune_in_use),
		T(test_prune_lock_held),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
