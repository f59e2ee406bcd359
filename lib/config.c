#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "exitcode.h"

struct loader {
	const char *section;
	chom_config_fn fn;
	void *ctx;
	struct chom_err *e;
	FILE *f;
	int lines;      /* lines read so far: the line being handled */
	int failed_at;  /* the first line the callback refused, or 0 */
	int read_error; /* errno of a failed read, or 0 */
};

/* fgets for inih, counting lines so that errors can name theirs. */
static char *
next_line(char *buf, int size, void *user)
{
	struct loader *ld = user;
	char *s = fgets(buf, size, ld->f);

	if (s)
		ld->lines++;
	else if (ferror(ld->f))
		ld->read_error = errno ? errno : EIO;
	return s;
}

static int
handler(void *user, const char *section, const char *name, const char *value)
{
	struct loader *ld = user;

	if (ld->failed_at)
		return 1;
	if (strcmp(section, "global") && strcmp(section, ld->section))
		return 1;
	/* [global] is shared: its keys are known here, for every tool. */
	if ((!strcmp(section, "global") && strcmp(name, "base") &&
	     chom_err_set(ld->e, CHOM_EXIT_USAGE,
			  "unknown key '%s' in [global]", name)) ||
	    ld->fn(ld->ctx, section, name, value, ld->e) < 0) {
		ld->failed_at = ld->lines;
		return 0;
	}
	return 1;
}

/* Kept values stay reachable from here until exit. */
struct kept {
	struct kept *next;
	char value[];
};
static struct kept *kept;

const char *
chom_config_keep(const char *value)
{
	size_t len = strlen(value) + 1;
	struct kept *k = malloc(sizeof(*k) + len);

	if (!k)
		return NULL;
	memcpy(k->value, value, len);
	k->next = kept;
	kept = k;
	return k->value;
}

const char *
chom_config_path(const char *path)
{
	const char *env;

	if (path)
		return path;
	env = getenv("CHOM_CONFIG");
	if (env && *env)
		return env;
	return CHOM_CONFIG_DEFAULT;
}

int
chom_config_load(const char *path, const char *section, chom_config_fn fn,
		 void *ctx, struct chom_err *e)
{
	struct loader ld = { section, fn, ctx, e, NULL, 0, 0, 0 };
	const char *env = getenv("CHOM_CONFIG");
	const char *file = chom_config_path(path);
	int named = path || (env && *env);
	char why[sizeof(e->msg)];
	struct stat st;
	int line;

	ld.f = fopen(file, "re");
	if (!ld.f) {
		if (errno == ENOENT && !named)
			return 0;
		return chom_err_sys(e, CHOM_EXIT_USAGE, "config %s", file);
	}
	if (fstat(fileno(ld.f), &st) == 0 && S_ISDIR(st.st_mode)) {
		fclose(ld.f);
		return chom_err_set(e, CHOM_EXIT_USAGE,
				    "config %s: is a directory", file);
	}
	line = ini_parse_stream(next_line, &ld, handler, &ld);
	fclose(ld.f);
	if (ld.read_error) {
		errno = ld.read_error;
		return chom_err_sys(e, CHOM_EXIT_USAGE, "config %s", file);
	}
	/* inih reports the first bad line of either kind: say which. */
	if (ld.failed_at && (line <= 0 || ld.failed_at <= line)) {
		snprintf(why, sizeof(why), "%s", e->msg);
		return chom_err_set(e, CHOM_EXIT_USAGE, "%s:%d: %s", file,
				    ld.failed_at, why);
	}
	if (line > 0)
		return chom_err_set(e, CHOM_EXIT_USAGE, "%s:%d: syntax error",
				    file, line);
	if (line < 0)
		return chom_err_set(e, CHOM_EXIT_USAGE,
				    "config %s: cannot read", file);
	return 0;
}
