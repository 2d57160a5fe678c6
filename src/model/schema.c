/*
 * schema.c - the one generic decoder and encoder of the descriptor tables.
 *
 * Every kind's fields are lines of a table (kinds.c); this file walks a
 * table against a JSON object and never knows which kind it decodes. A
 * validation failure does not stop the walk: the sender gets every problem
 * of the body at once, each named by its RFC 6901 pointer, up to
 * HR_VERRORS_MAX. Strings and JSON values are borrowed from the tree; only
 * HR_T_ARRAY items are allocated, and hr_schema_clear() frees them.
 */
#include <math.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hr/schema.h"
#include "hr/timefmt.h"

/*
 * The position being decoded, as a stack of keys and indexes. It is turned
 * into text only when a failure is recorded: decoding a valid body (the hot
 * path) never formats a pointer.
 */
#define JPTR_DEPTH 32

struct jptr {
	const char *base; /* prefix given by the caller */
	size_t depth;     /* may exceed JPTR_DEPTH; deeper frames are not kept */
	struct {
		const char *key; /* NULL: an array index */
		size_t index;
	} frames[JPTR_DEPTH];
};

struct ctx {
	struct hr_summary *sum;      /* NULL: no roles */
	struct hr_parse_error *errs; /* NULL: count only */
	size_t nerr;                 /* failures seen, recorded or not */
	int in_array;                /* roles feed the summary only outside arrays */
	bool lenient;                /* struct hr_schema.lenient: failures are not failures */
	bool oom;
	const struct hr_timev *started; /* HR_R_STARTED_AT / HR_R_ENDED_AT, once seen */
	const struct hr_timev *ended;
};

/* Per-type behaviour; `expect` names the JSON type for messages. */
struct ftype_ops {
	const char *expect;
	bool (*decode)(struct ctx *, const struct hr_field *, json_t *, void *, struct jptr *);
	json_t *(*encode)(const struct hr_field *, const void *);
};

static bool decode_fields(struct ctx *, const struct hr_schema *, json_t *, struct jptr *, void *);

/* ---- pointers and errors ---- */

static size_t
utf8_len(unsigned char c)
{
	if (c < 0x80)
		return 1;
	return c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
}

size_t
hr_jptr_push(char *buf, size_t size, size_t len, const char *seg)
{
	if (size == 0 || len + 1 >= size)
		return len;
	buf[len++] = '/';
	while (*seg != '\0') {
		const char *esc = *seg == '~' ? "~0" : *seg == '/' ? "~1" : NULL;
		const char *src = esc != NULL ? esc : seg;
		size_t n = esc != NULL ? 2 : utf8_len((unsigned char)*seg);

		if (len + n >= size)
			break; /* whole characters only: the pointer is emitted as JSON */
		memcpy(buf + len, src, n);
		len += n;
		seg += esc != NULL ? 1 : n;
	}
	buf[len] = '\0';
	return len;
}

static size_t
jptr_push(struct jptr *p, const char *seg)
{
	size_t old = p->depth;

	if (p->depth < JPTR_DEPTH)
		p->frames[p->depth].key = seg;
	p->depth++;
	return old;
}

static size_t
jptr_push_index(struct jptr *p, size_t i)
{
	size_t old = p->depth;

	if (p->depth < JPTR_DEPTH) {
		p->frames[p->depth].key = NULL;
		p->frames[p->depth].index = i;
	}
	p->depth++;
	return old;
}

static void
jptr_pop(struct jptr *p, size_t old)
{
	p->depth = old;
}

/* The RFC 6901 text of `p`. */
static void
jptr_render(const struct jptr *p, char *buf, size_t size)
{
	size_t len = 0;

	snprintf(buf, size, "%s", p->base);
	len = strlen(buf);
	for (size_t i = 0; i < p->depth && i < JPTR_DEPTH; i++) {
		char seg[24];
		const char *key = p->frames[i].key;

		if (key == NULL) {
			snprintf(seg, sizeof(seg), "%zu", p->frames[i].index);
			key = seg;
		}
		len = hr_jptr_push(buf, size, len, key);
	}
}

static bool fail(struct ctx *, const struct jptr *, const char *, ...)
    __attribute__((format(printf, 3, 4)));

