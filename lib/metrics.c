#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "exitcode.h"
#include "fsutil.h"
#include "metrics.h"

struct metric {
	char *name, *type, *help;
	char *labels[CHOM_METRICS_MAX_LABELS];
	size_t nlabels;
};

struct series {
	size_t metric;
	char *values[CHOM_METRICS_MAX_LABELS];
	double value;
};

struct chom_metrics {
	struct metric *metrics;
	size_t nmetrics;
	struct series *series;
	size_t nseries, cap;
};

int
chom_metrics_write(const char *dir, const char *name, const char *text,
		   struct chom_err *e)
{
	char path[PATH_MAX];

	if (chom_path(path, sizeof(path), e, "%s/%s.prom", dir, name) < 0)
		return -1;
	return chom_atomic_write(path, text, strlen(text), 0644, e);
}

int
chom_metrics_lock(const char *dir, double timeout, struct chom_err *e)
{
	struct timespec pause = { 0, 50 * 1000 * 1000 };
	double waited = 0;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return chom_err_sys(e, CHOM_EXIT_FAIL, "%s", dir);
	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK && errno != EINTR) {
			chom_err_sys(e, CHOM_EXIT_FAIL, "lock %s", dir);
			close(fd);
			return -1;
		}
		if (waited >= timeout) {
			close(fd);
			return chom_err_set(e, CHOM_EXIT_BUSY,
					    "%s: locked by another run", dir);
		}
		nanosleep(&pause, NULL);
		waited += 0.05;
	}
	return fd;
}

struct chom_metrics *
chom_metrics_new(void)
{
	return calloc(1, sizeof(struct chom_metrics));
}

static void
series_free(struct series *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(s->values[i]);
}

void
chom_metrics_free(struct chom_metrics *m)
{
	size_t i, j;

	if (!m)
		return;
	for (i = 0; i < m->nseries; i++)
		series_free(&m->series[i],
			    m->metrics[m->series[i].metric].nlabels);
	for (i = 0; i < m->nmetrics; i++) {
		free(m->metrics[i].name);
		free(m->metrics[i].type);
		free(m->metrics[i].help);
		for (j = 0; j < m->metrics[i].nlabels; j++)
			free(m->metrics[i].labels[j]);
	}
	free(m->series);
	free(m->metrics);
	free(m);
}

/* [a-zA-Z_:][a-zA-Z0-9_:]* for a metric, without ':' for a label. */
static size_t
name_len(const char *s, bool colon)
{
	const char *first = colon ? "abcdefghijklmnopqrstuvwxyz"
				    "ABCDEFGHIJKLMNOPQRSTUVWXYZ_:"
				  : "abcdefghijklmnopqrstuvwxyz"
				    "ABCDEFGHIJKLMNOPQRSTUVWXYZ_";

	if (!*s || !strchr(first, *s))
		return 0;
	return 1 + strspn(s + 1, colon
				     ? "abcdefghijklmnopqrstuvwxyz"
				       "ABCDEFGHIJKLMNOPQRSTUVWXYZ_:0123456789"
				     : "abcdefghijklmnopqrstuvwxyz"
				       "ABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789");
}

static bool
valid_name(const char *s, bool colon)
{
	return name_len(s, colon) == strlen(s) && *s;
}

static const struct metric *
find_metric(const struct chom_metrics *m, const char *name, size_t len,
	    size_t *idx)
{
	size_t i;

	for (i = 0; i < m->nmetrics; i++)
		if (strlen(m->metrics[i].name) == len &&
		    !memcmp(m->metrics[i].name, name, len)) {
			*idx = i;
			return &m->metrics[i];
		}
	return NULL;
}

int
chom_metrics_declare(struct chom_metrics *m, const char *name, const char *type,
		     const char *help, const char *const *labels,
		     struct chom_err *e)
{
	struct metric *v, *x;
	size_t i, j, idx;

