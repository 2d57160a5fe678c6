/*
 * jsontext.c - JSON text in and out where a sender's numbers must survive
 * (jsontext.h).
 *
 * The wide read costs nothing on a normal text: the second parse happens
 * only after jansson reported an integer overflow.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hr/jsontext.h"

#define EXACT_INT 9007199254740992.0 /* 2^53: every integer up to it is a double */

/* The fewest digits (15..17) at which `v` reads back as itself. */
static int
digits_for(double v)
{
	char buf[32];

	for (int prec = 15; prec < 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			return prec;
	}
	return 17;
}

/* The most digits a double of `v` needs, at least `have` (stops at 17). */
static int
most_digits(const json_t *v, int have)
{
	const char *key;
	json_t *item;
	size_t i;

	if (have >= 17)
		return have;
	if (json_is_real(v)) {
		int d = digits_for(json_real_value(v));

		return d > have ? d : have;
	}
	if (json_is_object(v))
		json_object_foreach((json_t *)v, key, item) have = most_digits(item, have);
	else if (json_is_array(v))
		json_array_foreach(v, i, item) have = most_digits(item, have);
	return have;
}

size_t
hr_json_reals(const json_t *doc)
{
	return JSON_REAL_PRECISION(most_digits(doc, 15));
}

/* The doubles of `v` that hold an integer exactly become that integer. */
static json_t *
integers_again(json_t *v)
{
	const char *key;
	json_t *item;
	size_t i;

	if (json_is_real(v)) {
		double d = json_real_value(v);

		/* below 2^53 (2^53 + 1 reads as 2^53: not that integer); -0.0 stays */
		return d == floor(d) && fabs(d) < EXACT_INT && !(d == 0 && signbit(d))
		    ? json_integer((json_int_t)d)
		    : NULL;
	}
	if (json_is_object(v)) {
		json_object_foreach(v, key, item)
		{
			json_t *n = integers_again(item);

			if (n != NULL)
				json_object_set_new(v, key, n);
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, item)
		{
			json_t *n = integers_again(item);

			if (n != NULL)
				json_array_set_new(v, i, n);
		}
	}
	return NULL;
}

/* The value of the four hex digits at p, -1 if they are not that. (Folding
 * case with | 0x20 read the control bytes 0x10-0x19 as digits: a malformed
 * escape was "mended" and the body stored, not JSON.) */
static long
hex4(const char *p)
{
	long v = 0;

	for (int i = 0; i < 4; i++) {
		int c = (unsigned char)p[i];

		if (c >= '0' && c <= '9')
			v = v * 16 + (c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v * 16 + (c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v = v * 16 + (c - 'A' + 10);
		else
			return -1;
	}
	return v;
}

/* Is the string going on at text[i] an object key: is its closing quote
 * followed by a colon? */
static bool
string_is_key(const char *text, size_t len, size_t i)
{
	while (i < len && text[i] != '"')
		i += text[i] == '\\' ? 2 : 1;
	for (i++; i < len && strchr(" \t\r\n", text[i]) != NULL && text[i] != '\0'; i++)
		;
	return i < len && text[i] == ':';
}

/*
 * A copy of `text` with each escape that jansson refuses but a sender may
 * well write replaced by \ufffd (U+FFFD, the replacement character), six
 * bytes for six so that every offset stays: half of a surrogate pair without
 * its other half (JavaScript's JSON.stringify writes one for a string cut in
 * the middle of an emoji), and \u0000 in an object key (jansson's keys are C
 * strings; in a value JSON_ALLOW_NUL keeps it). NULL when there is nothing
 * to mend, or no memory. New.
 */
static char *
mend_escapes(const char *text, size_t len)
{
	char *out = NULL;
	bool in_string = false;
	int key = -1; /* is the current string a key: not known until a \u0000 asks */

	for (size_t i = 0; i < len; i++) {
		long u, low;

		if (text[i] == '"') {
			in_string = !in_string;
			key = -1;
			continue;
		}
		if (!in_string || text[i] != '\\')
			continue;
		if (i + 1 < len && text[i + 1] != 'u') {
			i++; /* a one-letter escape, \" among them */
			continue;
		}
		if (i + 6 > len || (u = hex4(text + i + 2)) < 0)
			break; /* malformed: jansson's error stands */
		if (u >= 0xD800 && u <= 0xDBFF && i + 12 <= len && text[i + 6] == '\\' &&
		    text[i + 7] == 'u' && (low = hex4(text + i + 8)) >= 0xDC00 && low <= 0xDFFF) {
			i += 11; /* a whole pair */
			continue;
		}
		if (u == 0 && key < 0)
			key = string_is_key(text, len, i + 6);
		if ((u >= 0xD800 && u <= 0xDFFF) || (u == 0 && key == 1)) {
			if (out == NULL) {
				if ((out = malloc(len)) == NULL)
					return NULL;
				memcpy(out, text, len);
			}
			memcpy(out + i, "\\ufffd", 6);
		}
		i += 5;
	}
	return out;
}

/* Did jansson stop at what mend_escapes() mends? */
static bool
mendable(const json_error_t *je)
{
	return json_error_code(je) == json_error_null_byte_in_key ||
	    (json_error_code(je) == json_error_invalid_syntax &&
	        strncmp(je->text, "invalid Unicode", 15) == 0);
}

json_t *
hr_json_load_wide(const char *text, size_t len, size_t flags, json_error_t *err)
{
	json_error_t local;
	json_error_t *je = err != NULL ? err : &local;
	const char *in = text;
	char *mended = NULL;
	bool wide = false;
	json_t *root, *top;

	/* jansson stops at the first thing it refuses: each is met in turn, the
	 * text read again at most twice more (never on a text it took at once). */
	while ((root = json_loadb(in, len, flags | JSON_ALLOW_NUL, je)) == NULL) {
		if (!wide && json_error_code(je) == json_error_numeric_overflow) {
			wide = true;
			flags |= JSON_DECODE_INT_AS_REAL;
		} else if (mended == NULL && mendable(je) &&
		    (mended = mend_escapes(text, len)) != NULL) {
			in = mended;
		} else {
			break;
		}
	}
	free(mended);
	if (wide && root != NULL && (top = integers_again(root)) != NULL) { /* a lone number */
		json_decref(root);
		root = top;
	}
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

json_t *
hr_json_string_lossy(const char *s)
{
	json_t *j = json_string(s);
	char *copy;

	if (j != NULL || (copy = strdup(s)) == NULL)
		return j;
	for (char *p = copy; *p != '\0'; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	j = json_string(copy);
	free(copy);
	return j;
}
