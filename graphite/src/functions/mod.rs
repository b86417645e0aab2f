//! The function library: the [`FUNCTIONS`] registry and the shared pieces every function uses.
//!
//! Each function is one [`Function`] value next to its implementation (one file per family:
//! `aggregate.rs`, `transform.rs`, `moving.rs`, ...). Its typed [`Param`] signature drives both
//! argument checking (graphite-web's `validateParams`, with its error wording) and the
//! `/functions` description. Adding a function = one fn + one `Function` const + one line in
//! [`FUNCTIONS`] + one test row.
//!
//! Behaviour follows graphite-web 1.1.10 `webapp/graphite/render/functions.py` (Apache-2.0).

use crate::eval::{Cx, EvalError};
use crate::expr::ast::{Call, Expr};
use crate::expr::parse::{ParseError, Spans};
use crate::series::{py_float, Series};

pub mod aggregate;
pub mod alias;
pub mod describe;
pub mod dynamic;
pub mod filter;
pub mod graph;
pub mod holtwinters;
pub mod moving;
pub mod sort;
pub mod special;
pub mod summarize;
pub mod tags;
pub mod timed;
pub mod transform;

#[cfg(test)]
pub(crate) mod testkit;
#[cfg(test)]
mod vectors;

/// Every function carbide evaluates, in graphite-web's spelling.
pub static FUNCTIONS: &[&Function] = &[
    &aggregate::AGGREGATE,
    &aggregate::SUM_SERIES,
    &aggregate::SUM,
    &aggregate::AVERAGE_SERIES,
    &aggregate::AVG,
    &aggregate::MAX_SERIES,
    &aggregate::MIN_SERIES,
    &aggregate::DIFF_SERIES,
    &aggregate::MULTIPLY_SERIES,
    &aggregate::COUNT_SERIES,
    &aggregate::STDDEV_SERIES,
    &aggregate::RANGE_OF_SERIES,
    &aggregate::DIVIDE_SERIES,
    &aggregate::DIVIDE_SERIES_LISTS,
    &aggregate::AS_PERCENT,
    &aggregate::PCT,
    &aggregate::GROUP,
    &aggregate::SUM_SERIES_WITH_WILDCARDS,
    &aggregate::AVERAGE_SERIES_WITH_WILDCARDS,
    &aggregate::MULTIPLY_SERIES_WITH_WILDCARDS,
    &aggregate::AGGREGATE_WITH_WILDCARDS,
    &aggregate::GROUP_BY_NODE,
    &aggregate::GROUP_BY_NODES,
    &aggregate::PERCENTILE_OF_SERIES,
    &aggregate::SUM_SERIES_LISTS,
    &aggregate::DIFF_SERIES_LISTS,
    &aggregate::MULTIPLY_SERIES_LISTS,
    &aggregate::AGGREGATE_SERIES_LISTS,
    &aggregate::POW_SERIES,
    &aggregate::WEIGHTED_AVERAGE,
    &transform::SCALE,
    &transform::SCALE_TO_SECONDS,
    &transform::OFFSET,
    &transform::ABSOLUTE,
    &transform::INVERT,
    &transform::POW,
    &transform::SQUARE_ROOT,
    &transform::LOGARITHM,
    &transform::LOG,
    &transform::DERIVATIVE,
    &transform::NON_NEGATIVE_DERIVATIVE,
    &transform::PER_SECOND,
    &transform::INTEGRAL,
    &transform::KEEP_LAST_VALUE,
    &transform::TRANSFORM_NULL,
    &transform::IS_NON_NULL,
    &transform::CHANGED,
    &transform::OFFSET_TO_ZERO,
    &transform::DELAY,
    &transform::TIME_SHIFT,
    &transform::INTERPOLATE,
    &transform::ROUND,
    &transform::EXP,
    &transform::ADD,
    &transform::SIGMOID,
    &transform::LOGIT,
    &transform::MIN_MAX,
    &transform::INTEGRAL_BY_INTERVAL,
    &transform::TIME_STACK,
    &alias::ALIAS,
    &alias::ALIAS_BY_NODE,
    &alias::ALIAS_BY_METRIC,
    &alias::ALIAS_SUB,
    &alias::LEGEND_VALUE,
    &alias::ALIAS_BY_TAGS,
    &tags::SERIES_BY_TAG,
    &tags::GROUP_BY_TAGS,
    &alias::SUBSTR,
    &alias::UPPER,
    &alias::LOWER,
    &moving::MOVING_WINDOW,
    &moving::MOVING_AVERAGE,
    &moving::MOVING_MEDIAN,
    &moving::MOVING_SUM,
    &moving::MOVING_MIN,
    &moving::MOVING_MAX,
    &moving::EXPONENTIAL_MOVING_AVERAGE,
    &moving::STDEV,
    &summarize::SUMMARIZE,
    &summarize::HITCOUNT,
    &summarize::SMART_SUMMARIZE,
    &summarize::N_PERCENTILE,
    &summarize::COMPRESS_PERIODIC_GAPS,
    &filter::REMOVE_BELOW_VALUE,
    &filter::REMOVE_ABOVE_VALUE,
    &filter::REMOVE_BELOW_PERCENTILE,
    &filter::REMOVE_ABOVE_PERCENTILE,
    &filter::FILTER_SERIES,
    &filter::HIGHEST,
    &filter::LOWEST,
    &filter::HIGHEST_CURRENT,
    &filter::HIGHEST_AVERAGE,
    &filter::HIGHEST_MAX,
    &filter::LOWEST_CURRENT,
    &filter::LOWEST_AVERAGE,
    &filter::CURRENT_ABOVE,
    &filter::CURRENT_BELOW,
    &filter::AVERAGE_ABOVE,
    &filter::AVERAGE_BELOW,
    &filter::MAXIMUM_ABOVE,
    &filter::MAXIMUM_BELOW,
    &filter::MINIMUM_ABOVE,
    &filter::MINIMUM_BELOW,
    &filter::LIMIT,
    &filter::MOST_DEVIANT,
    &filter::EXCLUDE,
    &filter::GREP,
    &filter::REMOVE_EMPTY_SERIES,
    &filter::AVERAGE_OUTSIDE_PERCENTILE,
    &filter::REMOVE_BETWEEN_PERCENTILE,
    &filter::UNIQUE,
    &filter::FALLBACK_SERIES,
    &sort::SORT_BY,
    &sort::SORT_BY_MAXIMA,
    &sort::SORT_BY_MINIMA,
    &sort::SORT_BY_NAME,
    &sort::SORT_BY_TOTAL,
    &special::CONSTANT_LINE,
    &special::THRESHOLD,
    &special::CONSOLIDATE_BY,
    &special::CUMULATIVE,
    &special::SET_X_FILES_FACTOR,
    &special::XFF,
    &special::IDENTITY,
    &special::AGGREGATE_LINE,
    &special::SIN,
    &special::SIN_FUNCTION,
    &special::TIME,
    &special::TIME_FUNCTION,
    &holtwinters::HOLT_WINTERS_FORECAST,
    &holtwinters::HOLT_WINTERS_CONFIDENCE_BANDS,
    &holtwinters::HOLT_WINTERS_ABERRATION,
    &holtwinters::HOLT_WINTERS_CONFIDENCE_AREA,
    &graph::COLOR,
    &graph::LINE_WIDTH,
    &graph::DASHED,
    &graph::ALPHA,
    &graph::SECOND_Y_AXIS,
    &graph::DRAW_AS_INFINITE,
    &graph::STACKED,
    &graph::AREA_BETWEEN,
    &alias::CACTI_STYLE,
    &dynamic::APPLY_BY_NODE,
    &dynamic::ALIAS_QUERY,
    &dynamic::USE_SERIES_ABOVE,
    &dynamic::MAP_SERIES,
    &dynamic::MAP,
    &dynamic::REDUCE_SERIES,
    &dynamic::REDUCE,
    &timed::TIME_SLICE,
    &timed::LINEAR_REGRESSION,
    &timed::VERTICAL_LINE,
];

