#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "exitcode.h"
#include "health.h"

#define BODY_MAX (1 << 20) /* what --expect-body and --expect-json see */

enum state { IDLE, ACTIVE, DONE };
enum phase { CONNECTING, READING };

struct run {
	struct chom_target *t;
	enum state state;
	double next_at, started;
	/* HTTP */
	CURL *easy;
	struct curl_slist *hdrs, *res;
	char *body;
	size_t blen;
	char errbuf[CURL_ERROR_SIZE];
	/* tcp, redis, mysql */
	int fd;
	enum phase phase;
	unsigned char rbuf[1024];
	size_t rlen;
	int replies; /* redis replies read so far */
};

int
chom_target_parse(struct chom_target *t, const char *url, struct chom_err *e)
{
	static const struct {
		const char *scheme;
		enum chom_target_kind kind;
		const char *port;
	} kinds[] = {
		{ "http://", CHOM_TARGET_HTTP, "80" },
		{ "https://", CHOM_TARGET_HTTP, "443" },
		{ "tcp://", CHOM_TARGET_TCP, NULL },
		{ "redis://", CHOM_TARGET_REDIS, "6379" },
		{ "mysql://", CHOM_TARGET_MYSQL, "3306" },
	};
	const char *p = NULL, *end, *colon;
	size_t i, len;

	if (strlen(url) >= sizeof(t->url))
		return chom_err_set(e, CHOM_EXIT_USAGE, "target too long");
	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		len = strlen(kinds[i].scheme);
		if (!strncasecmp(url, kinds[i].scheme, len)) {
			p = url + len;
			break;
		}
	}
	if (!p)
		return chom_err_set(e, CHOM_EXIT_USAGE,
				    "target '%s': not http://, https://, "
				    "tcp://, redis:// or mysql://",
				    url);
	strcpy(t->url, url);
	t->kind = kinds[i].kind;
	t->tls = i == 1;
	/* HOST[:PORT] up to the path; [v6]:port too. */
	end = p + strcspn(p, "/?#");
	if (memchr(p, '@', (size_t)(end - p)))
		return chom_err_set(e, CHOM_EXIT_USAGE,
				    "target '%s': no credentials in targets; "
				    "use -H or --password-file",
				    url);
	if (*p == '[') {
		const char *rb = memchr(p, ']', (size_t)(end - p));

		if (!rb)
			goto bad;
		len = (size_t)(rb - p - 1);
		if (len == 0 || len >= sizeof(t->host))
			goto bad;
		memcpy(t->host, p + 1, len);
		t->host[len] = '\0';
		colon = rb + 1 < end && rb[1] == ':' ? rb + 1 : NULL;
	} else {
		colon = memchr(p, ':', (size_t)(end - p));
		len = (size_t)((colon ? colon : end) - p);
		if (len == 0 || len >= sizeof(t->host))
			goto bad;
		memcpy(t->host, p, len);
		t->host[len] = '\0';
	}
	if (colon) {
		len = (size_t)(end - colon - 1);
		if (len == 0 || len >= sizeof(t->port) ||
		    strspn(colon + 1, "0123456789") < len)
			goto bad;
		memcpy(t->port, colon + 1, len);
		t->port[len] = '\0';
	} else if (kinds[i].port) {
		strcpy(t->port, kinds[i].port);
	} else {
		return chom_err_set(e, CHOM_EXIT_USAGE,
				    "target '%s': tcp:// needs a port", url);
	}
	if (atoi(t->port) < 1 || atoi(t->port) > 65535)
		goto bad;
	return 0;
bad:
	return chom_err_set(e, CHOM_EXIT_USAGE, "target '%s': bad host or port",
			    url);
}

int
chom_target_set_status(struct chom_target *t, const char *list,
		       struct chom_err *e)
{
	const char *p = list;

