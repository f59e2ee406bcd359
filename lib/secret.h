/* Secrets (passwords, keys) come from files that only their owner reads. */
#ifndef CHOM_SECRET_H
#define CHOM_SECRET_H

#include <stddef.h>

#include "err.h"

/*
 * Reads path into a new NUL-terminated string (trailing newlines removed),
 * refusing with code 2 a file that group or others may read, or that is
 * empty. The caller frees *out with chom_secret_free.
 */
int chom_secret_read(const char *path, char **out, struct chom_err *e);
/* Overwrites, then frees. */
void chom_secret_free(char *s);

#endif
