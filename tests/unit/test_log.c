/*
 * tests/unit/test_log.c - a log line is one line, whatever a message quotes:
 * no newline or carriage return to start a forged line (with its own "<3>"
 * that journald believes), no ESC or C1 CSI for the reader's terminal.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <poll.h>
#include <pty.h>
#include <unistd.h>

#include <cmocka.h>

#include "hr/log.h"
#include "stderr_capture.h"

static void
warn_quoted(void *arg)
{
	log_warnx("quoted: %s", (const char *)arg);
}

/* What one log_warnx(fmt, arg) writes to stderr. */
static void
logged(const char *arg, char *out, size_t size)
{
	capture_stderr(warn_quoted, (void *)arg, out, size);
}

static void
a_quoted_newline_cannot_start_a_line(void **state)
{
	char line[256];

	(void)state;
	logged("key\n<3>FORGED\r line", line, sizeof(line));
	assert_string_equal(line, "<4>quoted: key?<3>FORGED? line\n");
}

static void
escape_sequences_do_not_reach_a_terminal(void **state)
{
	char line[256];

	(void)state;
	logged("\x1b[31mred \xc2\x9b"
	       "31m \x7f tab\there caf\xc3\xa9",
	    line, sizeof(line));
	assert_string_equal(line, "<4>quoted: ?[31mred ??31m ? tab\there caf\xc3\xa9\n");
}

/* A line over the buffer says it was cut, and is still one line. */
static void
a_line_too_long_is_cut_visibly(void **state)
{
	static char arg[4000], line[8192];

	(void)state;
	memset(arg, 'x', sizeof(arg) - 1);
	logged(arg, line, sizeof(line));
	assert_int_equal(strlen(line), 2047);
	assert_string_equal(line + 2043, "...\n");
	assert_null(strchr(line, '\n') != line + 2046 ? line : NULL);
}

/* By hand on a terminal (scripts/run, hookrelay -t) the level is a word, not "<4>". */
static void
on_a_terminal_the_level_is_a_word(void **state)
{
	int master, slave, saved = dup(STDERR_FILENO);
	char line[256];
	size_t n = 0;

	(void)state;
	if (openpty(&master, &slave, NULL, NULL, NULL) != 0)
		skip();
	assert_true(dup2(slave, STDERR_FILENO) >= 0);
	log_warnx("quoted: %s", "x");
	log_errx("broken");
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	close(slave);
	while (n < sizeof(line) - 1) { /* both lines, in one read or more */
		struct pollfd p = { master, POLLIN, 0 };
		ssize_t got;

		if (poll(&p, 1, 1000) != 1 ||
		    (got = read(master, line + n, sizeof(line) - 1 - n)) <= 0)
			break;
		n += (size_t)got;
		line[n] = '\0';
		if (strstr(line, "broken") != NULL)
			break;
	}
	close(master);
	line[n] = '\0';
	/* the terminal's line discipline writes \r\n */
	assert_string_equal(line, "warning: quoted: x\r\nerror: broken\r\n");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_quoted_newline_cannot_start_a_line),
		cmocka_unit_test(escape_sequences_do_not_reach_a_terminal),
		cmocka_unit_test(a_line_too_long_is_cut_visibly),
		cmocka_unit_test(on_a_terminal_the_level_is_a_word),
	};

	hr_log_set_level(HR_LOG_DEBUG);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
