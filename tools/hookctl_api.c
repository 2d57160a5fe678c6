/*
 * hookctl_api.c - the REST client: requests, problems and exit codes, and
 * the server-sent events of GET /v1/stream.
 *
 * Every answer is read into a buffer bounded by MAX_BODY. A 4xx/5xx is an
 * RFC 9457 problem: its title and detail go to stderr and the exit code is
 * EXIT_API; not reaching the daemon at all is EXIT_CONNECT. The one 5xx that
 * is not a problem is the 503 of /healthz, its report of an unhealthy daemon.
 */
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "hookctl.h"
#include "hr/dynbuf.h"
#include "hr/jsontext.h"

#ifndef HOOKCTL_VERSION
#define HOOKCTL_VERSION "0.0.0"
#endif

#define MAX_BODY           (64u << 20) /* a larger answer is refused */
#define MAX_EVENT          (8u << 20)  /* one server-sent event */
#define CONNECT_TIMEOUT_MS 5000L
#define TIMEOUT_MS         120000L
#define STREAM_SILENCE_S   45L    /* three missed keepalives: the stream is dead */
#define FORWARD_TIMEOUT_MS 10000L /* listen: a local server's answer */
#define MAX_RETRY_AFTER_S  60L    /* a 503's Retry-After is honoured up to this */

/* The API's query parameter for each option that is one. */
static const char *const opt_params[O_COUNT] = {
	[O_SINCE] = "since",
	[O_UNTIL] = "until",
	[O_KIND] = "kind",
	[O_SOURCE] = "source",
	[O_PROVIDER] = "provider",
	[O_SESSION] = "session",
	[O_ROOM] = "room",
	[O_EVENT_TYPE] = "event_type",
	[O_SUBTYPE] = "subtype",
	[O_STATUS] = "status",
	[O_DESTINATION] = "destination",
	[O_LIMIT] = "limit",
};

/* Append to a bounded buffer (hr/dynbuf.h); false past its cap or out of memory. */
static bool
buf_add(struct hr_dynbuf *b, const char *p, size_t n)
{
	return hr_dynbuf_add(b, p, n) == HR_OK;
}

/* ---- paths ---- */

static void
path_append(struct ctl_path *p, const char *text)
{
	if (!hr_appendf(p->buf, sizeof(p->buf), &p->len, "%s", text))
		p->overflow = true;
}

void
ctl_path_init(struct ctl_path *p, const char *head, const char *segment, const char *tail)
{
	char *esc = segment != NULL ? curl_easy_escape(NULL, segment, 0) : NULL;

	p->len = 0;
	p->buf[0] = '\0';
	p->query = false;
	p->overflow = segment != NULL && esc == NULL;
	path_append(p, head);
	path_append(p, esc != NULL ? esc : "");
	path_append(p, tail != NULL ? tail : "");
	curl_free(esc);
}

void
ctl_path_add(struct ctl_path *p, const char *name, const char *value)
{
	char *esc = curl_easy_escape(NULL, value, 0);

	if (esc == NULL) {
		p->overflow = true;
		return;
	}
	path_append(p, p->query ? "&" : "?");
	path_append(p, name);
	path_append(p, "=");
	path_append(p, esc);
	p->query = true;
	curl_free(esc);
}

/* --query NAME=VALUE is the parameter query.NAME=VALUE. */
static void
path_add_query(struct ctl_path *p, const char *nv)
{
	const char *eq = strchr(nv, '=');
	char *name = eq != NULL ? curl_easy_escape(NULL, nv, (int)(eq - nv)) : NULL;
	char param[256];

	if (name == NULL ||
	    (size_t)snprintf(param, sizeof(param), "query.%s", name) >= sizeof(param))
		p->overflow = true;
	else
		ctl_path_add(p, param, eq + 1);
	curl_free(name);
}

void
ctl_path_add_opts(struct ctl_path *p, const struct ctl *c, unsigned opts)
{
	for (int o = 0; o < O_COUNT; o++)
		if ((opts & OPT(o)) && opt_params[o] != NULL)
			for (int i = 0; i < c->nvals[o]; i++)
				ctl_path_add(p, opt_params[o], c->vals[o][i]);
	if (opts & OPT(O_QUERY))
		for (int i = 0; i < c->nvals[O_QUERY]; i++)
			path_add_query(p, c->vals[O_QUERY][i]);
}

