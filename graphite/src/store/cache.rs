//! The write cache: 32 shards (by path hash), each a path → series map and one append-only
//! log of `(series, archive, ts, value)` in arrival order, and how a batch of points enters it
//! ([`Store::cache_batch`]). A new series is registered in its shard only; the indexes take it
//! in later ([`Store::catch_up`]). [`flush`](super::flush) empties the logs into SQLite.

use std::sync::atomic::Ordering::{Relaxed, Release};
use std::sync::Arc;

use super::paths::{PathHash, PathTable, Slot};
use super::schema::{Archive, RulesOf, Schemas, SeriesSchema};
use super::{lock, tags, unix_now, Store, HARD_CACHE_SLACK, MAX_FUTURE_SECS, SHARDS};

/// One series in a shard: what the flush and reads need besides its points.
/// Small, as 100k of them may be created in one batch: the path lives once, in the shard's
/// [`PathTable`], and the schema once per shard.
pub(super) struct SeriesMeta {
    /// Where the path lies in the shard's `by_path` ([`PathTable::name`]).
    pub(super) name: u32,
    /// Index in the shard's `schemas`.
    pub(super) schema: u32,
    pub(super) id: u64,
    /// Already in the `series` table.
    pub(super) persisted: bool,
}

/// A cached point in a shard's log, 16 bytes: the series (its index in [`Shard::series`]),
/// the archive it goes to, and the point. The timestamp is whisper's (an unsigned 32-bit
/// count of seconds): whisper cannot store a point outside 1970–2106 either.
#[derive(Debug, Clone, Copy)]
pub(super) struct LogPt {
    /// The series' index (the low [`SERIES_BITS`] bits) and the archive (the rest).
    key: u32,
    ts: u32,
    pub(super) value: f64,
}

/// Bits of [`LogPt::key`] holding the series' index: 134M series per shard.
const SERIES_BITS: u32 = 27;

impl LogPt {
    /// The point, or `None` if it does not fit (a timestamp outside whisper's range, or a
    /// series index or archive beyond the key's bits: the schema files allow at most
    /// [`MAX_ARCHIVES`](super::schema::MAX_ARCHIVES) archives).
    #[inline]
    pub(super) fn new(series: u32, dest: u8, ts: i64, value: f64) -> Option<LogPt> {
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
    pub(super) fn series(&self) -> u32 {
        self.key & ((1 << SERIES_BITS) - 1)
    }

    #[inline]
    pub(super) fn dest(&self) -> u8 {
        (self.key >> SERIES_BITS) as u8
    }

    #[inline]
    pub(super) fn ts(&self) -> i64 {
        i64::from(self.ts)
    }
}

/// A series as a listener may remember it ([`Recent`](super::Recent)): its shard, its index there and its
/// schema's index there, so its points are cached without looking its path up. Valid for
/// the life of the store: a shard never removes a series or a schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct SeriesRef {
    pub(super) idx: u32,
    pub(super) schema: u16,
    pub(super) shard: u16,
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
    /// Its path's [`Store::hash_path`] (0 when `series` is resolved).
    pub hash: PathHash,
    pub off: u32,
    pub len: u32,
    pub value: f64,
    pub ts: i64,
    pub series: SeriesRef,
    /// Where its line starts in the text, for a `deferred` point (to parse the line whole
    /// if its value and timestamp do not read as expected); 0 otherwise.
    pub line: u32,
    /// Set by [`Store::cache_batch`]: this point created its series.
    pub created: bool,
    /// Its value and timestamp are not read yet: they lie at `off..off + len` (up to the
    /// newline) and the line starts at `line` (a listener defers them to the thread that
    /// caches the batch, see `listen/receiver.rs`). Never given to [`Store::cache_batch`].
    pub deferred: bool,
}

// A batch holds one per line: `line` fits in what was padding.
const _: () = assert!(std::mem::size_of::<Point>() == 48);

impl Point {
    /// Its path in `text`; empty if `text` does not hold one there (never, for a batch built
    /// as documented; such a point is not cached).
    #[inline]
    pub(crate) fn path<'t>(&self, text: &'t [u8]) -> &'t str {
        std::str::from_utf8(self.path_bytes(text)).unwrap_or("")
    }

    /// [`Point::path`]'s bytes, not checked as UTF-8 again (a lookup compares bytes; only
    /// a path that creates a series is checked, by [`Point::path`]).
    #[inline]
    fn path_bytes<'t>(&self, text: &'t [u8]) -> &'t [u8] {
        let (off, len) = (self.off as usize, self.len as usize);
        text.get(off..off + len).unwrap_or_default()
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
pub(super) struct Shard {
    /// Path → index in `series` and in `schemas` (see [`paths`]).
    pub(super) by_path: PathTable,
    pub(super) series: Vec<SeriesMeta>,
    pub(super) log: Vec<LogPt>,
    /// Points taken by a flush in progress (or a failed one, to be retried); still read.
    pub(super) flushing: Arc<Vec<LogPt>>,
    /// The distinct schemas of this shard's series, shared (a handful, scanned linearly).
    pub(super) schemas: Vec<Arc<SeriesSchema>>,
    /// `series[..indexed]` are in the store's index and tag index; the rest wait for
    /// [`Store::catch_up`].
    pub(super) indexed: usize,
}

