/*
 * redact.c - what may be shown of a configured URL.
 *
 * Destination URLs often carry credentials: userinfo, or a `?token=` (or
 * `key=`, `sig=`, ...) the receiver checks. Which query parameters are
 * secret cannot be known, so every value goes, and the names stay to tell
 * the URLs apart. libcurl's URL API parses and rebuilds, so the result is
 * read the way the delivery worker reads the URL.
 */
#include <curl/curl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hr/redact.h"

#define QUERY_MAX 2048 /* a configured URL is at most 2047 bytes */

/* "a=1&b&c=3" -> "a=REDACTED&REDACTED&c=REDACTED" into out (QUERY_MAX bytes). */
static void
redact_query(const char *q, char *out)
{
	size_t used = 0;

	out[0] = '\0';
	while (*q != '\0' && used < QUERY_MAX) {
		size_t n = strcspn(q, "&"), name = strcspn(q, "=&");
		int w = name < n
		    ? snprintf(out + used, QUERY_MAX - used, "%s%.*s=%s", used ? "&" : "",
		          (int)name, q, HR_REDACTED)
		    : snprintf(out + used, QUERY_MAX - used, "%s%s", used ? "&" : "", HR_REDACTED);

		if (w < 0)
			break;
		used += (size_t)w;
		q += n;
		q += *q == '&';
	}
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
		redact_query(part, query);
		ok = curl_url_set(u, CURLUPART_QUERY, query, 0) == CURLUE_OK;
	}
	curl_free(part);
	if (ok && curl_url_get(u, CURLUPART_URL, &shown, 0) == CURLUE_OK)
		snprintf(out, len, "%s", shown);
	else
		unshowable(out, len);
	curl_free(shown);
	curl_url_cleanup(u);
}
