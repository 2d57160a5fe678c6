/*
 * pg_db.c - the PostgreSQL engine's plumbing: typed parameters, binary
 * result columns, statements prepared once per connection, connections with
 * the daemon's session settings, the reader pool, and health.
 *
 * Connections ask for synchronous_commit = on: a COMMIT that returned is on
 * the primary's disk (and its synchronous standbys'), which is when the HTTP
 * layer may answer 2xx.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "hr/log.h"
#include "hr/timefmt.h"
#include "pg_int.h"

#define CONNECT_TIMEOUT "5" /* seconds, unless the url says otherwise */

/* After a cancel, how long the server has to answer it before the connection is
 * given up: as long as the statement had, within these bounds. A server that
 * cannot even answer a cancel is not coming back soon, and a user who set a short
 * statement_timeout wants a stuck node to give up soon too. */
#define CANCEL_GRACE_MIN_US (1 * 1000000)
#define CANCEL_GRACE_MAX_US (5 * 1000000)

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
pgp_text_or_null(struct pg_params *p, const char *v)
{
	if (v != NULL)
		pgp_text(p, v);
	else
		pgp_null(p);
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

/* ---- statements with a deadline ---- */

/* [storage] statement_timeout. One per process, like the store it belongs to; set
 * once the schema is migrated (a migration may rightly take minutes), read by
 * every thread that runs a statement. 0: no deadline. */
static _Atomic int64_t statement_timeout_us;

/* Whether this thread's last statement ran out of time (each thread has its own
 * connection: the writer's, or a reader's while it holds one). */
static _Thread_local bool timed_out;

bool
pg_timed_out(void)
{
	return timed_out;
}

void
pg_timed_out_clear(void)
{
	timed_out = false;
}

void
pg_set_statement_timeout(int64_t us)
{
	atomic_store(&statement_timeout_us, us > 0 ? us : 0);
}

/* A cancel on a thread of its own, and whether it has been delivered. The
 * statement's thread and the cancel's each hold a reference; the last frees it. */
struct canceller {
	PGcancel *cancel;
	pthread_mutex_t mu;
	pthread_cond_t done_cv; /* on CLOCK_MONOTONIC, as hr_time_mono_us() */
	bool done;
	int refs;
};

static void
canceller_unref(struct canceller *k)
{
	bool last;

	pthread_mutex_lock(&k->mu);
	last = --k->refs == 0;
	pthread_mutex_unlock(&k->mu);
	if (!last)
		return;
	PQfreeCancel(k->cancel);
	pthread_cond_destroy(&k->done_cv);
	pthread_mutex_destroy(&k->mu);
	free(k);
}

static void *
cancel_main(void *arg)
{
	struct canceller *k = arg;
	char why[128] = "";

	if (!PQcancel(k->cancel, why, sizeof(why)))
		log_warnx("store: postgresql: cannot cancel a statement: %s", why);
	pthread_mutex_lock(&k->mu);
	k->done = true;
	pthread_cond_signal(&k->done_cv);
	pthread_mutex_unlock(&k->mu);
	canceller_unref(k);
	return NULL;
}

static struct canceller *
canceller_new(PGcancel *cancel)
{
	struct canceller *k = calloc(1, sizeof(*k));
	pthread_condattr_t ca;

	if (k == NULL)
		return NULL;
	k->cancel = cancel;
	k->refs = 2;
	pthread_mutex_init(&k->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&k->done_cv, &ca);
	pthread_condattr_destroy(&ca);
	return k;
}

/* Wait until `k`'s cancel was delivered (PQcancel returned: the server has
 * signalled the backend), at most until `until_us`. */
static bool
canceller_wait(struct canceller *k, int64_t until_us)
{
	struct timespec ts = { .tv_sec = until_us / 1000000, .tv_nsec = until_us % 1000000 * 1000 };
	bool done;

	pthread_mutex_lock(&k->mu);
	while (!k->done && pthread_cond_timedwait(&k->done_cv, &k->mu, &ts) != ETIMEDOUT)
		;
	done = k->done;
	pthread_mutex_unlock(&k->mu);
	return done;
}

/* Tell the server to stop the statement under way on `c`; the statement then ends
 * with an error (or a COMMIT waiting for a standby with a WARNING, which
 * commit_tx() fails the batch on). PQcancel() connects to the server, sends the
 * request and waits for the server to close that connection, with no deadline of
 * its own: behind a network that takes bytes and answers nothing it would never
 * return, so it runs on a thread of its own, and the caller waits for it at most
 * until `until_us`. It must wait: a cancel still on its way when the statement
 * ended by itself lands on whatever runs next on `c` (another batch, a read).
 * False when the cancel was sent and not delivered by then: `c` must not run
 * anything more. */
static bool
cancel_statement(PGconn *c, int64_t until_us)
{
	PGcancel *cancel = PQgetCancel(c);
	struct canceller *k;
	pthread_attr_t attr;
	pthread_t t;
	bool delivered;
	int rc;

	if (cancel == NULL) {
		log_warnx("store: postgresql: cannot cancel a statement: no cancel key");
		return true;
	}
	if ((k = canceller_new(cancel)) == NULL) {
		log_warnx("store: postgresql: cannot cancel a statement: out of memory");
		PQfreeCancel(cancel);
		return true;
	}
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	rc = pthread_create(&t, &attr, cancel_main, k);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		log_warnx("store: postgresql: cannot start a thread to cancel a statement");
		k->refs = 1;
		canceller_unref(k);
		return true;
	}
	delivered = canceller_wait(k, until_us);
	canceller_unref(k);
	return delivered;
}

