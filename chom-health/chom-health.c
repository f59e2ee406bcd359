/* chom-health: check that services answer correctly, concurrently. */
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "exitcode.h"
#include "health.h"
#include "secret.h"

#define MAX_TARGETS 1024

static void
usage(void)
{
	printf(
	    "Usage: chom-health [OPTIONS] TARGET... | -f FILE\n"
	    "Check that services answer correctly; exit 0 only if every "
	    "target is healthy.\n\n"
	    "Targets: http://... https://... tcp://HOST:PORT "
	    "redis://HOST[:PORT] mysql://HOST[:PORT]\n\n"
	    "  -f, --file FILE          targets, one per line, each with its "
	    "own options\n"
	    "      --expect-status LIST HTTP statuses that are healthy "
	    "(default 200-399)\n"
	    "      --expect-body REGEX  the body must match (POSIX extended)\n"
	    "      --expect-json P=V    the JSON body has V at path P "
	    "(a.b.0.c)\n"
	    "      --max-latency MS     slower than MS is unhealthy\n"
	    "  -H, --header LINE        send this HTTP header (repeatable)\n"
	    "      --resolve H:P:ADDR   connect to ADDR for host H, port P\n"
	    "      --cacert FILE        trust the CAs in FILE\n"
	    "      --cert-min-days N    the TLS certificate must last N more "
	    "days\n"
	    "      --password-file FILE redis AUTH password\n"
	    "      --retries N          attempts after the first (default 0; "
	    "with --deadline: until it)\n"
	    "      --interval S         between attempts (default 1s)\n"
	    "      --timeout S          per attempt (default 5s)\n"
	    "      --deadline S         give up on everything after S\n"
	    "      --concurrency N      at most N checks at once (default: "
	    "all)\n"
	    "      --json               one JSON object per target\n"
	    "      --summary FILE       append a Markdown table (default "
	    "$GITHUB_STEP_SUMMARY)\n"
	    "  -c, --config FILE        configuration file (default %s)\n"
	    "  -q, --quiet              no table; the exit status says\n"
	    "  -v, --verbose            explain\n"
	    "      --help, --version\n\n"
	    "Exit status: 0 all healthy, 1 any unhealthy, 2 usage, 130/143 "
	    "interrupted.\nSee chom-health(1).\n",
	    CHOM_CONFIG_DEFAULT);
}

enum {
	OPT_STATUS = 256,
	OPT_BODY,
	OPT_JSONPATH,
	OPT_LATENCY,
	OPT_RESOLVE,
	OPT_CACERT,
	OPT_CERTDAYS,
	OPT_PASSFILE,
	OPT_RETRIES,
	OPT_INTERVAL,
	OPT_TIMEOUT,
	OPT_DEADLINE,
	OPT_CONCURRENCY,
	OPT_JSON,
	OPT_SUMMARY,
	OPT_HELP,
	OPT_VERSION
};

static const struct option longopts[] = {
	{ "file", required_argument, NULL, 'f' },
	{ "config", required_argument, NULL, 'c' },
	{ "expect-status", required_argument, NULL, OPT_STATUS },
	{ "expect-body", required_argument, NULL, OPT_BODY },
	{ "expect-json", required_argument, NULL, OPT_JSONPATH },
	{ "max-latency", required_argument, NULL, OPT_LATENCY },
	{ "header", required_argument, NULL, 'H' },
	{ "resolve", required_argument, NULL, OPT_RESOLVE },
	{ "cacert", required_argument, NULL, OPT_CACERT },
	{ "cert-min-days", required_argument, NULL, OPT_CERTDAYS },
	{ "password-file", required_argument, NULL, OPT_PASSFILE },
	{ "retries", required_argument, NULL, OPT_RETRIES },
	{ "interval", required_argument, NULL, OPT_INTERVAL },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "deadline", required_argument, NULL, OPT_DEADLINE },
	{ "concurrency", required_argument, NULL, OPT_CONCURRENCY },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "summary", required_argument, NULL, OPT_SUMMARY },
	{ "quiet", no_argument, NULL, 'q' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, OPT_HELP },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

struct run_opts {
	const char *file, *config, *summary;
	double deadline;
	long long concurrency;
	int json, retries_set;
};

/*
 * Applies one per-target option to t. Returns 0, 1 when c is not a
 * per-target option, -1 with e set on a bad value.
 */
static int
target_option(struct chom_target *t, int *retries_set, int c, const char *arg,
	      struct chom_err *e)
{
	long long n;
	double d;
	char *pw;

