/*
 * Unit tests for lib/sinks.c: the measuring stage (byte count and
 * SHA-256 of what passes) and the tee to several sinks, with a member
 * that fails on write or on close.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exitcode.h"
#include "sha256.h"
#include "sinks.h"
#include "zst.h"

#include "testutil.h"

#define H_ABC "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define H_MILLION_A                                                            \
	"cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"

/* A sink keeping what it gets; fail_write / fail_close make it fail. It
 * lives in the test's array: free only counts. */
struct mem {
	struct chom_sink s;
	char buf[4096];
	size_t len;
	int writes, closes, frees, fail_write, fail_close;
	const char *name;
};

static int
mem_write(struct chom_sink *s, const void *buf, size_t len, struct chom_err *e)
{
	struct mem *m = (struct mem *)s;

	m->writes++;
	if (m->fail_write)
		return chom_err_set(e, CHOM_EXIT_FAIL, "%s: write failed",
				    m->name);
	if (m->len + len > sizeof(m->buf))
		len = sizeof(m->buf) - m->len; /* counted, not kept */
	memcpy(m->buf + m->len, buf, len);
	m->len += len;
	return 0;
}

static int
mem_close(struct chom_sink *s, struct chom_err *e)
{
	struct mem *m = (struct mem *)s;

	m->closes++;
	if (m->fail_close)
		return chom_err_set(e, CHOM_EXIT_FAIL, "%s: close failed",
				    m->name);
	return 0;
}

static void
mem_free(struct chom_sink *s)
{
	((struct mem *)s)->frees++;
}

static void
mem_init(struct mem *m, const char *name)
{
	memset(m, 0, sizeof(*m));
	m->s = (struct chom_sink){ mem_write, mem_close, mem_free, NULL };
	m->name = name;
}

static void
test_measure_counts_and_hashes(void **state)
{
	struct mem m;
	struct chom_sha256 *h = chom_sha256_new();
	unsigned long long count = 0;
	struct chom_err e = { 0 };
	struct chom_sink *s;
	char hex[CHOM_SHA256_HEXLEN + 1];

	assert_non_null(h);
	mem_init(&m, "next");
	s = chom_sink_measure_new(&m.s, h, &count, &e);
	assert_non_null(s);
	assert_int_equal(chom_sink_write(s, "a", 1, &e), 0);
	assert_int_equal(chom_sink_write(s, "", 0, &e), 0);
	assert_int_equal(chom_sink_write(s, "bc", 2, &e), 0);
	assert_int_equal(count, 3);
	assert_int_equal(m.len, 3);
	assert_memory_equal(m.buf, "abc", 3);
	assert_int_equal(m.closes, 0);
	assert_int_equal(chom_sink_close(s, &e), 0);
	assert_int_equal(m.closes, 1);
	chom_sink_free(s);
	assert_int_equal(m.frees, 1);
	chom_sha256_final_hex(h, hex);
	assert_string_equal(hex, H_ABC);
	chom_sha256_free(h);
}

static void
test_measure_large(void **state)
{
	struct mem m;
	struct chom_sha256 *h = chom_sha256_new();
	unsigned long long count = 0;
	struct chom_err e = { 0 };
	struct chom_sink *s;
	char hex[CHOM_SHA256_HEXLEN + 1], a[1000];
	int i;

	assert_non_null(h);
	memset(a, 'a', sizeof(a));
	mem_init(&m, "next");
	s = chom_sink_measure_new(&m.s, h, &count, &e);
	assert_non_null(s);
	for (i = 0; i < 1000; i++)
		assert_int_equal(chom_sink_write(s, a, sizeof(a), &e), 0);
	assert_int_equal(count, 1000000);
	assert_int_equal(chom_sink_close(s, &e), 0);
	chom_sink_free(s);
	chom_sha256_final_hex(h, hex);
	assert_string_equal(hex, H_MILLION_A);
	chom_sha256_free(h);
}

