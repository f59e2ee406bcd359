/* chom-canary: move traffic to a canary in steps, judge each, promote or
 * roll back. */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "accesslog.h"
#include "canary.h"
#include "cli.h"
#include "config.h"
#include "exitcode.h"
#include "fsutil.h"
#include "lock.h"
#include "prom.h"
#include "upstream.h"

#define STATE_DIR_DEFAULT "/var/lib/chom"
#define MAX_STEPS 32
#define MAX_DIRECTIVES 16
#define TICK 0.2 /* seconds between looks at signals and --abort */

enum source_kind { SRC_LOG, SRC_PROBE, SRC_PROM };
static const char *const source_name[] = { "access-log", "probe",
					   "prometheus" };

struct opts {
	const char *upstream_file, *upstream, *stable, *canary;
	const char *test_cmd, *reload_cmd;
	const char *directives[MAX_DIRECTIVES];
	size_t ndirectives;
	int steps[MAX_STEPS];
	size_t nsteps;
	double interval, sample, wait_s;
	struct chom_judge judge;
	long long max_inconclusive;
	const char *access_log, *probe, *probe_host, *prometheus;
	const char *error_rate_query, *p95_query;
	double probe_rate;
	const char *state_dir;
	bool json;
};

/* One source of evidence and what it saw of each pool in this step. */
struct source {
	enum source_kind kind;
	struct chom_pool canary, stable;
	struct chom_pool_view cv, sv;       /* at the last sample */
	unsigned long long stable_answered; /* probes: HTTP answers */
	enum chom_verdict verdict;
	char why[512];
};

/* What a step came to, for the state file and the summary. */
struct step_result {
	int weight;
	enum chom_verdict verdict;
	bool judged;
	int samples;
	struct chom_pool_view cv, sv;
	char why[512];
};

struct run {
	const struct opts *o;
	struct chom_upstream up;
	char state_path[4096], lock_path[4096], abort_path[4096];
	struct source src[3];
	size_t nsrc;
	struct chom_alog log;
	bool log_open;
	CURLM *multi;
	struct probe *probes; /* in flight */
	size_t inflight;
	double next_probe;
	size_t step; /* index into o->steps */
	int weight;  /* the canary's weight now in effect */
	int step_serial;
	struct step_result res[MAX_STEPS];
	time_t started;
	double t0;
	const char *status; /* running, promoted, rolled-back, ... */
	char reason[1200];
	volatile sig_atomic_t *stop;
};

static void
usage(void)
{
	printf(
	    "Usage: chom-canary [OPTIONS] --upstream-file FILE --stable ADDR "
	    "--canary ADDR SOURCE...\n"
	    "       chom-canary [--state-dir DIR] [--upstream NAME] --status | "
	    "--abort\n"
	    "Move traffic from the stable pool to the canary in steps, judge "
	    "each step,\nthen promote the canary or roll back to stable.\n\n"
	    "      --upstream-file FILE  the nginx upstream file chom-canary "
	    "owns\n"
	    "      --upstream NAME       the upstream block's name (default "
	    "app)\n"
	    "      --stable ADDR         the stable server, as nginx logs it "
	    "(IP:PORT, unix:PATH)\n"
	    "      --canary ADDR         the canary server\n"
	    "      --upstream-directive TEXT  a line for the upstream block "
	    "(repeatable)\n"
	    "      --test-cmd CMD        check nginx's configuration (default "
	    "'nginx -t')\n"
	    "      --reload-cmd CMD      apply it (default 'nginx -s reload')\n"
	    "      --steps LIST          canary weights in percent (default "
	    "10,25,50,75,100)\n"
	    "      --interval DUR        time per step (default 5m)\n"
	    "      --sample DUR          time between verdicts (default 30s)\n"
	    "      --max-error-rate R    highest error rate (default 0.05; "
	    "or 5%%)\n"
	    "      --max-p95 DUR         highest p95 latency (default 2s)\n"
	    "      --min-requests N      fewer is inconclusive (default 50)\n"
	    "      --max-inconclusive N  inconclusive samples in a row that "
	    "fail a step (default 3)\n"
	    "      --alpha P             significance of the comparison "
	    "with stable (default 0.05)\n"
	    "Sources (one or more):\n"
	    "      --access-log FILE     nginx's access log (format in "
	    "chom-canary(1))\n"
	    "      --probe PATH          send requests to both pools "
	    "directly\n"
	    "      --probe-rate N        probes per second to each pool "
	    "(default 5)\n"
	    "      --probe-host NAME     Host header of the probes\n"
	    "      --prometheus URL      Prometheus server, with:\n"
	    "      --error-rate-query Q  PromQL; $pool is canary or stable, "
	    "$addr its ADDR\n"
	    "      --p95-query Q         PromQL, in seconds\n"
	    "Control:\n"
	    "      --status              show the canary in progress\n"
	    "      --abort               roll the canary in progress back\n"
	    "      --wait S              --abort: wait for the run to end "
	    "(default 60)\n"
	    "      --state-dir DIR       state, lock (default %s)\n"
	    "      --summary FILE        Markdown summary (default "
	    "$GITHUB_STEP_SUMMARY)\n"
	    "  -c, --config FILE         configuration file (default %s)\n"
	    "      --json                events as JSON lines\n"
	    "  -q, --quiet               print errors only\n"
	    "  -v, --verbose             a line per sample even when not on a "
	    "terminal\n"
	    "      --help                show this help\n"
	    "      --version             show the version\n\n"
	    "Exit status: 0 promoted, 1 rolled back, 2 usage, 3 busy, 4 "
	    "rollback failed.\nSee chom-canary(1).\n",
	    STATE_DIR_DEFAULT, CHOM_CONFIG_DEFAULT);
}

/* --- options --------------------------------------------------------- */

static int
parse_steps(const char *s, struct opts *o)
{
	char buf[256], *tok, *save = NULL;
	long long v;
	int last = 0;

	if (strlen(s) >= sizeof(buf))
		return -1;
	strcpy(buf, s);
	o->nsteps = 0;
	for (tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (o->nsteps == MAX_STEPS ||
		    chom_parse_ll(tok, 1, 100, &v) < 0 || v <= last)
			return -1;
		o->steps[o->nsteps++] = last = (int)v;
	}
	/* Promotion gives the canary all traffic: that step is judged too. */
	return o->nsteps && last == 100 ? 0 : -1;
}

static int
parse_rate(const char *s, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || !isfinite(v))
		return -1;
	if (!strcmp(end, "%"))
		v /= 100;
	else if (*end)
		return -1;
	if (v < 0 || v > 1)
		return -1;
	*out = v;
	return 0;
}

