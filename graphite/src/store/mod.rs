//! The embedded Graphite-compatible store: carbon's retention rules, a carbon-style cache, and
//! SQLite (through sqlx, WAL mode) underneath.
//!
//! - [`schema`]: `storage-schemas.conf` / `storage-aggregation.conf`, read as carbon reads them.
//! - [`index`]: the trie of series paths, globbed like graphite-web's finder.
//! - [`chunk`]: per-archive chunks and how points are written and rolled up (pure).
//! - [`server`]: carbon plaintext listeners (TCP, UDP), the flusher and self-metrics.
//!
//! Write path: [`Store::insert`] classifies a new series once, drops points outside retention
//! (counted), and appends to the series' in-memory cache — nothing else, so ingest is bound by
//! parsing. [`Store::flush`] (every `flush_interval`, and on shutdown) moves every cached point
//! into SQLite in one transaction: one row per `(series, archive, chunk)` holding 360 slots.
//! Read path: [`Store::fetch`] reads chunks and applies the cached points on a copy with the same
//! code the flush uses, so a point is queryable as soon as it is received.
//!
//! Crash-loss bound: a point is durable once the first flush that *starts* after it was
//! received has committed. `kill -9` loses at most the points received in the last
//! `flush_interval` plus the duration of a flush in progress; a clean shutdown flushes all.

pub mod chunk;
pub mod clock;
pub mod index;
pub mod schema;
pub mod server;

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};

use chunk::{ChunkKey, ChunkMap, Pt};
pub use index::FindNode;
use index::Index;
use schema::{Aggregation, Archive, Schemas, SeriesSchema};

/// Points more than this far in the future are dropped (counted with the out-of-retention ones).
pub const MAX_FUTURE_SECS: i64 = 3600;

const SHARDS: usize = 32;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store database {path}: {source} (check that the data directory is writable and not used by another carbide)")]
    Open { path: String, source: sqlx::Error },
    #[error("store database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("store database holds series {path:?} with unreadable retentions {retentions:?}")]
    Corrupt { path: String, retentions: String },
    #[error("invalid time interval: from {from} is after until {until}")]
    InvalidInterval { from: i64, until: i64 },
}

/// One series as whisper's `fetch` returns it: `[start, end)` every `step` seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetched {
    pub path: String,
    pub start: i64,
    pub end: i64,
    pub step: i64,
    pub values: Vec<Option<f64>>,
}

/// Counters of the store, read by the self-metrics and by tests.
#[derive(Debug, Default)]
pub struct Stats {
    pub points_received: AtomicU64,
    pub points_dropped_retention: AtomicU64,
    pub points_dropped_cache_full: AtomicU64,
    pub cache_points: AtomicU64,
    pub points_flushed: AtomicU64,
    pub flushes: AtomicU64,
    pub flush_errors: AtomicU64,
    pub last_flush_micros: AtomicU64,
    pub series_created: AtomicU64,
}

struct Entry {
    id: u64,
    schema: Arc<SeriesSchema>,
    pending: Vec<Pt>,
    /// Points taken by a flush in progress (or a failed one, to be retried).
    flushing: Arc<Vec<Pt>>,
    persisted: bool,
}

#[derive(Default)]
struct Shard {
    by_path: FnvMap<Box<str>, Entry>,
}

/// The store. Cheap to share behind an `Arc`; all methods take `&self`.
pub struct Store {
    pool: SqlitePool,
    schemas: Schemas,
    shards: Vec<Mutex<Shard>>,
    index: RwLock<Index>,
    next_id: AtomicU64,
    max_cache_points: u64,
    flush_lock: tokio::sync::Mutex<()>,
    pub stats: Stats,
}

/// Seconds since the epoch (or the [`clock`] frozen for a replay).
pub fn unix_now() -> i64 {
    if let Some(t) = clock::frozen() {
        return t;
    }
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// FNV-1a: cheap for short keys; picks the shard and hashes the shard's map. Paths come from
/// the network, but a client able to collide them only slows its own series' lookups.
#[derive(Default, Clone, Copy)]
struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
        self.0 = h;
    }
}

type FnvMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<Fnv>>;