/* Record one failure; returns false for tail calls. */
static bool
fail(struct ctx *c, const struct jptr *p, const char *fmt, ...)
{
	struct hr_verror *e;
	va_list ap;

	if (c->lenient)
		return false; /* decode_field() leaves the field absent */
	c->nerr++;
	if (c->errs == NULL || c->errs->nerrors >= HR_VERRORS_MAX)
		return false;
	e = &c->errs->errors[c->errs->nerrors++];
	jptr_render(p, e->pointer, sizeof(e->pointer));
	va_start(ap, fmt);
	vsnprintf(e->detail, sizeof(e->detail), fmt, ap);
	va_end(ap);
	return false;
}

static const char *
json_type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "object";
	case JSON_ARRAY:
		return "array";
	case JSON_STRING:
		return "string";
	case JSON_INTEGER:
	case JSON_REAL:
		return "number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "boolean";
	case JSON_NULL:
		break;
	}
	return "null";
}

static bool
type_error(struct ctx *c, const struct jptr *p, const char *expect, const json_t *v)
{
	return fail(c, p, "expected %s, got %s", expect, json_type_name(v));
}

/* ---- decoders, one per enum hr_ftype ---- */

static bool
dec_str(struct ctx *c, const struct hr_field *f, json_t *v, void *slot, struct jptr *p)
{
	struct hr_str *o = slot;

	if (!json_is_string(v))
		return type_error(c, p, "string", v);
	o->s = json_string_value(v);
	o->len = json_string_length(v);
	o->st = HR_SET;
	return true;
}

static bool
dec_int(struct ctx *c, const struct hr_field *f, json_t *v, void *slot, struct jptr *p)
{
	struct hr_int *o = slot;
	double d;

	if (json_is_integer(v)) {
		o->v = json_integer_value(v);
	} else if (json_is_real(v)) {
		/* 1234.0 is an integer written as a real; 12.5 is not. */
		d = json_real_value(v);
		if (d != floor(d))
			return fail(c, p, "expected integer, got number with a fraction");
		if (d < -9223372036854775808.0 || d >= 9223372036854775808.0)
			return fail(c, p, "expected integer, got number out of range");
		o->v = (int64_t)d;
	} else {
		return type_error(c, p, "integer", v);
	}
	o->st = HR_SET;
	return true;
}

static bool
dec_num(struct ctx *c, const struct hr_field *f, json_t *v, void *slot, struct jptr *p)
{
	struct hr_num *o = slot;

	if (!json_is_number(v))
		return type_error(c, p, "number", v);
	o->v = json_number_value(v);
	o->is_int = json_is_integer(v);
	o->i = o->is_int ? (int64_t)json_integer_value(v) : 0;
	o->st = HR_SET;
	return true;
}

static bool
dec_bool(struct ctx *c, const struct hr_field *f, json_t *v, void *slot, struct jptr *p)
{
	struct hr_bool *o = slot;

	if (!json_is_boolean(v))
		return type_error(c, p, "boolean", v);
	o->v = json_is_true(v);
	o->st = HR_SET;
	return true;
}

/* A text that does not parse is kept (t.valid false), not refused: formats drift. */
static bool
dec_time(struct ctx *c, const struct hr_field *f, json_t *v, void *slot, struct jptr *p)
{
	struct hr_timev *o = slot;

	if (!json_is_string(v))
		return type_error(c, p, "string", v);
	(void)hr_time_parse_str(json_string_value(v), &o->t);
	o->st = HR_SET;
	return true;
}

static bool
dec_time_any(struct ctx *c, const struct hr_field *f, json_t *v, void *slot, struct jptr *p)
{
	struct hr_timev *o = slot;

	if (json_is_string(v))
		(void)hr_time_parse_str(json_string_value(v), &o->t);
	else if (json_is_number(v))
		(void)hr_time_parse_epoch(json_number_value(v), &o->t);
	else
		return type_error(c, p, "string or number", v);
	o->st = HR_SET;
	return true;
}

/*
 * Unix seconds: Daily documents numbers (floats: 1708972279.96) but its
 * dial-out examples send a string of digits. A string that is not a number
 * is kept as text (t.valid false), like any timestamp that does not parse.
 */
