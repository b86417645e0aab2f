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
use crate::functions::agg::Columns;
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

/// The window a list of series reads ([`common_window`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommonWindow {
    /// The read returns nothing: no series, or one whose range is wholly in the future.
    Nothing,
    /// Every series reads this window.
    One(ReadWindow),
    /// The series read different windows (archives, steps or ends).
    Mixed,
}

/// The window every one of `series` reads over `[from, until]` as of `now`, as
/// [`Store::read_series`] reads them.
pub fn common_window(series: &[Matched], from: i64, until: i64, now: i64) -> CommonWindow {
    let mut common: Option<ReadWindow> = None;
    // Series mostly share a few schemas: compute each schema's window once in a row.
    let mut last: Option<(&Arc<SeriesSchema>, Option<ReadWindow>)> = None;
    let mut mixed = false;
    for m in series {
        let w = match last {
            Some((s, w)) if Arc::ptr_eq(s, &m.schema) => w,
            _ => {
                let w = ReadWindow::of(&m.schema, from, until, now);
                last = Some((&m.schema, w));
                w
            }
        };
        let Some(w) = w else {
            return CommonWindow::Nothing;
        };
        match common {
            None => common = Some(w),
            Some(c) if c != w => mixed = true,
            Some(_) => {}
        }
    }
    match common {
        None => CommonWindow::Nothing,
        Some(_) if mixed => CommonWindow::Mixed,
        Some(w) => CommonWindow::One(w),
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

    /// [`Store::read_series`] folded into `cols` series by series, in the order given,
    /// without a window per series: `window` is the one every series reads (their
    /// [`common_window`]) and `cols` has its points. The chunks of up to [`IDS_PER_QUERY`]
    /// consecutive series are decoded into one reused buffer (rows come back from SQLite
    /// in id order, not in the order given), then folded in order; a series with cached
    /// points in the window is read as [`Store::read_series`] reads it (its chunks with
    /// the points applied) and folded at its place.
    pub fn fold_series(
        &self,
        series: &[Matched],
        (from, until, now): (i64, i64, i64),
        window: ReadWindow,
        cols: &mut Columns,
    ) -> Result<(), StoreError> {
        let w = window;
        let n = w.points();
        if cols.acc.len() != n || cols.start != w.start || cols.step != w.step {
            return Err(StoreError::Read(
                "a fold over another window than its series' (a bug)".to_string(),
            ));
        }
        // The series with cached points in the window, read the general way.
        let mut with_pts: BTreeMap<usize, Vec<Pt>> = BTreeMap::new();
        self.each_cached(series, |i, p| {
            let s = chunk::slot(p.ts, w.step);
            if (p.dest as usize) <= w.archive && s >= w.start && s < w.end {
                with_pts.entry(i).or_default().push(p);
            }
        });
        let mut cached: HashMap<usize, Vec<Option<f64>>, foldhash::fast::RandomState> =
            HashMap::default();
        if !with_pts.is_empty() {
            let subset: Vec<Matched> = with_pts.keys().map(|&i| series[i].clone()).collect();
            let got = self.read_series(&subset, from, until, now)?;
            for (&i, got) in with_pts.keys().zip(got) {
                cached.insert(i, got.values);
            }
        }
        let (lo, hi) = (
            chunk::chunk_start(w.start, w.step),
            chunk::chunk_start(w.end - 1, w.step),
        );
        let rows = IDS_PER_QUERY.min(series.len());
        let mut buf = vec![f64::NAN; rows * n];
        // Per row of `buf`: its slots up to here hold this batch's values (or NaN).
        let mut filled = vec![0usize; rows];
        let mut ids: Vec<(u64, usize)> = Vec::with_capacity(rows);
        self.with_reader(|db| {
            for (b, batch) in series.chunks(IDS_PER_QUERY).enumerate() {
                ids.clear();
                for (k, m) in batch.iter().enumerate() {
                    match cached.get(&(b * IDS_PER_QUERY + k)) {
                        Some(values) => {
                            let row = &mut buf[k * n..(k + 1) * n];
                            for (o, v) in row
                                .iter_mut()
                                .zip(values.iter().chain(std::iter::repeat(&None)))
                            {
                                *o = v.unwrap_or(f64::NAN);
                            }
                            filled[k] = n;
                        }
                        None => {
                            filled[k] = 0;
                            ids.push((m.id, k));
                        }
                    }
                }
                if !ids.is_empty() {
                    fold_chunks(db, w, (lo, hi), &ids, &mut buf, &mut filled)?;
                }
                for k in 0..batch.len() {
                    let row = &mut buf[k * n..(k + 1) * n];
                    // Slots past the last chunk read are empty.
                    row[filled[k]..].fill(f64::NAN);
                    cols.fold(row);
                }
            }
            Ok(())
        })
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

/// Decodes the chunks of series `ids` (`(id, row of buf)`) in `w`'s archive between chunk
/// starts `lo` and `hi` into their rows of `buf` (`w.points()` values each, NaN for none),
/// on read connection `db`; `filled[row]`: how far that row holds this read's values.
fn fold_chunks(
    db: &mut raw::ReadConn,
    w: ReadWindow,
    (lo, hi): (i64, i64),
    ids: &[(u64, usize)],
    buf: &mut [f64],
    filled: &mut [usize],
) -> Result<(), StoreError> {
    let n = w.points();
    let mut stmt = db.chunks(ids.len())?;
    for (i, &(id, _)) in ids.iter().enumerate() {
        stmt.bind(i + 1, id as i64)?;
    }
    stmt.bind(ids.len() + 1, w.archive as i64)?;
    stmt.bind(ids.len() + 2, lo)?;
    stmt.bind(ids.len() + 3, hi)?;
    let of_id: HashMap<u64, usize, foldhash::fast::RandomState> = ids.iter().copied().collect();
    let span = chunk::CHUNK_SLOTS.saturating_mul(w.step);
    stmt.for_each(|id, start, data| {
        let Some(&k) = of_id.get(&(id as u64)) else {
            return;
        };
        let Some(row) = buf.get_mut(k * n..(k + 1) * n) else {
            return;
        };
        // The row's slots up to this chunk's end are emptied just before it is decoded
        // into them (rows are reused batch after batch).
        let end = start.saturating_add(span).saturating_sub(w.start) / w.step.max(1);
        let end = end.clamp(0, n as i64) as usize;
        if filled[k] < end {
            row[filled[k]..end].fill(f64::NAN);
            filled[k] = end;
        }
        if !chunk::decode_into_nan(data, start, w.step, w.start, row) {
            tracing::warn!(
                series = id,
                archive = w.archive,
                start,
                "unreadable chunk ignored"
            );
        }
    })
}
