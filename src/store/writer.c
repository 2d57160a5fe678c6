/*
 * writer.c - the one writer thread and its group commit, for any engine.
 *
 * Callers queue typed writes; the writer takes up to batch_max of them and
 * hands them to the engine inside one transaction, which it commits once.
 * With synchronous=FULL the fsync is the cost of a commit, so under load
 * many events share it: throughput comes from batching, not from weaker
 * durability. Only after the commit returns are the writes' done()
 * callbacks run, which is when the HTTP layer may answer 2xx.
 *
 * Writes almost never fail, so a batch first goes without a savepoint per
 * write (two statements fewer each). If one fails, nothing of that attempt
 * is kept: the batch runs again from its inputs with a savepoint per write,
 * so the others still commit. Results are reset between the two, and an
 * engine reads only inputs, so a retried write never sees what the first
 * pass made of it.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hr/log.h"
#include "hr/ratelimit.h"
#include "hr/timefmt.h"
#include "store_int.h"

#define EXPIRE_MAX           1000u                   /* dedup keys removed per batch at most */
#define EXPIRE_AGAIN_US      (INT64_C(1000000))      /* ... soon again while there are more */
#define EXPIRE_EVERY_US      (INT64_C(60) * 1000000) /* ... else once a minute */
#define FOLD_MAX             4096u                   /* delivery count changes folded per batch */
#define FOLD_EVERY_US        (INT64_C(1000000))      /* ... at most once a second */
#define REPLAY_CHUNK         5000  /* events a destination's replay takes per batch ... */
#define REPLAY_WINDOW        10000 /* ... among at most this many (chunk_goes_on) */
#define DISCARD_CHUNK        5000  /* pending deliveries a discard gives up per batch */
#define DROP_LOG_INTERVAL_US (INT64_C(60) * 1000000) /* see trim_rejections() */

/* A full disk fails every batch: their lines in moderation (ratelimit.h). */
static struct hr_logflood batch_failed_log = HR_LOGFLOOD_INIT;

/* ---- one write ---- */

/* A replay or discard in chunks that the configuration no longer wants (a
 * reload since the request, or since its last chunk): it ends here, and the
 * chunks before stay (chunk_goes_on). */
static int
stop_before_chunk(struct hr_store_op *op)
{
	op->res.stopped = true;
	op->res.count = 0;
	op->chunk_next = -1;
	return HR_OK;
}

/* Every write but the ingest batch: the engine's operation for its type. */
static int
write_one(struct hr_store *s, struct hr_store_op *op)
{
	const struct hr_store_ops *o = s->ops;

	switch (op->type) {
	case HR_OP_EVENT: {
		const struct hr_event_write *in = op->in;
		struct hr_store_result *res = &op->res;

		return o->put_events(s->b, &in, &res, 1);
	}
	case HR_OP_REJECTION:
		return o->put_rejection(s->b, op->in);
	case HR_OP_ACCEPT: {
		const struct hr_accept_write *in = op->in;

		if (in->route_now != NULL)
			in->route_now(in->arg);
		return o->accept_rejection(s->b, op->in, &op->res);
	}
	case HR_OP_ATTEMPT: {
		const struct hr_attempt *in = op->in;

		return o->record_attempts(s->b, &in, 1);
	}
	case HR_OP_LEASE:
		return o->lease(s->b, op->in);
	case HR_OP_DESTINATION:
		return o->set_destination(s->b, op->in);
	case HR_OP_REPLAY: {
		struct hr_replay chunk = *(const struct hr_replay *)op->in;

		if (chunk.still_configured != NULL && !chunk.still_configured(chunk.arg))
			return stop_before_chunk(op);
		if (chunk.destination != NULL) {
			chunk.after_seq = op->chunk_after;
			chunk.limit = REPLAY_CHUNK;
			chunk.window = REPLAY_WINDOW;
		}
		return o->replay(s->b, &chunk, &op->res.count, &op->chunk_next);
	}
	case HR_OP_DISCARD: {
		struct hr_discard chunk = *(const struct hr_discard *)op->in;

		if (chunk.still_gone != NULL && !chunk.still_gone(chunk.arg))
			return stop_before_chunk(op);
		chunk.after_id = op->chunk_after;
		chunk.limit = DISCARD_CHUNK;
		chunk.now_us = hr_time_now_us();
		return o->discard(s->b, &chunk, &op->res.count, &op->chunk_next);
	}
	case HR_OP_PRUNE:
		return o->prune(s->b, op->in, op->out);
	default: /* HR_OP_PING */
		return op->probe ? o->probe_write(s->b) : HR_OK;
	}
}

