/*
 * sqlite_facets.c - an event's facet in the SQLite engine: the id of its
 * (source, provider, kind, event type, subtype) in the `facets` table.
 *
 * Events carry the id and one index (facet, seq) serves the listing filters
 * on those five columns (schema 13), where an index per column cost the
 * writer five B-tree inserts per event. A deployment has a few tens of
 * facets, so the writer keeps the ones it met last in memory and asks the
 * table only for a new one. Ids made in a transaction that is then rolled
 * back are gone from the table, and another facet may get them: the memory
 * is forgotten whenever that could have happened (hr_sqlite_facets_rolled_back()).
 *
 * The readers' side: the facets a listing's filter matches, and the condition
 * that checks a row's facet against them; sqlite_read.c plans with these.
 */
#include <stdlib.h>
#include <string.h>

#include "hr/event.h"
#include "sqlite_int.h"

static bool
same_text(const char *a, const char *b)
{
	return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static bool
is_facet(const struct hr_sqlite_facet *f, const struct hr_facet_key *k)
{
	return same_text(f->kind, k->kind) && same_text(f->source, k->source) &&
	    same_text(f->event_type, k->event_type) && same_text(f->subtype, k->subtype) &&
	    same_text(f->provider, k->provider);
}

static void
facet_free(struct hr_sqlite_facet *f)
{
	free(f->source);
	free(f->provider);
	free(f->kind);
	free(f->event_type);
	free(f->subtype);
	memset(f, 0, sizeof(*f));
}

static char *
dup_or_null(const char *s, bool *failed)
{
	char *d = s != NULL ? strdup(s) : NULL;

	if (s != NULL && d == NULL)
		*failed = true;
	return d;
}

/* Remember k's id first in line, the last one out when the memory is full. A
 * failed copy leaves it unremembered: the next event of the facet asks again. */
static void
remember(struct hr_sqlite_facets *c, const struct hr_facet_key *k, int64_t id)
{
	struct hr_sqlite_facet f = { .id = id };
	bool failed = false;

	f.source = dup_or_null(k->source, &failed);
	f.provider = dup_or_null(k->provider, &failed);
	f.kind = dup_or_null(k->kind, &failed);
	f.event_type = dup_or_null(k->event_type, &failed);
	f.subtype = dup_or_null(k->subtype, &failed);
	if (failed) {
		facet_free(&f);
		return;
	}
	if (c->n == HR_SQLITE_FACETS_KEPT)
		facet_free(&c->v[--c->n]);
	memmove(&c->v[1], &c->v[0], c->n * sizeof(c->v[0]));
	c->v[0] = f;
	c->n++;
}

static void
bind_key(sqlite3_stmt *st, const struct hr_facet_key *k)
{
	sqlite3_bind_text(st, 1, k->source, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, k->provider, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, k->kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, k->event_type, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, k->subtype, -1, SQLITE_STATIC);
}

/* The table's id for k, made when it has none. */
static int
look_up(struct hr_store_backend *b, const struct hr_facet_key *k, int64_t *id)
{
	bool found;

	bind_key(b->ws[WS_FACET_FIND], k);
	if (hr_sqlite_step_int(b, b->ws[WS_FACET_FIND], id, &found) != HR_OK)
		return HR_EDB;
	if (found)
		return HR_OK;
	bind_key(b->ws[WS_FACET_ADD], k);
	if (hr_sqlite_step_done(b, b->ws[WS_FACET_ADD]) != HR_OK)
		return HR_EDB;
	*id = sqlite3_last_insert_rowid(b->wdb);
	b->facets.made = true;
	return HR_OK;
}

int
hr_sqlite_facet_of(struct hr_store_backend *b, const struct hr_facet_key *k, int64_t *id)
{
	struct hr_sqlite_facets *c = &b->facets;

	for (size_t i = 0; i < c->n; i++) {
		if (!is_facet(&c->v[i], k))
			continue;
		*id = c->v[i].id;
		if (i > 0) { /* first in line: the facets of a burst stay near the front */
			struct hr_sqlite_facet hit = c->v[i];

			memmove(&c->v[1], &c->v[0], i * sizeof(c->v[0]));
			c->v[0] = hit;
		}
		return HR_OK;
	}
	if (look_up(b, k, id) != HR_OK)
		return HR_EDB;
	remember(c, k, *id);
	return HR_OK;
}

void
hr_sqlite_facets_committed(struct hr_store_backend *b)
{
	b->facets.made = false;
}

/* A savepoint's undo may have taken ids made before it in the transaction
 * too, if this memory learnt them again since: all is forgotten, and the
 * transaction still counts as one that made facets until it ends. */
static void
forget_all(struct hr_sqlite_facets *c)
{
	while (c->n > 0)
		facet_free(&c->v[--c->n]);
}

void
hr_sqlite_facets_rolled_back(struct hr_store_backend *b, bool whole)
{
	if (!b->facets.made)
		return;
	forget_all(&b->facets);
	if (whole)
		b->facets.made = false;
}

void
hr_sqlite_facets_free(struct hr_store_backend *b)
{
	forget_all(&b->facets);
}

/* ---- the readers' side ---- */

bool
hr_sqlite_names_facets(const struct hr_event_filter *f)
{
	return f->source.n > 0 || f->provider.n > 0 || f->kinds != 0 || f->event_type.n > 0 ||
	    f->subtype.n > 0;
}

/* The filter's conditions on the facet's columns, as a WHERE of `facets`. */
static void
where_facet_columns(struct hr_sqlw *w, const struct hr_event_filter *f)
{
	hr_sqlw_any(w, "source", &f->source, true);
	hr_sqlw_any(w, "provider", &f->provider, false);
	hr_sqlw_kinds(w, f->kinds);
	hr_sqlw_any(w, "event_type", &f->event_type, false);
	hr_sqlw_any(w, "subtype", &f->subtype, false);
}

int
hr_sqlite_facets_matching(
    sqlite3 *db, const struct hr_event_filter *f, struct hr_facet_ids *ids, struct hr_error *err)
{
	struct hr_sqlw w = { .len = 0 };
	sqlite3_stmt *st = NULL;
	int rc, step;

	ids->n = 0;
	ids->many = false;
	where_facet_columns(&w, f);
	/* In id order: the same page of a listing is the same union each time. */
	rc = hr_sqlw_prepare(db, "SELECT id FROM facets", &w, " ORDER BY id", &st, err);
	while (rc == HR_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
		if (ids->n == HR_FACET_PARTS) {
			ids->many = true;
			break;
		}
		ids->v[ids->n++] = sqlite3_column_int64(st, 0);
	}
	if (rc == HR_OK && !ids->many && step != SQLITE_DONE)
		rc = hr_sqlite_error(db, err, "query");
	sqlite3_finalize(st);
	return rc;
}

void
hr_sqlite_where_facets_in(struct hr_sqlw *w, const struct hr_event_filter *f)
{
	struct hr_sqlw cols = { .len = 0 };

	where_facet_columns(&cols, f);
	/* Unary +: the place's index walks, and this checks each row it finds. */
	hr_sqlw_splice(w, "+facet IN (SELECT id FROM facets", &cols, ")");
}