	t->nstatus = 0;
	while (*p) {
		char *end;
		long lo = strtol(p, &end, 10), hi = lo;

		if (end == p)
			goto bad;
		if (*end == '-') {
			p = end + 1;
			hi = strtol(p, &end, 10);
			if (end == p)
				goto bad;
		}
		if (lo < 100 || hi > 599 || lo > hi ||
		    t->nstatus == CHOM_HEALTH_MAX_RANGES)
			goto bad;
		t->status_lo[t->nstatus] = (int)lo;
		t->status_hi[t->nstatus++] = (int)hi;
		if (*end == ',')
			end++;
		else if (*end)
			goto bad;
		p = end;
	}
	if (t->nstatus)
		return 0;
bad:
	return chom_err_set(e, CHOM_EXIT_USAGE,
			    "--expect-status '%s': want codes or ranges such "
			    "as 200-299,301",
			    list);
}

int
chom_target_set_body(struct chom_target *t, const char *regex,
		     struct chom_err *e)
{
	char why[256];
	int rc;

	if (t->body_src[0])
		regfree(&t->body_re);
	t->body_src[0] = '\0';
	if (strlen(regex) >= sizeof(t->body_src))
		return chom_err_set(e, CHOM_EXIT_USAGE,
				    "--expect-body: too long");
	rc = regcomp(&t->body_re, regex, REG_EXTENDED | REG_NOSUB);
	if (rc != 0) {
		regerror(rc, &t->body_re, why, sizeof(why));
		return chom_err_set(e, CHOM_EXIT_USAGE,
				    "--expect-body '%s': %s", regex, why);
	}
	strcpy(t->body_src, regex);
	return 0;
}

int
chom_target_set_json(struct chom_target *t, const char *spec,
		     struct chom_err *e)
{
	const char *eq = strchr(spec, '=');
	size_t len;

	if (!eq || eq == spec)
		return chom_err_set(e, CHOM_EXIT_USAGE,
				    "--expect-json '%s': want PATH=VALUE",
				    spec);
	len = (size_t)(eq - spec);
	if (len >= sizeof(t->json_path) ||
	    strlen(eq + 1) >= sizeof(t->json_value))
		return chom_err_set(e, CHOM_EXIT_USAGE,
				    "--expect-json: too long");
	memcpy(t->json_path, spec, len);
	t->json_path[len] = '\0';
	strcpy(t->json_value, eq + 1);
	return 0;
}

void
chom_target_free(struct chom_target *t)
{
	if (t->body_src[0])
		regfree(&t->body_re);
	t->body_src[0] = '\0';
}

bool
chom_health_json_match(const char *doc, size_t len, const char *path,
		       const char *value, char *why, size_t whysize)
{
	json_error_t jerr;
	json_t *root = json_loadb(doc, len, 0, &jerr), *node;
	char seg[256], got[256];
	const char *p = path;
	bool ok = false;

	if (!root) {
		snprintf(why, whysize, "body is not JSON: %s", jerr.text);
		return false;
	}
	node = root;
	while (*p) {
		size_t n = strcspn(p, ".");
		char *end;

		if (n >= sizeof(seg)) {
			snprintf(why, whysize, "JSON path too long");
			goto out;
		}
		memcpy(seg, p, n);
		seg[n] = '\0';
		p += n + (p[n] == '.');
		if (json_is_array(node)) {
			long idx = strtol(seg, &end, 10);

			node = (*seg && !*end && idx >= 0)
				   ? json_array_get(node, (size_t)idx)
				   : NULL;
		} else if (json_is_object(node)) {
			node = json_object_get(node, seg);
		} else {
			node = NULL;
		}
		if (!node) {
			snprintf(why, whysize, "JSON has no %s", path);
			goto out;
		}
	}
	switch (json_typeof(node)) {
	case JSON_STRING:
		snprintf(got, sizeof(got), "%s", json_string_value(node));
		ok = !strcmp(got, value);
		break;
	case JSON_INTEGER:
	case JSON_REAL: {
		char *end;
		double want = strtod(value, &end);

		snprintf(got, sizeof(got), "%g", json_number_value(node));
		ok = *value && !*end && want == json_number_value(node);
		break;
	}
	case JSON_TRUE: snprintf(got, sizeof(got), "true"); break;
	case JSON_FALSE: snprintf(got, sizeof(got), "false"); break;
	case JSON_NULL: snprintf(got, sizeof(got), "null"); break;
	default: snprintf(got, sizeof(got), "(an object or array)"); break;
	}
	if (json_is_boolean(node) || json_is_null(node))
		ok = !strcmp(got, value);
	if (!ok)
		snprintf(why, whysize, "JSON %s is %s, not %s", path, got,
			 value);
out:
	json_decref(root);
	return ok;
}