/* An option's or a config key's value into o; -1 with why in e. */
static int
set_opt(struct opts *o, const char *key, const char *val, struct chom_err *e)
{
	long long n;
	double d;

#define BAD(what)                                                              \
	chom_err_set(e, CHOM_EXIT_USAGE, "--%s: " what ": %s", key,            \
		     chom_quote(val))
	if (!strcmp(key, "steps"))
		return parse_steps(val, o) < 0
			   ? BAD("not increasing percentages 1-100 ending at "
				 "100")
			   : 0;
	if (!strcmp(key, "interval") || !strcmp(key, "sample") ||
	    !strcmp(key, "max-p95") || !strcmp(key, "wait")) {
		if (chom_parse_duration(val, &d) < 0 ||
		    (d <= 0 && strcmp(key, "wait")))
			return BAD("not a duration");
		*(!strcmp(key, "interval") ? &o->interval
		  : !strcmp(key, "sample") ? &o->sample
		  : !strcmp(key, "wait")   ? &o->wait_s
					   : &o->judge.max_p95) = d;
		return 0;
	}
	if (!strcmp(key, "max-error-rate"))
		return parse_rate(val, &o->judge.max_error_rate) < 0
			   ? BAD("not a rate between 0 and 1 (or 0-100%%)")
			   : 0;
	if (!strcmp(key, "alpha")) {
		if (parse_rate(val, &d) < 0 || d <= 0 || d >= 0.5)
			return BAD("not a significance level above 0, below "
				   "0.5");
		o->judge.alpha = d;
		return 0;
	}
	if (!strcmp(key, "min-requests") || !strcmp(key, "max-inconclusive")) {
		if (chom_parse_ll(val, 1, 1000000000, &n) < 0)
			return BAD("not a number from 1");
		if (!strcmp(key, "min-requests"))
			o->judge.min_requests = (unsigned long long)n;
		else
			o->max_inconclusive = n;
		return 0;
	}
	if (!strcmp(key, "probe-rate")) {
		char *end;

		errno = 0;
		d = strtod(val, &end);
		if (errno || end == val || *end || !(d > 0 && d <= 1000))
			return BAD("not a rate per second, above 0 and at "
				   "most 1000");
		o->probe_rate = d;
		return 0;
	}
	if (!strcmp(key, "probe") && val[0] != '/')
		return BAD("not a path starting with '/'");
	if (!strcmp(key, "upstream-directive")) {
		if (o->ndirectives == MAX_DIRECTIVES)
			return chom_err_set(e, CHOM_EXIT_USAGE,
					    "--%s: at most %d", key,
					    MAX_DIRECTIVES);
		if (!*val || strpbrk(val, ";{}\n#"))
			return BAD("one directive, without ';', braces or "
				   "'#'");
		o->directives[o->ndirectives++] = val;
		return 0;
	}
	if (!strcmp(key, "upstream")) {
		if (!*val || strlen(val) > 64 ||
		    val[strspn(val, "abcdefghijklmnopqrstuvwxyz"
				    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")])
			return BAD("not a name of [A-Za-z0-9_-]");
		o->upstream = val;
		return 0;
	}
	if (!strcmp(key, "stable") || !strcmp(key, "canary")) {
		if (!*val || strpbrk(val, " \t;{}\n#\"'"))
			return BAD("not a server address");
		*(!strcmp(key, "stable") ? &o->stable : &o->canary) = val;
		return 0;
	}
	{
		static const struct {
			const char *key;
			size_t off;
		} str[] = {
			{ "upstream-file",
			  offsetof(struct opts, upstream_file) },
			{ "test-cmd", offsetof(struct opts, test_cmd) },
			{ "reload-cmd", offsetof(struct opts, reload_cmd) },
			{ "access-log", offsetof(struct opts, access_log) },
			{ "probe", offsetof(struct opts, probe) },
			{ "probe-host", offsetof(struct opts, probe_host) },
			{ "prometheus", offsetof(struct opts, prometheus) },
			{ "error-rate-query",
			  offsetof(struct opts, error_rate_query) },
			{ "p95-query", offsetof(struct opts, p95_query) },
			{ "state-dir", offsetof(struct opts, state_dir) },
		};
		size_t i;

		for (i = 0; i < sizeof(str) / sizeof(str[0]); i++)
			if (!strcmp(key, str[i].key)) {
				*(const char **)((char *)o + str[i].off) = val;
				return 0;
			}
	}
#undef BAD
	return chom_err_set(e, CHOM_EXIT_USAGE, "unknown setting '%s'", key);
}

static int
config_key(void *ctx, const char *section, const char *key, const char *value,
	   struct chom_err *e)
{
	char name[64], *p;
	const char *copy;

	if (!strcmp(section, "global")) /* base: not chom-canary's */
		return 0;
	if (strlen(key) >= sizeof(name) || !strcmp(key, "status") ||
	    !strcmp(key, "abort") || !strcmp(key, "wait"))
		return chom_err_set(e, CHOM_EXIT_USAGE,
				    "unknown key '%s' in [canary]", key);
	snprintf(name, sizeof(name), "%s", key);
	for (p = name; *p; p++)
		if (*p == '_')
			*p = '-';
	if (!(copy = chom_config_keep(value)))
		return chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
	if (set_opt(ctx, name, copy, e) < 0) {
		if (strstr(e->msg, "unknown setting"))
			return chom_err_set(e, CHOM_EXIT_USAGE,
					    "unknown key '%s' in [canary]",
					    key);
		return -1;
	}
	return 0;
}

/* --- state ----------------------------------------------------------- */

static json_t *
jnum(double v)
{
	return isnan(v) || v < 0 ? json_null() : json_real(v);
}

static json_t *
view_json(const struct chom_pool_view *v)
{
	return json_pack(
	    "{s:o, s:o, s:o, s:o}", "requests",
	    v->counted ? json_integer((json_int_t)v->requests) : json_null(),
	    "errors",
	    v->counted ? json_integer((json_int_t)v->errors) : json_null(),
	    "error_rate", jnum(v->error_rate), "p95", jnum(v->p95));
}

static json_t *
step_json(const struct run *r, size_t i)
{
	const struct step_result *s = &r->res[i];

	return json_pack("{s:s, s:I, s:I, s:i, s:s, s:i, s:o, s:o, s:s}",
			 "event", "step", "step", (json_int_t)i + 1, "steps",
			 (json_int_t)r->o->nsteps, "weight", s->weight,
			 "verdict", chom_verdict_name(s->verdict), "samples",
			 s->samples, "canary", view_json(&s->cv), "stable",
			 view_json(&s->sv), "reason", s->why);
}

static int
write_state(struct run *r, struct chom_err *e)
{
	const struct opts *o = r->o;
	char started[32], updated[32], host[128] = "?";
	json_t *st, *steps, *hist, *dirs;
	size_t i;
	char *text;
	int rc;

	gethostname(host, sizeof(host) - 1);
	chom_iso_time(r->started, started, sizeof(started));
	chom_iso_time(time(NULL), updated, sizeof(updated));
	steps = json_array();
	for (i = 0; i < o->nsteps; i++)
		json_array_append_new(steps, json_integer(o->steps[i]));
	hist = json_array();
	for (i = 0; i < o->nsteps; i++)
		if (r->res[i].judged)
			json_array_append_new(hist, step_json(r, i));
	dirs = json_array();
	for (i = 0; i < o->ndirectives; i++)
		json_array_append_new(dirs, json_string(o->directives[i]));
	st = json_pack(
	    "{s:s, s:s, s:s, s:s, s:i, s:s, s:s, s:s, s:s, s:o, "
	    "s:I, s:i, s:s, s:o, s:s, s:s, s:o}",
	    "upstream", o->upstream, "upstream_file", o->upstream_file,
	    "stable", o->stable, "canary", o->canary, "pid", (int)getpid(),
	    "host", host, "started", started, "updated", updated, "status",
	    r->status, "steps", steps, "step", (json_int_t)r->step + 1,
	    "weight", r->weight, "reason", r->reason, "history", hist,
	    "test_cmd", o->test_cmd ? o->test_cmd : "", "reload_cmd",
	    o->reload_cmd ? o->reload_cmd : "", "upstream_directives", dirs);
	if (!st || !(text = json_dumps(st, JSON_COMPACT))) {
		json_decref(st);
		return chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
	}
	json_decref(st);
	rc = chom_atomic_write(r->state_path, text, strlen(text), 0644, e);
	free(text);
	return rc;
}

static void
save_state(struct run *r)
{
	struct chom_err e;

	if (write_state(r, &e) < 0)
		chom_warn("state not saved: %s", e.msg);
}

static void
event(const struct run *r, json_t *obj)
{
	if (r->o->json && obj) {
		chom_json_line(obj);
		fflush(stdout);
	} else {
		json_decref(obj);
	}
}

/* --- the upstream file ----------------------------------------------- */

/* Puts the canary at weight w; -1 with e as chom_upstream_apply() sets it. */
static int
set_weight(struct run *r, int w, const char *note, bool interruptible,
	   struct chom_err *e)
{
	char text[8192], stamp[32], line[512];

	chom_iso_time(time(NULL), stamp, sizeof(stamp));
	snprintf(line, sizeof(line), "%s, %s", note, stamp);
	if (chom_upstream_render(&r->up, w, line, text, sizeof(text), e) < 0)
		return -1;
	if (chom_upstream_apply(&r->up, text, interruptible ? r->stop : NULL,
				e) < 0)
		return -1;
	r->weight = w;
	return 0;
}

/* Back to stable 100%. Returns the exit status: code (1, 130, 143) when
 * stable is back, 4 when it is not. */
static int
roll_back(struct run *r, int code, const char *why)
{
	struct chom_err e;

	snprintf(r->reason, sizeof(r->reason), "%s", why);
	if (set_weight(r, 0, "rolled back: stable 100%", false, &e) < 0) {
		/* Nothing reloaded has moved nginx off stable alone, and the
		 * file put back says so: the safe state is in place. */
		if (r->weight == 0 && e.code != CHOM_EXIT_UNSAFE &&
		    chom_upstream_weight(&r->up) == 0) {
			r->status = "rolled-back";
			chom_error("%s; stable %s has 100%% (the rollback's "
				   "own change failed: %s)",
				   why, r->o->stable, e.msg);
			return code;
		}
		chom_error("%s; rolling back failed: %s", why, e.msg);
		snprintf(r->reason, sizeof(r->reason),
			 "%s; rolling back failed: %s", why, e.msg);
		r->status = "rollback-failed";
		return CHOM_EXIT_UNSAFE;
	}
	r->status = "rolled-back";
	if (code == CHOM_EXIT_OK)
		chom_info("%s; rolled back: stable %s has 100%%", why,
			  r->o->stable);
	else
		chom_error("%s; rolled back: stable %s has 100%%", why,
			   r->o->stable);
	return code;
}

/* --- sources --------------------------------------------------------- */

static void
on_log_line(void *ctx, const struct chom_alog_rec *rec)
{
	struct run *r = ctx;
	struct source *s = &r->src[0];
	size_t sl = strlen(r->o->stable), cl = strlen(r->o->canary);

	if (rec->addrlen == cl && !memcmp(rec->addr, r->o->canary, cl))
		chom_pool_add(&s->canary, rec->status, rec->seconds);
	else if (rec->addrlen == sl && !memcmp(rec->addr, r->o->stable, sl))
		chom_pool_add(&s->stable, rec->status, rec->seconds);
}

struct probe {
	struct run *r;
	bool canary;
	int serial; /* the step it was sent in */
	double sent;
	struct curl_slist *headers;
	CURL *easy;
	struct probe *prev, *next; /* those in flight */
};

static size_t
discard(char *p, size_t size, size_t n, void *ctx)
{
	(void)p, (void)ctx;
	return size * n;
}

static void
probe_send(struct run *r, bool canary)
{
	const char *addr = canary ? r->o->canary : r->o->stable;
	struct probe *p;
	char url[4200], host[300];
	double timeout = r->o->judge.max_p95 * 2;
	CURL *c;

	if (r->inflight >= 256) /* a pool that hangs: do not pile up */
		return;
	if (!(p = calloc(1, sizeof(*p))) || !(c = curl_easy_init())) {
		free(p);
		return;
	}
	*p = (struct probe){ r,    canary, r->step_serial, chom_mono(),
			     NULL, c,      NULL,           r->probes };
	if (!strncmp(addr, "unix:", 5)) {
		curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, addr + 5);
		snprintf(url, sizeof(url), "http://localhost%s", r->o->probe);
	} else {
		snprintf(url, sizeof(url), "http://%s%s", addr, r->o->probe);
	}
	if (r->o->probe_host) {
		snprintf(host, sizeof(host), "Host: %s", r->o->probe_host);
		p->headers = curl_slist_append(NULL, host);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, p->headers);
	}
	/* A probe slower than twice the limit is as good as failed. */
	if (timeout < 1)
		timeout = 1;
	if (timeout > 10)
		timeout = 10;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PRIVATE, p);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(timeout * 1000));
	curl_easy_setopt(c, CURLOPT_USERAGENT, "chom-canary probe");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	if (curl_multi_add_handle(r->multi, c) != CURLM_OK) {
		curl_slist_free_all(p->headers);
		curl_easy_cleanup(c);
		free(p);
		return;
	}
	if (r->probes)
		r->probes->prev = p;
	r->probes = p;
	r->inflight++;
}

