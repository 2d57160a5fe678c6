/*
 * hookctl_cmds.c - one handler per command: the API calls it makes and the
 * columns it shows. Query parameters come from the options table, so a
 * handler only says which of them go where.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hookctl.h"
#include "hr/common.h"

#define TAIL_DEFAULT "10"

static const struct ctl_column event_cols[] = {
	{ "RECEIVED", "received_at", F_TIME, 19 },
	{ "ID", "id", F_TEXT, 30 },
	{ "SOURCE", "source", F_TEXT, 10 },
	{ "KIND", "kind", F_TEXT, 48 },
	{ "SESSION", "session.id", F_TEXT, 0 },
	{ NULL, NULL, F_TEXT, 0 },
};

static const struct ctl_column event_fields[] = {
	{ "id", "id", F_TEXT, 0 },
	{ "received", "received_at", F_TEXT, 0 },
	{ "source", "source", F_TEXT, 0 },
	{ "provider", "provider", F_TEXT, 0 },
	{ "kind", "kind", F_TEXT, 0 },
	{ "event type", "event_type", F_TEXT, 0 },
	{ "subtype", "subtype", F_TEXT, 0 },
	{ "session", "session.id", F_TEXT, 0 },
	{ "occurred", "occurred_at", F_TEXT, 0 },
	{ "occurred (raw)", "occurred_at_raw", F_TEXT, 0 },
	{ "remote address", "remote_addr", F_TEXT, 0 },
	{ NULL, NULL, F_TEXT, 0 },
};

static const struct ctl_column delivery_cols[] = {
	{ "ID", "id", F_TEXT, 0 },
	{ "CREATED", "created_at", F_TIME, 0 },
	{ "EVENT", "event_id", F_TEXT, 0 },
	{ "DESTINATION", "destination", F_TEXT, 0 },
	{ "STATUS", "status", F_STATUS, 0 },
	{ "ATTEMPTS", "attempts", F_NUM, 0 },
	{ "LAST", "last_status", F_NUM, 0 },
	{ "ERROR", "last_error", F_TEXT, 0 },
	{ NULL, NULL, F_TEXT, 0 },
};

/* Listed newest first by when each session was first seen: that column leads
 * (LAST SEEN did, and the rows looked out of order). */
static const struct ctl_column session_cols[] = {
	{ "FIRST SEEN", "first_seen", F_TIME, 0 },
	{ "ID", "id", F_TEXT, 0 },
	{ "PROVIDER", "provider", F_TEXT, 0 },
	{ "STATUS", "status", F_STATUS, 0 },
	{ "EVENTS", "event_count", F_NUM, 0 },
	{ "LAST SEEN", "last_seen", F_TIME, 0 },
	{ NULL, NULL, F_TEXT, 0 },
};

static const struct ctl_column session_fields[] = {
	{ "id", "id", F_TEXT, 0 },
	{ "provider", "provider", F_TEXT, 0 },
	{ "status", "status", F_STATUS, 0 },
	{ "first seen", "first_seen", F_TEXT, 0 },
	{ "last seen", "last_seen", F_TEXT, 0 },
	{ "events", "event_count", F_NUM, 0 },
	{ "duration", "duration", F_NUM, 0 },
	{ "shutdown reason", "shutdown_reason", F_TEXT, 0 },
	{ "exit reason", "exit_reason", F_TEXT, 0 },
	{ "error type", "error_type", F_TEXT, 0 },
	{ "overall score", "overall_score", F_NUM, 0 },
	{ NULL, NULL, F_TEXT, 0 },
};

static const struct ctl_column timeline_cols[] = {
	{ "OCCURRED", "occurred_at", F_TIME, 0 },
	{ "RECEIVED", "received_at", F_TIME, 0 },
	{ "ID", "id", F_TEXT, 0 },
	{ "KIND", "kind", F_TEXT, 0 },
	{ NULL, NULL, F_TEXT, 0 },
};

/* A room's meetings (GET /v1/sessions/room:NAME), one row each; built by meeting_rows(). */
static const struct ctl_column meeting_cols[] = {
	{ "MEETING", "meeting_id", F_TEXT, 0 },
	{ "STARTED", "started_at", F_TIME, 0 },
	{ "ENDED", "ended_at", F_TIME, 0 },
	{ "PEOPLE", "participants", F_NUM, 0 },
	{ "RECORDINGS", "recordings", F_NUM, 0 },
	{ "TRANSCRIPTS", "transcripts", F_NUM, 0 },
	{ "EVENTS", "events", F_NUM, 0 },
	{ "OUTCOMES", "outcomes", F_TEXT, 0 },
	{ NULL, NULL, F_TEXT, 0 },
};

