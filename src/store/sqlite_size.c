/*
 * sqlite_size.c - the SQLite engine's size: free pages given back to the
 * file system after a pruning pass (sqlite_prune.c), and the figures /metrics
 * and /readyz report (pages in use and free, the WAL file, the free space of
 * the file system the database is on).
 */
#include <limits.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "hr/log.h"
#include "sqlite_int.h"

int
hr_sqlite_give_back(struct hr_store_backend *b, int pages, uint64_t *given, bool *left)
{
	int64_t mode, before, after;
	sqlite3_stmt *st = NULL;
	char sql[64];
	int rc;

	if ((rc = hr_sqlite_query_int(b->wdb, "PRAGMA auto_vacuum", NULL, 0, &mode)) != HR_OK)
		return rc;
	if (mode != 2) {
		if (!b->warned_vacuum)
			log_warnx(
			    "store: %s was created without auto_vacuum=INCREMENTAL: pruned space"
			    " is reused but the file does not shrink (see docs/operations.md)",
			    b->path);
		b->warned_vacuum = true;
		return HR_OK;
	}
	if ((rc = hr_sqlite_query_int(b->wdb, "PRAGMA freelist_count", NULL, 0, &before)) !=
	        HR_OK ||
	    before == 0)
		return rc;
	snprintf(sql, sizeof(sql), "PRAGMA incremental_vacuum(%d)", pages);
	if (sqlite3_prepare_v2(b->wdb, sql, -1, &st, NULL) != SQLITE_OK)
		return HR_EDB;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		;
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		log_warnx("store: %s: %s", sql, sqlite3_errmsg(b->wdb));
		return HR_EDB;
	}
	if ((rc = hr_sqlite_query_int(b->wdb, "PRAGMA freelist_count", NULL, 0, &after)) != HR_OK)
		return rc;
	*given = (uint64_t)(before - after);
	*left = after > 0;
	return HR_OK;
}

int
hr_sqlite_size(struct hr_store_backend *b, struct hr_store_size *out)
{
	sqlite3 *db = hr_sqlite_reader_get(b);
	int64_t pages, free_pages, page_size, mode;
	char wal[4200];
	struct stat sb;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = hr_sqlite_query_int(db, "PRAGMA page_count", NULL, 0, &pages);
	if (rc == HR_OK)
		rc = hr_sqlite_query_int(db, "PRAGMA freelist_count", NULL, 0, &free_pages);
	if (rc == HR_OK)
		rc = hr_sqlite_query_int(db, "PRAGMA page_size", NULL, 0, &page_size);
	if (rc == HR_OK)
		rc = hr_sqlite_query_int(db, "PRAGMA auto_vacuum", NULL, 0, &mode);
	hr_sqlite_reader_put(b, db);
	if (rc != HR_OK)
		return rc;
	out->file_bytes = pages * page_size;
	out->free_bytes = free_pages * page_size;
	out->incremental = mode == 2;
	out->size_hold_us = atomic_load(&b->hold_shown_us);
	snprintf(wal, sizeof(wal), "%s-wal", b->path);
	if (stat(wal, &sb) == 0)
		out->wal_bytes = (int64_t)sb.st_size;
	return HR_OK;
}

/*
 * The free space of the database's file system: asked of its directory, which
 * stays when the file goes (a review found a deleted database's "disk" check
 * failing and hookrelay_disk_free_bytes gone, on a disk with 79 GB free, with
 * a warning a probe). A failure is logged once until one succeeds.
 */
int
hr_sqlite_disk_free(struct hr_store_backend *b, uint64_t *out)
{
	static atomic_bool warned;
	struct statvfs vfs;
	char dir[PATH_MAX];
	const char *slash = strrchr(b->path, '/');

	*out = 0;
	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else
		snprintf(dir, sizeof(dir), "%.*s", slash == b->path ? 1 : (int)(slash - b->path),
		    b->path);
	if (statvfs(dir, &vfs) != 0) {
		if (!atomic_exchange(&warned, true))
			log_warn("store: statvfs %s", dir);
		return HR_EDB;
	}
	atomic_store(&warned, false);
	*out = (uint64_t)vfs.f_bavail * (uint64_t)vfs.f_frsize;
	return HR_OK;
}
