/*
 * test_jarena.c - the per-event arena of jansson trees: a tree lives in one
 * slot, outgrows it into a big slot and then malloc safely, texts dumped from it are plain malloc,
 * slots run out without failing, a big slot keeps its pages until it is idle, and nothing an event
 * hands out points into its slot.
 */
#define _GNU_SOURCE /* RUSAGE_THREAD */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmocka.h>
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

#include "hr/event.h"
#include "hr/jarena.h"
#include "hr/timefmt.h"

static const struct hr_json_limits limits = {
	.max_depth = 32,
	.max_object_keys = 4096,
	.max_string = 1 << 20,
};

static const char post_call[] =
    "{\"properties\": {\"tool_id\": \"t1a2b3c4d5e6\", \"tool_name\": \"submit_report\","
    " \"status\": \"success\", \"request\": {\"body\": \"{}\"}, \"response\": \"{}\"},"
    " \"conversation_id\": \"c4b6bacd1e935467\", \"message_type\": \"application\","
    " \"event_type\": \"application.post_call_action_executed\","
    " \"timestamp\": \"2026-08-11T23:06:02.004512Z\"}";

static void
a_tree_lives_in_its_slot_and_the_slot_is_reused(void **state)
{
	struct hr_jarena *a, *b;
	json_t *j;
	char *text;

	(void)state;
	a = hr_jarena_begin();
	assert_non_null(a);
	j = json_loads("{\"a\": [1, 2, {\"b\": \"text\"}]}", 0, NULL);
	hr_jarena_end();
	assert_non_null(j);
	assert_true((char *)j > (char *)a && (char *)j < (char *)a + HR_JARENA_SLOT);
	assert_false(hr_jarena_overflowed(a));
	/* Dumped outside the arena: a text freed with free(), as jansson documents. */
	text = json_dumps(j, JSON_COMPACT);
	assert_string_equal(text, "{\"a\":[1,2,{\"b\":\"text\"}]}");
	assert_true(text < (char *)a || text >= (char *)a + HR_JARENA_SLOT);
	free(text);
	json_decref(j);
	hr_jarena_release(a);
	b = hr_jarena_begin(); /* the last released is the next taken: warm pages */
	hr_jarena_end();
	assert_ptr_equal(a, b);
	hr_jarena_release(b);
}

/* A body of `n` strings in an array: a tree of about 100 bytes per string. */
static char *
strings_body(size_t n, size_t *len)
{
	char *body = malloc(n * 12 + 16);

	assert_non_null(body);
	*len = 0;
	body[(*len)++] = '[';
	for (size_t i = 0; i < n; i++)
		*len += (size_t)sprintf(body + *len, "%s\"v%07zu\"", i ? "," : "", i);
	body[(*len)++] = ']';
	body[*len] = '\0';
	return body;
}

/* A tree larger than a slot goes on in a big slot: no malloc per value. */
static void
a_tree_larger_than_a_slot_goes_on_in_a_big_slot(void **state)
{
	size_t n = HR_JARENA_SLOT / 4, len;
	char *body = strings_body(n, &len);
	struct hr_event ev;
	struct hr_parse_error pe;
	const json_t *last;

	(void)state;
	assert_int_equal(hr_event_parse(body, len, HR_PROVIDER_AUTO, &limits, &ev, &pe), HR_OK);
	assert_non_null(ev.arena);
	assert_false(hr_jarena_overflowed(ev.arena));
	assert_int_equal(json_array_size(ev.root), n);
	last = json_array_get(ev.root, n - 1);
	assert_true(hr_jarena_contains(last));
	assert_true(hr_jarena_contains(json_string_value(last)));
	assert_string_equal(json_string_value(last), "v0008191");
	hr_event_clear(&ev);
	free(body);
}

