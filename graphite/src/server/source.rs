//! [`StoreSource`]: the evaluator's [`Source`] over the store.
//!
//! The evaluator is synchronous; renders run on a blocking thread (`spawn_blocking`), which
//! reads the store itself ([`Store::read_series`]; events wait on the runtime through a
//! [`Handle`]). Each pattern
//! is resolved (index glob, ids, schemas) once per request and read once per `fetch` call:
//! the windows asked for one pattern (e.g. `movingMedian`'s base and widened windows) are
//! read as their union and sliced, where whisper's archive choice is the same for both.
//! Before anything is read, the points the reads return are counted from the schemas and
//! the request is refused when the render's total would exceed [`StoreSource::max_points`].
//! A column-wise aggregate of a pattern whose answered series all read one window
//! (`sumSeries(wide.*.*)`) is folded by the store as it reads them ([`Source::fold`],
//! [`Store::fold_series`]): no window nor [`Series`] per input.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use tokio::runtime::Handle;

use super::work::Cancel;
use crate::eval::{EvalError, FetchRequest, Folded, Folds, Shape, Source};
use crate::functions::agg::Columns;
use crate::glob::GlobPattern;
use crate::series::Series;
use crate::store::schema::SeriesSchema;
use crate::store::{common_window, CommonWindow, Matched, ReadWindow, Store, StoredPoints};

/// A [`Source`] reading the store at a fixed `now`.
pub struct StoreSource {
    store: Arc<Store>,
    handle: Handle,
    now: i64,
    max_points: u64,
    used: AtomicU64,
    limit_hit: AtomicBool,
    /// Patterns resolved so far in this request.
    resolved: Mutex<HashMap<String, Arc<Vec<Matched>>>>,
    /// What [`Source::folds`] told so far in this request (the planner asks it again).
    folds: Mutex<HashMap<(String, i64, i64), Option<Folds>>>,
    /// Checked before each fetch: a stopped request reads nothing more.
    cancel: Option<Cancel>,
}

/// How one request of a [`StoreSource::fetch`] call is answered.
enum Plan {
    /// A slice of its pattern's union read.
    Slice,
    /// Its own read (whisper picks another archive for it than for the union).
    Alone,
}

impl StoreSource {
    /// A source answering fetches as of `now`, refusing renders over `max_points` points.
    pub fn new(store: Arc<Store>, handle: Handle, now: i64, max_points: u64) -> Self {
        Self {
            store,
            handle,
            now,
            max_points,
            used: AtomicU64::new(0),
            limit_hit: AtomicBool::new(false),
            resolved: Mutex::new(HashMap::new()),
            folds: Mutex::new(HashMap::new()),
            cancel: None,
        }
    }

    /// The same source, refusing to fetch once `cancel` says the request should stop.
    pub fn with_cancel(mut self, cancel: Cancel) -> Self {
        self.cancel = Some(cancel);
        self
    }

    /// Points limit of one render.
    pub fn max_points(&self) -> u64 {
        self.max_points
    }

    /// Whether a fetch was refused by the points limit or for a pattern the glob compiler
    /// refuses (a client error, not a store error).
    pub fn limit_hit(&self) -> bool {
        self.limit_hit.load(Relaxed)
    }

    /// Points [`Store::fetch`] returns for one series of `schema` over `[from, until)`.
    pub fn estimate(schema: &SeriesSchema, from: i64, until: i64, now: i64) -> u64 {
        ReadWindow::of(schema, from, until, now).map_or(0, |w| w.points() as u64)
    }

    /// The series of `pattern`, resolved once per request.
    fn resolve(&self, pattern: &str) -> Result<Arc<Vec<Matched>>, EvalError> {
        let mut cache = self.resolved.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = cache.get(pattern) {
            return Ok(m.clone());
        }
        let glob = GlobPattern::new(pattern).map_err(|e| {
            // The client's pattern, not the store, is at fault.
            self.limit_hit.store(true, Relaxed);
            EvalError::Source {
                pattern: pattern.to_string(),
                message: e.to_string(),
            }
        })?;
        let m = Arc::new(self.store.resolve(&glob));
        cache.insert(pattern.to_string(), m.clone());
        Ok(m)
    }

