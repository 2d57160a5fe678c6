/*
 * sqlite.c - the SQLite engine: open, close, backup, and its table of
 * operations (store_ops.h).
 *
 * Opening takes the instance lock, connects the writer, migrates the
 * schema, releases the leases of a previous run, prepares the writer's
 * statements and fills the reader pool, in that order; anything that fails
 * closes what was opened before it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <libgen.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hr/store_sqlite.h"
#include "sqlite_int.h"

#define DEFAULT_READERS 4

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

static void
sqlite_close(struct hr_store_backend *b)
{
	if (b == NULL)
		return;
	hr_sqlite_writer_finalize(b);
	hr_sqlite_readers_close(b);
	sqlite3_close(b->wdb);
	if (b->lock_fd >= 0)
		close(b->lock_fd); /* releases the instance lock; after every connection */
	pthread_mutex_destroy(&b->health_mu);
	pthread_mutex_destroy(&b->rmu);
	pthread_cond_destroy(&b->rcv);
	hr_age_walks_free(&b->walks);
	hr_age_walks_free(&b->size_walks);
	hr_sqlite_facets_free(b);
	free(b->wal_path);
	free(b->path);
	free(b);
}

static int
sqlite_open(const struct hr_store_opts *o, struct hr_store_backend **out, struct hr_error *err)
{
	struct hr_store_backend *b = NULL;
	int rc = HR_ENOMEM;
	bool created;

	*out = NULL;
	if ((b = calloc(1, sizeof(*b))) == NULL)
		goto out;
	b->lock_fd = -1;
	pthread_mutex_init(&b->health_mu, NULL);
	pthread_mutex_init(&b->rmu, NULL);
	pthread_cond_init(&b->rcv, NULL);
	if ((b->path = strdup(o->path)) == NULL)
		goto out;
	if ((rc = make_parent_dirs(b->path, err)) != HR_OK ||
	    (rc = hr_sqlite_lock(b, err)) != HR_OK ||
	    (rc = hr_sqlite_connect(b->path, true, &b->wdb, err)) != HR_OK ||
	    (rc = hr_sqlite_set_cache(b->wdb, o->cache_bytes, err)) != HR_OK ||
	    (rc = hr_sqlite_migrate(b->wdb, &created, err)) != HR_OK ||
	    (!created && (rc = hr_sqlite_check_indexes(b->wdb, err)) != HR_OK) ||
	    (rc = hr_sqlite_release_leases(b->wdb, err)) != HR_OK ||
	    (rc = hr_sqlite_hold_load(b, err)) != HR_OK ||
	    (rc = hr_sqlite_note_wal(b, err)) != HR_OK ||
	    (rc = hr_sqlite_writer_prepare(b, err)) != HR_OK ||
	    (rc = hr_sqlite_readers_open(b, o->readers ? o->readers : DEFAULT_READERS, err)) !=
	        HR_OK)
		goto out;
	*out = b;
	b = NULL;
out:
	sqlite_close(b);
	return rc;
}

/* fsync() of a file or a directory by path. */
static int
sync_path(const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC), rc;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

/*
 * The temporary copy's names while a backup writes it, for a signal that ends
 * the run (cron's timeout, Ctrl-C): each run cut short left FILE.XXXXXX and
 * its -journal behind, and nothing removed them (review R8). SIGKILL still
 * does; operations.md says so.
 */
static char cut_tmp[PATH_MAX], cut_journal[PATH_MAX + 8];
static const int cut_signals[] = { SIGINT, SIGTERM }; /* SIGHUP: main() blocks it */

