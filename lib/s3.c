/* An S3 client: requests signed with SigV4 and sent with libcurl. */
#include <curl/curl.h>
#include <errno.h>
#include <ini.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "exitcode.h"
#include "s3.h"
#include "sigv4.h"

#define BODY_MAX (1 << 20) /* of a reply that is not an object */
#define KEY_MAX 1024
#define URL_MAX (4 * KEY_MAX + 1024)
/* After a failure: the whole cleanup, and each of its requests. */
#define CLEANUP_S 30
#define CLEANUP_REQUEST_S 10

struct chom_s3 {
	char bucket[256], region[64];
	char scheme[8], host[512]; /* the endpoint's; host[:port] */
	bool path_style;
	char *access, *secret, *token;
	char storage_class[64];
	int parallel, attempts;
	double backoff;
	volatile sig_atomic_t *stop;
	double cleanup_until; /* chom_mono() deadline once cleaning up */
	CURL *curl;           /* the caller's thread */
	bool curl_global;
};

/* ---- credentials ---- */

struct profile {
	const char *name;
	char *access, *secret, *token;
};

static int
on_ini(void *user, const char *section, const char *key, const char *value)
{
	struct profile *p = user;
	char **dst = NULL;

	if (strcmp(section, p->name))
		return 1;
	if (!strcmp(key, "aws_access_key_id"))
		dst = &p->access;
	else if (!strcmp(key, "aws_secret_access_key"))
		dst = &p->secret;
	else if (!strcmp(key, "aws_session_token"))
		dst = &p->token;
	if (dst) {
		free(*dst);
		*dst = strdup(value);
	}
	return 1;
}

static int
credentials(struct chom_s3 *s, struct chom_err *e)
{
	const char *a = getenv("AWS_ACCESS_KEY_ID");
	const char *k = getenv("AWS_SECRET_ACCESS_KEY");
	const char *t = getenv("AWS_SESSION_TOKEN");
	const char *file = getenv("AWS_SHARED_CREDENTIALS_FILE");
	const char *home = getenv("HOME");
	struct profile p = { .name = getenv("AWS_PROFILE") };
	char path[4096];
	int r;

	if (a && *a && k && *k) {
		s->access = strdup(a);
		s->secret = strdup(k);
		s->token = t && *t ? strdup(t) : NULL;
		return s->access && s->secret
			   ? 0
			   : chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
	}
	if (!p.name || !*p.name)
		p.name = "default";
	if (file && *file)
		snprintf(path, sizeof(path), "%s", file);
	else
		snprintf(path, sizeof(path), "%s/.aws/credentials",
			 home ? home : "");
	r = ini_parse(path, on_ini, &p);
	if (r == 0 && p.access && p.secret) {
		s->access = p.access;
		s->secret = p.secret;
		s->token = p.token;
		return 0;
	}
	free(p.access);
	free(p.secret);
	free(p.token);
	if (r > 0)
		return chom_err_set(e, CHOM_EXIT_USAGE,
				    "s3: %s:%d: not an INI file", path, r);
	return chom_err_set(e, CHOM_EXIT_USAGE,
			    "s3: no credentials: set AWS_ACCESS_KEY_ID and "
			    "AWS_SECRET_ACCESS_KEY, or profile '%s' in %s",
			    p.name, path);
}

static const char *
env(const char *a, const char *b)
{
	const char *v = getenv(a);

	if (v && *v)
		return v;
	v = b ? getenv(b) : NULL;
	return v && *v ? v : NULL;
}

int
chom_s3_new(const struct chom_s3_opts *o, struct chom_s3 **out,
	    struct chom_err *e)
{
	struct chom_s3 *s = calloc(1, sizeof(*s));
	const char *ep = o->endpoint
			     ? o->endpoint
			     : env("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL");
	const char *region =
	    o->region ? o->region : env("AWS_REGION", "AWS_DEFAULT_REGION");
	const char *rest, *style;

	*out = NULL;
	if (!s)
		return chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
	snprintf(s->bucket, sizeof(s->bucket), "%s", o->bucket);
	snprintf(s->region, sizeof(s->region), "%s",
		 region ? region : "us-east-1");
	snprintf(s->storage_class, sizeof(s->storage_class), "%s",
		 o->storage_class ? o->storage_class : "");
	s->parallel = o->parallel > 0 ? o->parallel : 4;
	s->attempts = o->attempts > 0 ? o->attempts : 8;
	s->backoff = o->backoff > 0 ? o->backoff : 0.25;
	s->stop = o->stop;
	if (ep) {
		if (!strncmp(ep, "https://", 8))
			strcpy(s->scheme, "https");
		else if (!strncmp(ep, "http://", 7))
			strcpy(s->scheme, "http");
		else {
			chom_s3_free(s);
			return chom_err_set(e, CHOM_EXIT_USAGE,
					    "s3: endpoint %s: not http:// or "
					    "https://",
					    ep);
		}
		rest = strstr(ep, "://") + 3;
		snprintf(s->host, sizeof(s->host), "%.*s",
			 (int)strcspn(rest, "/"), rest);
		s->path_style = o->path_style != 0;
	} else {
		strcpy(s->scheme, "https");
		snprintf(s->host, sizeof(s->host), "s3.%s.amazonaws.com",
			 s->region);
		s->path_style = o->path_style > 0;
	}
	if (!*s->host || !*s->bucket) {
		chom_s3_free(s);
		return chom_err_set(e, CHOM_EXIT_USAGE,
				    "s3: no host or no bucket");
	}
	/* The provider's choice, where both work: path or virtual. */
	if ((style = getenv("CHOM_S3_ADDRESSING")) && *style) {
		if (strcmp(style, "path") && strcmp(style, "virtual")) {
			chom_s3_free(s);
			return chom_err_set(e, CHOM_EXIT_USAGE,
					    "CHOM_S3_ADDRESSING=%s: path or "
					    "virtual",
					    style);
		}
		s->path_style = !strcmp(style, "path");
	}
	/* Before any thread: libcurl's global state, counted. */
	curl_global_init(CURL_GLOBAL_DEFAULT);
	s->curl_global = true;
	if (credentials(s, e) < 0 || !(s->curl = curl_easy_init())) {
		if (!s->curl && !*e->msg)
			chom_err_set(e, CHOM_EXIT_FAIL, "s3: curl init");
		chom_s3_free(s);
		return -1;
	}
	*out = s;
	return 0;
}

