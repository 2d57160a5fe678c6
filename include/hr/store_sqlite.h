/*
 * store_sqlite.h - the SQLite engine of the store (src/store/sqlite*.c).
 *
 * One database file in WAL mode with synchronous=FULL: a COMMIT that
 * returned survives power loss. One hookrelay per file (an flock on it).
 * Pass &hr_store_sqlite as struct hr_store_opts.engine.
 */
#ifndef HR_STORE_SQLITE_H
#define HR_STORE_SQLITE_H

#include "hr/store_ops.h"

extern const struct hr_store_ops hr_store_sqlite;

/* The schema version (PRAGMA user_version) this hookrelay writes. */
int hr_store_sqlite_schema_version(void);

#endif
