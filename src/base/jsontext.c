/*
 * jsontext.c - JSON text in and out where a sender's numbers must survive
 * (jsontext.h).
 *
 * The wide read costs nothing on a normal text: the second parse happens
 * only after jansson reported an integer overflow.
 */
#include "hr/jsontext.h"

json_t *
hr_json_load_wide(const char *text, size_t len, size_t flags, json_error_t *err)
{
	json_error_t local;
	json_error_t *je = err != NULL ? err : &local;
	json_t *root = json_loadb(text, len, flags, je);

	if (root == NULL && json_error_code(je) == json_error_numeric_overflow)
		root = json_loadb(text, len, flags | JSON_DECODE_INT_AS_REAL, je);
	return root;
}

int
hr_json_splice(struct hr_dynbuf *b, const char *obj_text, size_t obj_len, const char *name,
    const char *raw, size_t raw_len)
{
	/* an object's text ends with '}'; "{}" has no member for a comma to follow */
	if (obj_len < 2) {
		obj_text = "{}";
		obj_len = 2;
	}
	hr_dynbuf_add(b, obj_text, obj_len - 1);
	hr_dynbuf_adds(b, obj_len == 2 ? "\"" : ",\"");
	hr_dynbuf_adds(b, name);
	hr_dynbuf_adds(b, "\":");
	hr_dynbuf_add(b, raw, raw_len);
	return hr_dynbuf_adds(b, "}");
}