/// The registry entry named `name`.
pub fn lookup(name: &str) -> Option<&'static Function> {
    FUNCTIONS.iter().copied().find(|f| f.name == name)
}

/// The first function call in `expr` (depth first) that is not in [`FUNCTIONS`], so a
/// config check can reject `sumSeriez(...)` without evaluating anything.
pub fn unknown_function(expr: &Expr) -> Option<&str> {
    let Expr::Call(call) = expr else {
        return None;
    };
    if lookup(&call.name).is_none() {
        return Some(&call.name);
    }
    call.args
        .iter()
        .chain(call.kwargs.iter().map(|(_, v)| v))
        .find_map(unknown_function)
}

/// Which part of a call an argument error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Blame {
    /// The call as a whole (a missing parameter).
    Call,
    /// The positional argument at this index.
    Arg(usize),
    /// The keyword argument at this index.
    Kwarg(usize),
}

/// The first call in `expr` (depth first, arguments before the call) whose arguments do not
/// fit its function's signature — arity, types, options — as evaluation would find it:
/// [`Args::validate`] runs over the literal arguments, with every path or call argument
/// standing for a series list (its contents are unknown before fetching). Returns the byte
/// offset to blame (from `spans`, see [`crate::expr::parse::parse_spanned`]) and graphite-web's
/// message. Unknown functions are skipped (see [`unknown_function`]).
pub fn signature_error(expr: &Expr, spans: &Spans) -> Option<(usize, String)> {
    let Expr::Call(call) = expr else {
        return None;
    };
    let nested = call
        .args
        .iter()
        .zip(&spans.args)
        .chain(call.kwargs.iter().map(|(_, v)| v).zip(&spans.kwargs))
        .find_map(|(e, s)| signature_error(e, s));
    if nested.is_some() {
        return nested;
    }
    let func = lookup(&call.name)?;
    let static_value = |e: &Expr| match e {
        Expr::Path(_) | Expr::Call(_) | Expr::SeriesByTag { .. } => Value::Series(Vec::new()),
        Expr::Int(i) => Value::Int(*i),
        Expr::Float(f) => Value::Float(*f),
        Expr::Str(s) => Value::Str(s.clone()),
        Expr::Bool(b) => Value::Bool(*b),
        Expr::None => Value::None,
    };
    let args = call.args.iter().map(static_value).collect();
    let kwargs = call
        .kwargs
        .iter()
        .map(|(k, v)| (k.as_str(), static_value(v)))
        .collect();
    let (blame, err) = Args::validate_blaming(func, args, kwargs).err()?;
    let at = match blame {
        Blame::Call => spans.start,
        Blame::Arg(i) => spans.args.get(i).map_or(spans.start, |s| s.start),
        Blame::Kwarg(j) => spans.kwargs.get(j).map_or(spans.start, |s| s.start),
    };
    let message = match err {
        EvalError::Param(m) => m,
        other => other.to_string(),
    };
    Some((at, message))
}

