#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "backup.h"
#include "exitcode.h"
#include "gzpar.h"
#include "sinks.h"
#include "tarball.h"
#include "zst.h"

/* Facts that help rebuild the machine: kept as text, never run again. */
#define SYSINFO_CMD                                                            \
	"echo '## uname'; uname -a; echo; echo '## os-release'; "              \
	"cat /etc/os-release; echo; echo '## disks'; df -hP; "                 \
	"lsblk 2>/dev/null; echo; echo '## packages'; "                        \
	"dpkg-query -W -f='${Package} ${Version}\\n' 2>/dev/null; echo; "      \
	"echo '## crontabs'; cat /etc/crontab /etc/cron.d/* 2>/dev/null; "     \
	"for f in /var/spool/cron/crontabs/*; do [ -f \"$f\" ] && "            \
	"sed \"s|^|${f##*/}: |\" \"$f\"; done; echo; echo '## services'; "     \
	"systemctl list-units --type=service --state=running --no-pager "      \
	"2>/dev/null; true"

#define HEAD_MAX 4096

/* A tap on the plaintext: its first bytes, for the dump's server version,
 * and progress for a terminal every 4 MiB. */
struct head {
	struct chom_sink s;
	struct chom_sink *next;
	char buf[HEAD_MAX + 1];
	size_t len;
	unsigned long long total, shown;
	const struct chom_backup_opts *o;
	const char *kind;
};

static int
head_write(struct chom_sink *s, const void *buf, size_t len, struct chom_err *e)
{
	struct head *h = (struct head *)s;
	size_t n = len < HEAD_MAX - h->len ? len : HEAD_MAX - h->len;

	memcpy(h->buf + h->len, buf, n);
	h->len += n;
	h->buf[h->len] = '\0';
	h->total += len;
	if (h->o->progress && h->total - h->shown >= 1 << 22) {
		h->o->progress(h->o->ctx, h->kind, h->total);
		h->shown = h->total;
	}
	return chom_sink_write(h->next, buf, len, e);
}

static void *
head_space(struct chom_sink *s, size_t *len)
{
	return chom_sink_space(((struct head *)s)->next, len);
}

static int
head_close(struct chom_sink *s, struct chom_err *e)
{
	return chom_sink_close(((struct head *)s)->next, e);
}

static void
head_free(struct chom_sink *s)
{
	(void)s; /* lives in the backup's own state */
}

static const char *const comp_name[] = { "gzip", "zstd", "none" };
static const char *const comp_ext[] = { ".gz", ".zst", "" };

/*
 * stores <- [tee] <- measure(stored, sha256) <- [age] <- [compress]
 * <- measure(plain): the sink a producer writes into.
 */
static struct chom_sink *
chain(const struct chom_backup_opts *o, const char *name, bool compress,
      struct chom_sha256 *h, struct chom_backup_part *p, struct chom_err *e)
{
	struct chom_sink *v[8], *out = NULL, *next;
	size_t i;

	if (o->nstores > 8) {
		chom_err_set(e, CHOM_EXIT_USAGE, "at most 8 --to targets");
		return NULL;
	}
	for (i = 0; i < o->nstores; i++) {
		v[i] = chom_store_part(o->stores[i], name, e);
		if (!v[i]) {
			while (i-- > 0)
				chom_sink_free(v[i]);
			return NULL;
		}
	}
	out = o->nstores == 1 ? v[0] : chom_sink_tee_new(v, o->nstores, e);
	if (!out) {
		for (i = 0; i < o->nstores; i++)
			chom_sink_free(v[i]);
		return NULL;
	}
	next = out;
	if (!(out = chom_sink_measure_new(next, h, &p->size, e)))
		goto fail;
	if (o->recipients) {
		next = out;
		if (!(out = chom_age_encrypt_new(next, o->recipients, e)))
			goto fail;
	}
	if (compress && o->compress != CHOM_COMPRESS_NONE) {
		next = out;
		out = o->compress == CHOM_COMPRESS_GZIP
			  ? chom_gzpar_new(next, o->level, o->threads, e)
			  : chom_zstd_new(next, o->level, o->threads, e);
		if (!out)
			goto fail;
	}
	next = out;
	if (!(out = chom_sink_measure_new(next, NULL, &p->plain, e)))
		goto fail;
	return out;
fail:
	chom_sink_free(next);
	return NULL;
}

