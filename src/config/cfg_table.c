/*
 * cfg_table.c - the option table, and the struct hr_cfg it fills.
 *
 * One option table (`cfg_options[]`) drives parsing, defaults, range checks,
 * `--help`, hr_cfg_print() and docs/configuration.md, so none of them can
 * drift from the others. Each option names its section and an offsetof into
 * the struct that section fills: struct hr_cfg for plain sections like
 * [server], one array element for named sections like [source NAME].
 *
 * A new option is one line of `cfg_options[]` (and CFG_NOPTIONS one more):
 * a type from `cfg_types[]` (cfg_values.c; a list type owns memory, which
 * its clear function releases), optionally a `check` run on the text of
 * each value or list item, and flags: O_REPEAT (the key may appear several
 * times, each line one more item) and O_REQUIRED (a named section without
 * it is an error). A new named section is one line of `cfg_sections[]`; its
 * `finish` hook (cfg_reader.c) runs once the whole file is read, for checks
 * that span keys or sections.
 *
 * This file also owns the struct's life: defaults, the named section arrays,
 * deep copies and freeing, all through the table.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cfg_int.h"
#include "hr/log.h"

const struct section cfg_sections[] = {
	[SEC_SERVER] = { "server", "The HTTP listener and the limits every request is held to.", 0,
	    0, 0, 0, NULL, 0 },
	[SEC_STORAGE] = { "storage",
	    "The event log: SQLite for one node, PostgreSQL for one or several sharing a database. "
	    "A webhook is acknowledged only once its event is committed.",
	    0, 0, 0, 0, NULL, 0 },
	[SEC_API] = { "api", "The read API under /v1/.", 0, 0, 0, 0, NULL, 0 },
	[SEC_LOG] = { "log", "Messages on stderr, with journald priority prefixes.", 0, 0, 0, 0,
	    NULL, 0 },
	[SEC_SOURCE] = { "source",
	    "One inbound endpoint, `POST /hooks/NAME`; repeat the section for more. NAME is "
	    "1 to 63 characters of `A-Z a-z 0-9 _ . -` (not `.` or `..`). Without any [source] "
	    "section every "
	    "/hooks path answers 404. A request that fails `allow_cidrs` or `auth` is refused "
	    "without saying which check failed.",
	    sizeof(struct hr_source_cfg), offsetof(struct hr_cfg, sources),
	    offsetof(struct hr_cfg, nsources), offsetof(struct hr_source_cfg, name),
	    cfg_finish_source, NAMED_MAX },
	[SEC_DESTINATION] = { "destination",
	    "A downstream URL that receives matching events as POSTs, retried on failure; "
	    "repeat the section for more, up to 64. NAME is as for [source]. Without any "
	    "[destination] "
	    "section events are stored and served by the API, not forwarded.",
	    sizeof(struct hr_destination_cfg), offsetof(struct hr_cfg, destinations),
	    offsetof(struct hr_cfg, ndestinations), offsetof(struct hr_destination_cfg, name),
	    cfg_finish_destination, HR_MAX_DESTINATIONS }, /* the forwarder's and the outbox's */
};

static const struct choice backends[] = {
	{ "sqlite", HR_CFG_BACKEND_SQLITE },
	{ "postgresql", HR_CFG_BACKEND_POSTGRESQL },
	{ NULL, 0 },
};

static const struct choice log_levels[] = {
	{ "error", HR_LOG_ERR },
	{ "warning", HR_LOG_WARNING },
	{ "info", HR_LOG_INFO },
	{ "debug", HR_LOG_DEBUG },
	{ NULL, 0 },
};

/* Same names as hr_provider_name(); kept here so the config layer does not need the event code. */
static const struct choice providers[] = {
	{ "auto", HR_PROVIDER_AUTO },
	{ "tavus", HR_PROVIDER_TAVUS },
	{ "pailflow", HR_PROVIDER_PAILFLOW },
	{ "agenthuman", HR_PROVIDER_AGENTHUMAN },
	{ "daily", HR_PROVIDER_DAILY },
	{ NULL, 0 },
};

static const struct choice auth_modes[] = {
	{ "none", HR_AUTH_NONE },
	{ "token", HR_AUTH_TOKEN },
	{ "standard-webhooks", HR_AUTH_STANDARD_WEBHOOKS },
	{ "hmac", HR_AUTH_HMAC },
	{ "basic", HR_AUTH_BASIC },
	{ "daily", HR_AUTH_DAILY },
	{ NULL, 0 },
};

