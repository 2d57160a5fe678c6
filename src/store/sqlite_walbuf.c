/*
 * sqlite_walbuf.c - the writer's WAL appends, gathered into one write.
 *
 * SQLite writes a WAL frame as two pwrite()s, its 24-byte header and then its
 * page, so a commit of 40 pages costs 80 system calls before its fsync
 * (measured: ~1.9 us of system time each, half the commit's kernel time).
 * This VFS sits over the "unix" one and, for WAL files only, keeps
 * consecutive writes in a buffer that goes to the file as one pwrite() when
 * SQLite syncs, reads, sizes, truncates or closes the file, or writes out
 * of sequence, and whenever it fills.
 *
 * Durability is unchanged: a commit returns only after xSync, and xSync
 * writes the buffer before it syncs; other connections read only frames
 * published in the WAL index, which SQLite updates after that sync. A crash
 * before the sync loses bytes that were not durable anyway (SQLite ignores
 * frames after the last valid commit). A failed write is reported by the
 * call that writes the buffer: within the transaction whose frames failed,
 * since every commit syncs (hookrelay runs synchronous=FULL only).
 *
 * That call may be a read, which SQLite takes for a read error: it may undo
 * only the statement and go on, while the frames it wrote are gone. So a
 * failed write sticks: until SQLite writes again where the transaction began
 * (the first write since the last sync) or before (a rollback's next
 * transaction starts over from the last commit, or the WAL restarts at 0),
 * every sync, every write and every read that reaches the lost bytes fails,
 * and the transaction can only be rolled back, never committed with a hole.
 * A write inside the transaction does not count as a new start: SQLite
 * rewrites a frame it wrote earlier in the same transaction when it spills
 * that page again, and such a write once cleared the loss, so later appends
 * and the commit's sync went through over the hole. And a failure reported
 * by a call that does not write is an I/O error, never SQLITE_FULL: for a
 * full disk SQLite undoes only the statement when it can, keeping the
 * transaction that has lost its frames.
 */
#include <stdlib.h>
#include <string.h>

#include "hr/log.h"
#include "sqlite_int.h"

/* 256 frames of 4 KiB pages: a large commit is still a handful of writes. */
#define WALBUF_BYTES (1u << 20)
/* The unix VFS writes at most 128 KiB - 1 per call (os_unix.c masks the
 * length with 0x1ffff and reports the rest as a full disk): larger buffers
 * go in pieces of this size. */
#define WRITE_MAX (124u << 10)

struct walbuf_file {
	sqlite3_file base;
	sqlite3_file *real; /* the "unix" VFS's file, in the same allocation */
	unsigned char *buf; /* NULL: not a WAL file, every call passes through */
	sqlite3_int64 off;  /* where buf[0] goes in the file */
	size_t len;
	sqlite3_int64 lost;  /* where bytes that failed to be written begin; -1: none */
	sqlite3_int64 begun; /* the transaction's first write since the last sync; -1: none yet */
};

static sqlite3_vfs *parent;

static int
write_through(struct walbuf_file *f, const unsigned char *data, size_t n, sqlite3_int64 off)
{
	int rc = SQLITE_OK;

	for (size_t done = 0, piece; done < n && rc == SQLITE_OK; done += piece) {
		piece = n - done < WRITE_MAX ? n - done : WRITE_MAX;
		rc = f->real->pMethods->xWrite(
		    f->real, data + done, (int)piece, off + (sqlite3_int64)done);
	}
	return rc;
}

static int
flush(struct walbuf_file *f)
{
	int rc;

	if (f->len == 0)
		return SQLITE_OK;
	rc = write_through(f, f->buf, f->len, f->off);
	if (rc != SQLITE_OK && (f->lost < 0 || f->off < f->lost))
		f->lost = f->off;
	f->len = 0; /* on failure too: `lost` keeps the rest from using the hole */
	return rc;
}

/* A flush that failed inside a call that writes nothing (read, size, control):
 * an I/O error, whatever the write said (see the top of the file). */
static int
as_io_error(int rc)
{
	return rc == SQLITE_OK || (rc & 0xff) == SQLITE_IOERR ? rc : SQLITE_IOERR_WRITE;
}