struct part_spec {
	const char *kind, *base;
	bool compress;
};

static const struct part_spec specs[] = {
	{ "db", "db.sql", true },
	{ "files", "files.tar", true },
	{ "config", "config.tar", true },
	{ "sysinfo", "sysinfo.txt", false },
};

struct state {
	const struct chom_backup_opts *o;
	json_t *commands;
	char server_version[128];
	struct head head;
};

/* Runs the producer of part k into sink. */
static int
produce(struct state *st, size_t k, struct chom_sink *sink, struct chom_err *e)
{
	const struct chom_backup_opts *o = st->o;
	unsigned long long bytes = 0;
	int status = 0;
	const char *cmd = k == 0 ? o->db_cmd : SYSINFO_CMD;

	if (k == 1 || k == 2)
		return chom_tarball(k == 1 ? o->files : o->config,
				    k == 1 ? o->nfiles : o->nconfig, sink,
				    o->on_message, o->ctx, &bytes, o->stop, e);
	if (chom_run_to_sink(cmd, sink, o->on_message, o->ctx, &status, &bytes,
			     o->stop, e) < 0)
		return -1;
	json_array_append_new(st->commands, json_pack("{s:s, s:s, s:i}", "part",
						      specs[k].kind, "command",
						      k == 0 ? cmd : "sysinfo",
						      "status", status));
	if (k != 0)
		return bytes ? 0
			     : chom_err_set(e, CHOM_EXIT_FAIL,
					    "sysinfo: no output");
	/* Never the silent truncated dump of `cmd | gzip`. */
	if (status != 0)
		return chom_err_set(e, CHOM_EXIT_FAIL,
				    status > 128 ? "database dump killed by "
						   "signal %d"
						 : "database dump exited %d",
				    status > 128 ? status - 128 : status);
	if (bytes == 0)
		return chom_err_set(e, CHOM_EXIT_FAIL,
				    "database dump printed nothing");
	return 0;
}

static int
one_part(struct state *st, size_t k, struct chom_backup_part *p,
	 struct chom_err *e)
{
	const struct chom_backup_opts *o = st->o;
	struct chom_sha256 *h = chom_sha256_new();
	struct chom_sink *sink;
	double t0 = chom_mono();
	int rc = -1;

	if (!h)
		return chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
	memset(p, 0, sizeof(*p));
	p->kind = specs[k].kind;
	snprintf(p->name, sizeof(p->name), "%s%s%s", specs[k].base,
		 specs[k].compress ? comp_ext[o->compress] : "",
		 o->recipients ? ".age" : "");
	sink = chain(o, p->name, specs[k].compress, h, p, e);
	if (!sink)
		goto out;
	st->head = (struct head){ .s = { head_write, head_close, head_free,
					 head_space },
				  .next = sink,
				  .o = o,
				  .kind = p->kind };
	if (produce(st, k, &st->head.s, e) < 0)
		goto fail;
	if (chom_sink_close(sink, e) < 0)
		goto fail;
	chom_sink_free(sink);
	chom_sha256_final_hex(h, p->sha256);
	p->seconds = chom_mono() - t0;
	rc = 0;
	goto out;
fail:
	chom_sink_free(sink);
out:
	chom_sha256_free(h);
	return rc;
}

/* "-- Server version	10.11.6-MariaDB-0+deb12u1" in mysqldump's head. */
static void
server_version(struct state *st)
{
	const char *p = strstr(st->head.buf, "Server version");
	size_t n;

	if (!p)
		return;
	p += strlen("Server version");
	p += strspn(p, " \t:");
	n = strcspn(p, "\r\n");
	snprintf(st->server_version, sizeof(st->server_version), "%.*s", (int)n,
		 p);
}

