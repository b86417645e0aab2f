//! Checking a target without data: it parses, every function exists, every call's literal
//! arguments fit its signature ([`check_target`]; what config checks and the hostile corpus
//! use).

use super::args::{Args, Blame, Value};
use super::lookup;
use crate::eval::EvalError;
use crate::expr::ast::Expr;
use crate::expr::parse::{ParseError, Spans};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
