/*
 * pg_where.c - a WHERE clause of the PostgreSQL engine's reads under
 * construction, its query run, and a keyset page of its rows.
 *
 * Filters become numbered parameters, never interpolated text; a condition
 * that does not fit marks the clause, and hr_pgw_run() then refuses the query
 * rather than run it cut short.
 */
#include <stdio.h>
#include <string.h>

#include "hr/event.h"
#include "pg_int.h"

void
hr_pgw_put(struct hr_pgw *w, const char *text)
{
	if (!hr_appendf(w->sql, sizeof(w->sql), &w->len, "%s", text))
		w->overflow = true;
}

/* "$N" for the next parameter, with a cast. */
void
hr_pgw_param(struct hr_pgw *w, const char *cast)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "$%d%s", w->p.n + 1, cast);
	hr_pgw_put(w, buf);
}

void
hr_pgw_and(struct hr_pgw *w)
{
	hr_pgw_put(w, w->len == 0 ? " WHERE " : " AND ");
}

/* `col op $N` ANDed to the others. */
void
hr_pgw_text_cond(struct hr_pgw *w, const char *col, const char *op, const char *v)
{
	hr_pgw_and(w);
	hr_pgw_put(w, col);
	hr_pgw_put(w, op);
	hr_pgw_param(w, "");
	pgp_text(&w->p, v);
}

void
hr_pgw_int_cond(struct hr_pgw *w, const char *col, const char *op, int64_t v)
{
	hr_pgw_and(w);
	hr_pgw_put(w, col);
	hr_pgw_put(w, op);
	hr_pgw_param(w, "::bigint");
	pgp_int(&w->p, v);
}

void
hr_pgw_text(struct hr_pgw *w, const char *col, const char *v)
{
	if (v != NULL)
		hr_pgw_text_cond(w, col, " = ", v);
}

void
hr_pgw_num(struct hr_pgw *w, const char *col, const char *op, int64_t v)
{
	if (v != 0)
		hr_pgw_int_cond(w, col, op, v);
}

/*
 * A GLOB of names (A-Z a-z 0-9 _ . -) as a LIKE pattern with \ escapes, a run of
 * * as one %. A glob with more characters than a name may have matches none, as
 * GLOB on SQLite: HR_NAME_MAX _ (a longer glob overflowed a pattern's buffer,
 * and the query was refused, 400 with no parameter named: review RA40).
 */
static const char *
glob_to_like(struct hr_pgw *w, const char *glob)
{
	char *out;
	size_t n = 0, chars = 0;

	if (w->nglobs >= HR_ARRAY_LEN(w->globs)) {
		w->overflow = true;
		return "";
	}
	out = w->globs[w->nglobs++];
	for (const char *g = glob; *g != '\0'; g++)
		chars += *g != '*';
	if (chars >= HR_NAME_MAX) {
		memset(out, '_', HR_NAME_MAX);
		out[HR_NAME_MAX] = '\0';
		return out;
	}
	/* at most 2 bytes a character and a % around each: PG_GLOB_SIZE */
	for (; *glob != '\0'; glob++) {
		if (*glob == '*' && n > 0 && out[n - 1] == '%' && (n < 2 || out[n - 2] != '\\'))
			continue;
		if (*glob == '*')
			out[n++] = '%';
		else if (*glob == '?')
			out[n++] = '_';
		else {
			if (*glob == '%' || *glob == '_' || *glob == '\\')
				out[n++] = '\\';
			out[n++] = *glob;
		}
	}
	out[n] = '\0';
	return out;
}

/* (col = $N OR col LIKE $M ...): any of the values; with `globs`, one holding
 * * or ? is a pattern. */
void
hr_pgw_any(struct hr_pgw *w, const char *col, const struct hr_match *m, bool globs)
{
	if (m->n == 0)
		return;
	if (m->n > HR_MATCH_VALUES) {
		w->overflow = true;
		return;
	}
	hr_pgw_and(w);
	hr_pgw_put(w, "(");
	for (unsigned i = 0; i < m->n; i++) {
		bool glob = globs && strpbrk(m->v[i], "*?") != NULL;

		hr_pgw_put(w, i ? " OR " : "");
		hr_pgw_put(w, col);
		hr_pgw_put(w, glob ? " LIKE " : " = ");
		hr_pgw_param(w, "");
		pgp_text(&w->p, glob ? glob_to_like(w, m->v[i]) : m->v[i]);
	}
	hr_pgw_put(w, ")");
}

/*
 * kind IN ($N, ...) for a few kinds (one is `kind = $N` to the planner: the
 * (kind, seq) index then gives a page in order); past KINDS_INLINE, one
 * text[] parameter, = ANY($N): a glob such as * names every kind, and one
 * parameter each used up the 64 a query may have with the other filters.
 * Kind names are [a-z0-9._], nothing an array literal quotes.
 */
#define KINDS_INLINE 8

