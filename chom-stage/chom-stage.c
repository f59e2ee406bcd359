/* chom-stage: unpack and verify a build artifact into a new release. */
#include <getopt.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "config.h"
#include "exitcode.h"
#include "release.h"
#include "sha256.h"
#include "stage.h"

#define MAX_LINKS 64

struct opts {
	const char *config, *base, *id, *sha256, *checksums;
	const char *links[MAX_LINKS];
	size_t nlinks;
	int require_checksum; /* -1 unset */
	unsigned long long max_bytes, max_files;
	double wait_s;
	int json;
};

static void
usage(void)
{
	printf(
	    "Usage: chom-stage [OPTIONS] ARTIFACT|-\n"
	    "Unpack and verify a build artifact into BASE/releases/ID and "
	    "point BASE/next at it.\n\n"
	    "  -d, --base DIR          deploy base (default %s)\n"
	    "  -r, --id ID             release ID (default: from the "
	    "artifact's "
	    "name)\n"
	    "      --sha256 HEX        expected SHA-256 of the artifact\n"
	    "      --checksums FILE    sha256sum(1) file holding the "
	    "artifact's "
	    "digest\n"
	    "      --require-checksum  refuse an artifact without a checksum\n"
	    "      --link PATH         make PATH a symlink to BASE/shared/PATH "
	    "(repeatable)\n"
	    "      --max-bytes SIZE    refuse a release larger than SIZE "
	    "(default 10G)\n"
	    "      --max-files N       refuse more than N entries (default "
	    "1000000)\n"
	    "      --wait SECONDS      wait for the deploy lock (default 30)\n"
	    "  -c, --config FILE       configuration file (default %s)\n"
	    "      --json              print the result as JSON\n"
	    "  -q, --quiet             print errors only\n"
	    "  -v, --verbose           explain\n"
	    "      --help              show this help\n"
	    "      --version           show the version\n\n"
	    "Prints the release's path. Exit status: 0 staged, 1 failed, 2 "
	    "usage, 3 busy.\nSee chom-stage(1).\n",
	    CHOM_BASE_DEFAULT, CHOM_CONFIG_DEFAULT);
}

static int
add_link(struct opts *o, const char *path, struct chom_err *e)
{
	if (o->nlinks == MAX_LINKS)
		return chom_err_set(e, CHOM_EXIT_USAGE, "more than %d links",
				    MAX_LINKS);
	if (chom_stage_check_link(path, e) < 0)
		return -1;
	o->links[o->nlinks++] = path;
	return 0;
}

/* The config file's values; options parsed later override them. */
static int
config_key(void *ctx, const char *section, const char *key, const char *value,
	   struct chom_err *e)
{
	struct opts *o = ctx;
	long long n;
	bool b;

	if (!strcmp(section, "global")) /* base */
		return (o->base = chom_config_keep(value)) ? 0 : -1;
	if (!strcmp(key, "link")) {
		const char *link = chom_config_keep(value);

		if (!link)
			return chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
		return add_link(o, link, e);
	}
	if (!strcmp(key, "require_checksum")) {
		if (chom_parse_bool(value, &b) < 0)
			return chom_err_set(
			    e, CHOM_EXIT_USAGE,
			    "require_checksum: not yes or no: %s", value);
		o->require_checksum = b;
		return 0;
	}
	if (!strcmp(key, "max_bytes")) {
		if (chom_parse_size(value, &o->max_bytes) < 0)
			return chom_err_set(e, CHOM_EXIT_USAGE,
					    "max_bytes: not a size: %s", value);
		return 0;
	}
	if (!strcmp(key, "max_files")) {
		if (chom_parse_ll(value, 1, 1LL << 40, &n) < 0)
			return chom_err_set(e, CHOM_EXIT_USAGE,
					    "max_files: not a number: %s",
					    value);
		o->max_files = (unsigned long long)n;
		return 0;
	}
	if (!strcmp(key, "wait")) {
		if (chom_parse_duration(value, &o->wait_s) < 0)
			return chom_err_set(e, CHOM_EXIT_USAGE,
					    "wait: not a duration: %s", value);
		return 0;
	}
	return chom_err_set(e, CHOM_EXIT_USAGE, "unknown key '%s' in [stage]",
			    key);
}

