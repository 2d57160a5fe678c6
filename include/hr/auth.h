/*
 * auth.h - is a request to a [source] authentic?
 *
 * Independent of the HTTP library: the caller hands over the TCP peer, a
 * header lookup, the URL token and the raw body, and gets HR_AUTH_OK or a
 * reason for its logs and counters. The client is told only "401"/"403",
 * never which check failed.
 */
#ifndef HR_AUTH_H
#define HR_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "hr/cfg.h"
#include "hr/common.h"

#define HR_SECRETS_MAX 16 /* secrets per source: current plus a few being rotated out */

/* The secrets of one source, loaded once at start-up. Opaque. */
struct hr_secrets;

/*
 * Load the secrets `src` needs (new; release with hr_secrets_free()): from
 * its secret_file, or when that is empty from $CREDENTIALS_DIRECTORY/<name>
 * (systemd LoadCredential=). One secret per line; blank lines and lines
 * starting with `#` are ignored; several lines are a rotation, each
 * accepted. auth = standard-webhooks wants whsec_<base64> lines, daily
 * the base64 hmac Daily returns, basic `user:password` lines. auth = none loads nothing and
 * succeeds. On failure err->field names the file (and line), never the secret.
 */
int hr_auth_load_secrets(
    const struct hr_source_cfg *src, struct hr_secrets **out, struct hr_error *err) HR_WUR;
size_t hr_secrets_count(const struct hr_secrets *);
/* Wipes the secrets (OPENSSL_cleanse) and frees them; NULL is fine. */
void hr_secrets_free(struct hr_secrets *);

/* A request header's value by case-insensitive name (the first), NULL when absent. */
typedef const char *(*hr_header_fn)(void *arg, const char *name);
/*
 * Every header field in the order received, repeated names included (the
 * X-Forwarded-For fields a proxy appended after the client's own): `cb`
 * gets each (name, value) and stops the walk by returning non-zero.
 */
typedef void (*hr_header_each_fn)(
    void *arg, int (*cb)(void *, const char *, const char *), void *cbarg);

#define HR_XFF_MAX 64 /* X-Forwarded-For addresses read, all fields together; more: refused */

/* What hr_auth_check() looks at; everything is borrowed. */
struct hr_auth_req {
	const struct hr_source_cfg *src;
	const struct hr_secrets *secrets; /* hr_auth_load_secrets(src) */
	const struct sockaddr *peer;      /* the TCP peer, AF_INET or AF_INET6 */
	hr_header_fn header;
	hr_header_each_fn each_header; /* for X-Forwarded-For; same header_arg */
	void *header_arg;
	const char *query_token; /* ?token=..., NULL when absent */
	const char *path_token;  /* /hooks/NAME/TOKEN, NULL when absent */
	const char *body;        /* raw, as received */
	size_t len;
	int64_t now_ms; /* Unix time in milliseconds */
};

/* Why a request was refused. Append-only: names are logged and counted. */
enum hr_auth_status {
	HR_AUTH_OK = 0,
	HR_AUTH_EADDR,    /* client not in allow_cidrs, or X-Forwarded-For malformed or too long */
	HR_AUTH_EMISSING, /* no token, Authorization or signature header */
	HR_AUTH_ECREDENTIALS, /* wrong token or user:password */
	HR_AUTH_ETIMESTAMP,   /* signed timestamp is not a Unix time */
	HR_AUTH_ESTALE,       /* signed timestamp older than the tolerance */
	HR_AUTH_EFUTURE,      /* signed timestamp newer than the tolerance */
	HR_AUTH_ESIGNATURE,   /* signature malformed or wrong */
	HR_AUTH_ENOSECRET,    /* auth configured but no secrets loaded for it */
	HR_AUTH_EINTERNAL,    /* libcrypto failed */
};

/* "ok", "address", "missing", "bad_credentials", "bad_timestamp", ...; "unknown" past the end. */
const char *hr_auth_status_str(int status);

/* What the caller may use after the check. */
struct hr_auth_out {
	struct sockaddr_storage client; /* the peer, or the address X-Forwarded-For gave */
	const char *webhook_id; /* standard-webhooks: webhook-id / svix-id, borrowed; else NULL */
};

/*
 * Check `req` against its source's allow_cidrs and auth mode. Returns an
 * enum hr_auth_status; `out` is filled on success and failure alike, so
 * the caller can log the client and the webhook-id. Replay protection
 * (the same webhook-id twice) is the dedup store's, not done here.
 */
int hr_auth_check(const struct hr_auth_req *req, struct hr_auth_out *out);

/*
 * For the modes that sign the body (standard-webhooks, hmac), what can be
 * refused before it is read: allow_cidrs, the signature headers present,
 * and a signed timestamp within tolerance. `req->body` is not looked at. A
 * request that passes still needs hr_auth_check() once the body is in.
 */
int hr_auth_precheck(const struct hr_auth_req *req, struct hr_auth_out *out);

/* Is `given` one of the secrets (auth = token)? Every secret is compared, in
 * constant time: for masking only the URL token that is a credential. */
bool hr_auth_is_secret(const struct hr_secrets *, const char *given);

#endif