static const struct ctl_column destination_cols[] = {
	{ "NAME", "name", F_TEXT, 0 },
	{ "STATE", "state", F_STATUS, 0 },
	{ "BREAKER", "breaker", F_STATUS, 0 },
	{ "PENDING", "pending", F_NUM, 0 },
	{ "SUCCEEDED", "succeeded", F_NUM, 0 },
	{ "FAILED", "failed", F_NUM, 0 },
	{ "DEAD", "dead", F_NUM, 0 },
	{ "OLDEST PENDING (s)", "oldest_pending_age_s", F_NUM, 0 },
	{ "URL", "url", F_TEXT, 0 },
	{ NULL, NULL, F_TEXT, 0 },
};

static const struct ctl_column unconfigured_cols[] = {
	{ "NAME", "name", F_TEXT, 0 },
	{ "PENDING", "pending", F_NUM, 0 },
	{ "OLDEST PENDING (s)", "oldest_pending_age_s", F_NUM, 0 },
	{ NULL, NULL, F_TEXT, 0 },
};

static const struct ctl_column health_fields[] = {
	{ "status", "status", F_STATUS, 0 },
	{ "version", "version", F_TEXT, 0 },
	{ "database", "database", F_STATUS, 0 },
	{ "database detail", "database_detail", F_TEXT, 0 },
	{ "writer queued", "writer.queued", F_NUM, 0 },
	{ "writer batches", "writer.batches", F_NUM, 0 },
	{ "writer jobs", "writer.jobs", F_NUM, 0 },
	{ "accepted", "ingest.accepted", F_NUM, 0 },
	{ "rejected", "ingest.rejected", F_NUM, 0 },
	{ "failed", "ingest.failed", F_NUM, 0 },
	{ NULL, NULL, F_TEXT, 0 },
};

static int
path_ok(struct ctl *c, const struct ctl_path *p)
{
	if (!p->overflow)
		return EXIT_OK;
	return ctl_usage_error(c->cmd, "%s: the arguments make too long a URL", c->cmd->name);
}

/* On a terminal, --payload: each event as a table of one row (the columns
 * sized for it), then its payload indented under it. */
static void
print_with_payloads(struct ctl *c, const struct ctl_column *cols, json_t *items)
{
	size_t i;
	json_t *item;

	json_array_foreach(items, i, item)
	{
		json_t *one = json_pack("[O]", item);

		ctl_print_items(c, cols, one);
		ctl_print_pretty_indented(c, json_object_get(item, "payload"), 4);
		putchar('\n');
		json_decref(one);
	}
}

/* GET a listing page by page (--all: to the end). JSON Lines go out as they
 * come; a table needs every row first to size its columns. */
static int
list_pages(struct ctl *c, const char *base, const char *member, const struct ctl_column *cols)
{
	json_t *rows = json_array(), *doc = NULL;
	struct hr_dynbuf text = { 0 };
	char cursor[64] = "";
	int rc;

	do {
		struct ctl_path p;
		const char *next;

		ctl_path_init(&p, base, NULL, NULL);
		ctl_path_add_opts(&p, c, c->cmd->opts);
		if (c->opt[O_PAYLOAD] != NULL)
			ctl_path_add(&p, "include", "payload");
		if (cursor[0] != '\0')
			ctl_path_add(&p, "cursor", cursor);
		json_decref(doc);
		doc = NULL;
		hr_dynbuf_free(&text);
		if ((rc = path_ok(c, &p)) != EXIT_OK ||
		    (rc = ctl_call_text(c, "GET", p.buf, &doc, &text)) != EXIT_OK)
			break;
		if (ctl_verbatim(c) && ctl_print_raw_items(text.p, text.len, member))
			; /* each item as the API wrote it */
		else if (c->json)
			ctl_print_items(c, cols, json_object_get(doc, member));
		else if (c->opt[O_PAYLOAD] != NULL)
			print_with_payloads(c, cols, json_object_get(doc, member));
		else if (json_array_extend(rows, json_object_get(doc, member)) != 0) {
			fprintf(stderr,
			    "hookctl: out of memory for the table of every page: use "
			    "--json, or fewer pages\n");
			rc = EXIT_API;
			break;
		}
		next = json_string_value(json_object_get(doc, "next_cursor"));
		snprintf(cursor, sizeof(cursor), "%s", next != NULL ? next : "");
	} while (c->opt[O_ALL] != NULL && cursor[0] != '\0');
	if (rc == EXIT_OK && !c->json) {
		if (c->opt[O_PAYLOAD] == NULL) /* else each row went out with its payload */
			ctl_print_items(c, cols, rows);
		if (cursor[0] != '\0')
			fprintf(stderr, "(more: --all, or --limit up to %d)\n", CTL_LIMIT_MAX);
	}
	json_decref(doc);
	json_decref(rows);
	hr_dynbuf_free(&text);
	return rc;
}

