/* Text files for node_exporter's textfile collector, written atomically. */
#ifndef CHOM_METRICS_H
#define CHOM_METRICS_H

#include "err.h"

/* Writes DIR/NAME.prom (mode 0644) with text, replacing it in one step. */
int chom_metrics_write(const char *dir, const char *name, const char *text,
		       struct chom_err *e);

#endif
