/*
 * test_walbuf.c - the writer's VFS (src/store/sqlite_walbuf.c): a commit's
 * WAL frames gathered into one write must never cost a committed row.
 *
 * "What the files hold" is checked the way a crash would: the database and
 * its WAL are copied while the writer is still open (no checkpoint, no
 * close) and the copy is opened on its own.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "../../src/store/sqlite_int.h"
#include "tmpdir.h"

struct fixture {
	char dir[64];
	char path[96];
	sqlite3 *db; /* the writer's connection: the walbuf VFS */
};

static int
setup(void **state)
{
	static struct fixture f;
	struct hr_error err = { 0 };

	memset(&f, 0, sizeof(f));
	tmp_template(f.dir, sizeof(f.dir), "hr-walbuf-XXXXXX");
	if (mkdtemp(f.dir) == NULL)
		return -1;
	snprintf(f.path, sizeof(f.path), "%s/w.db", f.dir);
	if (hr_sqlite_connect(f.path, true, &f.db, &err) != HR_OK)
		return -1;
	if (sqlite3_exec(f.db, "CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB NOT NULL)", NULL,
	        NULL, NULL) != SQLITE_OK)
		return -1;
	*state = &f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	sqlite3_close(f->db);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void
copy_file(const char *from, const char *to)
{
	char buf[1 << 16];
	ssize_t n;
	int in = open(from, O_RDONLY), out;

	if (in < 0) { /* no WAL (yet): the copy has none either */
		unlink(to);
		return;
	}
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(out >= 0);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		assert_int_equal(write(out, buf, (size_t)n), n);
	assert_int_equal(n, 0);
	close(in);
	close(out);
}

/* The rows a crash at this instant would leave: a copy of the files, opened
 * by a fresh connection on the stock VFS. Returns the sum of the rows' blob
 * lengths (and their count in *rows), after an integrity check. */
static int64_t
crash_copy(struct fixture *f, int64_t *rows)
{
	char db[128], wal[128], from[128];
	sqlite3 *c = NULL;
	sqlite3_stmt *st = NULL;
	int64_t bytes;

	snprintf(db, sizeof(db), "%s/copy.db", f->dir);
	snprintf(wal, sizeof(wal), "%s/copy.db-wal", f->dir);
	unlink(db);
	unlink(wal);
	snprintf(from, sizeof(from), "%s-wal", f->path);
	copy_file(from, wal);
	copy_file(f->path, db);
	assert_int_equal(sqlite3_open_v2(db, &c, SQLITE_OPEN_READWRITE, "unix"), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(c, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
	sqlite3_finalize(st);
	assert_int_equal(sqlite3_prepare_v2(c,
	                     "SELECT count(*), coalesce(sum(length(b)), 0) FROM t", -1, &st, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	*rows = sqlite3_column_int64(st, 0);
	bytes = sqlite3_column_int64(st, 1);
	sqlite3_finalize(st);
	sqlite3_close(c);
	return bytes;
}

static int
insert(sqlite3 *db, int64_t id, int len)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if ((rc = sqlite3_prepare_v2(db, "INSERT INTO t (id, b) VALUES (?, randomblob(?))", -1, &st,
	         NULL)) != SQLITE_OK)
		return rc;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int(st, 2, len);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int64_t
count_rows(const char *path)
{
	sqlite3 *c = NULL;
	sqlite3_stmt *st = NULL;
	int64_t n;

	assert_int_equal(sqlite3_open_v2(path, &c, SQLITE_OPEN_READONLY, "unix"), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(c, "SELECT count(*) FROM t", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(c);
	return n;
}

static const char *
vfs_name(sqlite3 *db)
{
	static char name[64];
	char *got = NULL;

	assert_int_equal(sqlite3_file_control(db, "main", SQLITE_FCNTL_VFSNAME, &got), SQLITE_OK);
	snprintf(name, sizeof(name), "%s", got ? got : "");
	sqlite3_free(got);
	return name;
}

static void
the_writer_alone_runs_on_the_walbuf_vfs(void **state)
{
	struct fixture *f = *state;
	struct hr_error err = { 0 };
	sqlite3 *reader = NULL;

	assert_string_equal(vfs_name(f->db), HR_SQLITE_WALBUF_VFS "/unix");
	assert_int_equal(hr_sqlite_connect(f->path, false, &reader, &err), HR_OK);
	assert_string_equal(vfs_name(reader), "unix");
	sqlite3_close(reader);
}

/* Every commit, once it returned, is seen by another connection and is in
 * the files; commits of 1 to 40 rows of 1-6 KiB, so frames of one commit
 * cross the buffer's 124 KiB pieces and WAL restarts after checkpoints. */
static void
every_commit_is_in_the_files_when_it_returns(void **state)
{
	struct fixture *f = *state;
	int64_t id = 0, rows, bytes = 0, copied_rows;

	for (int commit = 1; commit <= 120; commit++) {
		assert_int_equal(
		    sqlite3_exec(f->db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
		for (int k = 0; k < 1 + commit % 40; k++) {
			int len = 1024 * (1 + (int)((id * 7) % 6));
			assert_int_equal(insert(f->db, ++id, len), SQLITE_OK);
			bytes += len;
		}
		assert_int_equal(sqlite3_exec(f->db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
		assert_int_equal(count_rows(f->path), id);
		if (commit % 10 == 0) {
			assert_int_equal(crash_copy(f, &copied_rows), bytes);
			assert_int_equal(copied_rows, id);
		}
	}
	assert_int_equal(crash_copy(f, &rows), bytes);
	assert_int_equal(rows, id);
}

/* The unix VFS writes at most 128 KiB - 1 per call and calls the rest a
 * full disk: a commit of megabytes goes to the file in pieces, whole. */
static void
a_commit_of_megabytes_is_written_whole(void **state)
{
	struct fixture *f = *state;
	int64_t rows;

	assert_int_equal(sqlite3_exec(f->db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(insert(f->db, 1, 5 << 20), SQLITE_OK);
	assert_int_equal(insert(f->db, 2, 300 << 10), SQLITE_OK);
	assert_int_equal(sqlite3_exec(f->db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(crash_copy(f, &rows), (5 << 20) + (300 << 10));
	assert_int_equal(rows, 2);
}

/* Opens a transaction of 1.2 MB (rows 100-499) and rewrites rows below 200:
 * with a small cache, frames spill to the WAL, then some are written over. */
static void
spill_and_rewrite(sqlite3 *db)
{
	assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	for (int i = 0; i < 400; i++)
		assert_int_equal(insert(db, 100 + i, 3000), SQLITE_OK);
	assert_int_equal(
	    sqlite3_exec(db, "UPDATE t SET b = randomblob(2000) WHERE id < 200", NULL, NULL, NULL),
	    SQLITE_OK);
}

/* A transaction larger than the page cache spills frames to the WAL before
 * its commit and later writes over some of them (out of sequence): rolled
 * back it leaves nothing, committed it leaves exactly its rows. */
static void
spilled_transactions_roll_back_and_commit_exactly(void **state)
{
	struct fixture *f = *state;
	int64_t rows;

	assert_int_equal(sqlite3_exec(f->db, "PRAGMA cache_size=16", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(insert(f->db, 1, 1000), SQLITE_OK);

	spill_and_rewrite(f->db);
	assert_int_equal(sqlite3_exec(f->db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(crash_copy(f, &rows), 1000);
	assert_int_equal(rows, 1);

	spill_and_rewrite(f->db);
	assert_int_equal(sqlite3_exec(f->db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(crash_copy(f, &rows), 2000 + 100 * 2000 + 300 * 3000);
	assert_int_equal(rows, 401);
	assert_int_equal(count_rows(f->path), 401);
}

/* A write that fails (the file size limit, as a full disk would) fails the
 * commit it belongs to; the next commit, with space back, succeeds, and the
 * files hold exactly the committed rows. */
static void
a_failed_write_fails_its_commit_only(void **state)
{
	struct fixture *f = *state;
	struct rlimit old, lim;
	struct stat sb;
	char wal[128];
	int64_t rows;
	int rc;

	assert_int_equal(insert(f->db, 1, 2000), SQLITE_OK);
	snprintf(wal, sizeof(wal), "%s-wal", f->path);
	assert_int_equal(stat(wal, &sb), 0);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_IGN);
	lim = old;
	lim.rlim_cur = (rlim_t)sb.st_size + (64 << 10);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);

	assert_int_equal(sqlite3_exec(f->db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	rc = insert(f->db, 2, 512 << 10);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(f->db, "COMMIT", NULL, NULL, NULL);
	assert_int_not_equal(rc, SQLITE_OK);
	if (!sqlite3_get_autocommit(f->db))
		assert_int_equal(sqlite3_exec(f->db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);

	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_DFL);
	assert_int_equal(insert(f->db, 3, 3000), SQLITE_OK);
	assert_int_equal(crash_copy(f, &rows), 5000);
	assert_int_equal(rows, 2);
	assert_int_equal(count_rows(f->path), 2);
}

/* The fixture's WAL file opened on the walbuf VFS directly (`path` its name),
 * its first page of `page` ('a's) written and synced: a transaction to follow. */
static sqlite3_file *
open_synced_wal(const struct fixture *f, char path[128], char page[4096])
{
	sqlite3_vfs *vfs = sqlite3_vfs_find(HR_SQLITE_WALBUF_VFS);
	sqlite3_file *w;
	int out = 0;

	assert_non_null(vfs);
	assert_non_null(w = calloc(1, (size_t)vfs->szOsFile));
	snprintf(path, 128, "%s-wal", f->path);
	assert_int_equal(vfs->xOpen(vfs, path, w,
	                     SQLITE_OPEN_WAL | SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &out),
	    SQLITE_OK);
	memset(page, 'a', 4096);
	assert_int_equal(w->pMethods->xWrite(w, page, 4096, 0), SQLITE_OK);
	assert_int_equal(w->pMethods->xSync(w, SQLITE_SYNC_NORMAL), SQLITE_OK);
	return w;
}

/*
 * A failed write of the buffer sticks. The call that wrote it may be a read,
 * which SQLite takes for a read error: on some errors it undoes only the
 * statement and goes on, and the frames it spilled are gone. Until SQLite
 * writes again at or before the lost bytes (a rollback starts over from the
 * last commit), a sync, a write past them and a read reaching them fail, so
 * no commit can be made over the hole. The WAL file is driven through the
 * VFS directly; RLIMIT_FSIZE makes the write fail.
 */
static void
a_failed_write_sticks_until_written_over(void **state)
{
	struct fixture *f = *state;
	sqlite3_file *w;
	struct rlimit old, lim;
	char path[128], page[4096], got[16];

	w = open_synced_wal(f, path, page);

	/* Gathered, then lost: the file may not grow past its first page. */
	assert_int_equal(w->pMethods->xWrite(w, page, sizeof(page), 4096), SQLITE_OK);
	assert_int_equal(w->pMethods->xWrite(w, page, sizeof(page), 8192), SQLITE_OK);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_IGN);
	lim = old;
	lim.rlim_cur = 4096;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	assert_int_not_equal(w->pMethods->xRead(w, got, sizeof(got), 0), SQLITE_OK);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_DFL);

	/* Space is back; the hole is not. */
	assert_int_equal(w->pMethods->xRead(w, got, sizeof(got), 0), SQLITE_OK); /* before it */
	assert_int_not_equal(w->pMethods->xRead(w, got, sizeof(got), 8192), SQLITE_OK);
	assert_int_not_equal(w->pMethods->xSync(w, SQLITE_SYNC_NORMAL), SQLITE_OK);
	assert_int_not_equal(w->pMethods->xWrite(w, page, sizeof(page), 12288), SQLITE_OK);
	/* Written over from the lost bytes on: a new start. */
	assert_int_equal(w->pMethods->xWrite(w, page, sizeof(page), 4096), SQLITE_OK);
	assert_int_equal(w->pMethods->xSync(w, SQLITE_SYNC_NORMAL), SQLITE_OK);
	assert_int_equal(w->pMethods->xRead(w, got, sizeof(got), 4096), SQLITE_OK);
	assert_int_equal(got[0], 'a');
	assert_int_equal(w->pMethods->xClose(w), SQLITE_OK);
	free(w);
	unlink(path);
}

/*
 * A loss inside a transaction is not undone by a write inside it. SQLite
 * rewrites a frame of the same transaction when it spills that page again; such
 * a write at an offset before the lost bytes cleared the loss, and the appends
 * after it and the commit's sync went through over the hole (a reviewer's
 * sequence; a harness committed a spilled batch over it and the file was
 * malformed). And the loss found by a read is an I/O error, not SQLITE_FULL,
 * for which SQLite would undo only the statement and keep the transaction.
 */
/* The unix VFS's pwrite, failing once with ENOSPC while `enospc_once` is set. */
static sqlite3_syscall_ptr real_pwrite;
static bool enospc_once;

static ssize_t
pwrite_enospc_once(int fd, const void *buf, size_t n, off_t off)
{
	if (enospc_once) {
		enospc_once = false;
		errno = ENOSPC;
		return -1;
	}
	return ((ssize_t(*)(int, const void *, size_t, off_t))real_pwrite)(fd, buf, n, off);
}

static void
a_loss_is_undone_only_where_the_transaction_began(void **state)
{
	struct fixture *f = *state;
	sqlite3_file *w;
	sqlite3_vfs *unix_vfs = sqlite3_vfs_find("unix");
	const char *call = "pwrite64";
	char path[128], page[4096], got[16];
	int rc;

	w = open_synced_wal(f, path, page);

	/* A transaction from 4096: two frames written out, a third lost. */
	assert_int_equal(w->pMethods->xWrite(w, page, sizeof(page), 4096), SQLITE_OK);
	assert_int_equal(w->pMethods->xWrite(w, page, sizeof(page), 8192), SQLITE_OK);
	assert_int_equal(w->pMethods->xRead(w, got, sizeof(got), 0), SQLITE_OK);
	assert_int_equal(w->pMethods->xWrite(w, page, sizeof(page), 12288), SQLITE_OK);
	/* The disk is full for one write (ENOSPC: the unix VFS says SQLITE_FULL). */
	if ((real_pwrite = unix_vfs->xGetSystemCall(unix_vfs, call)) == NULL)
		real_pwrite = unix_vfs->xGetSystemCall(unix_vfs, call = "pwrite");
	assert_non_null(real_pwrite);
	enospc_once = true;
	assert_int_equal(
	    unix_vfs->xSetSystemCall(unix_vfs, call, (sqlite3_syscall_ptr)pwrite_enospc_once),
	    SQLITE_OK);
	rc = w->pMethods->xRead(w, got, sizeof(got), 0);
	assert_int_equal(unix_vfs->xSetSystemCall(unix_vfs, call, real_pwrite), SQLITE_OK);
	assert_false(enospc_once);
	assert_int_not_equal(rc, SQLITE_OK);
	assert_int_equal(rc & 0xff, SQLITE_IOERR); /* not SQLITE_FULL */

	/* The same transaction rewrites a frame before the hole, then appends: both
	 * fail, and so does the commit. */
	assert_int_not_equal(w->pMethods->xWrite(w, page, sizeof(page), 8192), SQLITE_OK);
	assert_int_not_equal(w->pMethods->xWrite(w, page, sizeof(page), 16384), SQLITE_OK);
	assert_int_not_equal(w->pMethods->xSync(w, SQLITE_SYNC_NORMAL), SQLITE_OK);
	/* Rolled back, the next transaction starts where this one began. */
	assert_int_equal(w->pMethods->xWrite(w, page, sizeof(page), 4096), SQLITE_OK);
	assert_int_equal(w->pMethods->xSync(w, SQLITE_SYNC_NORMAL), SQLITE_OK);
	assert_int_equal(w->pMethods->xClose(w), SQLITE_OK);
	free(w);
	unlink(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    the_writer_alone_runs_on_the_walbuf_vfs, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    a_failed_write_sticks_until_written_over, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    a_loss_is_undone_only_where_the_transaction_began, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    every_commit_is_in_the_files_when_it_returns, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    a_commit_of_megabytes_is_written_whole, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    spilled_transactions_roll_back_and_commit_exactly, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    a_failed_write_fails_its_commit_only, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
