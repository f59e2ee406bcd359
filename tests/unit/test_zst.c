/*
 * Unit tests for lib/zst.c: round trips at 128 KiB edges on 1, 2 and 4
 * threads, the output read by zstd(1), corrupt and truncated input, errors
 * of the next sink, and the speed on 1 and 2 threads.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exitcode.h"
#include "zst.h"

#include "testutil.h"

#define K128 (128 * 1024)
#define MIB (1024 * 1024)

struct fixture {
	char dir[64];
	char in[128], zst[128], out[128];
};

static void
zst(const unsigned char *p, size_t n, int level, int threads, size_t chunk,
    int in_place, struct tu_buf *out)
{
	struct chom_err e;
	struct chom_sink *s =
	    chom_zstd_new(tu_mem_new(out, SIZE_MAX, 0), level, threads, &e);

	if (!s)
		TU_FAILF("chom_zstd_new: %s", e.msg);
	if ((in_place ? tu_feed_in_place : tu_feed)(s, p, n, chunk, &e))
		TU_FAILF("zstd: %s", e.msg);
	chom_sink_free(s);
	assert_int_equal(out->closed, 1);
}

/* Decompresses n bytes of p into out; returns what the writes and close
 * did. */
static int
unzstd(const unsigned char *p, size_t n, size_t chunk, struct tu_buf *out,
       struct chom_err *e)
{
	struct chom_sink *s = chom_unzstd_new(tu_mem_new(out, SIZE_MAX, 0), e);
	int r;

	if (!s)
		TU_FAILF("chom_unzstd_new: %s", e->msg);
	r = tu_feed(s, p, n, chunk, e);
	chom_sink_free(s);
	return r;
}

static int
setup(void **state)
{
	struct fixture *fx = TU_FIXTURE_NEW(struct fixture, dir, "zst");

	if (!fx)
		return -1;
	snprintf(fx->in, sizeof(fx->in), "%s/in", fx->dir);
	snprintf(fx->zst, sizeof(fx->zst), "%s/in.zst", fx->dir);
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
	static const size_t sizes[] = {
		0, 1, K128 - 1, K128, K128 + 1, 5 * MIB
	};
	/* As in test_gzpar.c: copied in pieces of chunk bytes, or read in
	 * place (the last two). */
	static const int threads[] = { 1, 2, 4, 2, 1 };
	static const size_t chunks[] = { 0, 4093, 1, 0, 4093 };
	struct fixture *fx = *state;
	char what[128];
	size_t i, j, n;
	int random;

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

				if (chunk == 1 && sizes[i] > K128 + 1)
					chunk = 65537;
				snprintf(
				    what, sizeof(what),
				    "%s %zu bytes, %d threads, chunk %zu%s",
				    random ? "random" : "text", sizes[i],
				    threads[j], chunk,
				    in_place ? ", in place" : "");
				zst(p, sizes[i], 3, threads[j], chunk, in_place,
				    &z);
				if (unzstd(z.p, z.len, chunk ? 1000 : 0, &back,
					   &e))
					TU_FAILF("%s: unzstd: %s", what, e.msg);
				tu_expect_same(&back, p, sizes[i], what);
				tu_put_file(fx->zst, z.p, z.len);
				tu_sh("zstd -q -d -c '%s' >'%s'", fx->zst,
				      fx->out);
				tool = tu_get_file(fx->out, &n);
				if (n != sizes[i] || (n && memcmp(tool, p, n)))
					TU_FAILF("%s: zstd -d differs", what);
				free(tool);
				free(z.p);
				free(back.p);
			}
			free(p);
		}
}

/* Frames back to back, from zstd(1) and from us, split anywhere. */
static void
test_unzstd_frames(void **state)
{
	struct fixture *fx = *state;
	unsigned char *a = tu_gen_text(300000, 7), *both, *tool;
	struct chom_sink *s;
	struct tu_buf z, back;
	struct chom_err e;
	size_t n;

	tu_put_file(fx->in, a, 200000);
	tu_sh("zstd -q -19 -c '%s' >'%s' && zstd -q -1 -c '%s' >>'%s'", fx->in,
	      fx->zst, fx->in, fx->zst);
	zst(a + 200000, 100000, 3, 2, 0, 0, &z);
	tool = tu_get_file(fx->zst, &n);
	both = malloc(n + z.len);
	assert_non_null(both);
	memcpy(both, tool, n);
	memcpy(both + n, z.p, z.len);
	assert_int_equal(unzstd(both, n + z.len, 777, &back, &e), 0);
	assert_int_equal(back.len, 500000);
	assert_memory_equal(back.p, a, 200000);
	assert_memory_equal(back.p + 200000, a, 200000);
	assert_memory_equal(back.p + 400000, a + 200000, 100000);
	free(back.p);
	s = chom_unzstd_new(tu_mem_new(&back, SIZE_MAX, 0), &e);
	assert_non_null(s);
	assert_int_equal(chom_sink_write(s, both, n, &e), 0);
	assert_int_equal(tu_feed(s, both + n, z.len, 0, &e), 0);
	chom_sink_free(s);
	assert_int_equal(back.len, 500000);
	free(back.p);
	free(both);
	free(tool);
	free(z.p);
	free(a);
}

