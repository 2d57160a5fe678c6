/*
 * pg_migrate.c - `hookrelay migrate`: a SQLite database into PostgreSQL.
 *
 * The one file where both engines meet: it names SQLite as well as libpq,
 * being a tool that reads one engine's file and writes the other's
 * database. Every table is copied in key order, a range of keys per
 * transaction, each row with ON CONFLICT DO NOTHING and its own key, so a
 * copy that was stopped (^C, a lost connection) goes on where the target's
 * largest key is, and a second run copies nothing twice. Then the identity
 * sequences are moved past the copied keys, so the nodes' new rows never
 * collide with old ones. Last, both sides are counted, table by table, and
 * events and deliveries are hashed (SHA-256 over the same columns in the
 * same order on both): the copy is verified, not assumed. The SQLite file
 * is opened read-only, and refused while a daemon holds it.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "hr/log.h"
#include "hr/store_sqlite.h"
#include "pg_int.h"

#define RANGE 1000 /* keys per transaction */

/* A table, its key (an integer, or NULL: small, copied whole) and its columns in
 * both engines' order; `bytea` names the column that is binary (or NULL). */
struct table {
	const char *name, *key, *cols, *bytea;
	bool identity;       /* the key is an identity column: its sequence moves past the copy */
	const char *as_null; /* a column of `cols` copied as NULL, or NULL */
};

/* Parents before children (foreign keys). */
static const struct table tables[] = {
	{ "sessions", "id",
	    "id, scope, key, provider, status, first_seen, last_seen, event_count, duration,"
	    " shutdown_reason, exit_reason, error_type, overall_score, status_at, status_by",
	    NULL, true, NULL },
	{ "events", "seq",
	    "seq, id, received_at, source, provider, kind, event_type, subtype, scope, session_key,"
	    " session_id, occurred_at, occurred_raw, remote_addr, headers, body, pruned_at, query,"
	    " problems, room, meeting, meeting_at, recording, facts, recording_instance, "
	    "linked_room",
	    "body", true, NULL },
	{ "event_query", "event_seq", "name, value, event_seq", NULL, false, NULL },
	{ "rejections", "seq",
	    "seq, id, received_at, source, remote_addr, kind, http_status, problem, headers, body,"
	    " query, accepted_event, acknowledged",
	    "body", true, NULL },
	{ "deliveries", "id",
	    "id, event_seq, destination, order_key, status, attempts, created_at, updated_at,"
	    " next_attempt_at, locked_until, last_status, last_error",
	    /* A lease is a running node's: the SQLite one is stopped, and a lease without
	     * an owner would hold the delivery back until it ran out. */
	    NULL, true, "locked_until" },
	{ "attempts", "id",
	    "id, delivery_id, number, started_at, duration_us, http_status, error, response",
	    "response", true, NULL },
	{ "destinations", NULL, "name, disabled, disabled_reason, disabled_at", NULL, false, NULL },
	{ "dedup", NULL, "source, key, event_id, expires_at", NULL, false, NULL },
	{ "room_links", NULL, "kind, value, room", NULL, false, NULL },
};

/* What is hashed on both sides: the same columns, as text, and one binary. The
 * PostgreSQL side orders by the table's column: `seq` alone would be the text. */
struct digest {
	const char *table, *key, *sqlite_sql, *pg_sql;
};

static const struct digest digests[] = {
	{ "events", "seq",
	    "SELECT seq, id, received_at, source, kind, body FROM events ORDER BY seq",
	    "SELECT seq::text, id, received_at::text, source, kind, body FROM events"
	    " WHERE seq > $1::bigint ORDER BY events.seq LIMIT 1000" },
	{ "deliveries", "id",
	    "SELECT id, event_seq, destination, status, attempts FROM deliveries ORDER BY id",
	    "SELECT id::text, event_seq::text, destination, status::text, attempts::text"
	    " FROM deliveries WHERE id > $1::bigint ORDER BY deliveries.id LIMIT 1000" },
};

struct mig {
	/* Each table's INSERT, one buffer each: prepared statements are found by address. */
	char insert[HR_ARRAY_LEN(tables)][1024];
	sqlite3 *db;
	PGconn *pg;
	FILE *out;
	struct pg_prepared prep;
	struct hr_error *err;
};

