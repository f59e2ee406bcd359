/*
 * One instant query of the Prometheus HTTP API (GET /api/v1/query), read
 * with jansson: a scalar, or a vector of exactly one series.
 */
#ifndef CHOM_PROM_H
#define CHOM_PROM_H

#include <signal.h>

#include "err.h"

/*
 * The value of query at base_url (http://host:9090, with or without a
 * path prefix). 0 with *value set (NAN and infinities included, as
 * Prometheus sent them); -1 with why in e (code 1) when the server could
 * not be asked, answered an error, or the result is empty or more than
 * one series. Gives up after timeout seconds, or when *stop is set.
 */
int chom_prom_query(const char *base_url, const char *query, double timeout,
		    volatile sig_atomic_t *stop, double *value,
		    struct chom_err *e);

#endif
