/*
 * classify.c - which kind a JSON body is: SPEC.md section 7, first match wins.
 *
 * The providers share no discriminator: PailFlow uses `event` for one event
 * and `event_type` for the other, Tavus sends three unrelated families (two
 * without any event field), AgentHuman bodies are REST objects. The rules
 * below run in SPEC order, each tagged with its provider so a source's hint
 * can restrict them. "Present" means the key exists with a non-null value.
 *
 * Only the event names the seeds document select a typed kind, whose struct
 * may refuse a body (422). A provider adds events without notice and Tavus
 * and PailFlow never retry, so a body that is recognisably a provider's but
 * names an event we do not know is that provider's unknown kind: stored,
 * correlated where it carries a key, forwarded, never refused.
 *
 * Daily.co (docs/events.md "Daily") is not in SPEC.md section 7: its
 * envelope {version, type, id, payload, event_ts} shares no key with the
 * others, so its rule runs last. The kind is "daily." + type, looked up in
 * the Daily tables; a type they lack is daily.unknown.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "hr/classify.h"
#include "hr/schema.h"

/* Tavus conversation-family event_type names with a typed kind (rule 3). */
static const struct {
	const char *event_type;
	enum hr_kind kind;
} tavus_events[] = {
	{ "system.replica_joined", HR_KIND_TAVUS_REPLICA_JOINED },
	{ "system.pal_joined", HR_KIND_TAVUS_REPLICA_JOINED }, /* the same event, renamed */
	{ "system.shutdown", HR_KIND_TAVUS_SHUTDOWN },
	{ "application.transcription_ready", HR_KIND_TAVUS_TRANSCRIPTION_READY },
	{ "application.recording_ready", HR_KIND_TAVUS_RECORDING_READY },
	{ "application.recording_copy_failed", HR_KIND_TAVUS_RECORDING_COPY_FAILED },
	{ "application.perception_analysis", HR_KIND_TAVUS_PERCEPTION_ANALYSIS },
	{ "application.perception_unavailable", HR_KIND_TAVUS_PERCEPTION_UNAVAILABLE },
	{ "application.post_call_action_executed", HR_KIND_TAVUS_POST_CALL_ACTION_EXECUTED },
	{ "conversation.objective.completed", HR_KIND_TAVUS_OBJECTIVE_COMPLETED },
};

static bool
present(const json_t *root, const char *key)
{
	const json_t *v = json_object_get(root, key);

	return v != NULL && !json_is_null(v);
}

/* The string value of `key`, or NULL if absent or not a string. */
static const char *
string_of(const json_t *root, const char *key)
{
	return json_string_value(json_object_get(root, key));
}

/* AgentHuman ids start sess_ (seed 002). */
static bool
is_session_id(const json_t *v)
{
	const char *id = json_string_value(v);

	return id != NULL && strncmp(id, "sess_", 5) == 0;
}

/* Rule 1: the only family with the key `event`. */
static bool
rule_session_complete(const json_t *root, enum hr_kind *out)
{
	const char *ev = string_of(root, "event");

	*out = HR_KIND_PAILFLOW_SESSION_COMPLETE;
	return ev != NULL && strcmp(ev, "session_complete") == 0;
}

/* Rule 2: the other documented PailFlow event, keyed `event_type`. */
static bool
rule_bot_join_failed(const json_t *root, enum hr_kind *out)
{
	const char *et = string_of(root, "event_type");

	*out = HR_KIND_PAILFLOW_BOT_JOIN_FAILED;
	return et != NULL && strcmp(et, "bot_join_failed") == 0;
}

/*
 * Rule 2, changed 2026-12-02: a PailFlow event we do not know yet. Either
 * family's key with another name, next to a key only PailFlow sends: a
 * dot-less event_type with workflow_thread_id or room_url (bot_joined,
 * bot_left...), or an event with room_name or room_id.
 */
static bool
rule_pailflow_unknown(const json_t *root, enum hr_kind *out)
{
	const char *et = string_of(root, "event_type"), *ev = string_of(root, "event");

	*out = HR_KIND_PAILFLOW_UNKNOWN;
	if (et != NULL && strchr(et, '.') == NULL &&
	    (present(root, "workflow_thread_id") || present(root, "room_url")))
		return true;
	return ev != NULL && (present(root, "room_name") || present(root, "room_id"));
}

/* Rule 3: any dotted event_type; names without a typed kind are tavus.unknown. */
static bool
rule_tavus_conversation(const json_t *root, enum hr_kind *out)
{
	const char *et = string_of(root, "event_type");

	if (et == NULL || strchr(et, '.') == NULL)
		return false;
	*out = HR_KIND_TAVUS_UNKNOWN;
	for (size_t i = 0; i < HR_ARRAY_LEN(tavus_events); i++) {
		if (strcmp(tavus_events[i].event_type, et) == 0) {
			*out = tavus_events[i].kind;
			break;
		}
	}
	return true;
}