static bool
dec_epoch(struct ctx *c, const struct hr_field *f, json_t *v, void *slot, struct jptr *p)
{
	struct hr_timev *o = slot;
	const char *s;
	char *end;
	double d;

	if (json_is_number(v)) {
		(void)hr_time_parse_epoch(json_number_value(v), &o->t);
	} else if (json_is_string(v)) {
		s = json_string_value(v);
		d = strtod(s, &end);
		if (end != s && *end == '\0' && s[0] >= '0' && s[0] <= '9') {
			(void)hr_time_parse_epoch(d, &o->t);
			o->t.text = s; /* as received */
		} else {
			(void)hr_time_parse_str(s, &o->t);
		}
	} else {
		return type_error(c, p, "number or string", v);
	}
	o->st = HR_SET;
	return true;
}

static bool
dec_enum(struct ctx *c, const struct hr_field *f, json_t *v, void *slot, struct jptr *p)
{
	struct hr_enumv *o = slot;
	const struct hr_enum *e;

	if (!json_is_string(v))
		return type_error(c, p, "string", v);
	o->s = json_string_value(v);
	o->len = json_string_length(v);
	o->code = -1; /* open: an unknown value is kept, not refused */
	for (e = f->choices; e != NULL && e->name != NULL; e++) {
		/* by length too: "stop_phrase\u0000..." is not stop_phrase */
		if (strlen(e->name) == o->len && memcmp(e->name, o->s, o->len) == 0) {
			o->code = e->code;
			break;
		}
	}
	o->st = HR_SET;
	return true;
}

static bool
dec_const(struct ctx *c, const struct hr_field *f, json_t *v, void *slot, struct jptr *p)
{
	const char *want = f->choices[0].name;

	if (!json_is_string(v))
		return type_error(c, p, "string", v);
	if (strcmp(json_string_value(v), want) != 0)
		return fail(c, p, "expected \"%s\"", want);
	return dec_str(c, f, v, slot, p);
}

static bool
dec_json(struct ctx *c, const struct hr_field *f, json_t *v, void *slot, struct jptr *p)
{
	struct hr_jsonv *o = slot;

	o->v = v;
	o->st = HR_SET;
	return true;
}

static bool
dec_json_object(struct ctx *c, const struct hr_field *f, json_t *v, void *slot, struct jptr *p)
{
	if (!json_is_object(v))
		return type_error(c, p, "object", v);
	return dec_json(c, f, v, slot, p);
}

static bool
dec_str_array(struct ctx *c, const struct hr_field *f, json_t *v, void *slot, struct jptr *p)
{
	json_t *item;
	size_t i, old;
	bool ok = true;

	if (!json_is_array(v))
		return type_error(c, p, "array", v);
	json_array_foreach(v, i, item)
	{
		if (json_is_string(item))
			continue;
		old = jptr_push_index(p, i);
		ok = type_error(c, p, "string", item);
		jptr_pop(p, old);
	}
	return ok && dec_json(c, f, v, slot, p);
}

static bool
dec_object(struct ctx *c, const struct hr_field *f, json_t *v, void *slot, struct jptr *p)
{
	if (!json_is_object(v))
		return type_error(c, p, "object", v);
	return decode_fields(c, f->sub, v, p, slot);
}

static bool
dec_array(struct ctx *c, const struct hr_field *f, json_t *v, void *slot, struct jptr *p)
{
	struct hr_list *o = slot;
	json_t *item;
	size_t i, old;
	bool ok = true;

	if (!json_is_array(v))
		return type_error(c, p, "array", v);
	o->n = json_array_size(v);
	o->items = o->n > 0 ? calloc(o->n, f->sub->size) : NULL;
	if (o->n > 0 && o->items == NULL) {
		o->n = 0;
		c->oom = true;
		return false;
	}
	o->st = HR_SET;
	c->in_array++;
	json_array_foreach(v, i, item)
	{
		old = jptr_push_index(p, i);
		if (!json_is_object(item))
			ok = type_error(c, p, "object", item);
		else if (!decode_fields(c, f->sub, item, p, (char *)o->items + i * f->sub->size))
			ok = false;
		jptr_pop(p, old);
	}
	c->in_array--;
	return ok;
}

/* ---- encoders ---- */

