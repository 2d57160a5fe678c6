/*
 * cfg_values.c - the value types of the configuration: their parsers,
 * printers and checks.
 *
 * Sizes ("8MiB"), durations ("250ms", "5m"), numbers with a fraction,
 * booleans, enums, addresses and lists ("a, b, c") each have one entry in
 * `cfg_types[]`: parse the text into the member, print the member back so
 * that it reads back the same, and for lists release or copy what they own.
 * The checks are what one value or list item must look like (a URL, a
 * header line, a CIDR block through netaddr). Bounds come from the option
 * table, so a value out of range is refused with the range in the reason.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cfg_int.h"
#include "hr/model.h"
#include "hr/netaddr.h"

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

/* `s` without surrounding blanks and line ends, in place. */
char *
cfg_strip(char *s)
{
	char *end;

	s += strspn(s, " \t\r\n");
	end = s + strlen(s);
	while (end > s && strchr(" \t\r\n", end[-1]) != NULL)
		*--end = '\0';
	return s;
}

bool
cfg_valid_name(const char *s)
{
	size_t n = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-");

	/* "." and ".." are path segments no request can carry (reqcheck.c refuses
	 * dot segments): /hooks/.. would answer 400 to every webhook (review R42AU). */
	return n > 0 && n < HR_NAME_MAX && s[n] == '\0' && strcmp(s, ".") != 0 &&
	    strcmp(s, "..") != 0;
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
	/* Out of range whatever its digits: no option takes a negative number, and
	 * "-0" passed as 0 where a range starts there (review RR40). */
	*out = neg ? -v : v;
	return neg ? NUM_RANGE : NUM_OK;
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

void
cfg_num_duration(int64_t v, char *buf, size_t len)
{
	if (v == 0) /* "0s" reads better than the smallest unit's "0ms" */
		snprintf(buf, len, "0s");
	else
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

static int
out_of_range(const struct option *o, const char *text, char *why, size_t len)
{
	char lo[32], hi[32];

	cfg_types[o->type].num(o->min, lo, sizeof(lo));
	cfg_types[o->type].num(o->max, hi, sizeof(hi));
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
	int rc;

	if ((int64_t)n < o->min) {
		snprintf(why, len, "must not be empty");
		return HR_EINVAL;
	}
	if ((int64_t)n > o->max || n >= o->width) {
		snprintf(why, len, "is longer than %lld bytes",
		    (long long)(o->max < (int64_t)o->width - 1 ? o->max : (int64_t)o->width - 1));
		return HR_EINVAL;
	}
	if (n > 0 && o->check != NULL && (rc = o->check(text, why, len)) != HR_OK)
		return rc;
	memcpy(dst, text, n + 1);
	return HR_OK;
}

int
hr_cfg_parse_listen(const char *s)
{
	struct sockaddr_storage ss;
	socklen_t sslen;

	if (strlen(s) >= sizeof(((struct hr_cfg *)NULL)->listen))
		return HR_EINVAL;
	return hr_netaddr_parse(s, &ss, &sslen);
}

static int
parse_addr(const struct option *o, const char *text, void *dst, char *why, size_t len)
{
	if (strlen(text) >= o->width || hr_cfg_parse_listen(text) != HR_OK) {
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

void
cfg_join_choices(const struct choice *c, const char *quote, char *buf, size_t len)
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
	cfg_join_choices(o->choices, "", names, sizeof(names));
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
	cfg_types[o->type].num(load_int(src, o->width), buf, len);
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

/* Numbers with a fraction: "10", "0.5". No sign or exponent, so the text reads back exactly. */

static enum num_status
scan_float(const char *s, double *out)
{
	int64_t ip, fp = 0;
	int n, nfrac = 0;
	double scale = 1;
	enum num_status st;

	if ((st = scan_digits(s, &ip, &n, &s)) != NUM_OK)
		return st;
	if (*s == '.') {
		if (scan_digits(s + 1, &fp, &nfrac, &s) != NUM_OK || nfrac > FLOAT_FRAC_MAX)
			return NUM_SYNTAX;
		for (int i = 0; i < nfrac; i++)
			scale *= 10;
	}
	if (*s != '\0')
		return NUM_SYNTAX;
	*out = (double)ip + (double)fp / scale;
	return NUM_OK;
}

static int
parse_float_opt(const struct option *o, const char *text, void *dst, char *why, size_t len)
{
	double v = 0;
	enum num_status st = scan_float(text, &v);

	if (st == NUM_SYNTAX) {
		snprintf(why, len, "\"%.64s\" is not a number (e.g. 10, 0.5)", text);
		return HR_EINVAL;
	}
	if (st == NUM_RANGE || v < (double)o->min || v > (double)o->max)
		return out_of_range(o, text, why, len);
	memcpy(dst, &v, sizeof(v));
	return HR_OK;
}

/* The fewest decimals that read back as the same value. */
static void
print_float(const struct option *o, const void *src, char *buf, size_t len)
{
	double v, back = 0;

	(void)o;
	memcpy(&v, src, sizeof(v));
	for (int prec = 0; prec <= FLOAT_FRAC_MAX; prec++) {
		snprintf(buf, len, "%.*f", prec, v);
		if (scan_float(buf, &back) == NUM_OK && back == v)
			return;
	}
}

/* Lists: "a, b, c" into a struct hr_strlist or hr_durlist the member owns. */

static int
no_memory(char *why, size_t len)
{
	snprintf(why, len, "out of memory");
	return HR_ENOMEM;
}

static void
strlist_clear(struct hr_strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static int
strlist_push(struct hr_strlist *l, const char *item)
{
	char **grown, *copy;

	if ((copy = strdup(item)) == NULL)
		return HR_ENOMEM;
	if ((grown = realloc(l->v, (l->n + 1) * sizeof(*grown))) == NULL) {
		free(copy);
		return HR_ENOMEM;
	}
	grown[l->n++] = copy;
	l->v = grown;
	return HR_OK;
}

/* One more item for `l`, if it is not empty, fits the option's bound and passes its check. */
static int
add_item(const struct option *o, struct hr_strlist *l, const char *item, char *why, size_t len)
{
	int rc;

	if (*item == '\0') {
		snprintf(why, len, "an item of the list is empty");
		return HR_EINVAL;
	}
	if (l->n >= (size_t)o->max) {
		snprintf(why, len, "more than %lld items", (long long)o->max);
		return HR_EINVAL;
	}
	if (o->check != NULL && (rc = o->check(item, why, len)) != HR_OK)
		return rc;
	return strlist_push(l, item) == HR_OK ? HR_OK : no_memory(why, len);
}

/*
 * The items of `text` appended to `l`: split at commas, except for O_REPEAT
 * keys whose one line is one item (a header value may hold commas), each
 * trimmed. A blank text adds nothing; an empty item between commas is an
 * error.
 */
static int
split_items(const struct option *o, const char *text, struct hr_strlist *l, char *why, size_t len)
{
	char *copy = strdup(text), *s;
	int rc = HR_OK;
	bool more;

	if (copy == NULL)
		return no_memory(why, len);
	s = cfg_strip(copy);
	for (more = *s != '\0'; more && rc == HR_OK;) {
		char *item = s, *comma = (o->flags & O_REPEAT) ? NULL : strchr(s, ',');

		more = comma != NULL;
		if (more) {
			*comma = '\0';
			s = comma + 1;
		}
		rc = add_item(o, l, cfg_strip(item), why, len);
	}
	free(copy);
	return rc;
}

static int
too_few_items(const struct option *o, char *why, size_t len)
{
	snprintf(why, len, "needs at least %lld item%s", (long long)o->min, o->min == 1 ? "" : "s");
	return HR_EINVAL;
}

/* Replaces the list at `dst` (the default, or an earlier value) only on success. */
static int
parse_strlist(const struct option *o, const char *text, void *dst, char *why, size_t len)
{
	struct hr_strlist l = { 0 }, *cur = dst;
	int rc = split_items(o, text, &l, why, len);

	if (rc == HR_OK && l.n < (size_t)o->min)
		rc = too_few_items(o, why, len);
	if (rc != HR_OK) {
		strlist_clear(&l);
		return rc;
	}
	strlist_clear(cur);
	*cur = l;
	return HR_OK;
}

/* O_REPEAT: a second or later line of the key adds to the list at `dst`. */
int
cfg_append_strlist(const struct option *o, const char *text, void *dst, char *why, size_t len)
{
	return split_items(o, text, dst, why, len);
}

static void
join_items(const char *const *items, size_t n, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n && used < len; i++) {
		int w = snprintf(buf + used, len - used, "%s%s", i > 0 ? ", " : "", items[i]);

		if (w < 0)
			break;
		used += (size_t)w;
	}
}

static void
print_strlist(const struct option *o, const void *src, char *buf, size_t len)
{
	const struct hr_strlist *l = src;

	(void)o;
	join_items((const char *const *)l->v, l->n, buf, len);
}

static void
clear_strlist(const struct option *o, void *dst)
{
	(void)o;
	strlist_clear(dst);
}

static int
copy_strlist(const struct option *o, void *dst)
{
	struct hr_strlist *l = dst, from = *l;

	(void)o;
	l->v = NULL;
	l->n = 0;
	for (size_t i = 0; i < from.n; i++)
		if (strlist_push(l, from.v[i]) != HR_OK)
			return HR_ENOMEM;
	return HR_OK;
}

static void
durlist_clear(struct hr_durlist *l)
{
	free(l->ms);
	l->ms = NULL;
	l->n = 0;
}

static int
parse_duration_item(const char *text, int64_t *out, char *why, size_t len)
{
	enum num_status st = parse_scaled(text, duration_units, false, true, out);
	char hi[32];

	if (st == NUM_SYNTAX) {
		snprintf(why, len, "\"%.64s\" is not a duration (e.g. 30s, 250ms)", text);
		return HR_EINVAL;
	}
	if (st == NUM_RANGE || *out > DURLIST_MAX_MS) {
		cfg_num_duration(DURLIST_MAX_MS, hi, sizeof(hi));
		snprintf(why, len, "%.64s is out of range (0s..%s)", text, hi);
		return HR_EINVAL;
	}
	return HR_OK;
}

static int
parse_durlist(const struct option *o, const char *text, void *dst, char *why, size_t len)
{
	struct hr_strlist items = { 0 };
	struct hr_durlist l = { 0 }, *cur = dst;
	int rc = split_items(o, text, &items, why, len);

	if (rc == HR_OK && items.n < (size_t)o->min)
		rc = too_few_items(o, why, len);
	if (rc == HR_OK && items.n > 0 && (l.ms = calloc(items.n, sizeof(*l.ms))) == NULL)
		rc = no_memory(why, len);
	for (size_t i = 0; i < items.n && rc == HR_OK; i++)
		rc = parse_duration_item(items.v[i], &l.ms[i], why, len);
	l.n = items.n;
	strlist_clear(&items);
	if (rc != HR_OK) {
		durlist_clear(&l);
		return rc;
	}
	durlist_clear(cur);
	*cur = l;
	return HR_OK;
}

static void
print_durlist(const struct option *o, const void *src, char *buf, size_t len)
{
	const struct hr_durlist *l = src;
	size_t used = 0;

	(void)o;
	buf[0] = '\0';
	for (size_t i = 0; i < l->n && used < len; i++) {
		char one[32];
		int w;

		cfg_num_duration(l->ms[i], one, sizeof(one));
		if ((w = snprintf(buf + used, len - used, "%s%s", i > 0 ? ", " : "", one)) < 0)
			break;
		used += (size_t)w;
	}
}

static void
clear_durlist(const struct option *o, void *dst)
{
	(void)o;
	durlist_clear(dst);
}

static int
copy_durlist(const struct option *o, void *dst)
{
	struct hr_durlist *l = dst, from = *l;

	(void)o;
	l->ms = NULL;
	l->n = 0;
	if (from.n == 0)
		return HR_OK;
	if ((l->ms = malloc(from.n * sizeof(*l->ms))) == NULL)
		return HR_ENOMEM;
	memcpy(l->ms, from.ms, from.n * sizeof(*l->ms));
	l->n = from.n;
	return HR_OK;
}

/* Checks: the text of one value or list item. */

/* RFC 9110 token characters: what a header name is made of. */
static bool
is_token(const char *s, size_t n)
{
	static const char tchar[] = "!#$%&'*+-.^_`|~0123456789"
	                            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

	for (size_t i = 0; i < n; i++)
		if (s[i] == '\0' || strchr(tchar, s[i]) == NULL)
			return false;
	return n > 0;
}

int
cfg_check_token(const char *text, char *why, size_t len)
{
	if (is_token(text, strlen(text)))
		return HR_OK;
	snprintf(
	    why, len, "\"%.64s\" is not a header name (A-Z a-z 0-9 and !#$%%&'*+-.^_`|~)", text);
	return HR_EINVAL;
}

/*
 * "Name: value"; an empty value would make libcurl drop the header instead of
 * sending it. A header's value is often a credential (Authorization: Bearer
 * ...), and these messages go to the log and the terminal: they quote what
 * comes before the colon, never after it, and nothing of a line without one.
 */
int
cfg_check_header_line(const char *text, char *why, size_t len)
{
	const char *colon = strchr(text, ':');
	int name = colon != NULL ? (int)(colon - text < 64 ? colon - text : 64) : 0;

	if (colon == NULL) {
		snprintf(why, len, "a line is not Name: value (a header name, a colon, a value)");
		return HR_EINVAL;
	}
	if (!is_token(text, (size_t)(colon - text))) {
		snprintf(why, len, "\"%.*s\" is not Name: value (a header name, a colon, a value)",
		    name, text);
		return HR_EINVAL;
	}
	if (colon[1 + strspn(colon + 1, " \t")] == '\0') {
		snprintf(why, len, "\"%.*s:\" has no value after the colon", name, text);
		return HR_EINVAL;
	}
	/* RFC 9110: a field value holds no control character but a tab; a strict
	 * receiver answers such a request 400, which is final, for every event. */
	for (const unsigned char *v = (const unsigned char *)colon + 1; *v != '\0'; v++)
		if ((*v < 0x20 && *v != '\t') || *v == 0x7f) {
			snprintf(
			    why, len, "\"%.*s:\" has a control character in its value", name, text);
			return HR_EINVAL;
		}
	/* What hookrelay or libcurl sets itself: a second copy would make the
	 * request ambiguous (or break its signature or framing). Content-Type and
	 * User-Agent may be configured: they replace hookrelay's. */
	static const char *const reserved[] = { "Content-Length", "Transfer-Encoding", "Host",
		"Connection", "Expect", "webhook-id", "webhook-timestamp", "webhook-signature" };
	for (size_t i = 0; i < HR_ARRAY_LEN(reserved); i++) {
		if (strlen(reserved[i]) == (size_t)(colon - text) &&
		    strncasecmp(text, reserved[i], (size_t)(colon - text)) == 0) {
			snprintf(why, len, "%s is set by hookrelay and cannot be configured",
			    reserved[i]);
			return HR_EINVAL;
		}
	}
	/* webhook-*: the Standard Webhooks headers are hookrelay's, the three it
	 * sends and any the standard adds (configuration.md). */
	if (colon - text >= 8 && strncasecmp(text, "webhook-", 8) == 0) {
		snprintf(why, len, "%.*s is set by hookrelay and cannot be configured (webhook-*)",
		    name, text);
		return HR_EINVAL;
	}
	return HR_OK;
}

int
cfg_check_name(const char *text, char *why, size_t len)
{
	if (cfg_valid_name(text))
		return HR_OK;
	snprintf(why, len, "\"%.64s\" is not a section name (1 to %d of A-Z a-z 0-9 _ . -)", text,
	    HR_NAME_MAX - 1);
	return HR_EINVAL;
}

int
cfg_check_glob(const char *text, char *why, size_t len)
{
	size_t n = strspn(text, HR_NAME_GLOB_CHARS);

	if (text[n] != '\0') {
		snprintf(why, len,
		    "\"%.64s\" is not a kind glob (A-Z a-z 0-9 _ . - and the wildcards * ?)", text);
		return HR_EINVAL;
	}
	/* The API's ?kind= rule: a glob that names no kind routes nothing, and says nothing. */
	if (hr_kind_glob_set(text) != 0)
		return HR_OK;
	snprintf(why, len, "\"%.64s\" %s (see docs/events.md)", text,
	    strpbrk(text, "*?") != NULL ? "matches no known kind" : "is not a known kind");
	return HR_EINVAL;
}

int
cfg_check_cidr(const char *text, char *why, size_t len)
{
	struct hr_cidr c;
	char net[INET6_ADDRSTRLEN];

	if (hr_cidr_parse(text, &c) != HR_OK) {
		snprintf(why, len,
		    "\"%.64s\" is not an address or CIDR (e.g. 10.0.0.0/8, 2001:db8::/32)", text);
		return HR_EINVAL;
	}
	if (!c.host_bits)
		return HR_OK;
	/* An access list must say what it means: one host, or the whole block. */
	if (inet_ntop(c.family, c.addr, net, sizeof(net)) == NULL)
		net[0] = '\0';
	snprintf(why, len,
	    "\"%.64s\" has bits set past its /%u prefix: write %s/%u for the block, or the "
	    "address alone for one host",
	    text, c.bits, net, c.bits);
	return HR_EINVAL;
}

int
cfg_check_dedup(const char *text, char *why, size_t len)
{
	if (strcmp(text, "auto") == 0 || strcmp(text, "body") == 0 || strcmp(text, "off") == 0 ||
	    (strncmp(text, "header:", 7) == 0 && is_token(text + 7, strlen(text + 7))))
		return HR_OK;
	snprintf(why, len, "\"%.64s\" is not auto, body, off or header:NAME", text);
	return HR_EINVAL;
}

/* [api] allowed_hosts: what a Host header can hold, as the API compares it. */
int
cfg_check_host_name(const char *text, char *why, size_t len)
{
	struct hr_authority a;

	if (hr_netaddr_authority(text, strlen(text), &a))
		return HR_OK;
	snprintf(why, len, "\"%.64s\" is not a host name, name:port, IP address or [IPv6]", text);
	return HR_EINVAL;
}

/*
 * Does `text` spell its authority out: "scheme://" and a host right after it (or
 * after userinfo)? libcurl reads "http:///x" and "http:/x" as host "x", which is
 * never what a file with a missing host meant.
 */
static bool
has_authority(const char *text, const char *scheme)
{
	const char *a = text + strlen(scheme), *host;

	if (strncmp(a, "://", 3) != 0)
		return false;
	a += 3;
	host = a + strcspn(a, "@/?#");
	host = *host == '@' ? host + 1 : a;
	return *host != '\0' && strchr("/?#:", *host) == NULL;
}

/*
 * libcurl's own parser: what it accepts here is what the delivery worker can
 * fetch. The URL itself is not repeated in the reason: it may hold credentials.
 */
int
cfg_check_url(const char *text, char *why, size_t len)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL;
	int rc = HR_EINVAL;

	if (u == NULL)
		return no_memory(why, len);
	if (curl_url_set(u, CURLUPART_URL, text, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
	    (strcasecmp(scheme, "http") == 0 || strcasecmp(scheme, "https") == 0) &&
	    has_authority(text, scheme) && curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
	    host[0] != '\0')
		rc = HR_OK;
	else
		snprintf(why, len, "not an http:// or https:// URL with a host (http://HOST/...)");
	curl_free(host);
	curl_free(scheme);
	curl_url_cleanup(u);
	return rc;
}

const struct type_ops cfg_types[T_COUNT] = {
	[T_STR] = { "string", parse_str, print_str, NULL, NULL, NULL },
	[T_PATH] = { "path", parse_str, print_str, NULL, NULL, NULL },
	[T_INT] = { "integer", parse_int_opt, print_num, num_int, NULL, NULL },
	[T_SIZE] = { "size", parse_size_opt, print_num, num_size, NULL, NULL },
	[T_DURATION] = { "duration", parse_duration_opt, print_num, cfg_num_duration, NULL, NULL },
	[T_BOOL] = { "boolean", parse_bool, print_bool, NULL, NULL, NULL },
	[T_ENUM] = { "choice", parse_enum, print_enum, NULL, NULL, NULL },
	[T_ADDR] = { "address", parse_addr, print_str, NULL, NULL, NULL },
	[T_FLOAT] = { "number", parse_float_opt, print_float, num_int, NULL, NULL },
	[T_STRLIST] = { "list", parse_strlist, print_strlist, NULL, clear_strlist, copy_strlist },
	[T_DURLIST] = { "durations", parse_durlist, print_durlist, NULL, clear_durlist,
	    copy_durlist },
};
