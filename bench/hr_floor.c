/*
 * hr_floor - the CPU of hookrelay's mandated parts alone, for bench/floor.
 *
 * Issue 17 asks for a CPU per event that the stack may not allow. This
 * measures what its parts cost without hookrelay around them, on the same
 * body, so that bench/floor can add them up to a floor and set hookrelay's
 * own figure beside it:
 *
 *   jansson  json_loadb + json_decref of the body, the tree in a parse-arena
 *            slot as in the daemon: jansson's lexer alone;
 *   event    hr_event_parse + hr_event_clear: the parse, the limits walk,
 *            classification and the typed decode the daemon does per request;
 *   store    hr_store_put_event of that event with --in-flight writes
 *            outstanding (the writer's group commit, WAL, synchronous=FULL,
 *            the daemon's default page cache), each under its own id, no
 *            dedup key, no destination: what bench/ingest's hookrelay stores;
 *   sqlite   the least any durable store of the body costs: one table of
 *            (id primary key, received time, body), rows inserted by one
 *            prepared statement, --in-flight / 2 per transaction (the batch
 *            the writer forms with --in-flight outstanding), WAL,
 *            synchronous=FULL, on one thread.
 *
 * Each phase runs --events times after --warmup; its CPU is getrusage(RUSAGE_SELF)
 * (user + system, every thread) over the timed part. Prints one JSON object.
 *
 * --db PATH is the store's database; the sqlite phase writes PATH-raw.
 *
 * usage: hr_floor --body FILE --db PATH [--events 20000] [--warmup 1000] [--in-flight 64]
 *                 [--batch-max 1000]
 */
#include <getopt.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
#include <sys/resource.h>

#include "hr/event.h"
#include "hr/jarena.h"
#include "hr/store.h"
#include "hr/store_sqlite.h"
#include "hr/timefmt.h"

struct cost {
	double cpu_s, sys_s, wall_s;
};

/* CPU seconds of every thread so far: user + system, and in `sys` the system part. */
static double
cpu_now(double *sys)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	*sys = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + *sys;
}

static char *
read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *p = NULL;
	long n;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) <= 0 ||
	    fseek(f, 0, SEEK_SET) != 0 || (p = malloc((size_t)n)) == NULL ||
	    fread(p, 1, (size_t)n, f) != (size_t)n) {
		free(p);
		p = NULL;
	}
	if (f != NULL)
		fclose(f);
	*len = p != NULL ? (size_t)n : 0;
	return p;
}

/* ---- jansson and event ---- */

static bool
jansson_once(const char *body, size_t len)
{
	json_error_t je;
	struct hr_jarena *a = hr_jarena_begin(); /* the tree in an arena slot, as the daemon's */
	json_t *doc = json_loadb(body, len, 0, &je);

	hr_jarena_end();
	json_decref(doc);
	hr_jarena_release(a);
	return doc != NULL;
}

static const struct hr_json_limits limits = { 64, 10000, 4u << 20, 100000 };

static bool
event_once(const char *body, size_t len)
{
	struct hr_event ev;
	struct hr_parse_error pe;

	if (hr_event_parse(body, len, HR_PROVIDER_AUTO, &limits, &ev, &pe) != HR_OK)
		return false;
	hr_event_clear(&ev);
	return true;
}

static bool
measure(bool (*once)(const char *, size_t), const char *body, size_t len, unsigned warmup,
    unsigned events, struct cost *out)
{
	int64_t t0;
	double c0, s0, s1;

	for (unsigned i = 0; i < warmup; i++)
		if (!once(body, len))
			return false;
	t0 = hr_time_mono_us();
	c0 = cpu_now(&s0);
	for (unsigned i = 0; i < events; i++)
		if (!once(body, len))
			return false;
	out->cpu_s = cpu_now(&s1) - c0;
	out->sys_s = s1 - s0;
	out->wall_s = (double)(hr_time_mono_us() - t0) / 1e6;
	return true;
}

/* ---- store ---- */

struct write {
	struct hr_event_write w;
	struct hr_store_op op;
	char id[40];
};

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned inflight;
	uint64_t failed;
	struct write *free; /* finished writes, their op.arg chaining them */
} g = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, NULL };

static void
write_done(struct hr_store_op *op, void *arg)
{
	struct write *w = arg;

	pthread_mutex_lock(&g.mu);
	if (op->res.status != HR_OK || op->res.duplicate)
		g.failed++;
	g.inflight--;
	w->op.arg = g.free;
	g.free = w;
	pthread_cond_signal(&g.cv);
	pthread_mutex_unlock(&g.mu);
}