/* ---- requests ---- */

volatile sig_atomic_t ctl_interrupted;

static void
on_interrupt(int sig)
{
	(void)sig;
	ctl_interrupted = 1;
}

/* No SA_RESTART: a sleep between reconnections ends at once. */
void
ctl_catch_interrupt(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_interrupt;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

/* libcurl asks at least once a second, also while nothing arrives. */
static int
on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	(void)arg;
	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return ctl_interrupted ? 1 : 0;
}

static void
easy_common(CURL *h, char *errbuf)
{
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
}

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
	return buf_add(arg, p, size * n) ? size * n : 0;
}

/* `hdrs` with "Authorization: Bearer TOKEN" after it, whatever the token's length:
 * a fixed line cut a long one, answered 401 (review R42AU). NULL when out of memory. */
static struct curl_slist *
append_bearer(struct curl_slist *hdrs, const char *token)
{
	static const char prefix[] = "Authorization: Bearer ";
	size_t n = strlen(token);
	char *line = malloc(sizeof(prefix) + n);
	struct curl_slist *with;

	if (line == NULL)
		return NULL;
	memcpy(line, prefix, sizeof(prefix) - 1);
	memcpy(line + sizeof(prefix) - 1, token, n + 1);
	with = curl_slist_append(hdrs, line);
	free(line);
	return with;
}

static CURL *
easy_new(
    struct ctl *c, const char *path, const char *accept, struct curl_slist **hdrs, char *errbuf)
{
	CURL *h = curl_easy_init();
	char url[4096], line[1200];

	*hdrs = NULL;
	if (h == NULL)
		return NULL;
	snprintf(url, sizeof(url), "%s%s", c->url, path);
	curl_easy_setopt(h, CURLOPT_URL, url);
	easy_common(h, errbuf);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "hookctl/" HOOKCTL_VERSION);
	snprintf(line, sizeof(line), "Accept: %s", accept);
	*hdrs = curl_slist_append(*hdrs, line);
	if (c->token != NULL)
		*hdrs = append_bearer(*hdrs, c->token);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, *hdrs);
	return h;
}

static int
transport_error(struct ctl *c, CURLcode rc, const char *errbuf)
{
	const char *why = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc);

	if (rc == CURLE_URL_MALFORMAT || rc == CURLE_UNSUPPORTED_PROTOCOL) {
		fprintf(stderr, "hookctl: bad URL %s: %s\n", c->url, why);
		return EXIT_USAGE;
	}
	if (rc == CURLE_WRITE_ERROR) {
		fprintf(stderr, "hookctl: the answer from %s is too large\n", c->url);
		return EXIT_API;
	}
	fprintf(stderr, "hookctl: cannot connect to %s: %s\n", c->url, why);
	return EXIT_CONNECT;
}

/* A refusal: the problem's title and detail (RFC 9457), else the status. */
static int
api_error(long status, const struct hr_dynbuf *body)
{
	json_t *doc = body->len ? hr_json_load_wide(body->p, body->len, 0, NULL) : NULL;
	const char *title = json_string_value(json_object_get(doc, "title"));
	const char *detail = json_string_value(json_object_get(doc, "detail"));
	json_t *errors = json_object_get(doc, "errors");
	size_t i;
	json_t *e;

	char t[256], d[1024], p[512];

	/* The daemon's text, but it may quote what a sender wrote: never raw to a terminal. */
	fprintf(stderr, "hookctl: HTTP %ld%s%s%s%s\n", status, title ? ": " : "",
	    ctl_safe(title, t, sizeof(t)), detail ? ": " : "", ctl_safe(detail, d, sizeof(d)));
	json_array_foreach(errors, i, e) fprintf(stderr, "  %s: %s\n",
	    ctl_safe(json_string_value(json_object_get(e, "pointer")), p, sizeof(p)),
	    ctl_safe(json_string_value(json_object_get(e, "detail")), d, sizeof(d)));
	json_decref(doc);
	return EXIT_API;
}

