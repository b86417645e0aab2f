//! Functions that build targets or calls from the data: `applyByNode`, `aliasQuery`,
//! `useSeriesAbove` (evaluate generated targets, fetched in a further round when new), and
//! `mapSeries`/`reduceSeries` (call another function per group).
//!
//! A generated target's data is not known at planning time: the first evaluation records it
//! as missing, [`crate::eval::render`] fetches it and evaluates again; meanwhile these
//! functions return what they have without failing.

use super::{opt, req, Args, Function, ParamType as T, Value, SERIES};
use crate::eval::{Cx, EvalError};
use crate::series::{fmt_g, py_float, Series};

/// Evaluates a generated target over the function's window.
fn eval_target(cx: &mut Cx<'_, '_>, target: &str) -> Result<Vec<Series>, EvalError> {
    let expr = crate::expr::parse(target)
        .map_err(|e| cx.input_error(format!("generated target does not parse: {e}")))?;
    match cx
        .ctx
        .eval_generated(expr, cx.from, cx.until, &cx.call.name)?
    {
        Value::Series(s) => Ok(s),
        _ => Ok(Vec::new()),
    }
}

/// Python's `re.sub(search, replace, name)` (replacement in Python's syntax).
/// `re` was compiled once per call with [`Cx::regex`] (counted in the request's budget).
fn re_sub(
    cx: &mut Cx<'_, '_>,
    re: &regex::Regex,
    replace: &str,
    name: &str,
) -> Result<String, EvalError> {
    super::alias::replace_all(cx, re, name, &super::alias::py_replacement(replace))
}

pub const APPLY_BY_NODE: Function = Function::new(
    "applyByNode",
    "Combine",
    &[
        SERIES,
        req("nodeNum", T::Node),
        req("templateFunction", T::String),
        opt("newName", T::String),
    ],
    |cx, mut a| {
        let node = a.int("nodeNum")?;
        let template = a.str("templateFunction")?.to_string();
        let new_name = a.opt_str("newName").map(str::to_string);
        let series = a.series("seriesList");
        let mut prefixes: Vec<String> = series
            .iter()
            .map(|s| {
                let nodes: Vec<&str> = s.name.split('.').collect();
                let n = usize::try_from(node.saturating_add(1)).unwrap_or(0);
                nodes[..n.min(nodes.len())].join(".")
            })
            .collect();
        prefixes.sort();
        prefixes.dedup();
        let mut out = Vec::new();
        for prefix in prefixes {
            for mut r in eval_target(cx, &template.replace('%', &prefix))? {
                if let Some(n) = &new_name {
                    r.name = n.replace('%', &prefix);
                }
                r.path_expression.clone_from(&prefix);
                // graphite-web takes the times of the last input series.
                if let Some(last) = series.last() {
                    r.start = last.start;
                    r.end = last.end;
                }
                out.push(r);
            }
        }
        Ok(out)
    },
);

/// Python's `fmt % value` for one number: `%g`, `%d`/`%i`, `%s`, `%f`/`%.Nf`, `%e`, `%%`.
pub fn py_percent(fmt: &str, x: f64) -> String {
    let mut out = String::new();
    let mut rest = fmt;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        let spec_len = rest
            .find(|c: char| c.is_ascii_alphabetic() || c == '%')
            .map_or(rest.len(), |e| e + 1);
        let spec = &rest[..spec_len];
        rest = &rest[spec_len..];
        let prec = spec.split_once('.').and_then(|(_, p)| {
            p.trim_end_matches(|c: char| c.is_ascii_alphabetic())
                .parse()
                .ok()
        });
        match spec.chars().last() {
            Some('%') => out.push('%'),
            Some('g') => out.push_str(&fmt_g(x)),
            Some('d' | 'i') => out.push_str(&format!("{}", x.trunc() as i64)),
            Some('s') => out.push_str(&py_float(x)),
            Some('f' | 'F') => out.push_str(&format!("{:.*}", prec.unwrap_or(6), x)),
            Some('e') => out.push_str(&format!("{:.*e}", prec.unwrap_or(6), x)),
            _ => {
                out.push('%');
                out.push_str(spec);
            }
        }
    }
    out.push_str(rest);
    out
}