static const struct choice hmac_algorithms[] = {
	{ "sha256", HR_HMAC_SHA256 },
	{ "sha512", HR_HMAC_SHA512 },
	{ NULL, 0 },
};

static const struct choice hmac_encodings[] = {
	{ "hex", HR_ENC_HEX },
	{ "base64", HR_ENC_BASE64 },
	{ NULL, 0 },
};

static const struct choice hmac_signed_modes[] = {
	{ "body", HR_SIGNED_BODY },
	{ "timestamp.body", HR_SIGNED_TIMESTAMP_BODY },
	{ NULL, 0 },
};

#define CFG(m) offsetof(struct hr_cfg, m), sizeof(((struct hr_cfg *)NULL)->m)
#define SRC(m) offsetof(struct hr_source_cfg, m), sizeof(((struct hr_source_cfg *)NULL)->m)
#define DST(m)                                                                                     \
	offsetof(struct hr_destination_cfg, m), sizeof(((struct hr_destination_cfg *)NULL)->m)

/* clang-format off */
/* Unsized, so that a line more or less conflicts with cfg_int.h until CFG_NOPTIONS follows. */
const struct option cfg_options[] = {
	{ SEC_SERVER, "listen", T_ADDR, CFG(listen), 0, 0, "127.0.0.1:8080", NULL, NULL, 0,
	  "Numeric address and port to listen on: 127.0.0.1:8080, [::1]:8080, :8080 (every IPv4 address); port 0 picks a free port" },
	{ SEC_SERVER, "max_body", T_SIZE, CFG(max_body), KiB, 512 * MiB, "8MiB", NULL, NULL, 0,
	  "Largest request body accepted; larger ones are answered 413 (at most 512MiB: SQLite and PostgreSQL keep a value of at most 1 GB, and a body past that could never be stored)" },
	{ SEC_SERVER, "request_timeout", T_DURATION, CFG(request_timeout_ms), 1000, 3600 * 1000, "30s", NULL, NULL, 0,
	  "A request must arrive whole (headers and body) within this, counted from when the connection opened or the previous answer on it was sent (so an idle keep-alive connection's wait counts too), and an idle connection is closed after it: slow clients (slow-loris) are cut off" },
	{ SEC_SERVER, "header_timeout", T_DURATION, CFG(header_timeout_ms), 1000, 3600 * 1000, "10s", NULL, NULL, 0,
	  "The request line and headers must arrive within this (a longer value counts as request_timeout); an idle keep-alive connection is closed after it too. Both timeouts are checked once a second: a connection is closed up to a second after its time. At max_connections, the connection that has waited longest without sending a whole request is closed to admit a new one" },
	{ SEC_SERVER, "stop_timeout", T_DURATION, CFG(stop_timeout_ms), 1000, 3600 * 1000, "10s", NULL, NULL, 0,
	  "At SIGTERM, how long the requests in flight are waited for (their writes committed, bodies still arriving received) before the writes still queued are answered 503 (retry later) and bodies still arriving are cut off; the batch being committed is always waited for, with a line in the log each stop_timeout. Keep it well under the service's TimeoutStopSec (60s in the shipped unit). Read at the stop: a reload changes it" },
	{ SEC_SERVER, "threads", T_INT, CFG(threads), 1, 64, "2", NULL, NULL, 0,
	  "HTTP worker threads (webhooks are parsed and checked on these), and as many threads for the API's handlers that read the store, so that a slow read never holds a webhook up. Two parse large bodies in parallel; with small bodies on a machine of two cores one is faster (docs/benchmarks.md, fourteenth round)" },
	{ SEC_SERVER, "max_connections", T_INT, CFG(max_connections), 1, 100000, "1024", NULL, NULL, 0,
	  "Open connections at once. At the cap, a connection waiting past max_connections_per_ip is answered 503 and closed to admit a new one, else the connection that has waited longest without sending a whole request is closed; when every one has a request in, new ones wait in the listen backlog" },
	{ SEC_SERVER, "max_connections_per_ip", T_INT, CFG(max_connections_per_ip), 0, 100000, "64", NULL, NULL, 0,
	  "Open connections from one client address at once. More are not refused: each waits, unread, until one of its address's closes (an idle keep-alive one after header_timeout), and after request_timeout + header_timeout + 1.25 s (by then a request under way on one of them has ended or been cut off, and the idle connection been closed) is answered 503; 0: no per-address limit" },
	{ SEC_SERVER, "max_header_size", T_SIZE, CFG(max_header_size), KiB, MiB, "16KiB", NULL, NULL, 0,
	  "Largest request line plus headers accepted; larger requests are answered 431" },
	{ SEC_SERVER, "max_unverified_bodies", T_SIZE, CFG(max_unverified_bodies), MiB, 64 * GiB, "64MiB", NULL, NULL, 0,
	  "Bytes of request bodies held at once, all connections together, while their signature (standard-webhooks, hmac) is not checked yet; past it such a request is answered 503 with Retry-After. At least max_body is always allowed; once half of it is held, one client address holds at most a quarter of it (or max_body) while max_connections_per_ip is not 0" },
	{ SEC_SERVER, "max_depth", T_INT, CFG(max_depth), 1, 1000, "64", NULL, NULL, 0,
	  "Deepest JSON nesting accepted in a body" },
	{ SEC_SERVER, "max_object_keys", T_INT, CFG(max_object_keys), 1, 1000000, "10000", NULL, NULL, 0,
	  "Most keys accepted in one JSON object" },
	{ SEC_SERVER, "max_string", T_SIZE, CFG(max_string), KiB, GiB, "8MiB", NULL, NULL, 0,
	  "Longest JSON string accepted in a body; longer ones are answered 413. Keep it at least the longest field a sender may send: a PailFlow transcript_text can be several MB, and the default, max_body's, takes any string of a body that fits" },
	{ SEC_SERVER, "max_values", T_INT, CFG(max_values), 100, 10000000, "100000", NULL, NULL, 0,
	  "Most JSON values accepted in one body (objects, arrays, strings, numbers, true, false, null; object keys are not values), counted before the body is parsed: each value costs up to about 250 bytes of memory while it is checked" },

	{ SEC_STORAGE, "backend", T_ENUM, CFG(db_backend), 0, 0, "sqlite", backends, NULL, 0,
	  "The database: sqlite (one node, the file `path`) or postgresql (one or several nodes sharing the database `url`; docs/scaling.md)" },
	{ SEC_STORAGE, "path", T_PATH, CFG(db_path), 1, PATH_MAX - 1, "var/hookrelay.db", NULL, NULL, 0,
	  "SQLite database file, created if missing; a relative path is relative to the working directory" },
	{ SEC_STORAGE, "url", T_STR, CFG(db_url), 0, 1023, "", NULL, NULL, 0,
	  "backend = postgresql: a libpq connection string (host=db1 dbname=hookrelay user=hookrelay) or URI (postgresql://hookrelay@db1/hookrelay); keep a password out of it, in a passfile= or PGPASSFILE. The schema is created and migrated by whichever node starts first" },
	{ SEC_STORAGE, "pool", T_INT, CFG(db_pool), 0, 256, "0", NULL, NULL, 0,
	  "backend = postgresql: the most connections for reads (the API, the forwarder's claims) besides the writer's and the LISTEN one; one is made at start, the others when reads find every one in use; 0: [server] threads + 2" },
	{ SEC_STORAGE, "lease", T_DURATION, CFG(lease_ms), 1000, DAY_MS, "10m", NULL, NULL, 0,
	  "backend = postgresql: how long a node's claim on a delivery lasts; a node that dies holding one, its deliveries are attempted by the others once it runs out; at least twice any destination's timeout" },
	{ SEC_STORAGE, "statement_timeout", T_DURATION, CFG(statement_timeout_ms), 0, 3600 * 1000, "10s", NULL, NULL, 0,
	  "backend = postgresql: the longest the daemon waits for the server's answer to one statement once it is sent (a lock held elsewhere, a synchronous standby that does not answer, a server that stopped answering); past it the statement is cancelled and its batch answered 503 (its read too); if the server does not answer the cancel within as long again (1 s to 5 s) the connection is closed and replaced. A migration of the schema at start has no limit; 0: no limit" },
	{ SEC_STORAGE, "batch_max", T_INT, CFG(batch_max), 1, 10000, "256", NULL, NULL, 0,
	  "Most events written in one group-commit transaction" },
	{ SEC_STORAGE, "queue_max", T_INT, CFG(queue_max), 1, 1000000, "8192", NULL, NULL, 0,
	  "Events waiting for the writer; past it ingest answers 503" },
	{ SEC_STORAGE, "rejections_max", T_INT, CFG(rejections_max), 0, 1000000, "10000", NULL, NULL, 0,
	  "Newest rejected bodies kept for inspection; a body just refused is always kept until the next refusal is stored (its 400/413/422 says it is kept), so 0 keeps only the latest; a body refused but answered 200 (provider = daily) was acknowledged to its sender, who will not send it again: this cap neither counts nor deletes it (retain and max_size still apply)" },
	{ SEC_STORAGE, "cache_size", T_SIZE, CFG(cache_size), MiB, 4 * GiB, "16MiB", NULL, NULL, 0,
	  "SQLite: the page cache of the writer's connection (the pages a transaction changes and the index pages it keeps finding; reads of the file go through a memory map and do not use it); most of hookrelay's memory under load; raise it if commits slow down on a database of many millions of events" },
	{ SEC_STORAGE, "max_size", T_SIZE, CFG(max_size), 0, 65536 * GiB, "0", NULL, NULL, 0,
	  "Cap on the database pages in use (free pages and the WAL file not counted); over it each pruning pass removes the oldest rejected bodies, the dedup keys of events no longer stored, then the oldest event payloads, then the oldest event rows (the oldest rows before newer payloads once pruning small payloads frees no page), until under; an event with a pending delivery is never pruned, and once such events alone keep the database over the cap, nothing received or stored after the pass that found it so is pruned by size while deliveries are pending: this hold moves on to the event of the oldest delivery still pending, ends only when none is, and outlasts restarts and changes of the cap; a cap under what the database takes with no event stored (about 184 KiB) cannot be met; 0: no cap" },
	{ SEC_STORAGE, "prune_interval", T_DURATION, CFG(prune_interval_ms), 100, DAY_MS, "1m", NULL, NULL, 0,
	  "How often a pruning pass (retain, max_size) runs; it goes through the writer, removes at most 5000 rows, then returns free pages to the file system (PRAGMA incremental_vacuum); passes follow each other quickly while work is left" },
	{ SEC_STORAGE, "min_free_space", T_SIZE, CFG(min_free_space), 0, 65536 * GiB, "256MiB", NULL, NULL, 0,
	  "GET /readyz answers 503 while the file system of the database has less free space than this; 0: no check" },

	{ SEC_API, "token_file", T_PATH, CFG(token_file), 0, PATH_MAX - 1, "", NULL, NULL, O_SECRET,
	  "File holding the bearer token the API requires; empty: no token, the API answers loopback clients only" },
	{ SEC_API, "read_token_file", T_PATH, CFG(read_token_file), 0, PATH_MAX - 1, "", NULL, NULL, O_SECRET,
	  "File holding a second bearer token, one that may only read: GET and HEAD of /v1 (events, sessions, deliveries, rejections, the stream), /metrics, /readyz's details and the inspector; a write with it is answered 403. For a metrics scraper or a dashboard, which then holds no token that can replay, accept or discard. Needs token_file, and a token of its own" },
	{ SEC_API, "allowed_hosts", T_STRLIST, CFG(api_hosts), 0, 64, "", NULL, cfg_check_host_name, 0,
	  "Host header values the API answers to besides the listen address (and, on loopback, localhost, 127.0.0.1 and ::1): name (any port) or name:port, comma-separated; for a reverse proxy that passes the client's Host. Other names are answered 421, so a web page cannot reach the API by rebinding its own name to this address" },

	{ SEC_LOG, "level", T_ENUM, CFG(log_level), 0, 0, "info", log_levels, NULL, 0,
	  "Least severe messages logged" },

	{ SEC_SOURCE, "provider", T_ENUM, SRC(provider), 0, 0, "auto", providers, NULL, 0,
	  "Which provider sends here (auto, tavus, pailflow, agenthuman, daily); auto classifies every body, a provider restricts classification to its events. daily also answers Daily's verification probe {\"test\":\"test\"} 200 without storing it, and makes auth default to daily" },
	{ SEC_SOURCE, "auth", T_ENUM, SRC(auth), 0, 0, "none", auth_modes, NULL, 0,
	  "How a request proves its sender: none; token (?token=SECRET or /hooks/NAME/SECRET); standard-webhooks (webhook-id/-timestamp/-signature, or svix-*); hmac (the hmac_* keys); basic (HTTP Basic); daily (Daily.co: X-Webhook-Signature, the base64 HMAC-SHA256 of <X-Webhook-Timestamp>.<body> keyed with the base64-decoded secret, the timestamp in milliseconds, or seconds if it has at most 11 digits). Default: none, or daily with provider = daily" },
	{ SEC_SOURCE, "secret_file", T_PATH, SRC(secret_file), 0, PATH_MAX - 1, "", NULL, NULL, O_SECRET,
	  "Secrets for auth, one per line (# comments; several lines: rotation, each accepted); standard-webhooks wants whsec_<base64>, basic user:password, daily the webhook's hmac as Daily shows it (base64); empty: $CREDENTIALS_DIRECTORY/NAME (systemd LoadCredential=)" },
	{ SEC_SOURCE, "hmac_header", T_STR, SRC(hmac_header), 1, 63, "X-Signature", NULL, cfg_check_token, 0,
	  "auth = hmac: the header carrying the signature" },
	{ SEC_SOURCE, "hmac_algorithm", T_ENUM, SRC(hmac_algorithm), 0, 0, "sha256", hmac_algorithms, NULL, 0,
	  "auth = hmac: the HMAC's hash" },
	{ SEC_SOURCE, "hmac_encoding", T_ENUM, SRC(hmac_encoding), 0, 0, "hex", hmac_encodings, NULL, 0,
	  "auth = hmac: how the signature is written: hex (either case) or padded base64" },
	{ SEC_SOURCE, "hmac_prefix", T_STR, SRC(hmac_prefix), 0, 31, "", NULL, NULL, 0,
	  "auth = hmac: text before the signature in the header, e.g. sha256= (GitHub)" },
	{ SEC_SOURCE, "hmac_signed", T_ENUM, SRC(hmac_signed), 0, 0, "body", hmac_signed_modes, NULL, 0,
	  "auth = hmac: what is signed: the raw body, or <timestamp>.<body> with the timestamp from hmac_timestamp_header" },
	{ SEC_SOURCE, "hmac_timestamp_header", T_STR, SRC(hmac_timestamp_header), 0, 63, "", NULL, cfg_check_token, 0,
	  "auth = hmac: the header carrying the Unix time (seconds) that is signed; required with hmac_signed = timestamp.body" },
	{ SEC_SOURCE, "tolerance", T_DURATION, SRC(tolerance_ms), SEC_MS, DAY_MS, "5m", NULL, NULL, 0,
	  "Signed timestamps (standard-webhooks, hmac timestamp.body, daily) further than this from the clock are refused" },
	{ SEC_SOURCE, "allow_cidrs", T_STRLIST, SRC(allow_cidrs), 0, 256, "", NULL, cfg_check_cidr, 0,
	  "Client addresses allowed to post here: addresses or CIDRs (no bits set past the prefix), IPv4 or IPv6, comma-separated; empty: any" },
	{ SEC_SOURCE, "trusted_proxies", T_STRLIST, SRC(trusted_proxies), 0, 64, "", NULL, cfg_check_cidr, 0,
	  "Reverse proxies (addresses or CIDRs) whose X-Forwarded-For is believed: the client is its right-most address that is not a trusted proxy; empty: the TCP peer is the client" },
	{ SEC_SOURCE, "dedup", T_STR, SRC(dedup), 1, 79, "auto", NULL, cfg_check_dedup, 0,
	  "How a repeated delivery is recognised: auto (the webhook-id or svix-id header, else, on a source whose signature covers the body, the delivery id a provider puts in it (Daily's envelope id, with its payload), else the same bytes (with the callback URL query parameters on an unsigned source), or the one twin a provider documents; none for pailflow.session_complete and pailflow.unknown, nor for tavus.unknown without a timestamp, whose bytes name no one callback), body (same bytes, and query parameters unsigned), header:NAME (same value of that header, e.g. header:X-GitHub-Delivery) or off; with auth = hmac or daily no header counts (the signature does not cover it)" },
	{ SEC_SOURCE, "dedup_window", T_DURATION, SRC(dedup_window_ms), MIN_MS, 365 * DAY_MS, "7d", NULL, NULL, 0,
	  "How long a delivery is remembered for recognising repeats" },
	{ SEC_SOURCE, "rate", T_FLOAT, SRC(rate), 0, 1000000, "0", NULL, NULL, 0,
	  "Requests per second accepted here, on average (a token bucket); more are answered 429; 0: unlimited" },
	{ SEC_SOURCE, "burst", T_INT, SRC(burst), 1, 1000000, "20", NULL, NULL, 0,
	  "Requests accepted at once above `rate` (the bucket's size)" },
	{ SEC_SOURCE, "retain", T_DURATION, SRC(retain_ms), 0, 3650 * DAY_MS, "0", NULL, NULL, 0,
	  "How long this source's events are kept whole. Older payloads are pruned (the API then shows payload null and pruned_at); at twice this age the event row goes with its deliveries and attempts, and sessions left without events; rejected bodies go at this age. An event with a pending delivery is never pruned. Events of a source no longer configured are pruned only by max_size; 0: keep forever" },

	{ SEC_DESTINATION, "url", T_STR, DST(url), 1, 2047, "", NULL, cfg_check_url, O_REQUIRED,
	  "Where events are POSTed: an http:// or https:// URL" },
	{ SEC_DESTINATION, "match", T_STRLIST, DST(match), 0, 64, "", NULL, cfg_check_glob, 0,
	  "Event kinds delivered, as comma-separated globs (tavus.conversation.*, *.error); a name or glob that names no known kind (docs/events.md) is refused; empty: every kind" },
	{ SEC_DESTINATION, "sources", T_STRLIST, DST(sources), 0, NAMED_MAX, "", NULL, cfg_check_name, 0,
	  "Sources whose events are delivered, comma-separated, each a [source] of this file; empty: every source" },
	{ SEC_DESTINATION, "header", T_STRLIST, DST(headers), 0, 64, "", NULL, cfg_check_header_line, O_REPEAT | O_NAMED,
	  "An extra request header, Name: value; repeat the key for more headers, each name on one line only (several values: one line, comma-separated). Content-Type and User-Agent replace hookrelay's; Host, Content-Length, Transfer-Encoding, Connection, Expect and webhook-* cannot be set" },
	{ SEC_DESTINATION, "timeout", T_DURATION, DST(timeout_ms), SEC_MS, 10 * MIN_MS, "15s", NULL, NULL, 0,
	  "A whole attempt, connecting included; a slower one fails and is retried" },
	{ SEC_DESTINATION, "connect_timeout", T_DURATION, DST(connect_timeout_ms), 100, 5 * MIN_MS, "5s", NULL, NULL, 0,
	  "Connecting, TLS handshake included" },
	{ SEC_DESTINATION, "retry_schedule", T_DURLIST, DST(retry_schedule), 1, 50, "5s, 5m, 30m, 2h, 5h, 10h, 10h", NULL, NULL, 0,
	  "Delay before each retry, comma-separated; the first attempt goes at once (with the default: the Standard Webhooks schedule, 8 attempts in all). After the last retry fails the delivery is dead" },
	{ SEC_DESTINATION, "jitter", T_INT, DST(jitter_pct), 0, 100, "20", NULL, NULL, 0,
	  "Each delay moves up to this percent either way, so retries spread out" },
	{ SEC_DESTINATION, "max_in_flight", T_INT, DST(max_in_flight), 1, 1024, "16", NULL, NULL, 0,
	  "Attempts under way at once" },
	{ SEC_DESTINATION, "ordered", T_BOOL, DST(ordered), 0, 0, "false", NULL, NULL, 0,
	  "One event at a time per session, in event order; a failing event holds back later ones" },
	{ SEC_DESTINATION, "secret_file", T_PATH, DST(secret_file), 0, PATH_MAX - 1, "", NULL, NULL, O_SECRET,
	  "whsec_<base64> secrets, one per line: each adds a Standard Webhooks signature to webhook-signature; empty: unsigned" },
	{ SEC_DESTINATION, "allow_private", T_BOOL, DST(allow_private), 0, 0, "false", NULL, NULL, 0,
	  "May connect to loopback, private and link-local addresses (checked after DNS); a downstream on the same host needs it" },
	{ SEC_DESTINATION, "breaker_failures", T_INT, DST(breaker_failures), 1, 1000, "10", NULL, NULL, 0,
	  "Consecutive failed attempts that open the circuit breaker: attempts pause" },
	{ SEC_DESTINATION, "breaker_cooldown", T_DURATION, DST(breaker_cooldown_ms), 100, 10 * MIN_MS, "30s", NULL, NULL, 0,
	  "An open breaker sends one probe after this, doubling up to 10m while probes fail" },
	{ SEC_DESTINATION, "retry_4xx", T_BOOL, DST(retry_4xx), 0, 0, "false", NULL, NULL, 0,
	  "Retry 4xx answers too; 408 and 429 are always retried, 410 never" },
};
/* clang-format on */

