//! Signatures and arguments: a [`Param`] list is a function's declared signature (graphite-web's
//! `params`), [`Args::validate`] is graphite-web's `validateParams` over it (with its error
//! wording), and the accessors read a validated argument by its parameter's name, getting the
//! declared default when the call left it out.

use super::{lookup, AggFunc, Function};
use crate::eval::EvalError;
use crate::expr::ast::{Call, Expr};
use crate::series::{py_float, Series};

/// Which part of a call an argument error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Blame {
    /// The call as a whole (a missing parameter).
    Call,
    /// The positional argument at this index.
    Arg(usize),
    /// The keyword argument at this index.
    Kwarg(usize),
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
    /// What graphite-web's function applies when a call leaves this out: the default of its
    /// Python signature (`n=1`), also for a parameter its `/functions` description calls
    /// required (`highest`, `lowest`). `conformance.rs` checks every one against graphite-web.
    pub default: Option<Default>,
    /// A default graphite-web's `/functions` shows but its function does not apply (`round`'s
    /// `precision=0` over `precision=None`); [`Param::default`] otherwise.
    pub doc_default: Option<Default>,
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
        doc_default: None,
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
    pub const fn doc_default(mut self, d: Default) -> Self {
        self.doc_default = Some(d);
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

/// Validated arguments, one slot per parameter (a `multiple` parameter collects several),
/// read by parameter name: `a.float("factor")?` is the value the call gave or the declared
/// default, so an implementation never repeats its signature. The `opt_` accessors are for
/// optional parameters without a default (graphite-web's `None`).
pub struct Args {
    func: &'static Function,
    slots: Vec<Vec<Value>>,
}

impl std::fmt::Debug for Args {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Args")
            .field("func", &self.func.name)
            .field("slots", &self.slots)
            .finish()
    }
}

impl Args {
    /// graphite-web's `validateParams`: positional arguments fill parameters in order (extra
    /// ones go to a trailing `multiple` parameter), keywords fill the rest; types are checked
    /// and converted, defaults applied.
    pub fn validate(
        func: &'static Function,
        args: Vec<Value>,
        kwargs: Vec<(&str, Value)>,
    ) -> Result<Self, EvalError> {
        Self::validate_blaming(func, args, kwargs).map_err(|(_, e)| e)
    }

    /// [`Args::validate`], also saying which argument is to blame.
    pub(crate) fn validate_blaming(
        func: &'static Function,
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
                if p.required && !given[i] && p.default.is_none() {
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
        Ok(Self { func, slots })
    }

    /// Arguments built directly (for functions calling each other): `slots` in `func`'s
    /// parameter order.
    pub fn from_slots(func: &'static Function, slots: Vec<Vec<Value>>) -> Self {
        Self { func, slots }
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

    /// The slot of parameter `name`. Asking for a name the signature does not declare is a
    /// bug in the function (caught by the tests that run every function).
    fn slot(&self, name: &str) -> Option<&Vec<Value>> {
        let i = self.func.params.iter().position(|p| p.name == name);
        debug_assert!(
            i.is_some(),
            "{}() reads parameter {name:?}, which its signature does not declare",
            self.func.name
        );
        self.slots.get(i?)
    }

    /// The error for a parameter read with a required accessor that has no value.
    fn missing(&self, name: &str, what: &str) -> EvalError {
        EvalError::Param(format!(
            "function \"{}\" has no {what} value for parameter \"{name}\"",
            self.func.name
        ))
    }

    /// The (first) value of parameter `name`, if the call gave one or it has a default.
    pub fn value(&self, name: &str) -> Option<&Value> {
        self.slot(name).and_then(|s| s.first())
    }

    /// The value of a required parameter or one with a default.
    pub fn arg(&self, name: &str) -> Result<&Value, EvalError> {
        self.value(name).ok_or_else(|| self.missing(name, "a"))
    }

    /// All values of a `multiple` parameter.
    pub fn all(&self, name: &str) -> &[Value] {
        self.slot(name).map_or(&[], Vec::as_slice)
    }

    /// Takes the series list of parameter `name` (empty if absent).
    pub fn series(&mut self, name: &str) -> Vec<Series> {
        self.series_lists(name).into_iter().flatten().collect()
    }

    /// Takes every series list of a `multiple` parameter.
    pub fn series_lists(&mut self, name: &str) -> Vec<Vec<Series>> {
        let i = self.func.params.iter().position(|p| p.name == name);
        debug_assert!(
            i.is_some(),
            "{}() has no parameter {name:?}",
            self.func.name
        );
        let Some(slot) = i.and_then(|i| self.slots.get_mut(i)) else {
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

    /// True when parameter `name` holds a series list.
    pub fn is_series(&self, name: &str) -> bool {
        matches!(self.value(name), Some(Value::Series(_)))
    }

    /// A number parameter without a default (`None` when not given).
    pub fn opt_float(&self, name: &str) -> Option<f64> {
        self.value(name).and_then(Value::as_f64)
    }

    /// An integer parameter without a default (`None` when not given).
    pub fn opt_int(&self, name: &str) -> Option<i64> {
        match self.value(name)? {
            Value::Int(v) => Some(*v),
            Value::Float(f) => Some(*f as i64),
            _ => None,
        }
    }

    /// A string parameter without a default (`None` when not given).
    pub fn opt_str(&self, name: &str) -> Option<&str> {
        match self.value(name)? {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A boolean parameter without a default (`None` when not given).
    pub fn opt_bool(&self, name: &str) -> Option<bool> {
        match self.value(name)? {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// A required number parameter or one with a default.
    pub fn float(&self, name: &str) -> Result<f64, EvalError> {
        self.opt_float(name)
            .ok_or_else(|| self.missing(name, "number"))
    }

    /// A required integer parameter or one with a default.
    pub fn int(&self, name: &str) -> Result<i64, EvalError> {
        self.opt_int(name)
            .ok_or_else(|| self.missing(name, "integer"))
    }

    /// A required string parameter or one with a default.
    pub fn str(&self, name: &str) -> Result<&str, EvalError> {
        self.opt_str(name)
            .ok_or_else(|| self.missing(name, "string"))
    }

    /// A required boolean parameter or one with a default.
    pub fn bool(&self, name: &str) -> Result<bool, EvalError> {
        self.opt_bool(name)
            .ok_or_else(|| self.missing(name, "boolean"))
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
