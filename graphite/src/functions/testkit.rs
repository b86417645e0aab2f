//! Test helpers shared by the function tests: targets (parsed with [`crate::expr::parse`];
//! the small constructors `c`/`kw` build a call, print it in Graphite syntax and parse that
//! back, so every function test also goes through the real parser), series builders, and a
//! runner that evaluates a target over an in-memory source and checks the source was not
//! mutated.

use crate::eval::{render, EvalError, MemorySource, Source};
pub use crate::expr::ast::{Call, Expr};
use crate::series::Series;

/// A target parsed by the real parser.
pub fn t(target: &str) -> Expr {
    match crate::expr::parse(target) {
        Ok(e) => e,
        Err(e) => panic!("test target does not parse: {e}"),
    }
}

/// Parses the Graphite text of `built` and checks the parser gives the same tree.
fn through_parser(built: Expr) -> Expr {
    let parsed = t(&built.to_string());
    assert_eq!(
        parsed, built,
        "parser disagrees with the test's tree for {built}"
    );
    parsed
}

pub fn p(path: &str) -> Expr {
    through_parser(Expr::Path(path.into()))
}
pub fn c(name: &str, args: Vec<Expr>) -> Expr {
    through_parser(Expr::Call(Call {
        name: name.into(),
        args,
        kwargs: vec![],
    }))
}
pub fn kw(name: &str, args: Vec<Expr>, kwargs: Vec<(&str, Expr)>) -> Expr {
    through_parser(Expr::Call(Call {
        name: name.into(),
        args,
        kwargs: kwargs
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    }))
}
pub fn i(v: i64) -> Expr {
    Expr::Int(v)
}
pub fn f(v: f64) -> Expr {
    Expr::Float(v)
}
pub fn s(v: &str) -> Expr {
    Expr::Str(v.into())
}
pub fn b(v: bool) -> Expr {
    Expr::Bool(v)
}
pub fn none() -> Expr {
    Expr::None
}

/// A series at start 0, step 1 (graphite-web's test fixtures use these).
pub fn ser(name: &str, values: &[Option<f64>]) -> Series {
    ser_step(name, 1, values)
}

/// A series at start 0 with the given step.
pub fn ser_step(name: &str, step: i64, values: &[Option<f64>]) -> Series {
    Series::new(name, 0, values.len() as i64 * step, step, values.to_vec())
}

/// `Some(x)` for every x.
pub fn vals(xs: &[f64]) -> Vec<Option<f64>> {
    xs.iter().map(|x| Some(*x)).collect()
}

/// Evaluates `target` over `[from, until)` (whisper-style alignment: the first point is at
/// the step after `from`).
pub fn run_window(data: &[Series], target: Expr, from: i64, until: i64) -> Vec<Series> {
    match try_run(data, target, from, until) {
        Ok(s) => s,
        Err(e) => panic!("evaluation failed: {e}"),
    }
}

/// Evaluates `target` over exactly the span of `data[0]`.
pub fn run(data: &[Series], target: Expr) -> Vec<Series> {
    let (from, until) = span(data);
    run_window(data, target, from, until)
}

/// The error message of evaluating `target` over the span of `data[0]`.
pub fn run_err(data: &[Series], target: Expr) -> String {
    let (from, until) = span(data);
    match try_run(data, target, from, until) {
        Ok(s) => panic!("expected an error, got {} series", s.len()),
        Err(e) => e.to_string(),
    }
}

fn span(data: &[Series]) -> (i64, i64) {
    data.first()
        .map_or((0, 60), |s| (s.start - s.step, s.end - s.step))
}

fn try_run(data: &[Series], target: Expr, from: i64, until: i64) -> Result<Vec<Series>, EvalError> {
    let src = MemorySource::new(data.to_vec());
    let before = src.clone();
    let out = render(&[target], from, until, until, &src);
    // The source's series must come out untouched (functions work on copies).
    assert_eq!(
        format!("{before:?}"),
        format!("{src:?}"),
        "source data was mutated"
    );
    let _: &dyn Source = &src;
    out
}

/// Names of a result.
pub fn names(out: &[Series]) -> Vec<&str> {
    out.iter().map(|s| s.name.as_str()).collect()
}

/// Checks names and values (null-aware, 1e-9 relative) of every result series, in order.
pub fn check(out: &[Series], want: &[(&str, &[Option<f64>])]) {
    assert_eq!(
        names(out),
        want.iter().map(|w| w.0).collect::<Vec<_>>(),
        "names differ"
    );
    for (s, (name, values)) in out.iter().zip(want) {
        assert_values(&s.values, values, name);
    }
}

/// Null-aware comparison within 1e-9 relative.
pub fn assert_values(got: &[Option<f64>], want: &[Option<f64>], what: &str) {
    assert_eq!(
        got.len(),
        want.len(),
        "{what}: length differs: got {got:?}, want {want:?}"
    );
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        let ok = match (g, w) {
            (None, None) => true,
            (Some(g), Some(w)) => {
                g == w || (g.is_nan() && w.is_nan()) || (g - w).abs() <= 1e-9 * w.abs().max(g.abs())
            }
            _ => false,
        };
        assert!(
            ok,
            "{what}: value {k} differs: got {g:?}, want {w:?} (all: {got:?})"
        );
    }
}

/// Checks times of one series.
pub fn check_times(s: &Series, start: i64, end: i64, step: i64) {
    assert_eq!(
        (s.start, s.end, s.step),
        (start, end, step),
        "{}: start/end/step",
        s.name
    );
}
