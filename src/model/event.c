/*
 * event.c - the validation path of one webhook body.
 *
 * Count the values of the raw bytes, parse (jansson, strict: no duplicate
 * keys, no trailing bytes; hr_json_load_wide() reads what senders write and
 * jansson alone refuses), bound the tree (depth, keys per
 * object, string bytes), classify (SPEC.md
 * section 7), decode through the kind's table, then finish the summary from
 * the kind's descriptor. The event owns the tree, in a slot of the jansson
 * arena when one is free (jarena.h); every string of the typed struct and of
 * the summary points into it (or into sum.key_buf).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hr/classify.h"
#include "hr/event.h"
#include "hr/jarena.h"
#include "hr/jsontext.h"
#include "hr/schema.h"

/* Any top-level value parses; non-objects are kept raw as kind unknown. */
#define PARSE_FLAGS (JSON_REJECT_DUPLICATES | JSON_DECODE_ANY)

/*
 * The body as a tree. An integer past 64 bits is valid JSON (RFC 8259 sets no
 * range), and free-form fields carry them (PailFlow's insights are an LLM's
 * JSON as Python wrote it; a 400 is final to a sender that never retries):
 * such a body is read with every integer as a double (hr_json_load_wide()).
 * The typed view then has a rounded number; the stored bytes are the body's
 * own. A number out of a double's range (1e400) is still malformed.
 */
static json_t *
load_body(const char *body, size_t len, json_error_t *je)
{
	return hr_json_load_wide(body, len, PARSE_FLAGS, je);
}

/* State of the limits walk: the bounds and the pointer of the current value. */
/*
 * The limits walk. The pointer of an offending value is built only on
 * failure, as the recursion unwinds (each level prepends its segment), so a
 * body within limits costs no string work at all.
 */
struct walk {
	const struct hr_json_limits *lim;
	struct hr_parse_error *perr;
	char msg[96]; /* what was exceeded */
	char ptr[sizeof(((struct hr_verror *)0)->pointer)];
	size_t len;
	bool cut; /* ptr names an ancestor: the whole pointer did not fit */
};

/*
 * jansson quotes the token it stopped at ("near '...'"), which may end inside
 * a UTF-8 character. The detail goes out as JSON, where an invalid string
 * would be dropped: then show its non-ASCII bytes as '?'.
 */
static void
make_json_text(char *s)
{
	json_t *j;

	/* jansson quotes the bytes where parsing stopped, control characters too:
	 * an ESC or a C1 CSI (U+009B) from the sender must not reach the log or a
	 * terminal showing the problem (hookctl), nor a newline split a log line. */
	hr_scrub_controls(s, strlen(s), false);
	if ((j = json_string(s)) != NULL) {
		json_decref(j);
		return;
	}
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			*s = '?';
}

static int
parse_failed(const json_error_t *je, struct hr_parse_error *perr)
{
	if (json_error_code(je) == json_error_stack_overflow) {
		/* jansson's own bound (JSON_PARSER_MAX_DEPTH), met before ours can be. */
		snprintf(perr->detail, sizeof(perr->detail),
		    "JSON nesting exceeds the parser's limit of %d levels (near byte %zu)",
		    JSON_PARSER_MAX_DEPTH, (size_t)je->position);
		perr->status = HR_ETOOBIG;
		return HR_ETOOBIG;
	}
	perr->line = je->line > 0 ? je->line : 0;
	perr->column = je->column > 0 ? je->column : 0;
	perr->position = (size_t)je->position;
	snprintf(perr->detail, sizeof(perr->detail),
	    "malformed JSON at line %d, column %d (byte %zu): %s", perr->line, perr->column,
	    perr->position, je->text);
	make_json_text(perr->detail);
	perr->status = HR_EPARSE;
	return HR_EPARSE;
}

static int too_big(struct walk *, const char *, ...) __attribute__((format(printf, 2, 3)));

/* Fail the walk, naming the limit and the pointer of the current value. */
static int
too_big(struct walk *w, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(w->msg, sizeof(w->msg), fmt, ap);
	va_end(ap);
	return HR_ETOOBIG;
}

static int walk_value(struct walk *, const json_t *, size_t);

/*
 * The value count, before jansson builds a tree. A tree costs far more than
 * its text ("[{},{},...]": about 250 bytes of memory per 3 bytes of body), and
 * jansson has no hook to stop it midway, so one pass over the raw bytes counts
 * values first, allocating nothing. A string followed by ':' is a key, not a
 * value. The count of malformed text is only an estimate, but never below the
 * containers and scalars jansson would build before it stops at the error.
 * On excess, the pointer of the value that crossed the limit comes from a
 * small stack of where each open container is (deeper levels are left out,
 * so the pointer then names an ancestor).
 */
