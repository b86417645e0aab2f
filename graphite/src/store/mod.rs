//! The embedded Graphite-compatible store: carbon's retention rules, a carbon-style cache, and
//! SQLite (through sqlx, WAL mode) underneath.
//!
//! - [`schema`]: `storage-schemas.conf` / `storage-aggregation.conf`, read as carbon reads them.
//! - [`index`]: the trie of series paths, globbed like graphite-web's finder.
//! - [`chunk`]: per-archive chunks and how points are written and rolled up (pure).
//! - [`server`]: carbon plaintext listeners (TCP, UDP), the flusher and self-metrics.
//!
//! Write path: the cache is 32 shards (by path hash), each a map path → series and one
//! append-only log of `(series, archive, ts, value)` in arrival order. A listener parses a whole
//! read buffer, then takes each shard's lock once for its points; a new series is classified
//! once (its schema shared with the shard's other series) and enters the index; points outside
//! retention are dropped (counted). Appending to one log per shard is a sequential write
//! whatever the number of series. [`Store::flush`] (every `flush_interval`, when the cache is
//! full, and on shutdown) takes the logs, sorts each by series (stably: last write wins) and
//! writes every point into SQLite in one transaction: one row per `(series, archive, chunk)`
//! holding 360 slots. Read path: [`Store::fetch`] scans each shard's log once for the series
//! asked, reads their chunks and applies the cached points on a copy with the same code the
//! flush uses, so a point is queryable as soon as it is received.
//!
//! Crash-loss bound: a point is durable once the first flush that *starts* after it was
//! received has committed. `kill -9` loses at most the points received in the last
//! `flush_interval` plus the duration of a flush in progress; a clean shutdown flushes all.

pub mod chunk;
pub mod clock;
pub mod events;
pub mod index;
mod paths;
mod raw;
pub mod read;
mod recent;
pub mod schema;
pub mod server;
pub mod tags;

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::{
    AtomicBool, AtomicU64, Ordering::AcqRel, Ordering::Acquire, Ordering::Relaxed,
    Ordering::Release,
};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};

use crate::glob::GlobPattern;
use chunk::{ChunkKey, ChunkMap, Pt};
pub use index::FindNode;
use index::Index;
pub(crate) use paths::PathHash;
use paths::{PathTable, Slot};
pub use read::{Matched, ReadWindow};
pub(crate) use recent::Recent;
use schema::{Aggregation, Archive, RulesOf, Schemas, SeriesSchema};

/// Points more than this far in the future are dropped (counted with the out-of-retention ones).
pub const MAX_FUTURE_SECS: i64 = 3600;

const SHARDS: usize = 32;

/// Least room between the cache size where listeners pause and where points are dropped:
/// what a connection reads before it sees the cache full (two 256 KiB buffers with the
/// cacher thread and the next one read: ≤ 3 × 43,691 points).
pub const HARD_CACHE_SLACK: u64 = 196_608;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store database {path}: {source} (check that the data directory is writable and not used by another carbide)")]
    Open { path: String, source: sqlx::Error },
    #[error("store database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("store database read: {0}")]
    Read(String),
    #[error("store database holds series {path:?} with unreadable retentions {retentions:?}")]
    Corrupt { path: String, retentions: String },
    #[error(transparent)]
    Pattern(#[from] crate::glob::GlobError),
    #[error("invalid time interval: from {from} is after until {until}")]
    InvalidInterval { from: i64, until: i64 },
}

/// One series as whisper's `fetch` returns it: `[start, end)` every `step` seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredPoints {
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
    /// Times a listener paused reading because the cache was full (back-pressure).
    pub backpressure_pauses: AtomicU64,
}

/// One series in a shard: what the flush and reads need besides its points.
/// Small, as 100k of them may be created in one batch: the path lives once, in the shard's
/// [`PathTable`], and the schema once per shard.
struct SeriesMeta {
    /// Where the path lies in the shard's `by_path` ([`PathTable::name`]).
    name: u32,
    /// Index in the shard's `schemas`.
    schema: u32,
    id: u64,
    /// Already in the `series` table.
    persisted: bool,
}

/// A cached point in a shard's log, 16 bytes: the series (its index in [`Shard::series`]),
/// the archive it goes to, and the point. The timestamp is whisper's (an unsigned 32-bit
/// count of seconds): whisper cannot store a point outside 1970–2106 either.
#[derive(Debug, Clone, Copy)]
struct LogPt {
    /// The series' index (the low [`SERIES_BITS`] bits) and the archive (the rest).
    key: u32,
    ts: u32,
    value: f64,
}

