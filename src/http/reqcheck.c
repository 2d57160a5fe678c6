/*
 * reqcheck.c - is a request well-formed enough to route, and addressed to us?
 *
 * libmicrohttpd 0.9.75 is lenient where a proxy in front may not be: it
 * takes a bare LF as a line end, cuts a header value or the request target
 * at a NUL, keeps "Transfer-Encoding :" as a header of another name, reads
 * by Transfer-Encoding when Content-Length is there too and by the first of
 * two Content-Lengths, and decodes %00 and %2F in the path. Any of these
 * lets a request mean one thing to the proxy and another here: a smuggled
 * second request, a token cut short, a deny-listed path. So a request is
 * refused (400, connection closed) unless every reading of it agrees.
 *
 * MHD hands over parsed headers, not bytes; but for a normal header line it
 * keeps name and value as pointers into its read buffer, with the colon and
 * the CR LF overwritten by NULs. So the bytes between one field and the
 * next are known exactly, and anything else there (a bare LF, a NUL inside
 * the line, an obs-fold MHD copied elsewhere) shows as a field that does
 * not start where the previous one ended. That layout is MHD's, checked
 * against 0.9.75 (Debian 12); the tests in tests/security/test_http_*.py
 * send well-formed requests and each malformed kind, so a libmicrohttpd
 * that lays its buffer out differently fails them rather than slipping by.
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hr/netaddr.h"
#include "hr/reqcheck.h"

/* ---- the request target ---- */

static bool
is_unreserved(unsigned c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    c == '-' || c == '.' || c == '_' || c == '~';
}

/* RFC 3986 pchar besides unreserved and pct-encoded, and the segment separator. */
static bool
is_path_char(unsigned c)
{
	return is_unreserved(c) || (c != '\0' && strchr("!$&'()*+,;=:@/", (int)c) != NULL);
}

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool
is_ctl(unsigned c)
{
	return c < 0x20 || c == 0x7f;
}

