//! One work budget per request (Prometheus' `--query.max-samples`, plus a deadline and a
//! cancel flag), carried by the evaluation context ([`crate::eval::Context`]).
//!
//! What is counted, and when:
//! - **points**: every point slot that exists during evaluation — each *use* of fetched data
//!   (a fetched series is copied per use), every point a function returns (so a point passed
//!   through n functions is counted n times: the count is an upper bound of what is live),
//!   and, *before* they are allocated, the points a function creates from its arguments
//!   (generators, `summarize` buckets, window buffers, consolidation buffers). Each series
//!   also costs [`SERIES_COST`] points for its header.
//! - **name bytes**: the bytes of every returned series' name, path expression and tags, and,
//!   before a name is built, an upper bound of its length where it can grow faster than its
//!   input (`aliasSub` with `\1\1\1…`).
//! - **regexes**: how many regular expressions one request compiles, each with a compiled
//!   size cap ([`Budget::regex`]).
//!
//! The counts never go down within an evaluation round (a round that needs more data starts
//! again from what was fetched), so `points × bytes per point` bounds the memory a render
//! holds (`docs/limits.md` has the measured bytes per point).
//!
//! The deadline and the cancel flag are checked on every charge and every
//! [`Budget::tick`] (cheap: the clock is read every [`TICK_EVERY`] ticks), so a long loop with
//! no allocation stops too.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::eval::EvalError;
use crate::series::Series;

/// Default of [`Budget::max_points`] (setting `max_points_per_request`).
pub const DEFAULT_MAX_POINTS: u64 = 10_000_000;
/// Default of [`Budget::max_name_bytes`] (setting `max_name_bytes_per_request`).
pub const DEFAULT_MAX_NAME_BYTES: u64 = 64 * 1024 * 1024;
/// Default of [`Budget::max_regexes`] (setting `max_regexes_per_request`).
pub const DEFAULT_MAX_REGEXES: u64 = 256;
/// Default of [`Budget::max_regex_size`]: the compiled size of one regex, in bytes
/// (`regex::RegexBuilder::size_limit`, also used as its lazy DFA's cache limit).
pub const DEFAULT_MAX_REGEX_SIZE: usize = 1024 * 1024;
/// Default render timeout (setting `render_timeout`), what [`Budget::with_timeout`] is
/// usually given.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Points a series header costs (its struct, name strings and tag map), so a million empty
/// series are not free.
pub const SERIES_COST: u64 = 16;

/// How many [`Budget::tick`]s between clock reads.
pub const TICK_EVERY: u32 = 4096;

/// The limits of one request's evaluation and what it has used so far.
///
/// Build one per request, hand it to [`crate::eval::render_with`], read the counters after.
/// Not `Sync` (the counters are `Cell`s: evaluation is single-threaded); the cancel flag is
/// an `Arc<AtomicBool>` another thread may set.
#[derive(Debug)]
pub struct Budget {
    /// Most points the request may hold (see the module docs).
    pub max_points: u64,
    /// Most bytes of series names, path expressions and tags.
    pub max_name_bytes: u64,
    /// Most regexes the request may compile.
    pub max_regexes: u64,
    /// Most compiled bytes of one regex.
    pub max_regex_size: usize,
    /// When evaluation must stop.
    pub deadline: Option<Instant>,
    /// Set (by anyone) to stop the evaluation (e.g. the client went away).
    pub cancel: Option<Arc<AtomicBool>>,
    points: Cell<u64>,
    high_water: Cell<u64>,
    name_bytes: Cell<u64>,
    regexes: Cell<u64>,
    ticks: Cell<u32>,
}

impl Default for Budget {
    fn default() -> Self {
        Self::new()
    }
}

impl Budget {
    /// The default limits, no deadline, no cancel flag.
    pub fn new() -> Self {
        Self {
            max_points: DEFAULT_MAX_POINTS,
            max_name_bytes: DEFAULT_MAX_NAME_BYTES,
            max_regexes: DEFAULT_MAX_REGEXES,
            max_regex_size: DEFAULT_MAX_REGEX_SIZE,
            deadline: None,
            cancel: None,
            points: Cell::new(0),
            high_water: Cell::new(0),
            name_bytes: Cell::new(0),
            regexes: Cell::new(0),
            ticks: Cell::new(0),
        }
    }