static int64_t
cancel_grace_us(void)
{
	int64_t t = atomic_load(&statement_timeout_us);

	return t < CANCEL_GRACE_MIN_US ? CANCEL_GRACE_MIN_US
	    : t > CANCEL_GRACE_MAX_US  ? CANCEL_GRACE_MAX_US
	                               : t;
}

/* The server answered neither a statement nor its cancel in time: the socket is
 * shut down, so libpq sees the connection closed and every later call on it fails
 * at once (the writer and the reader pool replace such a connection). */
static void
close_unanswered(PGconn *c, const char *what)
{
	log_warnx("store: postgresql: no answer to a cancel of %.80s: closing the connection",
	    what != NULL ? what : "a pipeline");
	shutdown(PQsocket(c), SHUT_RDWR);
	PQconsumeInput(c); /* reads the end: the connection is bad now */
}

/*
 * Wait until PQgetResult() on `c` would not block, at most until `*deadline_us`
 * (monotonic; 0: for ever). Past it the statement is cancelled and the server gets
 * cancel_grace_us() more to take the cancel and answer; past that the connection is
 * closed (close_unanswered). `what` names the statement in the log; NULL, a
 * pipeline's: which of its statements waits is known once the cancel answered
 * (the one it ended, pg_pipe.c), as the server sends its results at the sync.
 */
static void
await_result(PGconn *c, int64_t *deadline_us, bool *cancelled, const char *what)
{
	while (PQisBusy(c) && PQstatus(c) == CONNECTION_OK) {
		struct pollfd p = { .fd = PQsocket(c), .events = POLLIN };
		int64_t left = *deadline_us ? *deadline_us - hr_time_mono_us() : -1;
		int n;

		if (*deadline_us && left <= 0) {
			if (*cancelled) {
				close_unanswered(c, what);
				return;
			}
			if (what != NULL)
				log_warnx("store: postgresql: no answer within [storage] "
				          "statement_timeout to %.80s: cancelling it",
				    what);
			else
				log_warnx("store: postgresql: a pipeline ran past [storage] "
				          "statement_timeout: cancelling it");
			timed_out = true;
			*cancelled = true;
			*deadline_us = hr_time_mono_us() + cancel_grace_us();
			if (!cancel_statement(c, *deadline_us)) {
				close_unanswered(c, what);
				return;
			}
			continue;
		}
		n = poll(&p, 1, left < 0 ? -1 : (int)((left + 999) / 1000));
		if (n < 0 && errno != EINTR)
			return; /* PQgetResult() will wait and report */
		if (n > 0 && !PQconsumeInput(c))
			return; /* the connection broke: PQgetResult() says so */
	}
}

int64_t
pg_deadline(void)
{
	int64_t t = atomic_load(&statement_timeout_us);

	return t > 0 ? hr_time_mono_us() + t : 0;
}

PGresult *
pg_next_result(PGconn *c, int64_t *deadline_us, bool *cancelled, const char *what)
{
	await_result(c, deadline_us, cancelled, what);
	return PQgetResult(c);
}

/* The results of the command just sent on `c`, as PQexec() gives them (the last);
 * NULL when it could not be sent. */
static PGresult *
finish(PGconn *c, bool sent, const char *what)
{
	int64_t deadline = pg_deadline();
	bool cancelled = false;
	PGresult *last = NULL, *r;

	timed_out = false;
	if (!sent)
		return NULL;
	while ((r = pg_next_result(c, &deadline, &cancelled, what)) != NULL) {
		PQclear(last);
		last = r;
	}
	return last;
}

static PGresult *
checked(PGconn *c, PGresult *r, const char *sql)
{
	ExecStatusType st = PQresultStatus(r);

	char msg[512];

	if (r != NULL && (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK))
		return r;
	log_warnx("store: postgresql: %.120s: %s", sql,
	    hr_one_line(r != NULL ? PQresultErrorMessage(r) : PQerrorMessage(c), msg, sizeof(msg)));
	PQclear(r);
	return NULL;
}

