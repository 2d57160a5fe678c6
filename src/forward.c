/*
 * forward.c - the delivery worker.
 *
 * One thread runs a libcurl multi loop (connection reuse and keep-alive
 * come from the multi handle's connection cache). It wakes when the writer
 * commits new delivery rows, when an attempt's record committed, or when
 * the next pending row falls due, and takes due rows per destination up to
 * max_in_flight. A row stays owned here, counted against max_in_flight,
 * until the record of its attempt is committed, so it is never taken twice;
 * after a crash the rows are simply still pending and go again.
 *
 * The forwarder keeps its own copy of the destinations' settings, never the
 * configuration with its inbound secrets: a reference-counted set per
 * configuration generation. A destination holds a reference on the set its
 * settings are in, and a destination a reload removed lives on until its
 * last attempt is recorded, so no attempt outlives what it reads, however
 * many reloads come meanwhile.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hr/forward.h"
#include "hr/log.h"
#include "hr/netaddr.h"
#include "hr/secretfile.h"
#include "hr/sign.h"
#include "hr/timefmt.h"

#define RESPONSE_KEEP           4096                         /* bytes of each answer recorded */
#define LEASE_US                (INT64_C(10) * 60 * 1000000) /* a taken row's lease */
#define IDLE_POLL_US            (INT64_C(1000000)) /* look at the store at least this often */
#define BREAKER_MAX_COOLDOWN_US (INT64_C(600) * 1000000)
#define STOP_GRACE_US           (INT64_C(5) * 1000000) /* in-flight attempts get this long at stop */
#define MAX_SECRETS             8 /* signatures per request; a 9th secret is refused */

_Static_assert(MAX_SECRETS <= HR_SECRETFILE_LINES_MAX, "a destination's secrets fit the reader");

struct dest;

/* The destinations of one configuration, copied out of it. */
struct dset {
	atomic_uint refs;
	struct hr_destination_cfg *v; /* owned, deep copies */
	size_t n;
};

/* One attempt, from taking the row to its record being committed. */
struct transfer {
	struct hr_forwarder *fw;
	struct dest *d;
	struct transfer *next; /* in d->owned */
	CURL *easy;
	struct curl_slist *headers;
	int64_t delivery_id;
	int number;
	char event_id[40];
	char *order_key;
	char *body;
	size_t body_len;
	char response[RESPONSE_KEEP];
	size_t response_len;
	bool blocked;
	char why[256];
	char errbuf[CURL_ERROR_SIZE];
	int sends; /* request headers written: more than one when libcurl resent */
	int64_t started_us;
	struct hr_attempt att;
	struct hr_store_op op;
	struct transfer *next_unsubmitted; /* on fw->unsubmitted */
	bool submitted;                    /* its record is with the writer */
	bool recorded;                     /* ... and committed (or failed): it can be freed */

	int64_t received_us; /* the event's, for the delivery latency */
};

struct dest {
	const struct hr_destination_cfg *cfg; /* in `set` */
	struct dset *set;                     /* a reference: cfg stays valid while d lives */
	struct dest *next_retired;            /* removed by a reload, draining */
	struct transfer *owned;
	unsigned nowned;
	bool disabled;
	enum hr_breaker breaker;
	unsigned failures; /* consecutive */
	int64_t cooldown_us;
	int64_t probe_at_us;
	int64_t next_due_us; /* 0: nothing pending known */
	unsigned char keys[MAX_SECRETS][64];
	size_t keylen[MAX_SECRETS];
	size_t nkeys;
	struct curl_slist *extra_headers; /* configured `header` lines */
	struct hr_dest_metrics metrics;   /* /metrics; a reload that keeps the dest keeps them */
};

struct hr_forwarder {
	struct dset *set; /* the destinations in use; a reference held */
	struct hr_store *store;
	CURLM *multi;
	pthread_t thread;
	pthread_mutex_t mu; /* the dests arrays, dests' status fields, `recorded`, `pending` */
	struct dest **dests;
	size_t ndests;
	struct dest *retired; /* removed by a reload; freed once their attempts ended */
	struct dset *pending; /* a reload waiting for the loop to apply it */
	atomic_bool poll_needed;
	atomic_bool stopping;
	atomic_llong last_loop_us;
	struct transfer *unsubmitted; /* finished, waiting for room in the writer queue */
};

static void apply_reload(struct hr_forwarder *);

static const char *const breaker_names[] = { "closed", "open", "half-open" };

const char *
hr_breaker_name(enum hr_breaker b)
{
	return breaker_names[b];
}

/* ---- destination sets ---- */

static void
dset_release(struct dset *set)
{
	if (set == NULL || atomic_fetch_sub(&set->refs, 1) != 1)
		return;
	for (size_t i = 0; i < set->n; i++)
		hr_cfg_destination_clear(&set->v[i]);
	free(set->v);
	free(set);
}

static struct dset *
dset_ref(struct dset *set)
{
	atomic_fetch_add(&set->refs, 1);
	return set;
}

