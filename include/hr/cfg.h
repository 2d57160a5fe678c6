/*
 * cfg.h - the configuration file (INI, libinih) as a struct hr_cfg.
 *
 * One option table (cfg_table.c) drives parsing, defaults, validation, `--help`
 * and docs/configuration.md, so they cannot drift apart.
 */
#ifndef HR_CFG_H
#define HR_CFG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h> /* ssize_t */

#include "hr/common.h"
#include "hr/model.h"

#define HR_EX_CONFIG 78 /* sysexits.h EX_CONFIG: exit code for a bad config */
#define HR_NAME_MAX  64
/* [destination] sections one configuration may have (the loader refuses the 65th):
 * the routing and the forwarder size their arrays by it. */
#define HR_MAX_DESTINATIONS 64

/* A list value: "a, b, c" (comma-separated), or a repeatable key. Owned strings. */
struct hr_strlist {
	char **v;
	size_t n;
};

/* A list of durations, e.g. retry_schedule = 0s, 5s, 5m. */
struct hr_durlist {
	int64_t *ms;
	size_t n;
};

enum hr_auth_mode {
	HR_AUTH_NONE = 0,
	HR_AUTH_TOKEN,             /* ?token=... or /hooks/NAME/TOKEN */
	HR_AUTH_STANDARD_WEBHOOKS, /* webhook-id/-timestamp/-signature (or svix-*) */
	HR_AUTH_HMAC, /* a signature header over the body (Tavus tools, GitHub, Stripe) */
	HR_AUTH_BASIC,
	HR_AUTH_DAILY, /* Daily.co: X-Webhook-Signature over "<ms timestamp>.<body>" */
};

enum hr_hmac_alg { HR_HMAC_SHA256 = 0, HR_HMAC_SHA512 };
enum hr_hmac_enc { HR_ENC_HEX = 0, HR_ENC_BASE64 };
enum hr_hmac_signed { HR_SIGNED_BODY = 0, HR_SIGNED_TIMESTAMP_BODY };
/* [storage] backend: which of the store's engines (main picks its table). */
enum hr_cfg_backend { HR_CFG_BACKEND_SQLITE = 0, HR_CFG_BACKEND_POSTGRESQL, HR_CFG_BACKENDS };

/* [source NAME]: one inbound endpoint, POST /hooks/NAME. */
struct hr_source_cfg {
	char name[HR_NAME_MAX];
	enum hr_provider provider; /* auto: classify every body */

	/* authentication (issue: inbound authentication) */
	enum hr_auth_mode auth;
	char secret_file[PATH_MAX]; /* secrets, one per line; "" with auth:
	                               $CREDENTIALS_DIRECTORY/NAME */
	/* the file's line of auth (else of the section): where a load error is */
	int auth_line;
	char hmac_header[64];              /* auth = hmac: header carrying the signature */
	enum hr_hmac_alg hmac_algorithm;   /* sha256 | sha512 */
	enum hr_hmac_enc hmac_encoding;    /* hex | base64 */
	char hmac_prefix[32];              /* e.g. "sha256=" before the signature */
	enum hr_hmac_signed hmac_signed;   /* body | timestamp.body */
	char hmac_timestamp_header[64];    /* with signed = timestamp.body */
	int64_t tolerance_ms;              /* timestamp skew accepted, default 5m */
	struct hr_strlist allow_cidrs;     /* empty: any address */
	struct hr_strlist trusted_proxies; /* CIDRs whose X-Forwarded-For is believed */

	/* deduplication */
	char dedup[80];          /* auto | body | off | header:NAME */
	int64_t dedup_window_ms; /* default 7d */

	/* abuse limits */
	double rate;    /* accepted requests per second; 0: unlimited */
	unsigned burst; /* token bucket size */

	int64_t retain_ms; /* payloads pruned at this age, rows at twice it; 0: forever */
};

