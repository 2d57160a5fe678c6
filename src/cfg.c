/*
 * cfg.c - the configuration file as a struct hr_cfg.
 *
 * One option table (`options[]`) drives parsing, defaults, range checks,
 * `--help`, hr_cfg_print() and docs/configuration.md, so none of them can
 * drift from the others. Each option names its section and an offsetof into
 * the struct that section fills: struct hr_cfg for plain sections like
 * [server], one array element for named sections like [source NAME].
 *
 * A new option is one line of `options[]`: a type from `types[]` (a list
 * type owns memory, which its clear function releases), optionally a
 * `check` run on the text of each value or list item, and flags: O_REPEAT
 * (the key may appear several times, each line one more item) and
 * O_REQUIRED (a named section without it is an error). A new named section
 * is one line of `sections[]`; its `finish` hook runs once the whole file
 * is read, for checks that span keys or sections.
 *
 * libinih splits `key = value` lines. The line reader below feeds it and
 * takes section headers for itself: Debian's inih passes no line number to
 * the handler, truncates section names to 49 bytes and never reports a
 * section without keys, and an empty [source foo] must still exist.
 */
#include <curl/curl.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "hr/cfg.h"
#include "hr/log.h"
#include "hr/netaddr.h"

#define KiB (INT64_C(1) << 10)
#define MiB (INT64_C(1) << 20)
#define GiB (INT64_C(1) << 30)

#define SEC_MS  INT64_C(1000)
#define MIN_MS  (60 * SEC_MS)
#define HOUR_MS (60 * MIN_MS)
#define DAY_MS  (24 * HOUR_MS)

#define LINE_MAX_BYTES 8192          /* inih's line buffer, '\n' and '\0' included */
#define WHY_MAX        200           /* reason text, without the "FILE:LINE" */
#define NAMED_MAX      1024          /* instances of one named section kind */
#define DURLIST_MAX_MS (30 * DAY_MS) /* bound of each entry of a duration list */
#define FLOAT_FRAC_MAX 6             /* digits after the point in a number */

enum opt_type {
	T_STR,
	T_PATH,
	T_INT,
	T_SIZE,
	T_DURATION,
	T_BOOL,
	T_ENUM,
	T_ADDR,
	T_FLOAT,   /* double: "10", "0.5" */
	T_STRLIST, /* struct hr_strlist: "a, b, c"; min..max bound the number of items */
	T_DURLIST, /* struct hr_durlist: "0s, 5s, 5m"; min..max bound the number of items */
	T_COUNT
};

/* Option flags. */
#define O_REPEAT   0x1u /* T_STRLIST: each line of the key adds one item, commas and all */
#define O_REQUIRED 0x2u /* named sections: the key must be set; `def` is "" */
#define O_SECRET   0x4u /* T_PATH: a file of secrets; a warning if every user may read it */

struct choice {
	const char *name;
	int value;
};

struct parser;
struct inst_lines;

/* Cross-key checks of one section instance once the file is read; report with fail_at(). */
typedef void (*finish_fn)(struct parser *, const struct inst_lines *, const void *inst);

/*
 * A plain section fills struct hr_cfg itself. A named one ([source NAME])
 * appends an element of `size` bytes to the array at `array_off`, counted
 * by the size_t at `count_off`; the NAME goes to the char[HR_NAME_MAX] at
 * `name_off` of the element.
 */
struct section {
	const char *name;
	const char *help;
	size_t size; /* 0: plain section */
	size_t array_off, count_off, name_off;
	finish_fn finish; /* named sections only; NULL when there is nothing to check */
};

/* Accept the text of one value or list item, or explain in `why` (no key prefix). */
typedef int (*check_fn)(const char *text, char *why, size_t len);

struct option {
	int section; /* index into sections[] */
	const char *key;
	enum opt_type type;
	size_t off, width;            /* the member, in the struct the section fills */
	int64_t min, max;             /* value bounds; STR and PATH: length; lists: items */
	const char *def;              /* default, in config file syntax */
	const struct choice *choices; /* T_ENUM */
	check_fn check;               /* T_STR, T_STRLIST: run on non-empty text / each item */
	unsigned flags;               /* O_REPEAT, O_REQUIRED */
	const char *help;             /* one line, for --help and the docs */
};

/* Parse `text` into the member at `dst`; on failure fill `why` (no key prefix). */
typedef int (*parse_fn)(const struct option *, const char *text, void *dst, char *why, size_t len);
/* Render the member at `src` in config file syntax. */
typedef void (*print_fn)(const struct option *, const void *src, char *buf, size_t len);
/* Render a number of this type, for ranges: "1KiB", "30s". */
typedef void (*num_fn)(int64_t v, char *buf, size_t len);

/* Release what a member of this type owns (lists, say); NULL when it owns nothing. */
typedef void (*clear_fn)(const struct option *, void *dst);
/* Make the member at `dst`, a bitwise copy of another, own memory of its own; on failure
 * it is left empty or partly filled, fit for clear. NULL when the type owns nothing. */
typedef int (*copy_fn)(const struct option *, void *dst);

struct type_ops {
	const char *name; /* in --help and the docs */
	parse_fn parse;
	print_fn print;
	num_fn num;     /* numeric types only */
	clear_fn clear; /* called by hr_cfg_free() */
	copy_fn copy;   /* called by hr_cfg_destination_copy() */
};

enum { SEC_SERVER, SEC_STORAGE, SEC_API, SEC_LOG, SEC_SOURCE, SEC_DESTINATION };

static void finish_source(struct parser *, const struct inst_lines *, const void *);
static void finish_destination(struct parser *, const struct inst_lines *, const void *);

static const struct section sections[] = {
	[SEC_SERVER] = { "server", "The HTTP listener and the limits every request is held to.", 0,
	    0, 0, 0, NULL },
	[SEC_STORAGE] = { "storage",
	    "The SQLite event log. A webhook is acknowledged only once its event is committed.", 0,
	    0, 0, 0, NULL },
	[SEC_API] = { "api", "The read API under /v1/.", 0, 0, 0, 0, NULL },
	[SEC_LOG] = { "log", "Messages on stderr, with journald priority prefixes.", 0, 0, 0, 0,
	    NULL },
	[SEC_SOURCE] = { "source",
	    "One inbound endpoint, `POST /hooks/NAME`; repeat the section for more. NAME is "
	    "1 to 63 characters of `A-Z a-z 0-9 _ . -`. Without any [source] section every "
	    "/hooks path answers 404. A request that fails `allow_cidrs` or `auth` is refused "
	    "without saying which check failed.",
	    sizeof(struct hr_source_cfg), offsetof(struct hr_cfg, sources),
	    offsetof(struct hr_cfg, nsources), offsetof(struct hr_source_cfg, name),
	    finish_source },
	[SEC_DESTINATION] = { "destination",
	    "A downstream URL that receives matching events as POSTs, retried on failure; "
	    "repeat the section for more. NAME is as for [source]. Without any [destination] "
	    "section events are stored and served by the API, not forwarded.",
	    sizeof(struct hr_destination_cfg), offsetof(struct hr_cfg, destinations),
	    offsetof(struct hr_cfg, ndestinations), offsetof(struct hr_destination_cfg, name),
	    finish_destination },
};

static const struct choice log_levels[] = {
	{ "error", HR_LOG_ERR },
	{ "warning", HR_LOG_WARNING },
	{ "info", HR_LOG_INFO },
	{ "debug", HR_LOG_DEBUG },
	{ NULL, 0 },
};

/* Same names as hr_provider_name(); kept here so cfg.c does not need the event code. */
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

static int check_url(const char *, char *, size_t);
static int check_token(const char *, char *, size_t);
static int check_header_line(const char *, char *, size_t);
static int check_name(const char *, char *, size_t);
static int check_glob(const char *, char *, size_t);
static int check_cidr(const char *, char *, size_t);
static int check_dedup(const char *, char *, size_t);
static int check_host_name(const char *, char *, size_t);

#define CFG(m) offsetof(struct hr_cfg, m), sizeof(((struct hr_cfg *)NULL)->m)
#define SRC(m) offsetof(struct hr_source_cfg, m), sizeof(((struct hr_source_cfg *)NULL)->m)
#define DST(m)                                                                                     \
	offsetof(struct hr_destination_cfg, m), sizeof(((struct hr_destination_cfg *)NULL)->m)

