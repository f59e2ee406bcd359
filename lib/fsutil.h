/*
 * Durable, atomic changes of state: write a temporary name in the same
 * directory, fsync, rename, fsync the directory.
 */
#ifndef CHOM_FSUTIL_H
#define CHOM_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>

#include "err.h"

int chom_fsync_dir(const char *dir, struct chom_err *e);
/* Replaces path with exactly len bytes of data, mode applied. */
int chom_atomic_write(const char *path, const void *data, size_t len,
		      mode_t mode, struct chom_err *e);
/* Makes linkpath a symlink to target, replacing what was there in one step. */
int chom_atomic_symlink(const char *target, const char *linkpath,
			struct chom_err *e);
/* mkdir -p; existing directories are fine. */
int chom_mkdir_p(const char *path, mode_t mode, struct chom_err *e);
/* rm -rf without following symlinks; a missing path is fine. */
int chom_rmtree(const char *path, struct chom_err *e);
/* Moves every entry of from into to, on the same filesystem, all or
 * nothing: when one cannot be moved, those already moved go back. A name
 * already in to is replaced as rename(2) does. */
int chom_move_entries(const char *from, const char *to, struct chom_err *e);
/* The target of a symlink into buf; -1 with errno set (EINVAL: not a link). */
int chom_readlink(const char *path, char *buf, size_t size);
/* snprintf that fails (code 2, "path too long") instead of truncating. */
int chom_path(char *buf, size_t size, struct chom_err *e, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
