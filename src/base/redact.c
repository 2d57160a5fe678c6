/*
 * redact.c - what may be shown of a configured URL.
 *
 * Destination URLs often carry credentials: userinfo, a `?token=` (or
 * `key=`, `sig=`, ...) the receiver checks, or a token in the path (Slack's
 * /services/T../B../TOKEN, Discord's /api/webhooks/ID/TOKEN). Which query
 * parameters are secret cannot be known, so every value goes, and the names
 * stay to tell the URLs apart; a path segment that looks like a token (long,
 * letters and digits mixed) goes too, and the words of the path stay.
 * libcurl's URL API parses and rebuilds, so the result is read the way the
 * delivery worker reads the URL.
 *
 * Inbound, a sender may quote the URL it was given, token included (Tavus
 * echoes the callback URL in webhook_url): hr_redact_secret() masks it in
 * the body before the body is stored or forwarded.
 */
#include <curl/curl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hr/common.h"
#include "hr/redact.h"

#define QUERY_MAX 2048 /* a configured URL is at most 2047 bytes */
#define TOKEN_MIN 16   /* a path segment this long, letters and digits mixed, is a token */

/* "a=1&b&c=3" -> "a=REDACTED&REDACTED&c=REDACTED" into out (QUERY_MAX bytes);
 * false when it does not fit: a query cut short would be a different URL. */
static bool
redact_query(const char *q, char *out)
{
	size_t used = 0;

	out[0] = '\0';
	while (*q != '\0') {
		size_t n = strcspn(q, "&"), name = strcspn(q, "=&");
		bool fits = name < n
		    ? hr_appendf(out, QUERY_MAX, &used, "%s%.*s=%s", used ? "&" : "", (int)name, q,
		          HR_REDACTED)
		    : hr_appendf(out, QUERY_MAX, &used, "%s%s", used ? "&" : "", HR_REDACTED);

		if (!fits)
			return false;
		q += n;
		q += *q == '&';
	}
	return true;
}

/* Generated, not written: long, of URL token characters, with letters and digits. */
static bool
looks_like_token(const char *seg, size_t n)
{
	bool letter = false, digit = false;

	if (n < TOKEN_MIN)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = seg[i];

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'))
			letter = true;
		else if (c >= '0' && c <= '9')
			digit = true;
		else if (strchr("-._~%+=", c) == NULL)
			return false;
	}
	return letter && digit;
}

/* A segment's parameters (";jsessionid=SECRET;v=2", RFC 3986 3.3), their values
 * redacted as a query's are: a session id rides there (a review found one shown). */
static bool
redact_params(const char *p, size_t n, char *out, size_t *used)
{
	while (n > 0) {
		size_t len = 1 + strcspn(p + 1, ";"), name;

		len = len < n ? len : n;
		name = strcspn(p + 1, "=;");
		if (!(1 + name < len ? hr_appendf(out, QUERY_MAX, used, ";%.*s=%s", (int)name,
		                           p + 1, HR_REDACTED)
		                     : hr_appendf(out, QUERY_MAX, used, "%.*s", (int)len, p)))
			return false;
		p += len;
		n -= len;
	}
	return true;
}

/* "/services/T0/B0/abc123..." -> "/services/T0/B0/REDACTED" into out (QUERY_MAX
 * bytes); false when it does not fit. */
static bool
redact_path(const char *path, char *out)
{
	size_t used = 0;

	out[0] = '\0';
	while (*path != '\0') {
		size_t n = strcspn(path + 1, "/") + 1; /* a '/' and the segment after it */
		size_t word = strcspn(path, ";") < n ? strcspn(path, ";") : n;
		bool token = path[0] == '/' && looks_like_token(path + 1, word - 1);

		if (!(token ? hr_appendf(out, QUERY_MAX, &used, "/%s", HR_REDACTED)
		            : hr_appendf(out, QUERY_MAX, &used, "%.*s", (int)word, path)) ||
		    !redact_params(path + word, n - word, out, &used))
			return false;
		path += n;
	}
	return true;
}

static void
unshowable(char *out, size_t len)
{
	snprintf(out, len, "(a URL that cannot be shown)");
}

void
hr_redact_url(const char *url, char *out, size_t len)
{
	CURLU *u = curl_url();
	char *part = NULL, *shown = NULL, query[QUERY_MAX];
	bool ok = u != NULL && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK;

	if (ok && curl_url_get(u, CURLUPART_USER, &part, 0) == CURLUE_OK)
		ok = curl_url_set(u, CURLUPART_USER, HR_REDACTED, 0) == CURLUE_OK;
	curl_free(part);
	part = NULL;
	if (ok)
		ok = curl_url_set(u, CURLUPART_PASSWORD, NULL, 0) == CURLUE_OK &&
		    curl_url_set(u, CURLUPART_FRAGMENT, NULL, 0) == CURLUE_OK;
	if (ok && curl_url_get(u, CURLUPART_QUERY, &part, 0) == CURLUE_OK) {
		ok = redact_query(part, query) &&
		    curl_url_set(u, CURLUPART_QUERY, query, 0) == CURLUE_OK;
	}
	curl_free(part);
	part = NULL;
	if (ok && curl_url_get(u, CURLUPART_PATH, &part, 0) == CURLUE_OK) {
		ok = redact_path(part, query) &&
		    curl_url_set(u, CURLUPART_PATH, query, 0) == CURLUE_OK;
	}
	curl_free(part);
	if (ok && curl_url_get(u, CURLUPART_URL, &shown, 0) == CURLUE_OK)
		snprintf(out, len, "%s", shown);
	else
		unshowable(out, len);
	curl_free(shown);
	curl_url_cleanup(u);
}

static bool
is_url_safe(const char *s)
{
	for (; *s != '\0'; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		        (*s >= '0' && *s <= '9') || strchr("-._~", *s) != NULL))
			return false;
	return true;
}

/* memmem() is a GNU extension; this needs only C11. */
static const char *
find(const char *hay, size_t len, const char *needle, size_t n)
{
	const char *p = hay, *end = hay + len;

	while ((size_t)(end - p) >= n &&
	    (p = memchr(p, needle[0], (size_t)(end - p) - n + 1)) != NULL) {
		if (memcmp(p, needle, n) == 0)
			return p;
		p++;
	}
	return NULL;
}

bool
hr_redact_can_mask(const char *secret)
{
	size_t n = strlen(secret);

	return n >= HR_REDACT_SECRET_MIN && n >= strlen(HR_REDACTED) && is_url_safe(secret);
}

size_t
hr_redact_secret(char *buf, size_t *len, const char *secret)
{
	size_t n = strlen(secret), mark = strlen(HR_REDACTED), in = 0, out = 0, count = 0;
	const char *hit;

	if (!hr_redact_can_mask(secret))
		return 0;
	/* Compacting in place is safe: the mark is never longer than what it replaces. */
	while ((hit = find(buf + in, *len - in, secret, n)) != NULL) {
		size_t keep = (size_t)(hit - (buf + in));

		memmove(buf + out, buf + in, keep);
		memcpy(buf + out + keep, HR_REDACTED, mark);
		out += keep + mark;
		in += keep + n;
		count++;
	}
	memmove(buf + out, buf + in, *len - in);
	*len = out + (*len - in);
	return count;
}