/*
 * An attempt ended: decide, or schedule the next one. An interval that
 * would pass the deadline is shortened, so that the last attempt starts
 * just before it rather than not at all.
 */
static void
attempt_done(struct run *r, double now, double deadline_at, bool ok,
	     bool retryable)
{
	struct chom_target *t = r->t;
	double next = now + t->interval;
	size_t len;

	t->attempts++;
	t->ok = ok;
	if (ok || !retryable || (t->retries >= 0 && t->attempts > t->retries)) {
		r->state = DONE;
		return;
	}
	if (next >= deadline_at)
		next =
		    deadline_at - (t->interval < 0.2 ? t->interval / 2 : 0.1);
	if (next <= now) {
		len = strlen(t->reason);
		snprintf(t->reason + len, sizeof(t->reason) - len,
			 " (deadline reached after %d attempts)", t->attempts);
		r->state = DONE;
		return;
	}
	r->state = IDLE;
	r->next_at = next;
}

static bool
status_ok(const struct chom_target *t, long code)
{
	size_t i;

	if (t->nstatus == 0)
		return code >= 200 && code <= 399;
	for (i = 0; i < t->nstatus; i++)
		if (code >= t->status_lo[i] && code <= t->status_hi[i])
			return true;
	return false;
}

static size_t
on_body(char *data, size_t size, size_t n, void *user)
{
	struct run *r = user;
	size_t len = size * n, room = BODY_MAX - r->blen;

	if (len > room)
		len = room; /* the rest is read and not kept */
	if (len) {
		char *nb = realloc(r->body, r->blen + len + 1);

		if (!nb)
			return 0;
		r->body = nb;
		memcpy(r->body + r->blen, data, len);
		r->blen += len;
		r->body[r->blen] = '\0';
	}
	return size * n;
}

static int
http_start(struct run *r, CURLM *multi)
{
	struct chom_target *t = r->t;
	size_t i;
	long ms = (long)(t->timeout * 1000);

	r->easy = curl_easy_init();
	if (!r->easy)
		return -1;
	/* Nothing of an earlier attempt's body may pass for this one's. */
	free(r->body);
	r->body = NULL;
	r->blen = 0;
	r->errbuf[0] = '\0';
	for (i = 0; i < t->nheaders; i++)
		r->hdrs = curl_slist_append(r->hdrs, t->headers[i]);
	if (t->resolve)
		r->res = curl_slist_append(r->res, t->resolve);
	curl_easy_setopt(r->easy, CURLOPT_URL, t->url);
	curl_easy_setopt(r->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, ms);
	curl_easy_setopt(r->easy, CURLOPT_CONNECTTIMEOUT_MS, ms);
	curl_easy_setopt(r->easy, CURLOPT_USERAGENT,
			 "chom-health/" CHOM_VERSION);
	curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(r->easy, CURLOPT_ERRORBUFFER, r->errbuf);
	curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r);
	/* Each attempt a new connection: a check of a server, not of a
	 * connection kept from before it restarted. */
	curl_easy_setopt(r->easy, CURLOPT_FRESH_CONNECT, 1L);
	curl_easy_setopt(r->easy, CURLOPT_FORBID_REUSE, 1L);
	if (r->hdrs)
		curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->hdrs);
	if (r->res)
		curl_easy_setopt(r->easy, CURLOPT_RESOLVE, r->res);
	if (t->cacert)
		curl_easy_setopt(r->easy, CURLOPT_CAINFO, t->cacert);
	if (t->cert_min_days >= 0 && t->tls)
		curl_easy_setopt(r->easy, CURLOPT_CERTINFO, 1L);
	if (curl_multi_add_handle(multi, r->easy) != CURLM_OK)
		return -1;
	return 0;
}

