/*
 * hookctl_out.c - results on stdout: aligned tables for people, JSON Lines
 * for programs.
 *
 * Cells show text that webhook senders chose (event types, session keys,
 * header values), so control characters are replaced before they reach a
 * terminal, and JSON meant for a terminal is ASCII-only.
 */
#define _XOPEN_SOURCE 700 /* wcwidth() */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wchar.h>

#include "hookctl.h"
#include "hr/jsontext.h"

#define CELL_MAX 512

#define BOLD   "\033[1m"
#define RED    "\033[31m"
#define GREEN  "\033[32m"
#define YELLOW "\033[33m"
#define RESET  "\033[0m"

static const struct {
	const char *value;
	const char *color;
} status_colors[] = {
	{ "ok", GREEN },
	{ "active", GREEN },
	{ "closed", GREEN },
	{ "succeeded", GREEN },
	{ "ended", GREEN },
	{ "created", YELLOW },
	{ "started", YELLOW },
	{ "pending", YELLOW },
	{ "half-open", YELLOW },
	{ "failed", RED },
	{ "dead", RED },
	{ "disabled", RED },
	{ "open", RED },
	{ "unavailable", RED },
	{ "unreachable", RED },
	{ "gone", RED },    /* the database file, deleted under the daemon */
	{ "corrupt", RED }, /* ... or damaged */
	{ NULL, NULL },
};

static const char *
status_color(const char *text)
{
	for (size_t i = 0; status_colors[i].value != NULL; i++)
		if (strcmp(status_colors[i].value, text) == 0)
			return status_colors[i].color;
	return NULL;
}

/*
 * Columns on a terminal: wcwidth() in the user's locale (a CJK character takes
 * two, a combining mark none); where the text does not decode there, one per
 * code point.
 */
static int
text_width(const char *s)
{
	mbstate_t st;
	int w = 0;

	memset(&st, 0, sizeof(st));
	while (*s != '\0') {
		wchar_t wc;
		size_t n = mbrtowc(&wc, s, strlen(s), &st);
		int cw;

		if (n == (size_t)-1 || n == (size_t)-2 || n == 0) {
			for (; *s != '\0'; s++)
				w += ((unsigned char)*s & 0xc0) != 0x80;
			break;
		}
		cw = wcwidth(wc);
		w += cw >= 0 ? cw : 1;
		s += n;
	}
	return w;
}

/*
 * Bidirectional formatting characters (U+061C, U+200E-F, U+202A-E, U+2066-9)
 * and the line and paragraph separators (U+2028-9): the UTF-8 sequence's length
 * if `p` starts one, else 0. The first reorder what follows on the line, the
 * others end it as a newline does (terminals, and what a table is pasted into),
 * so a crafted value could make a row read otherwise, or start a row of its own.
 */
static size_t
format_char_len(const unsigned char *p)
{
	if (p[0] == 0xd8 && p[1] == 0x9c)
		return 2;
	if (p[0] != 0xe2 || p[1] == '\0')
		return 0;
	if (p[1] == 0x80 && (p[2] == 0x8e || p[2] == 0x8f || (p[2] >= 0xa8 && p[2] <= 0xae)))
		return 3;
	if (p[1] == 0x81 && p[2] >= 0xa6 && p[2] <= 0xa9)
		return 3;
	return 0;
}

/*
 * C0 and C1 controls and DEL become '?', and so does each bidirectional
 * formatting character and line or paragraph separator: no escape sequence
 * reaches the terminal, and no value reorders or breaks the text around it.
 */
