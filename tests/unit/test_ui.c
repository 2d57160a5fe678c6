/* tests/unit/test_ui.c - the inspector's embedded files (src/handlers/ui.c, cmake/embed.cmake). */
#include <dirent.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hr/event.h"
#include "hr/ui.h"

#define UI_DIR HR_SOURCE_DIR "/ui"

static char *
read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (buf = malloc((size_t)n + 1)) != NULL) {
		*len = fread(buf, 1, (size_t)n, f);
		buf[*len] = '\0';
	}
	fclose(f);
	return buf;
}

/* The asset as a C string (the generator ends each array with a NUL). */
static const char *
asset_text(const char *name)
{
	const struct hr_ui_asset *a = hr_ui_asset_find(name);

	assert_non_null(a);
	assert_int_equal(a->data[a->len], '\0');
	return (const char *)a->data;
}

static void
every_file_of_ui_is_embedded_byte_for_byte(void **state)
{
	DIR *d = opendir(UI_DIR);
	struct dirent *de;
	int files = 0;

	(void)state;
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		char path[4096];
		const struct hr_ui_asset *a;
		size_t len = 0;
		char *disk;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", UI_DIR, de->d_name);
		disk = read_file(path, &len);
		assert_non_null(disk);
		a = hr_ui_asset_find(de->d_name);
		if (a == NULL)
			fail_msg("ui/%s is not embedded", de->d_name);
		assert_int_equal(a->len, len);
		assert_memory_equal(a->data, disk, len);
		free(disk);
		files++;
	}
	closedir(d);
	assert_true(files >= 5);
}

static void
every_asset_has_a_content_type(void **state)
{
	(void)state;
	for (const struct hr_ui_asset *a = hr_ui_assets; a->name != NULL; a++)
		if (hr_ui_content_type(a->name) == NULL)
			fail_msg("ui/%s: no Content-Type for its extension (src/handlers/ui.c)",
			    a->name);
	assert_string_equal(hr_ui_content_type("app.js"), "text/javascript; charset=utf-8");
	assert_string_equal(hr_ui_content_type("index.html"), "text/html; charset=utf-8");
	assert_null(hr_ui_content_type("notes.txt"));
	assert_null(hr_ui_content_type("Makefile"));
}

static void
unknown_asset_is_not_found(void **state)
{
	(void)state;
	assert_null(hr_ui_asset_find("nope.js"));
	assert_null(hr_ui_asset_find("../CMakeLists.txt"));
	assert_null(hr_ui_asset_find(""));
	assert_non_null(hr_ui_asset_find("index.html"));
}

/* The kind filter offers every kind the API accepts (ui/events.js KINDS). */
static void
kind_list_of_the_page_matches_the_kind_table(void **state)
{
	const char *js = asset_text("events.js");

	(void)state;
	for (int k = 0; k < HR_KIND_COUNT; k++) {
		char quoted[128];

		snprintf(quoted, sizeof(quoted), "'%s',", hr_kind_name((enum hr_kind)k));
		if (strstr(js, quoted) == NULL)
			fail_msg("ui/events.js KINDS lacks %s", quoted);
	}
}

/*
 * Safe by construction: no script turns a string into markup or code, and
 * the page has no inline script or style for the CSP to have to allow.
 */
static void
no_script_parses_strings_as_html_or_code(void **state)
{
	static const char *const sinks[] = { "innerHTML", "outerHTML", "insertAdjacentHTML",
		"document.write", "eval(", "new Function", "setAttribute('style'", "DOMParser",
		"createContextualFragment", NULL };

	(void)state;
	for (const struct hr_ui_asset *a = hr_ui_assets; a->name != NULL; a++) {
		const char *dot = strrchr(a->name, '.');

		if (dot == NULL || strcmp(dot, ".js") != 0)
			continue;
		for (const char *const *s = sinks; *s != NULL; s++)
			if (strstr((const char *)a->data, *s) != NULL)
				fail_msg("ui/%s uses %s", a->name, *s);
	}
}

/* An event handler attribute: " on" + letters + "=" (onclick=, onerror=, ...). */
static bool
has_handler_attribute(const char *html)
{
	for (const char *p = html; (p = strstr(p, " on")) != NULL; p++) {
		const char *q = p + 3;

		while (*q >= 'a' && *q <= 'z')
			q++;
		if (q > p + 3 && *q == '=')
			return true;
	}
	return false;
}

static void
page_has_no_inline_script_or_style(void **state)
{
	const char *html = asset_text("index.html");
	const char *p = html;

	(void)state;
	while ((p = strstr(p, "<script")) != NULL) {
		const char *end = strchr(p, '>');

		assert_non_null(end);
		if (strstr(p, " src=") == NULL || strstr(p, " src=") > end)
			fail_msg("index.html: a <script> without src");
		assert_string_equal(end + 1 == strstr(end, "</script>") ? "" : "inline", "");
		p = end;
	}
	assert_null(strstr(html, "<style"));
	assert_null(strstr(html, "style="));
	assert_false(has_handler_attribute(html));
	assert_true(has_handler_attribute("<a onclick=x>")); /* the check itself */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_file_of_ui_is_embedded_byte_for_byte),
		cmocka_unit_test(every_asset_has_a_content_type),
		cmocka_unit_test(unknown_asset_is_not_found),
		cmocka_unit_test(kind_list_of_the_page_matches_the_kind_table),
		cmocka_unit_test(no_script_parses_strings_as_html_or_code),
		cmocka_unit_test(page_has_no_inline_script_or_style),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
