/*
 * store.h - the durable event log.
 *
 * An interface a PostgreSQL backend could implement too: callers see jobs,
 * filters and rows, never SQL. Writes go through one writer thread that
 * commits many jobs per transaction (group commit); a job's `done` callback
 * runs only after its transaction is durable (WAL, synchronous=FULL), and
 * only then may the HTTP layer acknowledge it.
 */
#ifndef HR_STORE_H
#define HR_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hr/common.h"
#include "hr/event.h"

struct hr_store; /* opaque */

struct hr_store_opts {
	const char *path;        /* database file; its directory is created if missing */
	unsigned batch_max;      /* jobs per transaction */
	unsigned queue_max;      /* queued jobs; past it hr_store_submit says HR_EBUSY */
	unsigned rejections_max; /* newest rejections kept */
	unsigned readers;        /* read connections in the pool */
};

/* Open (creating and migrating the schema) and start the writer thread. */
int hr_store_open(const struct hr_store_opts *, struct hr_store **out, struct hr_error *) HR_WUR;
/* Stop the writer after it committed every submitted job; close. NULL is fine. */
void hr_store_close(struct hr_store *);
/* The schema version this build migrates to (PRAGMA user_version). */
int hr_store_schema_version(void);

enum hr_job_type { HR_JOB_EVENT, HR_JOB_REJECTION };

/*
 * One write. Inputs are borrowed until `done` runs. `done` is called on the
 * writer thread after the transaction holding the job committed (status
 * HR_OK) or failed (HR_EDB); it must be quick and must not call the store.
 */
struct hr_store_job {
	enum hr_job_type type;
	/* HR_JOB_EVENT and HR_JOB_REJECTION */
	char id[40]; /* "evt_..." / "rej_...", set by the caller (hr_store_new_id) */
	int64_t received_us;
	const char *source;
	const char *remote_addr;
	const char *body; /* raw bytes exactly as received */
	size_t body_len;
	const char *headers_json; /* selected request headers, a JSON object */
	/* HR_JOB_EVENT */
	const struct hr_event *ev;
	/* HR_JOB_REJECTION */
	const char *kind_name;
	int http_status;
	const char *problem_json; /* the problem+json answer sent */

	/* results, valid in done() */
	int status;
	bool duplicate;

	void (*done)(struct hr_store_job *, void *arg);
	void *arg;
	struct hr_store_job *next; /* writer queue link; the store's */
};

/* Queue a job. HR_EBUSY when the queue is full, HR_ECLOSED while stopping;
 * then `done` is never called. */
int hr_store_submit(struct hr_store *, struct hr_store_job *) HR_WUR;

/* A new id "<prefix>_<26 chars>": 48-bit millisecond time + 80 random bits,
 * Crockford base32, so ids sort by creation time. buf >= 32 bytes. */
void hr_store_new_id(const char *prefix, char *buf, size_t len);

/* Writer statistics for health and metrics. */
struct hr_store_stats {
	uint64_t batches;
	uint64_t jobs;
	uint64_t failed_batches;
	unsigned queued;
	int64_t last_commit_us;
};
void hr_store_stats(struct hr_store *, struct hr_store_stats *out);

/* ---- reads ---- */

/* A stored event; every pointer is borrowed for the callback's duration. */
struct hr_event_row {
	int64_t seq;
	const char *id;
	int64_t received_us;
	const char *source;
	const char *provider; /* "" when no provider matched */
	const char *kind;
	const char *event_type; /* NULL when the body has none */
	const char *subtype;
	const char *scope;
	const char *session_key;
	int64_t occurred_us; /* valid when occurred_raw != NULL && occurred_valid */
	bool occurred_valid;
	const char *occurred_raw;
	const char *remote_addr;
	const char *headers_json;
	const char *body; /* only filled when asked for */
	size_t body_len;
};

struct hr_event_filter {
	const char *source, *provider, *kind, *event_type, *session; /* NULL: any */
	int64_t since_us, until_us; /* received_at bounds; 0: none; until is exclusive */
	int64_t before_seq;         /* keyset cursor: rows with seq < before_seq; 0: none */
	unsigned limit;
	bool with_body;
};

typedef int (*hr_event_row_cb)(const struct hr_event_row *, void *arg);

/* Newest first. *next_cursor is the cursor for the next page, 0 at the end. */
int hr_store_list_events(struct hr_store *, const struct hr_event_filter *, hr_event_row_cb,
    void *arg, int64_t *next_cursor, struct hr_error *) HR_WUR;
/* HR_ENOTFOUND when there is no such id. The row includes the body. */
int hr_store_get_event(
    struct hr_store *, const char *id, hr_event_row_cb, void *arg, struct hr_error *) HR_WUR;

struct hr_session_row {
	int64_t id;
	const char *scope;
	const char *key;
	const char *provider;
	const char *status;
	int64_t first_seen_us, last_seen_us;
	int64_t event_count;
	bool has_duration;
	double duration;
	const char *shutdown_reason, *exit_reason, *error_type;
	bool has_score;
	double overall_score;
};

struct hr_session_filter {
	const char *provider, *status; /* NULL: any */
	int64_t since_us;              /* last_seen >= since; 0: none */
	int64_t before_id;             /* keyset cursor */
	unsigned limit;
};

typedef int (*hr_session_row_cb)(const struct hr_session_row *, void *arg);

/* Newest session first. */
int hr_store_list_sessions(struct hr_store *, const struct hr_session_filter *, hr_session_row_cb,
    void *arg, int64_t *next_cursor, struct hr_error *) HR_WUR;
/* `ref` is "scope:key" or a bare key (the most recent session with it).
 * Calls `scb` once, then `ecb` for up to `max_events` events in time order. */
int hr_store_get_session(struct hr_store *, const char *ref, hr_session_row_cb scb,
    hr_event_row_cb ecb, void *arg, unsigned max_events, struct hr_error *) HR_WUR;

struct hr_rejection_row {
	int64_t seq;
	const char *id;
	int64_t received_us;
	const char *source;
	const char *remote_addr;
	const char *kind;
	int http_status;
	const char *problem_json;
	const char *headers_json;
	const char *body;
	size_t body_len;
};

struct hr_rejection_filter {
	const char *source; /* NULL: any */
	int64_t since_us;
	int64_t before_seq;
	unsigned limit;
};

typedef int (*hr_rejection_row_cb)(const struct hr_rejection_row *, void *arg);

int hr_store_list_rejections(struct hr_store *, const struct hr_rejection_filter *,
    hr_rejection_row_cb, void *arg, int64_t *next_cursor, struct hr_error *) HR_WUR;

/* Cheap liveness probe of a read connection: HR_OK or HR_EDB. */
int hr_store_ping(struct hr_store *) HR_WUR;

#endif
