/*
 * cfg_reader.c - the configuration file read into a struct hr_cfg.
 *
 * libinih splits `key = value` lines. The line reader below feeds it and
 * takes section headers for itself: Debian's inih passes no line number to
 * the handler, truncates section names to 49 bytes and never reports a
 * section without keys, and an empty [source foo] must still exist.
 *
 * Errors stop at the first one and name FILE:LINE; for -t they go on, to
 * report every one (hookrelay(8)): a line's error, and its section's keys
 * when a header failed (they would be read into the section before), do not
 * stop the reading. Once the whole file is read without an error, the checks
 * that span keys or sections run (required keys, each section's finish
 * hook), then the warnings of cfg_lint.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <ini.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <sys/stat.h>

#include "cfg_int.h"
#include "hr/log.h"

static bool every_error; /* hr_cfg_report_every_error() */

void
hr_cfg_report_every_error(bool on)
{
	every_error = on;
}

/* The parser: a line reader for inih that also handles section headers. */

void
cfg_where(const struct parser *p, char *buf, size_t len)
{
	char line[16];
	size_t nlen = strlen(p->name), room;

	if (p->lineno == 0) { /* before the first line: the file itself */
		snprintf(buf, len, "%s", p->name);
		return;
	}
	snprintf(line, sizeof(line), ":%d", p->lineno);
	room = len - 1 - strlen(line);
	if (nlen <= room)
		snprintf(buf, len, "%s%s", p->name, line);
	else /* keep the end of a long path: it names the file */
		snprintf(buf, len, "...%s%s", p->name + nlen - (room - 3), line);
}

