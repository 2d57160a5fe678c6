/*
 * forward_request.c - one attempt's HTTP request: the easy handle, the
 * Standard Webhooks headers and signatures, and the SSRF guard.
 *
 * The guard sits on libcurl's own hooks (the socket it opens, and the
 * connection a request is about to go out on) because only there is the
 * address known that a name resolved to, and a reused connection is seen.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "forward_int.h"
#include "hr/netaddr.h"
#include "hr/sign.h"
#include "hr/timefmt.h"

static size_t
on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct transfer *t = arg;
	size_t n = size * nmemb, room = sizeof(t->response) - t->response_len;

	memcpy(t->response + t->response_len, data, n < room ? n : room);
	t->response_len += n < room ? n : room;
	return n; /* the rest is read and dropped */
}

/* The SSRF guard: check the address libcurl is about to connect to. */
static curl_socket_t
on_open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct transfer *t = arg;
	char why[96];

	(void)purpose;
	if (!hr_netaddr_allowed(&a->addr, why, sizeof(why))) {
		char addr[64] = "?";

		if (a->family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *)&a->addr)->sin_addr, addr,
			    sizeof(addr));
		else if (a->family == AF_INET6)
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&a->addr)->sin6_addr, addr,
			    sizeof(addr));
		t->blocked = true;
		snprintf(
		    t->why, sizeof(t->why), "blocked: %s is %s (allow_private = false)", addr, why);
		return CURL_SOCKET_BAD;
	}
	t->opened_allowed = true;
	return socket(a->family, a->socktype, a->protocol);
}

/*
 * ... and again on the connection each request is about to go out on, which
 * may be one reused from the shared connection cache that a destination with
 * allow_private opened: the socket guard alone never sees those.
 */
static int
on_prereq(void *arg, char *primary_ip, char *local_ip, int primary_port, int local_port)
{
	struct transfer *t = arg;
	struct sockaddr_storage ss;
	char why[96];

	(void)local_ip;
	(void)primary_port;
	(void)local_port;
	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, primary_ip, &((struct sockaddr_in *)&ss)->sin_addr) == 1)
		ss.ss_family = AF_INET;
	else if (inet_pton(AF_INET6, primary_ip, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1)
		ss.ss_family = AF_INET6;
	if (hr_netaddr_allowed((struct sockaddr *)&ss, why, sizeof(why))) {
		t->blocked = false; /* another address of the name was refused; this one is fine */
		return CURL_PREREQFUNC_OK;
	}
	t->blocked = true;
	t->opened_allowed = false; /* the request would go out to this address: refused */
	snprintf(
	    t->why, sizeof(t->why), "blocked: %s is %s (allow_private = false)", primary_ip, why);
	return CURL_PREREQFUNC_ABORT;
}

/* Count the times the request went out: libcurl silently resends a request whose
 * reused connection died before any answer, and the attempt log must show it. */
static int
on_debug(CURL *e, curl_infotype type, char *data, size_t size, void *arg)
{
	struct transfer *t = arg;

	(void)e;
	(void)data;
	(void)size;
	if (type == CURLINFO_HEADER_OUT)
		t->sends++;
	return 0;
}

/*
 * `line` at the end of *list. A list that cannot take one goes whole (NULL, *ok
 * false) and takes no more: a failed append once left NULL, its lines so far
 * lost, and the next began a new list, so a request could go out without its
 * webhook-id, its signature or its configured Authorization (review RF40).
 */
static void
append(struct curl_slist **list, bool *ok, const char *line)
{
	struct curl_slist *grown;

	if (!*ok)
		return;
	if ((grown = curl_slist_append(*list, line)) == NULL) {
		curl_slist_free_all(*list);
		*list = NULL;
		*ok = false;
		return;
	}
	*list = grown;
}

static void
add_header(struct curl_slist **list, bool *ok, const char *name, const char *value)
{
	char line[1024];

	snprintf(line, sizeof(line), "%s: %s", name, value);
	append(list, ok, line);
}

/* Does a configured header line set `name`? (It then replaces hookrelay's.) */
static bool
configured(const struct hr_destination_cfg *c, const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; i < c->headers.n; i++)
		if (strncasecmp(c->headers.v[i], name, n) == 0 && c->headers.v[i][n] == ':')
			return true;
	return false;
}

static int
build_headers(struct transfer *t)
{
	struct dest *d = t->d;
	const struct hr_destination_cfg *c = d->cfg;
	char ts[24], sigs[MAX_SECRETS * 64] = "";
	int64_t now_s = hr_time_now_us() / 1000000;
	struct curl_slist *h = NULL;
	bool ok = true;

	snprintf(ts, sizeof(ts), "%lld", (long long)now_s);
	for (size_t i = 0; i < d->keys.n; i++) {
		char one[64];
		size_t used = strlen(sigs);

		if (hr_sw_sign(d->keys.key[i], d->keys.len[i], t->event_id, now_s, t->body,
		        t->body_len, one, sizeof(one)) != HR_OK)
			return HR_ENOMEM;
		snprintf(sigs + used, sizeof(sigs) - used, "%s%s", used ? " " : "", one);
	}
	if (!configured(c, "Content-Type"))
		add_header(&h, &ok, "Content-Type", "application/json");
	if (!configured(c, "User-Agent"))
		add_header(&h, &ok, "User-Agent", "hookrelay/" HR_VERSION_STRING);
	add_header(&h, &ok, "webhook-id", t->event_id);
	add_header(&h, &ok, "webhook-timestamp", ts);
	if (sigs[0] != '\0')
		add_header(&h, &ok, "webhook-signature", sigs);
	append(&h, &ok, "Expect:"); /* no 100-continue round trip */
	for (size_t i = 0; i < c->headers.n; i++)
		append(&h, &ok, c->headers.v[i]);
	if (!ok)
		return HR_ENOMEM;
	t->headers = h;
	return HR_OK;
}

int
hr_fwd_request_setup(struct transfer *t)
{
	const struct hr_destination_cfg *c = t->d->cfg;
	CURL *e = curl_easy_init();

	if (e == NULL || build_headers(t) != HR_OK || (t->url = strdup(c->url)) == NULL) {
		curl_easy_cleanup(e);
		curl_slist_free_all(t->headers);
		t->headers = NULL;
		return HR_ENOMEM;
	}
	t->easy = e;
	curl_easy_setopt(e, CURLOPT_URL, t->url);
	curl_easy_setopt(e, CURLOPT_POST, 1L);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->body);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)t->body_len);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)c->connect_timeout_ms);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L); /* a redirect could lead anywhere */
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	/* No proxy from the environment: the SSRF guard must see the destination's
	 * own address, not a proxy's. */
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
	curl_easy_setopt(e, CURLOPT_PRIVATE, t);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_DEBUGFUNCTION, on_debug);
	curl_easy_setopt(e, CURLOPT_DEBUGDATA, t);
	curl_easy_setopt(e, CURLOPT_VERBOSE, 1L); /* feeds on_debug only; nothing is printed */
	if (!c->allow_private) {
		curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
		curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, t);
		curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, on_prereq);
		curl_easy_setopt(e, CURLOPT_PREREQDATA, t);
	}
	return HR_OK;
}
