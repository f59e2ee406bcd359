#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "exitcode.h"
#include "gzpar.h"

#define BLOCK (256 * 1024) /* the dictionary is 1/8 of a block to prime */
#define DICT (32 * 1024)
#define MAXTHREADS 256
#define OUTBUF (64 * 1024)

enum { JOB_FILLING, JOB_QUEUED, JOB_DONE };

struct job {
	unsigned char dict[DICT];
	size_t dictlen;
	unsigned char in[BLOCK];
	size_t len;
	unsigned char *out;
	size_t outlen, outcap;
	unsigned long crc;
	int last;
	int state;
	int nomem;
};

struct worker {
	pthread_t tid;
	z_stream strm;
	int live; /* strm initialised */
	struct gzpar *g;
};

/*
 * Jobs are numbered in input order; job n lives in slot n % njobs. head is
 * the oldest not yet written to next, queued the first no worker has taken,
 * tail the one being filled (or the next to fill when cur is NULL).
 */
struct gzpar {
	struct chom_sink sink;
	struct chom_sink *next;
	struct job *jobs;
	size_t njobs;
	struct job *cur;
	unsigned long long head, queued, tail;
	struct worker *workers;
	int nstrm;    /* workers with a z_stream */
	int nworkers; /* threads; 0: the caller compresses on workers[0] */
	int running;  /* threads started */
	pthread_mutex_t mu;
	pthread_cond_t work, done;
	int sync; /* mu and the conds initialised */
	int stop;
	int started; /* the gzip header is written */
	unsigned long crc;
	unsigned long isize;
	int level;
	int failed;
	struct chom_err err;
};

static int
fail(struct gzpar *g, struct chom_err *e)
{
	g->failed = 1;
	g->err = *e;
	return -1;
}

static int
failed(struct gzpar *g, struct chom_err *e)
{
	*e = g->err;
	return -1;
}

/*
 * Level 6, the default, is zlib's level 6 with the search for a match cut
 * at 64 candidates instead of 128. Measured on 64 MiB of mysqldump output
 * and of a Laravel tree, in 256 KiB blocks: 0.5% larger, 10-15% less CPU;
 * the ratio stays within 2% of `gzip -6`. The other levels are zlib's.
 * deflateReset() puts zlib's parameters back: this follows each reset.
 */
static void
tune(z_stream *strm, int level)
{
	if (level == 6)
		deflateTune(strm, 8, 16, 128, 64);
}

/* Deflates job with strm into job->out; sets job->nomem if out can't grow. */
static void
deflate_job(z_stream *strm, int level, struct job *job)
{
	int flush = job->last ? Z_FINISH : Z_SYNC_FLUSH;
	int ret;

	deflateReset(strm);
	tune(strm, level);
	if (job->dictlen)
		deflateSetDictionary(strm, job->dict, (uInt)job->dictlen);
	strm->next_in = job->in;
	strm->avail_in = (uInt)job->len;
	job->outlen = 0;
	for (;;) {
		strm->next_out = job->out + job->outlen;
		strm->avail_out = (uInt)(job->outcap - job->outlen);
		ret = deflate(strm, flush);
		job->outlen = job->outcap - strm->avail_out;
		/* Done: the end of the stream, or a sync flush with room left
		 * over (deflate asks to be called again when avail_out is 0).
		 */
		if (ret == Z_STREAM_END || (!job->last && strm->avail_out))
			break;
		if (!strm->avail_out) {
			size_t cap = job->outcap * 2;
			unsigned char *p = realloc(job->out, cap);

			if (!p) {
				job->nomem = 1;
				break;
			}
			job->out = p;
			job->outcap = cap;
		}
	}
	job->crc = crc32(0, job->in, (uInt)job->len);
}

static void *
work(void *arg)
{
	struct worker *w = arg;
	struct gzpar *g = w->g;

	pthread_mutex_lock(&g->mu);
	for (;;) {
		struct job *job;

		while (!g->stop && g->queued == g->tail)
			pthread_cond_wait(&g->work, &g->mu);
		if (g->stop)
			break;
		job = &g->jobs[g->queued++ % g->njobs];
		pthread_mutex_unlock(&g->mu);
		deflate_job(&w->strm, g->level, job);
		pthread_mutex_lock(&g->mu);
		job->state = JOB_DONE;
		pthread_cond_broadcast(&g->done);
	}
	pthread_mutex_unlock(&g->mu);
	return NULL;
}

