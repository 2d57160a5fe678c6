/* log.h - one line per happening on stderr, with journald <N> priority prefixes. */
#ifndef HR_LOG_H
#define HR_LOG_H

#include <stdbool.h>
#include <stddef.h>

#include "hr/common.h"

enum hr_log_level { HR_LOG_ERR = 3, HR_LOG_WARNING = 4, HR_LOG_INFO = 6, HR_LOG_DEBUG = 7 };

void hr_log_set_level(enum hr_log_level);
/* "error", "warning", "info", "debug" -> level; -1 when unknown. */
int hr_log_level_parse(const char *name);

void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2))); /* + strerror */
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_errx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/*
 * `hookrelay -t` going on past an error: `next` becomes the error `held`
 * carries, the one it carried (when `*n` > 0) logged first, so errors come out
 * in the order they were found and the caller reports the last one as it
 * reports a single error. Counts them in `*n`. `n` NULL (a start, a reload:
 * the first error ends the load): `next` is copied into `held`, NULL is fine.
 */
void hr_log_hold_error(struct hr_error *held, size_t *n, const struct hr_error *next);
/* Start-up only: once serving, failures answer problem+json instead. */
void fatalx(int exit_code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));

#endif
