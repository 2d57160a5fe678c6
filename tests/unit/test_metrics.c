/* tests/unit/test_metrics.c - histograms, answer counts and the Prometheus text format. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "hr/metrics.h"
#include "hr/reqcounts.h"

static const struct hr_hist_spec spec = {
	"t_seconds",
	"A test histogram.",
	1000000,
	3,
	{ 1000, 500000, 2000000 },
};

static char *
render_hist(const struct hr_histogram *h, const struct hr_label *labels, size_t n)
{
	struct hr_dynbuf b;
	struct hr_hist_snap snap;
	size_t len;

	hr_hist_snap(h, &snap);
	hr_dynbuf_init(&b, 0, 1 << 20);
	hr_metric_head(&b, spec.name, "histogram", spec.help);
	hr_metric_histogram(&b, &spec, labels, n, &snap);
	return hr_dynbuf_take(&b, &len);
}

static void
a_value_lands_in_the_first_bucket_whose_bound_it_does_not_exceed(void **state)
{
	struct hr_histogram h = { 0 };
	struct hr_hist_snap s;

	(void)state;
	hr_hist_observe(&h, &spec, 1000);    /* == the first bound: le="0.001" */
	hr_hist_observe(&h, &spec, 1001);    /* just over it */
	hr_hist_observe(&h, &spec, 2000000); /* == the last bound */
	hr_hist_observe(&h, &spec, 2000001); /* +Inf */
	hr_hist_snap(&h, &s);
	assert_int_equal(s.buckets[0], 1);
	assert_int_equal(s.buckets[1], 1);
	assert_int_equal(s.buckets[2], 1);
	assert_int_equal(s.buckets[3], 1);
	assert_int_equal(s.count, 4);
	assert_int_equal(s.sum, 1000 + 1001 + 2000000 + 2000001);
}

static void
a_negative_value_counts_as_zero(void **state)
{
	struct hr_histogram h = { 0 };
	struct hr_hist_snap s;

	(void)state;
	hr_hist_observe(&h, &spec, -5);
	hr_hist_snap(&h, &s);
	assert_int_equal(s.buckets[0], 1);
	assert_int_equal(s.sum, 0);
	assert_int_equal(s.count, 1);
}

static void
buckets_render_cumulative_with_inf_sum_and_count(void **state)
{
	struct hr_histogram h = { 0 };
	char *text;

	(void)state;
	hr_hist_observe(&h, &spec, 500);     /* 0.0005 s */
	hr_hist_observe(&h, &spec, 250000);  /* 0.25 s */
	hr_hist_observe(&h, &spec, 300000);  /* 0.3 s */
	hr_hist_observe(&h, &spec, 9000000); /* 9 s */
	text = render_hist(&h, NULL, 0);
	assert_non_null(text);
	assert_string_equal(text,
	    "# HELP t_seconds A test histogram.\n"
	    "# TYPE t_seconds histogram\n"
	    "t_seconds_bucket{le=\"0.001\"} 1\n"
	    "t_seconds_bucket{le=\"0.5\"} 3\n"
	    "t_seconds_bucket{le=\"2\"} 3\n"
	    "t_seconds_bucket{le=\"+Inf\"} 4\n"
	    "t_seconds_sum 9.5505\n"
	    "t_seconds_count 4\n");
	free(text);
}

static void
an_empty_histogram_renders_zeros(void **state)
{
	struct hr_histogram h = { 0 };
	char *text;

	(void)state;
	text = render_hist(&h, NULL, 0);
	assert_non_null(strstr(text, "t_seconds_bucket{le=\"+Inf\"} 0\n"));
	assert_non_null(strstr(text, "t_seconds_sum 0\nt_seconds_count 0\n"));
	free(text);
}

static void
labels_come_before_le(void **state)
{
	struct hr_histogram h = { 0 };
	struct hr_label l = { "destination", "crm" };
	char *text;

	(void)state;
	hr_hist_observe(&h, &spec, 1);
	text = render_hist(&h, &l, 1);
	assert_non_null(strstr(text, "t_seconds_bucket{destination=\"crm\",le=\"0.001\"} 1\n"));
	assert_non_null(strstr(text, "t_seconds_sum{destination=\"crm\"} 0.000001\n"));
	assert_non_null(strstr(text, "t_seconds_count{destination=\"crm\"} 1\n"));
	free(text);
}

static void
label_values_and_help_are_escaped(void **state)
{
	struct hr_dynbuf b;
	struct hr_label l[2] = { { "a", "x\"y\\z\nw" }, { "b", "plain" } };
	char *text;
	size_t len;

	(void)state;
	hr_dynbuf_init(&b, 0, 4096);
	hr_metric_head(&b, "m_total", "counter", "Help with \\ and\nnewline, \"quotes\" kept.");
	hr_metric_sample(&b, "m_total", l, 2, 7, 1);
	text = hr_dynbuf_take(&b, &len);
	assert_non_null(text);
	assert_int_equal(len, strlen(text));
	assert_string_equal(text,
	    "# HELP m_total Help with \\\\ and\\nnewline, \"quotes\" kept.\n"
	    "# TYPE m_total counter\n"
	    "m_total{a=\"x\\\"y\\\\z\\nw\",b=\"plain\"} 7\n");
	free(text);
}

static void
a_sample_without_labels_has_no_braces(void **state)
{
	struct hr_dynbuf b;
	char *text;
	size_t len;

	(void)state;
	hr_dynbuf_init(&b, 0, 4096);
	hr_metric_sample(&b, "g", NULL, 0, 5, 10);
	text = hr_dynbuf_take(&b, &len);
	assert_string_equal(text, "g 0.5\n");
	free(text);
}

