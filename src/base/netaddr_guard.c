/*
 * netaddr_guard.c - the SSRF guard: which addresses a delivery may reach.
 *
 * It runs on the address libcurl is about to connect to, after DNS, so a
 * name that resolves to 169.254.169.254 is caught as surely as the literal.
 * Blocks are tables; an IPv6 form that carries an IPv4 address (mapped,
 * NAT64, 6to4) is judged by that address; this host's own addresses are
 * refused whatever block they are in.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "hr/common.h"
#include "hr/log.h"
#include "hr/netaddr.h"

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
	{ 0xc0000200, 24, "documentation (192.0.2.0/24)" },
	{ 0xc0586300, 24, "6to4 relay anycast, deprecated (192.88.99.0/24)" },
	{ 0xc0a80000, 16, "private (192.168.0.0/16)" },
	{ 0xc6120000, 15, "benchmarking (198.18.0.0/15)" },
	{ 0xc6336400, 24, "documentation (198.51.100.0/24)" },
	{ 0xcb007100, 24, "documentation (203.0.113.0/24)" },
	{ 0xe0000000, 4, "multicast (224.0.0.0/4)" },
	{ 0xf0000000, 4, "reserved (240.0.0.0/4)" },
};

/*
 * IPv6 blocks, first match wins. Where a block embeds an IPv4 address (at
 * byte `v4_at`), that address is judged instead: a NAT64 gateway or a 6to4
 * relay would carry the connection to it.
 */
struct v6_range {
	unsigned char net[16];
	unsigned bits;
	int v4_at; /* -1: the whole block is refused */
	const char *what;
};

static const struct v6_range v6_blocked[] = {
	{ { 0 }, 128, -1, "unspecified IPv6 (::)" },
	{ { [15] = 1 }, 128, -1, "loopback IPv6 (::1)" },
	{ { [10] = 0xff, [11] = 0xff }, 96, 12, NULL },                 /* ::ffff:a.b.c.d */
	{ { 0 }, 96, -1, "IPv4-compatible IPv6 (::a.b.c.d, deprecated)" },
	{ { 0x00, 0x64, 0xff, 0x9b }, 96, 12, NULL },                   /* NAT64 64:ff9b::/96 */
	{ { 0x00, 0x64, 0xff, 0x9b, 0x00, 0x01 }, 48, -1, "local-use NAT64 (64:ff9b:1::/48)" },
	{ { 0x20, 0x02 }, 16, 2, NULL },                                /* 6to4 2002:a.b.c.d::/48 */
	{ { [0] = 0x01 }, 64, -1, "discard-only IPv6 (100::/64)" },
	/* Teredo's embedded addresses are the server's and the client's (obfuscated),
	 * reached through relays: nothing a webhook receiver uses. */
	{ { 0x20, 0x01 }, 32, -1, "Teredo (2001::/32)" },
	{ { 0x20, 0x01, 0x00, 0x02 }, 48, -1, "benchmarking IPv6 (2001:2::/48)" },
	{ { 0x20, 0x01, 0x0d, 0xb8 }, 32, -1, "documentation IPv6 (2001:db8::/32)" },
	{ { 0x3f, 0xff }, 20, -1, "documentation IPv6 (3fff::/20)" },
	{ { 0xfc }, 7, -1, "unique local IPv6 (fc00::/7, incl. fd00:ec2::254)" },
	{ { 0xfe, 0x80 }, 10, -1, "link-local IPv6 (fe80::/10)" },
	{ { 0xfe, 0xc0 }, 10, -1, "site-local IPv6 (fec0::/10, deprecated)" },
	{ { 0xff }, 8, -1, "multicast IPv6 (ff00::/8)" },
};
/* clang-format on */

/* ---- this host's own addresses ---- */

#define OWN_REFRESH_US (INT64_C(1000000)) /* interfaces change (DHCP, VPNs): look again */

struct own_addr {
	int family;
	unsigned char a[16]; /* AF_INET: 4 bytes */
};

/*
 * A connection to any address of this host reaches its loopback-only
 * services as surely as 127.0.0.1, whatever block the address is in. The
 * snapshot is shared by every caller, so getifaddrs() runs at most once a
 * second however many attempts go out.
 */
