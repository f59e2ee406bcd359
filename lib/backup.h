/*
 * One backup point: each part (database dump, files, configuration, system
 * facts) made in one streaming pass, producer -> compress -> encrypt ->
 * hash -> every store at once, and manifest.json committed last.
 */
#ifndef CHOM_BACKUP_H
#define CHOM_BACKUP_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "age.h"
#include "run.h"
#include "sha256.h"
#include "store.h"

enum chom_compress {
	CHOM_COMPRESS_GZIP,
	CHOM_COMPRESS_ZSTD,
	CHOM_COMPRESS_NONE
};

#define CHOM_BACKUP_DB_CMD                                                     \
	"mysqldump --single-transaction --quick --routines --events "          \
	"--triggers --all-databases"

struct chom_backup_opts {
	struct chom_store **stores;
	size_t nstores;
	const char *host, *label;
	const char *db_cmd; /* NULL: no database part */
	const char *const *files;
	size_t nfiles;
	const char *const *config;
	size_t nconfig;
	bool sysinfo;
	enum chom_compress compress;
	int level, threads;
	const struct chom_age_keys *recipients; /* NULL: not encrypted */
	chom_run_line_fn on_message; /* dump stderr, unreadable files */
	/* Bytes of a part's plaintext so far, now and then; kind NULL when
	 * a part is done. */
	void (*progress)(void *ctx, const char *kind, unsigned long long bytes);
	void *ctx;
	volatile sig_atomic_t *stop;
};

#define CHOM_BACKUP_MAX_PARTS 4

struct chom_backup_part {
	char name[64];
	const char *kind; /* db, files, config, sysinfo */
	unsigned long long size, plain;
	char sha256[CHOM_SHA256_HEXLEN + 1];
	double seconds;
};

struct chom_backup_result {
	char point[CHOM_POINT_LEN + 1];
	struct chom_backup_part parts[CHOM_BACKUP_MAX_PARTS];
	size_t nparts;
	char *manifest; /* the JSON committed; freed by the caller */
	double seconds;
};

/* Code 1 when a part fails (nothing of the point is left), 3 when another
 * backup holds a store, 128+N when stopped by signal N. */
int chom_backup_run(const struct chom_backup_opts *o,
		    struct chom_backup_result *r, struct chom_err *e);

#endif