	switch (c) {
	case OPT_STATUS: return chom_target_set_status(t, arg, e);
	case OPT_BODY: return chom_target_set_body(t, arg, e);
	case OPT_JSONPATH: return chom_target_set_json(t, arg, e);
	case OPT_LATENCY:
		if (chom_parse_ll(arg, 1, 3600000, &n) < 0)
			return chom_err_set(e, CHOM_EXIT_USAGE,
					    "--max-latency: not milliseconds: "
					    "%s",
					    chom_quote(arg));
		t->max_latency_ms = (long)n;
		return 0;
	case 'H':
		if (t->nheaders == CHOM_HEALTH_MAX_HEADERS)
			return chom_err_set(e, CHOM_EXIT_USAGE,
					    "too many -H headers");
		if (!strchr(arg, ':'))
			return chom_err_set(e, CHOM_EXIT_USAGE,
					    "-H '%s': want 'Name: value'",
					    chom_quote(arg));
		t->headers[t->nheaders++] = chom_config_keep(arg);
		return 0;
	case OPT_RESOLVE:
		if (strchr(arg, ':') == strrchr(arg, ':'))
			return chom_err_set(e, CHOM_EXIT_USAGE,
					    "--resolve '%s': want "
					    "HOST:PORT:ADDRESS",
					    chom_quote(arg));
		t->resolve = chom_config_keep(arg);
		return 0;
	case OPT_CACERT: t->cacert = chom_config_keep(arg); return 0;
	case OPT_CERTDAYS:
		if (chom_parse_ll(arg, 0, 36500, &n) < 0)
			return chom_err_set(e, CHOM_EXIT_USAGE,
					    "--cert-min-days: not a number of "
					    "days: %s",
					    chom_quote(arg));
		t->cert_min_days = (long)n;
		return 0;
	case OPT_PASSFILE:
		if (chom_secret_read(arg, &pw, e) < 0)
			return -1;
		/* Kept for the run; the process ends after it. */
		t->password = chom_config_keep(pw);
		chom_secret_free(pw);
		return 0;
	case OPT_RETRIES:
		if (chom_parse_ll(arg, 0, 1000000, &n) < 0)
			return chom_err_set(e, CHOM_EXIT_USAGE,
					    "--retries: not a number: %s",
					    chom_quote(arg));
		t->retries = (long)n;
		*retries_set = 1;
		return 0;
	case OPT_INTERVAL:
	case OPT_TIMEOUT:
		if (chom_parse_duration(arg, &d) < 0 || d <= 0)
			return chom_err_set(
			    e, CHOM_EXIT_USAGE, "--%s: not a duration: %s",
			    c == OPT_INTERVAL ? "interval" : "timeout",
			    chom_quote(arg));
		*(c == OPT_INTERVAL ? &t->interval : &t->timeout) = d;
		return 0;
	}
	return 1;
}

/* A copy of the defaults for one more target; the regex is recompiled. */
static int
add_target(struct chom_target *v, size_t *n, const struct chom_target *tmpl,
	   const char *url, struct chom_err *e)
{
	struct chom_target *t;

	if (*n == MAX_TARGETS)
		return chom_err_set(e, CHOM_EXIT_USAGE, "more than %d targets",
				    MAX_TARGETS);
	t = &v[*n];
	*t = *tmpl;
	t->body_src[0] = '\0';
	if ((tmpl->body_src[0] &&
	     chom_target_set_body(t, tmpl->body_src, e) < 0) ||
	    chom_target_parse(t, url, e) < 0) {
		chom_target_free(t);
		return -1;
	}
	(*n)++;
	return 0;
}

/* Splits a line into words: blanks separate, '...' and "..." quote. */
static int
split(char *s, char **argv, int max)
{
	int argc = 0;
	char *o;

	while (*s) {
		char q = 0;

		while (*s == ' ' || *s == '\t')
			s++;
		if (!*s || *s == '#')
			break;
		if (argc == max)
			return -1;
		argv[argc++] = o = s;
		for (; *s && (q || (*s != ' ' && *s != '\t')); s++) {
			if (!q && (*s == '\'' || *s == '"'))
				q = *s;
			else if (q && *s == q)
				q = 0;
			else
				*o++ = *s;
		}
		if (q)
			return -1;
		if (*s)
			s++;
		*o = '\0';
	}
	return argc;
}

