//! [`StoreSource`]: the evaluator's [`Source`] over the store.
//!
//! The evaluator is synchronous; renders run on a blocking thread (`spawn_blocking`) and each
//! fetch waits for [`Store::fetch`] on the runtime through a [`Handle`]. Before anything is
//! read, the points a fetch would return are estimated from the matching series' schemas
//! (the archive whisper's rule picks for the window) and the request is refused when the
//! render's total would exceed [`StoreSource::max_points`].

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use tokio::runtime::Handle;

use crate::eval::{EvalError, FetchRequest, Source};
use crate::series::Series;
use crate::store::schema::SeriesSchema;
use crate::store::Store;

/// A [`Source`] reading the store at a fixed `now`.
pub struct StoreSource {
    store: Arc<Store>,
    handle: Handle,
    now: i64,
    max_points: u64,
    used: AtomicU64,
    limit_hit: AtomicBool,
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
        }
    }

    /// Points limit of one render.
    pub fn max_points(&self) -> u64 {
        self.max_points
    }

    /// Whether a fetch was refused by the points limit (a client error, not a store error).
    pub fn limit_hit(&self) -> bool {
        self.limit_hit.load(Relaxed)
    }

    /// Points [`Store::fetch`] returns for one series of `schema` over `[from, until)`.
    pub fn estimate(schema: &SeriesSchema, from: i64, until: i64, now: i64) -> u64 {
        if from > now || schema.archives.is_empty() {
            return 0;
        }
        let from = from.max(now - schema.max_retention());
        let until = until.min(now).max(from);
        let k = schema
            .archive_for_age(now - from)
            .unwrap_or(schema.archives.len() - 1);
        let step = schema.archives[k].step.max(1);
        ((until - from) / step + 2) as u64
    }
}

impl Source for StoreSource {
    fn fetch(&self, reqs: &[FetchRequest]) -> Result<Vec<Vec<Series>>, EvalError> {
        let mut planned = 0u64;
        let mut matched = Vec::with_capacity(reqs.len());
        for r in reqs {
            let paths = self.store.expand(&r.pattern);
            for p in &paths {
                let schema = self.store.schema_of(p);
                planned =
                    planned.saturating_add(Self::estimate(&schema, r.from, r.until, self.now));
            }
            matched.push(paths.len());
        }
        let total = self.used.load(Relaxed).saturating_add(planned);
        if total > self.max_points {
            self.limit_hit.store(true, Relaxed);
            let pattern = reqs.first().map(|r| r.pattern.clone()).unwrap_or_default();
            return Err(EvalError::Source {
                pattern,
                message: format!(
                    "the request would read about {total} points ({} series), more than the limit of {}; \
                     ask for a shorter from/until range or fewer series (the limit is max_points_per_request)",
                    matched.iter().sum::<usize>(),
                    self.max_points
                ),
            });
        }
        self.used.store(total, Relaxed);
        let mut out = Vec::with_capacity(reqs.len());
        for r in reqs {
            let fetched = self
                .handle
                .block_on(self.store.fetch(&r.pattern, r.from, r.until, self.now))
                .map_err(|e| EvalError::Source {
                    pattern: r.pattern.clone(),
                    message: e.to_string(),
                })?;
            out.push(
                fetched
                    .into_iter()
                    // whisper returns nothing for a window ending before the retention.
                    .filter(|f| r.until >= self.now - self.store.schema_of(&f.path).max_retention())
                    .map(|f| {
                        let mut s = Series::new(f.path, f.start, f.end, f.step, f.values);
                        s.path_expression.clone_from(&r.pattern);
                        s
                    })
                    .collect(),
            );
        }
        Ok(out)
    }

    fn find_tagged(&self, exprs: &[String]) -> Result<Vec<String>, EvalError> {
        self.store
            .find_tagged(exprs)
            .map_err(crate::tags::query_error)
    }
}
