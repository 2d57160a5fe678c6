/*
 * store_pg.h - the PostgreSQL engine of the store (src/store/pg*.c).
 *
 * One database that several hookrelay nodes share ([storage] backend =
 * postgresql, url, pool, lease; docs/scaling.md): commits with
 * synchronous_commit = on, delivery claims with FOR UPDATE SKIP LOCKED and a
 * lease, other nodes' commits heard through LISTEN/NOTIFY, migrations and
 * pruning under advisory locks. Pass &hr_store_pg as struct
 * hr_store_opts.engine, with opts.url.
 */
#ifndef HR_STORE_PG_H
#define HR_STORE_PG_H

#include <stdio.h>

#include "hr/store_ops.h"

extern const struct hr_store_ops hr_store_pg;

/*
 * `hookrelay migrate`: copy the SQLite database at `sqlite_path` (read-only; refused
 * while a daemon holds it) into the PostgreSQL database `pg_url` (schema created or
 * migrated first): events, sessions, query rows, rejections, deliveries, attempts,
 * destinations, dedup keys, with their ids. Resumable: a second run goes on where the
 * first stopped and copies nothing twice. Progress and the verification (counts of
 * every table on both sides, SHA-256 of events and deliveries) go to `out`; HR_OK
 * only when they all match.
 */
int hr_store_pg_migrate(
    const char *sqlite_path, const char *pg_url, FILE *out, struct hr_error *) HR_WUR;

#endif
