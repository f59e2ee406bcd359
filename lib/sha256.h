/* SHA-256 through OpenSSL EVP, and sha256sum(1) checksum files. */
#ifndef CHOM_SHA256_H
#define CHOM_SHA256_H

#include <stddef.h>

#include "err.h"

#define CHOM_SHA256_LEN 32
#define CHOM_SHA256_HEXLEN 64

struct chom_sha256; /* opaque: an EVP_MD_CTX */

struct chom_sha256 *chom_sha256_new(void);
void chom_sha256_update(struct chom_sha256 *h, const void *data, size_t len);
/* Writes 64 lowercase hex digits and a NUL to hex; h may be reused after. */
void chom_sha256_final_hex(struct chom_sha256 *h,
			   char hex[CHOM_SHA256_HEXLEN + 1]);
void chom_sha256_free(struct chom_sha256 *h);

/* 64 hex digits, either case; normalised to lowercase in out. */
int chom_sha256_parse_hex(const char *s, char out[CHOM_SHA256_HEXLEN + 1]);
int chom_sha256_file(const char *path, char hex[CHOM_SHA256_HEXLEN + 1],
		     struct chom_err *e);
/*
 * Finds name's digest in a sha256sum(1) file ("HEX  name" or "HEX *name";
 * a "./" or directory prefix is matched by base name). name NULL: the file
 * must hold exactly one entry. Not found, or a malformed line: code 1.
 */
int chom_sha256_lookup(const char *sumfile, const char *name,
		       char hex[CHOM_SHA256_HEXLEN + 1], struct chom_err *e);

#endif
