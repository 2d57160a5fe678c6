/*
 * sqlite_stmts.c - statements a run of many keeps prepared: a pruning pass
 * of one-row chunks prepared some 60,000 statements, two thirds of its time
 * (review R39), where it has some 35 different ones.
 */
#include <string.h>

#include "sqlite_int.h"

sqlite3_stmt *
hr_sqlite_stmts_get(struct hr_sqlite_stmts *k, sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;

	/* The text too: a caller's buffer, written again at the same address, must
	 * not get the statement of what it held before. */
	for (int i = 0; i < k->n; i++)
		if (k->v[i].sql == sql && strcmp(sqlite3_sql(k->v[i].st), sql) == 0)
			return k->v[i].st;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		sqlite3_finalize(st);
		return NULL;
	}
	if (k->n < HR_SQLITE_STMTS) {
		k->v[k->n].sql = sql;
		k->v[k->n++].st = st;
	}
	return st;
}

void
hr_sqlite_stmts_done(struct hr_sqlite_stmts *k, sqlite3_stmt *st)
{
	for (int i = 0; i < k->n; i++)
		if (k->v[i].st == st)
			return; /* reset by the caller, kept */
	sqlite3_finalize(st);
}

void
hr_sqlite_stmts_free(struct hr_sqlite_stmts *k)
{
	for (int i = 0; i < k->n; i++)
		sqlite3_finalize(k->v[i].st);
	k->n = 0;
}