/* Without a hash it only counts; the count adds to what was there. */
static void
test_measure_count_only(void **state)
{
	struct mem m;
	unsigned long long count = 100;
	struct chom_err e = { 0 };
	struct chom_sink *s;

	mem_init(&m, "next");
	s = chom_sink_measure_new(&m.s, NULL, &count, &e);
	assert_non_null(s);
	assert_int_equal(chom_sink_write(s, "hello", 5, &e), 0);
	assert_int_equal(count, 105);
	assert_int_equal(chom_sink_close(s, &e), 0);
	chom_sink_free(s);
	assert_int_equal(m.frees, 1);
}

static void
test_measure_passes_errors(void **state)
{
	struct mem m;
	unsigned long long count = 0;
	struct chom_err e = { 0 };
	struct chom_sink *s;

	mem_init(&m, "next");
	m.fail_write = 1;
	m.fail_close = 1;
	s = chom_sink_measure_new(&m.s, NULL, &count, &e);
	assert_non_null(s);
	assert_int_equal(chom_sink_write(s, "x", 1, &e), -1);
	assert_string_equal(e.msg, "next: write failed");
	assert_int_equal(chom_sink_close(s, &e), -1);
	assert_string_equal(e.msg, "next: close failed");
	chom_sink_free(s);
	assert_int_equal(m.frees, 1);
}

static void
test_tee_writes_to_all(void **state)
{
	struct mem m[3];
	struct chom_sink *v[3];
	struct chom_err e = { 0 };
	struct chom_sink *t;
	int i;

	for (i = 0; i < 3; i++) {
		mem_init(&m[i], "member");
		v[i] = &m[i].s;
	}
	t = chom_sink_tee_new(v, 3, &e);
	assert_non_null(t);
	assert_int_equal(chom_sink_write(t, "one ", 4, &e), 0);
	assert_int_equal(chom_sink_write(t, "two", 3, &e), 0);
	for (i = 0; i < 3; i++) {
		assert_int_equal(m[i].len, 7);
		assert_memory_equal(m[i].buf, "one two", 7);
		assert_int_equal(m[i].closes, 0);
	}
	assert_int_equal(chom_sink_close(t, &e), 0);
	for (i = 0; i < 3; i++)
		assert_int_equal(m[i].closes, 1);
	chom_sink_free(t);
	for (i = 0; i < 3; i++)
		assert_int_equal(m[i].frees, 1);
}

/* A tee of one is a pass-through. */
static void
test_tee_of_one(void **state)
{
	struct mem m;
	struct chom_sink *v[1];
	struct chom_err e = { 0 };
	struct chom_sink *t;

	mem_init(&m, "only");
	v[0] = &m.s;
	t = chom_sink_tee_new(v, 1, &e);
	assert_non_null(t);
	assert_int_equal(chom_sink_write(t, "abc", 3, &e), 0);
	assert_int_equal(chom_sink_close(t, &e), 0);
	chom_sink_free(t);
	assert_int_equal(m.len, 3);
	assert_int_equal(m.closes, 1);
	assert_int_equal(m.frees, 1);
}

