/*
 * dedup.c - which key makes two deliveries of a webhook "the same event".
 *
 * Providers retry and double-send (Tavus sends system.pal_joined and its
 * legacy twin system.replica_joined; retried Standard Webhooks keep their
 * webhook-id). The key is computed here, on the HTTP thread; the store
 * enforces it with a unique key inside the insert transaction, so two
 * identical requests racing on two connections still store one event.
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "hr/dedup.h"
#include "hr/schema.h"

/* SHA-256 over the concatenation of `parts` (NUL-separated), as hex. */
static void
hash_parts(const char *const *parts, const size_t *lens, size_t n, char out[HR_DEDUP_KEY_LEN])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	out[0] = '\0';
	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
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

static void
key_of(const char *tag, const char *value, size_t len, char out[HR_DEDUP_KEY_LEN])
{
	const char *parts[] = { tag, value };
	size_t lens[] = { strlen(tag), len };

	hash_parts(parts, lens, 2, out);
}

/* The value at a slash-separated path as text ("" when absent, null or not a scalar). */
static const char *
path_text(json_t *root, const char *path, char *buf, size_t len)
{
	char seg[64];
	json_t *v = root;

	while (v != NULL && *path != '\0') {
		size_t n = strcspn(path, "/");

		if (n >= sizeof(seg))
			return "";
		memcpy(seg, path, n);
		seg[n] = '\0';
		v = json_is_object(v) ? json_object_get(v, seg) : NULL;
		path += n + (path[n] == '/');
	}
	if (json_is_string(v))
		return json_string_value(v);
	if (json_is_integer(v))
		snprintf(buf, len, "%lld", (long long)json_integer_value(v));
	else if (json_is_real(v))
		snprintf(buf, len, "%.17g", json_real_value(v));
	else
		return "";
	return buf;
}

/* Kind name plus the values of its natural key paths; false if the kind has none. */
static bool
natural_key(const struct hr_event *ev, char out[HR_DEDUP_KEY_LEN])
{
	const struct hr_kind_desc *kd = hr_kind_desc(ev->kind);
	const char *parts[9];
	size_t lens[9], n = 0;
	char bufs[8][32];

	if (kd == NULL || kd->dedup_paths == NULL || !json_is_object(ev->root))
		return false;
	parts[n] = kd->name;
	lens[n++] = strlen(kd->name);
	for (size_t i = 0; kd->dedup_paths[i] != NULL && n < 9; i++, n++) {
		parts[n] = path_text(ev->root, kd->dedup_paths[i], bufs[n - 1], sizeof(bufs[0]));
		lens[n] = strlen(parts[n]);
	}
	hash_parts(parts, lens, n, out);
	return true;
}

bool
hr_dedup_key(const struct hr_source_cfg *src, const struct hr_event *ev, const char *body,
    size_t len, hr_dedup_header_fn header, void *header_arg, const char *forced_id,
    char out[HR_DEDUP_KEY_LEN])
{
	const char *v = NULL;

	if (forced_id != NULL) {
		key_of("webhook-id", forced_id, strlen(forced_id), out);
		return true;
	}
	if (strcmp(src->dedup, "off") == 0)
		return false;
	if (strcmp(src->dedup, "body") == 0) {
		key_of("body", body, len, out);
		return true;
	}
	if (strncmp(src->dedup, "header:", 7) == 0)
		v = header(header_arg, src->dedup + 7);
	if (v == NULL)
		v = header(header_arg, "webhook-id");
	if (v == NULL)
		v = header(header_arg, "svix-id");
	if (v != NULL) {
		key_of("header", v, strlen(v), out);
		return true;
	}
	if (natural_key(ev, out))
		return true;
	key_of("body", body, len, out);
	return true;
}
