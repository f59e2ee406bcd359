/*
 * Switching: BASE/current is replaced in one rename(2) under the deploy
 * lock, recorded in the history; rollback, list and prune.
 */
#ifndef CHOM_SWITCH_H
#define CHOM_SWITCH_H

#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "err.h"
#include "release.h"

enum chom_switch_what {
	CHOM_SWITCH_ID,
	CHOM_SWITCH_NEXT,
	CHOM_SWITCH_ROLLBACK
};

struct chom_switch_opts {
	const struct chom_layout *layout;
	enum chom_switch_what what;
	const char *id;       /* for CHOM_SWITCH_ID */
	const char *exec_cmd; /* run with sh -c after the switch, or NULL */
	double wait_s;
	const char *metrics_dir;     /* or NULL */
	volatile sig_atomic_t *stop; /* a signal during --exec: switch back */
};

struct chom_switch_result {
	char from[CHOM_ID_MAX + 1]; /* "" when nothing was live */
	char to[CHOM_ID_MAX + 1];
	char path[PATH_MAX]; /* BASE/releases/TO */
	bool changed;        /* false when TO was already current */
	bool reverted;       /* --exec failed and FROM is live again */
	int exec_status;     /* the command's exit status, 128+N if killed */
	double seconds;      /* from taking the lock to the history line */
	char warning[PATH_MAX +
		     1280]; /* after the switch succeeded, what failed */
};

/*
 * Code 1: missing release, nothing to roll back to, or --exec failed and
 * was reverted; 2: bad layout (current is a directory); 3: lock held;
 * 4: --exec failed and switching back failed too; 128+N: signal N arrived
 * during --exec and the previous release is live again.
 */
int chom_switch(const struct chom_switch_opts *o, struct chom_switch_result *r,
		struct chom_err *e);

struct chom_release_info {
	struct chom_release rel;
	bool current, previous, next;
};

/* The releases, newest first, with their marks. *out freed by the caller. */
int chom_switch_list(const struct chom_layout *l,
		     struct chom_release_info **out, size_t *n,
		     struct chom_err *e);

struct chom_prune_item {
	char id[CHOM_ID_MAX + 1];
	bool removed;
	const char *why; /* why kept: "current", "next", "previous", "newest",
			    "in use by pid N (comm)", or NULL when removed */
	char detail[128];
};

/*
 * Keeps the `keep` newest releases, current, next and the rollback target,
 * and (unless force) any release a process uses; removes the rest.
 */
int chom_switch_prune(const struct chom_layout *l, size_t keep, bool force,
		      double wait_s, struct chom_prune_item **out, size_t *n,
		      struct chom_err *e);

#endif
