/*
 * Safe extraction of an untrusted archive through libarchive, in one pass
 * that also hashes every byte read. Refused, naming the entry: absolute
 * paths, ".." components, names with control characters or invalid UTF-8,
 * symlinks that are absolute or leave the tree, hard links to anything but
 * an earlier file of the archive, entries that pass through a symlink,
 * devices, FIFOs, sockets, a second entry for the same non-directory path.
 * setuid/setgid bits are stripped; owners are not restored.
 */
#ifndef CHOM_EXTRACT_H
#define CHOM_EXTRACT_H

#include <signal.h>
#include <stddef.h>

#include "err.h"
#include "sha256.h"

struct chom_extract_stats {
	unsigned long long entries;  /* entries extracted */
	unsigned long long bytes;    /* file data written */
	unsigned long long in_bytes; /* bytes read from the archive */
	unsigned long long in_total; /* the archive's size if known, else 0 */
};

typedef void (*chom_extract_progress_fn)(void *ctx,
					 const struct chom_extract_stats *st);

struct chom_extract_opts {
	int in_fd;                    /* the archive, read to its end */
	const char *dir;              /* an existing, empty directory */
	unsigned long long max_bytes; /* 0: no limit */
	unsigned long long max_files; /* 0: no limit */
	struct chom_sha256 *hash;     /* fed every byte of in_fd, or NULL */
	chom_extract_progress_fn progress;
	void *progress_ctx;
	volatile sig_atomic_t *stop; /* nonzero (a signal number): abort */
	/* Symlinks made whatever their target, absolute or out of the tree
	 * (a backup restored as it was: /etc/nginx/sites-enabled). Making
	 * one writes nothing through it, and an entry that would pass
	 * through a symlink is refused all the same. */
	int any_symlink;
};

/*
 * Extracts into o->dir. On failure the directory holds a partial tree that
 * the caller removes. A refused entry, a corrupt archive, a full disk or a
 * limit reached: code 1. Stopped by *stop: code 128 + *stop.
 */
int chom_extract(const struct chom_extract_opts *o,
		 struct chom_extract_stats *st, struct chom_err *e);

/*
 * Checks one entry name and writes its normal form to norm ("./a//b/" gives
 * "a/b"; "." or "./" gives ""). Returns 0, or -1 with a reason in *why.
 */
int chom_extract_check_name(const char *name, char *norm, size_t size,
			    const char **why);

/*
 * Whether a symlink at normal path `path` with target `target` stays inside
 * the tree: 0 yes, -1 with a reason in *why.
 */
int chom_extract_check_symlink(const char *path, const char *target,
			       const char **why);

#endif
