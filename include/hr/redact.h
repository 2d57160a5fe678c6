/* redact.h - what may be shown of a configured URL. */
#ifndef HR_REDACT_H
#define HR_REDACT_H

#include <stdbool.h>
#include <stddef.h>

#define HR_REDACTED "REDACTED"

/*
 * `url` (borrowed) as it may be shown in API answers and logs: the user name
 * and password, the value of every query parameter, and every path segment
 * that looks like a token (16 characters or more, letters and digits mixed:
 * Slack's and Discord's webhook tokens) replaced by HR_REDACTED; the fragment
 * dropped. Scheme, host, port, the path's words and parameter names stay. `out` gets the text
 * (truncated to `len`); a URL libcurl cannot parse becomes "(a URL that cannot be shown)".
 */
void hr_redact_url(const char *url, char *out, size_t len);

/* Shorter secrets are not looked for in bodies: they could match ordinary text. */
#define HR_REDACT_SECRET_MIN 12

/*
 * Replace every occurrence of `secret` in buf[0..*len) by HR_REDACTED, in
 * place, and set *len to the new length; returns how many were replaced.
 * Only a secret of at least HR_REDACT_SECRET_MIN URL-unreserved characters
 * (A-Z a-z 0-9 - . _ ~) is looked for: such a secret appears verbatim
 * wherever a URL holding it is quoted, and masking it keeps JSON valid.
 */
size_t hr_redact_secret(char *buf, size_t *len, const char *secret);

/* Would hr_redact_secret() look for `secret`? A URL token it would not is
 * stored and forwarded wherever a sender echoes its URL (Tavus's webhook_url). */
bool hr_redact_can_mask(const char *secret);

#endif
