/*
 * /etc/chom/chom.conf: INI through inih, one [section] per tool plus
 * [global]. Precedence, lowest first: the file, the environment, options.
 */
#ifndef CHOM_CONFIG_H
#define CHOM_CONFIG_H

#include "err.h"

#define CHOM_CONFIG_DEFAULT "/etc/chom/chom.conf"

/*
 * Called for each key of [global] and of [section]; keys of other sections
 * are left to their tools. The loader refuses keys of [global] other than
 * base (the deploy directory) before they reach it. Returns 0 when the key is
 * known and its value valid, else -1 with why (the loader adds the file and
 * line).
 */
typedef int (*chom_config_fn)(void *ctx, const char *section, const char *key,
			      const char *value, struct chom_err *e);

/*
 * Which file: `path` (from -c) if non-NULL, else $CHOM_CONFIG, else the
 * default. A file named by -c or CHOM_CONFIG must exist; the default may be
 * absent. Errors (code 2) name the file and line.
 */
int chom_config_load(const char *path, const char *section, chom_config_fn fn,
		     void *ctx, struct chom_err *e);

/*
 * A copy of a value that lives as long as the process: the callback's value
 * is gone when it returns. NULL when out of memory.
 */
const char *chom_config_keep(const char *value);

/* The file chom_config_load would read, for messages. */
const char *chom_config_path(const char *path);

#endif