static bool
dot_segment(const char *seg, const char *end)
{
	size_t n = (size_t)(end - seg);

	return (n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.');
}

/* An escape in the path, at `p` ("%XY"): NULL if it may stay encoded. */
static const char *
path_escape(const char *p)
{
	int hi = hex_value(p[1]), lo = hi < 0 ? -1 : hex_value(p[2]);
	unsigned v;

	if (hi < 0 || lo < 0)
		return "a % in the path is not followed by two hex digits";
	v = (unsigned)(hi * 16 + lo);
	if (v == 0)
		return "the path holds an encoded NUL (%00)";
	if (is_ctl(v))
		return "the path holds an encoded control character";
	if (v == '/')
		return "the path holds an encoded / (%2F)";
	if (is_unreserved(v))
		return "the path percent-encodes a letter, digit or -._~ (it is not in normal "
		       "form)";
	return NULL;
}

const char *
hr_reqcheck_target(const char *raw)
{
	const char *p = raw, *seg = raw + 1, *why;

	if (raw[0] != '/')
		return "the request target must be a path starting with /";
	for (p = raw + 1; *p != '\0' && *p != '?'; p++) {
		unsigned c = (unsigned char)*p;

		if (c == '/') {
			if (dot_segment(seg, p))
				return "the path holds a dot segment (. or ..)";
			seg = p + 1;
		} else if (c == '%') {
			if ((why = path_escape(p)) != NULL)
				return why;
			p += 2;
		} else if (!is_path_char(c)) {
			return "the path holds a character that must be percent-encoded";
		}
	}
	if (dot_segment(seg, p))
		return "the path holds a dot segment (. or ..)";
	for (; *p != '\0'; p++) {
		if (is_ctl((unsigned char)*p))
			return "the query holds a control character";
		if (p[0] == '%' && p[1] == '0' && p[2] == '0')
			return "the query holds an encoded NUL (%00)";
	}
	return NULL;
}

/* ---- header fields ---- */

/* RFC 9110 tchar */
static bool
is_tchar(unsigned c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    (c != '\0' && strchr("!#$%&'*+-.^_`|~", (int)c) != NULL);
}

struct walk {
	const char *expect; /* where the next field's name must start */
	const char *why, *field;
	unsigned hosts, lengths, encodings;
	const char *length; /* the first Content-Length */
	bool chunked;
};

/* The bytes MHD left of one "name: value CRLF" line, at w->expect. */
static const char *
line_layout(struct walk *w, const char *key, size_t key_size, const char *value, size_t value_size)
{
	const char *sep = key + key_size + 1;

	if (key != w->expect)
		return "a header line ends in a bare LF, holds a NUL, or is folded (obs-fold)";
	if (key_size == 0)
		return "a header line has an empty field name";
	for (size_t i = 0; i < key_size; i++)
		if (!is_tchar((unsigned char)key[i]))
			return "a header field name holds a character that is not allowed (a blank "
			       "before the colon?)";
	if (key[key_size] != '\0')
		return "a header line is not what it seems";
	for (; sep < value; sep++)
		if (*sep != ' ' && *sep != '\t')
			return "a header line is not what it seems";
	for (size_t i = 0; i < value_size; i++)
		if (value[i] != '\t' && is_ctl((unsigned char)value[i]))
			return "a header value holds a control character (CR, NUL, ...)";
	/* The CR and the LF, both NUL now: a bare LF left one, a NUL inside left text. */
	if (value[value_size] != '\0' || value[value_size + 1] != '\0')
		return "a header line ends in a bare LF or holds a NUL";
	w->expect = value + value_size + 2;
	return NULL;
}

static bool
all_digits(const char *s, size_t n)
{
	if (n == 0 || n > 19)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* Host, Content-Length and Transfer-Encoding, one field at a time. */
static const char *
framing_field(struct walk *w, const char *key, const char *value, size_t value_size)
{
	if (strcasecmp(key, MHD_HTTP_HEADER_HOST) == 0) {
		if (++w->hosts > 1)
			return "the request has more than one Host header";
		if (value_size == 0)
			return "the Host header is empty";
	} else if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
		if (!all_digits(value, value_size))
			return "Content-Length is not a decimal number";
		if (w->lengths++ > 0 && strcmp(w->length, value) != 0)
			return "the request has two different Content-Lengths";
		w->length = value;
	} else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
		if (++w->encodings > 1)
			return "the request has more than one Transfer-Encoding header";
		if (strcasecmp(value, "chunked") != 0)
			return "the only Transfer-Encoding accepted is chunked";
	}
	return NULL;
}

static enum MHD_Result
visit_field(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size, const char *value,
    size_t value_size)
{
	struct walk *w = cls;

	(void)kind;
	if (key == NULL || value == NULL) {
		w->why = "a header line is not what it seems";
	} else {
		w->why = line_layout(w, key, key_size, value, value_size);
		if (w->why == NULL)
			w->why = framing_field(w, key, value, value_size);
	}
	w->field = key;
	return w->why == NULL ? MHD_YES : MHD_NO;
}

const char *
hr_reqcheck_headers(void *mhd, const char *version, bool host_optional, const char **field)
{
	struct walk w = { .why = NULL };
	bool http10;

	*field = NULL;
	/* Only then does `version` point into MHD's read buffer (else at a literal). */
	if (strcmp(version, "HTTP/1.1") != 0 && strcmp(version, "HTTP/1.0") != 0)
		return "only HTTP/1.0 and HTTP/1.1 are spoken here";
	http10 = version[7] == '0';
	if (version[9] != '\0')
		return "the request line ends in a bare LF";
	w.expect = version + 10;
	MHD_get_connection_values_n(mhd, MHD_HEADER_KIND, visit_field, &w);
	if (w.why != NULL) {
		*field = w.field;
		return w.why;
	}
	if (w.expect[0] != '\0' || w.expect[1] != '\0')
		return "the header section ends in a bare LF, or a header line holds a NUL";
	*field = MHD_HTTP_HEADER_HOST;
	if (w.hosts != 1 && !(w.hosts == 0 && http10 && host_optional))
		return "the request has no Host header";
	*field = MHD_HTTP_HEADER_TRANSFER_ENCODING;
	if (w.encodings > 0 && w.lengths > 0)
		return "the request has both Transfer-Encoding and Content-Length";
	if (w.encodings > 0 && http10)
		return "Transfer-Encoding is not allowed in HTTP/1.0";
	*field = NULL;
	return NULL;
}