static int
put_header(struct gzpar *g, struct chom_err *e)
{
	/* No name, mtime 0, the deflate speed hint of gzip(1), OS Unix. */
	unsigned char h[10] = { 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3 };

	h[8] = g->level == 9 ? 2 : g->level == 1 ? 4 : 0;
	g->started = 1;
	return chom_sink_write(g->next, h, sizeof(h), e);
}

/*
 * Writes the oldest job to next once it is done; if it is not done yet,
 * waits for it when wait is set, else returns 1.
 */
static int
put_oldest(struct gzpar *g, int wait, struct chom_err *e)
{
	struct job *job = &g->jobs[g->head % g->njobs];
	int state;

	if (g->nworkers) {
		pthread_mutex_lock(&g->mu);
		while ((state = job->state) != JOB_DONE && wait)
			pthread_cond_wait(&g->done, &g->mu);
		pthread_mutex_unlock(&g->mu);
		if (state != JOB_DONE)
			return 1;
	}
	if (job->nomem)
		return chom_err_set(e, CHOM_EXIT_FAIL, "gzip: out of memory");
	if (!g->started && put_header(g, e))
		return -1;
	if (chom_sink_write(g->next, job->out, job->outlen, e))
		return -1;
	g->crc = crc32_combine(g->crc, job->crc, (z_off_t)job->len);
	g->isize += job->len;
	g->head++;
	return 0;
}

/* Writes every job that is done, in order, without waiting. */
static int
put_done(struct gzpar *g, struct chom_err *e)
{
	int r = 0;

	while (g->head < g->tail && !(r = put_oldest(g, 0, e)))
		;
	return r < 0 ? -1 : 0;
}

/* Starts job tail in a free slot, the last 32 KiB of job tail - 1 its dict. */
static int
open_job(struct gzpar *g, struct chom_err *e)
{
	struct job *job, *prev;

	while (g->tail - g->head == g->njobs)
		if (put_oldest(g, 1, e))
			return -1;
	job = &g->jobs[g->tail % g->njobs];
	job->dictlen = 0;
	if (g->tail) {
		prev = &g->jobs[(g->tail - 1) % g->njobs];
		job->dictlen = prev->len < DICT ? prev->len : DICT;
		memcpy(job->dict, prev->in + prev->len - job->dictlen,
		       job->dictlen);
	}
	job->len = 0;
	job->last = 0;
	job->nomem = 0;
	job->state = JOB_FILLING;
	g->cur = job;
	return 0;
}

static void
queue_job(struct gzpar *g, int last)
{
	struct job *job = g->cur;

	job->last = last;
	g->cur = NULL;
	if (!g->nworkers) {
		deflate_job(&g->workers[0].strm, g->level, job);
		job->state = JOB_DONE;
		g->tail++;
		g->queued = g->tail;
		return;
	}
	pthread_mutex_lock(&g->mu);
	job->state = JOB_QUEUED;
	g->tail++;
	pthread_cond_signal(&g->work);
	pthread_mutex_unlock(&g->mu);
}

/* Makes g->cur a job with room for input. */
static int
room(struct gzpar *g, struct chom_err *e)
{
	/* A full block waits for more data or for a producer to ask for
	 * space, so that the last block is empty only when the input ends
	 * on a block's end after such a request. */
	if (g->cur && g->cur->len == BLOCK) {
		queue_job(g, 0);
		if (put_done(g, e))
			return fail(g, e);
	}
	if (!g->cur && open_job(g, e))
		return fail(g, e);
	return 0;
}

/* The rest of the block being filled: a producer that reads into it
 * (chom_run_to_sink() from the dump's pipe) saves a copy of every byte. */
static void *
gzpar_space(struct chom_sink *s, size_t *len)
{
	struct gzpar *g = (struct gzpar *)s;
	struct chom_err e;

	if (g->failed || room(g, &e))
		return NULL; /* the next write says why */
	*len = BLOCK - g->cur->len;
	return g->cur->in + g->cur->len;
}

static int
gzpar_write(struct chom_sink *s, const void *buf, size_t len,
	    struct chom_err *e)
{
	struct gzpar *g = (struct gzpar *)s;
	const unsigned char *p = buf;

	if (g->failed)
		return failed(g, e);
	while (len) {
		size_t n;

		if (room(g, e))
			return -1;
		n = BLOCK - g->cur->len;
		if (n > len)
			n = len;
		if (p != g->cur->in + g->cur->len) /* else in place */
			memcpy(g->cur->in + g->cur->len, p, n);
		g->cur->len += n;
		p += n;
		len -= n;
	}
	return 0;
}

