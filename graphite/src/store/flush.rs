//! The flush: every cached point written to SQLite in one `BEGIN IMMEDIATE` transaction
//! (new series rows, chunks merged with those already stored, expired chunks deleted), then
//! dropped from the cache. A failed flush keeps its points cached for the next one.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

use sqlx::{QueryBuilder, Row, Sqlite};

use super::cache::LogPt;
use super::chunk::{self, ChunkKey, ChunkMap, Pt};
use super::schema::{Archive, SeriesSchema};
use super::{lock, unix_now, Store, StoreError};

/// One series in a flush.
struct FlushItem {
    /// Its path, for a series not yet in the `series` table (the only ones written there).
    path: Option<String>,
    id: u64,
    schema: Arc<SeriesSchema>,
    /// Its points, in arrival order.
    pts: Vec<Pt>,
    /// Already in the `series` table.
    persisted: bool,
}

/// Result of one flush.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlushReport {
    pub series: usize,
    pub points: usize,
    pub chunks_written: usize,
    pub chunks_expired: u64,
    /// Where the write's time went (logged at debug level).
    pub phases: FlushPhases,
}

/// The time of each step of a flush's transaction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlushPhases {
    pub begin: std::time::Duration,
    pub series_rows: std::time::Duration,
    pub chunks_read: std::time::Duration,
    pub chunks_built: std::time::Duration,
    pub chunks_written: std::time::Duration,
    pub expired: std::time::Duration,
    pub commit: std::time::Duration,
}

impl std::fmt::Display for FlushPhases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "begin {:?}, series rows {:?}, chunks read {:?}, built {:?}, written {:?}, \
             expired deleted {:?}, commit {:?}",
            self.begin,
            self.series_rows,
            self.chunks_read,
            self.chunks_built,
            self.chunks_written,
            self.expired,
            self.commit
        )
    }
}

impl Store {
    /// Write every cached point to SQLite in one transaction, roll up, and expire chunks
    /// older than their archive's retention.
    pub async fn flush_at(&self, now: i64) -> Result<FlushReport, StoreError> {
        let mut sorted = self.flush_lock.lock().await;
        let started = Instant::now();
        self.catch_up();
        // Snapshot: log → flushing (kept visible to reads until committed).
        let mut taken: Vec<(usize, Arc<Vec<LogPt>>)> = Vec::new();
        for (si, shard) in self.shards.iter().enumerate() {
            let mut shard = lock(shard);
            let shard = &mut *shard;
            if !shard.log.is_empty() {
                if shard.flushing.is_empty() {
                    // The usual case: the log itself becomes `flushing`, no copy.
                    shard.flushing = Arc::new(std::mem::take(&mut shard.log));
                } else {
                    // After a failed flush: its points first, then the newer ones.
                    let mut pts = Vec::with_capacity(shard.flushing.len() + shard.log.len());
                    pts.extend_from_slice(&shard.flushing);
                    pts.append(&mut shard.log);
                    shard.flushing = Arc::new(pts);
                }
            }
            if !shard.flushing.is_empty() {
                taken.push((si, shard.flushing.clone()));
            }
        }
        // Group each shard's points by series, outside the locks (a stable sort keeps the
        // arrival order within a series: last write wins).
        let mut work: Vec<FlushItem> = Vec::new();
        let mut touched: Vec<(usize, Vec<u32>)> = Vec::with_capacity(taken.len());
        for (si, pts) in &taken {
            sorted.clear();
            sorted.extend_from_slice(pts);
            sorted.sort_by_key(LogPt::series);
            let shard = lock(&self.shards[*si]);
            let mut idxs = Vec::new();
            for run in sorted.chunk_by(|a, b| a.series() == b.series()) {
                let Some(meta) = shard.series.get(run[0].series() as usize) else {
                    continue;
                };
                idxs.push(run[0].series());
                let Some(schema) = shard.schemas.get(meta.schema as usize) else {
                    continue;
                };
                work.push(FlushItem {
                    path: (!meta.persisted).then(|| shard.by_path.name(meta.name).to_owned()),
                    id: meta.id,
                    schema: schema.clone(),
                    pts: run
                        .iter()
                        .map(|p| Pt {
                            ts: p.ts(),
                            value: p.value,
                            dest: p.dest(),
                        })
                        .collect(),
                    persisted: meta.persisted,
                });
            }
            touched.push((*si, idxs));
        }
        // The sort buffer is kept for the next flush, unless a burst made it far larger than
        // a shard's points are now.
        let most = taken.iter().map(|(_, p)| p.len()).max().unwrap_or(0);
        if sorted.capacity() > 4 * most + 65_536 {
            *sorted = Vec::new();
        }
        let mut report = FlushReport::default();
        let grouped = started.elapsed();
        let result = self.write_flush(&work, now, &mut report).await;
        if let Err(e) = result {
            self.stats.flush_errors.fetch_add(1, Relaxed);
            return Err(e);
        }
        report.points = taken.iter().map(|(_, p)| p.len()).sum();
        // Committed: drop the flushed points from the cache. Their allocation becomes the
        // shard's log again (with the points received meanwhile), so a server receiving the
        // same load every interval reuses its memory instead of faulting in fresh pages —
        // unless it is far larger than this interval needed (after a burst).
        for ((si, pts), (_, idxs)) in taken.into_iter().zip(&touched) {
            let mut shard = lock(&self.shards[si]);
            if Arc::ptr_eq(&shard.flushing, &pts) {
                drop(pts);
                if let Ok(mut log) = Arc::try_unwrap(std::mem::take(&mut shard.flushing)) {
                    if log.capacity() > shard.log.capacity()
                        && log.capacity() <= 4 * log.len() + 65_536
                    {
                        log.clear();
                        log.extend_from_slice(&shard.log);
                        shard.log = log;
                    }
                }
            }
            for &i in idxs {
                if let Some(meta) = shard.series.get_mut(i as usize) {
                    meta.persisted = true;
                }
            }
        }
        report.series = work.len();
        self.stats
            .cache_points
            .fetch_sub(report.points as u64, Relaxed);
        self.stats
            .points_flushed
            .fetch_add(report.points as u64, Relaxed);
        self.stats.flushes.fetch_add(1, Relaxed);
        self.stats
            .last_flush_micros
            .store(started.elapsed().as_micros() as u64, Relaxed);
        tracing::debug!(
            series = report.series,
            points = report.points,
            chunks = report.chunks_written,
            "flush: {:?} in all; grouped by series {grouped:?}, {}",
            started.elapsed(),
            report.phases,
        );
        self.room.notify_waiters();
        Ok(report)
    }

