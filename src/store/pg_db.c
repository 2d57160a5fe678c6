/*
 * pg_db.c - the PostgreSQL engine's plumbing: typed parameters, binary
 * result columns, statements prepared once per connection, connections with
 * the daemon's session settings, the reader pool, and health.
 *
 * Connections ask for synchronous_commit = on: a COMMIT that returned is on
 * the primary's disk (and its synchronous standbys'), which is when the HTTP
 * layer may answer 2xx.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hr/log.h"
#include "pg_int.h"

#define CONNECT_TIMEOUT "5" /* seconds, unless the url says otherwise */

/* ---- parameters and results ---- */

/* Type OIDs (pg_type.h, stable across releases). */
#define OID_BYTEA  17
#define OID_INT8   20
#define OID_TEXT   25
#define OID_FLOAT8 701

static void
pgp_put(struct pg_params *p, Oid type, const char *v, int len, int fmt)
{
	if (p->n >= PG_PARAMS_MAX) {
		p->overflow = true;
		return;
	}
	p->type[p->n] = type;
	p->v[p->n] = v;
	p->len[p->n] = len;
	p->fmt[p->n] = fmt;
	p->n++;
}

void
pgp_text(struct pg_params *p, const char *v)
{
	pgp_put(p, OID_TEXT, v, 0, 0);
}

void
pgp_null(struct pg_params *p)
{
	pgp_put(p, 0, NULL, 0, 0);
}

void
pgp_int(struct pg_params *p, int64_t v)
{
	if (p->n < PG_PARAMS_MAX)
		snprintf(p->num[p->n], sizeof(p->num[0]), "%lld", (long long)v);
	pgp_put(p, OID_INT8, p->n < PG_PARAMS_MAX ? p->num[p->n] : NULL, 0, 0);
}

void
pgp_double(struct pg_params *p, double v)
{
	if (p->n < PG_PARAMS_MAX)
		snprintf(p->num[p->n], sizeof(p->num[0]), "%.17g", v);
	pgp_put(p, OID_FLOAT8, p->n < PG_PARAMS_MAX ? p->num[p->n] : NULL, 0, 0);
}

void
pgp_bytes(struct pg_params *p, const void *v, size_t len)
{
	/* A bytea may be empty: binary format with a non-NULL pointer. */
	pgp_put(p, OID_BYTEA, v != NULL ? v : "", (int)len, 1);
}

PGresult *
pg_exec(PGconn *c, const char *sql, const struct pg_params *p)
{
	PGresult *r;
	ExecStatusType st;

	if (p != NULL && p->overflow) {
		log_warnx("store: postgresql: too many parameters for %.80s", sql);
		return NULL;
	}
	r = PQexecParams(c, sql, p ? p->n : 0, p ? p->type : NULL, p ? p->v : NULL,
	    p ? p->len : NULL, p ? p->fmt : NULL, 1);
	st = PQresultStatus(r);
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return r;
	log_warnx("store: postgresql: %.120s: %s", sql,
	    r != NULL ? PQresultErrorMessage(r) : PQerrorMessage(c));
	PQclear(r);
	return NULL;
}

PGresult *
pg_exec_prepared(struct pg_prepared *cache, PGconn *c, const char *sql, const struct pg_params *p)
{
	char name[16];
	unsigned i;
	PGresult *r;
	ExecStatusType st;

	if (p == NULL || p->n == 0 || p->overflow)
		return pg_exec(c, sql, p);
	if (cache->conn != c) {
		cache->conn = c;
		cache->n = 0;
	}
	for (i = 0; i < cache->n && cache->sql[i] != sql; i++)
		;
	if (i == cache->n) {
		if (i == PG_PREPARED_MAX)
			return pg_exec(c, sql, p);
		snprintf(name, sizeof(name), "hr%u", i);
		r = PQprepare(c, name, sql, p->n, p->type);
		st = PQresultStatus(r);
		PQclear(r);
		if (st != PGRES_COMMAND_OK) /* e.g. inside an aborted transaction: say why there */
			return pg_exec(c, sql, p);
		cache->sql[cache->n++] = sql;
	}
	snprintf(name, sizeof(name), "hr%u", i);
	r = PQexecPrepared(c, name, p->n, p->v, p->len, p->fmt, 1);
	st = PQresultStatus(r);
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return r;
	log_warnx("store: postgresql: %.120s: %s", sql,
	    r != NULL ? PQresultErrorMessage(r) : PQerrorMessage(c));
	PQclear(r);
	return NULL;
}

PGresult *
pg_query(PGconn *c, const char *sql, const struct pg_params *p, struct hr_error *err)
{
	PGresult *r = pg_exec(c, sql, p);

	if (r == NULL) {
		const char *msg = PQerrorMessage(c);
		size_t n = strcspn(msg, "\n");

		hr_error_set(err, HR_EDB, "query", "postgresql: %.*s", (int)n,
		    *msg ? msg : "the statement failed");
	}
	return r;
}

bool
pgc_null(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) != 0;
}

