/*
 * Unit tests for chom-canary's library parts: the access-log line reader
 * and follower (lib/accesslog.c), the pools and verdicts (lib/canary.c),
 * and the upstream file with its test and reload commands
 * (lib/upstream.c).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "accesslog.h"
#include "canary.h"
#include "exitcode.h"
#include "upstream.h"

#include "testutil.h"

struct fx {
	char dir[256];
};

static int
setup(void **state)
{
	*state = TU_FIXTURE_NEW(struct fx, dir, "canary");
	return *state ? 0 : -1;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	return tu_fixture_free(f, f->dir);
}

static int
parse(const char *line, struct chom_alog_rec *r)
{
	return chom_alog_parse(line, strlen(line), r);
}

static void
expect_addr(const struct chom_alog_rec *r, const char *want)
{
	if (r->addrlen != strlen(want) || memcmp(r->addr, want, r->addrlen))
		TU_FAILF("addr '%.*s', want '%s'", (int)r->addrlen, r->addr,
			 want);
}

static void
test_parse(void **state)
{
	struct chom_alog_rec r;

	(void)state;
	assert_int_equal(parse("1.2.3.4 [x] \"GET / HTTP/1.1\" st=200 "
			       "ua=\"127.0.0.1:8081\" urt=\"0.012\"",
			       &r),
			 1);
	expect_addr(&r, "127.0.0.1:8081");
	assert_int_equal(r.status, 200);
	assert_true(fabs(r.seconds - 0.012) < 1e-12);
	/* next upstream tried: the last address and time count */
	assert_int_equal(parse("st=502 ua=\"10.0.0.1:80, 10.0.0.2:80\" "
			       "urt=\"1.000, 0.250\"",
			       &r),
			 1);
	expect_addr(&r, "10.0.0.2:80");
	assert_int_equal(r.status, 502);
	assert_true(fabs(r.seconds - 0.25) < 1e-12);
	/* an internal redirect, a unix socket */
	assert_int_equal(parse("st=200 ua=\"unix:/run/a.sock : "
			       "unix:/run/php/blue.sock\" urt=\"0.1 : 0.3\"",
			       &r),
			 1);
	expect_addr(&r, "unix:/run/php/blue.sock");
	assert_true(fabs(r.seconds - 0.3) < 1e-12);
	/* no upstream: a static file, or the log has no ua= */
	assert_int_equal(parse("st=200 ua=\"-\" urt=\"-\"", &r), 0);
	assert_int_equal(parse("st=304 rest", &r), 0);
	/* time unknown */
	assert_int_equal(parse("st=504 ua=\"a:1\" urt=\"-\"", &r), 1);
	assert_true(r.seconds < 0);
	/* keys must start a word: xst= is not st= */
	assert_int_equal(parse("xst=200 ua=\"a:1\"", &r), -1);
	assert_int_equal(parse("st=20 ua=\"a:1\"", &r), -1);
	assert_int_equal(parse("st=2x0 ua=\"a:1\"", &r), -1);
	assert_int_equal(parse("st=200 ua=\"a:1\" urt=\"fast\"", &r), -1);
	assert_int_equal(parse("st=200 ua=\"a:1", &r), 0);
	assert_int_equal(parse("", &r), -1);
}

struct tally {
	int lines, canary, errors;
};

static void
count(void *ctx, const struct chom_alog_rec *r)
{
	struct tally *t = ctx;

	t->lines++;
	t->canary += r->addrlen == 3 && !memcmp(r->addr, "c:1", 3);
	t->errors += r->status >= 500;
}

