/* tests/unit/test_sign.c - Standard Webhooks and generic HMAC signatures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "hr/sign.h"

/* The Standard Webhooks specification's test vector (standard-webhooks repository). */
#define SW_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define SW_MSG_ID "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define SW_TS     "1614265330"
#define SW_BODY   "{\"test\": 2432232314}"
#define SW_SIG    "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
#define SW_NOW_MS (INT64_C(1614265330) * 1000)
#define TOLERANCE (5 * 60 * 1000)

/* A second, unrelated secret, for rotation. */
#define OTHER_SECRET "whsec_dGhpcyBpcyBhbm90aGVyIHNlY3JldCBrZXk="

/* GitHub's documented example: secret, payload and X-Hub-Signature-256. */
#define GH_SECRET "It's a Secret to Everybody"
#define GH_BODY   "Hello, World!"
#define GH_SIG    "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

/* Computed with Python's hmac module. */
#define TSB_SECRET "stripe-like-secret"
#define TSB_TS     "1700000000"
#define TSB_BODY   "{\"id\":1}"
#define TSB_SIG    "407d0652e4c6820774149fdc884ea912e9aa52c0c740731dd7e0344780b357b6"
#define S512_SIG                                                                                   \
	"58926bddd95b48b79e98b43560e88e3e794f95c66d86d879828a186740a1d9ba"                         \
	"f1324f3a036d8c6580c8340224e873c62ce0eb25b33ad83eb251b5a3f7fe6466"
#define B64_SIG "WxMRPrZ2mLKEfBoHJRf4D9Y4MGw1O+emOiNk4v2QYxk="

#define BODY_LEN(s) (sizeof(s) - 1)
#define U(s)        ((const unsigned char *)(s))

struct key_buf {
	unsigned char b[HR_WHSEC_KEY_MAX];
	struct hr_key k;
};

static void
decode_key(const char *secret, struct key_buf *kb)
{
	size_t n = sizeof(kb->b);

	assert_int_equal(hr_whsec_decode(secret, kb->b, &n), HR_OK);
	kb->k.p = kb->b;
	kb->k.len = n;
}

static int
sw_verify_one(const char *secret, const char *id, const char *ts, const char *sig, const char *body,
    int64_t now_ms)
{
	struct key_buf kb;

	decode_key(secret, &kb);
	return hr_sw_verify(
	    &kb.k, 1, id, ts, sig, body, body != NULL ? strlen(body) : 0, now_ms, TOLERANCE);
}

static int
hmac_verify(enum hr_hmac_alg alg, enum hr_hmac_enc enc, const char *key, const char *prefix,
    enum hr_hmac_signed mode, const char *ts, const char *body, const char *header)
{
	return hr_hmac_verify(
	    alg, enc, U(key), strlen(key), prefix, mode, ts, body, strlen(body), header);
}

/* hr_token_equal */

static void
token_equal_compares_whole_strings(void **state)
{
	(void)state;
	assert_true(hr_token_equal("s3cret", "s3cret"));
	assert_false(hr_token_equal("s3cre", "s3cret"));
	assert_false(hr_token_equal("s3cret!", "s3cret"));
	assert_false(hr_token_equal(NULL, "s3cret"));
	assert_false(hr_token_equal("s3cret", NULL));
}

/* Base64 and secrets */

static void
base64_encode_refuses_a_short_buffer(void **state)
{
	char out[8];

	(void)state;
	assert_int_equal(hr_base64_encode(U("abcd"), 4, out, sizeof(out)), HR_ETOOBIG);
	assert_int_equal(hr_base64_encode(U("abc"), 3, out, 5), HR_OK);
	assert_string_equal(out, "YWJj");
}

static void
whsec_decode_accepts_prefix_and_bare_base64(void **state)
{
	unsigned char a[HR_WHSEC_KEY_MAX], b[HR_WHSEC_KEY_MAX];
	size_t na = sizeof(a), nb = sizeof(b);

	(void)state;
	assert_int_equal(hr_whsec_decode(SW_SECRET, a, &na), HR_OK);
	assert_int_equal(hr_whsec_decode(&SW_SECRET[6], b, &nb), HR_OK);
	assert_int_equal(na, 24);
	assert_int_equal(nb, 24);
	assert_memory_equal(a, b, 24);
}