void
chom_s3_free(struct chom_s3 *s)
{
	if (!s)
		return;
	if (s->secret)
		OPENSSL_cleanse(s->secret, strlen(s->secret));
	free(s->access);
	free(s->secret);
	free(s->token);
	if (s->curl)
		curl_easy_cleanup(s->curl);
	if (s->curl_global)
		curl_global_cleanup();
	free(s);
}

/* ---- one request, retried ---- */

struct rq {
	const char *method;
	const char *key;   /* NULL: the bucket */
	const char *query; /* encoded, or NULL */
	const void *body;
	size_t len;
	const struct chom_sigv4_header *extra;
	size_t nextra;
	struct chom_sink *sink; /* a 2xx body goes there (GET) */
	const char *hash;       /* the body's hex SHA-256, or NULL */
	atomic_bool *cancel;    /* set: the request is no longer wanted */
	/* On a connection of its own: on one reused and found closed,
	 * libcurl would send it again itself, unknown to us. */
	bool fresh;
};

struct rs {
	long status;
	char *body; /* what was not for the sink, NUL-terminated */
	size_t blen;
	char etag[256];
	unsigned long long got;  /* bytes handed to the sink */
	unsigned long long skip; /* of a 200 answer to a Range request */
	long long range_from;    /* a 206's Content-Range start, or -1 */
	struct chom_sink *sink;
	CURL *c;
	const struct chom_s3 *s;
	atomic_bool *cancel;
	CURLcode cc;
	int tries; /* attempts sent */
	bool sink_failed, range_checked, range_bad, too_big;
	struct chom_err sink_err;
};

static size_t
on_body(char *p, size_t size, size_t n, void *ud)
{
	struct rs *r = ud;
	size_t len = size * n, cut;
	long status = 0;

	curl_easy_getinfo(r->c, CURLINFO_RESPONSE_CODE, &status);
	/* A 206 answers the Range from the byte asked, nothing to skip; from
	 * another byte, it would put its bytes in the wrong place. */
	if (status == 206 && r->sink && !r->range_checked) {
		r->range_checked = true;
		if (r->range_from < 0 ||
		    (unsigned long long)r->range_from != r->skip) {
			r->range_bad = true;
			return 0;
		}
		r->skip = 0;
	}
	if (r->sink && status >= 200 && status < 300) {
		cut = r->skip < len ? (size_t)r->skip : len;
		r->skip -= cut;
		if (len > cut && chom_sink_write(r->sink, p + cut, len - cut,
						 &r->sink_err) < 0) {
			r->sink_failed = true;
			return 0;
		}
		r->got += len - cut;
		return len;
	}
	/* Cut, it would only fail later as malformed XML. */
	if (r->blen + len > BODY_MAX) {
		r->too_big = true;
		return 0;
	}
	{
		char *nb = realloc(r->body, r->blen + len + 1);

		if (!nb)
			return 0;
		r->body = nb;
		memcpy(r->body + r->blen, p, len);
		r->blen += len;
		r->body[r->blen] = '\0';
	}
	return len;
}

static size_t
on_header(char *p, size_t size, size_t n, void *ud)
{
	struct rs *r = ud;
	size_t len = size * n;

	if (len > 5 && !strncasecmp(p, "ETag:", 5)) {
		const char *v = p + 5;
		size_t l;

		while (*v == ' ')
			v++;
		l = (size_t)(p + len - v);
		while (l && (v[l - 1] == '\r' || v[l - 1] == '\n'))
			l--;
		snprintf(r->etag, sizeof(r->etag), "%.*s", (int)l, v);
	} else if (len > 14 && !strncasecmp(p, "Content-Range:", 14)) {
		unsigned long long from;

		if (sscanf(p + 14, " bytes %llu-", &from) == 1)
			r->range_from = (long long)from;
	}
	return len;
}

/* Ends a transfer under way when a signal has come, or when it is no
 * longer wanted. */
static int
on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut,
	    curl_off_t un)
{
	const struct rs *r = ud;

	(void)dt;
	(void)dn;
	(void)ut;
	(void)un;
	return (r->s->stop && *r->s->stop) || (r->cancel && *r->cancel);
}

struct body_src {
	const char *p;
	size_t len, at;
};

static size_t
on_read(char *buf, size_t size, size_t n, void *ud)
{
	struct body_src *b = ud;
	size_t len = size * n;

	if (len > b->len - b->at)
		len = b->len - b->at;
	memcpy(buf, b->p + b->at, len);
	b->at += len;
	return len;
}

