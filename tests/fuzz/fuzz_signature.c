/*
 * fuzz_signature.c - signature headers, secrets and the auth decision.
 *
 * Input layout: two flag bytes, then '\n'-separated fields
 *
 *	secret, webhook-id, timestamp, webhook-signature, hmac prefix,
 *	hmac header value, Authorization, X-Forwarded-For, ?token=,
 *	/hooks/NAME/TOKEN, and the body (the rest, NULs and all)
 *
 * The fields go to sign.c directly (hr_whsec_decode, hr_sw_verify,
 * hr_hmac_verify for each algorithm, encoding and signed mode,
 * hr_sig_check_timestamp, hr_base64_decode, hr_daily_verify) and, through
 * a fake header table, to
 * hr_auth_check() for every auth mode; those sources come from a fixed
 * config whose secret files are written once, on the first input.
 *
 * Besides "no crash, leak, UB or hang" it checks:
 *  - a whsec_ secret that decodes is canonical base64 (sign.h promises
 *    HR_EINVAL otherwise) and fits the buffer;
 *  - a Daily secret that decodes is canonical base64;
 *  - what hr_sw_sign() / hr_hmac_compute() / hr_daily_sign() produce for the fuzzed key, id,
 *    prefix and body verifies, next to whatever garbage the signature
 *    header also holds, and a changed body does not;
 *  - a request signed correctly (flag 0x10) passes hr_auth_check() in
 *    every mode; an accepted timestamp is within the tolerance.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "fuzz.h"
#include "hr/auth.h"
#include "hr/cfg.h"
#include "hr/sign.h"

#define NOW_S   1700000000
#define NOW_MS  (INT64_C(1700000000) * 1000)
#define TOL_MS  (5 * 60 * 1000)
#define NOW_TXT "1700000000"

/* Flag byte 0. */
#define F_SHA512    0x01u
#define F_BASE64    0x02u
#define F_TS_BODY   0x04u
#define F_SVIX      0x08u /* the webhook-* fields go under svix-* names */
#define F_SELF_SIGN 0x10u /* replace the credentials with correct ones */
#define F_NULLS     0x20u /* an empty field is an absent header */
#define F_UPPER_HEX 0x40u

/* The fixed sources of hr_auth_check(), in the order flag byte 1 picks them. */
enum { SRC_OPEN, SRC_TOKEN, SRC_SW, SRC_HMAC, SRC_STRIPE, SRC_BASIC, SRC_DAILY, NSRC };

static const char *const src_names[NSRC] = { "open", "tok", "sw", "hmac", "stripe", "basic",
	"daily" };

#define DAILY_KEY    "daily-fuzz-key"
#define DAILY_NOW_MS "1700000000000"

static const struct {
	const char *file, *text;
} secret_files[] = {
	{ "tok", "tok-current\ntok-old\n" },
	{ "sw",
	    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n# rotated in:\n"
	    "whsec_c2VjcmV0LWtleS10d28=\n" },
	{ "hmac", "hmac-secret\n" }, { "basic", "user:pass\nops:correct horse\n" },
	{ "daily", "b3RoZXI=\nZGFpbHktZnV6ei1rZXk=\n" }, /* "other", DAILY_KEY */
};

static const char config_fmt[] =
    "[source open]\n"
    "allow_cidrs = 10.0.0.0/8, 192.0.2.1, 2001:db8::/32, "
    "::ffff:198.51.100.0/120\n"
    "trusted_proxies = 127.0.0.1, ::1, 10.9.0.0/16\n"
    "[source tok]\nauth = token\nsecret_file = %1$s/tok\n"
    "[source sw]\nauth = standard-webhooks\nsecret_file = %1$s/sw\n"
    "[source hmac]\nauth = hmac\nsecret_file = %1$s/hmac\n"
    "hmac_header = X-Hub-Signature-256\nhmac_prefix = sha256=\n"
    "[source stripe]\nauth = hmac\nsecret_file = %1$s/hmac\n"
    "hmac_algorithm = sha512\nhmac_encoding = base64\n"
    "hmac_signed = timestamp.body\nhmac_timestamp_header = X-Timestamp\n"
    "[source basic]\nauth = basic\nsecret_file = %1$s/basic\n"
    "[source daily]\nprovider = daily\nsecret_file = %1$s/daily\n";

/* Loaded once and kept for the process: reachable, so no leak is reported. */
static struct hr_cfg *cfg;
static struct hr_secrets *secrets[NSRC];
static const struct hr_source_cfg *sources[NSRC];