/* As the real clients (standardwebhooks, svix) take it: a dashboard may show
 * the secret without its padding, and hookrelay refused to start with it. */
static void
whsec_decode_takes_a_secret_without_its_padding(void **state)
{
	unsigned char key[HR_WHSEC_KEY_MAX], want[32];
	size_t n = sizeof(key);

	(void)state;
	for (size_t i = 0; i < sizeof(want); i++)
		want[i] = (unsigned char)i;
	assert_int_equal(
	    hr_whsec_decode("whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", key, &n), HR_OK);
	assert_int_equal(n, 32);
	assert_memory_equal(key, want, 32);
	n = sizeof(key);
	assert_int_equal(hr_whsec_decode("whsec_YWJjZA", key, &n), HR_OK); /* two short */
	assert_int_equal(n, 4);
	assert_memory_equal(key, "abcd", 4);
}

static void
whsec_decode_rejects_bad_base64(void **state)
{
	/* "abd" and "YWJjZ": unpadded, but their last character has bits the
	 * padding would leave over (not the canonical spelling); "Y": no byte */
	const char *bad[] = { "whsec_", "", "whsec_abd", "whsec_ab!d", "whsec_ab=d", "whsec_YWJj ",
		"whsec_ YWJj", "whsec_Y===", "whsec_====", "whsec_Y", "whsec_YWJjZ",
		"whsec_YWJjZA=", NULL };

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		unsigned char key[HR_WHSEC_KEY_MAX];
		size_t n = sizeof(key);

		if (hr_whsec_decode(bad[i], key, &n) != HR_EINVAL)
			fail_msg("accepted \"%s\"", bad[i] != NULL ? bad[i] : "(null)");
	}
}

static void
whsec_decode_refuses_a_key_longer_than_the_buffer(void **state)
{
	unsigned char key[8], big[HR_WHSEC_KEY_MAX];
	size_t n = sizeof(key), nbig = sizeof(big);
	/* 130 bytes, past HR_WHSEC_KEY_MAX, without its padding: too long, not
	 * "not base64" (it was, unpadded) */
	char secret[200] = "whsec_";

	(void)state;
	for (size_t i = 6; i < 6 + 174; i++)
		secret[i] = 'A';
	assert_int_equal(hr_whsec_decode(secret, big, &nbig), HR_ETOOBIG);
	assert_int_equal(hr_whsec_decode(SW_SECRET, key, &n), HR_ETOOBIG);
}

/* Standard Webhooks */

static void
sw_sign_reproduces_the_spec_vector(void **state)
{
	struct key_buf kb;
	char sig[HR_SW_SIG_MAX];

	(void)state;
	decode_key(SW_SECRET, &kb);
	assert_int_equal(hr_sw_sign(kb.k.p, kb.k.len, SW_MSG_ID, INT64_C(1614265330), SW_BODY,
	                     BODY_LEN(SW_BODY), sig, sizeof(sig)),
	    HR_OK);
	assert_string_equal(sig, SW_SIG);
}

static void
sw_sign_refuses_a_short_buffer_and_an_empty_id(void **state)
{
	struct key_buf kb;
	char sig[HR_SW_SIG_MAX];

	(void)state;
	decode_key(SW_SECRET, &kb);
	assert_int_equal(
	    hr_sw_sign(kb.k.p, kb.k.len, SW_MSG_ID, 1, "", 0, sig, sizeof(sig) - 1), HR_ETOOBIG);
	assert_int_equal(hr_sw_sign(kb.k.p, kb.k.len, "", 1, "", 0, sig, sizeof(sig)), HR_EINVAL);
}

static void
sw_verify_accepts_the_spec_vector(void **state)
{
	(void)state;
	assert_int_equal(
	    sw_verify_one(SW_SECRET, SW_MSG_ID, SW_TS, SW_SIG, SW_BODY, SW_NOW_MS), HR_SIG_OK);
}