/* Bytes were lost and [off, off + n) reaches them. */
static bool
reaches_lost(const struct walbuf_file *f, sqlite3_int64 off, sqlite3_int64 n)
{
	return f->lost >= 0 && off + n > f->lost;
}

static struct walbuf_file *
walbuf(sqlite3_file *file)
{
	return (struct walbuf_file *)file;
}

static int
x_close(sqlite3_file *file)
{
	struct walbuf_file *f = walbuf(file);
	int rc = flush(f), rc2 = f->real->pMethods->xClose(f->real);

	free(f->buf);
	f->buf = NULL;
	return rc != SQLITE_OK ? rc : rc2;
}

static int
x_read(sqlite3_file *file, void *out, int n, sqlite3_int64 off)
{
	struct walbuf_file *f = walbuf(file);
	int rc = as_io_error(flush(f));

	if (rc == SQLITE_OK && reaches_lost(f, off, n))
		rc = SQLITE_IOERR_READ;
	return rc != SQLITE_OK ? rc : f->real->pMethods->xRead(f->real, out, n, off);
}

static int
x_write(sqlite3_file *file, const void *data, int n, sqlite3_int64 off)
{
	struct walbuf_file *f = walbuf(file);
	int rc;

	if (f->buf == NULL)
		return f->real->pMethods->xWrite(f->real, data, n, off);
	if (f->lost >= 0) {
		/* Inside the transaction with the hole, it is done for; where it
		 * began or before, a new one starts. */
		if (f->begun >= 0 && off > f->begun)
			return SQLITE_IOERR_WRITE;
		f->lost = -1;
	}
	if (f->begun < 0 || off < f->begun)
		f->begun = off;
	if (f->len > 0 && off == f->off + (sqlite3_int64)f->len &&
	    f->len + (size_t)n <= WALBUF_BYTES) {
		memcpy(f->buf + f->len, data, (size_t)n);
		f->len += (size_t)n;
		return SQLITE_OK;
	}
	/* Out of sequence (an overwrite, the header at a restart) or full: what
	 * came before goes first, so the file sees the writes in their order. */
	if ((rc = flush(f)) != SQLITE_OK)
		return rc;
	if ((size_t)n > WALBUF_BYTES)
		return write_through(f, data, (size_t)n, off);
	memcpy(f->buf, data, (size_t)n);
	f->off = off;
	f->len = (size_t)n;
	return SQLITE_OK;
}

static int
x_truncate(sqlite3_file *file, sqlite3_int64 size)
{
	struct walbuf_file *f = walbuf(file);
	int rc = as_io_error(flush(f));

	if (rc == SQLITE_OK && f->lost >= size)
		f->lost = -1; /* the hole is cut off */
	return rc != SQLITE_OK ? rc : f->real->pMethods->xTruncate(f->real, size);
}

/*
 * A commit whose sync failed is answered "not stored", but its frames, commit
 * frame included, are in the file: a crash before the next transaction writes
 * over them, and the restart's recovery replays it (a review: an event
 * answered 503 was stored, and forwarded). Zeros over the header where the
 * transaction began (a frame's, or the WAL header's at a restart, when every
 * frame before was checkpointed) end the log there for a recovery; synced,
 * they hold whatever the failed sync left of the rest. Best effort: a disk
 * that fails this too may keep the transaction (operations.md says so). Said
 * in hookrelay's log itself, not through sqlite3_log() (whose handler,
 * sqlite_db.c's, judges SQLite's own errors): "may remain" is the operator's
 * only word that events answered 503 may be stored after a restart.
 */
static void
unwrite_transaction(struct walbuf_file *f, int flags)
{
	static const unsigned char zeros[24]; /* a WAL frame header's size */

	if (f->begun >= 0 && write_through(f, zeros, sizeof(zeros), f->begun) == SQLITE_OK &&
	    f->real->pMethods->xSync(f->real, flags) == SQLITE_OK)
		log_warnx("walbuf: a failed commit's frames undone");
	else
		log_errx("walbuf: a failed commit's frames may remain: a restart may find its "
		         "events, answered 503, stored");
}