/// Bits of [`LogPt::key`] holding the series' index: 134M series per shard.
const SERIES_BITS: u32 = 27;

impl LogPt {
    /// The point, or `None` if it does not fit (a timestamp outside whisper's range, or a
    /// series index or archive beyond the key's bits: the schema files allow at most
    /// [`schema::MAX_ARCHIVES`] archives).
    #[inline]
    fn new(series: u32, dest: u8, ts: i64, value: f64) -> Option<LogPt> {
        let ts = u32::try_from(ts).ok()?;
        if series >> SERIES_BITS != 0 || u32::from(dest) >= 1 << (32 - SERIES_BITS) {
            return None;
        }
        Some(LogPt {
            key: series | u32::from(dest) << SERIES_BITS,
            ts,
            value,
        })
    }

    #[inline]
    fn series(&self) -> u32 {
        self.key & ((1 << SERIES_BITS) - 1)
    }

    #[inline]
    fn dest(&self) -> u8 {
        (self.key >> SERIES_BITS) as u8
    }

    #[inline]
    fn ts(&self) -> i64 {
        i64::from(self.ts)
    }
}

/// A series as a listener may remember it ([`Recent`]): its shard, its index there and its
/// schema's index there, so its points are cached without looking its path up. Valid for
/// the life of the store: a shard never removes a series or a schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct SeriesRef {
    idx: u32,
    schema: u16,
    shard: u16,
}

impl SeriesRef {
    /// Not resolved (yet): the point is cached by its path.
    pub(crate) const NONE: SeriesRef = SeriesRef {
        idx: u32::MAX,
        schema: 0,
        shard: 0,
    };

    pub(crate) fn is_none(self) -> bool {
        self.idx == u32::MAX
    }

    /// The reference to `slot` in shard `shard`; [`SeriesRef::NONE`] if its schema index
    /// does not fit (then its points are cached by path, as before).
    fn new(shard: usize, slot: Slot) -> SeriesRef {
        match u16::try_from(slot.schema) {
            Ok(schema) => SeriesRef {
                idx: slot.idx,
                schema,
                shard: shard as u16,
            },
            Err(_) => SeriesRef::NONE,
        }
    }
}

/// A point to cache: by its path (and the path's [`Store::hash_path`]), or by its series
/// when `series` is resolved (then the path and `hash` are not read). The path lies in the
/// batch's text (`off..off + len`, UTF-8): a listener's batch points into the bytes it read,
/// so the batch can be cached on another thread while the next read is parsed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Point {
    pub hash: PathHash,
    pub off: u32,
    pub len: u32,
    pub value: f64,
    pub ts: i64,
    pub series: SeriesRef,
    /// Set by [`Store::cache_batch`]: this point created its series.
    pub created: bool,
    /// Its value and timestamp are not read yet: they lie at `off..off + len` (up to the
    /// newline) and the line starts at `hash` (a listener defers them to the thread that
    /// caches the batch, see `server.rs`). Never given to [`Store::cache_batch`].
    pub deferred: bool,
}

impl Point {
    /// Its path in `text`; empty if `text` does not hold one there (never, for a batch built
    /// as documented; such a point is not cached).
    #[inline]
    pub(crate) fn path<'t>(&self, text: &'t [u8]) -> &'t str {
        let (off, len) = (self.off as usize, self.len as usize);
        text.get(off..off + len)
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or("")
    }

    /// The shard it goes to.
    #[inline]
    fn shard(&self) -> usize {
        if self.series.is_none() {
            shard_of_hash(self.hash)
        } else {
            self.series.shard as usize
        }
    }
}

/// A shard of the cache. Points are appended to one log in arrival order (a sequential
/// write, whatever the number of series); the flush sorts the log by series, reads scan it.
struct Shard {
    /// Path → index in `series` and in `schemas` (see [`paths`]).
    by_path: PathTable,
    series: Vec<SeriesMeta>,
    log: Vec<LogPt>,
    /// Points taken by a flush in progress (or a failed one, to be retried); still read.
    flushing: Arc<Vec<LogPt>>,
    /// The distinct schemas of this shard's series, shared (a handful, scanned linearly).
    schemas: Vec<Arc<SeriesSchema>>,
    /// `series[..indexed]` are in the store's index and tag index; the rest wait for
    /// [`Store::catch_up`].
    indexed: usize,
}

impl Shard {
    fn new(hasher: foldhash::fast::RandomState) -> Shard {
        Shard {
            by_path: PathTable::new(hasher),
            series: Vec::new(),
            log: Vec::new(),
            flushing: Arc::default(),
            schemas: Vec::new(),
            indexed: 0,
        }
    }

