/*
 * hookctl.c - the companion CLI of hookrelay: command line, settings, dispatch.
 *
 * One table lists the commands (their words, handler, options and help) and
 * one the options; getopt, the per-command checks and every --help are
 * driven by them. The URL and token come from flags, else the environment,
 * else ~/.config/hookctl, else the default; nothing else is read.
 */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <locale.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hookctl.h"
#include "hr/common.h"
#include "hr/secretfile.h"

#define DEFAULT_URL "http://127.0.0.1:8080"

#ifndef HOOKCTL_VERSION
#define HOOKCTL_VERSION "0.0.0"
#endif

struct opt_desc {
	const char *name;
	int short_name; /* 0: none */
	bool has_arg;
	const char *metavar;
	const char *help;
	bool repeat; /* may be given up to CTL_VALUES times: any value matches */
};

static const struct opt_desc opt_descs[O_COUNT] = {
	[O_SINCE] = { "since", 0, true, "WHEN",
	    "at or after WHEN: RFC 3339, or a duration ago (15m, 2h, 7d)", false },
	[O_UNTIL] = { "until", 0, true, "WHEN", "before WHEN (same forms as --since)", false },
	[O_KIND] = { "kind", 0, true, "KIND",
	    "event kind or glob (tavus.conversation.*); repeat for any of several", true },
	[O_SOURCE] = { "source", 0, true, "NAME",
	    "the [source NAME] it came in on, or a glob; repeatable", true },
	[O_PROVIDER] = { "provider", 0, true, "NAME",
	    "tavus, pailflow, agenthuman or daily; repeatable", true },
	[O_SESSION] = { "session", 0, true, "ID", "session key, or scope:key", false },
	[O_ROOM] = { "room", 0, true, "NAME",
	    "a Daily room's whole timeline (linked sessions' events too)", false },
	[O_EVENT_TYPE] = { "event-type", 0, true, "TYPE", "the body's event type; repeatable",
	    true },
	[O_SUBTYPE] = { "subtype", 0, true, "SUBTYPE",
	    "the kind's subtype (completed, error, created...); repeatable", true },
	[O_STATUS] = { "status", 0, true, "STATUS",
	    "sessions: created|started|ended|failed; deliveries: pending|succeeded|failed|dead",
	    false },
	[O_DESTINATION] = { "destination", 0, true, "NAME", "a [destination NAME]", false },
	[O_LIMIT] = { "limit", 'n', true, "N", "at most N items (1-500; with --all, per page)",
	    false },
	[O_ALL] = { "all", 0, false, NULL, "follow next_cursor through every page", false },
	[O_CURL] = { "curl", 0, false, NULL,
	    "print a curl command that posts the stored body again", false },
	[O_FOLLOW] = { "follow", 'f', false, NULL, "keep printing new events as they are stored",
	    false },
	[O_QUERY] = { "query", 'q', true, "NAME=VALUE",
	    "the callback URL had ?NAME=VALUE (e.g. user_id=42); up to 4, all must hold", true },
	[O_PAYLOAD] = { "payload", 0, false, NULL, "with each event's payload (include=payload)",
	    false },
	[O_FORWARD_TO] = { "forward-to", 0, true, "URL",
	    "POST each new event's stored body and headers to URL", false },
	[O_YES] = { "yes", 'y', false, NULL, "do it without asking", false },
};

/* The help where a command takes the option once, as an exact value. */
static const char *const opt_help_exact[O_COUNT] = {
	[O_SOURCE] = "the [source NAME] it came in on (its exact name)",
	[O_PROVIDER] = "tavus, pailflow, agenthuman or daily (one)",
};

#define EVENT_FILTERS                                                                              \
	(OPT(O_KIND) | OPT(O_SOURCE) | OPT(O_PROVIDER) | OPT(O_SESSION) | OPT(O_ROOM) |            \
	    OPT(O_EVENT_TYPE) | OPT(O_SUBTYPE) | OPT(O_QUERY))

