/* chom-backup: encrypted, compressed, verifiable backups. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "age.h"
#include "backup.h"
#include "cli.h"
#include "config.h"
#include "exitcode.h"
#include "fsutil.h"
#include "metrics.h"
#include "release.h"
#include "retention.h"
#include "secret.h"

#define MAX_LIST 32

struct opts {
	const char *to[MAX_LIST], *files[MAX_LIST], *config[MAX_LIST];
	const char *recipients[MAX_LIST], *recipient_files[MAX_LIST];
	size_t nto, nfiles, nconfig, nrecipients, nrecipient_files;
	const char *host, *label, *db_cmd, *db_defaults, *passphrase_file;
	const char *keygen, *metrics_dir, *config_file, *storage_class;
	const char *base; /* [global] base, for --all */
	bool db, sysinfo, all, no_encrypt, prune, json;
	enum chom_compress compress;
	long long level, threads, s3_parallel;
	struct chom_retention keep;
};

static void
usage(void)
{
	printf(
	    "Usage: chom-backup [OPTIONS] [--db] [--files PATH] [--config "
	    "PATH] [--sysinfo] [--all]\n"
	    "       chom-backup --prune [--keep-...] --to URL\n"
	    "       chom-backup --keygen FILE\n"
	    "Back up the database, files, configuration and system facts, "
	    "compressed and\nencrypted, to every --to target in one pass.\n\n"
	    "  --to URL              file:///PATH or s3://BUCKET/PREFIX "
	    "(repeatable)\n"
	    "  --host NAME           the HOST folder (default: the short host "
	    "name)\n"
	    "  --db                  dump the database with --db-cmd\n"
	    "  --db-cmd CMD          default: %s\n"
	    "                        (mariadb-dump if no mysqldump)\n"
	    "  --db-defaults FILE    MySQL option file with the credentials\n"
	    "  --files PATH          application files (repeatable)\n"
	    "  --config PATH         configuration (repeatable)\n"
	    "  --sysinfo             packages, kernel, disks, crontabs\n"
	    "  --all                 --db --sysinfo, BASE/shared, and /etc "
	    "configuration\n"
	    "  -r, --recipient AGE1  encrypt to this age recipient "
	    "(repeatable)\n"
	    "  -R, --recipients-file FILE\n"
	    "  --passphrase-file FILE  encrypt with a passphrase (scrypt)\n"
	    "  --no-encrypt          store parts unencrypted\n"
	    "  --keygen FILE         write a new identity, print its "
	    "recipient\n"
	    "  --compress gzip|zstd|none, --level N, --threads N\n"
	    "  --label TEXT          recorded in the manifest\n"
	    "  --metrics-dir DIR     chom_backup.prom for node_exporter\n"
	    "  --prune               remove points per --keep-last, "
	    "--keep-within,\n"
	    "                        --keep-daily, --keep-weekly, "
	    "--keep-monthly\n"
	    "  --s3-parallel N       S3 parts in flight (default 4)\n"
	    "  --storage-class CLASS S3 storage class of the parts\n"
	    "  --json, -q, -v, -c FILE, --help, --version\n\n"
	    "Prints the point id. Exit status: 0 done, 1 failed (no point "
	    "left), 2 usage,\n3 busy. See chom-backup(1).\n",
	    CHOM_BACKUP_DB_CMD);
}

enum {
	OPT_TO = 256,
	OPT_HOST,
	OPT_DB,
	OPT_DBCMD,
	OPT_DBDEF,
	OPT_FILES,
	OPT_CONFIG,
	OPT_SYSINFO,
	OPT_ALL,
	OPT_PASS,
	OPT_NOENC,
	OPT_KEYGEN,
	OPT_COMPRESS,
	OPT_LEVEL,
	OPT_THREADS,
	OPT_LABEL,
	OPT_METRICS,
	OPT_PRUNE,
	OPT_KLAST,
	OPT_KWITHIN,
	OPT_KDAILY,
	OPT_KWEEKLY,
	OPT_KMONTHLY,
	OPT_JSON,
	OPT_S3PAR,
	OPT_SCLASS,
	OPT_HELP,
	OPT_VERSION
};