const char *
pgc_text(const PGresult *r, int row, int col)
{
	/* libpq ends every value with a NUL, binary ones too. */
	return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

size_t
pgc_len(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? 0 : (size_t)PQgetlength(r, row, col);
}

static uint64_t
be(const unsigned char *b, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v = (v << 8) | b[i];
	return v;
}

int64_t
pgc_int(const PGresult *r, int row, int col)
{
	const unsigned char *b = (const unsigned char *)PQgetvalue(r, row, col);

	if (PQgetisnull(r, row, col))
		return 0;
	switch (PQgetlength(r, row, col)) {
	case 2:
		return (int16_t)be(b, 2);
	case 4:
		return (int32_t)be(b, 4);
	case 8:
		return (int64_t)be(b, 8);
	default:
		return 0;
	}
}

double
pgc_double(const PGresult *r, int row, int col)
{
	uint64_t bits;
	double d;

	if (PQgetisnull(r, row, col) || PQgetlength(r, row, col) != 8)
		return 0;
	bits = be((const unsigned char *)PQgetvalue(r, row, col), 8);
	memcpy(&d, &bits, sizeof(d));
	return d;
}

bool
pgc_bool(const PGresult *r, int row, int col)
{
	return !PQgetisnull(r, row, col) && PQgetvalue(r, row, col)[0] != 0;
}

/* ---- connections ---- */

static void
quiet_notices(void *arg, const char *msg)
{
	(void)arg;
	(void)msg; /* "relation already exists, skipping" and the like */
}

PGconn *
hr_pg_connect(struct hr_store_backend *pg, struct hr_error *err)
{
	return hr_pg_connect_url(pg->url, err);
}

PGconn *
hr_pg_connect_url(const char *url, struct hr_error *err)
{
	/* Keywords in order, later ones win: our defaults, then everything the url sets. */
	/* Over TCP, a server that vanished without a reset (a failover that moved the
	 * address, a host that lost power) is noticed in about 25 s idle (keepalives)
	 * or 30 s with data unacknowledged (tcp_user_timeout), not after the kernel's
	 * ~15 minutes: meanwhile the writer waits and ingest answers nothing. */
	const char *const keys[] = { "connect_timeout", "keepalives_idle", "keepalives_interval",
		"keepalives_count", "tcp_user_timeout", "application_name", "dbname", NULL };
	const char *vals[] = { CONNECT_TIMEOUT, "10", "5", "3", "30000", "hookrelay", url, NULL };
	PGconn *c = PQconnectdbParams(keys, vals, 1);
	PGresult *r;

	if (c == NULL || PQstatus(c) != CONNECTION_OK) {
		const char *msg = c ? PQerrorMessage(c) : "out of memory";

		hr_error_set(err, HR_EDB, "url", "cannot connect to postgresql: %.*s",
		    (int)strcspn(msg, "\n"), msg);
		PQfinish(c);
		return NULL;
	}
	PQsetNoticeProcessor(c, quiet_notices, NULL);
	/* Durable before 2xx whatever the server's default; times are ours (bigint µs). */
	r = pg_exec(c, "SET synchronous_commit = on", NULL);
	if (r == NULL) {
		hr_error_set(err, HR_EDB, "url", "postgresql: %s", PQerrorMessage(c));
		PQfinish(c);
		return NULL;
	}
	PQclear(r);
	return c;
}

void
hr_pg_set_reachable(struct hr_store_backend *pg, const char *why)
{
	bool changed;

	pthread_mutex_lock(&pg->hmu);
	changed = (why == NULL) != (pg->health.state == HR_DB_OK);
	if (why == NULL) {
		pg->health.state = HR_DB_OK;
		pg->health.detail[0] = '\0';
	} else {
		pg->health.state = HR_DB_UNREACHABLE;
		snprintf(pg->health.detail, sizeof(pg->health.detail),
		    "postgresql cannot be reached: %.*s", (int)strcspn(why, "\n"), why);
	}
	pthread_mutex_unlock(&pg->hmu);
	if (changed && why == NULL)
		log_info("store: postgresql is reachable again");
	else if (changed)
		log_warnx(
		    "store: postgresql cannot be reached: %.*s", (int)strcspn(why, "\n"), why);
}

void
hr_pg_health(struct hr_store_backend *pg, struct hr_store_health *out)
{
	pthread_mutex_lock(&pg->hmu);
	*out = pg->health;
	pthread_mutex_unlock(&pg->hmu);
}

bool
hr_pg_conn_alive(PGconn *c)
{
	struct pollfd p = { .fd = PQsocket(c), .events = POLLIN };

	/* Its goodbye (an error message) and the end of the stream may come in two
	 * reads; nothing else arrives on an idle connection but notices. */
	for (int i = 0; i < 4 && PQstatus(c) == CONNECTION_OK && poll(&p, 1, 0) > 0; i++)
		if (!PQconsumeInput(c))
			break;
	return PQstatus(c) == CONNECTION_OK;
}

PGconn *
hr_pg_reader_get(struct hr_store_backend *pg)
{
	PGconn *c;

	pthread_mutex_lock(&pg->rmu);
	while (pg->nfree == 0)
		pthread_cond_wait(&pg->rcv, &pg->rmu);
	c = pg->free_readers[--pg->nfree];
	pthread_mutex_unlock(&pg->rmu);
	/* A connection the server or the network dropped: one new try, then the
	 * query fails with libpq's message (503 to the client). */
	if (!hr_pg_conn_alive(c)) {
		PQreset(c);
		if (PQstatus(c) == CONNECTION_OK) {
			PGresult *r = pg_exec(c, "SET synchronous_commit = on", NULL);

			PQclear(r);
		}
	}
	return c;
}

void
hr_pg_reader_put(struct hr_store_backend *pg, PGconn *c)
{
	pthread_mutex_lock(&pg->rmu);
	pg->free_readers[pg->nfree++] = c;
	pthread_cond_signal(&pg->rcv);
	pthread_mutex_unlock(&pg->rmu);
}

/* Several statements without parameters (a migration step): the simple protocol. */
int
hr_pg_exec_script(PGconn *c, const char *sql, struct hr_error *err)
{
	PGresult *r = PQexec(c, sql);
	int rc = HR_OK;

	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
		const char *msg = PQerrorMessage(c);

		rc = hr_error_set(
		    err, HR_EDB, "schema", "postgresql: %.*s", (int)strcspn(msg, "\n"), msg);
	}
	PQclear(r);
	return rc;
}
