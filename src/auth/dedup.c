/*
 * dedup.c - which key makes two deliveries of a webhook "the same event".
 *
 * Tavus and PailFlow never retry: a body answered "duplicate" is gone for
 * good, so a key may only merge bodies that are the same callback. That is
 * an exact resend (the body's SHA-256), a delivery id the sender gives (a
 * retried Standard Webhook keeps its webhook-id; a Daily event keeps its
 * envelope id, whose retries may differ in event_ts), or a twin the provider
 * documents (Tavus system.pal_joined and its legacy system.replica_joined).
 * Fields such as room_name or conversation_id name a session, not one
 * callback: a reused Daily room has many session_complete events, and two
 * of them can have the same bytes (a bot that heard nothing: no transcript
 * id, no duration, an empty transcript), so that kind has no key at all
 * unless the sender names the delivery.
 *
 * The key is computed here, on the HTTP thread; the store enforces it with
 * a unique key inside the insert transaction, so two identical requests
 * racing on two connections still store one event.
 */
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hr/dedup.h"
#include "hr/schema.h"

/* SHA-256, fetched once: EVP_sha256() makes every EVP_DigestInit_ex() look the
 * implementation up again in the provider (about 3k instructions an event). */
static EVP_MD *sha256;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void
fetch_sha256(void)
{
	sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

/* SHA-256 over the concatenation of `parts` (NUL-separated), as hex. */
static void
hash_parts(const char *const *parts, const size_t *lens, size_t n, char out[HR_DEDUP_KEY_LEN])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	out[0] = '\0';
	(void)pthread_once(&sha256_once, fetch_sha256);
	if (ctx == NULL || sha256 == NULL || EVP_DigestInit_ex2(ctx, sha256, NULL) != 1)
		goto out;
	for (size_t i = 0; i < n; i++)
		if (EVP_DigestUpdate(ctx, parts[i], lens[i]) != 1 ||
		    EVP_DigestUpdate(ctx, "", 1) != 1)
			goto out;
	if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1)
		goto out;
	for (unsigned i = 0; i < mdlen && 2 * i + 2 < HR_DEDUP_KEY_LEN; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
		out[2 * i + 2] = '\0';
	}
out:
	EVP_MD_CTX_free(ctx);
}

/* false: no key (OpenSSL failed, out of memory). An empty key would be every
 * such event's, each a "duplicate" of the first: the event goes without one. */
static bool
key_of(const char *tag, const char *value, size_t len, char out[HR_DEDUP_KEY_LEN])
{
	const char *parts[] = { tag, value };
	size_t lens[] = { strlen(tag), len };

	hash_parts(parts, lens, 2, out);
	return out[0] != '\0';
}

/*
 * A key made of what was sent (`n` parts), with the callback URL's kept query
 * parameters when it had any: a user tells callbacks apart by their URLs
 * (`?objective=...`), and two of them may send the same bytes, while a resend
 * goes to the same URL. Without parameters, the key is what it always was.
 */
static bool
sent_key(const char **parts, size_t *lens, size_t n, const char *query, char out[HR_DEDUP_KEY_LEN])
{
	if (query != NULL && query[0] != '\0' && strcmp(query, "{}") != 0) {
		parts[n] = query;
		lens[n++] = strlen(query);
	}
	hash_parts(parts, lens, n, out);
	return out[0] != '\0';
}

/* The body's bytes (and the query's). */
static bool
body_key(const char *body, size_t len, const char *query, char out[HR_DEDUP_KEY_LEN])
{
	const char *parts[3] = { "body", body };
	size_t lens[3] = { 4, len };

	return sent_key(parts, lens, 2, query, out);
}

/* The object holding the last segment of `path`, and that segment; NULL if none. */
static json_t *
parent_of(json_t *root, const char *path, char *last, size_t len)
{
	json_t *v = root;

	for (;;) {
		size_t n = strcspn(path, "/");

		if (n >= len || !json_is_object(v))
			return NULL;
		memcpy(last, path, n);
		last[n] = '\0';
		if (path[n] == '\0')
			return v;
		v = json_object_get(v, last);
		path += n + 1;
	}
}

/* Erase `path` from `root`; a missing path is fine. */
static void
erase(json_t *root, const char *path)
{
	char key[64];
	json_t *parent = parent_of(root, path, key, sizeof(key));

	if (parent != NULL)
		(void)json_object_del(parent, key);
}