    fn read(
        &self,
        series: &[Matched],
        from: i64,
        until: i64,
    ) -> Result<Vec<StoredPoints>, EvalError> {
        self.store
            .read_series(series, from, until, self.now)
            .map_err(|e| EvalError::Source {
                pattern: series.first().map(|m| m.path.clone()).unwrap_or_default(),
                message: e.to_string(),
            })
    }

    /// The refusal of a request that would read `total` points of `matched` series.
    fn over_limit(&self, pattern: &str, total: u64, matched: usize) -> EvalError {
        self.limit_hit.store(true, Relaxed);
        EvalError::Source {
            pattern: pattern.to_string(),
            message: format!(
                "the request would read about {total} points ({matched} series), more than the limit of {}; \
                 ask for a shorter from/until range or fewer series (the limit is max_points_per_request)",
                self.max_points
            ),
        }
    }

    /// A stopped request's error, if it was stopped.
    fn stopped(&self, pattern: &str) -> Result<(), EvalError> {
        match self.cancel.as_ref().and_then(Cancel::stopped) {
            Some(why) => Err(EvalError::Source {
                pattern: pattern.to_string(),
                message: format!("the request was stopped ({why:?})"),
            }),
            None => Ok(()),
        }
    }

    /// The series of `series` [`StoreSource::fetch`] answers over `[from, until)` when
    /// they all read one window: that window (`None` for no series) and the series (the
    /// resolve's own list when it answers all of them). `None` when they read different
    /// windows.
    fn fold_of(
        &self,
        series: &Arc<Vec<Matched>>,
        from: i64,
        until: i64,
    ) -> Option<(Option<ReadWindow>, Arc<Vec<Matched>>)> {
        // As `answer`: a series whose retention ends before `until` is not answered.
        let answered = |m: &Matched| until >= self.now - m.schema.max_retention();
        match common_window(series, from, until, self.now) {
            // The store reads nothing when one series' window is wholly in the future.
            CommonWindow::Nothing => Some((None, series.clone())),
            CommonWindow::One(w) if series.iter().all(answered) => Some((Some(w), series.clone())),
            CommonWindow::One(_) | CommonWindow::Mixed => {
                let kept: Vec<Matched> = series.iter().filter(|m| answered(m)).cloned().collect();
                let w = match common_window(&kept, from, until, self.now) {
                    CommonWindow::Nothing => None,
                    CommonWindow::One(w) => Some(w),
                    CommonWindow::Mixed => return None,
                };
                Some((w, Arc::new(kept)))
            }
        }
    }

    /// The series `r` gets: whisper returns nothing for a window ending before a series'
    /// retention; `got[i]` is series `i`'s read.
    fn answer(&self, r: &FetchRequest, series: &[Matched], got: Vec<StoredPoints>) -> Vec<Series> {
        series
            .iter()
            .zip(got)
            .filter(|(m, _)| r.until >= self.now - m.schema.max_retention())
            .map(|(_, f)| {
                let mut s = Series::new(f.path, f.start, f.end, f.step, f.values);
                s.path_expression.clone_from(&r.pattern);
                s
            })
            .collect()
    }
}

