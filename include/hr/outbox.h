/* outbox.h - which destinations an event goes to, and the SSRF address guard. */
#ifndef HR_OUTBOX_H
#define HR_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "hr/cfg.h"

/* Destinations one configuration may have (checked at start). */
#define HR_MAX_DESTINATIONS 64

/*
 * Fill names[]/ordered[] (up to `max`) with the destinations whose `sources`
 * and `match` globs (fnmatch) accept an event of `kind` from `source`.
 * Returns how many matched.
 */
size_t hr_outbox_match(const struct hr_cfg *, const char *source, const char *kind,
    const char **names, bool *ordered, size_t max);

/*
 * Whether a destination without allow_private may connect to `sa`: false for
 * loopback, RFC 1918, CGNAT, link-local (cloud metadata 169.254.169.254),
 * ULA (fd00:ec2::254), site-local, multicast, unspecified and reserved
 * addresses, IPv4-compatible and local-use NAT64 IPv6; the IPv4 address inside
 * an IPv4-mapped, NAT64 (64:ff9b::/96) or 6to4 (2002::/16) one is judged as
 * IPv4; and any address of this host (getifaddrs, looked at again at most once
 * a second). `why` (>= 64 bytes) says which. Any thread.
 */
bool hr_outbox_addr_allowed(const struct sockaddr *sa, char *why, size_t len);

#ifdef HR_TESTING
/* Use these as this host's addresses instead of the interfaces' (NULL: the interfaces). */
void hr_outbox_set_own_addresses(const struct sockaddr *const *addrs, size_t n);
#endif

#endif
