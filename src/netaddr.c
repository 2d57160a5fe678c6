/*
 * netaddr.c - numeric listen addresses.
 *
 * Listen addresses are numeric on purpose: resolving names at start-up makes
 * the daemon depend on DNS being up before it is.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hr/common.h"
#include "hr/netaddr.h"

static int
parse_port(const char *s, in_port_t *out)
{
	char *end;
	long v;

	if (*s == '\0')
		return HR_EINVAL;
	v = strtol(s, &end, 10);
	if (*end != '\0' || v < 0 || v > 65535)
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
