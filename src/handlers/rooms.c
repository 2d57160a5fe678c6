/*
 * rooms.c - a Daily room's timeline told apart into its meetings.
 *
 * Owns the grouping rule of docs/api.md "Rooms". A room name is reused by
 * many meetings, and most events do not say which one they belong to: Daily
 * names the meeting in meeting.* (meeting_id) and transcript.* (its meeting
 * session), PailFlow in session_complete's room_id; a participant, a
 * recording or a bot's failure only has a time. So an event that names a
 * meeting belongs to it, and any other to the meeting under way at its time
 * (meeting_at_time: with HR_ROOM_SKEW_US of slack); events before any meeting,
 * or well after the last one ended, go to a last group whose meeting_id is null. A recording's
 * events go to the meeting its start went to (an upload failure comes after the meeting ended, a
 * finished one may name no time of its own), an AgentHuman session's snapshots to its started
 * one's (its created one comes before the meeting starts). Events arrive in time order (the store's
 * timeline), but a Daily retry is stamped when it was sent again: a state never goes back (a
 * started after ready or error is old news), and an event naming only a recording's instance is of
 * the recording its instance held at its time (an instance is reused).
 *
 * What a kind contributes (participant, recording, outcome...) is its
 * descriptor's room_role; the values shown are its room facts (kinds.c,
 * kinds_daily.c), kept with each event when it was stored.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hr/event.h"
#include "hr/rooms.h"
#include "hr/schema.h"
#include "hr/timefmt.h"

struct revent {
	char *id;
	const struct hr_kind_desc *desc; /* NULL: a kind this build does not know */
	char *provider, *subtype, *meeting, *recording;
	json_t *facts; /* owned; an empty object when none */
	int64_t t_occ; /* occurred, else received */
	int64_t t_in;  /* the time inside its meeting: meeting_at, else t_occ */
	bool has_in;   /* meeting_at was given */
	bool timed;    /* t_in is a time the event states, not when it arrived */
};

struct hr_rooms {
	size_t n, max;
	struct revent *ev;
};

struct meeting {
	const char *id; /* borrowed from an event; NULL: the group of no meeting */
	bool has_start, has_end;
	int64_t start, end, first;
};

struct hr_rooms *
hr_rooms_new(size_t max)
{
	struct hr_rooms *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	r->max = max;
	if (max > 0 && (r->ev = calloc(max, sizeof(*r->ev))) == NULL) {
		free(r);
		return NULL;
	}
	return r;
}

static void
revent_clear(struct revent *e)
{
	free(e->id);
	free(e->provider);
	free(e->subtype);
	free(e->meeting);
	free(e->recording);
	json_decref(e->facts);
}

void
hr_rooms_free(struct hr_rooms *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->n; i++)
		revent_clear(&r->ev[i]);
	free(r->ev);
	free(r);
}

/* A copy of `s`; *ok turns false when `s` was not NULL and the copy failed. */
static char *
dup_opt(const char *s, bool *ok)
{
	char *d = s != NULL ? strdup(s) : NULL;

	if (s != NULL && d == NULL)
		*ok = false;
	return d;
}

int
hr_rooms_add(struct hr_rooms *r, const struct hr_event_row *row)
{
	struct revent *e;
	bool ok = true;
	int kind;

	if (r->n >= r->max)
		return HR_ETOOBIG;
	e = &r->ev[r->n];
	memset(e, 0, sizeof(*e));
	kind = hr_kind_from_name(row->kind);
	e->desc = kind >= 0 ? hr_kind_desc((enum hr_kind)kind) : NULL;
	e->id = dup_opt(row->id, &ok);
	e->provider = dup_opt(row->provider, &ok);
	e->subtype = dup_opt(row->subtype, &ok);
	e->meeting = dup_opt(row->meeting, &ok);
	e->recording = dup_opt(row->recording, &ok);
	/* The facts are our own JSON text of the body's values: a \u0000 of a name
	 * (now read, cff3802) made the text unreadable, and every fact of the event
	 * was dropped from the room's view. So for every stored JSON text read. */
	e->facts =
	    row->facts_json != NULL ? json_loads(row->facts_json, JSON_ALLOW_NUL, NULL) : NULL;
	if (!json_is_object(e->facts)) {
		json_decref(e->facts);
		e->facts = json_object();
	}
	e->t_occ = row->occurred_valid ? row->occurred_us : row->received_us;
	e->has_in = row->meeting_at_valid;
	e->timed = row->meeting_at_valid || row->occurred_valid;
	e->t_in = row->meeting_at_valid ? row->meeting_at_us : e->t_occ;
	if (!ok || e->id == NULL || e->facts == NULL) {
		revent_clear(e);
		return HR_ENOMEM;
	}
	r->n++;
	return HR_OK;
}

