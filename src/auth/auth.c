/*
 * auth.c - is a request to a [source] authentic?
 *
 * Owns each source's secrets once loaded (wiped with OPENSSL_cleanse when
 * freed, never logged) and the decision: the client address against
 * allow_cidrs (through X-Forwarded-For only when the peer is a trusted
 * proxy), then the source's auth mode through one table of checkers. The
 * cryptography is sign.c's; this file decides which bytes go in.
 *
 * allow_cidrs and trusted_proxies are parsed per request from the config
 * text (hr_cidr_parse, netaddr.h): the config loader validated them, and a
 * few inet_pton() calls cost less than the HMAC that follows.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hr/auth.h"
#include "hr/log.h"
#include "hr/netaddr.h"
#include "hr/redact.h"
#include "hr/secretfile.h"
#include "hr/sign.h"

_Static_assert(HR_SECRETS_MAX <= HR_SECRETFILE_LINES_MAX, "a source's secrets fit the reader");

#define XFF_ENTRY_MAX 64 /* an address in X-Forwarded-For, with blanks */

/* Is `sa` in any block of `list` (config text, already validated)? */
static bool
in_list(const struct hr_strlist *list, const struct sockaddr *sa)
{
	for (size_t i = 0; i < list->n; i++) {
		struct hr_cidr c;

		if (hr_cidr_parse(list->v[i], &c) == HR_OK && hr_cidr_match(&c, sa))
			return true;
	}
	return false;
}

/* Secrets */

struct hr_secrets {
	enum hr_auth_mode mode;
	size_t n;
	struct hr_key keys[HR_SECRETS_MAX]; /* point into buf[] */
	unsigned char *buf[HR_SECRETS_MAX]; /* owned; size[i] bytes, wiped on free */
	size_t size[HR_SECRETS_MAX];
};

size_t
hr_secrets_count(const struct hr_secrets *s)
{
	return s != NULL ? s->n : 0;
}

void
hr_secrets_free(struct hr_secrets *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n; i++) {
		OPENSSL_cleanse(s->buf[i], s->size[i]);
		free(s->buf[i]);
	}
	OPENSSL_cleanse(s, sizeof(*s));
	free(s);
}

/* Where the secrets of `src` live: its secret_file, else the systemd credential. */
static int
secrets_path(const struct hr_source_cfg *src, char *path, size_t len, struct hr_error *err)
{
	const char *dir;
	int n;

	if (src->secret_file[0] != '\0') {
		snprintf(path, len, "%s", src->secret_file);
		return HR_OK;
	}
	if ((dir = getenv("CREDENTIALS_DIRECTORY")) == NULL || dir[0] == '\0')
		return hr_error_set(err, HR_EINVAL, "",
		    "auth needs secret_file, or a credential %s in $CREDENTIALS_DIRECTORY"
		    " (LoadCredential=), which is not set",
		    src->name);
	n = snprintf(path, len, "%s/%s", dir, src->name);
	if (n < 0 || (size_t)n >= len)
		return hr_error_set(err, HR_EINVAL, "", "$CREDENTIALS_DIRECTORY is too long");
	return HR_OK;
}

/* Bytes needed to hold `line` in the form `mode` compares. */
static size_t
secret_size(enum hr_auth_mode mode, size_t n)
{
	if (mode == HR_AUTH_STANDARD_WEBHOOKS || mode == HR_AUTH_DAILY)
		return HR_WHSEC_KEY_MAX;
	if (mode == HR_AUTH_BASIC)
		return (n + 2) / 3 * 4 + 1;
	return n + 1;
}

/*
 * `line` in the form `mode` compares, into `buf`: the decoded key of a
 * whsec_ secret or of Daily's base64 hmac, the base64 of user:password
 * (what a client sends), or the text itself (NUL-terminated). NULL, or why
 * the line is unfit.
 */
static const char *
convert_secret(
    enum hr_auth_mode mode, const char *line, unsigned char *buf, size_t cap, size_t *klen)
{
	size_t n = strlen(line);
	const char *colon = strchr(line, ':');

