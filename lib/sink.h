/*
 * A byte sink: one stage of a streaming pipeline such as dump -> compress
 * -> encrypt -> hash -> file. Each stage writes what it makes into the next
 * one, so a pipeline is built back to front and memory stays bounded by
 * each stage's own buffers.
 */
#ifndef CHOM_SINK_H
#define CHOM_SINK_H

#include <stddef.h>

#include "err.h"

struct chom_sink {
	/* Takes len bytes; -1 with e set on failure. */
	int (*write)(struct chom_sink *s, const void *buf, size_t len,
		     struct chom_err *e);
	/* Flushes and finishes this stage, then closes the next one. */
	int (*close)(struct chom_sink *s, struct chom_err *e);
	/* Releases this stage and the ones after it without finishing them
	 * (after a failure, or after close). */
	void (*free)(struct chom_sink *s);
	/* Optional: where the next write may find its bytes already in
	 * place, and (in *len) how many fit there; NULL for none. A write
	 * whose buf is that pointer, of at most *len bytes, takes them
	 * without a copy. Anything else between the two calls (another
	 * write, a close) makes the pointer void. */
	void *(*space)(struct chom_sink *s, size_t *len);
};

static inline int
chom_sink_write(struct chom_sink *s, const void *buf, size_t len,
		struct chom_err *e)
{
	return s->write(s, buf, len, e);
}

static inline int
chom_sink_close(struct chom_sink *s, struct chom_err *e)
{
	return s->close(s, e);
}

/* The next write's place in s (see space), or NULL: write from a buffer of
 * one's own then. */
static inline void *
chom_sink_space(struct chom_sink *s, size_t *len)
{
	return s->space ? s->space(s, len) : NULL;
}

static inline void
chom_sink_free(struct chom_sink *s)
{
	if (s)
		s->free(s);
}

#endif
