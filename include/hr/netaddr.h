/*
 * netaddr.h - addresses: listen addresses, address blocks (CIDRs), Host
 * authorities, and the SSRF guard (which addresses a delivery may reach).
 */
#ifndef HR_NETADDR_H
#define HR_NETADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "hr/common.h"

/*
 * Parse "127.0.0.1:8080", "[::1]:8080" or ":8080" (all IPv4 addresses) into
 * `out`. Numeric addresses only: a daemon must not depend on DNS to start.
 */
int hr_netaddr_parse(const char *text, struct sockaddr_storage *out, socklen_t *outlen);
/* "127.0.0.1:8080" / "[::1]:8080" for logs; buf >= 64 bytes. */
void hr_netaddr_format(const struct sockaddr *sa, char *buf, size_t len);
/* 127.0.0.0/8, ::1 and IPv4-mapped loopback. */
bool hr_netaddr_is_loopback(const struct sockaddr *sa);
/* `sa`'s address alone, as (family, bytes): AF_INET (4 bytes), or AF_INET6 (16),
 * an IPv4-mapped IPv6 address folded into its IPv4 one; false for NULL or
 * another family. */
bool hr_netaddr_bytes(const struct sockaddr *sa, int *family, unsigned char out[16]);
/* The same address and port (IPv4 or IPv6); false for NULL or another family. */
bool hr_netaddr_same(const struct sockaddr *a, const struct sockaddr *b);

/* An address block. IPv4-mapped IPv6 (::ffff:a.b.c.d) is kept as IPv4. */
struct hr_cidr {
	int family;             /* AF_INET or AF_INET6 */
	unsigned char addr[16]; /* network order, host bits zero; AF_INET uses 4 bytes */
	unsigned bits;          /* prefix length */
	bool host_bits;         /* the text had bits set past the prefix ("192.0.2.10/24") */
};

/* "10.0.0.0/8", "2001:db8::/32", or one address ("192.0.2.1", "::1"). HR_OK or HR_EINVAL. */
int hr_cidr_parse(const char *text, struct hr_cidr *out) HR_WUR;
/* Is `sa` (AF_INET or AF_INET6, IPv4-mapped counts as IPv4) inside `cidr`? */
bool hr_cidr_match(const struct hr_cidr *cidr, const struct sockaddr *sa);

#define HR_AUTHORITY_HOST_MAX 256 /* a Host or Origin authority longer than this is refused */

/* A Host header's authority, taken apart. */
struct hr_authority {
	char host[HR_AUTHORITY_HOST_MAX]; /* lower case; an IPv6 address without its brackets */
	bool ipv6;                        /* was [...] */
	unsigned port;
	bool has_port;
};

/* "name", "name:port", "1.2.3.4:port", "[v6]", "[v6]:port" (`n` bytes of `s`)
 * into `out`; false when it is none of them. */
bool hr_netaddr_authority(const char *s, size_t n, struct hr_authority *out);

/*
 * The SSRF guard (netaddr_guard.c). Whether a destination without
 * allow_private may connect to `sa`: false for loopback, RFC 1918, CGNAT,
 * link-local (cloud metadata 169.254.169.254), ULA (fd00:ec2::254),
 * site-local, multicast, unspecified and reserved addresses, IPv4-compatible
 * and local-use NAT64 IPv6; the IPv4 address inside an IPv4-mapped, NAT64
 * (64:ff9b::/96) or 6to4 (2002::/16) one is judged as IPv4; and any address
 * of this host (getifaddrs, looked at again at most once a second). `why`
 * (>= 64 bytes) says which. Any thread.
 */
bool hr_netaddr_allowed(const struct sockaddr *sa, char *why, size_t len);

#ifdef HR_TESTING
/* Use these as this host's addresses instead of the interfaces' (NULL: the interfaces). */
void hr_netaddr_set_own_addresses(const struct sockaddr *const *addrs, size_t n);
/* List this host's addresses with `list` in place of getifaddrs() (NULL: getifaddrs()),
 * from the next look on: each look lists them again. */
struct ifaddrs;
void hr_netaddr_set_own_listing(int (*list)(struct ifaddrs **));
#endif

#endif