int
ctl_events_list(struct ctl *c)
{
	return list_pages(c, "/v1/events", "events", event_cols);
}

int
ctl_sessions_list(struct ctl *c)
{
	return list_pages(c, "/v1/sessions", "sessions", session_cols);
}

int
ctl_deliveries_list(struct ctl *c)
{
	return list_pages(c, "/v1/deliveries", "deliveries", delivery_cols);
}

/* ---- events show ---- */

static int
print_curl(struct ctl *c, json_t *ev)
{
	const char *source = json_string_value(json_object_get(ev, "source"));
	struct ctl_path raw, hook;
	char *body, url[sizeof(c->url) + sizeof(hook.buf)];
	size_t len;
	int rc;

	ctl_path_init(&raw, "/v1/events/", c->args[0], "/raw");
	ctl_path_init(&hook, "/hooks/", source != NULL ? source : "", NULL);
	ctl_path_add_callback_query(&hook, json_object_get(ev, "query"));
	if ((rc = path_ok(c, &raw)) != EXIT_OK || (rc = path_ok(c, &hook)) != EXIT_OK ||
	    (rc = ctl_call_raw(c, raw.buf, &body, &len)) != EXIT_OK)
		return rc;
	snprintf(url, sizeof(url), "%s%s", c->url, hook.buf);
	ctl_print_printf_quoted(body, len);
	fputs(
	    " |\n  curl -sS -X POST -H 'Content-Type: application/json' --data-binary @- ", stdout);
	ctl_print_shell_word(url);
	putchar('\n');
	free(body);
	return EXIT_OK;
}

/* Every member of `obj` as "name: value" lines (the kept request headers). */
static void
print_members(struct ctl *c, json_t *obj)
{
	struct ctl_column *cols = calloc(json_object_size(obj) + 1, sizeof(*cols));
	const char *key;
	size_t n = 0;
	json_t *v;

	if (cols == NULL)
		return;
	json_object_foreach(obj, key, v)
	{
		cols[n].title = key;
		cols[n++].key = key;
	}
	ctl_print_fields(c, cols, obj);
	free(cols);
}

/* The callback URL's parameters, one "name: value" line each (repeats joined with ", "). */
static void
print_query(struct ctl *c, json_t *query)
{
	json_t *flat = json_object(), *v;
	const char *name;

	if (json_object_size(query) == 0) {
		printf("none\n");
		json_decref(flat);
		return;
	}
	json_object_foreach(query, name, v)
	{
		if (json_is_array(v)) {
			size_t i, len = 0;
			json_t *item;
			char joined[1024] = "";

			json_array_foreach(v, i, item)
			{
				if (!hr_appendf(joined, sizeof(joined), &len, "%s%s", i ? ", " : "",
				        json_string_value(item) != NULL ? json_string_value(item)
				                                        : ""))
					break; /* a cell, not a record: the JSON form has them all
					        */
			}
			json_object_set_new(flat, name, json_string(joined));
		} else {
			json_object_set(flat, name, v);
		}
	}
	print_members(c, flat);
	json_decref(flat);
}

/* Why an event or rejection did not validate: "pointer: detail" lines. */
static void
print_problems(struct ctl *c, json_t *problems)
{
	json_t *p;
	size_t i;

	if (!json_is_array(problems))
		return;
	ctl_print_heading(c, "problems");
	json_array_foreach(problems, i, p)
	{
		const char *ptr = json_string_value(json_object_get(p, "pointer"));
		char a[512], b[1024];

		/* A pointer may name a body's own keys: shown as cells are. */
		printf("%s: %s\n",
		    ptr != NULL && ptr[0] != '\0' ? ctl_safe(ptr, a, sizeof(a)) : "(body)",
		    ctl_safe(json_string_value(json_object_get(p, "detail")), b, sizeof(b)));
	}
}

/* GET /v1/events/{id}/deliveries into *doc (new; NULL on failure): every page,
 * their `deliveries` in one array (the daemon pages a long log by 4 MiB). */