/* Move the value at `from` to `to` when `to` is absent (the twin's spelling). */
static int
rename_member(json_t *root, const char *from, const char *to)
{
	char fkey[64], tkey[64];
	json_t *fp = parent_of(root, from, fkey, sizeof(fkey));
	json_t *tp = parent_of(root, to, tkey, sizeof(tkey));
	json_t *v = fp != NULL ? json_object_get(fp, fkey) : NULL;

	if (v == NULL || tp == NULL || json_object_get(tp, tkey) != NULL)
		return 0;
	if (json_object_set(tp, tkey, v) != 0)
		return -1;
	return json_object_del(fp, fkey);
}

/*
 * The twin key (schema.h, struct hr_dedup_twin): the kind and the canonical
 * body with the twins' differences erased. False when memory ran out: then
 * the caller keys by the bytes, which can only store a twin twice.
 */
static bool
twin_key(const struct hr_event *ev, const struct hr_dedup_twin *tw, const char *query,
    char out[HR_DEDUP_KEY_LEN])
{
	json_t *copy = json_deep_copy(ev->root);
	const char *parts[4];
	size_t lens[4];
	char *text = NULL;
	bool ok = false;

	if (copy == NULL)
		goto out;
	for (size_t i = 0; i < HR_TWIN_PATHS && tw->erase[i] != NULL; i++)
		erase(copy, tw->erase[i]);
	for (size_t i = 0; i < HR_TWIN_PATHS && tw->alias[i][0] != NULL; i++)
		if (rename_member(copy, tw->alias[i][0], tw->alias[i][1]) != 0)
			goto out;
	if ((text = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY)) == NULL)
		goto out;
	parts[0] = "twin";
	parts[1] = hr_kind_name(ev->kind);
	parts[2] = text;
	for (size_t i = 0; i < 3; i++)
		lens[i] = strlen(parts[i]);
	ok = sent_key(parts, lens, 3, query, out);
out:
	free(text);
	json_decref(copy);
	return ok;
}

/*
 * May a delivery-id header key this source's events? Only when whoever
 * could send the header could send the body too: an unsigned source (its
 * token or address is all it takes), or a signature that covers the header
 * (standard-webhooks: the verified id is forced before we get here). An
 * HMAC signs the body (and a timestamp), never an id header: on such a
 * source (hmac, daily) a captured request with a fresh id would be a new
 * event each time.
 */
static bool
header_may_key(const struct hr_source_cfg *src)
{
	return src->auth != HR_AUTH_HMAC && src->auth != HR_AUTH_DAILY;
}

/* A header or id that names nothing (absent, empty, blanks only) keys nothing:
 * as one key it would make every later event of its kind a "duplicate". */
static const char *
named(const char *v)
{
	return v != NULL && v[strspn(v, " \t")] != '\0' ? v : NULL;
}

/*
 * The delivery id a kind's provider puts in the body (Daily's envelope id).
 * It names one event: Daily's retries of an event keep it while event_ts
 * (when the webhook was sent) changes, so the bytes cannot key it. It keys
 * only where a signature covers the body, so that only the sender can choose
 * it: on an unsigned source whoever can post could claim a genuine event's
 * id first and have the real one answered "duplicate" and lost.
 */
static const char *
body_delivery_id(const struct hr_source_cfg *src, const struct hr_kind_desc *kd,
    const struct hr_event *ev, size_t *len)
{
	json_t *id;

	if (src->auth != HR_AUTH_DAILY && src->auth != HR_AUTH_HMAC)
		return NULL;
	if (kd == NULL || kd->dedup_id == NULL || !json_is_object(ev->root))
		return NULL;
	id = json_object_get(ev->root, kd->dedup_id);
	/* Its whole length: an id with a \u0000 ends there as a C string, and two
	 * events "evt-1\u0000a" and "evt-1\u0000b" were one, the second lost. */
	*len = json_string_length(id);
	return named(json_string_value(id));
}

/*
 * The delivery id with the content it names, the envelope's `payload` (sorted
 * keys, no blanks): a retry keeps both, event_ts aside. The id alone does not
 * name one event: Daily's recording, transcript and streaming ids are the type,
 * the instance id and the second ("rec-rtd-<instance>-1692124192"), and every
 * recording started without an instanceId has Daily's default one, in every
 * room of the domain: two rooms' recordings ready in the same second had one
 * key, and the second was answered "duplicate" and lost (review RD40). No key
 * when the payload cannot be written out (out of memory): stored, not lost.
 */
