/*
 * The conventions every tool shares (SPEC.md section 2): the name prefix on
 * messages, -q/-v, --version, usage errors, --json lines on stdout.
 * This is the one module that writes, and only when a tool asks it to.
 */
#ifndef CHOM_CLI_H
#define CHOM_CLI_H

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>

#include "err.h"

enum chom_verbosity { CHOM_QUIET = 0, CHOM_NORMAL = 1, CHOM_VERBOSE = 2 };

void chom_cli_init(const char *name); /* "chom-stage" */
const char *chom_cli_name(void);
void chom_cli_set_verbosity(int level);
int chom_cli_verbosity(void);
bool chom_cli_tty(void); /* stderr is a terminal: progress is wanted */

/*
 * "chom-NAME: ..." on stderr. Errors and warnings always; info on a terminal
 * unless -q, and with -v; debug with -v.
 */
void chom_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void chom_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void chom_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void chom_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Reports e and returns its code, for `return chom_report(&e);`. */
int chom_report(const struct chom_err *e);

/* One line and "Try 'chom-NAME --help'." on stderr; returns CHOM_EXIT_USAGE. */
int chom_usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
/* The usage error for what getopt_long returned as ':' or '?' (the tools'
 * option strings start with ':' and set opterr = 0). */
int chom_usage_getopt(int c, char **argv);
/* s escaped for a message, in a static buffer (one use per message). */
const char *chom_quote(const char *s);
/*
 * The HOST of a backup target: *host as given, or this machine's short
 * host name when NULL; a name that is not [A-Za-z0-9._-] is a usage error
 * (printed; returns CHOM_EXIT_USAGE), else 0.
 */
int chom_cli_host(const char **host);
/* "chom-NAME (chom) X.Y.Z" on stdout; returns CHOM_EXIT_OK. */
int chom_print_version(void);

/* Prints obj as one compact JSON line on stdout and releases it. */
void chom_json_line(json_t *obj);

/* A progress line on a terminal, redrawn in place; nothing elsewhere. */
void chom_progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void chom_progress_end(void);

/*
 * The Markdown summary of a change to production: --summary FILE if given,
 * else $GITHUB_STEP_SUMMARY, else nowhere (returns NULL).
 */
const char *chom_summary_path(const char *opt);
/* s as one Markdown table cell: '|' escaped, line breaks as spaces. */
void chom_md_cell(const char *s, char *out, size_t size);
/* Appends text to path in one write(2). */
int chom_summary_append(const char *path, const char *text, struct chom_err *e);

/*
 * SIGINT and SIGTERM set the flag returned to the signal's number, with no
 * SA_RESTART so that a blocked call returns to look at it; SIGPIPE is
 * ignored, a write error then reported where it happens.
 */
volatile sig_atomic_t *chom_cli_catch_signals(void);
/* The exit status after signal sig: 130 for SIGINT, 143 for SIGTERM. */
int chom_cli_signal_status(int sig);

/* Flushes and checks stdout at exit: a full disk or closed pipe is an error. */
int chom_close_stdout(int status);

/* Strict number parsing for options: the whole string, within [min, max]. */
int chom_parse_ll(const char *s, long long min, long long max, long long *out);
/* "1048576", "512K", "150M", "10G", "1T" (powers of 1024). */
int chom_parse_size(const char *s, unsigned long long *out);
/* "30", "30s", "5m", "2h", "1.5s": seconds as a double. */
int chom_parse_duration(const char *s, double *out);
int chom_parse_bool(const char *s,
		    bool *out); /* yes/no/true/false/1/0/on/off */

#endif