static void
probe_free(struct run *r, struct probe *p)
{
	if (p->prev)
		p->prev->next = p->next;
	else
		r->probes = p->next;
	if (p->next)
		p->next->prev = p->prev;
	curl_multi_remove_handle(r->multi, p->easy);
	curl_easy_cleanup(p->easy);
	curl_slist_free_all(p->headers);
	free(p);
	r->inflight--;
}

/* Counts the probes that ended: a status >= 500, or no answer, is an
 * error; the time is until the end of the answer. */
static void
probe_reap(struct run *r)
{
	struct source *s = NULL;
	struct probe *p;
	CURLMsg *m;
	size_t i;
	int left;

	for (i = 0; i < r->nsrc; i++)
		if (r->src[i].kind == SRC_PROBE)
			s = &r->src[i];
	while ((m = curl_multi_info_read(r->multi, &left))) {
		long code = 0;
		double secs;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE,
				  (char **)&p);
		curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE,
				  &code);
		secs = chom_mono() - p->sent;
		if (m->data.result != CURLE_OK)
			code = 599; /* no answer: the pool failed it */
		if (s && p->serial == r->step_serial) {
			chom_pool_add(p->canary ? &s->canary : &s->stable,
				      (int)code, secs);
			s->stable_answered += !p->canary && code != 599;
		}
		probe_free(r, p);
	}
}

