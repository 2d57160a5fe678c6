/*
 * store.c - the durable event log on SQLite: connections, schema, ids.
 *
 * Owns the database file. The schema is versioned with PRAGMA user_version
 * and only ever migrated forward, one transaction per step. The writer runs
 * WAL with synchronous=FULL, so a COMMIT that returned survives power loss;
 * readers use their own connections and never block it.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>

#include "hr/log.h"
#include "hr/timefmt.h"
#include "store_int.h"

/* Forward-only migrations: entry i takes user_version i to i + 1. */
static const char *const migrations[] = {
	/* 1: events, sessions, rejections */
	"CREATE TABLE sessions ("
	"  id INTEGER PRIMARY KEY,"
	"  scope TEXT NOT NULL,"
	"  key TEXT NOT NULL,"
	"  provider TEXT NOT NULL,"
	"  status INTEGER NOT NULL," /* enum hr_session_status */
	"  first_seen INTEGER NOT NULL,"
	"  last_seen INTEGER NOT NULL,"
	"  event_count INTEGER NOT NULL,"
	"  duration REAL,"
	"  shutdown_reason TEXT,"
	"  exit_reason TEXT,"
	"  error_type TEXT,"
	"  overall_score REAL,"
	"  UNIQUE (scope, key));"
	"CREATE INDEX sessions_key ON sessions (key);"
	"CREATE INDEX sessions_provider ON sessions (provider, id);"
	"CREATE INDEX sessions_status ON sessions (status, id);"
	"CREATE INDEX sessions_last_seen ON sessions (last_seen);"
	"CREATE TABLE events ("
	"  seq INTEGER PRIMARY KEY AUTOINCREMENT," /* never reused: cursors, stream ids */
	"  id TEXT NOT NULL UNIQUE,"
	"  received_at INTEGER NOT NULL," /* microseconds since the epoch, UTC */
	"  source TEXT NOT NULL,"
	"  provider TEXT NOT NULL,"
	"  kind TEXT NOT NULL,"
	"  event_type TEXT,"
	"  subtype TEXT,"
	"  scope TEXT,"
	"  session_key TEXT,"
	"  session_id INTEGER REFERENCES sessions (id),"
	"  occurred_at INTEGER,"
	"  occurred_raw TEXT,"
	"  remote_addr TEXT,"
	"  headers TEXT NOT NULL,"
	"  body BLOB NOT NULL);"
	"CREATE INDEX events_source ON events (source, seq);"
	"CREATE INDEX events_provider ON events (provider, seq);"
	"CREATE INDEX events_kind ON events (kind, seq);"
	"CREATE INDEX events_event_type ON events (event_type, seq);"
	"CREATE INDEX events_session_key ON events (session_key, seq);"
	"CREATE INDEX events_session_id ON events (session_id, occurred_at, seq);"
	"CREATE TABLE rejections ("
	"  seq INTEGER PRIMARY KEY,"
	"  id TEXT NOT NULL UNIQUE,"
	"  received_at INTEGER NOT NULL,"
	"  source TEXT NOT NULL,"
	"  remote_addr TEXT,"
	"  kind TEXT,"
	"  http_status INTEGER NOT NULL,"
	"  problem TEXT NOT NULL,"
	"  headers TEXT NOT NULL,"
	"  body BLOB NOT NULL);"
	"CREATE INDEX rejections_source ON rejections (source, seq);"
	"CREATE INDEX rejections_received_at ON rejections (received_at);",

	/* 2: the transactional outbox: deliveries, their attempts, destination state */
	"CREATE TABLE deliveries ("
	"  id INTEGER PRIMARY KEY,"
	"  event_seq INTEGER NOT NULL REFERENCES events (seq),"
	"  destination TEXT NOT NULL,"
	"  order_key TEXT,"          /* scope:key for ordered destinations, else NULL */
	"  status INTEGER NOT NULL," /* enum hr_delivery_status */
	"  attempts INTEGER NOT NULL DEFAULT 0,"
	"  created_at INTEGER NOT NULL,"
	"  updated_at INTEGER NOT NULL,"
	"  next_attempt_at INTEGER NOT NULL,"
	"  locked_until INTEGER,"
	"  last_status INTEGER,"
	"  last_error TEXT);"
	"CREATE INDEX deliveries_due ON deliveries (destination, next_attempt_at) WHERE status = 0;"
	"CREATE INDEX deliveries_order ON deliveries (destination, order_key, id) WHERE status = 0;"
	"CREATE INDEX deliveries_event ON deliveries (event_seq);"
	"CREATE INDEX deliveries_dest_status ON deliveries (destination, status, id);"
	"CREATE INDEX deliveries_status ON deliveries (status, id);"
	"CREATE INDEX deliveries_created ON deliveries (created_at);"
	"CREATE TABLE attempts ("
	"  id INTEGER PRIMARY KEY,"
	"  delivery_id INTEGER NOT NULL REFERENCES deliveries (id),"
	"  number INTEGER NOT NULL,"
	"  started_at INTEGER NOT NULL,"
	"  duration_us INTEGER NOT NULL,"
	"  http_status INTEGER,"
	"  error TEXT,"
	"  response BLOB);"
	"CREATE INDEX attempts_delivery ON attempts (delivery_id, number);"
	"CREATE TABLE destinations ("
	"  name TEXT PRIMARY KEY,"
	"  disabled INTEGER NOT NULL DEFAULT 0,"
	"  disabled_reason TEXT,"
	"  disabled_at INTEGER);",

	/* 3: deduplication keys, kept for the source's dedup_window */
	"CREATE TABLE dedup ("
	"  source TEXT NOT NULL,"
	"  key TEXT NOT NULL,"
	"  event_id TEXT NOT NULL,"
	"  expires_at INTEGER NOT NULL,"
	"  PRIMARY KEY (source, key)) WITHOUT ROWID;"
	"CREATE INDEX dedup_expires ON dedup (expires_at);",

	/* 4: the data lifecycle (store_retention.c): a pruned payload is an empty body
	 * with pruned_at set; the indexes find each source's oldest events, those
	 * still whole and all of them, without scanning the ones already handled. */
	"ALTER TABLE events ADD COLUMN pruned_at INTEGER;"
	"CREATE INDEX events_unpruned ON events (source, received_at) WHERE pruned_at IS NULL;"
	"CREATE INDEX events_source_age ON events (source, received_at);",

	/* 5: nothing a provider sends is thrown away (issue 10). Events keep the
	 * callback URL's query parameters (auth token removed), a JSON object, and
	 * event_query holds them again one row per value so that a filter on one
	 * (GET /v1/events?query.user_id=42) is an index probe, not a JSON scan.
	 * An event made from an accepted rejection keeps its validation problems.
	 * A rejection keeps its query too, and the event its acceptance made. */
	"ALTER TABLE events ADD COLUMN query TEXT;"
	"ALTER TABLE events ADD COLUMN problems TEXT;"
	"CREATE TABLE event_query ("
	"  name TEXT NOT NULL,"
	"  value TEXT NOT NULL,"
	"  event_seq INTEGER NOT NULL REFERENCES events (seq),"
	"  PRIMARY KEY (name, value, event_seq)) WITHOUT ROWID;"
	"CREATE INDEX event_query_event ON event_query (event_seq);"
	"ALTER TABLE rejections ADD COLUMN query TEXT;"
	"ALTER TABLE rejections ADD COLUMN accepted_event TEXT;",

	/* 6: one room, one timeline (issue 16, docs/api.md "Rooms"). An event
	 * keeps its own session and may link to a Daily room (`room`); `meeting`
	 * is the meeting of a reused room it names, `meeting_at` a time inside
	 * that meeting, `recording` the recording it is about, and `facts` the
	 * few fields a room's view shows (a participant's name...). Room-scoped
	 * events stored before are their room's already. */
	"ALTER TABLE events ADD COLUMN room TEXT;"
	"ALTER TABLE events ADD COLUMN meeting TEXT;"
	"ALTER TABLE events ADD COLUMN meeting_at INTEGER;"
	"ALTER TABLE events ADD COLUMN recording TEXT;"
	"ALTER TABLE events ADD COLUMN facts TEXT;"
	"UPDATE events SET room = session_key WHERE scope = 'room';"
	"CREATE INDEX events_room ON events (room, seq) WHERE room IS NOT NULL;"
	"CREATE INDEX events_meeting ON events (meeting) WHERE meeting IS NOT NULL;"
	"CREATE INDEX events_recording ON events (recording) WHERE recording IS NOT NULL;",
};

