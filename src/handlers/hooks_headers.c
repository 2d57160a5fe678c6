/*
 * hooks_headers.c - the request headers kept with a webhook's event, as the
 * JSON text the store keeps: provenance and signatures, no credentials; and
 * whether its Content-Type and Content-Encoding are a JSON body as it is.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "hr/dynbuf.h"
#include "hr/jsontext.h"

#include "hooks_headers.h"

/* Request headers worth keeping with an event: provenance and signatures, no credentials.
 * Sorted (strcmp): the kept headers' JSON text lists them in this order, as the
 * object dumped with JSON_SORT_KEYS it replaced did (test_ingest.py checks). */
static const char *const kept_headers[] = { "content-length", "content-type", "svix-id",
	"svix-signature", "svix-timestamp", "user-agent", "webhook-id", "webhook-signature",
	"webhook-timestamp", "x-forwarded-for", "x-forwarded-proto", "x-real-ip", "x-request-id",
	"x-tavus-signature", "x-webhook-signature", "x-webhook-timestamp", NULL };
#define KEPT_HEADERS (sizeof(kept_headers) / sizeof(kept_headers[0]) - 1)
/* The kept headers' text is bounded by the request's headers (max_header_size),
 * six times over for escapes at worst. */
#define KEPT_TEXT_MAX (1u << 20)

/* X-Forwarded-For's repeated fields are one list (RFC 9110 5.3), and auth reads
 * them so (allow_cidrs, trusted_proxies): a proxy that adds its own field after
 * the one the client wrote is the address the request was let in for. */
static bool
is_list_header(const char *lower)
{
	return strcmp(lower, "x-forwarded-for") == 0;
}

/* `kept` with ", value" after it, bytes that are not UTF-8 as '?' (new; NULL when
 * out of memory). */
static json_t *
joined(const json_t *kept, const char *value)
{
	const char *first = json_string_value(kept);
	size_t a = json_string_length(kept), b = strlen(value);
	char *text = malloc(a + 2 + b + 1);
	json_t *both;

	if (text == NULL)
		return NULL;
	memcpy(text, first, a);
	memcpy(text + a, ", ", 2);
	memcpy(text + a + 2, value, b + 1);
	both = hr_json_string_lossy(text);
	free(text);
	return both;
}

/* One header: its value as a JSON string in its kept slot. A repeat is left
 * out, but for a list header's: auth and dedup read a header's first value
 * (hr_req_header), so the first is the one the event was checked and keyed by.
 * A value jansson refuses (not UTF-8) is left out too, as an object's
 * json_object_set_new(json_string()) did; but a list header's fields are kept
 * every one, their bad bytes as '?', or the list would look whole without its
 * first field (review R42NW). */
static int
keep_header(void *arg, const char *name, const char *value)
{
	json_t **kept = arg;
	char lower[64];
	size_t n = strlen(name);

	if (n >= sizeof(lower))
		return 0;
	for (size_t i = 0; i <= n; i++)
		lower[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
	for (size_t k = 0; k < KEPT_HEADERS; k++)
		if (strcmp(kept_headers[k], lower) == 0) {
			json_t *both;

			if (kept[k] == NULL) {
				kept[k] = is_list_header(lower) ? hr_json_string_lossy(value)
				                                : json_string(value);
			} else if (is_list_header(lower) &&
			    (both = joined(kept[k], value)) != NULL) {
				json_decref(kept[k]);
				kept[k] = both;
			}
			break;
		}
	return 0;
}

/* One kept header as "name":"value" (jansson encodes the value). */
static int
add_kept(struct hr_dynbuf *b, const char *name, const json_t *value, bool first)
{
	char small[512], *big = NULL;
	size_t n = json_dumpb(value, small, sizeof(small), JSON_ENCODE_ANY);
	int rc;

	if (n > sizeof(small) && (big = json_dumps(value, JSON_ENCODE_ANY)) == NULL)
		return HR_ENOMEM;
	/* names are kept_headers' own (lower-case ASCII): no escaping, and no
	 * printf per header on the hot path (~900 instructions each) */
	rc = hr_dynbuf_adds(b, first ? "\"" : ",\"");
	if (rc == HR_OK)
		rc = hr_dynbuf_adds(b, name);
	if (rc == HR_OK)
		rc = hr_dynbuf_adds(b, "\":");
	if (rc == HR_OK)
		rc = hr_dynbuf_add(b, big != NULL ? big : small, big != NULL ? strlen(big) : n);
	free(big);
	return rc;
}

/*
 * The kept headers as a compact JSON object, keys sorted: built straight from
 * MHD's header list in the order of kept_headers, without an object, its hash
 * table and a sort per event (new; NULL when out of memory).
 */
char *
hr_hooks_headers_json(struct hr_req *req)
{
	json_t *kept[KEPT_HEADERS] = { NULL };
	struct hr_dynbuf b;
	bool first = true;
	int rc;
	char *text = NULL;
	size_t len;

	hr_req_each_header(req, keep_header, kept);
	hr_dynbuf_init(&b, 256, KEPT_TEXT_MAX);
	rc = hr_dynbuf_adds(&b, "{");
	for (size_t k = 0; k < KEPT_HEADERS && rc == HR_OK; k++)
		if (kept[k] != NULL) {
			rc = add_kept(&b, kept_headers[k], kept[k], first);
			first = false;
		}
	if (rc == HR_OK)
		rc = hr_dynbuf_adds(&b, "}");
	if (rc == HR_OK)
		text = hr_dynbuf_take(&b, &len);
	hr_dynbuf_free(&b);
	for (size_t k = 0; k < KEPT_HEADERS; k++)
		json_decref(kept[k]);
	return text;
}

/* ---- the body's media type and coding ---- */

/* A header value's first token, blanks before it skipped; *n: its length, up to
 * one of `ends`. */
static const char *
first_token(const char *v, const char *ends, size_t *n)
{
	v += strspn(v, " \t");
	*n = strcspn(v, ends);
	return v;
}

/* "application/json", "application/x+json", any case, parameters ignored. */
bool
hr_hooks_is_json_type(const char *ct)
{
	size_t n;

	if (ct == NULL)
		return false;
	ct = first_token(ct, "; \t", &n);
	if (n == 16 && strncasecmp(ct, "application/json", 16) == 0)
		return true;
	return n > 17 && strncasecmp(ct, "application/", 12) == 0 &&
	    strncasecmp(ct + n - 5, "+json", 5) == 0;
}

/* No Content-Encoding, or "identity" (any case, blanks around): a body as it is. */
bool
hr_hooks_is_identity_coding(const char *ce)
{
	size_t n;

	if (ce == NULL)
		return true;
	ce = first_token(ce, " \t", &n);
	return n == 0 ||
	    (n == 8 && strncasecmp(ce, "identity", 8) == 0 &&
	        ce[n + strspn(ce + n, " \t")] == '\0');
}
