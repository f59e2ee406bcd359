#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exitcode.h"
#include "run.h"

#define OBUF (1 << 20) /* one read of the dump's output */

/* Hands complete lines of buf to on_line; keeps the rest. */
static void
lines(char *buf, size_t *len, int flush, chom_run_line_fn on_line, void *ctx)
{
	char *start = buf, *nl;

	while ((nl = memchr(start, '\n', *len - (size_t)(start - buf)))) {
		*nl = '\0';
		if (on_line)
			on_line(ctx, start);
		start = nl + 1;
	}
	*len -= (size_t)(start - buf);
	memmove(buf, start, *len);
	/* A line longer than the buffer, or the last one, is told as is. */
	if (*len && (flush || *len >= 4095)) {
		buf[*len] = '\0';
		if (on_line)
			on_line(ctx, buf);
		*len = 0;
	}
}

/*
 * fork() for a command. SIGINT and SIGTERM stay blocked from before the
 * fork until the child has its default dispositions back: a signal that
 * reached the child before exec would otherwise go to our handler, which
 * only sets a flag, and be lost. SIGPIPE, which the tools ignore, is the
 * default again in the child, for what it runs.
 *
 * With own_session, the child leads a session (and so a process group) of
 * its own, without a controlling terminal: stopping the group stops the
 * pipeline the command may be, and a command that reads the terminal (a
 * password prompt of mysql -p) fails at once, where in a background
 * process group of our session SIGTTIN would stop it and the run would
 * wait for ever. We return only once the session exists (the child closes
 * a pipe then, or dies), so that a stop sent to the group right after the
 * fork reaches it.
 */
static pid_t
fork_child(bool own_session)
{
	sigset_t block, old;
	int sync[2] = { -1, -1 };
	pid_t pid;
	char c;

	if (own_session && pipe2(sync, O_CLOEXEC) < 0)
		return -1;
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigprocmask(SIG_BLOCK, &block, &old);
	pid = fork();
	if (pid == 0) {
		if (own_session) {
			setsid();
			close(sync[1]);
		}
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGPIPE, SIG_DFL);
	} else if (own_session) {
		close(sync[1]);
		while (pid > 0 && read(sync[0], &c, 1) < 0 && errno == EINTR)
			;
		close(sync[0]);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	return pid;
}

pid_t
chom_run_fork(void)
{
	return fork_child(true);
}

pid_t
chom_run_fork_here(void)
{
	return fork_child(false);
}

int
chom_run_to_sink(const char *cmd, struct chom_sink *out,
		 chom_run_line_fn on_line, void *ctx, int *status,
		 unsigned long long *bytes, volatile sig_atomic_t *stop,
		 struct chom_err *e)
{
	int ofd[2] = { -1, -1 }, efd[2] = { -1, -1 }, wst, rc = 0;
	char ebuf[4096], *obuf = malloc(OBUF);
	size_t elen = 0;
	pid_t pid;