static const struct option longopts[] = {
	{ "to", required_argument, NULL, OPT_TO },
	{ "host", required_argument, NULL, OPT_HOST },
	{ "db", no_argument, NULL, OPT_DB },
	{ "db-cmd", required_argument, NULL, OPT_DBCMD },
	{ "db-defaults", required_argument, NULL, OPT_DBDEF },
	{ "files", required_argument, NULL, OPT_FILES },
	{ "config", required_argument, NULL, OPT_CONFIG },
	{ "sysinfo", no_argument, NULL, OPT_SYSINFO },
	{ "all", no_argument, NULL, OPT_ALL },
	{ "recipient", required_argument, NULL, 'r' },
	{ "recipients-file", required_argument, NULL, 'R' },
	{ "passphrase-file", required_argument, NULL, OPT_PASS },
	{ "no-encrypt", no_argument, NULL, OPT_NOENC },
	{ "keygen", required_argument, NULL, OPT_KEYGEN },
	{ "compress", required_argument, NULL, OPT_COMPRESS },
	{ "level", required_argument, NULL, OPT_LEVEL },
	{ "threads", required_argument, NULL, OPT_THREADS },
	{ "label", required_argument, NULL, OPT_LABEL },
	{ "metrics-dir", required_argument, NULL, OPT_METRICS },
	{ "prune", no_argument, NULL, OPT_PRUNE },
	{ "keep-last", required_argument, NULL, OPT_KLAST },
	{ "keep-within", required_argument, NULL, OPT_KWITHIN },
	{ "keep-daily", required_argument, NULL, OPT_KDAILY },
	{ "keep-weekly", required_argument, NULL, OPT_KWEEKLY },
	{ "keep-monthly", required_argument, NULL, OPT_KMONTHLY },
	{ "config-file", required_argument, NULL, 'c' },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "s3-parallel", required_argument, NULL, OPT_S3PAR },
	{ "storage-class", required_argument, NULL, OPT_SCLASS },
	{ "quiet", no_argument, NULL, 'q' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, OPT_HELP },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

static int
push(const char **v, size_t *n, const char *s)
{
	if (*n == MAX_LIST)
		return chom_usage_error("more than %d of one option", MAX_LIST);
	v[(*n)++] = s;
	return 0;
}

static int
count(const char *opt, const char *arg, long *out)
{
	long long n;

	if (chom_parse_ll(arg, 1, 1000000, &n) < 0)
		return chom_usage_error("%s: not a positive number: %s", opt,
					chom_quote(arg));
	*out = (long)n;
	return 0;
}

/* The dump's stderr and unreadable files, with our prefix. */
static void
relay(void *ctx, const char *line)
{
	(void)ctx;
	if (*line)
		chom_warn("%s", line);
}

static void
progress(void *ctx, const char *kind, unsigned long long bytes)
{
	static double t0;
	struct timespec ts;
	double now, el;

	(void)ctx;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (double)ts.tv_sec + ts.tv_nsec / 1e9;
	if (!kind) { /* a part is done */
		chom_progress_end();
		t0 = 0;
		return;
	}
	if (!t0)
		t0 = now;
	el = now - t0;
	chom_progress("%s: %.1f MiB, %.1f MiB/s, %.0fs", kind,
		      bytes / 1048576.0, el > 0 ? bytes / 1048576.0 / el : 0,
		      el);
}

static int
keygen(const char *path)
{
	char secret[CHOM_AGE_SECRET_SIZE], recip[CHOM_AGE_RECIPIENT_SIZE];
	char text[CHOM_AGE_SECRET_SIZE + CHOM_AGE_RECIPIENT_SIZE + 128];
	struct chom_err e;
	time_t now = time(NULL);
	char stamp[32];
	int fd, n;

	if (chom_age_keygen(secret, sizeof(secret), recip, sizeof(recip), &e) <
	    0)
		return chom_report(&e);
	chom_iso_time(now, stamp, sizeof(stamp));
	n = snprintf(text, sizeof(text),
		     "# created: %s\n# public key: %s\n%s\n", stamp, recip,
		     secret);
	explicit_bzero(secret, sizeof(secret));
	/* Never over an existing key: that would lose every backup made
	 * to it. */
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		explicit_bzero(text, sizeof(text));
		chom_error("--keygen %s: %s", path, strerror(errno));
		return CHOM_EXIT_FAIL;
	}
	if (write(fd, text, (size_t)n) != n || fsync(fd) < 0) {
		explicit_bzero(text, sizeof(text));
		chom_error("--keygen %s: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return CHOM_EXIT_FAIL;
	}
	explicit_bzero(text, sizeof(text));
	close(fd);
	printf("%s\n", recip);
	return chom_close_stdout(CHOM_EXIT_OK);
}