/* A new set (one reference) with copies of `dests`; NULL: no memory. */
static struct dset *
dset_new(const struct hr_destination_cfg *dests, size_t n)
{
	struct dset *set = calloc(1, sizeof(*set));

	if (set == NULL)
		return NULL;
	atomic_store(&set->refs, 1);
	if ((set->v = calloc(n ? n : 1, sizeof(*set->v))) == NULL) {
		free(set);
		return NULL;
	}
	for (; set->n < n; set->n++) {
		if (hr_cfg_destination_copy(&set->v[set->n], &dests[set->n]) != HR_OK) {
			dset_release(set);
			return NULL;
		}
	}
	return set;
}

static void
transfer_free(struct transfer *t)
{
	if (t == NULL)
		return;
	if (t->easy != NULL) {
		curl_multi_remove_handle(t->fw->multi, t->easy);
		curl_easy_cleanup(t->easy);
	}
	curl_slist_free_all(t->headers);
	free(t->order_key);
	free(t->body);
	free(t);
}

/* ---- secrets ---- */

/*
 * The whsec_ keys of d's secret_file; more than MAX_SECRETS is refused, a
 * file without any leaves the destination unsigned.
 */
static int
load_secrets(struct dest *d, struct hr_error *err)
{
	const char *path = d->cfg->secret_file;
	struct hr_secretfile sf;
	struct hr_error ferr = { .field = "" };
	char field[sizeof(ferr.field)];
	int rc;

	if (path[0] == '\0')
		return HR_OK;
	if ((rc = hr_secretfile_read(path, MAX_SECRETS, &sf, &ferr)) != HR_OK)
		return hr_error_set(err, rc, ferr.field, "[destination %s] secret_file %s: %s",
		    d->cfg->name, path, ferr.msg);
	for (size_t i = 0; i < sf.n && rc == HR_OK; i++) {
		d->keylen[d->nkeys] = sizeof(d->keys[0]);
		if (hr_whsec_decode(sf.line[i], d->keys[d->nkeys], &d->keylen[d->nkeys]) == HR_OK) {
			d->nkeys++;
			continue;
		}
		hr_secretfile_where(path, sf.lineno[i], field, sizeof(field));
		rc = hr_error_set(err, HR_EINVAL, field,
		    "[destination %s] secret_file holds a secret that is not whsec_<base64>",
		    d->cfg->name);
	}
	hr_secretfile_clear(&sf);
	return rc;
}

int
hr_forwarder_check(const struct hr_destination_cfg *dests, size_t n, struct hr_error *err)
{
	int rc = HR_OK;

	for (size_t i = 0; i < n && rc == HR_OK; i++) {
		struct dest d = { .cfg = &dests[i] };

		rc = load_secrets(&d, err);
		OPENSSL_cleanse(d.keys, sizeof(d.keys));
	}
	return rc;
}

/* ---- building a request ---- */

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

static struct curl_slist *
add_header(struct curl_slist *list, const char *name, const char *value)
{
	char line[1024];

	snprintf(line, sizeof(line), "%s: %s", name, value);
	return curl_slist_append(list, line);
}

static int
build_headers(struct transfer *t)
{
	struct dest *d = t->d;
	char ts[24], sigs[MAX_SECRETS * 64] = "";
	int64_t now_s = hr_time_now_us() / 1000000;
	struct curl_slist *h = NULL;

	snprintf(ts, sizeof(ts), "%lld", (long long)now_s);
	for (size_t i = 0; i < d->nkeys; i++) {
		char one[64];
		size_t used = strlen(sigs);

		if (hr_sw_sign(d->keys[i], d->keylen[i], t->event_id, now_s, t->body, t->body_len,
		        one, sizeof(one)) != HR_OK)
			return HR_ENOMEM;
		snprintf(sigs + used, sizeof(sigs) - used, "%s%s", used ? " " : "", one);
	}
	h = add_header(h, "Content-Type", "application/json");
	h = add_header(h, "User-Agent", "hookrelay/" HR_VERSION_STRING);
	h = add_header(h, "webhook-id", t->event_id);
	h = add_header(h, "webhook-timestamp", ts);
	if (sigs[0] != '\0')
		h = add_header(h, "webhook-signature", sigs);
	h = curl_slist_append(h, "Expect:"); /* no 100-continue round trip */
	for (struct curl_slist *e = d->extra_headers; e != NULL && h != NULL; e = e->next)
		h = curl_slist_append(h, e->data);
	if (h == NULL)
		return HR_ENOMEM;
	t->headers = h;
	return HR_OK;
}

