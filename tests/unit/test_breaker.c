/*
 * tests/unit/test_breaker.c - a destination's circuit breaker: it opens after
 * breaker_failures in a row, sends one probe alone after the cooldown, and a
 * probe that fails doubles the cooldown; the line saying it opened names the
 * last error and the cooldown in seconds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "hr/cfg.h"
#include "hr/log.h"

#include "../../src/flow/forward_int.h"
#include "stderr_capture.h"

#define S INT64_C(1000000)

static const struct hr_destination_cfg cfg = {
	.name = "d", .breaker_failures = 2, .breaker_cooldown_ms = 1000
};

/* Two failures at t0: open until t0 + 1 s. */
static void
open_at(struct breaker *b, int64_t t0)
{
	hr_breaker_init(b, &cfg);
	hr_breaker_update(b, &cfg, false, "HTTP 500", t0);
	hr_breaker_update(b, &cfg, false, "HTTP 500", t0);
	assert_int_equal(b->state, HR_BREAKER_OPEN);
	assert_int_equal(b->probe_at_us, t0 + S);
}

static void
the_probe_goes_alone_after_the_cooldown(void **state)
{
	struct breaker b;
	int64_t t0 = 100 * S;

	(void)state;
	open_at(&b, t0);
	assert_int_equal(hr_breaker_room(&b, "d", 8, 0, t0 + S / 2), 0);
	assert_int_equal(hr_breaker_room(&b, "d", 8, 0, t0 + S), 1);
	assert_int_equal(b.state, HR_BREAKER_HALF_OPEN);
	hr_breaker_update(&b, &cfg, false, "HTTP 500", t0 + S + 1); /* the probe failed */
	assert_int_equal(b.state, HR_BREAKER_OPEN);
	assert_int_equal(b.cooldown_us, 2 * S);
	assert_int_equal(hr_breaker_room(&b, "d", 8, 0, t0 + 3 * S + 1), 1);
	hr_breaker_update(&b, &cfg, true, NULL, t0 + 3 * S + 2); /* answered: closed */
	assert_int_equal(b.state, HR_BREAKER_CLOSED);
	assert_int_equal(b.cooldown_us, S);
	assert_int_equal(hr_breaker_room(&b, "d", 8, 3, t0 + 3 * S + 3), 5);
}

/* A review: an attempt that began before the breaker opened was still out when
 * the cooldown ended; the breaker went half-open with no room for a probe, and
 * that attempt's failure was taken for the probe's, doubling the cooldown with
 * no probe sent. The probe now waits for it. */
static void
an_attempt_still_out_is_not_taken_for_the_probe(void **state)
{
	struct breaker b;
	int64_t t0 = 100 * S;

	(void)state;
	open_at(&b, t0);
	assert_int_equal(hr_breaker_room(&b, "d", 8, 1, t0 + S), 0);
	assert_int_equal(b.state, HR_BREAKER_OPEN);
	hr_breaker_update(&b, &cfg, false, "HTTP 500", t0 + S + S / 2); /* the old attempt failed */
	assert_int_equal(b.state, HR_BREAKER_OPEN);
	assert_int_equal(b.cooldown_us, S);                                  /* not doubled */
	assert_int_equal(hr_breaker_room(&b, "d", 8, 0, t0 + S + S / 2), 1); /* the probe */
	assert_int_equal(b.state, HR_BREAKER_HALF_OPEN);
}

/* A reload's new cooldown applies to a closed breaker's next opening (it kept
 * the old one until the breaker next closed: a review). */
static void
a_reload_sets_a_closed_breakers_cooldown(void **state)
{
	static const struct hr_destination_cfg slow = {
		.name = "d", .breaker_failures = 2, .breaker_cooldown_ms = 600000
	};
	struct breaker b;
	int64_t t0 = 100 * S;

	(void)state;
	hr_breaker_init(&b, &slow);
	hr_breaker_configure(&b, &cfg); /* 10 min -> 1 s */
	hr_breaker_update(&b, &cfg, false, "HTTP 500", t0);
	hr_breaker_update(&b, &cfg, false, "HTTP 500", t0);
	assert_int_equal(b.state, HR_BREAKER_OPEN);
	assert_int_equal(b.probe_at_us, t0 + S);
}

struct second_failure {
	struct breaker b;
	const struct hr_destination_cfg *c;
	const char *last_error;
};

static void
fail_again(void *arg)
{
	struct second_failure *f = arg;

	hr_log_set_level(HR_LOG_WARNING);
	hr_breaker_update(&f->b, f->c, false, f->last_error, 100 * S);
	hr_log_set_level(HR_LOG_ERR);
}

/* What the second of two failures at t0 logs (at warning), with `last_error`. */
static void
opening_logs(const struct hr_destination_cfg *c, const char *last_error, char *out, size_t size)
{
	struct second_failure f = { .c = c, .last_error = last_error };

	hr_breaker_init(&f.b, c);
	hr_breaker_update(&f.b, c, false, last_error, 100 * S);
	capture_stderr(fail_again, &f, out, size);
}

/* A log review: the line gave no reason and "next probe in 30000 ms". */
static void
the_opening_names_the_last_error_and_the_cooldown_in_seconds(void **state)
{
	static const struct hr_destination_cfg slow = {
		.name = "d", .breaker_failures = 2, .breaker_cooldown_ms = 30000
	};
	char line[512];

	(void)state;
	opening_logs(
	    &slow, "Failed to connect to 127.0.0.1 port 9: Connection refused", line, sizeof(line));
	assert_string_equal(line,
	    "<4>forward: destination d: breaker open after 2 consecutive failures, the last: "
	    "Failed to connect to 127.0.0.1 port 9: Connection refused; next probe in 30 s\n");
	opening_logs(&cfg, "HTTP 503", line, sizeof(line));
	assert_non_null(strstr(line, "the last: HTTP 503; next probe in 1 s\n"));
}

/* The error comes from the network (a receiver's text in libcurl's message): it
 * cannot break the line. */
static void
the_last_error_cannot_break_the_line(void **state)
{
	static const struct hr_destination_cfg fast = {
		.name = "d", .breaker_failures = 2, .breaker_cooldown_ms = 300
	};
	char line[512];

	(void)state;
	opening_logs(&fast, "bad\n<3>FORGED \xe2\x80\xa8", line, sizeof(line));
	assert_non_null(strstr(line, "the last: bad?<3>FORGED ???; next probe in 0.3 s\n"));
	assert_ptr_equal(strchr(line, '\n'), line + strlen(line) - 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(the_probe_goes_alone_after_the_cooldown),
		cmocka_unit_test(an_attempt_still_out_is_not_taken_for_the_probe),
		cmocka_unit_test(a_reload_sets_a_closed_breakers_cooldown),
		cmocka_unit_test(the_opening_names_the_last_error_and_the_cooldown_in_seconds),
		cmocka_unit_test(the_last_error_cannot_break_the_line),
	};

	hr_log_set_level(HR_LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
