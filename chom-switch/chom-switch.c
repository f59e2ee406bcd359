/* chom-switch: make a release live, roll back, list and prune releases. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "cli.h"
#include "config.h"
#include "exitcode.h"
#include "release.h"
#include "switch.h"

enum action { NONE, SWITCH, NEXT, ROLLBACK, LIST, PRUNE };

struct opts {
	const char *base, *exec_cmd, *metrics_dir;
	long long keep;
	double wait_s;
};

static void
usage(void)
{
	printf(
	    "Usage: chom-switch [OPTIONS] ID | --next | --rollback | --list | "
	    "--prune [N]\n"
	    "Make a release live by replacing BASE/current in one atomic "
	    "step.\n\n"
	    "      --next              make the staged release (BASE/next) "
	    "live\n"
	    "      --rollback          go back to the release live before\n"
	    "      --list              list releases, newest first\n"
	    "      --prune [N]         keep the N newest releases (default 5), "
	    "remove the "
	    "rest\n"
	    "      --force             prune releases that processes still "
	    "use\n"
	    "      --exec CMD          run CMD after the switch; switch back "
	    "if "
	    "it fails\n"
	    "      --metrics-dir DIR   write chom_switch.prom for "
	    "node_exporter\n"
	    "      --wait SECONDS      wait for the deploy lock (default 0)\n"
	    "      --summary FILE      append a Markdown summary (default "
	    "$GITHUB_STEP_SUMMARY)\n"
	    "  -d, --base DIR          deploy base (default %s)\n"
	    "  -c, --config FILE       configuration file (default %s)\n"
	    "      --json              print results as JSON lines\n"
	    "  -q, --quiet             print errors only\n"
	    "  -v, --verbose           explain\n"
	    "      --help              show this help\n"
	    "      --version           show the version\n\n"
	    "Exit status: 0 done, 1 failed (previous release live), 2 usage, "
	    "3 busy,\n4 failed and could not switch back. See "
	    "chom-switch(1).\n",
	    CHOM_BASE_DEFAULT, CHOM_CONFIG_DEFAULT);
}

static int
config_key(void *ctx, const char *section, const char *key, const char *value,
	   struct chom_err *e)
{
	struct opts *o = ctx;
	const char *copy;

	if (!strcmp(section, "global")) /* base */
		return (o->base = chom_config_keep(value)) ? 0 : -1;
	if (!strcmp(key, "keep")) {
		if (chom_parse_ll(value, 0, 1000000, &o->keep) < 0)
			return chom_err_set(e, CHOM_EXIT_USAGE,
					    "keep: not a positive number: %s",
					    value);
		return 0;
	}
	if (!strcmp(key, "wait")) {
		if (chom_parse_duration(value, &o->wait_s) < 0)
			return chom_err_set(e, CHOM_EXIT_USAGE,
					    "wait: not a duration: %s", value);
		return 0;
	}
	if (strcmp(key, "exec") && strcmp(key, "metrics_dir"))
		return chom_err_set(e, CHOM_EXIT_USAGE,
				    "unknown key '%s' in [switch]", key);
	copy = chom_config_keep(value);
	if (!copy)
		return chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
	if (!strcmp(key, "exec"))
		o->exec_cmd = copy;
	else
		o->metrics_dir = copy;
	return 0;
}

static int
do_list(const struct chom_layout *l, int json)
{
	struct chom_release_info *v;
	struct chom_err e;
	size_t n, i;

	if (chom_switch_list(l, &v, &n, &e) < 0)
		return chom_report(&e);
	for (i = 0; i < n; i++) {
		char when[32], marks[32] = "";

		chom_iso_time(v[i].rel.staged, when, sizeof(when));
		if (json) {
			chom_json_line(json_pack(
			    "{s:s, s:s, s:b, s:b, s:b}", "id", v[i].rel.id,
			    "staged", when, "current", v[i].current, "previous",
			    v[i].previous, "next", v[i].next));
			continue;
		}
		snprintf(marks, sizeof(marks), "%s%s%s%s%s",
			 v[i].current ? "current" : "",
			 v[i].current && (v[i].previous || v[i].next) ? ","
								      : "",
			 v[i].previous ? "previous" : "",
			 v[i].previous && v[i].next ? "," : "",
			 v[i].next ? "next" : "");
		if (marks[0])
			printf("%-24s %s  %s\n", v[i].rel.id, when, marks);
		else
			printf("%-24s %s\n", v[i].rel.id, when);
	}
	free(v);
	return CHOM_EXIT_OK;
}