static void
sw_verify_accepts_either_rotated_key(void **state)
{
	struct key_buf old, cur;
	struct hr_key both[2], only_other[1];

	(void)state;
	decode_key(SW_SECRET, &old);
	decode_key(OTHER_SECRET, &cur);
	both[0] = cur.k;
	both[1] = old.k;
	only_other[0] = cur.k;
	assert_int_equal(hr_sw_verify(both, 2, SW_MSG_ID, SW_TS, SW_SIG, SW_BODY, BODY_LEN(SW_BODY),
	                     SW_NOW_MS, TOLERANCE),
	    HR_SIG_OK);
	assert_int_equal(hr_sw_verify(only_other, 1, SW_MSG_ID, SW_TS, SW_SIG, SW_BODY,
	                     BODY_LEN(SW_BODY), SW_NOW_MS, TOLERANCE),
	    HR_SIG_BAD_SIGNATURE);
}

static void
sw_verify_accepts_the_signature_of_a_second_key(void **state)
{
	struct key_buf other;
	char sig[HR_SW_SIG_MAX];

	(void)state;
	decode_key(OTHER_SECRET, &other);
	assert_int_equal(hr_sw_sign(other.k.p, other.k.len, SW_MSG_ID, INT64_C(1614265330), SW_BODY,
	                     BODY_LEN(SW_BODY), sig, sizeof(sig)),
	    HR_OK);
	assert_int_equal(
	    sw_verify_one(OTHER_SECRET, SW_MSG_ID, SW_TS, sig, SW_BODY, SW_NOW_MS), HR_SIG_OK);
	assert_int_equal(sw_verify_one(SW_SECRET, SW_MSG_ID, SW_TS, sig, SW_BODY, SW_NOW_MS),
	    HR_SIG_BAD_SIGNATURE);
}

static void
sw_verify_finds_the_matching_entry_among_several(void **state)
{
	const char *header = "v1a,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= "
	                     "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=  " SW_SIG " v2,xyz";

	(void)state;
	assert_int_equal(
	    sw_verify_one(SW_SECRET, SW_MSG_ID, SW_TS, header, SW_BODY, SW_NOW_MS), HR_SIG_OK);
}

static void
sw_verify_ignores_entries_of_other_versions(void **state)
{
	const char *header = "v1a,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

	(void)state;
	assert_int_equal(sw_verify_one(SW_SECRET, SW_MSG_ID, SW_TS, header, SW_BODY, SW_NOW_MS),
	    HR_SIG_BAD_SIGNATURE);
}

static void
sw_verify_rejects_a_tampered_body(void **state)
{
	(void)state;
	assert_int_equal(
	    sw_verify_one(SW_SECRET, SW_MSG_ID, SW_TS, SW_SIG, "{\"test\": 2432232315}", SW_NOW_MS),
	    HR_SIG_BAD_SIGNATURE);
}

static void
sw_verify_rejects_a_changed_id(void **state)
{
	(void)state;
	assert_int_equal(sw_verify_one(SW_SECRET, "msg_other", SW_TS, SW_SIG, SW_BODY, SW_NOW_MS),
	    HR_SIG_BAD_SIGNATURE);
}

static void
sw_verify_rejects_a_stale_timestamp(void **state)
{
	(void)state;
	assert_int_equal(
	    sw_verify_one(SW_SECRET, SW_MSG_ID, SW_TS, SW_SIG, SW_BODY, SW_NOW_MS + TOLERANCE + 1),
	    HR_SIG_STALE);
}

static void
sw_verify_rejects_a_future_timestamp(void **state)
{
	(void)state;
	assert_int_equal(
	    sw_verify_one(SW_SECRET, SW_MSG_ID, SW_TS, SW_SIG, SW_BODY, SW_NOW_MS - TOLERANCE - 1),
	    HR_SIG_FUTURE);
}

static void
sw_verify_accepts_timestamps_at_the_tolerance(void **state)
{
	(void)state;
	assert_int_equal(
	    sw_verify_one(SW_SECRET, SW_MSG_ID, SW_TS, SW_SIG, SW_BODY, SW_NOW_MS + TOLERANCE),
	    HR_SIG_OK);
	assert_int_equal(
	    sw_verify_one(SW_SECRET, SW_MSG_ID, SW_TS, SW_SIG, SW_BODY, SW_NOW_MS - TOLERANCE),
	    HR_SIG_OK);
}