static struct {
	pthread_mutex_t mu;
	int64_t taken_us;   /* 0: never */
	bool listed;        /* a getifaddrs() list was taken: a failed one keeps it */
	bool fixed;         /* tests: a given list, never refreshed */
	int unknown;        /* what the last refresh could not list: an enum own_gap */
	size_t n;           /* every address: a host with hundreds (containers) is covered */
	struct own_addr *v; /* malloc'd, replaced whole by a refresh */
} own = { .mu = PTHREAD_MUTEX_INITIALIZER };

static bool
to_own(const struct sockaddr *sa, struct own_addr *out)
{
	memset(out, 0, sizeof(*out));
	return hr_netaddr_bytes(sa, &out->family, out->a);
}

/* Caller holds own.mu: `n` addresses from `addrs`, in place of the snapshot.
 * False (the old snapshot stays) when there is no memory for them. */
static bool
own_set(const struct sockaddr *const *addrs, size_t n)
{
	struct own_addr *v = calloc(n + 1, sizeof(*v));
	size_t kept = 0;

	if (v == NULL)
		return false;
	for (size_t i = 0; i < n; i++)
		if (to_own(addrs[i], &v[kept]))
			kept++;
	free(own.v);
	own.v = v;
	own.n = kept;
	return true;
}

#define OWN_IFREQ_MAX 65536 /* interfaces SIOCGIFCONF is asked for at most */

/* What a refresh could not learn; said in the log when it changes, not per attempt. */
enum own_gap { OWN_ALL_KNOWN, OWN_NO_IPV6, OWN_NONE_KNOWN };

/*
 * The IPv4 addresses by SIOCGIFCONF on an AF_INET socket: no netlink needed.
 * getifaddrs() asks over AF_NETLINK, which a sandbox may deny (systemd's
 * RestrictAddressFamilies= without it): the guard then knew no address of
 * this host and let attempts reach them. Caller holds own.mu.
 */
static bool
own_from_ioctl(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), len = 64 * sizeof(struct ifreq);
	struct ifconf ifc = { 0 };
	const struct sockaddr **addrs = NULL;
	bool ok = false;
	size_t n;

	if (fd < 0)
		return false;
	for (;;) {
		free(ifc.ifc_buf);
		ifc.ifc_len = len;
		if ((ifc.ifc_buf = malloc((size_t)len)) == NULL ||
		    ioctl(fd, SIOCGIFCONF, &ifc) != 0)
			goto out;
		/* A full buffer may have cut the list short: ask again with a larger one. */
		if (ifc.ifc_len < len || len >= OWN_IFREQ_MAX * (int)sizeof(struct ifreq))
			break;
		len *= 2;
	}
	n = (size_t)ifc.ifc_len / sizeof(struct ifreq);
	if ((addrs = calloc(n + 1, sizeof(*addrs))) == NULL)
		goto out;
	for (size_t i = 0; i < n; i++)
		addrs[i] = &ifc.ifc_req[i].ifr_addr;
	ok = own_set(addrs, n);
out:
	free(addrs);
	free(ifc.ifc_buf);
	close(fd);
	return ok;
}

/* Caller holds own.mu: say so when what the guard cannot know changes. */
static void
own_note(enum own_gap gap, int why)
{
	if (gap == (enum own_gap)own.unknown)
		return;
	own.unknown = gap;
	if (gap == OWN_NO_IPV6)
		log_errx("SSRF guard: cannot list this host's addresses (getifaddrs: %s), IPv4 "
		         "ones read another way: attempts to its IPv6 addresses are not refused "
		         "(allow AF_NETLINK in RestrictAddressFamilies=)",
		    strerror(why));
	else if (gap == OWN_NONE_KNOWN)
		log_errx("SSRF guard: cannot list this host's addresses (getifaddrs: %s): "
		         "attempts to them are not refused (allow AF_NETLINK in "
		         "RestrictAddressFamilies=)",
		    strerror(why));
	else
		log_info("SSRF guard: this host's addresses are listed again");
}

#ifdef HR_TESTING
static int (*own_listing)(struct ifaddrs **) = getifaddrs;
#else
#define own_listing getifaddrs
#endif

/* Caller holds own.mu. On failure the old snapshot stays: once one whole list
 * was taken, a failed listing keeps it (its IPv6 addresses too), and only a
 * guard that never had one reads the IPv4 addresses another way. */
