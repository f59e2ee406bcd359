/*
 * S3's XML, read with expat: the replies of ListObjectsV2,
 * InitiateMultipartUpload and CompleteMultipartUpload, and error bodies
 * (<Error><Code>..</Code><Message>..</Message></Error>); and the bodies of
 * CompleteMultipartUpload and DeleteObjects, written with every text
 * escaped.
 */
#ifndef CHOM_S3XML_H
#define CHOM_S3XML_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

struct chom_s3_object {
	char *key;
	unsigned long long size;
};

struct chom_s3_listing {
	struct chom_s3_object *objects;
	size_t nobjects;
	char **prefixes; /* CommonPrefixes, with a delimiter */
	size_t nprefixes;
	bool truncated;
	char *next_token; /* NextContinuationToken, or NULL */
};

/* A ListObjectsV2 reply; malformed XML or a missing Key: code 1. */
int chom_s3xml_listing(const char *xml, size_t len, struct chom_s3_listing *out,
		       struct chom_err *e);
void chom_s3xml_listing_free(struct chom_s3_listing *l);

/* The UploadId of an InitiateMultipartUploadResult. */
int chom_s3xml_upload_id(const char *xml, size_t len, char *id, size_t size,
			 struct chom_err *e);

/* Calls each(key, upload id, ud) for every <Upload> of a
 * ListMultipartUploads reply. */
int chom_s3xml_uploads(const char *xml, size_t len,
		       void (*each)(const char *key, const char *id, void *ud),
		       void *ud, struct chom_err *e);

/*
 * Whether xml is an <Error> document: 1 with its Code and Message (empty
 * when absent, cut to fit), else 0 (CompleteMultipartUpload can answer 200
 * with one).
 */
int chom_s3xml_error(const char *xml, size_t len, char *code, size_t csize,
		     char *message, size_t msize);

/* <CompleteMultipartUpload> of parts 1..n with their ETags and SHA-256
 * checksums (base64; NULL: none). malloc'd; NULL when out of memory. */
char *chom_s3xml_complete(const char *const *etags,
			  const char *const *checksums, size_t n);

/* <Delete><Quiet>true</Quiet> of the keys. malloc'd; NULL if out of memory. */
char *chom_s3xml_delete(const char *const *keys, size_t n);

/* Keys that a DeleteObjects reply says were not deleted: the first one's
 * key, code and message, and their count. */
int chom_s3xml_delete_errors(const char *xml, size_t len, char *key,
			     size_t ksize, char *code, size_t csize,
			     struct chom_err *e);

#endif