static int
setup_easy(struct transfer *t)
{
	const struct hr_destination_cfg *c = t->d->cfg;
	CURL *e = curl_easy_init();

	if (e == NULL || build_headers(t) != HR_OK) {
		curl_easy_cleanup(e);
		return HR_ENOMEM;
	}
	t->easy = e;
	curl_easy_setopt(e, CURLOPT_URL, c->url);
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

/* ---- taking due rows ---- */

static bool
owned(const struct dest *d, int64_t id, const char *order_key)
{
	for (const struct transfer *t = d->owned; t != NULL; t = t->next) {
		if (t->delivery_id == id)
			return true;
		if (order_key != NULL && t->order_key != NULL &&
		    strcmp(order_key, t->order_key) == 0)
			return true; /* ordered: its key is busy */
	}
	return false;
}

/*
 * ... or by a destination of the same name that a reload removed and the next
 * one brought back: its attempts still run, and their rows are still pending.
 * Only this thread changes the retired list and the transfers, so no lock.
 */
static bool
owned_by_retired(
    const struct hr_forwarder *fw, const struct dest *d, int64_t id, const char *order_key)
{
	for (const struct dest *r = fw->retired; r != NULL; r = r->next_retired)
		if (strcmp(r->cfg->name, d->cfg->name) == 0 && owned(r, id, order_key))
			return true;
	return false;
}

struct take {
	struct hr_forwarder *fw;
	struct dest *d;
	unsigned room;
	int64_t ids[1024];
	size_t nids;
};

static int
take_row(const struct hr_due_delivery *row, void *arg)
{
	struct take *tk = arg;
	const char *order_key = tk->d->cfg->ordered ? row->order_key : NULL;
	struct transfer *t;

	if (tk->room == 0 || owned(tk->d, row->id, order_key) ||
	    owned_by_retired(tk->fw, tk->d, row->id, order_key))
		return HR_OK;
	if ((t = calloc(1, sizeof(*t))) == NULL || (t->body = malloc(row->body_len + 1)) == NULL ||
	    (row->order_key != NULL && (t->order_key = strdup(row->order_key)) == NULL)) {
		transfer_free(t);
		return HR_OK; /* try again on the next poll */
	}
	t->fw = tk->fw;
	t->d = tk->d;
	t->delivery_id = row->id;
	t->number = row->attempts + 1;
	t->received_us = row->received_us;
	snprintf(t->event_id, sizeof(t->event_id), "%s", row->event_id);
	memcpy(t->body, row->body, row->body_len);
	t->body_len = row->body_len;
	if (setup_easy(t) != HR_OK) {
		transfer_free(t);
		return HR_OK;
	}
	t->started_us = hr_time_now_us();
	curl_multi_add_handle(tk->fw->multi, t->easy);
	pthread_mutex_lock(&tk->fw->mu);
	t->next = tk->d->owned;
	tk->d->owned = t;
	tk->d->nowned++;
	pthread_mutex_unlock(&tk->fw->mu);
	tk->room--;
	if (tk->nids < HR_ARRAY_LEN(tk->ids))
		tk->ids[tk->nids++] = row->id;
	return HR_OK;
}

/* A lease write and the ids it names, one allocation. */
struct lease_op {
	struct hr_store_op op;
	struct hr_lease lease;
	int64_t ids[];
};

static void
lease_done(struct hr_store_op *op, void *arg)
{
	(void)arg;
	free(op); /* the first member of struct lease_op */
}

/* Record the lease on taken rows; informational, so nothing waits for it. */
static void
record_lease(struct hr_forwarder *fw, const int64_t *ids, size_t n)
{
	struct lease_op *lo = malloc(sizeof(*lo) + n * sizeof(lo->ids[0]));

	if (lo == NULL)
		return;
	memset(lo, 0, sizeof(*lo));
	memcpy(lo->ids, ids, n * sizeof(*ids));
	lo->lease = (struct hr_lease){ lo->ids, n, hr_time_now_us() + LEASE_US };
	lo->op.done = lease_done;
	if (hr_store_lease(fw->store, &lo->lease, &lo->op) != HR_OK)
		free(lo);
}

/* How many attempts this destination may start now, breaker permitting. */
static unsigned
room_for(struct dest *d, int64_t now)
{
	unsigned max = d->cfg->max_in_flight;

	if (d->disabled)
		return 0;
	if (d->breaker == HR_BREAKER_OPEN) {
		if (now < d->probe_at_us)
			return 0;
		d->breaker = HR_BREAKER_HALF_OPEN; /* one probe */
		log_info("forward: destination %s: breaker half-open, probing", d->cfg->name);
	}
	if (d->breaker == HR_BREAKER_HALF_OPEN)
		max = 1;
	return d->nowned < max ? max - d->nowned : 0;
}

static void
poll_dest(struct hr_forwarder *fw, struct dest *d, int64_t now)
{
	struct hr_error err = { .field = "" };
	struct take tk = { fw, d, 0, { 0 }, 0 };

	pthread_mutex_lock(&fw->mu);
	tk.room = room_for(d, now);
	pthread_mutex_unlock(&fw->mu);
	if (tk.room > 0 &&
	    hr_store_due_deliveries(fw->store, d->cfg->name, now, d->cfg->ordered,
	        tk.room + d->nowned, take_row, &tk, &err) != HR_OK)
		log_warnx("forward: %s: %s", d->cfg->name, err.msg);
	if (tk.nids > 0)
		record_lease(fw, tk.ids, tk.nids);
	if (hr_store_next_due(fw->store, d->cfg->name, &d->next_due_us) != HR_OK)
		d->next_due_us = now + IDLE_POLL_US;
}

/* ---- outcomes ---- */

/* Retry-After as seconds or an HTTP date; 0 when absent or unreadable. */
static int64_t
retry_after_us(CURL *e, int64_t now)
{
	struct curl_header *h = NULL;
	char *end;
	long long secs;
	time_t when;

	if (curl_easy_header(e, "Retry-After", 0, CURLH_HEADER, -1, &h) != CURLHE_OK)
		return 0;
	secs = strtoll(h->value, &end, 10);
	if (end != h->value && *end == '\0' && secs >= 0) /* capped: no overflow */
		return secs < INT64_MAX / 1000000 ? secs * 1000000 : INT64_MAX / 1000000 * 1000000;
	when = curl_getdate(h->value, NULL);
	if (when > 0 && (int64_t)when * 1000000 > now)
		return (int64_t)when * 1000000 - now;
	return 0;
}

/* Jittered delay before attempt number `next` (2 = first retry). */
static int64_t
delay_us(const struct hr_destination_cfg *c, int next)
{
	int64_t base = c->retry_schedule.ms[next - 2] * 1000;
	int64_t spread = base * (int64_t)c->jitter_pct / 100;
	unsigned r;

	if (spread <= 0)
		return base;
	r = (unsigned)rand(); /* jitter only spreads load; it need not be unpredictable */
	return base - spread + (int64_t)(r % (unsigned)(2 * spread + 1));
}

enum outcome { OUT_SUCCESS, OUT_RETRY, OUT_FAIL, OUT_GONE };

static enum outcome
classify(const struct transfer *t, CURLcode rc, long status)
{
	if (t->blocked)
		return OUT_FAIL;
	if (rc != CURLE_OK)
		return OUT_RETRY; /* DNS, connect, timeout, reset, partial answer */
	if (status >= 200 && status < 300)
		return OUT_SUCCESS;
	if (status == 410)
		return OUT_GONE;
	if (status >= 500 || status == 408 || status == 429)
		return OUT_RETRY;
	if (status >= 400 && status < 500 && t->d->cfg->retry_4xx)
		return OUT_RETRY;
	return OUT_FAIL;
}

static void
breaker_update(struct dest *d, enum outcome out, int64_t now)
{
	const struct hr_destination_cfg *c = d->cfg;

	if (out != OUT_RETRY) { /* it answered: the destination is up */
		if (d->breaker != HR_BREAKER_CLOSED)
			log_info("forward: destination %s: breaker closed", c->name);
		d->breaker = HR_BREAKER_CLOSED;
		d->failures = 0;
		d->cooldown_us = c->breaker_cooldown_ms * 1000;
		return;
	}
	d->failures++;
	if (d->breaker == HR_BREAKER_HALF_OPEN) {
		d->cooldown_us = d->cooldown_us * 2 < BREAKER_MAX_COOLDOWN_US
		    ? d->cooldown_us * 2
		    : BREAKER_MAX_COOLDOWN_US;
	} else if (d->breaker == HR_BREAKER_OPEN || d->failures < c->breaker_failures) {
		return;
	}
	d->breaker = HR_BREAKER_OPEN;
	d->probe_at_us = now + d->cooldown_us;
	log_warnx("forward: destination %s: breaker open after %u consecutive failures; "
	          "next probe in %lld ms",
	    c->name, d->failures, (long long)(d->cooldown_us / 1000));
}

static void
attempt_done(struct hr_store_op *op, void *arg)
{
	struct transfer *t = arg;
	struct hr_forwarder *fw = t->fw;

	(void)op;
	/* Once `recorded` is seen, reap() may free t and a stop may free fw: wake
	 * before letting go of the lock, and do not touch t after. */
	pthread_mutex_lock(&fw->mu);
	t->recorded = true;
	hr_forwarder_wake(fw);
	pthread_mutex_unlock(&fw->mu);
}

static void
submit_record(struct hr_forwarder *fw, struct transfer *t)
{
	t->op.done = attempt_done;
	t->op.arg = t;
	if (hr_store_record_attempt(fw->store, &t->att, &t->op) == HR_OK) {
		t->submitted = true;
		return;
	}
	/* Queue full or stopping: keep it and offer it again on the next turn. */
	t->next_unsubmitted = fw->unsubmitted;
	fw->unsubmitted = t;
}

/* The write owns a copy of the name: a reload may free the config before the writer runs. */
struct disable_op {
	struct hr_store_op op;
	struct hr_destination_state state;
	char name[HR_NAME_MAX];
};

static void
disable_done(struct hr_store_op *op, void *arg)
{
	(void)arg;
	free(op); /* the first member of struct disable_op */
}

static void
set_disabled(struct hr_forwarder *fw, struct dest *d, bool disabled, const char *reason)
{
	struct disable_op *dop = calloc(1, sizeof(*dop));

	d->disabled = disabled;
	if (dop == NULL)
		return;
	snprintf(dop->name, sizeof(dop->name), "%s", d->cfg->name);
	dop->state = (struct hr_destination_state){ dop->name, disabled, reason };
	dop->op.done = disable_done;
	if (hr_store_set_destination(fw->store, &dop->state, &dop->op) != HR_OK)
		free(dop);
}

static void
fill_attempt(struct transfer *t, CURLcode rc, long status, enum outcome out, int64_t now)
{
	struct hr_attempt *a = &t->att;
	const struct hr_destination_cfg *c = t->d->cfg;

	a->delivery_id = t->delivery_id;
	a->resends = t->sends > 1 ? t->sends - 1 : 0;
	a->number = t->number + a->resends; /* each send counts as an attempt */
	t->number = a->number;
	a->started_us = t->started_us;
	a->duration_us = now - t->started_us;
	a->http_status = rc == CURLE_OK ? (int)status : 0;
	a->response = t->response_len > 0 ? t->response : NULL;
	a->response_len = t->response_len;
	if (t->blocked)
		a->error = t->why;
	else if (rc != CURLE_OK)
		a->error = t->errbuf[0] ? t->errbuf : curl_easy_strerror(rc);
	if (out == OUT_SUCCESS) {
		a->new_status = HR_DLV_SUCCEEDED;
	} else if (out == OUT_RETRY && (size_t)t->number <= c->retry_schedule.n) {
		int64_t step = delay_us(c, t->number + 1);
		int64_t asked = retry_after_us(t->easy, now);

		/* Retry-After is honoured within [next step, 2 x next step]. */
		if (asked > step)
			step = asked < 2 * step ? asked : 2 * step;
		a->new_status = HR_DLV_PENDING;
		a->next_attempt_us = now + step;
	} else {
		a->new_status = out == OUT_RETRY ? HR_DLV_DEAD : HR_DLV_FAILED;
	}
}

/* /metrics: the attempt's outcome and times (atomics: /metrics reads them meanwhile). */
static void
count_attempt(struct transfer *t, enum outcome out, int64_t now)
{
	struct hr_dest_metrics *m = &t->d->metrics;
	enum hr_attempt_outcome o = HR_OUTCOME_FAILED;

	if (t->blocked)
		o = HR_OUTCOME_BLOCKED;
	else if (out == OUT_GONE)
		o = HR_OUTCOME_GONE;
	else if (t->att.new_status == HR_DLV_SUCCEEDED)
		o = HR_OUTCOME_SUCCEEDED;
	else if (t->att.new_status == HR_DLV_PENDING)
		o = HR_OUTCOME_RETRIED;
	else if (t->att.new_status == HR_DLV_DEAD)
		o = HR_OUTCOME_DEAD;
	atomic_fetch_add_explicit(&m->outcomes[o], 1, memory_order_relaxed);
	hr_hist_observe(&m->attempt, &hr_hist_attempt_duration, now - t->started_us);
	if (o == HR_OUTCOME_SUCCEEDED)
		hr_hist_observe(&m->latency, &hr_hist_delivery_latency, now - t->received_us);
}

static void
finish(struct hr_forwarder *fw, CURL *e, CURLcode rc)
{
	struct transfer *t = NULL;
	int64_t now = hr_time_now_us();
	long status = 0;
	enum outcome out;

	curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&t);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	out = classify(t, rc, status);
	fill_attempt(t, rc, status, out, now);
	count_attempt(t, out, now);
	pthread_mutex_lock(&fw->mu);
	breaker_update(t->d, out, now);
	if (out == OUT_GONE && !t->d->disabled) {
		set_disabled(fw, t->d, true, "410 Gone");
		log_warnx("forward: destination %s answered 410 Gone: disabled until enabled again",
		    t->d->cfg->name);
	}
	pthread_mutex_unlock(&fw->mu);
	if (t->att.new_status == HR_DLV_DEAD)
		log_warnx("forward: delivery %lld of %s to %s is dead after %d attempts",
		    (long long)t->delivery_id, t->event_id, t->d->cfg->name, t->number);
	else
		log_debug("forward: delivery %lld of %s to %s attempt %d: %s",
		    (long long)t->delivery_id, t->event_id, t->d->cfg->name, t->number,
		    t->att.error ? t->att.error : "answered");
	curl_multi_remove_handle(fw->multi, e);
	curl_easy_cleanup(e);
	t->easy = NULL;
	submit_record(fw, t);
}

