/* dedup.h - the deduplication key of an inbound event. */
#ifndef HR_DEDUP_H
#define HR_DEDUP_H

#include <stdbool.h>
#include <stddef.h>

#include "hr/cfg.h"
#include "hr/event.h"

#define HR_DEDUP_KEY_LEN 65 /* SHA-256 in hex, NUL included */

/* A header value by name, NULL when absent. */
typedef const char *(*hr_dedup_header_fn)(void *arg, const char *name);

/*
 * The key under which `ev` is stored at most once per source, as hex SHA-256
 * in `out`. The source's `dedup` setting picks it: `auto` takes the
 * webhook-id (or svix-id) header, else, on an `auth = daily` or `hmac`
 * source, the delivery id the kind's provider puts in the body (struct
 * hr_kind_desc.dedup_id: Daily's envelope id),
 * else the kind's twin key (the one twin a provider documents), else the
 * SHA-256 of the body's bytes, unless they name no one callback (enum
 * hr_bytes_key); `header:NAME`
 * that header (else as auto); `body` the body's hash. On `auth = hmac` and
 * `auth = daily` sources no header keys anything (the signature does not cover it).
 * `query`: the callback URL's kept parameters (JSON; NULL: none), part of
 * every key made of what was sent (the bytes, the twin) on a source without
 * a signature (none, token, basic: whoever may post may post anything there);
 * a signature does not cover it.
 * `forced_id` (the verified webhook-id of a standard-webhooks source, whole:
 * it is hashed, never cut) wins over the setting. Returns false for
 * `dedup = off` without a forced id, and when no key could be made (out of
 * memory): then nothing is deduplicated, the event is stored.
 */
bool hr_dedup_key(const struct hr_source_cfg *, const struct hr_event *ev, const char *body,
    size_t len, const char *query, hr_dedup_header_fn header, void *header_arg,
    const char *forced_id, char out[HR_DEDUP_KEY_LEN]);

#endif