static enum hr_room_role
role_of(const struct revent *e)
{
	return e->desc != NULL ? e->desc->room_role : HR_ROOM_NONE;
}

/* The index of meeting `id` in `m` (adding it); `n` is updated. */
static size_t
meeting_index(struct meeting *m, size_t *n, const char *id)
{
	for (size_t i = 0; i < *n; i++)
		if (m[i].id != NULL && strcmp(m[i].id, id) == 0)
			return i;
	memset(&m[*n], 0, sizeof(m[*n]));
	m[*n].id = id;
	return (*n)++;
}

/* What meeting.started / meeting.ended say about their meeting's span. */
static void
note_span(struct meeting *m, const struct revent *e)
{
	if (role_of(e) == HR_ROOM_MEETING_START && !m->has_start) {
		m->has_start = true;
		m->start = e->t_occ; /* start_ts */
	} else if (role_of(e) == HR_ROOM_MEETING_END) {
		m->has_end = true;
		m->end = e->t_occ; /* end_ts */
		/* meeting.ended's start_ts. Without one the event stored its own end as
		 * its time inside the meeting (event.c): that is no start. */
		if (!m->has_start && e->has_in && e->t_in != e->t_occ) {
			m->has_start = true;
			m->start = e->t_in;
		}
	}
}

/*
 * The meeting of an event that names none, by its time `t`: the meeting under
 * way at t (started, not ended; the latest to start if several are), else the
 * one that started most recently, up to HR_ROOM_SKEW_US after t (clocks
 * differ), and had not ended more than that before t. A room left and entered
 * again within the slack is two meetings, and a participant of the first is
 * not the second's. An event timed only by its arrival (`timed` false: a
 * PailFlow session_complete without room_id, sent once the meeting is over)
 * goes to the meeting that started most recently, ended or not. `none` when
 * no meeting fits.
 */
static size_t
meeting_at_time(const struct meeting *m, size_t n, int64_t t, bool timed, size_t none)
{
	size_t under_way = none, near = none;

	for (size_t i = 0; i < n; i++) {
		if (!m[i].has_start || m[i].start > t + HR_ROOM_SKEW_US)
			continue;
		if (m[i].start <= t && (!m[i].has_end || t <= m[i].end) &&
		    (under_way == none || m[i].start > m[under_way].start))
			under_way = i;
		if (timed && m[i].has_end && t > m[i].end + HR_ROOM_SKEW_US)
			continue;
		if (near == none || m[i].start > m[near].start)
			near = i;
	}
	return under_way != none ? under_way : near;
}

/* Put every event in a meeting; `where[i]` is event i's, `none` for no meeting. */
static size_t
assign(const struct hr_rooms *r, struct meeting *m, size_t *where, size_t none)
{
	size_t n = 0;

	for (size_t i = 0; i < r->n; i++) {
		where[i] = none;
		if (r->ev[i].meeting != NULL) {
			where[i] = meeting_index(m, &n, r->ev[i].meeting);
			note_span(&m[where[i]], &r->ev[i]);
		}
	}
	for (size_t i = 0; i < r->n; i++)
		if (where[i] == none)
			where[i] = meeting_at_time(m, n, r->ev[i].t_in, r->ev[i].timed, none);
	for (size_t i = 0; i < r->n; i++) {
		struct meeting *mm = where[i] == none ? &m[none] : &m[where[i]];

		if (mm->first == 0 || r->ev[i].t_in < mm->first)
			mm->first = r->ev[i].t_in;
	}
	return n;
}