/* A big slot given back is taken again by the next big tree, which parses all the same. */
static void
a_big_slot_given_back_is_reused(void **state)
{
	size_t n = 2 * HR_JARENA_BIG_KEEP / 64, len; /* a tree well past the kept bytes */
	char *body = strings_body(n, &len);
	struct hr_event ev;
	struct hr_parse_error pe;
	char want[16];

	(void)state;
	snprintf(want, sizeof(want), "v%07zu", n / 2);
	for (int round = 0; round < 2; round++) {
		assert_int_equal(
		    hr_event_parse(body, len, HR_PROVIDER_AUTO, &limits, &ev, &pe), HR_OK);
		assert_false(hr_jarena_overflowed(ev.arena));
		assert_int_equal(json_array_size(ev.root), n);
		assert_string_equal(json_string_value(json_array_get(ev.root, n / 2)), want);
		assert_true(hr_jarena_contains(json_array_get(ev.root, n - 1)));
		hr_event_clear(&ev);
	}
	free(body);
}

/* Parse `body` into `ev`, which must succeed. */
static void
parse_ok(const char *body, size_t len, struct hr_event *ev)
{
	struct hr_parse_error pe;

	assert_int_equal(hr_event_parse(body, len, HR_PROVIDER_AUTO, &limits, ev, &pe), HR_OK);
}

/* Is the page holding `p` in memory? */
static bool
resident(const void *p)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	unsigned char vec = 0;

	assert_int_equal(mincore((void *)((uintptr_t)p / page * page), page, &vec), 0);
	return (vec & 1) != 0;
}

static long
minor_faults(void)
{
	struct rusage ru;

	assert_int_equal(getrusage(RUSAGE_THREAD, &ru), 0);
	return ru.ru_minflt;
}

/*
 * A big tree's pages past HR_JARENA_BIG_KEEP stay with its slot when it is
 * given back, so the next big tree writes them without faulting them in again
 * (a 1 MiB body faulted ~900 pages each time); only hr_jarena_trim() gives
 * them back, and only for a slot idle for its idle time.
 */
static void
a_big_slot_keeps_its_pages_until_it_is_idle(void **state)
{
	size_t n = 4 * HR_JARENA_BIG_KEEP / 64, len; /* a tree well past the kept bytes */
	char *body = strings_body(n, &len);
	struct hr_event ev;
	const void *far;
	long faults;

	(void)state;
	hr_jarena_trim(hr_time_mono_us(), 0); /* no earlier test's pages */
	parse_ok(body, len, &ev);
	far = json_array_get(ev.root, n - 1);
	assert_true(hr_jarena_contains(far));
	hr_event_clear(&ev);
	assert_true(resident(far));
	assert_int_equal(
	    hr_jarena_trim(hr_time_mono_us(), HR_JARENA_IDLE_US), 0); /* released just now */
	assert_true(resident(far));

	faults = minor_faults();
	parse_ok(body, len, &ev);
	faults = minor_faults() - faults;
	assert_ptr_equal(json_array_get(ev.root, n - 1), far); /* the same slot, the same place */
	hr_event_clear(&ev);
	/* Giving the far pages back would fault in ~(4 - 1) MiB / 4 KiB = 768 of them. */
	assert_true(faults < 100);

	assert_true(
	    hr_jarena_trim(hr_time_mono_us(), 0) >= 3 * HR_JARENA_BIG_KEEP); /* ~4 MiB of tree */
	assert_false(resident(far));
	assert_int_equal(hr_jarena_trim(hr_time_mono_us(), 0), 0); /* nothing left to give */
	/* A trimmed slot reads zeros, and a tree parses in it all the same. */
	parse_ok(body, len, &ev);
	assert_true(hr_jarena_contains(json_array_get(ev.root, n - 1)));
	assert_int_equal(json_array_size(ev.root), n);
	hr_event_clear(&ev);
	hr_jarena_trim(hr_time_mono_us(), 0);
	free(body);
}

/* Trimming never touches a slot a tree is in. */
static void
a_big_slot_in_use_is_not_trimmed(void **state)
{
	size_t n = 2 * HR_JARENA_BIG_KEEP / 64, len;
	char *body = strings_body(n, &len);
	struct hr_event ev;
	char want[16];

	(void)state;
	snprintf(want, sizeof(want), "v%07zu", n - 1);
	parse_ok(body, len, &ev);
	hr_jarena_trim(hr_time_mono_us(), 0);
	assert_true(resident(json_array_get(ev.root, n - 1)));
	assert_string_equal(json_string_value(json_array_get(ev.root, n - 1)), want);
	hr_event_clear(&ev);
	free(body);
}

