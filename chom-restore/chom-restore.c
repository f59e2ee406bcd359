/* chom-restore: list, verify and restore backup points. */
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "age.h"
#include "cli.h"
#include "config.h"
#include "exitcode.h"
#include "manifest.h"
#include "release.h"
#include "restore.h"
#include "secret.h"
#include "sinks.h"
#include "store.h"

#define MAX_LIST 32
#define DB_CMD "mysql"

enum action { A_NONE, A_LIST, A_VERIFY, A_DB, A_FILES, A_CONFIG, A_SYSINFO };

struct opts {
	enum action action;
	const char *from, *host, *point, *at, *target, *db_cmd, *db_defaults;
	const char *passphrase_file, *spool_dir, *config_file;
	const char *identities[MAX_LIST];
	size_t nidentities;
	bool all, json, stream, no_spool;
};

static void
usage(void)
{
	printf(
	    "Usage: chom-restore --list [--all] [--json]\n"
	    "       chom-restore --verify [POINT]\n"
	    "       chom-restore --db [POINT] [--db-cmd CMD | --db-defaults "
	    "FILE]\n"
	    "                    [--stream | --no-spool] [--spool-dir DIR]\n"
	    "       chom-restore --files|--config [POINT] --target DIR\n"
	    "       chom-restore --sysinfo [POINT]\n"
	    "List, verify and restore the backup points chom-backup made. "
	    "POINT is an id\n(YYYYMMDDTHHMMSSZ) or latest (the default).\n\n"
	    "  --from URL            the target: file:///PATH or "
	    "s3://BUCKET/PREFIX\n"
	    "  --host NAME           the HOST folder (default: the short host "
	    "name)\n"
	    "  --at TIME             the newest point at or before TIME (UTC: "
	    "2026-11-27,\n"
	    "                        2026-11-27T14:00Z, a point id, @EPOCH)\n"
	    "  -i, --identity FILE   age identity file (repeatable)\n"
	    "  --passphrase-file FILE\n"
	    "  --db-cmd CMD          where the dump goes (default: %s)\n"
	    "  --db-defaults FILE    MySQL option file with the credentials\n"
	    "  --target DIR          an empty or new directory for --files, "
	    "--config\n"
	    "  --spool-dir DIR       where --db verifies the dump before "
	    "feeding it\n"
	    "                        (default: memory if it fits, else "
	    "$TMPDIR or /var/tmp)\n"
	    "  --no-spool            verify by reading the part twice instead\n"
	    "  --stream              feed the database while verifying (no "
	    "guarantee)\n"
	    "  --all                 --list incomplete points too\n"
	    "  --json, -q, -v, -c FILE, --help, --version\n\n"
	    "Exit status: 0 done, 1 failed (a part failed a check: nothing "
	    "written),\n2 usage. See chom-restore(1).\n",
	    DB_CMD);
}

enum {
	OPT_LIST = 256,
	OPT_VERIFY,
	OPT_DB,
	OPT_FILES,
	OPT_CONFIG,
	OPT_SYSINFO,
	OPT_FROM,
	OPT_HOST,
	OPT_AT,
	OPT_TARGET,
	OPT_DBCMD,
	OPT_DBDEF,
	OPT_PASS,
	OPT_SPOOL,
	OPT_NOSPOOL,
	OPT_STREAM,
	OPT_ALL,
	OPT_JSON,
	OPT_HELP,
	OPT_VERSION
};

static const struct option longopts[] = {
	{ "list", no_argument, NULL, OPT_LIST },
	{ "verify", no_argument, NULL, OPT_VERIFY },
	{ "db", no_argument, NULL, OPT_DB },
	{ "files", no_argument, NULL, OPT_FILES },
	{ "config", no_argument, NULL, OPT_CONFIG },
	{ "sysinfo", no_argument, NULL, OPT_SYSINFO },
	{ "from", required_argument, NULL, OPT_FROM },
	{ "host", required_argument, NULL, OPT_HOST },
	{ "at", required_argument, NULL, OPT_AT },
	{ "target", required_argument, NULL, OPT_TARGET },
	{ "db-cmd", required_argument, NULL, OPT_DBCMD },
	{ "db-defaults", required_argument, NULL, OPT_DBDEF },
	{ "identity", required_argument, NULL, 'i' },
	{ "passphrase-file", required_argument, NULL, OPT_PASS },
	{ "spool-dir", required_argument, NULL, OPT_SPOOL },
	{ "no-spool", no_argument, NULL, OPT_NOSPOOL },
	{ "stream", no_argument, NULL, OPT_STREAM },
	{ "all", no_argument, NULL, OPT_ALL },
	{ "config-file", required_argument, NULL, 'c' },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "quiet", no_argument, NULL, 'q' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, OPT_HELP },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