static void
write_file(const char *dir, const char *name, const char *text)
{
	char path[256];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FUZZ_CHECK((fp = fopen(path, "w")) != NULL);
	fputs(text, fp);
	FUZZ_CHECK(fclose(fp) == 0);
}

static void
setup(void)
{
	char dir[] = "/tmp/hr-fuzz-sig-XXXXXX", text[2048], path[256];
	struct hr_error err = { 0 };

	FUZZ_CHECK(mkdtemp(dir) != NULL);
	for (size_t i = 0; i < HR_ARRAY_LEN(secret_files); i++)
		write_file(dir, secret_files[i].file, secret_files[i].text);
	snprintf(text, sizeof(text), config_fmt, dir);
	FUZZ_CHECK(hr_cfg_load_string(text, "fuzz.conf", &cfg, &err) == HR_OK);
	for (int i = 0; i < NSRC; i++) {
		FUZZ_CHECK((sources[i] = hr_cfg_source(cfg, src_names[i])) != NULL);
		FUZZ_CHECK(hr_auth_load_secrets(sources[i], &secrets[i], &err) == HR_OK);
	}
	for (size_t i = 0; i < HR_ARRAY_LEN(secret_files); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, secret_files[i].file);
		unlink(path);
	}
	rmdir(dir);
}

/* One request: the fields a fake header table serves. */
struct req {
	unsigned f0, f1;
	const char *secret, *id, *ts, *sig, *prefix, *hmac_value, *authz, *xff, *qtok, *ptok;
	const char *body;
	size_t len;
};

static const char *
field(const struct req *r, const char *v)
{
	return (r->f0 & F_NULLS) && v[0] == '\0' ? NULL : v;
}

static const char *
lookup(void *arg, const char *name)
{
	const struct req *r = arg;
	const char *fam = (r->f0 & F_SVIX) ? "svix-" : "webhook-";
	size_t flen = strlen(fam);

	if (strncasecmp(name, fam, flen) == 0) {
		if (strcasecmp(name + flen, "id") == 0)
			return field(r, r->id);
		if (strcasecmp(name + flen, "timestamp") == 0)
			return field(r, r->ts);
		if (strcasecmp(name + flen, "signature") == 0)
			return field(r, r->sig);
		return NULL;
	}
	if (strcasecmp(name, "X-Timestamp") == 0 || strcasecmp(name, "X-Webhook-Timestamp") == 0)
		return field(r, r->ts);
	if (strcasecmp(name, "X-Webhook-Signature") == 0)
		return field(r, r->sig);
	if (strcasecmp(name, "X-Hub-Signature-256") == 0 || strcasecmp(name, "X-Signature") == 0)
		return field(r, r->hmac_value);
	if (strcasecmp(name, "Authorization") == 0)
		return field(r, r->authz);
	if (strcasecmp(name, "X-Forwarded-For") == 0)
		return field(r, r->xff);
	return NULL;
}

static void
hex_encode(const unsigned char *in, size_t n, bool upper, char *out)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

/* `a` + `b` + `c`, new. */
static char *
concat3(const char *a, const char *b, const char *c)
{
	size_t n = strlen(a) + strlen(b) + strlen(c) + 1;
	char *s = malloc(n);

	FUZZ_CHECK(s != NULL);
	snprintf(s, n, "%s%s%s", a, b, c);
	return s;
}

static bool
is_sig_status(int rc)
{
	return rc >= HR_SIG_OK && rc <= HR_SIG_INTERNAL;
}

/* hr_whsec_decode: canonical base64 only (its padding may be left out), and never more
 * than the buffer. */
static void
check_whsec(const char *secret, unsigned char *key, size_t *keylen)
{
	unsigned char small[16];
	size_t cap = sizeof(small);
	const char *b64 = strncmp(secret, "whsec_", 6) == 0 ? secret + 6 : secret;
	char back[2 * HR_WHSEC_KEY_MAX];
	int rc;

	*keylen = HR_WHSEC_KEY_MAX;
	rc = hr_whsec_decode(secret, key, keylen);
	FUZZ_CHECK(rc == HR_OK || rc == HR_EINVAL || rc == HR_ETOOBIG);
	if (rc == HR_OK) {
		FUZZ_CHECK(*keylen > 0 && *keylen <= HR_WHSEC_KEY_MAX);
		FUZZ_CHECK(hr_base64_encode(key, *keylen, back, sizeof(back)) == HR_OK);
		/* the canonical spelling, or it without its padding (as the real clients take it)
		 */
		FUZZ_CHECK(strcmp(back, b64) == 0 ||
		    (strchr(b64, '=') == NULL && strncmp(back, b64, strlen(b64)) == 0 &&
		        strspn(back + strlen(b64), "=") == strlen(back) - strlen(b64)));
	} else {
		*keylen = 0;
	}
	rc = hr_whsec_decode(secret, small, &cap);
	FUZZ_CHECK(rc == HR_OK || rc == HR_EINVAL || rc == HR_ETOOBIG);
	if (rc == HR_OK)
		FUZZ_CHECK(cap > 0 && cap <= sizeof(small));
}

