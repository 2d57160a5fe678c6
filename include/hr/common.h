/* common.h - status codes, error detail and small shared macros. */
#ifndef HR_COMMON_H
#define HR_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifndef HR_VERSION_STRING
#define HR_VERSION_STRING "0.0.0"
#endif

/* Append-only: values are logged and tested, never renumbered. */
enum hr_status {
	HR_OK = 0,
	HR_ENOMEM,
	HR_EINVAL,  /* input does not satisfy a contract (422, bad config) */
	HR_ETOOBIG, /* a size limit was exceeded (413) */
	HR_EDB,     /* the database failed (503) */
	HR_EPARSE,  /* malformed input (400) */
	HR_ENOTFOUND,
	HR_EBUSY,  /* try again later (503) */
	HR_ECLOSED /* the component is shutting down */
};

/* Detail for the caller's stack; every function taking one accepts NULL. */
struct hr_error {
	char field[128]; /* JSON pointer, config key or file:line */
	char msg[256];
};

const char *hr_status_str(enum hr_status);
/* printf-style fill of `err` (NULL is fine); returns `code` for tail calls. */
int hr_error_set(struct hr_error *err, int code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/*
 * Append printf-style output to the text of `buf` (`size` bytes, `*len` used):
 * what fits is written, always NUL-terminated, and *len never passes size - 1,
 * so appends in a row stay in bounds. False when the output was cut.
 */
bool hr_appendf(char *buf, size_t size, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/*
 * Text a sender chose, made safe to log or show: every C0 control (but a tab
 * when `keep_tab`), DEL and C1 control (U+0080-009F, a CSI among them) of the
 * first `n` bytes becomes '?', and so does each byte of U+2028, U+2029, the
 * bidi controls (U+061C, U+200E, U+200F, U+202A-202E, U+2066-2069) and U+FEFF. A
 * newline (or a web viewer's U+2028) would start a forged log line, an ESC or
 * a CSI reach the terminal of whoever reads it, a bidi override reorder it.
 */
void hr_scrub_controls(char *s, size_t n, bool keep_tab);
/* A message of several lines as one (libpq's end with a newline and may add
 * DETAIL and HINT lines, which the log's scrub made '?'): its lines joined by
 * "; ", blanks and the last newline dropped, cut to `size`. Returns buf. */
const char *hr_one_line(const char *text, char *buf, size_t size);

#define HR_WUR           __attribute__((warn_unused_result))
#define HR_ARRAY_LEN(a)  (sizeof(a) / sizeof((a)[0]))
#define HR_STRINGIFY_(x) #x
#define HR_STRINGIFY(x)  HR_STRINGIFY_(x) /* a macro's value as a string literal */

/* query.NAME=VALUE filters of one event listing: the API's bound, and hookctl's. */
#define HR_QUERY_FILTERS_MAX 4

/* A static helper that unit tests reach directly. */
#ifdef HR_TESTING
#define HR_STATIC
#else
#define HR_STATIC static
#endif

#endif
