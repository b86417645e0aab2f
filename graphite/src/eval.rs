//! Evaluation of target expressions, in phases so the same code serves the embedded store
//! and raw data from a remote Graphite:
//!
//! 1. [`plan`] walks the expression and lists every `(pattern, from, until)` it will need,
//!    including the widened windows of `movingX` with a time window, `timeShift`,
//!    `holtWinters*`, `hitcount`/`smartSummarize` alignment (each function's
//!    [`Function::window`](crate::functions::Function::window) hook).
//! 2. The caller fetches them from a [`Source`], each `(pattern, window)` once.
//! 3. [`evaluate`] runs synchronously over the fetched data ([`Fetched`]).
//!
//! Some windows depend on data (`movingAverage(x, 10)` widens by 10 × the series' step, known
//! only after fetching); evaluation then reports the requests it still lacks
//! ([`EvalError::NeedData`]) and [`render`] fetches them and evaluates again (one extra round
//! per nesting level of such functions).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::rc::Rc;

pub use crate::budget::Budget;
use crate::expr::ast::{Call, Expr};
use crate::functions::agg::Columns;
use crate::functions::{self, Args, Value};
use crate::glob::GlobPattern;
use crate::series::Series;

/// One fetch: a path pattern over `[from, until)` (epoch seconds).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FetchRequest {
    pub pattern: String,
    pub from: i64,
    pub until: i64,
}

/// Where series come from: the embedded store or a remote Graphite's raw data.
pub trait Source {
    /// Fetches every request; the result has one entry per request, in order. Each series'
    /// `path_expression` should be the request's pattern (as graphite-web's `fetchData`).
    fn fetch(&self, reqs: &[FetchRequest]) -> Result<Vec<Vec<Series>>, EvalError>;

    /// The names of the series matching graphite-web tag expressions (`seriesByTag`), sorted
    /// (see [`crate::tags`]). A source without a tag index refuses.
    fn find_tagged(&self, exprs: &[String]) -> Result<Vec<String>, EvalError> {
        Err(EvalError::Source {
            pattern: format!("seriesByTag({exprs:?})"),
            message: "this source has no tag index: seriesByTag needs carbide's store \
                      (point the evaluator at `carbide serve` data, not a remote render API)"
                .into(),
        })
    }

    /// The times (epoch seconds, as posted) of graphite-web's events (`/events`) with
    /// `from <= when <= until` carrying every tag of `tags` (`None`: every event), in time
    /// order, at most `limit` of them: what the `events()` function draws. A source without
    /// an events store refuses.
    fn events(
        &self,
        _from: i64,
        _until: i64,
        tags: Option<&[String]>,
        _limit: usize,
    ) -> Result<Vec<f64>, EvalError> {
        Err(EvalError::Source {
            pattern: crate::functions::events::name(tags.unwrap_or(&["*".to_string()])),
            message: "this source has no events: events() needs carbide's store".into(),
        })
    }

    /// The largest step `pattern`'s series would be fetched at over `[from, until)`, if the
    /// source knows it without fetching (the store knows its schemas). [`render`] uses it to
    /// plan step-dependent windows (`movingAverage(x, 10)`) before the first fetch, so a
    /// pattern's base and widened windows arrive in one [`Source::fetch`] call.
    fn step_hint(&self, _pattern: &str, _from: i64, _until: i64) -> Option<i64> {
        None
    }

    /// What [`Source::fetch`] would return for `pattern` over `[from, until)`, when the
    /// source knows it without reading (see [`Shape`]); `None` when it does not, or when the
    /// fetch would fail.
    fn shape(&self, _pattern: &str, _from: i64, _until: i64) -> Option<Shape> {
        None
    }

    /// What [`Source::fold`] folds of `pattern` over `[from, until)`, told without reading;
    /// `None` when the source does not fold it (it is then fetched and aggregated).
    fn folds(&self, _pattern: &str, _from: i64, _until: i64) -> Option<Folds> {
        None
    }

    /// Folds the series [`Source::fetch`] would return for `pattern` over `[from, until)`
    /// into `into`, in their order, each value as `aggregate` folds a fetched series
    /// ([`Columns`]), and keeps their common tags: for a pattern whose [`Source::folds`]
    /// is the window of `into`. Says what the series fetched would have cost (the budget
    /// is charged for them as for a fetch).
    fn fold(
        &self,
        pattern: &str,
        _from: i64,
        _until: i64,
        _into: &mut Columns,
    ) -> Result<Folded, EvalError> {
        Err(EvalError::Source {
            pattern: pattern.to_string(),
            message: "this source does not fold series".into(),
        })
    }
}

/// What a [`Source`] folds of a pattern over a window ([`Source::folds`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Folds {
    /// No series (the fetch returns none).
    Nothing,
    /// Series that all have these points: `points` from `start` at `step`.
    Window {
        start: i64,
        step: i64,
        points: usize,
    },
}

/// What a [`Source::fold`] folded: how many series, and what they would have cost as
/// fetched series ([`crate::budget::cost`]: points, name bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Folded {
    pub series: usize,
    pub points: u64,
    pub names: u64,
}

/// A series list known without its values: what `movingX` reads of its first argument over
/// the request window ([`crate::functions::Function::shape_of_first`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// No series.
    Empty,
    /// At least one series, all of this step.
    Step(i64),
}

/// `expr`'s [`Shape`] over `[from, until)` from the shapes a source gives of its paths,
/// through the functions that keep their first argument's shape
/// ([`crate::functions::Function::keeps_shape`]); `None` when it cannot be told without
/// evaluating.
pub fn shape_of(
    expr: &Expr,
    from: i64,
    until: i64,
    paths: &dyn Fn(&str, i64, i64) -> Option<Shape>,
) -> Option<Shape> {
    match expr {
        // A reversed or empty window reads nothing (see [`Context::fetch`]).
        Expr::Path(_) if from >= until => Some(Shape::Empty),
        Expr::Path(p) => paths(p, from, until),
        Expr::Call(call) => {
            let func = functions::lookup(&call.name)?;
            let keeps = func.keeps_shape?;
            let (first, rest) = call.args.split_first()?;
            let literal = |e: &Expr| match e {
                Expr::Int(i) => Some(Value::Int(*i)),
                Expr::Float(f) => Some(Value::Float(*f)),
                Expr::Str(s) => Some(Value::Str(s.clone())),
                Expr::Bool(b) => Some(Value::Bool(*b)),
                Expr::None => Some(Value::None),
                _ => None,
            };
            let mut args = vec![Value::Series(Vec::new())];
            for a in rest {
                args.push(literal(a)?);
            }
            let mut kwargs = Vec::with_capacity(call.kwargs.len());
            for (k, a) in &call.kwargs {
                kwargs.push((k.as_str(), literal(a)?));
            }
            let args = Args::validate(func, args, kwargs).ok()?;
            if !keeps(&args) {
                return None;
            }
            shape_of(first, from, until, paths)
        }
        _ => None,
    }
}

/// A call the source folds ([`Source::fold`]) instead of fetching its series.
struct FoldPlan<'e> {
    /// The aggregation's name (`sum`, `average`, ...) and function.
    short: &'static str,
    agg: functions::AggFunc,
    /// The paths, in order, with what the source folds of each.
    paths: Vec<(&'e str, Folds)>,
    /// The window of the paths with series (`None`: no path has any).
    window: Option<Folds>,
}