pub const ALIAS_QUERY: Function = Function::new(
    "aliasQuery",
    "Alias",
    &[
        SERIES,
        req("search", T::String),
        req("replace", T::String),
        req("newName", T::String),
    ],
    |cx, mut a| {
        let (search, replace, new_name) = (
            a.str("search")?.to_string(),
            a.str("replace")?.to_string(),
            a.str("newName")?.to_string(),
        );
        let mut series = a.series("seriesList");
        let re = cx.regex(&search)?;
        for s in series.iter_mut() {
            let query = re_sub(cx, &re, &replace, &s.name)?;
            let found = eval_target(cx, &query)?;
            if cx.ctx.has_missing() {
                continue; // fetched in the next round
            }
            let Some(first) = found.first() else {
                return Err(cx.input_error(format!("no series found with query {query:?}")));
            };
            let Some(current) = first.values.iter().rev().find_map(|v| *v) else {
                return Err(cx.input_error(format!(
                    "cannot get the last value of {:?}: it has no values",
                    first.name
                )));
            };
            s.name = py_percent(&new_name, current);
        }
        Ok(series)
    },
);

pub const USE_SERIES_ABOVE: Function = Function::new(
    "useSeriesAbove",
    "Filter Series",
    &[
        SERIES,
        req("value", T::Float),
        req("search", T::String),
        req("replace", T::String),
    ],
    |cx, mut a| {
        let value = a.float("value")?;
        let (search, replace) = (a.str("search")?.to_string(), a.str("replace")?.to_string());
        let mut out = Vec::new();
        let re = cx.regex(&search)?;
        for s in a.series("seriesList") {
            // graphite-web compares max(series) with None in it (a crash on Python 3);
            // carbide skips nulls.
            let max = s.values.iter().flatten().copied().reduce(f64::max);
            if max.is_some_and(|m| m > value) {
                let name = re_sub(cx, &re, &replace, &s.name)?;
                if let Some(first) = eval_target(cx, &name)?.into_iter().next() {
                    out.push(first);
                }
            }
        }
        Ok(out)
    },
);

/// `mapSeries`: groups by the given nodes, in order of first appearance. graphite-web
/// returns a list of lists (only `reduceSeries` can take it); carbide returns the groups
/// one after another, which `reduceSeries` regroups by name the same way.
fn map_series(_: &mut Cx<'_, '_>, mut a: Args) -> Result<Vec<Series>, EvalError> {
    let nodes: Vec<Value> = a.all("mapNodes").to_vec();
    let mut keys: Vec<String> = Vec::new();
    let mut groups: Vec<Vec<Series>> = Vec::new();
    for s in a.series("seriesList") {
        let key = super::agg_key(&s, &nodes);
        match keys.iter().position(|k| *k == key) {
            Some(i) => groups[i].push(s),
            None => {
                keys.push(key);
                groups.push(vec![s]);
            }
        }
    }
    Ok(groups.into_iter().flatten().collect())
}

const MAP_PARAMS: &[super::Param] = &[SERIES, req("mapNodes", T::NodeOrTag).multiple()];
pub const MAP_SERIES: Function = Function::new("mapSeries", "Combine", MAP_PARAMS, map_series);
pub const MAP: Function = Function::new("map", "Combine", MAP_PARAMS, map_series);

