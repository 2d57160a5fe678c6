/*
 * ingest.h - POST /hooks/{source}: the webhook receiver's route. main
 * hands it to the HTTP server (hr_http_opts.routes) with the API's.
 */
#ifndef HR_INGEST_H
#define HR_INGEST_H

#include "hr/http.h"

extern const struct hr_route hr_ingest_routes[];

#endif