    /// Flush now.
    pub async fn flush(&self) -> Result<FlushReport, StoreError> {
        self.flush_at(unix_now()).await
    }

    async fn write_flush(
        &self,
        work: &[FlushItem],
        now: i64,
        report: &mut FlushReport,
    ) -> Result<(), StoreError> {
        // The connection is closed, not returned to the pool, when the transaction fails.
        // After a "disk full" the pooled connection was left inside a transaction (sqlx's
        // count of open transactions and SQLite's disagreed): every later flush on it became
        // a savepoint inside that transaction and reported success without ever committing,
        // while flushes on the other connections found the database locked
        // (`tests/store_faults.rs` lost 30,600 of 31,200 points). `BEGIN IMMEDIATE` takes
        // the write lock up front (no failed upgrade half way), and sqlx refuses a custom
        // BEGIN inside a transaction: a confused connection fails loudly instead of nesting.
        let mut conn = self.pool.acquire().await?;
        let result = Self::write_flush_tx(&mut conn, work, now, report).await;
        if result.is_err() {
            if let Err(e) = conn.close().await {
                tracing::debug!("closing the store connection of a failed flush: {e}");
            }
        }
        result
    }

    async fn write_flush_tx(
        conn: &mut sqlx::pool::PoolConnection<Sqlite>,
        work: &[FlushItem],
        now: i64,
        report: &mut FlushReport,
    ) -> Result<(), StoreError> {
        use sqlx::Connection as _;
        // Batched statements: a flush of 100k series is a few hundred statements, not 200k.
        const SERIES_ROWS: usize = 1000;
        const KEYS_PER_SELECT: usize = 300;
        const CHUNK_ROWS: usize = 1000;
        let mut at = Instant::now();
        let mut lap = |d: &mut std::time::Duration| {
            *d = at.elapsed();
            at = Instant::now();
        };
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        lap(&mut report.phases.begin);
        // New series in id order (the table's rowid: appended, not inserted in the middle);
        // each schema's retentions text formatted once.
        let mut new: Vec<&FlushItem> = work.iter().filter(|w| !w.persisted).collect();
        new.sort_unstable_by_key(|w| w.id);
        let mut texts: Vec<(usize, String)> = Vec::new();
        for w in &new {
            let ptr = Arc::as_ptr(&w.schema) as usize;
            if !texts.iter().any(|(p, _)| *p == ptr) {
                texts.push((ptr, w.schema.retentions_string()));
            }
        }
        let retentions = |w: &FlushItem| -> std::borrow::Cow<'_, str> {
            let ptr = Arc::as_ptr(&w.schema) as usize;
            match texts.iter().find(|(p, _)| *p == ptr) {
                Some((_, t)) => t.as_str().into(),
                None => w.schema.retentions_string().into(),
            }
        };
        for batch in new.chunks(SERIES_ROWS) {
            let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT OR REPLACE INTO series (id, path, retentions, aggregation, xff) ",
            );
            qb.push_values(batch, |mut b, w| {
                b.push_bind(w.id as i64)
                    .push_bind(w.path.as_deref().unwrap_or_default())
                    .push_bind(retentions(w))
                    .push_bind(w.schema.aggregation.name())
                    .push_bind(w.schema.x_files_factor);
            });
            qb.build().execute(&mut *tx).await?;
        }
        lap(&mut report.phases.series_rows);
        // Existing chunks to merge into: only series already in the database can have any.
        let mut needs: Vec<BTreeSet<ChunkKey>> = Vec::with_capacity(work.len());
        let mut wanted: Vec<(i64, i64, i64)> = Vec::new();
        for w in work {
            // A series new in this flush has no chunks to read.
            let mut need = BTreeSet::new();
            if w.persisted {
                chunk::needs(&w.schema, &w.pts, &mut need);
                wanted.extend(need.iter().map(|&(a, c)| (w.id as i64, a as i64, c)));
            }
            needs.push(need);
        }
        let mut loaded: HashMap<(u64, u8, i64), Vec<f64>> = HashMap::new();
        for batch in wanted.chunks(KEYS_PER_SELECT) {
            let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
                "SELECT series_id, archive, chunk_start, data FROM chunks
                 WHERE (series_id, archive, chunk_start) IN (VALUES ",
            );
            for (i, (id, a, c)) in batch.iter().enumerate() {
                if i > 0 {
                    qb.push(", ");
                }
                qb.push("(")
                    .push_bind(*id)
                    .push(", ")
                    .push_bind(*a)
                    .push(", ")
                    .push_bind(*c)
                    .push(")");
            }
            qb.push(")");
            for row in qb.build().fetch_all(&mut *tx).await? {
                let (id, a, c): (i64, i64, i64) =
                    (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
                let data: Vec<u8> = row.try_get(3)?;
                match chunk::decode(&data) {
                    Some(v) => {
                        loaded.insert((id as u64, a as u8, c), v);
                    }
                    None => tracing::warn!(
                        series = id,
                        archive = a,
                        start = c,
                        "unreadable chunk replaced"
                    ),
                }
            }
        }
        lap(&mut report.phases.chunks_read);
        let mut rows: Vec<(i64, i64, i64, i64, Vec<u8>)> = Vec::new();
        for (w, need) in work.iter().zip(&needs) {
            let (id, schema, pts) = (&w.id, &w.schema, &w.pts);
            if pts.is_empty() {
                continue;
            }
            let mut map = ChunkMap::default();
            for &(a, c) in need {
                if let Some(v) = loaded.remove(&(*id, a, c)) {
                    map.insert((a, c), v);
                }
            }
            let mut touched = BTreeSet::new();
            chunk::apply(schema, pts, &mut map, &mut touched);
            for key in touched {
                let Some(values) = map.get(&key) else {
                    continue;
                };
                let a: Archive = schema.archives[key.0 as usize];
                let expires = key.1 + a.step * chunk::CHUNK_SLOTS + a.retention();
                rows.push((
                    *id as i64,
                    key.0 as i64,
                    key.1,
                    expires,
                    chunk::encode(values),
                ));
            }
        }
        // In primary-key order: appends to the b-tree rather than inserts all over it.
        rows.sort_unstable_by_key(|r| (r.0, r.1, r.2));
        lap(&mut report.phases.chunks_built);
        for batch in rows.chunks(CHUNK_ROWS) {
            let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT OR REPLACE INTO chunks (series_id, archive, chunk_start, expires, data) ",
            );
            qb.push_values(batch, |mut b, r| {
                b.push_bind(r.0)
                    .push_bind(r.1)
                    .push_bind(r.2)
                    .push_bind(r.3)
                    .push_bind(r.4.as_slice());
            });
            qb.build().execute(&mut *tx).await?;
        }
        report.chunks_written = rows.len();
        lap(&mut report.phases.chunks_written);
        report.chunks_expired = sqlx::query("DELETE FROM chunks WHERE expires < ?1")
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        lap(&mut report.phases.expired);
        tx.commit().await?;
        lap(&mut report.phases.commit);
        Ok(())
    }

    /// Flush everything and close the database.
    pub async fn close(&self) -> Result<FlushReport, StoreError> {
        let report = self.flush().await?;
        self.close_readers();
        self.pool.close().await;
        Ok(report)
    }
}
