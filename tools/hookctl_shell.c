/*
 * hookctl_shell.c - what hookctl prints for a shell to run: a body as a printf
 * format (the exact bytes, safe to paste), a word in single quotes, and the
 * callback URL's query put back on a /hooks path (events show --curl).
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hookctl.h"

/*
 * The body as a printf format in single quotes: only printable ASCII is
 * literal; \ and % are doubled, ' closes and reopens the quotes, newline, tab
 * and CR are \n, \t, \r and every other byte a three-digit octal escape. One line, exact bytes
 * (printf adds no newline), nothing the shell or a terminal paste could reinterpret.
 */
void
ctl_print_printf_quoted(const char *body, size_t len)
{
	fputs("printf -- '", stdout);
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)body[i];

		if (ch == '\'')
			fputs("'\\''", stdout);
		else if (ch == '\\' || ch == '%')
			printf("%c%c", ch, ch);
		else if (ch >= 0x20 && ch < 0x7f)
			putchar(ch);
		else if (ch == '\n' || ch == '\t' || ch == '\r')
			printf("\\%c", ch == '\n' ? 'n' : ch == '\t' ? 't' : 'r');
		else
			printf("\\%03o", ch);
	}
	putchar('\'');
}

void
ctl_print_shell_word(const char *text)
{
	putchar('\'');
	for (; *text != '\0'; text++) {
		if (*text == '\'')
			fputs("'\\''", stdout);
		else
			putchar(*text);
	}
	putchar('\'');
}

/* The callback URL's parameters, as the event keeps them (a value, or the
 * values of a repeated name), back on `hook`: they are part of what was sent
 * and of the byte dedup key (a review: the command re-posted without them). */
void
ctl_path_add_callback_query(struct ctl_path *hook, json_t *query)
{
	const char *name;
	json_t *v, *item;
	size_t i;

	json_object_foreach(query, name, v)
	{
		char *esc = curl_easy_escape(NULL, name, 0);

		if (esc == NULL) {
			hook->overflow = true;
			return;
		}
		if (json_is_string(v))
			ctl_path_add(hook, esc, json_string_value(v));
		for (i = 0; i < json_array_size(v); i++)
			if (json_is_string(item = json_array_get(v, i)))
				ctl_path_add(hook, esc, json_string_value(item));
		curl_free(esc);
	}
}