static int
sqlite_fail(struct mig *m, const char *what)
{
	return hr_error_set(m->err, HR_EDB, what, "sqlite: %s: %s", what, sqlite3_errmsg(m->db));
}

static int
pg_run(struct mig *m, const char *sql)
{
	PGresult *r = pg_query(m->pg, sql, NULL, m->err);

	PQclear(r);
	return r != NULL ? HR_OK : HR_EDB;
}

/* An integer answer of PostgreSQL (`sql` with no parameter); -1 on NULL. */
static int
pg_int(struct mig *m, const char *sql, int64_t *out)
{
	PGresult *r = pg_query(m->pg, sql, NULL, m->err);

	if (r == NULL)
		return HR_EDB;
	*out = PQntuples(r) == 1 && !pgc_null(r, 0, 0) ? pgc_int(r, 0, 0) : -1;
	PQclear(r);
	return HR_OK;
}

static int
sqlite_int(struct mig *m, const char *sql, int64_t *out)
{
	sqlite3_stmt *st = NULL;
	int rc = HR_OK;

	if (sqlite3_prepare_v2(m->db, sql, -1, &st, NULL) != SQLITE_OK)
		return sqlite_fail(m, sql);
	if (sqlite3_step(st) == SQLITE_ROW)
		*out = sqlite3_column_type(st, 0) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 0);
	else
		rc = sqlite_fail(m, sql);
	sqlite3_finalize(st);
	return rc;
}

/* One SQLite row as the parameters of the table's INSERT. */
static void
row_params(sqlite3_stmt *st, const struct table *t, struct pg_params *p)
{
	p->n = 0;
	for (int i = 0; i < sqlite3_column_count(st); i++) {
		bool bytea = t->bytea != NULL && strcmp(sqlite3_column_name(st, i), t->bytea) == 0;

		switch (sqlite3_column_type(st, i)) {
		case SQLITE_NULL:
			pgp_null(p);
			break;
		case SQLITE_INTEGER:
			pgp_int(p, sqlite3_column_int64(st, i));
			break;
		case SQLITE_FLOAT:
			pgp_double(p, sqlite3_column_double(st, i));
			break;
		default:
			if (bytea)
				pgp_bytes(p, sqlite3_column_blob(st, i),
				    (size_t)sqlite3_column_bytes(st, i));
			else
				pgp_text(p, (const char *)sqlite3_column_text(st, i));
		}
	}
	/* Types from the target's columns, whatever SQLite's storage class of each value. */
	memset(p->type, 0, sizeof(p->type));
}

/* Copy the rows `select` gives (in one transaction); *n: rows read. */
static int
copy_rows(struct mig *m, const struct table *t, sqlite3_stmt *st, const char *insert, int64_t *n)
{
	struct pg_params p = { .n = 0 };
	int step, rc = pg_run(m, "BEGIN");

	*n = 0;
	while (rc == HR_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
		PGresult *r;

		row_params(st, t, &p);
		if ((r = pg_exec_prepared(&m->prep, m->pg, insert, &p)) == NULL)
			rc = hr_error_set(m->err, HR_EDB, t->name, "postgresql: %s: %.200s",
			    t->name, PQerrorMessage(m->pg));
		PQclear(r);
		(*n)++;
	}
	if (rc == HR_OK && step != SQLITE_DONE)
		rc = sqlite_fail(m, t->name);
	if (rc == HR_OK)
		rc = pg_run(m, "COMMIT");
	else
		PQclear(PQexec(m->pg, "ROLLBACK"));
	return rc;
}

/* The PostgreSQL key sequence goes past every key SQLite handed out, not only past
 * the rows copied: an event's seq is a stream id and a cursor that clients keep, and
 * retention may have emptied the table or taken its newest rows. SQLite's high-water
 * mark of an AUTOINCREMENT key is in sqlite_sequence, that of the other keys clients
 * page by (rejections' seq, sessions' id) in store_state as TABLE_KEY (schema 20);
 * the sequence never goes back. */