static int fail(struct parser *p, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail_at(struct parser *p, int line, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void vfail(struct parser *p, int code, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static void
vfail(struct parser *p, int code, const char *fmt, va_list ap)
{
	char field[sizeof(p->err->field)], msg[sizeof(p->err->msg)];

	p->nerrors++;
	if (code == HR_ENOMEM)
		p->stop = true;
	if (p->rc != HR_OK && !p->every_error)
		return;
	if (p->rc != HR_OK && p->err != NULL) /* the one before is said now, in file order */
		log_errx("%s: %s", p->err->field, p->err->msg);
	if (p->rc == HR_OK)
		p->rc = code;
	cfg_where(p, field, sizeof(field));
	vsnprintf(msg, sizeof(msg), fmt, ap);
	hr_error_set(p->err, code, field, "%s", msg);
}

/* Record the first error at the current line; returns 0 for inih's handler. */
static int
fail(struct parser *p, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(p, code, fmt, ap);
	va_end(ap);
	return 0;
}

/* The same at an earlier `line`, for the checks once the file is read. */
static void
fail_at(struct parser *p, int line, int code, const char *fmt, ...)
{
	va_list ap;

	p->lineno = line;
	va_start(ap, fmt);
	vfail(p, code, fmt, ap);
	va_end(ap);
}

/* Start the line record of a new named section instance; its seen[] becomes current. */
static int
push_inst_lines(struct parser *p, int sec, size_t idx)
{
	struct inst_lines *grown = realloc(p->insts, (p->ninsts + 1) * sizeof(*grown));

	if (grown == NULL)
		return HR_ENOMEM;
	p->insts = grown;
	memset(&grown[p->ninsts], 0, sizeof(grown[p->ninsts]));
	grown[p->ninsts].sec = sec;
	grown[p->ninsts].idx = idx;
	grown[p->ninsts].header = p->lineno;
	p->seen = grown[p->ninsts].seen;
	p->ninsts++;
	return HR_OK;
}

static void
begin_named(struct parser *p, int sec, const char *name)
{
	const struct section *s = &cfg_sections[sec];
	size_t n;
	const void *arr = cfg_instances(p->cfg, s, &n);
	char *inst;

	if (!cfg_valid_name(name)) {
		fail(p, HR_EINVAL,
		    "[%s %.64s]: the name must be 1 to %d characters of A-Z a-z 0-9 _ . -", s->name,
		    name, HR_NAME_MAX - 1);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (strcmp(cfg_instance_name(s, arr, i), name) == 0) {
			fail(p, HR_EINVAL, "duplicate section [%s %s]", s->name, name);
			return;
		}
	}
	if (n >= s->max) {
		fail(p, HR_EINVAL, "more than %zu [%s] sections", s->max, s->name);
		return;
	}
	if (push_inst_lines(p, sec, n) != HR_OK ||
	    (inst = cfg_append_instance(p->cfg, s)) == NULL) {
		fail(p, HR_ENOMEM, "out of memory");
		return;
	}
	memcpy(inst + s->name_off, name, strlen(name) + 1);
	if (cfg_apply_defaults(sec, inst) != HR_OK) {
		fail(p, HR_EINVAL, "[%s]: bad default in the option table", s->name);
		return;
	}
	p->base = inst;
}

/* "[kind]" or "[kind NAME]", already stripped of its brackets. */
static void
begin_section(struct parser *p, char *head)
{
	char *name = head + strcspn(head, " \t");
	int sec;

	if (*name != '\0')
		*name++ = '\0';
	name += strspn(name, " \t");
	if ((sec = cfg_find_section(head)) < 0) {
		fail(p, HR_EINVAL, "unknown section [%.64s]", head);
		return;
	}
	p->sec = sec;
	if (cfg_sections[sec].size == 0) {
		if (*name != '\0')
			fail(p, HR_EINVAL, "section [%s] takes no name", head);
		p->base = p->cfg;
		p->seen = p->plain_seen;
		return;
	}
	if (*name == '\0') {
		fail(p, HR_EINVAL, "section [%s] needs a name: [%s NAME]", head, head);
		return;
	}
	begin_named(p, sec, name);
}

/* A "[...]" line; anything after the "]" but a comment is an error. */
static void
header_line(struct parser *p, char *line)
{
	char *close = strchr(line, ']'), *rest;

	if (close == NULL) {
		fail(p, HR_EINVAL, "malformed section header: no closing \"]\"");
		return;
	}
	*close = '\0';
	rest = cfg_strip(close + 1);
	if (*rest != '\0' && *rest != '#' && *rest != ';') {
		fail(p, HR_EINVAL, "unexpected text after the section header");
		return;
	}
	begin_section(p, cfg_strip(line + 1));
}

/* A header that fails leaves the section before current: its keys are not read. */
static void
section_line(struct parser *p, char *line)
{
	int before = p->nerrors;

	header_line(p, line);
	p->skip_keys = p->nerrors != before;
}

/* One line of the file, like fgets() but noting a NUL byte, which fgets() hides. */
static bool
next_file_line(struct parser *p, char *buf, int size, bool *complete)
{
	int c = EOF, n = 0;

	p->nul_column = 0;
	while (n < size - 1 && (c = getc(p->fp)) != EOF) {
		if (c == '\0' && p->nul_column == 0)
			p->nul_column = n + 1;
		buf[n++] = (char)c;
		if (c == '\n')
			break;
	}
	buf[n] = '\0';
	if (ferror(p->fp)) {
		fail(p, HR_EINVAL, "read error: %s", strerror(errno));
		return false;
	}
	*complete = c == '\n' || (c == EOF && feof(p->fp));
	return n > 0;
}

/* A line of the file or the string; false at the end or on a read error. */
static bool
next_line(struct parser *p, char *buf, int size, bool *complete)
{
	size_t n;

	if (p->fp != NULL)
		return next_file_line(p, buf, size, complete);
	if (*p->text == '\0')
		return false;
	n = strcspn(p->text, "\n");
	*complete = n < (size_t)size - 1;
	if (!*complete)
		n = (size_t)size - 1;
	else if (p->text[n] == '\n')
		n++;
	memcpy(buf, p->text, n);
	buf[n] = '\0';
	p->text += n;
	return true;
}

#define MALFORMED_LINE "malformed line: expected \"key = value\", \"[section]\" or a comment"

/* Not a key, comment or blank line: inih refuses it. Its rule: no '=' or ':'
 * before the end or an inline comment (';' or '#' after a blank), so that
 * "foo ; = bar" is malformed too (review R42NW). */
static bool
malformed(const char *s)
{
	bool after_blank = false;

	if (*s == '\0' || strchr(";#\r\n", *s) != NULL)
		return false;
	for (; *s != '\0'; s++) {
		if (*s == '=' || *s == ':')
			return false;
		if (after_blank && (*s == ';' || *s == '#'))
			return true;
		after_blank = *s == ' ' || *s == '\t';
	}
	return true;
}

/* fail() for a line no later one can be read past; NULL for inih's reader. */
static char *fail_null(struct parser *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static char *
fail_null(struct parser *p, const char *fmt, ...)
{
	va_list ap;

	p->stop = true;
	va_start(ap, fmt);
	vfail(p, HR_EINVAL, fmt, ap);
	va_end(ap);
	return NULL;
}

static char *
read_line(char *buf, int size, void *arg)
{
	struct parser *p = arg;
	bool complete;
	char *s;

	if (p->stop || (p->rc != HR_OK && !p->every_error) || !next_line(p, buf, size, &complete))
		return NULL;
	p->lineno++;
	if (p->nul_column > 0 || !complete) { /* no line can be told from the next */
		if (p->nul_column > 0)
			return fail_null(
			    p, "a NUL byte at column %d: the file is not text", p->nul_column);
		return fail_null(p, "line longer than %d bytes", size - 2);
	}
	if (p->lineno == 1 && strncmp(buf, "\xEF\xBB\xBF", 3) == 0)
		memmove(buf, buf + 3, strlen(buf + 3) + 1);
	s = buf + strspn(buf, " \t");
	if (*s == '[') {
		section_line(p, s);
		buf[0] = '\0'; /* inih never sees sections: ours are not truncated */
	} else if (p->every_error && malformed(s)) {
		fail(p, HR_EINVAL, MALFORMED_LINE); /* inih would name only the first */
		buf[0] = '\0';
	}
	return p->rc == HR_OK || p->every_error ? buf : NULL;
}

/*
 * An unknown key as an error quotes it: "thread" (a typo of a key). A line
 * that is no key at all may be a secret pasted in bare (base64 ends in "=",
 * where inih splits it), and errors go to the terminal and the journal: a
 * "key" that is not lower-case letters, digits and '_', or is longer than
 * any key could be, is not quoted.
 */
static const char *
shown_key(const char *key)
{
	static _Thread_local char quoted[48];
	size_t n = strspn(key, "abcdefghijklmnopqrstuvwxyz0123456789_");

	if (n == 0 || key[n] != '\0' || n + 3 > sizeof(quoted))
		return "(not shown: it is not a key's name)";
	snprintf(quoted, sizeof(quoted), "\"%s\"", key);
	return quoted;
}

/*
 * O_NAMED: the item just added to the list at `dst` names what an earlier one does. A
 * header on two lines went out twice on every forward, and a receiver may take either
 * copy, or answer 400 (final). Only the name is quoted: a value may be a credential.
 */
static int
name_repeated(const struct option *o, const void *dst, char *why, size_t len)
{
	const struct hr_strlist *l = dst;
	const char *last;
	size_t n;

	if (!(o->flags & O_NAMED) || l->n < 2)
		return HR_OK;
	last = l->v[l->n - 1];
	n = strcspn(last, ":");
	for (size_t i = 0; i + 1 < l->n; i++) {
		if (strncasecmp(l->v[i], last, n) == 0 && l->v[i][n] == ':') {
			snprintf(why, len,
			    "%.*s is set on an earlier line too (one line per header; join its "
			    "values with commas)",
			    (int)(n < 64 ? n : 64), last);
			return HR_EINVAL;
		}
	}
	return HR_OK;
}

static int
read_key(struct parser *p, const char *key, const char *value)
{
	const struct option *o;
	char why[WHY_MAX];
	size_t i;
	parse_fn parse;
	int rc;

	if (p->sec < 0)
		return fail(p, HR_EINVAL, "key %s is outside any section", shown_key(key));
	if ((o = cfg_find_option(p->sec, key)) == NULL)
		return fail(p, HR_EINVAL, "unknown key %s in [%s]", shown_key(key),
		    cfg_sections[p->sec].name);
	i = (size_t)(o - cfg_options);
	if (p->seen[i] != 0 && !(o->flags & O_REPEAT))
		return fail(
		    p, HR_EINVAL, "duplicate key %s (first set on line %d)", key, p->seen[i]);
	/* The first line of a repeatable key replaces the default, later ones add to it. */
	parse = p->seen[i] != 0 ? cfg_append_strlist : cfg_types[o->type].parse;
	if ((rc = parse(o, value, (char *)p->base + o->off, why, sizeof(why))) != HR_OK ||
	    (rc = name_repeated(o, (char *)p->base + o->off, why, sizeof(why))) != HR_OK)
		return fail(p, rc, "%s: %s", key, why);
	if (p->seen[i] == 0)
		p->seen[i] = p->lineno;
	return 1;
}

static int
on_key(void *arg, const char *section, const char *key, const char *value)
{
	struct parser *p = arg;

	(void)section; /* inih never sees our headers; p->sec is the section */
	if (p->skip_keys)
		return 1;
	/* 0 stops inih at the first error; for every error, it goes on */
	return read_key(p, key, value) || p->every_error;
}

/* Checks once the whole file is read: required keys, then each section's finish hook. */

int
cfg_seen_line(const struct inst_lines *il, const char *key)
{
	const struct option *o = cfg_find_option(il->sec, key);

	return o != NULL && il->seen[o - cfg_options] != 0 ? il->seen[o - cfg_options] : il->header;
}

int
cfg_plain_line(const struct parser *p, int sec, const char *key)
{
	const struct option *o = cfg_find_option(sec, key);

	return o != NULL ? p->plain_seen[o - cfg_options] : 0;
}

/* The line of `key` in the `idx`th instance of section `sec`; else its header's. */
static int
instance_line(const struct parser *p, int sec, size_t idx, const char *key)
{
	for (size_t r = 0; r < p->ninsts; r++)
		if (p->insts[r].sec == sec && p->insts[r].idx == idx)
			return cfg_seen_line(&p->insts[r], key);
	return 0;
}

ssize_t
hr_cfg_timeout_over_lease(const struct hr_cfg *cfg, int64_t lease_ms)
{
	for (size_t i = 0; i < cfg->ndestinations; i++)
		if (cfg->destinations[i].timeout_ms * 2 > lease_ms)
			return (ssize_t)i;
	return -1;
}

/* The [storage] settings that go together. */
static void
finish_storage(struct parser *p)
{
	const struct hr_cfg *c = p->cfg;
	bool pg = c->db_backend == HR_CFG_BACKEND_POSTGRESQL;
	ssize_t i;

	/* The line an error names: the key's in [storage] (FILE:LINE, as every other). */
#define STORAGE_LINE(key) cfg_plain_line(p, SEC_STORAGE, key)
	if (pg && c->db_url[0] == '\0')
		fail_at(p, STORAGE_LINE("backend"), HR_EINVAL,
		    "[storage] backend = postgresql needs url");
	else if (!pg && c->db_url[0] != '\0')
		/* Else a node meant for the shared database keeps its events to itself. */
		fail_at(p, STORAGE_LINE("url"), HR_EINVAL,
		    "[storage] url is for backend = postgresql: without that line this node "
		    "stores in SQLite (path = %.200s)",
		    c->db_path);
	else if (pg && c->max_size > 0)
		fail_at(p, STORAGE_LINE("max_size"), HR_EINVAL,
		    "[storage] max_size is for SQLite: PostgreSQL gives space back by vacuum, not"
		    " per row deleted; use retain in [source] (docs/scaling.md)");
	if (p->rc == HR_OK && pg && (i = hr_cfg_timeout_over_lease(c, c->lease_ms)) >= 0)
		fail_at(p,
		    STORAGE_LINE("lease") != 0
		        ? STORAGE_LINE("lease")
		        : instance_line(p, SEC_DESTINATION, (size_t)i, "timeout"),
		    HR_EINVAL,
		    "[storage] lease must be at least twice [destination %s] timeout: a"
		    " claim must outlive its attempt",
		    c->destinations[i].name);
#undef STORAGE_LINE
}

static void
finish(struct parser *p)
{
	for (size_t r = 0; r < p->ninsts && (p->rc == HR_OK || p->every_error); r++) {
		const struct inst_lines *il = &p->insts[r];
		const struct section *s = &cfg_sections[il->sec];
		size_t n;
		const char *inst = (const char *)cfg_instances(p->cfg, s, &n) + il->idx * s->size;

		for (size_t i = 0; i < CFG_NOPTIONS; i++) {
			const struct option *o = &cfg_options[i];

			if (o->section == il->sec && (o->flags & O_REQUIRED) && il->seen[i] == 0)
				fail_at(p, il->header, HR_EINVAL, "[%s %s]: %s is required",
				    s->name, inst + s->name_off, o->key);
		}
		if (s->finish != NULL)
			s->finish(p, il, inst);
	}
	if (p->rc == HR_OK || p->every_error)
		finish_storage(p);
	/* Without token_file the API answers loopback clients only, and a token
	 * that reads would be the one way in from elsewhere. */
	if (p->rc == HR_OK && p->cfg->read_token_file[0] != '\0' && p->cfg->token_file[0] == '\0')
		fail_at(p, cfg_plain_line(p, SEC_API, "read_token_file"), HR_EINVAL,
		    "[api] read_token_file needs token_file (the API answers loopback clients only "
		    "without it)");
}

static bool
was_set(const struct inst_lines *il, const char *key)
{
	const struct option *o = cfg_find_option(il->sec, key);

	return o != NULL && il->seen[o - cfg_options] != 0;
}

/*
 * The credential key of `src` that says a check was meant, or NULL: a secret
 * file, or an HMAC setting away from its default (a printed configuration
 * lists every key with its default, and must load back).
 */
static const char *
meant_credential(const struct hr_source_cfg *src)
{
	if (src->secret_file[0] != '\0')
		return "secret_file";
	if (strcmp(src->hmac_header, cfg_find_option(SEC_SOURCE, "hmac_header")->def) != 0)
		return "hmac_header";
	if (src->hmac_prefix[0] != '\0')
		return "hmac_prefix";
	if (src->hmac_timestamp_header[0] != '\0')
		return "hmac_timestamp_header";
	if (src->hmac_signed != HR_SIGNED_BODY)
		return "hmac_signed";
	if (src->hmac_algorithm != HR_HMAC_SHA256)
		return "hmac_algorithm";
	if (src->hmac_encoding != HR_ENC_HEX)
		return "hmac_encoding";
	return NULL;
}

void
cfg_finish_source(struct parser *p, const struct inst_lines *il, const void *inst)
{
	struct hr_source_cfg *src = (struct hr_source_cfg *)(uintptr_t)inst;
	const char *key;

	/* Daily signs every webhook: a Daily source checks it unless told otherwise. */
	if (src->provider == HR_PROVIDER_DAILY && !was_set(il, "auth"))
		src->auth = HR_AUTH_DAILY;
	src->auth_line = cfg_seen_line(il, "auth");

	/* A key for a check that auth = none never makes: the source is open to anyone. */
	if (src->auth == HR_AUTH_NONE && (key = meant_credential(src)) != NULL) {
		fail_at(p, cfg_seen_line(il, key), HR_EINVAL,
		    "[source %s]: %s is set but auth = none, so no request is checked and anyone "
		    "may post here; set auth (token, hmac, basic, standard-webhooks or daily), "
		    "or remove %s",
		    src->name, key, key);
		return;
	}
	if (src->hmac_signed == HR_SIGNED_TIMESTAMP_BODY && src->hmac_timestamp_header[0] == '\0')
		fail_at(p, cfg_seen_line(il, "hmac_signed"), HR_EINVAL,
		    "[source %s]: hmac_signed = timestamp.body needs hmac_timestamp_header",
		    src->name);
}

void
cfg_finish_destination(struct parser *p, const struct inst_lines *il, const void *inst)
{
	const struct hr_destination_cfg *dst = inst;

	for (size_t i = 0; i < dst->sources.n; i++)
		if (hr_cfg_source(p->cfg, dst->sources.v[i]) == NULL)
			fail_at(p, cfg_seen_line(il, "sources"), HR_EINVAL,
			    "sources: there is no [source %.64s]", dst->sources.v[i]);
}

/*
 * inih's settings are process globals: config loading is a start-up,
 * single-threaded affair.
 */
static void
setup_inih(void)
{
	static char inline_comments[] = ";#";

	ini_use_stack = false;
	ini_allow_realloc = false;
	ini_initial_alloc = LINE_MAX_BYTES;
	ini_max_line = LINE_MAX_BYTES;
	ini_allow_multiline = false;
	ini_allow_bom = true;
	ini_allow_no_value = false;
	ini_allow_inline_comments = true;
	ini_inline_comment_prefixes = inline_comments;
	ini_stop_on_first_error = !every_error;
}

static int
parse(struct parser *p, struct hr_cfg **out)
{
	int line;

	p->sec = -1;
	p->rc = HR_OK;
	p->every_error = every_error;
	if ((p->cfg = hr_cfg_new_defaults()) == NULL)
		return hr_error_set(p->err, HR_ENOMEM, p->name, "out of memory");
	snprintf(p->cfg->file, sizeof(p->cfg->file), "%s", p->name);
	setup_inih();
	line = ini_parse_stream(read_line, p, on_key, p);
	if (p->rc == HR_OK && line == -2)
		hr_error_set(p->err, p->rc = HR_ENOMEM, p->name, "out of memory");
	else if ((p->rc == HR_OK || (p->every_error && !p->stop)) && line > 0) {
		p->lineno = line;
		fail(p, HR_EINVAL, MALFORMED_LINE);
	}
	if (p->rc == HR_OK)
		finish(p);
	if (p->rc == HR_OK)
		cfg_lint(p);
	free(p->insts);
	if (p->rc != HR_OK) {
		hr_cfg_free(p->cfg);
		return p->rc;
	}
	*out = p->cfg;
	return HR_OK;
}

int
hr_cfg_load_string(const char *text, const char *name, struct hr_cfg **out, struct hr_error *err)
{
	struct parser p = { .name = name, .text = text, .err = err };

	return parse(&p, out);
}

int
hr_cfg_load(const char *path, struct hr_cfg **out, struct hr_error *err)
{
	return hr_cfg_load_listening(path, NULL, false, out, err);
}

/* How long a reload waits for a FIFO's writer, in slices of a tenth of a second. */
#define FIFO_WAIT_SLICES 50

/* Is a signal that stops the daemon waiting? They are blocked in every thread
 * and taken by the main loop, which a reload holds. */
static bool
stop_pending(void)
{
	sigset_t pending;

	return sigpending(&pending) == 0 &&
	    (sigismember(&pending, SIGTERM) == 1 || sigismember(&pending, SIGINT) == 1);
}

/* A FIFO opened without waiting: until a writer has written or gone, for at most
 * FIFO_WAIT_SLICES, or until a stop signal is pending. */
static void
wait_for_writer(int fd)
{
	struct stat st;

	if (fstat(fd, &st) != 0 || !S_ISFIFO(st.st_mode))
		return;
	for (int i = 0; i < FIFO_WAIT_SLICES && !stop_pending(); i++) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };

		if (poll(&pfd, 1, 100) != 0)
			return;
	}
}

/* `path` to read (NULL with errno set on failure). With `nowait` (a reload) a
 * FIFO is not waited for in open(2), where nothing could end the wait: its
 * writer is waited for a bounded time, then it reads as an empty file. */
static FILE *
open_config(const char *path, bool nowait)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | (nowait ? O_NONBLOCK : 0)), flags;
	FILE *fp;

	if (fd < 0)
		return NULL;
	if (nowait) {
		wait_for_writer(fd);
		/* Reads may wait again: a writer is there, or end of file comes at once. */
		if ((flags = fcntl(fd, F_GETFL)) < 0 ||
		    fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0) {
			close(fd);
			return NULL;
		}
	}
	if ((fp = fdopen(fd, "r")) == NULL)
		close(fd);
	return fp;
}

int
hr_cfg_load_listening(
    const char *path, const char *listen, bool nowait, struct hr_cfg **out, struct hr_error *err)
{
	struct parser p = { .name = path, .err = err, .listen = listen };
	int rc;

	if ((p.fp = open_config(path, nowait)) == NULL)
		return hr_error_set(err, HR_EINVAL, path, "cannot open: %s", strerror(errno));
	rc = parse(&p, out);
	fclose(p.fp);
	return rc;
}