static json_t *
enc_str(const struct hr_field *f, const void *slot)
{
	const struct hr_str *o = slot;

	return json_stringn(o->s, o->len);
}

static json_t *
enc_int(const struct hr_field *f, const void *slot)
{
	return json_integer(((const struct hr_int *)slot)->v);
}

static json_t *
enc_num(const struct hr_field *f, const void *slot)
{
	const struct hr_num *o = slot;

	return o->is_int ? json_integer((json_int_t)o->i) : json_real(o->v);
}

static json_t *
enc_bool(const struct hr_field *f, const void *slot)
{
	return json_boolean(((const struct hr_bool *)slot)->v);
}

/* {"raw": text as received, "utc": normalised text or null} */
static json_t *
enc_time(const struct hr_field *f, const void *slot)
{
	const struct hr_time *t = &((const struct hr_timev *)slot)->t;
	char norm[32];

	return json_pack(
	    "{s:s, s:s?}", "raw", hr_time_raw(t), "utc", hr_time_norm(t, norm, sizeof(norm)));
}

static json_t *
enc_enum(const struct hr_field *f, const void *slot)
{
	const struct hr_enumv *o = slot;

	return json_stringn(o->s, o->len);
}

static json_t *
enc_json(const struct hr_field *f, const void *slot)
{
	return json_incref(((const struct hr_jsonv *)slot)->v);
}

static json_t *
enc_object(const struct hr_field *f, const void *slot)
{
	return hr_schema_encode(f->sub, slot);
}

static json_t *
enc_array(const struct hr_field *f, const void *slot)
{
	const struct hr_list *o = slot;
	json_t *arr = json_array();
	size_t i;

	for (i = 0; arr != NULL && i < o->n; i++) {
		json_t *item = hr_schema_encode(f->sub, (const char *)o->items + i * f->sub->size);

		if (item == NULL || json_array_append_new(arr, item) != 0) {
			json_decref(arr);
			arr = NULL;
		}
	}
	return arr;
}

static const struct ftype_ops ftypes[] = {
	[HR_T_STR] = { "string", dec_str, enc_str },
	[HR_T_INT] = { "integer", dec_int, enc_int },
	[HR_T_NUM] = { "number", dec_num, enc_num },
	[HR_T_BOOL] = { "boolean", dec_bool, enc_bool },
	[HR_T_TIME] = { "string", dec_time, enc_time },
	[HR_T_TIME_ANY] = { "string or number", dec_time_any, enc_time },
	[HR_T_ENUM] = { "string", dec_enum, enc_enum },
	[HR_T_CONST] = { "string", dec_const, enc_str },
	[HR_T_JSON] = { "any JSON value", dec_json, enc_json },
	[HR_T_OBJECT] = { "object", dec_object, enc_object },
	[HR_T_ARRAY] = { "array", dec_array, enc_array },
	[HR_T_STR_ARRAY] = { "array", dec_str_array, enc_json },
	[HR_T_JSON_OBJECT] = { "object", dec_json_object, enc_json },
	[HR_T_EPOCH] = { "number or string", dec_epoch, enc_time },
};

/* ---- roles: what a field tells struct hr_summary ---- */

static const char *
slot_text(const struct hr_field *f, const void *slot)
{
	switch (f->type) {
	case HR_T_STR:
	case HR_T_CONST:
		return ((const struct hr_str *)slot)->s;
	case HR_T_ENUM:
		return ((const struct hr_enumv *)slot)->s;
	default:
		return NULL;
	}
}

static bool
slot_number(const struct hr_field *f, const void *slot, double *out)
{
	if (f->type == HR_T_INT)
		*out = (double)((const struct hr_int *)slot)->v;
	else if (f->type == HR_T_NUM)
		*out = ((const struct hr_num *)slot)->v;
	else
		return false;
	return true;
}

/*
 * The last path segment of a URL, query, fragment and trailing slashes
 * removed, copied to `buf`; NULL when there is none or it does not fit
 * (a cut key would correlate unrelated rooms).
 */
