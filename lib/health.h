/*
 * Health checks run concurrently in one event loop: HTTP(S) through libcurl
 * multi, tcp://, redis:// and mysql:// on non-blocking sockets watched by
 * the same curl_multi_poll(). Attempts are retried until a target is
 * healthy, its retries are spent or the deadline passes.
 */
#ifndef CHOM_HEALTH_H
#define CHOM_HEALTH_H

#include <regex.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "err.h"

enum chom_target_kind {
	CHOM_TARGET_HTTP, /* http:// and https:// */
	CHOM_TARGET_TCP,
	CHOM_TARGET_REDIS,
	CHOM_TARGET_MYSQL,
};

#define CHOM_HEALTH_MAX_RANGES 16
#define CHOM_HEALTH_MAX_HEADERS 32

/* One target with its own options, as on the command line or a -f line. */
struct chom_target {
	char url[2048];
	enum chom_target_kind kind;
	bool tls; /* https:// */
	char host[256];
	char port[8];

	/* What healthy means. */
	int status_lo[CHOM_HEALTH_MAX_RANGES],
	    status_hi[CHOM_HEALTH_MAX_RANGES];
	size_t nstatus;      /* 0: 200-399 */
	char body_src[256];  /* --expect-body, "" for none */
	regex_t body_re;     /* compiled when body_src is set */
	char json_path[256]; /* --expect-json PATH=VALUE, "" for none */
	char json_value[512];
	long max_latency_ms; /* 0: no limit */
	long cert_min_days;  /* -1: not checked */

	/* How to ask. */
	const char *headers[CHOM_HEALTH_MAX_HEADERS];
	size_t nheaders;
	const char *resolve;  /* HOST:PORT:ADDR, or NULL */
	const char *cacert;   /* or NULL: the system's */
	const char *password; /* redis AUTH, read from a file, or NULL */

	/* How long to keep asking. */
	long retries;    /* attempts after the first; -1: until deadline */
	double interval; /* seconds between attempts */
	double timeout;  /* seconds per attempt */

	/* The outcome. */
	bool ok;
	long status;       /* HTTP status, 0 for other kinds */
	double latency_ms; /* of the last attempt */
	int attempts;
	char reason[1024]; /* why not healthy, or a detail when healthy */
};

/* Parses URL into t->kind, host and port; code 2 on a bad target. */
int chom_target_parse(struct chom_target *t, const char *url,
		      struct chom_err *e);
/* "200-399,404": code 2 when malformed. */
int chom_target_set_status(struct chom_target *t, const char *list,
			   struct chom_err *e);
int chom_target_set_body(struct chom_target *t, const char *regex,
			 struct chom_err *e);
/* "PATH=VALUE", PATH dotted with array indexes: data.items.0.name. */
int chom_target_set_json(struct chom_target *t, const char *spec,
			 struct chom_err *e);
void chom_target_free(struct chom_target *t);

/* Whether a JSON document has VALUE at PATH (strings compared as text,
 * numbers, true/false/null by their JSON spelling). Sets why when not. */
bool chom_health_json_match(const char *doc, size_t len, const char *path,
			    const char *value, char *why, size_t whysize);

/*
 * Checks every target, at most `concurrency` at a time (0: all), until all
 * are decided or `deadline` seconds have passed (0: no deadline). Returns 0
 * when it ran (each target's ok says how it went), -1 on a setup error.
 */
int chom_health_run(struct chom_target *t, size_t n, size_t concurrency,
		    double deadline, volatile sig_atomic_t *stop,
		    struct chom_err *e);

#endif
