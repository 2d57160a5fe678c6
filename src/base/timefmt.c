/*
 * timefmt.c - provider timestamps, normalised to RFC 3339 UTC microseconds.
 *
 * Providers disagree on the format (SPEC.md section 8): Tavus conversations
 * send ISO-8601 with `Z`, Tavus videos a zone-less "YYYY-MM-DD HH:MM:SS.ffffff",
 * PailFlow a "+00:00" offset, Tavus transcripts sometimes epoch floats. A
 * small parser accepts exactly these shapes and checks every range, because
 * strptime() knows no fractions and timegm() silently normalises 31 February.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hr/timefmt.h"

#define US_PER_S     1000000LL
#define MIN_EPOCH_S  (-62135596800LL) /* 0001-01-01T00:00:00Z */
#define MAX_EPOCH_S  253402300799LL   /* 9999-12-31T23:59:59Z */
#define MAX_FRACTION 9                /* digits; nanoseconds at most */

/* Exactly `n` ASCII digits at *p, advancing it. */
static bool
take_digits(const char **p, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		char c = (*p)[i];

		if (c < '0' || c > '9')
			return false;
		v = v * 10 + (c - '0');
	}
	*p += n;
	*out = v;
	return true;
}

static bool
take_char(const char **p, char c)
{
	if (**p != c)
		return false;
	(*p)++;
	return true;
}

static int
days_in_month(int year, int month)
{
	static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

	return month == 2 && leap ? 29 : days[month - 1];
}

/* "YYYY-MM-DD" */
static bool
parse_date(const char **p, struct tm *tm)
{
	int y, m, d;

	if (!take_digits(p, 4, &y) || !take_char(p, '-') || !take_digits(p, 2, &m) ||
	    !take_char(p, '-') || !take_digits(p, 2, &d))
		return false;
	if (y < 1 || m < 1 || m > 12 || d < 1 || d > days_in_month(y, m))
		return false;
	tm->tm_year = y - 1900;
	tm->tm_mon = m - 1;
	tm->tm_mday = d;
	return true;
}

/* ".f" to ".fffffffff" -> microseconds, rounded half up (may be 1000000). */
static bool
parse_fraction(const char **p, int64_t *us)
{
	int64_t v = 0;
	int n = 0;

	*us = 0;
	if (**p != '.' && **p != ',')
		return true;
	(*p)++;
	for (; **p >= '0' && **p <= '9'; (*p)++, n++) {
		if (n == MAX_FRACTION)
			return false;
		v = v * 10 + (**p - '0');
	}
	if (n == 0)
		return false;
	for (; n < MAX_FRACTION; n++)
		v *= 10;
	*us = (v + 500) / 1000;
	return true;
}

/* "HH:MM:SS" plus an optional fraction; second 60 is a leap second. */
static bool
parse_clock(const char **p, struct tm *tm, int64_t *us)
{
	int h, m, s;

	if (!take_digits(p, 2, &h) || !take_char(p, ':') || !take_digits(p, 2, &m) ||
	    !take_char(p, ':') || !take_digits(p, 2, &s))
		return false;
	if (h > 23 || m > 59 || s > 60)
		return false;
	tm->tm_hour = h;
	tm->tm_min = m;
	tm->tm_sec = s;
	return parse_fraction(p, us);
}

/* "", "Z", "+HH:MM", "+HHMM" or "+HH" -> seconds east of UTC; must end the text. */
static bool
parse_zone(const char **p, int64_t *east)
{
	int sign, h, m = 0;

	*east = 0;
	if (**p == '\0')
		return true; /* zone-less: UTC assumed (Tavus video bodies) */
	if (**p == 'Z' || **p == 'z')
		return (*p)[1] == '\0';
	if (**p != '+' && **p != '-')
		return false;
	sign = **p == '-' ? -1 : 1;
	(*p)++;
	if (!take_digits(p, 2, &h))
		return false;
	if (**p != '\0') {
		take_char(p, ':');
		if (!take_digits(p, 2, &m))
			return false;
	}
	if (**p != '\0' || h > 23 || m > 59)
		return false;
	*east = sign * (h * 3600LL + m * 60LL);
	return true;
}

const char *
hr_time_raw(const struct hr_time *t)
{
	return t->text != NULL ? t->text : t->num;
}

/* Fill the normalised half of `out` from `us`, if it lies in years 1..9999. */
static int
set_us(struct hr_time *out, int64_t us)
{
	if (us < MIN_EPOCH_S * US_PER_S || us > MAX_EPOCH_S * US_PER_S + (US_PER_S - 1))
		return HR_EINVAL;
	out->us = us;
	out->valid = true;
	return HR_OK;
}

int
hr_time_parse_str(const char *s, struct hr_time *out)
{
	struct tm tm;
	const char *p = s;
	int64_t frac, east;
	time_t secs;

	memset(out, 0, sizeof(*out));
	if (s == NULL)
		return HR_EINVAL;
	out->text = s;
	memset(&tm, 0, sizeof(tm));
	if (!parse_date(&p, &tm))
		return HR_EINVAL;
	if (*p != 'T' && *p != 't' && *p != ' ')
		return HR_EINVAL;
	p++;
	if (!parse_clock(&p, &tm, &frac) || !parse_zone(&p, &east))
		return HR_EINVAL;
	secs = timegm(&tm); /* normalises second 60 into the next minute */
	return set_us(out, ((int64_t)secs - east) * US_PER_S + frac);
}

/* The shortest "%.Ng" text that reads back as `v`. */
static void
print_number(double v, char *buf, size_t len)
{
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(buf, len, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			return;
	}
}

int
hr_time_parse_epoch(double secs, struct hr_time *out)
{
	double whole, frac;

	memset(out, 0, sizeof(*out));
	print_number(secs, out->num, sizeof(out->num));
	if (!isfinite(secs) || secs < (double)MIN_EPOCH_S || secs >= (double)MAX_EPOCH_S + 1.0)
		return HR_EINVAL;
	/* Split first: secs * 1e6 would round at 1.7e15 before llround() does. */
	whole = floor(secs);
	frac = secs - whole;
	return set_us(out, (int64_t)whole * US_PER_S + llround(frac * 1e6));
}

const char *
hr_time_norm(const struct hr_time *t, char *buf, size_t len)
{
	if (!t->valid)
		return NULL;
	hr_time_format(t->us, buf, len);
	return buf;
}

void
hr_time_format(int64_t us, char *buf, size_t len)
{
	int64_t secs = us / US_PER_S, frac = us % US_PER_S;
	struct tm tm;
	time_t t;

	if (frac < 0) {
		frac += US_PER_S;
		secs--;
	}
	t = (time_t)secs;
	if (gmtime_r(&t, &tm) == NULL) {
		snprintf(buf, len, "%s", "");
		return;
	}
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900, tm.tm_mon + 1,
	    tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)frac);
}

int64_t
hr_time_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * US_PER_S + ts.tv_nsec / 1000;
}

int64_t
hr_time_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
hr_time_thread_cpu_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * US_PER_S + ts.tv_nsec / 1000;
}
