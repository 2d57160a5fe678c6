/*
 * tests/unit/test_store_engines.c - every engine's table of operations is
 * whole, and the two engines differ where they must (store_ops.h): the
 * store calls each operation without looking, so a NULL one would be a
 * crash on the first request that needs it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hr/store.h"
#include "hr/store_pg.h"
#include "hr/store_sqlite.h"

/* The operations are the function pointers from `open` to the last member. */
static void
assert_whole(const struct hr_store_ops *o)
{
	const size_t first = offsetof(struct hr_store_ops, open);
	const size_t n = (sizeof(*o) - first) / sizeof(void (*)(void));

	for (size_t i = 0; i < n; i++) {
		void (*fn)(void);

		memcpy(&fn, (const char *)o + first + i * sizeof(fn), sizeof(fn));
		if (fn == NULL)
			fail_msg("%s: operation %zu of %zu is missing", o->name, i, n);
	}
}

static void
every_operation_is_there(void **state)
{
	(void)state;
	assert_whole(&hr_store_sqlite);
	assert_whole(&hr_store_pg);
}

/* [storage] backend names them as their tables do. */
static void
names_and_claims(void **state)
{
	(void)state;
	assert_string_equal(hr_store_sqlite.name, "sqlite");
	assert_string_equal(hr_store_pg.name, "postgresql");
	assert_false(hr_store_sqlite.claims);       /* one node: the forwarder leases */
	assert_true(hr_store_pg.claims);            /* several: SKIP LOCKED claims */
	assert_false(hr_store_sqlite.folds_counts); /* one writer: counts kept whole */
	assert_true(hr_store_pg.folds_counts);      /* several: changes appended, folded */
}

/* Opening PostgreSQL with nothing listening fails with a message, not a crash. */
static void
unreachable_database_fails_to_open(void **state)
{
	struct hr_store_opts o = { .engine = &hr_store_pg,
		.url = "host=/nonexistent-hookrelay-socket-dir connect_timeout=1" };
	struct hr_store *s = NULL;
	struct hr_error err = { .field = "" };

	(void)state;
	assert_int_equal(hr_store_open(&o, &s, &err), HR_EDB);
	assert_null(s);
	assert_non_null(strstr(err.msg, "cannot connect to postgresql"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_operation_is_there),
		cmocka_unit_test(names_and_claims),
		cmocka_unit_test(unreachable_database_fails_to_open),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