static int
get_deliveries(struct ctl *c, json_t **doc)
{
	char cursor[64] = "";
	int rc;

	*doc = NULL;
	do {
		struct ctl_path p;
		json_t *page = NULL;
		const char *next;

		ctl_path_init(&p, "/v1/events/", c->args[0], "/deliveries");
		if (cursor[0] != '\0')
			ctl_path_add(&p, "cursor", cursor);
		if ((rc = path_ok(c, &p)) != EXIT_OK ||
		    (rc = ctl_call(c, "GET", p.buf, &page)) != EXIT_OK)
			break;
		next = json_string_value(json_object_get(page, "next_cursor"));
		snprintf(cursor, sizeof(cursor), "%s", next != NULL ? next : "");
		if (*doc == NULL)
			*doc = page;
		else {
			json_array_extend(json_object_get(*doc, "deliveries"),
			    json_object_get(page, "deliveries"));
			json_decref(page);
		}
	} while (cursor[0] != '\0');
	if (rc != EXIT_OK) {
		json_decref(*doc);
		*doc = NULL;
	}
	json_object_del(*doc, "next_cursor");
	return rc;
}

static int
show_deliveries(struct ctl *c)
{
	json_t *doc;
	int rc;

	if ((rc = get_deliveries(c, &doc)) != EXIT_OK)
		return rc;
	ctl_print_heading(c, "deliveries");
	if (json_array_size(json_object_get(doc, "deliveries")) == 0)
		printf("none\n");
	else
		ctl_print_items(c, delivery_cols, json_object_get(doc, "deliveries"));
	json_decref(doc);
	return EXIT_OK;
}

/* One line, as the table shows one event: the event (`text`, its answer), its
 * deliveries added as `deliveries` (the array /deliveries answers). Nothing if
 * they cannot be read. */
static int
print_event_json(struct ctl *c, json_t *ev, const struct hr_dynbuf *text)
{
	json_t *doc;
	char *deliveries;
	int rc;

	if ((rc = get_deliveries(c, &doc)) != EXIT_OK)
		return rc;
	if (ctl_verbatim(c) &&
	    (deliveries = json_dumps(
	         json_object_get(doc, "deliveries"), JSON_COMPACT | JSON_ENCODE_ANY)) != NULL) {
		ctl_print_text(text->p, text->len, "deliveries", deliveries);
		free(deliveries);
	} else {
		json_object_set(ev, "deliveries", json_object_get(doc, "deliveries"));
		ctl_print_json(ev);
	}
	json_decref(doc);
	return EXIT_OK;
}

int
ctl_events_show(struct ctl *c)
{
	struct ctl_path p;
	struct hr_dynbuf text;
	json_t *ev;
	int rc;

	ctl_path_init(&p, "/v1/events/", c->args[0], NULL);
	if ((rc = path_ok(c, &p)) != EXIT_OK)
		return rc;
	if ((rc = ctl_call_text(c, "GET", p.buf, &ev, &text)) != EXIT_OK)
		return rc;
	if (c->opt[O_CURL] != NULL) {
		rc = print_curl(c, ev);
	} else if (c->json) {
		rc = print_event_json(c, ev, &text);
	} else {
		ctl_print_fields(c, event_fields, ev);
		print_problems(c, json_object_get(ev, "problems"));
		ctl_print_heading(c, "query");
		print_query(c, json_object_get(ev, "query"));
		ctl_print_heading(c, "headers");
		print_members(c, json_object_get(ev, "headers"));
		ctl_print_heading(c, "payload");
		ctl_print_pretty(c, json_object_get(ev, "payload"));
		rc = show_deliveries(c);
	}
	json_decref(ev);
	hr_dynbuf_free(&text);
	return rc;
}

/* ---- events tail ---- */

struct tail {
	bool header_done;
};

static bool
tail_row(struct ctl *c, json_t *ev, void *arg)
{
	struct tail *t = arg;

	ctl_print_row(c, event_cols, ev, &t->header_done);
	fflush(stdout);
	return true;
}

static int
tail_once(struct ctl *c)
{
	struct ctl_path p;
	json_t *doc, *events, *oldest_first = json_array();
	size_t n;
	int rc;

	ctl_path_init(&p, "/v1/events", NULL, NULL);
	ctl_path_add_opts(&p, c, c->cmd->opts & ~OPT(O_LIMIT));
	ctl_path_add(&p, "limit", c->opt[O_LIMIT] != NULL ? c->opt[O_LIMIT] : TAIL_DEFAULT);
	if ((rc = path_ok(c, &p)) == EXIT_OK && (rc = ctl_call(c, "GET", p.buf, &doc)) == EXIT_OK) {
		events = json_object_get(doc, "events");
		for (n = json_array_size(events); n > 0; n--)
			json_array_append(oldest_first, json_array_get(events, n - 1));
		ctl_print_items(c, event_cols, oldest_first);
		json_decref(doc);
	}
	json_decref(oldest_first);
	return rc;
}

