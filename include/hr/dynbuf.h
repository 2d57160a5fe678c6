/*
 * dynbuf.h - a growable byte buffer with a cap, like curl's dynbuf.
 *
 * Every buffer that grows with its input (a request body, a page of events,
 * /metrics, a stream's frames, hookctl's answers) is one of these, so each
 * has a limit, says when it was hit, and is always NUL-terminated. A failed
 * append (past the cap, or out of memory) frees what was held and sticks:
 * every later append fails the same way until hr_dynbuf_free(), so a caller
 * may append many pieces and look once at the end, and never sends half.
 */
#ifndef HR_DYNBUF_H
#define HR_DYNBUF_H

#include <stdbool.h>
#include <stddef.h>

#include "hr/common.h"

struct hr_dynbuf {
	char *p;      /* NULL until the first append, and after a failure */
	size_t len;   /* bytes held, without the NUL */
	size_t cap;   /* allocated, with the NUL */
	size_t max;   /* the most bytes it may hold, without the NUL */
	size_t first; /* the first allocation (grown by doubling) */
	int err;      /* HR_OK, or why an append failed: HR_ETOOBIG, HR_ENOMEM */
};

/* An empty buffer of at most `max` bytes; `first`: the first allocation (0: 4 KiB). */
void hr_dynbuf_init(struct hr_dynbuf *, size_t first, size_t max);
/* Free what is held; the buffer is empty and usable again (its error cleared). */
void hr_dynbuf_free(struct hr_dynbuf *);
/* Append `n` bytes: HR_OK, or HR_ETOOBIG (past max) / HR_ENOMEM, sticky (see above). */
int hr_dynbuf_add(struct hr_dynbuf *, const void *p, size_t n);
int hr_dynbuf_adds(struct hr_dynbuf *, const char *s); /* a string without its NUL */
/* Append printf-style output, whole or not at all. */
int hr_dynbuf_addf(struct hr_dynbuf *, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Keep the first `len` bytes (a shorter length only). */
void hr_dynbuf_shrink(struct hr_dynbuf *, size_t len);
/* The bytes (new, NUL-terminated: free()) and their length; the buffer is empty
 * again. NULL after a failed append, or when nothing was appended. */
char *hr_dynbuf_take(struct hr_dynbuf *, size_t *len);

#endif
