/* netaddr.h - "host:port" listen addresses and loopback checks. */
#ifndef HR_NETADDR_H
#define HR_NETADDR_H

#include <stdbool.h>
#include <sys/socket.h>

/*
 * Parse "127.0.0.1:8080", "[::1]:8080" or ":8080" (all IPv4 addresses) into
 * `out`. Numeric addresses only: a daemon must not depend on DNS to start.
 */
int hr_netaddr_parse(const char *text, struct sockaddr_storage *out, socklen_t *outlen);
/* "127.0.0.1:8080" / "[::1]:8080" for logs; buf >= 64 bytes. */
void hr_netaddr_format(const struct sockaddr *sa, char *buf, size_t len);
/* 127.0.0.0/8, ::1 and IPv4-mapped loopback. */
bool hr_netaddr_is_loopback(const struct sockaddr *sa);

#endif
