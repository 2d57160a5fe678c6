/*
 * dynbuf.c - the one growable buffer (dynbuf.h): a cap on every buffer
 * that grows with what it is given.
 *
 * Growth doubles from `first` and never allocates more than max + 1 (the
 * NUL), so a buffer at its cap costs what it holds; a failure frees at
 * once, since a buffer past its limit is never sent in part.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hr/dynbuf.h"

#define FIRST_DEFAULT 4096

void
hr_dynbuf_init(struct hr_dynbuf *b, size_t first, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->first = first ? first : FIRST_DEFAULT;
	b->max = max;
}

void
hr_dynbuf_free(struct hr_dynbuf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
	b->err = HR_OK;
}

static int
fail(struct hr_dynbuf *b, int err)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
	b->err = err;
	return err;
}

/* Room for `n` more bytes and the NUL, within max. */
static int
reserve(struct hr_dynbuf *b, size_t n)
{
	size_t need, cap;
	char *np;

	if (b->err != HR_OK)
		return b->err;
	if (n > b->max || b->len > b->max - n)
		return fail(b, HR_ETOOBIG);
	need = b->len + n + 1;
	if (need <= b->cap)
		return HR_OK;
	for (cap = b->cap ? b->cap : b->first; cap < need; cap *= 2)
		;
	if (cap > b->max + 1)
		cap = b->max + 1;
	if ((np = realloc(b->p, cap)) == NULL)
		return fail(b, HR_ENOMEM);
	b->p = np;
	b->cap = cap;
	return HR_OK;
}

int
hr_dynbuf_add(struct hr_dynbuf *b, const void *p, size_t n)
{
	int rc = reserve(b, n);

	if (rc != HR_OK)
		return rc;
	if (n > 0)
		memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
	return HR_OK;
}

int
hr_dynbuf_adds(struct hr_dynbuf *b, const char *s)
{
	return hr_dynbuf_add(b, s, strlen(s));
}

int
hr_dynbuf_addf(struct hr_dynbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n, rc;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return fail(b, HR_ENOMEM);
	if ((rc = reserve(b, (size_t)n)) != HR_OK)
		return rc;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return HR_OK;
}

void
hr_dynbuf_shrink(struct hr_dynbuf *b, size_t len)
{
	if (b->p != NULL && len < b->len) {
		b->len = len;
		b->p[len] = '\0';
	}
}

char *
hr_dynbuf_take(struct hr_dynbuf *b, size_t *len)
{
	char *p = b->err == HR_OK ? b->p : NULL;

	*len = p != NULL ? b->len : 0;
	b->p = NULL;
	b->len = b->cap = 0;
	return p;
}