static int
do_prune(const struct chom_layout *l, const struct opts *o, bool force,
	 int json)
{
	struct chom_prune_item *v;
	struct chom_err e;
	size_t n, i;
	int rc;

	rc =
	    chom_switch_prune(l, (size_t)o->keep, force, o->wait_s, &v, &n, &e);
	for (i = 0; i < n; i++) {
		if (json)
			chom_json_line(json_pack(
			    "{s:s, s:b, s:s?}", "id", v[i].id, "removed",
			    v[i].removed, "reason", v[i].why));
		else if (v[i].removed)
			printf("%s\n", v[i].id);
		else
			chom_debug("kept %s: %s", v[i].id, v[i].why);
	}
	free(v);
	return rc < 0 ? chom_report(&e) : CHOM_EXIT_OK;
}

/* For the job's page: what changed in production, or why it did not. */
static void
write_summary(const char *path, enum action act,
	      const struct chom_switch_result *r, const struct chom_err *failed)
{
	char text[2048], result[1100];
	struct chom_err e;

	if (!path)
		return;
	chom_md_cell(failed       ? failed->msg
		     : r->changed ? "live"
				  : "already live",
		     result, sizeof(result));
	snprintf(text, sizeof(text),
		 "### chom-switch\n\n"
		 "| action | from | to | result | switch time |\n"
		 "|---|---|---|---|---|\n"
		 "| %s | %s | %s | %s | %.1f ms |\n\n",
		 act == ROLLBACK ? "rollback" : "switch",
		 r->from[0] ? r->from : "-", r->to[0] ? r->to : "-", result,
		 r->seconds * 1000);
	if (chom_summary_append(path, text, &e) < 0)
		chom_warn("%s", e.msg);
}

enum {
	OPT_NEXT = 256,
	OPT_ROLLBACK,
	OPT_LIST,
	OPT_PRUNE,
	OPT_FORCE,
	OPT_EXEC,
	OPT_METRICS,
	OPT_SUMMARY,
	OPT_WAIT,
	OPT_JSON,
	OPT_HELP,
	OPT_VERSION
};

static const struct option longopts[] = {
	{ "base", required_argument, NULL, 'd' },
	{ "config", required_argument, NULL, 'c' },
	{ "next", no_argument, NULL, OPT_NEXT },
	{ "rollback", no_argument, NULL, OPT_ROLLBACK },
	{ "list", no_argument, NULL, OPT_LIST },
	{ "prune", optional_argument, NULL, OPT_PRUNE },
	{ "summary", required_argument, NULL, OPT_SUMMARY },
	{ "force", no_argument, NULL, OPT_FORCE },
	{ "exec", required_argument, NULL, OPT_EXEC },
	{ "metrics-dir", required_argument, NULL, OPT_METRICS },
	{ "wait", required_argument, NULL, OPT_WAIT },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "quiet", no_argument, NULL, 'q' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, OPT_HELP },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

static int
set_action(enum action *a, enum action want)
{
	if (*a != NONE && *a != want)
		return -1;
	*a = want;
	return 0;
}

