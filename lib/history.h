/*
 * BASE/.chom/history: append-only, one line per change, tab-separated:
 *   2026-11-27T07:00:00Z  switch  FROM  TO  USER
 * "-" stands for no release. Actions: stage (TO is the new next), switch,
 * rollback, revert (switched back after a failed --exec), prune (FROM is the
 * release removed).
 */
#ifndef CHOM_HISTORY_H
#define CHOM_HISTORY_H

#include <stddef.h>
#include <time.h>

#include "err.h"
#include "release.h"

struct chom_history_entry {
	time_t when;
	char action[16];
	char from[CHOM_ID_MAX + 1]; /* "" for none */
	char to[CHOM_ID_MAX + 1];
	char user[64];
};

/* Appends one line with O_APPEND and fsyncs it. */
int chom_history_append(const char *path, const char *action, const char *from,
			const char *to, struct chom_err *e);
/* All entries, oldest first; a missing file is empty. Bad lines are skipped. */
int chom_history_read(const char *path, struct chom_history_entry **out,
		      size_t *n, struct chom_err *e);

/*
 * The release --rollback goes to. The history is replayed as a stack of
 * live releases: a switch pushes, a rollback pops, and a revert undoes the
 * entry before it; so repeated rollbacks walk further back. Returns 0 with the
 * ID, 1 if there is none.
 */
int chom_history_rollback_target(const struct chom_history_entry *h, size_t n,
				 const char *current, char *id, size_t size);
/* When id was last staged, or 0. */
time_t chom_history_staged(const struct chom_history_entry *h, size_t n,
			   const char *id);

#endif