_Static_assert(HR_ARRAY_LEN(cfg_options) == CFG_NOPTIONS, "CFG_NOPTIONS is the table's length");

/* The table. */

const struct option *
cfg_find_option(int sec, const char *key)
{
	for (size_t i = 0; i < CFG_NOPTIONS; i++)
		if (cfg_options[i].section == sec && strcmp(cfg_options[i].key, key) == 0)
			return &cfg_options[i];
	return NULL;
}

int
cfg_find_section(const char *name)
{
	for (size_t i = 0; i < SEC_COUNT; i++)
		if (strcmp(cfg_sections[i].name, name) == 0)
			return (int)i;
	return -1;
}

int
cfg_apply_defaults(int sec, void *base)
{
	char why[WHY_MAX];

	for (size_t i = 0; i < CFG_NOPTIONS; i++) {
		const struct option *o = &cfg_options[i];

		if (o->section == sec && !(o->flags & O_REQUIRED) &&
		    cfg_types[o->type].parse(o, o->def, (char *)base + o->off, why, sizeof(why)) !=
		        HR_OK)
			return HR_EINVAL;
	}
	return HR_OK;
}

/* Named section instances, reached through the offsets in struct section. */

void *
cfg_instances(const struct hr_cfg *cfg, const struct section *s, size_t *count)
{
	void *arr;

	memcpy(&arr, (const char *)cfg + s->array_off, sizeof(arr));
	memcpy(count, (const char *)cfg + s->count_off, sizeof(*count));
	return arr;
}

