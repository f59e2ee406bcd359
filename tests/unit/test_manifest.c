/*
 * Unit tests for lib/manifest.c: a manifest as chom-backup writes it, read
 * back field by field; and every kind of damage or malice in one, refused
 * with the field named.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exitcode.h"
#include "manifest.h"

#include "testutil.h"

#define SHA_A "895692bcedb14743e6a6bfb97ad091b50356468305a14c7c4e66373d963de981"
#define KEY "age1gsksezgzsf0e5lt6gh2uej33e42v6kklps58ux9acap0ew0mts5qqzwwqw"

/* A manifest with PARTS spliced in as the parts array. */
#define MANIFEST(PARTS)                                                        \
	"{\"format\": 1, \"host\": \"web1\", \"point\": "                      \
	"\"20261127T095539Z\", \"label\": \"nightly\", \"tool\": "             \
	"\"chom-backup 0.1.0\", \"start\": \"2026-11-27T09:55:39Z\", "         \
	"\"end\": \"2026-11-27T09:55:41Z\", \"database_server_version\": "     \
	"\"10.11.6-MariaDB\", \"parts\": [" PARTS "], \"commands\": []}"

#define DB_PART                                                                \
	"{\"name\": \"db.sql.gz.age\", \"kind\": \"db\", \"compression\": "    \
	"\"gzip\", \"encryption\": \"age\", \"recipients\": [\"" KEY "\"], "   \
	"\"size\": 1651509, \"sha256\": \"" SHA_A "\", \"plain_size\": "       \
	"5000000}"

#define SYS_PART                                                               \
	"{\"name\": \"sysinfo.txt\", \"kind\": \"sysinfo\", \"compression\": " \
	"\"none\", \"encryption\": \"none\", \"recipients\": [], \"size\": "   \
	"12, \"sha256\": \"" SHA_A "\", \"plain_size\": 12}"

static void
parse_ok(const char *text, struct chom_manifest *m)
{
	struct chom_err e = { 0 };

	if (chom_manifest_parse(text, strlen(text), m, &e) != 0)
		TU_FAILF("refused: %s", e.msg);
}

/* text is refused with code 1 and a message containing want. */
static void
refused(const char *text, const char *want)
{
	struct chom_manifest m;
	struct chom_err e = { 0 };

	if (chom_manifest_parse(text, strlen(text), &m, &e) == 0)
		TU_FAILF("taken: %s", text);
	assert_int_equal(e.code, CHOM_EXIT_FAIL);
	if (!strstr(e.msg, want))
		TU_FAILF("'%s' does not say '%s'", e.msg, want);
}

static void
test_parse_full(void **state)
{
	struct chom_manifest m;
	const struct chom_manifest_part *p;

	(void)state;
	parse_ok(MANIFEST(DB_PART ", " SYS_PART), &m);
	assert_string_equal(m.host, "web1");
	assert_string_equal(m.point, "20261127T095539Z");
	assert_string_equal(m.label, "nightly");
	assert_string_equal(m.db_version, "10.11.6-MariaDB");
	assert_int_equal(m.nparts, 2);
	assert_int_equal(m.size, 1651509 + 12);
	assert_int_equal(m.plain, 5000000 + 12);
	p = chom_manifest_part(&m, "db");
	assert_non_null(p);
	assert_string_equal(p->name, "db.sql.gz.age");
	assert_int_equal(p->compress, CHOM_PART_GZIP);
	assert_true(p->encrypted);
	assert_int_equal(p->nrecipients, 1);
	assert_string_equal(p->recipients[0], KEY);
	assert_string_equal(p->sha256, SHA_A);
	p = chom_manifest_part(&m, "sysinfo");
	assert_non_null(p);
	assert_false(p->encrypted);
	assert_int_equal(p->compress, CHOM_PART_NONE);
	assert_null(chom_manifest_part(&m, "files"));
}

static void
test_optional_fields(void **state)
{
	struct chom_manifest m;

	(void)state;
	parse_ok("{\"format\": 1, \"host\": \"h\", \"point\": "
		 "\"20240101T000000Z\", \"label\": null, \"parts\": []}",
		 &m);
	assert_string_equal(m.label, "");
	assert_string_equal(m.db_version, "");
	assert_int_equal(m.nparts, 0);
}

static void
test_uppercase_sha_normalised(void **state)
{
	struct chom_manifest m;
	char text[2048], upper[] = SHA_A;
	size_t i;

	(void)state;
	for (i = 0; upper[i]; i++)
		if (upper[i] >= 'a' && upper[i] <= 'f')
			upper[i] -= 32;
	snprintf(text, sizeof(text),
		 MANIFEST("{\"name\": \"db.sql\", \"kind\": \"db\", "
			  "\"compression\": \"none\", \"encryption\": "
			  "\"none\", \"size\": 1, \"sha256\": \"%s\", "
			  "\"plain_size\": 1}"),
		 upper);
	parse_ok(text, &m);
	assert_string_equal(m.parts[0].sha256, SHA_A);
}

