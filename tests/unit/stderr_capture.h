/*
 * stderr_capture.h - the unit tests' look at what a call logs: stderr sent
 * to a pipe while it runs. Include after cmocka.h.
 */
#ifndef HR_TEST_STDERR_CAPTURE_H
#define HR_TEST_STDERR_CAPTURE_H

#include <unistd.h>

/* What run(arg) writes to stderr (at most size - 1 bytes, NUL-terminated);
 * something must come. */
static inline void
capture_stderr(void (*run)(void *), void *arg, char *out, size_t size)
{
	int fds[2], saved = dup(STDERR_FILENO);
	ssize_t n;

	assert_int_equal(pipe(fds), 0);
	assert_true(dup2(fds[1], STDERR_FILENO) >= 0);
	run(arg);
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	close(fds[1]);
	n = read(fds[0], out, size - 1);
	close(fds[0]);
	assert_true(n > 0);
	out[n] = '\0';
}

#endif