static const char *
url_last_segment(const char *url, char *buf, size_t size)
{
	const char *path = url, *scheme, *end, *seg;
	size_t n;

	if (url == NULL)
		return NULL;
	scheme = strstr(url, "://");
	if (scheme != NULL && (size_t)(scheme - url) < strcspn(url, "/?#")) {
		path = scheme + 3;
		path += strcspn(path, "/?#"); /* the authority is not a path segment */
	}
	end = path + strcspn(path, "?#");
	while (end > path && end[-1] == '/')
		end--;
	for (seg = end; seg > path && seg[-1] != '/'; seg--)
		;
	n = (size_t)(end - seg);
	if (n == 0 || n >= size)
		return NULL;
	memcpy(buf, seg, n);
	buf[n] = '\0';
	return buf;
}

bool
hr_instance_names_one(const char *instance)
{
	return instance != NULL && strcmp(instance, HR_DAILY_DEFAULT_INSTANCE) != 0;
}

/* Does `text` name nothing for `role`? An empty text names no session, room,
 * meeting or recording (it would gather every event that sends one), and a key
 * longer than HR_KEY_MAX none either (event.h: PostgreSQL's indexes refuse it);
 * like an empty one, it leaves what another field gave. The other roles keep
 * what was sent. */
static bool
names_nothing(enum hr_role role, const char *text)
{
	switch (role) {
	case HR_R_SESSION_KEY:
	case HR_R_ROOM:
	case HR_R_MEETING_ID:
	case HR_R_RECORDING_ID:
	case HR_R_RECORDING_INSTANCE:
		return text == NULL || text[0] == '\0' || hr_key_too_long(text);
	case HR_R_EVENT_TYPE:
	case HR_R_SUBTYPE:
		return hr_key_too_long(text);
	default:
		return false;
	}
}

/* The roles that point a summary field at the field's text, as they are. */
static const struct text_role {
	enum hr_role role;
	size_t offset; /* of the summary's const char * */
} text_roles[] = {
	{ HR_R_EVENT_TYPE, offsetof(struct hr_summary, event_type) },
	{ HR_R_SESSION_KEY, offsetof(struct hr_summary, session_key) },
	{ HR_R_SUBTYPE, offsetof(struct hr_summary, subtype) },
	{ HR_R_SHUTDOWN_REASON, offsetof(struct hr_summary, shutdown_reason) },
	{ HR_R_EXIT_REASON, offsetof(struct hr_summary, exit_reason) },
	{ HR_R_ERROR_TYPE, offsetof(struct hr_summary, error_type) },
	{ HR_R_ROOM, offsetof(struct hr_summary, room) },
	{ HR_R_MEETING_ID, offsetof(struct hr_summary, meeting_id) },
	{ HR_R_RECORDING_ID, offsetof(struct hr_summary, recording_id) },
	{ HR_R_RECORDING_INSTANCE, offsetof(struct hr_summary, recording_instance) },
};

static void
apply_role(struct ctx *c, const struct hr_field *f, const void *slot)
{
	struct hr_summary *sum = c->sum;

	if (sum == NULL || c->in_array > 0 || f->role == HR_R_NONE)
		return;
	if (f->role == HR_R_STARTED_AT || f->role == HR_R_ENDED_AT) {
		*(f->role == HR_R_STARTED_AT ? &c->started : &c->ended) = slot;
		return;
	}
	if (*(const enum hr_presence *)slot != HR_SET)
		return;
	if (f->role == HR_R_RECORDING_INSTANCE && !hr_instance_names_one(slot_text(f, slot)))
		return;
	for (size_t i = 0; i < sizeof(text_roles) / sizeof(text_roles[0]); i++)
		if (text_roles[i].role == f->role) {
			/* An empty text names nothing: PailFlow's room_name is "" for a room
			 * URL ending in "/", and it blanked the room its room_url gave (a
			 * review); an AgentHuman daily_room.name "" its URL's room. */
			if (!names_nothing(f->role, slot_text(f, slot)))
				*(const char **)(void *)((char *)sum + text_roles[i].offset) =
				    slot_text(f, slot);
			return;
		}
	switch (f->role) {
	case HR_R_SESSION_KEY_URL: {
		/* One that gives no segment leaves the key another field gave (as an
		 * empty text does; url_last_segment() writes nothing then). */
		const char *key =
		    url_last_segment(slot_text(f, slot), sum->key_buf, sizeof(sum->key_buf));

		if (key != NULL)
			sum->session_key = key;
		break;
	}
	case HR_R_OCCURRED: {
		const struct hr_time *t = &((const struct hr_timev *)slot)->t;

		/* A time that did not parse does not replace one that did: a Daily
		 * payload's start_ts in milliseconds blanked its envelope's event_ts,
		 * and the meeting started when the request arrived (a review). */
		if (t->valid || !sum->occurred.valid)
			sum->occurred = *t;
		break;
	}
	case HR_R_DURATION:
		sum->has_duration = slot_number(f, slot, &sum->duration);
		break;
	case HR_R_SCORE:
		sum->has_score = slot_number(f, slot, &sum->overall_score);
		break;
	case HR_R_ROOM_URL:
		sum->room =
		    url_last_segment(slot_text(f, slot), sum->room_buf, sizeof(sum->room_buf));
		break;
	case HR_R_MEETING_AT:
		sum->meeting_at = ((const struct hr_timev *)slot)->t;
		break;
	default:
		break;
	}
}

