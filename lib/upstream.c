#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exitcode.h"
#include "fsutil.h"
#include "run.h"
#include "sinks.h"
#include "upstream.h"

#define MANAGED "# Managed by chom-canary: rewritten at each step; do not edit."
#define MAXFILE (64 * 1024)

int
chom_upstream_render(const struct chom_upstream *u, int weight,
		     const char *note, char *out, size_t size,
		     struct chom_err *e)
{
	size_t len = 0, i;
	int n;

#define PUT(...)                                                               \
	do {                                                                   \
		n = snprintf(out + len, size - len, __VA_ARGS__);              \
		if (n < 0 || (size_t)n >= size - len)                          \
			return chom_err_set(e, CHOM_EXIT_USAGE,                \
					    "%s: the upstream block is too "   \
					    "long",                            \
					    u->path);                          \
		len += (size_t)n;                                              \
	} while (0)

	PUT("%s\n# %s\nupstream %s {\n", MANAGED, note, u->name);
	if (weight <= 0)
		PUT("    server %s;\n", u->stable);
	else if (weight >= 100)
		PUT("    server %s;\n", u->canary);
	else
		PUT("    server %s weight=%d;\n    server %s weight=%d;\n",
		    u->stable, 100 - weight, u->canary, weight);
	for (i = 0; i < u->ndirectives; i++)
		PUT("    %s;\n", u->directives[i]);
	PUT("}\n");
#undef PUT
	return (int)len;
}

struct last_line {
	char text[512];
};

static void
keep_line(void *ctx, const char *line)
{
	struct last_line *l = ctx;

	if (line[strspn(line, " \t")])
		snprintf(l->text, sizeof(l->text), "%s", line);
}

/* Runs cmd; 0 when it exits 0, else -1 with what it said. */
static int
run_cmd(const char *what, const char *cmd, volatile sig_atomic_t *stop,
	struct chom_err *e)
{
	struct last_line last = { "" };
	struct chom_sink *null;
	unsigned long long bytes;
	char said[600];
	int status, rc;

	if (!cmd || !*cmd)
		return 0;
	if (!(null = chom_sink_null_new(e)))
		return -1;
	rc = chom_run_to_sink(cmd, null, keep_line, &last, &status, &bytes,
			      stop, e);
	chom_sink_free(null);
	if (rc < 0)
		return -1;
	if (status == 0)
		return 0;
	chom_escape(last.text, said, sizeof(said));
	if (status > 128)
		return chom_err_set(
		    e, CHOM_EXIT_FAIL, "%s '%s' was killed by signal %d%s%s",
		    what, cmd, status - 128, said[0] ? ": " : "", said);
	return chom_err_set(e, CHOM_EXIT_FAIL,
			    "%s '%s' exited with status %d%s%s", what, cmd,
			    status, said[0] ? ": " : "", said);
}

/* The file as it is now: *len -1 when there is none. */
static char *
read_old(const char *path, ssize_t *len, struct chom_err *e)
{
	char *buf = malloc(MAXFILE + 1);
	ssize_t n, got = 0;
	int fd;

	*len = -1;
	if (!buf) {
		chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
		return NULL;
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		if (errno == ENOENT)
			return buf;
		chom_err_sys(e, CHOM_EXIT_FAIL, "%s", path);
		free(buf);
		return NULL;
	}
	while ((n = read(fd, buf + got, (size_t)(MAXFILE + 1 - got))) > 0)
		got += n;
	close(fd);
	if (n < 0 || got > MAXFILE) {
		if (n < 0)
			chom_err_sys(e, CHOM_EXIT_FAIL, "%s", path);
		else
			chom_err_set(
			    e, CHOM_EXIT_FAIL,
			    "%s: larger than %d bytes: not an upstream "
			    "file",
			    path, MAXFILE);
		free(buf);
		return NULL;
	}
	buf[got] = '\0';
	*len = got;
	return buf;
}

/* Puts old back (or removes the file) and reloads; -1 when that fails. */
static int
put_back(const struct chom_upstream *u, const char *old, ssize_t len,
	 bool reload, struct chom_err *e)
{
	if (len < 0) {
		if (unlink(u->path) < 0 && errno != ENOENT)
			return chom_err_sys(e, CHOM_EXIT_UNSAFE, "remove %s",
					    u->path);
	} else if (chom_atomic_write(u->path, old, (size_t)len, 0644, e) < 0) {
		return -1;
	}
	if (reload && (run_cmd("test command", u->test_cmd, NULL, e) < 0 ||
		       run_cmd("reload command", u->reload_cmd, NULL, e) < 0))
		return -1;
	return 0;
}

int
chom_upstream_apply(const struct chom_upstream *u, const char *text,
		    volatile sig_atomic_t *stop, struct chom_err *e)
{
	struct chom_err e2;
	ssize_t oldlen;
	bool reloaded = false;
	char *old;
	int rc = 0;

	if (!(old = read_old(u->path, &oldlen, e)))
		return -1;
	if (chom_atomic_write(u->path, text, strlen(text), 0644, e) < 0) {
		free(old);
		return -1;
	}
	if (run_cmd("test command", u->test_cmd, stop, e) == 0) {
		reloaded = true; /* a failed reload may have half happened */
		rc = run_cmd("reload command", u->reload_cmd, stop, e);
	} else {
		rc = -1;
	}
	if (rc < 0) {
		/* Only a failed reload needs the old file loaded again: after a
		 * failed test nginx still runs on it. */
		if (put_back(u, old, oldlen, reloaded, &e2) < 0) {
			char first[sizeof(e->msg)];

			memcpy(first, e->msg, sizeof(first));
			chom_err_set(
			    e, CHOM_EXIT_UNSAFE,
			    "%.400s; and putting %s back failed: %.400s", first,
			    u->path, e2.msg);
		}
	}
	free(old);
	return rc;
}

int
chom_upstream_weight(const struct chom_upstream *u)
{
	struct chom_err e;
	char want[256], *p;
	ssize_t len;
	char *text = read_old(u->path, &len, &e);
	int w = -1;

	if (!text)
		return -1;
	if (len < 0) {
		free(text);
		return -1;
	}
	snprintf(want, sizeof(want), "server %s weight=", u->canary);
	if ((p = strstr(text, want)))
		w = atoi(p + strlen(want));
	else if (snprintf(want, sizeof(want), "server %s;", u->canary),
		 strstr(text, want))
		w = 100;
	else if (snprintf(want, sizeof(want), "server %s;", u->stable),
		 strstr(text, want))
		w = 0;
	free(text);
	return w;
}
