/*
 * Unit tests for lib/sigv4.c: every case of the AWS SigV4 test suite in
 * ../shared/testdata/aws-sigv4 (the canonical request, the string to sign,
 * the signature and the Authorization header of its header form), each
 * with its normalize flag; and how S3 differs: its paths are neither
 * normalized nor encoded twice, and it signs the payload's hash, as in the
 * examples of the S3 documentation.
 */
#include <dirent.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sha256.h"
#include "sigv4.h"

#include "testutil.h"

static char suite_dir[PATH_MAX + 64];
static const char *suite_missing;

/* A file of the case, whole; NULL if missing. */
static char *
slurp(const char *dir, const char *name, size_t *len)
{
	char path[PATH_MAX * 2];
	FILE *f;
	char *p;
	long n;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (!(f = fopen(path, "rb")))
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	p = malloc((size_t)n + 1);
	if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
		free(p);
		p = NULL;
	}
	fclose(f);
	if (p) {
		p[n] = '\0';
		if (len)
			*len = (size_t)n;
	}
	return p;
}

struct hdrs {
	struct chom_sigv4_header h[32];
	char *name[32], *value[32];
	size_t n;
};

/* request.txt: "METHOD PATH[?QUERY] HTTP/1.1", headers (a line starting
 * with white space continues the one before), a blank line, the body. */
static void
parse_request(char *text, char **method, char **path, char **query,
	      struct hdrs *h, char **body)
{
	char *line = text, *next, *sp, *http;

	next = strchr(line, '\n');
	assert_non_null(next);
	*next++ = '\0';
	sp = strchr(line, ' ');
	http = strstr(line, " HTTP/1.1");
	assert_non_null(sp);
	assert_non_null(http);
	*sp = '\0';
	*http = '\0';
	*method = line;
	*path = sp + 1;
	*query = strchr(*path, '?');
	if (*query)
		*(*query)++ = '\0';
	h->n = 0;
	*body = "";
	for (line = next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (!*line) { /* the blank line: the body follows */
			*body = next ? next : "";
			break;
		}
		if (*line == ' ' || *line == '\t') {
			char *v;

			assert_true(h->n > 0);
			v = malloc(strlen(h->value[h->n - 1]) + strlen(line) +
				   2);
			sprintf(v, "%s %s", h->value[h->n - 1], line);
			free(h->value[h->n - 1]);
			h->value[h->n - 1] = v;
			continue;
		}
		sp = strchr(line, ':');
		assert_non_null(sp);
		*sp = '\0';
		assert_true(h->n < 32);
		h->name[h->n] = strdup(line);
		h->value[h->n] = strdup(sp + 1);
		h->n++;
	}
	for (size_t i = 0; i < h->n; i++)
		h->h[i] = (struct chom_sigv4_header){ h->name[i], h->value[i] };
}

static void
expect_file(const char *dir, const char *name, const char *got)
{
	char *want = slurp(dir, name, NULL);

	assert_non_null(want);
	if (strcmp(want, got))
		TU_FAILF("%s/%s:\nwant:\n%s\ngot:\n%s", dir, name, want, got);
	free(want);
}

static void
test_case(void **state)
{
	const char *name = *state;
	char dir[PATH_MAX * 2], *ctx_text, *req, *method, *path, *query, *body;
	char hash[CHOM_SHA256_HEXLEN + 1], *signed_req, *auth;
	struct hdrs h = { 0 };
	struct chom_sigv4 s;
	struct chom_err e = { 0 };
	json_t *ctx, *cred;
	struct tm tm = { 0 };
	time_t when;
	size_t i;

	snprintf(dir, sizeof(dir), "%s/%s", suite_dir, name);
	ctx_text = slurp(dir, "context.json", NULL);
	assert_non_null(ctx_text);
	ctx = json_loads(ctx_text, 0, NULL);
	assert_non_null(ctx);
	cred = json_object_get(ctx, "credentials");
	assert_non_null(
	    strptime(json_string_value(json_object_get(ctx, "timestamp")),
		     "%Y-%m-%dT%H:%M:%SZ", &tm));
	when = timegm(&tm);
	req = slurp(dir, "request.txt", NULL);
	assert_non_null(req);
	parse_request(req, &method, &path, &query, &h, &body);
	if (json_is_true(json_object_get(ctx, "sign_body"))) {
		struct chom_sha256 *sha = chom_sha256_new();

		chom_sha256_update(sha, body, strlen(body));
		chom_sha256_final_hex(sha, hash);
		chom_sha256_free(sha);
	}
	if (chom_sigv4_sign(
		&(struct chom_sigv4_creds){
		    json_string_value(json_object_get(cred, "access_key_id")),
		    json_string_value(
			json_object_get(cred, "secret_access_key")),
		    json_string_value(json_object_get(cred, "token")),
		    json_string_value(json_object_get(ctx, "region")),
		    json_string_value(json_object_get(ctx, "service")) },
		&(struct chom_sigv4_request){
		    .method = method,
		    .path = path,
		    .query = query,
		    .headers = h.h,
		    .nheaders = h.n,
		    .payload_hash =
			json_is_true(json_object_get(ctx, "sign_body")) ? hash
									: NULL,
		    .normalize =
			json_is_true(json_object_get(ctx, "normalize")),
		    .sign_payload =
			json_is_true(json_object_get(ctx, "sign_body")),
		    .unsigned_token = json_is_true(
			json_object_get(ctx, "omit_session_token")) },
		when, &s, &e) < 0)
		TU_FAILF("%s: %s", name, e.msg);
	expect_file(dir, "header-canonical-request.txt", s.canonical);
	expect_file(dir, "header-string-to-sign.txt", s.string_to_sign);
	expect_file(dir, "header-signature.txt", s.signature);
	signed_req = slurp(dir, "header-signed-request.txt", NULL);
	assert_non_null(signed_req);
	auth = strstr(signed_req, "\nAuthorization:");
	assert_non_null(auth);
	auth += strlen("\nAuthorization:");
	auth[strcspn(auth, "\r\n")] = '\0';
	assert_string_equal(s.authorization, auth);
	chom_sigv4_free(&s);
	free(signed_req);
	for (i = 0; i < h.n; i++) {
		free(h.name[i]);
		free(h.value[i]);
	}
	free(req);
	json_decref(ctx);
	free(ctx_text);
}

