/*
 * hookctl.h - what the files of hookctl share: the invocation, the REST
 * client and the output writers.
 *
 * hookctl talks to hookrelay only through its HTTP API. Exit codes are part
 * of its interface: scripts tell a refused request from a daemon that is
 * not there.
 */
#ifndef HOOKCTL_H
#define HOOKCTL_H

#include <jansson.h>
#include <signal.h>

#include "hr/dynbuf.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CTL_LEN(a) (sizeof(a) / sizeof((a)[0]))

enum ctl_exit { EXIT_OK = 0, EXIT_API = 1, EXIT_USAGE = 2, EXIT_CONNECT = 3 };

/* Command options; each command says which it takes. */
enum ctl_opt {
	O_SINCE,
	O_UNTIL,
	O_KIND,
	O_SOURCE,
	O_PROVIDER,
	O_SESSION,
	O_ROOM,
	O_EVENT_TYPE,
	O_SUBTYPE,
	O_STATUS,
	O_DESTINATION,
	O_LIMIT,
	O_ALL,
	O_CURL,
	O_FOLLOW,
	O_QUERY,
	O_PAYLOAD,
	O_FORWARD_TO,
	O_YES,
	O_COUNT
};
#define OPT(o)     (1u << (o))
#define CTL_VALUES 16 /* values of one repeatable option (the API's bound too) */

struct ctl_cmd;

struct ctl {
	char url[1024]; /* base URL, no trailing slash */
	char *token;    /* NULL: no Authorization header */
	bool json;      /* JSON Lines instead of a table */
	bool color;
	const struct ctl_cmd *cmd;
	const char *opt[O_COUNT]; /* each option's (first) value ("" for a flag); NULL: not given */
	const char *vals[O_COUNT][CTL_VALUES]; /* every value of a repeatable option, in order */
	int nvals[O_COUNT];
	char **args; /* the command's operands */
	int nargs;
	long last_status; /* the HTTP status of the last API call; 0: no answer came */
};

#define CTL_LIMIT_MAX 500 /* the API's largest page (limit, backlog) */

struct ctl_cmd {
	const char *name; /* "events list" */
	int (*run)(struct ctl *);
	unsigned opts; /* OPT() bits it takes */
	int min_args, max_args;
	const char *operands; /* for the usage line, e.g. "ID" */
	const char *help;
	unsigned exact; /* of opts, repeatable ones this command takes once and without globs */
};