/// Everything that can be known about a target without data: it parses, every function
/// exists, every call's arguments fit the signature. The error points into the target with
/// a caret (see [`ParseError`]'s display), so a config check can show it as is.
pub fn check_target(target: &str) -> Result<Expr, ParseError> {
    let (expr, spans) = crate::expr::parse::parse_spanned(target)?;
    if let Some((name, at)) = unknown_function_at(&expr, &spans) {
        return Err(ParseError::at_byte(
            target,
            at,
            format!("unknown function \"{name}\""),
        ));
    }
    if let Some((at, message)) = signature_error(&expr, &spans) {
        return Err(ParseError::at_byte(target, at, message));
    }
    Ok(expr)
}

/// [`unknown_function`] with where the call starts.
fn unknown_function_at<'e>(expr: &'e Expr, spans: &Spans) -> Option<(&'e str, usize)> {
    let Expr::Call(call) = expr else {
        return None;
    };
    if lookup(&call.name).is_none() {
        return Some((&call.name, spans.start));
    }
    call.args
        .iter()
        .zip(&spans.args)
        .chain(call.kwargs.iter().map(|(_, v)| v).zip(&spans.kwargs))
        .find_map(|(e, s)| unknown_function_at(e, s))
}

/// A function implementation: validated arguments in, series out.
pub type Impl = fn(&mut Cx<'_, '_>, Args) -> Result<Vec<Series>, EvalError>;

/// Extra windows over which a function re-evaluates its first argument, from the literal
/// arguments of its call, the window it is evaluated over, and (when data was already
/// fetched) the largest step of the series its first argument reads (used by
/// [`crate::eval::plan`] and [`crate::eval::plan_with_steps`]).
pub type WindowFn = fn(&Call, i64, i64, Option<i64>) -> Vec<(i64, i64)>;

/// One function of the target language.
pub struct Function {
    /// Name as written in targets.
    pub name: &'static str,
    /// graphite-web's group (`Combine`, `Transform`, ...), for `/functions`.
    pub group: &'static str,
    /// The signature, in order.
    pub params: &'static [Param],
    /// graphite-web's `aggregator` flag: usable as a `groupByNode` callback.
    pub aggregator: bool,
    /// Extra fetch windows of the first argument, if any.
    pub window: Option<WindowFn>,
    /// The implementation.
    pub run: Impl,
}

impl Function {
    /// A plain function (no aggregator flag, no window hook).
    pub const fn new(
        name: &'static str,
        group: &'static str,
        params: &'static [Param],
        run: Impl,
    ) -> Self {
        Self {
            name,
            group,
            params,
            aggregator: false,
            window: None,
            run,
        }
    }

    pub const fn aggregator(mut self) -> Self {
        self.aggregator = true;
        self
    }

    pub const fn window(mut self, w: WindowFn) -> Self {
        self.window = Some(w);
        self
    }
}

/// Parameter types, as graphite-web's `ParamTypes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    SeriesList,
    /// graphite-web's `seriesLists` (what `mapSeries` makes); carbide's are flat lists.
    SeriesLists,
    Int,
    Float,
    IntOrInf,
    Bool,
    Node,
    NodeOrTag,
    String,
    Interval,
    IntOrInterval,
    AggFunc,
    AggOrSeriesFunc,
    Any,
    Date,
    /// A tag name (graphite-web declares it and checks nothing).
    Tag,
}

impl ParamType {
    /// graphite-web's type name (used in errors and `/functions`).
    pub fn name(self) -> &'static str {
        match self {
            Self::SeriesList => "seriesList",
            Self::SeriesLists => "seriesLists",
            Self::Int => "integer",
            Self::Float => "float",
            Self::IntOrInf => "intOrInf",
            Self::Bool => "boolean",
            Self::Node => "node",
            Self::NodeOrTag => "nodeOrTag",
            Self::String => "string",
            Self::Interval => "interval",
            Self::IntOrInterval => "intOrInterval",
            Self::AggFunc => "aggFunc",
            Self::AggOrSeriesFunc => "aggOrSeriesFunc",
            Self::Any => "any",
            Self::Date => "date",
            Self::Tag => "tag",
        }
    }
}

/// A parameter's default value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Default {
    Int(i64),
    Float(f64),
    Str(&'static str),
    Bool(bool),
}

impl Default {
    fn value(self) -> Value {
        match self {
            Self::Int(i) => Value::Int(i),
            Self::Float(f) => Value::Float(f),
            Self::Str(s) => Value::Str(s.to_string()),
            Self::Bool(b) => Value::Bool(b),
        }
    }
}