static int
move_sequence(struct mig *m, const struct table *t)
{
	char sql[512];
	int64_t high = 0;

	snprintf(sql, sizeof(sql),
	    "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = '%1$s'), 0),"
	    " coalesce((SELECT value FROM store_state WHERE name = '%1$s_%2$s'), 0),"
	    " coalesce((SELECT max(%2$s) FROM %1$s), 0))",
	    t->name, t->key);
	if (sqlite_int(m, sql, &high) != HR_OK)
		return HR_EDB;
	snprintf(sql, sizeof(sql),
	    "SELECT setval(pg_get_serial_sequence('%1$s', '%2$s'), high) FROM (SELECT"
	    " greatest(%3$lld, max(%2$s), pg_sequence_last_value(pg_get_serial_sequence('%1$s',"
	    " '%2$s')::regclass)) AS high FROM %1$s) s WHERE high > 0",
	    t->name, t->key, (long long)high);
	return pg_run(m, sql);
}

/* What is read of SQLite's row: `cols`, with t->as_null read as NULL. */
static void
read_list(const struct table *t, char *out, size_t n)
{
	size_t len = 0, k;
	bool as_null;

	out[0] = '\0';
	for (const char *c = t->cols; *c != '\0' && len < n; c += k + strspn(c + k, ", ")) {
		k = strcspn(c, ",");
		as_null =
		    t->as_null != NULL && strlen(t->as_null) == k && strncmp(c, t->as_null, k) == 0;
		len += (size_t)snprintf(out + len, n - len, "%s%.*s", len > 0 ? ", " : "",
		    as_null ? 4 : (int)k, as_null ? "NULL" : c);
	}
}

static int
copy_table(struct mig *m, const struct table *t)
{
	char select[1024], sql[256], read[768], *insert = m->insert[t - tables];
	size_t isize = sizeof(m->insert[0]);
	sqlite3_stmt *st = NULL;
	int64_t from = 0, last = -1, total = 0, n;
	int rc = HR_OK, i, nparams = 1;
	size_t len;

	read_list(t, read, sizeof(read));
	for (const char *c = t->cols; *c; c++)
		nparams += *c == ',';
	len = (size_t)snprintf(insert, isize, "INSERT INTO %s (%s) VALUES (", t->name, t->cols);
	for (i = 1; i <= nparams && len < isize; i++)
		len += (size_t)snprintf(insert + len, isize - len, "%s$%d", i > 1 ? ", " : "", i);
	if (len < isize)
		snprintf(insert + len, isize - len, ") ON CONFLICT DO NOTHING");
	if (t->key != NULL) {
		/* Where a stopped copy left off: its last key again (ON CONFLICT keeps it once). */
		snprintf(sql, sizeof(sql), "SELECT max(%s) FROM %s", t->key, t->name);
		if ((rc = pg_int(m, sql, &from)) != HR_OK ||
		    (rc = sqlite_int(m, sql, &last)) != HR_OK)
			return rc;
		/* A new copy starts at SQLite's smallest key: retention may have left only
		 * large ones, and each step of RANGE keys is a transaction. */
		if (from <= 0) {
			snprintf(sql, sizeof(sql), "SELECT min(%s) FROM %s", t->key, t->name);
			if ((rc = sqlite_int(m, sql, &from)) != HR_OK)
				return rc;
		}
		from = from > 0 ? from - 1 : 0;
		snprintf(select, sizeof(select),
		    "SELECT %s FROM %s WHERE %s > ?1 AND %s <= ?2 ORDER BY %s", read, t->name,
		    t->key, t->key, t->key);
	} else {
		snprintf(select, sizeof(select), "SELECT %s FROM %s", read, t->name);
	}
	if (sqlite3_prepare_v2(m->db, select, -1, &st, NULL) != SQLITE_OK)
		return sqlite_fail(m, t->name);
	do {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, from);
		sqlite3_bind_int64(st, 2, from + RANGE);
		if ((rc = copy_rows(m, t, st, insert, &n)) != HR_OK)
			break;
		total += n;
		from += RANGE;
	} while (t->key != NULL && from < last);
	sqlite3_finalize(st);
	if (rc == HR_OK && t->identity)
		rc = move_sequence(m, t);
	if (rc == HR_OK)
		fprintf(
		    m->out, "migrate: %s: %lld rows read and written\n", t->name, (long long)total);
	return rc;
}