/* Standard Webhooks: the fuzzed header as is, then with a correct entry added. */
static void
check_sw(const struct req *r, const unsigned char *key, size_t keylen)
{
	struct hr_key keys[2] = { { (const unsigned char *)"other-key", 9 }, { key, keylen } };
	char mine[HR_SW_SIG_MAX];
	char *header;
	int rc;

	rc = hr_sw_verify(keys, 2, field(r, r->id), field(r, r->ts), field(r, r->sig), r->body,
	    r->len, NOW_MS, TOL_MS);
	FUZZ_CHECK(is_sig_status(rc));
	if (r->id[0] == '\0')
		return;
	FUZZ_CHECK(
	    hr_sw_sign(key, keylen, r->id, NOW_S, r->body, r->len, mine, sizeof(mine)) == HR_OK);
	header = concat3(r->sig, " ", mine);
	FUZZ_CHECK(hr_sw_verify(keys, 2, r->id, NOW_TXT, header, r->body, r->len, NOW_MS, TOL_MS) ==
	    HR_SIG_OK);
	/* One byte less is another body; not `header`: the fuzzed part may sign that one. */
	if (r->len > 0)
		FUZZ_CHECK(hr_sw_verify(keys, 2, r->id, NOW_TXT, mine, r->body, r->len - 1, NOW_MS,
		               TOL_MS) == HR_SIG_BAD_SIGNATURE);
	free(header);
}

/* The generic HMAC header, for the algorithm, encoding and mode the flags pick. */
static void
check_hmac(const struct req *r, const unsigned char *key, size_t keylen)
{
	enum hr_hmac_alg alg = (r->f0 & F_SHA512) ? HR_HMAC_SHA512 : HR_HMAC_SHA256;
	enum hr_hmac_enc enc = (r->f0 & F_BASE64) ? HR_ENC_BASE64 : HR_ENC_HEX;
	enum hr_hmac_signed mode = (r->f0 & F_TS_BODY) ? HR_SIGNED_TIMESTAMP_BODY : HR_SIGNED_BODY;
	unsigned char mac[HR_MAC_MAX];
	char text[2 * HR_MAC_MAX + 1];
	size_t maclen = 0;
	char *header;
	int rc;

	rc = hr_hmac_verify(alg, enc, key, keylen, field(r, r->prefix), mode, field(r, r->ts),
	    r->body, r->len, field(r, r->hmac_value));
	FUZZ_CHECK(is_sig_status(rc));
	if (mode == HR_SIGNED_TIMESTAMP_BODY && r->ts[0] == '\0')
		return;
	if (r->prefix[0] == ' ' || r->prefix[0] == '\t') /* header values come trimmed */
		return;
	FUZZ_CHECK(
	    hr_hmac_compute(alg, key, keylen, mode, r->ts, r->body, r->len, mac, &maclen) == HR_OK);
	FUZZ_CHECK(maclen == (alg == HR_HMAC_SHA512 ? 64u : 32u));
	if (enc == HR_ENC_HEX)
		hex_encode(mac, maclen, (r->f0 & F_UPPER_HEX) != 0, text);
	else
		FUZZ_CHECK(hr_base64_encode(mac, maclen, text, sizeof(text)) == HR_OK);
	header = concat3(r->prefix, text, " ");
	FUZZ_CHECK(hr_hmac_verify(alg, enc, key, keylen, r->prefix, mode, r->ts, r->body, r->len,
	               header) == HR_SIG_OK);
	if (r->len > 0)
		FUZZ_CHECK(hr_hmac_verify(alg, enc, key, keylen, r->prefix, mode, r->ts, r->body,
		               r->len - 1, header) == HR_SIG_BAD_SIGNATURE);
	free(header);
}

