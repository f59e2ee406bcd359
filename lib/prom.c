#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "exitcode.h"
#include "prom.h"

#define MAXBODY (4 << 20)

struct body {
	char *data;
	size_t len;
	bool toolong;
};

static size_t
on_data(char *p, size_t size, size_t n, void *ctx)
{
	struct body *b = ctx;
	size_t len = size * n;
	char *d;

	if (b->len + len > MAXBODY) {
		b->toolong = true;
		return 0;
	}
	if (!(d = realloc(b->data, b->len + len + 1)))
		return 0;
	memcpy(d + b->len, p, len);
	b->data = d;
	b->len += len;
	b->data[b->len] = '\0';
	return len;
}

static int
on_progress(void *ctx, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	volatile sig_atomic_t *stop = ctx;

	(void)a, (void)b, (void)c, (void)d;
	return stop && *stop;
}

/* [time, "value"]: the value as Prometheus spells it ("NaN", "+Inf"). */
static int
sample_value(json_t *pair, double *value, struct chom_err *e)
{
	const char *s = json_string_value(json_array_get(pair, 1));
	char *end;

	if (!s)
		return chom_err_set(e, CHOM_EXIT_FAIL,
				    "prometheus: a sample without a value");
	if (!strcmp(s, "NaN"))
		*value = NAN;
	else if (!strcmp(s, "+Inf"))
		*value = INFINITY;
	else if (!strcmp(s, "-Inf"))
		*value = -INFINITY;
	else {
		*value = strtod(s, &end);
		if (end == s || *end)
			return chom_err_set(e, CHOM_EXIT_FAIL,
					    "prometheus: not a number: %.40s",
					    s);
	}
	return 0;
}

static int
parse(const char *text, double *value, struct chom_err *e)
{
	json_t *root, *data, *result;
	const char *status, *type, *err;
	json_error_t je;
	size_t n;
	int rc = -1;

	if (!(root = json_loads(text, 0, &je)))
		return chom_err_set(e, CHOM_EXIT_FAIL,
				    "prometheus: the answer is not JSON: %s",
				    je.text);
	status = json_string_value(json_object_get(root, "status"));
	if (!status || strcmp(status, "success")) {
		err = json_string_value(json_object_get(root, "error"));
		chom_err_set(
		    e, CHOM_EXIT_FAIL, "prometheus: %s: %s",
		    json_string_value(json_object_get(root, "errorType"))
			?: "error",
		    err ? err : "no reason given");
		goto out;
	}
	data = json_object_get(root, "data");
	type = json_string_value(json_object_get(data, "resultType"));
	result = json_object_get(data, "result");
	if (!type || !result) {
		chom_err_set(e, CHOM_EXIT_FAIL,
			     "prometheus: the answer has no data.result");
		goto out;
	}
	if (!strcmp(type, "scalar")) {
		rc = sample_value(result, value, e);
		goto out;
	}
	if (strcmp(type, "vector")) {
		chom_err_set(e, CHOM_EXIT_FAIL,
			     "prometheus: a %s result; the query must give "
			     "one number",
			     type);
		goto out;
	}
	n = json_array_size(result);
	if (n != 1) {
		chom_err_set(e, CHOM_EXIT_FAIL,
			     n ? "prometheus: %zu series; aggregate them "
				 "(sum, max) into one"
			       : "prometheus: no data (%zu series)",
			     n);
		goto out;
	}
	rc = sample_value(json_object_get(json_array_get(result, 0), "value"),
			  value, e);
out:
	json_decref(root);
	return rc;
}

int
chom_prom_query(const char *base_url, const char *query, double timeout,
		volatile sig_atomic_t *stop, double *value, struct chom_err *e)
{
	char *url = NULL, *q = NULL, cerr[CURL_ERROR_SIZE] = "";
	struct body b = { 0 };
	size_t blen = strlen(base_url);
	CURLcode cc;
	long code = 0;
	CURL *c;
	int rc = -1;

	if (!(c = curl_easy_init()) || !(q = curl_easy_escape(c, query, 0)) ||
	    !(url = malloc(blen + strlen(q) + 32))) {
		chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
		goto out;
	}
	while (blen && base_url[blen - 1] == '/')
		blen--;
	sprintf(url, "%.*s/api/v1/query?query=%s", (int)blen, base_url, q);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(timeout * 1000));
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, (void *)stop);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "chom-canary");
	cc = curl_easy_perform(c);
	if (cc != CURLE_OK) {
		chom_err_set(e, CHOM_EXIT_FAIL, "prometheus %.*s: %s",
			     (int)blen, base_url,
			     b.toolong ? "answer larger than 4 MiB"
			     : cerr[0] ? cerr
				       : curl_easy_strerror(cc));
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	/* Errors of the API come as 400/422/503 with a JSON body. */
	if (!b.data) {
		chom_err_set(e, CHOM_EXIT_FAIL,
			     "prometheus %.*s: HTTP %ld with no body",
			     (int)blen, base_url, code);
		goto out;
	}
	rc = parse(b.data, value, e);
	if (rc < 0 && code != 200 && !strstr(e->msg, "prometheus: "))
		chom_err_set(e, CHOM_EXIT_FAIL, "prometheus: HTTP %ld", code);
out:
	curl_free(q);
	free(url);
	free(b.data);
	if (c)
		curl_easy_cleanup(c);
	return rc;
}
