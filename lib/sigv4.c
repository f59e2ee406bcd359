/* AWS Signature Version 4: canonical request, string to sign, signature. */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exitcode.h"
#include "sha256.h"
#include "sigv4.h"

#define EMPTY_SHA256                                                           \
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* A growing string; ok turns false for good when memory runs out. */
struct buf {
	char *p;
	size_t len, cap;
	bool ok;
};

static void
put(struct buf *b, const char *s, size_t n)
{
	char *np;

	if (!b->ok)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = (b->len + n + 1) * 2;

		if (!(np = realloc(b->p, cap))) {
			b->ok = false;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
puts_(struct buf *b, const char *s)
{
	put(b, s, strlen(s));
}

static bool
unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	       c == '~';
}

static void
encode(struct buf *b, const char *s, size_t n, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char pct[3] = { '%', hex[c >> 4], hex[c & 15] };

		if (unreserved(c) || (keep_slash && c == '/'))
			put(b, (const char *)&s[i], 1);
		else
			put(b, pct, 3);
	}
}

int
chom_sigv4_encode(const char *s, bool keep_slash, char *out, size_t size)
{
	struct buf b = { .ok = true };
	int rc = -1;

	encode(&b, s, strlen(s), keep_slash);
	if (b.ok && b.len < size) {
		memcpy(out, b.p ? b.p : "", b.len + 1);
		rc = 0;
	}
	free(b.p);
	return rc;
}

/* The path without "." and ".." segments and empty ones (RFC 3986 5.2.4,
 * and "//" as "/"), a trailing slash kept. */
static void
normalize(struct buf *b, const char *path)
{
	const char *seg[256];
	size_t len[256], n = 0, i;
	const char *p = path;
	bool dir = false;

	while (*p) {
		size_t l;

		while (*p == '/')
			p++;
		if (!*p) {
			dir = true; /* the path ends with '/' */
			break;
		}
		l = strcspn(p, "/");
		dir = (l == 1 && *p == '.') || (l == 2 && !strncmp(p, "..", 2));
		if (l == 1 && *p == '.')
			;
		else if (l == 2 && !strncmp(p, "..", 2))
			n -= n > 0;
		else if (n < 256) {
			seg[n] = p;
			len[n++] = l;
		}
		p += l;
	}
	for (i = 0; i < n; i++) {
		puts_(b, "/");
		encode(b, seg[i], len[i], false);
	}
	if (!n || dir)
		puts_(b, "/");
}

struct param {
	char *k, *v; /* encoded the canonical way */
};

static int
cmp_param(const void *a, const void *b)
{
	const struct param *x = a, *y = b;
	int c = strcmp(x->k, y->k);

	return c ? c : strcmp(x->v, y->v);
}

static int
hexval(char c)
{
	return c >= '0' && c <= '9'   ? c - '0'
	       : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10
				      : -1;
}

/* Percent-decodes n bytes of s, then encodes them the canonical way. */
static char *
recode(const char *s, size_t n)
{
	struct buf d = { .ok = true }, out = { .ok = true };
	size_t i;

	put(&d, "", 0);
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (c == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 &&
		    hexval(s[i + 2]) >= 0) {
			c = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
			i += 2;
		}
		put(&d, &c, 1);
	}
	put(&out, "", 0);
	if (d.ok)
		encode(&out, d.p, d.len, false);
	free(d.p);
	if (!out.ok) {
		free(out.p);
		return NULL;
	}
	return out.p;
}

