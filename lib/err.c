#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "err.h"

int
chom_err_set(struct chom_err *e, int code, const char *fmt, ...)
{
	va_list ap;

	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return -1;
}

int
chom_err_sys(struct chom_err *e, int code, const char *fmt, ...)
{
	int saved = errno;
	size_t n;
	va_list ap;

	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	n = strlen(e->msg);
	snprintf(e->msg + n, sizeof(e->msg) - n, ": %s", strerror(saved));
	errno = saved;
	return -1;
}

void
chom_err_clear(struct chom_err *e)
{
	e->code = 0;
	e->msg[0] = '\0';
}

void
chom_escape(const char *s, char *out, size_t size)
{
	size_t o = 0;

	if (size < 8) {
		if (size)
			out[0] = '\0';
		return;
	}
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		int plain = c >= 0x20 && c < 0x7f;

		/* Room for this byte, and for "..." if more follow. */
		if (o + (plain ? 1 : 4) + (s[1] ? 3 : 0) >= size) {
			memcpy(out + o, "...", 4);
			return;
		}
		if (plain)
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, size - o, "\\x%02x", c);
	}
	out[o] = '\0';
}