	*klen = cap;
	switch (mode) {
	case HR_AUTH_STANDARD_WEBHOOKS:
		return hr_whsec_decode(line, buf, klen) == HR_OK ? NULL
		                                                 : "not a whsec_<base64> secret";
	case HR_AUTH_DAILY: /* Daily keys its HMAC with the decoded bytes, not the text */
		return hr_base64_decode(line, buf, klen) == HR_OK
		    ? NULL
		    : "not base64 (the webhook's hmac, as Daily returns it)";
	case HR_AUTH_BASIC:
		if (colon == NULL || colon == line || colon[1] == '\0')
			return "not user:password";
		if (hr_base64_encode((const unsigned char *)line, n, (char *)buf, cap) != HR_OK)
			return "too long";
		*klen = strlen((char *)buf);
		return NULL;
	default:
		memcpy(buf, line, n + 1);
		*klen = n;
		return NULL;
	}
}

/* Below this many bytes a secret can be guessed (or searched for): the API
 * token is refused under it, a source's secret is warned about. */
#define SECRET_BYTES_MIN 16

/* The bytes of a secret an attacker would have to guess; 0: not ours to judge
 * (Daily chooses its own). */
static size_t
guessable_bytes(enum hr_auth_mode mode, const char *line, size_t klen)
{
	switch (mode) {
	case HR_AUTH_DAILY:
		return 0;
	case HR_AUTH_BASIC: /* the password; the user name is no secret */
		return strlen(strchr(line, ':') + 1);
	default: /* token and hmac: the text; standard-webhooks: the decoded key */
		return klen;
	}
}

/* One secret line into s->buf[s->n]; errors name the line, never its text. */
static int
store_line(
    struct hr_secrets *s, const char *line, const char *path, int lineno, struct hr_error *err)
{
	char field[sizeof(err->field)];
	size_t cap = secret_size(s->mode, strlen(line)), klen = 0, n;
	unsigned char *buf = NULL;
	const char *why;

	hr_secretfile_where(path, lineno, field, sizeof(field));
	if ((buf = calloc(1, cap)) == NULL)
		return hr_error_set(err, HR_ENOMEM, field, "out of memory");
	if ((why = convert_secret(s->mode, line, buf, cap, &klen)) != NULL) {
		OPENSSL_cleanse(buf, cap);
		free(buf);
		return hr_error_set(err, HR_EINVAL, field, "%s", why);
	}
	n = guessable_bytes(s->mode, line, klen);
	if (n > 0 && n < SECRET_BYTES_MIN)
		log_warnx("%s: a secret of %zu bytes can be guessed: use at least %d random "
		          "bytes (openssl rand -hex 32)",
		    field, n, SECRET_BYTES_MIN);
	else if (s->mode == HR_AUTH_TOKEN && !hr_redact_can_mask(line))
		log_warnx("%s: a token of other characters than A-Z a-z 0-9 - . _ ~ cannot be "
		          "masked where a sender quotes its URL (Tavus's webhook_url): it would be "
		          "stored and forwarded; use openssl rand -hex 32",
		    field);
	s->buf[s->n] = buf;
	s->size[s->n] = cap;
	s->keys[s->n] = (struct hr_key){ buf, klen };
	s->n++;
	return HR_OK;
}

/* Every secret of the file into `s`; the file's limit is HR_SECRETS_MAX. */
static int
store_lines(struct hr_secrets *s, const char *path, struct hr_error *err)
{
	struct hr_secretfile sf;
	int rc;

	if ((rc = hr_secretfile_read(path, HR_SECRETS_MAX, &sf, err)) != HR_OK)
		return rc;
	for (size_t i = 0; i < sf.n && rc == HR_OK; i++)
		rc = store_line(s, sf.line[i], path, sf.lineno[i], err);
	if (rc == HR_OK && s->n == 0)
		rc = hr_error_set(err, HR_EINVAL, path, "holds no secret");
	hr_secretfile_clear(&sf);
	return rc;
}