fn shard_of(path: &str) -> usize {
    use std::hash::Hasher;
    let mut h = Fnv::default();
    h.write(path.as_bytes());
    // High bits: the map uses the low ones.
    (h.finish() >> 40) as usize % SHARDS
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding a shard lock leaves consistent data (appends only): keep going.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

const SCHEMA_SQL: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS series (
        id INTEGER PRIMARY KEY,
        path TEXT NOT NULL UNIQUE,
        retentions TEXT NOT NULL,
        aggregation TEXT NOT NULL,
        xff REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS chunks (
        series_id INTEGER NOT NULL,
        archive INTEGER NOT NULL,
        chunk_start INTEGER NOT NULL,
        expires INTEGER NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (series_id, archive, chunk_start)) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS chunks_expires ON chunks(expires)",
];

/// One series in a flush: path, id, schema, points, already in the `series` table.
type FlushItem = (String, u64, Arc<SeriesSchema>, Arc<Vec<Pt>>, bool);

/// Result of one flush.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlushReport {
    pub series: usize,
    pub points: usize,
    pub chunks_written: usize,
    pub chunks_expired: u64,
}

impl Store {
    /// Open (or create) the store in `dir` (`dir/carbide.db`, WAL mode, synchronous=FULL).
    pub async fn open(
        dir: &Path,
        schemas: Schemas,
        max_cache_points: u64,
    ) -> Result<Store, StoreError> {
        let path = dir.join("carbide.db");
        let open_err = |source| StoreError::Open {
            path: path.display().to_string(),
            source,
        };
        if let Err(e) = std::fs::create_dir_all(dir) {
            return Err(open_err(sqlx::Error::Io(e)));
        }
        let opts = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await
            .map_err(open_err)?;
        for sql in SCHEMA_SQL {
            sqlx::query(sql).execute(&pool).await.map_err(open_err)?;
        }
        let store = Store {
            pool,
            schemas,
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            index: RwLock::new(Index::default()),
            next_id: AtomicU64::new(1),
            max_cache_points,
            flush_lock: tokio::sync::Mutex::new(()),
            stats: Stats::default(),
        };
        store.load_series().await?;
        Ok(store)
    }

    async fn load_series(&self) -> Result<(), StoreError> {
        let rows = sqlx::query("SELECT id, path, retentions, aggregation, xff FROM series")
            .fetch_all(&self.pool)
            .await?;
        let mut index = self.index.write().unwrap_or_else(|e| e.into_inner());
        let mut max_id = 0;
        for row in rows {
            let id: i64 = row.try_get(0)?;
            let path: String = row.try_get(1)?;
            let retentions: String = row.try_get(2)?;
            let agg: String = row.try_get(3)?;
            let xff: f64 = row.try_get(4)?;
            let corrupt = || StoreError::Corrupt {
                path: path.clone(),
                retentions: retentions.clone(),
            };
            let archives = schema::parse_retentions(&retentions).map_err(|_| corrupt())?;
            let aggregation = Aggregation::parse(&agg).ok_or_else(corrupt)?;
            let schema = Arc::new(SeriesSchema {
                archives,
                aggregation,
                x_files_factor: xff,
            });
            index.insert(&path, id as u64);
            max_id = max_id.max(id as u64);
            lock(&self.shards[shard_of(&path)]).by_path.insert(
                path.into(),
                Entry {
                    id: id as u64,
                    schema,
                    pending: Vec::new(),
                    flushing: Arc::new(Vec::new()),
                    persisted: true,
                },
            );
        }
        self.next_id.store(max_id + 1, Relaxed);
        Ok(())
    }

    /// The schema a series has (or would get).
    pub fn schema_of(&self, path: &str) -> SeriesSchema {
        match lock(&self.shards[shard_of(path)]).by_path.get(path) {
            Some(e) => (*e.schema).clone(),
            None => self.schemas.classify(path),
        }
    }

    /// Accept one point received at `now`. Returns false if it was dropped (outside retention
    /// or cache full; counted either way).
    pub fn insert_at(&self, path: &str, ts: i64, value: f64, now: i64) -> bool {
        self.stats.points_received.fetch_add(1, Relaxed);
        self.store_point(path, value, ts, now)
    }

    /// [`Store::insert_at`] without counting the point as received (self-metrics).
    pub(crate) fn store_point(&self, path: &str, value: f64, ts: i64, now: i64) -> bool {
        let kept = self.cache_point(path, value, ts, now);
        if kept {
            self.stats.cache_points.fetch_add(1, Relaxed);
        }
        kept
    }

