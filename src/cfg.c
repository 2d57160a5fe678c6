/*
 * cfg.c - the configuration file as a struct hr_cfg.
 *
 * One option table (`options[]`) drives parsing, defaults, range checks,
 * `--help`, hr_cfg_print() and docs/configuration.md, so none of them can
 * drift from the others. Each option names its section and an offsetof into
 * the struct that section fills: struct hr_cfg for plain sections like
 * [server], one array element for named sections like [source NAME].
 *
 * libinih splits `key = value` lines. The line reader below feeds it and
 * takes section headers for itself: Debian's inih passes no line number to
 * the handler, truncates section names to 49 bytes and never reports a
 * section without keys, and an empty [source foo] must still exist.
 */
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "hr/cfg.h"
#include "hr/log.h"
#include "hr/netaddr.h"

#define KiB (INT64_C(1) << 10)
#define MiB (INT64_C(1) << 20)
#define GiB (INT64_C(1) << 30)

#define LINE_MAX_BYTES 8192 /* inih's line buffer, '\n' and '\0' included */
#define WHY_MAX        200  /* reason text, without the "FILE:LINE" */
#define NAMED_MAX      1024 /* instances of one named section kind */

enum opt_type { T_STR, T_PATH, T_INT, T_SIZE, T_DURATION, T_BOOL, T_ENUM, T_ADDR, T_COUNT };

struct choice {
	const char *name;
	int value;
};

/*
 * A plain section fills struct hr_cfg itself. A named one ([source NAME])
 * appends an element of `size` bytes to the array at `array_off`, counted
 * by the size_t at `count_off`; the NAME goes to the char[HR_NAME_MAX] at
 * `name_off` of the element.
 */
struct section {
	const char *name;
	const char *help;
	size_t size; /* 0: plain section */
	size_t array_off, count_off, name_off;
};

struct option {
	int section; /* index into sections[] */
	const char *key;
	enum opt_type type;
	size_t off, width;            /* the member, in the struct the section fills */
	int64_t min, max;             /* value bounds; STR and PATH: length bounds */
	const char *def;              /* default, in config file syntax */
	const struct choice *choices; /* T_ENUM */
	const char *help;             /* one line, for --help and the docs */
};

/* Parse `text` into the member at `dst`; on failure fill `why` (no key prefix). */
typedef int (*parse_fn)(const struct option *, const char *text, void *dst, char *why, size_t len);
/* Render the member at `src` in config file syntax. */
typedef void (*print_fn)(const struct option *, const void *src, char *buf, size_t len);
/* Render a number of this type, for ranges: "1KiB", "30s". */
typedef void (*num_fn)(int64_t v, char *buf, size_t len);

/* Release what a member of this type owns (lists, say); NULL when it owns nothing. */
typedef void (*clear_fn)(const struct option *, void *dst);

struct type_ops {
	const char *name; /* in --help and the docs */
	parse_fn parse;
	print_fn print;
	num_fn num;     /* numeric types only */
	clear_fn clear; /* called by hr_cfg_free() */
};

enum { SEC_SERVER, SEC_STORAGE, SEC_API, SEC_LOG, SEC_SOURCE };

static const struct section sections[] = {
	[SEC_SERVER] = { "server", "The HTTP listener and the limits every request is held to.", 0,
	    0, 0, 0 },
	[SEC_STORAGE] = { "storage",
	    "The SQLite event log. A webhook is acknowledged only once its event is committed.", 0,
	    0, 0, 0 },
	[SEC_API] = { "api", "The read API under /v1/.", 0, 0, 0, 0 },
	[SEC_LOG] = { "log", "Messages on stderr, with journald priority prefixes.", 0, 0, 0, 0 },
	[SEC_SOURCE] = { "source",
	    "One inbound endpoint, `POST /hooks/NAME`; repeat the section for more. NAME is "
	    "1 to 63 characters of `A-Z a-z 0-9 _ . -`. Without any [source] section every "
	    "/hooks path answers 404.",
	    sizeof(struct hr_source_cfg), offsetof(struct hr_cfg, sources),
	    offsetof(struct hr_cfg, nsources), offsetof(struct hr_source_cfg, name) },
};

static const struct choice log_levels[] = {
	{ "error", HR_LOG_ERR },
	{ "warning", HR_LOG_WARNING },
	{ "info", HR_LOG_INFO },
	{ "debug", HR_LOG_DEBUG },
	{ NULL, 0 },
};

/* Same names as hr_provider_name(); kept here so cfg.c does not need the event code. */
static const struct choice providers[] = {
	{ "auto", HR_PROVIDER_AUTO },
	{ "tavus", HR_PROVIDER_TAVUS },
	{ "pailflow", HR_PROVIDER_PAILFLOW },
	{ "agenthuman", HR_PROVIDER_AGENTHUMAN },
	{ NULL, 0 },
};

#define CFG(m) offsetof(struct hr_cfg, m), sizeof(((struct hr_cfg *)NULL)->m)
#define SRC(m) offsetof(struct hr_source_cfg, m), sizeof(((struct hr_source_cfg *)NULL)->m)

