/*
 * ingest.h - one webhook's way from its body into the store, whatever
 * carried it: decode (event.h), route (outbox.h), key (dedup.h), write.
 *
 * Nothing here knows HTTP: the POST /hooks/{source} handler (hooks.c)
 * authenticates the request, hands its body and what is kept of it over,
 * and answers from the outcome that done() reports on the writer thread.
 */
#ifndef HR_INGEST_H
#define HR_INGEST_H

#include <stdbool.h>
#include <stddef.h>

#include "hr/cfg.h"
#include "hr/dedup.h"
#include "hr/event.h"
#include "hr/outbox.h"
#include "hr/store.h"

/* What ingest reads, set by the caller and borrowed until done() runs. */
struct hr_ingest_in {
	const struct hr_cfg *cfg;            /* the generation it runs under (routing) */
	const struct hr_source_cfg *source;  /* [source NAME] */
	const struct hr_json_limits *limits; /* bounds of the parse */
	struct hr_received req;              /* what is kept of the request; id is ingest's */
	const json_t *query;                 /* req.query_json as an object; NULL: none */
	const char *webhook_id;              /* a verified webhook-id: the dedup key; NULL */
	hr_dedup_header_fn header;           /* request headers, for dedup = header:NAME */
	void *header_arg;
};

/* One webhook in flight; the caller's memory, zeroed before use. */
struct hr_ingest {
	struct hr_ingest_in in;
	struct hr_event ev; /* after hr_ingest_decode(): the kind and its summary */
	/* "evt_..." or "rej_...": ingest's once written, unless the caller set one
	 * (hr_store_new_id) to name it before the write is queued. */
	char id[40];
	/* Writer thread, once the write committed (res->status HR_OK) or failed:
	 * the event's id (its first copy's for a duplicate) is res->id. */
	void (*done)(struct hr_ingest *, const struct hr_store_result *res, void *arg);
	void *arg;
	/* ingest's */
	bool rejected;
	union {
		struct hr_event_write event;
		struct hr_rejection_write rejection;
	} w;
	struct hr_store_op op;
	char dedup_key[HR_DEDUP_KEY_LEN];
	const char *destinations[HR_MAX_DESTINATIONS];
	bool ordered[HR_MAX_DESTINATIONS];
	char *facts_json;
};

/* Parse, classify and decode in->req.body (hr_event_parse): HR_OK, or why in `pe`
 * (HR_EPARSE 400, HR_ETOOBIG 413, HR_EINVAL 422). */
int hr_ingest_decode(struct hr_ingest *, struct hr_parse_error *pe) HR_WUR;
/* The decoded event to the destinations that match it, under its dedup key:
 * queued (HR_OK, done() follows), HR_EBUSY (queue full), HR_ECLOSED, HR_ENOMEM. */
int hr_ingest_store(struct hr_ingest *, struct hr_store *) HR_WUR;
/* Keep a refused body for GET /v1/rejections: `kind` NULL when it is not JSON,
 * `problem_json` (borrowed until done) the problem, sent with `http_status` or, when
 * `acknowledged`, inside a 200. Returns as hr_ingest_store(). */
int hr_ingest_keep_rejection(struct hr_ingest *, struct hr_store *, const char *kind,
    int http_status, const char *problem_json, bool acknowledged) HR_WUR;
/* The kind's slot of the answer counts (reqcounts.h): -1 when nothing was decoded. */
int hr_ingest_kind(const struct hr_ingest *);
void hr_ingest_clear(struct hr_ingest *); /* what ingest allocated; the struct stays */

#endif