const struct ctl_cmd ctl_cmds[] = {
	{ "events list", ctl_events_list,
	    EVENT_FILTERS | OPT(O_SINCE) | OPT(O_UNTIL) | OPT(O_LIMIT) | OPT(O_ALL) |
	        OPT(O_PAYLOAD),
	    0, 0, "", "stored events, newest first", 0 },
	{ "events show", ctl_events_show, OPT(O_CURL), 1, 1, "ID",
	    "one event: fields, headers, payload and deliveries", 0 },
	{ "events tail", ctl_events_tail, EVENT_FILTERS | OPT(O_LIMIT) | OPT(O_FOLLOW), 0, 0, "",
	    "the newest events, oldest first; with -f, then new ones as they come", 0 },
	{ "sessions list", ctl_sessions_list,
	    OPT(O_PROVIDER) | OPT(O_STATUS) | OPT(O_SINCE) | OPT(O_LIMIT) | OPT(O_ALL), 0, 0, "",
	    "sessions, newest first (by when first seen)",
	    .exact = OPT(O_PROVIDER) }, /* /v1/sessions takes one provider */
	{ "sessions show", ctl_sessions_show, 0, 1, 1, "ID",
	    "one session (scope:key or key) and its timeline", 0 },
	{ "deliveries list", ctl_deliveries_list,
	    OPT(O_DESTINATION) | OPT(O_STATUS) | OPT(O_SINCE) | OPT(O_LIMIT) | OPT(O_ALL), 0, 0, "",
	    "deliveries to destinations, newest first", 0 },
	{ "destinations", ctl_destinations, 0, 0, 0, "", "destinations and their state", 0 },
	{ "destinations discard", ctl_destinations_discard, OPT(O_YES), 1, 1, "NAME",
	    "give up the pending deliveries of a destination no longer configured (asks, or --yes)",
	    0 },
	{ "replay", ctl_replay,
	    OPT(O_DESTINATION) | OPT(O_SINCE) | OPT(O_UNTIL) | OPT(O_STATUS) | OPT(O_YES), 0, 1,
	    "[EVENT_ID]",
	    "deliver again: EVENT_ID, or a --destination's events (unfiltered: asks, or --yes)",
	    0 },
	{ "status", ctl_status, 0, 0, 0, "", "health, counters and a destinations summary", 0 },
	{ "rejections list", ctl_rejections_list,
	    OPT(O_SOURCE) | OPT(O_SINCE) | OPT(O_LIMIT) | OPT(O_ALL), 0, 0, "",
	    "bodies refused (422, 413 over a JSON limit, 400 not JSON) and kept, newest first",
	    .exact = OPT(O_SOURCE) }, /* /v1/rejections takes one exact source */
	{ "rejections show", ctl_rejections_show, 0, 1, 1, "ID",
	    "one rejection: why, headers, query and the body", 0 },
	{ "rejections accept", ctl_rejections_accept, 0, 1, 1, "ID",
	    "store a rejected body as an event after all and deliver it (once)", 0 },
	{ "listen", ctl_listen, EVENT_FILTERS | OPT(O_FORWARD_TO), 0, 0, "",
	    "follow new events and POST each to --forward-to URL (a local dev server)", 0 },
	{ NULL, NULL, 0, 0, 0, NULL, NULL, 0 },
};

static const char general_usage[] =
    "usage: hookctl [--url URL] [--token-file FILE] [--json] COMMAND [ARGS] [OPTIONS]\n"
    "\n"
    "Talks to a hookrelay daemon over its REST API.\n"
    "\n"
    "  --url URL          API base URL (else $HOOKCTL_URL, the config file, " DEFAULT_URL ")\n"
    "  --token-file FILE  bearer token: its one line, as [api] token_file (else $HOOKCTL_TOKEN, "
    "the config file)\n"
    "  --json             JSON Lines even on a terminal (the default when piped)\n"
    "  -h, --help         help; COMMAND --help for a command's\n"
    "      --version      print the version\n"
    "\n"
    "Config file: $XDG_CONFIG_HOME/hookctl or ~/.config/hookctl, lines `url = ...` and\n"
    "`token = ...`. Colours only on a terminal and never with NO_COLOR set.\n"
    "Exit status: 0 ok, 1 the API refused (4xx/5xx), 2 usage error, 3 cannot connect.\n"
    "\n"
    "Commands:\n";