    /// Append to the cache without touching the shared `points_received` / `cache_points`
    /// counters: the listeners add those once per read buffer, not once per line.
    pub(crate) fn cache_point(&self, path: &str, value: f64, ts: i64, now: i64) -> bool {
        if self.stats.cache_points.load(Relaxed) >= self.max_cache_points {
            self.stats.points_dropped_cache_full.fetch_add(1, Relaxed);
            return false;
        }
        let mut shard = lock(&self.shards[shard_of(path)]);
        let entry = match shard.by_path.get_mut(path) {
            Some(e) => e,
            None => {
                let schema = Arc::new(self.schemas.classify(path));
                if dest_archive(&schema.archives, ts, now).is_none() {
                    self.stats.points_dropped_retention.fetch_add(1, Relaxed);
                    return false;
                }
                let id = self.next_id.fetch_add(1, Relaxed);
                self.index
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(path, id);
                self.stats.series_created.fetch_add(1, Relaxed);
                shard.by_path.entry(path.into()).or_insert(Entry {
                    id,
                    schema,
                    pending: Vec::new(),
                    flushing: Arc::new(Vec::new()),
                    persisted: false,
                })
            }
        };
        let Some(dest) = dest_archive(&entry.schema.archives, ts, now) else {
            self.stats.points_dropped_retention.fetch_add(1, Relaxed);
            return false;
        };
        entry.pending.push(Pt { ts, value, dest });
        true
    }

    /// Accept one point, now.
    pub fn insert(&self, path: &str, ts: i64, value: f64) -> bool {
        self.insert_at(path, ts, value, unix_now())
    }