static void
sw_verify_reports_missing_headers(void **state)
{
	(void)state;
	assert_int_equal(
	    sw_verify_one(SW_SECRET, NULL, SW_TS, SW_SIG, SW_BODY, SW_NOW_MS), HR_SIG_MISSING);
	assert_int_equal(
	    sw_verify_one(SW_SECRET, SW_MSG_ID, NULL, SW_SIG, SW_BODY, SW_NOW_MS), HR_SIG_MISSING);
	assert_int_equal(
	    sw_verify_one(SW_SECRET, SW_MSG_ID, SW_TS, NULL, SW_BODY, SW_NOW_MS), HR_SIG_MISSING);
	assert_int_equal(
	    sw_verify_one(SW_SECRET, "", SW_TS, SW_SIG, SW_BODY, SW_NOW_MS), HR_SIG_MISSING);
}

static void
sw_verify_rejects_a_malformed_timestamp(void **state)
{
	const char *bad[] = { "-1614265330", "1614265330.5", " 1614265330", "0x10", "abc",
		"1614265330000000" };

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(
		    sw_verify_one(SW_SECRET, SW_MSG_ID, bad[i], SW_SIG, SW_BODY, SW_NOW_MS),
		    HR_SIG_BAD_TIMESTAMP);
}

static void
sw_verify_rejects_malformed_signature_entries(void **state)
{
	const char *bad[] = { "v1,", "v1,not-base64!", "v1,g0hM9SsE", "g0hM9SsE+OTPJTGt",
		"v1 g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=" };

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(
		    sw_verify_one(SW_SECRET, SW_MSG_ID, SW_TS, bad[i], SW_BODY, SW_NOW_MS),
		    HR_SIG_BAD_SIGNATURE);
}

static void
sw_verify_without_keys_matches_nothing(void **state)
{
	(void)state;
	assert_int_equal(hr_sw_verify(NULL, 0, SW_MSG_ID, SW_TS, SW_SIG, SW_BODY, BODY_LEN(SW_BODY),
	                     SW_NOW_MS, TOLERANCE),
	    HR_SIG_BAD_SIGNATURE);
}

/* Generic HMAC */

static void
hmac_verify_accepts_github_sha256_hex(void **state)
{
	(void)state;
	assert_int_equal(hmac_verify(HR_HMAC_SHA256, HR_ENC_HEX, GH_SECRET,
	                     "sha256=", HR_SIGNED_BODY, NULL, GH_BODY, GH_SIG),
	    HR_SIG_OK);
}

static void
hmac_verify_hex_is_case_insensitive(void **state)
{
	char upper[sizeof(GH_SIG)];

	(void)state;
	memcpy(upper, GH_SIG, sizeof(GH_SIG));
	for (char *c = upper + 7; *c != '\0'; c++)
		if (*c >= 'a' && *c <= 'f')
			*c = (char)(*c - 'a' + 'A');
	assert_int_equal(hmac_verify(HR_HMAC_SHA256, HR_ENC_HEX, GH_SECRET,
	                     "sha256=", HR_SIGNED_BODY, NULL, GH_BODY, upper),
	    HR_SIG_OK);
}

static void
hmac_verify_requires_the_prefix(void **state)
{
	(void)state;
	assert_int_equal(hmac_verify(HR_HMAC_SHA256, HR_ENC_HEX, GH_SECRET,
	                     "sha256=", HR_SIGNED_BODY, NULL, GH_BODY, &GH_SIG[7]),
	    HR_SIG_BAD_SIGNATURE);
	assert_int_equal(hmac_verify(HR_HMAC_SHA256, HR_ENC_HEX, GH_SECRET, "", HR_SIGNED_BODY,
	                     NULL, GH_BODY, &GH_SIG[7]),
	    HR_SIG_OK);
}

static void
hmac_verify_rejects_a_tampered_body(void **state)
{
	(void)state;
	assert_int_equal(hmac_verify(HR_HMAC_SHA256, HR_ENC_HEX, GH_SECRET,
	                     "sha256=", HR_SIGNED_BODY, NULL, "Hello, World?", GH_SIG),
	    HR_SIG_BAD_SIGNATURE);
}

static void
hmac_verify_rejects_a_wrong_secret(void **state)
{
	(void)state;
	assert_int_equal(hmac_verify(HR_HMAC_SHA256, HR_ENC_HEX, "not it",
	                     "sha256=", HR_SIGNED_BODY, NULL, GH_BODY, GH_SIG),
	    HR_SIG_BAD_SIGNATURE);
}