static void
test_tee_member_write_fails(void **state)
{
	struct mem m[3];
	struct chom_sink *v[3];
	struct chom_err e = { 0 };
	struct chom_sink *t;
	int i;

	mem_init(&m[0], "first");
	mem_init(&m[1], "second");
	mem_init(&m[2], "third");
	m[1].fail_write = 1;
	for (i = 0; i < 3; i++)
		v[i] = &m[i].s;
	t = chom_sink_tee_new(v, 3, &e);
	assert_non_null(t);
	assert_int_equal(chom_sink_write(t, "data", 4, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_FAIL);
	assert_string_equal(e.msg, "second: write failed");
	/* Freed after the failure, without close: every member freed. */
	chom_sink_free(t);
	for (i = 0; i < 3; i++)
		assert_int_equal(m[i].frees, 1);
}

static void
test_tee_member_close_fails(void **state)
{
	struct mem m[2];
	struct chom_sink *v[2];
	struct chom_err e = { 0 };
	struct chom_sink *t;

	mem_init(&m[0], "first");
	mem_init(&m[1], "last");
	m[1].fail_close = 1;
	v[0] = &m[0].s;
	v[1] = &m[1].s;
	t = chom_sink_tee_new(v, 2, &e);
	assert_non_null(t);
	assert_int_equal(chom_sink_write(t, "data", 4, &e), 0);
	assert_int_equal(chom_sink_close(t, &e), -1);
	assert_string_equal(e.msg, "last: close failed");
	chom_sink_free(t);
	assert_int_equal(m[0].frees, 1);
	assert_int_equal(m[1].frees, 1);
}

/* measure -> tee: the stored bytes hashed once, written to each target,
 * as the backup pipeline uses them. */
static void
test_measure_into_tee(void **state)
{
	struct mem m[2];
	struct chom_sink *v[2];
	struct chom_sha256 *h = chom_sha256_new();
	unsigned long long count = 0;
	struct chom_err e = { 0 };
	struct chom_sink *t, *s;
	char hex[CHOM_SHA256_HEXLEN + 1];

	assert_non_null(h);
	mem_init(&m[0], "a");
	mem_init(&m[1], "b");
	v[0] = &m[0].s;
	v[1] = &m[1].s;
	t = chom_sink_tee_new(v, 2, &e);
	assert_non_null(t);
	s = chom_sink_measure_new(t, h, &count, &e);
	assert_non_null(s);
	assert_int_equal(chom_sink_write(s, "abc", 3, &e), 0);
	assert_int_equal(chom_sink_close(s, &e), 0);
	chom_sink_free(s);
	chom_sha256_final_hex(h, hex);
	chom_sha256_free(h);
	assert_string_equal(hex, H_ABC);
	assert_int_equal(count, 3);
	assert_memory_equal(m[0].buf, "abc", 3);
	assert_memory_equal(m[1].buf, "abc", 3);
	assert_int_equal(m[0].frees + m[1].frees, 2);
}

/* A limit of 10: 4 + 6 pass, the next byte fails before it is passed on. */
static void
test_limit_stops_at_max(void **state)
{
	struct mem m;
	struct chom_err e = { 0 };
	unsigned long long n = 0;
	struct chom_sink *s;

	(void)state;
	mem_init(&m, "next");
	s = chom_sink_limit_new(&m.s, NULL, &n, 10, "of plaintext", &e);
	assert_non_null(s);
	assert_int_equal(chom_sink_write(s, "abcd", 4, &e), 0);
	assert_int_equal(chom_sink_write(s, "efghij", 6, &e), 0);
	assert_int_equal(n, 10);
	assert_int_equal(chom_sink_write(s, "k", 1, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_FAIL);
	assert_string_equal(e.msg,
			    "more than 10 bytes of plaintext: stopped there");
	assert_int_equal(n, 10);
	assert_int_equal(m.len, 10);
	assert_int_equal(m.writes, 2);
	chom_sink_free(s);
	assert_int_equal(m.frees, 1);
}

/* One write that would pass the limit is refused whole, and so is a huge
 * one (no overflow of count + len). */
static void
test_limit_refuses_whole_write(void **state)
{
	struct mem m;
	struct chom_err e = { 0 };
	unsigned long long n = 0;
	struct chom_sink *s;
	char big[64];

	(void)state;
	memset(big, 'x', sizeof(big));
	mem_init(&m, "next");
	s = chom_sink_limit_new(&m.s, NULL, &n, 8, NULL, &e);
	assert_int_equal(chom_sink_write(s, big, 9, &e), -1);
	assert_string_equal(e.msg, "more than 8 bytes: stopped there");
	assert_int_equal(m.writes, 0);
	assert_int_equal(n, 0);
	assert_int_equal(chom_sink_write(s, big, 8, &e), 0);
	assert_int_equal(chom_sink_write(s, big, 0, &e), 0);
	assert_int_equal(chom_sink_write(s, big, (size_t)-1, &e), -1);
	assert_int_equal(m.len, 8);
	chom_sink_free(s);

	/* A limit of 0: nothing passes. */
	mem_init(&m, "next");
	n = 0;
	s = chom_sink_limit_new(&m.s, NULL, &n, 0, "x", &e);
	assert_int_equal(chom_sink_write(s, big, 1, &e), -1);
	assert_int_equal(m.len, 0);
	assert_int_equal(chom_sink_close(s, &e), 0);
	chom_sink_free(s);
}

/* Under the limit it hashes and counts as the measuring stage does. */
static void
test_limit_hashes_under_max(void **state)
{
	struct mem m;
	struct chom_err e = { 0 };
	unsigned long long n = 0;
	struct chom_sha256 *h = chom_sha256_new();
	char hex[CHOM_SHA256_HEXLEN + 1];
	struct chom_sink *s;

	(void)state;
	mem_init(&m, "next");
	s = chom_sink_limit_new(&m.s, h, &n, 3, "", &e);
	assert_int_equal(chom_sink_write(s, "abc", 3, &e), 0);
	assert_int_equal(chom_sink_write(s, "d", 1, &e), -1);
	assert_int_equal(chom_sink_close(s, &e), 0);
	chom_sha256_final_hex(h, hex);
	assert_string_equal(hex, H_ABC);
	assert_int_equal(n, 3);
	chom_sink_free(s);
	chom_sha256_free(h);
}

/* The space of the next stage passes a measure, up to a limit: what is
 * read there is counted by the write that follows, and nothing is offered
 * beyond the limit. */
static void
test_limit_passes_space(void **state)
{
	struct tu_buf out;
	struct mem m;
	struct chom_err e = { 0 };
	unsigned long long n = 0;
	struct chom_sink *s;
	unsigned char *p, *q;
	size_t room = 0;

	(void)state;
	s = chom_zstd_new(tu_mem_new(&out, SIZE_MAX, 0), 3, 1, &e);
	assert_non_null(s);
	assert_non_null(s = chom_sink_limit_new(s, NULL, &n, 100, "x", &e));
	assert_non_null(p = chom_sink_space(s, &room));
	assert_int_equal(room, 100);
	memset(p, 'a', 60);
	assert_int_equal(chom_sink_write(s, p, 60, &e), 0);
	assert_int_equal(n, 60);
	assert_non_null(q = chom_sink_space(s, &room));
	assert_ptr_equal(q, p + 60);
	assert_int_equal(room, 40);
	memset(q, 'b', 40);
	assert_int_equal(chom_sink_write(s, q, 40, &e), 0);
	assert_null(chom_sink_space(s, &room));
	assert_int_equal(chom_sink_write(s, "c", 1, &e), -1);
	assert_string_equal(e.msg, "more than 100 bytes x: stopped there");
	chom_sink_free(s);
	free(out.p);

	/* A next stage without space: none. */
	mem_init(&m, "next");
	n = 0;
	s = chom_sink_measure_new(&m.s, NULL, &n, &e);
	assert_null(chom_sink_space(s, &room));
	chom_sink_free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_measure_counts_and_hashes),
		cmocka_unit_test(test_measure_large),
		cmocka_unit_test(test_measure_count_only),
		cmocka_unit_test(test_measure_passes_errors),
		cmocka_unit_test(test_tee_writes_to_all),
		cmocka_unit_test(test_tee_of_one),
		cmocka_unit_test(test_tee_member_write_fails),
		cmocka_unit_test(test_tee_member_close_fails),
		cmocka_unit_test(test_measure_into_tee),
		cmocka_unit_test(test_limit_stops_at_max),
		cmocka_unit_test(test_limit_refuses_whole_write),
		cmocka_unit_test(test_limit_hashes_under_max),
		cmocka_unit_test(test_limit_passes_space),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