	*status = -1;
	*bytes = 0;
	if (!obuf)
		return chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
	if (pipe2(ofd, O_CLOEXEC) < 0 || pipe2(efd, O_CLOEXEC) < 0) {
		chom_err_sys(e, CHOM_EXIT_FAIL, "pipe");
		goto fail;
	}
	/* Its own session and process group, so that stopping it stops the
	 * pipeline it may be, not only the shell. */
	pid = chom_run_fork();
	if (pid < 0) {
		chom_err_sys(e, CHOM_EXIT_FAIL, "fork");
		goto fail;
	}
	if (pid == 0) {
		/* Our standard input, a dump piped in, say; but not a
		 * terminal: a prompt that falls back to standard input
		 * (getpass(3) without a controlling terminal) gets an end of
		 * file, not the operator's keys, echoed as typed. */
		int nul =
		    isatty(STDIN_FILENO) ? open("/dev/null", O_RDONLY) : -1;

		if (nul > STDIN_FILENO) {
			dup2(nul, STDIN_FILENO);
			close(nul);
		}
		dup2(ofd[1], STDOUT_FILENO);
		dup2(efd[1], STDERR_FILENO);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	/* A deep pipe: fewer wake-ups of the dump and of us per gigabyte. */
	(void)fcntl(ofd[0], F_SETPIPE_SZ, 1 << 20);
	close(ofd[1]);
	close(efd[1]);
	ofd[1] = efd[1] = -1;
	while (ofd[0] >= 0 || efd[0] >= 0) {
		struct pollfd p[2] = { { ofd[0], POLLIN, 0 },
				       { efd[0], POLLIN, 0 } };
		ssize_t n;

		if (stop && *stop) {
			rc = chom_err_set(e, 128 + *stop, "interrupted");
			break;
		}
		if (poll(p, 2, 1000) < 0) {
			if (errno == EINTR)
				continue;
			rc = chom_err_sys(e, CHOM_EXIT_FAIL, "poll");
			break;
		}
		if (p[0].revents) {
			/* Read into the first stage's own buffer when it
			 * has one (the compressor's block): no copy. */
			size_t room = 0;
			void *dst = chom_sink_space(out, &room);

			if (!dst || !room) {
				dst = obuf;
				room = OBUF;
			}
			n = read(ofd[0], dst, room < OBUF ? room : OBUF);
			if (n > 0) {
				*bytes += (unsigned long long)n;
				if (chom_sink_write(out, dst, (size_t)n, e) <
				    0) {
					rc = -1;
					break;
				}
			} else if (n == 0 || errno != EINTR) {
				close(ofd[0]);
				ofd[0] = -1;
			}
		}
		if (p[1].revents) {
			n = read(efd[0], ebuf + elen, sizeof(ebuf) - 1 - elen);
			if (n > 0) {
				elen += (size_t)n;
				lines(ebuf, &elen, 0, on_line, ctx);
			} else if (n == 0 || errno != EINTR) {
				lines(ebuf, &elen, 1, on_line, ctx);
				close(efd[0]);
				efd[0] = -1;
			}
		}
	}
	if (rc < 0) {
		kill(-pid, SIGTERM);
		/* And nobody reads now: a writer that outlives the signal
		 * gets EPIPE rather than blocking our wait. */
		close(ofd[0]);
		close(efd[0]);
		ofd[0] = efd[0] = -1;
	}
	while (waitpid(pid, &wst, 0) < 0)
		if (errno != EINTR) {
			wst = 127 << 8;
			break;
		}
	*status = WIFSIGNALED(wst) ? 128 + WTERMSIG(wst) : WEXITSTATUS(wst);
fail:
	if (ofd[0] >= 0)
		close(ofd[0]);
	if (ofd[1] >= 0)
		close(ofd[1]);
	if (efd[0] >= 0)
		close(efd[0]);
	if (efd[1] >= 0)
		close(efd[1]);
	free(obuf);
	return *status < 0 ? -1 : rc;
}

/* A command fed through its stdin. */
struct feed {
	struct chom_sink s;
	int fd; /* the write end of its stdin */
	pid_t pid;
	int *status;
	volatile sig_atomic_t *stop;
	char what[128];
};

/* Waits for the command; its status into *status. */
static int
feed_wait(struct feed *f)
{
	int wst;

	while (waitpid(f->pid, &wst, 0) < 0) {
		if (errno != EINTR) {
			wst = 127 << 8;
			break;
		}
		/* Stopped: the command is stopped too, then reaped. */
		if (f->stop && *f->stop)
			kill(-f->pid, SIGTERM);
	}
	f->pid = -1;
	*f->status = WIFSIGNALED(wst) ? 128 + WTERMSIG(wst) : WEXITSTATUS(wst);
	return *f->status;
}

static int
feed_failed(struct feed *f, struct chom_err *e)
{
	int st = f->pid > 0 ? feed_wait(f) : *f->status;

	if (st > 128)
		return chom_err_set(e, CHOM_EXIT_FAIL,
				    "%s: killed by signal %d", f->what,
				    st - 128);
	if (st == 127)
		return chom_err_set(e, CHOM_EXIT_FAIL,
				    "%s: exited with status 127 (not found?)",
				    f->what);
	return chom_err_set(e, CHOM_EXIT_FAIL, "%s: exited with status %d%s",
			    f->what, st, st ? "" : " before reading all input");
}

static int
feed_write(struct chom_sink *s, const void *buf, size_t len, struct chom_err *e)
{
	struct feed *f = (struct feed *)s;
	const char *p = buf;

	while (len) {
		ssize_t n;

		if (f->stop && *f->stop)
			return chom_err_set(e, 128 + *f->stop, "interrupted");
		n = write(f->fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EPIPE) {
			close(f->fd);
			f->fd = -1;
			return feed_failed(f, e);
		}
		if (n < 0)
			return chom_err_sys(e, CHOM_EXIT_FAIL, "write to %s",
					    f->what);
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int
feed_close(struct chom_sink *s, struct chom_err *e)
{
	struct feed *f = (struct feed *)s;

	close(f->fd);
	f->fd = -1;
	if (feed_wait(f) && f->stop && *f->stop)
		return chom_err_set(e, 128 + *f->stop, "interrupted");
	if (*f->status)
		return feed_failed(f, e);
	return 0;
}

static void
feed_free(struct chom_sink *s)
{
	struct feed *f = (struct feed *)s;

	if (f->fd >= 0)
		close(f->fd);
	if (f->pid > 0) {
		kill(-f->pid, SIGTERM);
		feed_wait(f);
	}
	free(f);
}

struct chom_sink *
chom_run_stdin_new(const char *cmd, const char *what, int *status,
		   volatile sig_atomic_t *stop, struct chom_err *e)
{
	struct feed *f = calloc(1, sizeof(*f));
	int fd[2];

	*status = -1;
	if (!f) {
		chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
		return NULL;
	}
	if (pipe2(fd, O_CLOEXEC) < 0) {
		chom_err_sys(e, CHOM_EXIT_FAIL, "pipe");
		free(f);
		return NULL;
	}
	f->s = (struct chom_sink){ feed_write, feed_close, feed_free, NULL };
	f->status = status;
	f->stop = stop;
	snprintf(f->what, sizeof(f->what), "%s", what);
	f->pid = chom_run_fork();
	if (f->pid < 0) {
		chom_err_sys(e, CHOM_EXIT_FAIL, "fork");
		close(fd[0]);
		close(fd[1]);
		free(f);
		return NULL;
	}
	if (f->pid == 0) {
		dup2(fd[0], STDIN_FILENO);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	(void)fcntl(fd[1], F_SETPIPE_SZ, 1 << 20);
	close(fd[0]);
	f->fd = fd[1];
	return &f->s;
}

int
chom_run_from_file(const char *cmd, int fd, const char *what,
		   void (*tick)(void *ctx, unsigned long long done), void *ctx,
		   volatile sig_atomic_t *stop, int *status, struct chom_err *e)
{
	struct stat st;
	char path[64];
	struct pollfd pfd = { .fd = -1, .events = POLLIN };
	off_t at = 0;
	pid_t pid;
	int in, wst, r;

	*status = -1;
	if (fstat(fd, &st) < 0)
		return chom_err_sys(e, CHOM_EXIT_FAIL, "stat input of %s",
				    what);
	/* Its own open file, read-only, from the start: its offset tells
	 * how far the command has read. */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if ((in = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return chom_err_sys(e, CHOM_EXIT_FAIL, "reopen input of %s",
				    what);
	if ((pid = chom_run_fork()) < 0) {
		close(in);
		return chom_err_sys(e, CHOM_EXIT_FAIL, "fork");
	}
	if (pid == 0) {
		dup2(in, STDIN_FILENO);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	/* Its end is seen at once through a pidfd, not at the next tick
	 * (up to 50 ms late: 4% of a 1 GB restore into cat). */
	pfd.fd = pidfd_open(pid, 0);
	for (;;) {
		r = waitpid(pid, &wst, WNOHANG);
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR) {
			wst = 127 << 8;
			break;
		}
		if (stop && *stop) {
			kill(-pid, SIGTERM);
			while (waitpid(pid, &wst, 0) < 0 && errno == EINTR)
				;
			if (pfd.fd >= 0)
				close(pfd.fd);
			close(in);
			*status = 128 + *stop;
			return chom_err_set(e, 128 + *stop, "interrupted");
		}
		if (tick && (at = lseek(in, 0, SEEK_CUR)) >= 0)
			tick(ctx, (unsigned long long)at);
		if (pfd.fd >= 0)
			(void)poll(&pfd, 1, 50); /* a signal: looked at above */
		else
			usleep(50000);
	}
	if (pfd.fd >= 0)
		close(pfd.fd);
	at = lseek(in, 0, SEEK_CUR);
	close(in);
	*status = WIFSIGNALED(wst) ? 128 + WTERMSIG(wst) : WEXITSTATUS(wst);
	if (*status > 128)
		return chom_err_set(e, CHOM_EXIT_FAIL,
				    "%s: killed by signal %d", what,
				    *status - 128);
	if (*status == 127)
		return chom_err_set(e, CHOM_EXIT_FAIL,
				    "%s: exited with status 127 (not found?)",
				    what);
	if (*status)
		return chom_err_set(e, CHOM_EXIT_FAIL,
				    "%s: exited with status %d", what, *status);
	/* A reader that forked its own (mysql's pager, say) shares the
	 * offset; one that stopped early and said 0 did not take it all. */
	if (at >= 0 && at < st.st_size)
		return chom_err_set(e, CHOM_EXIT_FAIL,
				    "%s: exited with status 0 before reading "
				    "all input (%lld of %lld bytes)",
				    what, (long long)at, (long long)st.st_size);
	if (tick)
		tick(ctx, (unsigned long long)st.st_size);
	return 0;
}
