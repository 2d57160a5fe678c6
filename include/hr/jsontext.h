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
 * The precision flag for json_dumps() of `doc` (borrowed): the fewest
 * significant digits, 15 to 17, at which every double in it reads back as
 * itself. A sender's 3.1 then prints 3.1, not 3.1000000000000001, unless
 * another number of the same document needs 17 digits (0.30000000000000004):
 * then all have 17, and each still reads back exact. A stored body is never
 * printed through this: it goes out as its own bytes (hr_json_splice()).
 */
size_t hr_json_reals(const json_t *doc);

/*
 * json_loadb(), but reading what senders write and jansson refuses by
 * default, instead of failing the whole text (valid JSON all, RFC 8259):
 * - an integer past 64 bits reads as a double (that number is then rounded;
 *   the text stays whole). That read takes every integer as a double: those
 *   a double holds exactly (below 2^53) are made integers again, so the
 *   others keep their type (a whole real, 2.0, then reads as 2 too: jansson
 *   cannot tell them apart). A number out of a double's range (1e400) still
 *   fails;
 * - \u0000 in a string value is kept (JSON_ALLOW_NUL: json_string_length()
 *   counts it; json_string_value() ends there);
 * - \u0000 in an object key, and half of a surrogate pair without its other
 *   half (an emoji cut in two by a sender counting UTF-16 units), read as
 *   U+FFFD, the replacement character.
 * The text itself is not changed. Returns new.
 */
json_t *hr_json_load_wide(const char *text, size_t len, size_t flags, json_error_t *err);

/* A JSON string of `s` (a request's path, a query parameter); bytes that are
 * not UTF-8 are shown as '?', never dropped, and the string is never NULL but
 * out of memory. Returns new. */
json_t *hr_json_string_lossy(const char *s);

/*
 * Append `obj_text` (a JSON object's text, `obj_len` bytes: borrowed) to `b`
 * with one more member, `name` (a plain key), whose value is `raw` as it is:
 * JSON text the caller vouches for, such as a stored body that parsed.
 * Returns the buffer's status (dynbuf.h).
 */
int hr_json_splice(struct hr_dynbuf *b, const char *obj_text, size_t obj_len, const char *name,
    const char *raw, size_t raw_len);

#endif