static int
read_targets(const char *path, struct chom_target *v, size_t *n,
	     const struct chom_target *tmpl, int tmpl_retries_set,
	     struct chom_err *e)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "re") : stdin;
	char *line = NULL, *argv[64];
	size_t cap = 0, lineno = 0;
	int rc = -1;

	if (!f)
		return chom_err_sys(e, CHOM_EXIT_USAGE, "targets %s", path);
	while (getline(&line, &cap, f) > 0) {
		struct chom_target t = *tmpl;
		int argc, c, retries_set = tmpl_retries_set;

		lineno++;
		line[strcspn(line, "\r\n")] = '\0';
		argv[0] = "line";
		argc = split(line, argv + 1, 62);
		if (argc < 0) {
			chom_err_set(e, CHOM_EXIT_USAGE,
				     "%s:%zu: unbalanced quote or too many "
				     "words",
				     path, lineno);
			goto out;
		}
		if (argc == 0)
			continue;
		argc++;
		argv[argc] = NULL;
		t.body_src[0] = '\0';
		if (tmpl->body_src[0] &&
		    chom_target_set_body(&t, tmpl->body_src, e) < 0)
			goto out;
		optind = 0; /* glibc: start over on this argv */
		while ((c = getopt_long(argc, argv, ":H:", longopts, NULL)) !=
		       -1) {
			int r = target_option(&t, &retries_set, c, optarg, e);

			if (r == 1)
				chom_err_set(e, CHOM_EXIT_USAGE,
					     "not an option for one target: %s",
					     chom_quote(argv[optind - 1]));
			if (r != 0) {
				char why[sizeof(e->msg)];

				snprintf(why, sizeof(why), "%s", e->msg);
				chom_err_set(e, CHOM_EXIT_USAGE, "%s:%zu: %s",
					     path, lineno, why);
				chom_target_free(&t);
				goto out;
			}
		}
		if (optind != argc - 1) {
			chom_err_set(e, CHOM_EXIT_USAGE,
				     "%s:%zu: want one target and its options",
				     path, lineno);
			chom_target_free(&t);
			goto out;
		}
		if (!retries_set && tmpl->retries < 0)
			t.retries = -1;
		if (add_target(v, n, &t, argv[optind], e) < 0) {
			char why[sizeof(e->msg)];

			snprintf(why, sizeof(why), "%s", e->msg);
			chom_err_set(e, CHOM_EXIT_USAGE, "%s:%zu: %s", path,
				     lineno, why);
			chom_target_free(&t);
			goto out;
		}
		chom_target_free(&t);
	}
	rc = 0;
out:
	free(line);
	if (f != stdin)
		fclose(f);
	return rc;
}

static const char *
kind_code(const struct chom_target *t, char *buf, size_t size)
{
	if (t->kind != CHOM_TARGET_HTTP || !t->status)
		return "-";
	snprintf(buf, size, "%ld", t->status);
	return buf;
}

static void
report(const struct chom_target *v, size_t n, int json)
{
	size_t i, w = 6;
	char code[16];

	for (i = 0; i < n; i++)
		if (strlen(v[i].url) > w)
			w = strlen(v[i].url);
	for (i = 0; i < n; i++) {
		const struct chom_target *t = &v[i];

		if (json) {
			chom_json_line(json_pack(
			    "{s:s, s:b, s:I, s:f, s:i, s:s}", "target", t->url,
			    "ok", t->ok, "status", (json_int_t)t->status,
			    "latency_ms", round(t->latency_ms * 10) / 10,
			    "attempts", t->attempts, "reason", t->reason));
			continue;
		}
		printf("%-4s  %-*s  %3s  %6.0f ms%s%s\n", t->ok ? "ok" : "FAIL",
		       (int)w, t->url, kind_code(t, code, sizeof(code)),
		       t->latency_ms, t->reason[0] ? "  " : "", t->reason);
	}
}

static void
summary(const char *path, const struct chom_target *v, size_t n)
{
	char cell[2100], code[16], *text;
	size_t i, cap = 256 + n * 2400, len;
	struct chom_err e;

	if (!path || !(text = malloc(cap)))
		return;
	len = (size_t)snprintf(text, cap,
			       "### chom-health\n\n"
			       "| | target | status | latency | detail |\n"
			       "|---|---|---|---|---|\n");
	for (i = 0; i < n; i++) {
		const struct chom_target *t = &v[i];
		char url[2100];

		chom_md_cell(t->url, url, sizeof(url));
		chom_md_cell(t->reason, cell, sizeof(cell));
		len += (size_t)snprintf(
		    text + len, cap - len, "| %s | %s | %s | %.0f ms | %s |\n",
		    t->ok ? "✅" : "❌", url, kind_code(t, code, sizeof(code)),
		    t->latency_ms, cell);
	}
	snprintf(text + len, cap - len, "\n");
	if (chom_summary_append(path, text, &e) < 0)
		chom_warn("%s", e.msg);
	free(text);
}

struct config {
	struct chom_target *t;
	int *retries_set;
};

static int
config_key(void *ctx, const char *section, const char *key, const char *value,
	   struct chom_err *e)
{
	struct config *cf = ctx;
	struct chom_target *t = cf->t;
	double d;
	long long n;