/* Free one destination's transfers whose record committed. Caller holds fw->mu. */
static void
reap_dest(struct hr_forwarder *fw, struct dest *d)
{
	struct transfer **pp = &d->owned;

	while (*pp != NULL) {
		struct transfer *t = *pp;

		if (!t->recorded) {
			pp = &t->next;
			continue;
		}
		*pp = t->next;
		d->nowned--;
		transfer_free(t);
		atomic_store(&fw->poll_needed, true);
	}
}

static void
dest_free(struct dest *d)
{
	while (d->owned != NULL) {
		struct transfer *t = d->owned;

		d->owned = t->next;
		transfer_free(t);
	}
	curl_slist_free_all(d->extra_headers);
	OPENSSL_cleanse(d->keys, sizeof(d->keys));
	dset_release(d->set);
	free(d);
}

/* Free transfers whose record committed (their rows may be taken again), and
 * retired destinations with nothing left in flight. */
static void
reap(struct hr_forwarder *fw)
{
	pthread_mutex_lock(&fw->mu);
	for (size_t i = 0; i < fw->ndests; i++)
		reap_dest(fw, fw->dests[i]);
	for (struct dest **rp = &fw->retired; *rp != NULL;) {
		struct dest *d = *rp;

		reap_dest(fw, d);
		if (d->nowned > 0) {
			rp = &d->next_retired;
			continue;
		}
		*rp = d->next_retired;
		dest_free(d);
	}
	pthread_mutex_unlock(&fw->mu);
}