static json_t *
time_json(bool has, int64_t us)
{
	char buf[32];

	if (!has)
		return json_null();
	hr_time_format(us, buf, sizeof(buf));
	return json_string(buf);
}

static const char *
fact_text(const struct revent *e, const char *name)
{
	return json_string_value(json_object_get(e->facts, name));
}

/* The entry keyed `key` of `map` (created from `init`, taken, when new). */
static json_t *
entry(json_t *map, const char *key, json_t *init)
{
	json_t *o = json_object_get(map, key);

	if (o != NULL) {
		json_decref(init);
		return o;
	}
	if (init == NULL || json_object_set_new(map, key, init) != 0)
		return NULL;
	return init;
}

/* How far along a state is: created, then started, then anything that ends. */
static int
state_rank(const char *state)
{
	return strcmp(state, "created") == 0 ? 0 : strcmp(state, "started") == 0 ? 1 : 2;
}

/* Merge `e`'s facts and state into entry `o`, and list the event. A state does
 * not go back: a recording.started that Daily sent again after the recording's
 * ready-to-download (stamped with the later send time) left it "started". */
static void
merge(json_t *o, const struct revent *e, const char *state)
{
	const char *was;

	if (o == NULL)
		return;
	was = json_string_value(json_object_get(o, "state"));
	if (state != NULL && (was == NULL || state_rank(state) >= state_rank(was)))
		json_object_set_new(o, "state", json_string(state));
	json_object_update(o, e->facts); /* no kind keeps a fact named "state" */
	json_array_append_new(json_object_get(o, "events"), json_string(e->id));
}

static const char *
state_of(const struct revent *e)
{
	return e->desc != NULL && e->desc->room_state != NULL ? e->desc->room_state : e->subtype;
}

static void
add_participant(json_t *map, const struct revent *e)
{
	const char *state = state_of(e), *pid = fact_text(e, "session_id");
	bool waiting = state != NULL && strncmp(state, "waiting", 7) == 0;
	char key[300];
	json_t *o;

	snprintf(key, sizeof(key), "%s%s", waiting ? "waiting:" : "",
	    pid != NULL                           ? pid
	        : fact_text(e, "user_id") != NULL ? fact_text(e, "user_id")
	                                          : e->id);
	o = entry(map, key,
	    json_pack("{s:s?, s:n, s:n, s:b, s:[]}", "participant_id", pid, "joined_at", "left_at",
	        "waiting", waiting, "events"));
	if (o == NULL)
		return;
	json_object_update(o, e->facts);
	json_object_del(o, "session_id"); /* shown as participant_id */
	if (json_is_null(json_object_get(o, "joined_at")))
		json_object_set_new(o, "joined_at", time_json(true, e->t_in));
	if (state != NULL && strstr(state, "left") != NULL)
		json_object_set_new(o, "left_at", time_json(true, e->t_occ));
	json_array_append_new(json_object_get(o, "events"), json_string(e->id));
}

/* The recording instance an event names: not Daily's default one, which every
 * recording started without its own has, in every room (HR_DAILY_DEFAULT_INSTANCE). */
static const char *
instance_of(const struct revent *e)
{
	const char *instance = fact_text(e, "instance_id");

	return hr_instance_names_one(instance) ? instance : NULL;
}

/*
 * The entry of a recording: its recording id where the event names one. An
 * instance is a recording slot, not a recording: an app may start one recording
 * after another under an instanceId of its own, as every recording started
 * without one has Daily's default. So an event that names only the instance (a
 * failed recording's recording.error names the room and the instance, no
 * recording) goes to the recording its instance was recording then (`owners`:
 * event id -> recording, room_owners()), else to the instance itself.
 */
