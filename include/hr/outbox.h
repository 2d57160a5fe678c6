/* outbox.h - routing: which destinations an event goes to. */
#ifndef HR_OUTBOX_H
#define HR_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>

#include "hr/cfg.h"

/*
 * Fill names[]/ordered[] (up to `max`) with the destinations whose `sources`
 * and `match` globs (fnmatch) accept an event of `kind` from `source`.
 * Returns how many matched.
 */
size_t hr_outbox_match(const struct hr_cfg *, const char *source, const char *kind,
    const char **names, bool *ordered, size_t max);

#endif