static void
probe_drop_all(struct run *r)
{
	while (r->probes)
		probe_free(r, r->probes);
}

/* query with $pool and $addr replaced; NULL when out of memory. */
static char *
subst(const char *query, const char *pool, const char *addr)
{
	size_t n = 1, pl = strlen(pool), al = strlen(addr);
	const char *p;
	char *out, *o;

	for (p = query; *p; p++)
		n += !strncmp(p, "$pool", 5)   ? pl
		     : !strncmp(p, "$addr", 5) ? al
					       : 1;
	if (!(out = malloc(n)))
		return NULL;
	for (p = query, o = out; *p;) {
		if (!strncmp(p, "$pool", 5)) {
			memcpy(o, pool, pl);
			o += pl, p += 5;
		} else if (!strncmp(p, "$addr", 5)) {
			memcpy(o, addr, al);
			o += al, p += 5;
		} else {
			*o++ = *p++;
		}
	}
	*o = '\0';
	return out;
}

/* One query for one pool: its value, NAN when there is none (why kept). */
static double
prom_value(struct run *r, const char *query, bool canary, char *why,
	   size_t size)
{
	struct chom_err e;
	double v, timeout = r->o->sample < 5 ? r->o->sample : 5;
	char *q;

	if (!query)
		return -1; /* not asked */
	if (!(q = subst(query, canary ? "canary" : "stable",
			canary ? r->o->canary : r->o->stable))) {
		snprintf(why, size, "out of memory");
		return NAN;
	}
	if (chom_prom_query(r->o->prometheus, q, timeout < 1 ? 1 : timeout,
			    r->stop, &v, &e) < 0) {
		if (canary && !why[0])
			snprintf(why, size, "%.500s", e.msg);
		v = NAN;
	} else if (isnan(v) || isinf(v) || v < 0) {
		if (canary && !why[0])
			snprintf(why, size, "prometheus: the query gave %g", v);
		v = NAN;
	}
	free(q);
	return v;
}

static void
prom_sample(struct run *r, struct source *s)
{
	const struct opts *o = r->o;
	char err[512] = "";

	s->cv = (struct chom_pool_view){ .counted = false };
	s->sv = s->cv;
	s->cv.error_rate =
	    prom_value(r, o->error_rate_query, true, err, sizeof(err));
	s->cv.p95 = prom_value(r, o->p95_query, true, err, sizeof(err));
	s->sv.error_rate =
	    prom_value(r, o->error_rate_query, false, err, sizeof(err));
	s->sv.p95 = prom_value(r, o->p95_query, false, err, sizeof(err));
	s->verdict = chom_judge_values(&o->judge, &s->cv, &s->sv, s->why,
				       sizeof(s->why));
	if (s->verdict == CHOM_INCONCLUSIVE && err[0])
		snprintf(s->why, sizeof(s->why), "%s", err);
}

/* --- samples and steps ------------------------------------------------ */

static void
fmt_view(const struct chom_pool_view *v, char *out, size_t size)
{
	char req[32] = "", err[32] = "-", p95[32] = "-";

	if (v->counted)
		snprintf(req, sizeof(req), "%llu req ", v->requests);
	if (!isnan(v->error_rate) && v->error_rate >= 0)
		snprintf(err, sizeof(err), "%.1f%%", v->error_rate * 100);
	if (!isnan(v->p95) && v->p95 >= 0)
		snprintf(p95, sizeof(p95), "%.0fms", v->p95 * 1000);
	snprintf(out, size, "%s%s err p95 %s", req, err, p95);
}

/* Reads and judges every source; the worst verdict. */
static enum chom_verdict
sample(struct run *r, double elapsed)
{
	const struct opts *o = r->o;
	enum chom_verdict worst = CHOM_PASS;
	struct step_result *res = &r->res[r->step];
	bool passed = false;
	struct chom_err e;
	size_t i, wi = 0;

	if (r->log_open && chom_alog_read(&r->log, on_log_line, r, &e) < 0)
		chom_warn("%s", e.msg);
	for (i = 0; i < r->nsrc; i++) {
		struct source *s = &r->src[i];
		char cs[96], ss[96];

		if (s->kind == SRC_PROM) {
			prom_sample(r, s);
		} else {
			s->cv = chom_pool_view(&s->canary);
			s->sv = chom_pool_view(&s->stable);
			s->verdict =
			    chom_judge_counts(&o->judge, &s->canary, &s->stable,
					      s->why, sizeof(s->why));
		}
		if (s->kind == SRC_PROBE && s->verdict != CHOM_FAIL &&
		    s->stable.requests && s->stable_answered == 0) {
			/* Not a pass: nothing answered, stable included (a
			 * FastCGI pool, or a wrong address). */
			s->verdict = CHOM_INCONCLUSIVE;
			snprintf(s->why, sizeof(s->why),
				 "stable %s answers no probe: --probe needs "
				 "HTTP servers",
				 o->stable);
		}
		passed |= s->verdict == CHOM_PASS;
		if (s->verdict > worst) {
			worst = s->verdict;
			wi = i;
		}
		fmt_view(&s->cv, cs, sizeof(cs));
		fmt_view(&s->sv, ss, sizeof(ss));
		chom_info(
		    "step %zu/%zu %d%%%s%s: canary %s | stable %s: %s%s%s",
		    r->step + 1, o->nsteps, r->weight, r->nsrc > 1 ? " " : "",
		    r->nsrc > 1 ? source_name[s->kind] : "", cs, ss,
		    chom_verdict_name(s->verdict), s->why[0] ? ": " : "",
		    s->why);
		event(r, json_pack("{s:s, s:s, s:I, s:I, s:i, s:f, s:s, s:s, "
				   "s:o, s:o}",
				   "event", "sample", "source",
				   source_name[s->kind], "step",
				   (json_int_t)r->step + 1, "steps",
				   (json_int_t)o->nsteps, "weight", r->weight,
				   "elapsed", elapsed, "verdict",
				   chom_verdict_name(s->verdict), "reason",
				   s->why, "canary", view_json(&s->cv),
				   "stable", view_json(&s->sv)));
	}
	/* A failing source fails the sample; otherwise one source with
	 * enough evidence is enough. */
	if (worst == CHOM_INCONCLUSIVE && passed) {
		worst = CHOM_PASS;
		for (wi = 0; r->src[wi].verdict != CHOM_PASS; wi++)
			;
	}
	res->weight = r->weight;
	res->verdict = worst;
	res->judged = true;
	res->samples++;
	res->cv = r->src[wi].cv;
	res->sv = r->src[wi].sv;
	memcpy(res->why, r->src[wi].why, sizeof(res->why));
	return worst;
}

static bool
abort_asked(const struct run *r)
{
	return access(r->abort_path, F_OK) == 0;
}