	if (!valid_name(name, true))
		return chom_err_set(e, CHOM_EXIT_USAGE,
				    "metrics: not a metric name: %s", name);
	if (find_metric(m, name, strlen(name), &idx))
		return chom_err_set(e, CHOM_EXIT_USAGE,
				    "metrics: %s declared twice", name);
	if (strcmp(type, "gauge") && strcmp(type, "counter") &&
	    strcmp(type, "untyped"))
		return chom_err_set(e, CHOM_EXIT_USAGE,
				    "metrics: %s: no such type: %s", name,
				    type);
	for (i = 0; labels && labels[i]; i++) {
		if (i == CHOM_METRICS_MAX_LABELS ||
		    !valid_name(labels[i], false) ||
		    !strncmp(labels[i], "__", 2))
			return chom_err_set(e, CHOM_EXIT_USAGE,
					    "metrics: %s: bad or too many "
					    "labels",
					    name);
		for (j = 0; j < i; j++)
			if (!strcmp(labels[i], labels[j]))
				return chom_err_set(e, CHOM_EXIT_USAGE,
						    "metrics: %s: label %s "
						    "twice",
						    name, labels[i]);
	}
	v = realloc(m->metrics, (m->nmetrics + 1) * sizeof(*v));
	if (!v)
		return chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
	m->metrics = v;
	x = &v[m->nmetrics];
	memset(x, 0, sizeof(*x));
	x->name = strdup(name);
	x->type = strdup(type);
	x->help = strdup(help);
	for (i = 0; labels && labels[i]; i++)
		if ((x->labels[x->nlabels++] = strdup(labels[i])) == NULL)
			break;
	if (x->name && x->type && x->help && (!labels || !labels[i])) {
		m->nmetrics++;
		return 0;
	}
	free(x->name);
	free(x->type);
	free(x->help);
	for (j = 0; j < x->nlabels; j++)
		free(x->labels[j]);
	return chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
}

static struct series *
find_series(const struct chom_metrics *m, size_t metric,
	    const char *const *values)
{
	size_t i, j, n = m->metrics[metric].nlabels;

	for (i = 0; i < m->nseries; i++) {
		if (m->series[i].metric != metric)
			continue;
		for (j = 0; j < n; j++)
			if (strcmp(m->series[i].values[j], values[j]))
				break;
		if (j == n)
			return &m->series[i];
	}
	return NULL;
}

static int
set_series(struct chom_metrics *m, size_t metric, const char *const *values,
	   double value, struct chom_err *e)
{
	struct series *s = find_series(m, metric, values), *v;
	size_t j, n = m->metrics[metric].nlabels;

	if (s) {
		s->value = value;
		return 0;
	}
	if (m->nseries == m->cap) {
		size_t cap = m->cap ? 2 * m->cap : 16;

		v = realloc(m->series, cap * sizeof(*v));
		if (!v)
			return chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
		m->series = v;
		m->cap = cap;
	}
	s = &m->series[m->nseries];
	memset(s, 0, sizeof(*s));
	s->metric = metric;
	s->value = value;
	for (j = 0; j < n; j++)
		if ((s->values[j] = strdup(values[j])) == NULL) {
			series_free(s, j);
			return chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
		}
	m->nseries++;
	return 0;
}

int
chom_metrics_set(struct chom_metrics *m, const char *name,
		 const char *const *values, double value, struct chom_err *e)
{
	size_t idx;

	if (!find_metric(m, name, strlen(name), &idx))
		return chom_err_set(e, CHOM_EXIT_USAGE,
				    "metrics: %s not declared", name);
	return set_series(m, idx, values, value, e);
}

bool
chom_metrics_get(const struct chom_metrics *m, const char *name,
		 const char *const *values, double *value)
{
	const struct series *s;
	size_t idx;

	if (!find_metric(m, name, strlen(name), &idx) ||
	    !(s = find_series(m, idx, values)))
		return false;
	*value = s->value;
	return true;
}