/* The query's parameters decoded, encoded again, sorted. */
static bool
canonical_query(struct buf *b, const char *q)
{
	struct param *v = NULL;
	size_t n = 0, i;
	bool ok = true;
	const char *p = q;

	while (p && *p) {
		size_t l = strcspn(p, "&"), kl = strcspn(p, "=");
		struct param *nv;

		if (l) {
			if (kl > l)
				kl = l;
			if (!(nv = realloc(v, (n + 1) * sizeof(*v)))) {
				ok = false;
				break;
			}
			v = nv;
			v[n].k = recode(p, kl);
			v[n].v = kl < l ? recode(p + kl + 1, l - kl - 1)
					: recode("", 0);
			n++;
			if (!v[n - 1].k || !v[n - 1].v) {
				ok = false;
				break;
			}
		}
		p += l;
		p += *p == '&';
	}
	if (ok && n)
		qsort(v, n, sizeof(*v), cmp_param);
	for (i = 0; ok && i < n; i++) {
		if (i)
			puts_(b, "&");
		puts_(b, v[i].k);
		puts_(b, "=");
		puts_(b, v[i].v);
	}
	for (i = 0; i < n; i++) {
		free(v[i].k);
		free(v[i].v);
	}
	free(v);
	return ok;
}

struct hdr {
	char name[128];
	struct buf value;
};

static int
cmp_hdr(const void *a, const void *b)
{
	return strcmp(((const struct hdr *)a)->name,
		      ((const struct hdr *)b)->name);
}

/* Adds a header, its value trimmed and its runs of spaces made one; a
 * name seen before gets the value after a comma. */
static int
add_header(struct hdr *h, size_t *n, size_t max, const char *name,
	   const char *value)
{
	char lname[128];
	size_t i, j;
	bool space = false;

	if (strlen(name) >= sizeof(lname))
		return -1;
	for (i = 0; name[i]; i++)
		lname[i] =
		    (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32
							    : name[i]);
	lname[i] = '\0';
	for (j = 0; j < *n && strcmp(h[j].name, lname); j++)
		;
	if (j == *n) {
		if (*n == max)
			return -1;
		memcpy(h[j].name, lname, i + 1);
		h[j].value = (struct buf){ .ok = true };
		put(&h[j].value, "", 0);
		(*n)++;
	} else {
		puts_(&h[j].value, ",");
	}
	while (*value == ' ' || *value == '\t' || *value == '\r' ||
	       *value == '\n')
		value++;
	for (; *value; value++) {
		bool ws = *value == ' ' || *value == '\t' || *value == '\r' ||
			  *value == '\n';

		if (ws) {
			space = true;
			continue;
		}
		if (space)
			puts_(&h[j].value, " ");
		space = false;
		put(&h[j].value, value, 1);
	}
	return h[j].value.ok ? 0 : -1;
}

static void
hex(const unsigned char *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

static bool
hmac(const void *key, size_t klen, const char *data, unsigned char out[32])
{
	size_t n = 0;

	return EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, klen,
			 (const unsigned char *)data, strlen(data), out, 32,
			 &n) != NULL &&
	       n == 32;
}

#define MAX_HEADERS 64

int
chom_sigv4_sign(const struct chom_sigv4_creds *c,
		const struct chom_sigv4_request *r, time_t now,
		struct chom_sigv4 *out, struct chom_err *e)
{
	struct hdr *h = calloc(MAX_HEADERS, sizeof(*h));
	struct buf can = { .ok = true }, sts = { .ok = true },
		   auth = { .ok = true }, signed_h = { .ok = true };
	char date[9], scope[256], digest[65], *secret = NULL;
	unsigned char k[32], sig[32];
	struct chom_sha256 *sha = NULL;
	struct tm tm;
	size_t n = 0, i;
	bool ok = h != NULL;

	memset(out, 0, sizeof(*out));
	gmtime_r(&now, &tm);
	strftime(out->amz_date, sizeof(out->amz_date), "%Y%m%dT%H%M%SZ", &tm);
	memcpy(date, out->amz_date, 8);
	date[8] = '\0';
	snprintf(out->payload, sizeof(out->payload), "%s",
		 r->payload_hash ? r->payload_hash : EMPTY_SHA256);
	for (i = 0; ok && i < r->nheaders; i++)
		ok = add_header(h, &n, MAX_HEADERS, r->headers[i].name,
				r->headers[i].value) == 0;
	ok = ok &&
	     add_header(h, &n, MAX_HEADERS, "x-amz-date", out->amz_date) == 0;
	if (ok && c->session_token && !r->unsigned_token)
		ok = add_header(h, &n, MAX_HEADERS, "x-amz-security-token",
				c->session_token) == 0;
	if (ok && r->sign_payload)
		ok = add_header(h, &n, MAX_HEADERS, "x-amz-content-sha256",
				out->payload) == 0;
	if (!ok) {
		chom_err_set(e, CHOM_EXIT_FAIL,
			     "sigv4: too many or too long headers");
		goto out;
	}
	qsort(h, n, sizeof(*h), cmp_hdr);