const char *
cfg_instance_name(const struct section *s, const void *arr, size_t i)
{
	return (const char *)arr + i * s->size + s->name_off;
}

/* Room for `n` instances: a power of two, so NAMED_MAX sections are not NAMED_MAX copies. */
static size_t
capacity(size_t n)
{
	size_t c = 4;

	while (c < n)
		c *= 2;
	return n > 0 ? c : 0;
}

void *
cfg_append_instance(struct hr_cfg *cfg, const struct section *s)
{
	size_t n;
	char *arr = cfg_instances(cfg, s, &n), *grown = arr, *inst;

	if (capacity(n + 1) != capacity(n) &&
	    (grown = realloc(arr, capacity(n + 1) * s->size)) == NULL)
		return NULL;
	inst = grown + n * s->size;
	memset(inst, 0, s->size);
	n++;
	memcpy((char *)cfg + s->array_off, &grown, sizeof(grown));
	memcpy((char *)cfg + s->count_off, &n, sizeof(n));
	return inst;
}

struct hr_cfg *
hr_cfg_new_defaults(void)
{
	struct hr_cfg *cfg = calloc(1, sizeof(*cfg));

	if (cfg == NULL)
		return NULL;
	for (size_t i = 0; i < SEC_COUNT; i++) {
		if (cfg_sections[i].size == 0 && cfg_apply_defaults((int)i, cfg) != HR_OK) {
			hr_cfg_free(cfg);
			return NULL;
		}
	}
	return cfg;
}