void
ctl_usage(FILE *out, const struct ctl_cmd *cmd)
{
	if (cmd == NULL) {
		fputs(general_usage, out);
		for (const struct ctl_cmd *c = ctl_cmds; c->name != NULL; c++)
			fprintf(out, "  %-16s %s\n", c->name, c->help);
		return;
	}
	fprintf(out, "usage: hookctl %s%s%s%s\n\n%s\n", cmd->name, cmd->operands[0] ? " " : "",
	    cmd->operands, cmd->opts ? " [OPTIONS]" : "", cmd->help);
	if (cmd->opts != 0)
		fputs("\nOptions:\n", out);
	for (int o = 0; o < O_COUNT; o++) {
		const struct opt_desc *d = &opt_descs[o];
		char flag[48];

		if (!(cmd->opts & OPT(o)))
			continue;
		if (d->short_name)
			snprintf(flag, sizeof(flag), "-%c, --%s%s%s", d->short_name, d->name,
			    d->has_arg ? " " : "", d->has_arg ? d->metavar : "");
		else
			snprintf(flag, sizeof(flag), "    --%s%s%s", d->name, d->has_arg ? " " : "",
			    d->has_arg ? d->metavar : "");
		fprintf(out, "  %-24s %s\n", flag,
		    (cmd->exact & OPT(o)) && opt_help_exact[o] != NULL ? opt_help_exact[o]
		                                                       : d->help);
	}
}

int
ctl_usage_error(const struct ctl_cmd *cmd, const char *fmt, ...)
{
	va_list ap;

	fputs("hookctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'hookctl %s%s--help'.\n", cmd ? cmd->name : "", cmd ? " " : "");
	return EXIT_USAGE;
}

/* ---- settings: flag, else environment, else config file, else default ---- */

struct file_cfg {
	char *url;   /* owned; NULL: none */
	char *token; /* owned; NULL: none */
};

/* A line as long as the daemon takes a token (a token_file line: 64 KiB), where
 * inih's default of 200 bytes split a long token's line in two and called the
 * second half a bad line (review R42AU). */
#define CFG_LINE_MAX (64 * 1024 + 64)

static int
on_cfg_line(void *arg, const char *section, const char *name, const char *value)
{
	struct file_cfg *fc = arg;
	/* Held whole: a URL cut to a buffer was used cut (review R42NW); settle()
	 * judges its length as it judges --url's. */
	char **slot = strcmp(name, "url") == 0 ? &fc->url
	    : strcmp(name, "token") == 0       ? &fc->token
	                                       : NULL;

	(void)section;
	if (slot == NULL)
		return 0;
	free(*slot);
	return (*slot = strdup(value)) != NULL;
}

/*
 * inih's line of the first bad line, else 0; -1 when the file cannot be read, said
 * here with the OS's reason (ini_parse() answered -1 alike, shown as "line 0").
 */
static int
parse_config(const char *path, struct file_cfg *fc)
{
	FILE *fp = fopen(path, "r");
	int line, read_errno;

	if (fp == NULL) {
		fprintf(stderr, "hookctl: %s: %s\n", path, strerror(errno));
		return -1;
	}
	ini_use_stack = false;
	ini_max_line = ini_initial_alloc = CFG_LINE_MAX;
	line = ini_parse_file(fp, on_cfg_line, fc);
	read_errno = ferror(fp) ? errno : 0; /* inih takes a failed read for the end */
	fclose(fp);
	if (read_errno != 0 || line == -2)
		fprintf(stderr, "hookctl: %s: %s\n", path,
		    read_errno != 0 ? strerror(read_errno) : "out of memory");
	return read_errno != 0 || line == -2 ? -1 : line;
}

static int
read_config(struct file_cfg *fc)
{
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	char path[4096];
	struct stat st;
	int line;

	if (xdg != NULL && xdg[0] == '/')
		snprintf(path, sizeof(path), "%s/hookctl", xdg);
	else if (home != NULL && home[0] != '\0')
		snprintf(path, sizeof(path), "%s/.config/hookctl", home);
	else
		return EXIT_OK;
	if (stat(path, &st) != 0)
		return EXIT_OK; /* no file: nothing set */
	if ((line = parse_config(path, fc)) != 0) {
		if (line > 0)
			fprintf(stderr, "hookctl: %s:%d: expected `url = ...` or `token = ...`\n",
			    path, line);
		return EXIT_USAGE;
	}
	if (fc->token != NULL && fc->token[0] != '\0' && (st.st_mode & 0077))
		fprintf(
		    stderr, "hookctl: warning: %s holds a token and others can read it\n", path);
	return EXIT_OK;
}