static void
resubmit(struct hr_forwarder *fw)
{
	struct transfer *t = fw->unsubmitted;

	fw->unsubmitted = NULL;
	while (t != NULL) {
		struct transfer *next = t->next_unsubmitted;

		submit_record(fw, t);
		t = next;
	}
}

/* ---- the loop ---- */

static void
drain_messages(struct hr_forwarder *fw)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(fw->multi, &left)) != NULL)
		if (m->msg == CURLMSG_DONE)
			finish(fw, m->easy_handle, m->data.result);
}

static int64_t
poll_all(struct hr_forwarder *fw, int64_t now)
{
	int64_t next = now + IDLE_POLL_US;

	for (size_t i = 0; i < fw->ndests; i++) {
		struct dest *d = fw->dests[i];

		poll_dest(fw, d, now);
		/* A row already due was either taken (it stays pending while in
		 * flight) or could not be: no room, key busy, disabled, breaker
		 * open. Each of those ends with a wake-up (reap, enable, probe_at),
		 * so only a future due time sets the timer; else the loop spins. */
		if (d->next_due_us > now && d->next_due_us < next)
			next = d->next_due_us;
		if (d->breaker == HR_BREAKER_OPEN && d->probe_at_us < next)
			next = d->probe_at_us;
	}
	return next;
}

