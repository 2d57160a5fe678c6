/* tests/unit/test_rooms.c - a room's timeline told apart into its meetings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hr/rooms.h"

#define S(x) (INT64_C(x) * 1000000) /* seconds -> microseconds */

/* One timeline row: kind, meeting (NULL: names none), meeting_at (0: none), occurred, facts. */
static struct hr_event_row
row(const char *id, const char *kind, const char *meeting, int64_t at, int64_t occurred,
    const char *facts)
{
	struct hr_event_row r;

	memset(&r, 0, sizeof(r));
	r.id = id;
	r.kind = kind;
	r.provider = strncmp(kind, "daily.", 6) == 0 ? "daily" : "pailflow";
	r.received_us = occurred + S(1);
	r.occurred_valid = true;
	r.occurred_us = occurred;
	r.meeting = meeting;
	r.meeting_at_valid = at != 0;
	r.meeting_at_us = at;
	r.room = "demo";
	r.facts_json = facts;
	return r;
}

static json_t *
meetings_of(const struct hr_event_row *rows, size_t n)
{
	struct hr_rooms *r = hr_rooms_new(n);
	json_t *m;

	assert_non_null(r);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(hr_rooms_add(r, &rows[i]), HR_OK);
	m = hr_rooms_meetings_json(r);
	hr_rooms_free(r);
	assert_non_null(m);
	return m;
}