/* hr_base64_decode (Daily's secrets): canonical only, never past the buffer. */
static void
check_base64(const char *text)
{
	unsigned char out[HR_WHSEC_KEY_MAX];
	char back[2 * HR_WHSEC_KEY_MAX];
	size_t n = sizeof(out);
	int rc = hr_base64_decode(text, out, &n);

	FUZZ_CHECK(rc == HR_OK || rc == HR_EINVAL || rc == HR_ETOOBIG);
	if (rc != HR_OK)
		return;
	FUZZ_CHECK(n > 0 && n <= sizeof(out));
	FUZZ_CHECK(hr_base64_encode(out, n, back, sizeof(back)) == HR_OK);
	FUZZ_CHECK(strcmp(back, text) == 0);
}

/* Daily: the fuzzed headers as they are, then what hr_daily_sign() makes for them. */
static void
check_daily(const struct req *r, const unsigned char *key, size_t keylen)
{
	struct hr_key keys[2] = { { (const unsigned char *)"other-key", 9 }, { key, keylen } };
	char mine[64];
	int rc;

	rc = hr_daily_verify(
	    keys, 2, field(r, r->ts), field(r, r->sig), r->body, r->len, NOW_MS, TOL_MS);
	FUZZ_CHECK(is_sig_status(rc));
	FUZZ_CHECK(
	    hr_daily_sign(key, keylen, DAILY_NOW_MS, r->body, r->len, mine, sizeof(mine)) == HR_OK);
	FUZZ_CHECK(hr_daily_verify(keys, 2, DAILY_NOW_MS, mine, r->body, r->len, NOW_MS, TOL_MS) ==
	    HR_SIG_OK);
	if (r->len > 0)
		FUZZ_CHECK(hr_daily_verify(keys, 2, DAILY_NOW_MS, mine, r->body, r->len - 1, NOW_MS,
		               TOL_MS) == HR_SIG_BAD_SIGNATURE);
	/* the same instant in seconds is as fresh, but `mine` signs the text in ms */
	FUZZ_CHECK(hr_daily_verify(keys, 2, NOW_TXT, mine, r->body, r->len, NOW_MS, TOL_MS) ==
	    HR_SIG_BAD_SIGNATURE);
}

static void
check_timestamp(const char *ts)
{
	int rc = hr_sig_check_timestamp(ts, NOW_MS, TOL_MS);
	long long t;

	FUZZ_CHECK(is_sig_status(rc) && rc != HR_SIG_BAD_SIGNATURE && rc != HR_SIG_INTERNAL);
	if (rc != HR_SIG_OK)
		return;
	FUZZ_CHECK(strspn(ts, "0123456789") == strlen(ts));
	t = strtoll(ts, NULL, 10);
	FUZZ_CHECK(t * 1000 >= NOW_MS - TOL_MS && t * 1000 <= NOW_MS + TOL_MS);
}

/* The TCP peer flag byte 1 picks. */
static void
make_peer(unsigned pick, struct sockaddr_storage *ss)
{
	static const char *const peers[] = { "10.1.2.3", "127.0.0.1", "203.0.113.5", "::1",
		"2001:db8::7", "::ffff:10.9.0.1", "::ffff:198.51.100.77", "fe80::1" };
	const char *text = peers[pick % HR_ARRAY_LEN(peers)];

	memset(ss, 0, sizeof(*ss));
	if (strchr(text, ':') == NULL) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		FUZZ_CHECK(inet_pton(AF_INET, text, &s4->sin_addr) == 1);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		FUZZ_CHECK(inet_pton(AF_INET6, text, &s6->sin6_addr) == 1);
	}
}