/// `call` as a fold of the source's: a function that is `aggregate(…, func)` for a `func`
/// folded column by column ([`crate::functions::Function::fold`]), called without keyword
/// arguments on paths only, over a non-empty window, each of which `folds` tells the source
/// folds, those with series over one window (different windows are normalised to their
/// LCM step by `aggregate`: fetched instead). The planner and the evaluator both ask it, so
/// a path is fetched exactly when its call is not folded.
fn fold_plan<'e>(
    call: &'e Call,
    from: i64,
    until: i64,
    folds: &PathFolds<'_>,
) -> Option<FoldPlan<'e>> {
    let short = functions::lookup(&call.name)?.fold?;
    let agg = functions::AggFunc::parse(short)?;
    if from >= until || !call.kwargs.is_empty() || call.args.is_empty() {
        return None;
    }
    let mut window = None;
    let mut paths = Vec::with_capacity(call.args.len());
    for a in &call.args {
        let Expr::Path(p) = a else {
            return None;
        };
        let f = folds(p, from, until)?;
        if f != Folds::Nothing && *window.get_or_insert(f) != f {
            return None;
        }
        paths.push((p.as_str(), f));
    }
    Some(FoldPlan {
        short,
        agg,
        paths,
        window,
    })
}

/// The stand-in list a [`crate::functions::Function::shape_of_first`] function gets for its
/// first argument of shape `shape`.
fn stand_in(shape: Shape) -> Vec<Series> {
    match shape {
        Shape::Empty => Vec::new(),
        Shape::Step(step) => vec![Series::new(String::new(), 0, 0, step, Vec::new())],
    }
}

/// Data fetched for a request, keyed by request.
pub type Fetched = HashMap<FetchRequest, Vec<Series>>;

/// Why a target could not be evaluated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    #[error("unknown function {0:?}: check the spelling (graphite-web's function names are case-sensitive)")]
    UnknownFunction(String),
    /// An argument did not fit the function's signature (graphite-web's wording).
    #[error("{0}")]
    Param(String),
    /// A function refused its input.
    #[error("{function}: {message}")]
    Input { function: String, message: String },
    /// A literal where a series list was expected at the top level.
    #[error("target {0} is a literal, not a series: use a path or a function call")]
    NotASeries(String),
    /// The source failed.
    #[error("fetching {pattern:?}: {message}")]
    Source { pattern: String, message: String },
    /// Evaluation needs these requests fetched first (see the module docs).
    #[error("evaluation needs {} more fetch(es), e.g. {:?}", .0.len(), .0.first().map(|r| &r.pattern))]
    NeedData(Vec<FetchRequest>),
    /// `from` and `until` are the same instant.
    #[error("invalid empty time range: from and until are both {0}; use an until after from")]
    EmptyTimeRange(i64),
    /// Too many rounds of data-dependent fetches.
    #[error("target nests window functions too deeply to plan (more than {0} fetch rounds)")]
    TooManyRounds(usize),
    /// The request's [`Budget`] would be exceeded (`what`: points, name bytes, regexes).
    #[error("{function}: this request would hold more than {limit} {what} (limit {setting})")]
    OverBudget {
        function: String,
        what: &'static str,
        limit: u64,
        setting: &'static str,
    },
    /// The request's deadline passed while evaluating `function`.
    #[error("{function}: the render ran past its deadline (limit render_timeout)")]
    DeadlineExceeded { function: String },
    /// The request's cancel flag was set (the client went away).
    #[error("the render was cancelled")]
    Cancelled,
}

impl EvalError {
    /// True for the errors of a [`Budget`] (over a limit, past the deadline, cancelled): the
    /// request's fault or its time, not the server's.
    pub fn is_budget(&self) -> bool {
        matches!(
            self,
            Self::OverBudget { .. } | Self::DeadlineExceeded { .. } | Self::Cancelled
        )
    }
}

/// Lists the fetches `expr` needs for the request window `[from, until)`, deduplicated and
/// sorted. Windows that depend on a series' step (integer `movingX` windows) are not listed;
/// [`evaluate`] asks for them.
pub fn plan(expr: &Expr, from: i64, until: i64) -> Vec<FetchRequest> {
    Planner::fetches(expr, from, until, &|_, _, _| None, &no_shapes, &no_folds)
}

/// Like [`plan`], but also lists the windows that depend on a series' step (integer
/// `movingX` windows), taking the step from data already fetched for the paths of the
/// function's first argument. A guess (a function may change the step, e.g. `summarize`):
/// [`evaluate`] still asks for anything missing.
pub fn plan_with_steps(expr: &Expr, from: i64, until: i64, data: &Fetched) -> Vec<FetchRequest> {
    Planner::fetches(
        expr,
        from,
        until,
        &|e, _, _| step_hint(e, data),
        &no_shapes,
        &no_folds,
    )
}

/// Like [`plan_with_steps`], with the steps from the source's [`Source::step_hint`] instead
/// of fetched data (the same as [`plan`] for a source that gives no hints).
pub fn plan_with_source(
    expr: &Expr,
    from: i64,
    until: i64,
    source: &dyn Source,
) -> Vec<FetchRequest> {
    let hint = |e: &Expr, f: i64, u: i64| {
        let mut paths = Vec::new();
        collect_paths(e, &mut paths);
        paths
            .into_iter()
            .filter_map(|p| source.step_hint(p, f, u))
            .max()
    };
    Planner::fetches(
        expr,
        from,
        until,
        &hint,
        &|p, f, u| source.shape(p, f, u),
        &|p, f, u| source.folds(p, f, u),
    )
}

/// A source's [`Shape`] of a path over a window ([`Source::shape`]).
type PathShapes<'a> = dyn Fn(&str, i64, i64) -> Option<Shape> + 'a;

/// No path's shape is known without fetching.
fn no_shapes(_: &str, _: i64, _: i64) -> Option<Shape> {
    None
}

/// What a source folds of a path over a window ([`Source::folds`]).
type PathFolds<'a> = dyn Fn(&str, i64, i64) -> Option<Folds> + 'a;

/// No path is folded by the source.
fn no_folds(_: &str, _: i64, _: i64) -> Option<Folds> {
    None
}

/// The largest step among fetched series of the paths under `expr`.
fn step_hint(expr: &Expr, data: &Fetched) -> Option<i64> {
    let mut paths = Vec::new();
    collect_paths(expr, &mut paths);
    data.iter()
        .filter(|(r, _)| paths.contains(&r.pattern.as_str()))
        .flat_map(|(_, s)| s.iter().map(|s| s.step))
        .max()
}

fn collect_paths<'a>(expr: &'a Expr, out: &mut Vec<&'a str>) {
    match expr {
        Expr::Path(p) | Expr::SeriesByTag { raw: p, .. } => out.push(p),
        Expr::Call(c) => {
            c.args.iter().for_each(|a| collect_paths(a, out));
            c.kwargs.iter().for_each(|(_, a)| collect_paths(a, out));
        }
        _ => {}
    }
}

/// A function's step guess for its first argument over a window: `(expr, from, until)`.
type StepHint<'a> = dyn Fn(&Expr, i64, i64) -> Option<i64> + 'a;

/// `(expression address, from, until)`: a sub-expression over a window, for the planner's
/// and the evaluator's memo (addresses of a round's expressions are stable: the targets are
/// borrowed for the whole render, generated ones are kept in [`Context`]).
type MemoKey = (usize, i64, i64);

fn memo_key(expr: &Expr, from: i64, until: i64) -> MemoKey {
    (std::ptr::from_ref(expr) as usize, from, until)
}