/* `n` writes of `ev`, at most `in_flight` outstanding; false on any failure. */
static bool
store_run(struct hr_store *store, const struct hr_event *ev, const char *body, size_t len,
    unsigned n, unsigned in_flight)
{
	static const char headers[] = "{\"content-type\":\"application/json\"}";

	for (unsigned i = 0; i < n; i++) {
		struct write *w;
		int rc;

		pthread_mutex_lock(&g.mu);
		while (g.inflight >= in_flight)
			pthread_cond_wait(&g.cv, &g.mu);
		g.inflight++;
		if ((w = g.free) != NULL)
			g.free = w->op.arg;
		pthread_mutex_unlock(&g.mu);
		if (w == NULL && (w = malloc(sizeof(*w))) == NULL)
			return false;
		memset(w, 0, sizeof(*w));
		hr_store_new_id("evt", w->id, sizeof(w->id));
		w->w.req = (struct hr_received){ .id = w->id,
			.received_us = hr_time_now_us(),
			.source = "default",
			.remote_addr = "127.0.0.1",
			.body = body,
			.body_len = len,
			.headers_json = headers };
		w->w.ev = ev;
		w->op.done = write_done;
		w->op.arg = w;
		while ((rc = hr_store_put_event(store, &w->w, &w->op)) == HR_EBUSY) {
			struct timespec pause = { 0, 100000 };

			nanosleep(&pause, NULL);
		}
		if (rc != HR_OK)
			return false;
	}
	pthread_mutex_lock(&g.mu);
	while (g.inflight > 0)
		pthread_cond_wait(&g.cv, &g.mu);
	pthread_mutex_unlock(&g.mu);
	return g.failed == 0;
}

static void
free_writes(void)
{
	while (g.free != NULL) {
		struct write *w = g.free;

		g.free = w->op.arg;
		free(w);
	}
}

/* ---- sqlite: the least a durable store costs ---- */

static bool
sqlite_run(sqlite3 *db, sqlite3_stmt *ins, const char *body, size_t len, unsigned n, unsigned batch)
{
	for (unsigned i = 0; i < n;) {
		if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
			return false;
		for (unsigned k = 0; k < batch && i < n; k++, i++) {
			char id[40];

			hr_store_new_id("evt", id, sizeof(id));
			sqlite3_bind_text(ins, 1, id, -1, SQLITE_STATIC);
			sqlite3_bind_int64(ins, 2, hr_time_now_us());
			sqlite3_bind_blob(ins, 3, body, (int)len, SQLITE_STATIC);
			if (sqlite3_step(ins) != SQLITE_DONE)
				return false;
			sqlite3_reset(ins);
		}
		if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
			return false;
	}
	return true;
}

static bool
measure_sqlite(const char *path, const char *body, size_t len, unsigned warmup, unsigned events,
    unsigned batch, struct cost *out)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *ins = NULL;
	bool ok = false;
	int64_t t0;
	double c0, s0, s1;

	if (sqlite3_open_v2(path, &db,
	        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
	        NULL) != SQLITE_OK ||
	    sqlite3_exec(db,
	        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
	        "CREATE TABLE IF NOT EXISTS e (id TEXT PRIMARY KEY, received INTEGER, body BLOB);",
	        NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "INSERT INTO e VALUES (?, ?, ?)", -1, &ins, NULL) != SQLITE_OK ||
	    !sqlite_run(db, ins, body, len, warmup, batch))
		goto out;
	t0 = hr_time_mono_us();
	c0 = cpu_now(&s0);
	if (!sqlite_run(db, ins, body, len, events, batch))
		goto out;
	out->cpu_s = cpu_now(&s1) - c0;
	out->sys_s = s1 - s0;
	out->wall_s = (double)(hr_time_mono_us() - t0) / 1e6;
	ok = true;
out:
	if (!ok)
		fprintf(
		    stderr, "hr_floor: %s: %s\n", path, db ? sqlite3_errmsg(db) : "cannot open");
	sqlite3_finalize(ins);
	sqlite3_close(db);
	return ok;
}

