/*
 * Unit tests for lib/run.c: a command's stdout into a sink, its stderr
 * line by line to a callback, its exit status or 128+N for signal N, and
 * a sink that fails mid-way killing the command.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exitcode.h"
#include "run.h"

#include "testutil.h"

/* A sink keeping what it gets in memory; it fails once it holds more
 * than fail_after bytes (when fail_after > 0). */
struct mem {
	struct chom_sink s;
	char *buf;
	size_t len, cap, fail_after;
	int writes, closes;
};

static int
mem_write(struct chom_sink *s, const void *buf, size_t len, struct chom_err *e)
{
	struct mem *m = (struct mem *)s;

	m->writes++;
	if (m->fail_after && m->len + len > m->fail_after)
		return chom_err_set(e, CHOM_EXIT_FAIL, "mem: disk full");
	if (m->len + len + 1 > m->cap) {
		size_t cap = (m->len + len + 1) * 2;
		char *nb = realloc(m->buf, cap);

		assert_non_null(nb);
		m->buf = nb;
		m->cap = cap;
	}
	memcpy(m->buf + m->len, buf, len);
	m->len += len;
	m->buf[m->len] = '\0';
	return 0;
}

static int
mem_close(struct chom_sink *s, struct chom_err *e)
{
	((struct mem *)s)->closes++;
	return 0;
}

static void
mem_free(struct chom_sink *s)
{
	(void)s; /* on the test's stack; buf freed by mem_done() */
}

static void
mem_init(struct mem *m)
{
	memset(m, 0, sizeof(*m));
	m->s = (struct chom_sink){ mem_write, mem_close, mem_free, NULL };
}

static void
mem_done(struct mem *m)
{
	free(m->buf);
	m->buf = NULL;
}

/* The stderr lines, joined with '|'. */
struct lines {
	char text[8192];
	int n;
};

static void
on_line(void *ctx, const char *line)
{
	struct lines *l = ctx;
	size_t len = strlen(l->text);

	snprintf(l->text + len, sizeof(l->text) - len, "%s%s", l->n ? "|" : "",
		 line);
	l->n++;
}

/* Runs cmd into a fresh mem sink; the results in the out-parameters. */
static int
run(const char *cmd, struct mem *m, struct lines *l, int *status,
    unsigned long long *bytes, struct chom_err *e)
{
	mem_init(m);
	memset(l, 0, sizeof(*l));
	memset(e, 0, sizeof(*e));
	*status = -99;
	*bytes = 12345;
	return chom_run_to_sink(cmd, &m->s, on_line, l, status, bytes, NULL, e);
}

static void
test_stdout_to_sink(void **state)
{
	struct mem m;
	struct lines l;
	struct chom_err e;
	unsigned long long bytes;
	int status;

	assert_int_equal(
	    run("printf 'hello\\nworld'", &m, &l, &status, &bytes, &e), 0);
	assert_int_equal(status, 0);
	assert_int_equal(bytes, 11);
	assert_int_equal(m.len, 11);
	assert_memory_equal(m.buf, "hello\nworld", 11);
	assert_int_equal(l.n, 0);
	/* The sink is the caller's to close. */
	assert_int_equal(m.closes, 0);
	mem_done(&m);
}

static void
test_large_stdout(void **state)
{
	struct mem m;
	struct lines l;
	struct chom_err e;
	unsigned long long bytes;
	size_t i;
	int status;

	/* 3 MB of a known pattern, larger than any pipe buffer. */
	assert_int_equal(run("i=0; while [ $i -lt 3000 ]; do "
			     "printf '%01000d' $i; i=$((i+1)); done",
			     &m, &l, &status, &bytes, &e),
			 0);
	assert_int_equal(status, 0);
	assert_int_equal(bytes, 3000000);
	assert_int_equal(m.len, 3000000);
	for (i = 0; i < 3000; i++) {
		char want[1001];

		snprintf(want, sizeof(want), "%01000zu", i);
		if (memcmp(m.buf + i * 1000, want, 1000))
			TU_FAILF("block %zu differs", i);
	}
	mem_done(&m);
}

static void
test_stdout_empty(void **state)
{
	struct mem m;
	struct lines l;
	struct chom_err e;
	unsigned long long bytes;
	int status;

	assert_int_equal(run("true", &m, &l, &status, &bytes, &e), 0);
	assert_int_equal(status, 0);
	assert_int_equal(bytes, 0);
	assert_int_equal(m.len, 0);
	mem_done(&m);
}

static void
test_stderr_lines(void **state)
{
	struct mem m;
	struct lines l;
	struct chom_err e;
	unsigned long long bytes;
	int status;

	assert_int_equal(run("printf 'one\\ntwo\\n' >&2; printf out; "
			     "printf 'three\\nlast without newline' >&2",
			     &m, &l, &status, &bytes, &e),
			 0);
	assert_int_equal(status, 0);
	assert_string_equal(l.text, "one|two|three|last without newline");
	assert_int_equal(l.n, 4);
	/* stderr never reaches the sink, stdout never the lines. */
	assert_int_equal(m.len, 3);
	assert_memory_equal(m.buf, "out", 3);
	assert_int_equal(bytes, 3);
	mem_done(&m);
}