static bool
dest_owns(const struct dest *d, bool with_writer_only)
{
	for (const struct transfer *t = d->owned; t != NULL; t = t->next)
		if (!with_writer_only || (t->submitted && !t->recorded))
			return true;
	return false;
}

/* Owned transfers; with `with_writer_only`, only those whose record the writer holds. */
static bool
anything_owned(struct hr_forwarder *fw, bool with_writer_only)
{
	bool any = !with_writer_only && fw->unsubmitted != NULL;

	pthread_mutex_lock(&fw->mu);
	for (size_t i = 0; i < fw->ndests && !any; i++)
		any = dest_owns(fw->dests[i], with_writer_only);
	for (struct dest *d = fw->retired; d != NULL && !any; d = d->next_retired)
		any = dest_owns(d, with_writer_only);
	pthread_mutex_unlock(&fw->mu);
	return any;
}

static void *
forward_main(void *arg)
{
	struct hr_forwarder *fw = arg;
	int64_t next_poll = 0, stop_deadline = 0;
	int running = 0;

	for (;;) {
		int64_t now = hr_time_now_us();
		long wait_ms;

		atomic_store(&fw->last_loop_us, now);
		apply_reload(fw);
		if (atomic_load(&fw->stopping)) {
			/* No new attempts; let the running ones finish and be recorded. */
			if (stop_deadline == 0)
				stop_deadline = now + STOP_GRACE_US;
			/* Past the grace period unanswered attempts are dropped (their rows
			 * stay pending), but a record the writer holds is waited for. */
			if (!anything_owned(fw, false) ||
			    (now > stop_deadline && !anything_owned(fw, true)))
				break;
		} else if (atomic_exchange(&fw->poll_needed, false) || now >= next_poll) {
			next_poll = poll_all(fw, now);
		}
		curl_multi_perform(fw->multi, &running);
		drain_messages(fw);
		resubmit(fw);
		reap(fw);
		now = hr_time_now_us();
		wait_ms = next_poll > now ? (long)((next_poll - now + 999) / 1000) : 0;
		if (atomic_load(&fw->poll_needed))
			wait_ms = 0; /* slots were freed (reap) or rows committed: take more now */
		else if (atomic_load(&fw->stopping))
			wait_ms = wait_ms < 10 ? wait_ms : 10;
		curl_multi_poll(fw->multi, NULL, 0, (int)(wait_ms > 1000 ? 1000 : wait_ms), NULL);
	}
	return NULL;
}

/* ---- destinations and reloads ---- */

/* A destination for `c`, which is in `set` (a reference is taken). */
static int
dest_new(struct hr_forwarder *fw, struct dset *set, const struct hr_destination_cfg *c,
    struct dest **out, struct hr_error *err)
{
	struct hr_destination_row row;
	struct dest *d = calloc(1, sizeof(*d));
	char reason[64];
	int rc;

	*out = NULL;
	if (d == NULL)
		return HR_ENOMEM;
	d->cfg = c;
	d->set = dset_ref(set);
	d->cooldown_us = c->breaker_cooldown_ms * 1000;
	for (size_t h = 0; h < c->headers.n; h++)
		d->extra_headers = curl_slist_append(d->extra_headers, c->headers.v[h]);
	if ((rc = load_secrets(d, err)) != HR_OK ||
	    (rc = hr_store_destination(fw->store, c->name, &row, reason, sizeof(reason), err)) !=
	        HR_OK) {
		dest_free(d);
		return rc;
	}
	d->disabled = row.disabled;
	if (d->disabled)
		log_warnx("forward: destination %s is disabled (%s); enable it with POST "
		          "/v1/destinations/%s/enable",
		    c->name, reason, c->name);
	*out = d;
	return HR_OK;
}

/* A kept destination takes its new settings, `c` in `set`; its breaker and in-flight
 * attempts stay. */
