/*
 * Unit tests for lib/gzpar.c: round trips at the block edges on 1, 2 and 4
 * threads, the output read by gzip(1), the ratio against `gzip -6`, corrupt
 * and truncated input, and errors of the next sink.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exitcode.h"
#include "gzpar.h"

#include "testutil.h"

#define BLK (256 * 1024) /* lib/gzpar.c's block */
#define MIB (1024 * 1024)

struct fixture {
	char dir[64];
	char in[128], gz[128], out[128];
};

static void
gz(const unsigned char *p, size_t n, int threads, size_t chunk, int in_place,
   struct tu_buf *out)
{
	struct chom_err e;
	struct chom_sink *s =
	    chom_gzpar_new(tu_mem_new(out, SIZE_MAX, 0), 6, threads, &e);

	if (!s)
		TU_FAILF("chom_gzpar_new: %s", e.msg);
	if ((in_place ? tu_feed_in_place : tu_feed)(s, p, n, chunk, &e))
		TU_FAILF("gzpar: %s", e.msg);
	chom_sink_free(s);
	assert_int_equal(out->closed, 1);
}

/* Gunzips n bytes of p into out; returns what the writes and close did. */
static int
gunzip(const unsigned char *p, size_t n, size_t chunk, struct tu_buf *out,
       struct chom_err *e)
{
	struct chom_sink *s = chom_gunzip_new(tu_mem_new(out, SIZE_MAX, 0), e);
	int r;

	if (!s)
		TU_FAILF("chom_gunzip_new: %s", e->msg);
	r = tu_feed(s, p, n, chunk, e);
	chom_sink_free(s);
	return r;
}

static int
setup(void **state)
{
	struct fixture *fx = TU_FIXTURE_NEW(struct fixture, dir, "gzpar");

	if (!fx)
		return -1;
	snprintf(fx->in, sizeof(fx->in), "%s/in", fx->dir);
	snprintf(fx->gz, sizeof(fx->gz), "%s/in.gz", fx->dir);
	snprintf(fx->out, sizeof(fx->out), "%s/out", fx->dir);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;

	return tu_fixture_free(fx, fx->dir);
}

static void
test_round_trip(void **state)
{
	static const size_t sizes[] = { 0, 1, BLK - 1, BLK, BLK + 1, 5 * MIB };
	/* Copied from the caller's buffer in pieces of chunk bytes (0: all
	 * at once; 1: byte by byte), or read in place (see
	 * tu_feed_in_place()): the whole room, or pieces of it. */
	static const int threads[] = { 1, 2, 4, 2, 1 };
	static const size_t chunks[] = { 0, 4093, 1, 0, 4093 };
	struct fixture *fx = *state;
	char what[128];
	size_t i, j, n;
	int t, random;

	for (random = 0; random < 2; random++)
		for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			unsigned char *p = random ? tu_gen_random(sizes[i], i)
						  : tu_gen_text(sizes[i], i);

			for (j = 0; j < 5; j++) {
				struct tu_buf z, back;
				struct chom_err e;
				size_t chunk = chunks[j];
				unsigned char *tool;
				int in_place = j >= 3;

				t = threads[j];
				/* Byte by byte only where it is quick. */
				if (chunk == 1 && sizes[i] > BLK + 1)
					chunk = 65537;
				snprintf(
				    what, sizeof(what),
				    "%s %zu bytes, %d threads, chunk %zu%s",
				    random ? "random" : "text", sizes[i], t,
				    chunk, in_place ? ", in place" : "");
				gz(p, sizes[i], t, chunk, in_place, &z);
				if (gunzip(z.p, z.len, chunk ? 1000 : 0, &back,
					   &e))
					TU_FAILF("%s: gunzip: %s", what, e.msg);
				tu_expect_same(&back, p, sizes[i], what);
				tu_put_file(fx->gz, z.p, z.len);
				tu_sh("gzip -dc '%s' >'%s'", fx->gz, fx->out);
				tool = tu_get_file(fx->out, &n);
				if (n != sizes[i] || (n && memcmp(tool, p, n)))
					TU_FAILF("%s: gzip -d differs", what);
				free(tool);
				free(z.p);
				free(back.p);
			}
			free(p);
		}
}

