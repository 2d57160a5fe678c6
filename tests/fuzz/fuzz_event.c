/*
 * fuzz_event.c - one webhook body through the whole validation path.
 *
 * The input is the body. It goes through hr_event_parse() with every
 * provider hint, under tight limits (so the limit walk and the pointers it
 * builds are reached by small inputs) and under the daemon's defaults. An
 * accepted event is encoded back (hr_event_typed_json) and keyed
 * (hr_dedup_key, every dedup mode). Besides "no crash, leak, UB or hang"
 * it checks what callers rely on:
 *  - a refused body leaves the event cleared, with a status and, for 422,
 *    at least one error; every text a client sees (detail, pointers) is
 *    valid UTF-8, because it goes out as JSON;
 *  - an accepted one has a kind of the hint's provider, a descriptor, and a
 *    typed struct that encodes and dumps, with the body's numbers unchanged;
 *  - with a provider hint, a body keeps the kind automatic classification
 *    gave it (the hint only skips other providers' rules);
 *  - an unknown kind is never refused (its schema is lenient), and a body
 *    refused 422 can still be made an event (hr_event_accept);
 *  - a dedup key is 64 hex digits, on an HMAC source too.
 */
#include <jansson.h>
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "hr/cfg.h"
#include "hr/dedup.h"
#include "hr/event.h"
#include "hr/schema.h"
#include "hr/timefmt.h"

static const struct hr_json_limits limits[] = {
	{ 4, 8, 64, 16 },                       /* tight: reached by small inputs */
	{ 64, 10000, 4 * 1024 * 1024, 100000 }, /* the [server] defaults */
};

static const enum hr_provider hints[] = {
	HR_PROVIDER_AUTO,
	HR_PROVIDER_TAVUS,
	HR_PROVIDER_PAILFLOW,
	HR_PROVIDER_AGENTHUMAN,
};

/* Would jansson emit it? json_string() refuses invalid UTF-8. */
static bool
is_json_text(const char *s)
{
	json_t *j = json_string(s);

	json_decref(j);
	return j != NULL;
}

static const char *
no_header(void *arg, const char *name)
{
	(void)arg;
	(void)name;
	return NULL;
}

static const char *
some_header(void *arg, const char *name)
{
	(void)arg;
	return strcmp(name, "X-Delivery") == 0 ? "d-1" : NULL;
}

/* A key is made whole, or (`expected` false) not at all. */
static void
check_key(bool made, bool expected, const char *key)
{
	FUZZ_CHECK(made == expected);
	if (!made)
		return;
	FUZZ_CHECK(strlen(key) == HR_DEDUP_KEY_LEN - 1);
	FUZZ_CHECK(strspn(key, "0123456789abcdef") == HR_DEDUP_KEY_LEN - 1);
}

static void
check_dedup(const struct hr_event *ev, const char *body, size_t len)
{
	struct hr_source_cfg src;
	char key[HR_DEDUP_KEY_LEN];
	static const char *const modes[] = { "auto", "body", "header:X-Delivery", "header:X-None" };
	/* A kind whose bytes key nothing has a key only from a header or `body`;
	 * an unknown Tavus event's only with a timestamp. */
	enum hr_bytes_key how = hr_kind_desc(ev->kind)->bytes_key;
	const char *ts = json_is_object(ev->root)
	    ? json_string_value(json_object_get(ev->root, "timestamp"))
	    : NULL;
	bool bytes_key = how == HR_BYTES_KEYED ||
	    (how == HR_BYTES_KEYED_IF_TIMED && ts != NULL && ts[strspn(ts, " \t")] != '\0');

	memset(&src, 0, sizeof(src));
	for (size_t i = 0; i < HR_ARRAY_LEN(modes); i++) {
		bool body_mode = i == 1, named_header = i == 2;

		snprintf(src.dedup, sizeof(src.dedup), "%s", modes[i]);
		src.auth = HR_AUTH_NONE;
		check_key(hr_dedup_key(&src, ev, body, len, NULL, no_header, NULL, NULL, key),
		    bytes_key || body_mode, key);
		check_key(hr_dedup_key(&src, ev, body, len, NULL, some_header, NULL, NULL, key),
		    bytes_key || body_mode || named_header, key);
		src.auth = HR_AUTH_HMAC;
		check_key(hr_dedup_key(&src, ev, body, len, NULL, some_header, NULL, NULL, key),
		    bytes_key || body_mode, key);
	}
	src.auth = HR_AUTH_NONE;
	snprintf(src.dedup, sizeof(src.dedup), "off");
	FUZZ_CHECK(!hr_dedup_key(&src, ev, body, len, NULL, no_header, NULL, NULL, key));
	check_key(
	    hr_dedup_key(&src, ev, body, len, NULL, no_header, NULL, "msg_1", key), true, key);
}

/*
 * The typed view carries the body's numbers unchanged (as doubles: an int64
 * near its limit is a double in struct hr_num). It mirrors the payload's
 * keys; where the types differ (timestamps become {raw, utc}) it is skipped.
 */
static void
check_same_numbers(const json_t *typed, const json_t *body)
{
	const char *key;
	json_t *v;
	size_t i;

	if (json_is_number(typed) && json_is_number(body)) {
		FUZZ_CHECK(json_number_value(typed) == json_number_value(body));
	} else if (json_is_object(typed) && json_is_object(body)) {
		json_object_foreach((json_t *)typed, key, v)
		{
			json_t *b = json_object_get(body, key);

			if (b != NULL)
				check_same_numbers(v, b);
		}
	} else if (json_is_array(typed) && json_is_array(body)) {
		json_array_foreach((json_t *)typed, i, v)
		{
			check_same_numbers(v, json_array_get(body, i));
		}
	}
}

