/*
 * netaddr.c - addresses as text: numeric listen addresses, address blocks
 * (CIDRs), and Host authorities.
 *
 * Listen addresses are numeric on purpose: resolving names at start-up makes
 * the daemon depend on DNS being up before it is. Nothing here resolves a
 * name or opens a socket; where a delivery may connect is netaddr_guard.c's.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hr/common.h"
#include "hr/netaddr.h"

/* One to five digits, nothing else (strtol would take a sign and blanks), at most 65535. */
static int
parse_port(const char *s, in_port_t *out)
{
	size_t n = strspn(s, "0123456789");
	long v = 0;

	if (n == 0 || n > 5 || s[n] != '\0')
		return HR_EINVAL;
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (s[i] - '0');
	if (v > 65535)
		return HR_EINVAL;
	*out = htons((in_port_t)v);
	return HR_OK;
}

int
hr_netaddr_parse(const char *text, struct sockaddr_storage *out, socklen_t *outlen)
{
	char host[64];
	const char *colon;
	size_t hlen;
	in_port_t port;

	memset(out, 0, sizeof(*out));
	if (text[0] == '[') {
		const char *close = strchr(text, ']');
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)out;

		if (close == NULL || close[1] != ':')
			return HR_EINVAL;
		hlen = (size_t)(close - text - 1);
		if (hlen == 0 || hlen >= sizeof(host))
			return HR_EINVAL;
		memcpy(host, text + 1, hlen);
		host[hlen] = '\0';
		if (parse_port(close + 2, &port) != HR_OK ||
		    inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
			return HR_EINVAL;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = port;
		*outlen = sizeof(*s6);
		return HR_OK;
	}
	colon = strrchr(text, ':');
	if (colon == NULL)
		return HR_EINVAL;
	hlen = (size_t)(colon - text);
	if (hlen >= sizeof(host))
		return HR_EINVAL;
	memcpy(host, text, hlen);
	host[hlen] = '\0';
	{
		struct sockaddr_in *s4 = (struct sockaddr_in *)out;

		if (parse_port(colon + 1, &port) != HR_OK)
			return HR_EINVAL;
		if (hlen == 0)
			s4->sin_addr.s_addr = htonl(INADDR_ANY);
		else if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
			return HR_EINVAL;
		s4->sin_family = AF_INET;
		s4->sin_port = port;
		*outlen = sizeof(*s4);
	}
	return HR_OK;
}

