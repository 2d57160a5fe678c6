/*
 * secretfile.h - one reader for files of secrets: [source] and [destination]
 * secret_file, the systemd credential that stands in for the former, [api]
 * token_file and hookctl's --token-file.
 *
 * The format is the same everywhere: one secret per line, blanks around it
 * ignored (a CRLF file reads like an LF one), blank lines and lines starting
 * with # skipped. The reader is bounded in bytes and in secrets, and refuses
 * (naming the file and the limit) rather than stopping at a cap. Every
 * buffer that held the file's bytes is wiped (OPENSSL_cleanse) before it is
 * freed; stdio is not used, so no buffer of its own keeps a copy.
 */
#ifndef HR_SECRETFILE_H
#define HR_SECRETFILE_H

#include <stddef.h>

#include "hr/common.h"

#define HR_SECRETFILE_BYTES_MAX (64 * 1024) /* a larger file is refused (HR_ETOOBIG) */
#define HR_SECRETFILE_LINES_MAX 16          /* the most any caller may ask for */

struct hr_secretfile {
	size_t n;                                  /* secrets read */
	const char *line[HR_SECRETFILE_LINES_MAX]; /* each NUL-terminated, inside `text` */
	int lineno[HR_SECRETFILE_LINES_MAX];       /* 1-based, for errors naming a line */
	char *text;                                /* owned; `size` bytes, wiped when cleared */
	size_t size;
};

/*
 * Read the secrets in `path` (borrowed) into `out`, at most `max` of them
 * (1..HR_SECRETFILE_LINES_MAX). A file without any is not an error here:
 * n is 0, and the caller says what that means. On failure `out` holds
 * nothing, err->field is the file (FILE:LINE for a line) and err->msg why:
 * it cannot be opened or read, is larger than HR_SECRETFILE_BYTES_MAX,
 * holds a NUL byte, or holds more than `max` secrets, or is not a regular
 * file (a FIFO is refused at once: the daemon never waits for a writer). The
 * messages never quote the file's text. Release `out` with hr_secretfile_clear().
 */
int hr_secretfile_read(
    const char *path, size_t max, struct hr_secretfile *out, struct hr_error *err) HR_WUR;
/* The same from any file, waiting for a FIFO's writer: for a command run by hand
 * (hookctl --token-file <(pass show hookrelay)). */
int hr_secretfile_read_waiting(
    const char *path, size_t max, struct hr_secretfile *out, struct hr_error *err) HR_WUR;
/* Wipe and free what `sf` holds; it is empty then. NULL, or an empty one, is fine. */
void hr_secretfile_clear(struct hr_secretfile *sf);
/* "FILE:LINE" for errors about one line, the end of a long path kept (it names the file). */
void hr_secretfile_where(const char *path, int lineno, char *buf, size_t len);

#ifdef HR_TESTING
/* Called with every buffer the reader frees, just before free(): tests check it is wiped. */
extern void (*hr_secretfile_on_free)(const void *p, size_t n);
#endif

#endif