static const char *const delivery_status_names[] = {
	[HR_DLV_PENDING] = "pending",
	[HR_DLV_SUCCEEDED] = "succeeded",
	[HR_DLV_FAILED] = "failed",
	[HR_DLV_DEAD] = "dead",
};

const char *
hr_delivery_status_name(enum hr_delivery_status st)
{
	return (size_t)st < HR_ARRAY_LEN(delivery_status_names) ? delivery_status_names[st] : "?";
}

int
hr_delivery_status_from_name(const char *name)
{
	for (size_t i = 0; i < HR_ARRAY_LEN(delivery_status_names); i++)
		if (strcmp(name, delivery_status_names[i]) == 0)
			return (int)i;
	return -1;
}

int
hr_store_schema_version(void)
{
	return (int)HR_ARRAY_LEN(migrations);
}

int
hr_store_db_error(sqlite3 *db, struct hr_error *err, const char *what)
{
	return hr_error_set(
	    err, HR_EDB, what, "%s: %s", what, db ? sqlite3_errmsg(db) : "no handle");
}

static int
exec(sqlite3 *db, const char *sql, struct hr_error *err)
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
static void
sqlite_setup(void)
{
	(void)sqlite3_config(SQLITE_CONFIG_MULTITHREAD);
	(void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

static int
open_connection(const char *path, bool writer, sqlite3 **out, struct hr_error *err)
{
	/* One connection is used by one thread at a time: no SQLite mutexes needed. */
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
	sqlite3 *db = NULL;
	int rc;

	*out = NULL;
	if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK) {
		rc = hr_store_db_error(db, err, path);
		sqlite3_close(db);
		return rc;
	}
	sqlite3_busy_timeout(db, 5000);
	if (writer) /* more and larger lookaside slots: fewer mallocs per row */
		(void)sqlite3_db_config(db, SQLITE_DBCONFIG_LOOKASIDE, NULL, 1200, 1000);
	rc = exec(db,
	    writer
	        ? "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; "
	          "PRAGMA cache_size=-65536; PRAGMA mmap_size=1073741824; PRAGMA temp_store=MEMORY;"
	        : "PRAGMA query_only=1;",
	    err);
	if (rc != HR_OK) {
		sqlite3_close(db);
		return rc;
	}
	*out = db;
	return HR_OK;
}

int
hr_store_connect(const char *path, bool writer, sqlite3 **out, struct hr_error *err)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, sqlite_setup);
	return open_connection(path, writer, out, err);
}