	if (!strcmp(section, "global"))
		return 0; /* base: the deploy tools' */
	if (!strcmp(key, "timeout") || !strcmp(key, "interval")) {
		if (chom_parse_duration(value, &d) < 0 || d <= 0)
			return chom_err_set(e, CHOM_EXIT_USAGE,
					    "%s: not a duration: %s", key,
					    value);
		*(key[0] == 't' ? &t->timeout : &t->interval) = d;
		return 0;
	}
	if (!strcmp(key, "retries")) {
		if (chom_parse_ll(value, 0, 1000000, &n) < 0)
			return chom_err_set(e, CHOM_EXIT_USAGE,
					    "retries: not a number: %s", value);
		t->retries = (long)n;
		*cf->retries_set = 1;
		return 0;
	}
	if (!strcmp(key, "cacert")) {
		t->cacert = chom_config_keep(value);
		return 0;
	}
	return chom_err_set(e, CHOM_EXIT_USAGE, "unknown key '%s' in [health]",
			    key);
}

int
main(int argc, char **argv)
{
	volatile sig_atomic_t *stop;
	static struct chom_target v[MAX_TARGETS];
	struct chom_target tmpl = { .cert_min_days = -1,
				    .interval = 1,
				    .timeout = 5 };
	struct run_opts o = { 0 };
	struct config cf = { &tmpl, &o.retries_set };
	struct chom_err e = { 0 };
	size_t n = 0, i;
	int c, r, healthy = 1, first;
	double d;

	chom_cli_init("chom-health");
	opterr = 0;
	/* A first pass finds -c in any spelling getopt accepts: the file is
	 * read before the options, which override it. */
	while ((c = getopt_long(argc, argv, ":f:c:H:qv", longopts, NULL)) != -1)
		if (c == 'c')
			o.config = optarg;
	optind = 0;
	first = 1;
	while ((c = getopt_long(argc, argv, ":f:c:H:qv", longopts, NULL)) !=
	       -1) {
		if (first && c != OPT_HELP && c != OPT_VERSION) {
			if (chom_config_load(o.config, "health", config_key,
					     &cf, &e) < 0)
				return chom_report(&e);
			first = 0;
		}
		r = target_option(&tmpl, &o.retries_set, c, optarg, &e);
		if (r < 0)
			return chom_usage_error("%s", e.msg);
		if (r == 0)
			continue;
		switch (c) {
		case 'f': o.file = optarg; break;
		case 'c': break;
		case OPT_DEADLINE:
			if (chom_parse_duration(optarg, &d) < 0 || d <= 0)
				return chom_usage_error(
				    "--deadline: not a duration: %s",
				    chom_quote(optarg));
			o.deadline = d;
			break;
		case OPT_CONCURRENCY:
			if (chom_parse_ll(optarg, 1, MAX_TARGETS,
					  &o.concurrency) < 0)
				return chom_usage_error(
				    "--concurrency: not a number from 1 to "
				    "%d: %s",
				    MAX_TARGETS, chom_quote(optarg));
			break;
		case OPT_JSON: o.json = 1; break;
		case OPT_SUMMARY: o.summary = optarg; break;
		case 'q': chom_cli_set_verbosity(CHOM_QUIET); break;
		case 'v': chom_cli_set_verbosity(CHOM_VERBOSE); break;
		case OPT_HELP: usage(); return chom_close_stdout(CHOM_EXIT_OK);
		case OPT_VERSION:
			return chom_close_stdout(chom_print_version());
		default: return chom_usage_getopt(c, argv);
		}
	}
	if (first &&
	    chom_config_load(o.config, "health", config_key, &tmpl, &e) < 0)
		return chom_report(&e);
	argc -= optind;
	argv += optind;
	/* Wait like a readiness probe: with a deadline and no --retries,
	 * keep trying until the deadline. */
	if (o.deadline > 0 && !o.retries_set)
		tmpl.retries = -1;
	for (i = 0; i < (size_t)argc; i++)
		if (add_target(v, &n, &tmpl, argv[i], &e) < 0)
			return chom_usage_error("%s", e.msg);
	if (o.file && read_targets(o.file, v, &n, &tmpl, o.retries_set, &e) < 0)
		return chom_usage_error("%s", e.msg);
	chom_target_free(&tmpl);
	if (n == 0)
		return chom_usage_error("no targets: give URLs or -f FILE");

	stop = chom_cli_catch_signals();
	if (chom_health_run(v, n, (size_t)o.concurrency, o.deadline, stop, &e) <
	    0)
		return chom_report(&e);
	for (i = 0; i < n; i++) {
		healthy &= v[i].ok;
		if (!v[i].ok)
			chom_debug("%s: %s after %d attempts", v[i].url,
				   v[i].reason, v[i].attempts);
	}
	if (chom_cli_verbosity() > CHOM_QUIET)
		report(v, n, o.json);
	summary(chom_summary_path(o.summary), v, n);
	for (i = 0; i < n; i++)
		chom_target_free(&v[i]);
	if (*stop)
		return chom_close_stdout(chom_cli_signal_status(*stop));
	return chom_close_stdout(healthy ? CHOM_EXIT_OK : CHOM_EXIT_FAIL);
}
