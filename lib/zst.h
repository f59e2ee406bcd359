/* zstd sinks through libzstd's streaming API. */
#ifndef CHOM_ZST_H
#define CHOM_ZST_H

#include "err.h"
#include "sink.h"

/*
 * A sink that compresses into next as one zstd frame with a checksum, at
 * level (libzstd's bounds), on threads libzstd workers when threads > 1
 * (1-256). NULL with e set on failure (a bad level or thread count: code
 * 2), next then still the caller's; on success the sink owns next.
 */
struct chom_sink *chom_zstd_new(struct chom_sink *next, int level, int threads,
				struct chom_err *e);
/*
 * A sink that decompresses zstd frames into next. Corrupt data and input
 * that ends inside a frame (or no input at all) fail with code 1,
 * "zstd: ...". Ownership of next as for chom_zstd_new().
 */
struct chom_sink *chom_unzstd_new(struct chom_sink *next, struct chom_err *e);

#endif
