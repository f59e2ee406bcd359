/*
 * Restoring a backup point's parts: each one read from its store, checked
 * against the manifest (size, SHA-256), decrypted (age authenticates every
 * 64 KiB chunk), decompressed and counted, and handed on only once the
 * whole part has passed every check.
 */
#ifndef CHOM_RESTORE_H
#define CHOM_RESTORE_H

#include <signal.h>

#include "age.h"
#include "manifest.h"
#include "run.h"
#include "store.h"

enum chom_restore_mode {
	CHOM_RESTORE_SPOOL,  /* verify into a temporary file, then feed it */
	CHOM_RESTORE_TWICE,  /* verify in a first read, feed in a second */
	CHOM_RESTORE_STREAM, /* feed while verifying */
};

struct chom_restore_opts {
	struct chom_store *store;
	const char *host, *point;
	const struct chom_age_keys *identities; /* NULL: none given */
	/* Bytes of a part read so far, of total; name NULL when done. */
	void (*progress)(void *ctx, const char *name, unsigned long long done,
			 unsigned long long total);
	chom_run_line_fn on_message; /* notes: a spool too small */
	void *ctx;
	volatile sig_atomic_t *stop;
};

/*
 * Reads part p through every check into out, which it owns and closes
 * once the part has passed them all. A failed check gives code 1 and a
 * message naming the part and the reason: "db.sql.gz.age: SHA-256 does not
 * match the manifest", "...: age: payload chunk 3 failed authentication",
 * "...: decompression error: gzip: invalid stored block lengths". More
 * bytes than the manifest's size, or more plaintext than its plain size,
 * fail as soon as they come, before they reach out.
 */
int chom_restore_part(const struct chom_restore_opts *o,
		      const struct chom_manifest_part *p, struct chom_sink *out,
		      struct chom_err *e);

#define CHOM_RESTORE_SPOOL_DIR "/var/tmp"

/*
 * Restores part p into the stdin of `sh -c cmd`. In CHOM_RESTORE_SPOOL the
 * plaintext first goes to a spool that never has a name and vanishes with
 * the process: memory (memfd) when spool_dir is NULL and the plaintext is
 * at most a quarter of MemAvailable; else an O_TMPFILE of mode 0600 in
 * spool_dir (NULL: $TMPDIR, else CHOM_RESTORE_SPOOL_DIR). The command is
 * started only once the part has passed every check, with the spool as
 * its stdin. A directory without room for the plaintext and 64 MiB gives
 * CHOM_RESTORE_TWICE instead, told to on_message. In CHOM_RESTORE_STREAM a
 * failed check comes after the command has had part of the data. The
 * command's status other than 0 fails (code 1); what names it in messages
 * ("--db-cmd").
 */
int chom_restore_to_cmd(const struct chom_restore_opts *o,
			const struct chom_manifest_part *p, const char *cmd,
			const char *what, enum chom_restore_mode mode,
			const char *spool_dir, struct chom_err *e);

/*
 * Extracts part p (a tar) into dir, which must be empty or missing (code 2
 * otherwise), with chom-stage's safety rules but for symlinks, made as they
 * were whatever their target (see chom_extract_opts). The tree is built in
 * dir/.chom-restore-PID and moved into dir only once the part has passed
 * every check: on failure dir is left as it was. A missing dir is made
 * with its missing parents, and on failure exactly those are removed
 * again, deepest first.
 */
int chom_restore_tree(const struct chom_restore_opts *o,
		      const struct chom_manifest_part *p, const char *dir,
		      unsigned long long *entries, struct chom_err *e);

#endif
