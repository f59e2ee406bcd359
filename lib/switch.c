#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "exitcode.h"
#include "fsutil.h"
#include "history.h"
#include "inuse.h"
#include "lock.h"
#include "metrics.h"
#include "run.h"
#include "switch.h"

static int
release_exists(const struct chom_layout *l, const char *id, char *path,
	       size_t size, struct chom_err *e)
{
	struct stat st;

	if (chom_layout_release(l, id, path, size, e) < 0)
		return -1;
	if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode))
		return chom_err_set(e, CHOM_EXIT_FAIL, "no release %s in %s",
				    id, l->releases);
	return 0;
}

/* current -> releases/ID in one rename(2), then the history line. */
static int
point_current(const struct chom_layout *l, const char *action, const char *from,
	      const char *to, struct chom_err *e)
{
	char target[PATH_MAX];

	if (!to[0]) {
		/* Back to "nothing live", after a failed first deploy. */
		if (unlink(l->current) < 0 && errno != ENOENT)
			return chom_err_sys(e, CHOM_EXIT_FAIL, "remove %s",
					    l->current);
		if (chom_fsync_dir(l->base, e) < 0)
			return -1;
	} else if (chom_path(target, sizeof(target), e, "releases/%s", to) <
		       0 ||
		   chom_atomic_symlink(target, l->current, e) < 0) {
		return -1;
	}
	return chom_history_append(l->history, action, from, to, e);
}

