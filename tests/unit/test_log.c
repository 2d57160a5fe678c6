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
#include <unistd.h>

#include <cmocka.h>

#include "hr/log.h"

/* What one log_warnx(fmt, arg) writes to stderr. */
static void
logged(const char *arg, char *out, size_t size)
{
	int fds[2], saved = dup(STDERR_FILENO);
	ssize_t n;

	assert_int_equal(pipe(fds), 0);
	assert_true(dup2(fds[1], STDERR_FILENO) >= 0);
	log_warnx("quoted: %s", arg);
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	close(fds[1]);
	n = read(fds[0], out, size - 1);
	close(fds[0]);
	assert_true(n > 0);
	out[n] = '\0';
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_quoted_newline_cannot_start_a_line),
		cmocka_unit_test(escape_sequences_do_not_reach_a_terminal),
	};

	hr_log_set_level(HR_LOG_DEBUG);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