static void
check_accepted(const struct hr_event *ev, enum hr_provider hint, const char *body, size_t len)
{
	json_t *typed;
	char *text;

	FUZZ_CHECK(ev->root != NULL);
	FUZZ_CHECK(ev->kind >= HR_KIND_UNKNOWN && ev->kind < HR_KIND_COUNT);
	FUZZ_CHECK(hr_kind_name(ev->kind) != NULL);
	FUZZ_CHECK(ev->desc != NULL && ev->desc == hr_kind_desc(ev->kind));
	if (hint != HR_PROVIDER_AUTO) {
		FUZZ_CHECK(ev->provider == hint);
		FUZZ_CHECK(ev->kind == HR_KIND_UNKNOWN || hr_kind_provider(ev->kind) == hint);
	}
	FUZZ_CHECK((ev->typed != NULL) == (ev->desc->schema != NULL));
	if (ev->sum.session_key != NULL)
		FUZZ_CHECK(is_json_text(ev->sum.session_key));
	if (ev->sum.occurred.valid) {
		char norm[32];

		FUZZ_CHECK(strlen(hr_time_norm(&ev->sum.occurred, norm, sizeof(norm))) == 27);
	}
	FUZZ_CHECK(is_json_text(hr_time_raw(&ev->sum.occurred)));
	typed = hr_event_typed_json(ev);
	FUZZ_CHECK((typed != NULL) == (ev->typed != NULL));
	if (typed != NULL) {
		check_same_numbers(typed, ev->root);
		text = json_dumps(typed, JSON_COMPACT);
		FUZZ_CHECK(text != NULL);
		free(text);
		json_decref(typed);
	}
	check_dedup(ev, body, len);
}

static void
check_refused(int rc, const struct hr_event *ev, const struct hr_parse_error *perr)
{
	static const struct hr_event cleared;

	FUZZ_CHECK(rc == HR_EPARSE || rc == HR_ETOOBIG || rc == HR_EINVAL || rc == HR_ENOMEM);
	FUZZ_CHECK(perr->status == (enum hr_status)rc);
	FUZZ_CHECK(memcmp(ev, &cleared, sizeof(*ev)) == 0);
	FUZZ_CHECK(memchr(perr->detail, '\0', sizeof(perr->detail)) != NULL);
	FUZZ_CHECK(is_json_text(perr->detail));
	if (rc == HR_EINVAL) {
		FUZZ_CHECK(perr->nerrors >= 1 && perr->nerrors <= HR_VERRORS_MAX);
		FUZZ_CHECK(perr->kind != HR_KIND_UNKNOWN);
		FUZZ_CHECK(!hr_kind_desc(perr->kind)->schema->lenient);
	}
	for (size_t i = 0; i < perr->nerrors && i < HR_VERRORS_MAX; i++) {
		FUZZ_CHECK(is_json_text(perr->errors[i].pointer));
		FUZZ_CHECK(is_json_text(perr->errors[i].detail));
	}
}

/* What POST /v1/rejections/{id}/accept does with a refused body. */
static void
check_accept(const char *body, size_t len, enum hr_kind kind, enum hr_provider hint)
{
	struct hr_event ev;

	if (hr_event_accept(body, len, kind, hint, &ev) != HR_OK)
		return; /* out of memory only */
	FUZZ_CHECK(ev.typed == NULL);
	FUZZ_CHECK(ev.kind == kind || (ev.kind == HR_KIND_UNKNOWN && ev.root == NULL));
	if (ev.sum.session_key != NULL)
		FUZZ_CHECK(is_json_text(ev.sum.session_key));
	FUZZ_CHECK(is_json_text(hr_time_raw(&ev.sum.occurred)));
	hr_event_clear(&ev);
}

/* One parse; returns the kind (HR_KIND_COUNT when refused) for the comparison. */
static int
parse_one(const char *body, size_t len, enum hr_provider hint, const struct hr_json_limits *lim,
    int *rc_out)
{
	struct hr_event ev;
	struct hr_parse_error perr;
	int rc, kind = HR_KIND_COUNT;

	memset(&perr, 0, sizeof(perr));
	rc = hr_event_parse(body, len, hint, lim, &ev, &perr);
	*rc_out = rc;
	if (rc == HR_OK) {
		check_accepted(&ev, hint, body, len);
		kind = (int)ev.kind;
	} else {
		check_refused(rc, &ev, &perr);
		if (rc == HR_EINVAL || rc == HR_EPARSE)
			check_accept(
			    body, len, rc == HR_EINVAL ? perr.kind : HR_KIND_UNKNOWN, hint);
	}
	hr_event_clear(&ev);
	hr_event_clear(&ev); /* twice is fine */
	return kind;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *body = (const char *)data;

	for (size_t l = 0; l < HR_ARRAY_LEN(limits); l++) {
		int kind[HR_ARRAY_LEN(hints)], rc[HR_ARRAY_LEN(hints)];

		for (size_t h = 0; h < HR_ARRAY_LEN(hints); h++)
			kind[h] = parse_one(body, size, hints[h], &limits[l], &rc[h]);
		/* The hint of the automatic kind's provider finds that kind again. */
		if (rc[0] == HR_OK && kind[0] != HR_KIND_UNKNOWN) {
			enum hr_provider p = hr_kind_provider((enum hr_kind)kind[0]);

			for (size_t h = 1; h < HR_ARRAY_LEN(hints); h++)
				if (hints[h] == p)
					FUZZ_CHECK(rc[h] == HR_OK && kind[h] == kind[0]);
		}
	}
	return 0;
}