static int
user_version(sqlite3 *db, int *out, struct hr_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc = HR_EDB;

	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW) {
		*out = sqlite3_column_int(st, 0);
		rc = HR_OK;
	} else {
		hr_store_db_error(db, err, "user_version");
	}
	sqlite3_finalize(st);
	return rc;
}

static int
migrate(sqlite3 *db, struct hr_error *err)
{
	char sql[64];
	int version, rc;

	if ((rc = user_version(db, &version, err)) != HR_OK)
		return rc;
	if (version > hr_store_schema_version())
		return hr_error_set(err, HR_EDB, "user_version",
		    "database schema %d is newer than this hookrelay (%d): upgrade hookrelay",
		    version, hr_store_schema_version());
	/* A new database gives freed pages back to the file system (store_retention.c).
	 * The header WAL mode already wrote says otherwise; an empty VACUUM rewrites it. */
	if (version == 0 &&
	    (rc = exec(db, "PRAGMA auto_vacuum=INCREMENTAL; VACUUM;", err)) != HR_OK)
		return rc;
	for (; version < hr_store_schema_version(); version++) {
		if ((rc = exec(db, "BEGIN IMMEDIATE", err)) != HR_OK)
			return rc;
		snprintf(sql, sizeof(sql), "PRAGMA user_version=%d", version + 1);
		if ((rc = exec(db, migrations[version], err)) != HR_OK ||
		    (rc = exec(db, sql, err)) != HR_OK || (rc = exec(db, "COMMIT", err)) != HR_OK) {
			(void)exec(db, "ROLLBACK", NULL);
			return rc;
		}
		log_info("store: migrated schema to version %d", version + 1);
	}
	return HR_OK;
}

