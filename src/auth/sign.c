/*
 * sign.c - comparisons and MACs over secrets, all through libcrypto.
 *
 * Nothing here is hand-written cryptography: HMAC (EVP_MAC), SHA-256,
 * base64 (EVP_EncodeBlock/EVP_DecodeBlock), hex (OPENSSL_hexstr2buf_ex) and
 * CRYPTO_memcmp come from OpenSSL, so a secret is never compared with an
 * early-exit memcmp. What is ours is the framing: which bytes are signed,
 * how a header is split, and which strict input we accept before handing
 * it to a lenient decoder.
 */
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdio.h>
#include <string.h>

#include "hr/sign.h"

#define SW_MAC_LEN       32  /* Standard Webhooks v1 is HMAC-SHA256 */
#define SIG_TEXT_MAX     256 /* longest signature text decoded: base64 or hex of HR_MAC_MAX */
#define TS_DIGITS_MAX    12  /* seconds until the year 33658; * 1000 cannot overflow */
#define TS_MS_DIGITS_MAX 15  /* milliseconds until the year 33658 */
#define TS_MS_AS_SECONDS 11  /* digits: as milliseconds, before 1973 (never fresh) */
#define DAILY_MAC_LEN    32  /* Daily signs with HMAC-SHA256 */

static const char *const sig_names[] = {
	[HR_SIG_OK] = "ok",
	[HR_SIG_MISSING] = "missing_header",
	[HR_SIG_BAD_TIMESTAMP] = "bad_timestamp",
	[HR_SIG_STALE] = "stale",
	[HR_SIG_FUTURE] = "future",
	[HR_SIG_BAD_SIGNATURE] = "bad_signature",
	[HR_SIG_INTERNAL] = "internal",
};

const char *
hr_sig_status_str(int status)
{
	if (status >= 0 && (size_t)status < HR_ARRAY_LEN(sig_names))
		return sig_names[status];
	return "unknown";
}

bool
hr_token_equal(const char *given, const char *expected)
{
	unsigned char a[EVP_MAX_MD_SIZE], b[EVP_MAX_MD_SIZE];
	unsigned alen = 0, blen = 0;

	if (given == NULL || expected == NULL)
		return false;
	if (EVP_Digest(given, strlen(given), a, &alen, EVP_sha256(), NULL) != 1 ||
	    EVP_Digest(expected, strlen(expected), b, &blen, EVP_sha256(), NULL) != 1)
		return false;
	return alen == blen && CRYPTO_memcmp(a, b, alen) == 0;
}

/* Base64 and hex: libcrypto decodes, we only insist on strict input first. */

int
hr_base64_encode(const unsigned char *in, size_t len, char *out, size_t outlen)
{
	if (len > INT32_MAX / 2 || outlen < (len + 2) / 3 * 4 + 1)
		return HR_ETOOBIG;
	EVP_EncodeBlock((unsigned char *)out, in, (int)len);
	return HR_OK;
}

static bool
is_b64_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	    c == '+' || c == '/';
}

static unsigned
b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return (unsigned)(c - 'A');
	if (c >= 'a' && c <= 'z')
		return (unsigned)(c - 'a') + 26;
	if (c >= '0' && c <= '9')
		return (unsigned)(c - '0') + 52;
	return c == '+' ? 62 : 63;
}

/*
 * Padded standard base64 of `n` characters into `out` (at least 3 * n / 4
 * bytes: EVP_DecodeBlock writes the padding's zero bytes too). EVP_DecodeBlock
 * skips blanks, ignores misplaced padding and the bits the padding leaves
 * over ("QR==" decodes like "QQ=="), so the text is checked here: only the
 * canonical spelling of a value is accepted.
 */