int
hr_auth_load_secrets(const struct hr_source_cfg *src, struct hr_secrets **out, struct hr_error *err)
{
	struct hr_secrets *s = calloc(1, sizeof(*s));
	char path[PATH_MAX];
	int rc = HR_ENOMEM;

	if (s == NULL) {
		hr_error_set(err, rc, src->name, "out of memory");
		goto out;
	}
	s->mode = src->auth;
	rc = HR_OK;
	if (src->auth == HR_AUTH_NONE)
		goto done;
	if ((rc = secrets_path(src, path, sizeof(path), err)) != HR_OK ||
	    (rc = store_lines(s, path, err)) != HR_OK)
		goto out;
done:
	*out = s;
	s = NULL;
out:
	hr_secrets_free(s);
	return rc;
}

/* The client address */

/* Parse one X-Forwarded-For entry (blanks around it allowed) into `ss`. */
static bool
parse_forwarded(const char *s, size_t n, struct sockaddr_storage *ss)
{
	char text[XFF_ENTRY_MAX];
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	while (n > 0 && (*s == ' ' || *s == '\t'))
		s++, n--;
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	if (n == 0 || n >= sizeof(text))
		return false;
	memcpy(text, s, n);
	text[n] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, text, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, text, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		return true;
	}
	return false;
}

static void
copy_sockaddr(struct sockaddr_storage *dst, const struct sockaddr *sa)
{
	memset(dst, 0, sizeof(*dst));
	if (sa != NULL && sa->sa_family == AF_INET)
		memcpy(dst, sa, sizeof(struct sockaddr_in));
	else if (sa != NULL && sa->sa_family == AF_INET6)
		memcpy(dst, sa, sizeof(struct sockaddr_in6));
}

/*
 * Every X-Forwarded-For entry of every such field, in order, as pointers
 * into the header values. Nothing is cut to fit: past HR_XFF_MAX entries
 * the list is `over` and the client unknown, because the entries a proxy
 * appended are the last ones, the very ones a cut would lose.
 */
struct xff {
	const char *entry[HR_XFF_MAX];
	size_t len[HR_XFF_MAX];
	size_t n;
	bool over;
};

static int
collect_xff(void *arg, const char *name, const char *value)
{
	struct xff *x = arg;

	if (strcasecmp(name, "X-Forwarded-For") != 0)
		return 0;
	for (const char *p = value;; p++) {
		size_t n = strcspn(p, ",");

		if (x->n == HR_XFF_MAX) {
			x->over = true;
			return 1;
		}
		x->entry[x->n] = p;
		x->len[x->n++] = n;
		p += n;
		if (*p == '\0')
			return 0;
	}
}

/*
 * The client behind trusted proxies: walk X-Forwarded-For from the right
 * (the entry the nearest proxy added) past every trusted proxy. If all are
 * trusted, the left-most one is the client. False on a malformed entry or
 * one too many: the chain cannot be followed, so the address is unknown.
 */
static bool
resolve_client(const struct hr_auth_req *req, struct sockaddr_storage *client)
{
	const struct hr_strlist *proxies = &req->src->trusted_proxies;
	struct xff x = { .n = 0 };

	copy_sockaddr(client, req->peer);
	if (proxies->n == 0 || !in_list(proxies, req->peer) || req->each_header == NULL)
		return true;
	req->each_header(req->header_arg, collect_xff, &x);
	if (x.over)
		return false;
	for (size_t i = x.n; i > 0; i--) {
		if (!parse_forwarded(x.entry[i - 1], x.len[i - 1], client))
			return false;
		if (!in_list(proxies, (const struct sockaddr *)client))
			return true;
	}
	return true;
}

/* The auth modes */

static const char *
header(const struct hr_auth_req *req, const char *name)
{
	const char *v = req->header != NULL ? req->header(req->header_arg, name) : NULL;

	return v != NULL && v[0] != '\0' ? v : NULL;
}

static int
from_sig(int sig)
{
	static const int map[] = {
		[HR_SIG_OK] = HR_AUTH_OK,
		[HR_SIG_MISSING] = HR_AUTH_EMISSING,
		[HR_SIG_BAD_TIMESTAMP] = HR_AUTH_ETIMESTAMP,
		[HR_SIG_STALE] = HR_AUTH_ESTALE,
		[HR_SIG_FUTURE] = HR_AUTH_EFUTURE,
		[HR_SIG_BAD_SIGNATURE] = HR_AUTH_ESIGNATURE,
		[HR_SIG_INTERNAL] = HR_AUTH_EINTERNAL,
	};

	return sig >= 0 && (size_t)sig < HR_ARRAY_LEN(map) ? map[sig] : HR_AUTH_EINTERNAL;
}