/* With a savepoint of its own: a failure rolls back this write only. */
static int
write_alone(struct hr_store *s, struct hr_store_op *op)
{
	int rc;

	if (s->ops->savepoint(s->b) != HR_OK)
		return HR_EDB;
	rc = write_one(s, op);
	if (s->ops->release(s->b, rc != HR_OK) != HR_OK)
		return HR_EDB;
	return rc;
}

static void
reset_result(struct hr_store_op *op)
{
	memset(&op->res, 0, sizeof(op->res));
}

/* How a pass over the batch's writes went. */
enum pass { PASS_OK, PASS_SOME_FAILED, PASS_TXN_LOST };

/*
 * Is nothing written after `op`'s run: every op from `op` on a pruning pass
 * (written before the others) or a watchdog's ping (writes nothing)? A ping
 * queued behind a drain's record once kept the COMMIT from its round trip: on
 * PostgreSQL a round trip more for that record, about once a second.
 */
static bool
nothing_written_from(const struct hr_store_op *op)
{
	for (; op != NULL; op = op->next)
		if ((op->type != HR_OP_PRUNE && op->type != HR_OP_PING) || op->probe)
			return false;
	return true;
}

/* The writes from `first` on of its type (events, or attempts' records), up to
 * the next write of another type, in one call of the engine (an ingest batch, a
 * drain's records); returns the write after them. `commit_last`: a run that is
 * the batch's last write may take the COMMIT with it (store_ops.h). */
static struct hr_store_op *
write_run(
    struct hr_store *s, struct hr_store_op *first, bool commit_last, bool *all_ok, bool *committed)
{
	struct hr_store_op *op = first;
	size_t n = 0;
	int rc;

	for (; op != NULL && op->type == first->type && n < s->opts.batch_max; op = op->next) {
		if (first->type == HR_OP_EVENT) {
			s->run_in[n] = op->in;
			s->run_res[n] = &op->res;
		} else {
			s->run_attempts[n] = op->in;
		}
		n++;
	}
	if (commit_last && nothing_written_from(op)) {
		s->ops->commit_with_write(s->b);
		*committed = true;
	}
	rc = first->type == HR_OP_EVENT ? s->ops->put_events(s->b, s->run_in, s->run_res, n)
	                                : s->ops->record_attempts(s->b, s->run_attempts, n);
	for (struct hr_store_op *e = first; e != op; e = e->next)
		e->res.status = rc;
	*all_ok &= rc == HR_OK;
	return op;
}

/*
 * Write every op; with `savepoints` each on its own, so one failure fails
 * alone. A failure that ended the transaction ends the pass: what was
 * written is gone with it, and a write after it would commit by itself. So
 * does a pruning pass's (SQLite ends the transaction on a full disk): the
 * writes after it committed one by one, a dedup key without its event (R2).
 */
static enum pass
write_all(struct hr_store *s, struct hr_store_op *batch, bool savepoints, bool commit_last)
{
	bool all_ok = true, committed = false;

	for (struct hr_store_op *r = batch; r != NULL; r = r->next)
		reset_result(r);
	/* Pruning passes first: one that ran after a write of its own transaction
	 * could remove that event's payload or that rejection (the oldest go first,
	 * the newest when nothing older is left) before its answer says it is kept. */
	for (int pass = 0; pass < 2; pass++) {
		struct hr_store_op *op = batch;

		while (op != NULL) {
			if ((op->type == HR_OP_PRUNE) != (pass == 0)) {
				op = op->next;
			} else if (op->type == HR_OP_PRUNE) {
				/* Undone alone, and no write's failure: the pruner tries
				 * again at its next interval. On PostgreSQL a failed
				 * statement aborts the transaction, and the writes would
				 * all be retried one by one (each waiting out its own
				 * statement_timeout when the pass timed out on a lock). */
				op->res.status = write_alone(s, op);
				op = op->next;
			} else if (!savepoints &&
			    (op->type == HR_OP_EVENT || op->type == HR_OP_ATTEMPT)) {
				/* Not after a failure: the pass is to be retried, and what
				 * this run committed would be written twice. */
				op = write_run(s, op, commit_last && all_ok, &all_ok, &committed);
			} else {
				op->res.status = savepoints ? write_alone(s, op) : write_one(s, op);
				all_ok &= op->res.status == HR_OK;
				op = op->next;
			}
			/* Not the COMMIT the last run took along. */
			if (!(all_ok && committed) && !s->ops->in_transaction(s->b))
				return PASS_TXN_LOST;
		}
	}
	return all_ok ? PASS_OK : PASS_SOME_FAILED;
}