static const char *const action_opt[] = { "",         "--list",  "--verify",
					  "--db",     "--files", "--config",
					  "--sysinfo" };

static int
set_action(struct opts *o, enum action a)
{
	if (o->action != A_NONE && o->action != a)
		return chom_usage_error("%s and %s: one action at a time",
					action_opt[o->action], action_opt[a]);
	o->action = a;
	return 0;
}

static int
parse(int argc, char **argv, struct opts *o)
{
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":i:c:qv", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_LIST:
		case OPT_VERIFY:
		case OPT_DB:
		case OPT_FILES:
		case OPT_CONFIG:
		case OPT_SYSINFO:
			if (set_action(o, (enum action)(c - OPT_LIST + 1)))
				return CHOM_EXIT_USAGE;
			break;
		case OPT_FROM: o->from = optarg; break;
		case OPT_HOST: o->host = optarg; break;
		case OPT_AT: o->at = optarg; break;
		case OPT_TARGET: o->target = optarg; break;
		case OPT_DBCMD: o->db_cmd = optarg; break;
		case OPT_DBDEF: o->db_defaults = optarg; break;
		case 'i':
			if (o->nidentities == MAX_LIST)
				return chom_usage_error("more than %d -i",
							MAX_LIST);
			o->identities[o->nidentities++] = optarg;
			break;
		case OPT_PASS: o->passphrase_file = optarg; break;
		case OPT_SPOOL: o->spool_dir = optarg; break;
		case OPT_NOSPOOL: o->no_spool = true; break;
		case OPT_STREAM: o->stream = true; break;
		case OPT_ALL: o->all = true; break;
		case 'c': o->config_file = optarg; break;
		case OPT_JSON: o->json = true; break;
		case 'q': chom_cli_set_verbosity(CHOM_QUIET); break;
		case 'v': chom_cli_set_verbosity(CHOM_VERBOSE); break;
		case OPT_HELP: usage(); return -1;
		case OPT_VERSION: chom_print_version(); return -1;
		default: return chom_usage_getopt(c, argv);
		}
	}
	if (optind < argc)
		o->point = argv[optind++];
	if (optind < argc)
		return chom_usage_error("unexpected argument %s",
					chom_quote(argv[optind]));
	return 0;
}

static int
config_key(void *ctx, const char *section, const char *key, const char *value,
	   struct chom_err *e)
{
	struct opts *o = ctx;
	const char *v = chom_config_keep(value);

	if (!v)
		return chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
	if (!strcmp(section, "global"))
		return 0; /* base: the deploy tools' */
	if (!strcmp(key, "from"))
		o->from = v;
	else if (!strcmp(key, "identity") && o->nidentities < MAX_LIST)
		o->identities[o->nidentities++] = v;
	else if (!strcmp(key, "host"))
		o->host = v;
	else if (!strcmp(key, "db_cmd"))
		o->db_cmd = v;
	else if (!strcmp(key, "db_defaults"))
		o->db_defaults = v;
	else if (!strcmp(key, "spool_dir"))
		o->spool_dir = v;
	else
		return chom_err_set(e, CHOM_EXIT_USAGE,
				    "unknown key '%s' in [restore]", key);
	return 0;
}

/* --at: a point id, YYYY-MM-DD[(T| )HH:MM[:SS]][Z], or @EPOCH; UTC. */
static int
parse_time(const char *s, time_t *t)
{
	static const char *const fmts[] = {
		"%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%MZ",
		"%Y-%m-%dT%H:%M",     "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M",
		"%Y-%m-%d",
	};
	struct tm tm;
	size_t i;

	if (chom_point_time(s, t) == 0)
		return 0;
	if (s[0] == '@') {
		long long n;

		if (chom_parse_ll(s + 1, 0, 253402300799LL, &n) < 0)
			return -1;
		*t = (time_t)n;
		return 0;
	}
	for (i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
		const char *end;

		memset(&tm, 0, sizeof(tm));
		end = strptime(s, fmts[i], &tm);
		if (end && !*end) {
			/* A date alone: the whole of that day. */
			if (i == sizeof(fmts) / sizeof(fmts[0]) - 1) {
				tm.tm_hour = 23;
				tm.tm_min = tm.tm_sec = 59;
			}
			*t = timegm(&tm);
			return 0;
		}
	}
	return -1;
}

