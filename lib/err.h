/* Errors returned by the library: an exit code and one line for people. */
#ifndef CHOM_ERR_H
#define CHOM_ERR_H

#include <stddef.h>

struct chom_err {
	int code;       /* an enum chom_exit value, the tool's exit status */
	char msg[1024]; /* one line, without the tool's prefix */
};

/* Both return -1 so that callers can write `return chom_err_set(...)`. */
int chom_err_set(struct chom_err *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Appends ": strerror(errno)", errno taken at the call. */
int chom_err_sys(struct chom_err *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void chom_err_clear(struct chom_err *e);
/* s for a one-line message: control and non-ASCII bytes as \xHH, and "..."
 * when cut to fit size. */
void chom_escape(const char *s, char *out, size_t size);

#endif
