/*
 * ingest.c - one webhook's way from its body into the store.
 *
 * Parsing and validation run on the calling (HTTP) thread, as do routing
 * and the dedup key, so the writer thread only writes: the event, its
 * session and a delivery row per matching destination go in one
 * transaction (the transactional outbox). A body that does not decode is
 * kept as a rejection instead: Tavus and PailFlow never retry, so a refused
 * body must stay recoverable (POST /v1/rejections/{id}/accept).
 */
#include <stdlib.h>
#include <string.h>

#include "hr/ingest.h"

int
hr_ingest_decode(struct hr_ingest *g, struct hr_parse_error *pe)
{
	const struct hr_received *r = &g->in.req;

	return hr_event_parse(
	    r->body, r->body_len, g->in.source->provider, g->in.limits, &g->ev, pe);
}

/* Writer thread: hand the outcome over. */
static void
written(struct hr_store_op *op, void *arg)
{
	struct hr_ingest *g = arg;

	g->done(g, &op->res, g->arg);
}

int
hr_ingest_store(struct hr_ingest *g, struct hr_store *store)
{
	struct hr_event_write *w = &g->w.event;
	const struct hr_source_cfg *src = g->in.source;

	g->facts_json = hr_event_facts_json(&g->ev); /* NULL: none */
	if (g->id[0] == '\0')
		hr_store_new_id("evt", g->id, sizeof(g->id));
	w->req = g->in.req;
	w->req.id = g->id;
	w->query = (const struct json_t *)g->in.query;
	w->facts_json = g->facts_json;
	w->ev = &g->ev;
	w->destinations = g->destinations;
	w->ordered = g->ordered;
	w->ndestinations = hr_outbox_match(g->in.cfg, src->name, hr_kind_name(g->ev.kind),
	    g->destinations, g->ordered, HR_MAX_DESTINATIONS);
	if (hr_dedup_key(src, &g->ev, w->req.body, w->req.body_len, w->req.query_json, g->in.header,
	        g->in.header_arg, g->in.webhook_id, g->dedup_key)) {
		w->dedup_key = g->dedup_key;
		w->dedup_window_us = src->dedup_window_ms * 1000;
	}
	g->op.done = written;
	g->op.arg = g;
	return hr_store_put_event(store, w, &g->op);
}

int
hr_ingest_keep_rejection(struct hr_ingest *g, struct hr_store *store, const char *kind,
    int http_status, const char *problem_json, bool acknowledged)
{
	struct hr_rejection_write *w = &g->w.rejection;

	if (g->id[0] == '\0')
		hr_store_new_id("rej", g->id, sizeof(g->id));
	g->rejected = true;
	w->req = g->in.req;
	w->req.id = g->id;
	w->kind_name = kind;
	w->http_status = http_status;
	w->problem_json = problem_json;
	w->acknowledged = acknowledged;
	g->op.done = written;
	g->op.arg = g;
	return hr_store_put_rejection(store, w, &g->op);
}

int
hr_ingest_kind(const struct hr_ingest *g)
{
	if (g->ev.root != NULL)
		return (int)g->ev.kind;
	if (g->rejected && g->w.rejection.kind_name != NULL)
		return hr_kind_from_name(g->w.rejection.kind_name);
	return -1;
}

void
hr_ingest_clear(struct hr_ingest *g)
{
	hr_event_clear(&g->ev);
	free(g->facts_json);
	g->facts_json = NULL;
}