static void
hmac_verify_rejects_truncated_and_malformed_hex(void **state)
{
	const char *bad[] = {
		"sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e",
		"sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e1",
		"sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e1g",
		"sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e1700",
		"sha256=",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(hmac_verify(HR_HMAC_SHA256, HR_ENC_HEX, GH_SECRET,
		                     "sha256=", HR_SIGNED_BODY, NULL, GH_BODY, bad[i]),
		    HR_SIG_BAD_SIGNATURE);
}

static void
hmac_verify_reports_a_missing_header(void **state)
{
	(void)state;
	assert_int_equal(hr_hmac_verify(HR_HMAC_SHA256, HR_ENC_HEX, U(GH_SECRET), strlen(GH_SECRET),
	                     "sha256=", HR_SIGNED_BODY, NULL, GH_BODY, BODY_LEN(GH_BODY), NULL),
	    HR_SIG_MISSING);
}

static void
hmac_verify_signs_timestamp_dot_body(void **state)
{
	(void)state;
	assert_int_equal(hmac_verify(HR_HMAC_SHA256, HR_ENC_HEX, TSB_SECRET, NULL,
	                     HR_SIGNED_TIMESTAMP_BODY, TSB_TS, TSB_BODY, TSB_SIG),
	    HR_SIG_OK);
	assert_int_equal(hmac_verify(HR_HMAC_SHA256, HR_ENC_HEX, TSB_SECRET, NULL,
	                     HR_SIGNED_TIMESTAMP_BODY, "1700000001", TSB_BODY, TSB_SIG),
	    HR_SIG_BAD_SIGNATURE);
}

static void
hmac_verify_timestamp_mode_needs_the_timestamp(void **state)
{
	(void)state;
	assert_int_equal(hmac_verify(HR_HMAC_SHA256, HR_ENC_HEX, TSB_SECRET, NULL,
	                     HR_SIGNED_TIMESTAMP_BODY, NULL, TSB_BODY, TSB_SIG),
	    HR_SIG_MISSING);
}

static void
hmac_verify_accepts_sha512(void **state)
{
	(void)state;
	assert_int_equal(hmac_verify(HR_HMAC_SHA512, HR_ENC_HEX, "key512", NULL, HR_SIGNED_BODY,
	                     NULL, "{\"a\":1}", S512_SIG),
	    HR_SIG_OK);
	assert_int_equal(hmac_verify(HR_HMAC_SHA256, HR_ENC_HEX, "key512", NULL, HR_SIGNED_BODY,
	                     NULL, "{\"a\":1}", S512_SIG),
	    HR_SIG_BAD_SIGNATURE);
}

static void
hmac_verify_accepts_base64(void **state)
{
	(void)state;
	assert_int_equal(hmac_verify(HR_HMAC_SHA256, HR_ENC_BASE64, "tavus-secret", NULL,
	                     HR_SIGNED_BODY, NULL, "{\"a\":1}", B64_SIG),
	    HR_SIG_OK);
	assert_int_equal(hmac_verify(HR_HMAC_SHA256, HR_ENC_HEX, "tavus-secret", NULL,
	                     HR_SIGNED_BODY, NULL, "{\"a\":1}", B64_SIG),
	    HR_SIG_BAD_SIGNATURE);
}

static void
hmac_compute_matches_the_python_vector(void **state)
{
	unsigned char mac[HR_MAC_MAX];
	size_t n = 0;
	char b64[128];

	(void)state;
	assert_int_equal(hr_hmac_compute(HR_HMAC_SHA256, U("tavus-secret"), 12, HR_SIGNED_BODY,
	                     NULL, "{\"a\":1}", 7, mac, &n),
	    HR_OK);
	assert_int_equal(n, 32);
	assert_int_equal(hr_base64_encode(mac, n, b64, sizeof(b64)), HR_OK);
	assert_string_equal(b64, B64_SIG);
}

/* Timestamps and names */

static void
check_timestamp_classifies_each_case(void **state)
{
	(void)state;
	assert_int_equal(hr_sig_check_timestamp("100", 100000, 0), HR_SIG_OK);
	assert_int_equal(hr_sig_check_timestamp("99", 100000, 999), HR_SIG_STALE);
	assert_int_equal(hr_sig_check_timestamp("101", 100000, 999), HR_SIG_FUTURE);
	assert_int_equal(hr_sig_check_timestamp("", 100000, 999), HR_SIG_MISSING);
	assert_int_equal(hr_sig_check_timestamp(NULL, 100000, 999), HR_SIG_MISSING);
	assert_int_equal(hr_sig_check_timestamp("1e3", 100000, 999), HR_SIG_BAD_TIMESTAMP);
}

static void
status_names_are_stable(void **state)
{
	(void)state;
	assert_string_equal(hr_sig_status_str(HR_SIG_OK), "ok");
	assert_string_equal(hr_sig_status_str(HR_SIG_BAD_SIGNATURE), "bad_signature");
	assert_string_equal(hr_sig_status_str(HR_SIG_INTERNAL), "internal");
	assert_string_equal(hr_sig_status_str(99), "unknown");
	assert_string_equal(hr_sig_status_str(-1), "unknown");
}

/* ---- Daily.co: base64 HMAC-SHA256 of "<ms timestamp>.<body>", key = base64-decoded secret ---- */

/* Computed with Python: base64.b64encode(hmac.new(base64.b64decode(SECRET),
 * TS.encode() + b"." + BODY, hashlib.sha256).digest()). */
#define DY_SECRET "aG9va3JlbGF5LWRhaWx5LXRlc3Qta2V5LTAxMjM0NTY3ODk="
#define DY_TS     "1718000000123"
#define DY_NOW_MS INT64_C(1718000000123)
#define DY_BODY                                                                                    \
	"{\"version\":\"1.0.0\",\"type\":\"meeting.started\",\"id\":\"met-sta-1\",\"payload\":{"   \
	"\"room\":\"r1\",\"meeting_id\":\"m1\",\"start_ts\":1718000000},\"event_ts\":1718000000."  \
	"1}"
#define DY_SIG "CaG0Bixn+fXwI1sWXtKsdYBNZwiUh35ni4imG6bBNfQ="
/* The same MAC in hex, keyed with the secret's text, and over the body alone:
 * what public verifiers get wrong, each refused. */
#define DY_SIG_HEX       "09a1b4062c67f9f5f0235b165ed2ac75804d670894877e678b88a61ba6c135f4"
#define DY_SIG_RAW_KEY   "m1KR+guK9rUS6HJX9QJkIUyWTMUGSTQnpSddAsuaYZg="
#define DY_SIG_BODY_ONLY "mG3Ql8VtV6cW2eZupdBu1pNiuQfjOV8mKGHcLFM3GGM="

static struct hr_key
daily_key(unsigned char *buf, size_t cap)
{
	size_t n = cap;

	assert_int_equal(hr_base64_decode(DY_SECRET, buf, &n), HR_OK);
	return (struct hr_key){ buf, n };
}

static void
daily_verify_accepts_the_python_vector(void **state)
{
	unsigned char buf[HR_WHSEC_KEY_MAX];
	struct hr_key k = daily_key(buf, sizeof(buf));

	(void)state;
	assert_int_equal(
	    hr_daily_verify(&k, 1, DY_TS, DY_SIG, DY_BODY, BODY_LEN(DY_BODY), DY_NOW_MS, TOLERANCE),
	    HR_SIG_OK);
	/* blanks around the header value are not part of it */
	assert_int_equal(hr_daily_verify(&k, 1, DY_TS, " " DY_SIG " ", DY_BODY, BODY_LEN(DY_BODY),
	                     DY_NOW_MS, TOLERANCE),
	    HR_SIG_OK);
}

static void
daily_sign_reproduces_the_python_vector(void **state)
{
	unsigned char buf[HR_WHSEC_KEY_MAX];
	struct hr_key k = daily_key(buf, sizeof(buf));
	char out[64];

	(void)state;
	assert_int_equal(
	    hr_daily_sign(k.p, k.len, DY_TS, DY_BODY, BODY_LEN(DY_BODY), out, sizeof(out)), HR_OK);
	assert_string_equal(out, DY_SIG);
}

static void
daily_verify_refuses_the_common_mistakes(void **state)
{
	unsigned char buf[HR_WHSEC_KEY_MAX];
	struct hr_key k = daily_key(buf, sizeof(buf));
	static const char *const wrong[] = { DY_SIG_HEX, DY_SIG_RAW_KEY, DY_SIG_BODY_ONLY,
		"sha256=" DY_SIG, "v1," DY_SIG, "" };

	(void)state;
	for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++)
		assert_int_not_equal(hr_daily_verify(&k, 1, DY_TS, wrong[i], DY_BODY,
		                         BODY_LEN(DY_BODY), DY_NOW_MS, TOLERANCE),
		    HR_SIG_OK);
	/* a body changed by one byte */
	assert_int_equal(hr_daily_verify(&k, 1, DY_TS, DY_SIG, DY_BODY " ", BODY_LEN(DY_BODY) + 1,
	                     DY_NOW_MS, TOLERANCE),
	    HR_SIG_BAD_SIGNATURE);
}