/* ---- one batch ---- */

/* Does this write give the forwarder something new to do once committed? */
static bool
wakes_forwarder(const struct hr_store_op *op)
{
	const struct hr_event_write *ev = op->in;
	const struct hr_accept_write *acc = op->in;

	if (op->res.status != HR_OK)
		return false;
	switch (op->type) {
	case HR_OP_EVENT:
		return ev->ndestinations > 0 && !op->res.duplicate;
	case HR_OP_ACCEPT:
		return acc->event.ndestinations > 0 && op->res.count > 0;
	case HR_OP_REPLAY:
		return op->res.count > 0;
	case HR_OP_DESTINATION:
		return true;
	default:
		return false;
	}
}

/*
 * Housekeeping rides in a batch's transaction under a savepoint of its own: on
 * PostgreSQL a failed statement (a deadlock with another node's trim, a
 * statement_timeout) aborts the whole transaction, and the batch's writes must
 * not fail with it. False: not begun (the batch goes on without it).
 */
static bool
housekeeping_begin(struct hr_store *s)
{
	return s->ops->savepoint(s->b) == HR_OK;
}

/* A failed step is undone alone; a savepoint that cannot be left fails the commit. */
static void
housekeeping_end(struct hr_store *s, int rc)
{
	(void)s->ops->release(s->b, rc != HR_OK);
}

/* Expired dedup keys go a thousand at a time, so a batch never waits long for them. */
static void
expire_dedup(struct hr_store *s)
{
	int64_t now = hr_time_now_us();
	unsigned n = 0;

	if (now < s->next_expire_us || !housekeeping_begin(s))
		return;
	housekeeping_end(s, s->ops->expire_dedup(s->b, now, EXPIRE_MAX, &n));
	s->next_expire_us =
	    hr_time_now_us() + (n == EXPIRE_MAX ? EXPIRE_AGAIN_US : EXPIRE_EVERY_US);
}

/*
 * The engine's delivery count changes into their totals, so that reading a
 * count adds up few of them (store_ops.h: PostgreSQL's), at most once a
 * second; a batch that comes sooner leaves its changes to a fold when the
 * second is up, by the next batch or while the writer is idle (take_batch).
 */
static int
fold_counts(struct hr_store *s, bool alone)
{
	int64_t now = hr_time_mono_us();
	unsigned n = 0;
	int rc;

	if (!s->ops->folds_counts)
		return HR_OK;
	if (now < s->next_fold_us) {
		s->fold_wanted = true;
		return HR_OK;
	}
	if (alone) /* the transaction's only write: it may take the COMMIT along */
		s->ops->commit_with_write(s->b);
	else if (!housekeeping_begin(s))
		return HR_OK;
	rc = s->ops->fold_counts(s->b, FOLD_MAX, &n);
	if (!alone)
		housekeeping_end(s, rc);
	s->fold_wanted = rc == HR_OK && n == FOLD_MAX;
	s->next_fold_us = s->fold_wanted ? now : now + FOLD_EVERY_US; /* more: at once */
	return rc;
}

/* Keep the newest rejections_max rejections, and never fewer than the `fresh`
 * ones this batch stored (the newest: their answers, sent after the commit,
 * say they are kept); say so when older ones go, at most once a minute (a flood of 422s
 * would otherwise log one line per commit); the counter has every one. */
