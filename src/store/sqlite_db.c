/*
 * sqlite_db.c - the SQLite engine's connections and the file's health.
 *
 * Owns the database file. The writer connection runs WAL with
 * synchronous=FULL, so a COMMIT that returned survives power loss; readers
 * use connections of their own from a pool and never block it. The file is
 * flock()ed (one daemon per database), and its identity is checked after
 * every batch: writing on into a file deleted or replaced under us would
 * acknowledge what a restart cannot find.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hr/log.h"
#include "sqlite_int.h"

int
hr_sqlite_error(sqlite3 *db, struct hr_error *err, const char *what)
{
	return hr_error_set(
	    err, HR_EDB, what, "%s: %s", what, db ? sqlite3_errmsg(db) : "no handle");
}

int
hr_sqlite_exec(sqlite3 *db, const char *sql, struct hr_error *err)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK)
		return HR_OK;
	hr_error_set(err, HR_EDB, "sql", "%s", msg ? msg : sqlite3_errmsg(db));
	sqlite3_free(msg);
	return HR_EDB;
}

/*
 * Every connection is used by one thread at a time (the writer's by the
 * writer, readers through the pool), so SQLite needs no mutexes of its own,
 * and no global memory statistics (whose lock every allocation takes).
 */
static bool walbuf_ok;

/*
 * The damage this thread's statements met since it took a reader: an API read
 * or the forwarder's that found a damaged page must mark the file corrupt as
 * the writer's do (a page of old events no write touches, else /healthz said
 * ok). SQLite's error log hears of every failed corruption check and aborted
 * statement, even when the read's cleanup (the COMMIT that ends its snapshot)
 * has since set the connection's error code back to OK.
 */
static _Thread_local int damage_seen;

static void note_damage(struct hr_store_backend *, int code);

static bool
is_damage(int code)
{
	return (code & 0xff) == SQLITE_CORRUPT || (code & 0xff) == SQLITE_NOTADB;
}

static void
error_log(void *arg, int code, const char *msg)
{
	(void)arg;
	(void)msg;
	if (is_damage(code)) /* a busy or locked read is no damage */
		damage_seen = code;
}

static void
sqlite_setup(void)
{
	(void)sqlite3_config(SQLITE_CONFIG_MULTITHREAD);
	(void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	(void)sqlite3_config(SQLITE_CONFIG_LOG, error_log, NULL);
	walbuf_ok = hr_sqlite_walbuf_register() == SQLITE_OK;
}

/* What the WAL file is cut back to once a checkpoint caught up (64 MiB). */
#define WAL_KEEP_BYTES 67108864

static int
open_connection(const char *path, bool writer, sqlite3 **out, struct hr_error *err)
{
	/* One connection is used by one thread at a time: no SQLite mutexes needed. */
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
	sqlite3 *db = NULL;
	int rc;

	*out = NULL;
	/* The writer's commits go to the WAL in one write each (sqlite_walbuf.c);
	 * without that VFS (never seen) it writes frame by frame, as readers do. */
	if (sqlite3_open_v2(path, &db, flags, writer && walbuf_ok ? HR_SQLITE_WALBUF_VFS : NULL) !=
	    SQLITE_OK) {
		rc = hr_sqlite_error(db, err, path);
		sqlite3_close(db);
		return rc;
	}
	sqlite3_busy_timeout(db, 5000);
	/* More and larger lookaside slots: fewer mallocs per row, where SQLite has
	 * lookaside at all (Debian's is built with SQLITE_OMIT_LOOKASIDE, and there
	 * this does nothing: docs/benchmarks.md). */
	if (writer)
		(void)sqlite3_db_config(db, SQLITE_DBCONFIG_LOOKASIDE, NULL, 1200, 1000);
	/* journal_size_limit: a WAL grown past it (a long read, a backup, kept the
	 * checkpoint from restarting it: 6.5 GB in 50 s under load) is cut back to
	 * it once the checkpoint caught up; SQLite keeps the file's size otherwise. */
	rc = hr_sqlite_exec(db,
	    writer ? "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; "
	             "PRAGMA mmap_size=1073741824; PRAGMA temp_store=MEMORY; "
	             "PRAGMA journal_size_limit=" HR_STRINGIFY(WAL_KEEP_BYTES) ";"
	           : "PRAGMA query_only=1;",
	    err);
	if (rc != HR_OK) {
		sqlite3_close(db);
		return rc;
	}
	*out = db;
	return HR_OK;
}

/* The writer's page cache ([storage] cache_size): what stays resident of the
 * database in hookrelay itself, as reads go through the memory map. */
int
hr_sqlite_set_cache(sqlite3 *db, size_t bytes, struct hr_error *err)
{
	char sql[64];

	snprintf(sql, sizeof(sql), "PRAGMA cache_size=-%zu;", (bytes ? bytes : 16u << 20) / 1024);
	return hr_sqlite_exec(db, sql, err);
}

int
hr_sqlite_connect(const char *path, bool writer, sqlite3 **out, struct hr_error *err)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, sqlite_setup);
	return open_connection(path, writer, out, err);
}