/* The token in `path`, read as the daemon reads [api] token_file (new; NULL on error). */
static char *
read_token_file(const char *path)
{
	struct hr_secretfile sf;
	struct hr_error err = { .field = "" };
	char *token = NULL;

	if (hr_secretfile_read_waiting(path, 1, &sf, &err) != HR_OK) {
		fprintf(stderr, "hookctl: --token-file %s: %s\n", err.field, err.msg);
		return NULL;
	}
	if (sf.n == 0)
		fprintf(stderr, "hookctl: --token-file %s: empty\n", path);
	else if ((token = strdup(sf.line[0])) == NULL)
		fprintf(stderr, "hookctl: out of memory\n");
	hr_secretfile_clear(&sf);
	return token;
}

static int
settle_from(struct ctl *c, const char *url_flag, const char *token_file, struct file_cfg *fc)
{
	const char *url = url_flag, *token = getenv("HOOKCTL_TOKEN");
	size_t n;
	int rc;

	/* An empty --url is most likely an unset shell variable ("$URL"): going on to
	 * the next source could send a write such as a replay to another daemon. */
	if (url != NULL && url[0] == '\0') {
		fprintf(stderr, "hookctl: --url needs a URL\n");
		return EXIT_USAGE;
	}
	if (url == NULL)
		url = getenv("HOOKCTL_URL");
	if (token != NULL && token[0] == '\0')
		token = NULL; /* set but empty, as unset: the config file's token then */
	if ((url == NULL || url[0] == '\0' || (token_file == NULL && token == NULL)) &&
	    (rc = read_config(fc)) != EXIT_OK)
		return rc;
	if (url == NULL || url[0] == '\0')
		url = fc->url != NULL && fc->url[0] != '\0' ? fc->url : DEFAULT_URL;
	n = strlen(url);
	while (n > 0 && url[n - 1] == '/')
		n--;
	if (n == 0 || n >= sizeof(c->url)) {
		fprintf(stderr, "hookctl: bad URL \"%s\"\n", url);
		return EXIT_USAGE;
	}
	memcpy(c->url, url, n);
	c->url[n] = '\0';
	if (token_file != NULL)
		return (c->token = read_token_file(token_file)) != NULL ? EXIT_OK : EXIT_USAGE;
	if (token == NULL)
		token = fc->token != NULL && fc->token[0] != '\0' ? fc->token : NULL;
	if (token != NULL && (c->token = strdup(token)) == NULL)
		return EXIT_USAGE;
	return EXIT_OK;
}

/* settle_from() with the config file's settings freed after. */
static int
settle(struct ctl *c, const char *url_flag, const char *token_file)
{
	struct file_cfg fc = { NULL, NULL };
	int rc = settle_from(c, url_flag, token_file, &fc);

	free(fc.url);
	free(fc.token);
	return rc;
}

/* ---- command line ---- */

enum { G_URL = 256, G_TOKEN_FILE, G_JSON, G_VERSION, G_OPT0 };

/* The command whose words start argv (the longest such), or NULL. */
static const struct ctl_cmd *
find_cmd(int argc, char **argv, int *used)
{
	const struct ctl_cmd *best = NULL;

	*used = 0;
	for (const struct ctl_cmd *c = ctl_cmds; c->name != NULL; c++) {
		const char *p = c->name;
		int i = 0;

		while (i < argc) {
			size_t n = strcspn(p, " ");

			if (strlen(argv[i]) != n || strncmp(argv[i], p, n) != 0)
				break;
			i++;
			p += n;
			if (*p == '\0')
				break;
			p++;
		}
		if (*p == '\0' && i > *used) {
			best = c;
			*used = i;
		}
	}
	return best;
}

/* "events" alone: name its subcommands. */
static int
unknown_cmd(const char *word)
{
	char subs[256] = "";
	size_t n = strlen(word), len = 0;

	for (const struct ctl_cmd *c = ctl_cmds; c->name != NULL; c++)
		if (strncmp(c->name, word, n) == 0 && c->name[n] == ' ')
			(void)hr_appendf(
			    subs, sizeof(subs), &len, "%s%s", len ? ", " : "", c->name + n + 1);
	if (len == 0)
		return ctl_usage_error(NULL, "unknown command \"%s\"", word);
	return ctl_usage_error(NULL, "%s: expected one of %s", word, subs);
}