static void
hex_sha256(const void *p, size_t len, char hex[65], unsigned char raw[32])
{
	static const char d[] = "0123456789abcdef";
	unsigned int n = 32;
	int i;

	EVP_Digest(p, len, raw, &n, EVP_sha256(), NULL);
	for (i = 0; i < 32; i++) {
		hex[2 * i] = d[raw[i] >> 4];
		hex[2 * i + 1] = d[raw[i] & 15];
	}
	hex[64] = '\0';
}

/* The object's path, decoded, and the URL with it encoded. */
static int
locate(const struct chom_s3 *s, const char *key, const char *query, char *path,
       size_t psize, char *url, size_t usize, char *host, size_t hsize)
{
	char enc[URL_MAX];

	if (s->path_style) {
		snprintf(host, hsize, "%s", s->host);
		if ((size_t)snprintf(path, psize, "/%s/%s", s->bucket,
				     key ? key : "") >= psize)
			return -1;
	} else {
		if ((size_t)snprintf(host, hsize, "%s.%s", s->bucket,
				     s->host) >= hsize)
			return -1;
		if ((size_t)snprintf(path, psize, "/%s", key ? key : "") >=
		    psize)
			return -1;
	}
	if (chom_sigv4_encode(path, true, enc, sizeof(enc)) < 0)
		return -1;
	if ((size_t)snprintf(url, usize, "%s://%s%s%s%s", s->scheme, host, enc,
			     query ? "?" : "", query ? query : "") >= usize)
		return -1;
	return 0;
}

static bool
stopped(const struct chom_s3 *s)
{
	return s->stop && *s->stop;
}

/* Waits before attempt n (1, 2, ...): full jitter on an exponential. */
static void
pause_before(const struct chom_s3 *s, int n)
{
	double cap = s->backoff * (double)(1 << (n < 12 ? n : 12)), t;
	unsigned int r = 0;

	if (cap > 20)
		cap = 20;
	RAND_bytes((unsigned char *)&r, sizeof(r));
	t = cap * (r / 4294967296.0);
	while (t > 0 && !stopped(s)) {
		double step = t < 0.05 ? t : 0.05;

		usleep((useconds_t)(step * 1e6));
		t -= step;
	}
}

/* One try: 0 with rs filled, or -1 with a curl error in *cerr. */
static int
attempt(struct chom_s3 *s, CURL *c, const struct rq *q, const char *hash,
	struct rs *r, char *cerr, struct chom_err *e)
{
	struct chom_sigv4_header hs[16];
	struct curl_slist *hl = NULL;
	struct chom_sigv4 sig;
	struct body_src src = { q->body, q->len, 0 };
	char path[URL_MAX], url[URL_MAX], host[800], line[URL_MAX];
	char range[64];
	size_t n = 0, i;
	CURLcode cc;
	int rc = 0;

	if (locate(s, q->key, q->query, path, sizeof(path), url, sizeof(url),
		   host, sizeof(host)) < 0)
		return chom_err_set(e, CHOM_EXIT_FAIL, "s3: key too long");
	hs[n++] = (struct chom_sigv4_header){ "Host", host };
	for (i = 0; i < q->nextra && n < 14; i++)
		hs[n++] = q->extra[i];
	if (q->sink && r->got) {
		snprintf(range, sizeof(range), "bytes=%llu-", r->got);
		hs[n++] = (struct chom_sigv4_header){ "Range", range };
	}
	if (chom_sigv4_sign(
		&(struct chom_sigv4_creds){ s->access, s->secret, s->token,
					    s->region, "s3" },
		&(struct chom_sigv4_request){ .method = q->method,
					      .path = path,
					      .query = q->query,
					      .headers = hs,
					      .nheaders = n,
					      .payload_hash = hash,
					      .sign_payload = true },
		time(NULL), &sig, e) < 0)
		return -1;
	for (i = 0; i < n; i++) {
		snprintf(line, sizeof(line), "%s: %s", hs[i].name, hs[i].value);
		hl = curl_slist_append(hl, line);
	}
	snprintf(line, sizeof(line), "x-amz-date: %s", sig.amz_date);
	hl = curl_slist_append(hl, line);
	snprintf(line, sizeof(line), "x-amz-content-sha256: %s", sig.payload);
	hl = curl_slist_append(hl, line);
	if (s->token) {
		snprintf(line, sizeof(line), "x-amz-security-token: %s",
			 s->token);
		hl = curl_slist_append(hl, line);
	}
	snprintf(line, sizeof(line), "Authorization: %s", sig.authorization);
	hl = curl_slist_append(hl, line);
	/* Whole bodies, sent at once: no 100-continue round trip. */
	hl = curl_slist_append(hl, "Expect:");
	hl = curl_slist_append(hl, "Content-Type:");
	chom_sigv4_free(&sig);

	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
	/* A stalled transfer: under 1 KiB/s for 30 s. */
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 30L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "chom/" CHOM_VERSION);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, r);
	if (q->fresh)
		curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, 1L);
	if (s->cleanup_until > 0) {
		double left = s->cleanup_until - chom_mono();
		long ms = left < CLEANUP_REQUEST_S ? (long)(left * 1000)
						   : CLEANUP_REQUEST_S * 1000L;

		ms = ms > 100 ? ms : 100;
		curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, ms);
		curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, ms);
	}
	if (!strcmp(q->method, "PUT")) {
		curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(c, CURLOPT_READDATA, &src);
		curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE,
				 (curl_off_t)q->len);
	} else if (!strcmp(q->method, "POST")) {
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, q->body ? q->body : "");
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)q->len);
	} else if (!strcmp(q->method, "HEAD")) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	} else if (strcmp(q->method, "GET")) {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, q->method);
	}
	r->c = c;
	r->s = s;
	r->cancel = q->cancel;
	r->status = 0;
	r->blen = 0;
	r->etag[0] = '\0';
	r->skip = q->sink && r->got ? r->got : 0;
	r->range_from = -1;
	r->range_checked = r->range_bad = r->too_big = false;
	r->tries++;
	*cerr = '\0';
	cc = curl_easy_perform(c);
	r->cc = cc;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	if (cc != CURLE_OK) {
		if (!*cerr)
			snprintf(cerr, CURL_ERROR_SIZE, "%s",
				 curl_easy_strerror(cc));
		rc = -1;
	}
	curl_slist_free_all(hl);
	return rc;
}