static void
human(unsigned long long n, char *buf, size_t size)
{
	if (n >= 1000ULL * 1000 * 1000)
		snprintf(buf, size, "%.1f GB", n / 1e9);
	else if (n >= 1000 * 1000)
		snprintf(buf, size, "%.1f MB", n / 1e6);
	else if (n >= 1000)
		snprintf(buf, size, "%.1f kB", n / 1e3);
	else
		snprintf(buf, size, "%llu B", n);
}

static void
progress(void *ctx, const char *name, unsigned long long done,
	 unsigned long long total)
{
	static double t0, last;
	static char cur[80];
	double now = chom_mono(), el, rate;

	(void)ctx;
	if (!name) {
		chom_progress_end();
		t0 = 0;
		cur[0] = '\0';
		return;
	}
	if (strcmp(cur, name)) { /* a new phase: its own clock */
		snprintf(cur, sizeof(cur), "%s", name);
		t0 = now;
	}
	if (now - last < 0.2 && done < total)
		return;
	last = now;
	el = now - t0;
	rate = el > 0 ? done / el : 0;
	if (total && rate > 0 && done <= total)
		chom_progress("%s: %.1f of %.1f MiB (%.0f%%), %.1f MiB/s, "
			      "%.0fs, about %.0fs left",
			      name, done / 1048576.0, total / 1048576.0,
			      100.0 * done / total, rate / 1048576.0, el,
			      (total - done) / rate);
	else
		chom_progress("%s: %.1f MiB, %.0fs", name, done / 1048576.0,
			      el);
}

static void
note(void *ctx, const char *line)
{
	(void)ctx;
	chom_info("%s", line);
}

static const char *
kinds_of(const struct chom_manifest *m, char *buf, size_t size)
{
	size_t i, len = 0;

	buf[0] = '\0';
	for (i = 0; i < m->nparts && len < size; i++)
		len += (size_t)snprintf(buf + len, size - len, "%s%s",
					i ? "," : "", m->parts[i].kind);
	return buf;
}

/* The manifest of point id; code 1 when it is missing or unreadable. */
static int
load_manifest(struct chom_store *s, const char *host, const char *id,
	      struct chom_manifest *m, struct chom_err *e)
{
	char *text, why[sizeof(e->msg)];
	size_t len;
	int rc;

	if (chom_store_get(s, host, id, "manifest.json", CHOM_MANIFEST_MAX_SIZE,
			   &text, &len, e) < 0) {
		snprintf(why, sizeof(why), "%s", e->msg);
		return chom_err_set(e, CHOM_EXIT_FAIL,
				    "point %s: no readable manifest (%s)", id,
				    why);
	}
	rc = chom_manifest_parse(text, len, m, e);
	free(text);
	if (rc < 0) {
		snprintf(why, sizeof(why), "%s", e->msg);
		return chom_err_set(e, CHOM_EXIT_FAIL, "point %s: %s", id, why);
	}
	if (strcmp(m->point, id) || strcmp(m->host, host))
		return chom_err_set(e, CHOM_EXIT_FAIL,
				    "point %s: its manifest is of %s/%s", id,
				    chom_quote(m->host), m->point);
	return 0;
}

/*
 * No complete point for host: if it has incomplete ones, say how many and
 * the newest; if it has none at all, say which hosts the target has.
 */
