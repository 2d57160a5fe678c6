/*
 * pg_pipe.c - a run of statements in one round trip (libpq's pipeline mode).
 *
 * The writer stores a batch as a few statements per event. Run one at a time,
 * each waited for the server's answer before the next was sent: a round trip
 * per statement, all of them under the event order lock (pg_write.c), so a
 * database a millisecond away held a node, and with the lock the whole
 * cluster, to a few hundred events a second. A pipe sends statements, then a
 * sync, and reads their results in the order they were sent.
 *
 * Statements are prepared once per connection, in the cache pg_exec_prepared()
 * uses; a statement the connection has not prepared yet has its prepare sent in
 * the pipe before it. In a transaction, a statement that fails aborts it and the
 * server skips everything else up to the sync (PGRES_PIPELINE_ABORTED): the pipe
 * has failed, and the writer fails or retries the batch as for any failed write.
 *
 * The connection stays blocking, so libpq may wait to write while the server
 * waits for its answers to be read; those are a few dozen bytes a statement, far
 * below a socket's buffer for the runs the writer sends.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "hr/log.h"
#include "pg_int.h"

/* ITEM_CONTROL: a command without parameters whose result the pipe reads itself
 * (BEGIN, SAVEPOINT, RELEASE), as it does a prepare's. */
enum item_kind { ITEM_STATEMENT, ITEM_PREPARE, ITEM_CONTROL, ITEM_SYNC, ITEM_UNSENT };

struct pg_pipe_item {
	enum item_kind kind;
	unsigned prepared; /* ITEM_PREPARE: its index in the cache */
	const char *sql;
};

static void
add_item(struct pg_pipe *pp, enum item_kind kind, unsigned prepared, const char *sql)
{
	if (pp->n == pp->cap) {
		size_t cap = pp->cap ? pp->cap * 2 : 32;
		struct pg_pipe_item *items = realloc(pp->items, cap * sizeof(*items));

		if (items == NULL) {
			/* Nothing can be read in order any more: give the pipe up. */
			log_warnx("store: postgresql: out of memory for a pipeline");
			pp->failed = pp->broken = true;
			return;
		}
		pp->items = items;
		pp->cap = cap;
	}
	pp->items[pp->n++] = (struct pg_pipe_item){ kind, prepared, sql };
	pp->unsynced = kind == ITEM_SYNC ? 0 : pp->unsynced + 1;
}

bool
pg_pipe_open(struct pg_pipe *pp, struct pg_prepared *cache, PGconn *c)
{
	*pp = (struct pg_pipe){ .c = c, .cache = cache };
	pg_timed_out_clear();
	if (c == NULL || PQstatus(c) != CONNECTION_OK || !PQenterPipelineMode(c)) {
		pp->failed = pp->broken = true;
		return false;
	}
	return true;
}

static void
send_statement(struct pg_pipe *pp, const char *sql, const struct pg_params *p, bool prepare)
{
	struct pg_prepared *cache = pp->cache;
	char name[PG_NAME_LEN];
	unsigned i;

	if (pp->broken || (p != NULL && p->overflow)) {
		if (p != NULL && p->overflow)
			log_warnx("store: postgresql: too many parameters for %.80s", sql);
		pp->failed = true;
		add_item(pp, ITEM_UNSENT, 0, sql);
		return;
	}
	i = prepare && p != NULL && p->n > 0 ? pg_prepared_find(cache, pp->c, sql, name)
	                                     : PG_PREPARED_MAX;
	if (i == PG_PREPARED_MAX) { /* no parameters, or the cache is full */
		if (!PQsendQueryParams(pp->c, sql, p ? p->n : 0, p ? p->type : NULL,
		        p ? p->v : NULL, p ? p->len : NULL, p ? p->fmt : NULL, 1))
			goto unsent;
	} else {
		if (i == cache->n) {
			if (!PQsendPrepare(pp->c, name, sql, p->n, p->type))
				goto unsent;
			cache->sql[cache->n++] = sql; /* taken back if the prepare fails */
			add_item(pp, ITEM_PREPARE, i, sql);
		}
		if (!PQsendQueryPrepared(pp->c, name, p->n, p->v, p->len, p->fmt, 1))
			goto unsent;
	}
	add_item(pp, ITEM_STATEMENT, 0, sql);
	return;
unsent:
	log_warnx("store: postgresql: %.120s: %s", sql, PG_ONE_LINE(PQerrorMessage(pp->c)));
	pp->failed = pp->broken = true;
	add_item(pp, ITEM_UNSENT, 0, sql);
}

void
pg_pipe_send(struct pg_pipe *pp, const char *sql, const struct pg_params *p)
{
	send_statement(pp, sql, p, true);
}

void
pg_pipe_send_planned(struct pg_pipe *pp, const char *sql, const struct pg_params *p)
{
	send_statement(pp, sql, p, false);
}

void
pg_pipe_control(struct pg_pipe *pp, const char *sql)
{
	if (!pp->broken && PQsendQueryParams(pp->c, sql, 0, NULL, NULL, NULL, NULL, 1)) {
		add_item(pp, ITEM_CONTROL, 0, sql);
		return;
	}
	if (!pp->broken)
		log_warnx("store: postgresql: %s: %s", sql, PG_ONE_LINE(PQerrorMessage(pp->c)));
	pp->failed = pp->broken = true;
	pp->begin_lost |= strcmp(sql, "BEGIN") == 0;
	add_item(pp, ITEM_UNSENT, 0, sql);
}

