/*
 * metrics.c - lock-free counters and histograms, and the Prometheus text
 * format (0.0.4) they are rendered in.
 *
 * Owns the bucket layouts of every histogram hookrelay exposes, so the
 * names, help texts and bounds of the whole /metrics page read as one
 * table. Observations are relaxed atomic adds: a scrape may see a sum one
 * observation ahead of its buckets, which Prometheus tolerates; the count
 * is derived from the buckets, so +Inf always equals _count.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hr/metrics.h"

#define US 1000000 /* a seconds histogram observes microseconds */

/* clang-format off */
const struct hr_hist_spec hr_hist_ack_latency = {
	"hookrelay_ack_latency_seconds",
	"Time from a webhook's request headers to its 2xx answer being ready (the event committed): accepted events and duplicates.",
	US, 12, { 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000 },
};
const struct hr_hist_spec hr_hist_commit_batch_size = {
	"hookrelay_commit_batch_size",
	"Jobs (events, rejections, attempt records, ...) written per group-commit transaction.",
	1, 11, { 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024 },
};
const struct hr_hist_spec hr_hist_commit_duration = {
	"hookrelay_commit_duration_seconds",
	"Time the writer took to write and commit one batch, fsync included.",
	US, 12, { 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000 },
};
const struct hr_hist_spec hr_hist_delivery_latency = {
	"hookrelay_delivery_latency_seconds",
	"Time from an event's receipt to the end of its successful delivery attempt, retries and replays included.",
	US, 16, { 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 5000000,
	    10000000, 30000000, 60000000, 300000000, 1800000000, 3600000000 },
};
const struct hr_hist_spec hr_hist_attempt_duration = {
	"hookrelay_delivery_attempt_duration_seconds",
	"Duration of one delivery attempt, whatever its outcome.",
	US, 14, { 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 5000000,
	    10000000, 15000000, 30000000, 60000000 },
};
/* clang-format on */

void
hr_hist_observe(struct hr_histogram *h, const struct hr_hist_spec *spec, int64_t v)
{
	size_t i = 0;

	if (v < 0)
		v = 0; /* a clock stepped back */
	while (i < spec->nbounds && v > spec->bounds[i])
		i++;
	atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum, (unsigned long long)v, memory_order_relaxed);
}

void
hr_hist_snap(const struct hr_histogram *h, struct hr_hist_snap *out)
{
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i <= HR_HIST_MAX_BUCKETS; i++) {
		out->buckets[i] = atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
		out->count += out->buckets[i];
	}
	out->sum = atomic_load_explicit(&h->sum, memory_order_relaxed);
}

static const char *const outcome_names[HR_OUTCOME_COUNT] = {
	[HR_OUTCOME_SUCCEEDED] = "succeeded",
	[HR_OUTCOME_RETRIED] = "retried",
	[HR_OUTCOME_FAILED] = "failed",
	[HR_OUTCOME_DEAD] = "dead",
	[HR_OUTCOME_GONE] = "gone",
	[HR_OUTCOME_BLOCKED] = "blocked",
};

const char *
hr_attempt_outcome_name(enum hr_attempt_outcome o)
{
	return (size_t)o < HR_OUTCOME_COUNT ? outcome_names[o] : "?";
}

/* ---- text ---- */

/* `s` with backslash and newline escaped, and the double quote too in label values. */
static void
put_escaped(struct hr_dynbuf *b, const char *s, bool quote)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\')
			hr_dynbuf_addf(b, "\\\\");
		else if (*s == '\n')
			hr_dynbuf_addf(b, "\\n");
		else if (*s == '"' && quote)
			hr_dynbuf_addf(b, "\\\"");
		else
			hr_dynbuf_addf(b, "%c", *s);
	}
}

/* value/scale as an exact decimal: 2500000/1000000 -> "2.5". `scale` is a power of 10. */
void
hr_metric_value(int64_t v, int64_t scale, char *buf, size_t len)
{
	unsigned long long a = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
	int digits = 0;
	size_t n;

	for (int64_t s = scale; s > 1 && digits < 18; s /= 10)
		digits++;
	if (digits == 0) {
		snprintf(buf, len, "%s%llu", v < 0 ? "-" : "", a);
		return;
	}
	snprintf(buf, len, "%s%llu.%0*llu", v < 0 ? "-" : "", a / (unsigned long long)scale, digits,
	    a % (unsigned long long)scale);
	n = strlen(buf);
	while (n > 0 && buf[n - 1] == '0')
		buf[--n] = '\0';
	if (n > 0 && buf[n - 1] == '.')
		buf[--n] = '\0';
}

void
hr_metric_head(struct hr_dynbuf *b, const char *name, const char *type, const char *help)
{
	hr_dynbuf_addf(b, "# HELP %s ", name);
	put_escaped(b, help, false);
	hr_dynbuf_addf(b, "\n# TYPE %s %s\n", name, type);
}

static void
put_labels(struct hr_dynbuf *b, const struct hr_label *labels, size_t n, const char *le)
{
	if (n == 0 && le == NULL)
		return;
	hr_dynbuf_addf(b, "{");
	for (size_t i = 0; i < n; i++) {
		hr_dynbuf_addf(b, "%s%s=\"", i ? "," : "", labels[i].name);
		put_escaped(b, labels[i].value, true);
		hr_dynbuf_addf(b, "\"");
	}
	if (le != NULL)
		hr_dynbuf_addf(b, "%sle=\"%s\"", n ? "," : "", le);
	hr_dynbuf_addf(b, "}");
}

void
hr_metric_sample(struct hr_dynbuf *b, const char *name, const struct hr_label *labels,
    size_t nlabels, int64_t value, int64_t scale)
{
	char v[48];

	hr_metric_value(value, scale, v, sizeof(v));
	hr_dynbuf_addf(b, "%s", name);
	put_labels(b, labels, nlabels, NULL);
	hr_dynbuf_addf(b, " %s\n", v);
}

void
hr_metric_histogram(struct hr_dynbuf *b, const struct hr_hist_spec *spec,
    const struct hr_label *labels, size_t nlabels, const struct hr_hist_snap *h)
{
	uint64_t cum = 0;
	char le[48], v[48];

	for (size_t i = 0; i <= spec->nbounds; i++) {
		cum += h->buckets[i];
		if (i < spec->nbounds)
			hr_metric_value(spec->bounds[i], spec->scale, le, sizeof(le));
		else
			snprintf(le, sizeof(le), "+Inf");
		hr_dynbuf_addf(b, "%s_bucket", spec->name);
		put_labels(b, labels, nlabels, le);
		hr_dynbuf_addf(b, " %llu\n", (unsigned long long)cum);
	}
	hr_metric_value((int64_t)h->sum, spec->scale, v, sizeof(v));
	hr_dynbuf_addf(b, "%s_sum", spec->name);
	put_labels(b, labels, nlabels, NULL);
	hr_dynbuf_addf(b, " %s\n%s_count", v, spec->name);
	put_labels(b, labels, nlabels, NULL);
	hr_dynbuf_addf(b, " %llu\n", (unsigned long long)h->count);
}