static int
gzpar_close(struct chom_sink *s, struct chom_err *e)
{
	struct gzpar *g = (struct gzpar *)s;
	unsigned char t[8];
	int i;

	if (g->failed)
		return failed(g, e);
	if (!g->cur && open_job(g, e))
		return fail(g, e);
	queue_job(g, 1);
	while (g->head < g->tail)
		if (put_oldest(g, 1, e))
			return fail(g, e);
	for (i = 0; i < 4; i++) {
		t[i] = (unsigned char)(g->crc >> 8 * i);
		t[4 + i] = (unsigned char)(g->isize >> 8 * i);
	}
	if (chom_sink_write(g->next, t, sizeof(t), e) ||
	    chom_sink_close(g->next, e))
		return fail(g, e);
	g->failed = 1;
	chom_err_set(&g->err, CHOM_EXIT_FAIL, "gzip: write after close");
	return 0;
}

static void
gzpar_free(struct chom_sink *s)
{
	struct gzpar *g = (struct gzpar *)s;
	int i;

	if (g->running) {
		pthread_mutex_lock(&g->mu);
		g->stop = 1;
		pthread_cond_broadcast(&g->work);
		pthread_mutex_unlock(&g->mu);
		for (i = 0; i < g->running; i++)
			pthread_join(g->workers[i].tid, NULL);
	}
	if (g->sync) {
		pthread_mutex_destroy(&g->mu);
		pthread_cond_destroy(&g->work);
		pthread_cond_destroy(&g->done);
	}
	for (i = 0; i < g->nstrm; i++)
		if (g->workers[i].live)
			deflateEnd(&g->workers[i].strm);
	for (size_t j = 0; g->jobs && j < g->njobs; j++)
		free(g->jobs[j].out);
	free(g->jobs);
	free(g->workers);
	chom_sink_free(g->next);
	free(g);
}

static int
gzpar_init(struct gzpar *g, int threads, struct chom_err *e)
{
	int nstrm = threads > 1 ? threads : 1;
	size_t cap;
	int i, r;

	g->njobs = threads > 1 ? 4 * (size_t)threads : 1;
	g->jobs = calloc(g->njobs, sizeof(*g->jobs));
	g->workers = calloc((size_t)nstrm, sizeof(*g->workers));
	if (!g->jobs || !g->workers)
		return chom_err_set(e, CHOM_EXIT_FAIL, "gzip: out of memory");
	g->nstrm = nstrm;
	for (i = 0; i < nstrm; i++) {
		struct worker *w = &g->workers[i];

		w->g = g;
		r = deflateInit2(&w->strm, g->level, Z_DEFLATED, -15, 8,
				 Z_DEFAULT_STRATEGY);
		if (r != Z_OK)
			return chom_err_set(e, CHOM_EXIT_FAIL, "gzip: %s",
					    r == Z_MEM_ERROR ? "out of memory"
							     : zError(r));
		w->live = 1;
	}
	/* Room for a sync flush's marker and the last block's end. */
	cap = deflateBound(&g->workers[0].strm, BLOCK) + 16;
	for (size_t j = 0; j < g->njobs; j++) {
		if (!(g->jobs[j].out = malloc(cap)))
			return chom_err_set(e, CHOM_EXIT_FAIL,
					    "gzip: out of memory");
		g->jobs[j].outcap = cap;
	}
	if (threads == 1)
		return 0;
	if ((r = pthread_mutex_init(&g->mu, NULL)) ||
	    (r = pthread_cond_init(&g->work, NULL)) ||
	    (r = pthread_cond_init(&g->done, NULL))) {
		errno = r;
		return chom_err_sys(e, CHOM_EXIT_FAIL, "gzip: pthread init");
	}
	g->sync = 1;
	g->nworkers = threads;
	for (i = 0; i < threads; i++) {
		if ((r = pthread_create(&g->workers[i].tid, NULL, work,
					&g->workers[i]))) {
			errno = r;
			return chom_err_sys(e, CHOM_EXIT_FAIL,
					    "gzip: pthread_create");
		}
		g->running++;
	}
	return 0;
}

struct chom_sink *
chom_gzpar_new(struct chom_sink *next, int level, int threads,
	       struct chom_err *e)
{
	struct gzpar *g;

