#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exitcode.h"
#include "fsutil.h"
#include "history.h"
#include "release.h"

bool
chom_release_id_valid(const char *id)
{
	size_t n =
	    strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		       "0123456789._-");

	return n > 0 && n <= CHOM_ID_MAX && id[n] == '\0' && id[0] != '.';
}

int
chom_release_id_from_name(const char *artifact, char *id, size_t size)
{
	static const char *const exts[] = {
		".tar.gz",  ".tar.zst", ".tar.xz", ".tar.bz2",
		".tar.lz4", ".tgz",     ".tzst",   ".txz",
		".tbz2",    ".tbz",     ".tar",    ".zip",
	};
	const char *base = strrchr(artifact, '/');
	size_t len, i;

	base = base ? base + 1 : artifact;
	len = strlen(base);
	for (i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
		size_t el = strlen(exts[i]);

		if (len > el && !strcmp(base + len - el, exts[i])) {
			len -= el;
			break;
		}
	}
	if (len >= size)
		return -1;
	memcpy(id, base, len);
	id[len] = '\0';
	return chom_release_id_valid(id) ? 0 : -1;
}

void
chom_release_id_time(time_t t, char *buf, size_t size)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, size, "%Y%m%dT%H%M%SZ", &tm);
}

int
chom_layout_init(struct chom_layout *l, const char *base, struct chom_err *e)
{
	char cwd[PATH_MAX], abs[PATH_MAX];
	size_t n;

	if (!base || !*base)
		return chom_err_set(e, CHOM_EXIT_USAGE, "empty base directory");
	if (base[0] == '/') {
		if (chom_path(abs, sizeof(abs), e, "%s", base) < 0)
			return -1;
	} else {
		if (!getcwd(cwd, sizeof(cwd)))
			return chom_err_sys(e, CHOM_EXIT_FAIL, "getcwd");
		if (chom_path(abs, sizeof(abs), e, "%s/%s", cwd, base) < 0)
			return -1;
	}
	n = strlen(abs);
	while (n > 1 && abs[n - 1] == '/')
		abs[--n] = '\0';
	memcpy(l->base, abs, n + 1);
	if (chom_path(l->releases, sizeof(l->releases), e, "%s/releases",
		      abs) ||
	    chom_path(l->shared, sizeof(l->shared), e, "%s/shared", abs) ||
	    chom_path(l->current, sizeof(l->current), e, "%s/current", abs) ||
	    chom_path(l->next, sizeof(l->next), e, "%s/next", abs) ||
	    chom_path(l->dotchom, sizeof(l->dotchom), e, "%s/.chom", abs) ||
	    chom_path(l->lock, sizeof(l->lock), e, "%s/.chom/lock", abs) ||
	    chom_path(l->history, sizeof(l->history), e, "%s/.chom/history",
		      abs))
		return -1;
	return 0;
}

int
chom_layout_prepare(const struct chom_layout *l, struct chom_err *e)
{
	if (chom_mkdir_p(l->releases, 0755, e) < 0 ||
	    chom_mkdir_p(l->shared, 0755, e) < 0 ||
	    chom_mkdir_p(l->dotchom, 0755, e) < 0)
		return -1;
	return 0;
}

int
chom_layout_release(const struct chom_layout *l, const char *id, char *buf,
		    size_t size, struct chom_err *e)
{
	return chom_path(buf, size, e, "%s/%s", l->releases, id);
}

int
chom_release_link_id(const char *link, char *id, size_t size,
		     struct chom_err *e)
{
	char target[PATH_MAX];
	const char *p;
	struct stat st;

	if (lstat(link, &st) < 0) {
		if (errno == ENOENT)
			return 1;
		return chom_err_sys(e, CHOM_EXIT_FAIL, "stat %s", link);
	}
	if (!S_ISLNK(st.st_mode))
		return chom_err_set(
		    e, CHOM_EXIT_USAGE,
		    "%s is not a symlink (a real %s); move it aside "
		    "before using chom",
		    link, S_ISDIR(st.st_mode) ? "directory" : "file");
	if (chom_readlink(link, target, sizeof(target)) < 0)
		return chom_err_sys(e, CHOM_EXIT_FAIL, "readlink %s", link);
	/* chom writes "releases/ID"; BASE/releases/ID, absolute, is accepted
	 * for links made by hand, but not another base's releases. */
	p = target;
	if (target[0] == '/') {
		const char *slash = strrchr(link, '/');
		size_t blen = slash ? (size_t)(slash - link) : 0;

		if (strncmp(target, link, blen) || target[blen] != '/')
			goto foreign;
		p = target + blen + 1;
	}
	if (strncmp(p, "releases/", strlen("releases/")))
		goto foreign;
	p += strlen("releases/");
	if (!chom_release_id_valid(p) || strlen(p) >= size)
		goto foreign;
	strcpy(id, p);
	return 0;
foreign:
	return chom_err_set(e, CHOM_EXIT_USAGE,
			    "%s points at %s, not at a release of this base",
			    link, target);
}

static int
newest_first(const void *a, const void *b)
{
	const struct chom_release *x = a, *y = b;

	if (x->staged != y->staged)
		return x->staged < y->staged ? 1 : -1;
	return strcmp(y->id, x->id);
}

int
chom_release_list(const struct chom_layout *l, struct chom_release **out,
		  size_t *n, struct chom_err *e)
{
	struct chom_history_entry *h = NULL;
	struct chom_release *v = NULL;
	size_t nh = 0, len = 0, cap = 0;
	struct dirent *d;
	DIR *dir;

	*out = NULL;
	*n = 0;
	dir = opendir(l->releases);
	if (!dir) {
		if (errno == ENOENT)
			return 0;
		return chom_err_sys(e, CHOM_EXIT_FAIL, "open %s", l->releases);
	}
	if (chom_history_read(l->history, &h, &nh, e) < 0) {
		closedir(dir);
		return -1;
	}
	while ((d = readdir(dir))) {
		struct stat st;

		if (!chom_release_id_valid(d->d_name) ||
		    fstatat(dirfd(dir), d->d_name, &st, AT_SYMLINK_NOFOLLOW) <
			0 ||
		    !S_ISDIR(st.st_mode))
			continue;
		if (len == cap) {
			struct chom_release *nv;

			cap = cap ? 2 * cap : 16;
			nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				free(v);
				free(h);
				closedir(dir);
				return chom_err_set(e, CHOM_EXIT_FAIL,
						    "out of memory");
			}
			v = nv;
		}
		memcpy(v[len].id, d->d_name, strlen(d->d_name) + 1);
		v[len].staged = chom_history_staged(h, nh, d->d_name);
		if (!v[len].staged)
			v[len].staged = st.st_mtime;
		len++;
	}
	closedir(dir);
	free(h);
	if (len)
		qsort(v, len, sizeof(*v), newest_first);
	*out = v;
	*n = len;
	return 0;
}