static int
x_sync(sqlite3_file *file, int flags)
{
	struct walbuf_file *f = walbuf(file);
	int rc = flush(f);

	if (rc == SQLITE_OK && f->lost >= 0)
		rc = SQLITE_IOERR_FSYNC; /* a commit over a hole: never */
	if (rc != SQLITE_OK)
		return rc;
	if ((rc = f->real->pMethods->xSync(f->real, flags)) == SQLITE_OK)
		f->begun = -1; /* the next write begins the next transaction */
	else if (f->buf != NULL)
		unwrite_transaction(f, flags);
	return rc;
}

static int
x_file_size(sqlite3_file *file, sqlite3_int64 *size)
{
	struct walbuf_file *f = walbuf(file);
	int rc = as_io_error(flush(f));

	return rc != SQLITE_OK ? rc : f->real->pMethods->xFileSize(f->real, size);
}

static int
x_lock(sqlite3_file *file, int lock)
{
	return walbuf(file)->real->pMethods->xLock(walbuf(file)->real, lock);
}

static int
x_unlock(sqlite3_file *file, int lock)
{
	return walbuf(file)->real->pMethods->xUnlock(walbuf(file)->real, lock);
}

static int
x_check_reserved_lock(sqlite3_file *file, int *out)
{
	return walbuf(file)->real->pMethods->xCheckReservedLock(walbuf(file)->real, out);
}

static int
x_file_control(sqlite3_file *file, int op, void *arg)
{
	struct walbuf_file *f = walbuf(file);
	int rc = as_io_error(flush(f)); /* whatever the control does, it sees the file as written */

	if (rc == SQLITE_OK)
		rc = f->real->pMethods->xFileControl(f->real, op, arg);
	if (rc == SQLITE_OK &&
	    op == SQLITE_FCNTL_VFSNAME) /* the stack, as SQLite's shims name it */
		*(char **)arg = sqlite3_mprintf("%s/%z", HR_SQLITE_WALBUF_VFS, *(char **)arg);
	return rc;
}

static int
x_sector_size(sqlite3_file *file)
{
	return walbuf(file)->real->pMethods->xSectorSize(walbuf(file)->real);
}

static int
x_device_characteristics(sqlite3_file *file)
{
	return walbuf(file)->real->pMethods->xDeviceCharacteristics(walbuf(file)->real);
}

static int
x_shm_map(sqlite3_file *file, int region, int size, int extend, void volatile **out)
{
	return walbuf(file)->real->pMethods->xShmMap(walbuf(file)->real, region, size, extend, out);
}

static int
x_shm_lock(sqlite3_file *file, int offset, int n, int flags)
{
	return walbuf(file)->real->pMethods->xShmLock(walbuf(file)->real, offset, n, flags);
}

static void
x_shm_barrier(sqlite3_file *file)
{
	walbuf(file)->real->pMethods->xShmBarrier(walbuf(file)->real);
}

static int
x_shm_unmap(sqlite3_file *file, int delete_flag)
{
	return walbuf(file)->real->pMethods->xShmUnmap(walbuf(file)->real, delete_flag);
}

static int
x_fetch(sqlite3_file *file, sqlite3_int64 off, int n, void **out)
{
	struct walbuf_file *f = walbuf(file);
	int rc = flush(f);

	return rc != SQLITE_OK ? rc : f->real->pMethods->xFetch(f->real, off, n, out);
}

static int
x_unfetch(sqlite3_file *file, sqlite3_int64 off, void *p)
{
	return walbuf(file)->real->pMethods->xUnfetch(walbuf(file)->real, off, p);
}

static const sqlite3_io_methods methods = {
	.iVersion = 3,
	.xClose = x_close,
	.xRead = x_read,
	.xWrite = x_write,
	.xTruncate = x_truncate,
	.xSync = x_sync,
	.xFileSize = x_file_size,
	.xLock = x_lock,
	.xUnlock = x_unlock,
	.xCheckReservedLock = x_check_reserved_lock,
	.xFileControl = x_file_control,
	.xSectorSize = x_sector_size,
	.xDeviceCharacteristics = x_device_characteristics,
	.xShmMap = x_shm_map,
	.xShmLock = x_shm_lock,
	.xShmBarrier = x_shm_barrier,
	.xShmUnmap = x_shm_unmap,
	.xFetch = x_fetch,
	.xUnfetch = x_unfetch,
};

