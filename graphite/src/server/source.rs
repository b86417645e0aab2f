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

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use tokio::runtime::Handle;

use super::work::Cancel;
use crate::eval::{EvalError, FetchRequest, Shape, Source};
use crate::glob::GlobPattern;
use crate::series::Series;
use crate::store::schema::SeriesSchema;
use crate::store::{Matched, ReadWindow, Store, StoredPoints};

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
        if let Some(why) = self.cancel.as_ref().and_then(Cancel::stopped) {
            return Err(EvalError::Source {
                pattern: reqs.first().map(|r| r.pattern.clone()).unwrap_or_default(),
                message: format!("the request was stopped ({why:?})"),
            });
        }
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
            self.limit_hit.store(true, Relaxed);
            let pattern = reqs.first().map(|r| r.pattern.clone()).unwrap_or_default();
            return Err(EvalError::Source {
                pattern,
                message: format!(
                    "the request would read about {total} points ({matched} series), more than the limit of {}; \
                     ask for a shorter from/until range or fewer series (the limit is max_points_per_request)",
                    self.max_points
                ),
            });
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

    fn step_hint(&self, pattern: &str, from: i64, until: i64) -> Option<i64> {
        let series = self.resolve(pattern).ok()?;
        series
            .iter()
            .filter_map(|m| ReadWindow::of(&m.schema, from, until, self.now))
            .map(|w| w.step)
            .max()
    }
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