static void
http_cleanup(struct run *r, CURLM *multi)
{
	if (r->easy) {
		curl_multi_remove_handle(multi, r->easy);
		curl_easy_cleanup(r->easy);
		r->easy = NULL;
	}
	curl_slist_free_all(r->hdrs);
	curl_slist_free_all(r->res);
	r->hdrs = r->res = NULL;
}

/* The leaf certificate's expiry, from curl's certinfo. */
static bool
cert_check(struct run *r, char *why, size_t whysize)
{
	struct chom_target *t = r->t;
	struct curl_certinfo *ci = NULL;
	const char *expire = NULL, *subject = "?";
	struct curl_slist *s;
	struct tm tm;
	double days;

	if (curl_easy_getinfo(r->easy, CURLINFO_CERTINFO, &ci) != CURLE_OK ||
	    !ci || ci->num_of_certs < 1) {
		snprintf(why, whysize, "no certificate to check");
		return false;
	}
	for (s = ci->certinfo[0]; s; s = s->next) {
		if (!strncmp(s->data, "Expire date:", 12))
			expire = s->data + 12;
		else if (!strncmp(s->data, "Subject:", 8))
			subject = s->data + 8;
	}
	memset(&tm, 0, sizeof(tm));
	if (!expire || !strptime(expire, "%b %d %H:%M:%S %Y GMT", &tm)) {
		snprintf(why, whysize, "certificate %s: no expiry date",
			 subject);
		return false;
	}
	days = difftime(timegm(&tm), time(NULL)) / 86400;
	snprintf(why, whysize, "certificate %s expires in %.0f days (%s)",
		 subject, floor(days), expire);
	return days >= t->cert_min_days;
}

static void
http_done(struct run *r, CURLM *multi, CURLcode res, double now,
	  double deadline_at)
{
	struct chom_target *t = r->t;
	curl_off_t us = 0;
	long oserr = 0;
	char why[512];
	bool ok = false, retry = true;

	curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &t->status);
	curl_easy_getinfo(r->easy, CURLINFO_TOTAL_TIME_T, &us);
	t->latency_ms = us / 1000.0;
	t->reason[0] = '\0';
	if (res == CURLE_COULDNT_CONNECT &&
	    curl_easy_getinfo(r->easy, CURLINFO_OS_ERRNO, &oserr) == CURLE_OK &&
	    oserr) {
		snprintf(t->reason, sizeof(t->reason), "connect: %s",
			 strerror((int)oserr));
	} else if (res != CURLE_OK) {
		snprintf(t->reason, sizeof(t->reason), "%s",
			 r->errbuf[0] ? r->errbuf : curl_easy_strerror(res));
		/* What waiting cannot mend. */
		retry = res != CURLE_PEER_FAILED_VERIFICATION &&
			res != CURLE_SSL_CACERT_BADFILE &&
			res != CURLE_SSL_CERTPROBLEM &&
			res != CURLE_UNSUPPORTED_PROTOCOL &&
			res != CURLE_URL_MALFORMAT;
	} else if (!status_ok(t, t->status)) {
		snprintf(t->reason, sizeof(t->reason), "status %ld not in %s",
			 t->status, t->nstatus ? "--expect-status" : "200-399");
		/* 4xx is an answer, not a server still starting (429 aside). */
		retry = t->status >= 500 || t->status == 429;
	} else if (t->body_src[0] &&
		   (!r->body || regexec(&t->body_re, r->body, 0, NULL, 0))) {
		snprintf(t->reason, sizeof(t->reason),
			 "body does not match /%s/", t->body_src);
	} else if (t->json_path[0] &&
		   !chom_health_json_match(r->body ? r->body : "", r->blen,
					   t->json_path, t->json_value, why,
					   sizeof(why))) {
		snprintf(t->reason, sizeof(t->reason), "%s", why);
	} else if (t->max_latency_ms && t->latency_ms > t->max_latency_ms) {
		snprintf(t->reason, sizeof(t->reason),
			 "latency %.0f ms over --max-latency %ld ms",
			 t->latency_ms, t->max_latency_ms);
	} else if (t->cert_min_days >= 0 && t->tls &&
		   !cert_check(r, why, sizeof(why))) {
		snprintf(t->reason, sizeof(t->reason), "%s, fewer than %ld",
			 why, t->cert_min_days);
		retry = false;
	} else {
		ok = true;
		if (t->cert_min_days >= 0 && t->tls)
			snprintf(t->reason, sizeof(t->reason), "%s", why);
	}
	http_cleanup(r, multi);
	attempt_done(r, now, deadline_at, ok, retry);
}