void
hr_pgw_kinds(struct hr_pgw *w, uint64_t kinds)
{
	unsigned n = 0;
	size_t len = 0;

	if (kinds == 0)
		return;
	for (int k = 0; k < HR_KIND_COUNT; k++)
		n += (kinds & (UINT64_C(1) << k)) != 0;
	hr_pgw_and(w);
	hr_pgw_put(w, n <= KINDS_INLINE ? "kind IN (" : "kind = ANY(");
	for (int k = 0; k < HR_KIND_COUNT; k++) {
		const char *name = hr_kind_name((enum hr_kind)k);

		if (!(kinds & (UINT64_C(1) << k)))
			continue;
		if (n <= KINDS_INLINE) {
			hr_pgw_put(w, len++ ? ", " : "");
			hr_pgw_param(w, "");
			pgp_text(&w->p, name);
		} else if (!hr_appendf(
		               w->kinds, sizeof(w->kinds), &len, "%s%s", len ? "," : "{", name)) {
			w->overflow = true;
		}
	}
	if (n > KINDS_INLINE) {
		if (!hr_appendf(w->kinds, sizeof(w->kinds), &len, "}"))
			w->overflow = true;
		hr_pgw_param(w, "::text[]");
		pgp_text(&w->p, w->kinds);
	}
	hr_pgw_put(w, ")");
}

/*
 * A page a row at a time (libpq's single-row mode): a page of events with
 * their bodies is cut at 4 MiB by `emit` (HR_ETOOBIG), and the whole result
 * of `limit` + 1 rows of up to max_body each (500 x 8 MiB) must not be held
 * in memory for it. On an early end the rest of the result is cancelled.
 */
int
hr_pgw_run_rows(PGconn *c, const char *head, struct hr_pgw *w, const char *tail, unsigned limit,
    hr_pgw_emit_fn emit, void *ctx, int64_t *next_cursor, struct hr_error *err)
{
	char sql[sizeof(w->sql) + 1024];
	const struct pg_params *p = &w->p;
	int64_t last_key = 0;
	unsigned n = 0;
	bool done = false, cancelled = false;
	int64_t deadline;
	int rc = HR_OK;
	PGresult *r;

	*next_cursor = 0;
	if (w->overflow || w->p.overflow)
		return hr_error_set(err, HR_EINVAL, "", "the query has too many conditions");
	snprintf(sql, sizeof(sql), "%s%s%s", head, w->sql, tail);
	if (!PQsendQueryParams(c, sql, p->n, p->type, p->v, p->len, p->fmt, 1) ||
	    !PQsetSingleRowMode(c))
		return hr_error_set(err, HR_EDB, "query", "postgresql: %s", PQerrorMessage(c));
	deadline = pg_deadline();
	while ((r = pg_next_result(c, &deadline, &cancelled, sql)) != NULL) {
		ExecStatusType st = PQresultStatus(r);

		if (st == PGRES_SINGLE_TUPLE && !done) {
			int erc = n == limit ? HR_ETOOBIG : emit(r, 0, ctx);

			if (erc == HR_ETOOBIG && (n > 0 || n == limit)) {
				*next_cursor = last_key; /* the page ends before this row */
				done = true;
			} else if (erc != HR_OK) {
				rc = hr_error_set(err, HR_ENOMEM, "row", "cannot build the answer");
				done = true;
			} else {
				last_key = pgc_int(r, 0, 0);
				n++;
			}
			if (done) { /* the rest is not wanted: ask the server to stop sending */
				PGcancel *cancel = PQgetCancel(c);
				char why[64];

				if (cancel != NULL) {
					(void)PQcancel(cancel, why, sizeof(why));
					PQfreeCancel(cancel);
				}
			}
		} else if (st == PGRES_FATAL_ERROR && !done) {
			rc = hr_error_set(err, HR_EDB, "query", "postgresql: %.*s",
			    (int)strcspn(PQresultErrorMessage(r), "\n"), PQresultErrorMessage(r));
		}
		PQclear(r);
	}
	return rc;
}

PGresult *
hr_pgw_run(PGconn *c, const char *head, struct hr_pgw *w, const char *tail, struct hr_error *err)
{
	char sql[sizeof(w->sql) + 1024];

	if (w->overflow || w->p.overflow) {
		hr_error_set(err, HR_EINVAL, "", "the query has too many conditions");
		return NULL;
	}
	snprintf(sql, sizeof(sql), "%s%s%s", head, w->sql, tail);
	return pg_query(c, sql, &w->p, err);
}

/* Emit a page of at most `limit` rows of `r` (which holds one more when a next page exists). */
int
hr_pgw_run_page(const PGresult *r, unsigned limit, hr_pgw_emit_fn emit, void *ctx,
    int64_t *next_cursor, struct hr_error *err)
{
	int n = PQntuples(r);
	int64_t last_key = 0;

	*next_cursor = 0;
	for (int i = 0; i < n; i++) {
		int erc;

		if ((unsigned)i == limit) {
			*next_cursor = last_key;
			break;
		}
		erc = emit(r, i, ctx);
		if (erc == HR_ETOOBIG && i > 0) { /* the caller's budget: the page ends here */
			*next_cursor = last_key;
			break;
		}
		if (erc != HR_OK)
			return hr_error_set(err, HR_ENOMEM, "row", "cannot build the answer");
		last_key = pgc_int(r, i, 0);
	}
	return HR_OK;
}