static void
cut_short(int sig)
{
	unlink(cut_tmp);
	unlink(cut_journal);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Install (`on`) or take back the handlers that remove the copy cut short; a
 * signal the caller ignores stays ignored (a backup run as a background job
 * of a script must outlive the terminal's Ctrl-C, as it did: review R11). */
static void
remove_on_signal(bool on, struct sigaction *saved)
{
	struct sigaction sa = { .sa_handler = cut_short };

	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(cut_signals) / sizeof(cut_signals[0]); i++) {
		if (on && sigaction(cut_signals[i], NULL, &saved[i]) == 0 &&
		    saved[i].sa_handler == SIG_IGN)
			continue;
		(void)sigaction(cut_signals[i], on ? &sa : &saved[i], NULL);
	}
}

/*
 * VACUUM INTO a fresh temporary file beside `dest`, then fsync it, link it
 * under `dest` (which must not exist: link() never replaces a file) and fsync
 * the directory: "written" means on disk, a power cut leaves no torn file
 * under the name, and a failed run leaves nothing behind. SQLite's VACUUM INTO
 * does not sync what it writes.
 */
static int
sqlite_backup(const struct hr_store_opts *o, const char *dest, struct hr_error *err)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	char *tmp = cut_tmp, dir[PATH_MAX];
	struct sigaction saved[sizeof(cut_signals) / sizeof(cut_signals[0])];
	int rc = HR_EDB, fd = -1;

	if (access(dest, F_OK) == 0)
		return hr_error_set(err, HR_EINVAL, dest, "output file already exists");
	if (snprintf(cut_tmp, sizeof(cut_tmp), "%s.XXXXXX", dest) >= (int)sizeof(cut_tmp))
		return hr_error_set(err, HR_EINVAL, dest, "path too long");
	cut_journal[0] = '\0';
	if ((fd = mkstemp(tmp)) < 0) /* empty, 0600: VACUUM INTO writes into an empty file */
		return hr_error_set(
		    err, HR_EDB, dest, "cannot create %s: %s", tmp, strerror(errno));
	close(fd);
	snprintf(cut_journal, sizeof(cut_journal), "%s-journal", tmp);
	remove_on_signal(true, saved);
	if (sqlite3_open_v2(o->path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		rc = hr_error_set(err, HR_EDB, o->path, "%s", sqlite3_errmsg(db));
		goto out;
	}
	sqlite3_busy_timeout(db, 10000);
	if (sqlite3_prepare_v2(db, "VACUUM INTO ?1", -1, &st, NULL) != SQLITE_OK) {
		rc = hr_sqlite_error(db, err, "backup");
		goto out;
	}
	sqlite3_bind_text(st, 1, tmp, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) { /* named once: it was "FILE: FILE: ..." */
		rc = hr_error_set(err, HR_EDB, dest, "%s", sqlite3_errmsg(db));
		goto out;
	}
	snprintf(dir, sizeof(dir), "%s", dest);
	if (sync_path(tmp, O_RDONLY) != 0 || link(tmp, dest) != 0) {
		rc = hr_error_set(err, HR_EDB, dest, "%s",
		    errno == EEXIST ? "output file already exists" : strerror(errno));
		goto out;
	}
	/* A name whose directory entry may not survive a crash is not a backup: a
	 * failed run leaves nothing named FILE (operations.md), so that a retry is
	 * not refused "already exists" (a review). */
	if (sync_path(dirname(dir), O_RDONLY | O_DIRECTORY) != 0) {
		rc = hr_error_set(err, HR_EDB, dest, "%s", strerror(errno));
		unlink(dest);
		goto out;
	}
	rc = HR_OK;
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	remove_on_signal(false, saved);
	unlink(tmp);         /* the backup is under `dest` now, or nowhere */
	unlink(cut_journal); /* a failed VACUUM INTO's (a full disk): it was left */
	return rc;
}

/* One process owns the file (the instance lock): no other commits to hear. */
static int
sqlite_watch(struct hr_store_backend *b, hr_store_remote_fn fn, void *arg, struct hr_error *err)
{
	(void)b;
	(void)fn;
	(void)arg;
	(void)err;
	return HR_OK;
}

/* One node: its forwarder's destination state is the whole truth (store.h). */
static int
sqlite_destination_shared(
    struct hr_store_backend *b, const char *name, struct hr_destination_shared *out)
{
	(void)b;
	(void)name;
	memset(out, 0, sizeof(*out));
	return HR_ENOTFOUND;
}

static int
sqlite_breaker_publish(struct hr_store_backend *b, const char *name, int64_t until_us,
    int64_t cooldown_us, bool outcome)
{
	(void)b;
	(void)name;
	(void)until_us;
	(void)cooldown_us;
	(void)outcome;
	return HR_OK;
}

static int
sqlite_breaker_probe(struct hr_store_backend *b, const char *name, int64_t now_us, int64_t until_us,
    bool *won, int64_t *cooldown_us)
{
	(void)b;
	(void)name;
	(void)now_us;
	(void)until_us;
	*won = true;
	*cooldown_us = 0;
	return HR_OK;
}

/* The COMMIT is a call in this process: no round trip to save by sending it
 * with the last write. */
static void
sqlite_commit_with_write(struct hr_store_backend *b)
{
	(void)b;
}

const struct hr_store_ops hr_store_sqlite = {
	.name = "sqlite",
	.claims = false,       /* one node: the forwarder leases what it takes (`lease`) */
	.folds_counts = false, /* one writer keeps them whole (schema 12) */
	.open = sqlite_open,
	.close = sqlite_close,
	.backup = sqlite_backup,
	.watch = sqlite_watch,
	.begin = hr_sqlite_begin,
	.commit = hr_sqlite_commit,
	.commit_with_write = sqlite_commit_with_write,
	.rollback = hr_sqlite_rollback,
	.savepoint = hr_sqlite_savepoint,
	.release = hr_sqlite_release,
	.in_transaction = hr_sqlite_in_transaction,
	.durable = hr_sqlite_durable,
	.put_events = hr_sqlite_put_events,
	.put_rejection = hr_sqlite_put_rejection,
	.accept_rejection = hr_sqlite_accept_rejection,
	.record_attempts = hr_sqlite_record_attempts,
	.lease = hr_sqlite_lease,
	.set_destination = hr_sqlite_set_destination,
	.probe_write = hr_sqlite_probe_write,
	.replay = hr_sqlite_replay,
	.discard = hr_sqlite_discard,
	.expire_dedup = hr_sqlite_expire_dedup,
	.trim_rejections = hr_sqlite_trim_rejections,
	.fold_counts = hr_sqlite_fold_counts,
	.prune = hr_sqlite_prune,
	.list_events = hr_sqlite_list_events,
	.events_after = hr_sqlite_events_after,
	.get_event = hr_sqlite_get_event,
	.list_sessions = hr_sqlite_list_sessions,
	.get_session = hr_sqlite_get_session,
	.list_rejections = hr_sqlite_list_rejections,
	.get_rejection = hr_sqlite_get_rejection,
	.due_deliveries = hr_sqlite_due_deliveries,
	.next_due = hr_sqlite_next_due,
	.destination = hr_sqlite_destination,
	.pending_destinations = hr_sqlite_pending_destinations,
	.list_deliveries = hr_sqlite_list_deliveries,
	.event_deliveries = hr_sqlite_event_deliveries,
	.destination_shared = sqlite_destination_shared,
	.breaker_publish = sqlite_breaker_publish,
	.breaker_probe = sqlite_breaker_probe,
	.replay_count = hr_sqlite_replay_count,
	.ping = hr_sqlite_ping,
	.health = hr_sqlite_health,
	.size = hr_sqlite_size,
	.disk_free = hr_sqlite_disk_free,
};
