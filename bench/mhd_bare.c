/*
 * hr_mhd_bare - the HTTP ceiling of hookrelay's own stack, for bench/ingest.
 *
 * A libmicrohttpd server that does nothing but HTTP: it reads each request
 * body (and answers 400 if fewer bytes came than Content-Length said), then
 * answers 200 {"ok":true} from one shared response. With --suspend it
 * suspends every request once its body is in and a second thread resumes it,
 * which is the shape of hookrelay's ingest (the writer thread resumes a
 * request once its event is committed). The difference between hookrelay and
 * this program is what hookrelay's own work costs; the difference between
 * this program and nginx is what libmicrohttpd costs.
 *
 * The defaults are the configuration of the issue: one internal epoll thread,
 * MHD_USE_TURBO. The options reproduce other configurations so that figures
 * measured with them can be compared in one run (docs/benchmarks.md):
 *   --threads N         MHD_OPTION_THREAD_POOL_SIZE (1: no pool)
 *   --poll epoll|poll|select|per-connection   the thread model (epoll; poll with --hookrelay)
 *   --no-turbo          without MHD_USE_TURBO
 *   --memory BYTES      MHD_OPTION_CONNECTION_MEMORY_LIMIT (0: MHD's 32 KiB)
 *   --hookrelay         hookrelay's flags and options (src/http/http.c): the
 *                       poll() thread (unless --poll), no turbo, MHD_USE_ITC and
 *                       MHD_USE_ERROR_LOG, a 40 KiB pool, connection limits,
 *                       completion and connection callbacks; MHD still accepts
 *                       (hookrelay's own acceptor is not reproduced)
 *   --answer-early      queue the answer in the first callback, before the
 *                       body is read: MHD must then close the connection
 *                       after every answer (no keep-alive)
 *   --receiver DB       the least durable webhook receiver on hookrelay's
 *                       mandated stack (implies --suspend): the body kept,
 *                       parsed with jansson on the HTTP thread (400 if it is
 *                       not JSON), and the resumer, before it resumes a batch,
 *                       inserts the batch's bodies into a one-table SQLite
 *                       database (WAL, synchronous=FULL, one transaction per
 *                       batch: bench/hr_floor.c's "sqlite" part). No
 *                       validation, no indexes but the key, no outbox: what
 *                       any receiver that keeps every body durably before its
 *                       200 costs at least
 *
 * Not installed; prints "listening on 127.0.0.1:PORT" once it listens and
 * runs until SIGTERM or SIGINT.
 *
 * usage: hr_mhd_bare --port N [--suspend] [--threads N] [--poll MODEL]
 *                    [--no-turbo] [--memory BYTES] [--hookrelay] [--answer-early]
 *                    [--receiver DB]
 */
#include <errno.h>
#include <getopt.h>
#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RESUME_MAX                                                                                 \
	65536 /* suspended requests waiting for the resumer; above the connection limit */

struct opts {
	unsigned port, threads;
	const char *poll;
	bool suspend, turbo, hookrelay, answer_early;
	size_t memory;
	const char *receiver; /* the database's path: --receiver */
};

/* Per request: the body bytes seen, and whether it was suspended already;
 * with --receiver the body itself. */
struct req {
	size_t got, cap;
	bool resumed;
	char *body;
};

/* A suspended request, resumed by the resumer thread in the order they came. */
struct waiting {
	struct MHD_Connection *conn;
	const struct req *req;
};

struct resumer {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct waiting *ring;
	size_t head, len;
	bool stop;
	sqlite3 *db; /* --receiver: the batch is stored before it is resumed */
	sqlite3_stmt *ins;
	unsigned long long stored;
};

static struct MHD_Response *ok_resp, *short_resp;
static struct resumer resumer = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, 0, 0,
	false, NULL, NULL, 0 };

/*
 * Suspend `c` and hand it to the resumer, under the resumer's lock so that it
 * cannot resume it first. False when the ring is full or the resumer stops:
 * the caller answers at once instead.
 */