static void
trim_rejections(struct hr_store *s, unsigned fresh)
{
	uint64_t n = 0, total;
	int64_t now;
	int rc;

	if (!housekeeping_begin(s))
		return;
	rc = s->ops->trim_rejections(
	    s->b, s->opts.rejections_max > fresh ? s->opts.rejections_max : fresh, &n);
	housekeeping_end(s, rc);
	if (rc != HR_OK || n == 0)
		return;
	total = atomic_fetch_add(&s->rejections_dropped, n) + n;
	now = hr_time_mono_us();
	if (now >= s->next_drop_log_us) {
		log_warnx("store: [storage] rejections_max (%u) dropped the oldest rejected bodies;"
		          " %llu so far (hookrelay_rejections_dropped_total)",
		    s->opts.rejections_max, (unsigned long long)total);
		s->next_drop_log_us = now + DROP_LOG_INTERVAL_US;
	}
}

static void
fail_all(struct hr_store_op *batch)
{
	for (struct hr_store_op *op = batch; op != NULL; op = op->next) {
		op->res.status = HR_EDB;
		/* What a failed pruning pass kept went with the batch: none of it counts. */
		if (op->type == HR_OP_PRUNE)
			memset(op->out, 0, sizeof(struct hr_prune_result));
	}
}

/*
 * Does housekeeping follow this batch's writes, in its transaction? Then no
 * write takes the COMMIT with it. Each step looks at its own time again. A
 * fold due goes in a batch only once it is a second late: over a network its
 * statements are round trips the batch's answers wait for, and a writer with
 * a moment free folds alone (take_batch), after them. One that never has a
 * moment free (a steady load) still folds every two seconds.
 */
static bool
housekeeping_due(const struct hr_store *s, const struct hr_store_op *batch)
{
	if (hr_time_now_us() >= s->next_expire_us ||
	    (s->ops->folds_counts && hr_time_mono_us() >= s->next_fold_us + FOLD_EVERY_US))
		return true;
	for (; batch != NULL; batch = batch->next)
		if (batch->type == HR_OP_REJECTION) /* trim_rejections() */
			return true;
	return false;
}

/* The writes of the batch, retried one at a time if any failed; false: no
 * transaction to commit (every write of the batch fails). `commit_last`: its
 * last write may take the COMMIT (the retry's are each under a savepoint). */
static bool
write_batch_body(struct hr_store *s, struct hr_store_op *batch, bool commit_last)
{
	const struct hr_store_ops *o = s->ops;

	if (o->begin(s->b) != HR_OK)
		return false;
	if (write_all(s, batch, false, commit_last) == PASS_OK)
		return true;
	o->rollback(s->b); /* none left if the pass lost it: the engine's error is ignored */
	if (o->begin(s->b) != HR_OK)
		return false;
	return write_all(s, batch, true, false) != PASS_TXN_LOST;
}

static bool
wrote_something(const struct hr_store_op *batch)
{
	for (const struct hr_store_op *op = batch; op != NULL; op = op->next)
		if (op->type != HR_OP_PING || op->probe)
			return true;
	return false;
}

/* Did every write of the batch fail (its own statement, or the commit)? One
 * bad write among others that committed says nothing of the database. */
static bool
every_write_failed(const struct hr_store_op *batch)
{
	for (const struct hr_store_op *op = batch; op != NULL; op = op->next)
		if ((op->type != HR_OP_PING || op->probe) && op->res.status == HR_OK)
			return false;
	return true;
}

/* Write and commit one batch; every write's status says how it ended. Returns
 * whether it committed; *wake: the forwarder has new work. */