/* Does `given` equal any secret? Every secret is compared: no early exit to time. */
static bool
any_secret_equals(const struct hr_secrets *s, const char *given)
{
	bool ok = false;

	for (size_t i = 0; i < s->n; i++)
		ok |= hr_token_equal(given, (const char *)s->keys[i].p);
	return ok;
}

bool
hr_auth_is_secret(const struct hr_secrets *s, const char *given)
{
	return s != NULL && given != NULL && given[0] != '\0' && any_secret_equals(s, given);
}

static int
check_token(const struct hr_auth_req *req, struct hr_auth_out *out)
{
	const char *q = req->query_token, *p = req->path_token;
	bool ok = false;

	(void)out;
	if ((q == NULL || q[0] == '\0') && (p == NULL || p[0] == '\0'))
		return HR_AUTH_EMISSING;
	if (q != NULL && q[0] != '\0')
		ok |= any_secret_equals(req->secrets, q);
	if (p != NULL && p[0] != '\0')
		ok |= any_secret_equals(req->secrets, p);
	return ok ? HR_AUTH_OK : HR_AUTH_ECREDENTIALS;
}

/* id, timestamp, signature: webhook-*, or svix-* when no webhook-* header is present at all. */
static void
sw_headers(const struct hr_auth_req *req, const char *v[3])
{
	static const char *const names[2][3] = {
		{ "webhook-id", "webhook-timestamp", "webhook-signature" },
		{ "svix-id", "svix-timestamp", "svix-signature" },
	};

	for (int fam = 0; fam < 2; fam++) {
		for (int i = 0; i < 3; i++)
			v[i] = header(req, names[fam][i]);
		if (v[0] != NULL || v[1] != NULL || v[2] != NULL)
			break;
	}
}

static int
check_standard_webhooks(const struct hr_auth_req *req, struct hr_auth_out *out)
{
	const char *v[3];

	sw_headers(req, v);
	out->webhook_id = v[0];
	return from_sig(hr_sw_verify(req->secrets->keys, req->secrets->n, v[0], v[1], v[2],
	    req->body, req->len, req->now_ms, req->src->tolerance_ms));
}

static int
check_hmac(const struct hr_auth_req *req, struct hr_auth_out *out)
{
	const struct hr_source_cfg *c = req->src;
	const char *sig = header(req, c->hmac_header), *ts = NULL;
	int rc = HR_SIG_BAD_SIGNATURE;

	(void)out;
	if (sig == NULL)
		return HR_AUTH_EMISSING;
	if (c->hmac_signed == HR_SIGNED_TIMESTAMP_BODY) {
		ts = header(req, c->hmac_timestamp_header);
		if ((rc = hr_sig_check_timestamp(ts, req->now_ms, c->tolerance_ms)) != HR_SIG_OK)
			return from_sig(rc);
		rc = HR_SIG_BAD_SIGNATURE;
	}
	for (size_t i = 0; i < req->secrets->n && rc != HR_SIG_OK; i++)
		rc = hr_hmac_verify(c->hmac_algorithm, c->hmac_encoding, req->secrets->keys[i].p,
		    req->secrets->keys[i].len, c->hmac_prefix, c->hmac_signed, ts, req->body,
		    req->len, sig);
	return from_sig(rc);
}

/* Daily.co: X-Webhook-Signature over "<X-Webhook-Timestamp (ms)>.<body>" (sign.c). */
static int
check_daily(const struct hr_auth_req *req, struct hr_auth_out *out)
{
	(void)out;
	return from_sig(hr_daily_verify(req->secrets->keys, req->secrets->n,
	    header(req, "X-Webhook-Timestamp"), header(req, "X-Webhook-Signature"), req->body,
	    req->len, req->now_ms, req->src->tolerance_ms));
}

