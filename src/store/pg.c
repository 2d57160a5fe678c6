/*
 * pg.c - the PostgreSQL engine: open, close, LISTEN for other nodes'
 * commits, the leases of nodes that are gone, and its table of operations
 * (store_ops.h).
 *
 * Several hookrelay nodes share one database. Opening connects the writer,
 * migrates the schema (pg_schema.c, under an advisory lock), releases the
 * claims of dead processes of this host and fills the reader pool; `watch`
 * then starts a thread that LISTENs for what other nodes commit and tells
 * the store, so /v1/stream and the forwarder hear every node's work.
 * Anything that fails closes what was opened before it.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hr/log.h"
#include "hr/timefmt.h"
#include "pg_int.h"

#define DEFAULT_READERS  4
#define DEFAULT_LEASE_US (INT64_C(600) * 1000000)
#define LISTEN_POLL_MS   250 /* the LISTEN thread's longest wait; pg_close() wakes it at once */
#define LISTEN_ANSWER_US (INT64_C(10) * 1000000) /* for the LISTEN's answer, at most */

/* ---- LISTEN: other nodes' commits ---- */

/* Up to `ms` for `fd` (may be -1) or the stop signal; false on a poll error. */
static bool
listen_wait(struct hr_store_backend *pg, int fd, int ms)
{
	struct pollfd pfd[2] = { { .fd = pg->wake_fd, .events = POLLIN },
		{ .fd = fd, .events = POLLIN } };

	return poll(pfd, fd >= 0 ? 2 : 1, ms) >= 0 || errno == EINTR;
}

/* Wait on the socket; false when the connection is gone. */
static bool
listen_turn(struct hr_store_backend *pg, PGconn *c)
{
	bool events = false, deliveries = false;
	PGnotify *n;

	if (PQsocket(c) < 0 || !listen_wait(pg, PQsocket(c), LISTEN_POLL_MS))
		return false;
	if (PQconsumeInput(c) == 0)
		return false;
	while ((n = PQnotifies(c)) != NULL) {
		events |= strcmp(n->relname, PG_CHANNEL_EVENTS) == 0;
		deliveries |= strcmp(n->relname, PG_CHANNEL_DELIVERIES) == 0;
		PQfreemem(n);
	}
	if (events || deliveries)
		pg->remote(pg->remote_arg, events, deliveries);
	return true;
}

/*
 * LISTEN on a new connection: its answer is awaited beside the stop signal and
 * for LISTEN_ANSWER_US at most. A blocking PQexec() waited for ever on a
 * server that took the bytes and answered nothing, and pg_close(), which
 * joins this thread, with it.
 */
static bool
listen_start(struct hr_store_backend *pg, PGconn *c)
{
	int64_t deadline = hr_time_mono_us() + LISTEN_ANSWER_US;
	bool ok = true;
	PGresult *r;

	if (!PQsendQuery(c, "LISTEN " PG_CHANNEL_EVENTS "; LISTEN " PG_CHANNEL_DELIVERIES))
		return false;
	for (;;) {
		while (PQisBusy(c))
			if (atomic_load(&pg->stopping) || hr_time_mono_us() > deadline ||
			    !listen_wait(pg, PQsocket(c), LISTEN_POLL_MS) || !PQconsumeInput(c))
				return false;
		if ((r = PQgetResult(c)) == NULL)
			return ok;
		ok &= PQresultStatus(r) == PGRES_COMMAND_OK;
		PQclear(r);
	}
}

static void *
listen_main(void *arg)
{
	struct hr_store_backend *pg = arg;
	PGconn *c = NULL;

	while (!atomic_load(&pg->stopping)) {
		if (c == NULL) {
			if ((c = hr_pg_connect(pg, NULL)) != NULL && listen_start(pg, c)) {
				/* Whatever was committed while we did not listen: look once. */
				pg->remote(pg->remote_arg, true, true);
			} else {
				PQfinish(c);
				c = NULL;
				(void)listen_wait(
				    pg, -1, 4 * LISTEN_POLL_MS); /* then connect again */
				continue;
			}
		}
		if (!listen_turn(pg, c)) {
			PQfinish(c);
			c = NULL;
		}
	}
	PQfinish(c);
	return NULL;
}

