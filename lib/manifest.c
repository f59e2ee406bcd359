/* manifest.json read back: jansson, and a check of every field used. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "exitcode.h"
#include "manifest.h"

static int
bad(struct chom_err *e, const char *what, const char *why)
{
	return chom_err_set(e, CHOM_EXIT_FAIL, "manifest: %s: %s", what, why);
}

/* The string member key of o into buf; optional ones may be missing. */
static int
str(json_t *o, const char *key, char *buf, size_t size, bool optional,
    struct chom_err *e)
{
	json_t *v = json_object_get(o, key);

	buf[0] = '\0';
	if (!v || json_is_null(v))
		return optional ? 0 : bad(e, key, "missing");
	if (!json_is_string(v))
		return bad(e, key, "not a string");
	if (json_string_length(v) >= size ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return bad(e, key, "too long or not text");
	memcpy(buf, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

static int
size(json_t *o, const char *key, unsigned long long *out, struct chom_err *e)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_integer(v))
		return bad(e, key, v ? "not an integer" : "missing");
	if (json_integer_value(v) < 0)
		return bad(e, key, "negative");
	*out = (unsigned long long)json_integer_value(v);
	return 0;
}

/* A part's name becomes a file name in a store: nothing but a plain one. */
static bool
plain_name(const char *s)
{
	return *s && *s != '.' &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			 "0123456789._-") == strlen(s);
}

static int
part(json_t *o, struct chom_manifest_part *p, struct chom_err *e)
{
	char comp[16], enc[16], field[CHOM_SHA256_HEXLEN + 8];
	json_t *r;
	size_t i;

	if (!json_is_object(o))
		return bad(e, "parts", "an entry is not an object");
	if (str(o, "name", p->name, sizeof(p->name), false, e) ||
	    str(o, "kind", p->kind, sizeof(p->kind), false, e) ||
	    str(o, "compression", comp, sizeof(comp), false, e) ||
	    str(o, "encryption", enc, sizeof(enc), false, e) ||
	    str(o, "sha256", field, sizeof(field), false, e) ||
	    size(o, "size", &p->size, e) || size(o, "plain_size", &p->plain, e))
		return -1;
	if (!plain_name(p->name))
		return bad(e, "name", "not a plain file name");
	if (strcmp(p->kind, "db") && strcmp(p->kind, "files") &&
	    strcmp(p->kind, "config") && strcmp(p->kind, "sysinfo"))
		return bad(e, "kind", "not db, files, config or sysinfo");
	if (chom_sha256_parse_hex(field, p->sha256) < 0)
		return bad(e, "sha256", "not 64 hex digits");
	if (!strcmp(comp, "gzip"))
		p->compress = CHOM_PART_GZIP;
	else if (!strcmp(comp, "zstd"))
		p->compress = CHOM_PART_ZSTD;
	else if (!strcmp(comp, "none"))
		p->compress = CHOM_PART_NONE;
	else
		return bad(e, "compression", "not gzip, zstd or none");
	if (strcmp(enc, "age") && strcmp(enc, "none"))
		return bad(e, "encryption", "not age or none");
	p->encrypted = !strcmp(enc, "age");
	r = json_object_get(o, "recipients");
	if (r && !json_is_array(r))
		return bad(e, "recipients", "not an array");
	if (json_array_size(r) > CHOM_MANIFEST_MAX_RECIPIENTS)
		return bad(e, "recipients", "too many");
	for (i = 0; i < json_array_size(r); i++) {
		json_t *k = json_array_get(r, i);

		if (!json_is_string(k) ||
		    json_string_length(k) >= sizeof(p->recipients[0]))
			return bad(e, "recipients", "not a key");
		snprintf(p->recipients[i], sizeof(p->recipients[0]), "%s",
			 json_string_value(k));
	}
	p->nrecipients = i;
	return 0;
}

int
chom_manifest_parse(const char *text, size_t len, struct chom_manifest *m,
		    struct chom_err *e)
{
	json_error_t jerr;
	json_t *root, *parts, *fmt;
	size_t i;
	int rc = -1;

	memset(m, 0, sizeof(*m));
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return chom_err_set(e, CHOM_EXIT_FAIL,
				    "manifest: not JSON: line %d: %s",
				    jerr.line, jerr.text);
	if (!json_is_object(root)) {
		bad(e, "top level", "not an object");
		goto out;
	}
	fmt = json_object_get(root, "format");
	if (!json_is_integer(fmt) || json_integer_value(fmt) != 1) {
		bad(e, "format", "not 1 (made by a newer chom-backup?)");
		goto out;
	}
	if (str(root, "host", m->host, sizeof(m->host), false, e) ||
	    str(root, "point", m->point, sizeof(m->point), false, e) ||
	    str(root, "label", m->label, sizeof(m->label), true, e) ||
	    str(root, "tool", m->tool, sizeof(m->tool), true, e) ||
	    str(root, "start", m->start, sizeof(m->start), true, e) ||
	    str(root, "end", m->end, sizeof(m->end), true, e) ||
	    str(root, "database_server_version", m->db_version,
		sizeof(m->db_version), true, e))
		goto out;
	parts = json_object_get(root, "parts");
	if (!json_is_array(parts)) {
		bad(e, "parts", parts ? "not an array" : "missing");
		goto out;
	}
	if (json_array_size(parts) > CHOM_MANIFEST_MAX_PARTS) {
		bad(e, "parts", "too many");
		goto out;
	}
	for (i = 0; i < json_array_size(parts); i++) {
		struct chom_manifest_part *p = &m->parts[i];
		size_t j;

		if (part(json_array_get(parts, i), p, e))
			goto out;
		for (j = 0; j < i; j++)
			if (!strcmp(m->parts[j].name, p->name) ||
			    !strcmp(m->parts[j].kind, p->kind)) {
				bad(e, p->name, "listed twice");
				goto out;
			}
		m->size += p->size;
		m->plain += p->plain;
		m->nparts++;
	}
	rc = 0;
out:
	json_decref(root);
	return rc;
}

const struct chom_manifest_part *
chom_manifest_part(const struct chom_manifest *m, const char *kind)
{
	size_t i;

	for (i = 0; i < m->nparts; i++)
		if (!strcmp(m->parts[i].kind, kind))
			return &m->parts[i];
	return NULL;
}