/* Follow GET /v1/stream; after a break, reconnect with Last-Event-ID, so
 * nothing is missed or printed twice. Only ^C (or a refusal) ends it: a ^C
 * is the way to stop it, so it ends with 0, as `listen` does (it ended by the
 * signal, 130, the last line possibly cut). */
static int
tail_follow(struct ctl *c)
{
	struct tail t = { false };
	struct ctl_follow f = { .last_id = -1, .retry_ms = 3000, .on_event = tail_row, .arg = &t };
	struct ctl_path p;
	int rc;

	ctl_path_init(&p, "/v1/stream", NULL, NULL);
	ctl_path_add_opts(&p, c, c->cmd->opts & ~OPT(O_LIMIT));
	ctl_path_add(&p, "backlog", c->opt[O_LIMIT] != NULL ? c->opt[O_LIMIT] : TAIL_DEFAULT);
	if ((rc = path_ok(c, &p)) != EXIT_OK)
		return rc;
	ctl_catch_interrupt();
	return ctl_follow(c, p.buf, &f);
}

int
ctl_events_tail(struct ctl *c)
{
	return c->opt[O_FOLLOW] != NULL ? tail_follow(c) : tail_once(c);
}

/* ---- sessions, destinations, status ---- */

/* "kind state, ..." of a meeting's outcomes, for one table cell. */
static json_t *
outcomes_text(json_t *outcomes)
{
	char buf[512] = "";
	size_t i, len = 0;
	json_t *o;

	json_array_foreach(outcomes, i, o)
	{
		const char *st = json_string_value(json_object_get(o, "state"));
		int n = snprintf(buf + len, sizeof(buf) - len, "%s%s %s", i > 0 ? ", " : "",
		    json_string_value(json_object_get(o, "kind")), st != NULL ? st : "-");

		if (n < 0 || (size_t)n >= sizeof(buf) - len)
			break; /* a cell, not a record: the JSON form has them all */
		len += (size_t)n;
	}
	return json_string(buf);
}

/* People in the meeting: its participants, less the waiting-room entries (a
 * knocker let in is also a participant; one turned away was never in it). */
static json_int_t
people(json_t *participants)
{
	json_int_t n = 0;
	size_t i;
	json_t *p;

	json_array_foreach(participants, i, p)
	{
		n += !json_is_true(json_object_get(p, "waiting"));
	}
	return n;
}

/* One summary row per meeting: counts, and the outcomes as text. */
static json_t *
meeting_rows(json_t *meetings)
{
	json_t *rows = json_array(), *m;
	size_t i;

	json_array_foreach(meetings, i, m)
	{
		json_array_append_new(rows,
		    json_pack("{s:O, s:O, s:O, s:I, s:I, s:I, s:I, s:o}", "meeting_id",
		        json_object_get(m, "meeting_id"), "started_at",
		        json_object_get(m, "started_at"), "ended_at",
		        json_object_get(m, "ended_at"), "participants",
		        people(json_object_get(m, "participants")), "recordings",
		        (json_int_t)json_array_size(json_object_get(m, "recordings")),
		        "transcripts",
		        (json_int_t)json_array_size(json_object_get(m, "transcripts")), "events",
		        (json_int_t)json_array_size(json_object_get(m, "events")), "outcomes",
		        outcomes_text(json_object_get(m, "outcomes"))));
	}
	return rows;
}

/* The timeline, and, when the API gave only its newest events, where the
 * others are: the session's listing (a room's: by room, its linked events too). */
static void
print_timeline(struct ctl *c, json_t *doc)
{
	json_t *events = json_object_get(doc, "events");
	bool cut = json_is_true(json_object_get(doc, "events_truncated"));
	bool room = json_is_string(json_object_get(doc, "scope")) &&
	    strcmp(json_string_value(json_object_get(doc, "scope")), "room") == 0;
	const char *key = json_string_value(json_object_get(doc, room ? "key" : "id"));
	char heading[128], name[512];

	snprintf(heading, sizeof(heading), "timeline (%s%zu events)", cut ? "the newest " : "",
	    json_array_size(events));
	ctl_print_heading(c, heading);
	ctl_print_items(c, timeline_cols, events);
	if (!cut)
		return;
	printf("older events: hookctl events list --all %s ", room ? "--room" : "--session");
	/* Cut short, or a character of it shown as "?" (a control or bidi one), the
	 * command would name another session, which anyone may make: none then. */
	if (key != NULL && strcmp(ctl_safe(key, name, sizeof(name)), key) == 0)
		ctl_print_shell_word(name);
	else
		fputs("(the key: sessions show --json)", stdout);
	putchar('\n');
}