static void
test_gunzip_multi_member(void **state)
{
	struct fixture *fx = *state;
	unsigned char *a = tu_gen_text(300000, 7), *both, *gzipped;
	struct chom_sink *s;
	struct tu_buf z, back;
	struct chom_err e;
	size_t n;

	/* Members from gzip(1), then one of ours. */
	tu_put_file(fx->in, a, 200000);
	tu_sh("gzip -6 -c '%s' >'%s' && gzip -1 -c '%s' >>'%s'", fx->in, fx->gz,
	      fx->in, fx->gz);
	gz(a + 200000, 100000, 2, 0, 0, &z);
	gzipped = tu_get_file(fx->gz, &n);
	both = malloc(n + z.len);
	assert_non_null(both);
	memcpy(both, gzipped, n);
	memcpy(both + n, z.p, z.len);
	assert_int_equal(gunzip(both, n + z.len, 777, &back, &e), 0);
	assert_int_equal(back.len, 500000);
	assert_memory_equal(back.p, a, 200000);
	assert_memory_equal(back.p + 200000, a, 200000);
	assert_memory_equal(back.p + 400000, a + 200000, 100000);
	free(back.p);
	/* Written in two parts split exactly at the last member's start. */
	s = chom_gunzip_new(tu_mem_new(&back, SIZE_MAX, 0), &e);
	assert_non_null(s);
	assert_int_equal(chom_sink_write(s, both, n, &e), 0);
	assert_int_equal(tu_feed(s, both + n, z.len, 0, &e), 0);
	chom_sink_free(s);
	assert_int_equal(back.len, 500000);
	assert_memory_equal(back.p + 400000, a + 200000, 100000);
	free(back.p);
	free(both);
	free(gzipped);
	free(z.p);
	free(a);
}

/* Gunzipping n bytes of p must fail with code 1 and a "gzip: " message. */
static void
expect_corrupt(const unsigned char *p, size_t n, const char *what)
{
	struct tu_buf back;
	struct chom_err e;
	size_t chunk;

	for (chunk = 0; chunk <= 4096; chunk += 4096) {
		if (gunzip(p, n, chunk, &back, &e) == 0)
			TU_FAILF("%s: gunzip succeeded", what);
		if (e.code != CHOM_EXIT_FAIL || strncmp(e.msg, "gzip: ", 6))
			TU_FAILF("%s: code %d, \"%s\"", what, e.code, e.msg);
		assert_int_equal(back.closed, 0);
		free(back.p);
	}
}

static void
test_gunzip_corrupt(void **state)
{
	unsigned char *p = tu_gen_text(MIB, 3), *bad;
	struct tu_buf z;
	size_t i;

	gz(p, MIB, 2, 0, 0, &z);
	bad = malloc(z.len + 16);
	assert_non_null(bad);

	expect_corrupt(z.p, 0, "empty input");
	expect_corrupt(z.p, 5, "only part of the header");
	expect_corrupt(z.p, z.len - 1, "the last byte cut");
	expect_corrupt(z.p, z.len - 8, "no trailer");
	expect_corrupt(z.p, z.len / 2, "cut in half");

	/* A flipped byte in the data, the CRC or the length. */
	for (i = 0; i < 3; i++) {
		size_t at = i == 0 ? z.len / 3 : i == 1 ? z.len - 6 : z.len - 2;

		memcpy(bad, z.p, z.len);
		bad[at] ^= 0x5a;
		expect_corrupt(bad, z.len, "a flipped byte");
	}
	/* Not gzip at all; garbage after a whole member. */
	expect_corrupt((const unsigned char *)"hello, world\n", 13, "text");
	memcpy(bad, z.p, z.len);
	memcpy(bad + z.len, "garbage", 7);
	expect_corrupt(bad, z.len + 7, "trailing garbage");
	expect_corrupt(bad, z.len + 1, "one trailing byte");
	free(bad);
	free(z.p);
	free(p);
}

