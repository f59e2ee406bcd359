/*
 * The nginx upstream file chom-canary owns: the weights of the stable and
 * canary servers, written atomically, checked with a test command and put
 * into effect with a reload command; the file before is put back when
 * either fails.
 */
#ifndef CHOM_UPSTREAM_H
#define CHOM_UPSTREAM_H

#include <signal.h>
#include <stddef.h>

#include "err.h"

struct chom_upstream {
	const char *path;              /* the file */
	const char *name;              /* upstream NAME { ... } */
	const char *stable, *canary;   /* server addresses */
	const char *const *directives; /* extra lines in the block, or NULL */
	size_t ndirectives;
	const char *test_cmd, *reload_cmd; /* sh -c; NULL or "": none */
};

/*
 * The file's text with the canary at weight percent (0: stable alone; 100:
 * the canary alone), and a comment line `note`. Returns the length, or -1
 * (code 2) when it does not fit in size.
 */
int chom_upstream_render(const struct chom_upstream *u, int weight,
			 const char *note, char *out, size_t size,
			 struct chom_err *e);

/*
 * Replaces the file with text, then runs the test and the reload command.
 * When one of them fails, the file before (or no file, if there was none)
 * is put back and reloaded: code 1 naming the command, its status and the
 * last line it printed, or code 4 when putting the old file back failed
 * too. 0 when the new file is in effect.
 */
int chom_upstream_apply(const struct chom_upstream *u, const char *text,
			volatile sig_atomic_t *stop, struct chom_err *e);

/* The weight the file at path gives the canary: 0-100 (0: the stable
 * server alone, as chom-canary writes it or a person would), or -1 when
 * the file is missing or names neither server alone. */
int chom_upstream_weight(const struct chom_upstream *u);

#endif