/*
 * Seed 002: the status is derived from the lifecycle timestamps, which win
 * over a disagreeing `status`; without them the received status stands.
 * The latest lifecycle time is when the body happened.
 */
static void
derive_from_lifecycle(struct ctx *c)
{
	const struct hr_timev *s = c->started, *e = c->ended;
	bool s_set = s != NULL && s->st == HR_SET, e_set = e != NULL && e->st == HR_SET;

	if (c->sum == NULL)
		return;
	if (e_set)
		c->sum->subtype = "ended";
	else if (s_set)
		c->sum->subtype = "started";
	else if (s != NULL && s->st == HR_NULL)
		c->sum->subtype = "created";
	if (e_set && e->t.valid)
		c->sum->occurred = e->t;
	else if (s_set && s->t.valid)
		c->sum->occurred = s->t;
}

/* ---- the walk ---- */

static bool
decode_value(struct ctx *c, const struct hr_field *f, json_t *v, void *slot, struct jptr *p)
{
	const struct ftype_ops *ops = &ftypes[f->type];

	if (v == NULL) {
		if (f->flags & HR_F_REQUIRED)
			return fail(c, p, "required field is missing") || c->lenient;
		return true;
	}
	/* null where a field may be left out says as little as leaving it out: a
	 * sender's serialiser that writes every optional member (None -> null)
	 * must not have a whole transcript refused for one item's timestamp, and
	 * Tavus and PailFlow never send a refused body again. A required field
	 * takes null only where the kind documents it. */
	if (json_is_null(v)) {
		if (!(f->flags & HR_F_NULLABLE) && (f->flags & HR_F_REQUIRED))
			return fail(c, p, "null is not allowed (expected %s)", ops->expect) ||
			    c->lenient;
		*(enum hr_presence *)slot = HR_NULL;
	} else if (!ops->decode(c, f, v, slot, p)) {
		if (!c->lenient)
			return false;
		*(enum hr_presence *)slot = HR_ABSENT; /* what did not decode is not there */
		return true;
	}
	apply_role(c, f, slot);
	return true;
}

/*
 * A field whose sub-schema is lenient (free-form content inside a known kind,
 * such as LLM output) is decoded leniently, the value itself included: what
 * does not decode is left out of the typed view, and the body is kept whole.
 * A required one must still be there, of its type: only its members are
 * lenient (decode_fields), as the properties of a Tavus kind whose shape is
 * unverified, whose envelope is not.
 */
static bool
decode_field(struct ctx *c, const struct hr_field *f, json_t *v, void *slot, struct jptr *p)
{
	bool outer = c->lenient, ok;

	if (f->sub != NULL && f->sub->lenient && !(f->flags & HR_F_REQUIRED))
		c->lenient = true;
	ok = decode_value(c, f, v, slot, p);
	c->lenient = outer;
	return ok;
}

/*
 * The object's value for each field of the table, in the table's order, found
 * by one pass over the object's keys instead of a hash lookup per field. An
 * object carries a few of its table's fields (a transcript turn: 2 of 9), and
 * the lookups were three quarters of decoding a transcript. An object or a
 * table larger than the pass suits is looked up field by field: the pass
 * costs keys x fields comparisons, and a sender chooses the keys.
 */
