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

void
hr_scrub_controls(char *s, size_t n, bool keep_tab)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c < 0x20 && !(keep_tab && c == '\t')) || c == 0x7f)
			s[i] = '?';
		else if (c == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] >= 0x80 &&
		    (unsigned char)s[i + 1] <= 0x9f)
			s[i] = s[i + 1] = '?';
	}
}