static void
own_refresh(int64_t now)
{
	struct ifaddrs *list = NULL;
	const struct sockaddr **addrs;
	size_t n = 0;
	int why;

	own.taken_us = now;
	if (own_listing(&list) != 0) {
		why = errno;
		if (!own.listed)
			own_note(own_from_ioctl() ? OWN_NO_IPV6 : OWN_NONE_KNOWN, why);
		return;
	}
	own.listed = true;
	own_note(OWN_ALL_KNOWN, 0);
	for (const struct ifaddrs *i = list; i != NULL; i = i->ifa_next)
		n++;
	if ((addrs = calloc(n + 1, sizeof(*addrs))) != NULL) {
		n = 0;
		for (const struct ifaddrs *i = list; i != NULL; i = i->ifa_next)
			addrs[n++] = i->ifa_addr;
		(void)own_set(addrs, n);
		free(addrs);
	}
	freeifaddrs(list);
}

static bool
is_own(int family, const unsigned char *addr)
{
	struct timespec ts;
	int64_t now;
	bool found = false;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
	pthread_mutex_lock(&own.mu);
	if (!own.fixed && (own.taken_us == 0 || now - own.taken_us >= OWN_REFRESH_US))
		own_refresh(now);
	for (size_t i = 0; i < own.n && !found; i++)
		found = own.v[i].family == family &&
		    memcmp(own.v[i].a, addr, family == AF_INET ? 4 : 16) == 0;
	pthread_mutex_unlock(&own.mu);
	return found;
}

#ifdef HR_TESTING
void
hr_netaddr_set_own_addresses(const struct sockaddr *const *addrs, size_t n)
{
	pthread_mutex_lock(&own.mu);
	own.fixed = addrs != NULL;
	own.taken_us = 0;
	if (!own_set(addrs, addrs != NULL ? n : 0))
		own.n = 0;
	pthread_mutex_unlock(&own.mu);
}

void
hr_netaddr_set_own_listing(int (*list)(struct ifaddrs **))
{
	pthread_mutex_lock(&own.mu);
	own_listing = list != NULL ? list : getifaddrs;
	own.fixed = false;
	own.taken_us = 0;
	pthread_mutex_unlock(&own.mu);
}
#endif

/* ---- the verdict ---- */

static bool
v4_allowed(uint32_t addr, char *why, size_t len)
{
	unsigned char bytes[4] = { addr >> 24, addr >> 16, addr >> 8, addr };

	for (size_t i = 0; i < HR_ARRAY_LEN(v4_blocked); i++) {
		uint32_t mask = v4_blocked[i].bits ? ~UINT32_C(0) << (32 - v4_blocked[i].bits) : 0;

		if ((addr & mask) == v4_blocked[i].net) {
			snprintf(why, len, "%s", v4_blocked[i].what);
			return false;
		}
	}
	if (is_own(AF_INET, bytes)) {
		snprintf(why, len, "an address of this host");
		return false;
	}
	return true;
}

static bool
in_block(const unsigned char *a, const unsigned char *net, unsigned bits)
{
	unsigned whole = bits / 8, rest = bits % 8;

	if (memcmp(a, net, whole) != 0)
		return false;
	return rest == 0 || ((a[whole] ^ net[whole]) & (0xff00 >> rest) & 0xff) == 0;
}

static uint32_t
v4_at(const unsigned char *b)
{
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static bool
v6_allowed(const struct in6_addr *a, char *why, size_t len)
{
	const unsigned char *b = a->s6_addr;

	for (size_t i = 0; i < HR_ARRAY_LEN(v6_blocked); i++) {
		const struct v6_range *r = &v6_blocked[i];

		if (!in_block(b, r->net, r->bits))
			continue;
		if (r->v4_at >= 0)
			return v4_allowed(v4_at(b + r->v4_at), why, len);
		snprintf(why, len, "%s", r->what);
		return false;
	}
	if (is_own(AF_INET6, b)) {
		snprintf(why, len, "an address of this host");
		return false;
	}
	return true;
}

bool
hr_netaddr_allowed(const struct sockaddr *sa, char *why, size_t len)
{
	if (sa->sa_family == AF_INET)
		return v4_allowed(
		    ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr), why, len);
	if (sa->sa_family == AF_INET6)
		return v6_allowed(&((const struct sockaddr_in6 *)sa)->sin6_addr, why, len);
	snprintf(why, len, "not an internet address");
	return false;
}