static void
test_follow(void **state)
{
	struct fx *f = *state;
	struct chom_alog l;
	struct tally t = { 0 };
	struct chom_err e;
	char path[512], old[520];

	snprintf(path, sizeof(path), "%s/access.log", f->dir);
	snprintf(old, sizeof(old), "%s.1", path);
	/* not there yet: opened when it appears, from its start */
	assert_int_equal(chom_alog_open(&l, path, &e), 0);
	assert_int_equal(chom_alog_read(&l, count, &t, &e), 0);
	assert_int_equal(t.lines, 0);
	tu_write(path, "st=200 ua=\"c:1\" urt=\"0.1\"\nst=500 ua=\"s:1\"");
	assert_int_equal(chom_alog_read(&l, count, &t, &e), 0);
	assert_int_equal(t.lines, 1); /* the second is not finished */
	tu_append(path, " urt=\"0.2\"\ngarbage\n");
	assert_int_equal(chom_alog_read(&l, count, &t, &e), 0);
	assert_int_equal(t.lines, 2);
	assert_int_equal(t.errors, 1);
	assert_int_equal((int)l.bad, 1);
	/* rotated by rename: the old file's unfinished line counts, then
	 * the new file from its start */
	tu_append(path, "st=200 ua=\"c:1\"");
	assert_int_equal(rename(path, old), 0);
	tu_write(path, "st=503 ua=\"c:1\"\n");
	assert_int_equal(chom_alog_read(&l, count, &t, &e), 0);
	assert_int_equal(t.lines, 4);
	assert_int_equal(t.canary, 3);
	/* truncated in place (copytruncate), then shorter than before */
	tu_write(path, "st=200 ua=\"s\"\n");
	assert_int_equal(chom_alog_read(&l, count, &t, &e), 0);
	assert_int_equal(t.lines, 5);
	/* truncated again, and longer than before by the next read: read
	 * from its start all the same, its first line too */
	tu_write(path, "st=502 ua=\"c:1\"\nst=200 ua=\"s\"\n");
	assert_int_equal(chom_alog_read(&l, count, &t, &e), 0);
	assert_int_equal(t.lines, 7);
	assert_int_equal(t.errors, 3);
	assert_int_equal((int)l.bad, 1);
	chom_alog_close(&l);

	/* a log that exists, truncated and grown past its old end before
	 * the first read */
	tu_write(path, "st=200 ua=\"s\"\n");
	assert_int_equal(chom_alog_open(&l, path, &e), 0);
	tu_write(path, "st=500 ua=\"c:1\"\nst=200 ua=\"s\"\n");
	t = (struct tally){ 0 };
	assert_int_equal(chom_alog_read(&l, count, &t, &e), 0);
	assert_int_equal(t.lines, 2);
	assert_int_equal(t.errors, 1);
	chom_alog_close(&l);

	/* a log that exists: only what is written after the start counts */
	assert_int_equal(chom_alog_open(&l, path, &e), 0);
	tu_append(path, "st=200 ua=\"c:1\"\n");
	t = (struct tally){ 0 };
	assert_int_equal(chom_alog_read(&l, count, &t, &e), 0);
	assert_int_equal(t.lines, 1);
	chom_alog_close(&l);
	/* a directory is not a log */
	assert_int_equal(chom_alog_open(&l, f->dir, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_USAGE);
}

static void
fill(struct chom_pool *p, int n, int errors, double base, double step)
{
	int i;

	for (i = 0; i < n; i++)
		assert_int_equal(chom_pool_add(p, i < errors ? 500 : 200,
					       base + step * (i % 10)),
				 0);
}

static void
test_judge(void **state)
{
	struct chom_judge j = { .max_error_rate = 0.05,
				.max_p95 = 0.3,
				.min_requests = 20,
				.alpha = 0.05 };
	struct chom_pool c, s;
	char why[512];

	(void)state;
	chom_pool_init(&c);
	chom_pool_init(&s);
	/* too few canary requests */
	fill(&c, 10, 0, 0.01, 0.001);
	fill(&s, 100, 0, 0.01, 0.001);
	assert_int_equal(chom_judge_counts(&j, &c, &s, why, sizeof(why)),
			 CHOM_INCONCLUSIVE);
	assert_non_null(strstr(why, "--min-requests 20"));
	/* healthy */
	fill(&c, 90, 0, 0.01, 0.001);
	assert_int_equal(chom_judge_counts(&j, &c, &s, why, sizeof(why)),
			 CHOM_PASS);
	/* 30% errors against none: fails */
	chom_pool_reset(&c);
	fill(&c, 100, 30, 0.01, 0.001);
	assert_int_equal(chom_judge_counts(&j, &c, &s, why, sizeof(why)),
			 CHOM_FAIL);
	assert_non_null(strstr(why, "error rate 30.00%"));
	/* both pools at 30%: not the canary's fault */
	chom_pool_reset(&s);
	fill(&s, 300, 90, 0.01, 0.001);
	assert_int_equal(chom_judge_counts(&j, &c, &s, why, sizeof(why)),
			 CHOM_PASS);
	assert_non_null(strstr(why, "as high"));
	/* stable too small to compare: the threshold alone */
	chom_pool_reset(&s);
	fill(&s, 5, 0, 0.01, 0.001);
	assert_int_equal(chom_judge_counts(&j, &c, &s, why, sizeof(why)),
			 CHOM_FAIL);
	assert_non_null(strstr(why, "too few requests to compare"));
	/* +500 ms: fails on p95 */
	chom_pool_reset(&c);
	chom_pool_reset(&s);
	fill(&c, 100, 0, 0.51, 0.001);
	fill(&s, 100, 0, 0.01, 0.001);
	assert_int_equal(chom_judge_counts(&j, &c, &s, why, sizeof(why)),
			 CHOM_FAIL);
	assert_non_null(strstr(why, "p95"));
	/* both slow alike: passes */
	chom_pool_reset(&s);
	fill(&s, 100, 0, 0.51, 0.001);
	assert_int_equal(chom_judge_counts(&j, &c, &s, why, sizeof(why)),
			 CHOM_PASS);
	assert_true(fabs(chom_pool_p95(&c) - 0.519) < 1e-9);
	assert_true(fabs(chom_pool_error_rate(&c)) < 1e-12);
	chom_pool_free(&c);
	chom_pool_free(&s);
}

static void
test_reservoir(void **state)
{
	struct chom_pool p;
	unsigned long long low = 0;
	size_t i;

	(void)state;
	chom_pool_init(&p);
	/* 3 x the reservoir: a third of the values are 1, the rest 2 */
	for (i = 0; i < 3 * CHOM_POOL_RESERVOIR; i++)
		assert_int_equal(chom_pool_add(&p, 200, i % 3 ? 2.0 : 1.0), 0);
	assert_int_equal(p.requests, 3 * CHOM_POOL_RESERVOIR);
	assert_int_equal(p.nlat, CHOM_POOL_RESERVOIR);
	for (i = 0; i < p.nlat; i++)
		low += p.lat[i] == 1.0;
	/* uniform: about a third, well within 2% */
	if (fabs((double)low / CHOM_POOL_RESERVOIR - 1.0 / 3) > 0.02)
		TU_FAILF("%llu of %d kept values are 1", low,
			 CHOM_POOL_RESERVOIR);
	assert_true(isnan(chom_pool_error_rate(&(struct chom_pool){ 0 })));
	chom_pool_free(&p);
}

static void
test_judge_values(void **state)
{
	struct chom_judge j = { .max_error_rate = 0.05, .max_p95 = 0.3 };
	struct chom_pool_view c = { .error_rate = 0.01, .p95 = 0.1 },
			      s = { .error_rate = 0.01, .p95 = 0.1 };
	char why[512];

	(void)state;
	assert_int_equal(chom_judge_values(&j, &c, &s, why, sizeof(why)),
			 CHOM_PASS);
	c.error_rate = NAN;
	assert_int_equal(chom_judge_values(&j, &c, &s, why, sizeof(why)),
			 CHOM_INCONCLUSIVE);
	c.error_rate = -1; /* not asked */
	assert_int_equal(chom_judge_values(&j, &c, &s, why, sizeof(why)),
			 CHOM_PASS);
	c.error_rate = 0.3;
	assert_int_equal(chom_judge_values(&j, &c, &s, why, sizeof(why)),
			 CHOM_FAIL);
	s.error_rate = 0.25; /* both high, canary not 1.5x worse */
	assert_int_equal(chom_judge_values(&j, &c, &s, why, sizeof(why)),
			 CHOM_PASS);
	s.error_rate = 0.1;
	assert_int_equal(chom_judge_values(&j, &c, &s, why, sizeof(why)),
			 CHOM_FAIL);
	s.error_rate = NAN; /* stable unknown: the threshold alone */
	assert_int_equal(chom_judge_values(&j, &c, &s, why, sizeof(why)),
			 CHOM_FAIL);
	c.error_rate = 0.01;
	c.p95 = 0.8;
	assert_int_equal(chom_judge_values(&j, &c, &s, why, sizeof(why)),
			 CHOM_FAIL);
	assert_non_null(strstr(why, "p95 800 ms"));
}

static void
test_upstream(void **state)
{
	struct fx *f = *state;
	const char *dirs[] = { "keepalive 32" };
	struct chom_upstream u = { .name = "app",
				   .stable = "127.0.0.1:8081",
				   .canary = "unix:/run/c.sock",
				   .directives = dirs,
				   .ndirectives = 1 };
	char path[512], text[2048], got[2048], cmd[1200];
	struct chom_err e;

	snprintf(path, sizeof(path), "%s/app.conf", f->dir);
	u.path = path;
	assert_true(chom_upstream_render(&u, 25, "step 2/5", text, sizeof(text),
					 &e) > 0);
	assert_non_null(strstr(text, "# Managed by chom-canary"));
	assert_non_null(strstr(text, "upstream app {\n"
				     "    server 127.0.0.1:8081 weight=75;\n"
				     "    server unix:/run/c.sock weight=25;\n"
				     "    keepalive 32;\n}\n"));
	assert_int_equal(chom_upstream_weight(&u), -1); /* no file */
	assert_int_equal(chom_upstream_apply(&u, text, NULL, &e), 0);
	assert_int_equal(chom_upstream_weight(&u), 25);
	assert_int_equal(chom_upstream_render(&u, 0, "x", text, 40, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_USAGE);

	/* A test command that refuses: the file before is back. */
	tu_read(path, got, sizeof(got));
	assert_true(
	    chom_upstream_render(&u, 100, "all", text, sizeof(text), &e) > 0);
	u.test_cmd = "echo 'nginx: [emerg] bad' >&2; exit 1";
	assert_int_equal(chom_upstream_apply(&u, text, NULL, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_FAIL);
	assert_non_null(
	    strstr(e.msg, "exited with status 1: nginx: [emerg] bad"));
	tu_read(path, text, sizeof(text));
	assert_string_equal(text, got);
	assert_int_equal(chom_upstream_weight(&u), 25);

	/* A reload that fails once: put back and reloaded again. */
	snprintf(cmd, sizeof(cmd),
		 "if [ -e %s/once ]; then echo again >>%s/reloads; else "
		 "touch %s/once; exit 3; fi",
		 f->dir, f->dir, f->dir);
	u.test_cmd = "true";
	u.reload_cmd = cmd;
	assert_true(
	    chom_upstream_render(&u, 0, "back", text, sizeof(text), &e) > 0);
	assert_int_equal(chom_upstream_apply(&u, text, NULL, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_FAIL);
	assert_int_equal(chom_upstream_weight(&u), 25);
	snprintf(cmd, sizeof(cmd), "%s/reloads", f->dir);
	tu_read(cmd, got, sizeof(got));
	assert_string_equal(got, "again\n");

	/* A reload that always fails: the old file is back, but whether
	 * nginx runs it is unknown: code 4. */
	u.reload_cmd = "false";
	assert_int_equal(chom_upstream_apply(&u, text, NULL, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_UNSAFE);
	assert_non_null(strstr(e.msg, "and putting"));
	assert_int_equal(chom_upstream_weight(&u), 25);

	/* No file before: a failed test leaves none. */
	unlink(path);
	u.test_cmd = "false";
	assert_int_equal(chom_upstream_apply(&u, text, NULL, &e), -1);
	assert_int_equal(access(path, F_OK), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test_setup_teardown(test_follow, setup, teardown),
		cmocka_unit_test(test_judge),
		cmocka_unit_test(test_reservoir),
		cmocka_unit_test(test_judge_values),
		cmocka_unit_test_setup_teardown(test_upstream, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