/* A 503 answered with a JSON document, not a problem: /healthz's report of an
 * unhealthy daemon (a problem is application/problem+json). */
static bool
is_report(CURL *h, long status)
{
	char *type = NULL;
	size_t n = strlen("application/json");

	if (status != 503 || curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &type) != CURLE_OK ||
	    type == NULL)
		return false;
	return strncasecmp(type, "application/json", n) == 0 &&
	    (type[n] == '\0' || type[n] == ';' || type[n] == ' ');
}

/* EXIT_OK: `out` holds a document, of a 2xx or, when `report`, of a report's 503
 * (c->last_status tells them apart). */
static int
request(struct ctl *c, const char *method, const char *path, const char *accept, bool report,
    struct hr_dynbuf *out)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdrs;
	CURL *h = easy_new(c, path, accept, &hdrs, errbuf);
	long status = 0;
	CURLcode rc;
	int ret;

	if (h == NULL) {
		fprintf(stderr, "hookctl: out of memory\n");
		return EXIT_CONNECT;
	}
	if (strcmp(method, "POST") == 0) {
		/* JSON, as the API wants from a state-changing request (no form can send it) */
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
	}
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, TIMEOUT_MS);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
	rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	c->last_status = rc == CURLE_OK ? status : 0;
	if (rc != CURLE_OK)
		ret = transport_error(c, rc, errbuf);
	else if ((status < 200 || status > 299) && !(report && is_report(h, status)))
		ret = api_error(status, out);
	else
		ret = EXIT_OK;
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(h);
	return ret;
}

/* `text`, if not NULL: the answer's bytes too (emptied when there is no answer). */
static int
call_json(struct ctl *c, const char *method, const char *path, bool report, json_t **out,
    struct hr_dynbuf *text)
{
	struct hr_dynbuf b;
	json_error_t jerr;
	int rc;

	hr_dynbuf_init(&b, 0, MAX_BODY - 1); /* MAX_BODY counted the NUL */
	rc = request(c, method, path, "application/json", report, &b);
	*out = NULL;
	if (rc == EXIT_OK && (*out = hr_json_load_wide(b.p, b.len, 0, &jerr)) == NULL) {
		fprintf(stderr, "hookctl: %s: the answer is not JSON: %s\n", path, jerr.text);
		rc = EXIT_API;
	}
	if (text != NULL && rc == EXIT_OK) {
		*text = b; /* taken */
		return rc;
	}
	if (text != NULL)
		hr_dynbuf_init(text, 0, 0);
	hr_dynbuf_free(&b);
	return rc;
}

int
ctl_call(struct ctl *c, const char *method, const char *path, json_t **out)
{
	return call_json(c, method, path, false, out, NULL);
}

int
ctl_call_text(
    struct ctl *c, const char *method, const char *path, json_t **out, struct hr_dynbuf *text)
{
	return call_json(c, method, path, false, out, text);
}

int
ctl_call_report(struct ctl *c, const char *path, json_t **out)
{
	int rc = call_json(c, "GET", path, true, out, NULL);

	return rc == EXIT_OK && c->last_status == 503 ? EXIT_API : rc;
}

int
ctl_call_raw(struct ctl *c, const char *path, char **body, size_t *len)
{
	struct hr_dynbuf b;
	int rc;

	hr_dynbuf_init(&b, 0, MAX_BODY - 1);
	rc = request(c, "GET", path, "*/*", false, &b);
	*body = NULL;
	*len = 0;
	if (rc == EXIT_OK && b.p == NULL && !buf_add(&b, "", 0))
		rc = EXIT_API;
	if (rc != EXIT_OK) {
		hr_dynbuf_free(&b);
		return rc;
	}
	*body = b.p;
	*len = b.len;
	return EXIT_OK;
}

/* ---- server-sent events ---- */

struct sse {
	struct ctl *c;
	CURL *h;
	struct ctl_follow *f;
	long status; /* 0 until the first bytes */
	struct hr_dynbuf line, data, err;
	int64_t id; /* of the event being read; -1: none */
};

/* An event is complete; false: it was not handled, and the stream is broken off
 * before it (last_id stays, so the reconnect sends it again). */