extern const struct ctl_cmd ctl_cmds[];
void ctl_usage(FILE *out, const struct ctl_cmd *cmd);
/* "hookctl: <fmt with what>" and a pointer to --help on stderr; EXIT_USAGE. */
int ctl_usage_error(const struct ctl_cmd *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- hookctl_cmds.c: the handlers ---- */
int ctl_events_list(struct ctl *);
int ctl_events_show(struct ctl *);
int ctl_events_tail(struct ctl *);
int ctl_sessions_list(struct ctl *);
int ctl_sessions_show(struct ctl *);
int ctl_deliveries_list(struct ctl *);
int ctl_destinations(struct ctl *);
int ctl_destinations_discard(struct ctl *);
int ctl_replay(struct ctl *);
int ctl_status(struct ctl *);
int ctl_rejections_list(struct ctl *);
int ctl_rejections_show(struct ctl *);
int ctl_rejections_accept(struct ctl *);
int ctl_listen(struct ctl *); /* hookctl_listen.c */

/* ---- hookctl_api.c: the REST client ---- */

/* A path with a query string under construction; values are URL-encoded. */
struct ctl_path {
	char buf[2048];
	size_t len;
	bool query;
	bool overflow;
};
/* head + segment (URL-encoded; NULL: none) + tail */
void ctl_path_init(struct ctl_path *, const char *head, const char *segment, const char *tail);
void ctl_path_add(struct ctl_path *, const char *name, const char *value);
/* hookctl_shell.c: an event's kept query (a value, or a repeated name's values)
 * back on a path, every name and value escaped as curl_easy_escape() does. */
void ctl_path_add_callback_query(struct ctl_path *, json_t *query);
/* `len` bytes as `printf -- '...'`: printable ASCII literal, the rest escaped. */
void ctl_print_printf_quoted(const char *body, size_t len);
/* `text` as one shell word in single quotes. */
void ctl_print_shell_word(const char *text);
/* Add `name=<option value>` for each option given that maps to a query parameter. */
void ctl_path_add_opts(struct ctl_path *, const struct ctl *, unsigned opts);

/* GET or POST; on a 2xx answer *out is the parsed document (new). Otherwise the
 * problem is printed to stderr and the exit code returned. */
int ctl_call(struct ctl *, const char *method, const char *path, json_t **out);
/* ctl_call(), and the answer's own bytes in `text` (initialised here; the
 * caller frees it): what --json prints when piped (ctl_verbatim()). */
int ctl_call_text(
    struct ctl *, const char *method, const char *path, json_t **out, struct hr_dynbuf *text);
/* GET a report that answers 503 when what it reports on is unwell (/healthz):
 * *out is the document (new) either way; the 503 returns EXIT_API and prints
 * nothing, the report says why. Anything else as for ctl_call(). */
int ctl_call_report(struct ctl *, const char *path, json_t **out);
/* GET the body as is (new, NUL-terminated; *len excludes the NUL). */
int ctl_call_raw(struct ctl *, const char *path, char **body, size_t *len);

/* Following GET /v1/stream (server-sent events). */
struct ctl_follow {
	int64_t last_id; /* sent as Last-Event-ID when >= 0; updated as events come */
	long retry_ms;   /* the server's reconnection delay */
	bool connected;  /* the last attempt got its 200 */
	bool busy;       /* the last attempt was answered 503 (busy, stopping): try again */
	long busy_ms;    /* ... after its Retry-After (0: none; then retry_ms) */
	/* data borrowed; false: the event was not handled (the daemon could not be
	 * asked for more of it): the stream breaks off before it, and the reconnect
	 * resumes with it */
	bool (*on_event)(struct ctl *, json_t *data, void *arg);
	void *arg;
};
/* Until the stream ends: EXIT_OK when the server ended it, EXIT_CONNECT when
 * the connection failed or broke, EXIT_API when refused (printed). */
int ctl_stream(struct ctl *, const char *path, struct ctl_follow *);
/* ctl_stream() again and again: after a break (a daemon restart) it reconnects
 * with Last-Event-ID, so no event is lost or seen twice; a 503 (too many streams,
 * a daemon shutting down for a restart) is tried again too. Ends on any other
 * refusal, when the very first connection fails, or on ^C (EXIT_OK). */
int ctl_follow(struct ctl *, const char *path, struct ctl_follow *);

/* Set by the SIGINT handler of a command that installs one (listen): every
 * transfer then stops within about a second. */
extern volatile sig_atomic_t ctl_interrupted;
void ctl_catch_interrupt(void);

/* POST `body` (borrowed) to `url` with `headers` (a JSON object of name: value
 * strings, borrowed; Content-Length and hop-by-hop headers are not copied). */
struct ctl_answer {
	long status; /* 0: no HTTP answer */
	double ms;
	char error[256]; /* when status is 0 */
};
void ctl_post(struct ctl *, const char *url, const char *body, size_t len, json_t *headers,
    struct ctl_answer *out);

/* ---- hookctl_out.c: tables and JSON Lines ---- */

enum ctl_fmt { F_TEXT, F_TIME, F_STATUS, F_NUM };

struct ctl_column {
	const char *title;
	const char *key; /* member; "a.b" for a nested one */
	enum ctl_fmt fmt;
	int width; /* for rows printed as they come (tail -f); 0: the title's */
};

/* A page of items: one JSON line each, or a table with the columns. */
void ctl_print_items(struct ctl *, const struct ctl_column *, json_t *items);
/* One row as it comes: the header first when `*header_done` is false. */
void ctl_print_row(struct ctl *, const struct ctl_column *, json_t *item, bool *header_done);
/* One document as a JSON line. */
void ctl_print_json(json_t *doc);
/*
 * --json to a pipe: what the API answered goes out as its own bytes. Parsed and
 * encoded again, a payload's numbers were spelled anew (1e2 as 100) and an
 * integer past 2^53 changed (api.md: a stored body goes out with its numbers as
 * the sender wrote them). On a terminal the document is encoded again, non-ASCII
 * escaped: a sender's bytes may hold terminal controls.
 */
bool ctl_verbatim(const struct ctl *);
/* `text` (a JSON document, borrowed) as one line; with `member` and `raw`, one
 * more member of that object, `raw` as it is. */
void ctl_print_text(const char *text, size_t len, const char *member, const char *raw);
/* The items of the array `member` that a listing's text begins with
 * ({"member":[...), one line each, as their own bytes. False, having printed
 * nothing, when the text is not so. */
bool ctl_print_raw_items(const char *text, size_t len, const char *member);
/* "label: value" lines: each column's title and the member it names. */
void ctl_print_fields(struct ctl *, const struct ctl_column *, json_t *obj);
/* A JSON value indented, for people (payloads). */
void ctl_print_pretty(struct ctl *, json_t *doc);
void ctl_print_pretty_indented(struct ctl *, json_t *doc, int indent); /* each line */
/* Section heading in bold (on a colour terminal). */
void ctl_print_heading(struct ctl *, const char *text);
/* The text of a member as a table cell shows it. */
void ctl_cell(json_t *obj, const char *key, enum ctl_fmt fmt, char *buf, size_t len);
/* `text` (NULL: "") as it may reach a terminal: a copy in `buf`, controls and
 * bidi formatting replaced by '?' as in table cells. Returns `buf`. */
const char *ctl_safe(const char *text, char *buf, size_t len);

#endif