/// One parameter of a [`Function`].
#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub name: &'static str,
    pub ty: ParamType,
    pub required: bool,
    /// Takes all remaining positional arguments.
    pub multiple: bool,
    pub default: Option<Default>,
    /// Allowed values (beyond the type's own, e.g. aggregation functions).
    pub options: &'static [&'static str],
}

/// An optional parameter.
pub const fn opt(name: &'static str, ty: ParamType) -> Param {
    Param {
        name,
        ty,
        required: false,
        multiple: false,
        default: None,
        options: &[],
    }
}

/// A required parameter.
pub const fn req(name: &'static str, ty: ParamType) -> Param {
    Param {
        required: true,
        ..opt(name, ty)
    }
}

impl Param {
    pub const fn multiple(mut self) -> Self {
        self.multiple = true;
        self
    }
    pub const fn default(mut self, d: Default) -> Self {
        self.default = Some(d);
        self
    }
    pub const fn options(mut self, o: &'static [&'static str]) -> Self {
        self.options = o;
        self
    }
}

/// The first parameter of nearly every function.
pub const SERIES: Param = req("seriesList", ParamType::SeriesList);

/// An evaluated argument.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Series(Vec<Series>),
    Int(i64),
    Float(f64),
    Str(String),
    Bool(bool),
    None,
}

impl Value {
    /// Python's `repr()` of the value, for error messages.
    pub fn describe(&self) -> String {
        match self {
            Self::Series(s) => format!("<seriesList of {} series>", s.len()),
            Self::Int(i) => i.to_string(),
            Self::Float(f) => py_float(*f),
            Self::Str(s) => format!("'{s}'"),
            Self::Bool(true) => "True".into(),
            Self::Bool(false) => "False".into(),
            Self::None => "None".into(),
        }
    }

    /// Python's `str()` of a scalar (how graphite-web puts arguments in names and tags).
    pub fn py_str(&self) -> String {
        match self {
            Self::Str(s) => s.clone(),
            other => other.describe(),
        }
    }

    fn as_f64(&self) -> Option<f64> {
        match self {
            Self::Int(i) => Some(*i as f64),
            Self::Float(f) => Some(*f),
            Self::Bool(b) => Some(f64::from(u8::from(*b))),
            Self::Str(s) => parse_py_float(s),
            _ => None,
        }
    }
}

fn parse_py_float(s: &str) -> Option<f64> {
    let t = s.trim().to_ascii_lowercase();
    match t.as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => Some(f64::INFINITY),
        "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
        "nan" | "+nan" | "-nan" => Some(f64::NAN),
        _ => t.parse().ok(),
    }
}

/// Validated arguments, one slot per parameter (a `multiple` parameter collects several).
#[derive(Debug, Default)]
pub struct Args {
    slots: Vec<Vec<Value>>,
}

impl Args {
    /// graphite-web's `validateParams`: positional arguments fill parameters in order (extra
    /// ones go to a trailing `multiple` parameter), keywords fill the rest; types are checked
    /// and converted, defaults applied.
    pub fn validate(
        func: &Function,
        args: Vec<Value>,
        kwargs: Vec<(&str, Value)>,
    ) -> Result<Self, EvalError> {
        Self::validate_blaming(func, args, kwargs).map_err(|(_, e)| e)
    }

    /// [`Args::validate`], also saying which argument is to blame.
    fn validate_blaming(
        func: &Function,
        args: Vec<Value>,
        kwargs: Vec<(&str, Value)>,
    ) -> Result<Self, (Blame, EvalError)> {
        let params = func.params;
        let fname = func.name;
        let too_many = || {
            EvalError::Param(format!(
                "Too many parameters specified for function \"{fname}\""
            ))
        };
        let n_args = args.len();
        if n_args + kwargs.len() > params.len() && !params.last().is_some_and(|p| p.multiple) {
            let blame = if n_args > params.len() {
                Blame::Arg(params.len())
            } else {
                Blame::Kwarg(params.len() - n_args)
            };
            return Err((blame, too_many()));
        }
        let mut slots: Vec<Vec<Value>> = vec![Vec::new(); params.len()];
        let mut given = vec![false; params.len()];
        for (i, a) in args.into_iter().enumerate() {
            let idx = i.min(params.len().saturating_sub(1));
            let Some(p) = params.get(idx) else {
                return Err((Blame::Arg(i), too_many()));
            };
            if idx < i && !p.multiple {
                return Err((Blame::Arg(i), too_many()));
            }
            given[idx] = true;
            if let Some(v) = check(fname, p, a).map_err(|e| (Blame::Arg(i), e))? {
                slots[idx].push(v);
            }
        }
        let mut unexpected = Vec::new();
        let mut first_unexpected = None;
        for (j, (k, v)) in kwargs.into_iter().enumerate() {
            match params.iter().position(|p| p.name == k) {
                Some(idx) if !given[idx] => {
                    given[idx] = true;
                    if let Some(v) =
                        check(fname, &params[idx], v).map_err(|e| (Blame::Kwarg(j), e))?
                    {
                        slots[idx].push(v);
                    }
                }
                _ => {
                    first_unexpected.get_or_insert(j);
                    unexpected.push(k.to_string());
                }
            }
        }
        for (i, p) in params.iter().enumerate() {
            if slots[i].is_empty() {
                if p.required && !given[i] {
                    return Err((
                        Blame::Call,
                        EvalError::Param(format!(
                            "Missing required parameter \"{}\" for function \"{fname}\"",
                            p.name
                        )),
                    ));
                }
                if let Some(d) = p.default {
                    slots[i].push(d.value());
                }
            }
        }
        if let Some(j) = first_unexpected {
            return Err((
                Blame::Kwarg(j),
                EvalError::Param(format!(
                    "Unexpected key word arguments: {}",
                    unexpected.join(", ")
                )),
            ));
        }
        Ok(Self { slots })
    }