static int
b64_decode(const char *in, size_t n, unsigned char *out, size_t cap, size_t *outlen)
{
	size_t pad = 0, i;
	int got;

	if (n == 0 || n % 4 != 0 || n > INT32_MAX || n / 4 * 3 > cap)
		return HR_EINVAL;
	while (pad < 2 && in[n - 1 - pad] == '=')
		pad++;
	for (i = 0; i < n - pad; i++)
		if (!is_b64_char(in[i]))
			return HR_EINVAL;
	if (pad > 0 && (b64_value(in[n - 1 - pad]) & (pad == 1 ? 0x3u : 0xfu)) != 0)
		return HR_EINVAL;
	got = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
	if (got < 0 || (size_t)got != n / 4 * 3)
		return HR_EINVAL;
	*outlen = (size_t)got - pad;
	return HR_OK;
}

/* Either-case hex of `n` characters into `out`. */
static int
hex_decode(const char *in, size_t n, unsigned char *out, size_t cap, size_t *outlen)
{
	char text[SIG_TEXT_MAX + 1];

	if (n == 0 || n % 2 != 0 || n > SIG_TEXT_MAX)
		return HR_EINVAL;
	memcpy(text, in, n);
	text[n] = '\0';
	if (OPENSSL_hexstr2buf_ex(out, cap, outlen, text, '\0') != 1)
		return HR_EINVAL;
	return HR_OK;
}

int
hr_base64_decode(const char *text, unsigned char *out, size_t *outlen)
{
	unsigned char buf[HR_WHSEC_KEY_MAX + 3];
	size_t n = text != NULL ? strlen(text) : 0, got = 0;
	int rc = HR_EINVAL;

	if (n / 4 * 3 > sizeof(buf)) {
		rc = HR_ETOOBIG;
		goto out;
	}
	if (n == 0 || b64_decode(text, n, buf, sizeof(buf), &got) != HR_OK || got == 0)
		goto out;
	if (got > *outlen) {
		rc = HR_ETOOBIG;
		goto out;
	}
	memcpy(out, buf, got);
	*outlen = got;
	rc = HR_OK;
out:
	OPENSSL_cleanse(buf, sizeof(buf));
	return rc;
}

/*
 * The real clients (the standardwebhooks and svix npm packages, tests/interop)
 * take a secret without its base64 padding, as a dashboard may show it
 * (whsec_ and 43 characters for a 32-byte key), and so does this: only for a
 * whole secret, never a signature.
 */
int
hr_whsec_decode(const char *secret, unsigned char *key, size_t *keylen)
{
	unsigned char buf[HR_WHSEC_KEY_MAX + 3];
	char padded[(HR_WHSEC_KEY_MAX + 3) / 3 * 4 + 4];
	size_t n, got = 0;
	int rc = HR_EINVAL;

	if (secret == NULL)
		goto out;
	if (strncmp(secret, "whsec_", 6) == 0)
		secret += 6;
	n = strlen(secret);
	if ((n + 3) / 4 * 3 > sizeof(buf)) {
		rc = HR_ETOOBIG; /* padded or not */
		goto out;
	}
	if ((n % 4 == 2 || n % 4 == 3) && memchr(secret, '=', n) == NULL) {
		memcpy(padded, secret, n);
		while (n % 4 != 0)
			padded[n++] = '=';
		padded[n] = '\0';
		secret = padded;
	}
	if (b64_decode(secret, n, buf, sizeof(buf), &got) != HR_OK || got == 0)
		goto out;
	if (got > *keylen) {
		rc = HR_ETOOBIG;
		goto out;
	}
	memcpy(key, buf, got);
	*keylen = got;
	rc = HR_OK;
out:
	OPENSSL_cleanse(buf, sizeof(buf));
	OPENSSL_cleanse(padded, sizeof(padded));
	return rc;
}

/* HMAC over a few pieces joined by nothing: the caller passes the dots. */

struct piece {
	const void *p;
	size_t len;
};

static const char *
digest_name(enum hr_hmac_alg alg)
{
	return alg == HR_HMAC_SHA512 ? "SHA512" : "SHA256";
}

