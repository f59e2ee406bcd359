/*
 * The deploy layout of SPEC.md section 3: BASE/releases/ID, shared/, the
 * current and next links, .chom/lock and .chom/history.
 */
#ifndef CHOM_RELEASE_H
#define CHOM_RELEASE_H

#include <limits.h>
#include <stdbool.h>
#include <time.h>

#include "err.h"

#define CHOM_ID_MAX 64
#define CHOM_BASE_DEFAULT "/var/www/chom"

struct chom_layout {
	char base[PATH_MAX]; /* absolute */
	char releases[PATH_MAX];
	char shared[PATH_MAX];
	char current[PATH_MAX];
	char next[PATH_MAX];
	char dotchom[PATH_MAX];
	char lock[PATH_MAX];
	char history[PATH_MAX];
};

/* 1-64 of [A-Za-z0-9._-], not starting with '.'. */
bool chom_release_id_valid(const char *id);
/*
 * The ID an artifact's file name gives: its base name without the archive
 * extensions (app-v1.1.tar.gz, .tgz, .tar.zst, .tzst, .tar.xz, .txz,
 * .tar.bz2, .tbz2, .tar, .zip). -1 if that is not a valid ID.
 */
int chom_release_id_from_name(const char *artifact, char *id, size_t size);
/* YYYYMMDDTHHMMSSZ for t, in UTC; buf holds at least 17 bytes. */
void chom_release_id_time(time_t t, char *buf, size_t size);

/* Fills l for base (made absolute, not resolved). */
int chom_layout_init(struct chom_layout *l, const char *base,
		     struct chom_err *e);
/* Creates releases/, shared/ and .chom/ as needed. */
int chom_layout_prepare(const struct chom_layout *l, struct chom_err *e);
/* BASE/releases/ID into buf. */
int chom_layout_release(const struct chom_layout *l, const char *id, char *buf,
			size_t size, struct chom_err *e);

/*
 * The release ID a link (current or next) points at. Returns 0 and the ID,
 * 1 if the link does not exist, -1 (code 2) if it is not a symlink, or
 * points elsewhere than releases/ID.
 */
int chom_release_link_id(const char *link, char *id, size_t size,
			 struct chom_err *e);

struct chom_release {
	char id[CHOM_ID_MAX + 1];
	time_t staged; /* from the history, else the directory's mtime */
};

/* The complete releases, newest first; *out is freed by the caller. */
int chom_release_list(const struct chom_layout *l, struct chom_release **out,
		      size_t *n, struct chom_err *e);

#endif
