/*
 * Unit tests for lib/sha256.c: FIPS 180-2 vectors, hex parsing and the
 * lookup of a digest in a sha256sum(1) file.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exitcode.h"
#include "sha256.h"

#include "testutil.h"

#define H_EMPTY                                                                \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define H_ABC "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define H_MILLION_A                                                            \
	"cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
/* Arbitrary digests for the checksum files. */
#define D1 "1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "2222222222222222222222222222222222222222222222222222222222222222"
#define D3 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define D4 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

struct fixture {
	char dir[64];
	char sums[128];
};

static int
setup(void **state)
{
	struct fixture *fx = TU_FIXTURE_NEW(struct fixture, dir, "sha256");

	if (!fx)
		return -1;
	snprintf(fx->sums, sizeof(fx->sums), "%s/SHA256SUMS", fx->dir);
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
test_vector_empty(void **state)
{
	struct chom_sha256 *h = chom_sha256_new();
	char hex[CHOM_SHA256_HEXLEN + 1];

	assert_non_null(h);
	chom_sha256_final_hex(h, hex);
	assert_string_equal(hex, H_EMPTY);
	/* Zero-length updates change nothing. */
	chom_sha256_update(h, "", 0);
	chom_sha256_final_hex(h, hex);
	assert_string_equal(hex, H_EMPTY);
	chom_sha256_free(h);
}

static void
test_vector_abc(void **state)
{
	struct chom_sha256 *h = chom_sha256_new();
	char hex[CHOM_SHA256_HEXLEN + 1];

	assert_non_null(h);
	chom_sha256_update(h, "abc", 3);
	chom_sha256_final_hex(h, hex);
	assert_string_equal(hex, H_ABC);
	/* In pieces. */
	chom_sha256_update(h, "a", 1);
	chom_sha256_update(h, "bc", 2);
	chom_sha256_final_hex(h, hex);
	assert_string_equal(hex, H_ABC);
	chom_sha256_free(h);
}

static void
test_vector_million_a(void **state)
{
	struct chom_sha256 *h = chom_sha256_new();
	char hex[CHOM_SHA256_HEXLEN + 1], *buf;
	size_t i;

	assert_non_null(h);
	buf = malloc(1000000);
	assert_non_null(buf);
	memset(buf, 'a', 1000000);
	chom_sha256_update(h, buf, 1000000);
	chom_sha256_final_hex(h, hex);
	assert_string_equal(hex, H_MILLION_A);
	/* The same in uneven pieces, on the reused context. */
	for (i = 0; i < 1000000;) {
		size_t n = 1000000 - i < 7919 ? 1000000 - i : 7919;

		chom_sha256_update(h, buf + i, n);
		i += n;
	}
	chom_sha256_final_hex(h, hex);
	assert_string_equal(hex, H_MILLION_A);
	free(buf);
	chom_sha256_free(h);
}

static void
test_free_null(void **state)
{
	chom_sha256_free(NULL);
}

static void
test_file(void **state)
{
	struct fixture *fx = *state;
	struct chom_err e = { 0 };
	char hex[CHOM_SHA256_HEXLEN + 1], p[160];

	snprintf(p, sizeof(p), "%s/data", fx->dir);
	tu_write(p, "abc");
	assert_int_equal(chom_sha256_file(p, hex, &e), 0);
	assert_string_equal(hex, H_ABC);
	tu_write(p, "");
	assert_int_equal(chom_sha256_file(p, hex, &e), 0);
	assert_string_equal(hex, H_EMPTY);
	unlink(p);
	assert_int_equal(chom_sha256_file(p, hex, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_FAIL);
	assert_non_null(strstr(e.msg, p));
}

static void
test_parse_hex(void **state)
{
	char out[CHOM_SHA256_HEXLEN + 1];

	assert_int_equal(chom_sha256_parse_hex(H_ABC, out), 0);
	assert_string_equal(out, H_ABC);
	assert_int_equal(
	    chom_sha256_parse_hex("BA7816BF8F01CFEA414140DE5DAE2223B00361A39617"
				  "7A9CB410FF61F20015AD",
				  out),
	    0);
	assert_string_equal(out, H_ABC);
	assert_int_equal(
	    chom_sha256_parse_hex("Ba7816bF8f01cfea414140de5dae2223b00361a39617"
				  "7a9cb410ff61f20015aD",
				  out),
	    0);
	assert_string_equal(out, H_ABC);
}

static void
test_parse_hex_invalid(void **state)
{
	static const char *const bad[] = {
		"",
		"abc",
		/* 63 digits */
		"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015"
		"a",
		/* 65 digits */
		"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015"
		"ad0",
		/* a 'g' */
		"ga7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015"
		"ad",
		/* a space inside, one after */
		"ba7816bf8f01cfea414140de5dae2223 "
		"00361a396177a9cb410ff61f20015ad",
		"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015"
		"ad ",
		"0xba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f200"
		"15",
	};
	char out[CHOM_SHA256_HEXLEN + 1];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (chom_sha256_parse_hex(bad[i], out) == 0)
			TU_FAILF("accepted \"%s\"", bad[i]);
}

static void
lookup_ok(const char *sums, const char *name, const char *want)
{
	struct chom_err e = { 0 };
	char hex[CHOM_SHA256_HEXLEN + 1] = "";

	if (chom_sha256_lookup(sums, name, hex, &e) != 0)
		TU_FAILF("lookup of %s failed: %s", name ? name : "(null)",
			 e.msg);
	assert_string_equal(hex, want);
}

static void
test_lookup_forms(void **state)
{
	struct fixture *fx = *state;

	tu_write(fx->sums,
		 "# made by hand\n"
		 "\n" D1 "  app-v1.tar.gz\n" D2 " *app-v2.tar.gz\n" D3
		 "  ./app-v3.tar.gz\n" D4 "  dist/sub/app-v4.tar.gz\n");
	lookup_ok(fx->sums, "app-v1.tar.gz", D1);
	lookup_ok(fx->sums, "app-v2.tar.gz", D2); /* binary mode "*name" */
	lookup_ok(fx->sums, "app-v3.tar.gz", D3); /* "./name" */
	lookup_ok(fx->sums, "app-v4.tar.gz", D4); /* "dir/name" */
	/* The artifact named with a directory is matched by base name. */
	lookup_ok(fx->sums, "/srv/incoming/app-v1.tar.gz", D1);
	lookup_ok(fx->sums, "./app-v2.tar.gz", D2);
}

static void
test_lookup_uppercase_and_crlf(void **state)
{
	struct fixture *fx = *state;

	tu_write(fx->sums,
		 "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F200"
		 "15AD  abc.txt\r\n" D1 "  other\r\n");
	lookup_ok(fx->sums, "abc.txt", H_ABC);
	lookup_ok(fx->sums, "other", D1);
}

static void
test_lookup_first_match_wins(void **state)
{
	struct fixture *fx = *state;

	tu_write(fx->sums, D1 "  a/app.tgz\n" D2 "  b/app.tgz\n");
	lookup_ok(fx->sums, "app.tgz", D1);
}

static void
test_lookup_missing_entry(void **state)
{
	struct fixture *fx = *state;
	struct chom_err e = { 0 };
	char hex[CHOM_SHA256_HEXLEN + 1];

	tu_write(fx->sums, D1 "  app-v1.tar.gz\n" D2 "  app-v2.tar.gz\n");
	assert_int_equal(
	    chom_sha256_lookup(fx->sums, "/x/app-v9.tar.gz", hex, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_FAIL);
	assert_non_null(strstr(e.msg, "no entry for app-v9.tar.gz"));
	assert_non_null(strstr(e.msg, fx->sums));
	/* A name is not matched by a prefix or suffix of another. */
	assert_int_equal(chom_sha256_lookup(fx->sums, "v1.tar.gz", hex, &e),
			 -1);
	assert_int_equal(chom_sha256_lookup(fx->sums, "app-v1.tar", hex, &e),
			 -1);
}

static void
test_lookup_malformed_line(void **state)
{
	struct fixture *fx = *state;
	struct chom_err e = { 0 };
	char hex[CHOM_SHA256_HEXLEN + 1], want[192];

	tu_write(fx->sums,
		 D1 "  app-v1.tar.gz\n"
		    "this is not a checksum line at all, is it? no, it is "
		    "not, not at all\n");
	assert_int_equal(chom_sha256_lookup(fx->sums, "app-v1.tar.gz", hex, &e),
			 -1);
	assert_int_equal(e.code, CHOM_EXIT_FAIL);
	snprintf(want, sizeof(want), "%s:2: not a sha256sum line", fx->sums);
	assert_string_equal(e.msg, want);
}

static void
test_lookup_malformed_variants(void **state)
{
	static const char *const bad[] = {
		/* one space only */
		D1 " app\n",
		/* a tab */
		D1 "\t app\n",
		/* short digest */
		"abcdef  app\n",
		/* not hex, right length */
		"zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"
		"zz"
		"  app\n",
		/* the GNU tagged form */
		"SHA256 (app) = " D1 "\n",
	};
	struct fixture *fx = *state;
	struct chom_err e = { 0 };
	char hex[CHOM_SHA256_HEXLEN + 1];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		tu_write(fx->sums, bad[i]);
		chom_err_clear(&e);
		if (chom_sha256_lookup(fx->sums, "app", hex, &e) != -1)
			TU_FAILF("accepted line \"%s\"", bad[i]);
		assert_int_equal(e.code, CHOM_EXIT_FAIL);
		assert_non_null(strstr(e.msg, ":1: not a"));
	}
}

static void
test_lookup_null_name(void **state)
{
	struct fixture *fx = *state;
	struct chom_err e = { 0 };
	char hex[CHOM_SHA256_HEXLEN + 1];

	tu_write(fx->sums, "# only one\n" D2 "  -\n");
	lookup_ok(fx->sums, NULL, D2);
	tu_write(fx->sums, D1 "  a.tgz\n" D2 "  b.tgz\n" D3 "  c.tgz\n");
	assert_int_equal(chom_sha256_lookup(fx->sums, NULL, hex, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_FAIL);
	assert_non_null(strstr(e.msg, "holds 3 entries"));
	tu_write(fx->sums, "# nothing\n");
	assert_int_equal(chom_sha256_lookup(fx->sums, NULL, hex, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_FAIL);
	assert_non_null(strstr(e.msg, "holds 0 entries"));
}

static void
test_lookup_missing_file(void **state)
{
	struct fixture *fx = *state;
	struct chom_err e = { 0 };
	char hex[CHOM_SHA256_HEXLEN + 1];

	assert_int_equal(chom_sha256_lookup(fx->sums, "app", hex, &e), -1);
	assert_int_equal(e.code, CHOM_EXIT_USAGE);
	assert_non_null(strstr(e.msg, fx->sums));
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vector_empty),
		cmocka_unit_test(test_vector_abc),
		cmocka_unit_test(test_vector_million_a),
		cmocka_unit_test(test_free_null),
		T(test_file),
		cmocka_unit_test(test_parse_hex),
		cmocka_unit_test(test_parse_hex_invalid),
		T(test_lookup_forms),
		T(test_lookup_uppercase_and_crlf),
		T(test_lookup_first_match_wins),
		T(test_lookup_missing_entry),
		T(test_lookup_malformed_line),
		T(test_lookup_malformed_variants),
		T(test_lookup_null_name),
		T(test_lookup_missing_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