/* "Authorization: Basic <base64>", compared with the base64 of each user:password. */
static int
check_basic(const struct hr_auth_req *req, struct hr_auth_out *out)
{
	const char *v = header(req, "Authorization");

	(void)out;
	if (v == NULL || strncasecmp(v, "Basic ", 6) != 0)
		return HR_AUTH_EMISSING;
	v += 6 + strspn(v + 6, " ");
	return any_secret_equals(req->secrets, v) ? HR_AUTH_OK : HR_AUTH_ECREDENTIALS;
}

typedef int (*check_fn)(const struct hr_auth_req *, struct hr_auth_out *);

static const struct {
	enum hr_auth_mode mode;
	check_fn check;
} checkers[] = {
	{ HR_AUTH_TOKEN, check_token },
	{ HR_AUTH_STANDARD_WEBHOOKS, check_standard_webhooks },
	{ HR_AUTH_HMAC, check_hmac },
	{ HR_AUTH_BASIC, check_basic },
	{ HR_AUTH_DAILY, check_daily },
};

static const char *const status_names[] = {
	[HR_AUTH_OK] = "ok",
	[HR_AUTH_EADDR] = "address",
	[HR_AUTH_EMISSING] = "missing",
	[HR_AUTH_ECREDENTIALS] = "bad_credentials",
	[HR_AUTH_ETIMESTAMP] = "bad_timestamp",
	[HR_AUTH_ESTALE] = "stale",
	[HR_AUTH_EFUTURE] = "future",
	[HR_AUTH_ESIGNATURE] = "bad_signature",
	[HR_AUTH_ENOSECRET] = "no_secret",
	[HR_AUTH_EINTERNAL] = "internal",
};

const char *
hr_auth_status_str(int status)
{
	if (status >= 0 && (size_t)status < HR_ARRAY_LEN(status_names))
		return status_names[status];
	return "unknown";
}

int
hr_auth_precheck(const struct hr_auth_req *req, struct hr_auth_out *out)
{
	const struct hr_source_cfg *c = req->src;
	const char *v[3] = { NULL, NULL, NULL };

	out->webhook_id = NULL;
	if (!resolve_client(req, &out->client))
		return HR_AUTH_EADDR;
	if (c->allow_cidrs.n > 0 && !in_list(&c->allow_cidrs, (struct sockaddr *)&out->client))
		return HR_AUTH_EADDR;
	if (c->auth == HR_AUTH_STANDARD_WEBHOOKS) {
		sw_headers(req, v);
		if (v[0] == NULL || v[2] == NULL)
			return HR_AUTH_EMISSING;
	} else if (c->auth == HR_AUTH_HMAC) {
		if (header(req, c->hmac_header) == NULL)
			return HR_AUTH_EMISSING;
		if (c->hmac_signed == HR_SIGNED_TIMESTAMP_BODY)
			v[1] = header(req, c->hmac_timestamp_header);
	}
	if (c->auth == HR_AUTH_STANDARD_WEBHOOKS ||
	    (c->auth == HR_AUTH_HMAC && c->hmac_signed == HR_SIGNED_TIMESTAMP_BODY))
		return from_sig(hr_sig_check_timestamp(v[1], req->now_ms, c->tolerance_ms));
	return HR_AUTH_OK;
}

int
hr_auth_check(const struct hr_auth_req *req, struct hr_auth_out *out)
{
	const struct hr_source_cfg *c = req->src;

	out->webhook_id = NULL;
	if (!resolve_client(req, &out->client))
		return HR_AUTH_EADDR;
	if (c->allow_cidrs.n > 0 && !in_list(&c->allow_cidrs, (struct sockaddr *)&out->client))
		return HR_AUTH_EADDR;
	if (c->auth == HR_AUTH_NONE)
		return HR_AUTH_OK;
	if (req->secrets == NULL || req->secrets->mode != c->auth || req->secrets->n == 0)
		return HR_AUTH_ENOSECRET;
	for (size_t i = 0; i < HR_ARRAY_LEN(checkers); i++)
		if (checkers[i].mode == c->auth)
			return checkers[i].check(req, out);
	return HR_AUTH_ENOSECRET;
}