/* clang-format off */
static const struct option options[] = {
	{ SEC_SERVER, "listen", T_ADDR, CFG(listen), 0, 0, "127.0.0.1:8080", NULL,
	  "Numeric address and port to listen on: 127.0.0.1:8080, [::1]:8080, :8080 (every IPv4 address); port 0 picks a free port" },
	{ SEC_SERVER, "max_body", T_SIZE, CFG(max_body), KiB, GiB, "8MiB", NULL,
	  "Largest request body accepted; larger ones are answered 413" },
	{ SEC_SERVER, "request_timeout", T_DURATION, CFG(request_timeout_ms), 1000, 3600 * 1000, "30s", NULL,
	  "A connection idle this long is closed; cuts off slow clients" },
	{ SEC_SERVER, "threads", T_INT, CFG(threads), 1, 64, "2", NULL,
	  "HTTP worker threads" },
	{ SEC_SERVER, "max_connections", T_INT, CFG(max_connections), 1, 100000, "1024", NULL,
	  "Open connections at once; more are refused" },
	{ SEC_SERVER, "max_depth", T_INT, CFG(max_depth), 1, 1000, "64", NULL,
	  "Deepest JSON nesting accepted in a body" },
	{ SEC_SERVER, "max_object_keys", T_INT, CFG(max_object_keys), 1, 1000000, "10000", NULL,
	  "Most keys accepted in one JSON object" },
	{ SEC_SERVER, "max_string", T_SIZE, CFG(max_string), KiB, GiB, "4MiB", NULL,
	  "Longest JSON string accepted in a body" },

	{ SEC_STORAGE, "path", T_PATH, CFG(db_path), 1, PATH_MAX - 1, "var/hookrelay.db", NULL,
	  "SQLite database file, created if missing; a relative path is relative to the working directory" },
	{ SEC_STORAGE, "batch_max", T_INT, CFG(batch_max), 1, 10000, "256", NULL,
	  "Most events written in one group-commit transaction" },
	{ SEC_STORAGE, "queue_max", T_INT, CFG(queue_max), 1, 1000000, "8192", NULL,
	  "Events waiting for the writer; past it ingest answers 503" },
	{ SEC_STORAGE, "rejections_max", T_INT, CFG(rejections_max), 0, 1000000, "10000", NULL,
	  "Newest rejected bodies kept for inspection; 0 keeps none" },

	{ SEC_API, "token_file", T_PATH, CFG(token_file), 0, PATH_MAX - 1, "", NULL,
	  "File holding the bearer token the API requires; empty: no token, the API answers loopback clients only" },

	{ SEC_LOG, "level", T_ENUM, CFG(log_level), 0, 0, "info", log_levels,
	  "Least severe messages logged" },

	{ SEC_SOURCE, "provider", T_ENUM, SRC(provider), 0, 0, "auto", providers,
	  "Which provider sends here; auto classifies every body, a provider restricts classification to its events" },
};
/* clang-format on */

#define NOPTIONS HR_ARRAY_LEN(options)

/* Numbers: sizes, durations and integers. */

enum num_status { NUM_OK, NUM_SYNTAX, NUM_RANGE };

struct unit {
	const char *suffix;
	int64_t mult;
};

/* Suffixes are case-insensitive; KB and KiB both mean 1024. */
static const struct unit size_units[] = {
	{ "", 1 },
	{ "b", 1 },
	{ "k", KiB },
	{ "kb", KiB },
	{ "kib", KiB },
	{ "m", MiB },
	{ "mb", MiB },
	{ "mib", MiB },
	{ "g", GiB },
	{ "gb", GiB },
	{ "gib", GiB },
	{ NULL, 0 },
};

/* In milliseconds; a bare number means seconds. */
static const struct unit duration_units[] = {
	{ "", 1000 },
	{ "ms", 1 },
	{ "s", 1000 },
	{ "m", 60 * 1000 },
	{ "h", 3600 * 1000 },
	{ "d", 86400 * 1000 },
	{ NULL, 0 },
};

/* The largest unit that divides `v` exactly, first match wins. */
static const struct unit size_print_units[] = {
	{ "GiB", GiB },
	{ "MiB", MiB },
	{ "KiB", KiB },
	{ "", 1 },
};

static const struct unit duration_print_units[] = {
	{ "d", 86400 * 1000 },
	{ "h", 3600 * 1000 },
	{ "m", 60 * 1000 },
	{ "s", 1000 },
	{ "ms", 1 },
};

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Digits into *out; NUM_RANGE on overflow. *end is past the last digit. */
static enum num_status
scan_digits(const char *s, int64_t *out, int *ndigits, const char **end)
{
	int64_t v = 0;
	int n = 0;

	for (; is_digit(*s); s++, n++) {
		if (v > (INT64_MAX - (*s - '0')) / 10)
			return NUM_RANGE;
		v = v * 10 + (*s - '0');
	}
	*out = v;
	*ndigits = n;
	*end = s;
	return n > 0 ? NUM_OK : NUM_SYNTAX;
}

static const struct unit *
find_unit(const struct unit *units, const char *suffix, bool nocase)
{
	for (; units->suffix != NULL; units++)
		if ((nocase ? strcasecmp : strcmp)(units->suffix, suffix) == 0)
			return units;
	return NULL;
}