static int
hmac_pieces(enum hr_hmac_alg alg, const unsigned char *key, size_t keylen,
    const struct piece *pieces, size_t npieces, unsigned char *mac, size_t *maclen)
{
	OSSL_PARAM params[2];
	EVP_MAC *hmac = NULL;
	EVP_MAC_CTX *ctx = NULL;
	int rc = HR_ENOMEM;

	if (key == NULL || keylen == 0)
		return HR_EINVAL;
	params[0] =
	    OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)digest_name(alg), 0);
	params[1] = OSSL_PARAM_construct_end();
	if ((hmac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL ||
	    (ctx = EVP_MAC_CTX_new(hmac)) == NULL || EVP_MAC_init(ctx, key, keylen, params) != 1)
		goto out;
	for (size_t i = 0; i < npieces; i++)
		if (pieces[i].len > 0 && EVP_MAC_update(ctx, pieces[i].p, pieces[i].len) != 1)
			goto out;
	if (EVP_MAC_final(ctx, mac, maclen, HR_MAC_MAX) != 1)
		goto out;
	rc = HR_OK;
out:
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(hmac);
	return rc;
}

static int
sw_mac(const unsigned char *key, size_t keylen, const char *msg_id, const char *ts,
    const char *body, size_t len, unsigned char *mac)
{
	const struct piece pieces[] = {
		{ msg_id, strlen(msg_id) },
		{ ".", 1 },
		{ ts, strlen(ts) },
		{ ".", 1 },
		{ body, len },
	};
	size_t maclen = 0;
	int rc =
	    hmac_pieces(HR_HMAC_SHA256, key, keylen, pieces, HR_ARRAY_LEN(pieces), mac, &maclen);

	return rc == HR_OK && maclen != SW_MAC_LEN ? HR_ENOMEM : rc;
}

int
hr_sw_sign(const unsigned char *key, size_t keylen, const char *msg_id, int64_t ts,
    const char *body, size_t len, char *out, size_t outlen)
{
	unsigned char mac[HR_MAC_MAX];
	char tsbuf[24];
	int rc;

	if (msg_id == NULL || msg_id[0] == '\0' || key == NULL || keylen == 0)
		return HR_EINVAL;
	if (outlen < HR_SW_SIG_MAX)
		return HR_ETOOBIG;
	snprintf(tsbuf, sizeof(tsbuf), "%lld", (long long)ts);
	if ((rc = sw_mac(key, keylen, msg_id, tsbuf, body, len, mac)) != HR_OK)
		return rc;
	memcpy(out, "v1,", 3);
	rc = hr_base64_encode(mac, SW_MAC_LEN, out + 3, outlen - 3);
	OPENSSL_cleanse(mac, sizeof(mac));
	return rc;
}

/* A decimal Unix time of at most `digits` digits in units of `unit_ms`. */
static int
check_timestamp(
    const char *ts, size_t digits, int64_t unit_ms, int64_t now_ms, int64_t tolerance_ms)
{
	int64_t t = 0;
	size_t n;

	if (ts == NULL || ts[0] == '\0')
		return HR_SIG_MISSING;
	n = strspn(ts, "0123456789");
	if (n == 0 || n > digits || ts[n] != '\0')
		return HR_SIG_BAD_TIMESTAMP;
	for (size_t i = 0; i < n; i++)
		t = t * 10 + (ts[i] - '0');
	t *= unit_ms;
	if (t < now_ms - tolerance_ms)
		return HR_SIG_STALE;
	if (t > now_ms + tolerance_ms)
		return HR_SIG_FUTURE;
	return HR_SIG_OK;
}

int
hr_sig_check_timestamp(const char *ts, int64_t now_ms, int64_t tolerance_ms)
{
	return check_timestamp(ts, TS_DIGITS_MAX, 1000, now_ms, tolerance_ms);
}

/*
 * Milliseconds (Daily's unit as issue 16 reads it), or seconds when the value
 * has at most 11 digits. No source settles Daily's unit (one integration's
 * notes say seconds); read as milliseconds such a value is before 1973 and
 * could never be fresh, so reading it as seconds lets nothing stale in and
 * spares refusing every event of a sender that uses seconds. The signature
 * covers the header's text either way.
 */