static void
dest_update(
    struct hr_forwarder *fw, struct dest *d, struct dset *set, const struct hr_destination_cfg *c)
{
	struct dest fresh = { .cfg = c };
	struct hr_error err = { .field = "" };
	struct dset *old;

	if (load_secrets(&fresh, &err) != HR_OK) {
		log_warnx("forward: %s: %s; keeping the previous secrets", c->name, err.msg);
	} else {
		OPENSSL_cleanse(d->keys, sizeof(d->keys));
		memcpy(d->keys, fresh.keys, sizeof(d->keys));
		memcpy(d->keylen, fresh.keylen, sizeof(d->keylen));
		d->nkeys = fresh.nkeys;
		OPENSSL_cleanse(fresh.keys, sizeof(fresh.keys));
	}
	curl_slist_free_all(d->extra_headers);
	d->extra_headers = NULL;
	for (size_t h = 0; h < c->headers.n; h++)
		d->extra_headers = curl_slist_append(d->extra_headers, c->headers.v[h]);
	/* API threads read d->cfg under the lock (find_dest): after it, none reads `old`. */
	pthread_mutex_lock(&fw->mu);
	old = d->set;
	d->cfg = c;
	d->set = dset_ref(set);
	pthread_mutex_unlock(&fw->mu);
	dset_release(old);
}

static struct dest *
take_dest(struct dest **list, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++) {
		if (list[i] != NULL && strcmp(list[i]->cfg->name, name) == 0) {
			struct dest *d = list[i];

			list[i] = NULL;
			return d;
		}
	}
	return NULL;
}

/* Build the destination list of `set`, reusing what `old` has by name. */
static struct dest **
build_dests(struct hr_forwarder *fw, struct dset *set, struct dest **old, size_t nold)
{
	struct dest **dests = calloc(set->n ? set->n : 1, sizeof(*dests));
	struct hr_error err = { .field = "" };

	for (size_t i = 0; dests != NULL && i < set->n; i++) {
		const struct hr_destination_cfg *c = &set->v[i];

		if ((dests[i] = take_dest(old, nold, c->name)) != NULL) {
			dest_update(fw, dests[i], set, c);
		} else if (dest_new(fw, set, c, &dests[i], &err) != HR_OK) {
			log_warnx("forward: destination %s not started: %s", c->name, err.msg);
			dests[i] = NULL;
		}
	}
	return dests;
}

static void
compact(struct dest **dests, size_t *n)
{
	size_t k = 0;

	for (size_t i = 0; i < *n; i++)
		if (dests[i] != NULL)
			dests[k++] = dests[i];
	*n = k;
}

/* Apply a configuration a SIGHUP swapped in: add, change and remove destinations. */
static void
apply_reload(struct hr_forwarder *fw)
{
	struct dset *set, *was;
	struct dest **dests, **old, **left;
	size_t n, nold;

	pthread_mutex_lock(&fw->mu);
	set = fw->pending;
	fw->pending = NULL;
	pthread_mutex_unlock(&fw->mu);
	if (set == NULL)
		return;
	/* build_dests() takes the kept destinations out of the list it is given;
	 * API threads walk fw->dests meanwhile (find_dest), so it gets a copy.
	 * Only this thread changes fw->dests: reading it here needs no lock. */
	nold = fw->ndests;
	if ((left = malloc((nold ? nold : 1) * sizeof(*left))) == NULL) {
		dset_release(set);
		return;
	}
	memcpy(left, fw->dests, nold * sizeof(*left));
	if ((dests = build_dests(fw, set, left, nold)) == NULL) {
		free(left);
		dset_release(set); /* out of memory: keep the old set */
		return;
	}
	n = set->n;
	compact(dests, &n);
	pthread_mutex_lock(&fw->mu);
	old = fw->dests;
	fw->dests = dests;
	fw->ndests = n;
	for (size_t i = 0; i < nold; i++) {
		if (left[i] == NULL)
			continue;
		log_info("forward: destination %s removed", left[i]->cfg->name);
		left[i]->next_retired = fw->retired;
		fw->retired = left[i];
	}
	was = fw->set; /* retired destinations hold their own references */
	fw->set = set;
	pthread_mutex_unlock(&fw->mu);
	dset_release(was);
	free(old);
	free(left);
	atomic_store(&fw->poll_needed, true);
	log_info("forward: %zu destination(s) after reload", n);
}

/* ---- public ---- */

void
hr_forwarder_wake(void *arg)
{
	struct hr_forwarder *fw = arg;

	atomic_store(&fw->poll_needed, true);
	curl_multi_wakeup(fw->multi);
}

static void
free_all_dests(struct hr_forwarder *fw)
{
	for (size_t i = 0; i < fw->ndests; i++)
		dest_free(fw->dests[i]);
	free(fw->dests);
	while (fw->retired != NULL) {
		struct dest *d = fw->retired;

		fw->retired = d->next_retired;
		dest_free(d);
	}
	dset_release(fw->pending);
	dset_release(fw->set);
}

int
hr_forwarder_start(const struct hr_destination_cfg *dests, size_t n, struct hr_store *store,
    struct hr_forwarder **out, struct hr_error *err)
{
	struct hr_forwarder *fw;
	int rc = HR_ENOMEM;