static void
step_start(struct run *r)
{
	struct chom_err e;
	size_t i;

	/* What the log holds so far belongs to the step before. */
	for (i = 0; i < r->nsrc; i++) {
		chom_pool_reset(&r->src[i].canary);
		chom_pool_reset(&r->src[i].stable);
	}
	if (r->log_open && chom_alog_read(&r->log, on_log_line, r, &e) < 0)
		chom_warn("%s", e.msg);
	for (i = 0; i < r->nsrc; i++) {
		chom_pool_reset(&r->src[i].canary);
		chom_pool_reset(&r->src[i].stable);
		r->src[i].stable_answered = 0;
	}
	r->step_serial++;
}

static int
interrupted(struct run *r)
{
	char why[64];
	int sig = *r->stop;

	snprintf(why, sizeof(why), "interrupted by %s",
		 sig == SIGINT ? "SIGINT" : "SIGTERM");
	return roll_back(r, chom_cli_signal_status(sig), why);
}

/* Runs step r->step to its verdict: 0 passed, else the exit status. */
static int
run_step(struct run *r)
{
	const struct opts *o = r->o;
	struct step_result *res = &r->res[r->step];
	double t0 = chom_mono(), next = t0 + o->sample, t;
	long long inconclusive = 0;
	char why[1200];
	int w = o->steps[r->step];

	snprintf(why, sizeof(why), "step %zu/%zu: canary %d%%, stable %d%%",
		 r->step + 1, o->nsteps, w, 100 - w);
	{
		struct chom_err e;

		if (set_weight(r, w, why, true, &e) < 0) {
			if (e.code == CHOM_EXIT_UNSAFE) {
				chom_error("%s", e.msg);
				snprintf(r->reason, sizeof(r->reason), "%s",
					 e.msg);
				r->status = "rollback-failed";
				return CHOM_EXIT_UNSAFE;
			}
			if (*r->stop)
				return interrupted(r);
			return roll_back(r, CHOM_EXIT_FAIL, e.msg);
		}
	}
	step_start(r);
	*res = (struct step_result){ .weight = w };
	chom_info("step %zu/%zu: canary %s %d%%, stable %s %d%%", r->step + 1,
		  o->nsteps, o->canary, w, o->stable, 100 - w);
	event(r, json_pack("{s:s, s:I, s:I, s:i}", "event", "step-start",
			   "step", (json_int_t)r->step + 1, "steps",
			   (json_int_t)o->nsteps, "weight", w));
	save_state(r);
	r->next_probe = t0;
	for (;;) {
		double wake;

		t = chom_mono();
		if (*r->stop)
			return interrupted(r);
		if (abort_asked(r)) {
			unlink(r->abort_path);
			return roll_back(r, CHOM_EXIT_FAIL,
					 "aborted by chom-canary --abort");
		}
		/* Behind by more than a second (a slow Prometheus): skip the
		 * probes missed rather than send them in a burst. */
		if (o->probe && r->next_probe < t - 1)
			r->next_probe = t;
		if (o->probe)
			for (; r->next_probe <= t;
			     r->next_probe += 1 / o->probe_rate) {
				probe_send(r, true);
				probe_send(r, false);
			}
		if (t >= next) {
			enum chom_verdict v = sample(r, t - t0);

			save_state(r);
			if (v == CHOM_FAIL) {
				snprintf(why, sizeof(why),
					 "step %zu/%zu (%d%%): %s", r->step + 1,
					 o->nsteps, w, res->why);
				return roll_back(r, CHOM_EXIT_FAIL, why);
			}
			if (v == CHOM_INCONCLUSIVE &&
			    ++inconclusive >= o->max_inconclusive) {
				res->verdict = CHOM_FAIL;
				snprintf(why, sizeof(why),
					 "step %zu/%zu (%d%%): %lld "
					 "inconclusive samples in a row: %s",
					 r->step + 1, o->nsteps, w,
					 inconclusive, res->why);
				return roll_back(r, CHOM_EXIT_FAIL, why);
			}
			if (v == CHOM_PASS) {
				inconclusive = 0;
				if (t - t0 >= o->interval - 1e-3)
					return 0;
			}
			next += o->sample;
			if (next < t)
				next = t + o->sample;
		}
		wake = next;
		if (o->probe && r->next_probe < wake)
			wake = r->next_probe;
		if (t + TICK < wake)
			wake = t + TICK;
		if (r->multi) {
			int running;

			curl_multi_poll(
			    r->multi, NULL, 0,
			    wake > t ? (int)((wake - t) * 1000) + 1 : 0, NULL);
			curl_multi_perform(r->multi, &running);
			probe_reap(r);
		} else if (wake > t) {
			struct timespec ts = {
				(time_t)(wake - t),
				(long)(((wake - t) -
					(double)(time_t)(wake - t)) *
				       1e9),
			};

			nanosleep(&ts, NULL);
		}
	}
}

/* --- the summary ------------------------------------------------------ */

static void
md_view(const struct chom_pool_view *v, char *out, size_t size)
{
	char req[32] = "-", err[32] = "-", p95[32] = "-";

	if (v->counted)
		snprintf(req, sizeof(req), "%llu", v->requests);
	if (!isnan(v->error_rate) && v->error_rate >= 0)
		snprintf(err, sizeof(err), "%.2f%%", v->error_rate * 100);
	if (!isnan(v->p95) && v->p95 >= 0)
		snprintf(p95, sizeof(p95), "%.0f ms", v->p95 * 1000);
	snprintf(out, size, "%s | %s | %s", req, err, p95);
}