static void
clear_options(int sec, void *base)
{
	for (size_t i = 0; i < CFG_NOPTIONS; i++)
		if (cfg_options[i].section == sec && cfg_types[cfg_options[i].type].clear != NULL)
			cfg_types[cfg_options[i].type].clear(
			    &cfg_options[i], (char *)base + cfg_options[i].off);
}

void
hr_cfg_free(struct hr_cfg *cfg)
{
	if (cfg == NULL)
		return;
	for (size_t s = 0; s < SEC_COUNT; s++) {
		size_t n;
		char *arr;

		if (cfg_sections[s].size == 0) {
			clear_options((int)s, cfg);
			continue;
		}
		arr = cfg_instances(cfg, &cfg_sections[s], &n);
		for (size_t i = 0; i < n; i++)
			clear_options((int)s, arr + i * cfg_sections[s].size);
		free(arr);
	}
	free(cfg);
}

void
hr_cfg_destination_clear(struct hr_destination_cfg *d)
{
	if (d != NULL)
		clear_options(SEC_DESTINATION, d);
}

int
hr_cfg_destination_copy(struct hr_destination_cfg *dst, const struct hr_destination_cfg *src)
{
	int rc = HR_OK;

	*dst = *src; /* then every member that owns memory gets its own */
	for (size_t i = 0; i < CFG_NOPTIONS; i++) {
		const struct option *o = &cfg_options[i];
		void *m = (char *)dst + o->off;

		if (o->section != SEC_DESTINATION || cfg_types[o->type].copy == NULL)
			continue;
		if (rc == HR_OK)
			rc = cfg_types[o->type].copy(o, m);
		else /* not copied: it must not free what `src` owns */
			memset(m, 0, o->width);
	}
	if (rc != HR_OK)
		hr_cfg_destination_clear(dst);
	return rc;
}