/* [destination NAME]: a downstream URL that receives matching events. */
struct hr_destination_cfg {
	char name[HR_NAME_MAX];
	char url[2048];
	struct hr_strlist match;    /* kind globs ("tavus.conversation.*"); empty: every kind */
	struct hr_strlist sources;  /* source names; empty: every source */
	struct hr_strlist headers;  /* extra "Name: value" lines (repeatable key `header`) */
	int64_t timeout_ms;         /* whole attempt, default 15s */
	int64_t connect_timeout_ms; /* default 5s */
	struct hr_durlist
	    retry_schedule;          /* delay before attempt 1, 2, ...; default Standard Webhooks */
	unsigned jitter_pct;         /* +- this percent on each delay, default 20 */
	unsigned max_in_flight;      /* concurrent attempts, default 16 */
	bool ordered;                /* one at a time per session key, in event order */
	char secret_file[PATH_MAX];  /* whsec_ secrets, one per line: each adds a signature */
	bool allow_private;          /* may reach loopback/private/link-local addresses */
	unsigned breaker_failures;   /* consecutive failures that open the breaker, default 10 */
	int64_t breaker_cooldown_ms; /* first probe after this; doubles up to 10 min */
	bool retry_4xx;              /* retry 4xx answers other than 408/429/410 too */
};

struct hr_cfg {
	char file[PATH_MAX]; /* the file it was read from, "" for defaults */

	/* [server] */
	char listen[128];           /* "127.0.0.1:8080", "[::1]:8080"; port 0 picks a free one */
	size_t max_body;            /* bytes; larger bodies answer 413 */
	int64_t request_timeout_ms; /* idle connection / slow client cut-off */
	int64_t header_timeout_ms;  /* request line + headers cut-off (at most request_timeout) */
	int64_t stop_timeout_ms;    /* a stop's wait for requests in flight */
	unsigned threads;           /* MHD worker threads */
	unsigned max_connections;   /* global connection cap */
	size_t max_depth;           /* JSON nesting bound */
	size_t max_object_keys;     /* keys per JSON object */
	size_t max_string;          /* bytes per JSON string */
	size_t max_values;          /* JSON values per body */
	unsigned max_connections_per_ip; /* connections from one client address; 0: no limit */
	size_t max_header_size;          /* request line + headers; larger requests answer 431 */
	size_t max_unverified_bodies;    /* bytes of not-yet-authenticated bodies held at once */

	/* [storage] */
	int db_backend;               /* enum hr_cfg_backend */
	char db_url[1024];            /* backend = postgresql: libpq conninfo or URI */
	unsigned db_pool;             /* read connections; 0: threads + 2 */
	int64_t lease_ms;             /* backend = postgresql: a node's claim on a delivery */
	int64_t statement_timeout_ms; /* backend = postgresql: one statement's answer; 0: none */
	char db_path[PATH_MAX];
	unsigned batch_max;      /* events per group-commit transaction */
	unsigned queue_max;      /* writer queue bound; past it ingest answers 503 */
	unsigned rejections_max; /* rows kept in the rejections table */
	size_t cache_size;       /* SQLite: the writer connection's page cache, bytes */

	size_t max_size;           /* bytes of database pages in use; 0: no cap */
	int64_t prune_interval_ms; /* between pruning passes */
	size_t min_free_space;     /* /readyz: free bytes wanted on the disk; 0: no check */

	/* [api] */
	char token_file[PATH_MAX];      /* "" = loopback clients only, no token */
	char read_token_file[PATH_MAX]; /* "" = none; a token that may only read */
	struct hr_strlist api_hosts; /* Host names the API answers to besides the listen address */

	/* [log] */
	int log_level; /* enum hr_log_level */

	struct hr_source_cfg *sources; /* owned array */
	size_t nsources;
	struct hr_destination_cfg *destinations; /* owned array */
	size_t ndestinations;
};

/*
 * Read `path` into a new config (defaults for what it does not set). On
 * failure returns HR_EINVAL (or HR_ENOMEM) and err->field is "file:line"
 * (just "file" when the file cannot be opened), err->msg the reason.
 */