static const char *const metric_labels[] = { "kind", "target", NULL };
static const struct {
	const char *name, *help;
} metric_defs[] = {
	{ "chom_backup_last_success_timestamp_seconds",
	  "When the last backup of the kind to the target succeeded." },
	{ "chom_backup_last_status",
	  "Exit status of the last backup of the kind to the target (0: "
	  "success)." },
	{ "chom_backup_duration_seconds",
	  "How long the part of the kind took in the last successful backup." },
	{ "chom_backup_size_bytes",
	  "Stored size of the part of the kind in the last successful "
	  "backup." },
};

/*
 * The series of the kinds this run backed up, merged into the file: a
 * 6-hourly --db run leaves the daily --all run's files, config and
 * sysinfo series as they were, and a failure keeps the last success, on
 * whose age alerts fire.
 */
static void
metrics(const struct opts *o, const struct chom_backup_result *r, int status)
{
	const char *kinds[CHOM_BACKUP_MAX_PARTS];
	struct chom_metrics *m;
	struct chom_err e;
	size_t nk = 0, i, k, t, dropped = 0;
	double now = (double)time(NULL);
	int lock;

	if (!o->metrics_dir)
		return;
	if (o->db)
		kinds[nk++] = "db";
	if (o->nfiles)
		kinds[nk++] = "files";
	if (o->nconfig)
		kinds[nk++] = "config";
	if (o->sysinfo)
		kinds[nk++] = "sysinfo";
	/* Runs to other targets may end together: one read-merge-write at a
	 * time, or the last rename loses the other's series. */
	if ((lock = chom_metrics_lock(o->metrics_dir, 10, &e)) < 0) {
		chom_warn("--metrics-dir: %s", e.msg);
		if (e.code != CHOM_EXIT_BUSY)
			return;
	}
	if (!(m = chom_metrics_new())) {
		chom_warn("--metrics-dir: out of memory");
		goto out;
	}
	for (i = 0; i < sizeof(metric_defs) / sizeof(metric_defs[0]); i++)
		if (chom_metrics_declare(m, metric_defs[i].name, "gauge",
					 metric_defs[i].help, metric_labels,
					 &e) < 0)
			goto fail;
	/* Unreadable, the file is replaced by this run's series alone. */
	if (chom_metrics_load(m, o->metrics_dir, "chom_backup", &dropped, &e) <
	    0)
		chom_warn("--metrics-dir: %s", e.msg);
	if (dropped)
		chom_debug("--metrics-dir: %zu lines of chom_backup.prom left "
			   "out (not this version's series)",
			   dropped);
	for (t = 0; t < o->nto; t++)
		for (k = 0; k < nk; k++) {
			const char *lv[] = { kinds[k], o->to[t] };

			if (chom_metrics_set(m, "chom_backup_last_status", lv,
					     status, &e) < 0)
				goto fail;
			for (i = 0; status == 0 && i < r->nparts; i++) {
				const struct chom_backup_part *p = &r->parts[i];

				if (strcmp(p->kind, kinds[k]))
					continue;
				if (chom_metrics_set(
					m,
					"chom_backup_last_success_timestamp_"
					"seconds",
					lv, now, &e) < 0 ||
				    chom_metrics_set(
					m, "chom_backup_duration_seconds", lv,
					round(p->seconds * 1000) / 1000,
					&e) < 0 ||
				    chom_metrics_set(
					m, "chom_backup_size_bytes", lv,
					(double)p->size, &e) < 0)
					goto fail;
			}
		}
	if (chom_metrics_save(m, o->metrics_dir, "chom_backup", &e) < 0)
		goto fail;
	goto out;
fail:
	chom_warn("--metrics-dir: %s", e.msg);
out:
	chom_metrics_free(m);
	if (lock >= 0)
		close(lock);
}