static void append(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
append(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(*buf ? *buf + *len : NULL, *buf ? *cap - *len : 0,
			      fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if (*buf && (size_t)n < *cap - *len) {
			*len += (size_t)n;
			return;
		}
		{
			size_t ncap = (*cap ? *cap * 2 : 4096) + (size_t)n;
			char *p = realloc(*buf, ncap);

			if (!p)
				return;
			*buf = p;
			*cap = ncap;
		}
	}
}

/* p95 in ms for the chart: 0 where unknown (Mermaid takes numbers only). */
static double
chart_ms(double p95)
{
	return isnan(p95) || p95 < 0 ? 0 : p95 * 1000;
}

static void
write_summary(const struct run *r, const char *path, int code)
{
	const struct opts *o = r->o;
	char *t = NULL, cell[1100], cv[128], sv[128];
	size_t len = 0, cap = 0, i, n = 0;
	struct chom_err e;

	if (!path)
		return;
	for (i = 0; i < o->nsteps; i++)
		if (r->res[i].judged)
			n = i + 1;
	chom_md_cell(r->reason, cell, sizeof(cell));
	append(&t, &len, &cap,
	       "### chom-canary: %s\n\n"
	       "Upstream `%s`: stable `%s`, canary `%s`. %s%s (exit %d, %.0f "
	       "s)\n\n"
	       "| step | canary weight | verdict | samples | canary requests | "
	       "canary error rate | canary p95 | stable requests | stable "
	       "error rate | "
	       "stable p95 |\n|---|---|---|---|---|---|---|---|---|---|\n",
	       !strcmp(r->status, "promoted") ? "promoted" : r->status,
	       o->upstream, o->stable, o->canary,
	       !strcmp(r->status, "promoted")
		   ? "The canary is the stable pool: "
		   : "",
	       cell, code, chom_mono() - r->t0);
	for (i = 0; i < n; i++) {
		const struct step_result *s = &r->res[i];

		md_view(&s->cv, cv, sizeof(cv));
		md_view(&s->sv, sv, sizeof(sv));
		append(&t, &len, &cap, "| %zu | %d%% | %s | %d | %s | %s |\n",
		       i + 1, s->weight, chom_verdict_name(s->verdict),
		       s->samples, cv, sv);
	}
	if (n) {
		append(&t, &len, &cap,
		       "\n```mermaid\nxychart-beta\n"
		       "    title \"p95 latency per step (ms): canary, then "
		       "stable\"\n    x-axis [");
		for (i = 0; i < n; i++)
			append(&t, &len, &cap, "%s\"%d%%\"", i ? ", " : "",
			       r->res[i].weight);
		append(&t, &len, &cap,
		       "]\n    y-axis \"p95 (ms)\"\n    line [");
		for (i = 0; i < n; i++)
			append(&t, &len, &cap, "%s%.0f", i ? ", " : "",
			       chart_ms(r->res[i].cv.p95));
		append(&t, &len, &cap, "]\n    line [");
		for (i = 0; i < n; i++)
			append(&t, &len, &cap, "%s%.0f", i ? ", " : "",
			       chart_ms(r->res[i].sv.p95));
		append(&t, &len, &cap, "]\n```\n");
	}
	append(&t, &len, &cap, "\n");
	if (t && chom_summary_append(path, t, &e) < 0)
		chom_warn("%s", e.msg);
	free(t);
}

/* --- a canary run ----------------------------------------------------- */

static int
state_paths(struct run *r, const struct opts *o, struct chom_err *e)
{
	if (chom_path(r->state_path, sizeof(r->state_path), e,
		      "%s/canary-%s.json", o->state_dir, o->upstream) < 0 ||
	    chom_path(r->lock_path, sizeof(r->lock_path), e,
		      "%s/canary-%s.lock", o->state_dir, o->upstream) < 0 ||
	    chom_path(r->abort_path, sizeof(r->abort_path), e,
		      "%s/canary-%s.abort", o->state_dir, o->upstream) < 0)
		return -1;
	return 0;
}

static void
set_upstream(struct run *r, const struct opts *o)
{
	r->up = (struct chom_upstream){
		.path = o->upstream_file,
		.name = o->upstream,
		.stable = o->stable,
		.canary = o->canary,
		.directives = o->directives,
		.ndirectives = o->ndirectives,
		.test_cmd = o->test_cmd,
		.reload_cmd = o->reload_cmd,
	};
}

static int
do_run(const struct opts *o, const char *summary)
{
	struct run *r = calloc(1, sizeof(*r));
	struct chom_lock lock = { -1 };
	struct chom_err e;
	int code = 0;
	size_t i;

	if (!r) {
		chom_error("out of memory");
		return CHOM_EXIT_FAIL;
	}
	r->o = o;
	r->status = "running";
	r->started = time(NULL);
	r->t0 = chom_mono();
	set_upstream(r, o);
	/* What nginx runs on now, as far as the file tells: 0 is stable
	 * alone, -1 not known. */
	r->weight = chom_upstream_weight(&r->up);
	if (state_paths(r, o, &e) < 0 ||
	    chom_mkdir_p(o->state_dir, 0755, &e) < 0 ||
	    chom_lock_acquire(&lock, r->lock_path, 0, &e) < 0) {
		free(r);
		if (e.code == CHOM_EXIT_BUSY)
			chom_error("a canary of upstream %s is in progress: %s",
				   o->upstream, e.msg);
		else
			chom_error("%s", e.msg);
		return e.code;
	}
	unlink(r->abort_path); /* one left by an --abort that came late */
	if (o->access_log) {
		if (chom_alog_open(&r->log, o->access_log, &e) < 0) {
			code = chom_report(&e);
			goto out;
		}
		r->log_open = true;
		r->src[r->nsrc++].kind = SRC_LOG;
	}
	if (o->probe) {
		if (!(r->multi = curl_multi_init())) {
			chom_error("out of memory");
			code = CHOM_EXIT_FAIL;
			goto out;
		}
		r->src[r->nsrc++].kind = SRC_PROBE;
	}
	if (o->prometheus)
		r->src[r->nsrc++].kind = SRC_PROM;
	for (i = 0; i < r->nsrc; i++) {
		chom_pool_init(&r->src[i].canary);
		chom_pool_init(&r->src[i].stable);
	}
	r->stop = chom_cli_catch_signals();

	for (r->step = 0; r->step < o->nsteps; r->step++) {
		code = run_step(r);
		if (r->res[r->step].judged)
			event(r, step_json(r, r->step));
		if (code)
			break;
	}
	if (!code) {
		char note[600];

		r->step = o->nsteps - 1;
		snprintf(note, sizeof(note), "promoted: %s is the stable pool",
			 o->canary);
		if (set_weight(r, 100, note, false, &e) < 0) {
			code = e.code == CHOM_EXIT_UNSAFE
				   ? (r->status = "rollback-failed",
				      chom_error("%s", e.msg), CHOM_EXIT_UNSAFE)
				   : roll_back(r, CHOM_EXIT_FAIL, e.msg);
		} else {
			r->status = "promoted";
			snprintf(r->reason, sizeof(r->reason),
				 "every step passed");
			chom_info("promoted: %s is the stable pool", o->canary);
		}
	}
	save_state(r);
	event(r, json_pack("{s:s, s:s, s:s, s:i, s:f}", "event", "result",
			   "result", r->status, "reason", r->reason, "exit",
			   code, "seconds", chom_mono() - r->t0));
	if (!o->json) {
		if (!strcmp(r->status, "promoted"))
			printf("promoted %s\n", o->canary);
		else
			printf("%s: %s\n",
			       !strcmp(r->status, "rolled-back")
				   ? "rolled back"
				   : "rollback failed",
			       r->reason);
	}
	write_summary(r, chom_summary_path(summary), code);
out:
	probe_drop_all(r);
	if (r->multi)
		curl_multi_cleanup(r->multi);
	if (r->log_open)
		chom_alog_close(&r->log);
	for (i = 0; i < r->nsrc; i++) {
		chom_pool_free(&r->src[i].canary);
		chom_pool_free(&r->src[i].stable);
	}
	chom_lock_release(&lock);
	free(r);
	return code;
}

/* --- --status and --abort ----------------------------------------------- */

static json_t *
load_state(const char *path)
{
	json_error_t je;
	json_t *st = json_load_file(path, 0, &je);

	if (!st && errno != ENOENT && access(path, F_OK) == 0)
		chom_error("%s: %s", path, je.text);
	return st;
}

static const char *
jstr(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

/* 1 when a run holds the lock, 0 when not, -1 on error (reported). */
static int
running(const char *lock_path)
{
	struct chom_lock l = { -1 };
	struct chom_err e;

	if (chom_lock_acquire(&l, lock_path, 0, &e) == 0) {
		chom_lock_release(&l);
		return 0;
	}
	if (e.code == CHOM_EXIT_BUSY)
		return 1;
	chom_error("%s", e.msg);
	return -1;
}

static void
print_view(const char *name, json_t *v)
{
	json_t *req = json_object_get(v, "requests"),
	       *er = json_object_get(v, "error_rate"),
	       *p95 = json_object_get(v, "p95");

	printf(" %s", name);
	if (json_is_integer(req))
		printf(" %" JSON_INTEGER_FORMAT " req",
		       json_integer_value(req));
	if (json_is_number(er))
		printf(" %.2f%% err", json_number_value(er) * 100);
	if (json_is_number(p95))
		printf(" p95 %.0fms", json_number_value(p95) * 1000);
}

static int
do_status(const struct opts *o, bool json)
{
	struct run r;
	struct chom_err e;
	json_t *st, *h;
	size_t i;
	int live;

	if (state_paths(&r, o, &e) < 0)
		return chom_report(&e);
	if (!(st = load_state(r.state_path))) {
		chom_error("no canary of upstream %s (no %s)", o->upstream,
			   r.state_path);
		return CHOM_EXIT_FAIL;
	}
	if ((live = running(r.lock_path)) < 0) {
		json_decref(st);
		return CHOM_EXIT_FAIL;
	}
	if (json) {
		json_object_set_new(st, "running", json_boolean(live));
		chom_json_line(st);
		return CHOM_EXIT_OK;
	}
	printf("upstream %s: %s", jstr(st, "upstream"), jstr(st, "status"));
	if (!strcmp(jstr(st, "status"), "running"))
		printf(live ? " (pid %d on %s)"
			    : " (no longer: pid %d on %s stopped before the "
			      "end; --abort rolls back)",
		       (int)json_integer_value(json_object_get(st, "pid")),
		       jstr(st, "host"));
	printf(", step %d/%zu, canary %d%%\n",
	       (int)json_integer_value(json_object_get(st, "step")),
	       json_array_size(json_object_get(st, "steps")),
	       (int)json_integer_value(json_object_get(st, "weight")));
	printf("stable %s, canary %s, file %s\nstarted %s, updated %s\n",
	       jstr(st, "stable"), jstr(st, "canary"),
	       jstr(st, "upstream_file"), jstr(st, "started"),
	       jstr(st, "updated"));
	if (*jstr(st, "reason"))
		printf("reason: %s\n", jstr(st, "reason"));
	json_array_foreach(json_object_get(st, "history"), i, h)
	{
		printf("step %d %d%%: %s, %d samples;",
		       (int)json_integer_value(json_object_get(h, "step")),
		       (int)json_integer_value(json_object_get(h, "weight")),
		       jstr(h, "verdict"),
		       (int)json_integer_value(json_object_get(h, "samples")));
		print_view("canary", json_object_get(h, "canary"));
		printf(" |");
		print_view("stable", json_object_get(h, "stable"));
		printf("\n");
	}
	json_decref(st);
	return CHOM_EXIT_OK;
}

/* No run holds the lock: roll the file back ourselves, as the state says. */
static int
abort_stopped(struct run *r, json_t *st)
{
	struct opts o = { 0 };
	json_t *d;
	size_t i;
	int code;
	char *text;
	struct chom_err e;

	o.upstream = jstr(st, "upstream");
	o.upstream_file = jstr(st, "upstream_file");
	o.stable = jstr(st, "stable");
	o.canary = jstr(st, "canary");
	o.test_cmd = jstr(st, "test_cmd");
	o.reload_cmd = jstr(st, "reload_cmd");
	json_array_foreach(json_object_get(st, "upstream_directives"), i, d)
	{
		if (i < MAX_DIRECTIVES && json_string_value(d))
			o.directives[o.ndirectives++] = json_string_value(d);
	}
	if (!*o.upstream_file || !*o.stable || !*o.canary) {
		chom_error("%s: not a canary state file", r->state_path);
		return CHOM_EXIT_FAIL;
	}
	/* cppcheck-suppress autoVariables ; reset before returning */
	r->o = &o;
	set_upstream(r, &o);
	r->weight = -1; /* what the run that stopped had nginx load */
	code = roll_back(r, CHOM_EXIT_OK,
			 "aborted by chom-canary --abort after the run had "
			 "stopped");
	r->o = NULL;
	json_object_set_new(st, "status", json_string(r->status));
	json_object_set_new(st, "reason", json_string(r->reason));
	json_object_set_new(st, "weight", json_integer(code ? -1 : 0));
	if ((text = json_dumps(st, JSON_COMPACT))) {
		if (chom_atomic_write(r->state_path, text, strlen(text), 0644,
				      &e) < 0)
			chom_warn("state not saved: %s", e.msg);
		free(text);
	}
	return code;
}

static int
do_abort(const struct opts *o)
{
	struct run *r = calloc(1, sizeof(*r));
	struct chom_lock l = { -1 };
	struct chom_err e;
	json_t *st = NULL;
	double until;
	int code = CHOM_EXIT_FAIL;
	const char *status;

	if (!r)
		return CHOM_EXIT_FAIL;
	if (state_paths(r, o, &e) < 0) {
		free(r);
		return chom_report(&e);
	}
	r->stop = chom_cli_catch_signals();
	if (chom_lock_acquire(&l, r->lock_path, 0, &e) < 0) {
		if (e.code != CHOM_EXIT_BUSY) {
			free(r);
			return chom_report(&e);
		}
		/* A run holds it: ask it, and wait for it to roll back. */
		if (chom_atomic_write(r->abort_path, "abort\n", 6, 0644, &e) <
		    0) {
			free(r);
			return chom_report(&e);
		}
		chom_info("asked the canary of upstream %s to roll back",
			  o->upstream);
		until = chom_mono() + o->wait_s;
		while (chom_lock_acquire(&l, r->lock_path, 0, &e) < 0) {
			struct timespec ts = { 0, 100 * 1000 * 1000 };

			if (e.code != CHOM_EXIT_BUSY || chom_mono() >= until ||
			    *r->stop) {
				chom_error("the canary of upstream %s still "
					   "runs after %.0f s; it rolls back "
					   "when it sees %s",
					   o->upstream, o->wait_s,
					   r->abort_path);
				/* Whether stable is back is not known. */
				code = *r->stop
					   ? chom_cli_signal_status(*r->stop)
					   : CHOM_EXIT_UNSAFE;
				free(r);
				return code;
			}
			nanosleep(&ts, NULL);
		}
		st = load_state(r->state_path);
		status = st ? jstr(st, "status") : "";
		if (!strcmp(status, "rolled-back")) {
			printf("rolled back: %s\n", jstr(st, "reason"));
			code = CHOM_EXIT_OK;
		} else if (!strcmp(status, "rollback-failed")) {
			chom_error("the rollback failed: %s",
				   jstr(st, "reason"));
			code = CHOM_EXIT_UNSAFE;
		} else {
			chom_error(
			    "the canary ended %s before it saw the abort",
			    *status ? status : "(no state)");
		}
		goto out;
	}
	unlink(r->abort_path);
	if (!(st = load_state(r->state_path))) {
		chom_error("no canary of upstream %s to abort (no %s)",
			   o->upstream, r->state_path);
		goto out;
	}
	status = jstr(st, "status");
	if (strcmp(status, "running") && strcmp(status, "rollback-failed")) {
		chom_error("nothing to abort: the canary of upstream %s is %s",
			   o->upstream, status);
		goto out;
	}
	code = abort_stopped(r, st);
	if (code == CHOM_EXIT_OK)
		printf("rolled back: %s\n", r->reason);
out:
	json_decref(st);
	chom_lock_release(&l);
	free(r);
	return code;
}

/* --- main --------------------------------------------------------------- */

enum {
	OPT_STATUS = 256,
	OPT_ABORT,
	OPT_SUMMARY,
	OPT_JSON,
	OPT_HELP,
	OPT_VERSION,
	OPT_SETTING, /* a --KEY VALUE handed to set_opt() */
};

static const struct option longopts[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "status", no_argument, NULL, OPT_STATUS },
	{ "abort", no_argument, NULL, OPT_ABORT },
	{ "summary", required_argument, NULL, OPT_SUMMARY },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "quiet", no_argument, NULL, 'q' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, OPT_HELP },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ "upstream-file", required_argument, NULL, OPT_SETTING },
	{ "upstream", required_argument, NULL, OPT_SETTING },
	{ "stable", required_argument, NULL, OPT_SETTING },
	{ "canary", required_argument, NULL, OPT_SETTING },
	{ "upstream-directive", required_argument, NULL, OPT_SETTING },
	{ "test-cmd", required_argument, NULL, OPT_SETTING },
	{ "reload-cmd", required_argument, NULL, OPT_SETTING },
	{ "steps", required_argument, NULL, OPT_SETTING },
	{ "interval", required_argument, NULL, OPT_SETTING },
	{ "sample", required_argument, NULL, OPT_SETTING },
	{ "max-error-rate", required_argument, NULL, OPT_SETTING },
	{ "max-p95", required_argument, NULL, OPT_SETTING },
	{ "min-requests", required_argument, NULL, OPT_SETTING },
	{ "max-inconclusive", required_argument, NULL, OPT_SETTING },
	{ "alpha", required_argument, NULL, OPT_SETTING },
	{ "access-log", required_argument, NULL, OPT_SETTING },
	{ "probe", required_argument, NULL, OPT_SETTING },
	{ "probe-rate", required_argument, NULL, OPT_SETTING },
	{ "probe-host", required_argument, NULL, OPT_SETTING },
	{ "prometheus", required_argument, NULL, OPT_SETTING },
	{ "error-rate-query", required_argument, NULL, OPT_SETTING },
	{ "p95-query", required_argument, NULL, OPT_SETTING },
	{ "state-dir", required_argument, NULL, OPT_SETTING },
	{ "wait", required_argument, NULL, OPT_SETTING },
	{ NULL, 0, NULL, 0 },
};