int
ctl_sessions_show(struct ctl *c)
{
	struct ctl_path p;
	json_t *doc;
	char heading[64];
	int rc;

	ctl_path_init(&p, "/v1/sessions/", c->args[0], NULL);
	if ((rc = path_ok(c, &p)) != EXIT_OK || (rc = ctl_call(c, "GET", p.buf, &doc)) != EXIT_OK)
		return rc;
	if (c->json) {
		ctl_print_json(doc);
	} else {
		ctl_print_fields(c, session_fields, doc);
		print_timeline(c, doc);
		if (json_is_array(json_object_get(doc, "meetings"))) {
			json_t *rows = meeting_rows(json_object_get(doc, "meetings"));

			snprintf(heading, sizeof(heading), "meetings (%zu)", json_array_size(rows));
			ctl_print_heading(c, heading);
			ctl_print_items(c, meeting_cols, rows);
			json_decref(rows);
		}
	}
	json_decref(doc);
	return EXIT_OK;
}

/* Pending deliveries of destinations the daemon's configuration no longer has:
 * nothing sends them, and they keep their events whole (docs/forwarding.md). */
static void
print_unconfigured(struct ctl *c, json_t *destinations_doc)
{
	json_t *items = json_object_get(destinations_doc, "unconfigured");

	if (json_array_size(items) == 0)
		return;
	ctl_print_heading(c, "not configured, pending deliveries not sent");
	ctl_print_items(c, unconfigured_cols, items);
}

/* JSON lines: the configured destinations, as the API lists them. */
int
ctl_destinations(struct ctl *c)
{
	json_t *doc;
	int rc = ctl_call(c, "GET", "/v1/destinations", &doc);

	if (rc == EXIT_OK) {
		ctl_print_items(c, destination_cols, json_object_get(doc, "destinations"));
		if (!c->json)
			print_unconfigured(c, doc);
	}
	json_decref(doc);
	return rc;
}

/* One line: the health report, and the destinations when they could be read. */
static void
print_status_json(json_t *health, json_t *dest)
{
	json_t *doc = json_pack("{s:O}", "health", health);

	if (dest != NULL) {
		json_object_set(doc, "destinations", json_object_get(dest, "destinations"));
		if (json_object_get(dest, "unconfigured") != NULL)
			json_object_set(doc, "unconfigured", json_object_get(dest, "unconfigured"));
	}
	ctl_print_json(doc);
	json_decref(doc);
}

static void
print_status_table(struct ctl *c, json_t *health, json_t *dest)
{
	ctl_print_fields(c, health_fields, health);
	if (dest == NULL)
		return;
	ctl_print_heading(c, "destinations");
	if (json_array_size(json_object_get(dest, "destinations")) == 0)
		printf("none configured\n");
	else
		ctl_print_items(c, destination_cols, json_object_get(dest, "destinations"));
	print_unconfigured(c, dest);
}

/*
 * The health report is printed whenever one came, a 503's too: an unhealthy
 * daemon (its database gone, damaged or unreachable) is when it is wanted, and
 * its destinations may still be read. The exit status is 1 for the 503.
 */
int
ctl_status(struct ctl *c)
{
	json_t *health = NULL, *dest = NULL;
	int rc, dest_rc;

	if ((rc = ctl_call_report(c, "/healthz", &health)) != EXIT_OK && health == NULL)
		return rc;
	dest_rc = ctl_call(c, "GET", "/v1/destinations", &dest);
	if (rc == EXIT_OK)
		rc = dest_rc;
	if (c->json)
		print_status_json(health, dest);
	else
		print_status_table(c, health, dest);
	json_decref(health);
	json_decref(dest);
	return rc;
}

/* ---- replay ---- */

static bool
filtered(const struct ctl *c, unsigned opts)
{
	for (int o = 0; o < O_COUNT; o++)
		if ((opts & OPT(o)) && c->opt[o] != NULL)
			return true;
	return false;
}

/* y or yes, read from the terminal. */
static bool
ask(const char *question)
{
	char line[64];

	fprintf(stderr, "%s [y/N] ", question);
	fflush(stderr);
	if (fgets(line, sizeof(line), stdin) == NULL)
		return false;
	line[strcspn(line, "\r\n")] = '\0';
	return strcmp(line, "y") == 0 || strcmp(line, "Y") == 0 || strcmp(line, "yes") == 0;
}

/*
 * A destination replay with no filter sends again everything the destination
 * ever had: say how much first (dry_run=true), and go on (*go) only with
 * --yes or a yes typed on the terminal. Without either it exits 2.
 */