/* ---- the reader pool ---- */

int
hr_sqlite_readers_open(struct hr_store_backend *b, unsigned n, struct hr_error *err)
{
	int rc;

	b->readers = calloc(n, sizeof(*b->readers));
	b->free_readers = calloc(n, sizeof(*b->free_readers));
	b->kept = calloc(n, sizeof(*b->kept));
	if (b->readers == NULL || b->free_readers == NULL || b->kept == NULL)
		return HR_ENOMEM;
	for (; b->nreaders < n; b->nreaders++) {
		if ((rc = hr_sqlite_connect(b->path, false, &b->readers[b->nreaders], err)) !=
		    HR_OK)
			return rc;
		b->free_readers[b->nfree++] = b->readers[b->nreaders];
	}
	return HR_OK;
}

void
hr_sqlite_readers_close(struct hr_store_backend *b)
{
	for (unsigned i = 0; b->readers != NULL && i < b->nreaders; i++) {
		for (unsigned k = 0; b->kept != NULL && k < HR_SQLITE_KEPT; k++)
			sqlite3_finalize(b->kept[i][k]);
		sqlite3_close(b->readers[i]);
	}
	free(b->readers);
	free(b->free_readers);
	free(b->kept);
	b->readers = b->free_readers = NULL;
	b->kept = NULL;
	b->nreaders = b->nfree = 0;
}

sqlite3 *
hr_sqlite_reader_get(struct hr_store_backend *b)
{
	sqlite3 *db;

	pthread_mutex_lock(&b->rmu);
	while (b->nfree == 0)
		pthread_cond_wait(&b->rcv, &b->rmu);
	db = b->free_readers[--b->nfree];
	pthread_mutex_unlock(&b->rmu);
	damage_seen = 0;
	return db;
}

void
hr_sqlite_reader_put(struct hr_store_backend *b, sqlite3 *db)
{
	int seen = damage_seen;

	damage_seen = 0;
	if (seen != 0)
		note_damage(b, seen);
	else
		hr_sqlite_note_failure(b, db); /* one the error log was not told of */
	pthread_mutex_lock(&b->rmu);
	b->free_readers[b->nfree++] = db;
	pthread_cond_signal(&b->rcv);
	pthread_mutex_unlock(&b->rmu);
}

sqlite3_stmt *
hr_sqlite_kept(struct hr_store_backend *b, sqlite3 *db, enum hr_sqlite_kept which, const char *sql)
{
	sqlite3_stmt **slot = NULL;

	for (unsigned i = 0; i < b->nreaders && slot == NULL; i++)
		if (b->readers[i] == db) /* the caller holds db: its slots are its alone */
			slot = &b->kept[i][which];
	if (slot == NULL)
		return NULL;
	if (*slot == NULL &&
	    sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, slot, NULL) != SQLITE_OK) {
		sqlite3_finalize(*slot);
		*slot = NULL;
	}
	return *slot;
}

void
hr_sqlite_kept_done(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

int
hr_sqlite_query_int(sqlite3 *db, const char *sql, const char *text, int64_t def, int64_t *out)
{
	return hr_sqlite_query_int2(db, sql, text, NULL, def, out);
}

int
hr_sqlite_query_int2(
    sqlite3 *db, const char *sql, const char *text, const int64_t *num, int64_t def, int64_t *out)
{
	sqlite3_stmt *st = NULL;
	int rc = HR_EDB;

	*out = def;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		log_warnx("store: %s: %s", sql, sqlite3_errmsg(db));
		return HR_EDB;
	}
	if (text != NULL && sqlite3_bind_parameter_count(st) >= 1)
		sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
	if (num != NULL && sqlite3_bind_parameter_count(st) >= 2)
		sqlite3_bind_int64(st, 2, *num);
	switch (sqlite3_step(st)) {
	case SQLITE_ROW:
		if (sqlite3_column_type(st, 0) != SQLITE_NULL)
			*out = sqlite3_column_int64(st, 0);
		/* fallthrough */
	case SQLITE_DONE:
		rc = HR_OK;
		break;
	default:
		log_warnx("store: %s: %s", sql, sqlite3_errmsg(db));
	}
	sqlite3_finalize(st);
	return rc;
}