/* hookrelay's store: `events` writes of the body's event, `in_flight` outstanding. */
static bool
measure_store(const char *db, const char *body, size_t len, unsigned warmup, unsigned events,
    unsigned in_flight, unsigned batch_max, struct cost *out, double *mean_batch)
{
	struct hr_store_opts so = { .engine = &hr_store_sqlite,
		.path = db,
		.batch_max = batch_max,
		.queue_max = in_flight + 16,
		.rejections_max = 10000,
		.readers = 1 };
	struct hr_error err = { .field = "" };
	struct hr_store_stats st0, st1;
	struct hr_parse_error pe;
	struct hr_store *store;
	struct hr_event ev;
	bool ok;
	int64_t t0;
	double c0, s0, s1;

	if (hr_store_open(&so, &store, &err) != HR_OK) {
		fprintf(stderr, "hr_floor: %s: %s\n", db, err.msg);
		return false;
	}
	if (hr_event_parse(body, len, HR_PROVIDER_AUTO, &limits, &ev, &pe) != HR_OK) {
		hr_store_close(store);
		return false;
	}
	ok = store_run(store, &ev, body, len, warmup, in_flight);
	hr_store_stats(store, &st0);
	t0 = hr_time_mono_us();
	c0 = cpu_now(&s0);
	ok = ok && store_run(store, &ev, body, len, events, in_flight);
	out->cpu_s = cpu_now(&s1) - c0;
	out->sys_s = s1 - s0;
	out->wall_s = (double)(hr_time_mono_us() - t0) / 1e6;
	hr_store_stats(store, &st1);
	hr_store_close(store); /* after every write is done: they borrow `ev` */
	hr_event_clear(&ev);
	free_writes();
	*mean_batch = st1.batches > st0.batches
	    ? (double)(st1.jobs - st0.jobs) / (double)(st1.batches - st0.batches)
	    : 0.0;
	if (!ok)
		fprintf(stderr, "hr_floor: a write failed\n");
	return ok;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = { { "body", required_argument, NULL, 'b' },
		{ "db", required_argument, NULL, 'd' }, { "events", required_argument, NULL, 'n' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "in-flight", required_argument, NULL, 'i' },
		{ "batch-max", required_argument, NULL, 'm' }, { NULL, 0, NULL, 0 } };
	const char *body_path = NULL, *db = NULL;
	unsigned events = 20000, warmup = 1000, in_flight = 64, batch_max = 1000;
	struct cost jansson, event, stored, raw;
	char raw_path[4096];
	double mean_batch = 0;
	bool ok;
	size_t len;
	char *body;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'b':
			body_path = optarg;
			break;
		case 'd':
			db = optarg;
			break;
		case 'n':
			events = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'w':
			warmup = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'i':
			in_flight = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'm':
			batch_max = (unsigned)strtoul(optarg, NULL, 10);
			break;
		default:
			return 2;
		}
	}
	if (body_path == NULL || db == NULL || optind != argc || events == 0 || in_flight == 0 ||
	    batch_max == 0) {
		fprintf(stderr,
		    "usage: hr_floor --body FILE --db PATH [--events N] [--warmup N] "
		    "[--in-flight N] [--batch-max N]\n");
		return 2;
	}
	if ((body = read_file(body_path, &len)) == NULL) {
		fprintf(stderr, "hr_floor: cannot read %s\n", body_path);
		return 1;
	}
	if (!measure(jansson_once, body, len, warmup, events, &jansson) ||
	    !measure(event_once, body, len, warmup, events, &event)) {
		fprintf(stderr, "hr_floor: %s does not parse and validate\n", body_path);
		free(body);
		return 1;
	}
	/* The store first: its SQLite set-up (no mutexes, no memory statistics) must
	 * come before SQLite's first use, and then holds for the bare phase too. */
	snprintf(raw_path, sizeof(raw_path), "%s-raw", db);
	ok = measure_store(
	         db, body, len, warmup, events, in_flight, batch_max, &stored, &mean_batch) &&
	    measure_sqlite(
	        raw_path, body, len, warmup, events, in_flight > 1 ? in_flight / 2 : 1, &raw);
	free(body);
	if (!ok)
		return 1;
	printf("{\"events\":%u,\"body_bytes\":%zu,\"in_flight\":%u,"
	       "\"jansson_cpu_ms_per_1k\":%.3f,\"event_cpu_ms_per_1k\":%.3f,"
	       "\"sqlite_cpu_ms_per_1k\":%.3f,\"sqlite_sys_ms_per_1k\":%.3f,\"sqlite_per_s\":%.0f,"
	       "\"store_cpu_ms_per_1k\":%.3f,\"store_sys_ms_per_1k\":%.3f,\"store_per_s\":%.0f,"
	       "\"store_mean_batch\":%.1f}\n",
	    events, len, in_flight, jansson.cpu_s * 1e6 / events, event.cpu_s * 1e6 / events,
	    raw.cpu_s * 1e6 / events, raw.sys_s * 1e6 / events, events / raw.wall_s,
	    stored.cpu_s * 1e6 / events, stored.sys_s * 1e6 / events, events / stored.wall_s,
	    mean_batch);
	return 0;
}