static void
progress(void *ctx, const struct chom_extract_stats *st)
{
	static struct timespec last;
	const struct timespec *t0 = ctx;
	struct timespec now;
	double el;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec - last.tv_sec + (now.tv_nsec - last.tv_nsec) / 1e9 < 0.2)
		return;
	last = now;
	el = now.tv_sec - t0->tv_sec + (now.tv_nsec - t0->tv_nsec) / 1e9;
	if (st->in_total)
		chom_progress(
		    "%llu entries, %.1f MiB read of %.1f MiB (%.0f%%), "
		    "%.1f MiB/s, %.1fs",
		    st->entries, st->in_bytes / 1048576.0,
		    st->in_total / 1048576.0,
		    100.0 * st->in_bytes / st->in_total,
		    el > 0 ? st->in_bytes / 1048576.0 / el : 0, el);
	else
		chom_progress("%llu entries, %.1f MiB read, %.1f MiB/s, %.1fs",
			      st->entries, st->in_bytes / 1048576.0,
			      el > 0 ? st->in_bytes / 1048576.0 / el : 0, el);
}

enum {
	OPT_SHA = 256,
	OPT_SUMS,
	OPT_REQ,
	OPT_LINK,
	OPT_MAXB,
	OPT_MAXF,
	OPT_WAIT,
	OPT_JSON,
	OPT_HELP,
	OPT_VERSION
};

static const struct option longopts[] = {
	{ "base", required_argument, NULL, 'd' },
	{ "id", required_argument, NULL, 'r' },
	{ "config", required_argument, NULL, 'c' },
	{ "sha256", required_argument, NULL, OPT_SHA },
	{ "checksums", required_argument, NULL, OPT_SUMS },
	{ "require-checksum", no_argument, NULL, OPT_REQ },
	{ "link", required_argument, NULL, OPT_LINK },
	{ "max-bytes", required_argument, NULL, OPT_MAXB },
	{ "max-files", required_argument, NULL, OPT_MAXF },
	{ "wait", required_argument, NULL, OPT_WAIT },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "quiet", no_argument, NULL, 'q' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, OPT_HELP },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

