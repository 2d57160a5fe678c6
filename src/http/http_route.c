/*
 * http_route.c - the route table walked: which route takes a method and path,
 * its {} segments copied for the handler, and the URL as a problem shows it
 * (a secret tail left out).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hr/http.h"
#include "http_int.h"

/* A {} segment of a path as matched: where it is in the URL, how many bytes. */
struct segment {
	const char *at;
	size_t len;
};

/* A {} that names a thing (a source, an id, a session) is at most this long
 * (docs/api.md); a secret tail, only as long as max_header_size lets it be. */
#define NAME_SEGMENT_MAX 255

/* Match the first `plen` bytes of "/v1/events/{}" against the start of a
 * path; {} captures one non-empty segment into `segs` (HR_MAX_PARAMS), or with
 * `segs` NULL it only matches. *used: the bytes of the path matched. `loose`:
 * the letters in any case and a '/' as a run of them, for what a path that no
 * route takes would show. */
static bool
match_prefix(const char *pattern, size_t plen, const char *path, struct segment *segs, size_t *used,
    bool loose)
{
	const char *end = pattern + plen, *start = path;
	int np = 0;

	while (pattern < end && *path != '\0') {
		if (loose && *pattern == '/' && *path == '/') {
			pattern++;
			path += strspn(path, "/");
		} else if (loose && *pattern != '{' &&
		    tolower((unsigned char)*pattern) == tolower((unsigned char)*path)) {
			pattern++;
			path++;
		} else if (strncmp(pattern, "{}", 2) == 0) {
			size_t n = strcspn(path, "/");

			if (n == 0)
				return false;
			if (segs != NULL) {
				if (np >= HR_MAX_PARAMS)
					return false;
				segs[np++] = (struct segment){ path, n };
			}
			path += n;
			pattern += 2;
		} else if (*pattern++ != *path++) {
			return false;
		}
	}
	*used = (size_t)(path - start);
	return pattern == end;
}

/*
 * The whole path against the whole pattern of `r`; `segs` (HR_MAX_PARAMS) is
 * zeroed, then gets its {} segments. A secret tail may be a token of a secret
 * file (up to 64 KiB): one of 256 bytes or more matched no route, 404, when
 * the same token in ?token= was taken (a review).
 */
static bool
route_match(const struct hr_route *r, const char *path, struct segment *segs)
{
	size_t used;

	memset(segs, 0, HR_MAX_PARAMS * sizeof(*segs));
	if (!match_prefix(r->pattern, strlen(r->pattern), path, segs, &used, false) ||
	    path[used] != '\0')
		return false;
	for (size_t i = 0; i < HR_MAX_PARAMS; i++) {
		bool last = i + 1 == HR_MAX_PARAMS || segs[i + 1].at == NULL;

		if (segs[i].len > NAME_SEGMENT_MAX && !(last && (r->flags & HR_ROUTE_SECRET_TAIL)))
			return false;
	}
	return true;
}

/* The route's segments copied into the request's room for them, which req_new
 * sized by the URL they are parts of. */
static void
params_set(struct hr_req *req, const struct segment *segs)
{
	char *p = req->param_room;

	for (size_t i = 0; i < HR_MAX_PARAMS; i++) {
		if (segs[i].len > 0)
			memcpy(p, segs[i].at, segs[i].len);
		p[segs[i].len] = '\0';
		req->params[i] = p;
		p += segs[i].len + 1;
	}
}

/*
 * A path refused before routing for its form ("/./hooks/tok/TOKEN",
 * "hooks/tok/TOKEN", "/hooks\\tok\\TOKEN": 400) that names a "hooks" segment
 * anywhere: how much of it to show, up to the segment after it (0: all of
 * it). Those echoed the token whole (a review).
 */
static size_t
hooks_path_end(const char *url)
{
	static const char seps[] = "/\\";

	for (const char *p = url; *p != '\0'; p++) {
		const char *q;

		if (strncasecmp(p, "hooks", 5) != 0 || (p != url && strchr("/\\:.", p[-1]) == NULL))
			continue;
		q = p + 5;
		if (q[0] == '\0' || strchr(seps, q[0]) == NULL)
			continue;
		q += strspn(q, seps);
		q += strcspn(q, seps);
		return q[0] != '\0' ? (size_t)(q - url) : 0;
	}
	return 0;
}

/*
 * The URL as problems show it: for a route whose last {} is a secret
 * (HR_ROUTE_SECRET_TAIL), a path that begins as its pattern does up to that
 * segment is shown without it and all that follows, matched by a route or not
 * ("/hooks/NAME/TOKEN/", "/hooks/NAME//TOKEN": both "/hooks/NAME"), and so is
 * one that no route takes for its case or its slashes ("//HOOKS/NAME/TOKEN":
 * "//HOOKS/NAME"; a review saw the token echoed).
 */