static void
test_refused(void **state)
{
	(void)state;
	refused("", "not JSON");
	refused("{\"format\": 1,", "not JSON");
	refused("[]", "top level");
	refused("{\"host\": \"h\"}", "format");
	refused("{\"format\": 2, \"host\": \"h\"}", "format");
	refused("{\"format\": 1, \"point\": \"20240101T000000Z\", "
		"\"parts\": []}",
		"host: missing");
	refused("{\"format\": 1, \"host\": 7, \"point\": \"x\", "
		"\"parts\": []}",
		"host: not a string");
	refused("{\"format\": 1, \"host\": \"h\", \"point\": "
		"\"20240101T000000Z\"}",
		"parts: missing");
	refused("{\"format\": 1, \"host\": \"h\", \"point\": "
		"\"20240101T000000Z\", \"parts\": {}}",
		"parts: not an array");
	refused("{\"format\": 1, \"format\": 1}", "not JSON"); /* twice */
	/* A NUL inside a string would cut a name short: jansson refuses. */
	refused("{\"format\": 1, \"host\": \"h\\u0000x\", \"point\": "
		"\"20240101T000000Z\", \"parts\": []}",
		"not JSON");
}

static void
test_part_refused(void **state)
{
	char text[4096];
	static const struct {
		const char *part, *want;
	} bad[] = {
		{ "7", "not an object" },
		{ "{\"name\": \"../x\", \"kind\": \"db\", \"compression\": "
		  "\"none\", \"encryption\": \"none\", \"size\": 1, "
		  "\"sha256\": \"" SHA_A "\", \"plain_size\": 1}",
		  "name: not a plain file name" },
		{ "{\"name\": \"a/b\", \"kind\": \"db\", \"compression\": "
		  "\"none\", \"encryption\": \"none\", \"size\": 1, "
		  "\"sha256\": \"" SHA_A "\", \"plain_size\": 1}",
		  "name: not a plain file name" },
		{ "{\"name\": \".hidden\", \"kind\": \"db\", \"compression\": "
		  "\"none\", \"encryption\": \"none\", \"size\": 1, "
		  "\"sha256\": \"" SHA_A "\", \"plain_size\": 1}",
		  "name: not a plain file name" },
		{ "{\"name\": \"x\", \"kind\": \"logs\", \"compression\": "
		  "\"none\", \"encryption\": \"none\", \"size\": 1, "
		  "\"sha256\": \"" SHA_A "\", \"plain_size\": 1}",
		  "kind: not db" },
		{ "{\"name\": \"x\", \"kind\": \"db\", \"compression\": "
		  "\"bzip2\", \"encryption\": \"none\", \"size\": 1, "
		  "\"sha256\": \"" SHA_A "\", \"plain_size\": 1}",
		  "compression: not gzip" },
		{ "{\"name\": \"x\", \"kind\": \"db\", \"compression\": "
		  "\"none\", \"encryption\": \"gpg\", \"size\": 1, "
		  "\"sha256\": \"" SHA_A "\", \"plain_size\": 1}",
		  "encryption: not age" },
		{ "{\"name\": \"x\", \"kind\": \"db\", \"compression\": "
		  "\"none\", \"encryption\": \"none\", \"size\": -1, "
		  "\"sha256\": \"" SHA_A "\", \"plain_size\": 1}",
		  "size: negative" },
		{ "{\"name\": \"x\", \"kind\": \"db\", \"compression\": "
		  "\"none\", \"encryption\": \"none\", \"size\": \"1\", "
		  "\"sha256\": \"" SHA_A "\", \"plain_size\": 1}",
		  "size: not an integer" },
		{ "{\"name\": \"x\", \"kind\": \"db\", \"compression\": "
		  "\"none\", \"encryption\": \"none\", \"size\": 1, "
		  "\"sha256\": \"abc\", \"plain_size\": 1}",
		  "sha256: not 64 hex digits" },
		{ "{\"name\": \"x\", \"kind\": \"db\", \"compression\": "
		  "\"none\", \"encryption\": \"none\", \"size\": 1, "
		  "\"sha256\": \"" SHA_A "\"}",
		  "plain_size: missing" },
		{ "{\"name\": \"x\", \"kind\": \"db\", \"compression\": "
		  "\"none\", \"encryption\": \"age\", \"recipients\": \"k\", "
		  "\"size\": 1, \"sha256\": \"" SHA_A "\", \"plain_size\": 1}",
		  "recipients: not an array" },
		{ DB_PART ", " DB_PART, "listed twice" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), MANIFEST("%s"), bad[i].part);
		refused(text, bad[i].want);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_full),
		cmocka_unit_test(test_optional_fields),
		cmocka_unit_test(test_uppercase_sha_normalised),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_part_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
