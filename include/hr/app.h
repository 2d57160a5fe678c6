/* app.h - what request handlers share: config, store, limits, counters. */
#ifndef HR_APP_H
#define HR_APP_H

#include <stdatomic.h>

#include "hr/cfg.h"
#include "hr/event.h"
#include "hr/ratelimit.h"
#include "hr/store.h"

struct hr_forwarder;
struct hr_secrets;

/* Per [source]: what ingest needs beyond its configuration. */
struct hr_source_state {
	struct hr_secrets *secrets; /* owned */
	struct hr_bucket bucket;    /* rate and burst */
	atomic_ulong auth_failures, rate_limited, duplicates;
};

struct hr_app {
	const struct hr_cfg *cfg;        /* borrowed */
	struct hr_store *store;          /* borrowed */
	struct hr_forwarder *forwarder;  /* borrowed */
	char *api_token;                 /* owned; NULL: the API answers loopback clients only */
	struct hr_source_state *sources; /* owned; parallel to cfg->sources */
	struct hr_json_limits limits;
	atomic_uint inflight; /* ingest requests from submit until resumed */
	atomic_bool stopping; /* set at shutdown: ingest answers 503 instead of suspending */
	atomic_ulong accepted, rejected, failed;
};

#endif
