/*
 * hooks_headers.h - the request headers POST /hooks keeps with an event
 * (hooks_headers.c). Only src/handlers/hooks*.c include it.
 */
#ifndef HR_HOOKS_HEADERS_H
#define HR_HOOKS_HEADERS_H

#include "hr/http.h"

/* The kept headers of `req` as a compact JSON object, keys sorted; a new string
 * (free()), or NULL when out of memory. */
char *hr_hooks_headers_json(struct hr_req *req);

#endif