static void
defaults(struct opts *o)
{
	memset(o, 0, sizeof(*o));
	o->upstream = "app";
	o->test_cmd = "nginx -t";
	o->reload_cmd = "nginx -s reload";
	parse_steps("10,25,50,75,100", o);
	o->interval = 300;
	o->sample = 30;
	o->wait_s = 60;
	o->judge = (struct chom_judge){ .max_error_rate = 0.05,
					.max_p95 = 2,
					.min_requests = 50,
					.alpha = 0.05 };
	o->max_inconclusive = 3;
	o->probe_rate = 5;
	o->state_dir = STATE_DIR_DEFAULT;
}

/* What a run needs, checked before anything changes. */
static int
check_run(const struct opts *o)
{
	if (!o->upstream_file || !*o->upstream_file)
		return chom_usage_error("--upstream-file is required");
	if (!o->stable || !o->canary)
		return chom_usage_error("--stable and --canary are required");
	if (!strcmp(o->stable, o->canary))
		return chom_usage_error("--stable and --canary are the same "
					"server: %s",
					chom_quote(o->stable));
	if (!o->access_log && !o->probe && !o->prometheus)
		return chom_usage_error("no source to judge by: give "
					"--access-log, --probe or "
					"--prometheus");
	if (o->prometheus && !o->error_rate_query && !o->p95_query)
		return chom_usage_error(
		    "--prometheus needs --error-rate-query, "
		    "--p95-query or both");
	if (!o->prometheus && (o->error_rate_query || o->p95_query))
		return chom_usage_error("--error-rate-query and --p95-query "
					"need --prometheus");
	if (o->prometheus && strncmp(o->prometheus, "http://", 7) &&
	    strncmp(o->prometheus, "https://", 8))
		return chom_usage_error("--prometheus: not an http(s) URL: %s",
					chom_quote(o->prometheus));
	return 0;
}