impl Source for StoreSource {
    fn fetch(&self, reqs: &[FetchRequest]) -> Result<Vec<Vec<Series>>, EvalError> {
        self.stopped(reqs.first().map(|r| r.pattern.as_str()).unwrap_or_default())?;
        // Group by pattern: one union read per pattern, plus any request whose archive
        // differs from the union's.
        let mut patterns: Vec<(&str, i64, i64, Vec<usize>)> = Vec::new();
        for (i, r) in reqs.iter().enumerate() {
            match patterns.iter_mut().find(|p| p.0 == r.pattern) {
                Some(p) => {
                    p.1 = p.1.min(r.from);
                    p.2 = p.2.max(r.until);
                    p.3.push(i);
                }
                None => patterns.push((&r.pattern, r.from, r.until, vec![i])),
            }
        }
        let mut planned = 0u64;
        let mut matched = 0usize;
        let mut work = Vec::with_capacity(patterns.len());
        for (pattern, from, until, members) in patterns {
            let series = self.resolve(pattern)?;
            let mut plans = Vec::with_capacity(members.len());
            let mut alone = 0u64;
            for &i in &members {
                let r = &reqs[i];
                // A reversed window is the store's error to report: read it alone.
                let fits = r.from <= r.until
                    && series.iter().all(|m| {
                        match (
                            ReadWindow::of(&m.schema, r.from, r.until, self.now),
                            ReadWindow::of(&m.schema, from, until, self.now),
                        ) {
                            (Some(n), Some(w)) => n.within(&w),
                            (None, _) => true,
                            (Some(_), None) => false,
                        }
                    });
                if fits {
                    plans.push(Plan::Slice);
                } else {
                    plans.push(Plan::Alone);
                    for m in series.iter() {
                        alone = alone
                            .saturating_add(Self::estimate(&m.schema, r.from, r.until, self.now));
                    }
                }
            }
            for m in series.iter() {
                planned = planned.saturating_add(Self::estimate(&m.schema, from, until, self.now));
            }
            planned = planned.saturating_add(alone);
            matched += series.len();
            work.push((from, until, members, plans, series));
        }
        let total = self.used.load(Relaxed).saturating_add(planned);
        if total > self.max_points {
            let pattern = reqs.first().map(|r| r.pattern.as_str()).unwrap_or_default();
            return Err(self.over_limit(pattern, total, matched));
        }
        self.used.store(total, Relaxed);
        let mut out: Vec<Vec<Series>> = vec![Vec::new(); reqs.len()];
        for (from, until, members, plans, series) in work {
            let mut union = if plans.iter().any(|p| matches!(p, Plan::Slice)) {
                self.read(&series, from, until)?
            } else {
                Vec::new()
            };
            // Requests for the union window itself take the union read last (the last one
            // without a copy).
            let mut whole = Vec::new();
            for (&i, plan) in members.iter().zip(&plans) {
                let r = &reqs[i];
                let got = match plan {
                    Plan::Alone => self.read(&series, r.from, r.until)?,
                    Plan::Slice if (r.from, r.until) == (from, until) => {
                        whole.push(i);
                        continue;
                    }
                    Plan::Slice => slice(&series, &union, r.from, r.until, self.now),
                };
                out[i] = self.answer(r, &series, got);
            }
            if let Some((&last, rest)) = whole.split_last() {
                for &i in rest {
                    out[i] = self.answer(&reqs[i], &series, union.clone());
                }
                out[last] = self.answer(&reqs[last], &series, std::mem::take(&mut union));
            }
        }
        Ok(out)
    }

    fn events(
        &self,
        from: i64,
        until: i64,
        tags: Option<&[String]>,
        limit: usize,
    ) -> Result<Vec<f64>, EvalError> {
        use crate::store::events::EventError;
        let stopped = || self.cancel.as_ref().and_then(Cancel::stopped);
        let stop = || stopped().is_some();
        let name = || crate::functions::events::name(tags.unwrap_or(&["*".to_string()]));
        self.handle
            .block_on(
                self.store
                    .event_times(from as f64, until as f64, tags, limit, &stop),
            )
            .map_err(|e| match e {
                EventError::TooMany(n) => EvalError::Input {
                    function: "events".into(),
                    message: format!(
                        "more than {n} events in the window (one point per second): ask for \
                         a shorter from/until range or more tags"
                    ),
                },
                EventError::Stopped => EvalError::Source {
                    pattern: name(),
                    message: format!("the request was stopped ({:?})", stopped()),
                },
                EventError::Full => EvalError::Source {
                    pattern: name(),
                    message: "the events table is full".into(),
                },
                EventError::Store(e) => EvalError::Source {
                    pattern: name(),
                    message: e.to_string(),
                },
            })
    }

    fn find_tagged(&self, exprs: &[String]) -> Result<Vec<String>, EvalError> {
        self.store
            .find_tagged(exprs)
            .map_err(crate::tags::query_error)
    }