fn reduce_series(cx: &mut Cx<'_, '_>, mut a: Args) -> Result<Vec<Series>, EvalError> {
    let func_name = a.str("reduceFunction")?.to_string();
    let func =
        super::lookup(&func_name).ok_or_else(|| EvalError::UnknownFunction(func_name.clone()))?;
    let node = usize::try_from(a.int("reduceNode")?).unwrap_or(usize::MAX);
    let matchers: Vec<String> = a.all("reduceMatchers").iter().map(Value::py_str).collect();
    let mut keys: Vec<String> = Vec::new();
    let mut groups: Vec<Vec<Option<Series>>> = Vec::new();
    for s in a.series("seriesLists") {
        let nodes: Vec<&str> = s.name.split('.').collect();
        let Some(n) = nodes.get(node) else { continue };
        let Some(m) = matchers.iter().position(|m| m == n) else {
            continue;
        };
        let key = format!("{}.reduce.{func_name}", nodes[..node].join("."));
        let g = match keys.iter().position(|k| *k == key) {
            Some(g) => g,
            None => {
                keys.push(key);
                groups.push(vec![None; matchers.len()]);
                groups.len() - 1
            }
        };
        groups[g][m] = Some(s);
    }
    let mut out = Vec::new();
    for (key, group) in keys.into_iter().zip(groups) {
        // graphite-web crashes on an incomplete group; carbide leaves it out.
        let Some(lists) = group
            .into_iter()
            .map(|s| s.map(|s| Value::Series(vec![s])))
            .collect()
        else {
            continue;
        };
        let args = Args::validate(func, lists, Vec::new())?;
        if let Some(mut r) = (func.run)(cx, args)?.into_iter().next() {
            r.name = key;
            out.push(r);
        }
    }
    Ok(out)
}

const REDUCE_PARAMS: &[super::Param] = &[
    req("seriesLists", T::SeriesLists),
    req("reduceFunction", T::String),
    req("reduceNode", T::Node),
    req("reduceMatchers", T::String).multiple(),
];
pub const REDUCE_SERIES: Function =
    Function::new("reduceSeries", "Combine", REDUCE_PARAMS, reduce_series);
pub const REDUCE: Function = Function::new("reduce", "Combine", REDUCE_PARAMS, reduce_series);

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::py_percent;

    fn data() -> Vec<crate::series::Series> {
        vec![
            ser("h.a.cpu.user", &vals(&[1.0, 2.0])),
            ser("h.a.cpu.system", &vals(&[4.0, 4.0])),
            ser("h.b.cpu.user", &vals(&[3.0, 9.0])),
            ser("h.b.cpu.system", &vals(&[1.0, 3.0])),
            ser("h.a.load", &vals(&[0.5, 0.25])),
            ser("h.b.load", &vals(&[1.5, 2.0])),
        ]
    }

    #[test]
    fn apply_by_node_evaluates_one_target_per_prefix() {
        let out = run(
            &data(),
            t("applyByNode(h.*.cpu.user,1,'sumSeries(%.cpu.*)','%.total')"),
        );
        check(
            &out,
            &[
                ("h.a.total", &vals(&[5.0, 6.0])),
                ("h.b.total", &vals(&[4.0, 12.0])),
            ],
        );
        assert_eq!(out[0].path_expression, "h.a");
    }

    #[test]
    fn alias_query_names_by_the_last_value_of_another_series() {
        let out = run(
            &data(),
            t(r"aliasQuery(h.*.cpu.user,'h\.([^.]+)\..*','h.\1.load','load %g')"),
        );
        assert_eq!(names(&out), ["load 0.25", "load 2"]);
    }

    #[test]
    fn use_series_above_swaps_in_the_matching_series() {
        let out = run(
            &data(),
            t("useSeriesAbove(h.*.cpu.user,2.5,'user','system')"),
        );
        check(&out, &[("h.b.cpu.system", &vals(&[1.0, 3.0]))]);
    }

    #[test]
    fn reduce_series_calls_the_function_per_group() {
        let out = run(
            &data(),
            t("reduceSeries(mapSeries(h.*.cpu.*,1),'divideSeries',3,'user','system')"),
        );
        check(
            &out,
            &[
                ("h.a.cpu.reduce.divideSeries", &vals(&[0.25, 0.5])),
                ("h.b.cpu.reduce.divideSeries", &vals(&[3.0, 3.0])),
            ],
        );
        let out = run(&data(), t("map(h.*.cpu.*,1)"));
        assert_eq!(
            names(&out),
            [
                "h.a.cpu.system",
                "h.a.cpu.user",
                "h.b.cpu.system",
                "h.b.cpu.user"
            ]
        );
    }

    #[test]
    fn percent_formats_like_python() {
        assert_eq!(py_percent("load %g", 1.5), "load 1.5");
        assert_eq!(py_percent("%d%%", 7.9), "7%");
        assert_eq!(py_percent("x=%.2f", 1.0 / 3.0), "x=0.33");
    }
}