/* What the vectors cannot show: S3 keeps a key's dots and slashes. */
static void
test_s3_path_not_normalized(void **state)
{
	const struct chom_sigv4_header host = { "Host", "b.s3.amazonaws.com" };
	struct chom_sigv4 s;
	struct chom_err e = { 0 };

	(void)state;
	assert_int_equal(
	    chom_sigv4_sign(&(struct chom_sigv4_creds){ "AKID", "SECRET", NULL,
							"us-east-1", "s3" },
			    &(struct chom_sigv4_request){
				.method = "GET",
				.path = "/b/a/../x//y./ z+é",
				.headers = &host,
				.nheaders = 1,
				.payload_hash = "UNSIGNED-PAYLOAD",
				.sign_payload = true },
			    0, &s, &e),
	    0);
	/* Encoded once, nothing removed. */
	assert_string_equal(strchr(s.canonical, '\n') + 1,
			    "/b/a/../x//y./%20z%2B%C3%A9\n\nhost:b.s3."
			    "amazonaws.com\nx-amz-content-sha256:UNSIGNED-"
			    "PAYLOAD\nx-amz-date:19700101T000000Z\n\nhost;x-"
			    "amz-content-sha256;x-amz-date\nUNSIGNED-PAYLOAD");
	chom_sigv4_free(&s);
}

/*
 * The "GET Object" example of the S3 documentation ("Signature
 * Calculations for the Authorization Header: Transferring Payload in a
 * Single Chunk"): its canonical request and signature.
 */
static void
test_s3_documentation_example(void **state)
{
	const struct chom_sigv4_header hs[] = {
		{ "Host", "examplebucket.s3.amazonaws.com" },
		{ "Range", "bytes=0-9" },
	};
	struct chom_sigv4 s;
	struct chom_err e = { 0 };
	struct tm tm = { .tm_year = 113, .tm_mon = 4, .tm_mday = 24 };

	(void)state;
	assert_int_equal(
	    chom_sigv4_sign(
		&(struct chom_sigv4_creds){
		    "AKIAIOSFODNN7EXAMPLE",
		    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", NULL,
		    "us-east-1", "s3" },
		&(struct chom_sigv4_request){ .method = "GET",
					      .path = "/test.txt",
					      .headers = hs,
					      .nheaders = 2,
					      .sign_payload = true },
		timegm(&tm), &s, &e),
	    0);
	assert_string_equal(
	    s.canonical,
	    "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\n"
	    "range:bytes=0-9\nx-amz-content-sha256:"
	    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	    "\nx-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;"
	    "x-amz-date\n"
	    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	assert_string_equal(
	    s.signature,
	    "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
	chom_sigv4_free(&s);
}

static void
test_encode(void **state)
{
	char buf[64];

	(void)state;
	assert_int_equal(chom_sigv4_encode("a b/c~d+é", true, buf, sizeof(buf)),
			 0);
	assert_string_equal(buf, "a%20b/c~d%2B%C3%A9");
	assert_int_equal(chom_sigv4_encode("a/b", false, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "a%2Fb");
	assert_int_equal(chom_sigv4_encode("      ", false, buf, 10), -1);
}

static void
test_suite_missing(void **state)
{
	(void)state;
}

static int
by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

int
main(void)
{
	const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_s3_path_not_normalized),
		cmocka_unit_test(test_s3_documentation_example),
		cmocka_unit_test(test_encode),
	};
	size_t nfixed = sizeof(fixed) / sizeof(fixed[0]), n = nfixed;
	struct dirent **names = NULL;
	struct CMUnitTest *tests;
	int i, ncases;
	static char *case_names[256];

	tu_shared_testdata("aws-sigv4", suite_dir, sizeof(suite_dir));
	ncases = *suite_dir ? scandir(suite_dir, &names, NULL, by_name) : -1;
	if (ncases < 0) {
		suite_missing = *suite_dir ? suite_dir : "../shared";
		ncases = 0;
	}
	tests = calloc(nfixed + (size_t)ncases + 1, sizeof(*tests));
	assert_non_null(tests);
	memcpy(tests, fixed, sizeof(fixed));
	for (i = 0; i < ncases && i < 256; i++) {
		if (names[i]->d_name[0] == '.') {
			free(names[i]);
			continue;
		}
		case_names[i] = strdup(names[i]->d_name);
		tests[n].name = case_names[i];
		tests[n].test_func = test_case;
		tests[n].initial_state = case_names[i];
		n++;
		free(names[i]);
	}
	free(names);
	if (suite_missing) {
		tests[n].name =
		    "aws-sigv4 # SKIP the suite's folder is missing";
		tests[n].test_func = test_suite_missing;
		n++;
	}
	i = _cmocka_run_group_tests("sigv4", tests, n, NULL, NULL);
	print_message("# aws-sigv4 suite: %zu cases\n", n - nfixed);
	free(tests);
	return i;
}
