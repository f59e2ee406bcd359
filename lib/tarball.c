#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "exitcode.h"
#include "tarball.h"

struct out {
	struct chom_sink *sink;
	struct chom_err *e;
	int failed;
};

static la_ssize_t
write_cb(struct archive *a, void *client, const void *buf, size_t len)
{
	struct out *o = client;

	if (chom_sink_write(o->sink, buf, len, o->e) < 0) {
		o->failed = 1;
		archive_set_error(a, EIO, "%s", o->e->msg);
		return -1;
	}
	return (la_ssize_t)len;
}

static void
warn(chom_run_line_fn fn, void *ctx, const char *path, const char *why)
{
	char line[1200];

	snprintf(line, sizeof(line), "%s: %s", path, why);
	if (fn)
		fn(ctx, line);
}

/*
 * One file's data, from the disk reader into the tar writer: -1 when the
 * writer failed, -2 when the file could not be read, -3 when it grew while
 * read (a log being written: archived at the size it had).
 */
static int
copy(struct archive *disk, struct archive *w)
{
	char buf[1 << 16];
	la_ssize_t n, put;

	while ((n = archive_read_data(disk, buf, sizeof(buf))) > 0) {
		put = archive_write_data(w, buf, (size_t)n);
		if (put < 0)
			return -1;
		if (put < n)
			return -3;
	}
	return n < 0 ? -2 : 0;
}

int
chom_tarball(const char *const *paths, size_t n, struct chom_sink *out,
	     chom_run_line_fn on_warning, void *ctx,
	     unsigned long long *entries, volatile sig_atomic_t *stop,
	     struct chom_err *e)
{
	struct out o = { out, e, 0 };
	struct archive *disk = archive_read_disk_new();
	struct archive *w = archive_write_new();
	struct archive_entry *ent = archive_entry_new();
	size_t i;
	int rc = -1;

	*entries = 0;
	if (!disk || !w || !ent) {
		chom_err_set(e, CHOM_EXIT_FAIL, "out of memory");
		goto out;
	}
	archive_read_disk_set_standard_lookup(disk);
	archive_read_disk_set_symlink_physical(disk);
	archive_write_set_format_pax_restricted(w);
	archive_write_set_bytes_in_last_block(w, 1);
	if (archive_write_open(w, &o, NULL, write_cb, NULL) != ARCHIVE_OK) {
		chom_err_set(e, CHOM_EXIT_FAIL, "tar: %s",
			     archive_error_string(w));
		goto out;
	}
	for (i = 0; i < n; i++) {
		struct stat st;

		/* A path asked for and missing is a mistake to stop on; what
		 * vanishes inside it while archived is only told. */
		if (lstat(paths[i], &st) < 0) {
			chom_err_sys(e, CHOM_EXIT_FAIL, "%s", paths[i]);
			goto out;
		}
		if (archive_read_disk_open(disk, paths[i]) != ARCHIVE_OK) {
			chom_err_set(e, CHOM_EXIT_FAIL, "%s: %s", paths[i],
				     archive_error_string(disk));
			goto out;
		}
		for (;;) {
			const char *name;
			int r;

			if (stop && *stop) {
				chom_err_set(e, 128 + *stop, "interrupted");
				goto out;
			}
			archive_entry_clear(ent);
			r = archive_read_next_header2(disk, ent);
			if (r == ARCHIVE_EOF)
				break;
			name = archive_entry_pathname(ent);
			if (r < ARCHIVE_OK) {
				warn(on_warning, ctx, name ? name : paths[i],
				     archive_error_string(disk));
				if (r < ARCHIVE_WARN)
					break;
				continue;
			}
			archive_read_disk_descend(disk);
			while (name && *name == '/')
				name++;
			if (!name || !*name)
				continue;
			archive_entry_copy_pathname(ent, name);
			if (archive_write_header(w, ent) < ARCHIVE_WARN)
				goto wfail;
			if (archive_entry_filetype(ent) == AE_IFREG &&
			    archive_entry_size(ent) > 0) {
				r = copy(disk, w);
				if (r == -1)
					goto wfail;
				if (r == -2)
					warn(on_warning, ctx, name,
					     archive_error_string(disk));
				if (r == -3)
					warn(on_warning, ctx, name,
					     "grew while read; archived at its "
					     "size before");
			}
			(*entries)++;
		}
		archive_read_close(disk);
	}
	if (archive_write_close(w) != ARCHIVE_OK)
		goto wfail;
	rc = 0;
	goto out;
wfail:
	if (!o.failed)
		chom_err_set(e, CHOM_EXIT_FAIL, "tar: %s",
			     archive_error_string(w));
out:
	archive_entry_free(ent);
	archive_read_free(disk);
	archive_write_free(w);
	return rc;
}