static bool
write_batch(struct hr_store *s, struct hr_store_op *batch, bool *wake_out)
{
	bool housekeeping = housekeeping_due(s, batch);
	bool ok = write_batch_body(s, batch, !housekeeping), wake = false;
	unsigned long held;
	unsigned rejections = 0;

	if (!ok)
		fail_all(batch);
	for (struct hr_store_op *op = batch; op != NULL; op = op->next) {
		rejections += op->type == HR_OP_REJECTION && op->res.status == HR_OK;
		wake |= wakes_forwarder(op);
	}
	if (ok && housekeeping) {
		expire_dedup(s);
		(void)fold_counts(s, false);
	} else if (ok && s->ops->folds_counts) {
		s->fold_wanted = true; /* this batch's changes, when the second is up */
	}
	if (ok && housekeeping && rejections > 0)
		trim_rejections(s, rejections);
	if (ok && s->ops->commit(s->b) != HR_OK) {
		ok = false; /* nothing of this batch is durable: no write may be acknowledged */
		fail_all(batch);
	}
	if (!s->ops->durable(s->b)) {
		ok = false;
		fail_all(batch);
	}
	if (ok && s->failing > 0 && !(wrote_something(batch) && every_write_failed(batch))) {
		log_info("store: writes commit again, after %lu failed batches", s->failing);
		s->failing = 0;
	} else if (!ok) {
		s->failing++;
	}
	unsigned n = 0;

	for (struct hr_store_op *op = batch; !ok && op != NULL; op = op->next)
		n += op->type != HR_OP_PING;
	/* A batch of the watchdog's pings alone lost nothing: counted in `failing`, not
	 * an error line a second while an idle daemon's database takes no writes. */
	if (n > 0 && hr_logflood_take(&batch_failed_log, hr_time_mono_us(), &held)) {
		if (held > 0)
			log_errx("store: %lu failed batches were not logged (a flood)", held);
		/* error: the webhooks among them were answered 503, and Tavus and
		 * PailFlow do not retry (the cause is the store's line before) */
		log_errx(
		    "store: a batch of writes failed to commit: its %u writes are not stored", n);
	}
	*wake_out = ok && wake;
	return ok;
}

/* ---- the thread ---- */

/*
 * One fold of delivery count changes in a transaction of its own, when one is
 * due and nothing is queued (take_batch): the last batches' changes, and what
 * a bulk change (a prune, a discard, a replay) leaves past one fold; with no
 * writes coming they would stay, and every read of a count would add them up.
 * A full fold makes the next one due at once, so take_batch goes on folding
 * until a write is queued or a stop is asked for (a million changes take
 * seconds). A failure ends it until a batch wants a fold again (no loop
 * against a database that is away).
 */
static void
fold_alone(struct hr_store *s)
{
	bool ok;

	/* Held here (a lock from outside, a slow server) the writer answers no
	 * webhook: the batch age and /readyz must show it as for a batch (a
	 * review: 0 and 200 while a webhook waited). */
	pthread_mutex_lock(&s->mu);
	s->stats.busy_since_us = hr_time_mono_us();
	pthread_mutex_unlock(&s->mu);
	ok = s->ops->begin(s->b) == HR_OK;
	s->fold_wanted = false;
	if (ok && fold_counts(s, true) != HR_OK) {
		s->ops->rollback(s->b); /* no savepoint: the fold was all it held */
		ok = false;
	} else if (ok) {
		ok = s->ops->commit(s->b) == HR_OK;
	}
	/* As after a batch: what the engine noted of a lost connection or a
	 * timeout was this transaction's, not the next batch's. */
	(void)s->ops->durable(s->b);
	if (!ok)
		s->fold_wanted = false;
	pthread_mutex_lock(&s->mu);
	s->stats.busy_since_us = 0;
	s->stats.last_batch_failed = !ok;
	pthread_mutex_unlock(&s->mu);
}

/* Wait on the queue at most until `until_us` (hr_time_mono_us(); the cv's
 * clock is CLOCK_MONOTONIC, so a change of the wall clock moves nothing). */
static void
wait_until(struct hr_store *s, int64_t until_us)
{
	struct timespec ts = { .tv_sec = until_us / 1000000,
		.tv_nsec = (until_us % 1000000) * 1000 };

	(void)pthread_cond_timedwait(&s->cv, &s->mu, &ts);
}

/* The next batch; NULL when stopping, or, with *fold_due, when nothing came
 * before a fold of delivery counts was due. */
static struct hr_store_op *
take_batch(struct hr_store *s, unsigned *n, bool *fold_due)
{
	struct hr_store_op *head, *last;
	unsigned pings;

	*fold_due = false;
	pthread_mutex_lock(&s->mu);
	while (s->head == NULL && !s->stopping && !*fold_due) {
		if (!s->fold_wanted)
			pthread_cond_wait(&s->cv, &s->mu);
		else if (hr_time_mono_us() < s->next_fold_us)
			wait_until(s, s->next_fold_us);
		else
			*fold_due = true;
	}
	head = s->head;
	last = head;
	*n = head != NULL;
	pings = head != NULL && head->type == HR_OP_PING;
	while (last != NULL && last->next != NULL && *n < s->opts.batch_max) {
		last = last->next;
		(*n)++;
		pings += last->type == HR_OP_PING;
	}
	if (last != NULL) {
		s->head = last->next;
		if (s->head == NULL)
			s->tail = NULL;
		last->next = NULL;
		s->queued -= *n;
		s->pings_queued -= pings;
		s->stats.busy_since_us = hr_time_mono_us();
	}
	pthread_mutex_unlock(&s->mu);
	return head;
}

