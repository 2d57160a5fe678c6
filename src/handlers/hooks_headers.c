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
#define LIST_HEADER "x-forwarded-for"

/* The headers kept, as keep_header() gathers them. */
struct kept {
	json_t *v[KEPT_HEADERS];
	size_t list_slot;      /* LIST_HEADER's index in kept_headers */
	struct hr_dynbuf list; /* its fields, joined with ", " as they come */
};

/* One header: its value as a JSON string in its kept slot. A repeat is left
 * out, but for the list header's: auth and dedup read a header's first value
 * (hr_req_header), so the first is the one the event was checked and keyed by.
 * A value jansson refuses (not UTF-8) is left out too, as an object's
 * json_object_set_new(json_string()) did; but the list header's fields are kept
 * every one, their bad bytes as '?' (made a JSON string once all are in), or
 * the list would look whole without its first field (review R42NW). */
static int
keep_header(void *arg, const char *name, const char *value)
{
	struct kept *kept = arg;
	char lower[64];
	size_t n = strlen(name);

	if (n >= sizeof(lower))
		return 0;
	for (size_t i = 0; i <= n; i++)
		lower[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
	for (size_t k = 0; k < KEPT_HEADERS; k++)
		if (strcmp(kept_headers[k], lower) == 0) {
			if (k == kept->list_slot) {
				/* an append a field, linear in their number; a failed
				 * one sticks and drops the list (dynbuf.h) */
				if (kept->list.len > 0)
					(void)hr_dynbuf_adds(&kept->list, ", ");
				(void)hr_dynbuf_adds(&kept->list, value);
			} else if (kept->v[k] == NULL)
				kept->v[k] = json_string(value);
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
	struct kept kept = { .list_slot = KEPT_HEADERS };
	json_t **v = kept.v;
	struct hr_dynbuf b;
	bool first = true;
	int rc;
	char *text = NULL;
	size_t len;

	for (size_t k = 0; k < KEPT_HEADERS; k++)
		if (strcmp(kept_headers[k], LIST_HEADER) == 0)
			kept.list_slot = k;
	hr_dynbuf_init(&kept.list, 0, KEPT_TEXT_MAX);
	hr_req_each_header(req, keep_header, &kept);
	if (kept.list.len > 0)
		v[kept.list_slot] = hr_json_string_lossy(kept.list.p);
	hr_dynbuf_free(&kept.list);
	hr_dynbuf_init(&b, 256, KEPT_TEXT_MAX);
	rc = hr_dynbuf_adds(&b, "{");
	for (size_t k = 0; k < KEPT_HEADERS && rc == HR_OK; k++)
		if (v[k] != NULL) {
			rc = add_kept(&b, kept_headers[k], v[k], first);
			first = false;
		}
	if (rc == HR_OK)
		rc = hr_dynbuf_adds(&b, "}");
	if (rc == HR_OK)
		text = hr_dynbuf_take(&b, &len);
	hr_dynbuf_free(&b);
	for (size_t k = 0; k < KEPT_HEADERS; k++)
		json_decref(v[k]);
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