static void
sock_close(struct run *r)
{
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
}

static void sock_done(struct run *r, double now, double deadline_at, bool ok,
		      bool retry, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static void
sock_done(struct run *r, double now, double deadline_at, bool ok, bool retry,
	  const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->t->reason, sizeof(r->t->reason), fmt, ap);
	va_end(ap);
	r->t->latency_ms = (now - r->started) * 1000;
	if (ok && r->t->max_latency_ms &&
	    r->t->latency_ms > r->t->max_latency_ms) {
		snprintf(r->t->reason, sizeof(r->t->reason),
			 "latency %.0f ms over --max-latency %ld ms",
			 r->t->latency_ms, r->t->max_latency_ms);
		ok = false;
		retry = true;
	}
	sock_close(r);
	attempt_done(r, now, deadline_at, ok, retry);
}

/* The commands a redis check sends: AUTH if a password is set, then PING. */
static int
redis_send(struct run *r)
{
	const char *pw = r->t->password;
	size_t cap = 64 + (pw ? strlen(pw) : 0);
	char *buf = malloc(cap);
	int n, rc;

	if (!buf)
		return -1;
	if (pw)
		n = snprintf(buf, cap,
			     "*2\r\n$4\r\nAUTH\r\n$%zu\r\n%s\r\n"
			     "*1\r\n$4\r\nPING\r\n",
			     strlen(pw), pw);
	else
		n = snprintf(buf, cap, "*1\r\n$4\r\nPING\r\n");
	rc = n > 0 && (size_t)n < cap &&
		     send(r->fd, buf, (size_t)n, MSG_NOSIGNAL) == n
		 ? 0
		 : -1;
	explicit_bzero(buf, cap);
	free(buf);
	return rc;
}

static void
sock_connected(struct run *r, double now, double deadline_at)
{
	switch (r->t->kind) {
	case CHOM_TARGET_TCP:
		sock_done(r, now, deadline_at, true, false, "connected");
		return;
	case CHOM_TARGET_REDIS:
		if (redis_send(r) < 0) {
			sock_done(r, now, deadline_at, false, true, "send: %s",
				  strerror(errno));
			return;
		}
		break;
	default: break;
	}
	r->phase = READING;
	r->rlen = 0;
	r->replies = 0;
}

/* Redis replies are lines: +OK to AUTH, +PONG to PING, -ERR ... */
static void
redis_read(struct run *r, double now, double deadline_at)
{
	int want = r->t->password ? 2 : 1;
	char *line = (char *)r->rbuf, *nl;

	while ((nl = memchr(line, '\n',
			    r->rlen - (size_t)(line - (char *)r->rbuf)))) {
		*nl = '\0';
		if (nl > line && nl[-1] == '\r')
			nl[-1] = '\0';
		if (line[0] == '-') {
			/* A wrong password stays wrong; LOADING and the like
			 * pass. */
			bool auth = !strncmp(line, "-WRONGPASS", 10) ||
				    !strncmp(line, "-NOAUTH", 7) ||
				    strstr(line, "password");
			sock_done(r, now, deadline_at, false, !auth,
				  "redis: %s", line + 1);
			return;
		}
		r->replies++;
		if (r->replies == want) {
			bool pong = !strcmp(line, "+PONG");

			sock_done(r, now, deadline_at, pong, true,
				  pong ? "PONG" : "redis answered %s to PING",
				  line);
			return;
		}
		line = nl + 1;
	}
}