    pub fn with_max_points(mut self, n: u64) -> Self {
        self.max_points = n;
        self
    }

    pub fn with_max_name_bytes(mut self, n: u64) -> Self {
        self.max_name_bytes = n;
        self
    }

    pub fn with_max_regexes(mut self, n: u64) -> Self {
        self.max_regexes = n;
        self
    }

    pub fn with_deadline(mut self, at: Instant) -> Self {
        self.deadline = Some(at);
        self
    }

    /// A deadline `d` from now.
    pub fn with_timeout(self, d: Duration) -> Self {
        match Instant::now().checked_add(d) {
            Some(at) => self.with_deadline(at),
            None => self,
        }
    }

    pub fn with_cancel(mut self, flag: Arc<AtomicBool>) -> Self {
        self.cancel = Some(flag);
        self
    }

    /// Points charged so far in this round.
    pub fn points(&self) -> u64 {
        self.points.get()
    }

    /// The most points ever charged at once (over all rounds); never above `max_points`.
    pub fn high_water(&self) -> u64 {
        self.high_water.get()
    }

    /// Name bytes charged so far in this round.
    pub fn name_bytes(&self) -> u64 {
        self.name_bytes.get()
    }

    /// Regexes compiled so far.
    pub fn regexes(&self) -> u64 {
        self.regexes.get()
    }

    /// Starts an evaluation round from what is already held (the fetched data).
    pub(crate) fn begin_round(&self, points: u64, name_bytes: u64) {
        self.points.set(points);
        self.name_bytes.set(name_bytes);
        self.high_water.set(self.high_water.get().max(points));
    }

    /// Whether `n` more points would fit, without charging them (the error is
    /// [`Budget::charge`]'s).
    pub fn fits(&self, n: u64, function: &str) -> Result<(), EvalError> {
        if self.points.get().saturating_add(n) > self.max_points {
            return Err(self.over_points(function));
        }
        Ok(())
    }

    fn over_points(&self, function: &str) -> EvalError {
        EvalError::OverBudget {
            function: short(function),
            what: "points",
            limit: self.max_points,
            setting: "max_points_per_request",
        }
    }

    /// Charges `n` points for `function`; refuses (changing nothing) when the total would
    /// pass [`Budget::max_points`]. Checks the deadline and the cancel flag too.
    pub fn charge(&self, n: u64, function: &str) -> Result<(), EvalError> {
        self.check(function)?;
        let total = self.points.get().saturating_add(n);
        if total > self.max_points {
            return Err(self.over_points(function));
        }
        self.points.set(total);
        if total > self.high_water.get() {
            self.high_water.set(total);
        }
        Ok(())
    }

    /// Charges `n` name bytes for `function` (see [`Budget::charge`]).
    pub fn charge_names(&self, n: u64, function: &str) -> Result<(), EvalError> {
        let total = self.name_bytes.get().saturating_add(n);
        if total > self.max_name_bytes {
            return Err(EvalError::OverBudget {
                function: short(function),
                what: "bytes of series names",
                limit: self.max_name_bytes,
                setting: "max_name_bytes_per_request",
            });
        }
        self.name_bytes.set(total);
        Ok(())
    }

    /// Charges what `series` hold (points and name bytes) for `function`.
    pub fn charge_series(&self, series: &[Series], function: &str) -> Result<(), EvalError> {
        let (points, names) = cost(series);
        self.charge(points, function)?;
        self.charge_names(names, function)
    }

    /// Counts `n` regexes compiled elsewhere (a `seriesByTag` query's `=~` expressions).
    pub fn charge_regexes(&self, n: u64, function: &str) -> Result<(), EvalError> {
        let total = self.regexes.get().saturating_add(n);
        if total > self.max_regexes {
            return Err(EvalError::OverBudget {
                function: short(function),
                what: "regular expressions",
                limit: self.max_regexes,
                setting: "max_regexes_per_request",
            });
        }
        self.regexes.set(total);
        Ok(())
    }