/* mkdir -p of the database's directory, so `var/` need not exist. */
static int
make_parent_dirs(const char *path, struct hr_error *err)
{
	char buf[4096];
	char *dir;

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return hr_error_set(err, HR_EINVAL, "path", "database path too long");
	dir = dirname(buf);
	for (char *p = dir + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0750) != 0 && errno != EEXIST)
			return hr_error_set(err, HR_EDB, dir, "mkdir %s: %s", dir, strerror(errno));
		*p = '/';
	}
	if (mkdir(dir, 0750) != 0 && errno != EEXIST)
		return hr_error_set(err, HR_EDB, dir, "mkdir %s: %s", dir, strerror(errno));
	return HR_OK;
}

static int
open_readers(struct hr_store *s, struct hr_error *err)
{
	unsigned n = s->opts.readers ? s->opts.readers : 4;
	int rc;

	s->readers = calloc(n, sizeof(*s->readers));
	s->free_readers = calloc(n, sizeof(*s->free_readers));
	if (s->readers == NULL || s->free_readers == NULL)
		return HR_ENOMEM;
	for (unsigned i = 0; i < n; i++) {
		if ((rc = hr_store_connect(s->path, false, &s->readers[i], err)) != HR_OK)
			return rc;
		s->free_readers[s->nfree++] = s->readers[i];
	}
	s->opts.readers = n;
	return HR_OK;
}

/*
 * Leases name the forwarder that took a delivery. One daemon owns a database
 * (the instance lock), so at start every lease belongs to a process that is
 * gone, and all of them are expired at once.
 */
static int
release_leases(sqlite3 *db, struct hr_error *err)
{
	return exec(
	    db, "UPDATE deliveries SET locked_until = NULL WHERE locked_until IS NOT NULL", err);
}

/*
 * One daemon per database: a second one would double-deliver. The lock is on the
 * database file itself, so a second path to it (a symlink, a hard link) meets it.
 * flock() locks do not interact with SQLite's fcntl() locks. The descriptor stays
 * open until every SQLite connection is closed: closing any descriptor of the file
 * drops the process's fcntl() locks, SQLite's included.
 */
static int
lock_instance(struct hr_store *s, struct hr_error *err)
{
	struct stat st;

	s->lock_fd = open(s->path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (s->lock_fd < 0)
		return hr_error_set(err, HR_EDB, s->path, "%s: %s", s->path, strerror(errno));
	if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0)
		return hr_error_set(err, HR_EBUSY, s->path,
		    "%s is in use by another hookrelay (the database file is locked)", s->path);
	if (fstat(s->lock_fd, &st) != 0)
		return hr_error_set(err, HR_EDB, s->path, "%s: %s", s->path, strerror(errno));
	s->db_dev = st.st_dev;
	s->db_ino = st.st_ino;
	return HR_OK;
}

/* The -wal file, once the writer has it (WAL mode, after the first write). */
static int
note_wal(struct hr_store *s, struct hr_error *err)
{
	const char *wal = sqlite3_filename_wal(sqlite3_db_filename(s->wdb, "main"));
	struct stat st;

	if (wal == NULL || (s->wal_path = strdup(wal)) == NULL)
		return hr_error_set(err, HR_ENOMEM, "wal", "out of memory");
	if (stat(s->wal_path, &st) == 0) {
		s->wal_dev = st.st_dev;
		s->wal_ino = st.st_ino;
	}
	return HR_OK;
}

