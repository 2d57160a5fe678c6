/*
 * agewalk.c - where each source's pruning walks by age have come to. One
 * writer thread per engine reads and moves them, so there is no lock.
 */
#include "agewalk.h"

#include <stdlib.h>
#include <string.h>

struct hr_age_walk {
	char *source;
	int64_t floor[HR_AGE_KINDS];
};

int64_t *
hr_age_walk_floor(struct hr_age_walks *w, const char *source, int kind)
{
	struct hr_age_walk *grown;
	char *copy;

	for (size_t i = 0; i < w->n; i++)
		if (strcmp(w->v[i].source, source) == 0)
			return &w->v[i].floor[kind];
	if ((copy = strdup(source)) == NULL ||
	    (grown = realloc(w->v, (w->n + 1) * sizeof(*grown))) == NULL) {
		free(copy);
		return NULL;
	}
	w->v = grown;
	grown[w->n] = (struct hr_age_walk){ .source = copy };
	return &grown[w->n++].floor[kind];
}

int64_t
hr_age_window_end(int64_t floor, int64_t found, int64_t cutoff)
{
	if (found <= floor)
		found = floor + 1; /* a window's entries all of one instant: all of them */
	return found < cutoff ? found : cutoff;
}

bool
hr_age_walk_on(int64_t *floor, int64_t end, int64_t cutoff)
{
	*floor = end < cutoff ? end : 0;
	return end < cutoff;
}

int64_t
hr_age_walks_highest(const struct hr_age_walks *w, int kind)
{
	int64_t high = 0;

	for (size_t i = 0; i < w->n; i++)
		high = w->v[i].floor[kind] > high ? w->v[i].floor[kind] : high;
	return high;
}

void
hr_age_walks_free(struct hr_age_walks *w)
{
	for (size_t i = 0; i < w->n; i++)
		free(w->v[i].source);
	free(w->v);
	w->v = NULL;
	w->n = 0;
}
