#include <limits.h>
#include <string.h>

#include "fsutil.h"
#include "metrics.h"

int
chom_metrics_write(const char *dir, const char *name, const char *text,
		   struct chom_err *e)
{
	char path[PATH_MAX];

	if (chom_path(path, sizeof(path), e, "%s/%s.prom", dir, name) < 0)
		return -1;
	return chom_atomic_write(path, text, strlen(text), 0644, e);
}
