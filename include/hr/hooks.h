/*
 * hooks.h - POST /hooks/{source}: the webhook receiver's route. It
 * authenticates and answers over HTTP; ingest.h does the rest. main hands
 * the table to the HTTP server (hr_http_opts.routes) with the API's.
 */
#ifndef HR_HOOKS_H
#define HR_HOOKS_H

#include "hr/http.h"

extern const struct hr_route hr_hooks_routes[];

struct hr_runtime;
/* Each source's refused requests and rejections whose lines a flood held back,
 * counted in a line when no later line came to say it (main's tick). */
void hr_hooks_say_held(struct hr_runtime *);

#endif