/* Feed one value as its length then its bytes, so "ab","c" and "a","bc" differ. */
static void
feed(EVP_MD_CTX *h, const void *v, size_t len)
{
	unsigned char n[8];

	for (int i = 0; i < 8; i++)
		n[i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
	EVP_DigestUpdate(h, n, sizeof(n));
	EVP_DigestUpdate(h, v, len);
}

static void
hex(const unsigned char *md, unsigned len, char *out)
{
	for (unsigned i = 0; i < len; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static int
digest_sqlite(struct mig *m, const struct digest *d, char *out)
{
	EVP_MD_CTX *h = EVP_MD_CTX_new();
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	sqlite3_stmt *st = NULL;
	int rc = HR_OK, step;

	if (h == NULL || EVP_DigestInit_ex(h, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(h);
		return HR_ENOMEM;
	}
	if (sqlite3_prepare_v2(m->db, d->sqlite_sql, -1, &st, NULL) != SQLITE_OK)
		rc = sqlite_fail(m, d->table);
	while (rc == HR_OK && (step = sqlite3_step(st)) == SQLITE_ROW)
		for (int i = 0; i < sqlite3_column_count(st); i++) {
			const void *v = sqlite3_column_type(st, i) == SQLITE_BLOB
			    ? sqlite3_column_blob(st, i)
			    : (const void *)sqlite3_column_text(st, i);

			feed(h, v != NULL ? v : "", (size_t)sqlite3_column_bytes(st, i));
		}
	if (rc == HR_OK && step != SQLITE_DONE)
		rc = sqlite_fail(m, d->table);
	sqlite3_finalize(st);
	EVP_DigestFinal_ex(h, md, &mdlen);
	EVP_MD_CTX_free(h);
	hex(md, mdlen, out);
	return rc;
}

static int
digest_pg(struct mig *m, const struct digest *d, char *out)
{
	EVP_MD_CTX *h = EVP_MD_CTX_new();
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	int64_t after = -1;
	int rc = HR_OK, n;

	if (h == NULL || EVP_DigestInit_ex(h, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(h);
		return HR_ENOMEM;
	}
	do { /* keyset pages: bounded memory, whatever the table holds */
		struct pg_params p = { .n = 0 };
		PGresult *r;

		pgp_int(&p, after);
		if ((r = pg_query(m->pg, d->pg_sql, &p, m->err)) == NULL) {
			rc = HR_EDB;
			break;
		}
		n = PQntuples(r);
		for (int row = 0; row < n; row++)
			for (int i = 0; i < PQnfields(r); i++)
				feed(h, pgc_null(r, row, i) ? "" : PQgetvalue(r, row, i),
				    pgc_len(r, row, i));
		if (n > 0)
			after = strtoll(PQgetvalue(r, n - 1, 0), NULL, 10);
		PQclear(r);
	} while (n == 1000);
	EVP_DigestFinal_ex(h, md, &mdlen);
	EVP_MD_CTX_free(h);
	hex(md, mdlen, out);
	return rc;
}

/* Counts of every table and the digests, side by side; HR_EINVAL on a difference. */
static int
verify(struct mig *m)
{
	char sql[128], a[2 * EVP_MAX_MD_SIZE + 1], b[2 * EVP_MAX_MD_SIZE + 1];
	int64_t ns, np;
	int rc, bad = 0;

	for (size_t i = 0; i < HR_ARRAY_LEN(tables); i++) {
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", tables[i].name);
		if ((rc = sqlite_int(m, sql, &ns)) != HR_OK || (rc = pg_int(m, sql, &np)) != HR_OK)
			return rc;
		fprintf(m->out, "verify: %-12s %10lld rows in sqlite, %10lld in postgresql%s\n",
		    tables[i].name, (long long)ns, (long long)np, ns == np ? "" : "  DIFFERENT");
		bad += ns != np;
	}
	for (size_t i = 0; i < HR_ARRAY_LEN(digests); i++) {
		if ((rc = digest_sqlite(m, &digests[i], a)) != HR_OK ||
		    (rc = digest_pg(m, &digests[i], b)) != HR_OK)
			return rc;
		fprintf(m->out,
		    "verify: %-12s sha256 %s (sqlite)\nverify: %-12s sha256 %s (postgresql)%s\n",
		    digests[i].table, a, digests[i].table, b,
		    strcmp(a, b) == 0 ? "" : "  DIFFERENT");
		bad += strcmp(a, b) != 0;
	}
	if (bad > 0)
		return hr_error_set(m->err, HR_EINVAL, "verify",
		    "%d of the counts and checksums differ: run migrate again to resume", bad);
	fprintf(m->out, "verify: every count and checksum matches\n");
	return HR_OK;
}

/* The file, read-only, and not while a daemon holds it (its instance lock). */
static int
open_source(struct mig *m, const char *path, int *lock_fd)
{
	int64_t version = 0;

	*lock_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (*lock_fd < 0)
		return hr_error_set(m->err, HR_EINVAL, "from", "%s: %s", path, strerror(errno));
	if (flock(*lock_fd, LOCK_SH | LOCK_NB) != 0)
		return hr_error_set(m->err, HR_EBUSY, "from",
		    "%s is in use by a running hookrelay: stop it first", path);
	if (sqlite3_open_v2(path, &m->db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		return sqlite_fail(m, path);
	sqlite3_busy_timeout(m->db, 10000);
	if (sqlite_int(m, "PRAGMA user_version", &version) != HR_OK)
		return HR_EDB;
	if (version != hr_store_sqlite_schema_version())
		return hr_error_set(m->err, HR_EINVAL, "from",
		    "%s has schema %d, this hookrelay %d: start this hookrelay on it once first (it"
		    " migrates the file), then migrate",
		    path, (int)version, hr_store_sqlite_schema_version());
	return HR_OK;
}

/*
 * The target is empty, or one this tool filled before (a resume): a copy goes
 * on from the target's largest key, so into a database a node had already
 * stored events in it skipped the SQLite rows under that key, let ON CONFLICT
 * drop the rows whose keys the node's had taken (sessions, deliveries that
 * then named the node's events), and its verify could never match (a review
 * did it). A first run marks the target (hookrelay_migration) before it copies.
 */
static int
check_target(struct mig *m)
{
	int64_t marked = 0, stored = 0;
	int rc;

	if ((rc = pg_run(m,
	         "CREATE TABLE IF NOT EXISTS hookrelay_migration"
	         " (started_at bigint NOT NULL)")) != HR_OK ||
	    (rc = pg_int(m, "SELECT count(*) FROM hookrelay_migration", &marked)) != HR_OK ||
	    (rc = pg_int(m,
	         "SELECT (SELECT count(*) FROM (SELECT 1 FROM events LIMIT 1) e)"
	         " + (SELECT count(*) FROM (SELECT 1 FROM rejections LIMIT 1) r)",
	         &stored)) != HR_OK)
		return rc;
	if (marked == 0 && stored > 0)
		return hr_error_set(m->err, HR_EINVAL, "to",
		    "the target database already holds events or rejections that no migrate "
		    "copied (a node stored them): migrate into a new, empty database, then start "
		    "the nodes on it");
	if (marked == 0)
		return pg_run(m,
		    "INSERT INTO hookrelay_migration SELECT"
		    " (extract(epoch FROM now()) * 1000000)::bigint");
	return HR_OK;
}

int
hr_store_pg_migrate(const char *sqlite_path, const char *pg_url, FILE *out, struct hr_error *err)
{
	struct mig m = { .out = out, .err = err };
	int lock_fd = -1, rc;

	if ((rc = open_source(&m, sqlite_path, &lock_fd)) != HR_OK)
		goto out;
	if ((m.pg = hr_pg_connect_url(pg_url, err)) == NULL) {
		rc = HR_EDB;
		goto out;
	}
	if ((rc = hr_pg_migrate_schema(m.pg, err)) != HR_OK || (rc = check_target(&m)) != HR_OK)
		goto out;
	for (size_t i = 0; rc == HR_OK && i < HR_ARRAY_LEN(tables); i++)
		rc = copy_table(&m, &tables[i]);
	if (rc == HR_OK)
		rc = verify(&m);
out:
	PQfinish(m.pg);
	sqlite3_close(m.db);
	if (lock_fd >= 0)
		close(lock_fd);
	return rc;
}
