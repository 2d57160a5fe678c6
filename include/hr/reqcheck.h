/*
 * reqcheck.h - is a request well-formed enough to route, and addressed to us?
 *
 * Two parsers that disagree about where a request ends, or about which path
 * it names, let a request through one that the other would have stopped
 * (smuggling, deny-list bypass). So hookrelay refuses, before routing, what
 * a stricter parser or a proxy could read differently: see docs/security.md
 * (defences 8, 9, 16, 20). Each check returns NULL when the request is fine,
 * else a static sentence saying why, for a 400 problem's detail.
 */
#ifndef HR_REQCHECK_H
#define HR_REQCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "hr/cfg.h"

/*
 * The request target as received (`raw`, borrowed: path and query, before
 * any percent-decoding). The path must already be in normal form, so that
 * what a proxy matched is what hookrelay routes: it starts with "/", holds
 * only RFC 3986 path characters, no dot segments ("." or ".."), and no
 * percent-encoded unreserved character, "/", NUL or control character. The
 * query may not hold a NUL (%00) or a control character.
 */
const char *hr_reqcheck_target(const char *raw);

/*
 * The header fields of a request `mhd` (a struct MHD_Connection, borrowed)
 * that libmicrohttpd has parsed, `version` being the pointer its handler
 * got. Checks what MHD 0.9.75 lets through: each line ends in CRLF (no bare
 * LF), no NUL inside a line, no obs-fold, field names are tokens (no
 * "Transfer-Encoding :"), values hold no control character; then framing:
 * exactly one Host (or none, for an HTTP/1.0 request when `host_optional`),
 * Content-Length digits only and never two different ones, Transfer-Encoding
 * only "chunked", only once, only in HTTP/1.1 and never with Content-Length.
 * `*field` names the header at fault (or NULL).
 */
const char *hr_reqcheck_headers(
    void *mhd, const char *version, bool host_optional, const char **field);

/*
 * Is `host` (a Host header value, borrowed) a name this daemon answers to
 * when listening on `bound`? With the port of `bound`, or none: localhost,
 * 127.0.0.1 and [::1] on a loopback listener; the
 * listen address itself; any IP address on a wildcard listener (IP
 * literals cannot be rebound through DNS). And each of `names`: "name"
 * with any port, or "name:port" exactly. Names compare case-insensitively.
 */
bool hr_reqcheck_host(
    const char *host, const struct sockaddr *bound, const struct hr_strlist *names);

/*
 * Is `origin` (an Origin header value, borrowed) one of ours: http:// or
 * https:// and an authority hr_reqcheck_host() accepts (default ports 80
 * and 443)? "null" and anything else are not.
 */
bool hr_reqcheck_origin(
    const char *origin, const struct sockaddr *bound, const struct hr_strlist *names);

#endif