static const char *
skip_blanks(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

/*
 * "12", "12.5" (if `frac_ok`), then optional blanks and a unit from `units`:
 * the value times the unit's multiplier. A fraction must come out whole.
 */
static enum num_status
parse_scaled(const char *s, const struct unit *units, bool nocase, bool frac_ok, int64_t *out)
{
	const struct unit *u;
	int64_t ip, fp = 0, scale = 1, v;
	int n, nfrac = 0;
	enum num_status st;

	if ((st = scan_digits(s, &ip, &n, &s)) != NUM_OK)
		return st;
	if (*s == '.' && frac_ok) {
		/* Up to 9 digits keeps fp * mult below INT64_MAX. */
		if (scan_digits(s + 1, &fp, &nfrac, &s) != NUM_OK || nfrac > 9)
			return NUM_SYNTAX;
		for (int i = 0; i < nfrac; i++)
			scale *= 10;
	}
	if ((u = find_unit(units, skip_blanks(s), nocase)) == NULL)
		return NUM_SYNTAX;
	if (fp * u->mult % scale != 0)
		return NUM_SYNTAX; /* finer than the smallest unit */
	if (ip > INT64_MAX / u->mult)
		return NUM_RANGE;
	v = ip * u->mult;
	if (v > INT64_MAX - fp * u->mult / scale)
		return NUM_RANGE;
	*out = v + fp * u->mult / scale;
	return NUM_OK;
}

static enum num_status
parse_int(const char *s, int64_t *out)
{
	const char *end;
	int64_t v;
	int n;
	enum num_status st;
	bool neg = (*s == '-');

	if ((st = scan_digits(s + neg, &v, &n, &end)) != NUM_OK)
		return st;
	if (*end != '\0')
		return NUM_SYNTAX;
	*out = neg ? -v : v;
	return NUM_OK;
}

int
hr_cfg_parse_size(const char *s, size_t *out)
{
	int64_t v;

	if (parse_scaled(s, size_units, true, false, &v) != NUM_OK || (uint64_t)v > SIZE_MAX)
		return HR_EINVAL;
	*out = (size_t)v;
	return HR_OK;
}

int
hr_cfg_parse_duration_ms(const char *s, int64_t *out)
{
	return parse_scaled(s, duration_units, false, true, out) == NUM_OK ? HR_OK : HR_EINVAL;
}

static void
print_scaled(int64_t v, const struct unit *units, size_t nunits, char *buf, size_t len)
{
	size_t i;

	for (i = 0; i + 1 < nunits; i++)
		if (v != 0 && v % units[i].mult == 0)
			break;
	snprintf(buf, len, "%lld%s", (long long)(v / units[i].mult), units[i].suffix);
}

static void
num_int(int64_t v, char *buf, size_t len)
{
	snprintf(buf, len, "%lld", (long long)v);
}

static void
num_size(int64_t v, char *buf, size_t len)
{
	print_scaled(v, size_print_units, HR_ARRAY_LEN(size_print_units), buf, len);
}

static void
num_duration(int64_t v, char *buf, size_t len)
{
	print_scaled(v, duration_print_units, HR_ARRAY_LEN(duration_print_units), buf, len);
}

/* Members: integers of any width the table names; all values fit int32 or int64. */

static void
store_int(void *dst, size_t width, int64_t v)
{
	if (width == sizeof(int32_t)) {
		int32_t v32 = (int32_t)v;

		memcpy(dst, &v32, sizeof(v32));
	} else {
		memcpy(dst, &v, sizeof(v));
	}
}

static int64_t
load_int(const void *src, size_t width)
{
	int32_t v32;
	int64_t v64;

	if (width == sizeof(int32_t)) {
		memcpy(&v32, src, sizeof(v32));
		return v32;
	}
	memcpy(&v64, src, sizeof(v64));
	return v64;
}

/* Type parsers and printers. */

static const struct type_ops types[T_COUNT];

static int
out_of_range(const struct option *o, const char *text, char *why, size_t len)
{
	char lo[32], hi[32];

	types[o->type].num(o->min, lo, sizeof(lo));
	types[o->type].num(o->max, hi, sizeof(hi));
	snprintf(why, len, "%.64s is out of range (%s..%s)", text, lo, hi);
	return HR_EINVAL;
}

static int
parse_number(const struct option *o, enum num_status st, int64_t v, const char *text, void *dst,
    char *why, size_t len)
{
	static const char *const what[T_COUNT] = {
		[T_INT] = "a whole number",
		[T_SIZE] = "a size (e.g. 8MiB)",
		[T_DURATION] = "a duration (e.g. 30s, 250ms)",
	};

	if (st == NUM_SYNTAX) {
		snprintf(why, len, "\"%.64s\" is not %s", text, what[o->type]);
		return HR_EINVAL;
	}
	if (st == NUM_RANGE || v < o->min || v > o->max)
		return out_of_range(o, text, why, len);
	store_int(dst, o->width, v);
	return HR_OK;
}

static int
parse_int_opt(const struct option *o, const char *text, void *dst, char *why, size_t len)
{
	int64_t v = 0;
	enum num_status st = parse_int(text, &v);

	return parse_number(o, st, v, text, dst, why, len);
}

static int
parse_size_opt(const struct option *o, const char *text, void *dst, char *why, size_t len)
{
	int64_t v = 0;
	enum num_status st = parse_scaled(text, size_units, true, false, &v);

	return parse_number(o, st, v, text, dst, why, len);
}

static int
parse_duration_opt(const struct option *o, const char *text, void *dst, char *why, size_t len)
{
	int64_t v = 0;
	enum num_status st = parse_scaled(text, duration_units, false, true, &v);

	return parse_number(o, st, v, text, dst, why, len);
}

static int
parse_str(const struct option *o, const char *text, void *dst, char *why, size_t len)
{
	size_t n = strlen(text);

	if ((int64_t)n < o->min) {
		snprintf(why, len, "must not be empty");
		return HR_EINVAL;
	}
	if ((int64_t)n > o->max || n >= o->width) {
		snprintf(why, len, "is longer than %lld bytes",
		    (long long)(o->max < (int64_t)o->width - 1 ? o->max : (int64_t)o->width - 1));
		return HR_EINVAL;
	}
	memcpy(dst, text, n + 1);
	return HR_OK;
}

static int
parse_addr(const struct option *o, const char *text, void *dst, char *why, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sslen;

	if (strlen(text) >= o->width || hr_netaddr_parse(text, &ss, &sslen) != HR_OK) {
		snprintf(why, len,
		    "\"%.64s\" is not a numeric address:port (e.g. 127.0.0.1:8080, [::1]:8080)",
		    text);
		return HR_EINVAL;
	}
	memcpy(dst, text, strlen(text) + 1);
	return HR_OK;
}

static int
parse_bool(const struct option *o, const char *text, void *dst, char *why, size_t len)
{
	static const struct choice bools[] = {
		{ "true", 1 },
		{ "yes", 1 },
		{ "on", 1 },
		{ "1", 1 },
		{ "false", 0 },
		{ "no", 0 },
		{ "off", 0 },
		{ "0", 0 },
	};

	(void)o;
	for (size_t i = 0; i < HR_ARRAY_LEN(bools); i++) {
		if (strcasecmp(text, bools[i].name) == 0) {
			bool b = bools[i].value != 0;

			memcpy(dst, &b, sizeof(b));
			return HR_OK;
		}
	}
	snprintf(why, len, "\"%.64s\" is not a boolean (true/false, yes/no, on/off, 1/0)", text);
	return HR_EINVAL;
}

static void
join_choices(const struct choice *c, const char *quote, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (; c->name != NULL && used < len; c++) {
		int n = snprintf(buf + used, len - used, "%s%s%s%s", used > 0 ? ", " : "", quote,
		    c->name, quote);

		if (n < 0)
			break;
		used += (size_t)n;
	}
}

static int
parse_enum(const struct option *o, const char *text, void *dst, char *why, size_t len)
{
	char names[128];

	for (const struct choice *c = o->choices; c->name != NULL; c++) {
		if (strcasecmp(text, c->name) == 0) {
			store_int(dst, o->width, c->value);
			return HR_OK;
		}
	}
	join_choices(o->choices, "", names, sizeof(names));
	snprintf(why, len, "\"%.64s\" is not one of %s", text, names);
	return HR_EINVAL;
}

static void
print_str(const struct option *o, const void *src, char *buf, size_t len)
{
	(void)o;
	snprintf(buf, len, "%s", (const char *)src);
}

static void
print_num(const struct option *o, const void *src, char *buf, size_t len)
{
	types[o->type].num(load_int(src, o->width), buf, len);
}

static void
print_bool(const struct option *o, const void *src, char *buf, size_t len)
{
	bool b;

	(void)o;
	memcpy(&b, src, sizeof(b));
	snprintf(buf, len, "%s", b ? "true" : "false");
}

static void
print_enum(const struct option *o, const void *src, char *buf, size_t len)
{
	int64_t v = load_int(src, o->width);

	for (const struct choice *c = o->choices; c->name != NULL; c++) {
		if (c->value == v) {
			snprintf(buf, len, "%s", c->name);
			return;
		}
	}
	snprintf(buf, len, "%lld", (long long)v);
}

static const struct type_ops types[T_COUNT] = {
	[T_STR] = { "string", parse_str, print_str, NULL, NULL },
	[T_PATH] = { "path", parse_str, print_str, NULL, NULL },
	[T_INT] = { "integer", parse_int_opt, print_num, num_int, NULL },
	[T_SIZE] = { "size", parse_size_opt, print_num, num_size, NULL },
	[T_DURATION] = { "duration", parse_duration_opt, print_num, num_duration, NULL },
	[T_BOOL] = { "boolean", parse_bool, print_bool, NULL, NULL },
	[T_ENUM] = { "choice", parse_enum, print_enum, NULL, NULL },
	[T_ADDR] = { "address", parse_addr, print_str, NULL, NULL },
};

/* The table. */

static const struct option *
find_option(int sec, const char *key)
{
	for (size_t i = 0; i < NOPTIONS; i++)
		if (options[i].section == sec && strcmp(options[i].key, key) == 0)
			return &options[i];
	return NULL;
}

static int
find_section(const char *name)
{
	for (size_t i = 0; i < HR_ARRAY_LEN(sections); i++)
		if (strcmp(sections[i].name, name) == 0)
			return (int)i;
	return -1;
}

static int
apply_defaults(int sec, void *base)
{
	char why[WHY_MAX];

	for (size_t i = 0; i < NOPTIONS; i++) {
		const struct option *o = &options[i];

		if (o->section == sec &&
		    types[o->type].parse(o, o->def, (char *)base + o->off, why, sizeof(why)) !=
		        HR_OK)
			return HR_EINVAL;
	}
	return HR_OK;
}

/* Named section instances, reached through the offsets in struct section. */

static void *
instances(const struct hr_cfg *cfg, const struct section *s, size_t *count)
{
	void *arr;

	memcpy(&arr, (const char *)cfg + s->array_off, sizeof(arr));
	memcpy(count, (const char *)cfg + s->count_off, sizeof(*count));
	return arr;
}

static const char *
instance_name(const struct section *s, const void *arr, size_t i)
{
	return (const char *)arr + i * s->size + s->name_off;
}

static void *
append_instance(struct hr_cfg *cfg, const struct section *s)
{
	size_t n;
	char *arr = instances(cfg, s, &n), *grown, *inst;

	if ((grown = realloc(arr, (n + 1) * s->size)) == NULL)
		return NULL;
	inst = grown + n * s->size;
	memset(inst, 0, s->size);
	n++;
	memcpy((char *)cfg + s->array_off, &grown, sizeof(grown));
	memcpy((char *)cfg + s->count_off, &n, sizeof(n));
	return inst;
}

struct hr_cfg *
hr_cfg_new_defaults(void)
{
	struct hr_cfg *cfg = calloc(1, sizeof(*cfg));

	if (cfg == NULL)
		return NULL;
	for (size_t i = 0; i < HR_ARRAY_LEN(sections); i++) {
		if (sections[i].size == 0 && apply_defaults((int)i, cfg) != HR_OK) {
			hr_cfg_free(cfg);
			return NULL;
		}
	}
	return cfg;
}

static void
clear_options(int sec, void *base)
{
	for (size_t i = 0; i < NOPTIONS; i++)
		if (options[i].section == sec && types[options[i].type].clear != NULL)
			types[options[i].type].clear(&options[i], (char *)base + options[i].off);
}

void
hr_cfg_free(struct hr_cfg *cfg)
{
	if (cfg == NULL)
		return;
	for (size_t s = 0; s < HR_ARRAY_LEN(sections); s++) {
		size_t n;
		char *arr;

		if (sections[s].size == 0) {
			clear_options((int)s, cfg);
			continue;
		}
		arr = instances(cfg, &sections[s], &n);
		for (size_t i = 0; i < n; i++)
			clear_options((int)s, arr + i * sections[s].size);
		free(arr);
	}
	free(cfg);
}

const struct hr_source_cfg *
hr_cfg_source(const struct hr_cfg *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->nsources; i++)
		if (strcmp(cfg->sources[i].name, name) == 0)
			return &cfg->sources[i];
	return NULL;
}

