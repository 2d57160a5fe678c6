/*
 * sqlprobe.h - the unit tests' look at a SQLite database file from outside
 * the store: the one number a query answers.
 */
#ifndef HR_TEST_SQLPROBE_H
#define HR_TEST_SQLPROBE_H

#include <stdint.h>

#include <sqlite3.h>

/* The integer `sql` answers first on the database at `path` (-1: no row). Include
 * after cmocka.h. */
static inline int64_t
count_of(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int64_t n = -1;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

#endif