/* "s3: PUT bucket/key: 403 AccessDenied: Access Denied" */
static int
fail_reply(const struct chom_s3 *s, const struct rq *q, const struct rs *r,
	   struct chom_err *e)
{
	char code[128], msg[512];

	if (r->body && chom_s3xml_error(r->body, r->blen, code, sizeof(code),
					msg, sizeof(msg)))
		return chom_err_set(
		    e, CHOM_EXIT_FAIL, "s3: %s %s/%s: %ld %s: %s", q->method,
		    s->bucket, q->key ? q->key : "", r->status, code, msg);
	return chom_err_set(e, CHOM_EXIT_FAIL, "s3: %s %s/%s: HTTP %ld",
			    q->method, s->bucket, q->key ? q->key : "",
			    r->status);
}

/* Whether a failed transfer may go better the next time: not a
 * certificate refused, a URL or an option curl cannot use. */
static bool
transient(CURLcode cc)
{
	switch (cc) {
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
	case CURLE_NOT_BUILT_IN:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_USE_SSL_FAILED:
	case CURLE_FUNCTION_NOT_FOUND:
	case CURLE_BAD_FUNCTION_ARGUMENT:
	case CURLE_UNKNOWN_OPTION:
	case CURLE_OUT_OF_MEMORY:
	case CURLE_TOO_MANY_REDIRECTS:
	case CURLE_LOGIN_DENIED: return false;
	default: return true;
	}
}

static int
request(struct chom_s3 *s, CURL *c, const struct rq *q, struct rs *r,
	struct chom_err *e)
{
	char cerr[CURL_ERROR_SIZE + 1] = "", hash[65], code[128], msg[512];
	unsigned char raw[32];
	int n;

	memset(r, 0, sizeof(*r));
	r->sink = q->sink;
	if (!q->hash)
		hex_sha256(q->body ? q->body : "", q->len, hash, raw);
	for (n = 0; n < s->attempts; n++) {
		if (n)
			pause_before(s, n);
		if (stopped(s))
			return chom_err_set(e, 128 + *s->stop, "interrupted");
		if (q->cancel && *q->cancel)
			return chom_err_set(e, CHOM_EXIT_FAIL, "s3: cancelled");
		if (s->cleanup_until > 0 && chom_mono() >= s->cleanup_until)
			return chom_err_set(
			    e, CHOM_EXIT_FAIL,
			    "s3: %s %s/%s: cleanup given up after "
			    "%d s: %s",
			    q->method, s->bucket, q->key ? q->key : "",
			    CLEANUP_S, *cerr ? cerr : "no answer");
		if (attempt(s, c, q, q->hash ? q->hash : hash, r, cerr, e) <
		    0) {
			if (r->sink_failed) {
				*e = r->sink_err;
				return -1;
			}
			if (!*cerr) /* not sent: signing failed */
				return -1;
			if (r->too_big)
				return chom_err_set(
				    e, CHOM_EXIT_FAIL,
				    "s3: %s %s/%s: HTTP %ld: reply over 1 MiB",
				    q->method, s->bucket, q->key ? q->key : "",
				    r->status);
			if (r->range_bad) {
				snprintf(
				    cerr, CURL_ERROR_SIZE,
				    "206 from byte %lld, not %llu as asked",
				    r->range_from, r->got);
				continue;
			}
			if (!transient(r->cc))
				return chom_err_set(
				    e, CHOM_EXIT_FAIL,
				    "s3: %s %s/%s: %s (not retried)", q->method,
				    s->bucket, q->key ? q->key : "", cerr);
			continue; /* refused, reset, timed out: again */
		}
		/* CompleteMultipartUpload may fail after its 200. */
		if (r->status == 200 && !strcmp(q->method, "POST") && r->body &&
		    chom_s3xml_error(r->body, r->blen, code, sizeof(code), msg,
				     sizeof(msg))) {
			snprintf(cerr, sizeof(cerr), "%.64s: %.180s", code,
				 msg);
			continue;
		}
		if (r->status >= 200 && r->status < 300)
			return 0;
		/* Resumed past the end: the failure came after the last
		 * byte; the caller's size check has the last word. */
		if (r->status == 416 && q->sink && r->got)
			return 0;
		/* Throttled, the server's fault, or its patience with a slow
		 * body run out: again. */
		if (r->status >= 500 || r->status == 429)
			continue;
		if (r->status == 400 && r->body &&
		    chom_s3xml_error(r->body, r->blen, code, sizeof(code), msg,
				     sizeof(msg)) &&
		    !strcmp(code, "RequestTimeout"))
			continue;
		return fail_reply(s, q, r, e);
	}
	if (r->status >= 300)
		return fail_reply(s, q, r, e);
	return chom_err_set(e, CHOM_EXIT_FAIL, "s3: %s %s/%s: %s (%d attempts)",
			    q->method, s->bucket, q->key ? q->key : "", cerr,
			    n);
}