    /// Compiles `pattern` for `function` within the request's regex count and the compiled
    /// size cap: an error naming the limit when either is passed.
    pub fn regex(&self, pattern: &str, function: &str) -> Result<regex::Regex, EvalError> {
        self.charge_regexes(1, function)?;
        compile_regex(pattern, self.max_regex_size).map_err(|message| EvalError::Input {
            function: short(function),
            message,
        })
    }

    /// The deadline and the cancel flag, now.
    pub fn check(&self, function: &str) -> Result<(), EvalError> {
        if let Some(flag) = &self.cancel {
            if flag.load(Ordering::Relaxed) {
                return Err(EvalError::Cancelled);
            }
        }
        if let Some(at) = self.deadline {
            if Instant::now() >= at {
                return Err(EvalError::DeadlineExceeded {
                    function: short(function),
                });
            }
        }
        Ok(())
    }

    /// A cheap [`Budget::check`] for inner loops: looks every [`TICK_EVERY`] calls.
    #[inline]
    pub fn tick(&self, function: &str) -> Result<(), EvalError> {
        let t = self.ticks.get().wrapping_add(1);
        self.ticks.set(t);
        if t.is_multiple_of(TICK_EVERY) {
            self.check(function)
        } else {
            Ok(())
        }
    }
}

/// Compiles a regex with its compiled size (and lazy DFA cache) capped at `max_size` bytes.
pub fn compile_regex(pattern: &str, max_size: usize) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(pattern)
        .size_limit(max_size)
        .dfa_size_limit(max_size)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(limit) => format!(
                "regular expression {:?} compiles to more than {limit} bytes \
                 (limit max_regex_size): simplify it",
                short(pattern)
            ),
            other => format!("invalid regular expression {:?}: {other}", short(pattern)),
        })
}

/// What `series` cost: (points incl. headers, name bytes).
pub fn cost(series: &[Series]) -> (u64, u64) {
    let mut points = 0u64;
    let mut names = 0u64;
    for s in series {
        points += s.values.len() as u64 + SERIES_COST;
        names += name_bytes(s);
    }
    (points, names)
}

/// Bytes of a series' name, path expression and tags.
pub fn name_bytes(s: &Series) -> u64 {
    let tags: usize = s.tags.iter().map(|(k, v)| k.len() + v.len()).sum();
    (s.name.len() + s.path_expression.len() + tags) as u64
}

/// A name for messages: at most 100 characters.
fn short(s: &str) -> String {
    match s.char_indices().nth(100) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_refuse_past_the_limit_and_keep_the_count() {
        let b = Budget::new().with_max_points(100);
        b.charge(60, "f").unwrap();
        let err = b.charge(41, "sumSeries").unwrap_err();
        assert_eq!(
            err.to_string(),
            "sumSeries: this request would hold more than 100 points \
             (limit max_points_per_request)"
        );
        assert_eq!(b.points(), 60);
        b.charge(40, "f").unwrap();
        assert_eq!(b.high_water(), 100);
    }

    #[test]
    fn cancel_and_deadline_stop_charges() {
        let flag = Arc::new(AtomicBool::new(false));
        let b = Budget::new().with_cancel(flag.clone());
        b.charge(1, "f").unwrap();
        flag.store(true, Ordering::Relaxed);
        assert_eq!(b.charge(1, "f"), Err(EvalError::Cancelled));
        let b = Budget::new().with_deadline(Instant::now());
        assert!(matches!(
            b.charge(1, "movingMedian"),
            Err(EvalError::DeadlineExceeded { .. })
        ));
        assert!((0..TICK_EVERY).any(|_| b.tick("f").is_err()));
    }

    #[test]
    fn regexes_are_counted_and_size_capped() {
        let b = Budget::new().with_max_regexes(2);
        b.regex("a+", "grep").unwrap();
        b.regex("b+", "grep").unwrap();
        let err = b.regex("c+", "grep").unwrap_err();
        assert!(err.to_string().contains("max_regexes_per_request"), "{err}");
        let err = compile_regex("(a{1000}){1000}", DEFAULT_MAX_REGEX_SIZE).unwrap_err();
        assert!(err.contains("max_regex_size"), "{err}");
    }
}
