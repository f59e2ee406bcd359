/*
 * Text files for node_exporter's textfile collector, written atomically.
 * A chom_metrics is a set of series of declared metrics: read back from
 * the file a run replaces, so that a run updates its own series and keeps
 * those of the runs before it.
 */
#ifndef CHOM_METRICS_H
#define CHOM_METRICS_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

#define CHOM_METRICS_MAX_LABELS 8

/* Writes DIR/NAME.prom (mode 0644) with text, replacing it in one step. */
int chom_metrics_write(const char *dir, const char *name, const char *text,
		       struct chom_err *e);

/* Takes an exclusive flock(2) on DIR itself, so that runs that read, merge
 * and rewrite a file there take turns; waits up to timeout seconds (code 3
 * when still held). Returns the fd to close to let go, or -1. */
int chom_metrics_lock(const char *dir, double timeout, struct chom_err *e);

struct chom_metrics;

struct chom_metrics *chom_metrics_new(void);
void chom_metrics_free(struct chom_metrics *m);

/* A metric: its name, TYPE (gauge, counter, untyped), HELP text, and the
 * names of the labels every one of its series has (NULL-terminated, at
 * most CHOM_METRICS_MAX_LABELS). Code 2 for a name or label that the
 * text format does not allow, or a metric declared twice. */
int chom_metrics_declare(struct chom_metrics *m, const char *name,
			 const char *type, const char *help,
			 const char *const *labels, struct chom_err *e);

/* Adds the series of DIR/NAME.prom: a missing file is none. Comments,
 * series of undeclared metrics, series whose labels are not exactly the
 * declared ones and lines that do not parse are left out, and counted in
 * *dropped (if not NULL); timestamps are left out. A series read twice
 * keeps its last value. */
int chom_metrics_load(struct chom_metrics *m, const char *dir, const char *name,
		      size_t *dropped, struct chom_err *e);

/* Sets the series of metric NAME whose label values, in the declared
 * order, are values[], adding it if new. */
int chom_metrics_set(struct chom_metrics *m, const char *name,
		     const char *const *values, double value,
		     struct chom_err *e);

/* Whether that series exists, and its value in *value. */
bool chom_metrics_get(const struct chom_metrics *m, const char *name,
		      const char *const *values, double *value);

/* The text format: for each declared metric that has series, in the order
 * of declaration, one HELP and one TYPE line, then its series sorted by
 * label values, label values escaped. Freed by the caller. */
char *chom_metrics_format(const struct chom_metrics *m, struct chom_err *e);

/* chom_metrics_format() written with chom_metrics_write(). */
int chom_metrics_save(const struct chom_metrics *m, const char *dir,
		      const char *name, struct chom_err *e);

#endif
