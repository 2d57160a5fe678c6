/*
 * sqlite_where.c - a WHERE clause of the SQLite engine's reads under
 * construction, and a keyset page of its rows.
 *
 * Filters become bound parameters, never interpolated text; a condition that
 * does not fit marks the clause, and hr_sqlw_prepare() then refuses the query
 * rather than run it cut short.
 */
#include <stdio.h>
#include <string.h>

#include "hr/event.h"
#include "sqlite_int.h"

void
hr_sqlw_put(struct hr_sqlw *w, const char *text)
{
	if (!hr_appendf(w->sql, sizeof(w->sql), &w->len, "%s", text))
		w->overflow = true;
}

void
hr_sqlw_bind(struct hr_sqlw *w, const char *text, int64_t num)
{
	if (w->n >= HR_SQLW_BINDS) {
		w->overflow = true;
		return;
	}
	w->binds[w->n].text = text;
	w->binds[w->n].num = num;
	w->n++;
}

/* One condition with one `?`, ANDed to the others. */
void
hr_sqlw_add(struct hr_sqlw *w, const char *cond, const char *text, int64_t num)
{
	hr_sqlw_put(w, w->len == 0 ? " WHERE " : " AND ");
	hr_sqlw_put(w, cond);
	hr_sqlw_bind(w, text, num);
}

void
hr_sqlw_text(struct hr_sqlw *w, const char *cond, const char *v)
{
	if (v != NULL)
		hr_sqlw_add(w, cond, v, 0);
}

void
hr_sqlw_num(struct hr_sqlw *w, const char *cond, int64_t v)
{
	if (v != 0)
		hr_sqlw_add(w, cond, NULL, v);
}

/* (col = ? OR col GLOB ? ...): any of the values; with `globs`, one holding * or ?
 * is a pattern (GLOB, the fnmatch of names made of A-Z a-z 0-9 _ . -). */
void
hr_sqlw_any(struct hr_sqlw *w, const char *col, const struct hr_match *m, bool globs)
{
	if (m->n == 0)
		return;
	if (m->n > HR_MATCH_VALUES) {
		w->overflow = true;
		return;
	}
	hr_sqlw_put(w, w->len == 0 ? " WHERE (" : " AND (");
	for (unsigned i = 0; i < m->n; i++) {
		hr_sqlw_put(w, i ? " OR " : "");
		hr_sqlw_put(w, col);
		hr_sqlw_put(w, globs && strpbrk(m->v[i], "*?") != NULL ? " GLOB ?" : " = ?");
		hr_sqlw_bind(w, m->v[i], 0);
	}
	hr_sqlw_put(w, ")");
}

/* `head`, the conditions of `sub` (a WHERE of another table) and their binds,
 * then `tail`: a subquery ANDed to w's conditions. */
void
hr_sqlw_splice(struct hr_sqlw *w, const char *head, const struct hr_sqlw *sub, const char *tail)
{
	hr_sqlw_put(w, w->len == 0 ? " WHERE " : " AND ");
	hr_sqlw_put(w, head);
	hr_sqlw_put(w, sub->sql);
	hr_sqlw_put(w, tail);
	for (int i = 0; i < sub->n; i++)
		hr_sqlw_bind(w, sub->binds[i].text, sub->binds[i].num);
	if (sub->overflow)
		w->overflow = true;
}

/* kind IN (?, ...) with the name of each kind in the set. */
void
hr_sqlw_kinds(struct hr_sqlw *w, uint64_t kinds)
{
	bool first = true;

	if (kinds == 0)
		return;
	hr_sqlw_put(w, w->len == 0 ? " WHERE kind IN (" : " AND kind IN (");
	for (int k = 0; k < HR_KIND_COUNT; k++) {
		if (!(kinds & (UINT64_C(1) << k)))
			continue;
		hr_sqlw_put(w, first ? "?" : ", ?");
		hr_sqlw_bind(w, hr_kind_name((enum hr_kind)k), 0);
		first = false;
	}
	hr_sqlw_put(w, ")");
}

int
hr_sqlw_prepare(sqlite3 *db, const char *head, const struct hr_sqlw *w, const char *tail,
    sqlite3_stmt **st, struct hr_error *err)
{
	char sql[sizeof(w->sql) + 1024];
	int i;

	*st = NULL;
	if (w != NULL && w->overflow)
		return hr_error_set(err, HR_EINVAL, "", "the query has too many conditions");
	snprintf(sql, sizeof(sql), "%s%s%s", head, w ? w->sql : "", tail);
	if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK)
		return hr_sqlite_error(db, err, "query");
	for (i = 0; w != NULL && i < w->n; i++) {
		if (w->binds[i].text != NULL)
			sqlite3_bind_text(*st, i + 1, w->binds[i].text, -1, SQLITE_STATIC);
		else
			sqlite3_bind_int64(*st, i + 1, w->binds[i].num);
	}
	return HR_OK;
}

/* Step a page of `limit` rows (one more is fetched to know if a next page exists). */
int
hr_sqlw_run_page(sqlite3 *db, sqlite3_stmt *st, unsigned limit, int (*emit)(sqlite3_stmt *, void *),
    void *ctx, int64_t *next_cursor, struct hr_error *err)
{
	unsigned n = 0;
	int64_t last_key = 0;
	int rc;

	*next_cursor = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int erc;

		if (n == limit) {
			*next_cursor = last_key;
			break;
		}
		erc = emit(st, ctx);
		if (erc == HR_ETOOBIG && n > 0) { /* the caller's budget: the page ends here */
			*next_cursor = last_key;
			break;
		}
		if (erc != HR_OK)
			return hr_error_set(err, HR_ENOMEM, "row", "cannot build the answer");
		last_key = sqlite3_column_int64(st, 0);
		n++;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return hr_sqlite_error(db, err, "query");
	return HR_OK;
}