static void
rs_free(struct rs *r)
{
	free(r->body);
	r->body = NULL;
}

/* ---- objects ---- */

static void
sum64(const unsigned char raw[32], char out[48])
{
	EVP_EncodeBlock((unsigned char *)out, raw, 32);
}

/* The checksum header of a body: x-amz-checksum-sha256, base64. */
static void
checksum(const void *p, size_t len, char b64[48])
{
	char hex[65];
	unsigned char raw[32];

	hex_sha256(p ? p : "", len, hex, raw);
	sum64(raw, b64);
}

int
chom_s3_put(struct chom_s3 *s, const char *key, const void *data, size_t len,
	    bool with_class, struct chom_err *e)
{
	char b64[48];
	struct chom_sigv4_header h[2] = {
		{ "x-amz-checksum-sha256", b64 },
		{ "x-amz-storage-class", s->storage_class },
	};
	struct rs r;
	int rc;

	checksum(data, len, b64);
	rc = request(
	    s, s->curl,
	    &(struct rq){ .method = "PUT",
			  .key = key,
			  .body = data,
			  .len = len,
			  .extra = h,
			  .nextra = with_class && *s->storage_class ? 2 : 1 },
	    &r, e);
	rs_free(&r);
	return rc;
}

int
chom_s3_get(struct chom_s3 *s, const char *key, struct chom_sink *out,
	    bool *missing, struct chom_err *e)
{
	struct rs r;
	int rc = request(
	    s, s->curl,
	    &(struct rq){ .method = "GET", .key = key, .sink = out }, &r, e);

	if (missing)
		*missing = rc < 0 && r.status == 404;
	rs_free(&r);
	return rc;
}

/* Appends what is in one listing to another. */
static int
merge(struct chom_s3_listing *all, struct chom_s3_listing *page)
{
	struct chom_s3_object *o;
	char **p;

	o = realloc(all->objects,
		    (all->nobjects + page->nobjects + 1) * sizeof(*o));
	if (!o)
		return -1;
	all->objects = o;
	p = realloc(all->prefixes,
		    (all->nprefixes + page->nprefixes + 1) * sizeof(*p));
	if (!p)
		return -1;
	all->prefixes = p;
	/* An empty page has NULL arrays: not even a copy of nothing. */
	if (page->nobjects)
		memcpy(o + all->nobjects, page->objects,
		       page->nobjects * sizeof(*o));
	all->nobjects += page->nobjects;
	if (page->nprefixes)
		memcpy(p + all->nprefixes, page->prefixes,
		       page->nprefixes * sizeof(*p));
	all->nprefixes += page->nprefixes;
	free(page->objects);
	free(page->prefixes);
	page->objects = NULL;
	page->prefixes = NULL;
	page->nobjects = page->nprefixes = 0;
	return 0;
}

int
chom_s3_list(struct chom_s3 *s, const char *prefix, const char *delim,
	     struct chom_s3_listing *out, struct chom_err *e)
{
	char *token = NULL, q[3 * KEY_MAX + 4096], ep[3 * KEY_MAX],
	     et[3 * KEY_MAX], ed[16];
	struct chom_s3_listing page;
	struct rs r;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (chom_sigv4_encode(prefix, false, ep, sizeof(ep)) < 0 ||
	    chom_sigv4_encode(delim ? delim : "", false, ed, sizeof(ed)) < 0)
		return chom_err_set(e, CHOM_EXIT_FAIL, "s3: prefix too long");
	do {
		if (token &&
		    chom_sigv4_encode(token, false, et, sizeof(et)) < 0) {
			rc = chom_err_set(e, CHOM_EXIT_FAIL, "s3: odd token");
			break;
		}
		snprintf(q, sizeof(q), "list-type=2&prefix=%s%s%s%s%s", ep,
			 delim ? "&delimiter=" : "", delim ? ed : "",
			 token ? "&continuation-token=" : "", token ? et : "");
		rc =
		    request(s, s->curl,
			    &(struct rq){ .method = "GET", .query = q }, &r, e);
		if (rc == 0)
			rc = chom_s3xml_listing(r.body ? r.body : "", r.blen,
						&page, e);
		rs_free(&r);
		free(token);
		token = NULL;
		if (rc < 0)
			break;
		if (page.truncated)
			token = page.next_token;
		page.next_token = NULL;
		if (merge(out, &page) < 0) {
			chom_s3xml_listing_free(&page);
			rc = chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
			break;
		}
		chom_s3xml_listing_free(&page);
	} while (token);
	free(token);
	if (rc < 0)
		chom_s3xml_listing_free(out);
	return rc;
}

int
chom_s3_delete(struct chom_s3 *s, const char *const *keys, size_t n,
	       struct chom_err *e)
{
	size_t i, batch;

	for (i = 0; i < n; i += batch) {
		char *body, md5b64[32], key[KEY_MAX + 1], code[128];
		unsigned char md5[16];
		unsigned int ml = 16;
		struct chom_sigv4_header h[1] = { { "Content-MD5", md5b64 } };
		struct rs r;
		int bad;

		batch = n - i < 1000 ? n - i : 1000;
		if (!(body = chom_s3xml_delete(keys + i, batch)))
			return chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
		/* DeleteObjects wants the body's MD5, as a checksum. */
		EVP_Digest(body, strlen(body), md5, &ml, EVP_md5(), NULL);
		EVP_EncodeBlock((unsigned char *)md5b64, md5, 16);
		bad = request(s, s->curl,
			      &(struct rq){ .method = "POST",
					    .query = "delete",
					    .body = body,
					    .len = strlen(body),
					    .extra = h,
					    .nextra = 1 },
			      &r, e);
		free(body);
		if (bad == 0)
			bad = chom_s3xml_delete_errors(r.body ? r.body : "",
						       r.blen, key, sizeof(key),
						       code, sizeof(code), e);
		rs_free(&r);
		if (bad < 0)
			return -1;
		if (bad > 0)
			return chom_err_set(e, CHOM_EXIT_FAIL,
					    "s3: %d keys not deleted, as %s: "
					    "%s",
					    bad, key, code);
	}
	return 0;
}

