/*
 * rooms.h - a Daily room's timeline told apart into its meetings.
 *
 * Room names are reused: one room has many meetings. GET /v1/sessions/room:X
 * feeds its timeline's events (in time order) to a builder, which puts each
 * into a meeting and sums up what a meeting had: participants, the bots' and
 * avatar sessions' outcomes, recordings and transcripts (docs/api.md "Rooms").
 */
#ifndef HR_ROOMS_H
#define HR_ROOMS_H

#include <jansson.h>

#include "hr/common.h"
#include "hr/store.h"

/*
 * An event that names no meeting belongs to the meeting that had started
 * most recently at its time, allowing for this much clock skew between the
 * senders (a participant's joined_at may precede the meeting's start_ts).
 */
#define HR_ROOM_SKEW_US (INT64_C(30) * 1000000)

struct hr_rooms; /* opaque */

/* A new builder holding at most `max` events; NULL on ENOMEM. */
struct hr_rooms *hr_rooms_new(size_t max);
/* Add one timeline event (borrowed; what is needed is copied). HR_OK, HR_ENOMEM, or
 * HR_ETOOBIG past `max`. */
int hr_rooms_add(struct hr_rooms *, const struct hr_event_row *) HR_WUR;
/* The meetings, oldest first, and last (meeting_id null) the events no meeting
 * claims; new reference, NULL on ENOMEM. */
json_t *hr_rooms_meetings_json(const struct hr_rooms *);
void hr_rooms_free(struct hr_rooms *); /* NULL is fine */

#endif