/// The fetches of expressions planned one by one: each sub-expression is planned over each
/// window once (nested window functions would otherwise plan exponentially many windows), and
/// `repeats` gets the calls planned more than once over the same window, which evaluation
/// memoises from their first evaluation. The first argument of a function that reads it only
/// for its shape is not planned over the function's window when `shapes` tells that shape.
struct Planner<'a> {
    /// Steps of step-dependent windows.
    hint: &'a StepHint<'a>,
    /// Shapes of paths known without fetching them.
    shapes: &'a PathShapes<'a>,
    /// What the source folds instead of fetching ([`fold_plan`]).
    folds: &'a PathFolds<'a>,
    /// The fetches, in planning order, not deduplicated.
    out: Vec<FetchRequest>,
    seen: HashSet<MemoKey>,
    repeats: HashSet<MemoKey>,
}

impl<'a> Planner<'a> {
    fn new(hint: &'a StepHint<'a>, shapes: &'a PathShapes<'a>, folds: &'a PathFolds<'a>) -> Self {
        Self {
            hint,
            shapes,
            folds,
            out: Vec::new(),
            seen: HashSet::new(),
            repeats: HashSet::new(),
        }
    }

    /// The fetches of `expr` alone over `[from, until)`, deduplicated and sorted.
    fn fetches(
        expr: &Expr,
        from: i64,
        until: i64,
        hint: &'a StepHint<'a>,
        shapes: &'a PathShapes<'a>,
        folds: &'a PathFolds<'a>,
    ) -> Vec<FetchRequest> {
        let mut planner = Self::new(hint, shapes, folds);
        planner.plan(expr, from, until);
        let mut out = planner.out;
        out.sort();
        out.dedup();
        out
    }

