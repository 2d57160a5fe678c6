/* log.h - one line per happening on stderr, with journald <N> priority prefixes. */
#ifndef HR_LOG_H
#define HR_LOG_H

#include <stdbool.h>

enum hr_log_level { HR_LOG_ERR = 3, HR_LOG_WARNING = 4, HR_LOG_INFO = 6, HR_LOG_DEBUG = 7 };

void hr_log_set_level(enum hr_log_level);
/* "error", "warning", "info", "debug" -> level; -1 when unknown. */
int hr_log_level_parse(const char *name);

void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2))); /* + strerror */
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_errx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Start-up only: once serving, failures answer problem+json instead. */
void fatalx(int exit_code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));

#endif