static void
test_stderr_split_writes(void **state)
{
	struct mem m;
	struct lines l;
	struct chom_err e;
	unsigned long long bytes;
	int status;

	/* One line in three writes, with pauses: still one line. */
	assert_int_equal(run("printf 'par' >&2; sleep 0.2; printf 'ti' >&2; "
			     "sleep 0.2; printf 'al\\nnext\\n' >&2",
			     &m, &l, &status, &bytes, &e),
			 0);
	assert_string_equal(l.text, "partial|next");
	mem_done(&m);
}

static void
test_exit_status(void **state)
{
	struct mem m;
	struct lines l;
	struct chom_err e;
	unsigned long long bytes;
	int status;

	assert_int_equal(run("echo partial; echo oops >&2; exit 3", &m, &l,
			     &status, &bytes, &e),
			 0);
	assert_int_equal(status, 3);
	assert_string_equal(l.text, "oops");
	assert_int_equal(bytes, 8);
	mem_done(&m);

	assert_int_equal(run("exit 1", &m, &l, &status, &bytes, &e), 0);
	assert_int_equal(status, 1);
	mem_done(&m);

	/* sh's own 127 for a command that does not exist. */
	assert_int_equal(run("/nonexistent/chom-no-such-command", &m, &l,
			     &status, &bytes, &e),
			 0);
	assert_int_equal(status, 127);
	assert_true(l.n >= 1);
	mem_done(&m);
}

static void
test_killed_by_signal(void **state)
{
	struct mem m;
	struct lines l;
	struct chom_err e;
	unsigned long long bytes;
	int status;

	assert_int_equal(
	    run("echo some; kill -9 $$", &m, &l, &status, &bytes, &e), 0);
	assert_int_equal(status, 128 + SIGKILL);
	assert_int_equal(bytes, 5);
	mem_done(&m);

	assert_int_equal(run("kill -TERM $$", &m, &l, &status, &bytes, &e), 0);
	assert_int_equal(status, 128 + SIGTERM);
	mem_done(&m);

	assert_int_equal(run("kill -SEGV $$", &m, &l, &status, &bytes, &e), 0);
	assert_int_equal(status, 128 + SIGSEGV);
	mem_done(&m);
}

/* The sink fails (a full disk): the command, which would write forever,
 * is killed, and the call returns -1 with the sink's error. */
static void
test_failing_sink_kills_command(void **state)
{
	struct mem m;
	struct lines l;
	struct chom_err e = { 0 };
	unsigned long long bytes = 0;
	double t0;
	int status = -99, rc;

	mem_init(&m);
	memset(&l, 0, sizeof(l));
	m.fail_after = 100000;
	alarm(30); /* a hang fails the test instead of the whole run */
	t0 = tu_now();
	rc = chom_run_to_sink("yes chom", &m.s, on_line, &l, &status, &bytes,
			      NULL, &e);
	alarm(0);
	assert_int_equal(rc, -1);
	assert_int_equal(e.code, CHOM_EXIT_FAIL);
	assert_string_equal(e.msg, "mem: disk full");
	assert_true(tu_now() - t0 < 10);
	/* It did not finish by itself: it was stopped by a signal. */
	assert_true(status > 128);
	assert_true(m.len <= 100000);
	mem_done(&m);
}

/* Whether pid runs: gone, or a zombie that its new parent (whatever
 * reaps orphans here) has not reaped yet, is not running. */
static int
running(pid_t pid)
{
	char path[64], stat[256] = "";
	const char *p;
	FILE *f;

	if (kill(pid, 0) < 0 && errno == ESRCH)
		return 0;
	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (!fgets(stat, sizeof(stat), f))
		stat[0] = '\0';
	fclose(f);
	p = strrchr(stat, ')');
	return !(p && p[1] == ' ' && p[2] == 'Z');
}

/* Killing "the command" is killing all of it, not just the shell that
 * runs it: a child of the command that holds no pipe would otherwise be
 * left running after the backup has failed. */