const struct hr_source_cfg *
hr_cfg_source(const struct hr_cfg *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->nsources; i++)
		if (strcmp(cfg->sources[i].name, name) == 0)
			return &cfg->sources[i];
	return NULL;
}

bool
hr_cfg_signs_body(const struct hr_source_cfg *src)
{
	return src->auth == HR_AUTH_STANDARD_WEBHOOKS || src->auth == HR_AUTH_HMAC ||
	    src->auth == HR_AUTH_DAILY;
}

const struct hr_destination_cfg *
hr_cfg_destination(const struct hr_cfg *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->ndestinations; i++)
		if (strcmp(cfg->destinations[i].name, name) == 0)
			return &cfg->destinations[i];
	return NULL;
}

struct hr_json_limits
hr_cfg_json_limits_max(void)
{
	return (struct hr_json_limits){
		.max_depth = (size_t)cfg_find_option(SEC_SERVER, "max_depth")->max,
		.max_object_keys = (size_t)cfg_find_option(SEC_SERVER, "max_object_keys")->max,
		.max_string = (size_t)cfg_find_option(SEC_SERVER, "max_string")->max,
		.max_values = (size_t)cfg_find_option(SEC_SERVER, "max_values")->max,
	};
}

#ifdef HR_TESTING
const char *
cfg_option_key(size_t i, const char **section)
{
	if (i >= CFG_NOPTIONS)
		return NULL;
	*section = cfg_sections[cfg_options[i].section].name;
	return cfg_options[i].key;
}

