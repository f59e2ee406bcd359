/*
 * Fixtures shared by the unit tests: temporary directories, small files,
 * forked children, tar.gz archives, the deploy layout, an in-memory sink
 * and deterministic test data.
 */
#ifndef CHOM_TESTUTIL_H
#define CHOM_TESTUTIL_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <cmocka.h>

#include "release.h"
#include "sink.h"

/* Fails the test with a printf-style reason shown in the TAP stream. */
#define TU_FAILF(...)                                                          \
	do {                                                                   \
		print_message("# ");                                           \
		print_message(__VA_ARGS__);                                    \
		print_message("\n");                                           \
		fail();                                                        \
	} while (0)

/* tu_fixture_new() of a struct type, the directory in its char[] member. */
#define TU_FIXTURE_NEW(type, member, name)                                     \
	((type *)tu_fixture_new(sizeof(type), offsetof(type, member),          \
				sizeof(((type *)0)->member), (name)))

/* A tu_ent type of our own: a hard link to the entry named by data. */
#define TU_HARDLINK 1

/* An entry of tu_make_tgz(). */
struct tu_ent {
	const char *name;
	int type; /* AE_IFREG, AE_IFDIR, AE_IFLNK, AE_IFIFO or TU_HARDLINK */
	int mode;
	const char *data; /* a file's content, a link's target */
};

/* What a tu_mem_new() sink was given, and how many times it was closed. */
struct tu_buf {
	unsigned char *p; /* malloc'd: free() it */
	size_t len, cap;
	int closed;
};

/* calloc(size) with a new /tmp/chom-test-NAME-XXXXXX at off; NULL: failed. */
void *tu_fixture_new(size_t size, size_t off, size_t dirsize, const char *name);
/* tu_rm_rf(dir), then frees fx; returns 0, as a teardown does. */
int tu_fixture_free(void *fx, const char *dir);
/* rm -rf path without following symlinks; errors are ignored. */
void tu_rm_rf(const char *path);
/* Makes path (replaced if it exists) hold text; fails the test on error. */
void tu_write(const char *path, const char *text);
/* Appends text to path, made if missing; fails the test on error. */
void tu_append(const char *path, const char *text);
/* Reads up to size - 1 bytes of path into buf, NUL-terminated; must open. */
void tu_read(const char *path, char *buf, size_t size);
/* Entries of dir, "." and ".." aside, whose names match fnmatch pattern. */
int tu_count_names(const char *dir, const char *pattern);
/* If *pid > 0, kills it (SIGKILL) and reaps it; then sets *pid to 0. */
void tu_reap(pid_t *pid);
/* Forks *pid to do fn(arg), say ready and pause; returns the ready fd. */
int tu_fork_ready(pid_t *pid, int (*fn)(void *), void *arg);
/* Waits for the ready report on fd from tu_fork_ready() and closes fd. */
void tu_await_ready(int fd);
/* tu_fork_ready() then tu_await_ready(): returns once the child is ready. */
void tu_spawn(pid_t *pid, int (*fn)(void *), void *arg);
/* Writes ents as a tar.gz at path (mtime 1700000000, owner 4321:4321). */
void tu_make_tgz(const char *path, const struct tu_ent *ents, size_t n);
/* chom_layout_init() and chom_layout_prepare() for base; -1 on failure. */
int tu_layout(struct chom_layout *l, const char *base);
/* Appends a history line "stage - ID" by tester at when. */
void tu_history_staged(const char *history, const char *id, time_t when);
/* Fails the test unless history's last line is "action from to". */
void tu_expect_last_history(const char *history, const char *action,
			    const char *from, const char *to);
/* Fails the test unless the lock at path is free (taken and released). */
void tu_expect_lock_free(const char *path);
/* A sink into b (zeroed); a write past limit or a close fails (code 4). */
struct chom_sink *tu_mem_new(struct tu_buf *b, size_t limit, int fail_close);
/* n bytes of deterministic text: SQL dump INSERTs, C code, comments. */
unsigned char *tu_gen_text(size_t n, uint64_t seed);
/* n bytes of deterministic random data (incompressible); free() it. */
unsigned char *tu_gen_random(size_t n, uint64_t seed);
/* Writes n bytes to s in chunks (0: at once), then closes it; -1: failed. */
int tu_feed(struct chom_sink *s, const unsigned char *p, size_t n, size_t chunk,
	    struct chom_err *e);
/* As tu_feed, but as chom_run_to_sink() reads a dump: each piece (at most
 * chunk bytes; 0: as much as fits) put where chom_sink_space() says and
 * written from there, and space asked once more at the end, as before the
 * read that finds the end of input. Fails the test where s gives none. */
int tu_feed_in_place(struct chom_sink *s, const unsigned char *p, size_t n,
		     size_t chunk, struct chom_err *e);
/* Makes path (replaced if it exists) hold n bytes of p; fails on error. */
void tu_put_file(const char *path, const void *p, size_t n);
/* All of path, malloc'd, its length in *n; fails the test on error. */
unsigned char *tu_get_file(const char *path, size_t *n);
/* The size of path; fails the test unless stat(2) succeeds. */
off_t tu_file_size(const char *path);
/* Runs a printf-style shell command; fails the test unless it exits 0. */
void tu_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* CLOCK_MONOTONIC now, in seconds. */
double tu_now(void);
/* Fails the test, naming what, unless out holds exactly the n bytes of p. */
void tu_expect_same(const struct tu_buf *out, const unsigned char *p, size_t n,
		    const char *what);

/*
 * The folder of test vectors NAME in the shared folder: $CHOM_SHARED, or
 * ../shared beside the repository that holds this test program, into out;
 * "" when neither can be told.
 */
void tu_shared_testdata(const char *name, char *out, size_t size);

#endif