unsigned
hr_store_fail_queued(struct hr_store *s)
{
	struct hr_store_op *op, *next;
	unsigned n;

	pthread_mutex_lock(&s->mu);
	op = s->head;
	n = s->queued;
	s->head = s->tail = NULL;
	s->queued = s->pings_queued = 0;
	pthread_mutex_unlock(&s->mu);
	for (; op != NULL; op = next) {
		next = op->next; /* done() may free the op */
		op->next = NULL;
		memset(&op->res, 0, sizeof(op->res));
		op->res.status = HR_ECLOSED; /* not the database's doing: the stop's */
		op->done(op, op->arg);
	}
	return n;
}

/* Did this committed batch store a new event (for the listeners)? */
static bool
stored_events(const struct hr_store_op *batch)
{
	for (const struct hr_store_op *op = batch; op != NULL; op = op->next)
		if ((op->type == HR_OP_EVENT || (op->type == HR_OP_ACCEPT && op->res.count >= 0)) &&
		    op->res.status == HR_OK && !op->res.duplicate)
			return true;
	return false;
}

/* Tell the listeners once the events are durable and visible to readers. */
static void
notify_listeners(struct hr_store *s)
{
	struct hr_store_listener copy[HR_STORE_LISTENERS];
	unsigned n;

	pthread_mutex_lock(&s->mu);
	n = s->nlisteners;
	memcpy(copy, s->listeners, sizeof(copy));
	pthread_mutex_unlock(&s->mu);
	for (unsigned i = 0; i < n; i++)
		copy[i].fn(copy[i].arg);
}

/* While the last write failed, the batch's pings probe whether writes commit
 * again (store_ops.h, probe_write); else they write nothing. */
static void
mark_probes(struct hr_store *s, struct hr_store_op *batch)
{
	bool failing;

	pthread_mutex_lock(&s->mu);
	failing = s->stats.last_write_failed;
	pthread_mutex_unlock(&s->mu);
	for (struct hr_store_op *op = batch; op != NULL; op = op->next)
		op->probe = op->type == HR_OP_PING && failing;
}

/* Count the batch; one that wrote says whether writes commit (a ping's empty
 * transaction may succeed on a file system that takes no writes). */
static void
count_batch(struct hr_store *s, unsigned n, bool failed, bool wrote)
{
	pthread_mutex_lock(&s->mu);
	s->stats.batches++;
	s->stats.jobs += n;
	s->stats.failed_batches += failed;
	s->stats.last_commit_us = hr_time_mono_us();
	s->stats.busy_since_us = 0;
	s->stats.last_batch_failed = failed;
	if (wrote)
		s->stats.last_write_failed = failed;
	pthread_mutex_unlock(&s->mu);
}

/* The forwarder has new work: its hook, under hook_mu (see store_int.h). */
static void
call_commit_hook(struct hr_store *s)
{
	pthread_mutex_lock(&s->hook_mu);
	if (s->commit_hook != NULL)
		s->commit_hook(s->commit_hook_arg);
	pthread_mutex_unlock(&s->hook_mu);
}

/* At the back of the queue; under s->mu. */
static void
enqueue(struct hr_store *s, struct hr_store_op *op)
{
	if (s->tail != NULL)
		s->tail->next = op;
	else
		s->head = op;
	s->tail = op;
	s->queued++;
}

