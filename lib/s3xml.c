/* S3's XML through expat: a walk that hands each leaf's text to a callback
 * with the path of element names that leads to it. */
#include <expat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exitcode.h"
#include "s3xml.h"

#define DEPTH 8
#define TEXT_MAX 4096 /* of one element: a key is at most 1024 bytes */

struct walk {
	const char *path[DEPTH]; /* the element names, namespace dropped */
	char names[DEPTH][64];
	int depth;
	char text[TEXT_MAX + 1];
	size_t tlen;
	bool too_long;
	/* Called at each element's end with its path and text. */
	void (*leaf)(struct walk *w, void *ctx);
	void *ctx;
	bool failed; /* set by leaf: out of memory */
};

static void XMLCALL
on_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
	struct walk *w = ud;
	const char *local = strrchr(name, ' '); /* "ns name" with NS parsing */

	(void)attrs;
	local = local ? local + 1 : name;
	if (w->depth < DEPTH) {
		snprintf(w->names[w->depth], sizeof(w->names[0]), "%s", local);
		w->path[w->depth] = w->names[w->depth];
	}
	w->depth++;
	w->tlen = 0;
	w->too_long = false;
}

static void XMLCALL
on_end(void *ud, const XML_Char *name)
{
	struct walk *w = ud;

	(void)name;
	w->text[w->tlen] = '\0';
	if (w->depth <= DEPTH && w->leaf)
		w->leaf(w, w->ctx);
	w->depth--;
	w->tlen = 0;
}

static void XMLCALL
on_text(void *ud, const XML_Char *s, int len)
{
	struct walk *w = ud;

	if (w->tlen + (size_t)len > TEXT_MAX) {
		w->too_long = true;
		return;
	}
	memcpy(w->text + w->tlen, s, (size_t)len);
	w->tlen += (size_t)len;
}

/* Whether the element just ended is at path a/b/c (from the root). */
static bool
at(const struct walk *w, int n, const char *a, const char *b, const char *c)
{
	const char *want[3] = { a, b, c };
	int i;

	if (w->depth != n)
		return false;
	for (i = 0; i < n; i++)
		if (strcmp(w->path[i], want[i]))
			return false;
	return true;
}

static int
walk(struct walk *w, const char *xml, size_t len, struct chom_err *e)
{
	XML_Parser p = XML_ParserCreateNS(NULL, ' ');
	int ok;

	if (!p)
		return e ? chom_err_set(e, CHOM_EXIT_FAIL, "s3: out of memory")
			 : -1;
	XML_SetUserData(p, w);
	XML_SetElementHandler(p, on_start, on_end);
	XML_SetCharacterDataHandler(p, on_text);
	ok = XML_Parse(p, xml, (int)len, 1) == XML_STATUS_OK;
	if (!ok && e)
		chom_err_set(e, CHOM_EXIT_FAIL,
			     "s3: malformed XML in the reply: line %lu: %s",
			     (unsigned long)XML_GetCurrentLineNumber(p),
			     XML_ErrorString(XML_GetErrorCode(p)));
	XML_ParserFree(p);
	if (ok && w->failed)
		return e ? chom_err_set(e, CHOM_EXIT_FAIL, "s3: out of memory")
			 : -1;
	return ok ? 0 : -1;
}

/* ListObjectsV2 */

struct listing_ctx {
	struct chom_s3_listing *l;
	char *key;
	unsigned long long size;
	bool have_key;
};

static void
listing_leaf(struct walk *w, void *ctx)
{
	struct listing_ctx *c = ctx;
	struct chom_s3_listing *l = c->l;

	if (at(w, 3, "ListBucketResult", "Contents", "Key")) {
		free(c->key);
		c->key = strdup(w->text);
		c->have_key = c->key != NULL;
		w->failed |= !c->key;
	} else if (at(w, 3, "ListBucketResult", "Contents", "Size")) {
		c->size = strtoull(w->text, NULL, 10);
	} else if (at(w, 2, "ListBucketResult", "Contents", NULL)) {
		struct chom_s3_object *v;

		if (!c->have_key) {
			w->failed = true;
			return;
		}
		v = realloc(l->objects, (l->nobjects + 1) * sizeof(*v));
		if (!v) {
			w->failed = true;
			return;
		}
		l->objects = v;
		v[l->nobjects++] = (struct chom_s3_object){ c->key, c->size };
		c->key = NULL;
		c->have_key = false;
		c->size = 0;
	} else if (at(w, 3, "ListBucketResult", "CommonPrefixes", "Prefix")) {
		char **v =
		    realloc(l->prefixes, (l->nprefixes + 1) * sizeof(*v));

		if (!v || !(v[l->nprefixes] = strdup(w->text))) {
			if (v)
				l->prefixes = v;
			w->failed = true;
			return;
		}
		l->prefixes = v;
		l->nprefixes++;
	} else if (at(w, 2, "ListBucketResult", "IsTruncated", NULL)) {
		l->truncated = !strcmp(w->text, "true");
	} else if (at(w, 2, "ListBucketResult", "NextContinuationToken",
		      NULL)) {
		free(l->next_token);
		l->next_token = strdup(w->text);
		w->failed |= !l->next_token;
	}
}

