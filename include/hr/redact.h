/* redact.h - what may be shown of a configured URL. */
#ifndef HR_REDACT_H
#define HR_REDACT_H

#include <stddef.h>

#define HR_REDACTED "REDACTED"

/*
 * `url` (borrowed) as it may be shown in API answers and logs: the user name
 * and password, and the value of every query parameter, replaced by
 * HR_REDACTED; the fragment dropped. Scheme, host, port, path and parameter
 * names stay. `out` gets the text (truncated to `len`); a URL libcurl cannot
 * parse becomes "(a URL that cannot be shown)".
 */
void hr_redact_url(const char *url, char *out, size_t len);

#endif