	*out = NULL;
	if ((fw = calloc(1, sizeof(*fw))) == NULL)
		return HR_ENOMEM;
	fw->store = store;
	pthread_mutex_init(&fw->mu, NULL);
	if ((fw->set = dset_new(dests, n)) == NULL || (fw->multi = curl_multi_init()) == NULL)
		goto fail;
	fw->dests = calloc(fw->set->n ? fw->set->n : 1, sizeof(*fw->dests));
	if (fw->dests == NULL)
		goto fail;
	for (; fw->ndests < fw->set->n; fw->ndests++)
		if ((rc = dest_new(fw, fw->set, &fw->set->v[fw->ndests], &fw->dests[fw->ndests],
		         err)) != HR_OK)
			goto fail;
	atomic_store(&fw->poll_needed, true);
	if (pthread_create(&fw->thread, NULL, forward_main, fw) != 0) {
		rc = hr_error_set(err, HR_ENOMEM, "forwarder", "cannot start the forwarder thread");
		goto fail;
	}
	hr_store_set_commit_hook(store, hr_forwarder_wake, fw);
	*out = fw;
	return HR_OK;
fail:
	free_all_dests(fw);
	curl_multi_cleanup(fw->multi);
	pthread_mutex_destroy(&fw->mu);
	free(fw);
	return rc;
}

void
hr_forwarder_reload(struct hr_forwarder *fw, const struct hr_destination_cfg *dests, size_t n)
{
	struct dset *set = dset_new(dests, n), *superseded;

	if (set == NULL) {
		log_warnx("forward: out of memory: the destinations stay as they were");
		return;
	}
	pthread_mutex_lock(&fw->mu);
	superseded = fw->pending; /* a reload not yet applied */
	fw->pending = set;
	pthread_mutex_unlock(&fw->mu);
	dset_release(superseded);
	hr_forwarder_wake(fw);
}

void
hr_forwarder_stop(struct hr_forwarder *fw)
{
	if (fw == NULL)
		return;
	hr_store_set_commit_hook(fw->store, NULL, NULL);
	atomic_store(&fw->stopping, true);
	curl_multi_wakeup(fw->multi);
	pthread_join(fw->thread, NULL);
	/* Records still queued reach the writer before it stops; what was not
	 * answered stays pending and goes again after the restart. */
	free_all_dests(fw);
	curl_multi_cleanup(fw->multi);
	pthread_mutex_destroy(&fw->mu);
	free(fw);
}

/* Caller holds fw->mu. */
static struct dest *
find_dest(struct hr_forwarder *fw, const char *name)
{
	for (size_t i = 0; i < fw->ndests; i++)
		if (strcmp(fw->dests[i]->cfg->name, name) == 0)
			return fw->dests[i];
	return NULL;
}

void
hr_forwarder_status(struct hr_forwarder *fw, const char *name, struct hr_dest_status *out)
{
	struct dest *d;

	memset(out, 0, sizeof(*out));
	if (fw == NULL)
		return;
	pthread_mutex_lock(&fw->mu);
	if ((d = find_dest(fw, name)) != NULL) {
		out->known = true;
		out->disabled = d->disabled;
		out->breaker = d->breaker;
		out->in_flight = d->nowned;
		out->consecutive_failures = d->failures;
		out->probe_at_us = d->breaker == HR_BREAKER_OPEN ? d->probe_at_us : 0;
	}
	pthread_mutex_unlock(&fw->mu);
}

int
hr_forwarder_enable(struct hr_forwarder *fw, const char *name)
{
	struct dest *d;

	pthread_mutex_lock(&fw->mu);
	if ((d = find_dest(fw, name)) != NULL) {
		if (d->disabled)
			set_disabled(fw, d, false, NULL);
		d->breaker = HR_BREAKER_CLOSED;
		d->failures = 0;
	}
	pthread_mutex_unlock(&fw->mu);
	if (d == NULL)
		return HR_ENOTFOUND;
	hr_forwarder_wake(fw);
	return HR_OK;
}

int64_t
hr_forwarder_last_loop_us(struct hr_forwarder *fw)
{
	return atomic_load(&fw->last_loop_us);
}

size_t
hr_forwarder_metrics(struct hr_forwarder *fw, struct hr_dest_metrics_snap *out, size_t max)
{
	size_t n = 0;

	if (fw == NULL)
		return 0;
	pthread_mutex_lock(&fw->mu);
	for (size_t i = 0; i < fw->ndests && n < max; i++, n++) {
		const struct dest *d = fw->dests[i];
		struct hr_dest_metrics_snap *o = &out[n];

		snprintf(o->name, sizeof(o->name), "%s", d->cfg->name);
		o->disabled = d->disabled;
		o->breaker = d->breaker;
		for (size_t k = 0; k < HR_OUTCOME_COUNT; k++)
			o->outcomes[k] =
			    atomic_load_explicit(&d->metrics.outcomes[k], memory_order_relaxed);
		hr_hist_snap(&d->metrics.latency, &o->latency);
		hr_hist_snap(&d->metrics.attempt, &o->attempt);
	}
	pthread_mutex_unlock(&fw->mu);
	return n;
}