/*
 * A destination's replay goes a chunk per batch, not in one transaction:
 * 200,000 deliveries held the writer 1.9 s on SQLite and 3.6 s on PostgreSQL,
 * and every webhook that came meanwhile waited for them. A chunk takes at most
 * REPLAY_CHUNK events among the REPLAY_WINDOW after the last one's end (so a
 * destination with few events among many costs a bounded walk per chunk, and
 * the whole replay one walk over the events). PostgreSQL may test every event
 * of the window before it sorts them, so the window is twice the chunk: with
 * 50,000, a replay of 200,000 on tables never analyzed took 25 s, with 10,000
 * 10 s. A chunk that committed queues the replay again, at the back: the
 * writes queued meanwhile go first. The request is answered once a chunk
 * reached the last event, with the deliveries of all; a failure ends it with
 * those committed before kept (a replay again skips the events that have a
 * pending delivery). A discard goes the same way, DISCARD_CHUNK rows at a time
 * (1.2-1.9 s on SQLite and 3.3-3.7 s on PostgreSQL for 200,000 in one).
 */
static bool
chunk_goes_on(struct hr_store *s, struct hr_store_op *op)
{
	if (op->type == HR_OP_REPLAY ? ((const struct hr_replay *)op->in)->destination == NULL
	                             : op->type != HR_OP_DISCARD)
		return false;
	if (op->res.status == HR_OK && op->chunk_next >= 0) {
		op->done_before += op->res.count;
		op->chunk_after = op->chunk_next;
		pthread_mutex_lock(&s->mu);
		enqueue(s, op);
		pthread_mutex_unlock(&s->mu);
		return true;
	}
	/* What the chunks committed did (a failed chunk's own rolled back). */
	op->res.count = op->res.status == HR_OK ? op->res.count + op->done_before : op->done_before;
	return false;
}

static void *
writer_main(void *arg)
{
	struct hr_store *s = arg;
	struct hr_store_op *batch, *next;
	bool fold_due;
	unsigned n;

	s->fold_wanted = s->ops->folds_counts; /* what an earlier run left, at once */
	while ((batch = take_batch(s, &n, &fold_due)) != NULL || fold_due) {
		int64_t started;
		bool wake, committed;

		if (batch == NULL) {
			fold_alone(s);
			continue;
		}
		started = hr_time_mono_us();
		mark_probes(s, batch);
		committed = write_batch(s, batch, &wake);

		hr_hist_observe(&s->batch_sizes, &hr_hist_commit_batch_size, n);
		hr_hist_observe(
		    &s->commit_durations, &hr_hist_commit_duration, hr_time_mono_us() - started);
		/* Failed: not committed, or nothing it wrote was (not the first write's
		 * status alone: a bad first write failed a batch that committed, and a
		 * bad later one went unseen). */
		count_batch(s, n,
		    !committed || (wrote_something(batch) && every_write_failed(batch)),
		    wrote_something(batch));
		if (wake)
			call_commit_hook(s);
		if (stored_events(batch))
			notify_listeners(s);
		for (; batch != NULL; batch = next) {
			next = batch->next; /* done() may free the op */
			batch->next = NULL;
			if (!chunk_goes_on(s, batch))
				batch->done(batch, batch->arg);
		}
	}
	return NULL;
}

void
hr_store_remote_commit(void *arg, bool events, bool deliveries)
{
	struct hr_store *s = arg;

	if (deliveries)
		call_commit_hook(s);
	if (events)
		notify_listeners(s);
}

int
hr_store_writer_start(struct hr_store *s, struct hr_error *err)
{
	s->run_in = calloc(s->opts.batch_max, sizeof(*s->run_in));
	s->run_res = calloc(s->opts.batch_max, sizeof(*s->run_res));
	s->run_attempts = calloc(s->opts.batch_max, sizeof(*s->run_attempts));
	if (s->run_in == NULL || s->run_res == NULL || s->run_attempts == NULL)
		return hr_error_set(err, HR_ENOMEM, "writer", "out of memory");
	if (pthread_create(&s->writer, NULL, writer_main, s) != 0)
		return hr_error_set(err, HR_ENOMEM, "writer", "cannot start the writer thread");
	s->writer_started = true;
	return HR_OK;
}

void
hr_store_writer_stop(struct hr_store *s)
{
	if (s->writer_started) {
		pthread_mutex_lock(&s->mu);
		s->stopping = true;
		pthread_cond_signal(&s->cv);
		pthread_mutex_unlock(&s->mu);
		pthread_join(s->writer, NULL); /* it drains the queue first */
		s->writer_started = false;
	}
	free(s->run_in);
	free(s->run_res);
	free(s->run_attempts);
	s->run_in = NULL;
	s->run_res = NULL;
	s->run_attempts = NULL;
}

