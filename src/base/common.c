/* common.c - status names and error detail. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "hr/common.h"

static const char *const status_names[] = {
	[HR_OK] = "ok",
	[HR_ENOMEM] = "out of memory",
	[HR_EINVAL] = "invalid",
	[HR_ETOOBIG] = "too big",
	[HR_EDB] = "database error",
	[HR_EPARSE] = "malformed",
	[HR_ENOTFOUND] = "not found",
	[HR_EBUSY] = "busy",
	[HR_ECLOSED] = "shutting down",
};

const char *
hr_status_str(enum hr_status st)
{
	if ((size_t)st < HR_ARRAY_LEN(status_names) && status_names[st] != NULL)
		return status_names[st];
	return "unknown status";
}

int
hr_error_set(struct hr_error *err, int code, const char *field, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return code;
	snprintf(err->field, sizeof(err->field), "%s", field != NULL ? field : "");
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return code;
}

bool
hr_appendf(char *buf, size_t size, size_t *len, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (size == 0)
		return false;
	if (*len >= size)
		*len = size - 1;
	va_start(ap, fmt);
	n = vsnprintf(buf + *len, size - *len, fmt, ap);
	va_end(ap);
	if (n < 0) {
		buf[*len] = '\0';
		return false;
	}
	if ((size_t)n >= size - *len) {
		*len = size - 1;
		return false;
	}
	*len += (size_t)n;
	return true;
}

/*
 * Characters a terminal or a web log viewer acts on though nothing shows them:
 * U+2028 and U+2029 (a line break in a web viewer, which a forged line could
 * follow), the bidi marks U+061C, U+200E and U+200F, the embeddings and
 * overrides U+202A-202E and the isolates U+2066-2069 (they reorder what
 * follows: the line read is not the line written; hookctl's tables refuse the
 * same ones), and U+FEFF. The length of the one `p` starts with, else 0.
 */
static size_t
format_char_len(const unsigned char *p, size_t left)
{
	if (left >= 2 && p[0] == 0xd8 && p[1] == 0x9c) /* U+061C */
		return 2;
	if (left < 3)
		return 0;
	if (p[0] == 0xe2 && p[1] == 0x80) /* U+2000-203F */
		return p[2] == 0x8e || p[2] == 0x8f || (p[2] >= 0xa8 && p[2] <= 0xae) ? 3 : 0;
	if (p[0] == 0xe2 && p[1] == 0x81) /* U+2040-207F */
		return p[2] >= 0xa6 && p[2] <= 0xa9 ? 3 : 0;
	return p[0] == 0xef && p[1] == 0xbb && p[2] == 0xbf ? 3 : 0;
}

const char *
hr_one_line(const char *text, char *buf, size_t size)
{
	size_t n = 0;

	if (size == 0)
		return buf;
	for (const char *p = text != NULL ? text : ""; *p != '\0' && n + 1 < size; p++) {
		const char *next = p + 1;

		if (*p != '\n') {
			buf[n++] = *p;
			continue;
		}
		while (n > 0 && buf[n - 1] == ' ')
			n--;
		while (*next == ' ' || *next == '\n')
			next++;
		if (*next != '\0' && n > 0) { /* a line follows, after "; " if it fits */
			if (n + 3 >= size)
				break;
			buf[n++] = ';';
			buf[n++] = ' ';
		}
		p = next - 1;
	}
	while (n > 0 && buf[n - 1] == ' ')
		n--;
	buf[n] = '\0';
	return buf;
}

void
hr_scrub_controls(char *s, size_t n, bool keep_tab)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		size_t len;

		if ((c < 0x20 && !(keep_tab && c == '\t')) || c == 0x7f)
			s[i] = '?';
		else if (c == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] >= 0x80 &&
		    (unsigned char)s[i + 1] <= 0x9f)
			s[i] = s[i + 1] = '?';
		else if ((len = format_char_len((const unsigned char *)s + i, n - i)) > 0)
			memset(s + i, '?', len); /* as long as it was: `n` stays the length */
	}
}