impl Shard {
    pub(super) fn new(hasher: foldhash::fast::RandomState) -> Shard {
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
    pub(super) fn intern(&mut self, schema: SeriesSchema) -> u32 {
        if let Some(i) = self.schemas.iter().position(|s| **s == schema) {
            return i as u32;
        }
        self.schemas.push(Arc::new(schema));
        (self.schemas.len() - 1) as u32
    }

    /// Register a series (`hash` is its path's [`PathTable::hash`]) with the schema
    /// `schemas[schema]`; returns its index.
    pub(super) fn add_series(
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

impl Store {
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
    /// the caller to remember ([`Recent`](super::Recent)). Adds the kept points to `cache_points` and
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
        let (mut one, mut many) = ([Ahead::default(); 1], Vec::new());
        let order: &mut [Ahead] = if batch.len() == 1 {
            &mut one
        } else {
            many.resize(batch.len(), Ahead::default());
            &mut many
        };
        let mut next = starts;
        for (i, p) in batch.iter().enumerate() {
            let at = &mut next[p.shard()];
            order[*at] = Ahead {
                i: i as u32,
                look: p.series.is_none(),
                hash: p.hash as u32,
                len: p.len,
            };
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
            // (and the point) of the line PREFETCH ahead and the name of the one halfway
            // there, so several misses are in flight at once. What the look-ahead needs lies
            // in `run` itself (sequential), not in the points (one per line of the batch,
            // in arrival order). Points of resolved series need no lookup.
            for a in run.iter().take(PREFETCH).filter(|a| a.look) {
                shard.by_path.prefetch(PathHash::from(a.hash));
            }
            for (k, &Ahead { i, .. }) in run.iter().enumerate() {
                if let Some(a) = run.get(k + PREFETCH) {
                    prefetch_point(batch, a.i);
                    if a.look {
                        shard.by_path.prefetch(PathHash::from(a.hash));
                    }
                }
                if let Some(a) = run.get(k + PREFETCH / 2).filter(|a| a.look) {
                    shard.by_path.prefetch_name(PathHash::from(a.hash), a.len);
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
                    let bytes = batch[i as usize].path_bytes(text);
                    if bytes.is_empty() {
                        continue;
                    }
                    match shard.by_path.get_bytes(hash, bytes) {
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
                            let path = batch[i as usize].path(text);
                            if path.is_empty() {
                                continue;
                            }
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
    /// steady state, [`Recent`](super::Recent)): no lookups, so no grouping by shard either. Every shard
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
                line: 0,
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
}

/// Most points [`Store::cache_by_path`] caches at once (their paths' text stays far below
/// 4 GiB, the offsets' bound).
const BY_PATH_BATCH: usize = 16 * 1024;

/// How many lines ahead [`Store::cache_batch`] prefetches a lookup's entry.
const PREFETCH: usize = 16;

/// A point of a batch in its shard's run ([`Store::cache_batch`]): its index in the batch
/// and what the look-ahead of its lookup needs (the low 32 bits of the path hash are all a
/// [`PathTable`] probe reads), so prefetching reads `run` in order, not the batch.
#[derive(Debug, Clone, Copy, Default)]
struct Ahead {
    i: u32,
    /// Cached by path: looked up (else its series is resolved).
    look: bool,
    hash: u32,
    /// The path's length (a name that matches is as long).
    len: u32,
}

/// Ask for `batch[j]` ahead of its use (a hint; nothing for an index out of the batch).
#[inline]
fn prefetch_point(batch: &[Point], j: u32) {
    if let Some(p) = batch.get(j as usize) {
        super::paths::prefetch((p as *const Point).cast());
    }
}

/// The shard of a path whose [`Store::hash_path`] is `hash`: high bits, the shard's table
/// uses the low ones.
#[inline]
pub(super) fn shard_of_hash(hash: PathHash) -> usize {
    (hash >> 40) as usize % SHARDS
}

/// The archive a point of timestamp `ts` received at `now` is written to (whisper's rule),
/// `None` if it is outside every archive's retention or too far in the future.
pub(super) fn dest_archive(archives: &[Archive], ts: i64, now: i64) -> Option<u8> {
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