void
pg_pipe_begin(struct pg_pipe *pp)
{
	pg_pipe_control(pp, "BEGIN");
}

bool
pg_pipe_sync(struct pg_pipe *pp)
{
	if (pp->broken)
		return false;
	if (!PQpipelineSync(pp->c)) {
		log_warnx("store: postgresql: sending a pipeline: %s",
		    PG_ONE_LINE(PQerrorMessage(pp->c)));
		pp->failed = pp->broken = true;
		return false;
	}
	add_item(pp, ITEM_SYNC, 0, NULL);
	pp->deadline = pg_deadline();
	return true;
}

/* The next result of the connection, within the pipe's deadline; each result
 * gives the next statement statement_timeout again, as if sent alone. */
static PGresult *
next_result(struct pg_pipe *pp)
{
	PGresult *r;

	if (pp->broken)
		return NULL;
	r = pg_next_result(pp->c, &pp->deadline, &pp->cancelled, NULL);
	if (!pp->cancelled)
		pp->deadline = pg_deadline();
	if (r == NULL && PQstatus(pp->c) != CONNECTION_OK)
		pp->broken = true; /* failed once read_item() has told it */
	return r;
}

/* The end of one statement's results (a NULL), or of the pipe's: a broken
 * connection gives no more of either. */
static void
end_of_results(struct pg_pipe *pp)
{
	PGresult *extra;

	while ((extra = next_result(pp)) != NULL) {
		/* A statement gives one result; anything more is read and dropped. */
		PQclear(extra);
	}
}

static const char *
sqlstate(const PGresult *r)
{
	const char *s = PQresultErrorField(r, PG_DIAG_SQLSTATE);

	return s != NULL ? s : "";
}

/* Read the item at the head; a statement's result is returned, the rest are
 * consumed here. */
static PGresult *
read_item(struct pg_pipe *pp, const struct pg_pipe_item *it)
{
	PGresult *r;
	ExecStatusType st;

	if (it->kind == ITEM_UNSENT)
		return NULL;
	r = next_result(pp);
	st = PQresultStatus(r);
	if (it->kind == ITEM_SYNC) {
		if (r != NULL && st != PGRES_PIPELINE_SYNC)
			pp->failed = true;
		PQclear(r);
		return NULL;
	}
	if (r != NULL)
		end_of_results(pp);
	if (r != NULL && (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)) {
		if (it->kind == ITEM_STATEMENT)
			return r;
		PQclear(r); /* a prepare or a control command that worked */
		return NULL;
	}
	if (it->kind == ITEM_CONTROL && strcmp(it->sql, "BEGIN") == 0 &&
	    PQstatus(pp->c) != CONNECTION_OK)
		pp->begin_lost = true;
	/* Told once a pipe: what fails after the first failure (skipped, or a
	 * connection gone) is its consequence. The statement a cancel ended is
	 * the one that ran out of time (the pipe's deadline, pg_db.c). */
	if (!pp->failed && st != PGRES_PIPELINE_ABORTED && pp->cancelled && r != NULL &&
	    strcmp(sqlstate(r), "57014") == 0)
		log_warnx("store: postgresql: no answer within [storage] statement_timeout"
		          " to %.80s: cancelled",
		    it->sql);
	else if (!pp->failed && st != PGRES_PIPELINE_ABORTED)
		log_warnx("store: postgresql: %.120s: %s", it->sql,
		    PG_ONE_LINE(r != NULL ? PQresultErrorMessage(r) : PQerrorMessage(pp->c)));
	if (it->kind == ITEM_PREPARE && pp->cache->n > it->prepared)
		pp->cache->n = it->prepared; /* not prepared, nor any sent after it */
	pp->failed = true;
	PQclear(r);
	return NULL;
}

PGresult *
pg_pipe_next(struct pg_pipe *pp)
{
	while (pp->next < pp->n) {
		const struct pg_pipe_item *it = &pp->items[pp->next++];
		PGresult *r = read_item(pp, it);

		if (it->kind == ITEM_STATEMENT || it->kind == ITEM_UNSENT)
			return r;
	}
	pp->failed = true; /* more results asked for than statements sent */
	return NULL;
}

bool
pg_pipe_next_ok(struct pg_pipe *pp)
{
	PGresult *r = pg_pipe_next(pp);

	PQclear(r);
	return r != NULL;
}

bool
pg_pipe_read_ok(struct pg_pipe *pp, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!pg_pipe_next_ok(pp))
			return false;
	return true;
}

int
pg_pipe_close(struct pg_pipe *pp)
{
	/* What was sent after the last sync has no answer coming without one. */
	if (pp->unsynced > 0 && !pp->broken)
		pg_pipe_sync(pp);
	while (pp->next < pp->n)
		PQclear(read_item(pp, &pp->items[pp->next++]));
	if (pp->broken && pp->c != NULL && PQstatus(pp->c) == CONNECTION_OK) {
		/* Results may be on their way that nothing would read in order: the
		 * connection is closed, and the writer replaces it. */
		shutdown(PQsocket(pp->c), SHUT_RDWR);
		PQconsumeInput(pp->c);
	} else if (!pp->broken && !PQexitPipelineMode(pp->c)) {
		log_warnx("store: postgresql: leaving a pipeline: %s",
		    PG_ONE_LINE(PQerrorMessage(pp->c)));
		pp->failed = true;
	}
	free(pp->items);
	pp->items = NULL;
	pp->n = pp->cap = pp->next = 0;
	return pp->failed || pp->broken ? HR_EDB : HR_OK;
}
