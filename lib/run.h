/* Running a command whose output is data: a database dump, system facts. */
#ifndef CHOM_RUN_H
#define CHOM_RUN_H

#include <signal.h>

#include "sink.h"

/* Called for each line the command writes on stderr, without its newline. */
typedef void (*chom_run_line_fn)(void *ctx, const char *line);

/*
 * Runs `sh -c cmd` with its stdout written into out (not closed here) and
 * each stderr line handed to on_line. *status gets the exit status, or
 * 128+N if killed by signal N; *bytes the bytes of stdout. Returns 0 when
 * the command ran to its end, whatever its status; -1 if it could not be
 * run, the sink failed (the command is killed), or *stop was set.
 */
int chom_run_to_sink(const char *cmd, struct chom_sink *out,
		     chom_run_line_fn on_line, void *ctx, int *status,
		     unsigned long long *bytes, volatile sig_atomic_t *stop,
		     struct chom_err *e);

#endif