static const char *
skip_ws(const char *p)
{
	return p + strspn(p, " \t");
}

/* A quoted label value at p (after its '"'), unescaped into *out; returns
 * the byte after the closing '"', or NULL. */
static const char *
parse_value(const char *p, char **out)
{
	char *v = malloc(strlen(p) + 1), *q = v;

	if (!v)
		return NULL;
	for (; *p && *p != '"'; p++) {
		if (*p == '\\') {
			p++;
			if (*p == 'n')
				*q++ = '\n';
			else if (*p == '\\' || *p == '"')
				*q++ = *p;
			else
				break;
		} else if (*p == '\n') {
			break;
		} else {
			*q++ = *p;
		}
	}
	if (*p != '"') {
		free(v);
		return NULL;
	}
	*q = '\0';
	*out = v;
	return p + 1;
}

static bool
parse_number(const char *p, const char **end, double *v)
{
	char *x;

	if (!strncmp(p, "+Inf", 4) || !strncmp(p, "-Inf", 4)) {
		*v = *p == '+' ? HUGE_VAL : -HUGE_VAL;
		*end = p + 4;
		return true;
	}
	if (!strncmp(p, "NaN", 3)) {
		*v = NAN;
		*end = p + 3;
		return true;
	}
	errno = 0;
	*v = strtod(p, &x);
	*end = x;
	return x != p && !isnan(*v) && !isinf(*v) && errno != ERANGE;
}

/* One line: 0 kept, -1 left out (or out of memory, in e). */
static int
parse_line(struct chom_metrics *m, const char *line, struct chom_err *e)
{
	char *values[CHOM_METRICS_MAX_LABELS] = { 0 };
	const struct metric *mt;
	const char *p = skip_ws(line);
	size_t len, idx, i, j, n = 0;
	double v, ts;
	int rc = -1;

	if (!(len = name_len(p, true)) || !(mt = find_metric(m, p, len, &idx)))
		return -1;
	p += len;
	if (*skip_ws(p) == '{') {
		p = skip_ws(p);
		for (p = skip_ws(p + 1); *p != '}'; p = skip_ws(p)) {
			char *val;

			len = name_len(p, false);
			for (j = 0; j < mt->nlabels; j++)
				if (strlen(mt->labels[j]) == len &&
				    !memcmp(mt->labels[j], p, len))
					break;
			if (!len || j == mt->nlabels || values[j])
				goto out;
			p = skip_ws(p + len);
			if (*p != '=')
				goto out;
			p = skip_ws(p + 1);
			if (*p != '"' || !(p = parse_value(p + 1, &val)))
				goto out;
			values[j] = val;
			n++;
			p = skip_ws(p);
			if (*p == ',')
				p++;
			else if (*p != '}')
				goto out;
		}
		p++;
	}
	if (n != mt->nlabels || (*p != ' ' && *p != '\t'))
		goto out;
	if (!parse_number(skip_ws(p), &p, &v))
		goto out;
	p = skip_ws(p);
	if (*p && *p != '\n') { /* a timestamp, which is left out */
		if (!parse_number(p, &p, &ts))
			goto out;
		p = skip_ws(p);
		if (*p && *p != '\n')
			goto out;
	}
	rc = set_series(m, idx, (const char *const *)values, v, e) < 0 ? -2 : 0;
out:
	for (i = 0; i < mt->nlabels; i++)
		free(values[i]);
	return rc;
}