/* Decompressing n bytes of p must fail with code 1 and a "zstd: " message. */
static void
expect_corrupt(const unsigned char *p, size_t n, const char *what)
{
	struct tu_buf back;
	struct chom_err e;
	size_t chunk;

	for (chunk = 0; chunk <= 4096; chunk += 4096) {
		if (unzstd(p, n, chunk, &back, &e) == 0)
			TU_FAILF("%s: unzstd succeeded", what);
		if (e.code != CHOM_EXIT_FAIL || strncmp(e.msg, "zstd: ", 6))
			TU_FAILF("%s: code %d, \"%s\"", what, e.code, e.msg);
		assert_int_equal(back.closed, 0);
		free(back.p);
	}
}

static void
test_unzstd_corrupt(void **state)
{
	unsigned char *p = tu_gen_text(MIB, 3), *bad;
	struct tu_buf z;
	size_t i;

	zst(p, MIB, 3, 2, 0, 0, &z);
	bad = malloc(z.len + 16);
	assert_non_null(bad);

	expect_corrupt(z.p, 0, "empty input");
	expect_corrupt(z.p, 3, "only part of the magic");
	expect_corrupt(z.p, z.len - 1, "the last byte cut");
	expect_corrupt(z.p, z.len - 4, "no checksum");
	expect_corrupt(z.p, z.len / 2, "cut in half");

	/* A flipped byte in the data or in the checksum. */
	for (i = 0; i < 2; i++) {
		size_t at = i == 0 ? z.len / 3 : z.len - 2;

		memcpy(bad, z.p, z.len);
		bad[at] ^= 0x5a;
		expect_corrupt(bad, z.len, "a flipped byte");
	}
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
		s = chom_zstd_new(tu_mem_new(&out, 100000, 0), 3, t, &e);
		assert_non_null(s);
		r = tu_feed(s, p, 5 * MIB, 65536, &e);
		assert_int_equal(r, -1);
		assert_int_equal(e.code, CHOM_EXIT_UNSAFE);
		assert_string_equal(e.msg, "disk full");
		chom_err_clear(&e);
		assert_int_equal(chom_sink_write(s, p, 10, &e), -1);
		assert_int_equal(e.code, CHOM_EXIT_UNSAFE);
		assert_int_equal(chom_sink_close(s, &e), -1);
		assert_int_equal(e.code, CHOM_EXIT_UNSAFE);
		chom_sink_free(s);
		free(out.p);

		s = chom_zstd_new(tu_mem_new(&out, SIZE_MAX, 1), 3, t, &e);
		assert_non_null(s);
		assert_int_equal(tu_feed(s, p, 300000, 0, &e), -1);
		assert_int_equal(e.code, CHOM_EXIT_UNSAFE);
		assert_string_equal(e.msg, "close failed");
		chom_sink_free(s);
		free(out.p);

		/* Freed in the middle, with workers busy. */
		s = chom_zstd_new(tu_mem_new(&out, SIZE_MAX, 0), 3, t, &e);
		assert_non_null(s);
		assert_int_equal(chom_sink_write(s, p, 5 * MIB, &e), 0);
		chom_sink_free(s);
		assert_int_equal(out.closed, 0);
		free(out.p);
	}

	zst(p, 5 * MIB, 3, 2, 0, 0, &z);
	s = chom_unzstd_new(tu_mem_new(&out, MIB, 0), &e);
	assert_non_null(s);
	assert_int_equal(tu_feed(s, z.p, z.len, 0, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_UNSAFE);
	assert_string_equal(e.msg, "disk full");
	chom_sink_free(s);
	free(out.p);
	s = chom_unzstd_new(tu_mem_new(&out, SIZE_MAX, 1), &e);
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

	assert_null(chom_zstd_new(next, 1000, 1, &e));
	assert_int_equal(e.code, CHOM_EXIT_USAGE);
	assert_null(chom_zstd_new(next, 3, 0, &e));
	assert_int_equal(e.code, CHOM_EXIT_USAGE);
	assert_null(chom_zstd_new(next, 3, 100000, &e));
	assert_int_equal(e.code, CHOM_EXIT_USAGE);
	chom_sink_free(next);
}