#define SCAN_PATH_MAX 32

struct scan {
	const char *body;
	size_t len, values, depth;
	struct {
		bool object;
		size_t index;            /* arrays: the current element */
		size_t key_off, key_len; /* objects: the current key, quotes included */
	} path[SCAN_PATH_MAX];
};

/* The JSON pointer of the value being counted. */
static void
scan_pointer(const struct scan *sc, char *buf, size_t size)
{
	size_t len = 0, n = sc->depth < SCAN_PATH_MAX ? sc->depth : SCAN_PATH_MAX;

	buf[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		char seg[24];

		if (!sc->path[i].object) {
			snprintf(seg, sizeof(seg), "%zu", sc->path[i].index);
			len = hr_jptr_push(buf, size, len, seg);
		} else if (sc->path[i].key_len > 0) { /* decoded the way jansson would */
			json_t *key = hr_json_load_wide(sc->body + sc->path[i].key_off,
			    sc->path[i].key_len, JSON_DECODE_ANY, NULL);

			len = hr_jptr_push(
			    buf, size, len, json_is_string(key) ? json_string_value(key) : "");
			json_decref(key);
		}
	}
}

/* Where the string opening at `i` ends: the index of its closing quote, or
 * len. memchr finds each quote (the bytes of a big body are mostly strings);
 * a quote is the end unless an odd run of backslashes escapes it. */
static size_t
string_end(const struct scan *sc, size_t i)
{
	const char *first = sc->body + i + 1, *p = first, *end = sc->body + sc->len;

	while (p < end) {
		const char *q = memchr(p, '"', (size_t)(end - p));
		size_t bs = 0;

		if (q == NULL)
			break;
		while (q - bs > first && q[-1 - (ptrdiff_t)bs] == '\\')
			bs++;
		if (bs % 2 == 0)
			return (size_t)(q - sc->body);
		p = q + 1;
	}
	return sc->len;
}

