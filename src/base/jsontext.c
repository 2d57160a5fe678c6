/*
 * jsontext.c - JSON text in and out where a sender's numbers must survive
 * (jsontext.h).
 *
 * The wide read costs nothing on a normal text: the second parse happens
 * only after jansson reported an integer overflow.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

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

json_t *
hr_json_load_wide(const char *text, size_t len, size_t flags, json_error_t *err)
{
	json_error_t local;
	json_error_t *je = err != NULL ? err : &local;
	json_t *root = json_loadb(text, len, flags, je);

	if (root == NULL && json_error_code(je) == json_error_numeric_overflow) {
		json_t *top;

		root = json_loadb(text, len, flags | JSON_DECODE_INT_AS_REAL, je);
		if (root != NULL && (top = integers_again(root)) != NULL) { /* a lone number */
			json_decref(root);
			root = top;
		}
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
