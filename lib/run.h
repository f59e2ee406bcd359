/* Running a command whose output is data: a database dump, system facts. */
#ifndef CHOM_RUN_H
#define CHOM_RUN_H

#include <signal.h>
#include <sys/types.h>

#include "sink.h"

/*
 * fork() for a command that handles data: the child in a session (and
 * process group) of its own, without a controlling terminal, so that a
 * prompt fails instead of stopping it; SIGINT, SIGTERM and SIGPIPE at
 * their defaults, and no signal lost between the fork and its exec. As
 * fork(): the pid, 0 in the child, -1.
 */
pid_t chom_run_fork(void);
/* The same, the child staying in the caller's process group and session:
 * for a command that may talk to the operator at the terminal (a sudo
 * prompt) and that a Ctrl-C there should reach. */
pid_t chom_run_fork_here(void);

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

/*
 * Starts `sh -c cmd` in its own process group, stdout and stderr shared with
 * ours, and returns a sink that writes into its stdin. close() ends its
 * input and waits for it: a status other than 0 fails (code 1, "WHAT:
 * exited with status N", "WHAT: killed by signal N"), as does a command that
 * exits before reading all its input. free() before close() stops the group
 * with SIGTERM and reaps it. *status gets the status as for
 * chom_run_to_sink(). A write or close() that finds *stop set stops the
 * command (SIGTERM to its group) and fails with code 128+N. A command that
 * exits 0 with input still unread is caught only when a write finds the
 * pipe closed: not when all the input fitted in the pipe. SIGPIPE must be
 * ignored by the caller.
 */
struct chom_sink *chom_run_stdin_new(const char *cmd, const char *what,
				     int *status, volatile sig_atomic_t *stop,
				     struct chom_err *e);
/*
 * Runs `sh -c cmd` in its own process group with the regular file fd as its
 * stdin, read from the start through a descriptor of its own, and waits
 * for it, telling tick how far it has read now and then. Fails (code 1) as
 * a chom_run_stdin_new() command's close() does, and when the command
 * exits 0 without reading the file to its end; *stop set: the group gets
 * SIGTERM, code 128+N.
 */
int chom_run_from_file(const char *cmd, int fd, const char *what,
		       void (*tick)(void *ctx, unsigned long long done),
		       void *ctx, volatile sig_atomic_t *stop, int *status,
		       struct chom_err *e);
#endif
