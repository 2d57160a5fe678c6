/*
 * api_int.h - what the read-API files share: query parameter parsing and
 * the JSON shapes of times, pages and errors. Only src/api*.c include it.
 */
#ifndef HR_API_INT_H
#define HR_API_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "hr/dynbuf.h"
#include "hr/http.h"

#define DEFAULT_LIMIT 50
#define MAX_LIMIT     500

/*
 * The pure parsers behind hr_api_param_time() and hr_api_param_uint(), no
 * request involved (fuzzed by tests/fuzz/fuzz_query.c): HR_OK or HR_EINVAL,
 * `out` untouched on failure. A time is RFC 3339, or a duration meaning that
 * long before `now_us`; the result is in microseconds since the epoch.
 */
int hr_api_parse_time(const char *text, int64_t now_us, int64_t *out) HR_WUR;
int hr_api_parse_uint(const char *text, int64_t min, int64_t max, int64_t *out) HR_WUR;

/* Each parser answers 400 naming the parameter and returns false on a bad value. */
void hr_api_bad_param(struct hr_req *, const char *name, const char *why);
bool hr_api_param_time(struct hr_req *, const char *name, int64_t *out);
bool hr_api_param_uint(
    struct hr_req *, const char *name, int64_t min, int64_t max, int64_t def, int64_t *out);
bool hr_api_param_limit(struct hr_req *, unsigned *out);
bool hr_api_param_cursor(struct hr_req *, int64_t *out);

/*
 * The event filter of GET /v1/events and /v1/stream: source, provider, kind,
 * event_type and subtype (each repeatable, any value matches; source and kind
 * take globs), session, and the query.NAME family (hr_api_param_query: every
 * one given must hold). False after answering 400. Values are borrowed
 * from the request; hr_api_event_filter_dup() copies them for longer.
 */
/* clang-format off */
#define HR_API_EVENT_FILTER_PARAMS \
	{ "source", HR_PARAM_MULTI }, { "provider", HR_PARAM_MULTI }, { "kind", HR_PARAM_MULTI }, \
	{ "event_type", HR_PARAM_MULTI }, { "subtype", HR_PARAM_MULTI }, { "session", 0 }, \
	{ "room", 0 }, \
	{ "query.", HR_PARAM_PREFIX | HR_PARAM_MULTI | HR_PARAM_EMPTY }
/* clang-format on */
struct hr_event_filter;
bool hr_api_param_event_filter(struct hr_req *, struct hr_event_filter *f);
/* `f` with its strings in the same allocation (new, free()); NULL on ENOMEM. */
struct hr_event_filter *hr_api_event_filter_dup(const struct hr_event_filter *f);

/* A page of GET /v1/events?include=payload, or of GET /v1/events/{id}/deliveries,
 * holds at most this many bytes of JSON, or one row if that one alone is larger
 * (docs/api.md). */
#define HR_API_PAYLOAD_PAGE (4u << 20)

/*
 * Such a page, written as text row by row as the store reads them, so that it
 * costs memory in proportion to its bytes, not to what is stored: a tree of
 * every row, then its text, took several times the answer's size.
 */
struct hr_api_text_page {
	struct hr_dynbuf out;
	unsigned n; /* rows written whole */
};
/* An empty page of at most `max` bytes (one row of any size included) that
 * begins with `head`, which opens the array of rows ("{\"events\":["). */
void hr_api_text_page_init(struct hr_api_text_page *, size_t max, const char *head);
/* Whether `more` bytes keep the page within HR_API_PAYLOAD_PAGE; always
 * for its first row. A row that does not fit answers HR_ETOOBIG to the store
 * (store.h), and the page's next_cursor continues with it. */
bool hr_api_text_page_fits(const struct hr_api_text_page *, size_t more);
/* Close the array, add next_cursor (hr_api_cursor_json) and answer 200, or 500
 * when the text could not be built; the page is freed. */
void hr_api_text_page_reply(struct hr_req *, struct hr_api_text_page *, int64_t next);

json_t *hr_api_time_json(int64_t us);
#ifdef HR_TESTING
/* api_delivery.c: a recorded answer, p[0..n) (borrowed), as the attempt log's
 * `response` string; new reference (json null when out of memory). */
json_t *hr_api_response_json(const char *p, size_t n);
#endif
/* An event as GET /v1/events lists it (also the data of /v1/stream); new reference. */
struct hr_event_row;
json_t *hr_api_event_json(const struct hr_event_row *r);
json_t *hr_api_text_or_null(const char *s);
/* The JSON document `text` holds, else `fallback` (both new; fallback stolen). */
json_t *hr_api_json_or(const char *text, json_t *fallback);
/* The query.NAME=VALUE filters of an event listing; 400 naming one and false
 * when there are too many. `f` keeps pointers into the request. */
struct hr_event_filter;
bool hr_api_param_query(struct hr_req *, struct hr_event_filter *f);
/* A page's next_cursor (null: there is none): the keyset position, and the time a
 * duration in the request's since/until counted back from, so every page has the
 * first page's bounds. */
json_t *hr_api_cursor_json(struct hr_req *, int64_t cursor);
/* {"<member>": items, "next_cursor": ...}; items stolen. */
json_t *hr_api_page_json(struct hr_req *, const char *member, json_t *items, int64_t cursor);
/* 404 / 400 / 503 for a store failure. */
void hr_api_reply_store_error(struct hr_req *, int rc, const struct hr_error *err);
/* Whether a stored body parses as JSON (an integer past 64 bits included). */
bool hr_api_body_is_json(const char *body, size_t len);
/*
 * `o` (takes) as an answer's text with a `payload` member: the stored `body`
 * as it is when `body_is_json` (a sender's numbers as written), else null.
 * The text is new (free()) in *text; HR_OK or HR_ENOMEM.
 */
int hr_api_text_with_payload(
    json_t *o, const char *body, size_t len, bool body_is_json, char **text, size_t *text_len);

/* A walk over the destinations the configuration no longer has
 * (hr_store_unconfigured_destinations): the request's configuration says which
 * are configured (hr_api_is_configured, given the context); `out` is the
 * caller's. */
struct hr_unconfigured_ctx {
	struct hr_req *req;
	void *out;
};
bool hr_api_is_configured(const char *name, void *ctx);

#endif
