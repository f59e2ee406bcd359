#include <stdlib.h>
#include <zstd.h>

#include "exitcode.h"
#include "zst.h"

#define MAXTHREADS 256

struct zst {
	struct chom_sink sink;
	struct chom_sink *next;
	ZSTD_CCtx *c;
	ZSTD_DCtx *d;
	size_t left; /* unzstd: ZSTD_decompressStream's last hint; 0: whole */
	int fed;     /* unzstd: any input at all */
	int failed;
	struct chom_err err;
	size_t cap;
	unsigned char *out;
};

static int
fail(struct zst *z, struct chom_err *e)
{
	z->failed = 1;
	z->err = *e;
	return -1;
}

static int
failed(struct zst *z, struct chom_err *e)
{
	*e = z->err;
	return -1;
}

static int
zerr(struct zst *z, size_t r, struct chom_err *e)
{
	chom_err_set(e, CHOM_EXIT_FAIL, "zstd: %s", ZSTD_getErrorName(r));
	return fail(z, e);
}

/* Passes what the last call made on to next. */
static int
put(struct zst *z, ZSTD_outBuffer *out, struct chom_err *e)
{
	if (out->pos && chom_sink_write(z->next, out->dst, out->pos, e))
		return fail(z, e);
	return 0;
}

/* Compresses in with directive op until libzstd has taken it all and, for
 * ZSTD_e_end, flushed the frame's end. */
static int
compress(struct zst *z, ZSTD_inBuffer *in, ZSTD_EndDirective op,
	 struct chom_err *e)
{
	size_t r;

	if (z->failed)
		return failed(z, e);
	do {
		ZSTD_outBuffer out = { z->out, z->cap, 0 };

		r = ZSTD_compressStream2(z->c, &out, in, op);
		if (ZSTD_isError(r))
			return zerr(z, r, e);
		if (put(z, &out, e))
			return -1;
	} while (in->pos < in->size || (op == ZSTD_e_end && r));
	return 0;
}

static int
zstd_write(struct chom_sink *s, const void *buf, size_t len, struct chom_err *e)
{
	ZSTD_inBuffer in = { buf, len, 0 };

	return len ? compress((struct zst *)s, &in, ZSTD_e_continue, e) : 0;
}

static int
zstd_close(struct chom_sink *s, struct chom_err *e)
{
	struct zst *z = (struct zst *)s;
	ZSTD_inBuffer in = { NULL, 0, 0 };

	if (compress(z, &in, ZSTD_e_end, e))
		return -1;
	if (chom_sink_close(z->next, e))
		return fail(z, e);
	z->failed = 1;
	chom_err_set(&z->err, CHOM_EXIT_FAIL, "zstd: write after close");
	return 0;
}

static int
unzstd_write(struct chom_sink *s, const void *buf, size_t len,
	     struct chom_err *e)
{
	struct zst *z = (struct zst *)s;
	ZSTD_inBuffer in = { buf, len, 0 };
	int full = 0;

	if (z->failed)
		return failed(z, e);
	z->fed |= len > 0;
	/* A full output buffer may leave more to flush without input, unless
	 * the frame is whole (0): a call then would start the next one. */
	while (in.pos < in.size || (full && z->left)) {
		ZSTD_outBuffer out = { z->out, z->cap, 0 };

		z->left = ZSTD_decompressStream(z->d, &out, &in);
		if (ZSTD_isError(z->left))
			return zerr(z, z->left, e);
		if (put(z, &out, e))
			return -1;
		full = out.pos == out.size;
	}
	return 0;
}

static int
unzstd_close(struct chom_sink *s, struct chom_err *e)
{
	struct zst *z = (struct zst *)s;

	if (z->failed)
		return failed(z, e);
	if (!z->fed || z->left) {
		chom_err_set(e, CHOM_EXIT_FAIL,
			     "zstd: unexpected end of input");
		return fail(z, e);
	}
	if (chom_sink_close(z->next, e))
		return fail(z, e);
	z->failed = 1;
	chom_err_set(&z->err, CHOM_EXIT_FAIL, "zstd: write after close");
	return 0;
}

static void
zst_free(struct chom_sink *s)
{
	struct zst *z = (struct zst *)s;

	ZSTD_freeCCtx(z->c);
	ZSTD_freeDCtx(z->d);
	free(z->out);
	chom_sink_free(z->next);
	free(z);
}

static struct zst *
zst_alloc(size_t cap, struct chom_err *e)
{
	struct zst *z = calloc(1, sizeof(*z));

	if (z && !(z->out = malloc(cap))) {
		free(z);
		z = NULL;
	}
	if (!z) {
		chom_err_set(e, CHOM_EXIT_FAIL, "zstd: out of memory");
		return NULL;
	}
	z->cap = cap;
	z->sink.free = zst_free;
	return z;
}

static int
set(struct zst *z, ZSTD_cParameter p, int v, struct chom_err *e)
{
	size_t r = ZSTD_CCtx_setParameter(z->c, p, v);

	if (ZSTD_isError(r))
		return chom_err_set(e, CHOM_EXIT_USAGE, "zstd: %s",
				    ZSTD_getErrorName(r));
	return 0;
}

struct chom_sink *
chom_zstd_new(struct chom_sink *next, int level, int threads,
	      struct chom_err *e)
{
	ZSTD_bounds b = ZSTD_cParam_getBounds(ZSTD_c_compressionLevel);
	struct zst *z;

	if (ZSTD_isError(b.error) || level < b.lowerBound ||
	    level > b.upperBound) {
		chom_err_set(e, CHOM_EXIT_USAGE, "zstd: level %d not in %d-%d",
			     level, b.lowerBound, b.upperBound);
		return NULL;
	}
	if (threads < 1 || threads > MAXTHREADS) {
		chom_err_set(e, CHOM_EXIT_USAGE, "zstd: %d threads not in 1-%d",
			     threads, MAXTHREADS);
		return NULL;
	}
	if (!(z = zst_alloc(ZSTD_CStreamOutSize(), e)))
		return NULL;
	if (!(z->c = ZSTD_createCCtx())) {
		chom_err_set(e, CHOM_EXIT_FAIL, "zstd: out of memory");
		zst_free(&z->sink);
		return NULL;
	}
	/* Small jobs keep the workers' memory bounded whatever the level:
	 * each holds a job of input and its output. */
	if (set(z, ZSTD_c_compressionLevel, level, e) ||
	    set(z, ZSTD_c_checksumFlag, 1, e) ||
	    (threads > 1 && (set(z, ZSTD_c_nbWorkers, threads, e) ||
			     set(z, ZSTD_c_jobSize, 2 << 20, e)))) {
		zst_free(&z->sink);
		return NULL;
	}
	z->sink.write = zstd_write;
	z->sink.close = zstd_close;
	z->next = next;
	return &z->sink;
}

struct chom_sink *
chom_unzstd_new(struct chom_sink *next, struct chom_err *e)
{
	struct zst *z;

	if (!(z = zst_alloc(ZSTD_DStreamOutSize(), e)))
		return NULL;
	if (!(z->d = ZSTD_createDCtx())) {
		chom_err_set(e, CHOM_EXIT_FAIL, "zstd: out of memory");
		zst_free(&z->sink);
		return NULL;
	}
	z->sink.write = unzstd_write;
	z->sink.close = unzstd_close;
	z->next = next;
	return &z->sink;
}
