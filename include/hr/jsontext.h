/*
 * jsontext.h - JSON text in and out where a sender's numbers must survive.
 *
 * jansson refuses an integer past 64 bits (valid JSON: RFC 8259 sets no
 * range) and prints a double with 17 digits (3.1 as 3.1000000000000001).
 * The daemon, its API and hookctl read and write through these so that a
 * body the daemon accepted is never "not JSON" further on, and a number
 * reads as its sender wrote it.
 */
#ifndef HR_JSONTEXT_H
#define HR_JSONTEXT_H

#include <jansson.h>
#include <stddef.h>

#include "hr/dynbuf.h"

/*
 * Flags for every document the daemon or hookctl prints: a double with 16
 * significant digits, which every decimal of up to 16 digits survives (a
 * sender's 3.1 prints 3.1). A stored body is never printed through this:
 * it goes out as its own bytes (hr_json_splice()).
 */
#define HR_JSON_REALS JSON_REAL_PRECISION(16)

/*
 * json_loadb(), but an integer past 64 bits reads as a double instead of
 * failing the whole text (the number is then rounded; the text stays whole).
 * A number out of a double's range (1e400) still fails. Returns new.
 */
json_t *hr_json_load_wide(const char *text, size_t len, size_t flags, json_error_t *err);

/*
 * Append `obj_text` (a JSON object's text, `obj_len` bytes: borrowed) to `b`
 * with one more member, `name` (a plain key), whose value is `raw` as it is:
 * JSON text the caller vouches for, such as a stored body that parsed.
 * Returns the buffer's status (dynbuf.h).
 */
int hr_json_splice(struct hr_dynbuf *b, const char *obj_text, size_t obj_len, const char *name,
    const char *raw, size_t raw_len);

#endif