int
chom_s3xml_listing(const char *xml, size_t len, struct chom_s3_listing *out,
		   struct chom_err *e)
{
	struct listing_ctx c = { .l = out };
	struct walk w = { .leaf = listing_leaf, .ctx = &c };

	memset(out, 0, sizeof(*out));
	if (walk(&w, xml, len, e) < 0 ||
	    (out->truncated && !out->next_token &&
	     chom_err_set(e, CHOM_EXIT_FAIL,
			  "s3: a truncated listing without "
			  "NextContinuationToken"))) {
		free(c.key);
		chom_s3xml_listing_free(out);
		return -1;
	}
	free(c.key);
	return 0;
}

void
chom_s3xml_listing_free(struct chom_s3_listing *l)
{
	size_t i;

	for (i = 0; i < l->nobjects; i++)
		free(l->objects[i].key);
	for (i = 0; i < l->nprefixes; i++)
		free(l->prefixes[i]);
	free(l->objects);
	free(l->prefixes);
	free(l->next_token);
	memset(l, 0, sizeof(*l));
}

/* InitiateMultipartUpload */

struct id_ctx {
	char *id;
	size_t size;
	bool found;
};

static void
id_leaf(struct walk *w, void *ctx)
{
	struct id_ctx *c = ctx;

	if (at(w, 2, "InitiateMultipartUploadResult", "UploadId", NULL) &&
	    *w->text && strlen(w->text) < c->size) {
		strcpy(c->id, w->text);
		c->found = true;
	}
}

int
chom_s3xml_upload_id(const char *xml, size_t len, char *id, size_t size,
		     struct chom_err *e)
{
	struct id_ctx c = { id, size, false };
	struct walk w = { .leaf = id_leaf, .ctx = &c };

	if (walk(&w, xml, len, e) < 0)
		return -1;
	if (!c.found)
		return chom_err_set(e, CHOM_EXIT_FAIL,
				    "s3: no UploadId in the reply");
	return 0;
}

/* ListMultipartUploads */

struct uploads_ctx {
	char key[TEXT_MAX + 1], id[TEXT_MAX + 1];
	void (*each)(const char *key, const char *id, void *ud);
	void *ud;
};

static void
uploads_leaf(struct walk *w, void *ctx)
{
	struct uploads_ctx *c = ctx;

	if (at(w, 3, "ListMultipartUploadsResult", "Upload", "Key")) {
		strcpy(c->key, w->text);
	} else if (at(w, 3, "ListMultipartUploadsResult", "Upload",
		      "UploadId")) {
		strcpy(c->id, w->text);
	} else if (at(w, 2, "ListMultipartUploadsResult", "Upload", NULL)) {
		if (*c->key && *c->id)
			c->each(c->key, c->id, c->ud);
		*c->key = *c->id = '\0';
	}
}

int
chom_s3xml_uploads(const char *xml, size_t len,
		   void (*each)(const char *key, const char *id, void *ud),
		   void *ud, struct chom_err *e)
{
	struct uploads_ctx *c = calloc(1, sizeof(*c));
	struct walk w = { .leaf = uploads_leaf, .ctx = c };
	int rc;

	if (!c)
		return chom_err_set(e, CHOM_EXIT_FAIL, "s3: out of memory");
	c->each = each;
	c->ud = ud;
	rc = walk(&w, xml, len, e);
	free(c);
	return rc;
}

/* <Error> */

struct error_ctx {
	char *code, *msg;
	size_t csize, msize;
	bool is_error;
};