static void
build_longopts(struct option *lo, char *shortopts)
{
	static const struct option globals[] = {
		{ "url", required_argument, NULL, G_URL },
		{ "token-file", required_argument, NULL, G_TOKEN_FILE },
		{ "json", no_argument, NULL, G_JSON },
		{ "version", no_argument, NULL, G_VERSION },
		{ "help", no_argument, NULL, 'h' },
	};
	size_t n = 0;

	strcpy(shortopts, "-:h"); /* operands in order, options anywhere; ':' for a missing value */
	for (size_t i = 0; i < CTL_LEN(globals); i++)
		lo[n++] = globals[i];
	for (int o = 0; o < O_COUNT; o++) {
		lo[n++] = (struct option){ opt_descs[o].name,
			opt_descs[o].has_arg ? required_argument : no_argument, NULL, G_OPT0 + o };
		if (opt_descs[o].short_name) {
			size_t k = strlen(shortopts);

			shortopts[k++] = (char)opt_descs[o].short_name;
			if (opt_descs[o].has_arg)
				shortopts[k++] = ':';
			shortopts[k] = '\0';
		}
	}
	lo[n] = (struct option){ NULL, 0, NULL, 0 };
}

static int
short_to_opt(int ch)
{
	for (int o = 0; o < O_COUNT; o++)
		if (opt_descs[o].short_name == ch)
			return o;
	return -1;
}

struct cmdline {
	const char *url, *token_file;
	const char *repeated; /* a global value option given twice (NULL: none) */
	bool help, version;
	char **words;
	int nwords;
};

/* A value option given twice is refused unless repeatable (as the API refuses
 * limit=1&limit=600), once the command is known (check_cmd: its own --help is
 * named); a flag given twice is the flag. */
static int
set_opt(struct ctl *c, int o, const char *value)
{
	const struct opt_desc *d = &opt_descs[o];

	if (c->nvals[o] == CTL_VALUES)
		return ctl_usage_error(
		    NULL, "--%s is given more than %d times", d->name, CTL_VALUES);
	c->vals[o][c->nvals[o]++] = value != NULL ? value : "";
	if (c->opt[o] == NULL)
		c->opt[o] = value != NULL ? value : "";
	return EXIT_OK;
}

static int
parse(int argc, char **argv, struct ctl *c, struct cmdline *cl)
{
	struct option lo[8 + O_COUNT];
	char shortopts[32];
	int ch, o, rc;

	build_longopts(lo, shortopts);
	cl->words = calloc((size_t)argc + 1, sizeof(char *));
	if (cl->words == NULL)
		return EXIT_USAGE;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, shortopts, lo, NULL)) != -1) {
		if (ch == 1)
			cl->words[cl->nwords++] = optarg;
		else if (ch == G_URL || ch == G_TOKEN_FILE) {
			/* twice: refused as every other value option is (the last one won),
			 * after --help and --version, as theirs are */
			const char **slot = ch == G_URL ? &cl->url : &cl->token_file;

			if (*slot != NULL)
				cl->repeated = ch == G_URL ? "url" : "token-file";
			*slot = optarg;
		} else if (ch == G_JSON)
			c->json = true;
		else if (ch == G_VERSION)
			cl->version = true;
		else if (ch == 'h')
			cl->help = true;
		else if (ch >= G_OPT0 || (o = short_to_opt(ch)) >= 0) {
			if ((rc = set_opt(c, ch >= G_OPT0 ? ch - G_OPT0 : o, optarg)) != EXIT_OK)
				return rc;
		} else
			return ctl_usage_error(NULL,
			    ch == ':' ? "option %s needs a value" : "unknown option %s",
			    argv[optind - 1]);
	}
	while (optind < argc) /* after "--" */
		cl->words[cl->nwords++] = argv[optind++];
	return EXIT_OK;
}

/* `events tail -f -n 0` asks for no backlog; every other limit is a page of 1 or more. */
static int
limit_min(const struct ctl *c)
{
	return c->cmd->run == ctl_events_tail && c->opt[O_FOLLOW] != NULL ? 0 : 1;
}

/* Checked as the API would check it, so that a typo is a usage error (exit 2),
 * not a refusal by the daemon (exit 1). */
static bool
limit_ok(const struct ctl *c)
{
	const char *v = c->opt[O_LIMIT];
	char *end;
	long n;

	if (*v < '0' || *v > '9')
		return false;
	errno = 0;
	n = strtol(v, &end, 10);
	return errno == 0 && *end == '\0' && n >= limit_min(c) && n <= CTL_LIMIT_MAX;
}

