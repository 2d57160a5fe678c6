/* timefmt.h - the timestamp formats providers send, normalised to RFC 3339 UTC. */
#ifndef HR_TIMEFMT_H
#define HR_TIMEFMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hr/common.h"

/* A timestamp as received, and the instant it names. */
struct hr_time {
	bool valid;       /* false: absent, null or unparseable (its text kept) */
	int64_t us;       /* microseconds since the Unix epoch, UTC */
	const char *text; /* as received: the parsed string, borrowed; NULL for a number */
	char num[32];     /* a number as printed */
};

/* The timestamp as received, whole: its text (which must outlive `t`), or the
 * number as printed; "" for none. A fixed buffer cut JavaScript's Date text. */
const char *hr_time_raw(const struct hr_time *t);

/*
 * The RFC 3339 UTC text of a valid `t` ("2025-07-11T06:45:47.472000Z") in
 * `buf` (at least 32 bytes), returned; NULL if `t` is not valid. Made when it
 * is shown, not when the timestamp is parsed: most never are.
 */
const char *hr_time_norm(const struct hr_time *t, char *buf, size_t len);

/*
 * Parse a provider timestamp into `out` (`s` kept as its text: borrowed). Accepts
 * ISO-8601 with `Z` or a numeric offset ("+00:00", "+0000"), a space or `T`
 * between date and time, 0-9 fraction digits, and the zone-less Tavus video
 * form "2024-08-28 15:27:40.824457" (UTC assumed). Returns HR_OK or HR_EINVAL.
 */
int hr_time_parse_str(const char *s, struct hr_time *out);
/* An epoch number of seconds, possibly fractional (1786505572.3161497). */
int hr_time_parse_epoch(double secs, struct hr_time *out);
/* Microseconds since the epoch -> "YYYY-MM-DDTHH:MM:SS.ffffffZ" (buf >= 32). */
void hr_time_format(int64_t us, char *buf, size_t len);
/* Wall clock now, microseconds since the epoch. */
int64_t hr_time_now_us(void);
/* CLOCK_MONOTONIC in microseconds (for sd_notify MONOTONIC_USEC and intervals). */
int64_t hr_time_mono_us(void);
/* CPU time the calling thread used so far, in microseconds. */
int64_t hr_time_thread_cpu_us(void);

#endif
