/* Whether a running process uses a directory: cwd, root, exe or open files. */
#ifndef CHOM_INUSE_H
#define CHOM_INUSE_H

#include <stddef.h>
#include <sys/types.h>

#include "err.h"

/*
 * Scans /proc. Returns 1 and the first user's pid and command name when a
 * process uses a path under dir, 0 when none does, -1 on error.
 * Processes that cannot be inspected are skipped.
 */
int chom_inuse(const char *dir, pid_t *pid, char *comm, size_t size,
	       struct chom_err *e);

#endif