static const char *
recording_key(json_t *owners, const struct revent *e)
{
	const char *owner;

	if (e->recording != NULL)
		return e->recording;
	owner = json_string_value(json_object_get(owners, e->id));
	if (owner != NULL)
		return owner;
	return instance_of(e) != NULL ? instance_of(e) : e->id;
}

static bool
is_state(const struct revent *e, const char *state)
{
	return state_of(e) != NULL && strcmp(state_of(e), state) == 0;
}

/* The recording.started under `instance` latest at or before `e`'s time: the
 * recording the instance held when `e` was sent; NULL when none. */
static const struct revent *
start_before(const struct hr_rooms *r, const struct revent *e, const char *instance)
{
	const struct revent *best = NULL;

	for (size_t i = 0; i < r->n; i++) {
		const struct revent *s = &r->ev[i];

		if (role_of(s) != HR_ROOM_RECORDING || s->recording == NULL ||
		    !is_state(s, "started") || instance_of(s) == NULL ||
		    strcmp(instance_of(s), instance) != 0 || s->t_in > e->t_in)
			continue;
		if (best == NULL || s->t_in > best->t_in)
			best = s;
	}
	return best;
}

/* event id -> recording, for the room's recording events that name only an
 * instance (start_before()). */
static json_t *
room_owners(const struct hr_rooms *r)
{
	json_t *owners = json_object();

	for (size_t i = 0; owners != NULL && i < r->n; i++) {
		const struct revent *e = &r->ev[i], *s;

		if (role_of(e) != HR_ROOM_RECORDING || e->recording != NULL ||
		    instance_of(e) == NULL)
			continue;
		if ((s = start_before(r, e, instance_of(e))) != NULL)
			json_object_set_new(owners, e->id, json_string(s->recording));
	}
	return owners;
}

/* The entry an outcome is merged into: its session (an AgentHuman session's
 * snapshots), else the event alone. */
static const char *
outcome_key(const struct revent *e)
{
	return fact_text(e, "session_id") != NULL ? fact_text(e, "session_id") : e->id;
}

/*
 * An entry's events go to the meeting its anchor (its event of `role` in
 * `state`) went to. A recording's follow its start: recording.error of an
 * upload that failed after the meeting ended fell into the group of no
 * meeting, and a ready-to-download without a time of its own into the meeting
 * under way when it was sent (a review). An AgentHuman session's follow its
 * started (else ended) snapshot: its created one, sent before the avatar
 * joined and the meeting started, was a second, stale entry in the group of
 * no meeting. A later call's anchor wins.
 */
static void
follow(const struct hr_rooms *r, size_t *where, json_t *owners, enum hr_room_role role,
    const char *state)
{
	for (size_t i = 0; i < r->n; i++) {
		const struct revent *e = &r->ev[i];
		const char *key;

		if (role_of(e) != role || !is_state(e, state))
			continue;
		key = role == HR_ROOM_RECORDING ? recording_key(owners, e) : outcome_key(e);
		for (size_t j = 0; j < r->n; j++) {
			const struct revent *o = &r->ev[j];

			if (j != i && role_of(o) == role &&
			    strcmp(role == HR_ROOM_RECORDING ? recording_key(owners, o)
			                                     : outcome_key(o),
			        key) == 0)
				where[j] = where[i];
		}
	}
}

/* One meeting's participants, outcomes, recordings and transcripts (maps[0..3],
 * shown); maps[4]: the room's recording owners (room_owners(), borrowed). */