static void
daily_timestamp_is_milliseconds_or_seconds(void **state)
{
	unsigned char buf[HR_WHSEC_KEY_MAX];
	struct hr_key k = daily_key(buf, sizeof(buf));

	(void)state;
	/* The same instant in seconds is as fresh; DY_SIG signs the text in ms. */
	assert_int_equal(hr_daily_verify(&k, 1, "1718000000", DY_SIG, DY_BODY, BODY_LEN(DY_BODY),
	                     DY_NOW_MS, TOLERANCE),
	    HR_SIG_BAD_SIGNATURE);
	assert_int_equal(hr_sig_check_timestamp_ms("1718000000", DY_NOW_MS, TOLERANCE), HR_SIG_OK);
	assert_int_equal(
	    hr_sig_check_timestamp_ms("1718000000", DY_NOW_MS + TOLERANCE + 1000, TOLERANCE),
	    HR_SIG_STALE);
	assert_int_equal(
	    hr_sig_check_timestamp_ms("1718000000", DY_NOW_MS - TOLERANCE - 1000, TOLERANCE),
	    HR_SIG_FUTURE);
	/* 11 digits are seconds (year 2514), 12 are milliseconds (1975). */
	assert_int_equal(
	    hr_sig_check_timestamp_ms("17180000001", DY_NOW_MS, TOLERANCE), HR_SIG_FUTURE);
	assert_int_equal(
	    hr_sig_check_timestamp_ms("171800000012", DY_NOW_MS, TOLERANCE), HR_SIG_STALE);
	assert_int_equal(
	    hr_sig_check_timestamp_ms("1718000000.5", DY_NOW_MS, TOLERANCE), HR_SIG_BAD_TIMESTAMP);
	assert_int_equal(hr_daily_verify(&k, 1, DY_TS, DY_SIG, DY_BODY, BODY_LEN(DY_BODY),
	                     DY_NOW_MS + TOLERANCE + 1, TOLERANCE),
	    HR_SIG_STALE);
	assert_int_equal(hr_daily_verify(&k, 1, DY_TS, DY_SIG, DY_BODY, BODY_LEN(DY_BODY),
	                     DY_NOW_MS - TOLERANCE - 1, TOLERANCE),
	    HR_SIG_FUTURE);
	assert_int_equal(hr_daily_verify(&k, 1, "1718000000123.5", DY_SIG, DY_BODY,
	                     BODY_LEN(DY_BODY), DY_NOW_MS, TOLERANCE),
	    HR_SIG_BAD_TIMESTAMP);
	assert_int_equal(
	    hr_daily_verify(&k, 1, NULL, DY_SIG, DY_BODY, BODY_LEN(DY_BODY), DY_NOW_MS, TOLERANCE),
	    HR_SIG_MISSING);
	assert_int_equal(
	    hr_daily_verify(&k, 1, DY_TS, NULL, DY_BODY, BODY_LEN(DY_BODY), DY_NOW_MS, TOLERANCE),
	    HR_SIG_MISSING);
}

