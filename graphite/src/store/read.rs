//! The read path: whisper's `fetch` over the cache and SQLite, for many series at once.
//!
//! A render resolves each pattern once ([`Store::resolve`]: index glob, then each series' id
//! and schema) and reads all of its series together ([`Store::fetch_series`]): the cache's
//! points for them are taken in one scan of each shard's log, and their chunks come from
//! SQLite in one query per distinct `(archive, chunk range)` (a handful of statements for
//! hundreds of series, not one per series), stepped on the calling thread through a read
//! connection of the store's own, its statements prepared once ([`raw::ReadConn`]). A series
//! with no cached point in its window decodes its chunks straight into the answer (only the
//! window's slots in full: [`super::codec::for_each_in`]); one with cached points merges them
//! on a copy of its chunks with the flush's own code ([`chunk::apply`]), so a point reads
//! back exactly as it will be stored.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use super::chunk::{self, ChunkMap, Pt};
use super::raw;
use super::schema::SeriesSchema;
use super::{lock, Store, StoreError, StoredPoints};
use crate::glob::GlobPattern;

/// Series ids bound in one chunk query.
pub(super) const IDS_PER_QUERY: usize = 500;

/// A series matched by a pattern: what a read needs, resolved once per request.
#[derive(Debug, Clone)]
pub struct Matched {
    pub path: String,
    pub id: u64,
    pub schema: Arc<SeriesSchema>,
}

/// What whisper's `fetch` reads for one series: archive `archive` (step `step`), slots
/// `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadWindow {
    pub archive: usize,
    pub step: i64,
    pub start: i64,
    pub end: i64,
}

impl ReadWindow {
    /// whisper's choice for `[from, until]` as of `now`: the finest archive covering `from`,
    /// both ends rounded up to the next slot, at least one slot; `None` for a range wholly in
    /// the future (whisper returns nothing).
    pub fn of(schema: &SeriesSchema, from: i64, until: i64, now: i64) -> Option<ReadWindow> {
        if from > now || schema.archives.is_empty() {
            return None;
        }
        let from = from.max(now - schema.max_retention());
        // A range ending before the oldest data still answers one (empty) slot.
        let until = until.min(now).max(from);
        let archive = schema
            .archive_for_age(now - from)
            .unwrap_or(schema.archives.len() - 1);
        let step = schema.archives[archive].step;
        let start = chunk::slot(from, step) + step;
        let mut end = chunk::slot(until, step) + step;
        if start == end {
            end += step;
        }
        Some(ReadWindow {
            archive,
            step,
            start,
            end,
        })
    }

    /// Points the window holds.
    pub fn points(&self) -> usize {
        ((self.end - self.start) / self.step.max(1)).max(0) as usize
    }

    /// Whether `self`'s values are a slice of `wide`'s (same archive, contained).
    pub fn within(&self, wide: &ReadWindow) -> bool {
        self.archive == wide.archive && self.start >= wide.start && self.end <= wide.end
    }
}

/// Read connections kept idle between reads: as many as reads ran at once, up to this.
const MAX_IDLE_READERS: usize = 8;

/// The store's idle read connections ([`raw::ReadConn`]); none once the store is closed.
#[derive(Default)]
pub(super) struct Readers {
    idle: Vec<raw::ReadConn>,
    closed: bool,
}

/// One series being read.
struct Reading {
    window: ReadWindow,
    /// Cached points that land in the window (arrival order).
    pts: Vec<Pt>,
    /// Without cached points: the answer, filled straight from the chunks.
    values: Vec<Option<f64>>,
    /// With cached points: the chunks read, to apply the points to.
    map: ChunkMap,
}

impl Store {
    /// The series matching `pattern`, sorted by path, with their ids and schemas.
    pub fn resolve(&self, pattern: &GlobPattern) -> Vec<Matched> {
        // A tagged name is looked up exactly (in its canonical spelling), as graphite-web.
        let found = match self.tagged_match(pattern.as_str()) {
            Some(m) => m,
            None => self.index_read().expand(pattern),
        };
        let mut by_shard: Vec<Vec<usize>> = vec![Vec::new(); self.shards.len()];
        for (i, (path, _)) in found.iter().enumerate() {
            by_shard[self.shard_of(path)].push(i);
        }
        let mut schemas: Vec<Option<Arc<SeriesSchema>>> = vec![None; found.len()];
        for (si, list) in by_shard.iter().enumerate() {
            if list.is_empty() {
                continue;
            }
            let shard = lock(&self.shards[si]);
            for &i in list {
                schemas[i] = shard
                    .by_path
                    .get(found[i].0.as_str())
                    .and_then(|s| shard.schemas.get(s.schema as usize).cloned());
            }
        }
        found
            .into_iter()
            .zip(schemas)
            .filter_map(|((path, id), schema)| {
                Some(Matched {
                    path,
                    id,
                    schema: schema?,
                })
            })
            .collect()
    }