/* ---- multipart uploads ---- */

enum { P_FREE, P_QUEUED, P_RUNNING, P_DONE };

struct part {
	unsigned char *buf;
	size_t len, cap;
	int num, state;
	int rc;
	char etag[256], sum[48], hash[65];
	struct chom_err err;
};

struct upload {
	struct chom_sink sink;
	struct chom_s3 *s;
	char key[KEY_MAX + 1];
	char id[1024];      /* the UploadId once begun */
	char (*etags)[256]; /* of parts 1..nparts */
	char (*sums)[48];
	int nparts;               /* parts queued so far */
	unsigned long long bytes; /* in them */
	struct part *ring;
	int nring, head, tail; /* parts ring[head..tail) in flight */
	struct part *cur;      /* being filled */
	pthread_t *tids;
	int nthreads;
	pthread_mutex_t mu;
	pthread_cond_t work, done;
	int queued_next; /* next ring index a worker takes */
	bool quit, failed, closed;
	atomic_bool cancel; /* the parts in flight are no longer wanted */
	struct chom_err err;
};

unsigned long long
chom_s3_part_size(int n)
{
	if (n < 1 || n > CHOM_S3_MAX_PARTS)
		return 0;
	return CHOM_S3_PART_MIN << ((n - 1) / 1000);
}

static int
up_fail(struct upload *u, struct chom_err *e)
{
	u->failed = true;
	u->err = *e;
	return -1;
}

static void *
up_work(void *arg)
{
	struct upload *u = arg;
	CURL *c = curl_easy_init();
	char q[1300], enc[1100];

	pthread_mutex_lock(&u->mu);
	for (;;) {
		struct part *p = NULL;
		int i;

		while (!u->quit) {
			for (i = 0; i < u->nring && !p; i++)
				if (u->ring[i].state == P_QUEUED)
					p = &u->ring[i];
			if (p)
				break;
			pthread_cond_wait(&u->work, &u->mu);
		}
		if (u->quit)
			break;
		p->state = P_RUNNING;
		pthread_mutex_unlock(&u->mu);
		{
			struct chom_sigv4_header h[1] = {
				{ "x-amz-checksum-sha256", p->sum },
			};
			unsigned char raw[32];
			struct rs r = { 0 };

			/* One hash: the payload's, and its checksum. */
			hex_sha256(p->buf, p->len, p->hash, raw);
			sum64(raw, p->sum);
			chom_sigv4_encode(u->id, false, enc, sizeof(enc));
			snprintf(q, sizeof(q), "partNumber=%d&uploadId=%s",
				 p->num, enc);
			p->rc =
			    c ? request(u->s, c,
					&(struct rq){ .method = "PUT",
						      .key = u->key,
						      .query = q,
						      .body = p->buf,
						      .len = p->len,
						      .extra = h,
						      .nextra = 1,
						      .hash = p->hash,
						      .cancel = &u->cancel },
					&r, &p->err)
			      : chom_err_set(&p->err, CHOM_EXIT_FAIL,
					     "s3: curl init");
			if (p->rc == 0 && !*r.etag)
				p->rc = chom_err_set(&p->err, CHOM_EXIT_FAIL,
						     "s3: part %d: no ETag",
						     p->num);
			if (p->rc == 0)
				snprintf(p->etag, sizeof(p->etag), "%s",
					 r.etag);
			rs_free(&r);
		}
		pthread_mutex_lock(&u->mu);
		p->state = P_DONE;
		pthread_cond_broadcast(&u->done);
	}
	pthread_mutex_unlock(&u->mu);
	if (c)
		curl_easy_cleanup(c);
	return NULL;
}

/* AbortMultipartUpload, in the cleanup's bounds: nothing is left to pay
 * for, or the failure has been given its chance. */
static void
abort_upload(struct chom_s3 *s, const char *key, const char *id)
{
	char q[1200], enc[1100];
	struct chom_err ignore;
	struct rs r;

	if (chom_sigv4_encode(id, false, enc, sizeof(enc)) < 0)
		return;
	snprintf(q, sizeof(q), "uploadId=%s", enc);
	request(s, s->curl,
		&(struct rq){ .method = "DELETE", .key = key, .query = q }, &r,
		&ignore);
	rs_free(&r);
}

/* An upload of the key that is not ours: aborted. */
static void
abort_stray(const char *key, const char *id, void *ud)
{
	struct upload *u = ud;

	if (!strcmp(key, u->key) && strcmp(id, u->id))
		abort_upload(u->s, u->key, id);
}

/*
 * A CreateMultipartUpload sent more than once may have made an upload
 * whose answer was lost: open, and billed, until aborted. The uploads of
 * the key but ours go (the key is the point's: no other run writes it).
 */