static int
no_points(struct chom_store *s, const struct opts *o)
{
	struct chom_point *p;
	char **hosts, list[512] = "";
	size_t n, i, incomplete = 0, len = 0;
	struct chom_err e;

	if (chom_store_list(s, o->host, &p, &n, &e) == 0) {
		const char *newest = NULL;

		for (i = 0; i < n; i++)
			if (!p[i].complete && !incomplete++)
				newest = p[i].id;
		if (incomplete)
			chom_error("no complete backup point of host %s in %s: "
				   "only %zu incomplete one%s (no manifest), "
				   "the newest %s; see --list --all",
				   o->host, o->from, incomplete,
				   incomplete == 1 ? "" : "s", newest);
		free(p);
		if (incomplete)
			return CHOM_EXIT_FAIL;
	}
	if (chom_store_hosts(s, &hosts, &n, &e) == 0) {
		for (i = 0; i < n && len < sizeof(list); i++)
			if (strcmp(hosts[i], o->host))
				len += (size_t)snprintf(
				    list + len, sizeof(list) - len, "%s%s",
				    len ? ", " : "", hosts[i]);
		chom_store_hosts_free(hosts, n);
	}
	if (*list)
		chom_error("no backup point of host %s in %s (it has: %s; "
			   "use --host)",
			   o->host, o->from, list);
	else
		chom_error("no backup point of host %s in %s", o->host,
			   o->from);
	return CHOM_EXIT_FAIL;
}

static int
do_list(struct chom_store *s, const struct opts *o)
{
	struct chom_point *p;
	struct chom_err e;
	size_t n, i, shown = 0;

	if (chom_store_list(s, o->host, &p, &n, &e) < 0)
		return chom_report(&e);
	for (i = 0; i < n && !p[i].complete; i++)
		;
	/* None, or only incomplete ones and no --all: an empty table would
	 * hide them. */
	if (i == n && !(n && o->all)) {
		free(p);
		return no_points(s, o);
	}
	if (!o->json)
		printf("%-17s %-20s %-27s %10s  %s\n", "POINT", "TIME (UTC)",
		       "KINDS", "SIZE", "LABEL");
	for (i = 0; i < n; i++) {
		struct chom_manifest m;
		char when[32], iso[32], kinds[64], size[32];
		struct tm tm;

		if (!p[i].complete && !o->all)
			continue;
		gmtime_r(&p[i].when, &tm);
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
		strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%SZ", &tm);
		if (!p[i].complete ||
		    load_manifest(s, o->host, p[i].id, &m, &e) < 0) {
			const char *why =
			    p[i].complete ? "unreadable" : "incomplete";

			if (p[i].complete)
				chom_warn("%s", e.msg);
			if (o->json)
				chom_json_line(json_pack(
				    "{s:s, s:s, s:s, s:b, s:s}", "point",
				    p[i].id, "host", o->host, "time", iso,
				    "complete", 0, "state", why));
			else
				printf("%-17s %-20s %-27s %10s  %s\n", p[i].id,
				       when, why, "-", "");
			continue;
		}
		shown++;
		if (o->json) {
			json_t *kinds_j = json_array();
			size_t k;

			for (k = 0; k < m.nparts; k++)
				json_array_append_new(
				    kinds_j, json_string(m.parts[k].kind));
			chom_json_line(json_pack(
			    "{s:s, s:s, s:s, s:b, s:o, s:I, s:I, s:s?, s:s?}",
			    "point", p[i].id, "host", o->host, "time", iso,
			    "complete", 1, "kinds", kinds_j, "size",
			    (json_int_t)m.size, "plain_size",
			    (json_int_t)m.plain, "label",
			    *m.label ? m.label : NULL,
			    "database_server_version",
			    *m.db_version ? m.db_version : NULL));
			continue;
		}
		human(m.size, size, sizeof(size));
		printf("%-17s %-20s %-27s %10s  %s\n", p[i].id, when,
		       kinds_of(&m, kinds, sizeof(kinds)), size,
		       chom_quote(m.label));
	}
	free(p);
	(void)shown;
	return CHOM_EXIT_OK;
}

/*
 * POINT, or with latest and --at the newest complete point (at or before
 * TIME) that has a part of kind (any when kind is NULL): a 6-hourly
 * database backup is then not taken for the files of the daily one.
 * Its id into id and its manifest into m.
 */