static int
confirm_whole_history(struct ctl *c, const struct ctl_path *replay, bool *go)
{
	struct ctl_path p = *replay;
	char question[256];
	json_int_t n;
	json_t *doc;
	int rc;

	*go = false;
	ctl_path_add(&p, "dry_run", "true");
	if ((rc = path_ok(c, &p)) != EXIT_OK || (rc = ctl_call(c, "POST", p.buf, &doc)) != EXIT_OK)
		return rc;
	n = json_integer_value(json_object_get(doc, "deliveries"));
	json_decref(doc);
	if (n == 0) { /* the replay would queue nothing: say so, as it would */
		if (c->json)
			printf("{\"deliveries\":0}\n");
		else
			printf("0 deliveries queued\n");
		return EXIT_OK;
	}
	snprintf(question, sizeof(question),
	    "Replay every event %s had a delivery for: %lld deliveries. Queue them?",
	    c->opt[O_DESTINATION], (long long)n);
	if (isatty(STDIN_FILENO) && isatty(STDERR_FILENO)) {
		if ((*go = ask(question)))
			return EXIT_OK;
		fprintf(stderr, "hookctl: nothing queued\n");
		return EXIT_USAGE;
	}
	fprintf(stderr,
	    "hookctl: this would queue %lld deliveries to %s, every event it had a delivery for;\n"
	    "nothing was queued. Add --yes to queue them, or narrow the replay with --since,\n"
	    "--until or --status.\n",
	    (long long)n, c->opt[O_DESTINATION]);
	return EXIT_USAGE;
}

/* A write's answer (taken): as it is with --json, else "N deliveries queued"
 * (key "deliveries") or "N deliveries discarded" (key "discarded"). */
static int
print_count(struct ctl *c, json_t *doc, const char *key)
{
	if (c->json)
		ctl_print_json(doc);
	else
		printf("%lld deliveries %s\n",
		    (long long)json_integer_value(json_object_get(doc, key)),
		    strcmp(key, "deliveries") == 0 ? "queued" : key);
	json_decref(doc);
	return EXIT_OK;
}

/*
 * The pending deliveries of a destination the daemon's configuration no
 * longer has become failed: say how many first (dry_run=true), and go on only
 * with --yes or a yes typed on the terminal, as a whole-history replay.
 */
int
ctl_destinations_discard(struct ctl *c)
{
	struct ctl_path p, dry;
	char question[256];
	json_int_t n;
	json_t *doc;
	int rc;

	ctl_path_init(&p, "/v1/destinations/", c->args[0], "/discard");
	dry = p;
	ctl_path_add(&dry, "dry_run", "true");
	if ((rc = path_ok(c, &dry)) != EXIT_OK ||
	    (rc = ctl_call(c, "POST", dry.buf, &doc)) != EXIT_OK)
		return rc;
	n = json_integer_value(json_object_get(doc, "discarded"));
	json_decref(doc);
	if (n > 0 && c->opt[O_YES] == NULL) {
		snprintf(question, sizeof(question),
		    "Give up the %lld pending deliveries to %s (they become failed)?", (long long)n,
		    c->args[0]);
		if (!isatty(STDIN_FILENO) || !isatty(STDERR_FILENO)) {
			fprintf(stderr,
			    "hookctl: %lld deliveries to %s are pending; nothing was changed. Add "
			    "--yes "
			    "to discard them.\n",
			    (long long)n, c->args[0]);
			return EXIT_USAGE;
		}
		if (!ask(question)) {
			fprintf(stderr, "hookctl: nothing changed\n");
			return EXIT_USAGE;
		}
	}
	if (n > 0 && (rc = ctl_call(c, "POST", p.buf, &doc)) != EXIT_OK)
		return rc;
	if (n == 0)
		doc = json_pack("{s:s, s:i}", "name", c->args[0], "discarded", 0);
	return print_count(c, doc, "discarded");
}

int
ctl_replay(struct ctl *c)
{
	const unsigned by_time = OPT(O_SINCE) | OPT(O_UNTIL) | OPT(O_STATUS);
	struct ctl_path p;
	json_t *doc;
	int rc;

	if (c->nargs == 1) {
		for (int o = 0; o < O_COUNT; o++)
			if ((by_time & OPT(o)) && c->opt[o] != NULL)
				return ctl_usage_error(c->cmd, "%s",
				    "--since, --until and --status pick a destination's events: "
				    "leave out EVENT_ID");
		ctl_path_init(&p, "/v1/events/", c->args[0], "/replay");
		ctl_path_add_opts(&p, c, OPT(O_DESTINATION));
	} else if (c->opt[O_DESTINATION] != NULL) {
		ctl_path_init(&p, "/v1/destinations/", c->opt[O_DESTINATION], "/replay");
		ctl_path_add_opts(&p, c, by_time);
		if (!filtered(c, by_time) && c->opt[O_YES] == NULL) {
			bool go;

			if ((rc = confirm_whole_history(c, &p, &go)) != EXIT_OK || !go)
				return rc;
		}
	} else {
		return ctl_usage_error(c->cmd, "%s", "give an EVENT_ID or --destination NAME");
	}
	if ((rc = path_ok(c, &p)) != EXIT_OK || (rc = ctl_call(c, "POST", p.buf, &doc)) != EXIT_OK)
		return rc;
	return print_count(c, doc, "deliveries");
}

