/*
 * ui.c - GET /ui: the web inspector, one page over the public /v1 API.
 *
 * Owns the /ui route table and the response headers of the page. The page
 * (ui/, compiled in by cmake/embed.cmake) holds no data: every deep link
 * (/ui/events/{id}, /ui/sessions/{id}, ...) answers the same HTML, and its
 * scripts read everything from /v1 with the bearer token the user typed.
 * So the page follows the API's rule only while it has no token: loopback
 * clients only. With a token, anyone may load the page (a navigation cannot
 * carry a bearer header) and /v1 still refuses them without the token.
 *
 * The page names its files under /ui/assets/VERSION/ (cmake/embed.cmake), and
 * what is under a version never changes: browsers keep those files for a year
 * without asking again, so a warm load costs the page and its first request to
 * /v1. The page itself and the unversioned /ui/assets/NAME are never stored
 * (no-store, as every answer of the daemon), so an upgraded daemon is seen on
 * the next load.
 *
 * The Content-Security-Policy allows scripts and styles from this origin
 * only, no inline code, and (Trusted Types) no HTML parsed from strings: the
 * scripts put webhook content into the page as text, and the browser refuses
 * any innerHTML that would not. The page cannot be framed (clickjacking).
 */
#include <stdlib.h>
#include <string.h>

#include "hr/http.h"
#include "hr/ui.h"

/*
 * Name, value pairs. Referrer-Policy keeps event ids out of other sites'
 * logs; X-Frame-Options is frame-ancestors for browsers older than CSP 2.
 * X-Content-Type-Options: nosniff is on every answer (http.c).
 */
static const char *const security_headers[] = {
	/* clang-format off */
	"Content-Security-Policy",
	    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
	    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; "
	    "require-trusted-types-for 'script'; trusted-types 'none'",
	"Referrer-Policy", "no-referrer",
	"X-Frame-Options", "DENY",
	"Cross-Origin-Opener-Policy", "same-origin",
	"Cross-Origin-Resource-Policy", "same-origin",
	NULL,
	/* clang-format on */
};

static const struct {
	const char *ext;
	const char *type;
} content_types[] = {
	{ ".html", "text/html; charset=utf-8" },
	{ ".js", "text/javascript; charset=utf-8" },
	{ ".css", "text/css; charset=utf-8" },
	{ ".svg", "image/svg+xml" },
};

const char *
hr_ui_content_type(const char *name)
{
	const char *dot = strrchr(name, '.');

	for (size_t i = 0; dot != NULL && i < HR_ARRAY_LEN(content_types); i++)
		if (strcmp(dot, content_types[i].ext) == 0)
			return content_types[i].type;
	return NULL;
}

const struct hr_ui_asset *
hr_ui_asset_find(const char *name)
{
	for (const struct hr_ui_asset *a = hr_ui_assets; a->name != NULL; a++)
		if (strcmp(a->name, name) == 0)
			return a;
	return NULL;
}

#define CACHE_FOREVER "public, max-age=31536000, immutable"

/*
 * The embedded bytes are copied: a reply takes its body and frees it. The
 * headers go first: a page is never served without them (a failure is a 500).
 * `cache`: a Cache-Control value, or NULL for the daemon's no-store.
 */
static int
reply_bytes(struct hr_req *req, const char *type, const char *cache, const void *data, size_t len)
{
	char *copy;

	for (const char *const *h = security_headers; h[0] != NULL; h += 2)
		if (!hr_req_set_header(req, h[0], h[1]))
			return HR_ENOMEM;
	if (cache != NULL && !hr_req_set_header(req, "Cache-Control", cache))
		return HR_ENOMEM;
	if ((copy = malloc(len + 1)) == NULL)
		return HR_ENOMEM;
	memcpy(copy, data, len);
	hr_req_reply_take(req, 200, type, copy, len);
	return HR_OK;
}

static int
reply_asset(struct hr_req *req, const char *name, const char *cache)
{
	const struct hr_ui_asset *a = hr_ui_asset_find(name);
	const char *type = a != NULL ? hr_ui_content_type(a->name) : NULL;

	if (a == NULL || type == NULL) {
		hr_req_reply_problem(req, 404, "not-found", "Not Found", NULL, NULL);
		return HR_OK;
	}
	return reply_bytes(req, type, cache, a->data, a->len);
}

/* Every view is the one page; its script reads the path. */
static int
page(struct hr_req *req)
{
	return reply_bytes(
	    req, hr_ui_content_type("index.html"), NULL, hr_ui_page, strlen(hr_ui_page));
}

static int
asset(struct hr_req *req)
{
	return reply_asset(req, hr_req_param(req, 0), NULL);
}

/*
 * Another version's file is not found rather than served: an open page of
 * the old build would mix its modules with the new build's.
 */
static int
versioned_asset(struct hr_req *req)
{
	if (strcmp(hr_req_param(req, 0), hr_ui_version) != 0) {
		hr_req_reply_problem(req, 404, "not-found", "Not Found", NULL, NULL);
		return HR_OK;
	}
	return reply_asset(req, hr_req_param(req, 1), CACHE_FOREVER);
}

/* The filters the views keep in their URL; /v1 checks the values. */
static const struct hr_param events_params[] = { { "source", 0 }, { "provider", 0 }, { "kind", 0 },
	{ "session", 0 }, { "room", 0 }, { "since", 0 }, { "until", 0 }, { NULL, 0 } };
static const struct hr_param sessions_params[] = { { "provider", 0 }, { "status", 0 },
	{ NULL, 0 } };
static const struct hr_param no_params[] = { { NULL, 0 } };

const struct hr_route hr_ui_routes[] = {
	{ "GET", "/ui", HR_ROUTE_UI, NULL, page, events_params },
	{ "GET", "/ui/", HR_ROUTE_UI, NULL, page, events_params },
	{ "GET", "/ui/events", HR_ROUTE_UI, NULL, page, events_params },
	{ "GET", "/ui/events/{}", HR_ROUTE_UI, NULL, page, no_params },
	{ "GET", "/ui/sessions", HR_ROUTE_UI, NULL, page, sessions_params },
	{ "GET", "/ui/sessions/{}", HR_ROUTE_UI, NULL, page, no_params },
	{ "GET", "/ui/rejections", HR_ROUTE_UI, NULL, page, no_params },
	{ "GET", "/ui/rejections/{}", HR_ROUTE_UI, NULL, page, no_params },
	{ "GET", "/ui/destinations", HR_ROUTE_UI, NULL, page, no_params },
	{ "GET", "/ui/assets/{}", HR_ROUTE_UI, NULL, asset, no_params },
	{ "GET", "/ui/assets/{}/{}", HR_ROUTE_UI, NULL, versioned_asset, no_params },
	{ NULL, NULL, 0, NULL, NULL, NULL },
};