static int
pick_point(struct chom_store *s, const struct opts *o, const char *kind,
	   char *id, struct chom_manifest *m, struct chom_err *e)
{
	struct chom_point *p;
	time_t at = 0;
	size_t n, i;
	bool any = false;

	if (o->at && parse_time(o->at, &at) < 0)
		return chom_err_set(e, CHOM_EXIT_USAGE,
				    "--at %s: not a time (2026-11-27, "
				    "2026-11-27T14:00Z, a point id, @EPOCH)",
				    chom_quote(o->at));
	if (o->point && strcmp(o->point, "latest")) {
		time_t t;

		if (chom_point_time(o->point, &t) < 0)
			return chom_err_set(e, CHOM_EXIT_USAGE,
					    "%s: not a point id "
					    "(YYYYMMDDTHHMMSSZ) or latest",
					    chom_quote(o->point));
		snprintf(id, CHOM_POINT_LEN + 1, "%s", o->point);
		return load_manifest(s, o->host, id, m, e);
	}
	if (chom_store_list(s, o->host, &p, &n, e) < 0)
		return -1;
	for (i = 0; i < n; i++) {
		if (!p[i].complete || (o->at && p[i].when > at))
			continue;
		any = true;
		if (load_manifest(s, o->host, p[i].id, m, e) < 0) {
			chom_warn("%s: skipped", e->msg);
			continue;
		}
		if (!kind || chom_manifest_part(m, kind))
			break;
	}
	if (i < n)
		snprintf(id, CHOM_POINT_LEN + 1, "%s", p[i].id);
	free(p);
	if (i < n)
		return 0;
	if (!any && !o->at)
		return chom_err_set(e, CHOM_EXIT_FAIL, "%s", ""); /* none */
	return chom_err_set(e, CHOM_EXIT_FAIL,
			    "no complete point of host %s%s%s%s%s%s", o->host,
			    kind ? " with a " : "", kind ? kind : "",
			    kind ? " part" : "", o->at ? " at or before " : "",
			    o->at ? o->at : "");
}

/* Whether the keys can open part p: its recipients against ours. */
static int
check_keys(const struct chom_age_keys *k, const struct chom_manifest_part *p,
	   const char *point, struct chom_err *e)
{
	char key[CHOM_AGE_RECIPIENT_SIZE], list[400] = "", given[400] = "";
	size_t i, j, len = 0, glen = 0;

	if (!p->encrypted)
		return 0;
	if (!k)
		return chom_err_set(e, CHOM_EXIT_USAGE,
				    "point %s is encrypted: give -i "
				    "IDENTITY_FILE or --passphrase-file",
				    point);
	if (!p->nrecipients) /* not recorded: age will tell */
		return 0;
	for (i = 0; i < chom_age_keys_describe(k, i, key, sizeof(key)); i++)
		for (j = 0; j < p->nrecipients; j++)
			if (!strcmp(key, p->recipients[j]))
				return 0;
	for (j = 0; j < p->nrecipients && len < sizeof(list); j++)
		len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s",
					j ? ", " : "", p->recipients[j]);
	for (i = 0; i < chom_age_keys_describe(k, i, key, sizeof(key)) &&
		    glen < sizeof(given);
	     i++)
		glen += (size_t)snprintf(given + glen, sizeof(given) - glen,
					 "%s%s", i ? ", " : "", key);
	return chom_err_set(e, CHOM_EXIT_FAIL,
			    "point %s: no identity given matches: its parts "
			    "are encrypted to %s; given: %s",
			    point, list, given);
}

static int
load_keys(const struct opts *o, struct chom_age_keys **out, struct chom_err *e)
{
	struct chom_age_keys *k;
	size_t i;

	*out = NULL;
	if (!o->nidentities && !o->passphrase_file)
		return 0;
	if (!(k = chom_age_keys_new()))
		return chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
	for (i = 0; i < o->nidentities; i++)
		if (chom_age_add_identities_file(k, o->identities[i], e) < 0)
			goto fail;
	if (o->passphrase_file) {
		char *pw;
		int rc;

		if (chom_secret_read(o->passphrase_file, &pw, e) < 0)
			goto fail;
		rc = chom_age_add_passphrase(k, pw, 0, e);
		chom_secret_free(pw);
		if (rc < 0)
			goto fail;
	}
	*out = k;
	return 0;
fail:
	chom_age_keys_free(k);
	return -1;
}

static void
part_json(const char *point, const struct chom_manifest_part *p,
	  const char *action, double seconds, const char *error)
{
	chom_json_line(json_pack(
	    "{s:s, s:s, s:s, s:s, s:b, s:I, s:I, s:f, "
	    "s:s?}",
	    "point", point, "part", p->name, "kind", p->kind, "action", action,
	    "ok", !error, "size", (json_int_t)p->size, "plain_size",
	    (json_int_t)p->plain, "seconds", seconds, "error", error));
}