static void
error_leaf(struct walk *w, void *ctx)
{
	struct error_ctx *c = ctx;

	if (w->depth == 1 && !strcmp(w->path[0], "Error"))
		c->is_error = true;
	else if (at(w, 2, "Error", "Code", NULL))
		snprintf(c->code, c->csize, "%s", w->text);
	else if (at(w, 2, "Error", "Message", NULL))
		snprintf(c->msg, c->msize, "%s", w->text);
}

int
chom_s3xml_error(const char *xml, size_t len, char *code, size_t csize,
		 char *message, size_t msize)
{
	struct error_ctx c = { code, message, csize, msize, false };
	struct walk w = { .leaf = error_leaf, .ctx = &c };

	*code = *message = '\0';
	if (walk(&w, xml, len, NULL) < 0)
		return 0;
	return c.is_error;
}

/* DeleteObjects' reply */

struct derr_ctx {
	char *key, *code;
	size_t ksize, csize;
	int n;
};

static void
derr_leaf(struct walk *w, void *ctx)
{
	struct derr_ctx *c = ctx;

	if (at(w, 3, "DeleteResult", "Error", "Key") && !c->n)
		snprintf(c->key, c->ksize, "%s", w->text);
	else if (at(w, 3, "DeleteResult", "Error", "Code") && !c->n)
		snprintf(c->code, c->csize, "%s", w->text);
	else if (at(w, 2, "DeleteResult", "Error", NULL))
		c->n++;
}

int
chom_s3xml_delete_errors(const char *xml, size_t len, char *key, size_t ksize,
			 char *code, size_t csize, struct chom_err *e)
{
	struct derr_ctx c = { key, code, ksize, csize, 0 };
	struct walk w = { .leaf = derr_leaf, .ctx = &c };

	*key = *code = '\0';
	if (walk(&w, xml, len, e) < 0)
		return -1;
	return c.n;
}

/* Writing */

struct out {
	char *p;
	size_t len, cap;
	bool ok;
};

static void
emit(struct out *o, const char *s, bool escape)
{
	for (; *s && o->ok; s++) {
		const char *rep = NULL;
		char one[2] = { *s, '\0' };
		size_t n;

		if (escape)
			rep = *s == '&'    ? "&amp;"
			      : *s == '<'  ? "&lt;"
			      : *s == '>'  ? "&gt;"
			      : *s == '"'  ? "&quot;"
			      : *s == '\'' ? "&apos;"
					   : NULL;
		if (!rep)
			rep = one;
		n = strlen(rep);
		if (o->len + n + 1 > o->cap) {
			size_t cap = (o->len + n + 1) * 2 + 256;
			char *np = realloc(o->p, cap);

			if (!np) {
				o->ok = false;
				break;
			}
			o->p = np;
			o->cap = cap;
		}
		memcpy(o->p + o->len, rep, n);
		o->len += n;
		o->p[o->len] = '\0';
	}
}

static char *
done(struct out *o)
{
	if (o->ok)
		return o->p;
	free(o->p);
	return NULL;
}

char *
chom_s3xml_complete(const char *const *etags, const char *const *checksums,
		    size_t n)
{
	struct out o = { .ok = true };
	char num[32];
	size_t i;

	emit(&o,
	     "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/"
	     "doc/2006-03-01/\">",
	     false);
	for (i = 0; i < n; i++) {
		snprintf(num, sizeof(num), "%zu", i + 1);
		emit(&o, "<Part><PartNumber>", false);
		emit(&o, num, false);
		emit(&o, "</PartNumber><ETag>", false);
		emit(&o, etags[i], true);
		emit(&o, "</ETag>", false);
		if (checksums && checksums[i]) {
			emit(&o, "<ChecksumSHA256>", false);
			emit(&o, checksums[i], true);
			emit(&o, "</ChecksumSHA256>", false);
		}
		emit(&o, "</Part>", false);
	}
	emit(&o, "</CompleteMultipartUpload>", false);
	return done(&o);
}

char *
chom_s3xml_delete(const char *const *keys, size_t n)
{
	struct out o = { .ok = true };
	size_t i;

	emit(&o,
	     "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
	     "<Quiet>true</Quiet>",
	     false);
	for (i = 0; i < n; i++) {
		emit(&o, "<Object><Key>", false);
		emit(&o, keys[i], true);
		emit(&o, "</Key></Object>", false);
	}
	emit(&o, "</Delete>", false);
	return done(&o);
}
