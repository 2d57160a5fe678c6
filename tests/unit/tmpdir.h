/*
 * tmpdir.h - where the unit tests keep their files: in TMPDIR when it is set
 * (scripts/test points it at memory: databases synced to a busy disk made the
 * suite slower), else in /tmp. Include after cmocka.h.
 */
#ifndef HR_TEST_TMPDIR_H
#define HR_TEST_TMPDIR_H

#include <stdio.h>
#include <stdlib.h>

/* "DIR/name" into `out`: DIR is TMPDIR, or /tmp when TMPDIR is unset, empty
 * or too long for `out`. `name` is a mkdtemp()/mkstemp() template. */
static inline void
tmp_template(char *out, size_t size, const char *name)
{
	const char *dir = getenv("TMPDIR");
	int n = -1;

	if (dir != NULL && dir[0] != '\0')
		n = snprintf(out, size, "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= size)
		n = snprintf(out, size, "/tmp/%s", name);
	assert_true(n > 0 && (size_t)n < size);
}

#endif