static bool
sse_dispatch(struct sse *s)
{
	json_t *doc;
	bool handled = true;

	if (s->data.len > 0 && (doc = hr_json_load_wide(s->data.p, s->data.len, 0, NULL)) != NULL) {
		handled = s->f->on_event(s->c, doc, s->f->arg);
		json_decref(doc);
	}
	if (handled && s->id >= 0)
		s->f->last_id = s->id;
	s->id = -1;
	hr_dynbuf_shrink(&s->data, 0);
	return handled;
}

/* One line of the event stream (WHATWG HTML, "server-sent events"). */
static bool
sse_line(struct sse *s, char *line, size_t n)
{
	char *value;

	if (n > 0 && line[n - 1] == '\r')
		line[--n] = '\0';
	if (n == 0)
		return sse_dispatch(s);
	if (line[0] == ':')
		return true; /* a comment: the keepalive */
	if ((value = strchr(line, ':')) != NULL) {
		*value++ = '\0';
		if (*value == ' ')
			value++;
	} else {
		value = line + n;
	}
	if (strcmp(line, "data") == 0)
		return (s->data.len == 0 || buf_add(&s->data, "\n", 1)) &&
		    buf_add(&s->data, value, strlen(value));
	if (strcmp(line, "id") == 0)
		s->id = strtoll(value, NULL, 10);
	else if (strcmp(line, "retry") == 0 && atol(value) > 0)
		s->f->retry_ms = atol(value);
	return true;
}

static size_t
sse_write(char *p, size_t size, size_t n, void *arg)
{
	struct sse *s = arg;
	size_t len = size * n, off = 0;

	if (s->status == 0)
		curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &s->status);
	if (s->status != 200)
		return buf_add(&s->err, p, len) ? len : 0;
	s->f->connected = true;
	while (off < len) {
		char *nl = memchr(p + off, '\n', len - off);
		size_t k = nl != NULL ? (size_t)(nl - (p + off)) : len - off;

		if (!buf_add(&s->line, p + off, k))
			return 0;
		off += k;
		if (nl == NULL)
			break;
		off++;
		if (!sse_line(s, s->line.p, s->line.len))
			return 0;
		hr_dynbuf_shrink(&s->line, 0);
	}
	fflush(stdout);
	return len;
}

