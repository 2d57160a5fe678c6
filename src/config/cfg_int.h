/*
 * cfg_int.h - what the configuration files share, private to them.
 *
 * The configuration is one table read five ways, a file each: the table and
 * the struct it fills (cfg_table.c), the value types (cfg_values.c), the file
 * reader around libinih (cfg_reader.c), the warnings of `hookrelay -t`
 * (cfg_lint.c) and the rendered docs (cfg_docs.c). This header holds the
 * table's types and the few calls that cross between them; nothing outside
 * those files includes it. Like cfg.h, it depends on base headers only.
 */
#ifndef HR_CFG_INT_H
#define HR_CFG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "hr/cfg.h"

#define KiB (INT64_C(1) << 10)
#define MiB (INT64_C(1) << 20)
#define GiB (INT64_C(1) << 30)

#define SEC_MS  INT64_C(1000)
#define MIN_MS  (60 * SEC_MS)
#define HOUR_MS (60 * MIN_MS)
#define DAY_MS  (24 * HOUR_MS)

#define LINE_MAX_BYTES 8192          /* inih's line buffer, '\n' and '\0' included */
#define WHY_MAX        200           /* reason text, without the "FILE:LINE" */
#define NAMED_MAX      1024          /* instances of one named section kind */
#define DURLIST_MAX_MS (30 * DAY_MS) /* bound of each entry of a duration list */
#define FLOAT_FRAC_MAX 6             /* digits after the point in a number */

enum opt_type {
	T_STR,
	T_PATH,
	T_INT,
	T_SIZE,
	T_DURATION,
	T_BOOL,
	T_ENUM,
	T_ADDR,
	T_FLOAT,   /* double: "10", "0.5" */
	T_STRLIST, /* struct hr_strlist: "a, b, c"; min..max bound the number of items */
	T_DURLIST, /* struct hr_durlist: "0s, 5s, 5m"; min..max bound the number of items */
	T_COUNT
};

/* Option flags. */
#define O_REPEAT   0x1u /* T_STRLIST: each line of the key adds one item, commas and all */
#define O_REQUIRED 0x2u /* named sections: the key must be set; `def` is "" */
#define O_SECRET   0x4u /* T_PATH: a file of secrets; a warning if every user may read it */
#define O_NAMED    0x8u /* O_REPEAT of "Name: value" items: a name (any case) is set once */

struct choice {
	const char *name;
	int value;
};

struct parser;
struct inst_lines;

/* Cross-key checks of one section instance once the file is read; report with fail_at(). */
typedef void (*finish_fn)(struct parser *, const struct inst_lines *, const void *inst);

/*
 * A plain section fills struct hr_cfg itself. A named one ([source NAME])
 * appends an element of `size` bytes to the array at `array_off`, counted
 * by the size_t at `count_off`; the NAME goes to the char[HR_NAME_MAX] at
 * `name_off` of the element.
 */
struct section {
	const char *name;
	const char *help;
	size_t size; /* 0: plain section */
	size_t array_off, count_off, name_off;
	finish_fn finish; /* named sections only; NULL when there is nothing to check */
	size_t max;       /* named sections only: at most this many */
};

/* Accept the text of one value or list item, or explain in `why` (no key prefix). */
typedef int (*check_fn)(const char *text, char *why, size_t len);

struct option {
	int section; /* index into cfg_sections[] */
	const char *key;
	enum opt_type type;
	size_t off, width;            /* the member, in the struct the section fills */
	int64_t min, max;             /* value bounds; STR and PATH: length; lists: items */
	const char *def;              /* default, in config file syntax */
	const struct choice *choices; /* T_ENUM */
	check_fn check;               /* T_STR, T_STRLIST: run on non-empty text / each item */
	unsigned flags;               /* O_REPEAT, O_REQUIRED, O_SECRET, O_NAMED */
	const char *help;             /* one line, for --help and the docs */
};

/* Parse `text` into the member at `dst`; on failure fill `why` (no key prefix). */
typedef int (*parse_fn)(const struct option *, const char *text, void *dst, char *why, size_t len);
/* Render the member at `src` in config file syntax. */
typedef void (*print_fn)(const struct option *, const void *src, char *buf, size_t len);
/* Render a number of this type, for ranges: "1KiB", "30s". */
typedef void (*num_fn)(int64_t v, char *buf, size_t len);

/* Release what a member of this type owns (lists, say); NULL when it owns nothing. */
typedef void (*clear_fn)(const struct option *, void *dst);
/* Make the member at `dst`, a bitwise copy of another, own memory of its own; on failure
 * it is left empty or partly filled, fit for clear. NULL when the type owns nothing. */
