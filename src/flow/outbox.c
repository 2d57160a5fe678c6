/*
 * outbox.c - routing: which destinations an event goes to.
 *
 * Matching runs on the HTTP thread so the writer can put the delivery rows
 * in the event's own transaction (the transactional outbox). Where a
 * delivery may then connect to is the SSRF guard's (netaddr_guard.c).
 */
#include <fnmatch.h>
#include <string.h>

#include "hr/outbox.h"

static bool
list_accepts(const struct hr_strlist *l, const char *value, bool glob)
{
	if (l->n == 0)
		return true;
	for (size_t i = 0; i < l->n; i++)
		if (glob ? fnmatch(l->v[i], value, 0) == 0 : strcmp(l->v[i], value) == 0)
			return true;
	return false;
}

size_t
hr_outbox_match(const struct hr_cfg *cfg, const char *source, const char *kind, const char **names,
    bool *ordered, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < cfg->ndestinations && n < max; i++) {
		const struct hr_destination_cfg *d = &cfg->destinations[i];

		if (!list_accepts(&d->sources, source, false) ||
		    !list_accepts(&d->match, kind, true))
			continue;
		names[n] = d->name;
		ordered[n] = d->ordered;
		n++;
	}
	return n;
}