    /// Accept many points, now. Returns how many were kept.
    pub fn insert_batch<'a>(&self, points: impl IntoIterator<Item = (&'a str, i64, f64)>) -> usize {
        let now = unix_now();
        points
            .into_iter()
            .filter(|&(p, ts, v)| self.insert_at(p, ts, v, now))
            .count()
    }

    /// Number of series known.
    pub fn series_count(&self) -> usize {
        self.index.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// graphite-web's `find`: branch and leaf nodes matching `pattern`.
    pub fn find(&self, pattern: &str) -> Vec<FindNode> {
        self.index
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .find(pattern)
    }

    /// Series paths matching `pattern`, sorted.
    pub fn expand(&self, pattern: &str) -> Vec<String> {
        self.index
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .expand(pattern)
            .into_iter()
            .map(|(p, _)| p)
            .collect()
    }

    async fn load_chunks(
        &self,
        conn: &mut sqlx::SqliteConnection,
        id: u64,
        keys: &BTreeSet<ChunkKey>,
        map: &mut ChunkMap,
    ) -> Result<(), StoreError> {
        // One range query per archive over the chunks wanted.
        let mut ranges: HashMap<u8, (i64, i64)> = HashMap::new();
        for &(a, c) in keys {
            let r = ranges.entry(a).or_insert((c, c));
            r.0 = r.0.min(c);
            r.1 = r.1.max(c);
        }
        for (a, (lo, hi)) in ranges {
            let rows = sqlx::query(
                "SELECT chunk_start, data FROM chunks
                 WHERE series_id = ?1 AND archive = ?2 AND chunk_start BETWEEN ?3 AND ?4",
            )
            .bind(id as i64)
            .bind(a as i64)
            .bind(lo)
            .bind(hi)
            .fetch_all(&mut *conn)
            .await?;
            for row in rows {
                let start: i64 = row.try_get(0)?;
                let data: Vec<u8> = row.try_get(1)?;
                if let Some(v) = chunk::decode(&data) {
                    map.insert((a, start), v);
                } else {
                    tracing::warn!(series = id, archive = a, start, "unreadable chunk ignored");
                }
            }
        }
        Ok(())
    }

    /// Write every cached point to SQLite in one transaction, roll up, and expire chunks
    /// older than their archive's retention.
    pub async fn flush_at(&self, now: i64) -> Result<FlushReport, StoreError> {
        let _guard = self.flush_lock.lock().await;
        let started = Instant::now();
        // Snapshot: pending → flushing (kept visible to reads until committed).
        let mut work: Vec<FlushItem> = Vec::new();
        for shard in &self.shards {
            let mut shard = lock(shard);
            for (path, e) in shard.by_path.iter_mut() {
                if e.pending.is_empty() && e.flushing.is_empty() && e.persisted {
                    continue;
                }
                if !e.pending.is_empty() {
                    let mut pts = Vec::with_capacity(e.flushing.len() + e.pending.len());
                    pts.extend_from_slice(&e.flushing);
                    pts.append(&mut e.pending);
                    e.flushing = Arc::new(pts);
                }
                work.push((
                    path.to_string(),
                    e.id,
                    e.schema.clone(),
                    e.flushing.clone(),
                    e.persisted,
                ));
            }
        }
        let mut report = FlushReport::default();
        let result = self.write_flush(&work, now, &mut report).await;
        if let Err(e) = result {
            self.stats.flush_errors.fetch_add(1, Relaxed);
            return Err(e);
        }
        // Committed: drop the flushed points from the cache.
        for (path, _, _, pts, _) in &work {
            let mut shard = lock(&self.shards[shard_of(path)]);
            if let Some(e) = shard.by_path.get_mut(path.as_str()) {
                if Arc::ptr_eq(&e.flushing, pts) {
                    e.flushing = Arc::new(Vec::new());
                }
                e.persisted = true;
            }
        }
        report.series = work.len();
        report.points = work.iter().map(|w| w.3.len()).sum();
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
        // Batched statements: a flush of 100k series is a few hundred statements, not 200k.
        const SERIES_ROWS: usize = 1000;
        const KEYS_PER_SELECT: usize = 300;
        const CHUNK_ROWS: usize = 1000;
        let mut tx = self.pool.begin().await?;
        let new: Vec<&FlushItem> = work.iter().filter(|w| !w.4).collect();
        for batch in new.chunks(SERIES_ROWS) {
            let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT OR REPLACE INTO series (id, path, retentions, aggregation, xff) ",
            );
            qb.push_values(batch, |mut b, (path, id, schema, _, _)| {
                b.push_bind(*id as i64)
                    .push_bind(path.as_str())
                    .push_bind(schema.retentions_string())
                    .push_bind(schema.aggregation.name())
                    .push_bind(schema.x_files_factor);
            });
            qb.build().execute(&mut *tx).await?;
        }
        // Existing chunks to merge into: only series already in the database can have any.
        let mut needs: Vec<BTreeSet<ChunkKey>> = Vec::with_capacity(work.len());
        let mut wanted: Vec<(i64, i64, i64)> = Vec::new();
        for (_, id, schema, pts, persisted) in work {
            let mut need = BTreeSet::new();
            chunk::needs(schema, pts, &mut need);
            if *persisted {
                wanted.extend(need.iter().map(|&(a, c)| (*id as i64, a as i64, c)));
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
        let mut rows: Vec<(i64, i64, i64, i64, Vec<u8>)> = Vec::new();
        for ((_, id, schema, pts, _), need) in work.iter().zip(&needs) {
            if pts.is_empty() {
                continue;
            }
            let mut map = ChunkMap::new();
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
        report.chunks_expired = sqlx::query("DELETE FROM chunks WHERE expires < ?1")
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(())
    }

    /// whisper's `fetch` for every series matching `pattern_or_path`: the finest archive
    /// covering `from` (relative to `now`), `from`/`until` rounded up to the next slot. A
    /// series whose range is wholly in the future is left out, as whisper returns nothing.
    pub async fn fetch(
        &self,
        pattern_or_path: &str,
        from: i64,
        until: i64,
        now: i64,
    ) -> Result<Vec<Fetched>, StoreError> {
        if from > until {
            return Err(StoreError::InvalidInterval { from, until });
        }
        let matches = self
            .index
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .expand(pattern_or_path);
        let mut out = Vec::with_capacity(matches.len());
        let mut conn = self.pool.acquire().await?;
        for (path, _) in matches {
            // Snapshot the cache before reading chunks: see the module docs (reapplying
            // points a concurrent flush already committed is idempotent).
            let (id, schema, pts) = {
                let shard = lock(&self.shards[shard_of(&path)]);
                let Some(e) = shard.by_path.get(path.as_str()) else {
                    continue;
                };
                let mut pts = Vec::with_capacity(e.flushing.len() + e.pending.len());
                pts.extend_from_slice(&e.flushing);
                pts.extend_from_slice(&e.pending);
                (e.id, e.schema.clone(), pts)
            };
            let Some(f) = self
                .fetch_one(&mut conn, id, &schema, pts, path, from, until, now)
                .await?
            else {
                continue;
            };
            out.push(f);
        }
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    async fn fetch_one(
        &self,
        conn: &mut sqlx::SqliteConnection,
        id: u64,
        schema: &SeriesSchema,
        mut pts: Vec<Pt>,
        path: String,
        from: i64,
        until: i64,
        now: i64,
    ) -> Result<Option<Fetched>, StoreError> {
        if from > now {
            return Ok(None);
        }
        let from = from.max(now - schema.max_retention());
        // A range ending before the oldest data still answers one (empty) slot.
        let until = until.min(now).max(from);
        let k = schema
            .archive_for_age(now - from)
            .unwrap_or(schema.archives.len() - 1);
        let step = schema.archives[k].step;
        let start = chunk::slot(from, step) + step;
        let mut end = chunk::slot(until, step) + step;
        if start == end {
            end += step;
        }
        // Only points landing in the slots read can change them.
        pts.retain(|p| {
            let s = chunk::slot(p.ts, step);
            (p.dest as usize) <= k && s >= start && s < end
        });
        let mut need = BTreeSet::new();
        let span = step * chunk::CHUNK_SLOTS;
        let mut c = chunk::chunk_start(start, step);
        while c < end {
            need.insert((k as u8, c));
            c += span;
        }
        chunk::needs(schema, &pts, &mut need);
        let mut map = ChunkMap::new();
        self.load_chunks(conn, id, &need, &mut map).await?;
        chunk::apply(schema, &pts, &mut map, &mut BTreeSet::new());
        Ok(Some(Fetched {
            path,
            start,
            end,
            step,
            values: chunk::extract(&map, k, step, start, end),
        }))
    }

    /// Flush everything and close the database.
    pub async fn close(&self) -> Result<FlushReport, StoreError> {
        let report = self.flush().await?;
        self.pool.close().await;
        Ok(report)
    }
}

/// The archive a point of timestamp `ts` received at `now` is written to (whisper's rule),
/// `None` if it is outside every archive's retention or too far in the future.
fn dest_archive(archives: &[Archive], ts: i64, now: i64) -> Option<u8> {
    let age = now - ts;
    if age < -MAX_FUTURE_SECS {
        return None;
    }
    archives
        .iter()
        .position(|a| a.retention() >= age)
        .map(|i| i as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store(dir: &Path, schemas: &str, agg: &str) -> Store {
        let s = Schemas::parse(schemas, "s", agg, "a").unwrap();
        Store::open(dir, s, 1_000_000).await.unwrap()
    }

    const NOW: i64 = 1_700_000_000;

    #[tokio::test]
    async fn cache_and_chunks_merge_on_read() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path(), "[a]\npattern=.\nretentions=10s:1h,60s:1d\n", "").await;
        let t0 = chunk::slot(NOW - 600, 60);
        // Flushed part.
        for i in 0..3 {
            assert!(s.insert_at("a.b", t0 + 10 * i, i as f64, NOW));
        }
        let r = s.flush_at(NOW).await.unwrap();
        assert_eq!((r.series, r.points), (1, 3));
        // Cached part, one slot overwriting a flushed one (last write wins).
        assert!(s.insert_at("a.b", t0 + 20, 20.0, NOW));
        assert!(s.insert_at("a.b", t0 + 30, 30.0, NOW));
        let got = s.fetch("a.b", t0 - 10, t0 + 50, NOW).await.unwrap();
        assert_eq!(got.len(), 1);
        let f = &got[0];
        assert_eq!((f.start, f.end, f.step), (t0, t0 + 60, 10));
        assert_eq!(
            f.values,
            vec![Some(0.0), Some(1.0), Some(20.0), Some(30.0), None, None]
        );
        // Coarse archive (from older than 1h) sees the cached points rolled up: 4/6 ≥ 0.5.
        let g = s.fetch("a.*", NOW - 7200, t0 + 59, NOW).await.unwrap();
        assert_eq!(g[0].step, 60);
        let i = ((t0 - g[0].start) / 60) as usize;
        assert_eq!(g[0].values[i], Some((0.0 + 1.0 + 20.0 + 30.0) / 4.0));
        // After a flush the answer is the same, now from SQLite alone.
        s.flush_at(NOW).await.unwrap();
        assert_eq!(s.stats.cache_points.load(Relaxed), 0);
        assert_eq!(s.fetch("a.b", t0 - 10, t0 + 50, NOW).await.unwrap()[0], *f);
        assert_eq!(s.fetch("a.*", NOW - 7200, t0 + 59, NOW).await.unwrap(), g);
    }

    #[tokio::test]
    async fn whisper_fetch_rounding_and_archive_choice() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path(), "[a]\npattern=.\nretentions=10s:1h,60s:1d\n", "").await;
        s.insert_at("x", NOW - 100, 1.0, NOW);
        // fromInterval = from - from % step + step; untilInterval likewise.
        let f = &s.fetch("x", NOW - 3600, NOW - 5, NOW).await.unwrap()[0];
        assert_eq!(f.step, 10);
        assert_eq!(f.start, NOW - 3600 - (NOW - 3600) % 10 + 10);
        assert_eq!(f.end, NOW - 5 - (NOW - 5) % 10 + 10);
        assert_eq!(f.values.len() as i64, (f.end - f.start) / 10);
        // One second older than the finest retention: the 60 s archive.
        assert_eq!(
            s.fetch("x", NOW - 3601, NOW, NOW).await.unwrap()[0].step,
            60
        );
        // Zero-length range: one slot.
        let z = &s.fetch("x", NOW - 100, NOW - 100, NOW).await.unwrap()[0];
        assert_eq!(z.values.len(), 1);
        // Before the oldest retention: clamped to now - maxRetention.
        let c = &s.fetch("x", 0, NOW, NOW).await.unwrap()[0];
        assert_eq!((c.step, c.start), (60, chunk::slot(NOW - 86_400, 60) + 60));
        // Wholly before the oldest retention: one empty slot at the oldest edge.
        let o = &s.fetch("x", 0, 10, NOW).await.unwrap()[0];
        assert_eq!((o.step, o.values.clone()), (60, vec![None]));
        // Wholly in the future: no series; from > until: an error.
        assert!(s
            .fetch("x", NOW + 10, NOW + 20, NOW)
            .await
            .unwrap()
            .is_empty());
        assert!(s.fetch("x", NOW, NOW - 1, NOW).await.is_err());
    }

    #[tokio::test]
    async fn out_of_retention_dropped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path(), "[a]\npattern=.\nretentions=10s:1h,60s:1d\n", "").await;
        assert!(!s.insert_at("y", NOW - 86_401, 1.0, NOW));
        assert!(!s.insert_at("y", NOW + MAX_FUTURE_SECS + 1, 1.0, NOW));
        assert!(s.insert_at("y", NOW - 86_000, 2.0, NOW));
        assert!(s.insert_at("y", NOW + 60, 3.0, NOW));
        assert_eq!(s.stats.points_dropped_retention.load(Relaxed), 2);
        assert_eq!(s.stats.points_received.load(Relaxed), 4);
        // The old point went straight to the 60 s archive.
        let f = &s.fetch("y", NOW - 86_400, NOW, NOW).await.unwrap()[0];
        let i = ((chunk::slot(NOW - 86_000, 60) - f.start) / 60) as usize;
        assert_eq!(f.values[i], Some(2.0));
    }

    #[tokio::test]
    async fn expired_chunks_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path(), "[a]\npattern=.\nretentions=1s:10m\n", "").await;
        s.insert_at("z", NOW - 5, 1.0, NOW);
        assert_eq!(s.flush_at(NOW).await.unwrap().chunks_written, 1);
        // Two hours later the chunk (360 s + 600 s retention) has expired.
        let r = s.flush_at(NOW + 7200).await.unwrap();
        assert_eq!(r.chunks_expired, 1);
        assert_eq!(s.series_count(), 1);
    }

    #[tokio::test]
    async fn reopen_keeps_series_and_schema() {
        let dir = tempfile::tempdir().unwrap();
        // close() flushes at the real time, which expires chunks relative to it.
        let now = unix_now();
        {
            let s = store(
                dir.path(),
                "[a]\npattern=.\nretentions=10s:1h\n",
                "[m]\npattern=.\naggregationMethod=max\n",
            )
            .await;
            s.insert_at("p.q", now - 30, 7.0, now);
            s.close().await.unwrap();
        }
        // Reopened with other schemas: the stored series keeps the ones it was created with.
        let s = store(dir.path(), "[b]\npattern=.\nretentions=1m:1d\n", "").await;
        let sch = s.schema_of("p.q");
        assert_eq!(sch.retentions_string(), "10:360");
        assert_eq!(sch.aggregation, Aggregation::Max);
        let f = &s.fetch("p.*", now - 60, now, now).await.unwrap()[0];
        assert_eq!(
            f.values.iter().flatten().copied().collect::<Vec<_>>(),
            vec![7.0]
        );
        s.insert_at("p.r", now, 1.0, now);
        assert_eq!(s.schema_of("p.r").retentions_string(), "60:1440");
        assert_eq!(s.expand("p.*"), vec!["p.q", "p.r"]);
    }
}
