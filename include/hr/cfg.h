/*
 * cfg.h - the configuration file (INI, libinih) as a struct hr_cfg.
 *
 * One option table (cfg.c) drives parsing, defaults, validation, `--help`
 * and docs/configuration.md, so they cannot drift apart.
 */
#ifndef HR_CFG_H
#define HR_CFG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "hr/common.h"
#include "hr/event.h"

#define HR_EX_CONFIG 78 /* sysexits.h EX_CONFIG: exit code for a bad config */
#define HR_NAME_MAX  64

/* [source NAME]: one inbound endpoint, POST /hooks/NAME. */
struct hr_source_cfg {
	char name[HR_NAME_MAX];
	enum hr_provider provider; /* auto: classify every body */
};

struct hr_cfg {
	char file[PATH_MAX]; /* the file it was read from, "" for defaults */

	/* [server] */
	char listen[128];           /* "127.0.0.1:8080", "[::1]:8080"; port 0 picks a free one */
	size_t max_body;            /* bytes; larger bodies answer 413 */
	int64_t request_timeout_ms; /* idle connection / slow client cut-off */
	unsigned threads;           /* MHD worker threads */
	unsigned max_connections;   /* global connection cap */
	size_t max_depth;           /* JSON nesting bound */
	size_t max_object_keys;     /* keys per JSON object */
	size_t max_string;          /* bytes per JSON string */

	/* [storage] */
	char db_path[PATH_MAX];
	unsigned batch_max;      /* events per group-commit transaction */
	unsigned queue_max;      /* writer queue bound; past it ingest answers 503 */
	unsigned rejections_max; /* rows kept in the rejections table */

	/* [api] */
	char token_file[PATH_MAX]; /* "" = loopback clients only, no token */

	/* [log] */
	int log_level; /* enum hr_log_level */

	struct hr_source_cfg *sources; /* owned array */
	size_t nsources;
};

/*
 * Read `path` into a new config (defaults for what it does not set). On
 * failure returns HR_EINVAL (or HR_ENOMEM) and err->field is "file:line"
 * (just "file" when the file cannot be opened), err->msg the reason.
 */
int hr_cfg_load(const char *path, struct hr_cfg **out, struct hr_error *err) HR_WUR;
/* Same, from a string (tests); `name` stands in for the file name in errors. */
int hr_cfg_load_string(
    const char *text, const char *name, struct hr_cfg **out, struct hr_error *err) HR_WUR;
/* A config holding only defaults (no sources); NULL on ENOMEM. */
struct hr_cfg *hr_cfg_new_defaults(void);
void hr_cfg_free(struct hr_cfg *); /* NULL is fine */

/* The source named `name`, or NULL. */
const struct hr_source_cfg *hr_cfg_source(const struct hr_cfg *, const char *name);

/* The option table rendered for `hookrelay --help` and as docs/configuration.md. */
void hr_cfg_print_help(FILE *);
void hr_cfg_print_markdown(FILE *);
/* The effective configuration in config file syntax, every key (e.g. for `-t -v`). */
void hr_cfg_print(FILE *, const struct hr_cfg *);

/* Parsers shared with the command line, e.g. --listen. Return HR_OK or HR_EINVAL. */
int hr_cfg_parse_size(const char *s, size_t *out);         /* "8MiB", "512k", "1024" */
int hr_cfg_parse_duration_ms(const char *s, int64_t *out); /* "250ms", "0.2s", "5m", "2h", "30d" */

#ifdef HR_TESTING
/* The i-th option's key and its section's name; NULL past the end. */
const char *cfg_option_key(size_t i, const char **section);
/* 0 if the option table is consistent, else 1 + the index of the first bad line. */
int cfg_table_check(void);
#endif

#endif
