//! Chunk reads through SQLite's C API, on read connections of the store's own (not sqlx's).
//!
//! Why not sqlx for reads: sqlx runs each SQLite connection on its own worker thread. A render
//! runs on a blocking pool thread; reading through sqlx meant `block_on` on the runtime, a
//! pool acquire and a `lock_handle` (each a message to sqlx's worker and a wake-up back), and
//! before that every row crossed threads as an owned copy. Here the render thread opens (once)
//! and steps a connection of its own, decodes each blob where SQLite keeps it, and keeps its
//! chunk statements prepared between requests. Everything else — opening and creating the
//! database, pragmas, schema, migrations, writes — stays with sqlx; these connections only
//! read (`query_only`).
//!
//! Safe code cannot misuse the raw handles: a [`ReadConn`] owns its connection (closed on
//! drop) and is used through `&mut` only, so by one thread at a time (SQLite's multi-thread
//! mode allows that; [`ReadConn::open`] refuses a single-thread build); a [`Statement`]
//! borrows the connection mutably, is reset when dropped and finalized with the connection.

use std::ffi::{c_int, CStr, CString};
use std::path::Path;
use std::ptr::NonNull;

use libsqlite3_sys as ffi;

use super::StoreError;

/// Chunk statements kept prepared per connection (one per count of bound series ids).
const KEPT_STATEMENTS: usize = 8;

/// A read-only connection of the store's database, with its prepared chunk statements.
pub(super) struct ReadConn {
    db: NonNull<ffi::sqlite3>,
    /// `(ids bound, statement)`, most recently used last.
    chunks: Vec<(usize, NonNull<ffi::sqlite3_stmt>)>,
}

// SAFETY: the connection is opened in SQLite's multi-thread mode (SQLITE_OPEN_NOMUTEX) in a
// thread-safe build (checked in `open`), where a connection and its statements may move
// between threads as long as no two use them at once; every use goes through `&mut self`.
unsafe impl Send for ReadConn {}