static bool
same_file(const char *path, dev_t dev, ino_t ino)
{
	struct stat st;

	return stat(path, &st) == 0 && st.st_dev == dev && st.st_ino == ino;
}

bool
hr_store_file_is_ours(struct hr_store *s)
{
	struct stat st;
	const char *what = NULL;

	/* Deleted under every name (the descriptor's link count), or another file at
	 * the path: what is written now would not be there after a restart. */
	if (fstat(s->lock_fd, &st) != 0 || st.st_nlink == 0 ||
	    !same_file(s->path, s->db_dev, s->db_ino))
		what = s->path;
	else if (s->wal_ino != 0 && !same_file(s->wal_path, s->wal_dev, s->wal_ino))
		what = s->wal_path;
	if (what == NULL)
		return true;
	hr_store_set_unhealthy(s, HR_DB_GONE,
	    what == s->path ? "the database file was deleted or replaced while open: writes "
	                      "fail until a restart"
	                    : "the database's -wal file was deleted or replaced while open: "
	                      "writes fail until a restart");
	return false;
}

void
hr_store_set_unhealthy(struct hr_store *s, enum hr_db_health state, const char *detail)
{
	bool first;

	pthread_mutex_lock(&s->mu);
	first = s->health.state == HR_DB_OK;
	if (first) {
		s->health.state = state;
		snprintf(s->health.detail, sizeof(s->health.detail), "%s", detail);
	}
	pthread_mutex_unlock(&s->mu);
	if (first) /* the path goes to the log only: /healthz answers anyone */
		log_errx("store: %s: %s", s->path, detail);
}

void
hr_store_note_failure(struct hr_store *s, sqlite3 *db)
{
	char detail[sizeof(s->health.detail)];
	int code = sqlite3_errcode(db) & 0xff;

	if (code != SQLITE_CORRUPT && code != SQLITE_NOTADB)
		return;
	snprintf(detail, sizeof(detail),
	    "the database file is damaged (%.80s): restore it from a backup", sqlite3_errmsg(db));
	hr_store_set_unhealthy(s, HR_DB_CORRUPT, detail);
}

static const char *const health_names[] = { "ok", "gone", "corrupt" };

const char *
hr_db_health_name(enum hr_db_health h)
{
	return health_names[h];
}

void
hr_store_health(struct hr_store *s, struct hr_store_health *out)
{
	pthread_mutex_lock(&s->mu);
	*out = s->health;
	pthread_mutex_unlock(&s->mu);
}

int
hr_store_open(const struct hr_store_opts *opts, struct hr_store **out, struct hr_error *err)
{
	struct hr_store *s = NULL;
	int rc = HR_ENOMEM;

	*out = NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		goto out;
	s->opts = *opts;
	if (s->opts.batch_max == 0)
		s->opts.batch_max = 256;
	if (s->opts.queue_max == 0)
		s->opts.queue_max = 8192;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	pthread_mutex_init(&s->rmu, NULL);
	pthread_cond_init(&s->rcv, NULL);
	if ((s->path = strdup(opts->path)) == NULL)
		goto out;
	s->lock_fd = -1;
	if ((rc = make_parent_dirs(s->path, err)) != HR_OK ||
	    (rc = lock_instance(s, err)) != HR_OK ||
	    (rc = hr_store_connect(s->path, true, &s->wdb, err)) != HR_OK ||
	    (rc = migrate(s->wdb, err)) != HR_OK || (rc = release_leases(s->wdb, err)) != HR_OK ||
	    (rc = note_wal(s, err)) != HR_OK || (rc = open_readers(s, err)) != HR_OK ||
	    (rc = hr_store_writer_start(s, err)) != HR_OK)
		goto out;
	*out = s;
	s = NULL;
out:
	hr_store_close(s);
	return rc;
}