int hr_cfg_load(const char *path, struct hr_cfg **out, struct hr_error *err) HR_WUR;
/* Same, for a daemon that listens elsewhere than [server] listen says: on
 * `listen` (--listen, or at a reload the address it started on), or on a socket
 * systemd passed (`listen` ""). The warnings that depend on the address judge
 * that one (none for a passed socket, whose address is not known here); NULL:
 * the file's. The config's `listen` stays the file's (--listen is the caller's).
 * `nowait` (a reload): a FIFO nobody writes reads as an empty file, where a
 * start waits for its writer. */
int hr_cfg_load_listening(const char *path, const char *listen, bool nowait, struct hr_cfg **out,
    struct hr_error *err) HR_WUR;
/* Same, from a string (tests); `name` stands in for the file name in errors. */
int hr_cfg_load_string(
    const char *text, const char *name, struct hr_cfg **out, struct hr_error *err) HR_WUR;
/*
 * -t: the loads that follow go on past an error, to report every one. Each
 * error but the last is logged as it is found ("FILE:LINE: reason"); the last
 * is in `err`, as a single one is. A process setting, as loading is a
 * start-up, single-threaded affair.
 */
void hr_cfg_report_every_error(bool on);
/* A config holding only defaults (no sources); NULL on ENOMEM. */
struct hr_cfg *hr_cfg_new_defaults(void);
void hr_cfg_free(struct hr_cfg *); /* NULL is fine */

/* The source named `name`, or NULL. */
const struct hr_source_cfg *hr_cfg_source(const struct hr_cfg *, const char *name);
/* Does the source's auth sign the body (standard-webhooks, hmac, daily)? Then the
 * body is read before it is decided, and the signature covers neither the query
 * string nor most headers. */
bool hr_cfg_signs_body(const struct hr_source_cfg *);
/* The first destination of `cfg` whose attempt a PostgreSQL claim of `lease_ms` would not
 * outlive (timeout over half the lease), or -1: the file's own lease at load, the lease
 * in force at a reload (a new lease waits for a restart). */
ssize_t hr_cfg_timeout_over_lease(const struct hr_cfg *cfg, int64_t lease_ms);
/* The JSON limits at the largest values [server] max_depth, max_object_keys, max_string
 * and max_values may take: what reading back a body stored under any configuration,
 * since lowered, needs. */
struct hr_json_limits hr_cfg_json_limits_max(void);
/* The destination named `name`, or NULL. */
const struct hr_destination_cfg *hr_cfg_destination(const struct hr_cfg *, const char *name);
/* A deep copy of `src` (borrowed) into `dst`, which owns its lists then; release with
 * hr_cfg_destination_clear(). On failure `dst` owns nothing. */
int hr_cfg_destination_copy(
    struct hr_destination_cfg *dst, const struct hr_destination_cfg *src) HR_WUR;
void hr_cfg_destination_clear(struct hr_destination_cfg *); /* NULL is fine */

/* The option table rendered for `hookrelay --help` and as docs/configuration.md. */
void hr_cfg_print_help(FILE *);
void hr_cfg_print_markdown(FILE *);
/* The KEYS section of hookrelay.conf(5) in scdoc (docs/man/hookrelay.conf.5.scd). */
void hr_cfg_print_man_keys(FILE *);
/* The effective configuration in config file syntax, every key (e.g. for `-t -v`). */
void hr_cfg_print(FILE *, const struct hr_cfg *);

/* Parsers shared with the command line, e.g. --listen. Return HR_OK or HR_EINVAL. */
int hr_cfg_parse_size(const char *s, size_t *out);         /* "8MiB", "512k", "1024" */
int hr_cfg_parse_duration_ms(const char *s, int64_t *out); /* "250ms", "0.2s", "5m", "2h", "30d" */
int hr_cfg_parse_listen(const char *s); /* [server] listen's value: "127.0.0.1:8080", "[::1]:0" */

#ifdef HR_TESTING
/* The i-th option's key and its section's name; NULL past the end. */
const char *cfg_option_key(size_t i, const char **section);
/* 0 if the option table is consistent, else 1 + the index of the first bad line. */
int cfg_table_check(void);
#endif

#endif