int
main(int argc, char **argv)
{
	volatile sig_atomic_t *stop;
	struct opts cli = { 0 }, o = { 0 };
	const char *env, *wait = NULL, *prune = NULL, *config = NULL,
			 *summary = NULL;
	struct chom_switch_result res;
	struct chom_layout layout;
	struct chom_err e = { 0 };
	enum action act = NONE;
	bool force = false;
	int c, json = 0, rc;

	chom_cli_init("chom-switch");
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":d:c:qv", longopts, NULL)) != -1) {
		enum action want = NONE;

		switch (c) {
		case 'd': cli.base = optarg; break;
		case 'c': config = optarg; break;
		case OPT_NEXT: want = NEXT; break;
		case OPT_ROLLBACK: want = ROLLBACK; break;
		case OPT_LIST: want = LIST; break;
		case OPT_PRUNE:
			want = PRUNE;
			prune = optarg;
			break;
		case OPT_FORCE: force = true; break;
		case OPT_EXEC: cli.exec_cmd = optarg; break;
		case OPT_METRICS: cli.metrics_dir = optarg; break;
		case OPT_WAIT: wait = optarg; break;
		case OPT_SUMMARY: summary = optarg; break;
		case OPT_JSON: json = 1; break;
		case 'q': chom_cli_set_verbosity(CHOM_QUIET); break;
		case 'v': chom_cli_set_verbosity(CHOM_VERBOSE); break;
		case OPT_HELP: usage(); return chom_close_stdout(CHOM_EXIT_OK);
		case OPT_VERSION:
			return chom_close_stdout(chom_print_version());
		default: return chom_usage_getopt(c, argv);
		}
		if (want != NONE && set_action(&act, want) < 0)
			return chom_usage_error(
			    "give one of ID, --next, --rollback, "
			    "--list, --prune");
	}
	argc -= optind;
	argv += optind;
	if (act == PRUNE && !prune && argc == 1) {
		prune = argv[0]; /* "--prune 3" as well as "--prune=3" */
		argc--;
	}
	if (argc > 1 || (argc == 1 && act != NONE))
		return chom_usage_error("give one of ID, --next, --rollback, "
					"--list, --prune");
	if (argc == 1) {
		act = SWITCH;
		if (!chom_release_id_valid(argv[0]))
			return chom_usage_error(
			    "invalid release ID '%s': 1-64 of "
			    "[A-Za-z0-9._-], not starting with '.'",
			    chom_quote(argv[0]));
	}
	if (act == NONE)
		return chom_usage_error("nothing to do: give an ID, --next, "
					"--rollback, --list or --prune");

	o.keep = 5;
	o.base = CHOM_BASE_DEFAULT;
	if (chom_config_load(config, "switch", config_key, &o, &e) < 0)
		return chom_report(&e);
	if ((env = getenv("CHOM_BASE")) && *env)
		o.base = env;
	if (cli.base)
		o.base = cli.base;
	if (cli.exec_cmd)
		o.exec_cmd = cli.exec_cmd;
	if (cli.metrics_dir)
		o.metrics_dir = cli.metrics_dir;
	if (wait && chom_parse_duration(wait, &o.wait_s) < 0)
		return chom_usage_error("--wait: not a duration: %s",
					chom_quote(wait));
	if (prune && chom_parse_ll(prune, 0, 1000000, &o.keep) < 0)
		return chom_usage_error("--prune: not a number: %s",
					chom_quote(prune));
	if (chom_layout_init(&layout, o.base, &e) < 0)
		return chom_report(&e);

	if (act == LIST)
		return chom_close_stdout(do_list(&layout, json));
	if (act == PRUNE)
		return chom_close_stdout(do_prune(&layout, &o, force, json));

	stop = chom_cli_catch_signals();
	rc = chom_switch(
	    &(struct chom_switch_opts){
		.layout = &layout,
		.what = act == NEXT       ? CHOM_SWITCH_NEXT
			: act == ROLLBACK ? CHOM_SWITCH_ROLLBACK
					  : CHOM_SWITCH_ID,
		.id = argc ? argv[0] : NULL,
		.exec_cmd = o.exec_cmd,
		.wait_s = o.wait_s,
		.metrics_dir = o.metrics_dir,
		.stop = stop,
	    },
	    &res, &e);
	write_summary(chom_summary_path(summary), act, &res,
		      rc < 0 ? &e : NULL);
	if (rc < 0)
		return chom_report(&e);
	if (res.warning[0])
		chom_warn("%s", res.warning);
	if (!res.changed)
		chom_info("%s is already live", res.to);
	else
		chom_info("%s -> %s (%.1f ms)",
			  res.from[0] ? res.from : "(none)", res.to,
			  res.seconds * 1000);
	if (json)
		chom_json_line(
		    json_pack("{s:s, s:s, s:s, s:s, s:b, s:f}", "action",
			      act == ROLLBACK ? "rollback" : "switch", "from",
			      res.from, "to", res.to, "path", res.path,
			      "changed", res.changed, "seconds", res.seconds));
	else
		printf("%s\n", res.path);
	return chom_close_stdout(CHOM_EXIT_OK);
}