/* The point's summary: what a pipeline needs without the manifest. */
static void
json_summary(const struct opts *o, const struct chom_backup_result *r)
{
	json_t *parts = json_array();
	size_t i;

	for (i = 0; i < r->nparts; i++)
		json_array_append_new(
		    parts,
		    json_pack("{s:s, s:s, s:I, s:I, s:s}", "name",
			      r->parts[i].name, "kind", r->parts[i].kind,
			      "size", (json_int_t)r->parts[i].size,
			      "plain_size", (json_int_t)r->parts[i].plain,
			      "sha256", r->parts[i].sha256));
	chom_json_line(json_pack("{s:s, s:s, s:s?, s:f, s:o}", "point",
				 r->point, "host", o->host, "label", o->label,
				 "seconds", r->seconds, "parts", parts));
}

static int
do_prune(const struct opts *o, struct chom_store **stores)
{
	size_t t, i, n;
	time_t now = time(NULL);
	struct chom_err e;

	for (t = 0; t < o->nto; t++) {
		struct chom_point *p;
		bool *keep;
		const char **why;

		if (chom_store_lock(stores[t], o->host, &e) < 0 ||
		    chom_store_list(stores[t], o->host, &p, &n, &e) < 0)
			return chom_report(&e);
		keep = calloc(n ? n : 1, sizeof(*keep));
		why = calloc(n ? n : 1, sizeof(*why));
		if (!keep || !why) {
			free(p);
			free(keep);
			free(why);
			chom_error("out of memory");
			return CHOM_EXIT_FAIL;
		}
		chom_retention_apply(p, n, &o->keep, now, keep, why);
		for (i = 0; i < n; i++) {
			if (keep[i]) {
				chom_debug("%s %s: kept (%s)", o->to[t],
					   p[i].id, why[i]);
				continue;
			}
			if (chom_store_remove(stores[t], o->host, p[i].id, &e) <
			    0) {
				free(p);
				free(keep);
				free(why);
				return chom_report(&e);
			}
			if (o->json)
				chom_json_line(
				    json_pack("{s:s, s:s, s:b}", "target",
					      o->to[t], "point", p[i].id,
					      "complete", p[i].complete));
			else
				printf("%s %s\n", o->to[t], p[i].id);
		}
		free(p);
		free(keep);
		free(why);
	}
	return CHOM_EXIT_OK;
}

/* Whether PATH holds an executable file of that name, as sh would run. */
static bool
on_path(const char *name)
{
	const char *path = getenv("PATH"), *p, *end;
	char file[PATH_MAX];
	struct stat st;

	if (!path)
		path = "/bin:/usr/bin";
	for (p = path;; p = end + 1) {
		end = strchrnul(p, ':');
		if (snprintf(file, sizeof(file), "%.*s%s%s", (int)(end - p), p,
			     end > p ? "/" : "", name) < (int)sizeof(file) &&
		    stat(file, &st) == 0 && S_ISREG(st.st_mode) &&
		    access(file, X_OK) == 0)
			return true;
		if (!*end)
			return false;
	}
}

/* The default dump command: mysqldump, or mariadb-dump where MariaDB no
 * longer installs the old name; the option file quoted for sh. */
static int
default_db_cmd(char *buf, size_t size, const char *defaults)
{
	const char *flags = CHOM_BACKUP_DB_CMD + strlen("mysqldump ");
	const char *prog = !on_path("mysqldump") && on_path("mariadb-dump")
			       ? "mariadb-dump"
			       : "mysqldump";
	size_t len;
	FILE *f;
	char *text = NULL;
	const char *s;

	if (!defaults) {
		snprintf(buf, size, "%s %s", prog, flags);
		return 0;
	}
	if (!(f = open_memstream(&text, &len)))
		return -1;
	/* --defaults-extra-file must come first. */
	fprintf(f, "%s --defaults-extra-file='", prog);
	for (s = defaults; *s; s++)
		if (*s == '\'')
			fputs("'\\''", f);
		else
			fputc(*s, f);
	fprintf(f, "' %s", flags);
	if (fclose(f) != 0 || len >= size) {
		free(text);
		return -1;
	}
	memcpy(buf, text, len + 1);
	free(text);
	return 0;
}