impl ReadConn {
    /// Opens `path` (an existing database in WAL mode) for reading: the file mapped
    /// (`mmap_size`, as the pool's connections), waiting up to 30 s on a lock.
    pub(super) fn open(path: &Path) -> Result<ReadConn, StoreError> {
        // SAFETY: no arguments; reads a compile-time constant of the library.
        if unsafe { ffi::sqlite3_threadsafe() } == 0 {
            return Err(StoreError::Read(
                "SQLite was built single-threaded: no read connections".to_string(),
            ));
        }
        let name = CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| StoreError::Read("database path holds a NUL byte".to_string()))?;
        let mut db = std::ptr::null_mut();
        // SAFETY: `name` is NUL-terminated; SQLite writes the handle (also on failure, when
        // it must still be closed).
        let rc = unsafe {
            ffi::sqlite3_open_v2(
                name.as_ptr(),
                &mut db,
                ffi::SQLITE_OPEN_READWRITE | ffi::SQLITE_OPEN_NOMUTEX,
                std::ptr::null(),
            )
        };
        let Some(db) = NonNull::new(db) else {
            return Err(StoreError::Read(format!(
                "cannot open a read connection (SQLite result code {rc})"
            )));
        };
        let conn = ReadConn {
            db,
            chunks: Vec::new(),
        };
        if rc != ffi::SQLITE_OK {
            return Err(error(db, rc));
        }
        // SAFETY: the connection is open and used by this thread only.
        let rc = unsafe { ffi::sqlite3_busy_timeout(db.as_ptr(), 30_000) };
        if rc != ffi::SQLITE_OK {
            return Err(error(db, rc));
        }
        conn.exec(c"PRAGMA query_only = ON")?;
        conn.exec(c"PRAGMA mmap_size = 1073741824")?;
        Ok(conn)
    }

    fn exec(&self, sql: &CStr) -> Result<(), StoreError> {
        // SAFETY: the connection is open; `sql` is NUL-terminated; no callback.
        let rc = unsafe {
            ffi::sqlite3_exec(
                self.db.as_ptr(),
                sql.as_ptr(),
                None,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        if rc != ffi::SQLITE_OK {
            return Err(error(self.db, rc));
        }
        Ok(())
    }

    /// The chunk query for `ids` series ids (`series_id IN (?1..?ids)`, then archive, first
    /// and last chunk start), prepared on first use and kept for the next.
    pub(super) fn chunks(&mut self, ids: usize) -> Result<Statement<'_>, StoreError> {
        let stmt = match self.chunks.iter().position(|(n, _)| *n == ids) {
            Some(at) => {
                let kept = self.chunks.remove(at);
                self.chunks.push(kept);
                kept.1
            }
            None => {
                let stmt = self.prepare(&chunk_sql(ids))?;
                if self.chunks.len() >= KEPT_STATEMENTS {
                    let (_, old) = self.chunks.remove(0);
                    // SAFETY: `old` was prepared here, is not borrowed (no `Statement`
                    // lives while `&mut self` is), and is finalized once, as it leaves.
                    unsafe { ffi::sqlite3_finalize(old.as_ptr()) };
                }
                self.chunks.push((ids, stmt));
                stmt
            }
        };
        Ok(Statement {
            db: self.db,
            stmt,
            kept: true,
            _conn: std::marker::PhantomData,
        })
    }

    /// Prepares `sql` (one statement) for one use: finalized when the statement is dropped.
    pub(super) fn prepare_once(&mut self, sql: &str) -> Result<Statement<'_>, StoreError> {
        let stmt = self.prepare(sql)?;
        Ok(Statement {
            db: self.db,
            stmt,
            kept: false,
            _conn: std::marker::PhantomData,
        })
    }

    /// Prepares `sql` (one statement) to be kept.
    fn prepare(&self, sql: &str) -> Result<NonNull<ffi::sqlite3_stmt>, StoreError> {
        let len = c_int::try_from(sql.len())
            .map_err(|_| StoreError::Read("statement too long".to_string()))?;
        let mut stmt = std::ptr::null_mut();
        // SAFETY: the connection is open and used by this thread only; `sql` is valid for
        // `len` bytes; SQLite writes the statement pointer.
        let rc = unsafe {
            ffi::sqlite3_prepare_v3(
                self.db.as_ptr(),
                sql.as_ptr().cast(),
                len,
                ffi::SQLITE_PREPARE_PERSISTENT as _,
                &mut stmt,
                std::ptr::null_mut(),
            )
        };
        if rc != ffi::SQLITE_OK {
            return Err(error(self.db, rc));
        }
        NonNull::new(stmt).ok_or_else(|| StoreError::Read("empty statement".to_string()))
    }
}

impl Drop for ReadConn {
    fn drop(&mut self) {
        // SAFETY: each kept statement is live and finalized once; then the connection,
        // which no statement outlives, is closed once.
        unsafe {
            for (_, stmt) in self.chunks.drain(..) {
                ffi::sqlite3_finalize(stmt.as_ptr());
            }
            ffi::sqlite3_close(self.db.as_ptr());
        }
    }
}

/// The text of the chunk query for `ids` series ids.
fn chunk_sql(ids: usize) -> String {
    let mut sql =
        String::from("SELECT series_id, chunk_start, data FROM chunks WHERE series_id IN (");
    for i in 0..ids {
        sql.push_str(if i == 0 { "?" } else { ", ?" });
    }
    sql.push_str(") AND archive = ? AND chunk_start BETWEEN ? AND ?");
    sql
}

/// A statement in use: borrows its [`ReadConn`] mutably, so it is the only one in use on
/// that connection. When dropped, a kept one is reset (bindings cleared), ready for the next
/// use; one prepared for one use is finalized.
pub(super) struct Statement<'c> {
    db: NonNull<ffi::sqlite3>,
    stmt: NonNull<ffi::sqlite3_stmt>,
    kept: bool,
    _conn: std::marker::PhantomData<&'c mut ReadConn>,
}

