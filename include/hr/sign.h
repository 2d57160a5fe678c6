/*
 * sign.h - secrets compared and signatures computed with libcrypto.
 *
 * Two signature schemes: Standard Webhooks (https://www.standardwebhooks.com,
 * also sent by Svix) for inbound verification and outbound signing, and a
 * generic HMAC header (GitHub's `sha256=<hex>`, Tavus tools, Stripe-like
 * `timestamp.body`) for inbound verification. Every comparison of secret
 * material is constant-time.
 */
#ifndef HR_SIGN_H
#define HR_SIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hr/cfg.h"
#include "hr/common.h"

#define HR_MAC_MAX       64  /* bytes of the largest MAC, HMAC-SHA512 */
#define HR_SW_SIG_MAX    48  /* "v1," + base64 of an HMAC-SHA256 + NUL */
#define HR_WHSEC_KEY_MAX 128 /* a key buffer big enough for any whsec_ secret we accept */

/* A secret key, borrowed: the bytes at `p` stay the caller's. */
struct hr_key {
	const unsigned char *p;
	size_t len;
};

/*
 * Why a verification failed, for logs and counters; never tell the client.
 * Append-only. HR_SIG_OK equals HR_OK.
 */
enum hr_sig_status {
	HR_SIG_OK = 0,
	HR_SIG_MISSING,       /* a header it needs is absent or empty */
	HR_SIG_BAD_TIMESTAMP, /* not a decimal Unix time in seconds */
	HR_SIG_STALE,         /* older than now - tolerance */
	HR_SIG_FUTURE,        /* newer than now + tolerance */
	HR_SIG_BAD_SIGNATURE, /* malformed, or no signature matches any key */
	HR_SIG_INTERNAL,      /* libcrypto failed (out of memory); the request is refused */
};

/* "ok", "missing_header", "bad_timestamp", "stale", "future", "bad_signature", "internal". */
const char *hr_sig_status_str(int status);

/*
 * Constant-time equality of two secret strings: both are hashed with
 * SHA-256 first, so neither their bytes nor their lengths leak through
 * timing. Either may be NULL (never equal).
 */
bool hr_token_equal(const char *given, const char *expected);

/*
 * Standard base64 (with padding) of `len` bytes into `out`, NUL-terminated.
 * HR_ETOOBIG when `outlen` is less than 4 * ceil(len / 3) + 1.
 */
int hr_base64_encode(const unsigned char *in, size_t len, char *out, size_t outlen) HR_WUR;

/*
 * Decode canonical padded standard base64 `text` (NUL-terminated) into
 * `out`: on entry *outlen is its size, on success the decoded length (at
 * most HR_WHSEC_KEY_MAX). HR_EINVAL when it is not canonical base64 of at
 * least one byte, HR_ETOOBIG when it does not fit.
 */
int hr_base64_decode(const char *text, unsigned char *out, size_t *outlen) HR_WUR;

/*
 * Decode a Standard Webhooks secret, "whsec_<base64>" or the bare base64,
 * into `key`. On entry *keylen is the size of `key`, on success the key's
 * length. HR_EINVAL when it is not canonical padded base64 of at least one
 * byte, HR_ETOOBIG when it does not fit.
 */
int hr_whsec_decode(const char *secret, unsigned char *key, size_t *keylen) HR_WUR;

/*
 * The Standard Webhooks signature "v1,<base64 HMAC-SHA256(key,
 * "<msg_id>.<ts>.<body>")>" into `out` (>= HR_SW_SIG_MAX bytes).
 * HR_EINVAL on an empty key or msg_id, HR_ETOOBIG when `out` is short,
 * HR_ENOMEM when libcrypto fails.
 */
int hr_sw_sign(const unsigned char *key, size_t keylen, const char *msg_id, int64_t ts,
    const char *body, size_t len, char *out, size_t outlen) HR_WUR;

/*
 * Is the decimal Unix time `ts` (seconds) within `tolerance_ms` of `now_ms`
 * (milliseconds since the epoch)? HR_SIG_OK, HR_SIG_MISSING (NULL or ""),
 * HR_SIG_BAD_TIMESTAMP, HR_SIG_STALE or HR_SIG_FUTURE.
 */
int hr_sig_check_timestamp(const char *ts, int64_t now_ms, int64_t tolerance_ms);
/* The same for Daily's X-Webhook-Timestamp: milliseconds, or seconds when it has
 * at most 11 digits (as milliseconds that is before 1973, never fresh). */
int hr_sig_check_timestamp_ms(const char *ts, int64_t now_ms, int64_t tolerance_ms);

/*
 * Verify a Standard Webhooks request: the webhook-id, webhook-timestamp and
 * webhook-signature header values (NULL when absent) and the raw body.
 * `sig_header` holds space-separated "v1,<base64>" entries; other versions
 * are ignored. OK when any entry matches any of the `nkeys` keys (rotation),
 * and the timestamp is within `tolerance_ms` of `now_ms`. Returns an
 * enum hr_sig_status.
 */
int hr_sw_verify(const struct hr_key *keys, size_t nkeys, const char *msg_id, const char *ts_header,
    const char *sig_header, const char *body, size_t len, int64_t now_ms, int64_t tolerance_ms);

/*
 * HMAC of the body (`mode` HR_SIGNED_BODY) or of "<timestamp>.<body>"
 * (HR_SIGNED_TIMESTAMP_BODY) into `mac` (>= HR_MAC_MAX bytes); *maclen is
 * set to its length. HR_EINVAL on an empty key or a NULL timestamp in
 * timestamp mode, HR_ENOMEM when libcrypto fails.
 */
int hr_hmac_compute(enum hr_hmac_alg alg, const unsigned char *key, size_t keylen,
    enum hr_hmac_signed mode, const char *timestamp, const char *body, size_t len,
    unsigned char *mac, size_t *maclen) HR_WUR;

/*
 * Verify a generic signature header: `header_value` is `prefix` (may be ""
 * or NULL) followed by the MAC in `enc` (hex: either case; base64:
 * standard, padded), over what `mode` says. The timestamp's freshness is
 * the caller's: see hr_sig_check_timestamp(). Returns an enum hr_sig_status.
 */
int hr_hmac_verify(enum hr_hmac_alg alg, enum hr_hmac_enc enc, const unsigned char *key,
    size_t keylen, const char *prefix, enum hr_hmac_signed mode, const char *timestamp,
    const char *body, size_t len, const char *header_value);

/*
 * Daily.co: the X-Webhook-Signature value for `body` sent at `ts` (decimal
 * milliseconds), the padded base64 of HMAC-SHA256(key, "<ts>.<body>"), into
 * `out` (>= 45 bytes); `key` is the webhook's hmac secret base64-decoded.
 * HR_EINVAL on an empty key, HR_ETOOBIG when `out` is short.
 */
int hr_daily_sign(const unsigned char *key, size_t keylen, const char *ts, const char *body,
    size_t len, char *out, size_t outlen) HR_WUR;

/*
 * Verify a Daily request: the X-Webhook-Timestamp and X-Webhook-Signature
 * values (NULL when absent) and the raw body, against any of `nkeys` keys
 * (rotation), the timestamp within `tolerance_ms` of `now_ms`. Returns an
 * enum hr_sig_status.
 */
int hr_daily_verify(const struct hr_key *keys, size_t nkeys, const char *ts_header,
    const char *sig_header, const char *body, size_t len, int64_t now_ms, int64_t tolerance_ms);

#endif