static void
daily_verify_tries_every_secret(void **state)
{
	unsigned char buf[HR_WHSEC_KEY_MAX], other[] = "an unrelated key, rotated out";
	struct hr_key keys[2];

	(void)state;
	keys[0] = (struct hr_key){ other, sizeof(other) - 1 };
	keys[1] = daily_key(buf, sizeof(buf));
	assert_int_equal(hr_daily_verify(keys, 2, DY_TS, DY_SIG, DY_BODY, BODY_LEN(DY_BODY),
	                     DY_NOW_MS, TOLERANCE),
	    HR_SIG_OK);
	assert_int_equal(hr_daily_verify(keys, 1, DY_TS, DY_SIG, DY_BODY, BODY_LEN(DY_BODY),
	                     DY_NOW_MS, TOLERANCE),
	    HR_SIG_BAD_SIGNATURE);
}

static void
base64_decode_is_strict(void **state)
{
	unsigned char out[HR_WHSEC_KEY_MAX];
	size_t n;

	(void)state;
	n = sizeof(out);
	assert_int_equal(hr_base64_decode("aGk=", out, &n), HR_OK);
	assert_int_equal(n, 2);
	assert_memory_equal(out, "hi", 2);
	n = sizeof(out);
	assert_int_equal(hr_base64_decode("aGk", out, &n), HR_EINVAL); /* unpadded */
	n = sizeof(out);
	assert_int_equal(hr_base64_decode("aGl=", out, &n), HR_EINVAL); /* stray bits */
	n = sizeof(out);
	assert_int_equal(hr_base64_decode("a Gk=", out, &n), HR_EINVAL);
	n = sizeof(out);
	assert_int_equal(hr_base64_decode("", out, &n), HR_EINVAL);
	n = 1;
	assert_int_equal(hr_base64_decode("aGk=", out, &n), HR_ETOOBIG);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(token_equal_compares_whole_strings),
		cmocka_unit_test(base64_encode_refuses_a_short_buffer),
		cmocka_unit_test(whsec_decode_accepts_prefix_and_bare_base64),
		cmocka_unit_test(whsec_decode_takes_a_secret_without_its_padding),
		cmocka_unit_test(whsec_decode_rejects_bad_base64),
		cmocka_unit_test(whsec_decode_refuses_a_key_longer_than_the_buffer),
		cmocka_unit_test(sw_sign_reproduces_the_spec_vector),
		cmocka_unit_test(sw_sign_refuses_a_short_buffer_and_an_empty_id),
		cmocka_unit_test(sw_verify_accepts_the_spec_vector),
		cmocka_unit_test(sw_verify_accepts_either_rotated_key),
		cmocka_unit_test(sw_verify_accepts_the_signature_of_a_second_key),
		cmocka_unit_test(sw_verify_finds_the_matching_entry_among_several),
		cmocka_unit_test(sw_verify_ignores_entries_of_other_versions),
		cmocka_unit_test(sw_verify_rejects_a_tampered_body),
		cmocka_unit_test(sw_verify_rejects_a_changed_id),
		cmocka_unit_test(sw_verify_rejects_a_stale_timestamp),
		cmocka_unit_test(sw_verify_rejects_a_future_timestamp),
		cmocka_unit_test(sw_verify_accepts_timestamps_at_the_tolerance),
		cmocka_unit_test(sw_verify_reports_missing_headers),
		cmocka_unit_test(sw_verify_rejects_a_malformed_timestamp),
		cmocka_unit_test(sw_verify_rejects_malformed_signature_entries),
		cmocka_unit_test(sw_verify_without_keys_matches_nothing),
		cmocka_unit_test(hmac_verify_accepts_github_sha256_hex),
		cmocka_unit_test(hmac_verify_hex_is_case_insensitive),
		cmocka_unit_test(hmac_verify_requires_the_prefix),
		cmocka_unit_test(hmac_verify_rejects_a_tampered_body),
		cmocka_unit_test(hmac_verify_rejects_a_wrong_secret),
		cmocka_unit_test(hmac_verify_rejects_truncated_and_malformed_hex),
		cmocka_unit_test(hmac_verify_reports_a_missing_header),
		cmocka_unit_test(hmac_verify_signs_timestamp_dot_body),
		cmocka_unit_test(hmac_verify_timestamp_mode_needs_the_timestamp),
		cmocka_unit_test(hmac_verify_accepts_sha512),
		cmocka_unit_test(hmac_verify_accepts_base64),
		cmocka_unit_test(hmac_compute_matches_the_python_vector),
		cmocka_unit_test(check_timestamp_classifies_each_case),
		cmocka_unit_test(status_names_are_stable),
		cmocka_unit_test(daily_verify_accepts_the_python_vector),
		cmocka_unit_test(daily_sign_reproduces_the_python_vector),
		cmocka_unit_test(daily_verify_refuses_the_common_mistakes),
		cmocka_unit_test(daily_timestamp_is_milliseconds_or_seconds),
		cmocka_unit_test(daily_verify_tries_every_secret),
		cmocka_unit_test(base64_decode_is_strict),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