/* Does the mapping that holds `p` carry VmFlag `flag` (/proc/self/smaps)? */
static bool
mapping_has_flag(const void *p, const char *flag)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	bool in = false, found = false;

	assert_non_null(f);
	while (!found && fgets(line, sizeof(line), f) != NULL) {
		uintptr_t lo, hi;

		if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " ", &lo, &hi) ==
		    2) /* a mapping's line */
			in = (uintptr_t)p >= lo && (uintptr_t)p < hi;
		else if (in && strncmp(line, "VmFlags:", 8) == 0) {
			char *tok, *save = NULL;

			for (tok = strtok_r(line + 8, " \n", &save); tok != NULL && !found;
			     tok = strtok_r(NULL, " \n", &save))
				found = strcmp(tok, flag) == 0;
			in = false;
		}
	}
	fclose(f);
	return found;
}

/*
 * Where transparent huge pages are "always", a slot's first touch made 2 MiB
 * resident (test_memory.py saw 6.9 MB for a 4.8 MB tree) and giving part of
 * it back split a huge page: both regions are MADV_NOHUGEPAGE ("nh").
 */
static void
the_arena_never_gets_huge_pages(void **state)
{
	size_t n = 2 * HR_JARENA_BIG_KEEP / 64, len;
	char *body = strings_body(n, &len);
	struct hr_event ev;
	bool small, big;

	(void)state;
	if (access("/sys/kernel/mm/transparent_hugepage/enabled", F_OK) != 0) {
		free(body);
		skip(); /* a kernel without THP: nothing to refuse */
	}
	parse_ok(body, len, &ev);
	small = mapping_has_flag(ev.root, "nh");
	big = mapping_has_flag(json_array_get(ev.root, n - 1), "nh");
	hr_event_clear(&ev); /* first: a failed assertion must not keep the slots */
	free(body);
	assert_true(small);
	assert_true(big);
}

/* Every big slot taken: a big tree goes on in malloc, and is freed (LeakSanitizer checks). */
static void
when_big_slots_run_out_a_big_tree_overflows_into_malloc(void **state)
{
	static struct hr_event held[HR_JARENA_BIGS];
	size_t n = HR_JARENA_SLOT / 4, len;
	char *body = strings_body(n, &len);
	struct hr_event ev;
	struct hr_parse_error pe;

	(void)state;
	for (size_t i = 0; i < HR_JARENA_BIGS; i++) {
		assert_int_equal(
		    hr_event_parse(body, len, HR_PROVIDER_AUTO, &limits, &held[i], &pe), HR_OK);
		assert_false(hr_jarena_overflowed(held[i].arena));
	}
	assert_int_equal(hr_event_parse(body, len, HR_PROVIDER_AUTO, &limits, &ev, &pe), HR_OK);
	assert_non_null(ev.arena);
	assert_true(hr_jarena_overflowed(ev.arena));
	assert_false(hr_jarena_contains(json_array_get(ev.root, n - 1)));
	assert_string_equal(json_string_value(json_array_get(ev.root, n - 1)), "v0008191");
	hr_event_clear(&ev);
	for (size_t i = 0; i < HR_JARENA_BIGS; i++)
		hr_event_clear(&held[i]);
	free(body);
}

/* Every slot taken: events still parse, from malloc, and hold no slot. */
static void
when_slots_run_out_events_use_malloc(void **state)
{
	static struct hr_jarena *held[HR_JARENA_SLOTS];
	struct hr_event ev;
	struct hr_parse_error pe;
	size_t n = 0;

	(void)state;
	while (n < HR_JARENA_SLOTS && (held[n] = hr_jarena_begin()) != NULL)
		n++;
	hr_jarena_end();
	assert_int_equal(n, HR_JARENA_SLOTS);
	assert_null(hr_jarena_begin());
	hr_jarena_end();
	assert_int_equal(
	    hr_event_parse(post_call, strlen(post_call), HR_PROVIDER_AUTO, &limits, &ev, &pe),
	    HR_OK);
	assert_null(ev.arena);
	assert_string_equal(ev.sum.session_key, "c4b6bacd1e935467");
	hr_event_clear(&ev);
	while (n > 0)
		hr_jarena_release(held[--n]);
}