int
main(int argc, char **argv)
{
	volatile sig_atomic_t *stop;
	struct opts cli = { .require_checksum = -1 },
		    o = { .require_checksum = -1 };
	const char *links[MAX_LINKS], *env, *artifact,
	    *maxb = NULL, *maxf = NULL, *wait = NULL;
	char id[CHOM_ID_MAX + 1], hex[CHOM_SHA256_HEXLEN + 1], *want = NULL;
	struct chom_stage_result res;
	struct chom_layout layout;
	struct chom_err e = { 0 };
	struct timespec t0;
	size_t nlinks = 0, i;
	int c;

	setlocale(LC_CTYPE, "C.UTF-8");
	chom_cli_init("chom-stage");
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":d:r:c:qv", longopts, NULL)) !=
	       -1) {
		switch (c) {
		case 'd': cli.base = optarg; break;
		case 'r': cli.id = optarg; break;
		case 'c': cli.config = optarg; break;
		case OPT_SHA: cli.sha256 = optarg; break;
		case OPT_SUMS: cli.checksums = optarg; break;
		case OPT_REQ: cli.require_checksum = 1; break;
		case OPT_LINK:
			if (nlinks == MAX_LINKS)
				return chom_usage_error(
				    "more than %d --link options", MAX_LINKS);
			links[nlinks++] = optarg;
			break;
		case OPT_MAXB: maxb = optarg; break;
		case OPT_MAXF: maxf = optarg; break;
		case OPT_WAIT: wait = optarg; break;
		case OPT_JSON: cli.json = 1; break;
		case 'q': chom_cli_set_verbosity(CHOM_QUIET); break;
		case 'v': chom_cli_set_verbosity(CHOM_VERBOSE); break;
		case OPT_HELP: usage(); return chom_close_stdout(CHOM_EXIT_OK);
		case OPT_VERSION:
			return chom_close_stdout(chom_print_version());
		default: return chom_usage_getopt(c, argv);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 0)
		return chom_usage_error(
		    "no artifact given (a file, or - for stdin)");
	if (argc > 1)
		return chom_usage_error("one artifact, not %d", argc);
	artifact = argv[0];

	/* Defaults, then the file, the environment, and the options. */
	o.max_bytes = 10ULL << 30;
	o.max_files = 1000000;
	o.wait_s = 30;
	o.base = CHOM_BASE_DEFAULT;
	if (chom_config_load(cli.config, "stage", config_key, &o, &e) < 0)
		return chom_report(&e);
	if ((env = getenv("CHOM_BASE")) && *env)
		o.base = env;
	if (cli.base)
		o.base = cli.base;
	if (cli.require_checksum >= 0)
		o.require_checksum = cli.require_checksum;
	if (maxb && chom_parse_size(maxb, &o.max_bytes) < 0)
		return chom_usage_error("--max-bytes: not a size: %s",
					chom_quote(maxb));
	if (maxf) {
		long long n;

		if (chom_parse_ll(maxf, 1, 1LL << 40, &n) < 0)
			return chom_usage_error("--max-files: not a number: %s",
						chom_quote(maxf));
		o.max_files = (unsigned long long)n;
	}
	if (wait && chom_parse_duration(wait, &o.wait_s) < 0)
		return chom_usage_error("--wait: not a duration: %s",
					chom_quote(wait));
	for (i = 0; i < nlinks; i++)
		if (add_link(&o, links[i], &e) < 0)
			return chom_usage_error("%s", e.msg);

	if (cli.id) {
		if (!chom_release_id_valid(cli.id))
			return chom_usage_error(
			    "invalid release ID '%s': 1-64 of "
			    "[A-Za-z0-9._-], not starting with '.'",
			    chom_quote(cli.id));
		snprintf(id, sizeof(id), "%s", cli.id);
	} else if (!strcmp(artifact, "-")) {
		chom_release_id_time(time(NULL), id, sizeof(id));
	} else if (chom_release_id_from_name(artifact, id, sizeof(id)) < 0) {
		return chom_usage_error(
		    "cannot make a release ID of '%s'; give one "
		    "with -r",
		    artifact);
	}
	if (cli.sha256 && cli.checksums)
		return chom_usage_error("--sha256 and --checksums: give one");
	if (cli.sha256) {
		if (chom_sha256_parse_hex(cli.sha256, hex) < 0)
			return chom_usage_error(
			    "--sha256: not 64 hex digits: %s", cli.sha256);
		want = hex;
	} else if (cli.checksums) {
		if (chom_sha256_lookup(cli.checksums,
				       strcmp(artifact, "-") ? artifact : NULL,
				       hex, &e) < 0)
			return chom_report(&e);
		want = hex;
	} else if (o.require_checksum > 0) {
		return chom_usage_error("no checksum: --require-checksum needs "
					"--sha256 or --checksums");
	}
	if (chom_layout_init(&layout, o.base, &e) < 0)
		return chom_report(&e);

	stop = chom_cli_catch_signals();
	clock_gettime(CLOCK_MONOTONIC, &t0);
	chom_debug("staging %s as %s in %s", artifact, id, layout.releases);
	if (chom_stage(
		&(struct chom_stage_opts){
		    .layout = &layout,
		    .artifact = artifact,
		    .id = id,
		    .sha256 = want,
		    .links = o.links,
		    .nlinks = o.nlinks,
		    .max_bytes = o.max_bytes,
		    .max_files = o.max_files,
		    .wait_s = o.wait_s,
		    .stop = stop,
		    .progress = progress,
		    .progress_ctx = &t0,
		},
		&res, &e) < 0) {
		chom_progress_end();
		if (!*stop)
			return chom_report(&e);
		chom_error("interrupted; nothing staged");
		return chom_cli_signal_status(*stop);
	}
	chom_progress_end();
	if (res.removed_stale)
		chom_info("removed %d temporary directories of earlier runs",
			  res.removed_stale);
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = t1.tv_sec - t0.tv_sec + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	chom_debug("%llu entries, %llu bytes, sha256 %s, %.3fs", res.st.entries,
		   res.st.bytes, res.sha256, secs);
	if (cli.json)
		chom_json_line(
		    json_pack("{s:s, s:s, s:s, s:I, s:I, s:f}", "id", id,
			      "path", res.path, "sha256", res.sha256, "entries",
			      (json_int_t)res.st.entries, "bytes",
			      (json_int_t)res.st.bytes, "seconds", secs));
	else
		printf("%s\n", res.path);
	return chom_close_stdout(CHOM_EXIT_OK);
}