static int
check_cmd(struct ctl *c)
{
	const struct ctl_cmd *cmd = c->cmd;

	for (int o = 0; o < O_COUNT; o++) {
		char name[40];

		if (c->opt[o] == NULL || (cmd->opts & OPT(o)))
			continue;
		snprintf(name, sizeof(name), "--%s", opt_descs[o].name);
		return ctl_usage_error(cmd, "%s is not an option of this command", name);
	}
	for (int o = 0; o < O_COUNT; o++)
		if (opt_descs[o].has_arg && !opt_descs[o].repeat && c->nvals[o] > 1)
			return ctl_usage_error(cmd,
			    "--%s takes one value and is given more than once", opt_descs[o].name);
	for (int o = 0; o < O_COUNT; o++) {
		if (!(cmd->exact & OPT(o)) || c->opt[o] == NULL)
			continue;
		if (c->nvals[o] > 1)
			return ctl_usage_error(cmd,
			    "--%s takes one value here and is given more than once",
			    opt_descs[o].name);
		if (strpbrk(c->opt[o], "*?") != NULL)
			return ctl_usage_error(cmd,
			    "--%s %s: this command takes an exact name, not a glob",
			    opt_descs[o].name, c->opt[o]);
	}
	if (c->opt[O_LIMIT] != NULL && !limit_ok(c))
		return ctl_usage_error(cmd, "--limit %s: expected an integer from %d to %d",
		    c->opt[O_LIMIT], limit_min(c), CTL_LIMIT_MAX);
	if (c->nvals[O_QUERY] > HR_QUERY_FILTERS_MAX)
		return ctl_usage_error(cmd, "--query is given more than %d times (the API's bound)",
		    HR_QUERY_FILTERS_MAX);
	for (int i = 0; i < c->nvals[O_QUERY]; i++)
		if (strchr(c->vals[O_QUERY][i], '=') == NULL || c->vals[O_QUERY][i][0] == '=')
			return ctl_usage_error(
			    cmd, "--query %s: expected NAME=VALUE", c->vals[O_QUERY][i]);
	if (c->nargs < cmd->min_args)
		return ctl_usage_error(cmd, "%s: missing operand", cmd->name);
	if (c->nargs > cmd->max_args)
		return ctl_usage_error(cmd, "unexpected operand \"%s\"", c->args[cmd->max_args]);
	return EXIT_OK;
}

static bool
want_color(void)
{
	const char *no = getenv("NO_COLOR");

	return isatty(STDOUT_FILENO) && (no == NULL || no[0] == '\0');
}

int
main(int argc, char **argv)
{
	struct ctl c = { .url = "" };
	struct cmdline cl;
	int used, rc;

	memset(&cl, 0, sizeof(cl));
	/* Character classes only: table columns are sized in the terminal's columns. */
	(void)setlocale(LC_CTYPE, "");
	if ((rc = parse(argc, argv, &c, &cl)) != EXIT_OK)
		goto out;
	if (cl.version) {
		printf("hookctl %s\n", HOOKCTL_VERSION);
		goto out;
	}
	c.cmd = find_cmd(cl.nwords, cl.words, &used);
	if (c.cmd == NULL) {
		if (cl.help || cl.nwords == 0) {
			ctl_usage(cl.help ? stdout : stderr, NULL);
			rc = cl.help ? EXIT_OK : EXIT_USAGE;
		} else {
			rc = unknown_cmd(cl.words[0]);
		}
		goto out;
	}
	if (cl.help) {
		ctl_usage(stdout, c.cmd);
		goto out;
	}
	c.args = cl.words + used;
	c.nargs = cl.nwords - used;
	if (cl.repeated != NULL) {
		rc = ctl_usage_error(NULL, "--%s is given more than once", cl.repeated);
		goto out;
	}
	if ((rc = check_cmd(&c)) != EXIT_OK)
		goto out;
	c.json = c.json || !isatty(STDOUT_FILENO);
	c.color = !c.json && want_color();
	if ((rc = settle(&c, cl.url, cl.token_file)) != EXIT_OK)
		goto out;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "hookctl: libcurl initialisation failed\n");
		rc = EXIT_CONNECT;
		goto out;
	}
	rc = c.cmd->run(&c);
	curl_global_cleanup();
out:
	if (fflush(stdout) != 0 && rc == EXIT_OK)
		rc = EXIT_API;
	free(c.token);
	free(cl.words);
	return rc;
}