/* A byte of a number or a literal (true, false, null, or junk jansson refuses). */
static bool
is_scalar_byte(unsigned char c)
{
	return c == '-' || c == '+' || c == '.' || (c >= '0' && c <= '9') ||
	    (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_key(const struct scan *sc, size_t end)
{
	size_t k = end + 1;

	while (k < sc->len &&
	    (sc->body[k] == ' ' || sc->body[k] == '\t' || sc->body[k] == '\r' ||
	        sc->body[k] == '\n'))
		k++;
	return k < sc->len && sc->body[k] == ':';
}

static void
scan_open(struct scan *sc, bool object)
{
	if (sc->depth < SCAN_PATH_MAX) {
		sc->path[sc->depth].object = object;
		sc->path[sc->depth].index = 0;
		sc->path[sc->depth].key_len = 0;
	}
	sc->depth++;
}

static void
scan_comma(struct scan *sc)
{
	if (sc->depth > 0 && sc->depth <= SCAN_PATH_MAX)
		sc->path[sc->depth - 1].index++;
}

static void
scan_key(struct scan *sc, size_t start, size_t end)
{
	if (sc->depth > 0 && sc->depth <= SCAN_PATH_MAX) {
		sc->path[sc->depth - 1].key_off = start;
		sc->path[sc->depth - 1].key_len = end < sc->len ? end - start + 1 : 0;
	}
}

/* HR_OK, or HR_ETOOBIG with perr's detail naming the pointer where `max` was passed.
 * One look at each byte outside strings; a run of scalar bytes is one value. */
static int
count_values(const char *body, size_t len, size_t max, struct hr_parse_error *perr)
{
	struct scan scan = { .body = body, .len = len }, *sc = &scan;
	int rc = HR_OK;

	for (size_t i = 0; i < len && rc == HR_OK; i++) {
		unsigned char c = (unsigned char)body[i];
		bool starts = false;

		switch (c) {
		case ' ':
		case '\t':
		case '\r':
		case '\n':
			continue;
		case '"': {
			size_t end = string_end(sc, i);

			if (is_key(sc, end))
				scan_key(sc, i, end);
			else
				starts = true;
			i = end;
			break;
		}
		case '{':
		case '[':
			starts = true;
			break;
		case ',':
			scan_comma(sc);
			break;
		case '}':
		case ']':
			if (sc->depth > 0)
				sc->depth--;
			break;
		default:
			if (is_scalar_byte(c)) {
				starts = true;
				while (i + 1 < len && is_scalar_byte((unsigned char)body[i + 1]))
					i++;
			}
			break;
		}
		if (starts && ++sc->values > max) {
			char ptr[sizeof(((struct hr_verror *)0)->pointer)];

			scan_pointer(sc, ptr, sizeof(ptr));
			snprintf(perr->detail, sizeof(perr->detail),
			    "more than %zu JSON values at \"%s\"", max, ptr);
			make_json_text(perr->detail);
			perr->status = HR_ETOOBIG;
			rc = HR_ETOOBIG;
		}
		if (c == '{' || c == '[')
			scan_open(sc, c == '{');
	}
	return rc;
}

/*
 * On the way out of a failure: put "/seg" in front of the pointer built so
 * far. What does not fit is dropped a whole segment at a time from the inner
 * end, so the pointer still names a value of the body: the failing one's
 * ancestor (`cut`). A pointer cut inside a segment would name a key that does
 * not exist, and the depth limit's pointer (64 levels of "/0") never fits.
 */
static void
prepend_segment(struct walk *w, const char *seg)
{
	char head[sizeof(w->ptr)];
	size_t n = 1 + strlen(seg);

	for (const char *p = seg; *p != '\0'; p++)
		n += *p == '~' || *p == '/'; /* escaped as ~0 and ~1 */
	if (n >= sizeof(w->ptr)) { /* this segment alone does not fit: its parent is named */
		w->len = 0;
		w->ptr[0] = '\0';
		w->cut = true;
		return;
	}
	n = hr_jptr_push(head, sizeof(head), 0, seg);
	if (n + w->len >= sizeof(w->ptr)) {
		w->len = sizeof(w->ptr) - 1 - n;
		while (w->len > 0 && w->ptr[w->len] != '/') /* '/' only starts a segment */
			w->len--;
		w->cut = true;
	}
	memmove(w->ptr + n, w->ptr, w->len);
	memcpy(w->ptr, head, n);
	w->len += n;
	w->ptr[w->len] = '\0';
}

static int
walk_child(struct walk *w, const char *seg, const json_t *v, size_t depth)
{
	int rc = walk_value(w, v, depth);

	if (rc != HR_OK)
		prepend_segment(w, seg);
	return rc;
}

static int
walk_object(struct walk *w, const json_t *obj, size_t depth)
{
	const struct hr_json_limits *lim = w->lim;
	const char *key;
	json_t *v;
	int rc;

	if (lim->max_object_keys > 0 && json_object_size(obj) > lim->max_object_keys)
		return too_big(w, "object has more than %zu keys", lim->max_object_keys);
	json_object_foreach((json_t *)obj, key, v)
	{
		if (lim->max_string > 0 && strlen(key) > lim->max_string) {
			prepend_segment(w, key);
			return too_big(w, "object key longer than %zu bytes", lim->max_string);
		}
		if ((rc = walk_child(w, key, v, depth)) != HR_OK)
			return rc;
	}
	return HR_OK;
}

static int
walk_array(struct walk *w, const json_t *arr, size_t depth)
{
	json_t *v;
	size_t i;
	int rc;

	json_array_foreach((json_t *)arr, i, v)
	{
		if ((rc = walk_value(w, v, depth)) != HR_OK) {
			char seg[24];

			snprintf(seg, sizeof(seg), "%zu", i);
			prepend_segment(w, seg);
			return rc;
		}
	}
	return HR_OK;
}

/* Recursion is bounded by max_depth and, before it, by jansson's parser depth. */
static int
walk_value(struct walk *w, const json_t *v, size_t depth)
{
	const struct hr_json_limits *lim = w->lim;

	if (json_is_string(v)) {
		if (lim->max_string > 0 && json_string_length(v) > lim->max_string)
			return too_big(w, "string longer than %zu bytes", lim->max_string);
		return HR_OK;
	}
	if (!json_is_object(v) && !json_is_array(v))
		return HR_OK;
	if (lim->max_depth > 0 && depth + 1 > lim->max_depth)
		return too_big(w, "JSON nested deeper than %zu levels", lim->max_depth);
	return json_is_object(v) ? walk_object(w, v, depth + 1) : walk_array(w, v, depth + 1);
}

static int
check_limits(const json_t *root, const struct hr_json_limits *lim, struct hr_parse_error *perr)
{
	struct walk w = { .lim = lim, .perr = perr, .len = 0 };
	int rc;

	if (lim == NULL)
		return HR_OK;
	w.ptr[0] = '\0';
	if ((rc = walk_value(&w, root, 0)) == HR_OK)
		return HR_OK;
	snprintf(perr->detail, sizeof(perr->detail), "%s %s \"%s\"", w.msg, w.cut ? "under" : "at",
	    w.ptr);
	make_json_text(perr->detail); /* the sender's keys: no control characters */
	perr->status = HR_ETOOBIG;
	return rc;
}

/* A body of no known kind still shows its event name, if it has one. */
static void
guess_event_type(struct hr_event *ev)
{
	const char *et = json_string_value(json_object_get(ev->root, "event_type"));

	if (et == NULL)
		et = json_string_value(json_object_get(ev->root, "event"));
	ev->sum.event_type = et;
}

bool
hr_key_too_long(const char *text)
{
	return text != NULL && strnlen(text, HR_KEY_MAX + 1) > HR_KEY_MAX;
}

bool
hr_query_indexed(const char *name, const json_t *item)
{
	return json_is_string(item) && !hr_key_too_long(name) &&
	    !hr_key_too_long(json_string_value(item));
}

/* What the kind's descriptor adds: public subtype, implied state, scope. */
static void
finish_summary(struct hr_event *ev)
{
	const struct hr_kind_desc *d = ev->desc;
	struct hr_summary *s = &ev->sum;
	const struct hr_status_map *m;

	s->status = d->state;
	if (d->status_map != NULL && s->subtype != NULL) {
		for (m = d->status_map; m->value != NULL; m++)
			if (strcmp(m->value, s->subtype) == 0)
				break;
		if (m->subtype != NULL)
			s->subtype = m->subtype;
		s->status = m->state;
	}
	/* Too long to keep (HR_KEY_MAX): a body of no known kind's event name, or a
	 * status no map knows; the state it implied stands. The keys apply_role()
	 * takes were weighed there. */
	if (hr_key_too_long(s->event_type))
		s->event_type = NULL;
	if (hr_key_too_long(s->subtype))
		s->subtype = NULL;
	s->scope = s->session_key != NULL ? d->scope : HR_SCOPE_NONE;
	/* A room-scoped event's room is its session; other events only link to one. */
	if (s->scope == HR_SCOPE_ROOM)
		s->room = s->session_key;
	if (!s->meeting_at.valid)
		s->meeting_at = s->occurred;
}

static int
classify_and_decode(struct hr_event *ev, enum hr_provider hint, struct hr_parse_error *perr)
{
	const struct hr_schema *schema;
	int rc;

	ev->kind = hr_classify(ev->root, hint);
	ev->desc = hr_kind_desc(ev->kind);
	ev->provider = hint != HR_PROVIDER_AUTO ? hint : ev->desc->provider;
	schema = ev->desc->schema;
	if (schema == NULL) {
		guess_event_type(ev);
		finish_summary(ev);
		return HR_OK;
	}
	ev->typed = calloc(1, schema->size);
	if (ev->typed == NULL)
		return HR_ENOMEM;
	rc = hr_schema_decode(schema, ev->root, "", ev->typed, &ev->sum, perr);
	if (rc != HR_OK) {
		perr->kind = ev->kind;
		return rc;
	}
	finish_summary(ev);
	return HR_OK;
}

int
hr_event_parse(const char *body, size_t len, enum hr_provider hint,
    const struct hr_json_limits *lim, struct hr_event *out, struct hr_parse_error *perr)
{
	struct hr_parse_error scratch;
	json_error_t je;
	int rc;

	if (perr == NULL)
		perr = &scratch;
	/* Only the header: errors[] (4 KiB) is written as failures are found. */
	perr->status = HR_OK;
	perr->detail[0] = '\0';
	perr->line = perr->column = 0;
	perr->position = 0;
	perr->kind = HR_KIND_UNKNOWN;
	perr->nerrors = 0;
	perr->nfound = 0;
	memset(out, 0, sizeof(*out));
	if (body == NULL)
		len = 0;
	/* Every value the count finds starts at a byte of its own, so a body of no
	 * more bytes than the limit cannot pass it: only a longer one is counted. */
	if (lim != NULL && lim->max_values > 0 && len > lim->max_values &&
	    (rc = count_values(body != NULL ? body : "", len, lim->max_values, perr)) != HR_OK)
		return perr->status = rc;
	/* The tree in one slot of the arena: no allocation per value, and freeing it
	 * is giving the slot back (hr_event_clear). Nothing keeps a reference into
	 * it past the event (hr_event_typed_json copies). */
	out->arena = hr_jarena_begin();
	out->root = load_body(body != NULL ? body : "", len, &je);
	hr_jarena_end();
	if (out->root == NULL) {
		hr_jarena_release(out->arena);
		out->arena = NULL;
		return parse_failed(&je, perr);
	}
	rc = check_limits(out->root, lim, perr);
	if (rc == HR_OK)
		rc = classify_and_decode(out, hint, perr);
	if (rc != HR_OK) {
		hr_event_clear(out);
		perr->status = rc;
	}
	return rc;
}

int
hr_event_accept(const char *body, size_t len, enum hr_kind kind, enum hr_provider provider,
    struct hr_event *out)
{
	const struct hr_schema *schema;
	json_error_t je;
	void *typed;

	memset(out, 0, sizeof(*out));
	out->root = load_body(body != NULL ? body : "", body != NULL ? len : 0, &je);
	out->kind = out->root != NULL && hr_kind_desc(kind) != NULL ? kind : HR_KIND_UNKNOWN;
	out->desc = hr_kind_desc(out->kind);
	out->provider = provider != HR_PROVIDER_AUTO ? provider : out->desc->provider;
	schema = out->desc->schema;
	if (schema == NULL || !json_is_object(out->root)) {
		if (out->root != NULL)
			guess_event_type(out);
		finish_summary(out);
		return HR_OK;
	}
	/* Decoded only for the summary's sake: the failures are why it was refused. */
	if ((typed = calloc(1, schema->size)) == NULL) {
		hr_event_clear(out);
		return HR_ENOMEM;
	}
	(void)hr_schema_decode(schema, out->root, "", typed, &out->sum, NULL);
	hr_schema_clear(schema, typed);
	free(typed);
	finish_summary(out);
	return HR_OK;
}

void
hr_event_clear(struct hr_event *ev)
{
	if (ev == NULL)
		return;
	if (ev->typed != NULL && ev->desc != NULL)
		hr_schema_clear(ev->desc->schema, ev->typed);
	free(ev->typed);
	json_decref(ev->root);
	hr_jarena_release(ev->arena);
	memset(ev, 0, sizeof(*ev));
}

/* The encoding shares values with the tree (JSON-typed fields): a deep copy
 * outlives the event, whose tree may be in an arena slot. */
json_t *
hr_event_typed_json(const struct hr_event *ev)
{
	json_t *shared, *copy;

	if (ev == NULL || ev->typed == NULL || ev->desc == NULL || ev->desc->schema == NULL)
		return NULL;
	shared = hr_schema_encode(ev->desc->schema, ev->typed);
	copy = shared != NULL ? json_deep_copy(shared) : NULL;
	json_decref(shared);
	return copy;
}

/* The value at RFC 6901 pointer `ptr` ("/a/b") of `root`, NULL when absent. */
static json_t *
at_pointer(json_t *root, const char *ptr)
{
	json_t *v = root;
	char seg[64];

	while (v != NULL && *ptr == '/') {
		size_t n = strcspn(++ptr, "/");

		if (n >= sizeof(seg) || !json_is_object(v))
			return NULL;
		memcpy(seg, ptr, n);
		seg[n] = '\0';
		v = json_object_get(v, seg);
		ptr += n;
	}
	return v;
}

char *
hr_event_facts_json(const struct hr_event *ev)
{
	const char *const *f = ev != NULL && ev->desc != NULL ? ev->desc->facts : NULL;
	json_t *obj = NULL;
	char *text = NULL;

	if (f == NULL || !json_is_object(ev->root) || (obj = json_object()) == NULL)
		return NULL;
	for (; *f != NULL; f++) {
		json_t *v = at_pointer(ev->root, *f);
		char *one = v != NULL && !json_is_null(v)
		    ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | hr_json_reals(v))
		    : NULL;

		if (one != NULL && strlen(one) <= HR_FACT_MAX)
			json_object_set(obj, strrchr(*f, '/') + 1, v);
		free(one);
	}
	if (json_object_size(obj) > 0)
		text = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS | hr_json_reals(obj));
	json_decref(obj);
	return text;
}

int
hr_summary_order_key(const struct hr_summary *sum, char **out)
{
	const char *scope = hr_scope_name(sum->scope);
	size_t n;

	*out = NULL;
	if (sum->session_key == NULL || sum->scope == HR_SCOPE_NONE)
		return HR_OK;
	n = strlen(scope) + 1 + strlen(sum->session_key) + 1;
	if ((*out = malloc(n)) == NULL)
		return HR_ENOMEM;
	snprintf(*out, n, "%s:%s", scope, sum->session_key);
	return HR_OK;
}