	if (level < 0 || level > 9) {
		chom_err_set(e, CHOM_EXIT_USAGE, "gzip: level %d not in 0-9",
			     level);
		return NULL;
	}
	if (threads < 1 || threads > MAXTHREADS) {
		chom_err_set(e, CHOM_EXIT_USAGE, "gzip: %d threads not in 1-%d",
			     threads, MAXTHREADS);
		return NULL;
	}
	if (!(g = calloc(1, sizeof(*g)))) {
		chom_err_set(e, CHOM_EXIT_FAIL, "gzip: out of memory");
		return NULL;
	}
	g->sink.write = gzpar_write;
	g->sink.space = gzpar_space;
	g->sink.close = gzpar_close;
	g->sink.free = gzpar_free;
	g->level = level;
	if (gzpar_init(g, threads, e)) {
		gzpar_free(&g->sink); /* next is still NULL: left alone */
		return NULL;
	}
	g->next = next;
	return &g->sink;
}

struct gunzip {
	struct chom_sink sink;
	struct chom_sink *next;
	z_stream strm;
	int ended; /* at the end of a member */
	int failed;
	struct chom_err err;
	unsigned char out[OUTBUF];
};

static int
gunzip_fail(struct gunzip *z, struct chom_err *e)
{
	z->failed = 1;
	z->err = *e;
	return -1;
}

static int
gunzip_write(struct chom_sink *s, const void *buf, size_t len,
	     struct chom_err *e)
{
	struct gunzip *z = (struct gunzip *)s;
	int full = 0, ret;

	if (z->failed) {
		*e = z->err;
		return -1;
	}
	z->strm.next_in = (unsigned char *)buf;
	while (len || z->strm.avail_in || full) {
		/* avail_in is 32 bits wide: feed a huge buffer in parts. */
		if (!z->strm.avail_in) {
			z->strm.avail_in =
			    len > UINT_MAX ? UINT_MAX : (uInt)len;
			len -= z->strm.avail_in;
		}
		if (z->ended && z->strm.avail_in) {
			inflateReset(&z->strm);
			z->ended = 0;
		}
		z->strm.next_out = z->out;
		z->strm.avail_out = sizeof(z->out);
		ret = inflate(&z->strm, Z_NO_FLUSH);
		full = !z->strm.avail_out;
		if (ret == Z_STREAM_END) {
			z->ended = 1;
			full = 0;
		} else if (ret == Z_BUF_ERROR && !z->strm.avail_in) {
			full = 0; /* no progress: the input is used up */
		} else if (ret != Z_OK) {
			chom_err_set(e, CHOM_EXIT_FAIL, "gzip: %s",
				     ret == Z_MEM_ERROR ? "out of memory"
				     : z->strm.msg      ? z->strm.msg
							: "corrupt input");
			return gunzip_fail(z, e);
		}
		if (sizeof(z->out) > z->strm.avail_out &&
		    chom_sink_write(z->next, z->out,
				    sizeof(z->out) - z->strm.avail_out, e))
			return gunzip_fail(z, e);
	}
	return 0;
}

static int
gunzip_close(struct chom_sink *s, struct chom_err *e)
{
	struct gunzip *z = (struct gunzip *)s;

	if (z->failed) {
		*e = z->err;
		return -1;
	}
	if (!z->ended) {
		chom_err_set(e, CHOM_EXIT_FAIL,
			     "gzip: unexpected end of input");
		return gunzip_fail(z, e);
	}
	if (chom_sink_close(z->next, e))
		return gunzip_fail(z, e);
	z->failed = 1;
	chom_err_set(&z->err, CHOM_EXIT_FAIL, "gzip: write after close");
	return 0;
}

static void
gunzip_free(struct chom_sink *s)
{
	struct gunzip *z = (struct gunzip *)s;

	inflateEnd(&z->strm);
	chom_sink_free(z->next);
	free(z);
}

struct chom_sink *
chom_gunzip_new(struct chom_sink *next, struct chom_err *e)
{
	struct gunzip *z = calloc(1, sizeof(*z));
	int r;

	if (!z) {
		chom_err_set(e, CHOM_EXIT_FAIL, "gzip: out of memory");
		return NULL;
	}
	/* 15 + 16: a 32 KiB window, gzip members only. */
	if ((r = inflateInit2(&z->strm, 15 + 16)) != Z_OK) {
		chom_err_set(e, CHOM_EXIT_FAIL, "gzip: %s",
			     r == Z_MEM_ERROR ? "out of memory" : zError(r));
		free(z);
		return NULL;
	}
	z->sink.write = gunzip_write;
	z->sink.close = gunzip_close;
	z->sink.free = gunzip_free;
	z->next = next;
	return &z->sink;
}