int
main(int argc, char **argv)
{
	const char *config = NULL, *summary = NULL, *env;
	const char **keys = calloc((size_t)argc + 1, sizeof(char *)),
		   **vals = calloc((size_t)argc + 1, sizeof(char *));
	bool status = false, abort_run = false, json = false;
	struct chom_err e = { 0 };
	struct opts o;
	int c, idx, n = 0, i, rc;

	chom_cli_init("chom-canary");
	if (!keys || !vals) {
		chom_error("out of memory");
		return CHOM_EXIT_FAIL;
	}
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:qv", longopts, &idx)) != -1) {
		switch (c) {
		case 'c': config = optarg; break;
		case OPT_STATUS: status = true; break;
		case OPT_ABORT: abort_run = true; break;
		case OPT_SUMMARY: summary = optarg; break;
		case OPT_JSON: json = true; break;
		case 'q': chom_cli_set_verbosity(CHOM_QUIET); break;
		case 'v': chom_cli_set_verbosity(CHOM_VERBOSE); break;
		case OPT_HELP:
			usage();
			rc = chom_close_stdout(CHOM_EXIT_OK);
			goto out;
		case OPT_VERSION:
			rc = chom_close_stdout(chom_print_version());
			goto out;
		case OPT_SETTING:
			keys[n] = longopts[idx].name;
			vals[n++] = optarg;
			break;
		default: rc = chom_usage_getopt(c, argv); goto out;
		}
	}
	if (optind < argc) {
		rc = chom_usage_error("unexpected argument: %s",
				      chom_quote(argv[optind]));
		goto out;
	}
	if (status && abort_run) {
		rc = chom_usage_error("give --status or --abort, not both");
		goto out;
	}
	defaults(&o);
	o.json = json;
	if (chom_config_load(config, "canary", config_key, &o, &e) < 0) {
		rc = chom_report(&e);
		goto out;
	}
	if ((env = getenv("CHOM_STATE_DIR")) && *env)
		o.state_dir = env;
	/* --upstream-directive replaces the file's, as other options do. */
	for (i = 0; i < n; i++)
		if (!strcmp(keys[i], "upstream-directive"))
			o.ndirectives = 0;
	for (i = 0; i < n; i++)
		if (set_opt(&o, keys[i], vals[i], &e) < 0) {
			rc = chom_usage_error("%s", e.msg);
			goto out;
		}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (status)
		rc = do_status(&o, json);
	else if (abort_run)
		rc = do_abort(&o);
	else if (!(rc = check_run(&o)))
		rc = do_run(&o, summary);
	curl_global_cleanup();
	rc = chom_close_stdout(rc);
out:
	free(keys);
	free(vals);
	return rc;
}