    /// Arguments built directly (for functions calling each other).
    pub fn from_slots(slots: Vec<Vec<Value>>) -> Self {
        Self { slots }
    }

    /// How many series the arguments hold, and the bytes of their string arguments: a
    /// function that echoes its strings into every output name makes at most their product
    /// of new name bytes (what evaluation charges before calling it).
    pub fn echo_bound(&self) -> (u64, u64) {
        let (mut series, mut bytes) = (0u64, 0u64);
        for v in self.slots.iter().flatten() {
            match v {
                Value::Series(s) => series += s.len() as u64,
                Value::Str(t) => bytes += t.len() as u64,
                _ => {}
            }
        }
        (series, bytes)
    }

    /// The (first) value of parameter `i`.
    pub fn get(&self, i: usize) -> Option<&Value> {
        self.slots.get(i).and_then(|s| s.first())
    }

    /// All values of a `multiple` parameter.
    pub fn all(&self, i: usize) -> &[Value] {
        self.slots.get(i).map_or(&[], Vec::as_slice)
    }

    /// Takes the series list of parameter `i` (empty if absent).
    pub fn series(&mut self, i: usize) -> Vec<Series> {
        self.series_lists(i).into_iter().flatten().collect()
    }

    /// Takes every series list of a `multiple` parameter.
    pub fn series_lists(&mut self, i: usize) -> Vec<Vec<Series>> {
        let Some(slot) = self.slots.get_mut(i) else {
            return Vec::new();
        };
        std::mem::take(slot)
            .into_iter()
            .filter_map(|v| match v {
                Value::Series(s) => Some(s),
                _ => None,
            })
            .collect()
    }

    /// True when parameter `i` holds a series list.
    pub fn is_series(&self, i: usize) -> bool {
        matches!(self.get(i), Some(Value::Series(_)))
    }

    pub fn float(&self, i: usize) -> Option<f64> {
        self.get(i).and_then(Value::as_f64)
    }

    pub fn int(&self, i: usize) -> Option<i64> {
        match self.get(i)? {
            Value::Int(v) => Some(*v),
            Value::Float(f) => Some(*f as i64),
            _ => None,
        }
    }