impl Statement<'_> {
    /// Binds `value` to parameter `index` (1-based).
    pub(super) fn bind(&mut self, index: usize, value: i64) -> Result<(), StoreError> {
        let index = c_int::try_from(index)
            .map_err(|_| StoreError::Read("too many parameters".to_string()))?;
        // SAFETY: the statement is live; SQLite checks the index range.
        let rc = unsafe { ffi::sqlite3_bind_int64(self.stmt.as_ptr(), index, value) };
        if rc != ffi::SQLITE_OK {
            return Err(error(self.db, rc));
        }
        Ok(())
    }

    /// Steps through the result rows, calling `row(integer column 0, integer column 1, blob
    /// column 2)` for each. The blob is borrowed from SQLite until the next step.
    pub(super) fn for_each(
        &mut self,
        mut row: impl FnMut(i64, i64, &[u8]),
    ) -> Result<(), StoreError> {
        let stmt = self.stmt.as_ptr();
        loop {
            // SAFETY: the statement is live and used by this thread only.
            match unsafe { ffi::sqlite3_step(stmt) } {
                ffi::SQLITE_ROW => {
                    // SAFETY: a row is current; the column indexes exist in the statement
                    // (SQLite returns 0 / NULL otherwise). The blob pointer stays valid until
                    // the next step, reset, finalize or column conversion, none of which
                    // happens before `row` returns; `bytes` is asked after `blob`, as SQLite
                    // requires.
                    let (a, b, data) = unsafe {
                        let a = ffi::sqlite3_column_int64(stmt, 0);
                        let b = ffi::sqlite3_column_int64(stmt, 1);
                        let p = ffi::sqlite3_column_blob(stmt, 2);
                        let n = ffi::sqlite3_column_bytes(stmt, 2);
                        let data = match usize::try_from(n) {
                            Ok(n) if n > 0 && !p.is_null() => {
                                std::slice::from_raw_parts(p.cast::<u8>(), n)
                            }
                            _ => &[][..],
                        };
                        (a, b, data)
                    };
                    row(a, b, data);
                }
                ffi::SQLITE_DONE => return Ok(()),
                rc => return Err(error(self.db, rc)),
            }
        }
    }
}

impl Statement<'_> {
    /// Steps through rows of `(integer, text, text, text, real)` — the `series` table as
    /// [`super::Store::open`] reads it — calling `row` for each with the texts borrowed from
    /// SQLite until the next step; stops at the first error `row` returns.
    pub(super) fn for_each_series(
        &mut self,
        mut row: impl FnMut(i64, &str, &str, &str, f64) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let stmt = self.stmt.as_ptr();
        loop {
            // SAFETY: the statement is live and used by this thread only.
            match unsafe { ffi::sqlite3_step(stmt) } {
                ffi::SQLITE_ROW => {
                    // SAFETY: a row is current; the columns exist in the statement.
                    let (id, xff) = unsafe {
                        (
                            ffi::sqlite3_column_int64(stmt, 0),
                            ffi::sqlite3_column_double(stmt, 4),
                        )
                    };
                    // SAFETY: a row is current and columns 1-3 exist; the texts are used by
                    // `row` only, before the next step.
                    let (path, retentions, aggregation) =
                        unsafe { (text(stmt, 1)?, text(stmt, 2)?, text(stmt, 3)?) };
                    row(id, path, retentions, aggregation, xff)?;
                }
                ffi::SQLITE_DONE => return Ok(()),
                rc => return Err(error(self.db, rc)),
            }
        }
    }
}

impl Drop for Statement<'_> {
    fn drop(&mut self) {
        // SAFETY: the statement is live: a kept one is finalized only with its connection,
        // which this borrows (a reset ends its read transaction and clears its bindings); one
        // prepared for one use is owned by this and finalized here, once.
        unsafe {
            if self.kept {
                ffi::sqlite3_reset(self.stmt.as_ptr());
                ffi::sqlite3_clear_bindings(self.stmt.as_ptr());
            } else {
                ffi::sqlite3_finalize(self.stmt.as_ptr());
            }
        }
    }
}