int
hr_sqlite_ping(struct hr_store_backend *b)
{
	sqlite3 *db = hr_sqlite_reader_get(b);
	sqlite3_stmt *st = NULL;
	int rc = HR_EDB;

	if (sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master", -1, &st, NULL) ==
	        SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		rc = HR_OK;
	else
		hr_sqlite_note_failure(b, db);
	sqlite3_finalize(st);
	hr_sqlite_reader_put(b, db);
	return rc;
}

/* ---- the file: one owner, and still the one opened ---- */

/*
 * One daemon per database: a second one would double-deliver. The lock is on the
 * database file itself, so a second path to it (a symlink, a hard link) meets it.
 * flock() locks do not interact with SQLite's fcntl() locks. The descriptor stays
 * open until every SQLite connection is closed: closing any descriptor of the file
 * drops the process's fcntl() locks, SQLite's included.
 */
int
hr_sqlite_lock(struct hr_store_backend *b, struct hr_error *err)
{
	struct stat st;

	b->lock_fd = open(b->path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (b->lock_fd < 0)
		return hr_error_set(err, HR_EDB, b->path, "%s: %s", b->path, strerror(errno));
	if (flock(b->lock_fd, LOCK_EX | LOCK_NB) != 0)
		return hr_error_set(err, HR_EBUSY, b->path,
		    "%s is in use by another hookrelay (the database file is locked)", b->path);
	if (fstat(b->lock_fd, &st) != 0)
		return hr_error_set(err, HR_EDB, b->path, "%s: %s", b->path, strerror(errno));
	b->db_dev = st.st_dev;
	b->db_ino = st.st_ino;
	return HR_OK;
}

int
hr_sqlite_note_wal(struct hr_store_backend *b, struct hr_error *err)
{
	const char *wal = sqlite3_filename_wal(sqlite3_db_filename(b->wdb, "main"));
	struct stat st;

	if (wal == NULL || (b->wal_path = strdup(wal)) == NULL)
		return hr_error_set(err, HR_ENOMEM, "wal", "out of memory");
	if (stat(b->wal_path, &st) == 0) {
		b->wal_dev = st.st_dev;
		b->wal_ino = st.st_ino;
	}
	return HR_OK;
}

/* Is another file at `path`, or none? Only a stat() that answers says so: one
 * that fails for another reason (a moment without search permission on the
 * directory, EIO) proves nothing, and taking it for "deleted" refused every
 * webhook until a restart though the file never changed (a review). */
static bool
another_file(const char *path, dev_t dev, ino_t ino)
{
	struct stat st;

	if (stat(path, &st) != 0)
		return errno == ENOENT || errno == ENOTDIR;
	return st.st_dev != dev || st.st_ino != ino;
}

bool
hr_sqlite_file_is_ours(struct hr_store_backend *b)
{
	struct stat st;
	const char *what = NULL;

	/* Deleted under every name (the descriptor's link count), or another file at
	 * the path: what is written now would not be there after a restart. */
	if ((fstat(b->lock_fd, &st) == 0 && st.st_nlink == 0) ||
	    another_file(b->path, b->db_dev, b->db_ino))
		what = b->path;
	else if (b->wal_ino != 0 && another_file(b->wal_path, b->wal_dev, b->wal_ino))
		what = b->wal_path;
	if (what == NULL)
		return true;
	hr_sqlite_set_unhealthy(b, HR_DB_GONE,
	    what == b->path ? "the database file was deleted or replaced while open: writes "
	                      "fail until a restart"
	                    : "the database's -wal file was deleted or replaced while open: "
	                      "writes fail until a restart");
	return false;
}

void
hr_sqlite_set_unhealthy(struct hr_store_backend *b, enum hr_db_health state, const char *detail)
{
	bool first;

	pthread_mutex_lock(&b->health_mu);
	first = b->health.state == HR_DB_OK;
	if (first) {
		b->health.state = state;
		snprintf(b->health.detail, sizeof(b->health.detail), "%s", detail);
	}
	pthread_mutex_unlock(&b->health_mu);
	if (first) /* the path goes to the log only: /healthz answers anyone */
		log_errx("store: %s: %s", b->path, detail);
}

static void
note_damage(struct hr_store_backend *b, int code)
{
	char detail[sizeof(b->health.detail)];

	snprintf(detail, sizeof(detail),
	    "the database file is damaged (%.80s): restore it from a backup",
	    sqlite3_errstr(code & 0xff));
	hr_sqlite_set_unhealthy(b, HR_DB_CORRUPT, detail);
}

void
hr_sqlite_note_failure(struct hr_store_backend *b, sqlite3 *db)
{
	if (is_damage(sqlite3_errcode(db)))
		note_damage(b, sqlite3_errcode(db));
}

void
hr_sqlite_health(struct hr_store_backend *b, struct hr_store_health *out)
{
	pthread_mutex_lock(&b->health_mu);
	*out = b->health;
	pthread_mutex_unlock(&b->health_mu);
}