static int
parse(int argc, char **argv, struct opts *o)
{
	double d;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":r:R:c:qv", longopts, NULL)) !=
	       -1) {
		switch (c) {
		case OPT_TO:
			if (push(o->to, &o->nto, optarg))
				return CHOM_EXIT_USAGE;
			break;
		case OPT_HOST: o->host = optarg; break;
		case OPT_DB: o->db = true; break;
		case OPT_DBCMD: o->db_cmd = optarg; break;
		case OPT_DBDEF: o->db_defaults = optarg; break;
		case OPT_FILES:
			if (push(o->files, &o->nfiles, optarg))
				return CHOM_EXIT_USAGE;
			break;
		case OPT_CONFIG:
			if (push(o->config, &o->nconfig, optarg))
				return CHOM_EXIT_USAGE;
			break;
		case OPT_SYSINFO: o->sysinfo = true; break;
		case OPT_ALL: o->all = true; break;
		case 'r':
			if (push(o->recipients, &o->nrecipients, optarg))
				return CHOM_EXIT_USAGE;
			break;
		case 'R':
			if (push(o->recipient_files, &o->nrecipient_files,
				 optarg))
				return CHOM_EXIT_USAGE;
			break;
		case OPT_PASS: o->passphrase_file = optarg; break;
		case OPT_NOENC: o->no_encrypt = true; break;
		case OPT_KEYGEN: o->keygen = optarg; break;
		case OPT_COMPRESS:
			if (!strcmp(optarg, "gzip"))
				o->compress = CHOM_COMPRESS_GZIP;
			else if (!strcmp(optarg, "zstd"))
				o->compress = CHOM_COMPRESS_ZSTD;
			else if (!strcmp(optarg, "none"))
				o->compress = CHOM_COMPRESS_NONE;
			else
				return chom_usage_error(
				    "--compress: gzip, zstd or none, not %s",
				    chom_quote(optarg));
			break;
		case OPT_LEVEL:
			if (chom_parse_ll(optarg, 1, 19, &o->level) < 0)
				return chom_usage_error(
				    "--level: 1-9 for gzip, 1-19 for zstd: %s",
				    chom_quote(optarg));
			break;
		case OPT_THREADS:
			if (chom_parse_ll(optarg, 1, 256, &o->threads) < 0)
				return chom_usage_error(
				    "--threads: not a number: %s",
				    chom_quote(optarg));
			break;
		case OPT_LABEL: o->label = optarg; break;
		case OPT_METRICS: o->metrics_dir = optarg; break;
		case OPT_PRUNE: o->prune = true; break;
		case OPT_KLAST:
			if (count("--keep-last", optarg, &o->keep.last))
				return CHOM_EXIT_USAGE;
			break;
		case OPT_KDAILY:
			if (count("--keep-daily", optarg, &o->keep.daily))
				return CHOM_EXIT_USAGE;
			break;
		case OPT_KWEEKLY:
			if (count("--keep-weekly", optarg, &o->keep.weekly))
				return CHOM_EXIT_USAGE;
			break;
		case OPT_KMONTHLY:
			if (count("--keep-monthly", optarg, &o->keep.monthly))
				return CHOM_EXIT_USAGE;
			break;
		case OPT_KWITHIN:
			/* restic's units, and ours: 7d, 90d, 12h, 2w. */
			if (strlen(optarg) > 1 &&
			    strchr("dw", optarg[strlen(optarg) - 1])) {
				char num[32];
				char *end;

				snprintf(num, sizeof(num), "%.*s",
					 (int)strlen(optarg) - 1, optarg);
				d = strtod(num, &end);
				if (*end || end == num || d <= 0)
					return chom_usage_error(
					    "--keep-within: not a duration: %s",
					    chom_quote(optarg));
				d *= optarg[strlen(optarg) - 1] == 'd'
					 ? 86400
					 : 7 * 86400;
			} else if (chom_parse_duration(optarg, &d) < 0 ||
				   d <= 0) {
				return chom_usage_error(
				    "--keep-within: not a duration: %s",
				    chom_quote(optarg));
			}
			o->keep.within = d;
			break;
		case 'c': o->config_file = optarg; break;
		case OPT_JSON: o->json = true; break;
		case OPT_S3PAR:
			if (chom_parse_ll(optarg, 1, 64, &o->s3_parallel) < 0)
				return chom_usage_error(
				    "--s3-parallel: 1-64 parts in flight: %s",
				    chom_quote(optarg));
			break;
		case OPT_SCLASS:
			if (!*optarg ||
			    strspn(optarg, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_") !=
				strlen(optarg))
				return chom_usage_error(
				    "--storage-class: an S3 class such as "
				    "STANDARD_IA, not %s",
				    chom_quote(optarg));
			o->storage_class = optarg;
			break;
		case 'q': chom_cli_set_verbosity(CHOM_QUIET); break;
		case 'v': chom_cli_set_verbosity(CHOM_VERBOSE); break;
		case OPT_HELP: usage(); return -1;
		case OPT_VERSION: chom_print_version(); return -1;
		default: return chom_usage_getopt(c, argv);
		}
	}
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
	if (!strcmp(section, "global")) { /* base, the only key there */
		o->base = v;
		return 0;
	}
	if (!strcmp(key, "to") && o->nto < MAX_LIST)
		o->to[o->nto++] = v;
	else if (!strcmp(key, "recipient") && o->nrecipients < MAX_LIST)
		o->recipients[o->nrecipients++] = v;
	else if (!strcmp(key, "recipients_file") &&
		 o->nrecipient_files < MAX_LIST)
		o->recipient_files[o->nrecipient_files++] = v;
	else if (!strcmp(key, "db_cmd"))
		o->db_cmd = v;
	else if (!strcmp(key, "db_defaults"))
		o->db_defaults = v;
	else if (!strcmp(key, "host"))
		o->host = v;
	else if (!strcmp(key, "metrics_dir"))
		o->metrics_dir = v;
	else
		return chom_err_set(e, CHOM_EXIT_USAGE,
				    "unknown key '%s' in [backup]", key);
	return 0;
}