static int
run_exec(const struct chom_switch_opts *o, const struct chom_switch_result *r)
{
	/* In our process group: the command may ask the operator something
	 * (sudo), and a Ctrl-C reaches it as it reaches us. */
	pid_t pid = chom_run_fork_here();
	int status, sent = 0;

	if (pid < 0)
		return 127;
	if (pid == 0) {
		setenv("CHOM_BASE", o->layout->base, 1);
		setenv("CHOM_RELEASE", r->to, 1);
		setenv("CHOM_RELEASE_PATH", r->path, 1);
		setenv("CHOM_PREVIOUS", r->from, 1);
		execl("/bin/sh", "sh", "-c", o->exec_cmd, (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return 127;
		/* Interrupted: pass the signal on, then switch back. */
		if (o->stop && *o->stop && !sent) {
			kill(pid, *o->stop);
			sent = 1;
		}
	}
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

/* --exec failed or we were interrupted: put FROM back, or say we could not. */
static int
revert(const struct chom_switch_opts *o, struct chom_switch_result *r,
       const char *why, int code, struct chom_err *e)
{
	const struct chom_layout *l = o->layout;
	struct chom_err e2;

	if (!r->changed)
		return chom_err_set(e, code, "%s", why);
	if ((r->from[0] &&
	     release_exists(l, r->from, r->path, sizeof(r->path), &e2) < 0) ||
	    point_current(l, "revert", r->to, r->from, &e2) < 0)
		return chom_err_set(e, CHOM_EXIT_UNSAFE,
				    "%s, and switching back to %s failed: %s; "
				    "%s is live",
				    why, r->from[0] ? r->from : "nothing",
				    e2.msg, r->to);
	r->reverted = true;
	return chom_err_set(e, code, "%s; switched back to %s", why,
			    r->from[0] ? r->from : "nothing");
}

static int
write_metrics(const struct chom_switch_opts *o, const char *id,
	      struct chom_err *e)
{
	char text[512];
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(
	    text, sizeof(text),
	    "# HELP chom_release_info The release BASE/current points at.\n"
	    "# TYPE chom_release_info gauge\n"
	    "chom_release_info{release=\"%s\"} 1\n"
	    "# HELP chom_switch_timestamp_seconds When current last "
	    "changed.\n"
	    "# TYPE chom_switch_timestamp_seconds gauge\n"
	    "chom_switch_timestamp_seconds %.3f\n",
	    id, (double)ts.tv_sec + ts.tv_nsec / 1e9);
	return chom_metrics_write(o->metrics_dir, "chom_switch", text, e);
}

static int
pick_target(const struct chom_switch_opts *o, struct chom_switch_result *r,
	    struct chom_err *e)
{
	const struct chom_layout *l = o->layout;
	struct chom_history_entry *h;
	size_t n;
	int rc;

	switch (o->what) {
	case CHOM_SWITCH_ID:
		snprintf(r->to, sizeof(r->to), "%s", o->id);
		return 0;
	case CHOM_SWITCH_NEXT:
		rc = chom_release_link_id(l->next, r->to, sizeof(r->to), e);
		if (rc > 0)
			return chom_err_set(e, CHOM_EXIT_FAIL,
					    "nothing staged: %s does not exist",
					    l->next);
		return rc;
	case CHOM_SWITCH_ROLLBACK:
		if (chom_history_read(l->history, &h, &n, e) < 0)
			return -1;
		rc = chom_history_rollback_target(h, n, r->from, r->to,
						  sizeof(r->to));
		free(h);
		if (rc != 0)
			return chom_err_set(
			    e, CHOM_EXIT_FAIL,
			    "nothing to roll back to: %s records no "
			    "earlier release",
			    l->history);
		return 0;
	}
	return chom_err_set(e, CHOM_EXIT_USAGE, "unknown switch");
}

int
chom_switch(const struct chom_switch_opts *o, struct chom_switch_result *r,
	    struct chom_err *e)
{
	const struct chom_layout *l = o->layout;
	const char *action =
	    o->what == CHOM_SWITCH_ROLLBACK ? "rollback" : "switch";
	struct chom_lock lock;
	struct chom_err e2;
	double t0;
	int rc = -1, cur;

	memset(r, 0, sizeof(*r));
	if (chom_lock_acquire_until(&lock, l->lock, o->wait_s, o->stop, e) < 0)
		return -1;
	t0 = chom_mono();
	cur = chom_release_link_id(l->current, r->from, sizeof(r->from), e);
	if (cur < 0)
		goto out;
	if (pick_target(o, r, e) < 0 ||
	    release_exists(l, r->to, r->path, sizeof(r->path), e) < 0)
		goto out;
	if (strcmp(r->from, r->to)) {
		if (point_current(l, action, r->from, r->to, e) < 0)
			goto out;
		r->changed = true;
	}
	r->seconds = chom_mono() - t0;
	if (o->exec_cmd && *o->exec_cmd) {
		char why[128];

		/* A signal before the command starts: do not start it. */
		if (o->stop && *o->stop) {
			revert(o, r, "interrupted", 128 + *o->stop, e);
			goto out;
		}
		r->exec_status = run_exec(o, r);
		if (o->stop && *o->stop) {
			revert(o, r, "interrupted", 128 + *o->stop, e);
			goto out;
		}
		if (r->exec_status != 0) {
			snprintf(why, sizeof(why),
				 "--exec failed with status %d",
				 r->exec_status);
			revert(o, r, why, CHOM_EXIT_FAIL, e);
			goto out;
		}
	}
	/* The release is live for good now: what fails after this is told,
	 * not turned into a failure of the switch. */
	rc = 0;
	if (o->what == CHOM_SWITCH_NEXT &&
	    (unlink(l->next) < 0 || chom_fsync_dir(l->base, &e2) < 0))
		snprintf(r->warning, sizeof(r->warning),
			 "%s is live, but %s "
			 "could not be removed: %s",
			 r->to, l->next, strerror(errno));
	if (o->metrics_dir && r->changed && write_metrics(o, r->to, &e2) < 0)
		snprintf(r->warning, sizeof(r->warning),
			 "%s is live, but the "
			 "metrics were not written: %s",
			 r->to, e2.msg);
out:
	chom_lock_release(&lock);
	return rc;
}

static void
mark(struct chom_release_info *v, size_t n, const char *id, int which)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (strcmp(v[i].rel.id, id))
			continue;
		if (which == 0)
			v[i].current = true;
		else if (which == 1)
			v[i].previous = true;
		else
			v[i].next = true;
	}
}

int
chom_switch_list(const struct chom_layout *l, struct chom_release_info **out,
		 size_t *n, struct chom_err *e)
{
	char cur[CHOM_ID_MAX + 1] = "", prev[CHOM_ID_MAX + 1] = "",
			       nxt[CHOM_ID_MAX + 1] = "";
	struct chom_history_entry *h = NULL;
	struct chom_release *rels;
	struct chom_release_info *v;
	size_t nr, nh = 0, i;

	*out = NULL;
	*n = 0;
	if (chom_release_link_id(l->current, cur, sizeof(cur), e) < 0 ||
	    chom_release_link_id(l->next, nxt, sizeof(nxt), e) < 0)
		return -1;
	if (chom_history_read(l->history, &h, &nh, e) < 0)
		return -1;
	if (chom_history_rollback_target(h, nh, cur, prev, sizeof(prev)) != 0)
		prev[0] = '\0';
	free(h);
	if (chom_release_list(l, &rels, &nr, e) < 0)
		return -1;
	v = calloc(nr ? nr : 1, sizeof(*v));
	if (!v) {
		free(rels);
		return chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
	}
	for (i = 0; i < nr; i++)
		v[i].rel = rels[i];
	free(rels);
	mark(v, nr, cur, 0);
	mark(v, nr, prev, 1);
	mark(v, nr, nxt, 2);
	*out = v;
	*n = nr;
	return 0;
}

static int
remove_release(const struct chom_layout *l, const char *id, struct chom_err *e)
{
	char path[PATH_MAX], doomed[PATH_MAX];

	/* Renamed first, so the release vanishes in one step; what remains of
	 * a removal cut short is a .tmp-* directory that chom-stage cleans. */
	if (chom_layout_release(l, id, path, sizeof(path), e) < 0 ||
	    chom_path(doomed, sizeof(doomed), e, "%s/.tmp-prune-%s-%ld",
		      l->releases, id, (long)getpid()) < 0)
		return -1;
	if (rename(path, doomed) < 0)
		return chom_err_sys(e, CHOM_EXIT_FAIL, "rename %s", path);
	if (chom_fsync_dir(l->releases, e) < 0)
		return -1;
	if (chom_rmtree(doomed, e) < 0)
		return -1;
	return chom_history_append(l->history, "prune", id, "", e);
}

int
chom_switch_prune(const struct chom_layout *l, size_t keep, bool force,
		  double wait_s, struct chom_prune_item **out, size_t *n,
		  struct chom_err *e)
{
	struct chom_release_info *v = NULL;
	struct chom_prune_item *items;
	struct chom_lock lock;
	size_t nv = 0, i;
	int rc = -1;

	*out = NULL;
	*n = 0;
	if (chom_lock_acquire(&lock, l->lock, wait_s, e) < 0)
		return -1;
	if (chom_switch_list(l, &v, &nv, e) < 0)
		goto out;
	items = calloc(nv ? nv : 1, sizeof(*items));
	if (!items) {
		chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
		goto out;
	}
	*out = items;
	for (i = 0; i < nv; i++) {
		struct chom_prune_item *it = &items[i];
		char comm[32];
		pid_t pid;
		int use = 0;

		snprintf(it->id, sizeof(it->id), "%s", v[i].rel.id);
		*n = i + 1;
		if (v[i].current)
			it->why = "current";
		else if (v[i].next)
			it->why = "next";
		else if (v[i].previous)
			it->why = "previous";
		else if (i < keep)
			it->why = "newest";
		if (it->why)
			continue;
		if (!force) {
			char path[PATH_MAX];

			if (chom_layout_release(l, it->id, path, sizeof(path),
						e) < 0)
				goto out;
			use = chom_inuse(path, &pid, comm, sizeof(comm), e);
			if (use < 0)
				goto out;
		}
		if (use) {
			snprintf(it->detail, sizeof(it->detail),
				 "in use by pid %ld (%s)", (long)pid, comm);
			it->why = it->detail;
			continue;
		}
		if (remove_release(l, it->id, e) < 0)
			goto out;
		it->removed = true;
	}
	rc = 0;
out:
	free(v);
	chom_lock_release(&lock);
	return rc;
}
