/*
 * gzip sinks through zlib. The compressor works the way pigz does: the input
 * is cut into 256 KiB blocks, each deflated on its own by a pool of threads
 * with the 32 KiB before it as dictionary, and the pieces are joined in
 * order into one gzip member, so `gzip -d` reads it and the ratio stays
 * that of a single-threaded deflate.
 */
#ifndef CHOM_GZPAR_H
#define CHOM_GZPAR_H

#include "err.h"
#include "sink.h"

/*
 * A sink that gzips what it is given into next, at level 0-9 (zlib's, but
 * for 6: see tune() in gzpar.c) on threads
 * threads (1-256; 1 compresses in the caller's thread). At most 2 * threads
 * blocks are in flight, so memory does not grow with the data. NULL with e
 * set on failure (a bad level or thread count: code 2), next then still
 * the caller's; on success the sink owns next.
 */
struct chom_sink *chom_gzpar_new(struct chom_sink *next, int level, int threads,
				 struct chom_err *e);
/*
 * A sink that gunzips into next: one or more gzip members back to back.
 * Corrupt data, anything after a member that is not another member, and
 * input that ends inside a member (or no input at all) fail with code 1,
 * "gzip: ...". Ownership of next as for chom_gzpar_new().
 */
struct chom_sink *chom_gunzip_new(struct chom_sink *next, struct chom_err *e);

#endif