const char *
hr_http_shown_url(struct hr_req *req)
{
	/* An absolute-form target ("http://host/hooks/NAME/TOKEN", refused 400) is shown
	 * by its path, the token cut as from any other: it was echoed whole (a review). */
	const char *url = req->url, *scheme = strstr(url, "://");
	size_t used;

	if (scheme != NULL && scheme < url + strcspn(url, "/?#"))
		url = scheme + 3 + strcspn(scheme + 3, "/");
	if (req->instance != NULL)
		return req->instance;
	for (size_t t = 0; t < req->http->nroutes; t++) {
		for (const struct hr_route *r = req->http->routes[t]; r->pattern != NULL; r++) {
			const char *secret = strstr(r->pattern, "{}");

			for (const char *next; secret != NULL && (next = strstr(secret + 2, "{}"));)
				secret = next;
			if (!(r->flags & HR_ROUTE_SECRET_TAIL) || secret == NULL ||
			    !match_prefix(
			        r->pattern, (size_t)(secret - r->pattern), url, NULL, &used, true))
				continue;
			while (used > 0 && url[used - 1] == '/')
				used--; /* without the slashes before the secret */
			req->instance = strndup(url, used);
			return req->instance != NULL ? req->instance : "";
		}
	}
	if ((used = hooks_path_end(url)) > 0) {
		req->instance = strndup(url, used);
		return req->instance != NULL ? req->instance : "";
	}
	return url;
}

/* HEAD is GET without the body (MHD drops the body itself). */
static bool
method_matches(const char *route_method, const char *method)
{
	return strcmp(route_method, method) == 0 ||
	    (strcmp(method, "HEAD") == 0 && strcmp(route_method, "GET") == 0);
}

/* The HR_ROUTE_UNDER route of the method whose pattern begins `path`, with no
 * parameters; NULL if none. */
static const struct hr_route *
route_under(struct hr_req *req, const char *path)
{
	struct segment none[HR_MAX_PARAMS] = { { NULL, 0 } };

	for (size_t t = 0; t < req->http->nroutes; t++)
		for (const struct hr_route *r = req->http->routes[t]; r->pattern != NULL; r++)
			if ((r->flags & HR_ROUTE_UNDER) && method_matches(r->method, req->method) &&
			    strncmp(path, r->pattern, strlen(r->pattern)) == 0) {
				params_set(req, none);
				return r;
			}
	return NULL;
}

/*
 * The route for method+path; else 404, or 405 with the Allow list. The first
 * route of the method that matches wins and the walk ends there: every
 * webhook takes this path, so it does no more (the Allow list is for a 405).
 */
const struct hr_route *
hr_http_route_find(struct hr_req *req, const char *path, int *status)
{
	struct segment scratch[HR_MAX_PARAMS];
	size_t allow_len = 0;

	for (size_t t = 0; t < req->http->nroutes; t++) {
		for (const struct hr_route *r = req->http->routes[t]; r->pattern != NULL; r++) {
			if (!method_matches(r->method, req->method) ||
			    !route_match(r, path, scratch))
				continue;
			/* A route with fewer {} than HR_MAX_PARAMS leaves the rest "" (route_match
			 * zeroed them), not what an earlier pattern left there (a path token). */
			params_set(req, scratch);
			/* A {} segment that is not UTF-8 names nothing (PostgreSQL refuses
			 * it as text): checked once, on the route that matched. */
			for (size_t i = 0; i < HR_MAX_PARAMS; i++)
				if (!hr_http_is_utf8(req->params[i])) {
					*status = 404;
					return NULL;
				}
			*status = 200;
			return r;
		}
	}
	*status = 404;
	for (size_t t = 0; t < req->http->nroutes; t++)
		for (const struct hr_route *r = req->http->routes[t]; r->pattern != NULL; r++)
			if (route_match(r, path, scratch)) {
				*status = 405;
				(void)hr_appendf(req->resp_allow, sizeof(req->resp_allow),
				    &allow_len, "%s%s%s", allow_len ? ", " : "", r->method,
				    strcmp(r->method, "GET") == 0 ? ", HEAD"
				                                  : ""); /* HEAD is GET's */
			}
	return *status == 404 ? route_under(req, path) : NULL;
}

bool
hr_http_route_any_host(struct hr_req *req, const char *path)
{
	struct segment scratch[HR_MAX_PARAMS];

	for (size_t t = 0; t < req->http->nroutes; t++)
		for (const struct hr_route *r = req->http->routes[t]; r->pattern != NULL; r++)
			if ((r->flags & HR_ROUTE_ANY_HOST) &&
			    method_matches(r->method, req->method) && route_match(r, path, scratch))
				return true;
	return false;
}