/* ~20 MiB of text: the size next to zstd -3's, and 1 against 2 threads. */
static void
test_ratio_and_speed(void **state)
{
	struct fixture *fx = *state;
	size_t n = 20 * MIB;
	unsigned char *p = tu_gen_text(n, 42);
	struct tu_buf z[2], back;
	struct chom_err e;
	double secs[2], t0, diff;
	off_t ref;
	int i;

	tu_put_file(fx->in, p, n);
	tu_sh("zstd -q -3 -c '%s' >'%s'", fx->in, fx->zst);
	ref = tu_file_size(fx->zst);
	for (i = 0; i < 2; i++) {
		t0 = tu_now();
		zst(p, n, 3, i + 1, 65536, 0, &z[i]);
		secs[i] = tu_now() - t0;
	}
	diff = ((double)z[0].len - (double)ref) / (double)ref;
	print_message("# %zu bytes: zstd -3 %lld (%.2f:1), ours %zu (%.2f:1) "
		      "on 1 thread, %zu (%.2f:1) on 2, %+.3f%%\n",
		      n, (long long)ref, (double)n / (double)ref, z[0].len,
		      (double)n / (double)z[0].len, z[1].len,
		      (double)n / (double)z[1].len, diff * 100);
	print_message("# zstd -3: 1 thread %.2f s (%.1f MB/s), 2 threads "
		      "%.2f s (%.1f MB/s), %.2fx\n",
		      secs[0], n / secs[0] / 1e6, secs[1], n / secs[1] / 1e6,
		      secs[0] / secs[1]);
	if (diff > 0.02 || diff < -0.02)
		TU_FAILF("our output is %+.2f%% of zstd -3's", diff * 100);
	for (i = 0; i < 2; i++) {
		assert_int_equal(unzstd(z[i].p, z[i].len, 0, &back, &e), 0);
		tu_expect_same(&back, p, n, "20 MiB");
		free(back.p);
		free(z[i].p);
	}
	free(p);
}

/*
 * Input of several 16 MiB frames: each frame has its content size (zstd -l
 * counts them), the frames decode on threads back in order whatever the
 * writes' sizes, and a flaw in any frame, or a cut, is still found.
 */
static void
test_frames_in_parallel(void **state)
{
	struct fixture *fx = *state;
	const size_t n = 3 * 16 * MIB + 12345;
	unsigned char *p = tu_gen_text(n, 11), *bad;
	static const size_t chunks[] = { 0, 65536, 4093 };
	struct tu_buf z, back;
	struct chom_err e;
	size_t i;
	char line[256];
	FILE *f;

	zst(p, n, 3, 2, 0, 0, &z);
	/* Read in place, 64 KiB at a time across the frames' ends: the
	 * frames are the same. */
	zst(p, n, 3, 2, 65536, 1, &back);
	tu_expect_same(&back, z.p, z.len, "frames made in place");
	free(back.p);
	tu_put_file(fx->zst, z.p, z.len);
	tu_sh("zstd -lv '%s' >'%s' 2>/dev/null", fx->zst, fx->out);
	assert_non_null(f = fopen(fx->out, "r"));
	line[0] = '\0';
	while (fgets(line, sizeof(line), f) &&
	       !strstr(line, "# Zstandard Frames"))
		;
	fclose(f);
	if (!strstr(line, ": 4"))
		TU_FAILF("want 4 frames, zstd -lv says '%s'", line);
	for (i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
		if (unzstd(z.p, z.len, chunks[i], &back, &e))
			TU_FAILF("chunk %zu: %s", chunks[i], e.msg);
		tu_expect_same(&back, p, n, "frames decoded on threads");
		free(back.p);
	}
	bad = malloc(z.len);
	assert_non_null(bad);
	/* A byte of the third frame: the first two are written, not more. */
	memcpy(bad, z.p, z.len);
	bad[z.len * 5 / 8] ^= 0x10;
	assert_int_equal(unzstd(bad, z.len, 65536, &back, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_FAIL);
	assert_true(back.len <= 2 * 16 * MIB);
	assert_int_equal(back.closed, 0);
	free(back.p);
	/* Cut inside the last frame. */
	assert_int_equal(unzstd(z.p, z.len - 1000, 65536, &back, &e), -1);
	assert_non_null(strstr(e.msg, "zstd: "));
	assert_int_equal(back.closed, 0);
	free(back.p);
	/* A frame that does not say its size (zstd(1) reading a pipe) after
	 * ours: the stream decoder takes over from there. */
	tu_put_file(fx->in, p, 5 * MIB);
	tu_sh("cat '%s' | zstd -q -3 -c >'%s'", fx->in, fx->out);
	{
		size_t m;
		unsigned char *tool = tu_get_file(fx->out, &m);
		unsigned char *both = malloc(z.len + m);

		assert_non_null(both);
		memcpy(both, z.p, z.len);
		memcpy(both + z.len, tool, m);
		assert_int_equal(unzstd(both, z.len + m, 100000, &back, &e), 0);
		assert_int_equal(back.len, n + 5 * MIB);
		assert_memory_equal(back.p, p, n);
		assert_memory_equal(back.p + n, p, 5 * MIB);
		free(back.p);
		free(both);
		free(tool);
	}
	free(bad);
	free(z.p);
	free(p);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_round_trip),
		T(test_unzstd_frames),
		T(test_frames_in_parallel),
		cmocka_unit_test(test_unzstd_corrupt),
		cmocka_unit_test(test_next_error),
		cmocka_unit_test(test_bad_args),
		T(test_ratio_and_speed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