static void
test_next_error(void **state)
{
	unsigned char *p = tu_gen_text(5 * MIB, 11);
	struct chom_sink *s;
	struct chom_err e;
	struct tu_buf out, z;
	int t, r;

	for (t = 1; t <= 4; t *= 2) {
		/* next fails after 100 KB of output. */
		s = chom_gzpar_new(tu_mem_new(&out, 100000, 0), 6, t, &e);
		assert_non_null(s);
		r = tu_feed(s, p, 5 * MIB, 65536, &e);
		assert_int_equal(r, -1);
		assert_int_equal(e.code, CHOM_EXIT_UNSAFE);
		assert_string_equal(e.msg, "disk full");
		/* The sink stays failed. */
		chom_err_clear(&e);
		assert_int_equal(chom_sink_write(s, p, 10, &e), -1);
		assert_int_equal(e.code, CHOM_EXIT_UNSAFE);
		assert_int_equal(chom_sink_close(s, &e), -1);
		assert_int_equal(e.code, CHOM_EXIT_UNSAFE);
		chom_sink_free(s);
		free(out.p);

		/* next fails to close. */
		s = chom_gzpar_new(tu_mem_new(&out, SIZE_MAX, 1), 6, t, &e);
		assert_non_null(s);
		assert_int_equal(tu_feed(s, p, 300000, 0, &e), -1);
		assert_int_equal(e.code, CHOM_EXIT_UNSAFE);
		assert_string_equal(e.msg, "close failed");
		chom_sink_free(s);
		free(out.p);

		/* Freed in the middle, with blocks in flight. */
		s = chom_gzpar_new(tu_mem_new(&out, SIZE_MAX, 0), 6, t, &e);
		assert_non_null(s);
		assert_int_equal(chom_sink_write(s, p, 5 * MIB, &e), 0);
		chom_sink_free(s);
		assert_int_equal(out.closed, 0);
		free(out.p);
	}

	/* The decompressor passes next's failures on too. */
	gz(p, 5 * MIB, 2, 0, 0, &z);
	s = chom_gunzip_new(tu_mem_new(&out, MIB, 0), &e);
	assert_non_null(s);
	assert_int_equal(tu_feed(s, z.p, z.len, 0, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_UNSAFE);
	assert_string_equal(e.msg, "disk full");
	chom_sink_free(s);
	free(out.p);
	s = chom_gunzip_new(tu_mem_new(&out, SIZE_MAX, 1), &e);
	assert_non_null(s);
	assert_int_equal(tu_feed(s, z.p, z.len, 0, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_UNSAFE);
	assert_string_equal(e.msg, "close failed");
	chom_sink_free(s);
	free(out.p);
	free(z.p);
	free(p);
}

static void
test_bad_args(void **state)
{
	struct tu_buf out;
	struct chom_sink *next = tu_mem_new(&out, SIZE_MAX, 0);
	struct chom_err e;

	assert_null(chom_gzpar_new(next, 10, 1, &e));
	assert_int_equal(e.code, CHOM_EXIT_USAGE);
	assert_null(chom_gzpar_new(next, -1, 1, &e));
	assert_int_equal(e.code, CHOM_EXIT_USAGE);
	assert_null(chom_gzpar_new(next, 6, 0, &e));
	assert_int_equal(e.code, CHOM_EXIT_USAGE);
	assert_null(chom_gzpar_new(next, 6, 100000, &e));
	assert_int_equal(e.code, CHOM_EXIT_USAGE);
	/* next is still ours. */
	chom_sink_free(next);
}

/* Every level, and level 0's stored blocks, on 2 threads. */
static void
test_levels(void **state)
{
	unsigned char *p = tu_gen_text(600000, 5);
	struct tu_buf z, back;
	struct chom_err e;
	int level;

	for (level = 0; level <= 9; level++) {
		struct chom_sink *s =
		    chom_gzpar_new(tu_mem_new(&z, SIZE_MAX, 0), level, 2, &e);

		assert_non_null(s);
		assert_int_equal(tu_feed(s, p, 600000, 10000, &e), 0);
		chom_sink_free(s);
		assert_int_equal(gunzip(z.p, z.len, 0, &back, &e), 0);
		tu_expect_same(&back, p, 600000, "a level");
		free(z.p);
		free(back.p);
	}
	free(p);
}

/* ~20 MiB of text: the size next to gzip -6's, and 1 against 2 threads. */
static void
test_ratio_and_speed(void **state)
{
	struct fixture *fx = *state;
	size_t n = 20 * MIB;
	unsigned char *p = tu_gen_text(n, 42);
	struct tu_buf z[2];
	double secs[2], t0, diff;
	off_t ref;
	int i;

	tu_put_file(fx->in, p, n);
	t0 = tu_now();
	tu_sh("gzip -6 -c '%s' >'%s'", fx->in, fx->gz);
	print_message("# gzip -6: %.2f s\n", tu_now() - t0);
	ref = tu_file_size(fx->gz);
	for (i = 0; i < 2; i++) {
		t0 = tu_now();
		gz(p, n, i + 1, 65536, 0, &z[i]);
		secs[i] = tu_now() - t0;
	}
	assert_int_equal(z[0].len, z[1].len);
	assert_memory_equal(z[0].p, z[1].p, z[0].len);
	diff = ((double)z[0].len - (double)ref) / (double)ref;
	print_message("# %zu bytes: gzip -6 %lld (%.2f:1), gzpar %zu "
		      "(%.2f:1), %+.3f%%\n",
		      n, (long long)ref, (double)n / (double)ref, z[0].len,
		      (double)n / (double)z[0].len, diff * 100);
	print_message("# gzpar: 1 thread %.2f s (%.1f MB/s), 2 threads %.2f s "
		      "(%.1f MB/s), %.2fx\n",
		      secs[0], n / secs[0] / 1e6, secs[1], n / secs[1] / 1e6,
		      secs[0] / secs[1]);
	if (diff > 0.02 || diff < -0.02)
		TU_FAILF("gzpar's output is %+.2f%% of gzip -6's", diff * 100);
	tu_put_file(fx->gz, z[1].p, z[1].len);
	tu_sh("gzip -dc '%s' | cmp -s - '%s'", fx->gz, fx->in);
	free(z[0].p);
	free(z[1].p);
	free(p);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_round_trip),
		T(test_gunzip_multi_member),
		cmocka_unit_test(test_gunzip_corrupt),
		cmocka_unit_test(test_next_error),
		cmocka_unit_test(test_bad_args),
		cmocka_unit_test(test_levels),
		T(test_ratio_and_speed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
