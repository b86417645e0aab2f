//! The database's format version (SQLite's `user_version`) and the migration of older
//! chunks, run by [`Store::open`](super::Store::open) before anything reads or writes.
//!
//! - 0 or 1: dense chunks (format 1: each blob `0` + 360 f64s, or `1` + `(u16 slot, f64)`
//!   pairs). Version 0 is also a new, empty database.
//! - 2: compressed chunks ([`codec`](super::codec)); format-1 blobs still decode.
//!
//! The migration re-encodes every format-1 chunk in key order, a batch of rows per
//! transaction, and sets the version when none is left: a migration cut short (crash,
//! full disk) leaves readable chunks of both formats and resumes at the next open. Pages it
//! frees are reused by later flushes (`VACUUM` returns them to the file system).

use sqlx::{Connection as _, Row, SqlitePool};

use super::chunk;
use super::codec;
use super::StoreError;

/// The format this build writes.
pub const FORMAT: i64 = 2;

/// Chunks re-encoded per transaction.
const BATCH: i64 = 2000;

/// What a migration did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Migrated {
    pub chunks: u64,
    pub bytes_before: u64,
    pub bytes_after: u64,
    /// Chunks left as they were: not a blob format 1 wrote (reads skip them, as before).
    pub unreadable: u64,
}

/// Bring the database to [`FORMAT`]; an error for a database a newer carbide wrote.
pub async fn run(pool: &SqlitePool) -> Result<Migrated, StoreError> {
    let version: i64 = sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(pool)
        .await?;
    let mut done = Migrated::default();
    if version == FORMAT {
        return Ok(done);
    }
    if version > FORMAT {
        return Err(StoreError::Format { found: version });
    }
    let mut conn = pool.acquire().await?;
    // As the flush: a connection whose transaction failed is closed, not pooled again.
    if let Err(e) = migrate_on(&mut conn, &mut done).await {
        let _ = conn.close().await;
        return Err(e);
    }
    if done.chunks > 0 || done.unreadable > 0 {
        tracing::info!(
            chunks = done.chunks,
            bytes_before = done.bytes_before,
            bytes_after = done.bytes_after,
            unreadable = done.unreadable,
            "store chunks migrated from format {version} to {FORMAT}"
        );
    }
    Ok(done)
}

async fn migrate_on(
    conn: &mut sqlx::pool::PoolConnection<sqlx::Sqlite>,
    done: &mut Migrated,
) -> Result<(), StoreError> {
    let mut after: (i64, i64, i64) = (i64::MIN, i64::MIN, i64::MIN);
    loop {
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        let rows = sqlx::query(
            "SELECT series_id, archive, chunk_start, data FROM chunks
             WHERE (series_id, archive, chunk_start) > (?1, ?2, ?3)
             ORDER BY series_id, archive, chunk_start LIMIT ?4",
        )
        .bind(after.0)
        .bind(after.1)
        .bind(after.2)
        .bind(BATCH)
        .fetch_all(&mut *tx)
        .await?;
        let mut blob = Vec::new();
        for row in &rows {
            let key: (i64, i64, i64) = (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
            after = key;
            let data: &[u8] = row.try_get(3)?;
            if data.first() == Some(&codec::TAG) {
                continue;
            }
            let Some(values) = chunk::decode(data) else {
                done.unreadable += 1;
                continue;
            };
            codec::encode(&values, &mut blob);
            sqlx::query(
                "UPDATE chunks SET data = ?1
                 WHERE series_id = ?2 AND archive = ?3 AND chunk_start = ?4",
            )
            .bind(&blob)
            .bind(key.0)
            .bind(key.1)
            .bind(key.2)
            .execute(&mut *tx)
            .await?;
            done.chunks += 1;
            done.bytes_before += data.len() as u64;
            done.bytes_after += blob.len() as u64;
        }
        let last = (rows.len() as i64) < BATCH;
        if last {
            sqlx::query(&format!("PRAGMA user_version = {FORMAT}"))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        if last {
            return Ok(());
        }
    }
}
