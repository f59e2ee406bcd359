#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli.h"
#include "exitcode.h"
#include "release.h"

static const char *progname = "chom";
static int verbosity = CHOM_NORMAL;
static int stderr_tty = -1;
static int progress_shown;

void
chom_cli_init(const char *name)
{
	progname = name;
	stderr_tty = isatty(STDERR_FILENO);
}

const char *
chom_cli_name(void)
{
	return progname;
}

void
chom_cli_set_verbosity(int level)
{
	verbosity = level;
}

int
chom_cli_verbosity(void)
{
	return verbosity;
}

bool
chom_cli_tty(void)
{
	if (stderr_tty < 0)
		stderr_tty = isatty(STDERR_FILENO);
	return stderr_tty && verbosity > CHOM_QUIET;
}

/*
 * "LEAD PROGNAME: MESSAGE TAIL" on stderr in one write when it fits, so that
 * a command sharing our terminal (chom-restore --db-cmd) or another process
 * writing to the same log cannot land in the middle of the line.
 */
static void
emit(const char *lead, const char *fmt, va_list ap, const char *tail)
{
	char buf[2048];
	va_list cp;
	int n, m;

	n = snprintf(buf, sizeof(buf), "%s%s: ", lead, progname);
	va_copy(cp, ap);
	m = -1;
	if (n >= 0 && (size_t)n < sizeof(buf))
		m = vsnprintf(buf + n, sizeof(buf) - n, fmt, cp);
	va_end(cp);
	if (m >= 0 && (size_t)n + m + strlen(tail) < sizeof(buf)) {
		strcat(buf, tail);
		fputs(buf, stderr);
	} else { /* too long for one write: in pieces */
		fprintf(stderr, "%s%s: ", lead, progname);
		vfprintf(stderr, fmt, ap);
		fputs(tail, stderr);
	}
	fflush(stderr);
}

static void
vmsg(const char *fmt, va_list ap)
{
	/* The progress line cleared in the same write */
	emit(progress_shown ? "\r\033[K" : "", fmt, ap, "\n");
	progress_shown = 0;
}

void
chom_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(fmt, ap);
	va_end(ap);
}

void
chom_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(fmt, ap);
	va_end(ap);
}

void
chom_info(const char *fmt, ...)
{
	va_list ap;

	/* Quiet when all is well and no one is watching: cron mails output. */
	if (verbosity < CHOM_VERBOSE && !chom_cli_tty())
		return;
	va_start(ap, fmt);
	vmsg(fmt, ap);
	va_end(ap);
}

void
chom_debug(const char *fmt, ...)
{
	va_list ap;

	if (verbosity < CHOM_VERBOSE)
		return;
	va_start(ap, fmt);
	vmsg(fmt, ap);
	va_end(ap);
}

int
chom_report(const struct chom_err *e)
{
	chom_error("%s", e->msg);
	return e->code ? e->code : CHOM_EXIT_FAIL;
}

int
chom_usage_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(fmt, ap);
	va_end(ap);
	fprintf(stderr, "Try '%s --help'.\n", progname);
	return CHOM_EXIT_USAGE;
}

int
chom_usage_getopt(int c, char **argv)
{
	const char *arg = optind > 0 ? argv[optind - 1] : "?";

	if (c == ':')
		return chom_usage_error("option '%s' needs an argument",
					chom_quote(arg));
	if (optopt && !(arg[0] == '-' && arg[1] == '-'))
		return chom_usage_error("unknown option '-%c'", optopt);
	return chom_usage_error("unknown option '%s'", chom_quote(arg));
}

const char *
chom_quote(const char *s)
{
	static char buf[512];

	chom_escape(s, buf, sizeof(buf));
	return buf;
}

int
chom_print_version(void)
{
	printf("%s (chom) %s\n", progname, CHOM_VERSION);
	return CHOM_EXIT_OK;
}

