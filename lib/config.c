#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "exitcode.h"

struct loader {
	const char *section;
	chom_config_fn fn;
	void *ctx;
	struct chom_err *e;
	int failed;
};

static int
handler(void *user, const char *section, const char *name, const char *value)
{
	struct loader *ld = user;

	if (ld->failed)
		return 1;
	if (strcmp(section, "global") && strcmp(section, ld->section))
		return 1;
	if (ld->fn(ld->ctx, section, name, value, ld->e) < 0) {
		ld->failed = 1;
		return 0; /* ini_parse then returns this line's number */
	}
	return 1;
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
	struct loader ld = { section, fn, ctx, e, 0 };
	const char *file = chom_config_path(path);
	int named = strcmp(file, CHOM_CONFIG_DEFAULT) != 0;
	FILE *f;
	int line;

	f = fopen(file, "r");
	if (!f) {
		if (errno == ENOENT && !named)
			return 0;
		return chom_err_sys(e, CHOM_EXIT_USAGE, "config %s", file);
	}
	line = ini_parse_file(f, handler, &ld);
	fclose(f);
	if (line == 0)
		return 0;
	if (ld.failed) {
		char why[sizeof(e->msg)];

		snprintf(why, sizeof(why), "%s", e->msg);
		return chom_err_set(e, CHOM_EXIT_USAGE, "%s:%d: %s", file, line,
				    why);
	}
	if (line < 0)
		return chom_err_set(e, CHOM_EXIT_USAGE,
				    "config %s: cannot read", file);
	return chom_err_set(e, CHOM_EXIT_USAGE, "%s:%d: syntax error", file,
			    line);
}