    /// The index of the shared copy of `schema` in `schemas`.
    fn intern(&mut self, schema: SeriesSchema) -> u32 {
        if let Some(i) = self.schemas.iter().position(|s| **s == schema) {
            return i as u32;
        }
        self.schemas.push(Arc::new(schema));
        (self.schemas.len() - 1) as u32
    }

    /// Register a series (`hash` is its path's [`PathTable::hash`]) with the schema
    /// `schemas[schema]`; returns its index.
    fn add_series(
        &mut self,
        hash: PathHash,
        path: &str,
        id: u64,
        schema: u32,
        persisted: bool,
    ) -> u32 {
        let idx = self.series.len() as u32;
        let name = self.by_path.insert(hash, path, Slot { idx, schema });
        self.series.push(SeriesMeta {
            name,
            schema,
            id,
            persisted,
        });
        idx
    }
}

/// The store. Cheap to share behind an `Arc`; all methods take `&self`.
pub struct Store {
    pool: SqlitePool,
    /// The retention rules for new series; replaced by [`Store::set_schemas`].
    schemas: RwLock<Arc<Schemas>>,
    shards: Vec<Mutex<Shard>>,
    /// Every series' path, as a trie; read it through [`Store::index_read`].
    index: RwLock<Index>,
    /// Graphite 1.1 tags of every series (`tags.rs`), rebuilt from `series` at open; read it
    /// through [`Store::tag_index`].
    tags: RwLock<crate::tags::TagIndex>,
    /// Some shard holds series created since `index` and `tags` last caught up
    /// ([`Store::catch_up`]): the receive path only registers a new series in its shard
    /// (enough to cache and read its points) and leaves the two indexes to the next reader
    /// of either, or the next flush. Set after the series are in their shard.
    pending_any: AtomicBool,
    next_id: AtomicU64,
    max_cache_points: u64,
    hasher: foldhash::fast::RandomState,
    /// Held by a flush; its buffer for sorting a shard's points, kept between flushes.
    flush_lock: tokio::sync::Mutex<Vec<LogPt>>,
    /// Notified after every flush: room in the cache for paused listeners.
    pub(crate) room: tokio::sync::Notify,
    /// Notified by a listener that found the cache full: flush now.
    pub(crate) flush_wanted: tokio::sync::Notify,
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
            .busy_timeout(Duration::from_secs(30))
            // Reads (megabytes of chunks per render) map the file instead of copying each
            // page through read(2), and a query's rows run ahead of the task decoding them.
            .pragma("mmap_size", "1073741824")
            .row_buffer_size(1024);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await
            .map_err(open_err)?;
        for sql in SCHEMA_SQL.iter().chain(events::EVENTS_SQL) {
            sqlx::query(sql).execute(&pool).await.map_err(open_err)?;
        }
        let hasher = foldhash::fast::RandomState::default();
        let store = Store {
            pool,
            schemas: RwLock::new(Arc::new(schemas)),
            shards: (0..SHARDS)
                .map(|_| Mutex::new(Shard::new(hasher)))
                .collect(),
            index: RwLock::new(Index::default()),
            tags: RwLock::default(),
            pending_any: AtomicBool::new(false),
            next_id: AtomicU64::new(1),
            max_cache_points,
            hasher,
            flush_lock: tokio::sync::Mutex::new(Vec::new()),
            room: tokio::sync::Notify::new(),
            flush_wanted: tokio::sync::Notify::new(),
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
            index.insert(&path, id as u64);
            let path: Arc<str> = path.into();
            self.index_tags(std::iter::once(path.clone()));
            max_id = max_id.max(id as u64);
            let hash = self.hash_path(&path);
            let mut shard = lock(&self.shards[shard_of_hash(hash)]);
            let schema = shard.intern(SeriesSchema {
                archives,
                aggregation,
                x_files_factor: xff,
            });
            if shard.by_path.get_hashed(hash, &path).is_none() {
                shard.add_series(hash, &path, id as u64, schema, true);
            }
            // Indexed above.
            shard.indexed = shard.series.len();
        }
        self.next_id.store(max_id + 1, Relaxed);
        Ok(())
    }

    /// The shard holding `path`.
    pub(crate) fn shard_of(&self, path: &str) -> usize {
        shard_of_hash(self.hash_path(path))
    }

    /// The hash of `path` the shards' tables are keyed by (its bits 40.. pick the shard).
    #[inline]
    pub(crate) fn hash_path(&self, path: &str) -> PathHash {
        use std::hash::BuildHasher;
        self.hasher.hash_one(path)
    }

    /// The retention rules new series are classified with.
    fn rules(&self) -> Arc<Schemas> {
        self.schemas
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replace the retention rules (carbon rereads its files every 60 s): new series are
    /// classified with them; existing series keep the schema they were created with.
    pub fn set_schemas(&self, schemas: Schemas) {
        *self.schemas.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(schemas);
    }

    /// The schema a series has (or would get).
    pub fn schema_of(&self, path: &str) -> SeriesSchema {
        let shard = lock(&self.shards[self.shard_of(path)]);
        match shard.by_path.get(path) {
            Some(e) => (*shard.schemas[e.schema as usize]).clone(),
            None => self.rules().classify(path),
        }
    }

    /// Cached points beyond which points are dropped (counted) rather than cached: the hard
    /// memory bound. Listeners pause reading at `max_cache_points` already (back-pressure),
    /// so only a burst of many connections reaching the limit together gets here.
    fn hard_cache_limit(&self) -> u64 {
        self.max_cache_points
            .saturating_add((self.max_cache_points / 4).max(HARD_CACHE_SLACK))
    }

    /// Whether listeners should pause reading until a flush makes room.
    pub(crate) fn cache_full(&self) -> bool {
        self.stats.cache_points.load(Relaxed) >= self.max_cache_points
    }

    /// Accept one point received at `now`. Returns false if it was dropped (outside retention
    /// or cache full; counted either way).
    pub fn insert_at(&self, path: &str, ts: i64, value: f64, now: i64) -> bool {
        self.stats.points_received.fetch_add(1, Relaxed);
        self.store_point(path, value, ts, now)
    }

    /// [`Store::insert_at`] without counting the point as received (self-metrics).
    pub(crate) fn store_point(&self, path: &str, value: f64, ts: i64, now: i64) -> bool {
        self.cache_by_path([(path, value, ts)], now) == 1
    }

    /// Cache a batch of points: each shard's lock is taken once; new series are registered
    /// in their shard (the indexes take them in later, [`Store::catch_up`]). A point cached
    /// by path whose path named (or now names) a series gets that series in `series`, for
    /// the caller to remember ([`Recent`]). Adds the kept points to `cache_points` and
    /// returns their number; drops (outside retention, or beyond the hard cache limit) are
    /// counted. Not counted as received.
    pub(crate) fn cache_batch(&self, text: &[u8], batch: &mut [Point], now: i64) -> u64 {
        if batch.len() > 1 && batch.iter().all(|p| !p.series.is_none()) {
            return self.cache_resolved(batch, now);
        }
        // Group by shard with a counting sort of indexes (stable: a series' points keep
        // their arrival order, last write wins).
        let mut starts = [0usize; SHARDS + 1];
        for p in batch.iter() {
            starts[p.shard() + 1] += 1;
        }
        for i in 0..SHARDS {
            starts[i + 1] += starts[i];
        }
        // One point (self-metrics, `insert_at`): no allocation.
        let (mut one, mut many) = ([0u32; 1], Vec::new());
        let order: &mut [u32] = if batch.len() == 1 {
            &mut one
        } else {
            many.resize(batch.len(), 0);
            &mut many
        };
        let mut next = starts;
        for (i, p) in batch.iter().enumerate() {
            let at = &mut next[p.shard()];
            order[*at] = i as u32;
            *at += 1;
        }
        let room = self
            .hard_cache_limit()
            .saturating_sub(self.stats.cache_points.load(Relaxed));
        let (mut kept, mut full, mut old) = (0u64, 0u64, 0u64);
        let mut created = 0u64;
        let mut rules: Option<Arc<Schemas>> = None;
        // The schema (index in the shard) of each combination of rules new series matched
        // in this batch: new series mostly share a few, classified once per shard.
        let mut classified: Vec<(RulesOf, u32)> = Vec::new();
        // Points of tagged names spelled other than canonically, cached again below.
        let mut respelled: Vec<(String, f64, i64)> = Vec::new();
        for si in 0..SHARDS {
            let run = &order[starts[si]..starts[si + 1]];
            if run.is_empty() {
                continue;
            }
            let mut guard = lock(&self.shards[si]);
            let shard = &mut *guard;
            shard.log.reserve(run.len());
            classified.clear();
            // Lookups miss the cache (a different series each line): keep loading the entry
            // of the line PREFETCH ahead and the name of the one halfway there, so several
            // misses are in flight at once. Points of resolved series need no lookup.
            for &j in run.iter().take(PREFETCH) {
                if let Some(h) = hash_to_look_up(batch, j) {
                    shard.by_path.prefetch(h);
                }
            }
            for (k, &i) in run.iter().enumerate() {
                if let Some(h) = run
                    .get(k + PREFETCH)
                    .and_then(|&j| hash_to_look_up(batch, j))
                {
                    shard.by_path.prefetch(h);
                }
                if let Some(h) = run
                    .get(k + PREFETCH / 2)
                    .and_then(|&j| hash_to_look_up(batch, j))
                {
                    shard.by_path.prefetch_name(h);
                }
                let Point {
                    hash,
                    value,
                    ts,
                    series,
                    ..
                } = batch[i as usize];
                if kept >= room {
                    full += 1;
                    continue;
                }
                let (idx, dest) = if !series.is_none() {
                    let archives = &shard.schemas[series.schema as usize].archives;
                    (series.idx, dest_archive(archives, ts, now))
                } else {
                    let path = batch[i as usize].path(text);
                    if path.is_empty() {
                        continue;
                    }
                    match shard.by_path.get_hashed(hash, path) {
                        Some(slot) => {
                            batch[i as usize].series = SeriesRef::new(si, slot);
                            (
                                slot.idx,
                                dest_archive(
                                    &shard.schemas[slot.schema as usize].archives,
                                    ts,
                                    now,
                                ),
                            )
                        }
                        None => {
                            if let Some(c) = tags::respelled(path) {
                                respelled.push((c, value, ts));
                                continue;
                            }
                            let rules = rules.get_or_insert_with(|| self.rules());
                            let of = rules.rules_of(path);
                            let schema = match classified.iter().find(|(r, _)| *r == of) {
                                Some(&(_, schema)) => schema,
                                None => {
                                    let schema = shard.intern(rules.schema_of(of));
                                    classified.push((of, schema));
                                    schema
                                }
                            };
                            let archives = &shard.schemas[schema as usize].archives;
                            let Some(dest) = dest_archive(archives, ts, now) else {
                                old += 1;
                                continue;
                            };
                            let id = self.next_id.fetch_add(1, Relaxed);
                            let idx = shard.add_series(hash, path, id, schema, false);
                            created += 1;
                            let p = &mut batch[i as usize];
                            p.series = SeriesRef::new(si, Slot { idx, schema });
                            p.created = true;
                            (idx, Some(dest))
                        }
                    }
                };
                match dest.and_then(|dest| LogPt::new(idx, dest, ts, value)) {
                    Some(p) => {
                        shard.log.push(p);
                        kept += 1;
                    }
                    None => old += 1,
                }
            }
        }
        if created > 0 {
            self.stats.series_created.fetch_add(created, Relaxed);
            self.pending_any.store(true, Release);
        }
        self.count_cached(kept, full, old);
        kept + self.cache_respelled(&respelled, now)
    }

    /// [`Store::cache_batch`] of points whose series are all resolved (a connection's
    /// steady state, [`Recent`]): no lookups, so no grouping by shard either. Every shard
    /// the batch touches is locked at once, in ascending order (no other code holds two
    /// shard locks), and the points are appended in one pass in batch order.
    fn cache_resolved(&self, batch: &[Point], now: i64) -> u64 {
        let mut counts = [0usize; SHARDS];
        for p in batch {
            counts[p.series.shard as usize % SHARDS] += 1;
        }
        let mut guards: [Option<std::sync::MutexGuard<'_, Shard>>; SHARDS] =
            std::array::from_fn(|si| (counts[si] > 0).then(|| lock(&self.shards[si])));
        for (g, &n) in guards.iter_mut().zip(&counts) {
            if let Some(g) = g {
                g.log.reserve(n);
            }
        }
        let room = self
            .hard_cache_limit()
            .saturating_sub(self.stats.cache_points.load(Relaxed));
        let (mut kept, mut full, mut old) = (0u64, 0u64, 0u64);
        for p in batch {
            if kept >= room {
                full += 1;
                continue;
            }
            let Some(shard) = guards[p.series.shard as usize % SHARDS].as_deref_mut() else {
                continue;
            };
            let Some(schema) = shard.schemas.get(p.series.schema as usize) else {
                continue;
            };
            match dest_archive(&schema.archives, p.ts, now)
                .and_then(|dest| LogPt::new(p.series.idx, dest, p.ts, p.value))
            {
                Some(p) => {
                    shard.log.push(p);
                    kept += 1;
                }
                None => old += 1,
            }
        }
        drop(guards);
        self.count_cached(kept, full, old);
        kept
    }

    /// Count what [`Store::cache_batch`] kept and dropped.
    fn count_cached(&self, kept: u64, full: u64, old: u64) {
        let s = &self.stats;
        s.cache_points.fetch_add(kept, Relaxed);
        if old > 0 {
            s.points_dropped_retention.fetch_add(old, Relaxed);
        }
        if full > 0 {
            s.points_dropped_cache_full.fetch_add(full, Relaxed);
        }
    }

    /// [`Store::cache_batch`] for points given as `(path, value, timestamp)`, in batches of
    /// at most [`BY_PATH_BATCH`]. Returns how many were kept.
    pub(crate) fn cache_by_path<'a>(
        &self,
        points: impl IntoIterator<Item = (&'a str, f64, i64)>,
        now: i64,
    ) -> u64 {
        let (mut text, mut batch) = (Vec::new(), Vec::new());
        let mut kept = 0;
        for (path, value, ts) in points {
            batch.push(Point {
                hash: self.hash_path(path),
                off: text.len() as u32,
                len: path.len() as u32,
                value,
                ts,
                series: SeriesRef::NONE,
                created: false,
                deferred: false,
            });
            text.extend_from_slice(path.as_bytes());
            if batch.len() == BY_PATH_BATCH {
                kept += self.cache_batch(&text, &mut batch, now);
                text.clear();
                batch.clear();
            }
        }
        if !batch.is_empty() {
            kept += self.cache_batch(&text, &mut batch, now);
        }
        kept
    }

    /// Accept one point, now.
    pub fn insert(&self, path: &str, ts: i64, value: f64) -> bool {
        self.insert_at(path, ts, value, unix_now())
    }

    /// Accept many points, now. Returns how many were kept.
    pub fn insert_batch<'a>(&self, points: impl IntoIterator<Item = (&'a str, i64, f64)>) -> usize {
        self.insert_batch_at(points, unix_now())
    }

    /// Accept many points received at `now`, taking each shard's lock once. Returns how
    /// many were kept.
    pub fn insert_batch_at<'a>(
        &self,
        points: impl IntoIterator<Item = (&'a str, i64, f64)>,
        now: i64,
    ) -> usize {
        let mut received = 0;
        let points = points.into_iter().map(|(p, ts, v)| {
            received += 1;
            (p, v, ts)
        });
        let kept = self.cache_by_path(points, now);
        self.stats.points_received.fetch_add(received, Relaxed);
        kept as usize
    }

    /// Number of series known.
    pub fn series_count(&self) -> usize {
        self.index_read().len()
    }

    /// The series index, holding every series created so far.
    pub(crate) fn index_read(&self) -> RwLockReadGuard<'_, Index> {
        self.catch_up();
        self.index.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Enter the series created since the last call into the index and the tag index. Every
    /// reader of either calls this first, so a series is found as soon as its first point
    /// was cached; the flusher calls it too, so the list stays short without readers.
    pub(crate) fn catch_up(&self) {
        if !self.pending_any.load(Acquire) {
            return;
        }
        // The index's write lock is taken before the flag is cleared: a reader that finds
        // it clear while another catches up waits for the index until it has caught up. A
        // series added after the flag is cleared sets it again (perhaps after being taken
        // in here: then the next call finds nothing new).
        let mut index = self.index.write().unwrap_or_else(|e| e.into_inner());
        if !self.pending_any.swap(false, AcqRel) {
            return;
        }
        let mut created: Vec<Arc<str>> = Vec::new();
        for shard in &self.shards {
            let mut shard = lock(shard);
            let shard = &mut *shard;
            for meta in &shard.series[shard.indexed..] {
                let path = shard.by_path.name(meta.name);
                index.insert(path, meta.id);
                created.push(path.into());
            }
            shard.indexed = shard.series.len();
        }
        self.index_tags(created);
    }

    /// Series not yet in the indexes.
    #[cfg(test)]
    fn pending(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let s = lock(s);
                s.series.len() - s.indexed
            })
            .sum()
    }

    /// graphite-web's `find`: branch and leaf nodes matching `pattern`; none for a pattern
    /// [`GlobPattern::new`] rejects (use [`Store::find_glob`] to report why).
    pub fn find(&self, pattern: &str) -> Vec<FindNode> {
        // A tagged name finds that one series, as graphite-web's finder looks it up.
        if let Some(m) = self.tagged_match(pattern) {
            return m
                .into_iter()
                .map(|(path, _)| FindNode {
                    path,
                    is_leaf: true,
                })
                .collect();
        }
        GlobPattern::new(pattern)
            .map(|g| self.find_glob(&g))
            .unwrap_or_default()
    }

    /// [`Store::find`] for a compiled pattern.
    pub fn find_glob(&self, pattern: &GlobPattern) -> Vec<FindNode> {
        self.index_read().find(pattern)
    }

    /// Series paths matching `pattern`, sorted; none for a rejected pattern.
    pub fn expand(&self, pattern: &str) -> Vec<String> {
        if let Some(m) = self.tagged_match(pattern) {
            return m.into_iter().map(|(p, _)| p).collect();
        }
        GlobPattern::new(pattern)
            .map(|g| self.expand_glob(&g))
            .unwrap_or_default()
    }

    /// [`Store::expand`] for a compiled pattern.
    pub fn expand_glob(&self, pattern: &GlobPattern) -> Vec<String> {
        self.index_read()
            .expand(pattern)
            .into_iter()
            .map(|(p, _)| p)
            .collect()
    }

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
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
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
        let retentions = |w: &FlushItem| {
            let ptr = Arc::as_ptr(&w.schema) as usize;
            texts
                .iter()
                .find(|(p, _)| *p == ptr)
                .map(|(_, t)| t.clone())
                .unwrap_or_else(|| w.schema.retentions_string())
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
        // Existing chunks to merge into: only series already in the database can have any.
        let mut needs: Vec<BTreeSet<ChunkKey>> = Vec::with_capacity(work.len());
        let mut wanted: Vec<(i64, i64, i64)> = Vec::new();
        for w in work {
            let mut need = BTreeSet::new();
            chunk::needs(&w.schema, &w.pts, &mut need);
            if w.persisted {
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

    /// Flush everything and close the database.
    pub async fn close(&self) -> Result<FlushReport, StoreError> {
        let report = self.flush().await?;
        self.pool.close().await;
        Ok(report)
    }
}

/// Most points [`Store::cache_by_path`] caches at once (their paths' text stays far below
/// 4 GiB, the offsets' bound).
const BY_PATH_BATCH: usize = 16 * 1024;

/// How many lines ahead [`Store::cache_batch`] prefetches a lookup's entry.
const PREFETCH: usize = 16;

/// The path hash of `batch[j]` if it is cached by path (its series not resolved).
#[inline]
fn hash_to_look_up(batch: &[Point], j: u32) -> Option<PathHash> {
    let p = &batch[j as usize];
    p.series.is_none().then_some(p.hash)
}

/// The shard of a path whose [`Store::hash_path`] is `hash`: high bits, the shard's table
/// uses the low ones.
#[inline]
fn shard_of_hash(hash: PathHash) -> usize {
    (hash >> 40) as usize % SHARDS
}

/// The archive a point of timestamp `ts` received at `now` is written to (whisper's rule),
/// `None` if it is outside every archive's retention or too far in the future.
fn dest_archive(archives: &[Archive], ts: i64, now: i64) -> Option<u8> {
    // Outside whisper's timestamps (and [`LogPt`]'s): dropped before a series is created.
    u32::try_from(ts).ok()?;
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
    async fn interleaved_series_read_back_from_the_shard_logs() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path(), "[a]\npattern=.\nretentions=10s:1h\n", "").await;
        let t0 = chunk::slot(NOW - 600, 10);
        // 200 series, 5 points each, round-robin (as carbon clients send), one batch; the
        // last round rewrites slot 0 of every series (last write wins).
        let names: Vec<String> = (0..200).map(|i| format!("h.s{i:03}")).collect();
        let mut pts = Vec::new();
        for round in 0..5i64 {
            for (i, n) in names.iter().enumerate() {
                pts.push((n.as_str(), t0 + 10 * round, (i as i64 * 10 + round) as f64));
            }
        }
        for (i, n) in names.iter().enumerate() {
            pts.push((n.as_str(), t0, -(i as f64)));
        }
        assert_eq!(s.insert_batch_at(pts, NOW), 1200);
        let check = |got: Vec<StoredPoints>| {
            assert_eq!(got.len(), 200);
            for (i, f) in got.iter().enumerate() {
                assert_eq!(f.path, names[i]);
                let want: Vec<Option<f64>> = (0..5)
                    .map(|r| {
                        Some(if r == 0 {
                            -(i as f64)
                        } else {
                            (i * 10 + r) as f64
                        })
                    })
                    .collect();
                assert_eq!(f.values[0..5], want[..], "{}", f.path);
            }
        };
        check(s.fetch("h.*", t0 - 10, t0 + 60, NOW).await.unwrap());
        let r = s.flush_at(NOW).await.unwrap();
        assert_eq!((r.series, r.points), (200, 1200));
        check(s.fetch("h.*", t0 - 10, t0 + 60, NOW).await.unwrap());
        // The flushed logs' allocations are the shards' logs again, for the next points: slot
        // 0 of every series once more, read back before and after a flush.
        let room = |s: &Store| -> usize { s.shards.iter().map(|h| lock(h).log.capacity()).sum() };
        assert!(room(&s) >= 1200, "{}", room(&s));
        let again: Vec<(&str, i64, f64)> = names.iter().map(|n| (n.as_str(), t0, 7.0)).collect();
        assert_eq!(s.insert_batch_at(again, NOW), 200);
        assert!(room(&s) >= 1200, "{}", room(&s));
        for _ in 0..2 {
            let got = s.fetch("h.*", t0 - 10, t0 + 60, NOW).await.unwrap();
            assert!(got.iter().all(|f| f.values[0] == Some(7.0)));
            s.flush_at(NOW).await.unwrap();
        }
        // One schema object shared by the series of a shard, not one per series.
        let shard = lock(&s.shards[s.shard_of("h.s000")]);
        assert_eq!(shard.schemas.len(), 1);
    }

    #[tokio::test]
    async fn new_series_are_indexed_by_the_first_reader_or_the_next_flush() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path(), "[a]\npattern=.\nretentions=10s:1h\n", "").await;
        let batch = [("n.a", NOW - 10, 1.0), ("n.b", NOW - 10, 2.0)];
        assert_eq!(s.insert_batch_at(batch, NOW), 2);
        // The receive path left both indexes to the readers.
        assert_eq!(s.pending(), 2);
        assert_eq!(s.expand("n.*"), ["n.a", "n.b"]);
        assert_eq!(s.pending(), 0);
        assert_eq!(s.find_tagged(&["name=n.b"]).unwrap(), ["n.b"]);
        // A tag query alone catches up too, and so does a flush.
        assert!(s.insert_at("n.c", NOW - 10, 3.0, NOW));
        assert_eq!(s.find_tagged(&["name=~^n"]).unwrap(), ["n.a", "n.b", "n.c"]);
        assert!(s.insert_at("n.d", NOW - 10, 4.0, NOW));
        assert_eq!(s.pending(), 1);
        s.flush_at(NOW).await.unwrap();
        assert_eq!(s.pending(), 0);
        assert_eq!(s.tag_index().len(), 4);
        assert_eq!(s.index.read().unwrap().len(), 4);
        assert_eq!(s.stats.series_created.load(Relaxed), 4);
    }

    #[tokio::test]
    async fn points_beyond_the_hard_cache_limit_are_dropped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let sch = Schemas::parse("[a]\npattern=.\nretentions=1s:3d\n", "s", "", "a").unwrap();
        let s = Store::open(dir.path(), sch, 1000).await.unwrap();
        let hard = 1000 + HARD_CACHE_SLACK;
        let pts: Vec<(&str, i64, f64)> = (0..hard as i64 + 10)
            .map(|i| ("a.b", NOW - 250_000 + i, 1.0))
            .collect();
        assert!(!s.cache_full());
        assert_eq!(s.insert_batch_at(pts, NOW) as u64, hard);
        assert_eq!(s.stats.points_dropped_cache_full.load(Relaxed), 10);
        assert!(s.cache_full());
        assert!(!s.insert_at("a.b", NOW, 1.0, NOW));
        assert_eq!(s.flush_at(NOW).await.unwrap().points as u64, hard);
        assert!(!s.cache_full());
        assert!(s.insert_at("a.b", NOW, 1.0, NOW));
    }

    #[tokio::test]
    async fn new_schemas_apply_to_new_series_only() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path(), "[a]\npattern=.\nretentions=10s:1h\n", "").await;
        assert!(s.insert_at("old.x", NOW - 10, 1.0, NOW));
        s.set_schemas(Schemas::parse("[b]\npattern=.\nretentions=1m:1d\n", "s", "", "a").unwrap());
        assert!(s.insert_at("new.x", NOW - 10, 1.0, NOW));
        assert_eq!(s.schema_of("old.x").retentions_string(), "10:360");
        assert_eq!(s.schema_of("new.x").retentions_string(), "60:1440");
        assert_eq!(s.schema_of("never.seen").retentions_string(), "60:1440");
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
        // Within a century's retention but before 1970: whisper cannot store it either.
        let s = store(dir.path(), "[a]\npattern=.\nretentions=1d:100y\n", "").await;
        assert!(!s.insert_at("z0", -86_400, 1.0, NOW));
        assert_eq!(
            s.expand("z0"),
            Vec::<String>::new(),
            "no series for a dropped point"
        );
        assert!(s.insert_at("z", 0, 2.0, NOW));
        assert_eq!(s.stats.points_dropped_retention.load(Relaxed), 1);
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
