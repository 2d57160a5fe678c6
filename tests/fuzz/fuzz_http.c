/*
 * fuzz_http.c - raw HTTP bytes through libmicrohttpd and hookrelay's checks.
 *
 * The input is what a client sends on one connection. It goes into one end
 * of a socketpair whose other end is handed to an in-process MHD daemon
 * (no threads, no listening socket, the memory pool hookrelay uses), which
 * parses it and calls a handler that does what http.c does on a request's
 * first callback: the raw target (URI callback) and the header layout and
 * framing (hr_reqcheck_headers()) judged exactly as in the daemon, then
 * Host and Origin (hr_reqcheck_host(), hr_reqcheck_origin()) for a
 * request that passes; bodies are read and counted. hr_reqcheck_headers()
 * reads MHD's buffer around each field, so ASan watching that is the point.
 *
 * Properties: a request the checks let through has exactly one Host, not
 * both Content-Length and Transfer-Encoding, and a target without a NUL,
 * dot segment or encoded unreserved character; the connection always ends.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <strings.h>
#include <unistd.h>

#include "fuzz.h"
#include "hr/reqcheck.h"

#define RUN_TURNS 64 /* MHD_run() calls per input: far more than one request needs */

struct seen {
	const char *target_end, *target_why;
	char target[512]; /* the raw target, for the properties */
	bool truncated;
};

static struct MHD_Daemon *mhd;
static struct seen seen; /* one connection at a time */
static struct sockaddr_in bound;
static char *names_v[] = { "hooks.example.com", "api.example.net:8443" };
static const struct hr_strlist names = { names_v, 2 };

static void *
on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
	size_t n = strlen(uri);

	(void)cls;
	(void)c;
	seen.target_end = uri + n;
	seen.target_why = hr_reqcheck_target(uri);
	seen.truncated = n >= sizeof(seen.target);
	memcpy(seen.target, uri, seen.truncated ? sizeof(seen.target) - 1 : n);
	seen.target[seen.truncated ? sizeof(seen.target) - 1 : n] = '\0';
	return NULL;
}

struct count {
	const char *name;
	unsigned n;
};

static enum MHD_Result
count_one(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct count *k = cls;

	(void)kind;
	(void)value;
	if (strcasecmp(key, k->name) == 0)
		k->n++;
	return MHD_YES;
}

static unsigned
count_field(struct MHD_Connection *c, const char *name)
{
	struct count k = { name, 0 };

	MHD_get_connection_values(c, MHD_HEADER_KIND, count_one, &k);
	return k.n;
}

/* What a request the checks passed must be. */
static void
check_passed(struct MHD_Connection *c)
{
	char path[sizeof(seen.target)];

	snprintf(path, sizeof(path), "%s", seen.target);
	path[strcspn(path, "?")] = '\0';

	FUZZ_CHECK(count_field(c, "Host") == 1); /* no route here takes HTTP/1.0 without */
	FUZZ_CHECK(
	    !(count_field(c, "Content-Length") > 0 && count_field(c, "Transfer-Encoding") > 0));
	FUZZ_CHECK(count_field(c, "Transfer-Encoding") <= 1);
	FUZZ_CHECK(seen.target[0] == '/');
	if (!seen.truncated) {
		FUZZ_CHECK(strstr(path, "/../") == NULL && strstr(path, "/./") == NULL);
		FUZZ_CHECK(strstr(seen.target, "%00") == NULL);
		FUZZ_CHECK(strstr(path, "%65") == NULL && strstr(path, "%2f") == NULL);
	}
}

static enum MHD_Result
reply(struct MHD_Connection *c, unsigned status)
{
	struct MHD_Response *r =
	    MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ok;

	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
	ok = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ok;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
    const char *version, const char *upload, size_t *upload_size, void **req_cls)
{
	const char *why, *field = NULL;

	(void)cls;
	(void)url;
	(void)method;
	(void)upload;
	if (*req_cls == NULL) {
		*req_cls = &seen;
		why = hr_reqcheck_headers(c, version, false, &field);
		if (why == NULL && version != seen.target_end + 1)
			why = "NUL in the target";
		if (why == NULL)
			why = seen.target_why;
		if (why != NULL)
			return reply(c, 400);
		check_passed(c);
		(void)hr_reqcheck_host(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host"),
		    (const struct sockaddr *)&bound, &names);
		(void)hr_reqcheck_origin(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin"),
		    (const struct sockaddr *)&bound, &names);
		return MHD_YES;
	}
	if (*upload_size != 0) {
		*upload_size = 0;
		return MHD_YES;
	}
	return reply(c, 200);
}

static int
setup(void)
{
	bound.sin_family = AF_INET;
	bound.sin_port = htons(8080);
	bound.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	/* As http.c, but run by hand: MHD_run() never blocks without an internal thread. */
	mhd = MHD_start_daemon(MHD_USE_NO_LISTEN_SOCKET, 0, NULL, NULL, on_request, NULL,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(2 * 16384 + 8192),
	    MHD_OPTION_URI_LOG_CALLBACK, on_uri, NULL, MHD_OPTION_END);
	return mhd != NULL;
}

static size_t
open_connections(void)
{
	const union MHD_DaemonInfo *i =
	    MHD_get_daemon_info(mhd, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);

	return i != NULL ? i->num_connections : 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_in peer = bound;
	char sink[4096];
	int sv[2];
	bool ended = false;

	if (mhd == NULL && !setup())
		return 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		return 0;
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	memset(&seen, 0, sizeof(seen));
	if (MHD_add_connection(mhd, sv[0], (struct sockaddr *)&peer, sizeof(peer)) != MHD_YES) {
		close(sv[1]);
		return 0;
	}
	for (size_t off = 0; off < size;) { /* the socket buffer holds far more than max_len */
		ssize_t n = write(sv[1], data + off, size - off);

		if (n <= 0)
			break;
		off += (size_t)n;
	}
	shutdown(sv[1], SHUT_WR);
	for (int turn = 0; turn < RUN_TURNS && !ended; turn++) {
		ssize_t n;

		MHD_run(mhd);
		while ((n = read(sv[1], sink, sizeof(sink))) > 0)
			;
		ended = n == 0;
	}
	close(sv[1]);
	for (int turn = 0; turn < RUN_TURNS && open_connections() > 0; turn++)
		MHD_run(mhd);
	FUZZ_CHECK(open_connections() == 0);
	return 0;
}
