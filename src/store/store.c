/*
 * store.c - the store's front: open and close, and every read handed to
 * the engine (store_ops.h) the store was opened with.
 *
 * What all engines share lives here and in writer.c and retention.c: the
 * write queue and its thread, listeners, statistics, the pruning timer,
 * and the ids. What differs, SQL and connections, is the engine's.
 */
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hr/log.h"
#include "hr/timefmt.h"
#include "store_int.h"

#define DEFAULT_BATCH_MAX 256
#define DEFAULT_QUEUE_MAX 8192

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

static const char *const health_names[] = { "ok", "gone", "corrupt", "unreachable" };

const char *
hr_db_health_name(enum hr_db_health h)
{
	return health_names[h];
}

/* ---- open and close ---- */

int
hr_store_open(const struct hr_store_opts *opts, struct hr_store **out, struct hr_error *err)
{
	struct hr_store *s = NULL;
	pthread_condattr_t cattr;
	int rc = HR_ENOMEM;

	*out = NULL;
	if (opts->engine == NULL)
		return hr_error_set(err, HR_EINVAL, "engine", "no storage engine given");
	if ((s = calloc(1, sizeof(*s))) == NULL)
		goto out;
	s->ops = opts->engine;
	s->opts = *opts;
	s->opts.path = s->opts.url = NULL; /* the caller's; the engine keeps its own copy */
	if (s->opts.batch_max == 0)
		s->opts.batch_max = DEFAULT_BATCH_MAX;
	if (s->opts.queue_max == 0)
		s->opts.queue_max = DEFAULT_QUEUE_MAX;
	pthread_mutex_init(&s->mu, NULL);
	pthread_mutex_init(&s->hook_mu, NULL);
	pthread_condattr_init(&cattr);
	pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC); /* the writer's timed waits */
	pthread_cond_init(&s->cv, &cattr);
	pthread_condattr_destroy(&cattr);
	if ((rc = s->ops->open(opts, &s->b, err)) != HR_OK ||
	    (rc = hr_store_writer_start(s, err)) != HR_OK ||
	    (rc = s->ops->watch(s->b, hr_store_remote_commit, s, err)) != HR_OK)
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
	hr_store_retention_stop(s); /* its pass is a write: before the writer stops */
	hr_store_writer_stop(s);
	s->ops->close(s->b);
	pthread_mutex_destroy(&s->mu);
	pthread_mutex_destroy(&s->hook_mu);
	pthread_cond_destroy(&s->cv);
	free(s);
}

int
hr_store_backup(const struct hr_store_opts *o, const char *dest, struct hr_error *err)
{
	if (o->engine == NULL)
		return hr_error_set(err, HR_EINVAL, "engine", "no storage engine given");
	return o->engine->backup(o, dest, err);
}

bool
hr_store_claims_deliveries(const struct hr_store *s)
{
	return s->ops->claims;
}

/* ---- ids ---- */

/*
 * The random part of ids, drawn 64 ids' worth at a time per thread: each
 * RAND_bytes() call costs about 8k instructions and a getpid() (OpenSSL's
 * fork check) whatever its length. Bytes are handed out once, in order, and
 * never to another thread. hookrelay never forks after its threads start;
 * a child that did would have to drop its copy (only `left`).
 */
#define ID_RANDOM   10
#define ID_POOL_IDS 64

static _Thread_local struct {
	unsigned char bytes[ID_RANDOM * ID_POOL_IDS];
	size_t left;
} id_pool;