static void
test_failing_sink_kills_children(void **state)
{
	struct mem m;
	struct lines l;
	struct chom_err e = { 0 };
	unsigned long long bytes = 0;
	char dir[] = "/tmp/chom-test-run-XXXXXX", cmd[512], pidf[64],
	     buf[32] = "";
	int status = -99, rc, i, alive = 1;
	long pid = 0;

	assert_non_null(mkdtemp(dir));
	snprintf(pidf, sizeof(pidf), "%s/pid", dir);
	/* The child: sleeps, its output away from our pipes; then the
	 * shell writes data (which fails) and waits for it. */
	snprintf(cmd, sizeof(cmd),
		 "sleep 30 >/dev/null 2>&1 </dev/null & echo $! > %s; "
		 "printf data; wait",
		 pidf);
	mem_init(&m);
	memset(&l, 0, sizeof(l));
	m.fail_after = 1;
	alarm(30);
	rc =
	    chom_run_to_sink(cmd, &m.s, on_line, &l, &status, &bytes, NULL, &e);
	alarm(0);
	assert_int_equal(rc, -1);
	tu_read(pidf, buf, sizeof(buf));
	pid = strtol(buf, NULL, 10);
	assert_true(pid > 1);
	for (i = 0; i < 20; i++) {
		if (!running((pid_t)pid)) {
			alive = 0;
			break;
		}
		usleep(100000);
	}
	if (alive)
		kill((pid_t)pid, SIGKILL); /* ours to clean up */
	tu_rm_rf(dir);
	mem_done(&m);
	if (alive)
		TU_FAILF("the command's child %ld still ran 2 s after the "
			 "command was killed",
			 pid);
}

static void
test_stop_flag(void **state)
{
	struct mem m;
	struct lines l;
	struct chom_err e = { 0 };
	unsigned long long bytes = 0;
	volatile sig_atomic_t stop = SIGTERM;
	double t0;
	int status = -99, rc;

	mem_init(&m);
	memset(&l, 0, sizeof(l));
	alarm(30);
	t0 = tu_now();
	rc = chom_run_to_sink("exec sleep 20", &m.s, on_line, &l, &status,
			      &bytes, &stop, &e);
	alarm(0);
	assert_int_equal(rc, -1);
	assert_int_equal(e.code, 128 + SIGTERM);
	assert_true(tu_now() - t0 < 10);
	mem_done(&m);
}

static volatile sig_atomic_t caught;

static void
on_term(int sig)
{
	caught = sig;
}

/* A SIGTERM sent the moment the command is forked, as a stop right after
 * the start does, ends it: it is not caught by our handler in the child
 * before exec and lost, leaving the command running. The same in our
 * process group (chom_run_fork_here()). */
static void
test_fork_no_signal_lost(void **state)
{
	struct sigaction sa, old;
	int i, wst, killed = 0;
	pid_t pid;

	(void)state;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term; /* as chom_cli_catch_signals() does */
	sigaction(SIGTERM, &sa, &old);
	alarm(60);
	for (i = 0; i < 20; i++) {
		pid = i % 2 ? chom_run_fork_here() : chom_run_fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			execl("/bin/sleep", "sleep", "2", (char *)NULL);
			_exit(127);
		}
		kill(pid, SIGTERM);
		while (waitpid(pid, &wst, 0) < 0)
			assert_int_equal(errno, EINTR);
		killed += WIFSIGNALED(wst) && WTERMSIG(wst) == SIGTERM;
	}
	alarm(0);
	sigaction(SIGTERM, &old, NULL);
	assert_int_equal(killed, 20);
	assert_int_equal(caught, 0);
}

/* The child of chom_run_fork() leads a session of its own, and so a
 * process group, from the moment the call returns; that of
 * chom_run_fork_here() stays in ours. Both have SIGPIPE at its default,
 * ignored by the tools. */
static void
test_fork_groups(void **state)
{
	void (*old)(int) = signal(SIGPIPE, SIG_IGN);
	pid_t group = getpgrp(), session = getsid(0), pid;
	int k, wst;

	(void)state;
	for (k = 0; k < 2; k++) {
		pid = k ? chom_run_fork_here() : chom_run_fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			int ok = signal(SIGPIPE, SIG_DFL) == SIG_DFL &&
				 (k ? getpgrp() == group && getsid(0) == session
				    : getpgrp() == getpid() &&
					  getsid(0) == getpid());

			_exit(ok ? 0 : 1);
		}
		if (!k)
			assert_int_equal(getsid(pid), pid);
		while (waitpid(pid, &wst, 0) < 0)
			assert_int_equal(errno, EINTR);
		assert_true(WIFEXITED(wst));
		if (WEXITSTATUS(wst))
			TU_FAILF("%s: wrong session or SIGPIPE in the child",
				 k ? "chom_run_fork_here" : "chom_run_fork");
	}
	signal(SIGPIPE, old);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stdout_to_sink),
		cmocka_unit_test(test_large_stdout),
		cmocka_unit_test(test_stdout_empty),
		cmocka_unit_test(test_stderr_lines),
		cmocka_unit_test(test_stderr_split_writes),
		cmocka_unit_test(test_exit_status),
		cmocka_unit_test(test_killed_by_signal),
		cmocka_unit_test(test_failing_sink_kills_command),
		cmocka_unit_test(test_failing_sink_kills_children),
		cmocka_unit_test(test_stop_flag),
		cmocka_unit_test(test_fork_no_signal_lost),
		cmocka_unit_test(test_fork_groups),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