void
chom_json_line(json_t *obj)
{
	json_dumpf(obj, stdout,
		   JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
	fputc('\n', stdout);
	json_decref(obj);
}

void
chom_progress(const char *fmt, ...)
{
	va_list ap;

	if (!chom_cli_tty())
		return;
	va_start(ap, fmt);
	emit("\r\033[K", fmt, ap, "");
	va_end(ap);
	progress_shown = 1;
}

void
chom_progress_end(void)
{
	if (!progress_shown)
		return;
	fputs("\r\033[K", stderr);
	progress_shown = 0;
}

const char *
chom_summary_path(const char *opt)
{
	const char *env = getenv("GITHUB_STEP_SUMMARY");

	if (opt && *opt)
		return opt;
	return env && *env ? env : NULL;
}

void
chom_md_cell(const char *s, char *out, size_t size)
{
	size_t o = 0;

	for (; *s && o + 3 < size; s++) {
		if (*s == '|')
			out[o++] = '\\';
		out[o++] = *s == '\n' || *s == '\r' ? ' ' : *s;
	}
	out[o] = '\0';
}

int
chom_summary_append(const char *path, const char *text, struct chom_err *e)
{
	size_t len = strlen(text);
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);

	if (fd < 0)
		return chom_err_sys(e, CHOM_EXIT_FAIL, "summary %s", path);
	if (write(fd, text, len) != (ssize_t)len) {
		chom_err_sys(e, CHOM_EXIT_FAIL, "write summary %s", path);
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static volatile sig_atomic_t caught;

static void
on_signal(int sig)
{
	caught = sig;
}

volatile sig_atomic_t *
chom_cli_catch_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	return &caught;
}

int
chom_cli_signal_status(int sig)
{
	return sig == SIGINT ? CHOM_EXIT_SIGINT : CHOM_EXIT_SIGTERM;
}

int
chom_close_stdout(int status)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		if (errno != EPIPE)
			chom_error("write error on standard output: %s",
				   strerror(errno));
		return status ? status : CHOM_EXIT_FAIL;
	}
	return status;
}

int
chom_parse_ll(const char *s, long long min, long long max, long long *out)
{
	char *end;
	long long v;

	if (!s || !(isdigit((unsigned char)*s) || *s == '-'))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int
chom_parse_size(const char *s, unsigned long long *out)
{
	char *end;
	unsigned long long v, mul = 1;

	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -1;
	switch (*end) {
	case '\0': break;
	case 'k':
	case 'K':
		mul = 1ULL << 10;
		end++;
		break;
	case 'm':
	case 'M':
		mul = 1ULL << 20;
		end++;
		break;
	case 'g':
	case 'G':
		mul = 1ULL << 30;
		end++;
		break;
	case 't':
	case 'T':
		mul = 1ULL << 40;
		end++;
		break;
	default: return -1;
	}
	if (*end == 'i' || *end == 'B')
		end += (end[0] == 'i' && end[1] == 'B') ? 2 : 1;
	if (*end || (v && mul > ~0ULL / v))
		return -1;
	*out = v * mul;
	return 0;
}

int
chom_parse_duration(const char *s, double *out)
{
	char *end;
	double v;

	if (!s || !(isdigit((unsigned char)*s) || *s == '.'))
		return -1;
	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || !isfinite(v) || v < 0)
		return -1;
	if (!strcmp(end, "ms"))
		v /= 1000;
	else if (!strcmp(end, "m"))
		v *= 60;
	else if (!strcmp(end, "h"))
		v *= 3600;
	else if (*end && strcmp(end, "s"))
		return -1;
	*out = v;
	return 0;
}

int
chom_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "1", "yes", "true", "on" };
	static const char *const no[] = { "0", "no", "false", "off" };
	size_t i;

	for (i = 0; i < 4; i++) {
		if (!strcasecmp(s, yes[i])) {
			*out = true;
			return 0;
		}
		if (!strcasecmp(s, no[i])) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

int
chom_cli_host(const char **host)
{
	static char buf[256];

	if (!*host) {
		if (gethostname(buf, sizeof(buf) - 1) < 0)
			buf[0] = '\0';
		buf[strcspn(buf, ".")] = '\0';
		*host = buf;
	}
	if (!chom_release_id_valid(*host))
		return chom_usage_error("--host %s: want [A-Za-z0-9._-]",
					chom_quote(*host));
	return 0;
}