static void
values_print_as_exact_decimals(void **state)
{
	char buf[48];

	(void)state;
	hr_metric_value(2500000, 1000000, buf, sizeof(buf));
	assert_string_equal(buf, "2.5");
	hr_metric_value(500, 1000000, buf, sizeof(buf));
	assert_string_equal(buf, "0.0005");
	hr_metric_value(1000000, 1000000, buf, sizeof(buf));
	assert_string_equal(buf, "1");
	hr_metric_value(0, 1000000, buf, sizeof(buf));
	assert_string_equal(buf, "0");
	hr_metric_value(-1500, 1000, buf, sizeof(buf));
	assert_string_equal(buf, "-1.5");
	hr_metric_value(INT64_MAX, 1, buf, sizeof(buf));
	assert_string_equal(buf, "9223372036854775807");
}

static void
a_page_over_its_limit_is_refused_whole(void **state)
{
	struct hr_dynbuf b;
	size_t len = 0;

	(void)state;
	hr_dynbuf_init(&b, 0, 64);
	for (int i = 0; i < 10; i++)
		hr_metric_sample(&b, "a_rather_long_metric_name_total", NULL, 0, i, 1);
	assert_int_equal(b.err, HR_ETOOBIG);
	assert_null(hr_dynbuf_take(&b, &len));
}

static void
answers_count_by_kind_and_status_with_none_and_other(void **state)
{
	struct hr_request_counts *c = calloc(1, sizeof(*c)), *d = calloc(1, sizeof(*d));
	size_t none = HR_REQ_KIND_SLOTS - 1, other = HR_REQ_STATUS_SLOTS - 1, s200 = 0, s422 = 0;

	(void)state;
	while (strcmp(hr_request_status_label(s200), "200") != 0)
		s200++;
	while (strcmp(hr_request_status_label(s422), "422") != 0)
		s422++;
	hr_request_counts_add(c, HR_KIND_PAILFLOW_BOT_JOIN_FAILED, 200);
	hr_request_counts_add(c, HR_KIND_PAILFLOW_BOT_JOIN_FAILED, 200);
	hr_request_counts_add(c, HR_KIND_PAILFLOW_BOT_JOIN_FAILED, 422);
	hr_request_counts_add(c, -1, 400);
	hr_request_counts_add(c, HR_KIND_COUNT + 7, 418); /* out of range: none, other */
	assert_int_equal(c->n[HR_KIND_PAILFLOW_BOT_JOIN_FAILED][s200], 2);
	assert_int_equal(c->n[HR_KIND_PAILFLOW_BOT_JOIN_FAILED][s422], 1);
	assert_int_equal(c->n[none][other], 1);
	assert_string_equal(hr_request_kind_label(none), "none");
	assert_string_equal(hr_request_status_label(other), "other");
	assert_string_equal(hr_request_kind_label(HR_KIND_PAILFLOW_BOT_JOIN_FAILED),
	    hr_kind_name(HR_KIND_PAILFLOW_BOT_JOIN_FAILED));
	hr_request_counts_copy(d, c);
	assert_int_equal(d->n[HR_KIND_PAILFLOW_BOT_JOIN_FAILED][s200], 2);
	assert_int_equal(d->n[none][other], 1);
	free(c);
	free(d);
}

static void
every_outcome_has_a_name(void **state)
{
	(void)state;
	for (int o = 0; o < HR_OUTCOME_COUNT; o++)
		assert_string_not_equal(hr_attempt_outcome_name((enum hr_attempt_outcome)o), "?");
	assert_string_equal(hr_attempt_outcome_name(HR_OUTCOME_RETRIED), "retried");
}

/* The shipped layouts: ascending bounds, within the array, seconds in µs. */
static void
shipped_histograms_have_ascending_bounds(void **state)
{
	const struct hr_hist_spec *specs[] = { &hr_hist_ack_latency, &hr_hist_commit_batch_size,
		&hr_hist_commit_duration, &hr_hist_delivery_latency, &hr_hist_attempt_duration };

	(void)state;
	for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
		assert_true(specs[i]->nbounds > 0 && specs[i]->nbounds <= HR_HIST_MAX_BUCKETS);
		for (size_t k = 1; k < specs[i]->nbounds; k++)
			assert_true(specs[i]->bounds[k - 1] < specs[i]->bounds[k]);
		assert_non_null(strstr(specs[i]->name, "hookrelay_"));
	}
	assert_int_equal(hr_hist_ack_latency.bounds[0], 500); /* 0.0005 s */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_value_lands_in_the_first_bucket_whose_bound_it_does_not_exceed),
		cmocka_unit_test(a_negative_value_counts_as_zero),
		cmocka_unit_test(buckets_render_cumulative_with_inf_sum_and_count),
		cmocka_unit_test(an_empty_histogram_renders_zeros),
		cmocka_unit_test(labels_come_before_le),
		cmocka_unit_test(label_values_and_help_are_escaped),
		cmocka_unit_test(a_sample_without_labels_has_no_braces),
		cmocka_unit_test(values_print_as_exact_decimals),
		cmocka_unit_test(a_page_over_its_limit_is_refused_whole),
		cmocka_unit_test(answers_count_by_kind_and_status_with_none_and_other),
		cmocka_unit_test(every_outcome_has_a_name),
		cmocka_unit_test(shipped_histograms_have_ascending_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