void
hr_netaddr_format(const struct sockaddr *sa, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		snprintf(buf, len, "%s:%u", host, ntohs(s4->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		snprintf(buf, len, "[%s]:%u", host, ntohs(s6->sin6_port));
	} else {
		snprintf(buf, len, "unix");
	}
}

bool
hr_netaddr_same(const struct sockaddr *a, const struct sockaddr *b)
{
	if (a == NULL || b == NULL || a->sa_family != b->sa_family)
		return false;
	if (a->sa_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->sa_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

		return x->sin6_port == y->sin6_port &&
		    memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
	}
	return false;
}

bool
hr_netaddr_is_loopback(const struct sockaddr *sa)
{
	if (sa == NULL)
		return false;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;

		return (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;

		if (IN6_IS_ADDR_LOOPBACK(a))
			return true;
		return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
	}
	return sa->sa_family == AF_UNIX;
}

/* ---- address blocks ---- */

static const unsigned char v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

bool
hr_netaddr_bytes(const struct sockaddr *sa, int *family, unsigned char out[16])
{
	const struct sockaddr_in6 *s6;

	if (sa == NULL)
		return false;
	if (sa->sa_family == AF_INET) {
		*family = AF_INET;
		memcpy(out, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
		return true;
	}
	if (sa->sa_family != AF_INET6)
		return false;
	s6 = (const struct sockaddr_in6 *)(const void *)sa;
	if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
		*family = AF_INET;
		memcpy(out, s6->sin6_addr.s6_addr + 12, 4);
	} else {
		*family = AF_INET6;
		memcpy(out, s6->sin6_addr.s6_addr, 16);
	}
	return true;
}

/* Clear the bits past the prefix, so equal blocks compare equal; were any set? */
static bool
mask_host_bits(unsigned char *addr, size_t nbytes, unsigned bits)
{
	unsigned char cleared = 0;

	for (size_t i = 0; i < nbytes; i++) {
		unsigned keep = bits >= 8 * (i + 1) ? 8 : bits > 8 * i ? bits - 8 * (unsigned)i : 0;
		unsigned char masked = addr[i] & (unsigned char)(0xff00u >> keep);

		cleared |= addr[i] ^ masked;
		addr[i] = masked;
	}
	return cleared != 0;
}

/* "/NN": one to three digits, at most `max`. */
static bool
parse_prefix(const char *s, unsigned max, unsigned *bits)
{
	size_t n = strspn(s, "0123456789");
	unsigned v = 0;

	if (n == 0 || n > 3 || s[n] != '\0')
		return false;
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (unsigned)(s[i] - '0');
	*bits = v;
	return v <= max;
}

int
hr_cidr_parse(const char *text, struct hr_cidr *out)
{
	struct hr_cidr c = { 0 };
	char addr[INET6_ADDRSTRLEN];
	const char *slash = strchr(text, '/');
	size_t n = slash != NULL ? (size_t)(slash - text) : strlen(text);
	unsigned max;

	if (n == 0 || n >= sizeof(addr))
		return HR_EINVAL;
	memcpy(addr, text, n);
	addr[n] = '\0';
	if (inet_pton(AF_INET, addr, c.addr) == 1) {
		c.family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, addr, c.addr) == 1) {
		c.family = AF_INET6;
		max = 128;
	} else {
		return HR_EINVAL;
	}
	c.bits = max;
	if (slash != NULL && !parse_prefix(slash + 1, max, &c.bits))
		return HR_EINVAL;
	if (c.family == AF_INET6 && c.bits >= 96 && memcmp(c.addr, v4mapped, 12) == 0) {
		memmove(c.addr, c.addr + 12, 4);
		memset(c.addr + 4, 0, 12);
		c.family = AF_INET;
		c.bits -= 96;
	}
	c.host_bits = mask_host_bits(c.addr, c.family == AF_INET ? 4 : 16, c.bits);
	*out = c;
	return HR_OK;
}

bool
hr_cidr_match(const struct hr_cidr *cidr, const struct sockaddr *sa)
{
	unsigned char a[16];
	int family;

	if (!hr_netaddr_bytes(sa, &family, a) || family != cidr->family)
		return false;
	(void)mask_host_bits(a, family == AF_INET ? 4 : 16, cidr->bits);
	return memcmp(a, cidr->addr, family == AF_INET ? 4 : 16) == 0;
}

/* ---- Host authorities ---- */

/* RFC 3986 unreserved: names, IPv4 and IPv6 text (with the ":" and "%" added below). */
static bool
is_unreserved(unsigned c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    c == '-' || c == '.' || c == '_' || c == '~';
}

bool
hr_netaddr_authority(const char *s, size_t n, struct hr_authority *a)
{
	const char *end = s + n, *colon = NULL, *hs = s, *he;

	memset(a, 0, sizeof(*a));
	if (n == 0)
		return false;
	if (s[0] == '[') {
		const char *close = memchr(s, ']', n);

		if (close == NULL || (close + 1 < end && close[1] != ':'))
			return false;
		hs = s + 1;
		he = close;
		colon = close + 1 < end ? close + 1 : NULL;
		a->ipv6 = true;
	} else {
		colon = memchr(s, ':', n);
		he = colon != NULL ? colon : end;
	}
	if (he <= hs || (size_t)(he - hs) >= sizeof(a->host))
		return false;
	for (size_t i = 0; i < (size_t)(he - hs); i++) {
		unsigned c = (unsigned char)hs[i];

		if (!is_unreserved(c) && c != ':' && c != '%')
			return false; /* names, IPv4 and IPv6 text only */
		a->host[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
	}
	if (colon == NULL)
		return true;
	if (colon + 1 == end || end - colon > 6)
		return false;
	for (const char *p = colon + 1; p < end; p++) {
		if (*p < '0' || *p > '9')
			return false;
		a->port = a->port * 10 + (unsigned)(*p - '0');
	}
	a->has_port = true;
	return a->port <= 65535;
}