static void
id_random(unsigned char out[ID_RANDOM])
{
	if (id_pool.left < ID_RANDOM) {
		if (RAND_bytes(id_pool.bytes, sizeof(id_pool.bytes)) != 1) {
			/* Unreachable on Linux with getrandom(); never hand out a guessable id. */
			fatalx(70, "RAND_bytes failed");
		}
		id_pool.left = sizeof(id_pool.bytes);
	}
	id_pool.left -= ID_RANDOM;
	memcpy(out, id_pool.bytes + id_pool.left, ID_RANDOM);
	OPENSSL_cleanse(id_pool.bytes + id_pool.left, ID_RANDOM); /* handed out: not kept */
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
	id_random(raw + 6);
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

/* ---- reads: the engine's ---- */

int
hr_store_list_events(struct hr_store *s, const struct hr_event_filter *f, hr_event_row_cb cb,
    void *arg, int64_t *next_cursor, struct hr_error *err)
{
	return s->ops->list_events(s->b, f, cb, arg, next_cursor, err);
}

int
hr_store_events_after(struct hr_store *s, const struct hr_event_filter *f, int64_t after_seq,
    hr_event_row_cb cb, void *arg, struct hr_error *err)
{
	return s->ops->events_after(s->b, f, after_seq, cb, arg, err);
}

int
hr_store_get_event(
    struct hr_store *s, const char *id, hr_event_row_cb cb, void *arg, struct hr_error *err)
{
	return s->ops->get_event(s->b, id, cb, arg, err);
}

int
hr_store_list_sessions(struct hr_store *s, const struct hr_session_filter *f, hr_session_row_cb cb,
    void *arg, int64_t *next_cursor, struct hr_error *err)
{
	return s->ops->list_sessions(s->b, f, cb, arg, next_cursor, err);
}

int
hr_store_get_session(struct hr_store *s, const char *ref, hr_session_row_cb scb,
    hr_event_row_cb ecb, void *arg, unsigned max_events, bool *truncated, struct hr_error *err)
{
	bool unused;

	return s->ops->get_session(
	    s->b, ref, scb, ecb, arg, max_events, truncated != NULL ? truncated : &unused, err);
}

int
hr_store_list_rejections(struct hr_store *s, const struct hr_rejection_filter *f,
    hr_rejection_row_cb cb, void *arg, int64_t *next_cursor, struct hr_error *err)
{
	return s->ops->list_rejections(s->b, f, cb, arg, next_cursor, err);
}

int
hr_store_get_rejection(
    struct hr_store *s, const char *id, hr_rejection_row_cb cb, void *arg, struct hr_error *err)
{
	return s->ops->get_rejection(s->b, id, cb, arg, err);
}

int
hr_store_due_deliveries(struct hr_store *s, const char *destination, int64_t now_us, bool ordered,
    unsigned limit, char **window, hr_due_cb cb, void *arg, int64_t *next_due_us,
    struct hr_error *err)
{
	if (next_due_us != NULL)
		*next_due_us = -1;
	return s->ops->due_deliveries(
	    s->b, destination, now_us, ordered, limit, window, cb, arg, next_due_us, err);
}

void
hr_due_window_next(char **window, const char *last, long long walked)
{
	if (window == NULL)
		return;
	free(*window);
	/* No copy (out of memory): from the first key again, as at the end. */
	*window = walked >= HR_DUE_KEYS && last != NULL ? strdup(last) : NULL;
}

int
hr_store_next_due(struct hr_store *s, const char *destination, int64_t *out_us)
{
	return s->ops->next_due(s->b, destination, out_us);
}

struct unconfigured_walk {
	struct hr_store *s;
	bool (*configured)(const char *name, void *arg);
	hr_destination_row_cb cb;
	void *arg;
	struct hr_error *err;
};

static int
unconfigured_one(const char *name, void *arg)
{
	const struct unconfigured_walk *u = arg;
	struct hr_destination_row row;
	int rc;

	if (u->configured(name, u->arg))
		return HR_OK;
	if ((rc = u->s->ops->destination(u->s->b, name, &row, NULL, 0, u->err)) != HR_OK)
		return rc;
	return row.pending > 0 ? u->cb(&row, u->arg) : HR_OK; /* sent or given up meanwhile */
}

int
hr_store_unconfigured_destinations(struct hr_store *s,
    bool (*configured)(const char *name, void *arg), hr_destination_row_cb cb, void *arg,
    struct hr_error *err)
{
	struct unconfigured_walk u = { s, configured, cb, arg, err };

	return s->ops->pending_destinations(s->b, unconfigured_one, &u, err);
}

int
hr_store_destination(struct hr_store *s, const char *name, struct hr_destination_row *out,
    char *reason_buf, size_t reason_len, struct hr_error *err)
{
	return s->ops->destination(s->b, name, out, reason_buf, reason_len, err);
}

int
hr_store_list_deliveries(struct hr_store *s, const struct hr_delivery_filter *f,
    hr_delivery_row_cb cb, void *arg, int64_t *next_cursor, struct hr_error *err)
{
	return s->ops->list_deliveries(s->b, f, cb, arg, next_cursor, err);
}

int
hr_store_event_deliveries(struct hr_store *s, const char *event_id, int64_t after_id,
    hr_delivery_row_cb dcb, hr_attempt_row_cb acb, void *arg, int64_t *next_cursor,
    struct hr_error *err)
{
	return s->ops->event_deliveries(s->b, event_id, after_id, dcb, acb, arg, next_cursor, err);
}

int
hr_store_destination_shared(struct hr_store *s, const char *name, struct hr_destination_shared *out)
{
	return s->ops->destination_shared(s->b, name, out);
}

int
hr_store_breaker_publish(
    struct hr_store *s, const char *name, int64_t until_us, int64_t cooldown_us, bool outcome)
{
	return s->ops->breaker_publish(s->b, name, until_us, cooldown_us, outcome);
}

int
hr_store_breaker_probe(struct hr_store *s, const char *name, int64_t now_us, int64_t until_us,
    bool *won, int64_t *cooldown_us)
{
	return s->ops->breaker_probe(s->b, name, now_us, until_us, won, cooldown_us);
}

int
hr_store_replay_count(
    struct hr_store *s, const struct hr_replay *r, int64_t *count, struct hr_error *err)
{
	return s->ops->replay_count(s->b, r, count, err);
}

/* ---- health and size ---- */

int
hr_store_ping(struct hr_store *s)
{
	return s->ops->ping(s->b);
}

void
hr_store_health(struct hr_store *s, struct hr_store_health *out)
{
	s->ops->health(s->b, out);
}

int
hr_store_size(struct hr_store *s, struct hr_store_size *out)
{
	return s->ops->size(s->b, out);
}

int
hr_store_disk_free(struct hr_store *s, uint64_t *out)
{
	return s->ops->disk_free(s->b, out);
}