static char *
manifest(struct state *st, struct chom_backup_result *r, time_t start,
	 time_t end)
{
	const struct chom_backup_opts *o = st->o;
	char s0[32], s1[32], key[CHOM_AGE_RECIPIENT_SIZE];
	json_t *parts = json_array(), *recips = json_array(), *m;
	size_t i;
	char *text;

	/* Public keys only: what a restore needs to pick an identity. */
	for (i = 0;
	     o->recipients &&
	     i < chom_age_keys_describe(o->recipients, i, key, sizeof(key));
	     i++)
		json_array_append_new(recips, json_string(key));
	for (i = 0; i < r->nparts; i++) {
		const struct chom_backup_part *p = &r->parts[i];
		bool comp = strcmp(p->kind, "sysinfo") != 0;

		json_array_append_new(
		    parts,
		    json_pack("{s:s, s:s, s:s, s:s, s:O, s:I, s:s, s:I}",
			      "name", p->name, "kind", p->kind, "compression",
			      comp ? comp_name[o->compress] : "none",
			      "encryption", o->recipients ? "age" : "none",
			      "recipients", recips, "size", (json_int_t)p->size,
			      "sha256", p->sha256, "plain_size",
			      (json_int_t)p->plain));
	}
	chom_iso_time(start, s0, sizeof(s0));
	chom_iso_time(end, s1, sizeof(s1));
	m = json_pack("{s:i, s:s, s:s, s:s?, s:s, s:s, s:s, s:s?, s:o, s:o}",
		      "format", 1, "host", o->host, "point", r->point, "label",
		      o->label, "tool", "chom-backup " CHOM_VERSION, "start",
		      s0, "end", s1, "database_server_version",
		      st->server_version[0] ? st->server_version : NULL,
		      "parts", parts, "commands", st->commands);
	json_decref(recips);
	if (!m)
		return NULL;
	text = json_dumps(m, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(m);
	return text;
}

int
chom_backup_run(const struct chom_backup_opts *o, struct chom_backup_result *r,
		struct chom_err *e)
{
	struct state st = { .o = o };
	bool want[4] = { o->db_cmd != NULL, o->nfiles > 0, o->nconfig > 0,
			 o->sysinfo };
	time_t start = time(NULL);
	double t0 = chom_mono();
	size_t i, begun = 0;
	char *text = NULL;
	int attempt;

	memset(r, 0, sizeof(*r));
	for (i = 0; i < o->nstores; i++)
		if (chom_store_lock(o->stores[i], o->host, e) < 0)
			return -1;
	/* A point is named by its second: a run that starts in the second
	 * the one before it (now done: we hold the lock) started in takes
	 * the next second. */
	for (attempt = 0;; attempt++) {
		int rc = 0;

		start = time(NULL);
		chom_point_id(start, r->point);
		for (begun = 0; begun < o->nstores; begun++)
			if ((rc = chom_store_begin(o->stores[begun], o->host,
						   r->point, e)) < 0)
				break;
		if (begun == o->nstores)
			break;
		if (rc != -2 || attempt == 2)
			goto fail;
		for (i = 0; i < begun; i++)
			chom_store_abort(o->stores[i]);
		begun = 0;
		while (time(NULL) == start) {
			struct timespec ts = { 0, 50 * 1000 * 1000 };

			nanosleep(&ts, NULL);
		}
	}
	st.commands = json_array();
	for (i = 0; i < 4; i++) {
		if (!want[i])
			continue;
		if (one_part(&st, i, &r->parts[r->nparts], e) < 0)
			goto fail;
		r->nparts++;
		if (i == 0)
			server_version(&st);
		if (o->progress)
			o->progress(o->ctx, NULL, 0);
	}
	text = manifest(&st, r, start, time(NULL));
	st.commands = NULL; /* the manifest took it */
	if (!text) {
		chom_err_set(e, CHOM_EXIT_FAIL, "manifest: out of memory");
		goto fail;
	}
	for (i = 0; i < o->nstores; i++)
		if (chom_store_commit(o->stores[i], text, e) < 0)
			goto fail;
	r->manifest = text;
	r->seconds = chom_mono() - t0;
	return 0;
fail:
	/* A point exists only with its manifest: what a failed run wrote
	 * goes, in every store. */
	for (i = 0; i < begun; i++)
		chom_store_abort(o->stores[i]);
	json_decref(st.commands);
	free(text);
	return -1;
}