static int
do_verify(const struct opts *o, const struct chom_restore_opts *ro,
	  const struct chom_manifest *m)
{
	int rc = CHOM_EXIT_OK;
	size_t i;

	for (i = 0; i < m->nparts; i++) {
		const struct chom_manifest_part *p = &m->parts[i];
		struct chom_sink *null;
		struct chom_err e;
		double t0 = chom_mono();
		char size[32];
		int r;

		r = check_keys(ro->identities, p, m->point, &e);
		if (r == 0 && (null = chom_sink_null_new(&e)))
			r = chom_restore_part(ro, p, null, &e);
		else
			r = -1;
		if (r < 0 && e.code > 128)
			return chom_report(&e);
		if (r < 0) {
			chom_error("%s", e.msg);
			rc = e.code == CHOM_EXIT_USAGE ? CHOM_EXIT_USAGE
						       : CHOM_EXIT_FAIL;
		}
		if (o->json) {
			part_json(m->point, p, "verify", chom_mono() - t0,
				  r < 0 ? e.msg : NULL);
			continue;
		}
		human(p->plain, size, sizeof(size));
		printf("%s %s %s (%s)\n", m->point, p->name,
		       r < 0 ? "FAILED" : "ok", size);
	}
	return rc;
}

/* The part each action restores. */
static const char *const kind[] = { [A_DB] = "db",
				    [A_FILES] = "files",
				    [A_CONFIG] = "config",
				    [A_SYSINFO] = "sysinfo" };