    pub fn str(&self, i: usize) -> Option<&str> {
        match self.get(i)? {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn bool(&self, i: usize) -> Option<bool> {
        match self.get(i)? {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

fn invalid(fname: &str, p: &Param, v: &Value) -> EvalError {
    EvalError::Param(format!(
        "Invalid \"{}\" value specified for function \"{fname}\" parameter \"{}\": {}",
        p.ty.name(),
        p.name,
        v.describe()
    ))
}

/// Checks and converts one argument; `Ok(None)` when it is `None` (treated as not given).
fn check(fname: &str, p: &Param, v: Value) -> Result<Option<Value>, EvalError> {
    if v == Value::None {
        if p.required && p.default.is_none() {
            return Err(invalid(fname, p, &v));
        }
        return Ok(None);
    }
    if !p.options.is_empty() {
        let ok = match &v {
            Value::Str(s) => p.options.contains(&s.as_str()),
            Value::Bool(b) => p.options.contains(&if *b { "True" } else { "False" }),
            _ => false,
        };
        if !ok {
            return Err(EvalError::Param(format!(
                "Invalid option specified for function \"{fname}\" parameter \"{}\": {}",
                p.name,
                v.describe()
            )));
        }
    }
    use ParamType as T;
    let out = match p.ty {
        T::SeriesList | T::SeriesLists => match v {
            Value::Series(_) => v,
            _ => return Err(invalid(fname, p, &v)),
        },
        T::Float => match v.as_f64() {
            Some(f) if !matches!(v, Value::Series(_)) => Value::Float(f),
            _ => return Err(invalid(fname, p, &v)),
        },
        T::Int | T::Node => match &v {
            Value::Int(_) => v,
            Value::Bool(b) => Value::Int(i64::from(*b)),
            Value::Str(s) => match s.trim().parse::<i64>() {
                Ok(i) => Value::Int(i),
                Err(_) => return Err(invalid(fname, p, &v)),
            },
            _ => return Err(invalid(fname, p, &v)),
        },
        T::IntOrInf => match &v {
            Value::Int(_) => v,
            Value::Bool(b) => Value::Int(i64::from(*b)),
            _ => match v.as_f64() {
                Some(f) if f == f64::INFINITY => Value::Float(f),
                _ => return Err(invalid(fname, p, &v)),
            },
        },
        T::Bool => match &v {
            Value::Bool(_) => v,
            Value::Str(s) if s.eq_ignore_ascii_case("true") => Value::Bool(true),
            Value::Str(s) if s.eq_ignore_ascii_case("false") => Value::Bool(false),
            Value::Int(_) | Value::Float(_) => match v.as_f64() {
                Some(0.0) => Value::Bool(false),
                Some(1.0) => Value::Bool(true),
                _ => return Err(invalid(fname, p, &v)),
            },
            Value::Series(s) => Value::Bool(!s.is_empty()),
            _ => return Err(invalid(fname, p, &v)),
        },
        T::Interval => match &v {
            Value::Str(s) if parse_interval(s).is_some() => v,
            _ => return Err(invalid(fname, p, &v)),
        },
        T::IntOrInterval => match &v {
            Value::Int(_) => v,
            Value::Float(f) if f.fract() == 0.0 => Value::Int(*f as i64),
            Value::Str(s) if parse_interval(s).is_some() => v,
            _ => return Err(invalid(fname, p, &v)),
        },
        T::NodeOrTag => match &v {
            Value::Int(_) | Value::Str(_) => v,
            _ => return Err(invalid(fname, p, &v)),
        },
        T::String => match &v {
            Value::Str(_) => v,
            Value::Series(_) => return Err(invalid(fname, p, &v)),
            other => Value::Str(other.py_str()),
        },
        T::AggFunc => match &v {
            Value::Str(s) if AggFunc::parse(s).is_some() => v,
            Value::Str(_) => {
                return Err(EvalError::Param(format!(
                    "Invalid option specified for function \"{fname}\" parameter \"{}\": {}",
                    p.name,
                    v.describe()
                )))
            }
            _ => return Err(invalid(fname, p, &v)),
        },
        T::AggOrSeriesFunc => match &v {
            Value::Str(s)
                if AggFunc::parse(s).is_some() || lookup(s).is_some_and(|f| f.aggregator) =>
            {
                v
            }
            _ => return Err(invalid(fname, p, &v)),
        },
        T::Any | T::Date | T::Tag => v,
    };
    Ok(Some(out))
}

/// graphite-web's aggregation functions (`getAggFunc`), over rows with nulls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggFunc {
    Average,
    AvgZero,
    Median,
    Sum,
    Min,
    Max,
    Diff,
    Stddev,
    Count,
    Range,
    Multiply,
    Last,
}

impl AggFunc {
    /// Parses a name, its alias (`avg`, `total`, `rangeOf`, `current`) or its deprecated
    /// `xxxSeries` form.
    pub fn parse(name: &str) -> Option<Self> {
        let name = name.strip_suffix("Series").unwrap_or(name);
        Some(match name {
            "average" | "avg" => Self::Average,
            "avg_zero" => Self::AvgZero,
            "median" => Self::Median,
            "sum" | "total" => Self::Sum,
            "min" => Self::Min,
            "max" => Self::Max,
            "diff" => Self::Diff,
            "stddev" => Self::Stddev,
            "count" => Self::Count,
            "range" | "rangeOf" => Self::Range,
            "multiply" => Self::Multiply,
            "last" | "current" => Self::Last,
            _ => return None,
        })
    }

    /// Applies the function to a row (`safe.safeXxx` semantics: nulls skipped, `None` when
    /// nothing is left, `multiply` is null if any value is).
    pub fn apply(self, row: &[Option<f64>]) -> Option<f64> {
        let vals = || row.iter().filter_map(|v| *v);
        let count = vals().count();
        match self {
            Self::Count => Some(count as f64),
            Self::AvgZero => {
                if row.is_empty() {
                    None
                } else {
                    Some(row.iter().map(|v| v.unwrap_or(0.0)).sum::<f64>() / row.len() as f64)
                }
            }
            Self::Multiply => {
                if row.is_empty() || row.iter().any(Option::is_none) {
                    None
                } else {
                    Some(vals().product())
                }
            }
            _ if count == 0 => None,
            Self::Average => Some(py_sum(vals()) / count as f64),
            Self::Sum => Some(py_sum(vals())),
            Self::Min => vals().reduce(f64::min),
            Self::Max => vals().reduce(f64::max),
            Self::Last => vals().next_back(),
            Self::Diff => {
                let mut it = vals();
                let first = it.next()?;
                Some(py_sum(std::iter::once(first).chain(it.map(|x| -x))))
            }
            Self::Range => Some(vals().reduce(f64::max)? - vals().reduce(f64::min)?),
            Self::Median => {
                let mut v: Vec<f64> = vals().collect();
                v.sort_by(f64::total_cmp);
                let mid = v.len() / 2;
                Some(if v.len() & 1 == 0 {
                    (v[mid - 1] + v[mid]) / 2.0
                } else {
                    v[mid]
                })
            }
            Self::Stddev => {
                let avg = py_sum(vals()) / count as f64;
                let ss = py_sum(vals().map(|x| (x - avg) * (x - avg)));
                Some((ss / count as f64).sqrt())
            }
        }
    }
}

/// Python's `sum()`: left to right from 0 (so results match to the last bit).
pub fn py_sum(it: impl Iterator<Item = f64>) -> f64 {
    it.fold(0.0, |a, b| a + b)
}

/// graphite-web's `parseTimeOffset` in seconds (see [`crate::attime::parse_time_offset`]),
/// for interval arguments; `None` for an invalid or empty interval.
pub fn parse_interval(s: &str) -> Option<i64> {
    if s.is_empty() {
        return None;
    }
    crate::attime::parse_time_offset(s).ok()
}

/// A literal argument of a call (positional `idx` or keyword `name`), for window hooks.
pub fn raw_arg<'a>(call: &'a Call, idx: usize, name: &str) -> Option<&'a Expr> {
    call.args
        .get(idx)
        .or_else(|| call.kwargs.iter().find(|(k, _)| k == name).map(|(_, v)| v))
}

/// graphite-web's `getNodeOrTag`: node `n` of the name (tags split off, negative counts from
/// the end), or, for a string or out-of-range node, the tag of that name (`""` if none).
pub fn node_or_tag(series: &Series, n: &Value, path: Option<&str>) -> String {
    if let Value::Int(i) = n {
        let name = path.unwrap_or(&series.name);
        let base = name.split(';').next().unwrap_or(name);
        let nodes: Vec<&str> = base.split('.').collect();
        let idx = if *i < 0 { nodes.len() as i64 + i } else { *i };
        if idx >= 0 && (idx as usize) < nodes.len() {
            return nodes[idx as usize].to_string();
        }
    }
    series.tags.get(&n.py_str()).cloned().unwrap_or_default()
}

/// graphite-web's `aggKey`: the nodes/tags joined with `.`; a name that looks like a function
/// call is first reduced to its first path expression.
pub fn agg_key(series: &Series, nodes: &[Value]) -> String {
    let first = if series.name.ends_with(')') {
        first_path_expression(&series.name)
    } else {
        None
    };
    nodes
        .iter()
        .map(|n| node_or_tag(series, n, first.as_deref()))
        .collect::<Vec<_>>()
        .join(".")
}

/// The first path expression inside a function-call name: `f(g(a.b,c),2)` → `a.b`
/// (graphite-web's `_getFirstPathExpression`).
pub fn first_path_expression(name: &str) -> Option<String> {
    let mut s = name.trim();
    loop {
        let Some(open) = s.find('(') else {
            let first = s.as_bytes().first()?;
            if matches!(first, b'"' | b'\'') || s.parse::<f64>().is_ok() {
                return None;
            }
            return Some(s.to_string());
        };
        let inner = s[open + 1..].strip_suffix(')')?;
        // first top-level argument
        let mut depth = 0i32;
        let mut quote = None;
        let mut end = inner.len();
        for (i, c) in inner.char_indices() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '"' | '\'') => quote = Some(c),
                (None, '(' | '{') => depth += 1,
                (None, ')' | '}') => depth -= 1,
                (None, ',') if depth == 0 => {
                    end = i;
                    break;
                }
                _ => {}
            }
        }
        s = inner[..end].trim();
    }
}

