/*
 * store_int.h - what the store's own files share: the handle and the SQL
 * helpers. Nothing outside src/store*.c includes it.
 */
#ifndef HR_STORE_INT_H
#define HR_STORE_INT_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <sys/types.h>

#include "hr/metrics.h"
#include "hr/store.h"

enum writer_stmt {
	WS_BEGIN,
	WS_COMMIT,
	WS_ROLLBACK,
	WS_SAVEPOINT,
	WS_RELEASE,
	WS_ROLLBACK_TO,
	WS_UPSERT_SESSION,
	WS_UPSERT_ROOM_LINK,
	WS_INSERT_EVENT,
	WS_INSERT_REJECTION,
	WS_TRIM_REJECTIONS,
	WS_INSERT_DELIVERY,
	WS_INSERT_ATTEMPT,
	WS_UPDATE_DELIVERY,
	WS_LEASE,
	WS_SET_DESTINATION,
	WS_REPLAY_EVENT,
	WS_REPLAY_DESTINATION,
	WS_DEDUP_FIND,
	WS_DEDUP_PUT,
	WS_DEDUP_PRUNE,
	WS_INSERT_EVENT_QUERY,
	WS_ACCEPTED_EVENT,
	WS_SET_ACCEPTED,
	WS_COUNT
};

/*
 * The events a destination replay delivers again: those the destination had a
 * delivery for (?4: of this status, < 0 any), received in [?2, ?3) (0: open),
 * whose payload is kept and that have no delivery to it pending already (?1 is
 * the destination). The writer inserts from it, a dry run counts it.
 */
#define REPLAY_DESTINATION_EVENTS                                                                  \
	" FROM events e WHERE e.seq IN (SELECT d.event_seq FROM deliveries d"                      \
	"  WHERE d.destination = ?1 AND (?4 < 0 OR d.status = ?4)) AND e.pruned_at IS NULL"        \
	" AND (?2 = 0 OR e.received_at >= ?2) AND (?3 = 0 OR e.received_at < ?3)"                  \
	" AND NOT EXISTS (SELECT 1 FROM deliveries p INDEXED BY deliveries_event"                  \
	"  WHERE p.event_seq = e.seq AND p.destination = ?1 AND p.status = 0)"

/* Called after a commit that stored new events; see hr_store_add_listener(). */
struct hr_store_listener {
	void (*fn)(void *);
	void *arg;
};

struct hr_store {
	struct hr_store_opts opts;
	char *path;

	/* writer side: only the writer thread touches wdb and ws[] after open */
	sqlite3 *wdb;
	sqlite3_stmt *ws[WS_COUNT];
	pthread_t writer;
	bool writer_started;
	pthread_mutex_t mu; /* guards the queue, stopping and stats */
	pthread_cond_t cv;
	struct hr_store_job *head, *tail;
	unsigned queued;
	bool stopping;
	struct hr_store_stats stats;
	void (*commit_hook)(void *);
	void *commit_hook_arg;
	struct hr_store_listener listeners[HR_STORE_LISTENERS]; /* under mu */
	unsigned nlisteners;
	int lock_fd;                   /* the database file itself, flock()ed */
	dev_t db_dev, wal_dev;         /* the files' identity at open ... */
	ino_t db_ino, wal_ino;         /* ... (wal_ino 0: not known) */
	char *wal_path;                /* the -wal file SQLite uses */
	struct hr_store_health health; /* under mu; set once, kept until a restart */
	bool gone;                     /* writer only: the file is not ours any more */
	int64_t next_prune_us;         /* writer only: when expired dedup keys are next removed */
	struct hr_histogram batch_sizes, commit_durations; /* observed by the writer */
	struct hr_retention_state *retention; /* store_retention.c; NULL until configured */
	atomic_ullong rejections_dropped;     /* by rejections_max (the writer's trim) */
	int64_t next_drop_log_us;             /* writer only: when that may be logged again */

	/* read side: a pool of connections, one per concurrent reader */
	pthread_mutex_t rmu;
	pthread_cond_t rcv;
	sqlite3 **readers;
	unsigned nfree;
	sqlite3 **free_readers;
};

/* Open one connection with the daemon's pragmas. */
int hr_store_connect(const char *path, bool writer, sqlite3 **out, struct hr_error *);
int hr_store_writer_start(struct hr_store *, struct hr_error *);
void hr_store_writer_stop(struct hr_store *);

/* Borrow a read connection (blocks while all are in use) and give it back. */
sqlite3 *hr_store_reader_get(struct hr_store *);
void hr_store_reader_put(struct hr_store *, sqlite3 *);

/* Report a SQLite failure as HR_EDB with its message. */
int hr_store_db_error(sqlite3 *db, struct hr_error *err, const char *what);

/* Record that the database cannot be trusted until a restart (the first cause
 * wins; logged once). Any thread. */
void hr_store_set_unhealthy(struct hr_store *, enum hr_db_health, const char *detail);
/* After a failed statement on `db`: SQLite said the file is malformed? Then record it. */
void hr_store_note_failure(struct hr_store *, sqlite3 *db);
/* Is the database file still the one opened (same device and inode, -wal too)? If
 * not, record HR_DB_GONE and return false. Writer thread. */
bool hr_store_file_is_ours(struct hr_store *);

/* store_retention.c: the HR_JOB_PRUNE writer, and stopping the passes (before the writer). */
int hr_store_prune(struct hr_store *, struct hr_store_job *);
void hr_store_retention_stop(struct hr_store *);

#endif