int
main(int argc, char **argv)
{
	static char dbcmd[PATH_MAX + 64];
	struct opts cfg = { 0 }, f = { 0 }, o;
	struct chom_store *store = NULL;
	struct chom_age_keys *keys = NULL;
	struct chom_manifest m;
	const struct chom_manifest_part *p = NULL;
	struct chom_restore_opts ro;
	struct chom_err e = { 0 };
	char point[CHOM_POINT_LEN + 1];
	double t0;
	size_t i;
	int rc;

	chom_cli_init("chom-restore");
	rc = parse(argc, argv, &cfg);
	if (rc < 0)
		return chom_close_stdout(CHOM_EXIT_OK);
	if (rc > 0)
		return rc;
	if (chom_config_load(cfg.config_file, "restore", config_key, &f, &e) <
	    0)
		return chom_report(&e);
	o = cfg;
	if (!o.from)
		o.from = f.from;
	if (!o.host)
		o.host = f.host;
	if (!o.db_cmd && !o.db_defaults) {
		o.db_cmd = f.db_cmd;
		o.db_defaults = f.db_defaults;
	}
	if (!o.spool_dir)
		o.spool_dir = f.spool_dir;
	for (i = 0; i < f.nidentities && !cfg.nidentities; i++)
		o.identities[o.nidentities++] = f.identities[i];

	if (o.action == A_NONE)
		return chom_usage_error("no action: give --list, --verify, "
					"--db, --files, --config or --sysinfo");
	if (!o.from)
		return chom_usage_error(
		    "no target: give --from file:///PATH or "
		    "s3://BUCKET/PREFIX");
	if (chom_cli_host(&o.host))
		return CHOM_EXIT_USAGE;
	if (o.action == A_LIST && (o.point || o.at))
		return chom_usage_error("--list takes no POINT or --at");
	if (o.point && o.at)
		return chom_usage_error("POINT or --at, not both");
	if ((o.action == A_FILES || o.action == A_CONFIG) != !!o.target)
		return chom_usage_error(
		    o.target ? "--target goes with --files or --config"
			     : "%s needs --target DIR",
		    action_opt[o.action]);
	if (o.action != A_DB &&
	    (cfg.db_cmd || cfg.db_defaults || o.stream || o.no_spool))
		return chom_usage_error("--db-cmd, --db-defaults, --stream and "
					"--no-spool go with --db");
	if (o.stream && o.no_spool)
		return chom_usage_error("--stream or --no-spool, not both");
	if (o.db_cmd && o.db_defaults)
		return chom_usage_error("--db-defaults goes with the default "
					"--db-cmd; put the option file in your "
					"command");
	if (o.db_defaults) {
		/* Credentials by option file, never on the command line. */
		if (strchr(o.db_defaults, '\''))
			return chom_usage_error("--db-defaults: a quote in "
						"the path");
		snprintf(dbcmd, sizeof(dbcmd),
			 "mysql --defaults-extra-file='%s'", o.db_defaults);
		o.db_cmd = dbcmd;
	}
	if (!o.db_cmd)
		o.db_cmd = DB_CMD;
	if (o.all && o.action != A_LIST)
		return chom_usage_error("--all goes with --list");

	if (chom_store_open_opts(
		o.from,
		&(struct chom_store_opts){ .stop = chom_cli_catch_signals() },
		&store, &e) < 0) {
		rc = e.code == CHOM_EXIT_USAGE ? chom_usage_error("%s", e.msg)
					       : chom_report(&e);
		goto out;
	}
	if (o.action == A_LIST) {
		rc = do_list(store, &o);
		goto out;
	}
	if (load_keys(&o, &keys, &e) < 0) {
		rc = e.code == CHOM_EXIT_USAGE ? chom_usage_error("%s", e.msg)
					       : chom_report(&e);
		goto out;
	}
	if (pick_point(store, &o, kind[o.action], point, &m, &e) < 0) {
		if (e.code == CHOM_EXIT_USAGE)
			rc = chom_usage_error("%s", e.msg);
		else if (!*e.msg)
			rc = no_points(store, &o);
		else
			rc = chom_report(&e);
		goto out;
	}
	ro = (struct chom_restore_opts){
		.store = store,
		.host = o.host,
		.point = point,
		.identities = keys,
		.progress = chom_cli_tty() && !o.json ? progress : NULL,
		.on_message = note,
		.stop = chom_cli_catch_signals(),
	};
	if (o.action == A_VERIFY) {
		/* Without a key, nothing encrypted can be checked: said once.
		 */
		for (i = 0; i < m.nparts; i++)
			if (!keys && m.parts[i].encrypted) {
				check_keys(keys, &m.parts[i], point, &e);
				rc = chom_usage_error("%s", e.msg);
				goto out;
			}
		rc = do_verify(&o, &ro, &m);
		goto out;
	}
	if (!(p = chom_manifest_part(&m, kind[o.action]))) {
		chom_error("point %s has no %s part (it has: %s)", point,
			   kind[o.action], kinds_of(&m, dbcmd, sizeof(dbcmd)));
		rc = CHOM_EXIT_FAIL;
		goto out;
	}
	if (check_keys(keys, p, point, &e) < 0) {
		rc = e.code == CHOM_EXIT_USAGE ? chom_usage_error("%s", e.msg)
					       : chom_report(&e);
		goto out;
	}
	chom_debug("restoring %s/%s/%s from %s", o.host, point, p->name,
		   o.from);
	t0 = chom_mono();
	if (o.action == A_DB) {
		rc = chom_restore_to_cmd(&ro, p, o.db_cmd, "--db-cmd",
					 o.stream     ? CHOM_RESTORE_STREAM
					 : o.no_spool ? CHOM_RESTORE_TWICE
						      : CHOM_RESTORE_SPOOL,
					 o.spool_dir, &e);
		if (rc < 0 && o.stream && e.code == CHOM_EXIT_FAIL)
			chom_warn("--stream: the database may hold part of "
				  "the dump");
	} else if (o.action == A_SYSINFO) {
		/* Checked whole before the first line is printed, as --db. */
		fflush(stdout);
		rc = chom_restore_to_cmd(&ro, p, "cat", "stdout",
					 CHOM_RESTORE_SPOOL, o.spool_dir, &e);
	} else {
		unsigned long long entries;

		rc = chom_restore_tree(&ro, p, o.target, &entries, &e);
		if (rc == 0)
			chom_info("%llu entries into %s", entries, o.target);
	}
	if (rc < 0) {
		rc = e.code == CHOM_EXIT_USAGE ? chom_usage_error("%s", e.msg)
					       : chom_report(&e);
		goto out;
	}
	if (o.json)
		part_json(point, p, action_opt[o.action] + 2, chom_mono() - t0,
			  NULL);
	else if (o.action != A_SYSINFO)
		printf("%s\n", point);
	rc = CHOM_EXIT_OK;
out:
	chom_age_keys_free(keys);
	chom_store_free(store);
	return chom_close_stdout(rc);
}