/* The parser: a line reader for inih that also handles section headers. */

struct parser {
	struct hr_cfg *cfg;
	const char *name; /* file name in errors */
	FILE *fp;         /* or: */
	const char *text;
	int lineno;
	int sec;            /* current section, -1 before the first header */
	void *base;         /* the struct its options point into */
	int seen[NOPTIONS]; /* line that set each option, 0 if none yet */
	int rc;
	struct hr_error *err;
};

static void
where(const struct parser *p, char *buf, size_t len)
{
	char line[16];
	size_t nlen = strlen(p->name), room;

	if (p->lineno == 0) { /* before the first line: the file itself */
		snprintf(buf, len, "%s", p->name);
		return;
	}
	snprintf(line, sizeof(line), ":%d", p->lineno);
	room = len - 1 - strlen(line);
	if (nlen <= room)
		snprintf(buf, len, "%s%s", p->name, line);
	else /* keep the end of a long path: it names the file */
		snprintf(buf, len, "...%s%s", p->name + nlen - (room - 3), line);
}

static int fail(struct parser *p, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Record the first error at the current line; returns 0 for inih's handler. */
static int
fail(struct parser *p, int code, const char *fmt, ...)
{
	char field[sizeof(p->err->field)], msg[sizeof(p->err->msg)];
	va_list ap;

	if (p->rc != HR_OK)
		return 0;
	p->rc = code;
	where(p, field, sizeof(field));
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	hr_error_set(p->err, code, field, "%s", msg);
	return 0;
}

static bool
valid_name(const char *s)
{
	size_t n = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-");

	return n > 0 && n < HR_NAME_MAX && s[n] == '\0';
}

static void
begin_named(struct parser *p, int sec, const char *name)
{
	const struct section *s = &sections[sec];
	size_t n;
	const void *arr = instances(p->cfg, s, &n);
	char *inst;

	if (!valid_name(name)) {
		fail(p, HR_EINVAL,
		    "[%s %.64s]: the name must be 1 to %d characters of A-Z a-z 0-9 _ . -", s->name,
		    name, HR_NAME_MAX - 1);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (strcmp(instance_name(s, arr, i), name) == 0) {
			fail(p, HR_EINVAL, "duplicate section [%s %s]", s->name, name);
			return;
		}
	}
	if (n >= NAMED_MAX) {
		fail(p, HR_EINVAL, "more than %d [%s] sections", NAMED_MAX, s->name);
		return;
	}
	if ((inst = append_instance(p->cfg, s)) == NULL) {
		fail(p, HR_ENOMEM, "out of memory");
		return;
	}
	memcpy(inst + s->name_off, name, strlen(name) + 1);
	if (apply_defaults(sec, inst) != HR_OK) {
		fail(p, HR_EINVAL, "[%s]: bad default in the option table", s->name);
		return;
	}
	for (size_t i = 0; i < NOPTIONS; i++)
		if (options[i].section == sec)
			p->seen[i] = 0;
	p->base = inst;
}

/* "[kind]" or "[kind NAME]", already stripped of its brackets. */
static void
begin_section(struct parser *p, char *head)
{
	char *name = head + strcspn(head, " \t");
	int sec;

	if (*name != '\0')
		*name++ = '\0';
	name += strspn(name, " \t");
	if ((sec = find_section(head)) < 0) {
		fail(p, HR_EINVAL, "unknown section [%.64s]", head);
		return;
	}
	p->sec = sec;
	if (sections[sec].size == 0) {
		if (*name != '\0')
			fail(p, HR_EINVAL, "section [%s] takes no name", head);
		p->base = p->cfg;
		return;
	}
	if (*name == '\0') {
		fail(p, HR_EINVAL, "section [%s] needs a name: [%s NAME]", head, head);
		return;
	}
	begin_named(p, sec, name);
}

static char *
strip(char *s)
{
	char *end;

	s += strspn(s, " \t\r\n");
	end = s + strlen(s);
	while (end > s && strchr(" \t\r\n", end[-1]) != NULL)
		*--end = '\0';
	return s;
}

/* A "[...]" line; anything after the "]" but a comment is an error. */
static void
section_line(struct parser *p, char *line)
{
	char *close = strchr(line, ']'), *rest;

	if (close == NULL) {
		fail(p, HR_EINVAL, "malformed section header: no closing \"]\"");
		return;
	}
	*close = '\0';
	rest = strip(close + 1);
	if (*rest != '\0' && *rest != '#' && *rest != ';') {
		fail(p, HR_EINVAL, "unexpected text after the section header");
		return;
	}
	begin_section(p, strip(line + 1));
}

/* fgets() over the file or the string; false at the end or on a read error. */
static bool
next_line(struct parser *p, char *buf, int size, bool *complete)
{
	size_t n;

	if (p->fp != NULL) {
		if (fgets(buf, size, p->fp) == NULL) {
			if (ferror(p->fp))
				fail(p, HR_EINVAL, "read error: %s", strerror(errno));
			return false;
		}
		n = strlen(buf);
		*complete = (n > 0 && buf[n - 1] == '\n') || feof(p->fp);
		return true;
	}
	if (*p->text == '\0')
		return false;
	n = strcspn(p->text, "\n");
	*complete = n < (size_t)size - 1;
	if (!*complete)
		n = (size_t)size - 1;
	else if (p->text[n] == '\n')
		n++;
	memcpy(buf, p->text, n);
	buf[n] = '\0';
	p->text += n;
	return true;
}

static char *
read_line(char *buf, int size, void *arg)
{
	struct parser *p = arg;
	bool complete;
	char *s;

	if (p->rc != HR_OK || !next_line(p, buf, size, &complete))
		return NULL;
	p->lineno++;
	if (!complete) {
		fail(p, HR_EINVAL, "line longer than %d bytes", size - 2);
		return NULL;
	}
	if (p->lineno == 1 && strncmp(buf, "\xEF\xBB\xBF", 3) == 0)
		memmove(buf, buf + 3, strlen(buf + 3) + 1);
	s = buf + strspn(buf, " \t");
	if (*s == '[') {
		section_line(p, s);
		buf[0] = '\0'; /* inih never sees sections: ours are not truncated */
	}
	return p->rc == HR_OK ? buf : NULL;
}

static int
on_key(void *arg, const char *section, const char *key, const char *value)
{
	struct parser *p = arg;
	const struct option *o;
	char why[WHY_MAX];
	size_t i;

	(void)section; /* inih never sees our headers; p->sec is the section */
	if (p->sec < 0)
		return fail(p, HR_EINVAL, "key %s is outside any section", key);
	if ((o = find_option(p->sec, key)) == NULL)
		return fail(
		    p, HR_EINVAL, "unknown key \"%.64s\" in [%s]", key, sections[p->sec].name);
	i = (size_t)(o - options);
	if (p->seen[i] != 0)
		return fail(
		    p, HR_EINVAL, "duplicate key %s (first set on line %d)", key, p->seen[i]);
	if (types[o->type].parse(o, value, (char *)p->base + o->off, why, sizeof(why)) != HR_OK)
		return fail(p, HR_EINVAL, "%s: %s", key, why);
	p->seen[i] = p->lineno;
	return 1;
}

/*
 * inih's settings are process globals: config loading is a start-up,
 * single-threaded affair.
 */
static void
setup_inih(void)
{
	static char inline_comments[] = ";#";

	ini_use_stack = false;
	ini_allow_realloc = false;
	ini_initial_alloc = LINE_MAX_BYTES;
	ini_max_line = LINE_MAX_BYTES;
	ini_allow_multiline = false;
	ini_allow_bom = true;
	ini_allow_no_value = false;
	ini_allow_inline_comments = true;
	ini_inline_comment_prefixes = inline_comments;
	ini_stop_on_first_error = true;
}

static int
parse(struct parser *p, struct hr_cfg **out)
{
	int line;

	p->sec = -1;
	p->rc = HR_OK;
	if ((p->cfg = hr_cfg_new_defaults()) == NULL)
		return hr_error_set(p->err, HR_ENOMEM, p->name, "out of memory");
	snprintf(p->cfg->file, sizeof(p->cfg->file), "%s", p->name);
	setup_inih();
	line = ini_parse_stream(read_line, p, on_key, p);
	if (p->rc == HR_OK && line == -2)
		hr_error_set(p->err, p->rc = HR_ENOMEM, p->name, "out of memory");
	else if (p->rc == HR_OK && line != 0) {
		p->lineno = line;
		fail(p, HR_EINVAL,
		    "malformed line: expected \"key = value\", \"[section]\" or a comment");
	}
	if (p->rc != HR_OK) {
		hr_cfg_free(p->cfg);
		return p->rc;
	}
	*out = p->cfg;
	return HR_OK;
}

int
hr_cfg_load_string(const char *text, const char *name, struct hr_cfg **out, struct hr_error *err)
{
	struct parser p = { .name = name, .text = text, .err = err };

	return parse(&p, out);
}

int
hr_cfg_load(const char *path, struct hr_cfg **out, struct hr_error *err)
{
	struct parser p = { .name = path, .err = err };
	int rc;

	if ((p.fp = fopen(path, "r")) == NULL)
		return hr_error_set(err, HR_EINVAL, path, "cannot open: %s", strerror(errno));
	rc = parse(&p, out);
	fclose(p.fp);
	return rc;
}

/* Rendering the table: --help, the docs and the effective configuration. */

static void
default_text(const struct option *o, char *buf, size_t len)
{
	snprintf(buf, len, "%s", o->def[0] != '\0' ? o->def : "(empty)");
}

static void
range_text(const struct option *o, const char *quote, char *buf, size_t len)
{
	char lo[32], hi[32];

	buf[0] = '\0';
	if (o->choices != NULL) {
		join_choices(o->choices, quote, buf, len);
	} else if (types[o->type].num != NULL) {
		types[o->type].num(o->min, lo, sizeof(lo));
		types[o->type].num(o->max, hi, sizeof(hi));
		snprintf(buf, len, "%s..%s", lo, hi);
	} else if ((o->type == T_STR || o->type == T_PATH) && o->min > 0) {
		snprintf(buf, len, "not empty");
	}
}

static void
section_title(const struct section *s, char *buf, size_t len)
{
	snprintf(buf, len, s->size != 0 ? "[%s NAME]" : "[%s]", s->name);
}

void
hr_cfg_print_help(FILE *fp)
{
	int keyw = 0;

	for (size_t i = 0; i < NOPTIONS; i++) {
		int n = (int)strlen(options[i].key);

		keyw = n > keyw ? n : keyw;
	}
	fprintf(fp, "Configuration file (INI; see docs/configuration.md):\n");
	for (size_t s = 0; s < HR_ARRAY_LEN(sections); s++) {
		char title[64];

		section_title(&sections[s], title, sizeof(title));
		fprintf(fp, "\n%s\n", title);
		for (size_t i = 0; i < NOPTIONS; i++) {
			const struct option *o = &options[i];
			char def[64], range[128];

			if (o->section != (int)s)
				continue;
			default_text(o, def, sizeof(def));
			range_text(o, "", range, sizeof(range));
			fprintf(fp, "  %-*s  %-8s  %-16s  %s%s%s%s\n", keyw, o->key,
			    types[o->type].name, def, o->help, range[0] != '\0' ? " [" : "", range,
			    range[0] != '\0' ? "]" : "");
		}
	}
}

/* A markdown table cell: '|' would end it. */
static void
md_cell(FILE *fp, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '|')
			fputc('\\', fp);
		fputc(*s, fp);
	}
}

