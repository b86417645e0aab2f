//! The embedded Graphite-compatible store: carbon's retention rules, a carbon-style cache, and
//! SQLite (through sqlx, WAL mode) underneath.
//!
//! - [`schema`]: `storage-schemas.conf` / `storage-aggregation.conf`, read as carbon reads them.
//! - [`index`]: the trie of series paths, globbed like graphite-web's finder.
//! - [`chunk`]: per-archive chunks and how points are written and rolled up (pure).
//! - [`codec`]: the compressed chunk format; [`migrate`]: format versions, migrated at open.
//! - `cache`: the write cache (shards, their logs) and how a batch of points enters it.
//! - `flush`: the cache written to SQLite in one transaction.
//! - `held`: [`Store::held`], the time ranges held of each series (a find leaf's `intervals`).
//! - [`listen`]: carbon plaintext listeners (TCP, UDP), the flusher and self-metrics.
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

mod cache;
pub mod chunk;
pub mod clock;
pub mod codec;
pub mod events;
mod flush;
mod held;
pub mod index;
pub mod listen;
pub mod migrate;
mod paths;
mod raw;
pub mod read;
mod recent;
pub mod schema;
pub mod tags;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::AcqRel, Ordering::Acquire};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

use crate::glob::GlobPattern;
use cache::{shard_of_hash, LogPt, Shard};
pub(crate) use cache::{Point, SeriesRef};
pub use clock::unix_now;
pub use flush::FlushReport;
use index::Index;
pub use index::{FindNode, Found, FoundNode};
pub(crate) use paths::{same_bytes, PathHash};
pub use read::{common_window, CommonWindow, Matched, ReadWindow};
pub(crate) use recent::Recent;
use schema::{Aggregation, Schemas, SeriesSchema};

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
    #[error("store database is in format {found}, written by a newer carbide (this one reads formats up to {})", migrate::FORMAT)]
    Format { found: i64 },
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