/* Rule 4 runs before 5: video bodies also carry replica_id and status. */
static bool
rule_tavus_video(const json_t *root, enum hr_kind *out)
{
	*out = HR_KIND_TAVUS_VIDEO;
	return !present(root, "event") && !present(root, "event_type") &&
	    present(root, "video_id") &&
	    (present(root, "hosted_url") || present(root, "generation_progress"));
}

static bool
rule_tavus_replica(const json_t *root, enum hr_kind *out)
{
	static const char *const absent[] = { "event", "event_type", "video_id",
		"conversation_id" };

	*out = HR_KIND_TAVUS_REPLICA_TRAINING;
	for (size_t i = 0; i < HR_ARRAY_LEN(absent); i++)
		if (present(root, absent[i]))
			return false;
	return present(root, "replica_id") && present(root, "status");
}

static bool
rule_agenthuman(const json_t *root, enum hr_kind *out)
{
	*out = HR_KIND_AGENTHUMAN_SESSION;
	return is_session_id(json_object_get(root, "session_id")) && present(root, "session_type");
}

/* Rule 6's id without the session object: a wrapped REST answer
 * ({success, session{...}}) or an event about a session. */
static bool
rule_agenthuman_unknown(const json_t *root, enum hr_kind *out)
{
	*out = HR_KIND_AGENTHUMAN_UNKNOWN;
	return is_session_id(json_object_get(root, "session_id")) ||
	    is_session_id(json_object_get(json_object_get(root, "session"), "session_id"));
}

/*
 * A Daily envelope: a dotted `type` (no other provider uses the key `type`),
 * an object `payload`, and the envelope's version or event_ts beside them.
 */
static bool
rule_daily(const json_t *root, enum hr_kind *out)
{
	const char *type = string_of(root, "type");
	char name[128];
	int k;

	*out = HR_KIND_DAILY_UNKNOWN;
	if (type == NULL || strchr(type, '.') == NULL ||
	    !json_is_object(json_object_get(root, "payload")) ||
	    (!present(root, "version") && !present(root, "event_ts")))
		return false;
	if ((size_t)snprintf(name, sizeof(name), "daily.%s", type) < sizeof(name) &&
	    (k = hr_kind_from_name(name)) >= 0 &&
	    hr_kind_provider((enum hr_kind)k) == HR_PROVIDER_DAILY)
		*out = (enum hr_kind)k;
	return true;
}

static const struct {
	enum hr_provider provider;
	bool (*match)(const json_t *, enum hr_kind *);
} rules[] = {
	{ HR_PROVIDER_PAILFLOW, rule_session_complete },
	{ HR_PROVIDER_PAILFLOW, rule_bot_join_failed },
	{ HR_PROVIDER_PAILFLOW, rule_pailflow_unknown },
	{ HR_PROVIDER_TAVUS, rule_tavus_conversation },
	{ HR_PROVIDER_TAVUS, rule_tavus_video },
	{ HR_PROVIDER_TAVUS, rule_tavus_replica },
	{ HR_PROVIDER_AGENTHUMAN, rule_agenthuman },
	{ HR_PROVIDER_AGENTHUMAN, rule_agenthuman_unknown },
	{ HR_PROVIDER_DAILY, rule_daily },
};

/* What a body that matches no rule of its source's provider is. */
static const enum hr_kind provider_unknown[] = {
	[HR_PROVIDER_AUTO] = HR_KIND_UNKNOWN,
	[HR_PROVIDER_TAVUS] = HR_KIND_TAVUS_UNKNOWN,
	[HR_PROVIDER_PAILFLOW] = HR_KIND_PAILFLOW_UNKNOWN,
	[HR_PROVIDER_AGENTHUMAN] = HR_KIND_AGENTHUMAN_UNKNOWN,
	[HR_PROVIDER_DAILY] = HR_KIND_DAILY_UNKNOWN,
};

enum hr_kind
hr_classify(const json_t *root, enum hr_provider hint)
{
	enum hr_kind kind;

	if (!json_is_object(root))
		return HR_KIND_UNKNOWN; /* kept raw whatever the source */
	for (size_t i = 0; i < HR_ARRAY_LEN(rules); i++) {
		if (hint != HR_PROVIDER_AUTO && rules[i].provider != hint)
			continue;
		if (rules[i].match(root, &kind))
			return kind;
	}
	if ((size_t)hint >= HR_ARRAY_LEN(provider_unknown))
		return HR_KIND_UNKNOWN;
	return provider_unknown[hint];
}