/// Text column `i` of the current row of `stmt`.
///
/// # Safety
/// A row of `stmt` is current and `i` is one of its columns. The text is SQLite's: valid
/// until the next step, reset or finalize of `stmt` or another conversion of the same
/// column, which the caller must not do while it holds the `&str`.
unsafe fn text<'a>(stmt: *mut ffi::sqlite3_stmt, i: c_int) -> Result<&'a str, StoreError> {
    // SAFETY: per the function's contract; the pointer is asked before the length, as
    // SQLite requires.
    let bytes = unsafe {
        let p = ffi::sqlite3_column_text(stmt, i);
        let n = ffi::sqlite3_column_bytes(stmt, i);
        match usize::try_from(n) {
            Ok(n) if n > 0 && !p.is_null() => std::slice::from_raw_parts(p, n),
            _ => &[][..],
        }
    };
    std::str::from_utf8(bytes)
        .map_err(|_| StoreError::Read("the series table holds text not in UTF-8".into()))
}

/// The connection's error message for result code `rc`.
fn error(db: NonNull<ffi::sqlite3>, rc: c_int) -> StoreError {
    // SAFETY: `db` is open; sqlite3_errmsg returns a NUL-terminated string owned by SQLite,
    // valid until the next call on the connection — copied here at once.
    let msg = unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(db.as_ptr())) }
        .to_string_lossy()
        .into_owned();
    StoreError::Read(format!("{msg} (SQLite result code {rc})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_statements_are_reused_bounded_and_reset() {
        let dir = std::env::temp_dir().join(format!("carbide-raw-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.db");
        {
            let mut db = std::ptr::null_mut();
            let name = CString::new(path.to_str().unwrap()).unwrap();
            // SAFETY: test setup on a fresh file, one thread.
            unsafe {
                ffi::sqlite3_open(name.as_ptr(), &mut db);
                let sql = c"PRAGMA journal_mode=WAL; CREATE TABLE chunks (series_id INTEGER, archive INTEGER, chunk_start INTEGER, data BLOB, PRIMARY KEY (series_id, archive, chunk_start)) WITHOUT ROWID; INSERT INTO chunks VALUES (1, 0, 0, x'01'), (2, 0, 0, x'0202'), (2, 0, 600, x'03');";
                assert_eq!(
                    ffi::sqlite3_exec(
                        db,
                        sql.as_ptr(),
                        None,
                        std::ptr::null_mut(),
                        std::ptr::null_mut()
                    ),
                    ffi::SQLITE_OK
                );
                ffi::sqlite3_close(db);
            }
        }
        let mut conn = ReadConn::open(&path).unwrap();
        let rows = |conn: &mut ReadConn, ids: &[i64], lo: i64, hi: i64| {
            let mut st = conn.chunks(ids.len()).unwrap();
            for (i, id) in ids.iter().enumerate() {
                st.bind(i + 1, *id).unwrap();
            }
            st.bind(ids.len() + 1, 0).unwrap();
            st.bind(ids.len() + 2, lo).unwrap();
            st.bind(ids.len() + 3, hi).unwrap();
            let mut got = Vec::new();
            st.for_each(|a, b, d| got.push((a, b, d.to_vec()))).unwrap();
            got
        };
        assert_eq!(rows(&mut conn, &[2], 0, 600).len(), 2);
        // The same statement again, other bindings: nothing of the last use left over.
        assert_eq!(rows(&mut conn, &[2], 600, 600), vec![(2, 600, vec![3])]);
        assert_eq!(rows(&mut conn, &[1, 2], 0, 0).len(), 2);
        for n in 1..=KEPT_STATEMENTS + 3 {
            let ids: Vec<i64> = (1..=n as i64).collect();
            assert_eq!(rows(&mut conn, &ids, 0, 0).len(), 2.min(n));
        }
        assert_eq!(conn.chunks.len(), KEPT_STATEMENTS);
        // A statement for one use is not kept.
        let mut once = conn
            .prepare_once("SELECT series_id, chunk_start, data FROM chunks WHERE series_id = ?")
            .unwrap();
        once.bind(1, 2).unwrap();
        let mut n = 0;
        once.for_each(|_, _, _| n += 1).unwrap();
        drop(once);
        assert_eq!((n, conn.chunks.len()), (2, KEPT_STATEMENTS));
        // query_only: this connection cannot write.
        assert!(conn.exec(c"DELETE FROM chunks").is_err());
        drop(conn);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
