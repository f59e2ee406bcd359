#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "exitcode.h"
#include "history.h"

static const char *
user_name(void)
{
	const char *s = getenv("SUDO_USER");
	struct passwd *pw;

	if (s && *s)
		return s;
	pw = getpwuid(getuid());
	if (pw)
		return pw->pw_name;
	s = getenv("USER");
	return s && *s ? s : "?";
}

int
chom_history_append(const char *path, const char *action, const char *from,
		    const char *to, struct chom_err *e)
{
	char line[512], stamp[32];
	time_t t = time(NULL);
	int fd, n;

	chom_iso_time(t, stamp, sizeof(stamp));
	n = snprintf(line, sizeof(line), "%s\t%s\t%s\t%s\t%s\n", stamp, action,
		     from && *from ? from : "-", to && *to ? to : "-",
		     user_name());
	if (n < 0 || (size_t)n >= sizeof(line))
		return chom_err_set(e, CHOM_EXIT_FAIL, "history line too long");
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
		  0644);
	if (fd < 0)
		return chom_err_sys(e, CHOM_EXIT_FAIL, "open %s", path);
	/* One write(2) of a short line with O_APPEND: lines never interleave.
	 */
	if (write(fd, line, (size_t)n) != n || fdatasync(fd) < 0) {
		chom_err_sys(e, CHOM_EXIT_FAIL, "write %s", path);
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static int
parse_line(char *line, struct chom_history_entry *h)
{
	char *f[5], *save = NULL;
	struct tm tm;
	int i;

	for (i = 0; i < 5; i++) {
		f[i] = strtok_r(i ? NULL : line, "\t\n", &save);
		if (!f[i])
			return -1;
	}
	memset(&tm, 0, sizeof(tm));
	if (!strptime(f[0], "%Y-%m-%dT%H:%M:%SZ", &tm))
		return -1;
	h->when = timegm(&tm);
	if (snprintf(h->action, sizeof(h->action), "%s", f[1]) >=
	    (int)sizeof(h->action))
		return -1;
	snprintf(h->from, sizeof(h->from), "%s", strcmp(f[2], "-") ? f[2] : "");
	snprintf(h->to, sizeof(h->to), "%s", strcmp(f[3], "-") ? f[3] : "");
	snprintf(h->user, sizeof(h->user), "%s", f[4]);
	return 0;
}

int
chom_history_read(const char *path, struct chom_history_entry **out, size_t *n,
		  struct chom_err *e)
{
	struct chom_history_entry *v = NULL;
	size_t len = 0, cap = 0, lcap = 0;
	char *line = NULL;
	FILE *f;

	*out = NULL;
	*n = 0;
	f = fopen(path, "re");
	if (!f) {
		if (errno == ENOENT)
			return 0;
		return chom_err_sys(e, CHOM_EXIT_FAIL, "open %s", path);
	}
	while (getline(&line, &lcap, f) > 0) {
		if (len == cap) {
			struct chom_history_entry *nv;

			cap = cap ? 2 * cap : 64;
			nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				free(v);
				free(line);
				fclose(f);
				return chom_err_set(e, CHOM_EXIT_FAIL,
						    "out of memory");
			}
			v = nv;
		}
		if (parse_line(line, &v[len]) == 0)
			len++;
	}
	free(line);
	fclose(f);
	*out = v;
	*n = len;
	return 0;
}

int
chom_history_rollback_target(const struct chom_history_entry *h, size_t n,
			     const char *current, char *id, size_t size)
{
	const char **stack;
	const char *last = "";
	size_t top = 0, i;
	int rc = 1;

	/* At most two pushes per entry: a first switch pushes from and to. */
	stack = malloc((2 * n + 1) * sizeof(*stack));
	if (!stack)
		return -1;
	for (i = 0; i < n; i++) {
		const char *act = h[i].action;

		/* A revert undoes the entry before it: a switch's push, or a
		 * rollback's pop. */
		if (!strcmp(act, "revert"))
			act = !strcmp(last, "rollback") ? "push" : "pop";
		if (!strcmp(act, "switch") || !strcmp(act, "push")) {
			/* The release live before the first recorded switch. */
			if (top == 0 && h[i].from[0] && !strcmp(act, "switch"))
				stack[top++] = h[i].from;
			if (h[i].to[0])
				stack[top++] = h[i].to;
		} else if (!strcmp(act, "rollback") || !strcmp(act, "pop")) {
			if (top > 0)
				top--;
			if (top == 0 && h[i].to[0])
				stack[top++] = h[i].to;
		}
		if (strcmp(h[i].action, "stage") &&
		    strcmp(h[i].action, "prune"))
			last = h[i].action;
	}
	/* The target is the newest entry below the live one; if current was
	 * changed by hand, the newest entry that is not current. */
	while (top > 0 && current && !strcmp(stack[top - 1], current))
		top--;
	if (top > 0 && strlen(stack[top - 1]) < size) {
		strcpy(id, stack[top - 1]);
		rc = 0;
	}
	free(stack);
	return rc;
}

time_t
chom_history_staged(const struct chom_history_entry *h, size_t n,
		    const char *id)
{
	size_t i;

	for (i = n; i-- > 0;)
		if (!strcmp(h[i].action, "stage") && !strcmp(h[i].to, id))
			return h[i].when;
	return 0;
}
