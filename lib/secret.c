#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exitcode.h"
#include "secret.h"

#define SECRET_MAX 65536

int
chom_secret_read(const char *path, char **out, struct chom_err *e)
{
	struct stat st;
	size_t len = 0;
	char *buf;
	ssize_t n;
	int fd;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return chom_err_sys(e, CHOM_EXIT_USAGE, "secret %s", path);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return chom_err_set(e, CHOM_EXIT_USAGE,
				    "secret %s: not a regular file", path);
	}
	if (st.st_mode & 077) {
		close(fd);
		return chom_err_set(e, CHOM_EXIT_USAGE,
				    "secret %s: readable by group or others "
				    "(mode %03o); chmod 600 it",
				    path, (unsigned)(st.st_mode & 0777));
	}
	buf = malloc(SECRET_MAX + 1);
	if (!buf) {
		close(fd);
		return chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
	}
	while (len < SECRET_MAX &&
	       (n = read(fd, buf + len, SECRET_MAX - len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			chom_err_sys(e, CHOM_EXIT_USAGE, "secret %s", path);
			close(fd);
			chom_secret_free(buf);
			return -1;
		}
		len += (size_t)n;
	}
	close(fd);
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	buf[len] = '\0';
	if (len == 0) {
		chom_secret_free(buf);
		return chom_err_set(e, CHOM_EXIT_USAGE, "secret %s: empty",
				    path);
	}
	*out = buf;
	return 0;
}

void
chom_secret_free(char *s)
{
	if (!s)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}