static const char md_intro[] =
    "# Configuration reference\n"
    "\n"
    "<!-- Generated by `hookrelay --config-reference` from the option table in src/cfg.c; "
    "do not edit. -->\n"
    "\n"
    "hookrelay reads one INI file, named with `-c FILE`. A key that is not set keeps the "
    "default listed below; the shipped `config/hookrelay.conf` lists every key with its "
    "default.\n"
    "\n"
    "```ini\n"
    "[server]\n"
    "listen = 127.0.0.1:8080\n"
    "max_body = 8MiB      # a comment\n"
    "\n"
    "[source default]\n"
    "provider = auto\n"
    "```\n"
    "\n"
    "## File format\n"
    "\n"
    "- `[section]` starts a section; `key = value` sets an option in it (`key: value` works "
    "too). Spaces around keys and values are ignored; values are not quoted.\n"
    "- A line starting with `#` or `;` is a comment, and so is the rest of a line from a `#` "
    "or `;` that follows a space or tab (so a value cannot contain ` #` or ` ;`).\n"
    "- Named sections, like `[source NAME]`, can be repeated with different names. A NAME is "
    "1 to 63 characters of `A-Z a-z 0-9 _ . -`; two sections of the same kind must not share "
    "one. A named section without keys exists with its defaults.\n"
    "- Sizes are a whole number of bytes, optionally followed by a unit: `k`, `KB` or `KiB` "
    "(1024 bytes), `M`, `MB` or `MiB` (1024 KiB), `G`, `GB` or `GiB` (1024 MiB). Units are "
    "case-insensitive, and KB means 1024 bytes just like KiB. Examples: `1024`, `512k`, "
    "`8MiB`, `1G`.\n"
    "- Durations are a number followed by `ms`, `s`, `m`, `h` or `d`; a bare number means "
    "seconds. Fractions are allowed down to a millisecond: `250ms`, `0.2s` (200 ms), `1.5m` "
    "(90 s), `2h`, `30d`.\n"
    "- Booleans are `true`/`false`, `yes`/`no`, `on`/`off` or `1`/`0`.\n"
    "- Relative paths are relative to the working directory of hookrelay.\n"
    "- Negative numbers, trailing text and values outside the listed range are errors.\n"
    "\n"
    "## Errors\n"
    "\n"
    "An unknown section or key, a key set twice in one section, a bad value or a malformed "
    "line stops hookrelay before it serves anything: it prints `FILE:LINE: reason` and exits "
    "with status 78 (EX_CONFIG). `hookrelay -t -c FILE` checks a file and exits.\n";