int
ctl_stream(struct ctl *c, const char *path, struct ctl_follow *f)
{
	char errbuf[CURL_ERROR_SIZE] = "", last[48];
	struct sse s = { .c = c, .f = f, .id = -1 };
	struct curl_slist *hdrs;
	CURLcode rc;
	int ret = EXIT_OK;

	/* The caps counted the NUL as they always did. */
	hr_dynbuf_init(&s.line, 0, MAX_EVENT - 1);
	hr_dynbuf_init(&s.data, 0, MAX_EVENT - 1);
	hr_dynbuf_init(&s.err, 0, MAX_BODY - 1);
	f->connected = false;
	f->busy = false;
	f->busy_ms = 0;
	if ((s.h = easy_new(c, path, "text/event-stream", &hdrs, errbuf)) == NULL)
		return EXIT_CONNECT;
	if (f->last_id >= 0) {
		snprintf(last, sizeof(last), "Last-Event-ID: %lld", (long long)f->last_id);
		hdrs = curl_slist_append(hdrs, last);
		curl_easy_setopt(s.h, CURLOPT_HTTPHEADER, hdrs);
	}
	curl_easy_setopt(s.h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(s.h, CURLOPT_LOW_SPEED_TIME, STREAM_SILENCE_S);
	curl_easy_setopt(s.h, CURLOPT_WRITEFUNCTION, sse_write);
	curl_easy_setopt(s.h, CURLOPT_WRITEDATA, &s);
	rc = curl_easy_perform(s.h);
	if (s.status == 0)
		curl_easy_getinfo(s.h, CURLINFO_RESPONSE_CODE, &s.status);
	if (s.status == 503) { /* there, but busy or stopping: the caller tries again */
		curl_off_t after = 0;

		f->busy = true;
		if (curl_easy_getinfo(s.h, CURLINFO_RETRY_AFTER, &after) == CURLE_OK && after > 0)
			f->busy_ms = after < MAX_RETRY_AFTER_S ? (long)after * 1000
			                                       : MAX_RETRY_AFTER_S * 1000L;
		ret = EXIT_CONNECT;
	} else if (s.status != 0 && s.status != 200)
		ret = api_error(s.status, &s.err);
	else if (rc != CURLE_OK && !f->connected)
		ret = transport_error(c, rc, errbuf);
	else if (rc != CURLE_OK)
		ret = EXIT_CONNECT; /* broken off: the caller reconnects */
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(s.h);
	hr_dynbuf_free(&s.line);
	hr_dynbuf_free(&s.data);
	hr_dynbuf_free(&s.err);
	return ret;
}

/* ---- following the stream ---- */

int
ctl_follow(struct ctl *c, const char *path, struct ctl_follow *f)
{
	bool ever = false;
	int rc;

	for (;;) {
		struct timespec ts;
		long wait_ms;

		rc = ctl_stream(c, path, f);
		ever |= f->connected || f->busy;
		if (ctl_interrupted)
			return EXIT_OK;
		if (rc == EXIT_API || rc == EXIT_USAGE || (rc == EXIT_CONNECT && !ever))
			return rc;
		/* A busy server says when to come back; otherwise the stream's own delay. */
		wait_ms = f->busy && f->busy_ms > 0 ? f->busy_ms : f->retry_ms;
		fprintf(stderr, "hookctl: the stream %s; reconnecting in %.1f s\n",
		    f->busy             ? "was refused for now (503)"
		        : rc == EXIT_OK ? "ended"
		                        : "broke off",
		    (double)wait_ms / 1000);
		ts.tv_sec = wait_ms / 1000;
		ts.tv_nsec = (wait_ms % 1000) * 1000000L;
		nanosleep(&ts, NULL); /* ^C ends it early */
		if (ctl_interrupted)
			return EXIT_OK;
	}
}

/* ---- posting a stored event to a local URL (listen) ---- */

static size_t
discard(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n;
}

/* Headers that describe this hop, not the event: the new request has its own. */
static bool
hop_header(const char *name)
{
	static const char *const hop[] = { "content-length", "host", "transfer-encoding",
		"connection", "keep-alive", "expect", "te", "upgrade" };

	for (size_t i = 0; i < CTL_LEN(hop); i++)
		if (strcasecmp(name, hop[i]) == 0)
			return true;
	return false;
}

static struct curl_slist *
event_headers(json_t *headers)
{
	struct curl_slist *list = NULL, *next;
	bool has_type = false;
	const char *name;
	json_t *v;
	char line[8192];

	json_object_foreach(headers, name, v)
	{
		const char *value = json_string_value(v);

		/* A value that could end the header line is not sent as one. */
		if (value == NULL || hop_header(name) || strpbrk(value, "\r\n") != NULL ||
		    strpbrk(name, ":\r\n ") != NULL ||
		    (size_t)snprintf(line, sizeof(line), "%s: %s", name, value) >= sizeof(line))
			continue;
		has_type |= strcasecmp(name, "content-type") == 0;
		if ((next = curl_slist_append(list, line)) == NULL)
			break;
		list = next;
	}
	if (!has_type && (next = curl_slist_append(list, "Content-Type: application/json")) != NULL)
		list = next;
	if ((next = curl_slist_append(list, "Expect:")) != NULL) /* no 100-continue wait */
		list = next;
	return list;
}

void
ctl_post(struct ctl *c, const char *url, const char *body, size_t len, json_t *headers,
    struct ctl_answer *out)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdrs = event_headers(headers);
	CURL *h = curl_easy_init();
	CURLcode rc;
	double secs = 0;

	(void)c;
	memset(out, 0, sizeof(*out));
	if (h == NULL) {
		snprintf(out->error, sizeof(out->error), "out of memory");
		curl_slist_free_all(hdrs);
		return;
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	easy_common(h, errbuf);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, FORWARD_TIMEOUT_MS);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
	rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_TOTAL_TIME, &secs);
	out->ms = secs * 1000.0;
	if (rc == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
	else
		snprintf(out->error, sizeof(out->error), "%s",
		    errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc));
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(h);
}