PGresult *
pg_exec(PGconn *c, const char *sql, const struct pg_params *p)
{
	bool sent;

	if (p != NULL && p->overflow) {
		log_warnx("store: postgresql: too many parameters for %.80s", sql);
		return NULL;
	}
	sent = PQsendQueryParams(c, sql, p ? p->n : 0, p ? p->type : NULL, p ? p->v : NULL,
	           p ? p->len : NULL, p ? p->fmt : NULL, 1) != 0;
	return checked(c, finish(c, sent, sql), sql);
}

unsigned
pg_prepared_find(struct pg_prepared *cache, PGconn *c, const char *sql, char name[PG_NAME_LEN])
{
	unsigned i;

	if (cache->conn != c) {
		cache->conn = c;
		cache->n = 0;
	}
	for (i = 0; i < cache->n && cache->sql[i] != sql; i++)
		;
	if (i < PG_PREPARED_MAX)
		snprintf(name, PG_NAME_LEN, "hr%u", i);
	return i;
}

PGresult *
pg_exec_prepared(struct pg_prepared *cache, PGconn *c, const char *sql, const struct pg_params *p)
{
	char name[PG_NAME_LEN];
	unsigned i;
	PGresult *r;

	if (p == NULL || p->n == 0 || p->overflow)
		return pg_exec(c, sql, p);
	if ((i = pg_prepared_find(cache, c, sql, name)) == PG_PREPARED_MAX)
		return pg_exec(c, sql, p);
	if (i == cache->n) {
		ExecStatusType st;

		r = finish(c, PQsendPrepare(c, name, sql, p->n, p->type) != 0, sql);
		st = PQresultStatus(r);
		/* Preparing waits for the locks running does (an INSERT's on its table).
		 * Out of time, it fails here: run unprepared, the statement would fail at
		 * once in the aborted transaction and clear timed_out, and the writer
		 * would retry the batch write by write, each waiting the deadline again. */
		if (st != PGRES_COMMAND_OK && timed_out)
			return checked(c, r, sql);
		PQclear(r);
		if (st != PGRES_COMMAND_OK) /* e.g. inside an aborted transaction: say why there */
			return pg_exec(c, sql, p);
		cache->sql[cache->n++] = sql;
	}
	r = finish(c, PQsendQueryPrepared(c, name, p->n, p->v, p->len, p->fmt, 1) != 0, sql);
	return checked(c, r, sql);
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

/* An attempt with our settings: the connection, or the failed attempt
 * (CONNECTION_BAD, the reason in PQerrorMessage); NULL only without memory. */
static PGconn *
connect_attempt(const char *url)
{
	/* Keywords in order, later ones win: our defaults, then everything the url sets. */
	/* Over TCP, a server that vanished without a reset (a failover that moved the
	 * address, a host that lost power) is noticed in about 25 s idle (keepalives)
	 * or 30 s with data unacknowledged (tcp_user_timeout), not after the kernel's
	 * ~15 minutes: meanwhile the writer waits and ingest answers nothing. */
	const char *const keys[] = { "connect_timeout", "keepalives_idle", "keepalives_interval",
		"keepalives_count", "tcp_user_timeout", "application_name", "dbname", NULL };
	const char *vals[] = { CONNECT_TIMEOUT, "10", "5", "3", "30000", "hookrelay", url, NULL };

	return PQconnectdbParams(keys, vals, 1);
}

/* The session settings of a connection just made or reset; false when it is not up
 * or they could not be set (the reason in PQerrorMessage). */
static bool
session_ready(PGconn *c)
{
	PGresult *r;

	if (PQstatus(c) != CONNECTION_OK)
		return false;
	PQsetNoticeProcessor(c, quiet_notices, NULL);
	/* Durable before 2xx whatever the server's default; times are ours (bigint µs). */
	r = pg_exec(c, "SET synchronous_commit = on", NULL);
	PQclear(r);
	return r != NULL && pg_set_idle_limit(c);
}

/*
 * A node frozen (SIGSTOP, swapped out) or cut off from the server while its
 * writer is inside a transaction of several round trips (a replay's chunk, a
 * batch whose housekeeping commits apart) held that transaction's locks, the
 * event order lock among them, for as long as it was gone: every node's
 * ingest stopped (a review). The server ends a session idle in a transaction
 * past statement_timeout; one of ours never is, between statements it sends
 * at once. statement_timeout 0, or before the migration: nothing set. A
 * stricter limit the server or the role already has stays.
 */
bool
pg_set_idle_limit(PGconn *c)
{
	long long ms = (long long)(atomic_load(&statement_timeout_us) / 1000);
	char sql[256];
	PGresult *r;

	if (ms <= 0)
		return true;
	snprintf(sql, sizeof(sql),
	    "SELECT set_config('idle_in_transaction_session_timeout', '%lld', false)"
	    " FROM pg_settings WHERE name = 'idle_in_transaction_session_timeout'"
	    " AND (setting::bigint = 0 OR setting::bigint > %lld)",
	    ms, ms);
	r = pg_exec(c, sql, NULL);
	PQclear(r);
	return r != NULL;
}

PGconn *
hr_pg_connect_url(const char *url, struct hr_error *err)
{
	PGconn *c = connect_attempt(url);

	if (c == NULL || !session_ready(c)) {
		const char *msg = c ? PQerrorMessage(c) : "out of memory";

		hr_error_set(err, HR_EDB, "url", "%s: %.*s",
		    c != NULL && PQstatus(c) == CONNECTION_OK ? "postgresql"
		                                              : "cannot connect to postgresql",
		    (int)strcspn(msg, "\n"), msg);
		PQfinish(c);
		return NULL;
	}
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

/* How long the end of a connection is waited for once something came on it
 * while idle: a backend told to end sends its last words at once and closes its
 * socket when its process exits, a moment later on a busy server. A notice
 * that is not a goodbye (a reported setting changed by a reload) costs this
 * wait once. */
#define GOODBYE_END_MS 300

bool
hr_pg_conn_alive(PGconn *c)
{
	struct pollfd p = { .fd = PQsocket(c), .events = POLLIN };
	int wait_ms = 0;

	/* Nothing arrives on an idle connection of ours but that goodbye (an error
	 * message, then the end of the stream), or rarely a notice: whatever came,
	 * the end is waited for, and a connection whose end does not come in time is
	 * used. A used one that then fails fails its statement, as before the check. */
	for (int i = 0; i < 4 && PQstatus(c) == CONNECTION_OK && poll(&p, 1, wait_ms) > 0; i++) {
		if (!PQconsumeInput(c))
			break;
		wait_ms = GOODBYE_END_MS;
	}
	return PQstatus(c) == CONNECTION_OK;
}

/* A read connection made when the pool has none free and fewer than its size:
 * a node holds the connections its load has needed, not `pool` of them from the
 * start. One the server refused is kept, failed: the query on it fails (503 to
 * the client) and the next hr_pg_reader_get() tries to connect it again. */
static void
say_reader_failed(PGconn *c)
{
	const char *msg = PQerrorMessage(c);

	log_warnx("store: a read connection to postgresql: %.*s", (int)strcspn(msg, "\n"), msg);
}

static PGconn *
open_reader(struct hr_store_backend *pg)
{
	PGconn *c = connect_attempt(pg->url);

	if (c != NULL && !session_ready(c))
		say_reader_failed(c);
	return c;
}

PGconn *
hr_pg_reader_get(struct hr_store_backend *pg)
{
	PGconn *c;
	unsigned slot;

	pthread_mutex_lock(&pg->rmu);
	for (;;) {
		while (pg->nfree == 0 && pg->nreaders == pg->readers_max)
			pthread_cond_wait(&pg->rcv, &pg->rmu);
		if (pg->nfree > 0)
			break;
		slot = pg->nreaders++; /* claimed: made without the lock */
		pthread_mutex_unlock(&pg->rmu);
		c = open_reader(pg);
		pthread_mutex_lock(&pg->rmu);
		if (c != NULL) {
			pg->readers[slot] = c;
			pthread_mutex_unlock(&pg->rmu);
			return c;
		}
		/* No memory for libpq: the slot stays empty and this thread waits for a
		 * connection in use (the first is made at start, so there is one). */
		log_warnx("store: no memory for a read connection");
	}
	c = pg->free_readers[--pg->nfree];
	pthread_mutex_unlock(&pg->rmu);
	/* A connection the server or the network dropped: one new try, then the
	 * query fails with libpq's message (503 to the client). */
	if (!hr_pg_conn_alive(c)) {
		PQreset(c);
		if (!session_ready(c)) /* as a new one that failed says (scaling.md) */
			say_reader_failed(c);
	}
	return c;
}

void
hr_pg_reader_put(struct hr_store_backend *pg, PGconn *c)
{
	pthread_mutex_lock(&pg->rmu);
	/* The free ones are taken from the top. One that is down (refused, dropped)
	 * goes under those that are up: the next read takes one that works, and tries
	 * this one again only when no other is free. */
	if (PQstatus(c) != CONNECTION_OK && pg->nfree > 0) {
		memmove(&pg->free_readers[1], &pg->free_readers[0],
		    pg->nfree * sizeof(*pg->free_readers));
		pg->free_readers[0] = c;
		pg->nfree++;
	} else {
		pg->free_readers[pg->nfree++] = c;
	}
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
