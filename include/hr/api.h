/*
 * api.h - the REST API's routes: /v1/... (events, sessions, rejections,
 * deliveries, destinations, the event stream), /healthz, /readyz and
 * /metrics. main hands them to the HTTP server (hr_http_opts.routes).
 */
#ifndef HR_API_H
#define HR_API_H

#include "hr/http.h"

extern const struct hr_route hr_api_routes[];       /* events, sessions, health (api.c) */
extern const struct hr_route hr_rejection_routes[]; /* rejections (api_rejections.c) */
extern const struct hr_route hr_delivery_routes[];  /* deliveries, replay (api_delivery.c) */
extern const struct hr_route hr_stream_routes[];    /* GET /v1/stream (api_stream.c) */
extern const struct hr_route hr_metrics_routes[];   /* /metrics, /readyz (api_metrics.c) */

#endif