static void
defang(char *s)
{
	const unsigned char *r = (const unsigned char *)s;
	unsigned char *w = (unsigned char *)s;
	size_t n;

	while (*r != '\0') {
		if (*r < 0x20 || *r == 0x7f) {
			*w++ = '?';
			r++;
		} else if (*r == 0xc2 && r[1] >= 0x80 && r[1] <= 0x9f) {
			*w++ = '?';
			*w++ = '?';
			r += 2;
		} else if ((n = format_char_len(r)) > 0) {
			*w++ = '?';
			r += n;
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
}

const char *
ctl_safe(const char *text, char *buf, size_t len)
{
	snprintf(buf, len, "%s", text != NULL ? text : "");
	defang(buf);
	return buf;
}

/* "a.b": member b of member a, unless `obj` has a member named "a.b" itself (a query
 * parameter or header name may hold dots, and be longer than a path's part). */
static json_t *
member(json_t *obj, const char *key)
{
	char part[64];
	json_t *whole = json_object_get(obj, key);

	if (whole != NULL)
		return whole;
	while (obj != NULL && *key != '\0') {
		size_t n = strcspn(key, ".");

		if (n >= sizeof(part))
			return NULL;
		memcpy(part, key, n);
		part[n] = '\0';
		obj = json_object_get(obj, part);
		key += n + (key[n] == '.');
	}
	return obj;
}

void
ctl_cell(json_t *obj, const char *key, enum ctl_fmt fmt, char *buf, size_t len)
{
	json_t *v = member(obj, key);
	char *text;

	if (v == NULL || json_is_null(v)) {
		snprintf(buf, len, "-");
	} else if (json_is_string(v) && fmt == F_TIME && json_string_length(v) >= 19) {
		/* 2026-11-21T23:18:34.751278Z -> 2026-11-21 23:18:34 (UTC) */
		snprintf(buf, len, "%.10s %.8s", json_string_value(v), json_string_value(v) + 11);
	} else if (json_is_string(v)) {
		snprintf(buf, len, "%s", json_string_value(v));
	} else if (json_is_integer(v)) {
		snprintf(buf, len, "%lld", (long long)json_integer_value(v));
	} else if (json_is_real(v)) {
		snprintf(buf, len, "%.1f", json_real_value(v));
	} else if (json_is_boolean(v)) {
		snprintf(buf, len, "%s", json_is_true(v) ? "yes" : "no");
	} else {
		text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | hr_json_reals(v));
		snprintf(buf, len, "%s", text != NULL ? text : "?");
		free(text);
	}
	defang(buf);
}

static void
print_cell(struct ctl *c, const char *text, enum ctl_fmt fmt, int width, bool last)
{
	const char *color = c->color && fmt == F_STATUS ? status_color(text) : NULL;
	int pad = width - text_width(text);

	printf("%s%s%s", color ? color : "", text, color ? RESET : "");
	if (!last)
		printf("%*s", (pad > 0 ? pad : 0) + 2, "");
}

static void
print_header(struct ctl *c, const struct ctl_column *cols, const int *widths)
{
	printf("%s", c->color ? BOLD : "");
	for (size_t i = 0; cols[i].title != NULL; i++)
		print_cell(c, cols[i].title, F_TEXT, widths[i], cols[i + 1].title == NULL);
	printf("%s\n", c->color ? RESET : "");
}

void
ctl_print_json(json_t *doc)
{
	size_t flags = JSON_COMPACT | JSON_ENCODE_ANY | hr_json_reals(doc);
	char *text;

	if (isatty(STDOUT_FILENO))
		flags |= JSON_ENSURE_ASCII;
	if ((text = json_dumps(doc, flags)) != NULL)
		printf("%s\n", text);
	free(text);
}

bool
ctl_verbatim(const struct ctl *c)
{
	return c->json && !isatty(STDOUT_FILENO);
}

/* JSON text (valid: jansson read it) as one line: a body as its sender wrote it
 * may be spread over lines, and the whitespace between its tokens goes. */
static void
print_line(const char *p, size_t n)
{
	bool in_string = false;

	for (size_t i = 0; i < n; i++) {
		if (in_string && p[i] == '\\') {
			putchar(p[i++]); /* the escaped character goes as it is */
		} else if (p[i] == '"') {
			in_string = !in_string;
		} else if (!in_string &&
		    (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r')) {
			continue;
		}
		if (i < n)
			putchar(p[i]);
	}
	putchar('\n');
}

void
ctl_print_text(const char *text, size_t len, const char *member, const char *raw)
{
	struct hr_dynbuf b;

	if (member == NULL) {
		print_line(text, len);
		return;
	}
	hr_dynbuf_init(&b, 0, SIZE_MAX - 1);
	if (hr_json_splice(&b, text, len, member, raw, strlen(raw)) == HR_OK)
		print_line(b.p, b.len);
	hr_dynbuf_free(&b);
}

/* Where each item ends, jansson says (JSON_DISABLE_EOF_CHECK: the bytes it read
 * of a value). Read as the whole page was (hr_json_load_wide(), whose mending
 * keeps every byte where it was). */
static bool
raw_item_end(const char *text, size_t len, size_t *at)
{
	json_error_t e;
	json_t *v = hr_json_load_wide(text + *at, len - *at, JSON_DISABLE_EOF_CHECK, &e);

	if (v == NULL || !json_is_object(v)) {
		json_decref(v);
		return false;
	}
	json_decref(v);
	*at += (size_t)e.position;
	return true;
}

bool
ctl_print_raw_items(const char *text, size_t len, const char *member)
{
	char head[96];
	size_t hlen = (size_t)snprintf(head, sizeof(head), "{\"%s\":[", member), at = hlen, n = 0;
	size_t(*spans)[2] = NULL;
	bool ok = hlen < sizeof(head) && len > hlen && memcmp(text, head, hlen) == 0;

	/* Every item found before any goes out: a text not as expected prints nothing. */
	while (ok && text[at] != ']') {
		size_t(*more)[2] = realloc(spans, (n + 1) * sizeof(*spans));

		if ((ok = more != NULL)) {
			spans = more;
			spans[n][0] = at;
			ok = raw_item_end(text, len, &at) && at < len &&
			    (text[at] == ',' || text[at] == ']');
			spans[n++][1] = at;
			at += ok && text[at] == ',';
		}
	}
	for (size_t i = 0; ok && i < n; i++)
		print_line(text + spans[i][0], spans[i][1] - spans[i][0]);
	free(spans);
	return ok;
}

/*
 * Each cell is formatted twice, once for the columns' widths and once to print
 * it, rather than kept: kept, 512 bytes a cell made a table of --all pages of
 * a large log run out of memory, and it printed nothing and exited 0 (a review).
 */
void
ctl_print_items(struct ctl *c, const struct ctl_column *cols, json_t *items)
{
	size_t ncols = 0, nrows = json_array_size(items), i;
	int widths[16] = { 0 };
	char cell[CELL_MAX];
	json_t *item;

	if (c->json) {
		json_array_foreach(items, i, item) ctl_print_json(item);
		return;
	}
	while (cols[ncols].title != NULL && ncols < CTL_LEN(widths))
		ncols++;
	for (size_t k = 0; k < ncols; k++)
		widths[k] = text_width(cols[k].title);
	json_array_foreach(items, i, item)
	{
		for (size_t k = 0; k < ncols; k++) {
			int w;

			ctl_cell(item, cols[k].key, cols[k].fmt, cell, CELL_MAX);
			if ((w = text_width(cell)) > widths[k])
				widths[k] = w;
		}
	}
	print_header(c, cols, widths);
	for (i = 0; i < nrows; i++) {
		for (size_t k = 0; k < ncols; k++) {
			ctl_cell(
			    json_array_get(items, i), cols[k].key, cols[k].fmt, cell, CELL_MAX);
			print_cell(c, cell, cols[k].fmt, widths[k], k + 1 == ncols);
		}
		printf("\n");
	}
}

void
ctl_print_row(struct ctl *c, const struct ctl_column *cols, json_t *item, bool *header_done)
{
	int widths[16] = { 0 };
	char cell[CELL_MAX];
	size_t k;

	if (c->json) {
		ctl_print_json(item);
		return;
	}
	for (k = 0; cols[k].title != NULL && k < CTL_LEN(widths); k++)
		widths[k] = cols[k].width > 0 ? cols[k].width : text_width(cols[k].title);
	if (!*header_done)
		print_header(c, cols, widths);
	*header_done = true;
	for (k = 0; cols[k].title != NULL && k < CTL_LEN(widths); k++) {
		ctl_cell(item, cols[k].key, cols[k].fmt, cell, sizeof(cell));
		print_cell(c, cell, cols[k].fmt, widths[k], cols[k + 1].title == NULL);
	}
	printf("\n");
}

void
ctl_print_fields(struct ctl *c, const struct ctl_column *cols, json_t *obj)
{
	char cell[CELL_MAX];
	int width = 0;

	for (size_t k = 0; cols[k].title != NULL; k++)
		if (text_width(cols[k].title) > width)
			width = text_width(cols[k].title);
	for (size_t k = 0; cols[k].title != NULL; k++) {
		char label[CELL_MAX];

		snprintf(label, sizeof(label), "%s:", cols[k].title);
		defang(label);
		ctl_cell(obj, cols[k].key, cols[k].fmt, cell, sizeof(cell));
		printf("%s%s%s%*s ", c->color ? BOLD : "", label, c->color ? RESET : "",
		    width + 1 - text_width(label), "");
		print_cell(c, cell, cols[k].fmt, 0, true);
		printf("\n");
	}
}

void
ctl_print_pretty(struct ctl *c, json_t *doc)
{
	ctl_print_pretty_indented(c, doc, 0);
}

void
ctl_print_pretty_indented(struct ctl *c, json_t *doc, int indent)
{
	char *text = json_dumps(
	    doc, JSON_INDENT(2) | JSON_ENCODE_ANY | JSON_ENSURE_ASCII | hr_json_reals(doc));

	(void)c;
	if (text == NULL)
		return;
	/* JSON_ENSURE_ASCII: no control character or newline inside a line */
	for (char *line = text, *end; line != NULL; line = end != NULL ? end + 1 : NULL) {
		end = strchr(line, '\n');
		printf("%*s%.*s\n", indent, "", end != NULL ? (int)(end - line) : (int)strlen(line),
		    line);
	}
	free(text);
}

void
ctl_print_heading(struct ctl *c, const char *text)
{
	printf("\n%s%s%s\n", c->color ? BOLD : "", text, c->color ? RESET : "");
}