#define SCAN_FIELDS_MAX 32
#define SCAN_KEYS_MAX   32

/* A key of `len` bytes (it may hold a NUL, which no field name does) is `name`. */
static bool
key_is(const char *key, size_t len, const char *name)
{
	for (size_t i = 0; i < len; i++)
		if (name[i] == '\0' || name[i] != key[i])
			return false;
	return name[len] == '\0';
}

/* false: look the fields up one by one (found[] is not filled). */
static bool
find_fields(const struct hr_field *fields, json_t *obj, json_t **found)
{
	size_t n = 0;

	while (fields[n].json != NULL)
		if (++n > SCAN_FIELDS_MAX)
			return false;
	if (json_object_size(obj) > SCAN_KEYS_MAX)
		return false;
	memset(found, 0, n * sizeof(*found));
	for (void *it = json_object_iter(obj); it != NULL; it = json_object_iter_next(obj, it)) {
		const char *key = json_object_iter_key(it);
		size_t len = json_object_iter_key_len(it);

		for (size_t i = 0; i < n; i++)
			if (key_is(key, len, fields[i].json))
				found[i] = json_object_iter_value(it);
	}
	return true;
}

static bool
decode_fields(struct ctx *c, const struct hr_schema *schema, json_t *obj, struct jptr *p, void *out)
{
	json_t *found[SCAN_FIELDS_MAX];
	const struct hr_field *f;
	size_t i;
	bool ok = true, scanned, outer = c->lenient;

	*(enum hr_presence *)out = HR_SET;
	c->lenient = outer || schema->lenient;
	scanned = find_fields(schema->fields, obj, found);
	for (f = schema->fields, i = 0; f->json != NULL; f++, i++) {
		size_t old = jptr_push(p, f->json);
		json_t *v = scanned ? found[i] : json_object_get(obj, f->json);

		if (!decode_field(c, f, v, (char *)out + f->off, p))
			ok = false;
		jptr_pop(p, old);
	}
	c->lenient = outer;
	return ok;
}

int
hr_schema_decode(const struct hr_schema *schema, json_t *obj, const char *base, void *out,
    struct hr_summary *sum, struct hr_parse_error *errs)
{
	struct ctx c = { .sum = sum, .errs = errs, .lenient = schema->lenient };
	struct jptr p = { .base = base != NULL ? base : "", .depth = 0 };

	if (!json_is_object(obj))
		type_error(&c, &p, "object", obj);
	else
		decode_fields(&c, schema, obj, &p, out);
	derive_from_lifecycle(&c);
	if (c.oom)
		return HR_ENOMEM;
	if (c.nerr > 0) {
		if (errs != NULL) {
			errs->status = HR_EINVAL;
			errs->nfound += c.nerr;
		}
		return HR_EINVAL;
	}
	return HR_OK;
}

void
hr_schema_clear(const struct hr_schema *schema, void *typed)
{
	const struct hr_field *f;

	if (schema == NULL || typed == NULL)
		return;
	for (f = schema->fields; f->json != NULL; f++) {
		void *slot = (char *)typed + f->off;

		if (f->type == HR_T_OBJECT) {
			hr_schema_clear(f->sub, slot);
		} else if (f->type == HR_T_ARRAY) {
			struct hr_list *l = slot;

			for (size_t i = 0; i < l->n; i++)
				hr_schema_clear(f->sub, (char *)l->items + i * f->sub->size);
			free(l->items);
			memset(l, 0, sizeof(*l));
		}
	}
}

json_t *
hr_schema_encode(const struct hr_schema *schema, const void *typed)
{
	const struct hr_field *f;
	json_t *obj = json_object();

	for (f = schema->fields; obj != NULL && f->json != NULL; f++) {
		const void *slot = (const char *)typed + f->off;
		enum hr_presence st = *(const enum hr_presence *)slot;
		json_t *v;

		if (st == HR_ABSENT)
			continue;
		v = st == HR_NULL ? json_null() : ftypes[f->type].encode(f, slot);
		if (v == NULL || json_object_set_new(obj, f->json, v) != 0) {
			json_decref(obj);
			obj = NULL;
		}
	}
	return obj;
}
