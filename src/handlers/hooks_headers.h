/*
 * hooks_headers.h - the request headers POST /hooks keeps with an event, and
 * what its Content-Type and Content-Encoding say (hooks_headers.c). Only src/handlers/hooks*.c
 * include it.
 */
#ifndef HR_HOOKS_HEADERS_H
#define HR_HOOKS_HEADERS_H

#include "hr/http.h"

/* The kept headers of `req` as a compact JSON object, keys sorted; a new string
 * (free()), or NULL when out of memory. */
char *hr_hooks_headers_json(struct hr_req *req);
/* Content-Type "application/json" or "application/x+json", any case, parameters
 * ignored (NULL: no). */
bool hr_hooks_is_json_type(const char *ct);
/* Content-Encoding absent or "identity" (any case, blanks around). */
bool hr_hooks_is_identity_coding(const char *ce);

#endif