    /// Adds the fetches of `expr` over `[from, until)`.
    fn plan(&mut self, expr: &Expr, from: i64, until: i64) {
        if matches!(expr, Expr::Call(_)) && !self.seen.insert(memo_key(expr, from, until)) {
            self.repeats.insert(memo_key(expr, from, until));
            return;
        }
        match expr {
            // A reversed or empty window reads nothing (see [`Context::eval`]).
            Expr::Path(_) | Expr::SeriesByTag { .. } if from >= until => {}
            Expr::Path(p) | Expr::SeriesByTag { raw: p, .. } => {
                self.out.push(FetchRequest {
                    pattern: p.clone(),
                    from,
                    until,
                });
            }
            // The source folds the call's paths: nothing is fetched for it.
            Expr::Call(call) if fold_plan(call, from, until, self.folds).is_some() => {}
            Expr::Call(call) => {
                let func = functions::lookup(&call.name);
                let shape_only = func.is_some_and(|f| f.shape_of_first)
                    && call
                        .args
                        .first()
                        .is_some_and(|a| shape_of(a, from, until, self.shapes).is_some());
                for (i, a) in call.args.iter().enumerate() {
                    if i > 0 || !shape_only {
                        self.plan(a, from, until);
                    }
                }
                for (_, a) in &call.kwargs {
                    self.plan(a, from, until);
                }
                let window = func.and_then(|f| f.window);
                if let (Some(window), Some(first)) = (window, call.args.first()) {
                    for (f, u) in window(call, from, until, (self.hint)(first, from, until)) {
                        self.plan(first, f, u);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Request-wide evaluation state: the window, `now`, the fetched data, the request's
/// [`Budget`], and what graphite-web keeps in its `requestContext` (`xFilesFactor` set by
/// `setXFilesFactor`).
pub struct Context<'d> {
    pub from: i64,
    pub until: i64,
    pub now: i64,
    data: &'d Fetched,
    /// The source, for the [`Shape`]s of paths ([`render_with`] sets it).
    source: Option<&'d dyn Source>,
    /// Data planned to be read once ([`render`] moves it here): the read takes it without a
    /// copy. A second read of a taken request is reported as missing.
    once: Fetched,
    taken: BTreeSet<FetchRequest>,
    missing: BTreeSet<FetchRequest>,
    /// What this request may still use (points, name bytes, regexes, time).
    pub budget: &'d Budget,
    /// Results of calls over a window, kept for their next evaluation (see [`Context::eval`]).
    memo: HashMap<MemoKey, Vec<Series>>,
    /// Calls evaluated once so far (memoised when evaluated again).
    evaluated: HashSet<MemoKey>,
    /// Calls the plan reads more than once: memoised from their first evaluation.
    repeats: HashSet<MemoKey>,
    /// Generated expressions (`applyByNode`'s targets, ...), kept so their addresses stay
    /// unique memo keys for the whole round.
    generated: Vec<Rc<Expr>>,
    /// How many generated targets are being evaluated inside each other.
    generating: usize,
    /// `requestContext['xFilesFactor']`.
    pub x_files_factor: Option<f64>,
    /// `requestContext['totalStack']`: running totals of `stacked()` by stack name.
    pub stacks: HashMap<String, Vec<f64>>,
}

impl<'d> Context<'d> {
    /// A context over fetched data under `budget`; every read of the data copies the series
    /// ([`render`] moves the data its plan reads once out of `data`, for reads without a
    /// copy).
    pub fn new(from: i64, until: i64, now: i64, data: &'d Fetched, budget: &'d Budget) -> Self {
        Self {
            from,
            until,
            now,
            data,
            source: None,
            once: Fetched::new(),
            taken: BTreeSet::new(),
            missing: BTreeSet::new(),
            budget,
            memo: HashMap::new(),
            evaluated: HashSet::new(),
            repeats: HashSet::new(),
            generated: Vec::new(),
            generating: 0,
            x_files_factor: None,
            stacks: HashMap::new(),
        }
    }

    /// Whether some fetch seen so far is not in the data yet (a generated target's data
    /// arrives in the next round).
    pub fn has_missing(&self) -> bool {
        !self.missing.is_empty()
    }

    fn fetch(&mut self, pattern: &str, from: i64, until: i64) -> Result<Vec<Series>, EvalError> {
        if from >= until {
            // A function's reversed or empty window (a negative shift or bootstrap): no data.
            return Ok(Vec::new());
        }
        let req = FetchRequest {
            pattern: pattern.to_string(),
            from,
            until,
        };
        if let Some(s) = self.data.get(&req) {
            // A copy: charged before it is made.
            self.budget.charge_series(s, pattern)?;
            return Ok(s.clone());
        }
        if let Some(s) = self.once.remove(&req) {
            // Charged when fetched ([`render`]).
            self.taken.insert(req);
            return Ok(s);
        }
        self.missing.insert(req);
        Ok(Vec::new())
    }

    /// Evaluates `expr` over `[from, until)`.
    ///
    /// A call evaluated again over the same window (a window function's re-evaluation,
    /// `timeStack`, nesting of both) is answered from a per-round memo: each
    /// (sub-expression, window) is computed at most twice (once when the plan already knew it
    /// repeats), so nesting costs a polynomial, not an exponential, number of evaluations.
    /// A memoised answer is a copy, charged to the budget per use like a fetched series.
    pub fn eval(&mut self, expr: &Expr, from: i64, until: i64) -> Result<Value, EvalError> {
        Ok(match expr {
            Expr::Path(p) | Expr::SeriesByTag { raw: p, .. } => {
                Value::Series(self.fetch(p, from, until)?)
            }
            Expr::Call(call) => {
                let key = memo_key(expr, from, until);
                if let Some(s) = self.memo.get(&key) {
                    self.budget.charge_series(s, &call.name)?;
                    return Ok(Value::Series(s.clone()));
                }
                let out = self.call(call, from, until)?;
                if self.repeats.contains(&key) || !self.evaluated.insert(key) {
                    self.budget.charge_series(&out, &call.name)?;
                    self.memo.insert(key, out.clone());
                }
                Value::Series(out)
            }
            Expr::Int(i) => Value::Int(*i),
            Expr::Float(f) => Value::Float(*f),
            Expr::Str(s) => Value::Str(s.clone()),
            Expr::Bool(b) => Value::Bool(*b),
            Expr::None => Value::None,
        })
    }

    /// Evaluates an expression built during evaluation (a generated target), keeping it for
    /// the rest of the round so the memo's keys stay unique.
    pub fn eval_generated(
        &mut self,
        expr: Expr,
        from: i64,
        until: i64,
        function: &str,
    ) -> Result<Value, EvalError> {
        if self.generating >= MAX_GENERATED_DEPTH {
            return Err(EvalError::Input {
                function: function.into(),
                message: format!(
                    "generated targets nest more than {MAX_GENERATED_DEPTH} deep (a generated \
                     target generating another)"
                ),
            });
        }
        let expr = Rc::new(expr);
        self.generated.push(Rc::clone(&expr));
        self.generating += 1;
        let r = self.eval(&expr, from, until);
        self.generating -= 1;
        r
    }

    /// `expr`'s [`Shape`] over `[from, until)`, if the source tells it without values.
    fn shape(&self, expr: &Expr, from: i64, until: i64) -> Option<Shape> {
        let source = self.source?;
        shape_of(expr, from, until, &|p, f, u| source.shape(p, f, u))
    }

    /// `call` folded by the source ([`fold_plan`]), charged as its fetches and its answer
    /// would be; `None` when it is not.
    fn fold(
        &mut self,
        call: &Call,
        from: i64,
        until: i64,
    ) -> Result<Option<Vec<Series>>, EvalError> {
        let Some(source) = self.source else {
            return Ok(None);
        };
        let Some(plan) = fold_plan(call, from, until, &|p, f, u| source.folds(p, f, u)) else {
            return Ok(None);
        };
        let Some(Folds::Window {
            start,
            step,
            points,
        }) = plan.window
        else {
            // No series: `aggregate` of nothing is nothing.
            return Ok(Some(Vec::new()));
        };
        // The accumulators, before they are allocated.
        self.budget.charge(2 * points as u64, &call.name)?;
        let mut cols = Columns::new(plan.agg, start, step, points).ok_or_else(|| {
            EvalError::Param(format!(
                "{}: not an aggregation folded by columns",
                call.name
            ))
        })?;
        let mut exprs: Vec<&str> = Vec::new();
        for &(path, f) in &plan.paths {
            if f == Folds::Nothing {
                continue;
            }
            let got = source.fold(path, from, until, &mut cols)?;
            // As the fetched series would have been (see [`render_with`]).
            self.budget.charge(got.points, path)?;
            self.budget.charge_names(got.names, path)?;
            if got.series > 0 && !exprs.contains(&path) {
                exprs.push(path);
            }
        }
        let out = functions::aggregate::from_columns(
            &cols,
            plan.short,
            &exprs.join(","),
            self.x_files_factor,
        );
        let out: Vec<Series> = out.into_iter().collect();
        let (points, names) = crate::budget::cost(&out);
        self.budget.charge(points, &call.name)?;
        self.budget.charge_names(names, &call.name)?;
        Ok(Some(out))
    }

    fn call(&mut self, call: &Call, from: i64, until: i64) -> Result<Vec<Series>, EvalError> {
        self.budget.check(&call.name)?;
        let func = functions::lookup(&call.name)
            .ok_or_else(|| EvalError::UnknownFunction(call.name.clone()))?;
        if let Some(out) = self.fold(call, from, until)? {
            return Ok(out);
        }
        let mut args = Vec::with_capacity(call.args.len());
        for (i, a) in call.args.iter().enumerate() {
            if i == 0 && func.shape_of_first {
                if let Some(shape) = self.shape(a, from, until) {
                    args.push(Value::Series(stand_in(shape)));
                    continue;
                }
            }
            args.push(self.eval(a, from, until)?);
        }
        let mut kwargs = Vec::with_capacity(call.kwargs.len());
        for (k, a) in &call.kwargs {
            kwargs.push((k.as_str(), self.eval(a, from, until)?));
        }
        let args = Args::validate(func, args, kwargs)?;
        let mut cx = Cx {
            ctx: self,
            call,
            from,
            until,
            charged: 0,
            charged_names: 0,
        };
        // Names that echo a string argument (`alias(x, '<16 KB>')` over many series) are
        // charged before they are built.
        let (series, bytes) = args.echo_bound();
        cx.charge_names(series.max(1).saturating_mul(bytes))?;
        let out = (func.run)(&mut cx, args)?;
        // What the function returns is charged, less what it charged before allocating.
        let (points, names) = crate::budget::cost(&out);
        let (pre, pre_names) = (cx.charged, cx.charged_names);
        self.budget.charge(points.saturating_sub(pre), &call.name)?;
        self.budget
            .charge_names(names.saturating_sub(pre_names), &call.name)?;
        Ok(out)
    }
}

/// What a function implementation sees: the request context, its own call (to re-evaluate
/// its first argument over another window, as graphite-web's `evaluateTarget(newContext,
/// requestContext['args'][0])`), and the window it is evaluated over.
pub struct Cx<'a, 'd> {
    pub ctx: &'a mut Context<'d>,
    pub call: &'a Call,
    pub from: i64,
    pub until: i64,
    /// Points this call charged before allocating them ([`Cx::charge`]).
    charged: u64,
    /// Name bytes this call charged before building them ([`Cx::charge_names`]).
    charged_names: u64,
}

impl Cx<'_, '_> {
    /// Re-evaluates the first argument over `[from, until)`.
    pub fn eval_first_arg(&mut self, from: i64, until: i64) -> Result<Vec<Series>, EvalError> {
        match self.call.args.first() {
            Some(e) => match self.ctx.eval(e, from, until)? {
                Value::Series(s) => Ok(s),
                _ => Ok(Vec::new()),
            },
            None => Ok(Vec::new()),
        }
    }

    /// The data of a request this function makes itself (`events()`'s), over
    /// `[from, until)`: what was fetched for it, or nothing yet (the evaluator fetches it
    /// for the next round). Copies are charged as every read.
    pub fn read(&mut self, pattern: &str, from: i64, until: i64) -> Result<Vec<Series>, EvalError> {
        self.ctx.fetch(pattern, from, until)
    }

    /// An input error naming this function.
    pub fn input_error(&self, message: impl Into<String>) -> EvalError {
        EvalError::Input {
            function: self.call.name.clone(),
            message: message.into(),
        }
    }

    /// Charges `points` this function is about to allocate (before allocating them). What
    /// it returns is charged after it returns, less what it charged here, so charging its
    /// output early costs nothing twice; scratch buffers charged here may make the count an
    /// over-estimate, never an under-estimate.
    pub fn charge(&mut self, points: u64) -> Result<(), EvalError> {
        self.ctx.budget.charge(points, &self.call.name)?;
        self.charged = self.charged.saturating_add(points);
        Ok(())
    }

    /// [`Cx::charge`] for the points of `[from, until)` at `step` (one per step started,
    /// none for an empty or reversed window); returns that count.
    pub fn charge_span(&mut self, from: i64, until: i64, step: i64) -> Result<usize, EvalError> {
        let n = span_points(from, until, step);
        self.charge(n)?;
        Ok(n as usize)
    }

    /// Charges name bytes this function is about to build (see [`Cx::charge`]).
    pub fn charge_names(&mut self, bytes: u64) -> Result<(), EvalError> {
        self.ctx.budget.charge_names(bytes, &self.call.name)?;
        self.charged_names = self.charged_names.saturating_add(bytes);
        Ok(())
    }

    /// The deadline and the cancel flag, now (before work that cannot be interrupted).
    pub fn check(&self) -> Result<(), EvalError> {
        self.ctx.budget.check(&self.call.name)
    }

    /// The deadline and the cancel flag, cheaply (for loops that do not allocate).
    #[inline]
    pub fn tick(&self) -> Result<(), EvalError> {
        self.ctx.budget.tick(&self.call.name)
    }

    /// Compiles a regex within the request's regex budget (count and compiled size).
    pub fn regex(&self, pattern: &str) -> Result<regex::Regex, EvalError> {
        self.ctx.budget.regex(pattern, &self.call.name)
    }
}

/// Points in `[from, until)` at `step`: one per step started; 0 for an empty or reversed
/// window or a step ≤ 0.
pub fn span_points(from: i64, until: i64, step: i64) -> u64 {
    if step <= 0 || until <= from {
        return 0;
    }
    let len = (i128::from(until) - i128::from(from)) as u128;
    len.div_ceil(step as u128).min(u128::from(u64::MAX)) as u64
}

/// How deep generated targets (`applyByNode`'s template, `linearRegression`'s re-read, ...)
/// may nest in each other; each level is a parsed target of its own, so without a cap a
/// 16 KB target could nest hundreds of them and overflow the stack.
pub const MAX_GENERATED_DEPTH: usize = 8;

/// Evaluates one target over the context's window. Returns [`EvalError::NeedData`] if some
/// fetch it needs is not in the context's data.
pub fn evaluate(expr: &Expr, ctx: &mut Context<'_>) -> Result<Vec<Series>, EvalError> {
    ctx.missing.clear();
    let v = ctx.eval(expr, ctx.from, ctx.until)?;
    if !ctx.missing.is_empty() {
        return Err(EvalError::NeedData(
            std::mem::take(&mut ctx.missing).into_iter().collect(),
        ));
    }
    match v {
        Value::Series(s) => Ok(s),
        other => Err(EvalError::NotASeries(other.describe())),
    }
}

/// The request window as graphite-web's render view settles it: `from`/`until` given the
/// wrong way round are swapped, and an empty range is an error (graphite-web's 400 "Invalid
/// empty time range").
pub fn request_window(from: i64, until: i64) -> Result<(i64, i64), EvalError> {
    match from.cmp(&until) {
        std::cmp::Ordering::Less => Ok((from, until)),
        std::cmp::Ordering::Greater => Ok((until, from)),
        std::cmp::Ordering::Equal => Err(EvalError::EmptyTimeRange(from)),
    }
}

/// [`render_with`] under a default [`Budget`] (no deadline, no cancel flag).
pub fn render(
    targets: &[Expr],
    from: i64,
    until: i64,
    now: i64,
    source: &dyn Source,
) -> Result<Vec<Series>, EvalError> {
    render_with(targets, from, until, now, source, &Budget::new())
}

/// Plans, fetches and evaluates several targets over one window, fetching each
/// `(pattern, window)` once, under one request's `budget`. Results are concatenated in
/// target order, as graphite-web's `evaluateTarget`.
///
/// The budget is charged for everything fetched and every point evaluation makes (see
/// [`crate::budget`]); its deadline and cancel flag are checked between fetches and inside
/// evaluation. Over a limit, past the deadline or cancelled, the render stops with
/// [`EvalError::OverBudget`], [`EvalError::DeadlineExceeded`] or [`EvalError::Cancelled`]
/// ([`EvalError::is_budget`]): client errors (400/422), never a 500. Read
/// [`Budget::high_water`] afterwards for what the request held at most.
///
/// ```
/// use std::sync::{atomic::AtomicBool, Arc};
/// use std::time::Duration;
/// use graphite::eval::{render_with, Budget, MemorySource};
///
/// let cancel = Arc::new(AtomicBool::new(false)); // set it when the client goes away
/// let budget = Budget::new()
///     .with_max_points(1_000_000)
///     .with_timeout(Duration::from_secs(5))
///     .with_cancel(cancel.clone());
/// let target = graphite::expr::parse("time('t',1)").unwrap();
/// let err = render_with(&[target], 0, 1 << 40, 1 << 40, &MemorySource::default(), &budget)
///     .unwrap_err();
/// assert!(err.is_budget());
/// assert!(err.to_string().contains("max_points_per_request"), "{err}");
/// ```
pub fn render_with(
    targets: &[Expr],
    from: i64,
    until: i64,
    now: i64,
    source: &dyn Source,
    budget: &Budget,
) -> Result<Vec<Series>, EvalError> {
    const MAX_ROUNDS: usize = 8;
    // Fetched data is charged as it arrives, on top of what is already held.
    let fetch = |reqs: &[FetchRequest], data: &mut Fetched| -> Result<(), EvalError> {
        budget.check("fetch")?;
        for r in reqs {
            budget.charge_regexes(crate::tags::query_regexes(&r.pattern) as u64, "seriesByTag")?;
        }
        let (held, held_names) = held_cost(data);
        budget.begin_round(held, held_names);
        // Requests the source knows the step of are refused before they are read when one
        // series of each would not fit.
        let mut planned = 0u64;
        for r in reqs {
            if let Some(step) = source.step_hint(&r.pattern, r.from, r.until) {
                planned = planned.saturating_add(span_points(r.from, r.until, step));
                budget.fits(planned, &r.pattern)?;
            }
        }
        let got = crate::functions::events::fetch(source, reqs, budget)?;
        for (r, s) in reqs.iter().cloned().zip(got) {
            budget.charge_series(&s, &r.pattern)?;
            data.insert(r, s);
        }
        Ok(())
    };
    let mut data = Fetched::new();
    let mut move_once = true;
    let mut want: BTreeSet<FetchRequest> = targets
        .iter()
        .flat_map(|t| plan_with_source(t, from, until, source))
        .collect();
    let reqs: Vec<FetchRequest> = want.iter().cloned().collect();
    if !reqs.is_empty() {
        fetch(&reqs, &mut data)?;
        // Step-dependent windows, now that steps are known (saves an evaluation round).
        want = targets
            .iter()
            .flat_map(|t| {
                Planner::fetches(
                    t,
                    from,
                    until,
                    &|e, _, _| step_hint(e, &data),
                    &|p, f, u| source.shape(p, f, u),
                    &|p, f, u| source.folds(p, f, u),
                )
            })
            .collect();
    }
    for _ in 0..MAX_ROUNDS {
        let reqs: Vec<FetchRequest> = want
            .iter()
            .filter(|r| !data.contains_key(r))
            .cloned()
            .collect();
        if !reqs.is_empty() {
            fetch(&reqs, &mut data)?;
        }
        // Requests the plan reads exactly once are moved into the evaluation rather than
        // copied on their read (a round that fails gives back what it did not take, and
        // fetches again what it took; later rounds copy). Calls the plan evaluates twice over
        // the same window are memoised from their first evaluation.
        let mut once = Fetched::new();
        let hint = |e: &Expr, _, _| step_hint(e, &data);
        let shapes = |p: &str, f, u| source.shape(p, f, u);
        let folds = |p: &str, f, u| source.folds(p, f, u);
        let mut planner = Planner::new(&hint, &shapes, &folds);
        for t in targets {
            planner.plan(t, from, until);
        }
        let Planner {
            out: planned,
            repeats,
            ..
        } = planner;
        if move_once {
            let mut uses: HashMap<&FetchRequest, usize> = HashMap::new();
            for r in &planned {
                *uses.entry(r).or_default() += 1;
            }
            let single: Vec<FetchRequest> = uses
                .into_iter()
                .filter(|(_, n)| *n == 1)
                .map(|(r, _)| r.clone())
                .collect();
            for r in single {
                if let Some(s) = data.remove(&r) {
                    once.insert(r, s);
                }
            }
        }
        let (held, held_names) = held_cost(&data);
        let (once_points, once_names) = held_cost(&once);
        budget.begin_round(held + once_points, held_names + once_names);
        let mut ctx = Context::new(from, until, now, &data, budget);
        ctx.source = Some(source);
        ctx.once = once;
        ctx.repeats = repeats;
        let mut out = Vec::new();
        let mut need = Vec::new();
        for t in targets {
            match evaluate(t, &mut ctx) {
                Ok(s) => out.extend(s),
                Err(EvalError::NeedData(r)) => need.extend(r),
                Err(e) => return Err(e),
            }
        }
        let (left, taken) = (
            std::mem::take(&mut ctx.once),
            std::mem::take(&mut ctx.taken),
        );
        drop(ctx);
        if need.is_empty() {
            return Ok(out);
        }
        data.extend(left);
        move_once = false;
        want = need.into_iter().chain(taken).collect();
    }
    Err(EvalError::TooManyRounds(MAX_ROUNDS))
}

/// What fetched data holds: (points, name bytes), as [`crate::budget::cost`] counts them.
fn held_cost(data: &Fetched) -> (u64, u64) {
    data.values()
        .map(|s| crate::budget::cost(s))
        .fold((0, 0), |(p, n), (a, b)| (p + a, n + b))
}

/// An in-memory [`Source`]: whole series by path, sliced per request the way whisper aligns
/// a fetch (`fromInterval = from - from % step + step`, same for `until`).
#[derive(Debug, Default, Clone)]
pub struct MemorySource {
    series: Vec<Series>,
    /// Events as (when, space-separated tags).
    events: Vec<(f64, String)>,
}

impl MemorySource {
    pub fn new(mut series: Vec<Series>) -> Self {
        series.sort_by(|a, b| a.name.cmp(&b.name));
        Self {
            series,
            events: Vec::new(),
        }
    }

    /// The same source with graphite-web events, (when, space-separated tags) each.
    pub fn with_events(mut self, mut events: Vec<(f64, String)>) -> Self {
        events.sort_by(|a, b| a.0.total_cmp(&b.0));
        self.events = events;
        self
    }

    fn slice(s: &Series, req: &FetchRequest) -> Series {
        let step = s.step.max(1);
        let from = req.from - req.from.rem_euclid(step) + step;
        let mut until = req.until - req.until.rem_euclid(step) + step;
        if until == from {
            until += step;
        }
        let n = usize::try_from((until - from) / step).unwrap_or(0);
        let mut values = vec![None; n];
        let off = from - s.start;
        if off.rem_euclid(step) == 0 {
            // Aligned (the usual case): one contiguous copy.
            let first = off.div_euclid(step);
            let lo = (-first).clamp(0, n as i64) as usize;
            let src_lo = (first.max(0) as usize).min(s.values.len());
            let len = (n - lo).min(s.values.len() - src_lo);
            values[lo..lo + len].copy_from_slice(&s.values[src_lo..src_lo + len]);
        }
        let mut out = Series::new(s.name.clone(), from, until, step, values);
        out.path_expression.clone_from(&req.pattern);
        out.consolidation = s.consolidation;
        out.x_files_factor = s.x_files_factor;
        out
    }
}

impl Source for MemorySource {
    fn fetch(&self, reqs: &[FetchRequest]) -> Result<Vec<Vec<Series>>, EvalError> {
        for r in reqs {
            let min_step = self.series.iter().map(|s| s.step.max(1)).min().unwrap_or(1);
            if r.until.saturating_sub(r.from) / min_step > crate::functions::MAX_POINTS {
                return Err(EvalError::Source {
                    pattern: r.pattern.clone(),
                    message: format!("window {}..{} has too many points", r.from, r.until),
                });
            }
        }
        reqs.iter()
            .map(|r| {
                let glob = GlobPattern::new(&r.pattern).map_err(|e| EvalError::Source {
                    pattern: r.pattern.clone(),
                    message: e.to_string(),
                })?;
                Ok(self
                    .series
                    .iter()
                    .filter(|s| crate::tags::path_matches(&r.pattern, &glob, &s.name))
                    .map(|s| Self::slice(s, r))
                    .collect())
            })
            .collect()
    }

    /// The series `pattern` matches and their steps (what [`MemorySource::fetch`] slices),
    /// for a window it does not refuse.
    fn shape(&self, pattern: &str, from: i64, until: i64) -> Option<Shape> {
        let min_step = self.series.iter().map(|s| s.step.max(1)).min().unwrap_or(1);
        if until.saturating_sub(from) / min_step > crate::functions::MAX_POINTS {
            return None;
        }
        let glob = GlobPattern::new(pattern).ok()?;
        let mut step = None;
        for s in self
            .series
            .iter()
            .filter(|s| crate::tags::path_matches(pattern, &glob, &s.name))
        {
            match step {
                None => step = Some(s.step.max(1)),
                Some(x) if x != s.step.max(1) => return None,
                Some(_) => {}
            }
        }
        Some(step.map_or(Shape::Empty, Shape::Step))
    }

    /// The largest step of the series `pattern` matches (what its series are sliced at).
    fn step_hint(&self, pattern: &str, _from: i64, _until: i64) -> Option<i64> {
        let glob = GlobPattern::new(pattern).ok()?;
        self.series
            .iter()
            .filter(|s| crate::tags::path_matches(pattern, &glob, &s.name))
            .map(|s| s.step.max(1))
            .max()
    }

    fn events(
        &self,
        from: i64,
        until: i64,
        tags: Option<&[String]>,
        limit: usize,
    ) -> Result<Vec<f64>, EvalError> {
        let times: Vec<f64> = self
            .events
            .iter()
            .filter(|(when, have)| {
                (from as f64..=until as f64).contains(when)
                    && tags.is_none_or(|want| {
                        want.iter().all(|t| have.split_whitespace().any(|h| h == t))
                    })
            })
            .map(|(when, _)| *when)
            .collect();
        if times.len() > limit {
            return Err(EvalError::Source {
                pattern: crate::functions::events::name(tags.unwrap_or(&["*".to_string()])),
                message: format!("more than {limit} events"),
            });
        }
        Ok(times)
    }

    fn find_tagged(&self, exprs: &[String]) -> Result<Vec<String>, EvalError> {
        let mut index = crate::tags::TagIndex::default();
        for s in &self.series {
            index.insert(s.name.as_str().into());
        }
        crate::tags::find_or_error(&index, exprs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &str) -> Expr {
        Expr::Path(p.into())
    }
    fn call(name: &str, args: Vec<Expr>) -> Expr {
        Expr::Call(Call {
            name: name.into(),
            args,
            kwargs: vec![],
        })
    }

    #[test]
    fn memory_source_matches_with_graphite_globs() {
        let src = MemorySource::new(
            ["a.b.c", "a.x.c", "a.b7", "a.yx"]
                .iter()
                .map(|n| Series::new(*n, 0, 10, 10, vec![Some(1.0)]))
                .collect(),
        );
        let names = |pat: &str| -> Vec<String> {
            let req = FetchRequest {
                pattern: pat.into(),
                from: 0,
                until: 10,
            };
            src.fetch(&[req]).unwrap()[0]
                .iter()
                .map(|s| s.name.clone())
                .collect()
        };
        assert_eq!(names("a.*.c"), ["a.b.c", "a.x.c"]);
        assert!(names("a.*").iter().all(|n| n.matches('.').count() == 1));
        assert_eq!(names("a.b[0-9]"), ["a.b7"]);
        assert!(names("a.b[!0-9]").is_empty());
        assert_eq!(names("a.{b,x}.c"), ["a.b.c", "a.x.c"]);
    }

    #[test]
    fn plan_widens_time_windows_and_dedups() {
        let e = call(
            "sumSeries",
            vec![
                path("a.*"),
                call("movingAverage", vec![path("a.*"), Expr::Str("5min".into())]),
                call("timeShift", vec![path("b"), Expr::Str("1d".into())]),
            ],
        );
        let p = plan(&e, 1000, 2000);
        let want = [
            ("a.*", 700, 2000),
            ("a.*", 1000, 2000),
            ("b", -85400, -84400),
            ("b", 1000, 2000),
        ];
        let got: Vec<(&str, i64, i64)> = p
            .iter()
            .map(|r| (r.pattern.as_str(), r.from, r.until))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn render_fetches_step_dependent_windows_in_a_second_round() {
        let src = MemorySource::new(vec![Series::new(
            "a.b",
            0,
            1000,
            10,
            (0..100).map(|i| Some(i as f64)).collect(),
        )]);
        let e = call("movingSum", vec![path("a.b"), Expr::Int(3)]);
        let out = render(&[e], 500, 600, 600, &src).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].name, "movingSum(a.b,3)");
        assert_eq!(out[0].start, 510);
        // graphite-web's window for the point at 510 is the 3 points 490, 500, 510.
        assert_eq!(out[0].values[0], Some(49.0 + 50.0 + 51.0));
        assert_eq!(out[0].values.len(), 10);
    }

    /// Counts the requests it serves.
    struct Counting(MemorySource, std::cell::RefCell<Vec<FetchRequest>>);
    impl Source for Counting {
        fn fetch(&self, reqs: &[FetchRequest]) -> Result<Vec<Vec<Series>>, EvalError> {
            self.1.borrow_mut().extend(reqs.iter().cloned());
            self.0.fetch(reqs)
        }
    }

    #[test]
    fn each_pattern_window_is_fetched_once() {
        let src = Counting(
            MemorySource::new(vec![Series::new("a.b", 0, 1000, 10, vec![Some(1.0); 100])]),
            Default::default(),
        );
        let e = call(
            "sumSeries",
            vec![
                call("movingSum", vec![path("a.b"), Expr::Int(3)]),
                call("movingAverage", vec![path("a.*"), Expr::Int(3)]),
                path("a.b"),
            ],
        );
        let out = render(&[e.clone(), e], 500, 600, 600, &src).unwrap();
        assert_eq!(out.len(), 2);
        let got = src.1.borrow();
        let mut dedup = got.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(
            got.len(),
            dedup.len(),
            "a request was fetched twice: {got:?}"
        );
        // the step-dependent windows were planned from the first fetch: 4 requests in all
        assert_eq!(got.len(), 4, "{got:?}");
        let data: Fetched = got
            .iter()
            .cloned()
            .zip(src.0.fetch(&got).unwrap())
            .collect();
        assert!(plan_with_steps(
            &call("movingSum", vec![path("a.b"), Expr::Int(3)]),
            500,
            600,
            &data
        )
        .iter()
        .any(|r| r.from == 470));
    }

    #[test]
    fn reads_beyond_the_plan_still_get_their_data() {
        // The generated target reads `a.*` again, beyond the plan.
        let src = Counting(
            MemorySource::new(vec![
                Series::new("a.x", 0, 100, 10, vec![Some(1.0); 10]),
                Series::new("a.y", 0, 100, 10, vec![Some(2.0); 10]),
            ]),
            Default::default(),
        );
        let e = crate::expr::parse("applyByNode(a.*,0,'sumSeries(%.*)')").unwrap();
        let out = render(&[e], 0, 90, 90, &src).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].name, "sumSeries(a.*)");
        assert_eq!(out[0].values, vec![Some(3.0); 9]);
        // Planned once, so moved into the first round; the re-read fetches it again.
        let got = src.1.borrow();
        assert_eq!(
            got.iter().filter(|r| r.pattern == "a.*").count(),
            2,
            "{got:?}"
        );
    }

    #[test]
    fn nested_step_windows_fetch_once() {
        let src = Counting(
            MemorySource::new(
                (0..4)
                    .map(|i| Series::new(format!("s.h{i}.b.c"), 0, 1000, 10, vec![Some(1.0); 100]))
                    .collect(),
            ),
            Default::default(),
        );
        let e = crate::expr::parse(
            "aliasByNode(movingMedian(groupByNode(s.*.b.c,2,'averageSeries'),10),0)",
        )
        .unwrap();
        render(&[e], 500, 900, 900, &src).unwrap();
        assert_eq!(src.1.borrow().len(), 2, "{:?}", src.1.borrow());
    }

    /// Counts its `fetch` calls and knows every step (10 s) without fetching.
    struct Hinting(MemorySource, std::cell::RefCell<Vec<Vec<FetchRequest>>>);
    impl Source for Hinting {
        fn fetch(&self, reqs: &[FetchRequest]) -> Result<Vec<Vec<Series>>, EvalError> {
            self.1.borrow_mut().push(reqs.to_vec());
            self.0.fetch(reqs)
        }
        fn step_hint(&self, _: &str, _: i64, _: i64) -> Option<i64> {
            Some(10)
        }
    }

    #[test]
    fn step_hints_put_base_and_widened_windows_in_one_fetch() {
        let series: Vec<Series> = (0..4)
            .map(|i| {
                let v = (0..100).map(|j| Some((i * j % 7) as f64)).collect();
                Series::new(format!("s.h{i}.b.c"), 0, 1000, 10, v)
            })
            .collect();
        let e = crate::expr::parse(
            "aliasByNode(movingMedian(groupByNode(s.*.b.c,2,'averageSeries'),10),0)",
        )
        .unwrap();
        let src = Hinting(MemorySource::new(series.clone()), Default::default());
        let got = render(std::slice::from_ref(&e), 500, 900, 900, &src).unwrap();
        let calls = src.1.borrow();
        assert_eq!(calls.len(), 1, "{calls:?}");
        let windows: Vec<(i64, i64)> = calls[0].iter().map(|r| (r.from, r.until)).collect();
        assert_eq!(windows, [(400, 900), (500, 900)]);
        // The same answer as without hints.
        let plain = render(&[e], 500, 900, 900, &MemorySource::new(series)).unwrap();
        assert_eq!(got, plain);
    }

    /// A source recording its fetches, answering [`Source::shape`] as `MemorySource` does.
    struct Shaping(MemorySource, std::cell::RefCell<Vec<FetchRequest>>);
    impl Source for Shaping {
        fn fetch(&self, reqs: &[FetchRequest]) -> Result<Vec<Vec<Series>>, EvalError> {
            self.1.borrow_mut().extend_from_slice(reqs);
            self.0.fetch(reqs)
        }
        fn step_hint(&self, p: &str, f: i64, u: i64) -> Option<i64> {
            self.0.step_hint(p, f, u)
        }
        fn shape(&self, p: &str, f: i64, u: i64) -> Option<Shape> {
            self.0.shape(p, f, u)
        }
    }

    #[test]
    fn moving_windows_read_their_argument_only_over_their_own_window_when_its_shape_is_known() {
        let series = |steps: &[i64]| -> Vec<Series> {
            steps
                .iter()
                .enumerate()
                .map(|(i, &step)| {
                    let v = (0..1000 / step)
                        .map(|j| (j % 5 != 1).then_some((i as i64 * j % 7) as f64))
                        .collect();
                    Series::new(format!("s.h{i}.b.c"), 0, 1000, step, v)
                })
                .collect()
        };
        for (target, steps, base_read) in [
            (
                "aliasByNode(movingMedian(groupByNode(s.*.b.c,2,'averageSeries'),10),0)",
                &[10, 10, 10][..],
                false,
            ),
            ("movingAverage(s.h1.b.c,'1min')", &[10, 10], false),
            (
                "movingSum(groupByNodes(s.*.b.c,'sum',1),5)",
                &[10, 10],
                false,
            ),
            ("exponentialMovingAverage(s.*.b.c,4)", &[10, 10], false),
            ("movingMax(nothing.*,3)", &[10], false),
            // Mixed steps: the groups' LCM steps need the data.
            (
                "movingMedian(groupByNode(s.*.b.c,2,'sum'),10)",
                &[10, 20],
                true,
            ),
            // asPercent as a callback may make several series of a group.
            (
                "movingMin(groupByNode(s.*.b.c,1,'asPercent'),3)",
                &[10, 10],
                true,
            ),
            // A function without a shape rule.
            ("movingMin(scale(s.*.b.c,2),3)", &[10, 10], true),
        ] {
            let e = crate::expr::parse(target).unwrap();
            let src = Shaping(MemorySource::new(series(steps)), Default::default());
            let got = render(std::slice::from_ref(&e), 500, 900, 900, &src);
            let base = src
                .1
                .borrow()
                .iter()
                .any(|r| (r.from, r.until) == (500, 900));
            assert_eq!(base, base_read, "{target}: {:?}", src.1.borrow());
            // The same answer as evaluating the argument over the request window too.
            let plain = render(
                &[e],
                500,
                900,
                900,
                &Hinting(MemorySource::new(series(steps)), Default::default()),
            );
            assert_eq!(got, plain, "{target}");
        }
    }

    #[test]
    fn request_window_swaps_and_rejects_empty() {
        assert_eq!(request_window(10, 20), Ok((10, 20)));
        assert_eq!(request_window(20, 10), Ok((10, 20)));
        assert_eq!(request_window(5, 5), Err(EvalError::EmptyTimeRange(5)));
    }

    #[test]
    fn nested_re_evaluation_is_memoised() {
        // 2^40 evaluations without the memo; a few thousand points with it.
        let src = MemorySource::new(vec![Series::new("a.b", 0, 1000, 10, vec![Some(1.0); 100])]);
        for (wrap, depth) in [
            ("movingAverage({},1)", 40),
            ("movingSum({},'20s')", 40),
            ("holtWintersForecast({},'10s')", 30),
            ("timeStack({},'10s',0,2)", 10), // 2^10 series: the output, not re-evaluation
        ] {
            let target = (0..depth).fold("a.b".to_string(), |t, _| wrap.replace("{}", &t));
            let budget = Budget::new().with_max_points(5_000_000);
            let e = crate::expr::parse(&target).unwrap();
            let out = render_with(&[e], 500, 900, 900, &src, &budget);
            assert!(out.is_ok(), "{wrap}: {out:?}");
            assert!(
                budget.high_water() < 5_000_000,
                "{wrap}: {}",
                budget.high_water()
            );
        }
    }

    #[test]
    fn generators_are_refused_before_they_allocate() {
        let budget = Budget::new().with_max_points(1000);
        let e = crate::expr::parse("time('t',1)").unwrap();
        let err =
            render_with(&[e], 0, 1 << 40, 1 << 40, &MemorySource::default(), &budget).unwrap_err();
        assert_eq!(
            err.to_string(),
            "time: this request would hold more than 1000 points (limit max_points_per_request)"
        );
        assert_eq!(budget.high_water(), 0);
    }

    #[test]
    fn reversed_windows_are_client_errors() {
        let src = MemorySource::new(vec![Series::new("a.b", 0, 1000, 10, vec![Some(1.0); 100])]);
        let e = crate::expr::parse("holtWintersForecast(a.b,'-30d')").unwrap();
        let err = render(&[e], 500, 900, 900, &src).unwrap_err();
        assert!(matches!(err, EvalError::Input { .. }), "{err:?}");
        // graphite-web answers len + 5 nulls for a negative window; a huge one is over budget
        let e = crate::expr::parse("movingAverage(a.b,-5)").unwrap();
        assert_eq!(
            render(&[e], 500, 900, 900, &src).unwrap()[0].values.len(),
            40
        );
        let e = crate::expr::parse("movingAverage(constantLine(1),-1000000000)").unwrap();
        let err = render(&[e], 500, 900, 900, &src).unwrap_err();
        assert!(err.is_budget(), "{err:?}");
        let e = crate::expr::parse("timeShift(a.b,'-30d')").unwrap();
        assert!(render(&[e], 500, 900, 900, &src).is_ok());
    }

    #[test]
    fn every_use_of_fetched_data_is_charged() {
        // One fetch, 200 uses: 200 copies held at once.
        let src = MemorySource::new(vec![Series::new("a.b", 0, 1000, 10, vec![Some(1.0); 100])]);
        let one = crate::expr::parse("a.*").unwrap();
        let budget = Budget::new();
        render_with(std::slice::from_ref(&one), 0, 1000, 1000, &src, &budget).unwrap();
        let per_use = budget.high_water();
        let targets = vec![one; 200];
        let budget = Budget::new().with_max_points(100 * per_use);
        let err = render_with(&targets, 0, 1000, 1000, &src, &budget).unwrap_err();
        assert!(err.to_string().contains("max_points_per_request"), "{err}");
        let group = format!("group({})", vec!["a.*"; 200].join(","));
        let e = crate::expr::parse(&group).unwrap();
        let err = render_with(&[e], 0, 1000, 1000, &src, &budget).unwrap_err();
        assert!(err.to_string().contains("max_points_per_request"), "{err}");
    }

    #[test]
    fn names_echoing_a_string_argument_are_charged_before_they_are_built() {
        let src = MemorySource::new(
            (0..1000)
                .map(|i| Series::new(format!("a.s{i}"), 0, 100, 10, vec![Some(1.0); 10]))
                .collect(),
        );
        let budget = Budget::new().with_max_name_bytes(1 << 20);
        let e = crate::expr::parse(&format!("alias(a.*,'{}')", "x".repeat(8000))).unwrap();
        let err = render_with(&[e], 0, 100, 100, &src, &budget).unwrap_err();
        assert!(
            err.to_string().contains("max_name_bytes_per_request"),
            "{err}"
        );
        assert!(budget.name_bytes() < 1 << 20);
    }

    #[test]
    fn a_past_deadline_stops_a_render() {
        let src = MemorySource::new(vec![Series::new("a.b", 0, 1000, 10, vec![Some(1.0); 100])]);
        let budget = Budget::new().with_deadline(std::time::Instant::now());
        let e = crate::expr::parse("movingMedian(a.b,5)").unwrap();
        let err = render_with(&[e], 500, 900, 900, &src, &budget).unwrap_err();
        assert!(matches!(err, EvalError::DeadlineExceeded { .. }), "{err:?}");
        assert!(err.to_string().contains("render_timeout"), "{err}");
    }

    #[test]
    fn cancel_stops_a_render() {
        let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let budget = Budget::new().with_cancel(flag);
        let e = crate::expr::parse("sumSeries(a.*)").unwrap();
        let src = MemorySource::new(vec![Series::new("a.b", 0, 1000, 10, vec![Some(1.0); 100])]);
        let err = render_with(&[e], 500, 900, 900, &src, &budget).unwrap_err();
        assert_eq!(err, EvalError::Cancelled);
        assert!(err.is_budget());
    }

    #[test]
    fn unknown_function_is_an_error() {
        let src = MemorySource::default();
        let err = render(&[call("nope", vec![path("a")])], 0, 60, 60, &src).unwrap_err();
        assert_eq!(err, EvalError::UnknownFunction("nope".into()));
        assert!(err.to_string().contains("nope"));
    }
}
