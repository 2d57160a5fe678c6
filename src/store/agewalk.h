/*
 * agewalk.h - where each source's pruning walks by age have come to, for the
 * engines' pruning passes (sqlite_prune.c, pg_prune.c).
 *
 * A walk takes a source's events oldest first, the candidates among at most
 * HR_AGE_WINDOW index entries per pass, and the next pass goes on where it
 * stopped. Events with a pending delivery are never pruned and stay at the head
 * of that order while their destination is down: a walk from the start every
 * pass went over all of them each time, on the writer. A walk that reaches its
 * cutoff starts over at the next pass, and so finds the events whose deliveries
 * ended meanwhile.
 */
#ifndef HR_STORE_AGEWALK_H
#define HR_STORE_AGEWALK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HR_AGE_WINDOW      10000 /* index entries a walk may pass over per pass (~6 ms) */
#define HR_AGE_TEXT_(n)    #n
#define HR_AGE_TEXT(n)     HR_AGE_TEXT_(n)
#define HR_AGE_WINDOW_TEXT HR_AGE_TEXT(HR_AGE_WINDOW) /* for an OFFSET in SQL */

enum { HR_AGE_ROWS, HR_AGE_PAYLOADS, HR_AGE_KINDS }; /* rows at twice retain, payloads at retain */

struct hr_age_walks {
	struct hr_age_walk *v;
	size_t n;
};

/* The received_at the next window of `source`'s walk of `kind` starts at (0: the
 * start), valid until a call that adds a source; NULL when out of memory (the
 * caller then walks from the start). */
int64_t *hr_age_walk_floor(struct hr_age_walks *, const char *source, int kind);

/* Where a window from `floor` ends, given `found`: the received_at HR_AGE_WINDOW
 * entries on, or `cutoff` when there are fewer before it. */
int64_t hr_age_window_end(int64_t floor, int64_t found, int64_t cutoff);

/* After a window [*floor, end) was taken whole: on to `end`, or back to the start
 * when `end` reached `cutoff`. True: the walk is not done. */
bool hr_age_walk_on(int64_t *floor, int64_t end, int64_t cutoff);

/* The highest floor of `kind` of every walk (0: no walk). */
int64_t hr_age_walks_highest(const struct hr_age_walks *, int kind);

void hr_age_walks_free(struct hr_age_walks *);

#endif