/// graphite-web's `formatPathExpressions`: distinct path expressions in order, comma-joined.
pub fn format_path_expressions<'a>(series: impl IntoIterator<Item = &'a Series>) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for s in series {
        if !seen.contains(&s.path_expression.as_str()) {
            seen.push(&s.path_expression);
        }
    }
    seen.join(",")
}

/// The longest integer `movingX` window the planner widens a fetch for, and the most
/// points [`crate::eval::MemorySource`] slices for one request. What evaluation itself may
/// hold is the request's [`crate::budget::Budget`].
pub const MAX_POINTS: i64 = 10_000_000;

/// graphite-web's `xff(nonNull, total, xFilesFactor)`.
pub fn xff(non_null: usize, total: f64, x_files_factor: Option<f64>) -> bool {
    if non_null == 0 || total == 0.0 {
        return false;
    }
    non_null as f64 / total >= x_files_factor.unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_names_are_unique_and_signatures_sane() {
        let mut names: Vec<&str> = FUNCTIONS.iter().map(|f| f.name).collect();
        names.sort_unstable();
        let n = names.len();
        names.dedup();
        assert_eq!(names.len(), n, "duplicate function names");
        for f in FUNCTIONS {
            for (i, p) in f.params.iter().enumerate() {
                assert!(
                    !p.multiple || i + 1 == f.params.len(),
                    "{}: multiple param not last",
                    f.name
                );
            }
        }
        assert!(n >= 80, "only {n} functions");
    }

    #[test]
    fn check_target_blames_the_bad_argument() {
        // (target, error message, the text the caret points at) — None: the target is fine.
        let cases: &[(&str, Option<(&str, &str)>)] = &[
            ("movingAverage(a.b,5)", None),
            ("movingAverage(a.b,'5min')", None),
            ("aliasByNode(movingMedian(groupByNode(servers.*.haproxy.*.*.check_duration,3,\"averageSeries\"),10),0)", None),
            ("summarize(a.b,'1h',func='max',alignToFrom=true)", None),
            ("a.b|scale(2)|alias('x')", None),
            ("sumSeries(a.*,b.*,c.*)", None),
            ("highest(a.*,2,'max')", None),
            ("template(scale(a.$x,$n),x='b',n=2)", None),
            ("groupByTags(seriesByTag('name=cpu','dc=~x.*'),'sum','host')", None),
            ("scale(seriesByTag('name=cpu'),'two')", Some(("Invalid \"float\" value specified for function \"scale\" parameter \"factor\": 'two'", "'two')"))),
            ("movingAverage(a.b, \"x\")", Some(("Invalid \"intOrInterval\" value specified for function \"movingAverage\" parameter \"windowSize\": 'x'", "\"x\")"))),
            ("scale(a.b)", Some(("Missing required parameter \"factor\" for function \"scale\"", "scale(a.b)"))),
            ("alias(scale(a.b,'two'),'x')", Some(("Invalid \"float\" value specified for function \"scale\" parameter \"factor\": 'two'", "'two'),'x')"))),
            ("scale(a.b,2,3)", Some(("Too many parameters specified for function \"scale\"", "3)"))),
            ("aliasByNode(a.b,x.y)", Some(("Invalid \"nodeOrTag\" value specified for function \"aliasByNode\" parameter \"nodes\": <seriesList of 0 series>", "x.y)"))),
            ("summarize(a.b,'1h',func='nosuch')", Some(("Invalid option specified for function \"summarize\" parameter \"func\": 'nosuch'", "'nosuch')"))),
            ("summarize(a.b,'1h',fn='max')", Some(("Unexpected key word arguments: fn", "'max')"))),
            ("sumSeries(a.b,3)", Some(("Invalid \"seriesList\" value specified for function \"sumSeries\" parameter \"seriesLists\": 3", "3)"))),
            ("a.b|movingAverage(None)", Some(("Invalid \"intOrInterval\" value specified for function \"movingAverage\" parameter \"windowSize\": None", "None)"))),
            ("scale(sumSeriez(a.*),2)", Some(("unknown function \"sumSeriez\"", "sumSeriez(a.*),2)"))),
        ];
        for (target, want) in cases {
            let got = check_target(target);
            match (want, got) {
                (None, Ok(_)) => {}
                (None, Err(e)) => panic!("{target}: {e}"),
                (Some((msg, _)), Ok(_)) => panic!("{target}: accepted, wanted {msg}"),
                (Some((msg, at)), Err(e)) => {
                    assert_eq!(e.message(), *msg, "{target}");
                    let rest: String = target.chars().skip(e.column() - 1).collect();
                    assert_eq!(rest, *at, "{target}: caret at column {}\n{e}", e.column());
                }
            }
        }
    }

    #[test]
    fn check_target_agrees_with_evaluation() {
        // Whatever check_target rejects, evaluation rejects with the same message.
        for target in [
            "movingAverage(a.b,'x')",
            "scale(a.b)",
            "scale(a.b,1,2)",
            "summarize(a.b,'1h',fn='max')",
        ] {
            let static_msg = check_target(target).unwrap_err().message().to_string();
            let expr = crate::expr::parse::parse(target).unwrap();
            let fetched = crate::eval::Fetched::default();
            let budget = crate::eval::Budget::new();
            let mut ctx = crate::eval::Context::new(0, 60, 60, &fetched, &budget);
            let err = ctx.eval(&expr, 0, 60).unwrap_err();
            assert_eq!(err.to_string(), static_msg, "{target}");
        }
    }

    #[test]
    fn intervals_parse_like_graphite_web() {
        assert_eq!(parse_interval("5min"), Some(300));
        assert_eq!(parse_interval("-1h30min"), Some(-5400));
        assert_eq!(parse_interval("1d"), Some(86400));
        assert_eq!(parse_interval("2weeks"), Some(1209600));
        assert_eq!(parse_interval("1mon"), Some(2592000));
        assert_eq!(parse_interval("1y"), Some(31536000));
        assert_eq!(parse_interval("10s"), Some(10));
        assert_eq!(parse_interval("m"), None);
        assert_eq!(parse_interval(""), None);
    }

    #[test]
    fn agg_funcs_follow_safe_semantics() {
        let row = [Some(10.0), None, Some(5.0), None];
        assert_eq!(AggFunc::Sum.apply(&row), Some(15.0));
        assert_eq!(AggFunc::Diff.apply(&row), Some(5.0));
        assert_eq!(AggFunc::Average.apply(&row), Some(7.5));
        assert_eq!(AggFunc::AvgZero.apply(&row), Some(3.75));
        assert_eq!(AggFunc::Count.apply(&row), Some(2.0));
        assert_eq!(AggFunc::Multiply.apply(&row), None);
        assert_eq!(AggFunc::Range.apply(&row), Some(5.0));
        assert_eq!(AggFunc::Last.apply(&row), Some(5.0));
        assert_eq!(
            AggFunc::Median.apply(&[Some(1.0), Some(3.0), Some(2.0), Some(10.0)]),
            Some(2.5)
        );
        assert_eq!(AggFunc::Sum.apply(&[None, None]), None);
        assert_eq!(AggFunc::parse("sumSeries"), Some(AggFunc::Sum));
        assert_eq!(AggFunc::parse("nope"), None);
    }

    #[test]
    fn first_path_expression_digs_into_first_args() {
        assert_eq!(
            first_path_expression("f(g(a.b,c),2)").as_deref(),
            Some("a.b")
        );
        assert_eq!(
            first_path_expression("sumSeries(a.{b,c}.d)").as_deref(),
            Some("a.{b,c}.d")
        );
        assert_eq!(first_path_expression("constantLine(5)"), None);
    }
}