/* ---- Host and Origin ---- */

/* The address text of `bound` ("127.0.0.1", "::1"), its port, and what kind it is. */
static void
bound_facts(const struct sockaddr *bound, char *text, size_t len, unsigned *port, bool *loopback,
    bool *wildcard)
{
	if (bound->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)bound;

		inet_ntop(AF_INET6, &s6->sin6_addr, text, (socklen_t)len);
		*port = ntohs(s6->sin6_port);
		*loopback = IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr);
		*wildcard = IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr);
	} else {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)bound;

		inet_ntop(AF_INET, &s4->sin_addr, text, (socklen_t)len);
		*port = ntohs(s4->sin_port);
		*loopback = (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
		*wildcard = s4->sin_addr.s_addr == htonl(INADDR_ANY);
	}
}

static bool
is_ip_literal(const struct hr_authority *a)
{
	unsigned char buf[16];

	return a->ipv6 ? inet_pton(AF_INET6, a->host, buf) == 1
	               : inet_pton(AF_INET, a->host, buf) == 1;
}

/* One of the configured names: "name" (any port) or "name:port". */
static bool
named(const struct hr_authority *a, const struct hr_strlist *names)
{
	for (size_t i = 0; names != NULL && i < names->n; i++) {
		struct hr_authority n;

		if (!hr_netaddr_authority(names->v[i], strlen(names->v[i]), &n) ||
		    n.ipv6 != a->ipv6 || strcmp(n.host, a->host) != 0)
			continue;
		if (!n.has_port || n.port == a->port)
			return true;
	}
	return false;
}

/*
 * `default_port` 0: a Host header, where an authority without a port is
 * taken to mean this listener (clients that leave the port out are common,
 * and the port decides nothing against rebinding, which needs a name). An
 * Origin names a port, or its scheme's, and must name ours: another local
 * web server is another origin.
 */
static bool
authority_ours(struct hr_authority *a, unsigned default_port, const struct sockaddr *bound,
    const struct hr_strlist *names)
{
	char text[64];
	unsigned port;
	bool loopback, wildcard;

	if (!a->has_port)
		a->port = default_port;
	if (named(a, names))
		return true;
	bound_facts(bound, text, sizeof(text), &port, &loopback, &wildcard);
	if ((a->has_port || default_port != 0) && a->port != port)
		return false;
	if (loopback &&
	    (strcmp(a->host, "localhost") == 0 || (!a->ipv6 && strcmp(a->host, "127.0.0.1") == 0) ||
	        (a->ipv6 && strcmp(a->host, "::1") == 0)))
		return true;
	if (wildcard)
		return is_ip_literal(a);
	return a->ipv6 == (bound->sa_family == AF_INET6) && strcmp(a->host, text) == 0;
}

bool
hr_reqcheck_host(const char *host, const struct sockaddr *bound, const struct hr_strlist *names)
{
	struct hr_authority a;

	return host != NULL && hr_netaddr_authority(host, strlen(host), &a) &&
	    authority_ours(&a, 0, bound, names);
}

bool
hr_reqcheck_origin(const char *origin, const struct sockaddr *bound, const struct hr_strlist *names)
{
	struct hr_authority a;
	unsigned port;
	const char *rest;

	if (origin == NULL)
		return false;
	if (strncmp(origin, "http://", 7) == 0) {
		rest = origin + 7;
		port = 80;
	} else if (strncmp(origin, "https://", 8) == 0) {
		rest = origin + 8;
		port = 443;
	} else {
		return false; /* "null" (a sandboxed or file: page), other schemes */
	}
	return hr_netaddr_authority(rest, strlen(rest), &a) &&
	    authority_ours(&a, port, bound, names);
}