int
hr_sig_check_timestamp_ms(const char *ts, int64_t now_ms, int64_t tolerance_ms)
{
	size_t n = ts != NULL ? strspn(ts, "0123456789") : 0;

	if (n > 0 && n <= TS_MS_AS_SECONDS && ts[n] == '\0')
		return check_timestamp(ts, TS_DIGITS_MAX, 1000, now_ms, tolerance_ms);
	return check_timestamp(ts, TS_MS_DIGITS_MAX, 1, now_ms, tolerance_ms);
}

/* Does the base64 text of one "v1," entry equal `mac`? */
static bool
sw_entry_matches(const char *b64, size_t n, const unsigned char *mac)
{
	unsigned char given[SIG_TEXT_MAX];
	size_t got = 0;

	if (n > SIG_TEXT_MAX || b64_decode(b64, n, given, sizeof(given), &got) != HR_OK)
		return false;
	return got == SW_MAC_LEN && CRYPTO_memcmp(given, mac, SW_MAC_LEN) == 0;
}

/* Any "v1,<base64>" entry of the space-separated `sigs` that equals `mac`. */
static bool
sw_header_matches(const char *sigs, const unsigned char *mac)
{
	const char *s = sigs;

	while (*s != '\0') {
		size_t n;

		s += strspn(s, " ");
		n = strcspn(s, " ");
		if (n > 3 && strncmp(s, "v1,", 3) == 0 && sw_entry_matches(s + 3, n - 3, mac))
			return true;
		s += n;
	}
	return false;
}

int
hr_sw_verify(const struct hr_key *keys, size_t nkeys, const char *msg_id, const char *ts_header,
    const char *sig_header, const char *body, size_t len, int64_t now_ms, int64_t tolerance_ms)
{
	unsigned char mac[HR_MAC_MAX];
	int rc;

	if (msg_id == NULL || msg_id[0] == '\0' || sig_header == NULL || sig_header[0] == '\0')
		return HR_SIG_MISSING;
	if ((rc = hr_sig_check_timestamp(ts_header, now_ms, tolerance_ms)) != HR_SIG_OK)
		return rc;
	rc = HR_SIG_BAD_SIGNATURE;
	for (size_t i = 0; i < nkeys && rc == HR_SIG_BAD_SIGNATURE; i++) {
		if (sw_mac(keys[i].p, keys[i].len, msg_id, ts_header, body, len, mac) != HR_OK)
			rc = HR_SIG_INTERNAL;
		else if (sw_header_matches(sig_header, mac))
			rc = HR_SIG_OK;
	}
	OPENSSL_cleanse(mac, sizeof(mac));
	return rc;
}

int
hr_hmac_compute(enum hr_hmac_alg alg, const unsigned char *key, size_t keylen,
    enum hr_hmac_signed mode, const char *timestamp, const char *body, size_t len,
    unsigned char *mac, size_t *maclen)
{
	struct piece pieces[3] = { { NULL, 0 }, { NULL, 0 }, { body, len } };

	if (mode == HR_SIGNED_TIMESTAMP_BODY) {
		if (timestamp == NULL)
			return HR_EINVAL;
		pieces[0] = (struct piece){ timestamp, strlen(timestamp) };
		pieces[1] = (struct piece){ ".", 1 };
	}
	return hmac_pieces(alg, key, keylen, pieces, HR_ARRAY_LEN(pieces), mac, maclen);
}

/* The signature text of a header value: past the prefix, without surrounding blanks. */
static bool
signature_text(const char *value, const char *prefix, const char **sig, size_t *n)
{
	size_t plen = prefix != NULL ? strlen(prefix) : 0;
	const char *s = value + strspn(value, " \t");

	if (strncmp(s, prefix != NULL ? prefix : "", plen) != 0)
		return false;
	s += plen;
	*n = strlen(s);
	while (*n > 0 && (s[*n - 1] == ' ' || s[*n - 1] == '\t'))
		(*n)--;
	*sig = s;
	return *n > 0;
}

