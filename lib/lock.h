/*
 * The deploy lock: flock(2) on BASE/.chom/lock. The holder writes its pid,
 * host and start time inside so that a refused run can name it.
 */
#ifndef CHOM_LOCK_H
#define CHOM_LOCK_H

#include <signal.h>

#include "err.h"

struct chom_lock {
	int fd;
};

/*
 * Takes the lock on path, creating it and its directory as needed, waiting
 * up to wait_s seconds (0: not at all). Held by another: code 3 and a message
 * naming the holder ("held by pid 123 on web1 since 2026-11-27T07:00:00Z").
 */
int chom_lock_acquire(struct chom_lock *l, const char *path, double wait_s,
		      struct chom_err *e);
/* The same, giving up with code 128 + *stop when a signal sets *stop. */
int chom_lock_acquire_until(struct chom_lock *l, const char *path,
			    double wait_s, volatile sig_atomic_t *stop,
			    struct chom_err *e);
void chom_lock_release(struct chom_lock *l);

#endif
