/*
 * fuzz.h - what the fuzz harnesses share: the libFuzzer entry point, a
 * property check that survives NDEBUG, and a cursor that cuts one input
 * into NUL-terminated fields.
 *
 * Each tests/fuzz/fuzz_<name>.c defines LLVMFuzzerTestOneInput(); it is
 * linked either with libFuzzer (clang, HR_FUZZ=ON) or with replay.c, which
 * feeds it the committed corpus in every build, gcc included.
 */
#ifndef HR_FUZZ_H
#define HR_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken property is a finding like a crash: say which, then abort. */
#define FUZZ_CHECK(cond) ((cond) ? (void)0 : fuzz_failed(__FILE__, __LINE__, #cond))

static inline _Noreturn void
fuzz_failed(const char *file, int line, const char *what)
{
	fprintf(stderr, "%s:%d: property failed: %s\n", file, line, what);
	abort();
}

/*
 * The input, copied with a NUL after it, read field by field: each field
 * ends at the next '\n' (which becomes a NUL); the last one is the rest.
 */
struct fuzz_cursor {
	char *buf; /* owned */
	size_t len, pos;
};

/* False when out of memory: the harness then skips the input. */
static inline int
fuzz_cursor_init(struct fuzz_cursor *c, const uint8_t *data, size_t size)
{
	c->buf = malloc(size + 1);
	c->len = size;
	c->pos = 0;
	if (c->buf == NULL)
		return 0;
	if (size > 0)
		memcpy(c->buf, data, size);
	c->buf[size] = '\0';
	return 1;
}

static inline void
fuzz_cursor_free(struct fuzz_cursor *c)
{
	free(c->buf);
	c->buf = NULL;
}

/* The next byte, 0 past the end. */
static inline unsigned
fuzz_byte(struct fuzz_cursor *c)
{
	return c->pos < c->len ? (unsigned char)c->buf[c->pos++] : 0;
}

/* The next field as a C string (an embedded NUL ends it early); "" past the end. */
static inline const char *
fuzz_field(struct fuzz_cursor *c)
{
	char *s = c->buf + c->pos, *nl;

	if (c->pos >= c->len)
		return "";
	nl = memchr(s, '\n', c->len - c->pos);
	if (nl == NULL) {
		c->pos = c->len;
		return s;
	}
	*nl = '\0';
	c->pos = (size_t)(nl - c->buf) + 1;
	return s;
}

/* Whatever is left, NULs and all; *len gets its length. */
static inline const char *
fuzz_rest(struct fuzz_cursor *c, size_t *len)
{
	const char *s = c->buf + c->pos;

	*len = c->len - c->pos;
	c->pos = c->len;
	return s;
}

#endif
