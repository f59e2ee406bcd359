/*
 * AWS Signature Version 4, in the Authorization header, on OpenSSL's
 * HMAC-SHA256: the canonical request, the string to sign, the signature.
 *
 * S3 and the other services differ in two ways, both the caller's choice:
 * S3 does not normalize the path (a key "a/../b" is that key) and encodes
 * it once, and S3 signs the payload's hash in x-amz-content-sha256.
 */
#ifndef CHOM_SIGV4_H
#define CHOM_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "err.h"

struct chom_sigv4_creds {
	const char *access_key, *secret_key;
	const char *session_token; /* NULL: none */
	const char *region, *service;
};

struct chom_sigv4_header {
	const char *name, *value;
};

struct chom_sigv4_request {
	const char *method;
	/* The path decoded ("/my bucket/ሴ"): it is percent-encoded here, as
	 * chom_sigv4_encode() does for the request line. */
	const char *path;
	const char *query; /* after the '?', as sent; NULL: none */
	const struct chom_sigv4_header *headers; /* Host among them */
	size_t nheaders;
	/* Hex SHA-256 of the body, or "UNSIGNED-PAYLOAD"; NULL: an empty
	 * body's. */
	const char *payload_hash;
	bool normalize;    /* remove "." and ".." and empty segments */
	bool sign_payload; /* add x-amz-content-sha256 (S3: always) */
	bool
	    unsigned_token; /* x-amz-security-token left out of the signature */
};

struct chom_sigv4 {
	char amz_date[17];  /* YYYYMMDDTHHMMSSZ, for X-Amz-Date */
	char payload[65];   /* the hash signed, for x-amz-content-sha256 */
	char signature[65]; /* hex */
	char *canonical;    /* the canonical request */
	char *string_to_sign;
	char *authorization; /* the Authorization header's value */
};

/* Signs r at time now. The headers to send besides r's: X-Amz-Date,
 * Authorization, and x-amz-security-token and x-amz-content-sha256 when
 * used. chom_sigv4_free() the result. */
int chom_sigv4_sign(const struct chom_sigv4_creds *c,
		    const struct chom_sigv4_request *r, time_t now,
		    struct chom_sigv4 *out, struct chom_err *e);
void chom_sigv4_free(struct chom_sigv4 *s);

/* s percent-encoded as SigV4 wants: all but A-Z a-z 0-9 - . _ ~ (and '/'
 * when keep_slash), into buf; -1 if it does not fit. */
int chom_sigv4_encode(const char *s, bool keep_slash, char *buf, size_t size);

#endif
