//! Chunk reads through SQLite's C API, on a connection sqlx lends out
//! ([`sqlx::sqlite::SqliteConnection::lock_handle`]).
//!
//! Why not `sqlx::query(..).fetch_all`: sqlx runs each SQLite connection on its own worker
//! thread and sends every row over a channel, as an owned copy. A render of 100 series over a
//! day reads ~2,400 chunk rows; handing each to the render thread (a wake-up and a copy per
//! row) cost more CPU than decoding them. Here the render thread steps the statement itself
//! and decodes each blob where SQLite keeps it. Everything else — opening, pragmas, schema,
//! writes, the pool — stays with sqlx; this module only reads.
//!
//! Safe code cannot misuse the raw handle: a [`Db`] borrows sqlx's lock on the connection
//! (`LockedSqliteHandle`) and a [`Statement`] borrows the [`Db`] it was prepared on, so
//! neither outlives the lock, and both stay on the thread that took it (raw pointers: neither
//! `Send` nor `Sync`).

use std::ffi::{c_int, CStr};
use std::marker::PhantomData;
use std::ptr::NonNull;

use libsqlite3_sys as ffi;
use sqlx::sqlite::LockedSqliteHandle;

use super::StoreError;

/// A connection locked out of sqlx's worker for as long as this lives.
pub(super) struct Db<'h> {
    db: NonNull<ffi::sqlite3>,
    _lock: PhantomData<&'h mut ()>,
}

impl<'h> Db<'h> {
    /// The connection behind `handle`, usable while `handle` is borrowed.
    pub(super) fn new(handle: &'h mut LockedSqliteHandle<'_>) -> Db<'h> {
        Db {
            db: handle.as_raw_handle(),
            _lock: PhantomData,
        }
    }

    /// Prepares `sql` (one statement) on this connection.
    pub(super) fn prepare(&self, sql: &str) -> Result<Statement<'_>, StoreError> {
        let db = self.db;
        let len = c_int::try_from(sql.len())
            .map_err(|_| StoreError::Read("statement too long".to_string()))?;
        let mut stmt = std::ptr::null_mut();
        // SAFETY: `db` is an open connection no other thread uses (`self` borrows sqlx's
        // lock); `sql` is valid for `len` bytes; SQLite writes the statement pointer.
        let rc = unsafe {
            ffi::sqlite3_prepare_v2(
                db.as_ptr(),
                sql.as_ptr().cast(),
                len,
                &mut stmt,
                std::ptr::null_mut(),
            )
        };
        if rc != ffi::SQLITE_OK {
            return Err(error(db, rc));
        }
        NonNull::new(stmt)
            .map(|stmt| Statement {
                db,
                stmt,
                _db: PhantomData,
            })
            .ok_or_else(|| StoreError::Read("empty statement".to_string()))
    }
}

/// A prepared statement on a [`Db`], which it cannot outlive; finalized on drop.
pub(super) struct Statement<'d> {
    db: NonNull<ffi::sqlite3>,
    stmt: NonNull<ffi::sqlite3_stmt>,
    _db: PhantomData<&'d ()>,
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
                    // the next step, finalize or column conversion, none of which happens
                    // before `row` returns; `bytes` is asked after `blob`, as SQLite requires.
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

impl Drop for Statement<'_> {
    fn drop(&mut self) {
        // SAFETY: the statement is live and finalized exactly once.
        unsafe {
            ffi::sqlite3_finalize(self.stmt.as_ptr());
        }
    }
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
