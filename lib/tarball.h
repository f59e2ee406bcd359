/* A pax tar stream of files and directories, written into a sink. */
#ifndef CHOM_TARBALL_H
#define CHOM_TARBALL_H

#include <signal.h>
#include <stddef.h>

#include "run.h"
#include "sink.h"

/*
 * Archives each path (recursively, symlinks as links, names without the
 * leading '/'), writing the tar into out (not closed here). A file that
 * vanishes or cannot be read is told to on_warning and left out; a failed
 * sink or *stop fails. *entries counts what was archived.
 */
int chom_tarball(const char *const *paths, size_t n, struct chom_sink *out,
		 chom_run_line_fn on_warning, void *ctx,
		 unsigned long long *entries, volatile sig_atomic_t *stop,
		 struct chom_err *e);

#endif