    /// The series [`StoreSource::fetch`] answers (those whose window whisper reads, not
    /// ending before their retention) and their steps, from the resolve and the schemas.
    fn shape(&self, pattern: &str, from: i64, until: i64) -> Option<Shape> {
        if from > until {
            return None;
        }
        let series = self.resolve(pattern).ok()?;
        let mut step = None;
        for m in series.iter() {
            // The store reads nothing when one series' window is wholly in the future.
            let Some(w) = ReadWindow::of(&m.schema, from, until, self.now) else {
                return Some(Shape::Empty);
            };
            if until < self.now - m.schema.max_retention() {
                continue;
            }
            match step {
                None => step = Some(w.step),
                Some(s) if s != w.step => return None,
                Some(_) => {}
            }
        }
        Some(step.map_or(Shape::Empty, Shape::Step))
    }

    /// Folds a pattern whose answered series all read one window (the usual case: one
    /// schema), with or without cached points.
    fn folds(&self, pattern: &str, from: i64, until: i64) -> Option<Folds> {
        if from >= until {
            return None;
        }
        let key = (pattern.to_string(), from, until);
        if let Some(f) = self
            .folds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return *f;
        }
        let series = self.resolve(pattern).ok()?;
        let folds = self.fold_of(&series, from, until).map(|(w, kept)| match w {
            Some(w) if !kept.is_empty() => Folds::Window {
                start: w.start,
                step: w.step,
                points: w.points(),
            },
            _ => Folds::Nothing,
        });
        self.folds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, folds);
        folds
    }

    /// The store folds the series as it reads them ([`Store::fold_series`]), after the
    /// points limit is checked as [`StoreSource::fetch`] checks it.
    fn fold(
        &self,
        pattern: &str,
        from: i64,
        until: i64,
        into: &mut Columns,
    ) -> Result<Folded, EvalError> {
        self.stopped(pattern)?;
        let series = self.resolve(pattern)?;
        let refuse = |message: &str| EvalError::Source {
            pattern: pattern.to_string(),
            message: message.to_string(),
        };
        let Some((w, kept)) = self.fold_of(&series, from, until) else {
            return Err(refuse("its series read different windows: not folded"));
        };
        // What a fetch would read (every series matched, answered or not).
        let planned = series.iter().fold(0u64, |n, m| {
            n.saturating_add(Self::estimate(&m.schema, from, until, self.now))
        });
        let total = self.used.load(Relaxed).saturating_add(planned);
        if total > self.max_points {
            return Err(self.over_limit(pattern, total, series.len()));
        }
        self.used.store(total, Relaxed);
        let Some(w) = w.filter(|_| !kept.is_empty()) else {
            return Ok(Folded::default());
        };
        if (into.start, into.step, into.acc.len()) != (w.start, w.step, w.points()) {
            return Err(refuse("folded into another window (a bug)"));
        }
        self.store
            .fold_series(&kept, (from, until, self.now), w, into)
            .map_err(|e| refuse(&e.to_string()))?;
        let mut got = Folded {
            series: kept.len(),
            ..Folded::default()
        };
        for m in kept.iter() {
            into.common_tags(|| crate::series::parse_tags(&m.path));
            // What the fetched series would cost ([`crate::budget::cost`]): its points and
            // header, its name, path expression (the pattern) and tags.
            got.points = got
                .points
                .saturating_add(w.points() as u64 + crate::budget::SERIES_COST);
            let names = m.path.len() + pattern.len() + tag_bytes(&m.path);
            got.names = got.names.saturating_add(names as u64);
        }
        Ok(got)
    }

    fn step_hint(&self, pattern: &str, from: i64, until: i64) -> Option<i64> {
        let series = self.resolve(pattern).ok()?;
        series
            .iter()
            .filter_map(|m| ReadWindow::of(&m.schema, from, until, self.now))
            .map(|w| w.step)
            .max()
    }
}