static bool
suspend_for_resumer(struct MHD_Connection *c, const struct req *r)
{
	bool ok;

	pthread_mutex_lock(&resumer.mu);
	ok = !resumer.stop && resumer.len < RESUME_MAX;
	if (ok) {
		MHD_suspend_connection(c);
		resumer.ring[(resumer.head + resumer.len++) % RESUME_MAX] =
		    (struct waiting){ c, r };
		pthread_cond_signal(&resumer.cv);
	}
	pthread_mutex_unlock(&resumer.mu);
	return ok;
}

/* --receiver: the batch's bodies in one transaction; exits on a failure (no 200
 * may follow a body that is not stored). */
static void
store_batch(const struct waiting *batch, size_t n)
{
	char id[32];

	if (sqlite3_exec(resumer.db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "evt_%016llx", ++resumer.stored);
		sqlite3_bind_text(resumer.ins, 1, id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(resumer.ins, 2, (sqlite3_int64)time(NULL));
		sqlite3_bind_blob(
		    resumer.ins, 3, batch[i].req->body, (int)batch[i].req->got, SQLITE_STATIC);
		if (sqlite3_step(resumer.ins) != SQLITE_DONE)
			goto fail;
		sqlite3_reset(resumer.ins);
	}
	if (sqlite3_exec(resumer.db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK)
		return;
fail:
	fprintf(stderr, "hr_mhd_bare: %s\n", sqlite3_errmsg(resumer.db));
	exit(1);
}

/* Takes every waiting connection at once, as hookrelay's writer takes a batch. */
static void *
resumer_main(void *arg)
{
	static struct waiting batch[RESUME_MAX];

	(void)arg;
	for (;;) {
		size_t n = 0;

		pthread_mutex_lock(&resumer.mu);
		while (resumer.len == 0 && !resumer.stop)
			pthread_cond_wait(&resumer.cv, &resumer.mu);
		if (resumer.len == 0 && resumer.stop) {
			pthread_mutex_unlock(&resumer.mu);
			return NULL;
		}
		while (resumer.len > 0) {
			batch[n++] = resumer.ring[resumer.head];
			resumer.head = (resumer.head + 1) % RESUME_MAX;
			resumer.len--;
		}
		pthread_mutex_unlock(&resumer.mu);
		if (resumer.db != NULL)
			store_batch(batch, n);
		for (size_t i = 0; i < n; i++)
			MHD_resume_connection(batch[i].conn);
	}
}

static enum MHD_Result
answer(struct MHD_Connection *conn, const struct req *r)
{
	const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
	bool whole = cl == NULL || strtoull(cl, NULL, 10) == r->got;

	return MHD_queue_response(
	    conn, whole ? MHD_HTTP_OK : MHD_HTTP_BAD_REQUEST, whole ? ok_resp : short_resp);
}

/* --receiver: the body so far, and the chunk after it. */
static bool
keep(struct req *r, const char *data, size_t len)
{
	if (r->got + len > r->cap) {
		size_t cap = r->cap ? r->cap : 4096;
		char *grown;

		while (cap < r->got + len)
			cap *= 2;
		if ((grown = realloc(r->body, cap)) == NULL)
			return false;
		r->body = grown;
		r->cap = cap;
	}
	memcpy(r->body + r->got, data, len);
	return true;
}

/* --receiver: the one parse a receiver cannot do without (jansson, as hookrelay). */
static bool
parses(const struct req *r)
{
	json_error_t err;
	json_t *doc = json_loadb(r->body ? r->body : "", r->got, 0, &err);

	json_decref(doc);
	return doc != NULL;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
    const char *version, const char *upload_data, size_t *upload_data_size, void **req_cls)
{
	const struct opts *o = cls;
	struct req *r = *req_cls;

	(void)url;
	(void)method;
	(void)version;
	(void)upload_data;
	if (r == NULL) {
		if ((r = calloc(1, sizeof(*r))) == NULL)
			return MHD_NO;
		*req_cls = r;
		return o->answer_early ? MHD_queue_response(conn, MHD_HTTP_OK, ok_resp) : MHD_YES;
	}
	if (*upload_data_size != 0) {
		if (o->receiver != NULL && !keep(r, upload_data, *upload_data_size))
			return MHD_NO;
		r->got += *upload_data_size;
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (o->receiver != NULL && !r->resumed && !parses(r))
		return MHD_queue_response(conn, MHD_HTTP_BAD_REQUEST, short_resp);
	if (o->suspend && !r->resumed) {
		r->resumed = true;
		if (suspend_for_resumer(conn, r))
			return MHD_YES;
	}
	return answer(conn, r);
}

static void
on_completed(
    void *cls, struct MHD_Connection *conn, void **req_cls, enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)conn;
	(void)toe;
	if (*req_cls != NULL)
		free(((struct req *)*req_cls)->body);
	free(*req_cls);
	*req_cls = NULL;
}

/* hookrelay's connection callback keeps a list of connections (slow-client deadlines); the
 * bare server only pays for the callback itself. */
static void
on_connection(void *cls, struct MHD_Connection *mc, void **socket_context,
    enum MHD_ConnectionNotificationCode code)
{
	(void)cls;
	(void)mc;
	(void)socket_context;
	(void)code;
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: hr_mhd_bare --port N [--suspend] [--threads N] "
	    "[--poll epoll|poll|select|per-connection] [--no-turbo] "
	    "[--memory BYTES] [--hookrelay] [--answer-early] [--receiver DB]\n");
	exit(2);
}

static void
parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "suspend", no_argument, NULL, 's' },
		{ "threads", required_argument, NULL, 't' },
		{ "poll", required_argument, NULL, 'P' },
		{ "no-turbo", no_argument, NULL, 'T' },
		{ "memory", required_argument, NULL, 'm' },
		{ "hookrelay", no_argument, NULL, 'H' },
		{ "answer-early", no_argument, NULL, 'e' },
		{ "receiver", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			o->port = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 's':
			o->suspend = true;
			break;
		case 't':
			o->threads = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'P':
			o->poll = optarg;
			break;
		case 'T':
			o->turbo = false;
			break;
		case 'm':
			o->memory = (size_t)strtoull(optarg, NULL, 10);
			break;
		case 'H':
			o->hookrelay = true;
			o->turbo = false;
			break;
		case 'e':
			o->answer_early = true;
			break;
		case 'r':
			o->receiver = optarg;
			o->suspend = true;
			break;
		default:
			usage();
		}
	}
	if (o->port == 0 || o->port > 65535 || o->threads == 0 || optind != argc)
		usage();
}

