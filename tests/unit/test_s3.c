/*
 * Unit tests for lib/s3.c's part size: 8 MiB first, never shrinking, never
 * over S3's 5 GiB a part, and 10,000 parts holding at least S3's 5 TiB
 * object; none past part 10,000.
 */
#include "s3.h"

#include "testutil.h"

#define MIB (1ULL << 20)
#define GIB (1ULL << 30)
#define TIB (1ULL << 40)

static void
test_first_parts(void **state)
{
	(void)state;
	assert_int_equal(chom_s3_part_size(1), 8 * MIB);
	assert_int_equal(chom_s3_part_size(1000), 8 * MIB);
	assert_int_equal(chom_s3_part_size(1001), 16 * MIB);
	assert_int_equal(CHOM_S3_PART_MIN, 8 * MIB);
}

static void
test_every_part(void **state)
{
	unsigned long long total = 0, prev = 0, size;
	int n;

	(void)state;
	for (n = 1; n <= CHOM_S3_MAX_PARTS; n++) {
		size = chom_s3_part_size(n);
		assert_true(size >= prev);
		assert_true(size >= 5 * MIB); /* S3's least but for the last */
		assert_true(size <= 5 * GIB);
		total += size;
		prev = size;
	}
	assert_true(total >= 5 * TIB);
	assert_int_equal(chom_s3_part_size(CHOM_S3_MAX_PARTS), 4 * GIB);
}

static void
test_out_of_range(void **state)
{
	(void)state;
	assert_int_equal(chom_s3_part_size(CHOM_S3_MAX_PARTS + 1), 0);
	assert_int_equal(chom_s3_part_size(0), 0);
	assert_int_equal(chom_s3_part_size(-1), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_parts),
		cmocka_unit_test(test_every_part),
		cmocka_unit_test(test_out_of_range),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