/* ---- leases of nodes that are gone ---- */

/* When this machine booted, in units of 16 s, as the clocks tell it: the wall
 * clock less the time since boot. Where /proc/sys is hidden (the unit's
 * ProcSubset=pid) it stands for the boot id; a step of the wall clock since
 * the boot makes another, which only leaves old claims to their lease. */
static void
boot_from_clocks(char *out, size_t n)
{
	struct timespec now, up;

	if (clock_gettime(CLOCK_REALTIME, &now) != 0 || clock_gettime(CLOCK_BOOTTIME, &up) != 0)
		out[0] = '\0';
	else
		snprintf(out, n, "b%llx", (unsigned long long)((now.tv_sec - up.tv_sec) / 16));
}

/*
 * What makes this process's pid mean something: the boot and the PID
 * namespace ("bootid8-nsinode"). Containers that share a host name (host
 * networking) each have a namespace of their own, where another's pid means
 * nothing, and two of them may both be pid 1. The boot id is /proc/sys's,
 * else the clocks' boot time. Unreadable: a random one, which no other process
 * has.
 */
static void
pid_scope(char *out, size_t n)
{
	char boot[64] = "";
	struct stat st;
	unsigned int rnd = 0;
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");

	if (f != NULL) {
		if (fgets(boot, sizeof(boot), f) == NULL)
			boot[0] = '\0';
		fclose(f);
	}
	boot[strcspn(boot, "-\n")] = '\0';
	if (boot[0] == '\0')
		boot_from_clocks(boot, sizeof(boot));
	if (boot[0] != '\0' && stat("/proc/self/ns/pid", &st) == 0) {
		snprintf(out, n, "%.8s-%lx", boot, (unsigned long)st.st_ino);
		return;
	}
	if (getrandom(&rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		rnd = (unsigned int)getpid() ^ (unsigned int)time(NULL);
	snprintf(out, n, "r%08x", rnd);
}

/*
 * A node's claims are named host:pid:scope (pid_scope). At start, the claims
 * of a node of this host and scope whose process is gone (a kill -9, a crash)
 * are released at once, so a restarted node does not wait out their lease;
 * the claims of other hosts, of other PID namespaces and of other boots are
 * left to run out. A reused pid only keeps a claim until its lease ends.
 */
static int
release_dead_leases(
    struct hr_store_backend *pg, const char *host, const char *scope, struct hr_error *err)
{
	struct pg_params p = { .n = 0 };
	char prefix[HOST_NAME_MAX + 2];
	PGresult *r;

	snprintf(prefix, sizeof(prefix), "%s:", host);
	pgp_text(&p, prefix);
	r = pg_query(pg->w,
	    "SELECT DISTINCT locked_by FROM deliveries WHERE status = 0 AND locked_by IS NOT NULL"
	    " AND left(locked_by, length($1)) = $1",
	    &p, err);
	if (r == NULL)
		return HR_EDB;
	for (int i = 0; i < PQntuples(r); i++) {
		const char *who = pgc_text(r, i, 0);
		char *end;
		long pid = strtol(who + strlen(prefix), &end, 10);
		struct pg_params q = { .n = 0 };

		if (pid <= 0 || *end != ':' || strcmp(end + 1, scope) != 0 ||
		    kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		pgp_text(&q, who);
		PQclear(pg_exec(pg->w,
		    "UPDATE deliveries SET locked_until = NULL, locked_by = NULL WHERE locked_by = "
		    "$1",
		    &q));
		log_info("store: released the delivery claims of %s, a process that is gone", who);
	}
	PQclear(r);
	return HR_OK;
}

/* At a clean stop: this node's claims are free for the others at once. */
static void
release_own_leases(struct hr_store_backend *pg)
{
	struct pg_params p = { .n = 0 };

	if (pg->w == NULL || PQstatus(pg->w) != CONNECTION_OK)
		return;
	pgp_text(&p, pg->node);
	PQclear(pg_exec(pg->w,
	    "UPDATE deliveries SET locked_until = NULL, locked_by = NULL WHERE locked_by = $1",
	    &p));
}

/* ---- what the nodes share about a destination ---- */

/* One statement on a read connection, autocommit: the forwarder's thread, at a poll. */
static PGresult *
dest_exec(struct hr_store_backend *pg, const char *sql, const struct pg_params *p)
{
	PGconn *c = hr_pg_reader_get(pg);
	PGresult *r = pg_exec(c, sql, p);

	hr_pg_reader_put(pg, c);
	return r;
}

static int
pg_destination_shared(
    struct hr_store_backend *pg, const char *name, struct hr_destination_shared *out)
{
	struct pg_params p = { .n = 0 };
	PGresult *r;

	memset(out, 0, sizeof(*out));
	pgp_text(&p, name);
	r = dest_exec(pg,
	    "SELECT disabled, disabled_at, breaker_until, breaker_cooldown FROM destinations"
	    " WHERE name = $1",
	    &p);
	if (r == NULL)
		return HR_EDB;
	if (PQntuples(r) == 1) {
		out->disabled = pgc_int(r, 0, 0) != 0;
		out->disabled_us = pgc_int(r, 0, 1);
		out->breaker_until_us = pgc_int(r, 0, 2);
		out->breaker_cooldown_us = pgc_int(r, 0, 3);
	}
	PQclear(r);
	return HR_OK;
}

/* The cooldown goes with the time: a failed probe doubles the destination's, not
 * the node's (schema 13). While the row is open, a node that opens its breaker
 * before it read the row (with the base cooldown) leaves the longer cooldown, and
 * the later time: that of another node's probe still out (pg_breaker_probe()),
 * which only that probe's outcome may bring forward. */
static int
pg_breaker_publish(struct hr_store_backend *pg, const char *name, int64_t until_us,
    int64_t cooldown_us, bool outcome)
{
	struct pg_params p = { .n = 0 };
	PGresult *r;

	pgp_text(&p, name);
	pgp_int(&p, until_us);
	pgp_int(&p, until_us != 0 ? cooldown_us : 0);
	pgp_text(&p, outcome || until_us == 0 ? "t" : "f");
	r = dest_exec(pg,
	    "INSERT INTO destinations (name, breaker_until, breaker_cooldown)"
	    " VALUES ($1, $2::bigint, $3::bigint) ON CONFLICT (name) DO UPDATE SET"
	    " breaker_until = CASE WHEN $4::boolean THEN excluded.breaker_until"
	    " ELSE greatest(destinations.breaker_until, excluded.breaker_until) END,"
	    " breaker_cooldown = CASE WHEN"
	    " destinations.breaker_until <> 0 AND excluded.breaker_until <> 0 THEN"
	    " greatest(destinations.breaker_cooldown, excluded.breaker_cooldown)"
	    " ELSE excluded.breaker_cooldown END",
	    &p);
	PQclear(r);
	return r != NULL ? HR_OK : HR_EDB;
}

/* The row decides: of two nodes whose breakers turn half-open at once, the one
 * whose UPDATE finds the time passed wins; the other's finds it moved on. The
 * winner learns the shared cooldown, the one its probe's failure doubles: its
 * own may be a base one when another node's probes failed before. */
static int
pg_breaker_probe(struct hr_store_backend *pg, const char *name, int64_t now_us, int64_t until_us,
    bool *won, int64_t *cooldown_us)
{
	struct pg_params p = { .n = 0 };
	PGresult *r;

	*won = false;
	*cooldown_us = 0;
	pgp_text(&p, name);
	pgp_int(&p, now_us);
	pgp_int(&p, until_us);
	r = dest_exec(pg,
	    "INSERT INTO destinations AS d (name, breaker_until) VALUES ($1, $3::bigint)"
	    " ON CONFLICT (name) DO UPDATE SET breaker_until ="
	    " greatest(excluded.breaker_until, $2::bigint + d.breaker_cooldown)"
	    " WHERE d.breaker_until <= $2::bigint RETURNING d.breaker_cooldown",
	    &p);
	if (r == NULL)
		return HR_EDB;
	*won = PQntuples(r) == 1;
	if (*won)
		*cooldown_us = pgc_int(r, 0, 0);
	PQclear(r);
	return HR_OK;
}

/* ---- open and close ---- */

/* The read pool of up to n connections: the first now, so that a server that
 * refuses this node's reads stops it at start; the others when first needed
 * (hr_pg_reader_get). */
static int
open_readers(struct hr_store_backend *pg, unsigned n, struct hr_error *err)
{
	pg->readers = calloc(n, sizeof(*pg->readers));
	pg->free_readers = calloc(n, sizeof(*pg->free_readers));
	if (pg->readers == NULL || pg->free_readers == NULL)
		return hr_error_set(err, HR_ENOMEM, "pool", "out of memory");
	pg->readers_max = n;
	if ((pg->readers[0] = hr_pg_connect(pg, err)) == NULL)
		return HR_EDB;
	pg->nreaders = 1;
	pg->free_readers[pg->nfree++] = pg->readers[0];
	return HR_OK;
}

static void
pg_close(struct hr_store_backend *pg)
{
	if (pg == NULL)
		return;
	atomic_store(&pg->stopping, true);
	if (pg->wake_fd >= 0 && eventfd_write(pg->wake_fd, 1) != 0)
		log_warn("store: waking the LISTEN thread");
	if (pg->listener_started)
		pthread_join(pg->listener, NULL);
	if (pg->wake_fd >= 0)
		close(pg->wake_fd);
	release_own_leases(pg);
	hr_pg_owed_free(pg);
	for (unsigned i = 0; i < pg->nreaders; i++)
		PQfinish(pg->readers[i]);
	free(pg->readers);
	free(pg->free_readers);
	PQfinish(pg->w);
	pthread_mutex_destroy(&pg->rmu);
	pthread_cond_destroy(&pg->rcv);
	pthread_mutex_destroy(&pg->hmu);
	hr_age_walks_free(&pg->walks);
	free(pg->url);
	free(pg);
}

static int
pg_open(const struct hr_store_opts *opts, struct hr_store_backend **out, struct hr_error *err)
{
	struct hr_store_backend *pg = calloc(1, sizeof(*pg));
	char host[HOST_NAME_MAX + 1], scope[32];
	int rc = HR_ENOMEM;

	*out = NULL;
	if (pg == NULL)
		return HR_ENOMEM;
	if ((pg->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
		free(pg);
		return hr_error_set(err, HR_ENOMEM, "listen", "cannot make an eventfd");
	}
	pthread_mutex_init(&pg->rmu, NULL);
	pthread_cond_init(&pg->rcv, NULL);
	pthread_mutex_init(&pg->hmu, NULL);
	if ((pg->url = strdup(opts->url != NULL ? opts->url : "")) == NULL)
		goto out;
	pg->lease_us = opts->lease_us > 0 ? opts->lease_us : DEFAULT_LEASE_US;
	/* host:pid:scope tells nodes apart, and which are this host's and PID
	 * namespace's (release_dead_leases); a host whose name cannot be read gets a
	 * random one, never shared. */
	if (gethostname(host, sizeof(host)) != 0 || host[0] == '\0')
		hr_store_new_id("node", host, sizeof(host));
	host[sizeof(host) - 1] = '\0';
	pid_scope(scope, sizeof(scope));
	snprintf(pg->node, sizeof(pg->node), "%s:%ld:%s", host, (long)getpid(), scope);
	rc = HR_EDB;
	if ((pg->w = hr_pg_connect(pg, err)) == NULL ||
	    (rc = hr_pg_migrate_schema(pg->w, err)) != HR_OK)
		goto out;
	/* After the migration, which may rightly take minutes on a large database. */
	pg_set_statement_timeout(opts->statement_timeout_us);
	if (!pg_set_idle_limit(pg->w)) {
		rc = hr_error_set(
		    err, HR_EDB, "postgresql", "%s", PG_ONE_LINE(PQerrorMessage(pg->w)));
		goto out;
	}
	if ((rc = release_dead_leases(pg, host, scope, err)) != HR_OK ||
	    (rc = open_readers(pg, opts->readers ? opts->readers : DEFAULT_READERS, err)) != HR_OK)
		goto out;
	*out = pg;
	pg = NULL;
	rc = HR_OK;
out:
	pg_close(pg);
	return rc;
}

/* Other nodes' commits, from now on: the LISTEN thread. */
static int
pg_watch(struct hr_store_backend *pg, hr_store_remote_fn fn, void *arg, struct hr_error *err)
{
	pg->remote = fn;
	pg->remote_arg = arg;
	if (pthread_create(&pg->listener, NULL, listen_main, pg) != 0)
		return hr_error_set(err, HR_ENOMEM, "listen", "cannot start the LISTEN thread");
	pg->listener_started = true;
	return HR_OK;
}

/* The database is the operations team's: its backups are PostgreSQL's own. */
static int
pg_backup(const struct hr_store_opts *o, const char *dest, struct hr_error *err)
{
	(void)o;
	(void)dest;
	return hr_error_set(err, HR_EINVAL, "backend",
	    "[storage] backend = postgresql: back the database up with PostgreSQL's tools"
	    " (pg_dump, pg_basebackup), see docs/scaling.md");
}

static int
pg_ping(struct hr_store_backend *pg)
{
	PGconn *c = hr_pg_reader_get(pg);
	PGresult *r = pg_exec(c, "SELECT 1", NULL);

	hr_pg_reader_put(pg, c);
	PQclear(r);
	return r != NULL ? HR_OK : HR_EDB;
}

static int
pg_size(struct hr_store_backend *pg, struct hr_store_size *out)
{
	PGconn *c = hr_pg_reader_get(pg);
	PGresult *r = pg_exec(c, "SELECT pg_database_size(current_database())", NULL);

	memset(out, 0, sizeof(*out));
	if (r != NULL && PQntuples(r) == 1)
		out->file_bytes = pgc_int(r, 0, 0);
	hr_pg_reader_put(pg, c);
	PQclear(r);
	return r != NULL ? HR_OK : HR_EDB;
}

/* The database's disk is the server's, watched there (/readyz says so). */
static int
pg_disk_free(struct hr_store_backend *pg, uint64_t *out)
{
	(void)pg;
	*out = UINT64_MAX;
	return HR_OK;
}

const struct hr_store_ops hr_store_pg = {
	.name = "postgresql",
	.claims = true,       /* several nodes: FOR UPDATE SKIP LOCKED and a lease per claim */
	.folds_counts = true, /* several writers: schema 8 appends changes of the counts */
	.open = pg_open,
	.close = pg_close,
	.backup = pg_backup,
	.watch = pg_watch,
	.begin = hr_pg_begin,
	.commit = hr_pg_commit,
	.rollback = hr_pg_rollback,
	.commit_with_write = hr_pg_commit_with_write,
	.savepoint = hr_pg_savepoint,
	.release = hr_pg_release,
	.in_transaction = hr_pg_in_transaction,
	.durable = hr_pg_durable,
	.put_events = hr_pg_put_events,
	.put_rejection = hr_pg_put_rejection,
	.accept_rejection = hr_pg_accept_rejection,
	.record_attempts = hr_pg_record_attempts,
	.lease = hr_pg_lease,
	.set_destination = hr_pg_set_destination,
	.probe_write = hr_pg_probe_write,
	.replay = hr_pg_replay,
	.discard = hr_pg_discard,
	.expire_dedup = hr_pg_expire_dedup,
	.trim_rejections = hr_pg_trim_rejections,
	.fold_counts = hr_pg_fold_counts,
	.prune = hr_pg_prune,
	.list_events = hr_pg_list_events,
	.events_after = hr_pg_events_after,
	.get_event = hr_pg_get_event,
	.list_sessions = hr_pg_list_sessions,
	.get_session = hr_pg_get_session,
	.list_rejections = hr_pg_list_rejections,
	.get_rejection = hr_pg_get_rejection,
	.due_deliveries = hr_pg_due_deliveries,
	.next_due = hr_pg_next_due,
	.destination = hr_pg_destination,
	.pending_destinations = hr_pg_pending_destinations,
	.list_deliveries = hr_pg_list_deliveries,
	.event_deliveries = hr_pg_event_deliveries,
	.destination_shared = pg_destination_shared,
	.breaker_publish = pg_breaker_publish,
	.breaker_probe = pg_breaker_probe,
	.replay_count = hr_pg_replay_count,
	.ping = pg_ping,
	.health = hr_pg_health,
	.size = pg_size,
	.disk_free = pg_disk_free,
};