/* clang-format off */
static const struct option options[] = {
	{ SEC_SERVER, "listen", T_ADDR, CFG(listen), 0, 0, "127.0.0.1:8080", NULL, NULL, 0,
	  "Numeric address and port to listen on: 127.0.0.1:8080, [::1]:8080, :8080 (every IPv4 address); port 0 picks a free port" },
	{ SEC_SERVER, "max_body", T_SIZE, CFG(max_body), KiB, GiB, "8MiB", NULL, NULL, 0,
	  "Largest request body accepted; larger ones are answered 413" },
	{ SEC_SERVER, "request_timeout", T_DURATION, CFG(request_timeout_ms), 1000, 3600 * 1000, "30s", NULL, NULL, 0,
	  "A request must arrive whole (headers and body) within this, and an idle connection is closed after it: slow clients (slow-loris) are cut off" },
	{ SEC_SERVER, "header_timeout", T_DURATION, CFG(header_timeout_ms), 1000, 3600 * 1000, "10s", NULL, NULL, 0,
	  "The request line and headers must arrive within this (a longer value counts as request_timeout); an idle keep-alive connection is closed after it too. At max_connections, the connection that has waited longest without sending a whole request is closed to admit a new one" },
	{ SEC_SERVER, "threads", T_INT, CFG(threads), 1, 64, "2", NULL, NULL, 0,
	  "HTTP worker threads" },
	{ SEC_SERVER, "max_connections", T_INT, CFG(max_connections), 1, 100000, "1024", NULL, NULL, 0,
	  "Open connections at once. At the cap, the connection that has waited longest without sending a whole request is closed to admit a new one; when every one has a request in, new ones wait in the listen backlog" },
	{ SEC_SERVER, "max_connections_per_ip", T_INT, CFG(max_connections_per_ip), 0, 100000, "64", NULL, NULL, 0,
	  "Open connections from one client address at once; more are refused; 0: no per-address limit" },
	{ SEC_SERVER, "max_header_size", T_SIZE, CFG(max_header_size), KiB, MiB, "16KiB", NULL, NULL, 0,
	  "Largest request line plus headers accepted; larger requests are answered 431" },
	{ SEC_SERVER, "max_unverified_bodies", T_SIZE, CFG(max_unverified_bodies), MiB, 64 * GiB, "64MiB", NULL, NULL, 0,
	  "Bytes of request bodies held at once, all connections together, while their signature (standard-webhooks, hmac) is not checked yet; past it such a request is answered 503 with Retry-After. At least max_body is always allowed" },
	{ SEC_SERVER, "max_depth", T_INT, CFG(max_depth), 1, 1000, "64", NULL, NULL, 0,
	  "Deepest JSON nesting accepted in a body" },
	{ SEC_SERVER, "max_object_keys", T_INT, CFG(max_object_keys), 1, 1000000, "10000", NULL, NULL, 0,
	  "Most keys accepted in one JSON object" },
	{ SEC_SERVER, "max_string", T_SIZE, CFG(max_string), KiB, GiB, "4MiB", NULL, NULL, 0,
	  "Longest JSON string accepted in a body" },
	{ SEC_SERVER, "max_values", T_INT, CFG(max_values), 100, 10000000, "100000", NULL, NULL, 0,
	  "Most JSON values accepted in one body (objects, arrays, strings, numbers, true, false, null; object keys are not values), counted before the body is parsed: each value costs up to about 250 bytes of memory while it is checked" },

	{ SEC_STORAGE, "path", T_PATH, CFG(db_path), 1, PATH_MAX - 1, "var/hookrelay.db", NULL, NULL, 0,
	  "SQLite database file, created if missing; a relative path is relative to the working directory" },
	{ SEC_STORAGE, "batch_max", T_INT, CFG(batch_max), 1, 10000, "256", NULL, NULL, 0,
	  "Most events written in one group-commit transaction" },
	{ SEC_STORAGE, "queue_max", T_INT, CFG(queue_max), 1, 1000000, "8192", NULL, NULL, 0,
	  "Events waiting for the writer; past it ingest answers 503" },
	{ SEC_STORAGE, "rejections_max", T_INT, CFG(rejections_max), 0, 1000000, "10000", NULL, NULL, 0,
	  "Newest rejected bodies kept for inspection; 0 keeps none" },
	{ SEC_STORAGE, "max_size", T_SIZE, CFG(max_size), 0, 65536 * GiB, "0", NULL, NULL, 0,
	  "Cap on the database pages in use (free pages and the WAL file not counted); over it each pruning pass removes the oldest rejected bodies, then the oldest event payloads, then the oldest event rows, until under; an event with a pending delivery is never pruned; 0: no cap" },
	{ SEC_STORAGE, "prune_interval", T_DURATION, CFG(prune_interval_ms), 100, DAY_MS, "1m", NULL, NULL, 0,
	  "How often a pruning pass (retain, max_size) runs; it goes through the writer, removes at most 5000 rows, then returns free pages to the file system (PRAGMA incremental_vacuum); passes follow each other quickly while work is left" },
	{ SEC_STORAGE, "min_free_space", T_SIZE, CFG(min_free_space), 0, 65536 * GiB, "256MiB", NULL, NULL, 0,
	  "GET /readyz answers 503 while the file system of the database has less free space than this; 0: no check" },

	{ SEC_API, "token_file", T_PATH, CFG(token_file), 0, PATH_MAX - 1, "", NULL, NULL, O_SECRET,
	  "File holding the bearer token the API requires; empty: no token, the API answers loopback clients only" },
	{ SEC_API, "allowed_hosts", T_STRLIST, CFG(api_hosts), 0, 64, "", NULL, check_host_name, 0,
	  "Host header values the API answers to besides the listen address (and, on loopback, localhost, 127.0.0.1 and ::1): name (any port) or name:port, comma-separated; for a reverse proxy that passes the client's Host. Other names are answered 421, so a web page cannot reach the API by rebinding its own name to this address" },

	{ SEC_LOG, "level", T_ENUM, CFG(log_level), 0, 0, "info", log_levels, NULL, 0,
	  "Least severe messages logged" },

	{ SEC_SOURCE, "provider", T_ENUM, SRC(provider), 0, 0, "auto", providers, NULL, 0,
	  "Which provider sends here (auto, tavus, pailflow, agenthuman, daily); auto classifies every body, a provider restricts classification to its events. daily also answers Daily's verification probe {\"test\":\"test\"} 200 without storing it, and makes auth default to daily" },
	{ SEC_SOURCE, "auth", T_ENUM, SRC(auth), 0, 0, "none", auth_modes, NULL, 0,
	  "How a request proves its sender: none; token (?token=SECRET or /hooks/NAME/SECRET); standard-webhooks (webhook-id/-timestamp/-signature, or svix-*); hmac (the hmac_* keys); basic (HTTP Basic); daily (Daily.co: X-Webhook-Signature, the base64 HMAC-SHA256 of <X-Webhook-Timestamp>.<body> keyed with the base64-decoded secret, the timestamp in milliseconds). Default: none, or daily with provider = daily" },
	{ SEC_SOURCE, "secret_file", T_PATH, SRC(secret_file), 0, PATH_MAX - 1, "", NULL, NULL, O_SECRET,
	  "Secrets for auth, one per line (# comments; several lines: rotation, each accepted); standard-webhooks wants whsec_<base64>, basic user:password, daily the webhook's hmac as Daily shows it (base64); empty: $CREDENTIALS_DIRECTORY/NAME (systemd LoadCredential=)" },
	{ SEC_SOURCE, "hmac_header", T_STR, SRC(hmac_header), 1, 63, "X-Signature", NULL, check_token, 0,
	  "auth = hmac: the header carrying the signature" },
	{ SEC_SOURCE, "hmac_algorithm", T_ENUM, SRC(hmac_algorithm), 0, 0, "sha256", hmac_algorithms, NULL, 0,
	  "auth = hmac: the HMAC's hash" },
	{ SEC_SOURCE, "hmac_encoding", T_ENUM, SRC(hmac_encoding), 0, 0, "hex", hmac_encodings, NULL, 0,
	  "auth = hmac: how the signature is written: hex (either case) or padded base64" },
	{ SEC_SOURCE, "hmac_prefix", T_STR, SRC(hmac_prefix), 0, 31, "", NULL, NULL, 0,
	  "auth = hmac: text before the signature in the header, e.g. sha256= (GitHub)" },
	{ SEC_SOURCE, "hmac_signed", T_ENUM, SRC(hmac_signed), 0, 0, "body", hmac_signed_modes, NULL, 0,
	  "auth = hmac: what is signed: the raw body, or <timestamp>.<body> with the timestamp from hmac_timestamp_header" },
	{ SEC_SOURCE, "hmac_timestamp_header", T_STR, SRC(hmac_timestamp_header), 0, 63, "", NULL, check_token, 0,
	  "auth = hmac: the header carrying the Unix time (seconds) that is signed; required with hmac_signed = timestamp.body" },
	{ SEC_SOURCE, "tolerance", T_DURATION, SRC(tolerance_ms), SEC_MS, DAY_MS, "5m", NULL, NULL, 0,
	  "Signed timestamps (standard-webhooks, hmac timestamp.body, daily) further than this from the clock are refused" },
	{ SEC_SOURCE, "allow_cidrs", T_STRLIST, SRC(allow_cidrs), 0, 256, "", NULL, check_cidr, 0,
	  "Client addresses allowed to post here: addresses or CIDRs, IPv4 or IPv6, comma-separated; empty: any" },
	{ SEC_SOURCE, "trusted_proxies", T_STRLIST, SRC(trusted_proxies), 0, 64, "", NULL, check_cidr, 0,
	  "Reverse proxies (addresses or CIDRs) whose X-Forwarded-For is believed: the client is its right-most address that is not a trusted proxy; empty: the TCP peer is the client" },
	{ SEC_SOURCE, "dedup", T_STR, SRC(dedup), 1, 79, "auto", NULL, check_dedup, 0,
	  "How a repeated delivery is recognised: auto (the webhook-id or svix-id header, else, on a source whose signature covers the body, the delivery id a provider puts in it (Daily's envelope id), else the same bytes, or the one twin a provider documents), body (same bytes), header:NAME (same value of that header, e.g. header:X-GitHub-Delivery) or off; with auth = hmac or daily no header counts (the signature does not cover it)" },
	{ SEC_SOURCE, "dedup_window", T_DURATION, SRC(dedup_window_ms), MIN_MS, 365 * DAY_MS, "7d", NULL, NULL, 0,
	  "How long a delivery is remembered for recognising repeats" },
	{ SEC_SOURCE, "rate", T_FLOAT, SRC(rate), 0, 1000000, "0", NULL, NULL, 0,
	  "Requests per second accepted here, on average (a token bucket); more are answered 429; 0: unlimited" },
	{ SEC_SOURCE, "burst", T_INT, SRC(burst), 1, 1000000, "20", NULL, NULL, 0,
	  "Requests accepted at once above `rate` (the bucket's size)" },
	{ SEC_SOURCE, "retain", T_DURATION, SRC(retain_ms), 0, 3650 * DAY_MS, "0", NULL, NULL, 0,
	  "How long this source's events are kept whole. Older payloads are pruned (the API then shows payload null and pruned_at); at twice this age the event row goes with its deliveries and attempts, and sessions left without events; rejected bodies go at this age. An event with a pending delivery is never pruned. Events of a source no longer configured are pruned only by max_size; 0: keep forever" },

	{ SEC_DESTINATION, "url", T_STR, DST(url), 1, 2047, "", NULL, check_url, O_REQUIRED,
	  "Where events are POSTed: an http:// or https:// URL" },
	{ SEC_DESTINATION, "match", T_STRLIST, DST(match), 0, 64, "", NULL, check_glob, 0,
	  "Event kinds delivered, as comma-separated globs (tavus.conversation.*, *.error); empty: every kind" },
	{ SEC_DESTINATION, "sources", T_STRLIST, DST(sources), 0, NAMED_MAX, "", NULL, check_name, 0,
	  "Sources whose events are delivered, comma-separated, each a [source] of this file; empty: every source" },
	{ SEC_DESTINATION, "header", T_STRLIST, DST(headers), 0, 64, "", NULL, check_header_line, O_REPEAT,
	  "An extra request header, Name: value; repeat the key for more" },
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

#define NOPTIONS HR_ARRAY_LEN(options)

/* Numbers: sizes, durations and integers. */

enum num_status { NUM_OK, NUM_SYNTAX, NUM_RANGE };

struct unit {
	const char *suffix;
	int64_t mult;
};

/* Suffixes are case-insensitive; KB and KiB both mean 1024. */
static const struct unit size_units[] = {
	{ "", 1 },
	{ "b", 1 },
	{ "k", KiB },
	{ "kb", KiB },
	{ "kib", KiB },
	{ "m", MiB },
	{ "mb", MiB },
	{ "mib", MiB },
	{ "g", GiB },
	{ "gb", GiB },
	{ "gib", GiB },
	{ NULL, 0 },
};

/* In milliseconds; a bare number means seconds. */
static const struct unit duration_units[] = {
	{ "", 1000 },
	{ "ms", 1 },
	{ "s", 1000 },
	{ "m", 60 * 1000 },
	{ "h", 3600 * 1000 },
	{ "d", 86400 * 1000 },
	{ NULL, 0 },
};

/* The largest unit that divides `v` exactly, first match wins. */
static const struct unit size_print_units[] = {
	{ "GiB", GiB },
	{ "MiB", MiB },
	{ "KiB", KiB },
	{ "", 1 },
};

static const struct unit duration_print_units[] = {
	{ "d", 86400 * 1000 },
	{ "h", 3600 * 1000 },
	{ "m", 60 * 1000 },
	{ "s", 1000 },
	{ "ms", 1 },
};

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Digits into *out; NUM_RANGE on overflow. *end is past the last digit. */
static enum num_status
scan_digits(const char *s, int64_t *out, int *ndigits, const char **end)
{
	int64_t v = 0;
	int n = 0;

	for (; is_digit(*s); s++, n++) {
		if (v > (INT64_MAX - (*s - '0')) / 10)
			return NUM_RANGE;
		v = v * 10 + (*s - '0');
	}
	*out = v;
	*ndigits = n;
	*end = s;
	return n > 0 ? NUM_OK : NUM_SYNTAX;
}

static const struct unit *
find_unit(const struct unit *units, const char *suffix, bool nocase)
{
	for (; units->suffix != NULL; units++)
		if ((nocase ? strcasecmp : strcmp)(units->suffix, suffix) == 0)
			return units;
	return NULL;
}

static const char *
skip_blanks(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

/* `s` without surrounding blanks and line ends, in place. */
static char *
strip(char *s)
{
	char *end;

	s += strspn(s, " \t\r\n");
	end = s + strlen(s);
	while (end > s && strchr(" \t\r\n", end[-1]) != NULL)
		*--end = '\0';
	return s;
}

static bool
valid_name(const char *s)
{
	size_t n = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-");

	return n > 0 && n < HR_NAME_MAX && s[n] == '\0';
}

/*
 * "12", "12.5" (if `frac_ok`), then optional blanks and a unit from `units`:
 * the value times the unit's multiplier. A fraction must come out whole.
 */
static enum num_status
parse_scaled(const char *s, const struct unit *units, bool nocase, bool frac_ok, int64_t *out)
{
	const struct unit *u;
	int64_t ip, fp = 0, scale = 1, v;
	int n, nfrac = 0;
	enum num_status st;

	if ((st = scan_digits(s, &ip, &n, &s)) != NUM_OK)
		return st;
	if (*s == '.' && frac_ok) {
		/* Up to 9 digits keeps fp * mult below INT64_MAX. */
		if (scan_digits(s + 1, &fp, &nfrac, &s) != NUM_OK || nfrac > 9)
			return NUM_SYNTAX;
		for (int i = 0; i < nfrac; i++)
			scale *= 10;
	}
	if ((u = find_unit(units, skip_blanks(s), nocase)) == NULL)
		return NUM_SYNTAX;
	if (fp * u->mult % scale != 0)
		return NUM_SYNTAX; /* finer than the smallest unit */
	if (ip > INT64_MAX / u->mult)
		return NUM_RANGE;
	v = ip * u->mult;
	if (v > INT64_MAX - fp * u->mult / scale)
		return NUM_RANGE;
	*out = v + fp * u->mult / scale;
	return NUM_OK;
}

static enum num_status
parse_int(const char *s, int64_t *out)
{
	const char *end;
	int64_t v;
	int n;
	enum num_status st;
	bool neg = (*s == '-');

	if ((st = scan_digits(s + neg, &v, &n, &end)) != NUM_OK)
		return st;
	if (*end != '\0')
		return NUM_SYNTAX;
	*out = neg ? -v : v;
	return NUM_OK;
}

int
hr_cfg_parse_size(const char *s, size_t *out)
{
	int64_t v;

	if (parse_scaled(s, size_units, true, false, &v) != NUM_OK || (uint64_t)v > SIZE_MAX)
		return HR_EINVAL;
	*out = (size_t)v;
	return HR_OK;
}

int
hr_cfg_parse_duration_ms(const char *s, int64_t *out)
{
	return parse_scaled(s, duration_units, false, true, out) == NUM_OK ? HR_OK : HR_EINVAL;
}

static void
print_scaled(int64_t v, const struct unit *units, size_t nunits, char *buf, size_t len)
{
	size_t i;

	for (i = 0; i + 1 < nunits; i++)
		if (v != 0 && v % units[i].mult == 0)
			break;
	snprintf(buf, len, "%lld%s", (long long)(v / units[i].mult), units[i].suffix);
}

static void
num_int(int64_t v, char *buf, size_t len)
{
	snprintf(buf, len, "%lld", (long long)v);
}

static void
num_size(int64_t v, char *buf, size_t len)
{
	print_scaled(v, size_print_units, HR_ARRAY_LEN(size_print_units), buf, len);
}

static void
num_duration(int64_t v, char *buf, size_t len)
{
	if (v == 0) /* "0s" reads better than the smallest unit's "0ms" */
		snprintf(buf, len, "0s");
	else
		print_scaled(v, duration_print_units, HR_ARRAY_LEN(duration_print_units), buf, len);
}

/* Members: integers of any width the table names; all values fit int32 or int64. */

static void
store_int(void *dst, size_t width, int64_t v)
{
	if (width == sizeof(int32_t)) {
		int32_t v32 = (int32_t)v;

		memcpy(dst, &v32, sizeof(v32));
	} else {
		memcpy(dst, &v, sizeof(v));
	}
}

static int64_t
load_int(const void *src, size_t width)
{
	int32_t v32;
	int64_t v64;

	if (width == sizeof(int32_t)) {
		memcpy(&v32, src, sizeof(v32));
		return v32;
	}
	memcpy(&v64, src, sizeof(v64));
	return v64;
}

/* Type parsers and printers. */

static const struct type_ops types[T_COUNT];

static int
out_of_range(const struct option *o, const char *text, char *why, size_t len)
{
	char lo[32], hi[32];

	types[o->type].num(o->min, lo, sizeof(lo));
	types[o->type].num(o->max, hi, sizeof(hi));
	snprintf(why, len, "%.64s is out of range (%s..%s)", text, lo, hi);
	return HR_EINVAL;
}

static int
parse_number(const struct option *o, enum num_status st, int64_t v, const char *text, void *dst,
    char *why, size_t len)
{
	static const char *const what[T_COUNT] = {
		[T_INT] = "a whole number",
		[T_SIZE] = "a size (e.g. 8MiB)",
		[T_DURATION] = "a duration (e.g. 30s, 250ms)",
	};

	if (st == NUM_SYNTAX) {
		snprintf(why, len, "\"%.64s\" is not %s", text, what[o->type]);
		return HR_EINVAL;
	}
	if (st == NUM_RANGE || v < o->min || v > o->max)
		return out_of_range(o, text, why, len);
	store_int(dst, o->width, v);
	return HR_OK;
}

static int
parse_int_opt(const struct option *o, const char *text, void *dst, char *why, size_t len)
{
	int64_t v = 0;
	enum num_status st = parse_int(text, &v);

	return parse_number(o, st, v, text, dst, why, len);
}

static int
parse_size_opt(const struct option *o, const char *text, void *dst, char *why, size_t len)
{
	int64_t v = 0;
	enum num_status st = parse_scaled(text, size_units, true, false, &v);

	return parse_number(o, st, v, text, dst, why, len);
}

static int
parse_duration_opt(const struct option *o, const char *text, void *dst, char *why, size_t len)
{
	int64_t v = 0;
	enum num_status st = parse_scaled(text, duration_units, false, true, &v);

	return parse_number(o, st, v, text, dst, why, len);
}

static int
parse_str(const struct option *o, const char *text, void *dst, char *why, size_t len)
{
	size_t n = strlen(text);
	int rc;

	if ((int64_t)n < o->min) {
		snprintf(why, len, "must not be empty");
		return HR_EINVAL;
	}
	if ((int64_t)n > o->max || n >= o->width) {
		snprintf(why, len, "is longer than %lld bytes",
		    (long long)(o->max < (int64_t)o->width - 1 ? o->max : (int64_t)o->width - 1));
		return HR_EINVAL;
	}
	if (n > 0 && o->check != NULL && (rc = o->check(text, why, len)) != HR_OK)
		return rc;
	memcpy(dst, text, n + 1);
	return HR_OK;
}

static int
parse_addr(const struct option *o, const char *text, void *dst, char *why, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sslen;

	if (strlen(text) >= o->width || hr_netaddr_parse(text, &ss, &sslen) != HR_OK) {
		snprintf(why, len,
		    "\"%.64s\" is not a numeric address:port (e.g. 127.0.0.1:8080, [::1]:8080)",
		    text);
		return HR_EINVAL;
	}
	memcpy(dst, text, strlen(text) + 1);
	return HR_OK;
}

static int
parse_bool(const struct option *o, const char *text, void *dst, char *why, size_t len)
{
	static const struct choice bools[] = {
		{ "true", 1 },
		{ "yes", 1 },
		{ "on", 1 },
		{ "1", 1 },
		{ "false", 0 },
		{ "no", 0 },
		{ "off", 0 },
		{ "0", 0 },
	};

	(void)o;
	for (size_t i = 0; i < HR_ARRAY_LEN(bools); i++) {
		if (strcasecmp(text, bools[i].name) == 0) {
			bool b = bools[i].value != 0;

			memcpy(dst, &b, sizeof(b));
			return HR_OK;
		}
	}
	snprintf(why, len, "\"%.64s\" is not a boolean (true/false, yes/no, on/off, 1/0)", text);
	return HR_EINVAL;
}

static void
join_choices(const struct choice *c, const char *quote, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (; c->name != NULL && used < len; c++) {
		int n = snprintf(buf + used, len - used, "%s%s%s%s", used > 0 ? ", " : "", quote,
		    c->name, quote);

		if (n < 0)
			break;
		used += (size_t)n;
	}
}

static int
parse_enum(const struct option *o, const char *text, void *dst, char *why, size_t len)
{
	char names[128];

	for (const struct choice *c = o->choices; c->name != NULL; c++) {
		if (strcasecmp(text, c->name) == 0) {
			store_int(dst, o->width, c->value);
			return HR_OK;
		}
	}
	join_choices(o->choices, "", names, sizeof(names));
	snprintf(why, len, "\"%.64s\" is not one of %s", text, names);
	return HR_EINVAL;
}

static void
print_str(const struct option *o, const void *src, char *buf, size_t len)
{
	(void)o;
	snprintf(buf, len, "%s", (const char *)src);
}

static void
print_num(const struct option *o, const void *src, char *buf, size_t len)
{
	types[o->type].num(load_int(src, o->width), buf, len);
}

static void
print_bool(const struct option *o, const void *src, char *buf, size_t len)
{
	bool b;

	(void)o;
	memcpy(&b, src, sizeof(b));
	snprintf(buf, len, "%s", b ? "true" : "false");
}

static void
print_enum(const struct option *o, const void *src, char *buf, size_t len)
{
	int64_t v = load_int(src, o->width);

	for (const struct choice *c = o->choices; c->name != NULL; c++) {
		if (c->value == v) {
			snprintf(buf, len, "%s", c->name);
			return;
		}
	}
	snprintf(buf, len, "%lld", (long long)v);
}

/* Numbers with a fraction: "10", "0.5". No sign or exponent, so the text reads back exactly. */

static enum num_status
scan_float(const char *s, double *out)
{
	int64_t ip, fp = 0;
	int n, nfrac = 0;
	double scale = 1;
	enum num_status st;

	if ((st = scan_digits(s, &ip, &n, &s)) != NUM_OK)
		return st;
	if (*s == '.') {
		if (scan_digits(s + 1, &fp, &nfrac, &s) != NUM_OK || nfrac > FLOAT_FRAC_MAX)
			return NUM_SYNTAX;
		for (int i = 0; i < nfrac; i++)
			scale *= 10;
	}
	if (*s != '\0')
		return NUM_SYNTAX;
	*out = (double)ip + (double)fp / scale;
	return NUM_OK;
}

static int
parse_float_opt(const struct option *o, const char *text, void *dst, char *why, size_t len)
{
	double v = 0;
	enum num_status st = scan_float(text, &v);

	if (st == NUM_SYNTAX) {
		snprintf(why, len, "\"%.64s\" is not a number (e.g. 10, 0.5)", text);
		return HR_EINVAL;
	}
	if (st == NUM_RANGE || v < (double)o->min || v > (double)o->max)
		return out_of_range(o, text, why, len);
	memcpy(dst, &v, sizeof(v));
	return HR_OK;
}

/* The fewest decimals that read back as the same value. */
static void
print_float(const struct option *o, const void *src, char *buf, size_t len)
{
	double v, back = 0;

	(void)o;
	memcpy(&v, src, sizeof(v));
	for (int prec = 0; prec <= FLOAT_FRAC_MAX; prec++) {
		snprintf(buf, len, "%.*f", prec, v);
		if (scan_float(buf, &back) == NUM_OK && back == v)
			return;
	}
}

/* Lists: "a, b, c" into a struct hr_strlist or hr_durlist the member owns. */

static int
no_memory(char *why, size_t len)
{
	snprintf(why, len, "out of memory");
	return HR_ENOMEM;
}

static void
strlist_clear(struct hr_strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static int
strlist_push(struct hr_strlist *l, const char *item)
{
	char **grown, *copy;

	if ((copy = strdup(item)) == NULL)
		return HR_ENOMEM;
	if ((grown = realloc(l->v, (l->n + 1) * sizeof(*grown))) == NULL) {
		free(copy);
		return HR_ENOMEM;
	}
	grown[l->n++] = copy;
	l->v = grown;
	return HR_OK;
}

/* One more item for `l`, if it is not empty, fits the option's bound and passes its check. */
static int
add_item(const struct option *o, struct hr_strlist *l, const char *item, char *why, size_t len)
{
	int rc;

	if (*item == '\0') {
		snprintf(why, len, "an item of the list is empty");
		return HR_EINVAL;
	}
	if (l->n >= (size_t)o->max) {
		snprintf(why, len, "more than %lld items", (long long)o->max);
		return HR_EINVAL;
	}
	if (o->check != NULL && (rc = o->check(item, why, len)) != HR_OK)
		return rc;
	return strlist_push(l, item) == HR_OK ? HR_OK : no_memory(why, len);
}

/*
 * The items of `text` appended to `l`: split at commas, except for O_REPEAT
 * keys whose one line is one item (a header value may hold commas), each
 * trimmed. A blank text adds nothing; an empty item between commas is an
 * error.
 */
static int
split_items(const struct option *o, const char *text, struct hr_strlist *l, char *why, size_t len)
{
	char *copy = strdup(text), *s;
	int rc = HR_OK;
	bool more;

	if (copy == NULL)
		return no_memory(why, len);
	s = strip(copy);
	for (more = *s != '\0'; more && rc == HR_OK;) {
		char *item = s, *comma = (o->flags & O_REPEAT) ? NULL : strchr(s, ',');

		more = comma != NULL;
		if (more) {
			*comma = '\0';
			s = comma + 1;
		}
		rc = add_item(o, l, strip(item), why, len);
	}
	free(copy);
	return rc;
}

static int
too_few_items(const struct option *o, char *why, size_t len)
{
	snprintf(why, len, "needs at least %lld item%s", (long long)o->min, o->min == 1 ? "" : "s");
	return HR_EINVAL;
}

/* Replaces the list at `dst` (the default, or an earlier value) only on success. */
static int
parse_strlist(const struct option *o, const char *text, void *dst, char *why, size_t len)
{
	struct hr_strlist l = { 0 }, *cur = dst;
	int rc = split_items(o, text, &l, why, len);

	if (rc == HR_OK && l.n < (size_t)o->min)
		rc = too_few_items(o, why, len);
	if (rc != HR_OK) {
		strlist_clear(&l);
		return rc;
	}
	strlist_clear(cur);
	*cur = l;
	return HR_OK;
}

/* O_REPEAT: a second or later line of the key adds to the list at `dst`. */
static int
append_strlist(const struct option *o, const char *text, void *dst, char *why, size_t len)
{
	return split_items(o, text, dst, why, len);
}

static void
join_items(const char *const *items, size_t n, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n && used < len; i++) {
		int w = snprintf(buf + used, len - used, "%s%s", i > 0 ? ", " : "", items[i]);

		if (w < 0)
			break;
		used += (size_t)w;
	}
}

static void
print_strlist(const struct option *o, const void *src, char *buf, size_t len)
{
	const struct hr_strlist *l = src;

	(void)o;
	join_items((const char *const *)l->v, l->n, buf, len);
}

static void
clear_strlist(const struct option *o, void *dst)
{
	(void)o;
	strlist_clear(dst);
}

static int
copy_strlist(const struct option *o, void *dst)
{
	struct hr_strlist *l = dst, from = *l;

	(void)o;
	l->v = NULL;
	l->n = 0;
	for (size_t i = 0; i < from.n; i++)
		if (strlist_push(l, from.v[i]) != HR_OK)
			return HR_ENOMEM;
	return HR_OK;
}

static void
durlist_clear(struct hr_durlist *l)
{
	free(l->ms);
	l->ms = NULL;
	l->n = 0;
}

static int
parse_duration_item(const char *text, int64_t *out, char *why, size_t len)
{
	enum num_status st = parse_scaled(text, duration_units, false, true, out);
	char hi[32];

	if (st == NUM_SYNTAX) {
		snprintf(why, len, "\"%.64s\" is not a duration (e.g. 30s, 250ms)", text);
		return HR_EINVAL;
	}
	if (st == NUM_RANGE || *out > DURLIST_MAX_MS) {
		num_duration(DURLIST_MAX_MS, hi, sizeof(hi));
		snprintf(why, len, "%.64s is out of range (0s..%s)", text, hi);
		return HR_EINVAL;
	}
	return HR_OK;
}

static int
parse_durlist(const struct option *o, const char *text, void *dst, char *why, size_t len)
{
	struct hr_strlist items = { 0 };
	struct hr_durlist l = { 0 }, *cur = dst;
	int rc = split_items(o, text, &items, why, len);

	if (rc == HR_OK && items.n < (size_t)o->min)
		rc = too_few_items(o, why, len);
	if (rc == HR_OK && items.n > 0 && (l.ms = calloc(items.n, sizeof(*l.ms))) == NULL)
		rc = no_memory(why, len);
	for (size_t i = 0; i < items.n && rc == HR_OK; i++)
		rc = parse_duration_item(items.v[i], &l.ms[i], why, len);
	l.n = items.n;
	strlist_clear(&items);
	if (rc != HR_OK) {
		durlist_clear(&l);
		return rc;
	}
	durlist_clear(cur);
	*cur = l;
	return HR_OK;
}

static void
print_durlist(const struct option *o, const void *src, char *buf, size_t len)
{
	const struct hr_durlist *l = src;
	size_t used = 0;

	(void)o;
	buf[0] = '\0';
	for (size_t i = 0; i < l->n && used < len; i++) {
		char one[32];
		int w;

		num_duration(l->ms[i], one, sizeof(one));
		if ((w = snprintf(buf + used, len - used, "%s%s", i > 0 ? ", " : "", one)) < 0)
			break;
		used += (size_t)w;
	}
}

static void
clear_durlist(const struct option *o, void *dst)
{
	(void)o;
	durlist_clear(dst);
}

static int
copy_durlist(const struct option *o, void *dst)
{
	struct hr_durlist *l = dst, from = *l;

	(void)o;
	l->ms = NULL;
	l->n = 0;
	if (from.n == 0)
		return HR_OK;
	if ((l->ms = malloc(from.n * sizeof(*l->ms))) == NULL)
		return HR_ENOMEM;
	memcpy(l->ms, from.ms, from.n * sizeof(*l->ms));
	l->n = from.n;
	return HR_OK;
}

/* Checks: the text of one value or list item. */

/* RFC 9110 token characters: what a header name is made of. */
static bool
is_token(const char *s, size_t n)
{
	static const char tchar[] = "!#$%&'*+-.^_`|~0123456789"
	                            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

	for (size_t i = 0; i < n; i++)
		if (s[i] == '\0' || strchr(tchar, s[i]) == NULL)
			return false;
	return n > 0;
}

static int
check_token(const char *text, char *why, size_t len)
{
	if (is_token(text, strlen(text)))
		return HR_OK;
	snprintf(
	    why, len, "\"%.64s\" is not a header name (A-Z a-z 0-9 and !#$%%&'*+-.^_`|~)", text);
	return HR_EINVAL;
}

/* "Name: value"; an empty value would make libcurl drop the header instead of sending it. */
static int
check_header_line(const char *text, char *why, size_t len)
{
	const char *colon = strchr(text, ':');

	if (colon == NULL || !is_token(text, (size_t)(colon - text))) {
		snprintf(why, len, "\"%.64s\" is not Name: value (a header name, a colon, a value)",
		    text);
		return HR_EINVAL;
	}
	if (colon[1 + strspn(colon + 1, " \t")] == '\0') {
		snprintf(why, len, "\"%.64s\" has no value after the colon", text);
		return HR_EINVAL;
	}
	return HR_OK;
}

static int
check_name(const char *text, char *why, size_t len)
{
	if (valid_name(text))
		return HR_OK;
	snprintf(why, len, "\"%.64s\" is not a section name (1 to %d of A-Z a-z 0-9 _ . -)", text,
	    HR_NAME_MAX - 1);
	return HR_EINVAL;
}

static int
check_glob(const char *text, char *why, size_t len)
{
	size_t n =
	    strspn(text, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-*?");

	if (text[n] == '\0')
		return HR_OK;
	snprintf(why, len, "\"%.64s\" is not a kind glob (A-Z a-z 0-9 _ . - and the wildcards * ?)",
	    text);
	return HR_EINVAL;
}

static int
check_cidr(const char *text, char *why, size_t len)
{
	struct hr_cidr c;

	if (hr_cidr_parse(text, &c) == HR_OK)
		return HR_OK;
	snprintf(
	    why, len, "\"%.64s\" is not an address or CIDR (e.g. 10.0.0.0/8, 2001:db8::/32)", text);
	return HR_EINVAL;
}

static int
check_dedup(const char *text, char *why, size_t len)
{
	if (strcmp(text, "auto") == 0 || strcmp(text, "body") == 0 || strcmp(text, "off") == 0 ||
	    (strncmp(text, "header:", 7) == 0 && is_token(text + 7, strlen(text + 7))))
		return HR_OK;
	snprintf(why, len, "\"%.64s\" is not auto, body, off or header:NAME", text);
	return HR_EINVAL;
}

/* [api] allowed_hosts: what a Host header can hold, as the API compares it. */
static int
check_host_name(const char *text, char *why, size_t len)
{
	struct hr_authority a;

	if (hr_netaddr_authority(text, strlen(text), &a))
		return HR_OK;
	snprintf(why, len, "\"%.64s\" is not a host name, name:port, IP address or [IPv6]", text);
	return HR_EINVAL;
}

/*
 * Does `text` spell its authority out: "scheme://" and a host right after it (or
 * after userinfo)? libcurl reads "http:///x" and "http:/x" as host "x", which is
 * never what a file with a missing host meant.
 */
static bool
has_authority(const char *text, const char *scheme)
{
	const char *a = text + strlen(scheme), *host;

	if (strncmp(a, "://", 3) != 0)
		return false;
	a += 3;
	host = a + strcspn(a, "@/?#");
	host = *host == '@' ? host + 1 : a;
	return *host != '\0' && strchr("/?#:", *host) == NULL;
}

/*
 * libcurl's own parser: what it accepts here is what the delivery worker can
 * fetch. The URL itself is not repeated in the reason: it may hold credentials.
 */
static int
check_url(const char *text, char *why, size_t len)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL;
	int rc = HR_EINVAL;

	if (u == NULL)
		return no_memory(why, len);
	if (curl_url_set(u, CURLUPART_URL, text, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
	    (strcasecmp(scheme, "http") == 0 || strcasecmp(scheme, "https") == 0) &&
	    has_authority(text, scheme) && curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
	    host[0] != '\0')
		rc = HR_OK;
	else
		snprintf(why, len, "not an http:// or https:// URL with a host (http://HOST/...)");
	curl_free(host);
	curl_free(scheme);
	curl_url_cleanup(u);
	return rc;
}

static const struct type_ops types[T_COUNT] = {
	[T_STR] = { "string", parse_str, print_str, NULL, NULL, NULL },
	[T_PATH] = { "path", parse_str, print_str, NULL, NULL, NULL },
	[T_INT] = { "integer", parse_int_opt, print_num, num_int, NULL, NULL },
	[T_SIZE] = { "size", parse_size_opt, print_num, num_size, NULL, NULL },
	[T_DURATION] = { "duration", parse_duration_opt, print_num, num_duration, NULL, NULL },
	[T_BOOL] = { "boolean", parse_bool, print_bool, NULL, NULL, NULL },
	[T_ENUM] = { "choice", parse_enum, print_enum, NULL, NULL, NULL },
	[T_ADDR] = { "address", parse_addr, print_str, NULL, NULL, NULL },
	[T_FLOAT] = { "number", parse_float_opt, print_float, num_int, NULL, NULL },
	[T_STRLIST] = { "list", parse_strlist, print_strlist, NULL, clear_strlist, copy_strlist },
	[T_DURLIST] = { "durations", parse_durlist, print_durlist, NULL, clear_durlist,
	    copy_durlist },
};

/* The table. */

static const struct option *
find_option(int sec, const char *key)
{
	for (size_t i = 0; i < NOPTIONS; i++)
		if (options[i].section == sec && strcmp(options[i].key, key) == 0)
			return &options[i];
	return NULL;
}

static int
find_section(const char *name)
{
	for (size_t i = 0; i < HR_ARRAY_LEN(sections); i++)
		if (strcmp(sections[i].name, name) == 0)
			return (int)i;
	return -1;
}

static int
apply_defaults(int sec, void *base)
{
	char why[WHY_MAX];

	for (size_t i = 0; i < NOPTIONS; i++) {
		const struct option *o = &options[i];

		if (o->section == sec && !(o->flags & O_REQUIRED) &&
		    types[o->type].parse(o, o->def, (char *)base + o->off, why, sizeof(why)) !=
		        HR_OK)
			return HR_EINVAL;
	}
	return HR_OK;
}

/* Named section instances, reached through the offsets in struct section. */

static void *
instances(const struct hr_cfg *cfg, const struct section *s, size_t *count)
{
	void *arr;

	memcpy(&arr, (const char *)cfg + s->array_off, sizeof(arr));
	memcpy(count, (const char *)cfg + s->count_off, sizeof(*count));
	return arr;
}

static const char *
instance_name(const struct section *s, const void *arr, size_t i)
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

static void *
append_instance(struct hr_cfg *cfg, const struct section *s)
{
	size_t n;
	char *arr = instances(cfg, s, &n), *grown = arr, *inst;

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
	for (size_t i = 0; i < HR_ARRAY_LEN(sections); i++) {
		if (sections[i].size == 0 && apply_defaults((int)i, cfg) != HR_OK) {
			hr_cfg_free(cfg);
			return NULL;
		}
	}
	return cfg;
}

static void
clear_options(int sec, void *base)
{
	for (size_t i = 0; i < NOPTIONS; i++)
		if (options[i].section == sec && types[options[i].type].clear != NULL)
			types[options[i].type].clear(&options[i], (char *)base + options[i].off);
}

void
hr_cfg_free(struct hr_cfg *cfg)
{
	if (cfg == NULL)
		return;
	for (size_t s = 0; s < HR_ARRAY_LEN(sections); s++) {
		size_t n;
		char *arr;

		if (sections[s].size == 0) {
			clear_options((int)s, cfg);
			continue;
		}
		arr = instances(cfg, &sections[s], &n);
		for (size_t i = 0; i < n; i++)
			clear_options((int)s, arr + i * sections[s].size);
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
	for (size_t i = 0; i < NOPTIONS; i++) {
		const struct option *o = &options[i];
		void *m = (char *)dst + o->off;

		if (o->section != SEC_DESTINATION || types[o->type].copy == NULL)
			continue;
		if (rc == HR_OK)
			rc = types[o->type].copy(o, m);
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

const struct hr_destination_cfg *
hr_cfg_destination(const struct hr_cfg *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->ndestinations; i++)
		if (strcmp(cfg->destinations[i].name, name) == 0)
			return &cfg->destinations[i];
	return NULL;
}

/* The parser: a line reader for inih that also handles section headers. */

/* Where one named section and its keys were, for the checks once the file is read. */
struct inst_lines {
	int sec;
	size_t idx;         /* the instance, in its section kind's array */
	int header;         /* line of its [kind NAME] */
	int seen[NOPTIONS]; /* line that set each option, 0 if none */
};

struct parser {
	struct hr_cfg *cfg;
	const char *name; /* file name in errors */
	FILE *fp;         /* or: */
	const char *text;
	int lineno;
	int sec;                  /* current section, -1 before the first header */
	void *base;               /* the struct its options point into */
	int *seen;                /* the current section's: plain_seen or its inst_lines */
	int plain_seen[NOPTIONS]; /* plain sections, which may be repeated */
	struct inst_lines *insts; /* one per named section, in file order */
	size_t ninsts;
	int rc;
	struct hr_error *err;
	int nul_column; /* the line read last holds a NUL byte here (1-based); 0: none */
};

static void
where(const struct parser *p, char *buf, size_t len)
{
	char line[16];
	size_t nlen = strlen(p->name), room;

	if (p->lineno == 0) { /* before the first line: the file itself */
		snprintf(buf, len, "%s", p->name);
		return;
	}
	snprintf(line, sizeof(line), ":%d", p->lineno);
	room = len - 1 - strlen(line);
	if (nlen <= room)
		snprintf(buf, len, "%s%s", p->name, line);
	else /* keep the end of a long path: it names the file */
		snprintf(buf, len, "...%s%s", p->name + nlen - (room - 3), line);
}

static int fail(struct parser *p, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail_at(struct parser *p, int line, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void vfail(struct parser *p, int code, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static void
vfail(struct parser *p, int code, const char *fmt, va_list ap)
{
	char field[sizeof(p->err->field)], msg[sizeof(p->err->msg)];

	if (p->rc != HR_OK)
		return;
	p->rc = code;
	where(p, field, sizeof(field));
	vsnprintf(msg, sizeof(msg), fmt, ap);
	hr_error_set(p->err, code, field, "%s", msg);
}

/* Record the first error at the current line; returns 0 for inih's handler. */
static int
fail(struct parser *p, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(p, code, fmt, ap);
	va_end(ap);
	return 0;
}

/* The same at an earlier `line`, for the checks once the file is read. */
static void
fail_at(struct parser *p, int line, int code, const char *fmt, ...)
{
	va_list ap;

	p->lineno = line;
	va_start(ap, fmt);
	vfail(p, code, fmt, ap);
	va_end(ap);
}

/* Start the line record of a new named section instance; its seen[] becomes current. */
static int
push_inst_lines(struct parser *p, int sec, size_t idx)
{
	struct inst_lines *grown = realloc(p->insts, (p->ninsts + 1) * sizeof(*grown));

	if (grown == NULL)
		return HR_ENOMEM;
	p->insts = grown;
	memset(&grown[p->ninsts], 0, sizeof(grown[p->ninsts]));
	grown[p->ninsts].sec = sec;
	grown[p->ninsts].idx = idx;
	grown[p->ninsts].header = p->lineno;
	p->seen = grown[p->ninsts].seen;
	p->ninsts++;
	return HR_OK;
}

static void
begin_named(struct parser *p, int sec, const char *name)
{
	const struct section *s = &sections[sec];
	size_t n;
	const void *arr = instances(p->cfg, s, &n);
	char *inst;

	if (!valid_name(name)) {
		fail(p, HR_EINVAL,
		    "[%s %.64s]: the name must be 1 to %d characters of A-Z a-z 0-9 _ . -", s->name,
		    name, HR_NAME_MAX - 1);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (strcmp(instance_name(s, arr, i), name) == 0) {
			fail(p, HR_EINVAL, "duplicate section [%s %s]", s->name, name);
			return;
		}
	}
	if (n >= NAMED_MAX) {
		fail(p, HR_EINVAL, "more than %d [%s] sections", NAMED_MAX, s->name);
		return;
	}
	if (push_inst_lines(p, sec, n) != HR_OK || (inst = append_instance(p->cfg, s)) == NULL) {
		fail(p, HR_ENOMEM, "out of memory");
		return;
	}
	memcpy(inst + s->name_off, name, strlen(name) + 1);
	if (apply_defaults(sec, inst) != HR_OK) {
		fail(p, HR_EINVAL, "[%s]: bad default in the option table", s->name);
		return;
	}
	p->base = inst;
}

/* "[kind]" or "[kind NAME]", already stripped of its brackets. */
static void
begin_section(struct parser *p, char *head)
{
	char *name = head + strcspn(head, " \t");
	int sec;

	if (*name != '\0')
		*name++ = '\0';
	name += strspn(name, " \t");
	if ((sec = find_section(head)) < 0) {
		fail(p, HR_EINVAL, "unknown section [%.64s]", head);
		return;
	}
	p->sec = sec;
	if (sections[sec].size == 0) {
		if (*name != '\0')
			fail(p, HR_EINVAL, "section [%s] takes no name", head);
		p->base = p->cfg;
		p->seen = p->plain_seen;
		return;
	}
	if (*name == '\0') {
		fail(p, HR_EINVAL, "section [%s] needs a name: [%s NAME]", head, head);
		return;
	}
	begin_named(p, sec, name);
}

/* A "[...]" line; anything after the "]" but a comment is an error. */
static void
section_line(struct parser *p, char *line)
{
	char *close = strchr(line, ']'), *rest;

	if (close == NULL) {
		fail(p, HR_EINVAL, "malformed section header: no closing \"]\"");
		return;
	}
	*close = '\0';
	rest = strip(close + 1);
	if (*rest != '\0' && *rest != '#' && *rest != ';') {
		fail(p, HR_EINVAL, "unexpected text after the section header");
		return;
	}
	begin_section(p, strip(line + 1));
}

/* One line of the file, like fgets() but noting a NUL byte, which fgets() hides. */
static bool
next_file_line(struct parser *p, char *buf, int size, bool *complete)
{
	int c = EOF, n = 0;

	p->nul_column = 0;
	while (n < size - 1 && (c = getc(p->fp)) != EOF) {
		if (c == '\0' && p->nul_column == 0)
			p->nul_column = n + 1;
		buf[n++] = (char)c;
		if (c == '\n')
			break;
	}
	buf[n] = '\0';
	if (ferror(p->fp)) {
		fail(p, HR_EINVAL, "read error: %s", strerror(errno));
		return false;
	}
	*complete = c == '\n' || (c == EOF && feof(p->fp));
	return n > 0;
}

/* A line of the file or the string; false at the end or on a read error. */
static bool
next_line(struct parser *p, char *buf, int size, bool *complete)
{
	size_t n;

	if (p->fp != NULL)
		return next_file_line(p, buf, size, complete);
	if (*p->text == '\0')
		return false;
	n = strcspn(p->text, "\n");
	*complete = n < (size_t)size - 1;
	if (!*complete)
		n = (size_t)size - 1;
	else if (p->text[n] == '\n')
		n++;
	memcpy(buf, p->text, n);
	buf[n] = '\0';
	p->text += n;
	return true;
}

static char *
read_line(char *buf, int size, void *arg)
{
	struct parser *p = arg;
	bool complete;
	char *s;

	if (p->rc != HR_OK || !next_line(p, buf, size, &complete))
		return NULL;
	p->lineno++;
	if (p->nul_column > 0) {
		fail(p, HR_EINVAL, "a NUL byte at column %d: the file is not text", p->nul_column);
		return NULL;
	}
	if (!complete) {
		fail(p, HR_EINVAL, "line longer than %d bytes", size - 2);
		return NULL;
	}
	if (p->lineno == 1 && strncmp(buf, "\xEF\xBB\xBF", 3) == 0)
		memmove(buf, buf + 3, strlen(buf + 3) + 1);
	s = buf + strspn(buf, " \t");
	if (*s == '[') {
		section_line(p, s);
		buf[0] = '\0'; /* inih never sees sections: ours are not truncated */
	}
	return p->rc == HR_OK ? buf : NULL;
}

static int
on_key(void *arg, const char *section, const char *key, const char *value)
{
	struct parser *p = arg;
	const struct option *o;
	char why[WHY_MAX];
	size_t i;
	parse_fn parse;
	int rc;

	(void)section; /* inih never sees our headers; p->sec is the section */
	if (p->sec < 0)
		return fail(p, HR_EINVAL, "key %s is outside any section", key);
	if ((o = find_option(p->sec, key)) == NULL)
		return fail(
		    p, HR_EINVAL, "unknown key \"%.64s\" in [%s]", key, sections[p->sec].name);
	i = (size_t)(o - options);
	if (p->seen[i] != 0 && !(o->flags & O_REPEAT))
		return fail(
		    p, HR_EINVAL, "duplicate key %s (first set on line %d)", key, p->seen[i]);
	/* The first line of a repeatable key replaces the default, later ones add to it. */
	parse = p->seen[i] != 0 ? append_strlist : types[o->type].parse;
	if ((rc = parse(o, value, (char *)p->base + o->off, why, sizeof(why))) != HR_OK)
		return fail(p, rc, "%s: %s", key, why);
	if (p->seen[i] == 0)
		p->seen[i] = p->lineno;
	return 1;
}

/* Checks once the whole file is read: required keys, then each section's finish hook. */

static int
seen_line(const struct inst_lines *il, const char *key)
{
	const struct option *o = find_option(il->sec, key);

	return o != NULL && il->seen[o - options] != 0 ? il->seen[o - options] : il->header;
}

static void
finish(struct parser *p)
{
	for (size_t r = 0; r < p->ninsts && p->rc == HR_OK; r++) {
		const struct inst_lines *il = &p->insts[r];
		const struct section *s = &sections[il->sec];
		size_t n;
		const char *inst = (const char *)instances(p->cfg, s, &n) + il->idx * s->size;

		for (size_t i = 0; i < NOPTIONS; i++) {
			const struct option *o = &options[i];

			if (o->section == il->sec && (o->flags & O_REQUIRED) && il->seen[i] == 0)
				fail_at(p, il->header, HR_EINVAL, "[%s %s]: %s is required",
				    s->name, inst + s->name_off, o->key);
		}
		if (s->finish != NULL)
			s->finish(p, il, inst);
	}
}

/*
 * Warnings: settings that load but are probably not what was meant. They go to
 * the log as FILE:LINE: text (so `hookrelay -t` shows them), once the file has
 * loaded without an error.
 */

static void warn_at(struct parser *p, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
warn_at(struct parser *p, int line, const char *fmt, ...)
{
	char place[sizeof(p->err->field)], msg[320];
	va_list ap;

	p->lineno = line;
	where(p, place, sizeof(place));
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_warnx("%s: %s", place, msg);
}

/* The secret files of one section (instance) that every user of the machine may read. */
static void
warn_readable_secrets(
    struct parser *p, int sec, const void *base, const int *seen, const char *name)
{
	for (size_t i = 0; i < NOPTIONS; i++) {
		const struct option *o = &options[i];
		const char *path = (const char *)base + o->off;
		struct stat st;

		if (o->section != sec || !(o->flags & O_SECRET) || seen[i] == 0 ||
		    path[0] == '\0' || stat(path, &st) != 0 || !(st.st_mode & (S_IROTH | S_IWOTH)))
			continue;
		warn_at(p, seen[i],
		    "[%s%s%s] %s %s can be read by every user (mode %04o): make it readable "
		    "by hookrelay only (chmod o-rwx)",
		    sections[sec].name, name[0] ? " " : "", name, o->key, path,
		    (unsigned)(st.st_mode & 07777));
	}
}

/* Narrower than this, a block can still be a provider's proxies (a CDN's /13, /29). */
#define PROXY_V4_BITS_MIN 8
#define PROXY_V6_BITS_MIN 16

/* A trusted proxy block so wide that clients in it choose their own address. */
static void
warn_wide_proxies(struct parser *p, const struct inst_lines *il, const struct hr_source_cfg *src)
{
	for (size_t i = 0; i < src->trusted_proxies.n; i++) {
		struct hr_cidr c;
		unsigned min = PROXY_V6_BITS_MIN;

		if (hr_cidr_parse(src->trusted_proxies.v[i], &c) != HR_OK)
			continue;
		if (c.family == AF_INET)
			min = PROXY_V4_BITS_MIN;
		if (c.bits >= min)
			continue;
		warn_at(p, seen_line(il, "trusted_proxies"),
		    "[source %s] trusted_proxies %s is wider than /%u: any client in it writes "
		    "the X-Forwarded-For address that allow_cidrs and the log go by; list only "
		    "your proxies",
		    src->name, src->trusted_proxies.v[i], min);
	}
}

/* Daily signs every webhook; a Daily source that does not check it takes anyone's events. */
static void
warn_unsigned_daily(struct parser *p, const struct inst_lines *il, const struct hr_source_cfg *src)
{
	if (src->provider == HR_PROVIDER_DAILY && src->auth != HR_AUTH_DAILY)
		warn_at(p, seen_line(il, "auth"),
		    "[source %s] provider = daily without auth = daily: Daily signs every webhook "
		    "(X-Webhook-Signature), and this source does not check it",
		    src->name);
}

static void
lint(struct parser *p)
{
	for (size_t s = 0; s < HR_ARRAY_LEN(sections); s++)
		if (sections[s].size == 0)
			warn_readable_secrets(p, (int)s, p->cfg, p->plain_seen, "");
	for (size_t r = 0; r < p->ninsts; r++) {
		const struct inst_lines *il = &p->insts[r];
		const struct section *s = &sections[il->sec];
		size_t n;
		const char *inst = (const char *)instances(p->cfg, s, &n) + il->idx * s->size;

		warn_readable_secrets(p, il->sec, inst, il->seen, inst + s->name_off);
		if (il->sec == SEC_SOURCE) {
			warn_wide_proxies(p, il, (const struct hr_source_cfg *)inst);
			warn_unsigned_daily(p, il, (const struct hr_source_cfg *)inst);
		}
	}
}

static bool
was_set(const struct inst_lines *il, const char *key)
{
	const struct option *o = find_option(il->sec, key);

	return o != NULL && il->seen[o - options] != 0;
}

static void
finish_source(struct parser *p, const struct inst_lines *il, const void *inst)
{
	struct hr_source_cfg *src = (struct hr_source_cfg *)(uintptr_t)inst;

	/* Daily signs every webhook: a Daily source checks it unless told otherwise. */
	if (src->provider == HR_PROVIDER_DAILY && !was_set(il, "auth"))
		src->auth = HR_AUTH_DAILY;

	if (src->hmac_signed == HR_SIGNED_TIMESTAMP_BODY && src->hmac_timestamp_header[0] == '\0')
		fail_at(p, seen_line(il, "hmac_signed"), HR_EINVAL,
		    "[source %s]: hmac_signed = timestamp.body needs hmac_timestamp_header",
		    src->name);
}

static void
finish_destination(struct parser *p, const struct inst_lines *il, const void *inst)
{
	const struct hr_destination_cfg *dst = inst;

	for (size_t i = 0; i < dst->sources.n; i++)
		if (hr_cfg_source(p->cfg, dst->sources.v[i]) == NULL)
			fail_at(p, seen_line(il, "sources"), HR_EINVAL,
			    "sources: there is no [source %.64s]", dst->sources.v[i]);
}

/*
 * inih's settings are process globals: config loading is a start-up,
 * single-threaded affair.
 */
static void
setup_inih(void)
{
	static char inline_comments[] = ";#";

	ini_use_stack = false;
	ini_allow_realloc = false;
	ini_initial_alloc = LINE_MAX_BYTES;
	ini_max_line = LINE_MAX_BYTES;
	ini_allow_multiline = false;
	ini_allow_bom = true;
	ini_allow_no_value = false;
	ini_allow_inline_comments = true;
	ini_inline_comment_prefixes = inline_comments;
	ini_stop_on_first_error = true;
}

static int
parse(struct parser *p, struct hr_cfg **out)
{
	int line;

	p->sec = -1;
	p->rc = HR_OK;
	if ((p->cfg = hr_cfg_new_defaults()) == NULL)
		return hr_error_set(p->err, HR_ENOMEM, p->name, "out of memory");
	snprintf(p->cfg->file, sizeof(p->cfg->file), "%s", p->name);
	setup_inih();
	line = ini_parse_stream(read_line, p, on_key, p);
	if (p->rc == HR_OK && line == -2)
		hr_error_set(p->err, p->rc = HR_ENOMEM, p->name, "out of memory");
	else if (p->rc == HR_OK && line != 0) {
		p->lineno = line;
		fail(p, HR_EINVAL,
		    "malformed line: expected \"key = value\", \"[section]\" or a comment");
	}
	if (p->rc == HR_OK)
		finish(p);
	if (p->rc == HR_OK)
		lint(p);
	free(p->insts);
	if (p->rc != HR_OK) {
		hr_cfg_free(p->cfg);
		return p->rc;
	}
	*out = p->cfg;
	return HR_OK;
}

int
hr_cfg_load_string(const char *text, const char *name, struct hr_cfg **out, struct hr_error *err)
{
	struct parser p = { .name = name, .text = text, .err = err };

	return parse(&p, out);
}

int
hr_cfg_load(const char *path, struct hr_cfg **out, struct hr_error *err)
{
	struct parser p = { .name = path, .err = err };
	int rc;

	if ((p.fp = fopen(path, "r")) == NULL)
		return hr_error_set(err, HR_EINVAL, path, "cannot open: %s", strerror(errno));
	rc = parse(&p, out);
	fclose(p.fp);
	return rc;
}

/* Rendering the table: --help, the docs and the effective configuration. */

static void
default_text(const struct option *o, char *buf, size_t len)
{
	if (o->flags & O_REQUIRED)
		snprintf(buf, len, "(required)");
	else
		snprintf(buf, len, "%s", o->def[0] != '\0' ? o->def : "(empty)");
}

static const char *
type_name(const struct option *o)
{
	return (o->flags & O_REPEAT) ? "repeatable" : types[o->type].name;
}

static void
list_range_text(const struct option *o, char *buf, size_t len)
{
	const char *what = (o->flags & O_REPEAT) ? "lines" : "items";
	char hi[32];
	int n;

	if (o->min == 0)
		n = snprintf(buf, len, "at most %lld %s", (long long)o->max, what);
	else
		n = snprintf(buf, len, "%lld..%lld %s", (long long)o->min, (long long)o->max, what);
	if (o->type == T_DURLIST && n > 0 && (size_t)n < len) {
		num_duration(DURLIST_MAX_MS, hi, sizeof(hi));
		snprintf(buf + n, len - (size_t)n, ", each 0s..%s", hi);
	}
}

static void
range_text(const struct option *o, const char *quote, char *buf, size_t len)
{
	char lo[32], hi[32];

	buf[0] = '\0';
	if (o->choices != NULL) {
		join_choices(o->choices, quote, buf, len);
	} else if (types[o->type].num != NULL) {
		types[o->type].num(o->min, lo, sizeof(lo));
		types[o->type].num(o->max, hi, sizeof(hi));
		snprintf(buf, len, "%s..%s", lo, hi);
	} else if (o->type == T_STRLIST || o->type == T_DURLIST) {
		list_range_text(o, buf, len);
	} else if ((o->type == T_STR || o->type == T_PATH) && o->min > 0 &&
	    !(o->flags & O_REQUIRED)) {
		snprintf(buf, len, "not empty");
	}
}

static void
section_title(const struct section *s, char *buf, size_t len)
{
	snprintf(buf, len, s->size != 0 ? "[%s NAME]" : "[%s]", s->name);
}

void
hr_cfg_print_help(FILE *fp)
{
	int keyw = 0;

	for (size_t i = 0; i < NOPTIONS; i++) {
		int n = (int)strlen(options[i].key);

		keyw = n > keyw ? n : keyw;
	}
	fprintf(fp, "Configuration file (INI; see docs/configuration.md):\n");
	for (size_t s = 0; s < HR_ARRAY_LEN(sections); s++) {
		char title[64];

		section_title(&sections[s], title, sizeof(title));
		fprintf(fp, "\n%s\n", title);
		for (size_t i = 0; i < NOPTIONS; i++) {
			const struct option *o = &options[i];
			char def[64], range[128];

			if (o->section != (int)s)
				continue;
			default_text(o, def, sizeof(def));
			range_text(o, "", range, sizeof(range));
			fprintf(fp, "  %-*s  %-10s  %-16s  %s%s%s%s\n", keyw, o->key, type_name(o),
			    def, o->help, range[0] != '\0' ? " [" : "", range,
			    range[0] != '\0' ? "]" : "");
		}
	}
}

/* A markdown table cell: '|' would end it. */
static void
md_cell(FILE *fp, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '|')
			fputc('\\', fp);
		fputc(*s, fp);
	}
}

static const char md_intro[] =
    "# Configuration reference\n"
    "\n"
    "<!-- Generated by `hookrelay --config-reference` from the option table in src/cfg.c; "
    "do not edit. -->\n"
    "\n"
    "hookrelay reads one INI file, named with `-c FILE`. A key that is not set keeps the "
    "default listed below; the shipped `config/hookrelay.conf` lists every key with its "
    "default.\n"
    "\n"
    "```ini\n"
    "[server]\n"
    "listen = 127.0.0.1:8080\n"
    "max_body = 8MiB      # a comment\n"
    "\n"
    "[source default]\n"
    "provider = auto\n"
    "```\n"
    "\n"
    "## File format\n"
    "\n"
    "- `[section]` starts a section; `key = value` sets an option in it (`key: value` works "
    "too). Spaces around keys and values are ignored; values are not quoted.\n"
    "- A line starting with `#` or `;` is a comment, and so is the rest of a line from a `#` "
    "or `;` that follows a space or tab (so a value cannot contain ` #` or ` ;`).\n"
    "- Named sections, like `[source NAME]`, can be repeated with different names. A NAME is "
    "1 to 63 characters of `A-Z a-z 0-9 _ . -`; two sections of the same kind must not share "
    "one. A named section without keys exists with its defaults.\n"
    "- Sizes are a whole number of bytes, optionally followed by a unit: `k`, `KB` or `KiB` "
    "(1024 bytes), `M`, `MB` or `MiB` (1024 KiB), `G`, `GB` or `GiB` (1024 MiB). Units are "
    "case-insensitive, and KB means 1024 bytes just like KiB. Examples: `1024`, `512k`, "
    "`8MiB`, `1G`.\n"
    "- Durations are a number followed by `ms`, `s`, `m`, `h` or `d`; a bare number means "
    "seconds. Fractions are allowed down to a millisecond: `250ms`, `0.2s` (200 ms), `1.5m` "
    "(90 s), `2h`, `30d`.\n"
    "- Booleans are `true`/`false`, `yes`/`no`, `on`/`off` or `1`/`0`.\n"
    "- Numbers (type number) are a whole number or a decimal fraction of up to 6 digits: `10`, "
    "`0.5`. No sign, no exponent.\n"
    "- Lists are comma-separated: `allow_cidrs = 10.0.0.0/8, 2001:db8::/32`. Blanks around "
    "items are ignored; an empty item (`a,,b`, a trailing comma) is an error; an empty value "
    "is an empty list. A list of durations reads the same: `retry_schedule = 5s, 5m, 30m`.\n"
    "- A repeatable key may be set on several lines of one section, each line adding one item "
    "(commas included): `header = X-A: 1` then `header = X-B: 2`.\n"
    "- Relative paths are relative to the working directory of hookrelay.\n"
    "- Negative numbers, trailing text and values outside the listed range are errors.\n"
    "\n"
    "## Errors\n"
    "\n"
    "An unknown section or key, a key set twice in one section, a bad value or a malformed "
    "line stops hookrelay before it serves anything: it prints `FILE:LINE: reason` and exits "
    "with status 78 (EX_CONFIG). `hookrelay -t -c FILE` checks a file and exits.\n"
    "\n"
    "Some checks run once the whole file is read, so sections may come in any order: a "
    "required key that is missing (reported at the line of its section), a [destination] "
    "`sources` entry that names no [source] of the file (at the line of `sources`), and "
    "`hmac_signed = timestamp.body` without `hmac_timestamp_header` (at the line of "
    "`hmac_signed`). A byte 0 (NUL) anywhere is an error: the file is not text. A file "
    "without any [source] is refused too (a half-written file must not remove every "
    "endpoint).\n"
    "\n"
    "## Warnings\n"
    "\n"
    "Some settings load but are probably not what was meant. hookrelay logs them as "
    "`FILE:LINE: text` at start, on a reload and with `-t`, and goes on: a `secret_file` or "
    "`token_file` that every user of the machine may read, and a `trusted_proxies` block "
    "wider than /8 (IPv4) or /16 (IPv6), whose clients could write any X-Forwarded-For "
    "address.\n";

void
hr_cfg_print_markdown(FILE *fp)
{
	fputs(md_intro, fp);
	for (size_t s = 0; s < HR_ARRAY_LEN(sections); s++) {
		char title[64];

		section_title(&sections[s], title, sizeof(title));
		fprintf(fp, "\n## %s\n\n%s\n\n", title, sections[s].help);
		fprintf(fp, "| Key | Type | Default | Range / choices | Description |\n");
		fprintf(fp, "|-----|------|---------|-----------------|-------------|\n");
		for (size_t i = 0; i < NOPTIONS; i++) {
			const struct option *o = &options[i];
			char range[160];

			if (o->section != (int)s)
				continue;
			range_text(o, "`", range, sizeof(range));
			fprintf(fp, "| `%s` | %s | ", o->key, type_name(o));
			if (o->flags & O_REQUIRED) {
				fputs("(required)", fp);
			} else if (o->def[0] != '\0') {
				fputc('`', fp);
				md_cell(fp, o->def);
				fputc('`', fp);
			} else {
				fputs("(empty)", fp);
			}
			fputs(" | ", fp);
			md_cell(fp, range);
			fputs(" | ", fp);
			md_cell(fp, o->help);
			fputs(" |\n", fp);
		}
	}
}

/* ---- the KEYS section of hookrelay.conf(5), in scdoc ---- */

#define MAN_WIDTH 92 /* columns of text after the tab indent */

/* Copy `s` to `out` for scdoc: `*` and `_` are markup there, backquotes are Markdown's. */
static void
man_escape(const char *s, char *out, size_t len)
{
	size_t n = 0;

	for (; *s != '\0' && n + 3 < len; s++) {
		if (*s == '`')
			continue;
		if (*s == '*' || *s == '_' || *s == '\\')
			out[n++] = '\\';
		out[n++] = *s;
	}
	out[n] = '\0';
}

/* Word-wrap `text` at MAN_WIDTH, each line starting with `indent`. */
static void
man_wrap(FILE *fp, const char *indent, const char *text)
{
	const char *p = text;

	while (*p != '\0') {
		size_t len = strlen(p), cut = len;

		if (len > MAN_WIDTH) {
			cut = MAN_WIDTH;
			while (cut > 0 && p[cut] != ' ')
				cut--;
			if (cut == 0)
				cut = strcspn(p, " ");
		}
		fprintf(fp, "%s%.*s\n", indent, (int)cut, p);
		p += cut;
		while (*p == ' ')
			p++;
	}
}

static void
man_option(FILE *fp, const struct option *o)
{
	char help[2048], range[256], def[256], text[3072];
	char raw_range[160];

	man_escape(o->help, help, sizeof(help));
	range_text(o, "", raw_range, sizeof(raw_range));
	man_escape(raw_range, range, sizeof(range));
	man_escape(o->def, def, sizeof(def));
	snprintf(text, sizeof(text), "%s.%s%s%s Default: %s%s%s.", help, range[0] ? " Range: " : "",
	    range, range[0] ? "." : "",
	    (o->flags & O_REQUIRED) ? "(required"
	        : def[0]            ? "*"
	                            : "(empty",
	    (o->flags & O_REQUIRED) ? "" : def, (o->flags & O_REQUIRED) || !def[0] ? ")" : "*");
	fprintf(fp, "*%s* = _%s_\n", o->key, type_name(o));
	man_wrap(fp, "\t", text);
	fputc('\n', fp);
}

void
hr_cfg_print_man_keys(FILE *fp)
{
	for (size_t s = 0; s < HR_ARRAY_LEN(sections); s++) {
		char title[64], help[1024];

		section_title(&sections[s], title, sizeof(title));
		man_escape(sections[s].help, help, sizeof(help));
		fprintf(fp, "## %s\n\n", title);
		man_wrap(fp, "", help);
		fputc('\n', fp);
		for (size_t i = 0; i < NOPTIONS; i++)
			if (options[i].section == (int)s)
				man_option(fp, &options[i]);
	}
}

/*
 * "key = value", written so that it reads back as `value` (a list's items
 * have no commas and no blanks around them):
 *  - a value starting with # or ; goes right after the "=": after a blank it
 *    would be a comment;
 *  - a line too long for the reader is written "key=a,b": no longer than the
 *    line the value was read from.
 */
static void
print_line(FILE *fp, const struct option *o, char *value)
{
	const char *eq = value[0] == '\0' || strchr("#;", value[0]) != NULL ? " =" : " = ";
	char *to = value;

	if (strlen(o->key) + strlen(eq) + strlen(value) > LINE_MAX_BYTES - 2) {
		eq = "=";
		for (const char *from = value; o->type == T_STRLIST && *from != '\0'; from++) {
			*to++ = *from;
			if (from[0] == ',' && from[1] == ' ')
				from++; /* ", " -> "," */
		}
		if (o->type == T_STRLIST)
			*to = '\0';
	}
	fprintf(fp, "%s%s%s\n", o->key, eq, value);
}

/* A repeatable key: one line per item, or one empty line so every key shows. */
static void
print_repeated(FILE *fp, const struct option *o, const struct hr_strlist *l)
{
	char value[LINE_MAX_BYTES];

	if (l->n == 0)
		fprintf(fp, "%s =\n", o->key);
	for (size_t i = 0; i < l->n; i++) {
		snprintf(value, sizeof(value), "%s", l->v[i]);
		print_line(fp, o, value);
	}
}

static void
print_options(FILE *fp, int sec, const void *base)
{
	for (size_t i = 0; i < NOPTIONS; i++) {
		const struct option *o = &options[i];
		const char *member = (const char *)base + o->off;
		char value[2 * LINE_MAX_BYTES]; /* a list with ", " may be longer than a line */

		if (o->section != sec)
			continue;
		if (o->flags & O_REPEAT) {
			print_repeated(fp, o, (const struct hr_strlist *)(const void *)member);
			continue;
		}
		types[o->type].print(o, member, value, sizeof(value));
		print_line(fp, o, value);
	}
}

void
hr_cfg_print(FILE *fp, const struct hr_cfg *cfg)
{
	for (size_t s = 0; s < HR_ARRAY_LEN(sections); s++) {
		const struct section *sec = &sections[s];
		size_t n;
		const char *arr;

		if (sec->size == 0) {
			fprintf(fp, "%s[%s]\n", s > 0 ? "\n" : "", sec->name);
			print_options(fp, (int)s, cfg);
			continue;
		}
		arr = instances(cfg, sec, &n);
		for (size_t i = 0; i < n; i++) {
			fprintf(fp, "\n[%s %s]\n", sec->name, instance_name(sec, arr, i));
			print_options(fp, (int)s, arr + i * sec->size);
		}
	}
}

#ifdef HR_TESTING
const char *
cfg_option_key(size_t i, const char **section)
{
	if (i >= NOPTIONS)
		return NULL;
	*section = sections[options[i].section].name;
	return options[i].key;
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
		return o->def[0] == '\0' && sections[o->section].size != 0;
	if (o->width > sizeof(scratch.c))
		return false;
	memset(&scratch, 0, sizeof(scratch));
	ok = types[o->type].parse(o, o->def, scratch.c, why, sizeof(why)) == HR_OK;
	if (ok && types[o->type].clear != NULL)
		types[o->type].clear(o, scratch.c);
	return ok;
}

/* Does the member's width fit the type? */
static bool
width_ok(const struct option *o)
{
	bool numeric = types[o->type].num != NULL;
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
	for (size_t i = 0; i < NOPTIONS; i++) {
		const struct option *o = &options[i];
		bool list = o->type == T_STRLIST || o->type == T_DURLIST;

		if (o->help == NULL || o->def == NULL || o->min > o->max || !width_ok(o) ||
		    !default_ok(o) || (o->type == T_ENUM) != (o->choices != NULL) ||
		    (list && o->min < 0) || ((o->flags & O_REPEAT) && o->type != T_STRLIST) ||
		    ((o->flags & O_SECRET) && o->type != T_PATH) ||
		    (o->check != NULL && o->type != T_STR && o->type != T_STRLIST) ||
		    find_option(o->section, o->key) != o)
			return (int)i + 1;
	}
	return 0;
}
#endif
