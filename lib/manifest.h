/*
 * A backup point's manifest.json, as chom-backup writes it, read back and
 * checked: it comes from storage, so nothing in it is trusted until parsed.
 */
#ifndef CHOM_MANIFEST_H
#define CHOM_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"
#include "sha256.h"
#include "store.h"

#define CHOM_MANIFEST_MAX_PARTS 8
#define CHOM_MANIFEST_MAX_RECIPIENTS 16
#define CHOM_MANIFEST_MAX_SIZE (1 << 20) /* bytes of JSON read at most */

enum chom_part_compress { CHOM_PART_GZIP, CHOM_PART_ZSTD, CHOM_PART_NONE };

struct chom_manifest_part {
	char name[64]; /* [A-Za-z0-9._-], not starting with '.' */
	char kind[16]; /* db, files, config, sysinfo */
	enum chom_part_compress compress;
	bool encrypted;
	/* "age1..." or "scrypt": what the part was encrypted to. */
	char recipients[CHOM_MANIFEST_MAX_RECIPIENTS][80];
	size_t nrecipients;
	unsigned long long size, plain;
	char sha256[CHOM_SHA256_HEXLEN + 1];
};

struct chom_manifest {
	char host[256], point[CHOM_POINT_LEN + 1];
	char label[256], tool[64], start[32], end[32], db_version[128];
	struct chom_manifest_part parts[CHOM_MANIFEST_MAX_PARTS];
	size_t nparts;
	unsigned long long size, plain; /* of all parts */
};

/*
 * Parses text (len bytes) into m. Anything missing, of the wrong type, or
 * unsafe (a part name that is not a plain file name, a size out of range,
 * an unknown compression) gives code 1 and a message naming the field.
 */
int chom_manifest_parse(const char *text, size_t len, struct chom_manifest *m,
			struct chom_err *e);

/* The part of kind, or NULL. */
const struct chom_manifest_part *
chom_manifest_part(const struct chom_manifest *m, const char *kind);

#endif