/// The store. Cheap to share behind an `Arc`; all methods take `&self`.
pub struct Store {
    pool: SqlitePool,
    /// The database file, for the read connections.
    path: std::path::PathBuf,
    /// Idle read connections of the read path (`read.rs`), one taken per read.
    readers: Mutex<read::Readers>,
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

/// The in-memory tables [`load_series`] builds from the `series` table.
struct Loaded {
    index: Index,
    tags: crate::tags::TagIndex,
    shards: Vec<Shard>,
    next_id: u64,
}

/// Series passed at a time from the reading thread to the two index builders.
const LOAD_BATCH: usize = 4096;

/// Rebuilds the in-memory tables from `series` at open. The table is stepped on a raw read
/// connection of the store's own (`raw.rs`: no row crosses threads as an owned copy, as
/// sqlx hands them over) by this thread, which also fills the shards' path tables; the trie
/// and the tag index, independent of those and of each other, are built on two threads of
/// their own from batches of [`LOAD_BATCH`] paths. Each distinct schema text is parsed once,
/// and interned once per shard.
fn load_series(db: &Path, hasher: foldhash::fast::RandomState) -> Result<Loaded, StoreError> {
    use std::hash::BuildHasher;
    use std::sync::mpsc::sync_channel;
    type Batch = Arc<Vec<(Arc<str>, u64)>>;
    let (trie_tx, trie_rx) = sync_channel::<Batch>(8);
    let (tags_tx, tags_rx) = sync_channel::<Batch>(8);
    let trie = std::thread::Builder::new()
        .name("open-index".into())
        .spawn(move || {
            let mut index = Index::default();
            for batch in trie_rx {
                for (path, id) in batch.iter() {
                    index.insert(path, *id);
                }
            }
            index
        })
        .map_err(|e| StoreError::Read(format!("open: cannot start a thread: {e}")))?;
    let tags = std::thread::Builder::new()
        .name("open-tags".into())
        .spawn(move || {
            let mut tags = crate::tags::TagIndex::default();
            for batch in tags_rx {
                for (path, _) in batch.iter() {
                    tags.insert(path.clone());
                }
            }
            tags
        })
        .map_err(|e| StoreError::Read(format!("open: cannot start a thread: {e}")))?;
    let mut shards: Vec<Shard> = (0..SHARDS).map(|_| Shard::new(hasher)).collect();
    // Each distinct (retentions, aggregation, xff) and its schema's index in each shard.
    struct Parsed {
        retentions: String,
        aggregation: String,
        xff: u64,
        schema: SeriesSchema,
        interned: [u32; SHARDS],
    }
    let mut parsed: Vec<Parsed> = Vec::new();
    let mut max_id = 0u64;
    let mut batch = Vec::with_capacity(LOAD_BATCH);
    let closed = || StoreError::Read("open: an index builder stopped".into());
    let send = |batch: &mut Vec<(Arc<str>, u64)>| -> Result<(), StoreError> {
        let full = Arc::new(std::mem::replace(batch, Vec::with_capacity(LOAD_BATCH)));
        trie_tx.send(full.clone()).map_err(|_| closed())?;
        tags_tx.send(full).map_err(|_| closed())
    };
    let read = (|| -> Result<(), StoreError> {
        let mut conn = raw::ReadConn::open(db)?;
        let mut stmt = conn.prepare_once(
            "SELECT id, path, retentions, aggregation, xff FROM series ORDER BY id",
        )?;
        stmt.for_each_series(|id, path, retentions, aggregation, xff| {
            let xff_bits = xff.to_bits();
            let at = match parsed.iter().position(|p| {
                p.xff == xff_bits && p.retentions == retentions && p.aggregation == aggregation
            }) {
                Some(at) => at,
                None => {
                    let corrupt = || StoreError::Corrupt {
                        path: path.to_string(),
                        retentions: retentions.to_string(),
                    };
                    parsed.push(Parsed {
                        retentions: retentions.to_string(),
                        aggregation: aggregation.to_string(),
                        xff: xff_bits,
                        schema: SeriesSchema {
                            archives: schema::parse_retentions(retentions)
                                .map_err(|_| corrupt())?,
                            aggregation: Aggregation::parse(aggregation).ok_or_else(corrupt)?,
                            x_files_factor: xff,
                        },
                        interned: [u32::MAX; SHARDS],
                    });
                    parsed.len() - 1
                }
            };
            let id = id as u64;
            max_id = max_id.max(id);
            let hash: PathHash = hasher.hash_one(path);
            let n = shard_of_hash(hash);
            let shard = &mut shards[n];
            let p = &mut parsed[at];
            if p.interned[n] == u32::MAX {
                p.interned[n] = shard.intern(p.schema.clone());
            }
            if shard.by_path.get_hashed(hash, path).is_none() {
                shard.add_series(hash, path, id, p.interned[n], true);
            }
            batch.push((Arc::from(path), id));
            if batch.len() == LOAD_BATCH {
                send(&mut batch)?;
            }
            Ok(())
        })?;
        if !batch.is_empty() {
            send(&mut batch)?;
        }
        Ok(())
    })();
    drop((trie_tx, tags_tx));
    let index = trie.join().map_err(|_| closed());
    let tags = tags.join().map_err(|_| closed());
    read?;
    for shard in &mut shards {
        // Indexed (by the two builders above).
        shard.indexed = shard.series.len();
    }
    Ok(Loaded {
        index: index?,
        tags: tags?,
        shards,
        next_id: max_id + 1,
    })
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
            // No ping before each acquire: a round trip to the connection's worker thread
            // per read (two wake-ups), for a local file that cannot have gone away. A
            // connection whose transaction failed is closed by the flush, never pooled.
            .test_before_acquire(false)
            .connect_with(opts)
            .await
            .map_err(open_err)?;
        for sql in SCHEMA_SQL.iter().chain(events::EVENTS_SQL) {
            sqlx::query(sql).execute(&pool).await.map_err(open_err)?;
        }
        migrate::run(&pool).await?;
        let hasher = foldhash::fast::RandomState::default();
        let db = path.clone();
        let loaded = tokio::task::spawn_blocking(move || load_series(&db, hasher))
            .await
            .map_err(|e| StoreError::Read(format!("reading the series table: {e}")))??;
        let store = Store {
            pool,
            path,
            readers: Mutex::default(),
            schemas: RwLock::new(Arc::new(schemas)),
            shards: loaded.shards.into_iter().map(Mutex::new).collect(),
            index: RwLock::new(loaded.index),
            tags: RwLock::new(loaded.tags),
            pending_any: AtomicBool::new(false),
            next_id: AtomicU64::new(loaded.next_id),
            max_cache_points,
            hasher,
            flush_lock: tokio::sync::Mutex::new(Vec::new()),
            room: tokio::sync::Notify::new(),
            flush_wanted: tokio::sync::Notify::new(),
            stats: Stats::default(),
        };
        Ok(store)
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
        self.found(pattern).to_nodes()
    }

    /// [`Store::find`] as the index answers it: every path in one buffer, each with its
    /// last node's name (what `/metrics/find`'s answers are written from).
    pub fn found(&self, pattern: &str) -> Found {
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

    /// [`Store::found`] for a compiled pattern.
    pub fn find_glob(&self, pattern: &GlobPattern) -> Found {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering::Relaxed;

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
    async fn reopen_refuses_unreadable_retentions_by_series() {
        let dir = tempfile::tempdir().unwrap();
        let now = unix_now();
        {
            let s = store(dir.path(), "[a]\npattern=.\nretentions=10s:1h\n", "").await;
            for p in ["c.ok", "c.bad"] {
                assert!(s.insert_at(p, now - 30, 1.0, now));
            }
            s.flush_at(now).await.unwrap();
            sqlx::query("UPDATE series SET retentions = '10s:oops' WHERE path = 'c.bad'")
                .execute(&s.pool)
                .await
                .unwrap();
            s.close().await.unwrap();
        }
        let sch = Schemas::parse("[a]\npattern=.\nretentions=10s:1h\n", "s", "", "a").unwrap();
        match Store::open(dir.path(), sch, 1000).await {
            Err(StoreError::Corrupt { path, retentions }) => {
                assert_eq!((path.as_str(), retentions.as_str()), ("c.bad", "10s:oops"));
            }
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("opened a store with unreadable retentions"),
        }
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
