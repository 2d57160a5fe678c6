/* tests/unit/test_secretfile.c - the one reader of files of secrets. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "hr/secretfile.h"
#include "tmpdir.h"

struct fx {
	char dir[64];
	char path[128];
};

/* What the reader freed, checked byte by byte as it was handed to free(). */
static size_t freed, freed_dirty;

static void
on_free(const void *p, size_t n)
{
	const unsigned char *b = p;

	freed++;
	for (size_t i = 0; i < n; i++)
		if (b[i] != 0) {
			freed_dirty++;
			return;
		}
}

static int
setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));

	assert_non_null(fx);
	tmp_template(fx->dir, sizeof(fx->dir), "hr-secretfile-XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	snprintf(fx->path, sizeof(fx->path), "%s/secrets", fx->dir);
	freed = freed_dirty = 0;
	hr_secretfile_on_free = on_free;
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;

	hr_secretfile_on_free = NULL;
	unlink(fx->path);
	rmdir(fx->dir);
	free(fx);
	return 0;
}

static const char *
write_file(struct fx *fx, const char *data, size_t len)
{
	FILE *f = fopen(fx->path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	return fx->path;
}

#define WRITE(fx, lit) write_file((fx), (lit), sizeof(lit) - 1)

static void
reads_each_line_and_its_number(void **state)
{
	struct fx *fx = *state;
	struct hr_secretfile sf;
	struct hr_error err = { .field = "" };

	WRITE(fx, "# rotated in on Monday\nnew-secret\n\n  old-secret  \n");
	assert_int_equal(hr_secretfile_read(fx->path, 4, &sf, &err), HR_OK);
	assert_int_equal(sf.n, 2);
	assert_string_equal(sf.line[0], "new-secret");
	assert_int_equal(sf.lineno[0], 2);
	assert_string_equal(sf.line[1], "old-secret");
	assert_int_equal(sf.lineno[1], 4);
	hr_secretfile_clear(&sf);
	assert_int_equal(sf.n, 0);
	assert_null(sf.text);
}

/* A FIFO (or a device) is refused at once: its open() waited for a writer, and
 * a reload reading it held the main thread, its watchdog and SIGTERM (a review).
 * The alarm ends the run if the read hangs. */
static void
a_file_that_is_not_regular_is_refused_without_waiting(void **state)
{
	struct fx *fx = *state;
	struct hr_secretfile sf;
	struct hr_error err = { .field = "" };

	assert_int_equal(mkfifo(fx->path, 0600), 0);
	alarm(10);
	assert_int_equal(hr_secretfile_read(fx->path, 4, &sf, &err), HR_EINVAL);
	alarm(0);
	assert_non_null(strstr(err.msg, "not a regular file"));
	assert_int_equal(hr_secretfile_read("/dev/null", 4, &sf, &err), HR_EINVAL);
	assert_non_null(strstr(err.msg, "not a regular file"));
}

/* hookctl's reader takes a pipe: --token-file <(pass show hookrelay). */
static void
a_command_reads_a_fifo_when_its_writer_comes(void **state)
{
	struct fx *fx = *state;
	struct hr_secretfile sf;
	struct hr_error err = { .field = "" };
	pid_t child;
	int status = 0;

	assert_int_equal(mkfifo(fx->path, 0600), 0);
	if ((child = fork()) == 0) {
		int fd = open(fx->path, O_WRONLY);

		_exit(fd >= 0 && write(fd, "piped-token\n", 12) == 12 ? 0 : 1);
	}
	assert_true(child > 0);
	alarm(10);
	assert_int_equal(hr_secretfile_read_waiting(fx->path, 1, &sf, &err), HR_OK);
	alarm(0);
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_int_equal(status, 0);
	assert_int_equal(sf.n, 1);
	assert_string_equal(sf.line[0], "piped-token");
	hr_secretfile_clear(&sf);
}

/* An editor's byte order mark is not part of the first secret (it was: every
 * request then failed the token check, and the API token's length counted it). */
static void
a_byte_order_mark_is_not_part_of_the_secret(void **state)
{
	struct fx *fx = *state;
	struct hr_secretfile sf;
	struct hr_error err = { .field = "" };

	WRITE(fx, "\xef\xbb\xbfthe-secret\r\nsecond\r\n");
	assert_int_equal(hr_secretfile_read(fx->path, 4, &sf, &err), HR_OK);
	assert_int_equal(sf.n, 2);
	assert_string_equal(sf.line[0], "the-secret");
	assert_int_equal(sf.lineno[0], 1);
	assert_string_equal(sf.line[1], "second");
	hr_secretfile_clear(&sf);
}

static void
crlf_and_a_missing_final_newline_read_the_same(void **state)
{
	struct fx *fx = *state;
	struct hr_secretfile sf;
	struct hr_error err = { .field = "" };

	WRITE(fx, "first\r\n\t second\t\r\n\r\nthird");
	assert_int_equal(hr_secretfile_read(fx->path, 16, &sf, &err), HR_OK);
	assert_int_equal(sf.n, 3);
	assert_string_equal(sf.line[0], "first");
	assert_string_equal(sf.line[1], "second");
	assert_string_equal(sf.line[2], "third");
	assert_int_equal(sf.lineno[2], 4);
	hr_secretfile_clear(&sf);
}

static void
an_empty_file_or_only_comments_holds_none(void **state)
{
	struct fx *fx = *state;
	struct hr_secretfile sf;
	struct hr_error err = { .field = "" };

	write_file(fx, "", 0);
	assert_int_equal(hr_secretfile_read(fx->path, 1, &sf, &err), HR_OK);
	assert_int_equal(sf.n, 0);
	hr_secretfile_clear(&sf);
	WRITE(fx, "# nothing yet\n\n \t \r\n");
	assert_int_equal(hr_secretfile_read(fx->path, 1, &sf, &err), HR_OK);
	assert_int_equal(sf.n, 0);
	hr_secretfile_clear(&sf);
}

static void
more_secrets_than_the_limit_are_refused_not_dropped(void **state)
{
	struct fx *fx = *state;
	struct hr_secretfile sf;
	struct hr_error err = { .field = "" };
	char want[160];

	WRITE(fx, "s1\ns2\n# c\ns3\n");
	assert_int_equal(hr_secretfile_read(fx->path, 2, &sf, &err), HR_EINVAL);
	snprintf(want, sizeof(want), "%s:4", fx->path);
	assert_string_equal(err.field, want);
	assert_string_equal(err.msg, "more than 2 secrets");
	assert_int_equal(sf.n, 0);
	assert_null(sf.text);
	WRITE(fx, "token\nsecond\n");
	assert_int_equal(hr_secretfile_read(fx->path, 1, &sf, &err), HR_EINVAL);
	assert_string_equal(err.msg, "more than 1 secret");
	/* The limit itself is fine. */
	WRITE(fx, "s1\ns2\n");
	assert_int_equal(hr_secretfile_read(fx->path, 2, &sf, &err), HR_OK);
	assert_int_equal(sf.n, 2);
	hr_secretfile_clear(&sf);
}

static void
a_file_past_the_byte_limit_is_refused(void **state)
{
	struct fx *fx = *state;
	struct hr_secretfile sf;
	struct hr_error err = { .field = "" };
	char *big = malloc(HR_SECRETFILE_BYTES_MAX + 1);

	assert_non_null(big);
	memset(big, 'a', HR_SECRETFILE_BYTES_MAX + 1);
	big[HR_SECRETFILE_BYTES_MAX - 1] = '\n';
	write_file(fx, big, HR_SECRETFILE_BYTES_MAX); /* exactly the limit: read */
	assert_int_equal(hr_secretfile_read(fx->path, 1, &sf, &err), HR_OK);
	assert_int_equal(strlen(sf.line[0]), HR_SECRETFILE_BYTES_MAX - 1);
	hr_secretfile_clear(&sf);
	write_file(fx, big, HR_SECRETFILE_BYTES_MAX + 1); /* a byte more: refused */
	assert_int_equal(hr_secretfile_read(fx->path, 1, &sf, &err), HR_ETOOBIG);
	assert_string_equal(err.field, fx->path);
	assert_string_equal(err.msg, "larger than 65536 bytes");
	free(big);
}

static void
a_nul_byte_is_refused_at_its_line(void **state)
{
	struct fx *fx = *state;
	struct hr_secretfile sf;
	struct hr_error err = { .field = "" };
	char want[160];

	WRITE(fx, "ok\nsec\0ret\n");
	assert_int_equal(hr_secretfile_read(fx->path, 4, &sf, &err), HR_EINVAL);
	snprintf(want, sizeof(want), "%s:2", fx->path);
	assert_string_equal(err.field, want);
	assert_string_equal(err.msg, "a NUL byte: the file is not text");
}

static void
errors_name_the_file_never_its_text(void **state)
{
	struct fx *fx = *state;
	struct hr_secretfile sf;
	struct hr_error err = { .field = "" };

	assert_int_equal(hr_secretfile_read("/nonexistent/s", 1, &sf, &err), HR_EINVAL);
	assert_string_equal(err.field, "/nonexistent/s");
	assert_string_equal(err.msg, "cannot open: No such file or directory");
	assert_int_equal(hr_secretfile_read(fx->dir, 1, &sf, &err), HR_EINVAL);
	assert_string_equal(err.field, fx->dir);
	assert_string_equal(err.msg, "not a regular file");
	WRITE(fx, "hunter2-one\nhunter2-two\n");
	assert_int_equal(hr_secretfile_read(fx->path, 1, &sf, &err), HR_EINVAL);
	assert_null(strstr(err.field, "hunter2"));
	assert_null(strstr(err.msg, "hunter2"));
}

static void
a_long_path_keeps_its_end_in_the_field(void **state)
{
	char path[PATH_MAX], field[sizeof(((struct hr_error *)NULL)->field)];

	(void)state;
	memset(path, 'd', 300);
	snprintf(path + 300, sizeof(path) - 300, "/the.secret");
	hr_secretfile_where(path, 7, field, sizeof(field));
	assert_int_equal(strncmp(field, "...", 3), 0);
	assert_non_null(strstr(field, "/the.secret:7"));
	assert_true(strlen(field) < sizeof(field) - 1);
}

static void
the_limit_asked_for_is_bounded(void **state)
{
	struct fx *fx = *state;
	struct hr_secretfile sf;
	struct hr_error err = { .field = "" };

	WRITE(fx, "s\n");
	assert_int_equal(hr_secretfile_read(fx->path, 0, &sf, &err), HR_EINVAL);
	assert_int_equal(
	    hr_secretfile_read(fx->path, HR_SECRETFILE_LINES_MAX + 1, &sf, &err), HR_EINVAL);
	assert_int_equal(hr_secretfile_read(fx->path, HR_SECRETFILE_LINES_MAX, &sf, &err), HR_OK);
	hr_secretfile_clear(&sf);
}

/* Every buffer that held the file is zero when freed: after use, and on each refusal. */
static void
every_buffer_is_wiped_before_it_is_freed(void **state)
{
	struct fx *fx = *state;
	struct hr_secretfile sf;
	struct hr_error err = { .field = "" };

	WRITE(fx, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n");
	assert_int_equal(hr_secretfile_read(fx->path, 1, &sf, &err), HR_OK);
	hr_secretfile_clear(&sf);
	WRITE(fx, "one-secret\ntwo-secret\n"); /* too many */
	assert_int_equal(hr_secretfile_read(fx->path, 1, &sf, &err), HR_EINVAL);
	WRITE(fx, "a-secret\0b\n"); /* not text */
	assert_int_equal(hr_secretfile_read(fx->path, 1, &sf, &err), HR_EINVAL);
	assert_int_equal(hr_secretfile_read(fx->dir, 1, &sf, &err), HR_EINVAL); /* not a file */
	assert_int_equal(freed, 4);
	assert_int_equal(freed_dirty, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(reads_each_line_and_its_number, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    a_file_that_is_not_regular_is_refused_without_waiting, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    a_command_reads_a_fifo_when_its_writer_comes, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    a_byte_order_mark_is_not_part_of_the_secret, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    crlf_and_a_missing_final_newline_read_the_same, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    an_empty_file_or_only_comments_holds_none, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    more_secrets_than_the_limit_are_refused_not_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    a_file_past_the_byte_limit_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(a_nul_byte_is_refused_at_its_line, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    errors_name_the_file_never_its_text, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    a_long_path_keeps_its_end_in_the_field, setup, teardown),
		cmocka_unit_test_setup_teardown(the_limit_asked_for_is_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    every_buffer_is_wiped_before_it_is_freed, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
