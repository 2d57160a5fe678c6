/*
 * reqcounts.h - answers to POST /hooks/{source} per source, by kind and
 * HTTP status, for /metrics.
 */
#ifndef HR_REQCOUNTS_H
#define HR_REQCOUNTS_H

#include <stdatomic.h>
#include <stddef.h>

#include "hr/model.h"

/*
 * The kinds are the closed enum hr_kind plus "none" (not decoded); the statuses
 * are those ingest can answer plus "other", so a source costs a fixed,
 * small array and the label set stays bounded.
 */
#define HR_REQ_KIND_SLOTS   (HR_KIND_COUNT + 1) /* the last: "none" */
#define HR_REQ_STATUS_SLOTS 12                  /* the last: "other" */

struct hr_request_counts {
	atomic_ulong n[HR_REQ_KIND_SLOTS][HR_REQ_STATUS_SLOTS];
};

/* `kind` < 0 or out of range: "none". */
void hr_request_counts_add(struct hr_request_counts *, int kind, int status);
/* Carry counts over to a new configuration generation (a reload). */
void hr_request_counts_copy(struct hr_request_counts *to, const struct hr_request_counts *from);
/* Label values of a slot: "tavus.video" / "none", "200" / "other". */
const char *hr_request_kind_label(size_t kind_slot);
const char *hr_request_status_label(size_t status_slot);

#endif