typedef int (*copy_fn)(const struct option *, void *dst);

struct type_ops {
	const char *name; /* in --help and the docs */
	parse_fn parse;
	print_fn print;
	num_fn num;     /* numeric types only */
	clear_fn clear; /* called by hr_cfg_free() */
	copy_fn copy;   /* called by hr_cfg_destination_copy() */
};

enum { SEC_SERVER, SEC_STORAGE, SEC_API, SEC_LOG, SEC_SOURCE, SEC_DESTINATION, SEC_COUNT };

/*
 * Lines of cfg_options[]. A fixed count, so that the parser's per-option line
 * records are arrays; cfg_table.c asserts that it matches the table.
 */
#define CFG_NOPTIONS 63

extern const struct section cfg_sections[SEC_COUNT];  /* cfg_table.c */
extern const struct option cfg_options[CFG_NOPTIONS]; /* cfg_table.c */
extern const struct type_ops cfg_types[T_COUNT];      /* cfg_values.c */

/* cfg_table.c: the table, and the named section instances it lays out. */
const struct option *cfg_find_option(int sec, const char *key); /* NULL: no such key */
int cfg_find_section(const char *name);                         /* -1: no such section */
/* Every option of section `sec` at its default, into the struct at `base`. */
int cfg_apply_defaults(int sec, void *base) HR_WUR;
/* The array of `s`'s instances in `cfg` (borrowed), and their number. */
void *cfg_instances(const struct hr_cfg *cfg, const struct section *s, size_t *count);
const char *cfg_instance_name(const struct section *s, const void *arr, size_t i);
/* One zeroed instance more at the end of the array; NULL on ENOMEM. */
void *cfg_append_instance(struct hr_cfg *cfg, const struct section *s);

/* cfg_values.c: text helpers and the checks options[] names. */
char *cfg_strip(char *s);
bool cfg_valid_name(const char *s);
int cfg_append_strlist(const struct option *, const char *text, void *dst, char *why, size_t len);
void cfg_join_choices(const struct choice *c, const char *quote, char *buf, size_t len);
void cfg_num_duration(int64_t v, char *buf, size_t len);
int cfg_check_url(const char *, char *, size_t);
int cfg_check_token(const char *, char *, size_t);
int cfg_check_header_line(const char *, char *, size_t);
int cfg_check_name(const char *, char *, size_t);
int cfg_check_glob(const char *, char *, size_t);
int cfg_check_cidr(const char *, char *, size_t);
int cfg_check_dedup(const char *, char *, size_t);
int cfg_check_host_name(const char *, char *, size_t);

/* cfg_reader.c: the parser's state, for the section hooks and the lint. */
/* Where one named section and its keys were, for the checks once the file is read. */
struct inst_lines {
	int sec;
	size_t idx;             /* the instance, in its section kind's array */
	int header;             /* line of its [kind NAME] */
	int seen[CFG_NOPTIONS]; /* line that set each option, 0 if none */
};

struct parser {
	struct hr_cfg *cfg;
	const char *name; /* file name in errors */
	FILE *fp;         /* or: */
	const char *text;
	int lineno;
	int sec;                      /* current section, -1 before the first header */
	void *base;                   /* the struct its options point into */
	int *seen;                    /* the current section's: plain_seen or its inst_lines */
	int plain_seen[CFG_NOPTIONS]; /* plain sections, which may be repeated */
	struct inst_lines *insts;     /* one per named section, in file order */
	size_t ninsts;
	int rc;               /* the first error's code */
	struct hr_error *err; /* the latest error (the first unless every_error) */
	bool every_error;     /* -t: go on past an error; each but the last is logged */
	bool stop;            /* an error past which nothing more can be read */
	bool skip_keys;       /* the current section's header failed: its keys are not read */
	int nerrors;          /* so far, logged or not */
	int nul_column;       /* the line read last holds a NUL byte here (1-based); 0: none */
	const char *listen;   /* hr_cfg_load_listening()'s: the address in force, "" none known */
};

/* "FILE:LINE" of the current line, the end of a long path kept. */
void cfg_where(const struct parser *p, char *buf, size_t len);
/* The line that set `key` in `il`'s section, else its header line. */
int cfg_seen_line(const struct inst_lines *il, const char *key);
/* The line that set `key` of a plain section ([server], [storage]...), 0 if none did. */
int cfg_plain_line(const struct parser *, int sec, const char *key);
void cfg_finish_source(struct parser *, const struct inst_lines *, const void *inst);
void cfg_finish_destination(struct parser *, const struct inst_lines *, const void *inst);

/* cfg_lint.c: warnings on a file that loaded, to the log. */
void cfg_lint(struct parser *p);

#endif