void
hr_cfg_print_markdown(FILE *fp)
{
	fputs(md_intro, fp);
	for (size_t s = 0; s < HR_ARRAY_LEN(sections); s++) {
		char title[64];

		section_title(&sections[s], title, sizeof(title));
		fprintf(fp, "\n## %s\n\n%s\n\n", title, sections[s].help);
		fprintf(fp, "| Key | Type | Default | Range / choices | Description |\n");
		fprintf(fp, "|-----|------|---------|-----------------|-------------|\n");
		for (size_t i = 0; i < NOPTIONS; i++) {
			const struct option *o = &options[i];
			char range[160];

			if (o->section != (int)s)
				continue;
			range_text(o, "`", range, sizeof(range));
			fprintf(fp, "| `%s` | %s | ", o->key, types[o->type].name);
			if (o->def[0] != '\0') {
				fputc('`', fp);
				md_cell(fp, o->def);
				fputc('`', fp);
			} else {
				fputs("(empty)", fp);
			}
			fputs(" | ", fp);
			md_cell(fp, range);
			fputs(" | ", fp);
			md_cell(fp, o->help);
			fputs(" |\n", fp);
		}
	}
}

static void
print_options(FILE *fp, int sec, const void *base)
{
	for (size_t i = 0; i < NOPTIONS; i++) {
		const struct option *o = &options[i];
		char value[PATH_MAX];

		if (o->section != sec)
			continue;
		types[o->type].print(o, (const char *)base + o->off, value, sizeof(value));
		fprintf(fp, "%s =%s%s\n", o->key, value[0] != '\0' ? " " : "", value);
	}
}

