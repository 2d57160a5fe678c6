/*
 * hookctl_listen.c - `hookctl listen --forward-to URL`: live events to a
 * local server, for developing the downstream application against real
 * traffic (like `stripe listen`).
 *
 * It follows GET /v1/stream (with the event filters given, and include=headers:
 * the request headers kept with each event come in its frame) from now on and,
 * for each new event, fetches the body exactly as stored (/raw) and POSTs it
 * with those headers to URL, printing one line per event with the local answer. The daemon's own
 * forwarder and its retries are not involved: a failed local POST is reported and not retried.
 * After a break (the daemon restarted) it reconnects with the last event id it got, so it loses
 * none and sends none twice; ^C ends it.
 */
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hookctl.h"

struct listen {
	const char *to;
	unsigned long forwarded, failed;
	bool header_done;
};

static const struct ctl_column line_cols[] = {
	{ "RECEIVED", "received_at", F_TIME, 19 },
	{ "ID", "id", F_TEXT, 30 },
	{ "KIND", "kind", F_TEXT, 48 },
	{ "LOCAL ANSWER", "answer", F_TEXT, 0 },
	{ NULL, NULL, F_TEXT, 0 },
};

/* The stored body of event `id` (new); EXIT_* */
static int
fetch_body(struct ctl *c, const char *id, char **body, size_t *len)
{
	struct ctl_path raw;

	*body = NULL;
	ctl_path_init(&raw, "/v1/events/", id, "/raw");
	if (raw.overflow)
		return EXIT_USAGE;
	return ctl_call_raw(c, raw.buf, body, len);
}

static void
report(struct ctl *c, struct listen *l, json_t *ev, const struct ctl_answer *a, const char *skip)
{
	json_t *line = json_pack("{s:O?, s:O?, s:O?}", "id", json_object_get(ev, "id"), "kind",
	    json_object_get(ev, "kind"), "received_at", json_object_get(ev, "received_at"));
	char answer[320];

	if (skip != NULL)
		snprintf(answer, sizeof(answer), "not sent: %s", skip);
	else if (a->status != 0)
		snprintf(answer, sizeof(answer), "%ld (%.0f ms)", a->status, a->ms);
	else
		snprintf(answer, sizeof(answer), "failed: %s", a->error);
	if (c->json) {
		json_object_set_new(
		    line, "status", a->status ? json_integer(a->status) : json_null());
		json_object_set_new(line, "duration_ms", json_real(a->ms));
		json_object_set_new(line, "error",
		    skip != NULL    ? json_string(skip)
		        : a->status ? json_null()
		                    : json_string(a->error));
		ctl_print_json(line);
	} else {
		json_object_set_new(line, "answer", json_string(answer));
		ctl_print_row(c, line_cols, line, &l->header_done);
	}
	fflush(stdout);
	json_decref(line);
}

static bool
forward_event(struct ctl *c, json_t *ev, void *arg)
{
	struct listen *l = arg;
	const char *id = json_string_value(json_object_get(ev, "id"));
	struct ctl_answer a;
	json_t *headers = json_object_get(ev, "headers");
	char *body = NULL;
	size_t len = 0;

	memset(&a, 0, sizeof(a));
	if (id == NULL || ctl_interrupted)
		return true;
	if (fetch_body(c, id, &body, &len) != EXIT_OK) {
		/* A pruned payload (410) or an event gone (404) is passed over; a daemon
		 * that did not answer (stopping for a restart) or failed (5xx) will
		 * answer later: the stream resumes with this event when it is back. */
		if (c->last_status == 0 || c->last_status >= 500) {
			fprintf(stderr,
			    "hookctl: the body of %s could not be read yet; resuming with"
			    " it after reconnecting\n",
			    id);
			return false;
		}
		l->failed++;
		report(c, l, ev, &a, "the stored body could not be read");
		return true;
	}
	ctl_post(c, l->to, body, len, headers, &a);
	if (a.status >= 200 && a.status <= 299)
		l->forwarded++;
	else
		l->failed++;
	if (!ctl_interrupted)
		report(c, l, ev, &a, NULL);
	free(body);
	return true;
}

int
ctl_listen(struct ctl *c)
{
	struct listen l = { .to = c->opt[O_FORWARD_TO] };
	struct ctl_follow f = {
		.last_id = -1, .retry_ms = 3000, .on_event = forward_event, .arg = &l
	};
	struct ctl_path p;
	int rc;

	if (l.to == NULL)
		return ctl_usage_error(c->cmd, "%s", "listen needs --forward-to URL");
	if (strncasecmp(l.to, "http://", 7) != 0 && strncasecmp(l.to, "https://", 8) != 0)
		return ctl_usage_error(
		    c->cmd, "--forward-to %s: expected an http:// or https:// URL", l.to);
	ctl_path_init(&p, "/v1/stream", NULL, NULL);
	ctl_path_add(&p, "include", "headers");
	ctl_path_add_opts(&p, c, c->cmd->opts);
	if (p.overflow)
		return ctl_usage_error(c->cmd, "%s", "the filters make too long a URL");
	ctl_catch_interrupt();
	fprintf(
	    stderr, "hookctl: forwarding new events from %s to %s (^C to stop)\n", c->url, l.to);
	rc = ctl_follow(c, p.buf, &f);
	fprintf(stderr, "hookctl: %lu events forwarded, %lu not accepted\n", l.forwarded, l.failed);
	return rc;
}