static void
abort_strays(struct upload *u)
{
	char q[3 * KEY_MAX + 64], ek[3 * KEY_MAX];
	struct chom_err ignore;
	struct rs r;

	if (chom_sigv4_encode(u->key, false, ek, sizeof(ek)) < 0)
		return;
	snprintf(q, sizeof(q), "prefix=%s&uploads", ek);
	if (request(u->s, u->s->curl,
		    &(struct rq){ .method = "GET", .query = q }, &r,
		    &ignore) == 0)
		chom_s3xml_uploads(r.body ? r.body : "", r.blen, abort_stray, u,
				   &ignore);
	rs_free(&r);
}

static int
begin(struct upload *u, struct chom_err *e)
{
	struct chom_sigv4_header h[2] = {
		{ "x-amz-checksum-algorithm", "SHA256" },
		{ "x-amz-storage-class", u->s->storage_class },
	};
	struct rs r;
	int i, rc;

	rc = request(u->s, u->s->curl,
		     &(struct rq){ .method = "POST",
				   .key = u->key,
				   .query = "uploads",
				   .extra = h,
				   .fresh = true,
				   .nextra = *u->s->storage_class ? 2 : 1 },
		     &r, e);
	if (rc == 0)
		rc = chom_s3xml_upload_id(r.body ? r.body : "", r.blen, u->id,
					  sizeof(u->id), e);
	rs_free(&r);
	if (rc < 0)
		return -1;
	if (r.tries > 1)
		abort_strays(u);
	u->nthreads = u->s->parallel;
	if (!(u->tids = calloc((size_t)u->nthreads, sizeof(*u->tids))))
		return chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
	for (i = 0; i < u->nthreads; i++)
		if (pthread_create(&u->tids[i], NULL, up_work, u)) {
			u->nthreads = i;
			return chom_err_set(e, CHOM_EXIT_FAIL,
					    "s3: pthread_create");
		}
	return 0;
}

/* Waits for the oldest part in flight and records its ETag. */
static int
reap_oldest(struct upload *u, struct chom_err *e)
{
	struct part *p = &u->ring[u->head % u->nring];

	pthread_mutex_lock(&u->mu);
	while (p->state != P_DONE)
		pthread_cond_wait(&u->done, &u->mu);
	pthread_mutex_unlock(&u->mu);
	u->head++;
	if (p->rc < 0) {
		*e = p->err;
		return up_fail(u, e);
	}
	snprintf(u->etags[p->num - 1], sizeof(u->etags[0]), "%s", p->etag);
	snprintf(u->sums[p->num - 1], sizeof(u->sums[0]), "%s", p->sum);
	pthread_mutex_lock(&u->mu);
	p->state = P_FREE;
	pthread_mutex_unlock(&u->mu);
	p->len = 0;
	return 0;
}

/* Queues the part being filled. */
static int
queue(struct upload *u, struct chom_err *e)
{
	struct part *p = u->cur;
	void *ne, *ns;

	if (!u->id[0] && begin(u, e) < 0)
		return up_fail(u, e);
	if (u->nparts == CHOM_S3_MAX_PARTS)
		return up_fail(u, (chom_err_set(e, CHOM_EXIT_FAIL,
						"s3: more than %d parts",
						CHOM_S3_MAX_PARTS),
				   e));
	ne = realloc(u->etags, (size_t)(u->nparts + 1) * sizeof(*u->etags));
	if (ne)
		u->etags = ne;
	ns = realloc(u->sums, (size_t)(u->nparts + 1) * sizeof(*u->sums));
	if (ns)
		u->sums = ns;
	if (!ne || !ns)
		return up_fail(
		    u, (chom_err_set(e, CHOM_EXIT_FAIL, "out of memory"), e));
	pthread_mutex_lock(&u->mu);
	p->num = ++u->nparts;
	u->bytes += p->len;
	p->rc = 0;
	p->state = P_QUEUED;
	u->tail++;
	u->cur = NULL;
	pthread_cond_broadcast(&u->work);
	pthread_mutex_unlock(&u->mu);
	return 0;
}

static int
up_write(struct chom_sink *sk, const void *buf, size_t len, struct chom_err *e)
{
	struct upload *u = (struct upload *)sk;
	const unsigned char *p = buf;

	if (u->failed) {
		*e = u->err;
		return -1;
	}
	while (len) {
		size_t want, n;

		if (stopped(u->s))
			return up_fail(u, (chom_err_set(e, 128 + *u->s->stop,
							"interrupted"),
					   e));
		if (!u->cur) {
			struct part *slot;

			/* Refused before its buffer is taken. */
			if (u->nparts == CHOM_S3_MAX_PARTS)
				return up_fail(
				    u,
				    (chom_err_set(e, CHOM_EXIT_FAIL,
						  "s3: %s: more than %d parts",
						  u->key, CHOM_S3_MAX_PARTS),
				     e));
			while (u->tail - u->head == u->nring)
				if (reap_oldest(u, e) < 0)
					return -1;
			slot = &u->ring[u->tail % u->nring];
			want = (size_t)chom_s3_part_size(u->nparts + 1);
			if (slot->cap < want) {
				unsigned char *nb = realloc(slot->buf, want);

				if (!nb)
					return up_fail(
					    u, (chom_err_set(e, CHOM_EXIT_FAIL,
							     "out of memory"),
						e));
				slot->buf = nb;
				slot->cap = want;
			}
			slot->len = 0;
			slot->num = 0;
			u->cur = slot;
		}
		want = (size_t)chom_s3_part_size(u->nparts + 1);
		n = want - u->cur->len < len ? want - u->cur->len : len;
		memcpy(u->cur->buf + u->cur->len, p, n);
		u->cur->len += n;
		p += n;
		len -= n;
		/* A full part waits for more input, so that the last part
		 * is never empty. */
		if (u->cur->len == want && len && queue(u, e) < 0)
			return -1;
	}
	return 0;
}