static const char *
text(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static void
event_ids_are(json_t *meeting, const char *const *want, size_t n)
{
	json_t *ev = json_object_get(meeting, "events");

	assert_int_equal(json_array_size(ev), n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(json_string_value(json_array_get(ev, i)), want[i]);
}

/*
 * A reused room: meeting m1 (t=1000..1600), meeting m2 from t=5000. Events that
 * name no meeting go to the one started most recently at their time; a bot
 * failure before any meeting goes to the group of no meeting.
 */
static void
reused_room_is_told_apart_by_meeting_and_time(void **state)
{
	const struct hr_event_row rows[] = {
		row("e0", "pailflow.bot_join_failed", NULL, 0, S(900),
		    "{\"error_type\":\"room_not_found\"}"),
		row("e1", "daily.participant.joined", NULL, 0, S(985),
		    "{\"session_id\":\"p1\",\"user_name\":\"Ada\"}"), /* 15 s early: clock skew */
		row("e2", "daily.meeting.started", "m1", 0, S(1000), NULL),
		row("e3", "daily.participant.joined", NULL, 0, S(1005),
		    "{\"session_id\":\"p2\",\"user_name\":\"Bot\"}"),
		row("e4", "daily.participant.left", NULL, S(1005), S(1590),
		    "{\"session_id\":\"p2\",\"duration\":585}"),
		row("e5", "daily.meeting.ended", "m1", S(1000), S(1600), NULL),
		row("e6", "pailflow.session_complete", "m1", 0, S(1700),
		    "{\"exit_reason\":\"participant_left\",\"overall_score\":8}"),
		row("e7", "daily.meeting.started", "m2", 0, S(5000), NULL),
		row("e8", "daily.participant.joined", NULL, 0, S(5003), "{\"session_id\":\"p3\"}"),
		row("e9", "daily.transcript.ready-to-download", "m2", 0, S(6100),
		    "{\"id\":\"t1\",\"status\":\"finished\"}"),
		row("e10", "daily.recording.ready-to-download", NULL, S(5010), S(6200),
		    "{\"status\":\"finished\",\"duration\":1190}"),
	};
	static const char *const m1_events[] = { "e1", "e2", "e3", "e4", "e5", "e6" };
	static const char *const m2_events[] = { "e7", "e8", "e9", "e10" };
	json_t *m = meetings_of(rows, sizeof(rows) / sizeof(rows[0])), *m1, *m2, *none, *p;

	(void)state;
	assert_int_equal(json_array_size(m), 3);
	m1 = json_array_get(m, 0);
	m2 = json_array_get(m, 1);
	none = json_array_get(m, 2);

	assert_string_equal(text(m1, "meeting_id"), "m1");
	assert_string_equal(text(m1, "started_at"), "1970-01-01T00:16:40.000000Z");
	assert_string_equal(text(m1, "ended_at"), "1970-01-01T00:26:40.000000Z");
	assert_true(json_real_value(json_object_get(m1, "duration")) == 600.0);
	event_ids_are(m1, m1_events, 6);
	assert_int_equal(json_array_size(json_object_get(m1, "participants")), 2);
	p = json_array_get(json_object_get(m1, "participants"), 1);
	assert_string_equal(text(p, "participant_id"), "p2");
	assert_string_equal(text(p, "user_name"), "Bot");
	assert_string_equal(text(p, "joined_at"), "1970-01-01T00:16:45.000000Z");
	assert_string_equal(text(p, "left_at"), "1970-01-01T00:26:30.000000Z");
	assert_int_equal(json_integer_value(json_object_get(p, "duration")), 585);
	p = json_array_get(json_object_get(m1, "outcomes"), 0);
	assert_string_equal(text(p, "kind"), "pailflow.session_complete");
	assert_string_equal(text(p, "state"), "completed");
	assert_string_equal(text(p, "exit_reason"), "participant_left");

	assert_string_equal(text(m2, "meeting_id"), "m2");
	assert_true(json_is_null(json_object_get(m2, "ended_at")));
	event_ids_are(m2, m2_events, 4);
	p = json_array_get(json_object_get(m2, "recordings"), 0);
	assert_string_equal(text(p, "state"), "ready");
	p = json_array_get(json_object_get(m2, "transcripts"), 0);
	assert_string_equal(text(p, "transcript_id"), "t1");
	assert_null(json_object_get(p, "id"));

	assert_true(json_is_null(json_object_get(none, "meeting_id")));
	p = json_array_get(json_object_get(none, "outcomes"), 0);
	assert_string_equal(text(p, "state"), "failed");
	assert_string_equal(text(p, "error_type"), "room_not_found");
	json_decref(m);
}

/*
 * A room left and entered again within the 30-s slack: meeting mA 0..20 s,
 * mB from 25 s. Ada and Bob were in mA only. They used to go to mB, the meeting
 * that had started most recently within the slack of their times, leaving mA
 * with no participants.
 */
static void
a_meeting_that_starts_soon_after_takes_nothing_of_the_one_before(void **state)
{
	const struct hr_event_row rows[] = {
		row("s1", "daily.meeting.started", "mA", 0, S(1000), NULL),
		row("j1", "daily.participant.joined", NULL, 0, S(1001), "{\"session_id\":\"ada\"}"),
		row("j2", "daily.participant.joined", NULL, 0, S(1010), "{\"session_id\":\"bob\"}"),
		row("l2", "daily.participant.left", NULL, S(1010), S(1018),
		    "{\"session_id\":\"bob\"}"),
		row("e1", "daily.meeting.ended", "mA", S(1000), S(1020), NULL),
		row("s2", "daily.meeting.started", "mB", 0, S(1025), NULL),
		row("j3", "daily.participant.joined", NULL, 0, S(1024), "{\"session_id\":\"cy\"}"),
	};
	static const char *const a_events[] = { "s1", "j1", "j2", "l2", "e1" };
	static const char *const b_events[] = { "s2", "j3" };
	json_t *m = meetings_of(rows, sizeof(rows) / sizeof(rows[0]));

	(void)state;
	assert_int_equal(json_array_size(m), 2);
	assert_string_equal(text(json_array_get(m, 0), "meeting_id"), "mA");
	event_ids_are(json_array_get(m, 0), a_events, 5);
	assert_int_equal(json_array_size(json_object_get(json_array_get(m, 0), "participants")), 2);
	/* A second early for mB (clock skew): still mB's, not the ended mA's. */
	event_ids_are(json_array_get(m, 1), b_events, 2);
	json_decref(m);
}

/*
 * A bot's failure three days after the room's last meeting ended is no outcome
 * of that meeting; a session_complete that states no time (it comes once the
 * meeting is over) still is.
 */
static void
an_event_long_after_the_last_meeting_is_in_none(void **state)
{
	struct hr_event_row rows[] = {
		row("s1", "daily.meeting.started", "mA", 0, S(1000), NULL),
		row("e1", "daily.meeting.ended", "mA", S(1000), S(1600), NULL),
		row("sc", "pailflow.session_complete", NULL, 0, S(1700), NULL),
		row("f1", "pailflow.bot_join_failed", NULL, 0, S(1600 + 3 * 86400),
		    "{\"error_type\":\"room_not_found\"}"),
	};
	static const char *const a_events[] = { "s1", "e1", "sc" };
	static const char *const none_events[] = { "f1" };
	json_t *m;

	(void)state;
	rows[2].occurred_valid = false; /* timed by its arrival only */
	rows[2].received_us = S(1700);
	m = meetings_of(rows, sizeof(rows) / sizeof(rows[0]));
	assert_int_equal(json_array_size(m), 2);
	event_ids_are(json_array_get(m, 0), a_events, 3);
	assert_true(json_is_null(json_object_get(json_array_get(m, 1), "meeting_id")));
	event_ids_are(json_array_get(m, 1), none_events, 1);
	json_decref(m);
}

/*
 * A meeting.ended without start_ts (its meeting.started never came): the event
 * stored its own end as the time inside the meeting, and that is no start.
 */
static void
an_end_without_start_ts_leaves_the_start_unknown(void **state)
{
	const struct hr_event_row rows[] = {
		row("e1", "daily.participant.joined", NULL, 0, S(1570), "{\"session_id\":\"p1\"}"),
		row("e2", "daily.meeting.ended", "m1", S(1600), S(1600), NULL),
	};
	json_t *m = meetings_of(rows, 2), *m1 = json_array_get(m, 0);

	(void)state;
	assert_string_equal(text(m1, "meeting_id"), "m1");
	assert_true(json_is_null(json_object_get(m1, "started_at")));
	assert_string_equal(text(m1, "ended_at"), "1970-01-01T00:26:40.000000Z");
	assert_true(json_is_null(json_object_get(m1, "duration")));
	json_decref(m);
}

/* A participant's joined and left events are one participant, whatever came first. */
static void
a_participant_is_one_entry_with_its_latest_facts(void **state)
{
	const struct hr_event_row rows[] = {
		row("a", "daily.meeting.started", "m", 0, S(100), NULL),
		row("b", "daily.participant.joined", NULL, 0, S(110),
		    "{\"session_id\":\"p\",\"user_id\":\"u1\"}"),
		row("c", "daily.waiting-participant.joined", NULL, 0, S(111),
		    "{\"session_id\":\"p\",\"user_name\":\"lobby\"}"),
		row("d", "daily.participant.left", NULL, S(110), S(200),
		    "{\"session_id\":\"p\",\"user_id\":\"u1\",\"duration\":90}"),
	};
	json_t *m = meetings_of(rows, 4),
	       *ps = json_object_get(json_array_get(m, 0), "participants");
	json_t *p = json_array_get(ps, 0), *w = json_array_get(ps, 1);

	(void)state;
	assert_int_equal(json_array_size(ps), 2); /* the waiting-room entry is apart */
	assert_string_equal(text(p, "participant_id"), "p");
	assert_false(json_is_true(json_object_get(p, "waiting")));
	assert_int_equal(json_array_size(json_object_get(p, "events")), 2);
	assert_string_equal(text(p, "left_at"), "1970-01-01T00:03:20.000000Z");
	assert_true(json_is_true(json_object_get(w, "waiting")));
	json_decref(m);
}

/* Nothing names a meeting and none started: one group, meeting_id null. */
static void
events_without_meetings_form_one_group(void **state)
{
	const struct hr_event_row rows[] = {
		row("x", "pailflow.session_complete", NULL, 0, S(10), NULL),
		row("y", "daily.unknown", NULL, 0, S(20), NULL),
	};
	static const char *const ids[] = { "x", "y" };
	json_t *m = meetings_of(rows, 2);

	(void)state;
	assert_int_equal(json_array_size(m), 1);
	assert_true(json_is_null(json_object_get(json_array_get(m, 0), "meeting_id")));
	event_ids_are(json_array_get(m, 0), ids, 2);
	json_decref(m);
}

static void
builder_is_bounded(void **state)
{
	struct hr_rooms *r = hr_rooms_new(1);
	struct hr_event_row a = row("a", "daily.unknown", NULL, 0, S(1), NULL);

	(void)state;
	assert_int_equal(hr_rooms_add(r, &a), HR_OK);
	assert_int_equal(hr_rooms_add(r, &a), HR_ETOOBIG);
	hr_rooms_free(r);
	hr_rooms_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(reused_room_is_told_apart_by_meeting_and_time),
		cmocka_unit_test(a_meeting_that_starts_soon_after_takes_nothing_of_the_one_before),
		cmocka_unit_test(an_event_long_after_the_last_meeting_is_in_none),
		cmocka_unit_test(an_end_without_start_ts_leaves_the_start_unknown),
		cmocka_unit_test(a_participant_is_one_entry_with_its_latest_facts),
		cmocka_unit_test(events_without_meetings_form_one_group),
		cmocka_unit_test(builder_is_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
