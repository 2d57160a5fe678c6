/*
 * log.c - log lines on stderr.
 *
 * Each line starts with a "<N>" syslog priority so journald (SyslogLevelPrefix,
 * on by default for services) files it at the right level; outside systemd the
 * prefix is still a cheap, greppable severity. On a terminal (scripts/run,
 * hookrelay -t by hand) it is a word instead. One write(2) per line keeps lines
 * from different threads whole.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "hr/common.h"
#include "hr/log.h"

/* A reload sets it while other threads log (ThreadSanitizer: volatile is no atomic). */
static atomic_int log_level = HR_LOG_INFO;

void
hr_log_set_level(enum hr_log_level level)
{
	atomic_store_explicit(&log_level, (int)level, memory_order_relaxed);
}

int
hr_log_level_parse(const char *name)
{
	static const struct {
		const char *name;
		enum hr_log_level level;
	} names[] = {
		{ "error", HR_LOG_ERR },
		{ "warning", HR_LOG_WARNING },
		{ "info", HR_LOG_INFO },
		{ "debug", HR_LOG_DEBUG },
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(name, names[i].name) == 0)
			return (int)names[i].level;
	return -1;
}

static void vlog(int, int, const char *, va_list) __attribute__((format(printf, 3, 0)));

static void
vlog(int level, int errnum, const char *fmt, va_list ap)
{
	char line[2048];
	int n, m;

	if (level > atomic_load_explicit(&log_level, memory_order_relaxed))
		return;
	if (isatty(STDERR_FILENO)) /* an ioctl a line: lines come in moderation */
		n = snprintf(line, sizeof(line), "%s: ",
		    level <= HR_LOG_ERR           ? "error"
		        : level <= HR_LOG_WARNING ? "warning"
		        : level <= HR_LOG_INFO    ? "info"
		                                  : "debug");
	else
		n = snprintf(line, sizeof(line), "<%d>", level);
	m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	if (m < 0)
		return;
	n += m;
	if ((size_t)n >= sizeof(line) - 1) { /* truncated: said, and still one whole line */
		n = (int)sizeof(line) - 5;
		memcpy(line + n, "...", 3);
		n += 3;
	}
	if (errnum != 0)
		n += snprintf(line + n, sizeof(line) - 1 - (size_t)n, ": %s", strerror(errnum));
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	/* A message may quote what a sender chose (a JSON key in a refusal, a header):
	 * no line of the sender's own, with a "<3>" journald believes, no escape. */
	hr_scrub_controls(line, (size_t)n, true);
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, (size_t)n);
}

#define LOG_FN(fname, level, with_errno)                                                           \
	void fname(const char *fmt, ...)                                                           \
	{                                                                                          \
		int saved = errno;                                                                 \
		va_list ap;                                                                        \
		va_start(ap, fmt);                                                                 \
		vlog(level, with_errno ? saved : 0, fmt, ap);                                      \
		va_end(ap);                                                                        \
		errno = saved;                                                                     \
	}

LOG_FN(log_warn, HR_LOG_WARNING, 1)
LOG_FN(log_warnx, HR_LOG_WARNING, 0)
LOG_FN(log_errx, HR_LOG_ERR, 0)
LOG_FN(log_info, HR_LOG_INFO, 0)
LOG_FN(log_debug, HR_LOG_DEBUG, 0)

void
hr_log_hold_error(struct hr_error *held, size_t *n, const struct hr_error *next)
{
	if (held == NULL)
		return;
	if (n != NULL && (*n)++ > 0)
		log_errx("%s: %s", held->field, held->msg);
	*held = *next;
}

void
fatalx(int exit_code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(HR_LOG_ERR, 0, fmt, ap);
	va_end(ap);
	exit(exit_code);
}