	/* The canonical request. */
	puts_(&can, r->method);
	puts_(&can, "\n");
	if (r->normalize)
		normalize(&can, r->path);
	else
		encode(&can, r->path, strlen(r->path), true);
	puts_(&can, "\n");
	ok = canonical_query(&can, r->query);
	puts_(&can, "\n");
	for (i = 0; i < n; i++) {
		puts_(&can, h[i].name);
		puts_(&can, ":");
		puts_(&can, h[i].value.p);
		puts_(&can, "\n");
		if (i)
			puts_(&signed_h, ";");
		puts_(&signed_h, h[i].name);
	}
	puts_(&can, "\n");
	puts_(&can, signed_h.p ? signed_h.p : "");
	puts_(&can, "\n");
	puts_(&can, out->payload);

	/* The string to sign. */
	snprintf(scope, sizeof(scope), "%s/%s/%s/aws4_request", date, c->region,
		 c->service);
	if (!(sha = chom_sha256_new()) || !can.ok || !ok) {
		chom_err_set(e, CHOM_EXIT_FAIL, "sigv4: out of memory");
		ok = false;
		goto out;
	}
	chom_sha256_update(sha, can.p, can.len);
	chom_sha256_final_hex(sha, digest);
	puts_(&sts, "AWS4-HMAC-SHA256\n");
	puts_(&sts, out->amz_date);
	puts_(&sts, "\n");
	puts_(&sts, scope);
	puts_(&sts, "\n");
	puts_(&sts, digest);

	/* The key, derived from the secret for the day, region, service. */
	if (!(secret = malloc(strlen(c->secret_key) + 5))) {
		chom_err_set(e, CHOM_EXIT_FAIL, "sigv4: out of memory");
		ok = false;
		goto out;
	}
	strcpy(secret, "AWS4");
	strcat(secret, c->secret_key);
	ok = sts.ok && hmac(secret, strlen(secret), date, k) &&
	     hmac(k, 32, c->region, k) && hmac(k, 32, c->service, k) &&
	     hmac(k, 32, "aws4_request", k) && hmac(k, 32, sts.p, sig);
	if (!ok) {
		chom_err_set(e, CHOM_EXIT_FAIL, "sigv4: HMAC-SHA256 failed");
		goto out;
	}
	hex(sig, 32, out->signature);
	puts_(&auth, "AWS4-HMAC-SHA256 Credential=");
	puts_(&auth, c->access_key);
	puts_(&auth, "/");
	puts_(&auth, scope);
	puts_(&auth, ", SignedHeaders=");
	puts_(&auth, signed_h.p);
	puts_(&auth, ", Signature=");
	puts_(&auth, out->signature);
	if (!(ok = auth.ok))
		chom_err_set(e, CHOM_EXIT_FAIL, "sigv4: out of memory");
out:
	if (secret) {
		OPENSSL_cleanse(secret, strlen(secret));
		free(secret);
	}
	OPENSSL_cleanse(k, sizeof(k));
	chom_sha256_free(sha);
	for (i = 0; h && i < n; i++)
		free(h[i].value.p);
	free(h);
	free(signed_h.p);
	if (!ok) {
		free(can.p);
		free(sts.p);
		free(auth.p);
		return -1;
	}
	out->canonical = can.p;
	out->string_to_sign = sts.p;
	out->authorization = auth.p;
	return 0;
}

void
chom_sigv4_free(struct chom_sigv4 *s)
{
	free(s->canonical);
	free(s->string_to_sign);
	free(s->authorization);
	s->canonical = s->string_to_sign = s->authorization = NULL;
}