/// The bytes of the tags [`Series::new`] gives a series named `path` (without parsing a
/// plain name: its one tag is `name`, itself).
fn tag_bytes(path: &str) -> usize {
    if !path.contains(';') && !path.starts_with('~') {
        return "name".len() + path.len();
    }
    crate::series::parse_tags(path)
        .iter()
        .map(|(k, v)| k.len() + v.len())
        .sum()
}

/// What reading `series` over `[from, until)` returns, cut from `union`, their read over a
/// window containing it with the same archives (checked by the caller).
fn slice(
    series: &[Matched],
    union: &[StoredPoints],
    from: i64,
    until: i64,
    now: i64,
) -> Vec<StoredPoints> {
    series
        .iter()
        .zip(union)
        .filter_map(|(m, u)| {
            let w = ReadWindow::of(&m.schema, from, until, now)?;
            let lo = ((w.start - u.start) / w.step) as usize;
            let hi = ((w.end - u.start) / w.step) as usize;
            Some(StoredPoints {
                path: u.path.clone(),
                start: w.start,
                end: w.end,
                step: w.step,
                values: u.values.get(lo..hi)?.to_vec(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::eval::{render_with, Budget};
    use crate::server::output::json_body;
    use crate::store::schema::Schemas;

    const NOW: i64 = 1_700_000_000;

    /// The store source with folding turned off: every call fetches and aggregates.
    struct General<'a>(&'a StoreSource);

    impl Source for General<'_> {
        fn fetch(&self, reqs: &[FetchRequest]) -> Result<Vec<Vec<Series>>, EvalError> {
            self.0.fetch(reqs)
        }
        fn find_tagged(&self, exprs: &[String]) -> Result<Vec<String>, EvalError> {
            self.0.find_tagged(exprs)
        }
        fn shape(&self, pattern: &str, from: i64, until: i64) -> Option<Shape> {
            self.0.shape(pattern, from, until)
        }
        fn step_hint(&self, pattern: &str, from: i64, until: i64) -> Option<i64> {
            self.0.step_hint(pattern, from, until)
        }
    }

    /// The store source, counting its folds and recording the patterns it fetches.
    struct Folding<'a>(
        &'a StoreSource,
        Cell<usize>,
        std::cell::RefCell<Vec<String>>,
    );

    impl Source for Folding<'_> {
        fn fetch(&self, reqs: &[FetchRequest]) -> Result<Vec<Vec<Series>>, EvalError> {
            let mut fetched = self.2.borrow_mut();
            fetched.extend(reqs.iter().map(|r| r.pattern.clone()));
            self.0.fetch(reqs)
        }
        fn find_tagged(&self, exprs: &[String]) -> Result<Vec<String>, EvalError> {
            self.0.find_tagged(exprs)
        }
        fn shape(&self, pattern: &str, from: i64, until: i64) -> Option<Shape> {
            self.0.shape(pattern, from, until)
        }
        fn step_hint(&self, pattern: &str, from: i64, until: i64) -> Option<i64> {
            self.0.step_hint(pattern, from, until)
        }
        fn folds(&self, pattern: &str, from: i64, until: i64) -> Option<Folds> {
            self.0.folds(pattern, from, until)
        }
        fn fold(
            &self,
            pattern: &str,
            from: i64,
            until: i64,
            into: &mut Columns,
        ) -> Result<Folded, EvalError> {
            self.1.set(self.1.get() + 1);
            self.0.fold(pattern, from, until, into)
        }
    }

    /// A value of series `i` at slot `k`: magnitudes far apart (so the order of a sum
    /// shows in its bits), signs mixed, two decimals; `None` for the gaps.
    fn value(i: i64, k: i64) -> Option<f64> {
        if (k + i) % (i + 2) == 0 || (i == 5 && (100..130).contains(&(k % 360))) {
            return None;
        }
        let v = ((i * 7919 + k * 104_729) % 10_007) as f64 / 100.0 + 0.1;
        let v = if i % 3 == 0 { v * 1e6 } else { v };
        Some(if k % 5 == 0 { -v } else { v })
    }

    /// A store of many shapes: 10 s series with gaps and None runs, flushed, with cached
    /// points over flushed ones and a series only in the cache; 60 s series; tagged ones.
    async fn store(dir: &std::path::Path) -> Arc<Store> {
        let sch = Schemas::parse(
            "[b]\npattern = ^b\\.\nretentions = 60s:1d\n\n[all]\npattern = .\nretentions = 10s:1h,60s:1d\n",
            "s",
            "",
            "a",
        )
        .unwrap();
        let s = Arc::new(Store::open(dir, sch, 1_000_000).await.unwrap());
        let t0 = NOW - 3 * 3600;
        let mut pts: Vec<(String, i64, f64)> = Vec::new();
        for i in 0..24 {
            for k in 0..(3 * 360 - 180) {
                if i == 7 && k > 360 {
                    break;
                }
                if let Some(v) = value(i, k) {
                    pts.push((format!("a.h{i:02}.m"), t0 + 10 * k, v));
                }
            }
        }
        for (j, name) in ["b.x", "b.y"].iter().enumerate() {
            for k in 0..170 {
                if let Some(v) = value(j as i64 + 1, k) {
                    pts.push((name.to_string(), t0 + 60 * k, v));
                }
            }
        }
        for (j, name) in ["t.x;dc=a;k=v", "t.y;dc=a;k=w"].iter().enumerate() {
            for k in 0..1000 {
                pts.push((
                    name.to_string(),
                    t0 + 10 * k,
                    (j * 1000) as f64 + k as f64 / 10.0,
                ));
            }
        }
        let batch: Vec<(&str, i64, f64)> =
            pts.iter().map(|(n, t, v)| (n.as_str(), *t, *v)).collect();
        assert_eq!(s.insert_batch_at(batch, NOW), pts.len());
        s.flush_at(NOW).await.unwrap();
        // Cached, not flushed: the last half hour of some series (over flushed slots of a
        // few), and a series of its own.
        for i in (0..24).filter(|i| i % 4 == 1) {
            for k in (3 * 360 - 200)..(3 * 360) {
                if let Some(v) = value(i + 40, k) {
                    assert!(s.insert_at(&format!("a.h{i:02}.m"), t0 + 10 * k, v, NOW));
                }
            }
        }
        for k in (3 * 360 - 100)..(3 * 360) {
            assert!(s.insert_at("a.h99.m", t0 + 10 * k, k as f64 * 0.3, NOW));
        }
        s
    }

    /// `targets` over `[from, until)` through `source`: the JSON body, every series'
    /// fields (float bits shown by `Debug`), the budget's high water; or the error.
    fn render(
        source: &dyn Source,
        targets: &[&str],
        (from, until): (i64, i64),
        max_points: u64,
    ) -> Result<(String, String, u64), String> {
        let exprs: Vec<_> = targets
            .iter()
            .map(|t| crate::expr::parse(t).unwrap())
            .collect();
        let budget = Budget::new().with_max_points(max_points);
        let out =
            render_with(&exprs, from, until, NOW, source, &budget).map_err(|e| e.to_string())?;
        Ok((
            json_body(&out, None, false),
            format!("{out:?}"),
            budget.high_water(),
        ))
    }

    #[tokio::test]
    async fn folded_aggregates_answer_as_fetched_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        let handle = Handle::current();
        let source = || StoreSource::new(store.clone(), handle.clone(), NOW, 10_000_000);
        let windows = [
            (NOW - 1800, NOW),
            (NOW - 3000, NOW - 600),
            // The 60 s archive, the cached points rolled up.
            (NOW - 7200, NOW),
            // Before every series' retention, and wholly in the future.
            (NOW - 3 * 86400, NOW - 2 * 86400),
            (NOW + 100, NOW + 700),
        ];
        // Each case: targets, and whether a fold is expected in the first window.
        let cases: &[(&[&str], bool)] = &[
            (&["sumSeries(a.*.m)"], true),
            (&["sum(a.*.m)"], true),
            (&["averageSeries(a.*.m)"], true),
            (&["avg(a.h0*.m)"], true),
            (&["minSeries(a.*.m)"], true),
            (&["maxSeries(a.*.m)"], true),
            (&["sumSeries(a.h0*.m,a.h1*.m)"], true),
            (&["sumSeries(a.h1*.m,a.*.m,a.h1*.m)"], true),
            (&["sumSeries(a.{h01,h02,h99}.m)"], true),
            (&["sumSeries(a.h03.m)"], true),
            (&["sumSeries(a.h07.m)"], true),
            (&["sumSeries(a.h03.m,nothing.*)"], true),
            (&["sumSeries(nothing.*)"], false),
            (&["sumSeries(b.*)"], true),
            (&["sumSeries(t.x;dc=a;k=v,t.y;dc=a;k=w)"], true),
            (&["sumSeries(t.x;dc=a;k=v)"], true),
            // Different steps: normalised by `aggregate`, not folded.
            (&["sumSeries(a.*.m,b.*)"], false),
            (&["setXFilesFactor(a.h00.m,0.5)", "sumSeries(a.*.m)"], true),
            (
                &["xFilesFactor(a.h00.m,0.97)", "averageSeries(a.*.m)"],
                true,
            ),
            (
                &[
                    "scale(sumSeries(a.*.m),2)",
                    "asPercent(a.h01.m,sumSeries(a.*.m))",
                ],
                true,
            ),
            (
                &[
                    "movingAverage(sumSeries(a.*.m),'5min')",
                    "movingSum(sumSeries(a.*.m),4)",
                ],
                true,
            ),
            (
                &["groupByNode(a.*.m,2,'sumSeries')", "diffSeries(a.*.m)"],
                false,
            ),
            (&["sumSeries(a.*.m)", "a.h02.m"], true),
        ];
        // Targets that read a pattern more than once.
        const REREAD: &[&[&str]] = &[
            &["sumSeries(a.h1*.m,a.*.m,a.h1*.m)"],
            &[
                "scale(sumSeries(a.*.m),2)",
                "asPercent(a.h01.m,sumSeries(a.*.m))",
            ],
            &[
                "movingAverage(sumSeries(a.*.m),'5min')",
                "movingSum(sumSeries(a.*.m),4)",
            ],
        ];
        for (targets, folds) in cases {
            for (n, &w) in windows.iter().enumerate() {
                let (general, folding) = (source(), source());
                let folding = Folding(&folding, Cell::new(0), Default::default());
                let want = render(&General(&general), targets, w, 10_000_000).unwrap();
                let got = render(&folding, targets, w, 10_000_000).unwrap();
                assert_eq!(got.0, want.0, "{targets:?} over {w:?}");
                assert_eq!(got.1, want.1, "{targets:?} over {w:?}");
                // Charged at least as the fetch would have been, where each pattern is
                // read once (one read twice is held once and copied for each use, a fold
                // per use).
                let once = !REREAD.contains(targets);
                assert!(
                    !once || got.2 >= want.2,
                    "{targets:?} over {w:?}: {} < {}",
                    got.2,
                    want.2
                );
                if n == 0 {
                    assert_eq!(
                        folding.1.get() > 0,
                        *folds,
                        "{targets:?}: {}",
                        folding.1.get()
                    );
                    if targets == &["sumSeries(a.*.m)"] {
                        // Folded, not fetched.
                        assert_eq!(folding.2.borrow().len(), 0, "{:?}", folding.2.borrow());
                    }
                    let empty = targets == &["sumSeries(nothing.*)"];
                    assert_eq!(want.0.len() < 40, empty, "{targets:?}: {}", want.0);
                }
            }
        }
        // The points limit refuses a fold as it refuses the fetch.
        for limit in [1000, 5000] {
            let (general, folding) = (source(), source());
            let folding = Folding(&folding, Cell::new(0), Default::default());
            let t = ["sumSeries(a.*.m)"];
            let want = render(&General(&general), &t, windows[0], limit).unwrap_err();
            let got = render(&folding, &t, windows[0], limit).unwrap_err();
            assert!(want.contains("max_points_per_request"), "{want}");
            assert!(got.contains("max_points_per_request"), "{got}");
        }
    }
}