void
hr_store_close(struct hr_store *s)
{
	if (s == NULL)
		return;
	hr_store_retention_stop(s); /* its pass is a writer job: before the writer stops */
	hr_store_writer_stop(s);
	for (unsigned i = 0; s->readers != NULL && i < s->opts.readers; i++)
		sqlite3_close(s->readers[i]);
	free(s->readers);
	free(s->free_readers);
	sqlite3_close(s->wdb);
	if (s->lock_fd >= 0)
		close(s->lock_fd); /* releases the instance lock; after every connection */
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->rmu);
	pthread_cond_destroy(&s->rcv);
	free(s->wal_path);
	free(s->path);
	free(s);
}

sqlite3 *
hr_store_reader_get(struct hr_store *s)
{
	sqlite3 *db;

	pthread_mutex_lock(&s->rmu);
	while (s->nfree == 0)
		pthread_cond_wait(&s->rcv, &s->rmu);
	db = s->free_readers[--s->nfree];
	pthread_mutex_unlock(&s->rmu);
	return db;
}

void
hr_store_reader_put(struct hr_store *s, sqlite3 *db)
{
	pthread_mutex_lock(&s->rmu);
	s->free_readers[s->nfree++] = db;
	pthread_cond_signal(&s->rcv);
	pthread_mutex_unlock(&s->rmu);
}

int
hr_store_ping(struct hr_store *s)
{
	sqlite3 *db = hr_store_reader_get(s);
	sqlite3_stmt *st = NULL;
	int rc = HR_EDB;

	if (sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master", -1, &st, NULL) ==
	        SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		rc = HR_OK;
	else
		hr_store_note_failure(s, db);
	sqlite3_finalize(st);
	hr_store_reader_put(s, db);
	return rc;
}

void
hr_store_set_commit_hook(struct hr_store *s, void (*fn)(void *), void *arg)
{
	pthread_mutex_lock(&s->mu);
	s->commit_hook = fn;
	s->commit_hook_arg = arg;
	pthread_mutex_unlock(&s->mu);
}

void
hr_store_stats(struct hr_store *s, struct hr_store_stats *out)
{
	pthread_mutex_lock(&s->mu);
	*out = s->stats;
	out->queued = s->queued;
	pthread_mutex_unlock(&s->mu);
}

void
hr_store_new_id(const char *prefix, char *buf, size_t len)
{
	static const char b32[] = "0123456789abcdefghjkmnpqrstvwxyz"; /* Crockford, lower case */
	unsigned char raw[16];
	uint64_t ms = (uint64_t)(hr_time_now_us() / 1000);
	char out[27];
	unsigned acc = 0, bits = 0;
	size_t n = 0;

	for (int i = 0; i < 6; i++)
		raw[i] = (unsigned char)(ms >> (8 * (5 - i)));
	if (RAND_bytes(raw + 6, 10) != 1) {
		/* Unreachable on Linux with getrandom(); never hand out a guessable id. */
		fatalx(70, "RAND_bytes failed");
	}
	/* 128 bits -> 26 base32 digits, most significant first (the top digit carries 3 bits). */
	acc = raw[0] >> 5;
	out[n++] = b32[acc];
	acc = raw[0] & 0x1f;
	bits = 5;
	for (int i = 1; i < 16; i++) {
		acc = (acc << 8) | raw[i];
		bits += 8;
		while (bits >= 5) {
			out[n++] = b32[(acc >> (bits - 5)) & 0x1f];
			bits -= 5;
		}
	}
	out[n] = '\0';
	snprintf(buf, len, "%s_%s", prefix, out);
}

int
hr_store_backup(const char *db_path, const char *dest, struct hr_error *err)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int rc = HR_EDB;

	if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		rc = hr_store_db_error(db, err, db_path);
		goto out;
	}
	sqlite3_busy_timeout(db, 10000);
	if (sqlite3_prepare_v2(db, "VACUUM INTO ?1", -1, &st, NULL) != SQLITE_OK) {
		rc = hr_store_db_error(db, err, "backup");
		goto out;
	}
	sqlite3_bind_text(st, 1, dest, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		rc = hr_store_db_error(db, err, dest);
		goto out;
	}
	rc = HR_OK;
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}