/* The server's first packet: a handshake (protocol 10) or an error. */
static void
mysql_read(struct run *r, double now, double deadline_at)
{
	const unsigned char *b = r->rbuf;
	size_t len;

	if (r->rlen < 5)
		return;
	len = b[0] | (size_t)b[1] << 8 | (size_t)b[2] << 16;
	if (r->rlen < 4 + len && r->rlen < sizeof(r->rbuf))
		return;
	if (b[4] == 0x0a) {
		sock_done(r, now, deadline_at, true, false, "server %.*s",
			  (int)strnlen((const char *)b + 5, r->rlen - 5),
			  (const char *)b + 5);
	} else if (b[4] == 0xff && r->rlen >= 7) {
		unsigned code = b[5] | (unsigned)b[6] << 8;
		const char *msg = (const char *)b + 7;
		size_t mlen = r->rlen - 7;

		if (mlen > 6 && msg[0] == '#') { /* a SQL state */
			msg += 6;
			mlen -= 6;
		}
		sock_done(r, now, deadline_at, false, true,
			  "mysql error %u: %.*s", code, (int)mlen, msg);
	} else {
		sock_done(r, now, deadline_at, false, false,
			  "not a MySQL greeting (first byte 0x%02x)", b[4]);
	}
}

static void
sock_step(struct run *r, short revents, double now, double deadline_at)
{
	ssize_t n;

	if (r->phase == CONNECTING) {
		int err = 0;
		socklen_t elen = sizeof(err);

		if (getsockopt(r->fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
			err = errno;
		if (err) {
			sock_done(r, now, deadline_at, false, true,
				  "connect: %s", strerror(err));
			return;
		}
		sock_connected(r, now, deadline_at);
		return;
	}
	if (!(revents & (POLLIN | POLLHUP | POLLERR)))
		return;
	n = recv(r->fd, r->rbuf + r->rlen, sizeof(r->rbuf) - 1 - r->rlen, 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		sock_done(r, now, deadline_at, false, true, "%s",
			  n < 0 ? strerror(errno)
				: "connection closed before an answer");
		return;
	}
	r->rlen += (size_t)n;
	r->rbuf[r->rlen] = '\0';
	if (r->t->kind == CHOM_TARGET_REDIS)
		redis_read(r, now, deadline_at);
	else
		mysql_read(r, now, deadline_at);
	if (r->state == ACTIVE && r->rlen == sizeof(r->rbuf) - 1)
		sock_done(r, now, deadline_at, false, false, "answer too long");
}

static void
sock_start(struct run *r, double now, double deadline_at)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
	int rc;

	r->fd = -1;
	rc = getaddrinfo(r->t->host, r->t->port, &hints, &ai);
	if (rc != 0) {
		sock_done(r, now, deadline_at, false, true,
			  "cannot resolve %s: %s", r->t->host,
			  gai_strerror(rc));
		return;
	}
	r->fd = socket(ai->ai_family,
		       SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (r->fd < 0) {
		freeaddrinfo(ai);
		sock_done(r, now, deadline_at, false, true, "socket: %s",
			  strerror(errno));
		return;
	}
	rc = connect(r->fd, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
	r->phase = CONNECTING;
	if (rc == 0)
		sock_connected(r, now, deadline_at);
	else if (errno != EINPROGRESS)
		sock_done(r, now, deadline_at, false, true, "connect: %s",
			  strerror(errno));
}

int
chom_health_run(struct chom_target *t, size_t n, size_t concurrency,
		double deadline, volatile sig_atomic_t *stop,
		struct chom_err *e)
{
	double start = chom_mono(), now = start;
	double deadline_at = deadline > 0 ? start + deadline : INFINITY;
	struct curl_waitfd *wfd;
	struct run **wrun;
	struct run *runs;
	CURLM *multi;
	size_t i, active = 0;
	int rc = -1;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return chom_err_set(e, CHOM_EXIT_FAIL, "libcurl init failed");
	runs = calloc(n ? n : 1, sizeof(*runs));
	wfd = calloc(n ? n : 1, sizeof(*wfd));
	wrun = calloc(n ? n : 1, sizeof(*wrun));
	multi = curl_multi_init();
	if (!runs || !wfd || !wrun || !multi) {
		chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
		goto out;
	}
	for (i = 0; i < n; i++) {
		runs[i] = (struct run){
			.t = &t[i], .state = IDLE, .next_at = start, .fd = -1
		};
		t[i].ok = false;
		t[i].attempts = 0;
		snprintf(t[i].reason, sizeof(t[i].reason), "not checked");
	}
	if (!concurrency || concurrency > n)
		concurrency = n;
	for (;;) {
		double wait = 1.0;
		size_t nfd = 0, undecided = 0;
		long curl_ms = -1;
		int running;
		CURLMsg *msg;

		now = chom_mono();
		if (stop && *stop)
			break;
		for (i = 0; i < n && active < concurrency; i++) {
			struct run *r = &runs[i];

			if (r->state != IDLE || r->next_at > now)
				continue;
			r->state = ACTIVE;
			r->started = now;
			active++;
			if (r->t->kind == CHOM_TARGET_HTTP) {
				if (http_start(r, multi) < 0) {
					chom_err_set(e, CHOM_EXIT_FAIL,
						     "libcurl: out of memory");
					goto out;
				}
			} else {
				sock_start(r, now, deadline_at);
				if (r->state != ACTIVE) /* decided at once */
					active--;
			}
		}
		for (i = 0; i < n; i++) {
			struct run *r = &runs[i];

			if (r->state == DONE)
				continue;
			undecided++;
			if (r->state == IDLE && r->next_at - now < wait)
				wait = r->next_at - now;
			if (r->state == ACTIVE && r->fd >= 0) {
				double left = r->started + r->t->timeout - now;

				if (left < wait)
					wait = left;
				wfd[nfd] = (struct curl_waitfd){
					r->fd,
					r->phase == CONNECTING
					    ? CURL_WAIT_POLLOUT
					    : CURL_WAIT_POLLIN,
					0
				};
				wrun[nfd++] = r;
			}
		}
		if (!undecided)
			break;
		if (deadline_at - now < wait)
			wait = deadline_at - now;
		curl_multi_timeout(multi, &curl_ms);
		if (curl_ms >= 0 && curl_ms / 1000.0 < wait)
			wait = curl_ms / 1000.0;
		if (wait < 0)
			wait = 0;
		curl_multi_poll(multi, wfd, (unsigned)nfd,
				(int)(wait * 1000 + 1), NULL);
		curl_multi_perform(multi, &running);
		now = chom_mono();
		while ((msg = curl_multi_info_read(multi, &running))) {
			struct run *r = NULL;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE,
					  (char **)&r);
			http_done(r, multi, msg->data.result, now, deadline_at);
			active--;
		}
		for (i = 0; i < nfd; i++) {
			struct run *r = wrun[i];
			short ev = wfd[i].revents;

			if (r->state != ACTIVE)
				continue;
			if (ev)
				sock_step(r, ev, now, deadline_at);
			else if (now >= r->started + r->t->timeout)
				sock_done(r, now, deadline_at, false, true,
					  "timed out after %.1fs",
					  r->t->timeout);
			if (r->state != ACTIVE)
				active--;
		}
		if (now >= deadline_at)
			break;
	}
	rc = 0;
out:
	for (i = 0; runs && i < n; i++) {
		struct run *r = &runs[i];

		if (r->state != DONE && rc == 0) {
			/* Out of time or stopped: the last reason stands. */
			char last[sizeof(r->t->reason)];

			snprintf(last, sizeof(last), "%s", r->t->reason);
			snprintf(r->t->reason, sizeof(r->t->reason),
				 "%s%s%.900s",
				 stop && *stop ? "interrupted" : "deadline",
				 r->t->attempts ? "; last attempt: " : "",
				 r->t->attempts ? last : "");
			r->t->ok = false;
		}
		http_cleanup(r, multi);
		free(r->body);
		sock_close(r);
	}
	if (multi)
		curl_multi_cleanup(multi);
	free(runs);
	free(wfd);
	free(wrun);
	curl_global_cleanup();
	return rc;
}