static bool
delivery_id_key(const struct hr_kind_desc *kd, const struct hr_event *ev, const char *id,
    size_t id_len, char out[HR_DEDUP_KEY_LEN])
{
	json_t *payload = json_object_get(ev->root, "payload");
	char tag[48], *text = NULL;
	const char *parts[3];
	size_t lens[3];

	if (payload != NULL &&
	    (text = json_dumps(payload, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY)) == NULL)
		return false;
	snprintf(tag, sizeof(tag), "id:%s", hr_provider_name(kd->provider));
	parts[0] = tag;
	parts[1] = id;
	parts[2] = text != NULL ? text : "";
	lens[0] = strlen(tag);
	lens[1] = id_len;
	lens[2] = strlen(parts[2]);
	hash_parts(parts, lens, 3, out);
	free(text);
	return out[0] != '\0';
}

/*
 * A kind whose bytes key nothing (PailFlow's session_complete: two quiet
 * sessions of a reused room send the same bytes) on a source that signs a
 * timestamp with the body: the timestamp tells two sends apart, and a replay
 * of one captured request within the tolerance is its duplicate. Signed
 * without a timestamp nothing tells a replay from a second session: stored.
 */
static bool
signed_send_key(const struct hr_source_cfg *src, const char *body, size_t len, const char *query,
    hr_dedup_header_fn header, void *header_arg, char out[HR_DEDUP_KEY_LEN])
{
	const char *ts, *parts[4];
	size_t lens[4];

	if (src->auth != HR_AUTH_HMAC || src->hmac_signed != HR_SIGNED_TIMESTAMP_BODY ||
	    (ts = named(header(header_arg, src->hmac_timestamp_header))) == NULL)
		return false;
	parts[0] = "signed-send";
	parts[1] = ts;
	parts[2] = body;
	for (size_t i = 0; i < 2; i++)
		lens[i] = strlen(parts[i]);
	lens[2] = len;
	return sent_key(parts, lens, 3, query, out);
}

/* Do this event's bytes name one callback (enum hr_bytes_key)? */
static bool
bytes_name_one(const struct hr_kind_desc *kd, const struct hr_event *ev)
{
	if (kd == NULL || kd->bytes_key == HR_BYTES_KEYED)
		return true;
	return kd->bytes_key == HR_BYTES_KEYED_IF_TIMED && json_is_object(ev->root) &&
	    named(json_string_value(json_object_get(ev->root, "timestamp"))) != NULL;
}

bool
hr_dedup_key(const struct hr_source_cfg *src, const struct hr_event *ev, const char *body,
    size_t len, const char *query, hr_dedup_header_fn header, void *header_arg,
    const char *forced_id, char out[HR_DEDUP_KEY_LEN])
{
	const struct hr_kind_desc *kd = ev != NULL ? hr_kind_desc(ev->kind) : NULL;
	const char *v = NULL;
	size_t vlen = 0;

	if (named(forced_id) != NULL)
		return key_of("webhook-id", forced_id, strlen(forced_id), out);
	/* A signature covers the body, never the query: on a signed source a replay
	 * with a parameter added would be a new key, stored and forwarded again (a
	 * review). There only the sender's bytes key. */
	if (hr_cfg_signs_body(src))
		query = NULL;
	if (strcmp(src->dedup, "off") == 0)
		return false;
	if (strcmp(src->dedup, "body") == 0)
		return body_key(body, len, query, out);
	if (header_may_key(src)) {
		if (strncmp(src->dedup, "header:", 7) == 0)
			v = named(header(header_arg, src->dedup + 7));
		if (v == NULL)
			v = named(header(header_arg, "webhook-id"));
		if (v == NULL)
			v = named(header(header_arg, "svix-id"));
	}
	if (v != NULL)
		return key_of("header", v, strlen(v), out);
	if ((v = body_delivery_id(src, kd, ev, &vlen)) != NULL)
		return delivery_id_key(kd, ev, v, vlen, out);
	if (kd != NULL && kd->dedup_twin != NULL && json_is_object(ev->root) &&
	    twin_key(ev, kd->dedup_twin, query, out))
		return true;
	if (!bytes_name_one(kd, ev))
		return signed_send_key(src, body, len, query, header, header_arg, out);
	return body_key(body, len, query, out);
}
