/*
 * reqcounts.c - answers per source, kind and status: a fixed array of
 * relaxed atomic counters, so counting costs ingest no lock and no
 * allocation, and the label set of /metrics stays bounded.
 */
#include "hr/common.h"
#include "hr/reqcounts.h"

static const int statuses[HR_REQ_STATUS_SLOTS - 1] = { 200, 400, 401, 403, 404, 413, 415, 422, 429,
	500, 503 };
static const char *const status_labels[HR_REQ_STATUS_SLOTS] = { "200", "400", "401", "403", "404",
	"413", "415", "422", "429", "500", "503", "other" };

void
hr_request_counts_add(struct hr_request_counts *c, int kind, int status)
{
	size_t k = kind >= 0 && kind < HR_KIND_COUNT ? (size_t)kind : HR_REQ_KIND_SLOTS - 1;
	size_t s = 0;

	while (s < HR_ARRAY_LEN(statuses) && statuses[s] != status)
		s++;
	atomic_fetch_add_explicit(&c->n[k][s], 1, memory_order_relaxed);
}

void
hr_request_counts_copy(struct hr_request_counts *to, const struct hr_request_counts *from)
{
	for (size_t k = 0; k < HR_REQ_KIND_SLOTS; k++)
		for (size_t s = 0; s < HR_REQ_STATUS_SLOTS; s++)
			atomic_store_explicit(&to->n[k][s],
			    atomic_load_explicit(&from->n[k][s], memory_order_relaxed),
			    memory_order_relaxed);
}

const char *
hr_request_kind_label(size_t kind_slot)
{
	return kind_slot < HR_KIND_COUNT ? hr_kind_name((enum hr_kind)kind_slot) : "none";
}

const char *
hr_request_status_label(size_t status_slot)
{
	return status_slot < HR_REQ_STATUS_SLOTS ? status_labels[status_slot] : "other";
}