static int
x_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags, int *out_flags)
{
	struct walbuf_file *f = walbuf(file);
	int rc;

	(void)vfs;
	memset(f, 0, sizeof(*f));
	f->lost = -1;
	f->begun = -1;
	f->real = (sqlite3_file *)(f + 1);
	if ((flags & SQLITE_OPEN_WAL) && (f->buf = malloc(WALBUF_BYTES)) == NULL)
		return SQLITE_NOMEM;
	rc = parent->xOpen(parent, name, f->real, flags, out_flags);
	if (rc != SQLITE_OK || f->real->pMethods == NULL) {
		/* base.pMethods stays NULL: SQLite will not call xClose */
		free(f->buf);
		f->buf = NULL;
		return rc != SQLITE_OK ? rc : SQLITE_CANTOPEN;
	}
	/* The unix VFS's files are version 3 (shared memory, memory map); a file
	 * of an older version would need its own table. */
	if (f->real->pMethods->iVersion < 3) {
		f->real->pMethods->xClose(f->real);
		free(f->buf);
		f->buf = NULL;
		return SQLITE_CANTOPEN;
	}
	f->base.pMethods = &methods;
	return SQLITE_OK;
}

/* Everything but xOpen is the parent's, with the parent as its VFS. */
static int
x_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
	(void)vfs;
	return parent->xDelete(parent, name, sync_dir);
}

static int
x_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
	(void)vfs;
	return parent->xAccess(parent, name, flags, out);
}

static int
x_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
	(void)vfs;
	return parent->xFullPathname(parent, name, n, out);
}

static void *
x_dl_open(sqlite3_vfs *vfs, const char *name)
{
	(void)vfs;
	return parent->xDlOpen(parent, name);
}

static void
x_dl_error(sqlite3_vfs *vfs, int n, char *out)
{
	(void)vfs;
	parent->xDlError(parent, n, out);
}

static void (*x_dl_sym(sqlite3_vfs *vfs, void *handle, const char *name))(void)
{
	(void)vfs;
	return parent->xDlSym(parent, handle, name);
}

static void
x_dl_close(sqlite3_vfs *vfs, void *handle)
{
	(void)vfs;
	parent->xDlClose(parent, handle);
}

static int
x_randomness(sqlite3_vfs *vfs, int n, char *out)
{
	(void)vfs;
	return parent->xRandomness(parent, n, out);
}

static int
x_sleep(sqlite3_vfs *vfs, int us)
{
	(void)vfs;
	return parent->xSleep(parent, us);
}

static int
x_current_time(sqlite3_vfs *vfs, double *out)
{
	(void)vfs;
	return parent->xCurrentTime(parent, out);
}

static int
x_get_last_error(sqlite3_vfs *vfs, int n, char *out)
{
	(void)vfs;
	return parent->xGetLastError ? parent->xGetLastError(parent, n, out) : 0;
}

static int
x_current_time_int64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
	(void)vfs;
	return parent->xCurrentTimeInt64(parent, out);
}

static sqlite3_vfs vfs = {
	.iVersion = 2,
	.zName = HR_SQLITE_WALBUF_VFS,
	.xOpen = x_open,
	.xDelete = x_delete,
	.xAccess = x_access,
	.xFullPathname = x_full_pathname,
	.xDlOpen = x_dl_open,
	.xDlError = x_dl_error,
	.xDlSym = x_dl_sym,
	.xDlClose = x_dl_close,
	.xRandomness = x_randomness,
	.xSleep = x_sleep,
	.xCurrentTime = x_current_time,
	.xGetLastError = x_get_last_error,
	.xCurrentTimeInt64 = x_current_time_int64,
};

int
hr_sqlite_walbuf_register(void)
{
	if ((parent = sqlite3_vfs_find("unix")) == NULL || parent->iVersion < 2)
		return SQLITE_ERROR;
	vfs.szOsFile = (int)sizeof(struct walbuf_file) + parent->szOsFile;
	vfs.mxPathname = parent->mxPathname;
	return sqlite3_vfs_register(&vfs, 0);
}