/*
 * A CompleteMultipartUpload sent again after its answer was lost finds
 * the upload gone (404 NoSuchUpload) when the first one completed it:
 * whether the object is there, of the size uploaded. The key is this
 * point's own, written by nothing else.
 */
static bool
completed_before(struct upload *u, const struct rs *r)
{
	char code[128], msg[512];
	struct chom_s3_listing l;
	struct chom_err e;
	bool done = false;

	if (r->tries < 2 || r->status != 404 || !r->body ||
	    !chom_s3xml_error(r->body, r->blen, code, sizeof(code), msg,
			      sizeof(msg)) ||
	    strcmp(code, "NoSuchUpload"))
		return false;
	if (chom_s3_list(u->s, u->key, NULL, &l, &e) < 0)
		return false;
	for (size_t i = 0; i < l.nobjects; i++)
		if (!strcmp(l.objects[i].key, u->key) &&
		    l.objects[i].size == u->bytes)
			done = true;
	chom_s3xml_listing_free(&l);
	return done;
}

static int
up_close(struct chom_sink *sk, struct chom_err *e)
{
	struct upload *u = (struct upload *)sk;
	const char **etags = NULL, **sums = NULL;
	char q[1200], enc[1100], *body;
	struct rs r;
	int i, rc;

	if (u->failed) {
		*e = u->err;
		return -1;
	}
	/* Smaller than a part: one PUT. */
	if (!u->id[0]) {
		rc = chom_s3_put(u->s, u->key, u->cur ? u->cur->buf : NULL,
				 u->cur ? u->cur->len : 0, true, e);
		if (rc < 0)
			return up_fail(u, e);
		u->closed = true;
		return 0;
	}
	if (u->cur && queue(u, e) < 0)
		return -1;
	while (u->head < u->tail)
		if (reap_oldest(u, e) < 0)
			return -1;
	etags = calloc((size_t)u->nparts, sizeof(*etags));
	sums = calloc((size_t)u->nparts, sizeof(*sums));
	if (!etags || !sums) {
		free(etags);
		free(sums);
		return up_fail(
		    u, (chom_err_set(e, CHOM_EXIT_FAIL, "out of memory"), e));
	}
	for (i = 0; i < u->nparts; i++) {
		etags[i] = u->etags[i];
		sums[i] = u->sums[i];
	}
	body = chom_s3xml_complete(etags, sums, (size_t)u->nparts);
	free(etags);
	free(sums);
	if (!body)
		return up_fail(
		    u, (chom_err_set(e, CHOM_EXIT_FAIL, "out of memory"), e));
	chom_sigv4_encode(u->id, false, enc, sizeof(enc));
	snprintf(q, sizeof(q), "uploadId=%s", enc);
	rc = request(u->s, u->s->curl,
		     &(struct rq){ .method = "POST",
				   .key = u->key,
				   .query = q,
				   .body = body,
				   .len = strlen(body),
				   .fresh = true },
		     &r, e);
	if (rc < 0 && completed_before(u, &r))
		rc = 0;
	rs_free(&r);
	free(body);
	if (rc < 0)
		return up_fail(u, e);
	u->closed = true;
	return 0;
}

static void
up_free(struct chom_sink *sk)
{
	struct upload *u = (struct upload *)sk;
	int i;

	if (u->nthreads) {
		/* Completed, nothing is in flight; else no part is wanted. */
		u->cancel = true;
		pthread_mutex_lock(&u->mu);
		u->quit = true;
		pthread_cond_broadcast(&u->work);
		pthread_mutex_unlock(&u->mu);
		for (i = 0; i < u->nthreads; i++)
			pthread_join(u->tids[i], NULL);
	}
	/* Begun and not completed: abort, so no part is left to pay for. */
	if (u->id[0] && !u->closed) {
		chom_s3_cleaning_up(u->s);
		abort_upload(u->s, u->key, u->id);
	}
	for (i = 0; i < u->nring; i++)
		free(u->ring[i].buf);
	free(u->ring);
	free(u->tids);
	free(u->etags);
	free(u->sums);
	pthread_mutex_destroy(&u->mu);
	pthread_cond_destroy(&u->work);
	pthread_cond_destroy(&u->done);
	free(u);
}

struct chom_sink *
chom_s3_upload_new(struct chom_s3 *s, const char *key, struct chom_err *e)
{
	struct upload *u = calloc(1, sizeof(*u));

	if (!u || strlen(key) > KEY_MAX) {
		free(u);
		chom_err_set(e, CHOM_EXIT_FAIL,
			     u ? "s3: key too long" : "out of memory");
		return NULL;
	}
	u->sink = (struct chom_sink){ up_write, up_close, up_free, NULL };
	u->s = s;
	snprintf(u->key, sizeof(u->key), "%s", key);
	u->nring = s->parallel + 1;
	if (!(u->ring = calloc((size_t)u->nring, sizeof(*u->ring)))) {
		free(u);
		chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&u->mu, NULL);
	pthread_cond_init(&u->work, NULL);
	pthread_cond_init(&u->done, NULL);
	return &u->sink;
}

void
chom_s3_cleaning_up(struct chom_s3 *s)
{
	s->stop = NULL;
	if (s->attempts > 3)
		s->attempts = 3;
	if (s->cleanup_until <= 0)
		s->cleanup_until = chom_mono() + CLEANUP_S;
}