/* ---- rejections ---- */

static const struct ctl_column rejection_cols[] = {
	{ "RECEIVED", "received_at", F_TIME, 0 },
	{ "ID", "id", F_TEXT, 0 },
	{ "SOURCE", "source", F_TEXT, 0 },
	{ "STATUS", "status", F_NUM, 0 },
	{ "KIND", "kind", F_TEXT, 0 },
	{ "BYTES", "body_bytes", F_NUM, 0 },
	{ "ACCEPTED AS", "accepted_event", F_TEXT, 0 },
	{ NULL, NULL, F_TEXT, 0 },
};

static const struct ctl_column rejection_fields[] = {
	{ "id", "id", F_TEXT, 0 },
	{ "received", "received_at", F_TEXT, 0 },
	{ "source", "source", F_TEXT, 0 },
	{ "status", "status", F_NUM, 0 },
	{ "acknowledged", "acknowledged", F_TEXT, 0 }, /* answered 200 all the same (Daily) */
	{ "kind", "kind", F_TEXT, 0 },
	{ "body bytes", "body_bytes", F_NUM, 0 },
	{ "accepted as", "accepted_event", F_TEXT, 0 },
	{ "remote address", "remote_addr", F_TEXT, 0 },
	{ NULL, NULL, F_TEXT, 0 },
};

int
ctl_rejections_list(struct ctl *c)
{
	return list_pages(c, "/v1/rejections", "rejections", rejection_cols);
}

/* A body that is not JSON: its bytes as a string, through /raw. */
static int
print_raw_rejection(struct ctl *c)
{
	struct ctl_path p;
	char *body;
	size_t len;
	int rc;

	ctl_path_init(&p, "/v1/rejections/", c->args[0], "/raw");
	if ((rc = path_ok(c, &p)) != EXIT_OK ||
	    (rc = ctl_call_raw(c, p.buf, &body, &len)) != EXIT_OK)
		return rc;
	ctl_print_printf_quoted(body, len);
	putchar('\n');
	free(body);
	return EXIT_OK;
}

int
ctl_rejections_show(struct ctl *c)
{
	struct ctl_path p;
	struct hr_dynbuf text;
	json_t *doc;
	int rc = EXIT_OK;

	ctl_path_init(&p, "/v1/rejections/", c->args[0], NULL);
	if ((rc = path_ok(c, &p)) != EXIT_OK)
		return rc;
	if ((rc = ctl_call_text(c, "GET", p.buf, &doc, &text)) != EXIT_OK)
		return rc;
	if (ctl_verbatim(c)) {
		ctl_print_text(text.p, text.len, NULL, NULL);
	} else if (c->json) {
		ctl_print_json(doc);
	} else {
		ctl_print_fields(c, rejection_fields, doc);
		print_problems(c, json_object_get(doc, "problems"));
		ctl_print_heading(c, "query");
		print_query(c, json_object_get(doc, "query"));
		ctl_print_heading(c, "headers");
		print_members(c, json_object_get(doc, "headers"));
		ctl_print_heading(c, "payload");
		if (json_is_null(json_object_get(doc, "payload")))
			rc = print_raw_rejection(c); /* not JSON: the exact bytes, quoted */
		else
			ctl_print_pretty(c, json_object_get(doc, "payload"));
	}
	json_decref(doc);
	hr_dynbuf_free(&text);
	return rc;
}

int
ctl_rejections_accept(struct ctl *c)
{
	struct ctl_path p;
	json_t *doc;
	int rc;

	ctl_path_init(&p, "/v1/rejections/", c->args[0], "/accept");
	if ((rc = path_ok(c, &p)) != EXIT_OK || (rc = ctl_call(c, "POST", p.buf, &doc)) != EXIT_OK)
		return rc;
	if (c->json)
		ctl_print_json(doc);
	else
		printf("%s %s as %s (%s)\n", c->args[0],
		    json_is_true(json_object_get(doc, "created")) ? "accepted"
		                                                  : "was already accepted",
		    json_string_value(json_object_get(doc, "id")),
		    json_string_value(json_object_get(doc, "kind")));
	json_decref(doc);
	return EXIT_OK;
}