/* ---- queueing ---- */

int
hr_store_submit(struct hr_store *s, int type, const void *in, void *out, struct hr_store_op *op)
{
	int rc = HR_OK;

	op->type = type;
	op->in = in;
	op->out = out;
	op->next = NULL;
	op->done_before = op->chunk_after = op->chunk_next = 0;
	reset_result(op);
	op->res.status = HR_EDB;
	pthread_mutex_lock(&s->mu);
	if (s->stopping)
		rc = HR_ECLOSED;
	else if (s->queued >= s->opts.queue_max)
		rc = HR_EBUSY;
	if (rc == HR_OK) {
		enqueue(s, op);
		s->pings_queued += type == HR_OP_PING;
		pthread_cond_signal(&s->cv);
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int
hr_store_put_event(struct hr_store *s, const struct hr_event_write *in, struct hr_store_op *op)
{
	return hr_store_submit(s, HR_OP_EVENT, in, NULL, op);
}

int
hr_store_put_rejection(
    struct hr_store *s, const struct hr_rejection_write *in, struct hr_store_op *op)
{
	return hr_store_submit(s, HR_OP_REJECTION, in, NULL, op);
}

int
hr_store_accept_rejection(
    struct hr_store *s, const struct hr_accept_write *in, struct hr_store_op *op)
{
	return hr_store_submit(s, HR_OP_ACCEPT, in, NULL, op);
}

int
hr_store_record_attempt(struct hr_store *s, const struct hr_attempt *in, struct hr_store_op *op)
{
	return hr_store_submit(s, HR_OP_ATTEMPT, in, NULL, op);
}

int
hr_store_lease(struct hr_store *s, const struct hr_lease *in, struct hr_store_op *op)
{
	return hr_store_submit(s, HR_OP_LEASE, in, NULL, op);
}

int
hr_store_set_destination(
    struct hr_store *s, const struct hr_destination_state *in, struct hr_store_op *op)
{
	return hr_store_submit(s, HR_OP_DESTINATION, in, NULL, op);
}

int
hr_store_replay(struct hr_store *s, const struct hr_replay *in, struct hr_store_op *op)
{
	return hr_store_submit(s, HR_OP_REPLAY, in, NULL, op);
}

int
hr_store_discard(struct hr_store *s, const struct hr_discard *in, struct hr_store_op *op)
{
	return hr_store_submit(s, HR_OP_DISCARD, in, NULL, op);
}

/* ---- listeners, the hook, and the writer's pulse ---- */

int
hr_store_add_listener(struct hr_store *s, void (*fn)(void *), void *arg)
{
	int rc = HR_EBUSY;

	pthread_mutex_lock(&s->mu);
	for (unsigned i = 0; i < s->nlisteners; i++)
		if (s->listeners[i].fn == fn && s->listeners[i].arg == arg)
			rc = HR_OK;
	if (rc != HR_OK && s->nlisteners < HR_STORE_LISTENERS) {
		s->listeners[s->nlisteners].fn = fn;
		s->listeners[s->nlisteners++].arg = arg;
		rc = HR_OK;
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

void
hr_store_set_commit_hook(struct hr_store *s, void (*fn)(void *), void *arg)
{
	pthread_mutex_lock(&s->hook_mu);
	s->commit_hook = fn;
	s->commit_hook_arg = arg;
	pthread_mutex_unlock(&s->hook_mu);
}

void
hr_store_stats(struct hr_store *s, struct hr_store_stats *out)
{
	pthread_mutex_lock(&s->mu);
	*out = s->stats;
	out->queued = s->queued - s->pings_queued; /* writes: a watchdog's ping is none */
	out->queue_max = s->opts.queue_max;
	out->queue_full = s->queued >= s->opts.queue_max;
	pthread_mutex_unlock(&s->mu);
}

void
hr_store_writer_histograms(
    struct hr_store *s, struct hr_hist_snap *batch_sizes, struct hr_hist_snap *commit_durations)
{
	hr_hist_snap(&s->batch_sizes, batch_sizes);
	hr_hist_snap(&s->commit_durations, commit_durations);
}