    /// Closes the idle read connections; reads fail from now on.
    pub(super) fn close_readers(&self) {
        let mut readers = lock(&self.readers);
        readers.closed = true;
        readers.idle.clear();
    }

    /// Runs `read` on an idle read connection (or a new one), which goes back to the idle
    /// ones afterwards unless `read` failed (a connection in an unknown state is closed).
    pub(super) fn with_reader<T>(
        &self,
        read: impl FnOnce(&mut raw::ReadConn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let idle = {
            let mut readers = lock(&self.readers);
            if readers.closed {
                return Err(StoreError::Read("the store is closed".to_string()));
            }
            readers.idle.pop()
        };
        let mut conn = match idle {
            Some(c) => c,
            None => raw::ReadConn::open(&self.path)?,
        };
        let got = read(&mut conn)?;
        let mut readers = lock(&self.readers);
        if !readers.closed && readers.idle.len() < MAX_IDLE_READERS {
            readers.idle.push(conn);
        }
        Ok(got)
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
    ) -> Result<Vec<StoredPoints>, StoreError> {
        if from > until {
            return Err(StoreError::InvalidInterval { from, until });
        }
        let pattern = GlobPattern::new(pattern_or_path)?;
        let series = self.resolve(&pattern);
        self.read_series(&series, from, until, now)
    }

    /// [`Store::fetch`] for series already resolved: one answer per series, in order (none
    /// at all for a range wholly in the future).
    pub async fn fetch_series(
        &self,
        series: &[Matched],
        from: i64,
        until: i64,
        now: i64,
    ) -> Result<Vec<StoredPoints>, StoreError> {
        self.read_series(series, from, until, now)
    }

    /// [`Store::fetch_series`] on the calling thread, which it blocks while SQLite reads (a
    /// render's pool thread: no hop to the runtime or to sqlx's worker threads).
    pub fn read_series(
        &self,
        series: &[Matched],
        from: i64,
        until: i64,
        now: i64,
    ) -> Result<Vec<StoredPoints>, StoreError> {
        if from > until {
            return Err(StoreError::InvalidInterval { from, until });
        }
        let mut reads: Vec<Reading> = Vec::with_capacity(series.len());
        for m in series {
            let Some(window) = ReadWindow::of(&m.schema, from, until, now) else {
                return Ok(Vec::new());
            };
            reads.push(Reading {
                window,
                pts: Vec::new(),
                values: Vec::new(),
                map: ChunkMap::default(),
            });
        }
        // Snapshot the cache before reading chunks (reapplying points a concurrent flush
        // already committed is idempotent).
        self.cached_points(series, &mut reads);
        // The chunks each series needs, as one range per archive; series wanting the same
        // ranges (the same schema and window: the usual case) share a query.
        let mut groups: BTreeMap<(u8, i64, i64), Vec<usize>> = BTreeMap::new();
        for (i, (r, m)) in reads.iter_mut().zip(series).enumerate() {
            let w = r.window;
            let (lo, hi) = (
                chunk::chunk_start(w.start, w.step),
                chunk::chunk_start(w.end - 1, w.step),
            );
            if r.pts.is_empty() {
                // Filled chunk by chunk as the rows arrive ([`read_chunks`]), so the slots
                // are written while in cache, not all 10k windows ahead of the decoding.
                r.values = Vec::with_capacity(w.points());
                groups.entry((w.archive as u8, lo, hi)).or_default().push(i);
                continue;
            }
            let mut need = BTreeSet::new();
            let mut c = lo;
            while c <= hi {
                need.insert((w.archive as u8, c));
                c += w.step * chunk::CHUNK_SLOTS;
            }
            chunk::needs(&m.schema, &r.pts, &mut need);
            let mut ranges: BTreeMap<u8, (i64, i64)> = BTreeMap::new();
            for (a, c) in need {
                let e = ranges.entry(a).or_insert((c, c));
                e.0 = e.0.min(c);
                e.1 = e.1.max(c);
            }
            for (a, (lo, hi)) in ranges {
                groups.entry((a, lo, hi)).or_default().push(i);
            }
        }
        if !groups.is_empty() {
            self.with_reader(|db| {
                for ((archive, lo, hi), members) in &groups {
                    for batch in members.chunks(IDS_PER_QUERY) {
                        read_chunks(db, *archive, *lo, *hi, batch, series, &mut reads)?;
                    }
                }
                Ok(())
            })?;
        }
        Ok(reads
            .into_iter()
            .zip(series)
            .map(|(mut r, m)| {
                let w = r.window;
                let values = if r.pts.is_empty() {
                    // Slots past the last chunk read are empty.
                    r.values.resize(w.points(), None);
                    r.values
                } else {
                    chunk::apply(&m.schema, &r.pts, &mut r.map, &mut BTreeSet::new());
                    chunk::extract(&r.map, w.archive, w.step, w.start, w.end)
                };
                StoredPoints {
                    path: m.path.clone(),
                    start: w.start,
                    end: w.end,
                    step: w.step,
                    values,
                }
            })
            .collect())
    }

    /// Fill each reading's `pts` with the cached points that can change its window.
    fn cached_points(&self, series: &[Matched], reads: &mut [Reading]) {
        self.each_cached(series, |i, p| {
            let r = &mut reads[i];
            let w = r.window;
            // Only points landing in the slots read can change them.
            let s = chunk::slot(p.ts, w.step);
            if (p.dest as usize) <= w.archive && s >= w.start && s < w.end {
                r.pts.push(p);
            }
        });
    }

    /// Calls `f(i, point)` for every cached point (being flushed or not) of `series[i]`: one
    /// lock and one scan of the log per shard.
    pub(super) fn each_cached(&self, series: &[Matched], mut f: impl FnMut(usize, Pt)) {
        let mut by_shard: Vec<Vec<usize>> = vec![Vec::new(); self.shards.len()];
        for (i, m) in series.iter().enumerate() {
            by_shard[self.shard_of(&m.path)].push(i);
        }
        for (si, list) in by_shard.iter().enumerate() {
            if list.is_empty() {
                continue;
            }
            let shard = lock(&self.shards[si]);
            if shard.log.is_empty() && shard.flushing.is_empty() {
                continue;
            }
            let mut want: HashMap<u32, usize, foldhash::fast::RandomState> = HashMap::default();
            for &i in list {
                let Some(slot) = shard.by_path.get(series[i].path.as_str()) else {
                    continue;
                };
                // The same series (not one recreated under another id since resolving).
                if shard.series.get(slot.idx as usize).map(|s| s.id) == Some(series[i].id) {
                    want.insert(slot.idx, i);
                }
            }
            for p in shard.flushing.iter().chain(shard.log.iter()) {
                if let Some(&i) = want.get(&p.series()) {
                    f(
                        i,
                        Pt {
                            ts: p.ts(),
                            value: p.value,
                            dest: p.dest(),
                        },
                    );
                }
            }
        }
    }
}

/// Reads the chunks of `batch` (indexes into `series` and `reads`) in `archive` between
/// chunk starts `lo` and `hi` into `reads`, on read connection `db`.
fn read_chunks(
    db: &mut raw::ReadConn,
    archive: u8,
    lo: i64,
    hi: i64,
    batch: &[usize],
    series: &[Matched],
    reads: &mut [Reading],
) -> Result<(), StoreError> {
    let mut stmt = db.chunks(batch.len())?;
    for (n, &i) in batch.iter().enumerate() {
        stmt.bind(n + 1, series[i].id as i64)?;
    }
    stmt.bind(batch.len() + 1, archive as i64)?;
    stmt.bind(batch.len() + 2, lo)?;
    stmt.bind(batch.len() + 3, hi)?;
    let of_id: HashMap<u64, usize, foldhash::fast::RandomState> =
        batch.iter().map(|&i| (series[i].id, i)).collect();
    stmt.for_each(|id, start, data| {
        let Some(&i) = of_id.get(&(id as u64)) else {
            return;
        };
        let r = &mut reads[i];
        let ok = if r.pts.is_empty() {
            let w = r.window;
            // The window's slots up to this chunk's end exist before it is decoded into them.
            let span = chunk::CHUNK_SLOTS.saturating_mul(w.step);
            let end = start.saturating_add(span).saturating_sub(w.start) / w.step.max(1);
            let end = end.clamp(0, w.points() as i64) as usize;
            if r.values.len() < end {
                r.values.resize(end, None);
            }
            chunk::decode_into(data, start, w.step, w.start, &mut r.values)
        } else {
            chunk::decode(data)
                .map(|v| {
                    r.map.insert((archive, start), v);
                })
                .is_some()
        };
        if !ok {
            tracing::warn!(series = id, archive, start, "unreadable chunk ignored");
        }
    })
}