int
hr_hmac_verify(enum hr_hmac_alg alg, enum hr_hmac_enc enc, const unsigned char *key, size_t keylen,
    const char *prefix, enum hr_hmac_signed mode, const char *timestamp, const char *body,
    size_t len, const char *header_value)
{
	unsigned char mac[HR_MAC_MAX], given[SIG_TEXT_MAX];
	size_t maclen = 0, got = 0, n = 0;
	const char *sig;
	int rc = HR_SIG_BAD_SIGNATURE;

	if (header_value == NULL || header_value[0] == '\0')
		return HR_SIG_MISSING;
	if (mode == HR_SIGNED_TIMESTAMP_BODY && (timestamp == NULL || timestamp[0] == '\0'))
		return HR_SIG_MISSING;
	if (!signature_text(header_value, prefix, &sig, &n))
		return HR_SIG_BAD_SIGNATURE;
	if ((enc == HR_ENC_HEX ? hex_decode : b64_decode)(sig, n, given, sizeof(given), &got) !=
	    HR_OK)
		return HR_SIG_BAD_SIGNATURE;
	if (hr_hmac_compute(alg, key, keylen, mode, timestamp, body, len, mac, &maclen) != HR_OK)
		rc = HR_SIG_INTERNAL;
	else if (got == maclen && CRYPTO_memcmp(given, mac, maclen) == 0)
		rc = HR_SIG_OK;
	OPENSSL_cleanse(mac, sizeof(mac));
	return rc;
}

int
hr_daily_sign(const unsigned char *key, size_t keylen, const char *ts, const char *body, size_t len,
    char *out, size_t outlen)
{
	unsigned char mac[HR_MAC_MAX];
	size_t maclen = 0;
	int rc;

	rc = hr_hmac_compute(
	    HR_HMAC_SHA256, key, keylen, HR_SIGNED_TIMESTAMP_BODY, ts, body, len, mac, &maclen);
	if (rc == HR_OK)
		rc = hr_base64_encode(mac, maclen, out, outlen);
	OPENSSL_cleanse(mac, sizeof(mac));
	return rc;
}

/*
 * Daily: X-Webhook-Signature is the padded base64 of HMAC-SHA256(key,
 * "<X-Webhook-Timestamp>.<body>"), the timestamp in milliseconds. Nothing
 * else is accepted: a hex digest, a MAC of the body alone or one keyed with
 * the secret's text all fail, as they would at Daily's end.
 */
int
hr_daily_verify(const struct hr_key *keys, size_t nkeys, const char *ts_header,
    const char *sig_header, const char *body, size_t len, int64_t now_ms, int64_t tolerance_ms)
{
	unsigned char mac[HR_MAC_MAX], given[SIG_TEXT_MAX];
	size_t maclen = 0, got = 0, n = 0;
	const char *sig;
	int rc;

	if (sig_header == NULL || sig_header[0] == '\0')
		return HR_SIG_MISSING;
	if ((rc = hr_sig_check_timestamp_ms(ts_header, now_ms, tolerance_ms)) != HR_SIG_OK)
		return rc;
	if (!signature_text(sig_header, "", &sig, &n) ||
	    b64_decode(sig, n, given, sizeof(given), &got) != HR_OK || got != DAILY_MAC_LEN)
		return HR_SIG_BAD_SIGNATURE;
	rc = HR_SIG_BAD_SIGNATURE;
	for (size_t i = 0; i < nkeys && rc == HR_SIG_BAD_SIGNATURE; i++) {
		if (hr_hmac_compute(HR_HMAC_SHA256, keys[i].p, keys[i].len,
		        HR_SIGNED_TIMESTAMP_BODY, ts_header, body, len, mac, &maclen) != HR_OK)
			rc = HR_SIG_INTERNAL;
		else if (maclen == DAILY_MAC_LEN && CRYPTO_memcmp(given, mac, maclen) == 0)
			rc = HR_SIG_OK;
	}
	OPENSSL_cleanse(mac, sizeof(mac));
	return rc;
}