/* The default reads back (a required key has none); what a list allocates is freed again. */
static bool
default_ok(const struct option *o)
{
	static union {
		char c[PATH_MAX];
		max_align_t align;
	} scratch;
	char why[WHY_MAX];
	bool ok;

	if (o->flags & O_REQUIRED)
		return o->def[0] == '\0' && cfg_sections[o->section].size != 0;
	if (o->width > sizeof(scratch.c))
		return false;
	memset(&scratch, 0, sizeof(scratch));
	ok = cfg_types[o->type].parse(o, o->def, scratch.c, why, sizeof(why)) == HR_OK;
	if (ok && cfg_types[o->type].clear != NULL)
		cfg_types[o->type].clear(o, scratch.c);
	return ok;
}

/* Does the member's width fit the type? */
static bool
width_ok(const struct option *o)
{
	bool numeric = cfg_types[o->type].num != NULL;
	bool text = o->type == T_STR || o->type == T_PATH || o->type == T_ADDR;

	switch (o->type) {
	case T_DURATION:
		return o->width == sizeof(int64_t);
	case T_ENUM:
		return o->width == sizeof(int);
	case T_BOOL:
		return o->width == sizeof(bool);
	case T_FLOAT:
		return o->width == sizeof(double);
	case T_STRLIST:
		return o->width == sizeof(struct hr_strlist);
	case T_DURLIST:
		return o->width == sizeof(struct hr_durlist);
	default:
		break;
	}
	if (numeric)
		return (o->width == 4 && o->max <= INT32_MAX) || o->width == 8;
	if (text)
		return o->width >= 2 && (o->type == T_ADDR || o->max < (int64_t)o->width);
	return true;
}

/* Table invariants a new line could break; 0 if they hold, else the option's index + 1. */
int
cfg_table_check(void)
{
	for (size_t i = 0; i < CFG_NOPTIONS; i++) {
		const struct option *o = &cfg_options[i];
		bool list = o->type == T_STRLIST || o->type == T_DURLIST;

		if (o->help == NULL || o->def == NULL || o->min > o->max || !width_ok(o) ||
		    !default_ok(o) || (o->type == T_ENUM) != (o->choices != NULL) ||
		    (list && o->min < 0) || ((o->flags & O_REPEAT) && o->type != T_STRLIST) ||
		    ((o->flags & O_SECRET) && o->type != T_PATH) ||
		    (o->check != NULL && o->type != T_STR && o->type != T_STRLIST) ||
		    cfg_find_option(o->section, o->key) != o)
			return (int)i + 1;
	}
	return 0;
}
#endif