static int
add_to_meeting(json_t *maps[5], json_t *events, const struct revent *e)
{
	json_t *o;
	const char *key;

	switch (role_of(e)) {
	case HR_ROOM_PARTICIPANT:
		add_participant(maps[0], e);
		break;
	case HR_ROOM_OUTCOME:
		merge(entry(maps[1], outcome_key(e),
		          json_pack("{s:s?, s:s?, s:[]}", "kind", e->desc->name, "provider",
		              e->provider, "events")),
		    e, state_of(e));
		break;
	case HR_ROOM_RECORDING:
		o = entry(maps[2], recording_key(maps[4], e),
		    json_pack("{s:s?, s:[]}", "recording_id", e->recording, "events"));
		merge(o, e, state_of(e));
		if (o != NULL && e->recording != NULL &&
		    json_is_null(json_object_get(o, "recording_id")))
			json_object_set_new(o, "recording_id", json_string(e->recording));
		break;
	case HR_ROOM_TRANSCRIPT:
		key = fact_text(e, "id") != NULL ? fact_text(e, "id") : e->id;
		merge(entry(maps[3], key,
		          json_pack("{s:s?, s:[]}", "transcript_id", fact_text(e, "id"), "events")),
		    e, state_of(e));
		json_object_del(json_object_get(maps[3], key), "id"); /* shown as transcript_id */
		break;
	default:
		break;
	}
	return json_array_append_new(events, json_string(e->id)) == 0 ? HR_OK : HR_ENOMEM;
}

/* The values of `map`, in the order they were first seen. */
static json_t *
values(json_t *map)
{
	json_t *arr = json_array(), *v;
	const char *k;

	json_object_foreach(map, k, v) json_array_append(arr, v);
	return arr;
}

static json_t *
meeting_json(const struct hr_rooms *r, const struct meeting *m, const size_t *where, size_t ix,
    json_t *owners)
{
	json_t *maps[5] = { json_object(), json_object(), json_object(), json_object(),
		json_incref(owners) };
	json_t *events = json_array(), *o = NULL;
	bool ok = events != NULL;

	for (size_t i = 0; ok && i < r->n; i++)
		if (where[i] == ix)
			ok = add_to_meeting(maps, events, &r->ev[i]) == HR_OK;
	if (ok)
		o = json_pack("{s:s?, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:O}", "meeting_id", m->id,
		    "started_at", time_json(m->has_start, m->start), "ended_at",
		    time_json(m->has_end, m->end), "duration",
		    m->has_start && m->has_end ? json_real((double)(m->end - m->start) / 1e6)
		                               : json_null(),
		    "participants", values(maps[0]), "outcomes", values(maps[1]), "recordings",
		    values(maps[2]), "transcripts", values(maps[3]), "events", events);
	for (size_t i = 0; i < 5; i++)
		json_decref(maps[i]);
	json_decref(events);
	return o;
}

/* Meetings by start (or first event when no start is known), for qsort_r-free sorting. */
static int64_t
sort_time(const struct meeting *m)
{
	return m->has_start ? m->start : m->first;
}

json_t *
hr_rooms_meetings_json(const struct hr_rooms *r)
{
	struct meeting *m = calloc(r->n + 1, sizeof(*m));
	size_t *where = calloc(r->n + 1, sizeof(*where)), *order = NULL, n = 0, none = r->n;
	json_t *arr = json_array(), *owners = room_owners(r);
	bool used_none = false;

	if (m == NULL || where == NULL || arr == NULL || owners == NULL ||
	    (order = calloc(r->n + 1, sizeof(*order))) == NULL)
		goto fail;
	n = assign(r, m, where, none);
	follow(r, where, owners, HR_ROOM_RECORDING, "started");
	follow(r, where, owners, HR_ROOM_OUTCOME, "ended");
	follow(r, where, owners, HR_ROOM_OUTCOME, "started");
	for (size_t i = 0; i < n; i++) { /* insertion sort: a room has few meetings */
		size_t j = i;

		while (j > 0 && sort_time(&m[order[j - 1]]) > sort_time(&m[i])) {
			order[j] = order[j - 1];
			j--;
		}
		order[j] = i;
	}
	for (size_t i = 0; i < r->n; i++)
		used_none |= where[i] == none;
	if (used_none)
		order[n++] = none;
	for (size_t i = 0; i < n; i++)
		if (json_array_append_new(
		        arr, meeting_json(r, &m[order[i]], where, order[i], owners)) != 0)
			goto fail;
	free(m);
	free(where);
	free(order);
	json_decref(owners);
	return arr;
fail:
	free(m);
	free(where);
	free(order);
	json_decref(owners);
	json_decref(arr);
	return NULL;
}