/* The thread model's flags, or 0 for an unknown name. */
static unsigned
poll_flags(const char *name)
{
	if (strcmp(name, "epoll") == 0)
		return MHD_USE_EPOLL_INTERNAL_THREAD;
	if (strcmp(name, "poll") == 0)
		return MHD_USE_POLL_INTERNAL_THREAD;
	if (strcmp(name, "select") == 0)
		return MHD_USE_SELECT_INTERNALLY;
	if (strcmp(name, "per-connection") == 0)
		return MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD;
	return 0;
}

static enum MHD_Result
on_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
	(void)cls;
	(void)addr;
	(void)addrlen;
	return MHD_YES;
}

static struct MHD_Daemon *
start(struct opts *o)
{
	/* hookrelay runs MHD's poll() loop (src/http/http_conn.c says why not epoll). */
	unsigned flags = poll_flags(o->poll ? o->poll : o->hookrelay ? "poll" : "epoll");
	/* hookrelay's value: src/http/http.c memory_limit() with max_header_size's default. */
	size_t memory = o->memory ? o->memory : o->hookrelay ? 2 * 16384 + 8192 : 32768;
	struct sockaddr_in sin = { .sin_family = AF_INET,
		.sin_port = htons((uint16_t)o->port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct MHD_OptionItem ops[16];
	size_t n = 0;

	/* MHD cannot suspend a connection that has a thread of its own. */
	if (flags == 0 || (o->suspend && (flags & MHD_USE_THREAD_PER_CONNECTION)))
		usage();
	if (o->turbo)
		flags |= MHD_USE_TURBO;
	if (o->suspend || o->hookrelay)
		flags |= MHD_ALLOW_SUSPEND_RESUME;
	if (o->hookrelay)
		flags |= MHD_USE_ERROR_LOG | MHD_USE_ITC;
	ops[n++] = (struct MHD_OptionItem){ MHD_OPTION_SOCK_ADDR, 0, &sin };
	if (o->threads > 1)
		ops[n++] = (struct MHD_OptionItem){ MHD_OPTION_THREAD_POOL_SIZE, o->threads, NULL };
	ops[n++] =
	    (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_MEMORY_LIMIT, (intptr_t)memory, NULL };
	ops[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_LIMIT, 4096, NULL };
	ops[n++] = (struct MHD_OptionItem){ MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024, NULL };
	ops[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_TIMEOUT, 30, NULL };
	ops[n++] =
	    (struct MHD_OptionItem){ MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, NULL };
	if (o->hookrelay) {
		ops[n++] = (struct MHD_OptionItem){ MHD_OPTION_NOTIFY_CONNECTION,
			(intptr_t)on_connection, NULL };
		ops[n++] = (struct MHD_OptionItem){ MHD_OPTION_PER_IP_CONNECTION_LIMIT, 0, NULL };
	}
	ops[n++] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
	return MHD_start_daemon(flags, 0, o->hookrelay ? on_accept : NULL, NULL, on_request, o,
	    MHD_OPTION_ARRAY, ops, MHD_OPTION_END);
}

/* --receiver: the database, as bench/hr_floor.c's "sqlite" part makes it. */
static bool
open_receiver(const char *path)
{
	if (sqlite3_open_v2(path, &resumer.db,
	        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
	        NULL) == SQLITE_OK &&
	    sqlite3_exec(resumer.db,
	        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
	        "CREATE TABLE IF NOT EXISTS e (id TEXT PRIMARY KEY, received INTEGER, body BLOB);",
	        NULL, NULL, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(
	        resumer.db, "INSERT INTO e VALUES (?, ?, ?)", -1, &resumer.ins, NULL) == SQLITE_OK)
		return true;
	fprintf(stderr, "hr_mhd_bare: %s: %s\n", path, sqlite3_errmsg(resumer.db));
	return false;
}

int
main(int argc, char **argv)
{
	static const char ok[] = "{\"ok\":true}", bad[] = "{\"ok\":false}";
	struct opts o = { .threads = 1, .poll = NULL, .turbo = true };
	struct MHD_Daemon *d = NULL;
	pthread_t resumer_thread;
	bool resumer_started = false;
	sigset_t sigs;
	int sig, rc = 1;

	parse_args(argc, argv, &o);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL); /* every thread started below inherits it */
	ok_resp = MHD_create_response_from_buffer(strlen(ok), (void *)ok, MHD_RESPMEM_PERSISTENT);
	short_resp =
	    MHD_create_response_from_buffer(strlen(bad), (void *)bad, MHD_RESPMEM_PERSISTENT);
	resumer.ring = calloc(RESUME_MAX, sizeof(*resumer.ring));
	if (ok_resp == NULL || short_resp == NULL || resumer.ring == NULL)
		goto out;
	MHD_add_response_header(ok_resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	MHD_add_response_header(short_resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	if (o.receiver != NULL && !open_receiver(o.receiver))
		goto out;
	if (o.suspend) {
		if (pthread_create(&resumer_thread, NULL, resumer_main, NULL) != 0)
			goto out;
		resumer_started = true;
	}
	if ((d = start(&o)) == NULL) {
		fprintf(stderr, "hr_mhd_bare: cannot listen on port %u\n", o.port);
		goto out;
	}
	printf("listening on 127.0.0.1:%u\n", o.port);
	fflush(stdout);
	while (sigwait(&sigs, &sig) != 0 || (sig != SIGTERM && sig != SIGINT))
		;
	rc = 0;
out:
	/* Resume what waits first: MHD_stop_daemon() must not find a suspended connection. */
	if (resumer_started) {
		pthread_mutex_lock(&resumer.mu);
		resumer.stop = true;
		pthread_cond_signal(&resumer.cv);
		pthread_mutex_unlock(&resumer.mu);
		pthread_join(resumer_thread, NULL);
	}
	if (d != NULL)
		MHD_stop_daemon(d);
	if (ok_resp != NULL)
		MHD_destroy_response(ok_resp);
	if (short_resp != NULL)
		MHD_destroy_response(short_resp);
	free(resumer.ring);
	sqlite3_finalize(resumer.ins);
	sqlite3_close(resumer.db);
	return rc;
}