/* Correct credentials for source `s` in `r` (strings owned by `keep`). */
static void
self_sign(int s, struct req *r, char **keep)
{
	static const unsigned char sw_key[] = "secret-key-two"; /* the second whsec_ line */
	unsigned char mac[HR_MAC_MAX];
	size_t maclen = 0;
	char text[2 * HR_MAC_MAX + 8];

	r->xff = "";
	switch (s) {
	case SRC_TOKEN:
		r->qtok = "tok-old";
		break;
	case SRC_SW:
		if (r->id[0] == '\0')
			r->id = "msg_1";
		r->ts = NOW_TXT;
		FUZZ_CHECK(hr_sw_sign(sw_key, sizeof(sw_key) - 1, r->id, NOW_S, r->body, r->len,
		               text, sizeof(text)) == HR_OK);
		r->sig = *keep = concat3(r->sig, " ", text);
		break;
	case SRC_HMAC:
		FUZZ_CHECK(hr_hmac_compute(HR_HMAC_SHA256, (const unsigned char *)"hmac-secret", 11,
		               HR_SIGNED_BODY, NULL, r->body, r->len, mac, &maclen) == HR_OK);
		hex_encode(mac, maclen, (r->f0 & F_UPPER_HEX) != 0, text);
		r->hmac_value = *keep = concat3("sha256=", text, "");
		break;
	case SRC_STRIPE:
		r->ts = NOW_TXT;
		FUZZ_CHECK(
		    hr_hmac_compute(HR_HMAC_SHA512, (const unsigned char *)"hmac-secret", 11,
		        HR_SIGNED_TIMESTAMP_BODY, r->ts, r->body, r->len, mac, &maclen) == HR_OK);
		FUZZ_CHECK(hr_base64_encode(mac, maclen, text, sizeof(text)) == HR_OK);
		r->hmac_value = *keep = concat3(text, "", "");
		break;
	case SRC_BASIC:
		r->authz = "Basic b3BzOmNvcnJlY3QgaG9yc2U="; /* ops:correct horse */
		break;
	case SRC_DAILY:
		r->ts = DAILY_NOW_MS;
		FUZZ_CHECK(hr_daily_sign((const unsigned char *)DAILY_KEY, sizeof(DAILY_KEY) - 1,
		               r->ts, r->body, r->len, text, sizeof(text)) == HR_OK);
		r->sig = *keep = concat3(text, "", "");
		break;
	default:
		break;
	}
}

static void
check_auth(struct req *r)
{
	int s = (int)(r->f1 % NSRC), rc;
	bool signed_ok = (r->f0 & F_SELF_SIGN) != 0;
	struct sockaddr_storage peer;
	struct hr_auth_out out;
	struct hr_auth_req ar;
	char *keep = NULL;

	make_peer(signed_ok ? 0 : r->f1 / NSRC, &peer); /* 10.1.2.3 is allowed into "open" */
	if (signed_ok)
		self_sign(s, r, &keep);
	memset(&ar, 0, sizeof(ar));
	ar.src = sources[s];
	ar.secrets = secrets[s];
	ar.peer = (const struct sockaddr *)&peer;
	ar.header = lookup;
	ar.header_arg = r;
	ar.query_token = field(r, r->qtok);
	ar.path_token = field(r, r->ptok);
	ar.body = r->body;
	ar.len = r->len;
	ar.now_ms = NOW_MS;
	rc = hr_auth_check(&ar, &out);
	FUZZ_CHECK(strcmp(hr_auth_status_str(rc), "unknown") != 0);
	/* A malformed X-Forwarded-For leaves no client; ingest.c then logs the peer. */
	FUZZ_CHECK(out.client.ss_family == AF_INET || out.client.ss_family == AF_INET6 ||
	    rc == HR_AUTH_EADDR);
	if (signed_ok)
		FUZZ_CHECK(rc == HR_AUTH_OK);
	if (out.webhook_id != NULL)
		FUZZ_CHECK(out.webhook_id == r->id);
	free(keep);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_cursor in;
	struct req r;
	unsigned char key[HR_WHSEC_KEY_MAX];
	size_t keylen = 0;

	if (cfg == NULL)
		setup();
	if (!fuzz_cursor_init(&in, data, size))
		return 0;
	r.f0 = fuzz_byte(&in);
	r.f1 = fuzz_byte(&in);
	r.secret = fuzz_field(&in);
	r.id = fuzz_field(&in);
	r.ts = fuzz_field(&in);
	r.sig = fuzz_field(&in);
	r.prefix = fuzz_field(&in);
	r.hmac_value = fuzz_field(&in);
	r.authz = fuzz_field(&in);
	r.xff = fuzz_field(&in);
	r.qtok = fuzz_field(&in);
	r.ptok = fuzz_field(&in);
	r.body = fuzz_rest(&in, &r.len);

	check_whsec(r.secret, key, &keylen);
	if (keylen == 0) { /* not a whsec_ secret: its bytes are the key */
		keylen = strlen(r.secret) < sizeof(key) ? strlen(r.secret) : sizeof(key);
		memcpy(key, r.secret, keylen);
	}
	if (keylen == 0) {
		key[0] = 'k';
		keylen = 1;
	}
	check_sw(&r, key, keylen);
	check_hmac(&r, key, keylen);
	check_base64(r.secret);
	check_daily(&r, key, keylen);
	check_timestamp(r.ts);
	check_auth(&r);
	fuzz_cursor_free(&in);
	return 0;
}
