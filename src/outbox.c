/*
 * outbox.c - routing events to destinations, and the SSRF guard.
 *
 * Matching runs on the HTTP thread so the writer can put the delivery rows
 * in the event's own transaction (the transactional outbox). The address
 * guard runs on the address libcurl is about to connect to, after DNS, so a
 * name that resolves to 169.254.169.254 is caught as surely as the literal.
 */
#include <arpa/inet.h>
#include <fnmatch.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "hr/outbox.h"

static bool
list_accepts(const struct hr_strlist *l, const char *value, bool glob)
{
	if (l->n == 0)
		return true;
	for (size_t i = 0; i < l->n; i++)
		if (glob ? fnmatch(l->v[i], value, 0) == 0 : strcmp(l->v[i], value) == 0)
			return true;
	return false;
}

size_t
hr_outbox_match(const struct hr_cfg *cfg, const char *source, const char *kind, const char **names,
    bool *ordered, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < cfg->ndestinations && n < max; i++) {
		const struct hr_destination_cfg *d = &cfg->destinations[i];

		if (!list_accepts(&d->sources, source, false) ||
		    !list_accepts(&d->match, kind, true))
			continue;
		names[n] = d->name;
		ordered[n] = d->ordered;
		n++;
	}
	return n;
}

struct v4_range {
	uint32_t net;
	unsigned bits;
	const char *what;
};

/* clang-format off */
static const struct v4_range v4_blocked[] = {
	{ 0x00000000, 8, "unspecified (0.0.0.0/8)" },
	{ 0x0a000000, 8, "private (10.0.0.0/8)" },
	{ 0x64400000, 10, "shared address space (100.64.0.0/10)" },
	{ 0x7f000000, 8, "loopback (127.0.0.0/8)" },
	{ 0xa9fe0000, 16, "link-local / cloud metadata (169.254.0.0/16)" },
	{ 0xac100000, 12, "private (172.16.0.0/12)" },
	{ 0xc0000000, 24, "IETF protocol assignments (192.0.0.0/24)" },
	{ 0xc0a80000, 16, "private (192.168.0.0/16)" },
	{ 0xc6120000, 15, "benchmarking (198.18.0.0/15)" },
	{ 0xe0000000, 4, "multicast (224.0.0.0/4)" },
	{ 0xf0000000, 4, "reserved (240.0.0.0/4)" },
};
/* clang-format on */

static bool
v4_allowed(uint32_t addr, char *why, size_t len)
{
	for (size_t i = 0; i < sizeof(v4_blocked) / sizeof(v4_blocked[0]); i++) {
		uint32_t mask = v4_blocked[i].bits ? ~UINT32_C(0) << (32 - v4_blocked[i].bits) : 0;

		if ((addr & mask) == v4_blocked[i].net) {
			snprintf(why, len, "%s", v4_blocked[i].what);
			return false;
		}
	}
	return true;
}

static bool
v6_allowed(const struct in6_addr *a, char *why, size_t len)
{
	static const unsigned char nat64[12] = { 0x00, 0x64, 0xff, 0x9b };
	const unsigned char *b = a->s6_addr;

	if (IN6_IS_ADDR_V4MAPPED(a) || memcmp(b, nat64, sizeof(nat64)) == 0)
		return v4_allowed(
		    (uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 | (uint32_t)b[14] << 8 | b[15],
		    why, len);
	if (IN6_IS_ADDR_LOOPBACK(a) || IN6_IS_ADDR_UNSPECIFIED(a))
		snprintf(why, len, "loopback or unspecified IPv6");
	else if ((b[0] & 0xfe) == 0xfc)
		snprintf(why, len, "unique local IPv6 (fc00::/7, incl. fd00:ec2::254)");
	else if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
		snprintf(why, len, "link-local IPv6 (fe80::/10)");
	else if (b[0] == 0xff)
		snprintf(why, len, "multicast IPv6");
	else
		return true;
	return false;
}

bool
hr_outbox_addr_allowed(const struct sockaddr *sa, char *why, size_t len)
{
	if (sa->sa_family == AF_INET)
		return v4_allowed(
		    ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr), why, len);
	if (sa->sa_family == AF_INET6)
		return v6_allowed(&((const struct sockaddr_in6 *)sa)->sin6_addr, why, len);
	snprintf(why, len, "not an internet address");
	return false;
}