/*
 * The typed JSON of an event outlives it. Its JSON-typed fields ("properties")
 * were references into the tree; with the tree in a slot, the next event
 * parsed into the same slot overwrote them (under ASan: a use after poison).
 */
static void
typed_json_outlives_its_event(void **state)
{
	struct hr_event ev;
	struct hr_parse_error pe;
	json_t *typed;
	char *before, *after, filler[4096];
	size_t len = 0;

	(void)state;
	assert_int_equal(
	    hr_event_parse(post_call, strlen(post_call), HR_PROVIDER_AUTO, &limits, &ev, &pe),
	    HR_OK);
	typed = hr_event_typed_json(&ev);
	assert_non_null(typed);
	before = json_dumps(typed, JSON_COMPACT | JSON_SORT_KEYS);
	assert_non_null(strstr(before, "\"tool_name\":\"submit_report\""));
	hr_event_clear(&ev);

	filler[len++] = '{';
	for (int i = 0; len < sizeof(filler) - 32; i++)
		len += (size_t)snprintf(filler + len, sizeof(filler) - len, "%s\"k%d\":[%d,\"xx\"]",
		    i ? "," : "", i, i);
	filler[len++] = '}';
	assert_int_equal(hr_event_parse(filler, len, HR_PROVIDER_AUTO, &limits, &ev, &pe), HR_OK);
	after = json_dumps(typed, JSON_COMPACT | JSON_SORT_KEYS);
	hr_event_clear(&ev);
	assert_non_null(after);
	assert_string_equal(after, before);
	free(before);
	free(after);
	json_decref(typed);
}

#if defined(__SANITIZE_ADDRESS__)
/* Under ASan the bytes of a slot that no block was given are poisoned, from the
 * first time the slot is taken (not at start, which cost every process 1.3 s):
 * a write past a block, or a reference kept into a released tree, is reported. */
static void
unused_bytes_of_slots_are_poisoned(void **state)
{
	size_t n = HR_JARENA_SLOT / 4, len;
	char *body = strings_body(n, &len);
	struct hr_jarena *a = hr_jarena_begin();
	json_t *j = json_string("x");
	struct hr_event ev;
	const char *v;

	(void)state;
	hr_jarena_end();
	assert_true((char *)j > (char *)a && (char *)j < (char *)a + HR_JARENA_SLOT);
	assert_false(__asan_address_is_poisoned(j));
	assert_true(__asan_address_is_poisoned((char *)a + HR_JARENA_SLOT - 1));
	json_decref(j);
	hr_jarena_release(a);
	assert_true(__asan_address_is_poisoned(j));

	parse_ok(body, len, &ev); /* on in a big slot */
	v = json_string_value(json_array_get(ev.root, n - 1));
	assert_true(hr_jarena_contains(v) && hr_jarena_contains(v + (8u << 20)));
	assert_false(__asan_address_is_poisoned(v));
	assert_true(__asan_address_is_poisoned(v + (8u << 20)));
	hr_event_clear(&ev);
	free(body);
}
#endif

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_tree_lives_in_its_slot_and_the_slot_is_reused),
		cmocka_unit_test(a_tree_larger_than_a_slot_goes_on_in_a_big_slot),
		cmocka_unit_test(a_big_slot_given_back_is_reused),
		cmocka_unit_test(a_big_slot_keeps_its_pages_until_it_is_idle),
		cmocka_unit_test(a_big_slot_in_use_is_not_trimmed),
		cmocka_unit_test(the_arena_never_gets_huge_pages),
		cmocka_unit_test(when_big_slots_run_out_a_big_tree_overflows_into_malloc),
		cmocka_unit_test(when_slots_run_out_events_use_malloc),
		cmocka_unit_test(typed_json_outlives_its_event),
#if defined(__SANITIZE_ADDRESS__)
		cmocka_unit_test(unused_bytes_of_slots_are_poisoned),
#endif
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