void
hr_cfg_print(FILE *fp, const struct hr_cfg *cfg)
{
	for (size_t s = 0; s < HR_ARRAY_LEN(sections); s++) {
		const struct section *sec = &sections[s];
		size_t n;
		const char *arr;

		if (sec->size == 0) {
			fprintf(fp, "%s[%s]\n", s > 0 ? "\n" : "", sec->name);
			print_options(fp, (int)s, cfg);
			continue;
		}
		arr = instances(cfg, sec, &n);
		for (size_t i = 0; i < n; i++) {
			fprintf(fp, "\n[%s %s]\n", sec->name, instance_name(sec, arr, i));
			print_options(fp, (int)s, arr + i * sec->size);
		}
	}
}

#ifdef HR_TESTING
const char *
cfg_option_key(size_t i, const char **section)
{
	if (i >= NOPTIONS)
		return NULL;
	*section = sections[options[i].section].name;
	return options[i].key;
}

/* Table invariants a new line could break; 0 if they hold, else the option's index + 1. */
int
cfg_table_check(void)
{
	static char scratch[PATH_MAX];
	char why[WHY_MAX];

	for (size_t i = 0; i < NOPTIONS; i++) {
		const struct option *o = &options[i];
		bool numeric = types[o->type].num != NULL;
		bool text = o->type == T_STR || o->type == T_PATH || o->type == T_ADDR;

		if (o->help == NULL || o->def == NULL || o->min > o->max ||
		    o->width > sizeof(scratch) ||
		    types[o->type].parse(o, o->def, scratch, why, sizeof(why)) != HR_OK ||
		    (o->type == T_ENUM) != (o->choices != NULL) ||
		    (numeric && o->width != 4 && o->width != 8) ||
		    (numeric && o->width == 4 && o->max > INT32_MAX) ||
		    (o->type == T_DURATION && o->width != sizeof(int64_t)) ||
		    (o->type == T_ENUM && o->width != sizeof(int)) ||
		    (o->type == T_BOOL && o->width != sizeof(bool)) || (text && o->width < 2) ||
		    (text && o->type != T_ADDR && o->max >= (int64_t)o->width) ||
		    find_option(o->section, o->key) != o)
			return (int)i + 1;
	}
	return 0;
}
#endif
