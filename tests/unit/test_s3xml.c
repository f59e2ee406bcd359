/*
 * Unit tests for lib/s3xml.c: S3's replies as AWS documents them (with
 * and without the namespace), keys with XML entities, truncated listings,
 * error bodies, malformed XML; and the bodies we write, escaped.
 */
#include <stdlib.h>
#include <string.h>

#include "exitcode.h"
#include "s3xml.h"

#include "testutil.h"

#define NS "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\""

static void
test_listing(void **state)
{
	static const char xml[] =
	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<ListBucketResult " NS ">\n"
	    "  <Name>bucket</Name><Prefix>chom/web1/</Prefix>\n"
	    "  <KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys>\n"
	    "  <IsTruncated>true</IsTruncated>\n"
	    "  <Contents><Key>chom/web1/20240101T000000Z/db.sql.gz.age</Key>"
	    "<LastModified>2024-01-01T00:00:05.000Z</LastModified>"
	    "<ETag>&quot;abc&quot;</ETag><Size>1234567890123</Size>"
	    "<StorageClass>STANDARD</StorageClass></Contents>\n"
	    "  <Contents><Key>a &amp; b &lt;c&gt; \xc3\xa9</Key><Size>0</Size>"
	    "</Contents>\n"
	    "  <CommonPrefixes><Prefix>chom/web2/</Prefix></CommonPrefixes>\n"
	    "  <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4"
	    "vbOwM=</NextContinuationToken>\n"
	    "</ListBucketResult>";
	struct chom_s3_listing l;
	struct chom_err e = { 0 };

	(void)state;
	if (chom_s3xml_listing(xml, strlen(xml), &l, &e) < 0)
		TU_FAILF("%s", e.msg);
	assert_int_equal(l.nobjects, 2);
	assert_string_equal(l.objects[0].key,
			    "chom/web1/20240101T000000Z/db.sql.gz.age");
	assert_true(l.objects[0].size == 1234567890123ULL);
	assert_string_equal(l.objects[1].key, "a & b <c> \xc3\xa9");
	assert_int_equal(l.objects[1].size, 0);
	assert_int_equal(l.nprefixes, 1);
	assert_string_equal(l.prefixes[0], "chom/web2/");
	assert_true(l.truncated);
	assert_string_equal(l.next_token,
			    "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
	chom_s3xml_listing_free(&l);
}

static void
test_listing_refused(void **state)
{
	struct chom_s3_listing l;
	struct chom_err e = { 0 };
	static const char *const bad[] = {
		"<ListBucketResult><Contents><Key>x</Key>",
		"not xml",
		"<ListBucketResult><Contents><Size>1</Size></Contents>"
		"</ListBucketResult>",
		"<ListBucketResult><IsTruncated>true</IsTruncated>"
		"</ListBucketResult>",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (chom_s3xml_listing(bad[i], strlen(bad[i]), &l, &e) == 0)
			TU_FAILF("taken: %s", bad[i]);
		assert_int_equal(e.code, CHOM_EXIT_FAIL);
		assert_int_equal(l.nobjects, 0);
	}
	/* Empty: no Contents at all. */
	assert_int_equal(
	    chom_s3xml_listing("<ListBucketResult " NS "/>",
			       strlen("<ListBucketResult " NS "/>"), &l, &e),
	    0);
	assert_int_equal(l.nobjects, 0);
	assert_false(l.truncated);
	chom_s3xml_listing_free(&l);
}

static void
test_upload_id(void **state)
{
	static const char xml[] =
	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
	    "<InitiateMultipartUploadResult " NS "><Bucket>b</Bucket>"
	    "<Key>k</Key><UploadId>VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5"
	    "tMnRzIHVwbG9hZA</UploadId></InitiateMultipartUploadResult>";
	char id[256], small[8];
	struct chom_err e = { 0 };

	(void)state;
	assert_int_equal(
	    chom_s3xml_upload_id(xml, strlen(xml), id, sizeof(id), &e), 0);
	assert_string_equal(id, "VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5"
				"tMnRzIHVwbG9hZA");
	assert_int_equal(
	    chom_s3xml_upload_id(xml, strlen(xml), small, sizeof(small), &e),
	    -1);
	assert_int_equal(chom_s3xml_upload_id("<X/>", 4, id, sizeof(id), &e),
			 -1);
	assert_non_null(strstr(e.msg, "UploadId"));
}

static void
each_upload(const char *key, const char *id, void *ud)
{
	char *seen = ud;

	strcat(seen, key);
	strcat(seen, "=");
	strcat(seen, id);
	strcat(seen, ";");
}

/* ListMultipartUploads as AWS documents it: the key entity-encoded, an
 * Initiator and Owner inside each Upload, a namespace. */
static void
test_uploads(void **state)
{
	static const char xml[] =
	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
	    "<ListMultipartUploadsResult " NS "><Bucket>b</Bucket>"
	    "<KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>"
	    "<Prefix>p/a&amp;b</Prefix><MaxUploads>1000</MaxUploads>"
	    "<IsTruncated>false</IsTruncated>"
	    "<Upload><Key>p/a&amp;b</Key><UploadId>one</UploadId>"
	    "<Initiator><ID>x</ID><DisplayName>d</DisplayName></Initiator>"
	    "<Owner><ID>x</ID></Owner><StorageClass>STANDARD</StorageClass>"
	    "<Initiated>2026-11-27T14:00:00.000Z</Initiated></Upload>"
	    "<Upload><Key>p/c</Key><UploadId>two</UploadId></Upload>"
	    "<Upload><Key>p/no-id</Key></Upload>"
	    "</ListMultipartUploadsResult>";
	char seen[256] = "";
	struct chom_err e = { 0 };

	(void)state;
	assert_int_equal(
	    chom_s3xml_uploads(xml, strlen(xml), each_upload, seen, &e), 0);
	assert_string_equal(seen, "p/a&b=one;p/c=two;");
	*seen = '\0';
	assert_int_equal(chom_s3xml_uploads("<ListMultipartUploadsResult>", 28,
					    each_upload, seen, &e),
			 -1);
	assert_non_null(strstr(e.msg, "malformed XML"));
	assert_string_equal(seen, "");
}

static void
test_error(void **state)
{
	static const char xml[] =
	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>"
	    "<Code>SignatureDoesNotMatch</Code><Message>The request signature "
	    "we calculated does not match the signature you provided."
	    "</Message><RequestId>4442587FB7D0A2F9</RequestId></Error>";
	char code[64], msg[256];

	(void)state;
	assert_int_equal(chom_s3xml_error(xml, strlen(xml), code, sizeof(code),
					  msg, sizeof(msg)),
			 1);
	assert_string_equal(code, "SignatureDoesNotMatch");
	assert_non_null(strstr(msg, "does not match"));
	/* CompleteMultipartUpload's 200 answer: a result, not an error. */
	assert_int_equal(
	    chom_s3xml_error("<CompleteMultipartUploadResult><ETag>x</ETag>"
			     "</CompleteMultipartUploadResult>",
			     strlen("<CompleteMultipartUploadResult><ETag>x"
				    "</ETag></CompleteMultipartUploadResult>"),
			     code, sizeof(code), msg, sizeof(msg)),
	    0);
	assert_int_equal(chom_s3xml_error("<html>bad gateway", 17, code,
					  sizeof(code), msg, sizeof(msg)),
			 0);
	assert_string_equal(code, "");
}

static void
test_complete_body(void **state)
{
	const char *etags[] = { "\"a1\"", "\"b<2>&\"" };
	const char *sums[] = { "dGVzdA==", NULL };
	char *x = chom_s3xml_complete(etags, sums, 2);

	(void)state;
	assert_non_null(x);
	assert_string_equal(
	    x,
	    "<CompleteMultipartUpload " NS "><Part><PartNumber>1</PartNumber>"
	    "<ETag>&quot;a1&quot;</ETag><ChecksumSHA256>dGVzdA==</"
	    "ChecksumSHA256></Part><Part><PartNumber>2</PartNumber><ETag>"
	    "&quot;b&lt;2&gt;&amp;&quot;</ETag></Part></"
	    "CompleteMultipartUpload>");
	free(x);
}

static void
test_delete(void **state)
{
	const char *keys[] = { "chom/h/P/db.sql.gz.age", "a&b" };
	static const char reply[] =
	    "<DeleteResult " NS "><Deleted><Key>x</Key></Deleted>"
	    "<Error><Key>a&amp;b</Key><Code>AccessDenied</Code>"
	    "<Message>Access Denied</Message></Error>"
	    "<Error><Key>c</Key><Code>InternalError</Code></Error>"
	    "</DeleteResult>";
	char *x = chom_s3xml_delete(keys, 2), key[64], code[64];
	struct chom_err e = { 0 };

	(void)state;
	assert_non_null(x);
	assert_string_equal(x, "<Delete " NS "><Quiet>true</Quiet><Object><Key>"
			       "chom/h/P/db.sql.gz.age</Key></Object><Object>"
			       "<Key>a&amp;b</Key></Object></Delete>");
	free(x);
	assert_int_equal(chom_s3xml_delete_errors(reply, strlen(reply), key,
						  sizeof(key), code,
						  sizeof(code), &e),
			 2);
	assert_string_equal(key, "a&b");
	assert_string_equal(code, "AccessDenied");
	assert_int_equal(chom_s3xml_delete_errors("<DeleteResult/>", 15, key,
						  sizeof(key), code,
						  sizeof(code), &e),
			 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_listing),
		cmocka_unit_test(test_listing_refused),
		cmocka_unit_test(test_upload_id),
		cmocka_unit_test(test_uploads),
		cmocka_unit_test(test_error),
		cmocka_unit_test(test_complete_body),
		cmocka_unit_test(test_delete),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
