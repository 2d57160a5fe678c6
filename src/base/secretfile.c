/*
 * secretfile.c - the one reader of files of secrets.
 *
 * Owns the bytes of a secrets file while its caller converts them (a
 * whsec_ key, a token, user:password): read with read(2) into one bounded
 * buffer, split into lines in place, wiped with OPENSSL_cleanse before it
 * is freed, on every path. Four pieces of code used to do this each in its
 * own way; one of them kept an unwiped stdio copy and silently ignored the
 * secrets past its eighth. Limits refuse here, with the file and the limit
 * in the error, so a rotated-in secret is never dropped without a word.
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hr/secretfile.h"

#ifdef HR_TESTING
void (*hr_secretfile_on_free)(const void *p, size_t n);
#endif

static void
wipe_free(char *p, size_t n)
{
	if (p == NULL)
		return;
	OPENSSL_cleanse(p, n);
#ifdef HR_TESTING
	if (hr_secretfile_on_free != NULL)
		hr_secretfile_on_free(p, n);
#endif
	free(p);
}

void
hr_secretfile_clear(struct hr_secretfile *sf)
{
	if (sf == NULL)
		return;
	wipe_free(sf->text, sf->size);
	memset(sf, 0, sizeof(*sf));
}

void
hr_secretfile_where(const char *path, int lineno, char *buf, size_t len)
{
	size_t plen = strlen(path);
	const char *tail = plen > 100 ? path + plen - 100 : path;

	snprintf(buf, len, "%s%s:%d", tail != path ? "..." : "", tail, lineno);
}

/* The whole file into `buf` (`cap` bytes, one more than the limit); its length in
 * *n. `regular_only`: anything else is refused, and a FIFO's open() does not wait
 * for a writer (O_NONBLOCK; a regular file's reads never block anyway): a reload
 * waiting there would hold the main thread, its watchdog pings and SIGTERM. */
static int
read_all(
    const char *path, bool regular_only, char *buf, size_t cap, size_t *n, struct hr_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | (regular_only ? O_NONBLOCK : 0));
	int rc = HR_OK;
	ssize_t got = 1;
	struct stat st;

	if (fd < 0)
		return hr_error_set(err, HR_EINVAL, path, "cannot open: %s", strerror(errno));
	if (regular_only && (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))) {
		close(fd);
		return hr_error_set(err, HR_EINVAL, path, "not a regular file");
	}
	*n = 0;
	while (*n < cap && got > 0) {
		if ((got = read(fd, buf + *n, cap - *n)) > 0)
			*n += (size_t)got;
		else if (got < 0 && errno == EINTR)
			got = 1;
	}
	if (got < 0)
		rc = hr_error_set(err, HR_EINVAL, path, "read error: %s", strerror(errno));
	else if (*n == cap)
		rc = hr_error_set(
		    err, HR_ETOOBIG, path, "larger than %d bytes", HR_SECRETFILE_BYTES_MAX);
	close(fd);
	return rc;
}

/* The line number of byte `at` of `text`. */
static int
line_of(const char *text, size_t at)
{
	int line = 1;

	for (size_t i = 0; i < at; i++)
		line += text[i] == '\n';
	return line;
}

/* Every non-blank, non-comment line of the NUL-terminated `sf->text`, trimmed in place. */
static int
split_lines(struct hr_secretfile *sf, const char *path, size_t max, struct hr_error *err)
{
	char field[sizeof(err->field)];
	char *line = sf->text, *next;
	int lineno = 0;

	/* A UTF-8 byte order mark (an editor's, on Windows) is not part of the first
	 * secret: kept, every request would fail its check with nothing said. */
	if (strncmp(line, "\xef\xbb\xbf", 3) == 0)
		line += 3;
	for (; line != NULL; line = next) {
		char *end;

		lineno++;
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		line += strspn(line, " \t");
		end = line + strlen(line);
		while (end > line && strchr(" \t\r", end[-1]) != NULL)
			*--end = '\0';
		if (*line == '\0' || *line == '#')
			continue;
		if (sf->n == max) {
			hr_secretfile_where(path, lineno, field, sizeof(field));
			return hr_error_set(err, HR_EINVAL, field, "more than %zu secret%s", max,
			    max == 1 ? "" : "s");
		}
		sf->line[sf->n] = line;
		sf->lineno[sf->n++] = lineno;
	}
	return HR_OK;
}

static int
read_secrets(const char *path, bool regular_only, size_t max, struct hr_secretfile *out,
    struct hr_error *err)
{
	struct hr_secretfile sf = { .size = HR_SECRETFILE_BYTES_MAX + 1 };
	char field[sizeof(err->field)];
	size_t n = 0;
	const char *nul;
	int rc;

	memset(out, 0, sizeof(*out));
	if (max == 0 || max > HR_SECRETFILE_LINES_MAX)
		return hr_error_set(err, HR_EINVAL, path, "at most %zu secrets asked for", max);
	if ((sf.text = malloc(sf.size)) == NULL)
		return hr_error_set(err, HR_ENOMEM, path, "out of memory");
	/* Read one byte past the limit: a file that fills the buffer is too large. */
	if ((rc = read_all(path, regular_only, sf.text, sf.size, &n, err)) != HR_OK)
		goto out;
	if ((nul = memchr(sf.text, '\0', n)) != NULL) {
		hr_secretfile_where(
		    path, line_of(sf.text, (size_t)(nul - sf.text)), field, sizeof(field));
		rc = hr_error_set(err, HR_EINVAL, field, "a NUL byte: the file is not text");
		goto out;
	}
	sf.text[n] = '\0';
	if ((rc = split_lines(&sf, path, max, err)) != HR_OK)
		goto out;
	*out = sf;
	sf.text = NULL;
out:
	hr_secretfile_clear(&sf);
	return rc;
}

int
hr_secretfile_read(const char *path, size_t max, struct hr_secretfile *out, struct hr_error *err)
{
	return read_secrets(path, true, max, out, err);
}

int
hr_secretfile_read_waiting(
    const char *path, size_t max, struct hr_secretfile *out, struct hr_error *err)
{
	return read_secrets(path, false, max, out, err);
}