int
main(int argc, char **argv)
{
	volatile sig_atomic_t *stop;
	static char dbcmd[PATH_MAX + 512], sharedbuf[PATH_MAX];
	static const char *const etc[] = { "/etc/nginx", "/etc/php",
					   "/etc/chom", "/etc/mysql",
					   "/etc/redis" };
	struct opts cfg = { 0 }, o;
	struct chom_store *stores[MAX_LIST] = { 0 };
	struct chom_age_keys *keys = NULL;
	size_t i;
	struct chom_backup_result res = { 0 };
	struct chom_err e = { 0 };
	const char *env;
	int rc;

	chom_cli_init("chom-backup");
	rc = parse(argc, argv, &cfg);
	if (rc < 0)
		return chom_close_stdout(CHOM_EXIT_OK);
	if (rc > 0)
		return rc;
	o = cfg;
	if (o.keygen)
		return keygen(o.keygen);
	/* The file's lists come first; options add to them. */
	{
		struct opts f = { 0 };

		if (chom_config_load(cfg.config_file, "backup", config_key, &f,
				     &e) < 0)
			return chom_report(&e);
		for (i = 0; i < f.nto && !cfg.nto; i++)
			o.to[o.nto++] = f.to[i];
		for (i = 0; i < f.nrecipients && !cfg.nrecipients &&
			    !cfg.nrecipient_files;
		     i++)
			o.recipients[o.nrecipients++] = f.recipients[i];
		for (i = 0; i < f.nrecipient_files && !cfg.nrecipients &&
			    !cfg.nrecipient_files;
		     i++)
			o.recipient_files[o.nrecipient_files++] =
			    f.recipient_files[i];
		if (!o.db_cmd)
			o.db_cmd = f.db_cmd;
		if (!o.db_defaults)
			o.db_defaults = f.db_defaults;
		if (!o.host)
			o.host = f.host;
		if (!o.metrics_dir)
			o.metrics_dir = f.metrics_dir;
		o.base = f.base;
	}
	if (!o.nto)
		return chom_usage_error(
		    "no target: give --to file:///PATH or s3://BUCKET/PREFIX");
	if (chom_cli_host(&o.host))
		return CHOM_EXIT_USAGE;
	if (o.all) {
		env = getenv("CHOM_BASE");
		snprintf(sharedbuf, sizeof(sharedbuf), "%s/shared",
			 env && *env ? env
			 : o.base    ? o.base
				     : CHOM_BASE_DEFAULT);
		o.db = o.sysinfo = true;
		if (!o.nfiles)
			o.files[o.nfiles++] = sharedbuf;
		if (!o.nconfig)
			for (i = 0; i < sizeof(etc) / sizeof(etc[0]); i++)
				if (access(etc[i], F_OK) == 0)
					o.config[o.nconfig++] = etc[i];
	}
	if (o.db_defaults && o.db_cmd)
		return chom_usage_error("--db-defaults goes with the default "
					"--db-cmd; put the option file in your "
					"command");
	if (o.db && !o.db_cmd) {
		/* Credentials by option file, never on the command line. */
		if (default_db_cmd(dbcmd, sizeof(dbcmd), o.db_defaults) < 0)
			return chom_usage_error("--db-defaults: path too long: "
						"%s",
						chom_quote(o.db_defaults));
		o.db_cmd = dbcmd;
	}
	if (cfg.db_cmd && !o.db)
		return chom_usage_error("--db-cmd without --db (or --all)");
	if (!o.db)
		o.db_cmd = NULL;
	if (!o.prune && !o.db && !o.nfiles && !o.nconfig && !o.sysinfo)
		return chom_usage_error(
		    "nothing to back up: give --db, --files, "
		    "--config, --sysinfo or --all");
	if (o.passphrase_file && (o.nrecipients || o.nrecipient_files))
		return chom_usage_error("--passphrase-file must be the only "
					"recipient: no -r or -R with it");
	if (!o.level) /* each compressor's usual default */
		o.level = o.compress == CHOM_COMPRESS_ZSTD ? 3 : 6;
	if (o.compress == CHOM_COMPRESS_GZIP && o.level > 9)
		return chom_usage_error("--level: 1-9 for gzip");
	if (o.nto > 8)
		return chom_usage_error("at most 8 --to targets");
	if (o.prune && chom_retention_empty(&o.keep))
		return chom_usage_error("--prune needs a --keep-* rule");
	stop = chom_cli_catch_signals();
	for (i = 0; i < o.nto; i++)
		if (chom_store_open_opts(
			o.to[i],
			&(struct chom_store_opts){
			    .s3_parallel = (int)o.s3_parallel,
			    .s3_storage_class = o.storage_class,
			    .stop = stop },
			&stores[i], &e) < 0) {
			rc = e.code == CHOM_EXIT_USAGE
				 ? chom_usage_error("%s", e.msg)
				 : chom_report(&e);
			goto out;
		}
	if (o.db || o.nfiles || o.nconfig || o.sysinfo) {
		if (!o.no_encrypt && !o.nrecipients && !o.nrecipient_files &&
		    !o.passphrase_file) {
			rc = chom_usage_error("no recipient: give -r, -R or "
					      "--passphrase-file, or "
					      "--no-encrypt");
			goto out;
		}
		if (!o.no_encrypt) {
			keys = chom_age_keys_new();
			for (i = 0; keys && i < o.nrecipients; i++) {
				if (chom_age_add_recipient(
					keys, o.recipients[i], &e) < 0)
					goto usage;
			}
			for (i = 0; keys && i < o.nrecipient_files; i++)
				if (chom_age_add_recipients_file(
					keys, o.recipient_files[i], &e) < 0)
					goto usage;
			if (keys && o.passphrase_file) {
				char *pw;

				if (chom_secret_read(o.passphrase_file, &pw,
						     &e) < 0)
					goto usage;
				rc = chom_age_add_passphrase(keys, pw, 0, &e);
				chom_secret_free(pw);
				if (rc < 0)
					goto usage;
			}
		}
		rc = chom_backup_run(
		    &(struct chom_backup_opts){
			.stores = stores,
			.nstores = o.nto,
			.host = o.host,
			.label = o.label,
			.db_cmd = o.db_cmd,
			.files = o.files,
			.nfiles = o.nfiles,
			.config = o.config,
			.nconfig = o.nconfig,
			.sysinfo = o.sysinfo,
			.compress = o.compress,
			.level = (int)o.level,
			.threads =
			    (int)(o.threads ? o.threads
					    : sysconf(_SC_NPROCESSORS_ONLN)),
			.recipients = keys,
			.on_message = relay,
			.progress = chom_cli_tty() ? progress : NULL,
			.stop = stop,
		    },
		    &res, &e);
		metrics(&o, &res, rc < 0 ? (e.code ? e.code : 1) : 0);
		if (rc < 0) {
			rc = chom_report(&e);
			goto out;
		}
		if (o.json)
			json_summary(&o, &res);
		else
			printf("%s\n", res.point);
		free(res.manifest);
	}
	rc = o.prune ? do_prune(&o, stores) : CHOM_EXIT_OK;
	goto out;
usage:
	rc = e.code == CHOM_EXIT_USAGE ? chom_usage_error("%s", e.msg)
				       : chom_report(&e);
out:
	chom_age_keys_free(keys);
	for (i = 0; i < o.nto; i++)
		chom_store_free(stores[i]);
	return chom_close_stdout(rc);
}