int
chom_metrics_load(struct chom_metrics *m, const char *dir, const char *name,
		  size_t *dropped, struct chom_err *e)
{
	char path[PATH_MAX], *line = NULL;
	size_t cap = 0, nd = 0;
	FILE *f;
	int rc = 0;

	if (chom_path(path, sizeof(path), e, "%s/%s.prom", dir, name) < 0)
		return -1;
	f = fopen(path, "re");
	if (!f) {
		if (errno == ENOENT)
			goto done;
		return chom_err_sys(e, CHOM_EXIT_FAIL, "%s", path);
	}
	while (getline(&line, &cap, f) > 0) {
		const char *p = skip_ws(line);

		if (*p == '#' || *p == '\n' || !*p)
			continue;
		rc = parse_line(m, line, e);
		if (rc == -2)
			break;
		if (rc < 0)
			nd++;
		rc = 0;
	}
	if (rc == 0 && ferror(f))
		rc = chom_err_sys(e, CHOM_EXIT_FAIL, "read %s", path);
	free(line);
	fclose(f);
	if (rc < 0)
		return -1;
done:
	if (dropped)
		*dropped = nd;
	return 0;
}

static void
put_escaped(FILE *f, const char *s, bool quote)
{
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\\\", f);
		else if (*s == '\n')
			fputs("\\n", f);
		else if (*s == '"' && quote)
			fputs("\\\"", f);
		else
			fputc(*s, f);
	}
}

/* The shortest text that reads back as v; integers without exponent. */
static void
put_number(FILE *f, double v)
{
	char buf[64];
	int prec;

	if (isnan(v)) {
		fputs("NaN", f);
		return;
	}
	if (isinf(v)) {
		fputs(v > 0 ? "+Inf" : "-Inf", f);
		return;
	}
	if (v == floor(v) && fabs(v) < 9007199254740992.0) {
		fprintf(f, "%.0f", v);
		return;
	}
	for (prec = 1; prec < 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	snprintf(buf, sizeof(buf), "%.*g", prec, v);
	fputs(buf, f);
}

/* Series of one metric: the values past its labels are NULL. */
static int
cmp_series(const void *a, const void *b)
{
	const struct series *x = *(const struct series *const *)a;
	const struct series *y = *(const struct series *const *)b;
	size_t j;
	int c;

	for (j = 0; j < CHOM_METRICS_MAX_LABELS && x->values[j]; j++)
		if ((c = strcmp(x->values[j], y->values[j])) != 0)
			return c;
	return 0;
}

char *
chom_metrics_format(const struct chom_metrics *m, struct chom_err *e)
{
	struct series **v = calloc(m->nseries ? m->nseries : 1, sizeof(*v));
	char *text = NULL;
	size_t len = 0, i, j, k, n;
	FILE *f;

	if (!v || !(f = open_memstream(&text, &len))) {
		free(v);
		chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
		return NULL;
	}
	for (i = 0; i < m->nmetrics; i++) {
		const struct metric *mt = &m->metrics[i];

		for (n = 0, j = 0; j < m->nseries; j++)
			if (m->series[j].metric == i)
				v[n++] = &m->series[j];
		if (!n)
			continue;
		qsort(v, n, sizeof(*v), cmp_series);
		fprintf(f, "# HELP %s ", mt->name);
		put_escaped(f, mt->help, false);
		fprintf(f, "\n# TYPE %s %s\n", mt->name, mt->type);
		for (j = 0; j < n; j++) {
			fputs(mt->name, f);
			for (k = 0; k < mt->nlabels; k++) {
				fprintf(f, "%s%s=\"", k ? "," : "{",
					mt->labels[k]);
				put_escaped(f, v[j]->values[k], true);
				fputc('"', f);
			}
			fputs(mt->nlabels ? "} " : " ", f);
			put_number(f, v[j]->value);
			fputc('\n', f);
		}
	}
	free(v);
	if (ferror(f) | fclose(f)) {
		free(text);
		chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
		return NULL;
	}
	return text;
}

int
chom_metrics_save(const struct chom_metrics *m, const char *dir,
		  const char *name, struct chom_err *e)
{
	char *text = chom_metrics_format(m, e);
	int rc;

	if (!text)
		return -1;
	rc = chom_metrics_write(dir, name, text, e);
	free(text);
	return rc;
}
