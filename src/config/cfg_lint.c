/*
 * cfg_lint.c - warnings on a configuration that loads, for `hookrelay -t`.
 *
 * A setting can be valid and still probably not what was meant: a secrets
 * file every user may read, a trusted proxy block wide enough for clients to
 * pick their own address, a Daily source that does not check Daily's
 * signature, a source open to anyone on a public listener, a SQLite-only
 * setting under PostgreSQL. These are warnings, not
 * errors (the daemon starts), logged as FILE:LINE: text at the line that set
 * the key.
 */
#include <curl/curl.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "cfg_int.h"
#include "hr/log.h"
#include "hr/netaddr.h"

/*
 * Warnings: settings that load but are probably not what was meant. They go to
 * the log as FILE:LINE: text (so `hookrelay -t` shows them), once the file has
 * loaded without an error.
 */

static void warn_at(struct parser *p, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
warn_at(struct parser *p, int line, const char *fmt, ...)
{
	char place[sizeof(p->err->field)], msg[320];
	va_list ap;

	p->lineno = line;
	cfg_where(p, place, sizeof(place));
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_warnx("%s: %s", place, msg);
}

/* The secret files of one section (instance) that every user of the machine may read. */
static void
warn_readable_secrets(
    struct parser *p, int sec, const void *base, const int *seen, const char *name)
{
	for (size_t i = 0; i < CFG_NOPTIONS; i++) {
		const struct option *o = &cfg_options[i];
		const char *path = (const char *)base + o->off;
		struct stat st;

		if (o->section != sec || !(o->flags & O_SECRET) || seen[i] == 0 ||
		    path[0] == '\0' || stat(path, &st) != 0 || !(st.st_mode & (S_IROTH | S_IWOTH)))
			continue;
		warn_at(p, seen[i],
		    "[%s%s%s] %s %s can be read by every user (mode %04o): make it readable "
		    "by hookrelay only (chmod o-rwx)",
		    cfg_sections[sec].name, name[0] ? " " : "", name, o->key, path,
		    (unsigned)(st.st_mode & 07777));
	}
}

/* Narrower than this, a block can still be a provider's proxies (a CDN's /13, /29). */
#define PROXY_V4_BITS_MIN 8
#define PROXY_V6_BITS_MIN 16

/* A trusted proxy block so wide that clients in it choose their own address. */
static void
warn_wide_proxies(struct parser *p, const struct inst_lines *il, const struct hr_source_cfg *src)
{
	for (size_t i = 0; i < src->trusted_proxies.n; i++) {
		struct hr_cidr c;
		unsigned min = PROXY_V6_BITS_MIN;

		if (hr_cidr_parse(src->trusted_proxies.v[i], &c) != HR_OK)
			continue;
		if (c.family == AF_INET)
			min = PROXY_V4_BITS_MIN;
		if (c.bits >= min)
			continue;
		warn_at(p, cfg_seen_line(il, "trusted_proxies"),
		    "[source %s] trusted_proxies %s is wider than /%u: any client in it writes "
		    "the X-Forwarded-For address that allow_cidrs and the log go by; list only "
		    "your proxies",
		    src->name, src->trusted_proxies.v[i], min);
	}
}

/* Daily signs every webhook; a Daily source that does not check it takes anyone's events. */
static void
warn_unsigned_daily(struct parser *p, const struct inst_lines *il, const struct hr_source_cfg *src)
{
	if (src->provider == HR_PROVIDER_DAILY && src->auth != HR_AUTH_DAILY)
		warn_at(p, cfg_seen_line(il, "auth"),
		    "[source %s] provider = daily without auth = daily: Daily signs every webhook "
		    "(X-Webhook-Signature), and this source does not check it",
		    src->name);
}

/*
 * auth = none takes any request that passes allow_cidrs. On a listener only
 * this machine reaches (a reverse proxy in front) that is a choice; on one
 * other machines reach, with no allow_cidrs, anyone who finds the URL posts
 * events that are stored and forwarded. The address judged is the one in
 * force: --listen's (read after the file, it was once left out: review RR40),
 * none for socket activation's listener, which is not in the file, and at a
 * reload the one the daemon started on (review R42CF).
 */
static void
warn_open_source(struct parser *p, const struct inst_lines *il, const struct hr_source_cfg *src)
{
	const char *judged = p->listen != NULL ? p->listen : p->cfg->listen;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (src->auth != HR_AUTH_NONE || src->allow_cidrs.n > 0 || judged[0] == '\0' ||
	    hr_netaddr_parse(judged, &ss, &len) != HR_OK ||
	    hr_netaddr_is_loopback((const struct sockaddr *)&ss))
		return;
	warn_at(p, cfg_seen_line(il, "auth"),
	    "[source %s] takes events from anyone who can reach %s: auth = none and no "
	    "allow_cidrs; set auth (token, hmac, standard-webhooks, daily) or allow_cidrs",
	    src->name, judged);
}

/*
 * A signed request is taken within tolerance of its timestamp; dedup is what
 * stops a captured one sent again in that time. A window shorter than the
 * tolerance leaves a span where a replay is stored as a new event.
 */
static void
warn_short_dedup_window(
    struct parser *p, const struct inst_lines *il, const struct hr_source_cfg *src)
{
	bool timed = src->auth == HR_AUTH_STANDARD_WEBHOOKS || src->auth == HR_AUTH_DAILY ||
	    (src->auth == HR_AUTH_HMAC && src->hmac_signed == HR_SIGNED_TIMESTAMP_BODY);

	if (!timed || strcmp(src->dedup, "off") == 0 || src->dedup_window_ms >= src->tolerance_ms)
		return;
	warn_at(p, cfg_seen_line(il, "dedup_window"),
	    "[source %s] dedup_window is shorter than tolerance: a signed request sent again "
	    "between the two is stored as a new event",
	    src->name);
}

/* hmac_signed = body signs no timestamp: a timestamp header is then never read,
 * and `tolerance` never applies, whatever the operator meant by naming it. */
static void
warn_unsigned_timestamp(
    struct parser *p, const struct inst_lines *il, const struct hr_source_cfg *src)
{
	if (src->auth != HR_AUTH_HMAC || src->hmac_signed != HR_SIGNED_BODY ||
	    src->hmac_timestamp_header[0] == '\0')
		return;
	warn_at(p, cfg_seen_line(il, "hmac_timestamp_header"),
	    "[source %s] hmac_timestamp_header is not read with hmac_signed = body: the "
	    "timestamp is not signed, so no tolerance is checked and a captured request can be "
	    "sent again; set hmac_signed = timestamp.body if the sender signs it",
	    src->name);
}

/*
 * `localhost`, `localhost.` and any name under it (`api.localhost`), in any case:
 * loopback whatever the resolver says (RFC 6761, 6.3), and libcurl answers them
 * so without asking it. The one name -t can judge without a DNS lookup.
 */
static bool
names_localhost(const char *host)
{
	size_t n = strlen(host), k = strlen("localhost");

	if (n > 0 && host[n - 1] == '.')
		n--; /* the root's dot */
	return n >= k && strncasecmp(host + n - k, "localhost", k) == 0 &&
	    (n == k || host[n - k - 1] == '.');
}

/* A URL whose host is an address the SSRF guard refuses: every attempt would fail
 * ("blocked"), found at the first webhook rather than by -t. A localhost name is
 * judged as 127.0.0.1, the address it stands for. */
static void
warn_blocked_destination(
    struct parser *p, const struct inst_lines *il, const struct hr_destination_cfg *dst)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	CURLU *u = dst->allow_private ? NULL : curl_url();
	char *host = NULL, text[160], why[128];

	if (u != NULL && curl_url_set(u, CURLUPART_URL, dst->url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
	    (size_t)snprintf(text, sizeof(text), "%s:0",
	        names_localhost(host) ? "127.0.0.1" : host) < sizeof(text) &&
	    hr_netaddr_parse(text, &ss, &len) == HR_OK &&
	    !hr_netaddr_allowed((const struct sockaddr *)&ss, why, sizeof(why)))
		warn_at(p, cfg_seen_line(il, "url"),
		    "[destination %s] url names %s, which is refused without allow_private = "
		    "true (%s): every attempt would fail",
		    dst->name, host, why);
	curl_free(host);
	curl_url_cleanup(u);
}

/* connect_timeout is a part of the attempt's `timeout`: past it, it never ends one. */
static void
warn_connect_timeout(
    struct parser *p, const struct inst_lines *il, const struct hr_destination_cfg *dst)
{
	if (dst->connect_timeout_ms > dst->timeout_ms)
		warn_at(p, cfg_seen_line(il, "connect_timeout"),
		    "[destination %s] connect_timeout is longer than timeout, which ends the whole "
		    "attempt first",
		    dst->name);
}

/* cache_size sizes SQLite's page cache; PostgreSQL keeps its own (shared_buffers). */
static void
warn_sqlite_only(struct parser *p)
{
	int line = cfg_plain_line(p, SEC_STORAGE, "cache_size");

	if (p->cfg->db_backend == HR_CFG_BACKEND_POSTGRESQL && line != 0)
		warn_at(p, line,
		    "[storage] cache_size is for SQLite: with backend = postgresql it has no "
		    "effect (the database server's cache is its shared_buffers)");
}

/* pool, lease and statement_timeout are the PostgreSQL engine's; SQLite has one writer and no
 * claims. */
static void
warn_postgresql_only(struct parser *p)
{
	static const char *const keys[] = { "pool", "lease", "statement_timeout" };

	if (p->cfg->db_backend == HR_CFG_BACKEND_POSTGRESQL)
		return;
	for (size_t i = 0; i < HR_ARRAY_LEN(keys); i++) {
		int line = cfg_plain_line(p, SEC_STORAGE, keys[i]);

		if (line != 0)
			warn_at(p, line,
			    "[storage] %s is for backend = postgresql: with SQLite it has no "
			    "effect",
			    keys[i]);
	}
}

void
cfg_lint(struct parser *p)
{
	warn_sqlite_only(p);
	warn_postgresql_only(p);
	for (size_t s = 0; s < SEC_COUNT; s++)
		if (cfg_sections[s].size == 0)
			warn_readable_secrets(p, (int)s, p->cfg, p->plain_seen, "");
	for (size_t r = 0; r < p->ninsts; r++) {
		const struct inst_lines *il = &p->insts[r];
		const struct section *s = &cfg_sections[il->sec];
		size_t n;
		const char *inst = (const char *)cfg_instances(p->cfg, s, &n) + il->idx * s->size;

		warn_readable_secrets(p, il->sec, inst, il->seen, inst + s->name_off);
		if (il->sec == SEC_SOURCE) {
			warn_wide_proxies(p, il, (const struct hr_source_cfg *)inst);
			warn_unsigned_daily(p, il, (const struct hr_source_cfg *)inst);
			warn_open_source(p, il, (const struct hr_source_cfg *)inst);
			warn_short_dedup_window(p, il, (const struct hr_source_cfg *)inst);
			warn_unsigned_timestamp(p, il, (const struct hr_source_cfg *)inst);
		}
		if (il->sec == SEC_DESTINATION) {
			warn_blocked_destination(p, il, (const struct hr_destination_cfg *)inst);
			warn_connect_timeout(p, il, (const struct hr_destination_cfg *)inst);
		}
	}
}
