//! Renaming: `alias`, `aliasByNode`, `aliasByMetric`, `aliasSub`, `legendValue`. These change
//! only the name (never the path expression or tags), as in graphite-web.

use super::{agg_key, req, AggFunc, Function, ParamType as T, SERIES};
use crate::eval::{Cx, EvalError};
use crate::series::{py_float, Series};

pub const ALIAS: Function = Function::new(
    "alias",
    "Alias",
    &[SERIES, req("newName", T::String)],
    |_, mut a| {
        let name = a.str("newName")?.to_string();
        let mut out = a.series("seriesList");
        out.iter_mut().for_each(|s| s.name.clone_from(&name));
        Ok(out)
    },
);

pub const ALIAS_BY_NODE: Function = Function::new(
    "aliasByNode",
    "Alias",
    &[SERIES, req("nodes", T::NodeOrTag).multiple()],
    |_, mut a| {
        let nodes = a.all("nodes").to_vec();
        let mut out = a.series("seriesList");
        out.iter_mut().for_each(|s| s.name = agg_key(s, &nodes));
        Ok(out)
    },
);

/// graphite-web's `substr(series, start, stop)` naming.
fn substr(name: &str, start: i64, stop: i64) -> String {
    let left = name.rfind('(').map_or(0, |i| i + 1);
    let right = name.find(')').unwrap_or(name.len());
    let clean = if right >= left {
        &name[left..right]
    } else {
        ""
    };
    let nodes: Vec<&str> = clean.split('.').collect();
    let n = nodes.len() as i64;
    let norm = |i: i64| if i < 0 { (n + i).max(0) } else { i.min(n) } as usize;
    let (a, b) = (norm(start), if stop == 0 { n as usize } else { norm(stop) });
    let joined = if a < b {
        nodes[a..b].join(".")
    } else {
        String::new()
    };
    match joined.find(',') {
        Some(i) => joined[..i].to_string(),
        None => joined,
    }
}

pub const ALIAS_BY_METRIC: Function =
    Function::new("aliasByMetric", "Alias", &[SERIES], |_, mut a| {
        let mut out = a.series("seriesList");
        out.iter_mut().for_each(|s| s.name = substr(&s.name, -1, 0));
        Ok(out)
    });

/// Python `re.sub` replacement syntax (`\1`, `\g<1>`, `\g<name>`) in the regex crate's.
pub(super) fn py_replacement(r: &str) -> String {
    let mut out = String::with_capacity(r.len());
    let mut chars = r.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' => out.push_str("$$"),
            '\\' => match chars.peek().copied() {
                Some(d) if d.is_ascii_digit() => {
                    let mut num = String::new();
                    while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                        num.push(d);
                        chars.next();
                        if num.len() == 2 {
                            break;
                        }
                    }
                    out.push_str(&format!("${{{num}}}"));
                }
                Some('g') => {
                    chars.next();
                    if chars.peek() == Some(&'<') {
                        chars.next();
                        let name: String = chars.by_ref().take_while(|c| *c != '>').collect();
                        out.push_str(&format!("${{{name}}}"));
                    } else {
                        out.push_str("\\g");
                    }
                }
                Some('n') => {
                    chars.next();
                    out.push('\n');
                }
                Some('t') => {
                    chars.next();
                    out.push('\t');
                }
                Some('\\') => {
                    chars.next();
                    out.push('\\');
                }
                _ => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    out
}

pub const ALIAS_SUB: Function = Function::new(
    "aliasSub",
    "Alias",
    &[SERIES, req("search", T::String), req("replace", T::String)],
    |cx, mut a| {
        let re = cx.regex(a.str("search")?)?;
        let rep = py_replacement(a.str("replace")?);
        let mut out = a.series("seriesList");
        for s in out.iter_mut() {
            s.name = replace_all(cx, &re, &s.name, &rep)?;
        }
        Ok(out)
    },
);

/// The longest series name a replacement may make: nested `aliasSub(…,'(.*)','\1\1…')`
/// would otherwise grow names exponentially, and each scan of a long name by the next
/// regex runs without a deadline check.
pub const MAX_SERIES_NAME_BYTES: u64 = 64 * 1024;

/// `re.replace_all(name, rep)` (`rep` in the regex crate's syntax), with the name bytes it
/// makes charged before each replacement is expanded: a replacement can repeat a group many
/// times (`\1\1\1…`), so nested calls would otherwise grow names exponentially.
pub(super) fn replace_all(
    cx: &mut Cx<'_, '_>,
    re: &regex::Regex,
    name: &str,
    rep: &str,
) -> Result<String, EvalError> {
    // Each group reference expands to at most the whole match.
    let refs = rep.matches('$').count() as u64;
    let mut out = String::new();
    let mut last = 0;
    // A regex scan cannot be interrupted, so the deadline is checked before it and the name
    // it scans is bounded (MAX_SERIES_NAME_BYTES) by the check below.
    cx.check()?;
    for caps in re.captures_iter(name) {
        cx.tick()?;
        let Some(m) = caps.get(0) else { continue };
        let bound = (m.start() - last) as u64 + rep.len() as u64 + refs * m.len() as u64;
        if out.len() as u64 + bound + (name.len() - m.end()) as u64 > MAX_SERIES_NAME_BYTES {
            return Err(cx.input_error(format!(
                "a series name would grow past {MAX_SERIES_NAME_BYTES} bytes (limit \
                 MAX_SERIES_NAME_BYTES)"
            )));
        }
        cx.charge_names(bound)?;
        out.push_str(&name[last..m.start()]);
        caps.expand(rep, &mut out);
        last = m.end();
    }
    out.push_str(&name[last..]);
    Ok(out)
}

/// graphite-web's `format_units` for `si`/`binary`.
fn format_units(v: f64, system: &str) -> (f64, &'static str) {
    let units: &[(&str, f64)] = if system == "binary" {
        &[
            ("Pi", 1125899906842624.0),
            ("Ti", 1099511627776.0),
            ("Gi", 1073741824.0),
            ("Mi", 1048576.0),
            ("Ki", 1024.0),
        ]
    } else {
        &[("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)]
    };
    for (prefix, size) in units {
        if v.abs() >= *size {
            let mut v2 = v / size;
            if v2 - v2.floor() < 1e-11 && v > 1.0 {
                v2 = v2.floor();
            }
            return (v2, prefix);
        }
    }
    let v = if v - v.floor() < 1e-11 && v > 1.0 {
        v.floor()
    } else {
        v
    };
    (v, "")
}

const LEGEND_OPTIONS: &[&str] = &[
    "average",
    "avg_zero",
    "median",
    "sum",
    "min",
    "max",
    "diff",
    "stddev",
    "count",
    "range",
    "multiply",
    "last",
    "rangeOf",
    "avg",
    "total",
    "current",
    "averageSeries",
    "avg_zeroSeries",
    "medianSeries",
    "sumSeries",
    "minSeries",
    "maxSeries",
    "diffSeries",
    "stddevSeries",
    "countSeries",
    "rangeSeries",
    "multiplySeries",
    "lastSeries",
    "rangeOfSeries",
    "avgSeries",
    "totalSeries",
    "currentSeries",
    "si",
    "binary",
];

pub const LEGEND_VALUE: Function = Function::new(
    "legendValue",
    "Alias",
    &[
        SERIES,
        super::opt("valuesTypes", T::String)
            .multiple()
            .options(LEGEND_OPTIONS),
    ],
    |_, mut a| {
        let mut types: Vec<String> = a.all("valuesTypes").iter().map(|v| v.py_str()).collect();
        let system = match types.last().map(String::as_str) {
            Some(s @ ("si" | "binary")) => {
                let s = s.to_string();
                types.pop();
                Some(s)
            }
            _ => None,
        };
        let mut out: Vec<Series> = a.series("seriesList");
        for t in &types {
            let f = AggFunc::parse(t);
            for s in out.iter_mut() {
                let value = f.map(|f| f.apply(&s.values));
                match &system {
                    None => {
                        let shown = match (f, value) {
                            (None, _) => "(?)".to_string(),
                            (_, Some(None)) | (_, None) => "None".to_string(),
                            (Some(AggFunc::Count), Some(Some(v))) => format!("{}", v as i64),
                            (_, Some(Some(v))) => py_float(v),
                        };
                        s.name = format!("{} ({t}: {shown})", s.name);
                    }
                    Some(sys) => {
                        let shown = match (f, value) {
                            (None, _) => "(?)".to_string(),
                            (_, Some(Some(v))) => {
                                let (v, p) = format_units(v, sys);
                                format!("{v:.2}{p}")
                            }
                            _ => "None".to_string(),
                        };
                        s.name = format!("{:<20}{:<5}{:<10}", s.name, t, shown);
                    }
                }
            }
        }
        Ok::<_, EvalError>(out)
    },
);

pub const ALIAS_BY_TAGS: Function = Function::new(
    "aliasByTags",
    "Alias",
    &[SERIES, req("tags", T::NodeOrTag).multiple()],
    |_, mut a| {
        let nodes = a.all("tags").to_vec();
        let mut out = a.series("seriesList");
        out.iter_mut().for_each(|s| s.name = agg_key(s, &nodes));
        Ok(out)
    },
);

pub const SUBSTR: Function = Function::new(
    "substr",
    "Special",
    &[
        SERIES,
        super::opt("start", T::Node).default(super::Default::Int(0)),
        super::opt("stop", T::Node).default(super::Default::Int(0)),
    ],
    |_, mut a| {
        let (start, stop) = (a.int("start")?, a.int("stop")?);
        let mut out = a.series("seriesList");
        out.iter_mut()
            .for_each(|s| s.name = substr(&s.name, start, stop));
        Ok(out)
    },
);

fn change_case(mut a: super::Args, upper: bool) -> Vec<Series> {
    let pos: Vec<i64> = a
        .all("pos")
        .iter()
        .filter_map(|v| {
            if let super::Value::Int(i) = v {
                Some(*i)
            } else {
                None
            }
        })
        .collect();
    let mut out = a.series("seriesList");
    for s in out.iter_mut() {
        if pos.is_empty() {
            s.name = if upper {
                s.name.to_uppercase()
            } else {
                s.name.to_lowercase()
            };
            continue;
        }
        let mut chars: Vec<String> = s.name.chars().map(String::from).collect();
        let n = chars.len() as i64;
        for &i in &pos {
            let k = if i < 0 { n + i } else { i };
            if (0..n).contains(&k) {
                let c = &mut chars[k as usize];
                *c = if upper {
                    c.to_uppercase()
                } else {
                    c.to_lowercase()
                };
            }
        }
        s.name = chars.concat();
    }
    out
}

const CASE_PARAMS: &[super::Param] = &[SERIES, super::opt("pos", T::Int).multiple()];
pub const UPPER: Function = Function::new("upper", "Alias", CASE_PARAMS, |_, a| {
    Ok(change_case(a, true))
});
pub const LOWER: Function = Function::new("lower", "Alias", CASE_PARAMS, |_, a| {
    Ok(change_case(a, false))
});

/// `%-*s`: left-justified to `width` (Python's negative `*` width).
fn ljust(s: &str, width: usize) -> String {
    format!("{s:<width$}")
}

pub const CACTI_STYLE: Function = Function::new(
    "cactiStyle",
    "Special",
    &[
        SERIES,
        super::opt("system", T::String).options(&["si", "binary"]),
        super::opt("units", T::String),
    ],
    |_, mut a| {
        let system = a.opt_str("system").map(str::to_string);
        let units = a.opt_str("units").map(str::to_string);
        let fmt = |x: f64| -> String {
            match (&system, &units) {
                (Some(sys), Some(u)) => {
                    let (v, p) = format_units(x, sys);
                    format!("{v:.2} {p}{u}")
                }
                (Some(sys), None) => {
                    let (v, p) = format_units(x, sys);
                    format!("{v:.2}{p}")
                }
                (None, Some(u)) => format!("{x:.2} {u}"),
                (None, None) => format!("{x:.2}"),
            }
        };
        let mut series = a.series("seriesList");
        let last = |s: &Series| s.values.iter().rev().find_map(|v| *v);
        let max = |s: &Series| s.values.iter().flatten().copied().reduce(f64::max);
        let min = |s: &Series| s.values.iter().flatten().copied().reduce(f64::min);
        // graphite-web sizes columns by `fmt(int(x or 3))` (so 0 counts as 3).
        let width = |f: &dyn Fn(&Series) -> Option<f64>| {
            series
                .iter()
                .map(|s| {
                    let v = f(s).filter(|v| *v != 0.0).unwrap_or(3.0);
                    fmt(v.trunc()).len()
                })
                .max()
                .unwrap_or(0)
                + 3
        };
        let name_len = series.iter().map(|s| s.name.len()).max().unwrap_or(0);
        let (last_len, max_len, min_len) = (width(&last), width(&max), width(&min));
        let shown = |v: Option<f64>| v.map_or_else(|| "nan".to_string(), fmt);
        for s in series.iter_mut() {
            let (l, mx, mn) = (shown(last(s)), shown(max(s)), shown(min(s)));
            s.name = format!(
                "{} Current:{} Max:{} Min:{} ",
                ljust(&s.name, name_len),
                ljust(&l, last_len),
                ljust(&mx, max_len),
                ljust(&mn, min_len)
            );
        }
        Ok(series)
    },
);

#[cfg(test)]
mod tests {
    use super::super::testkit::*;

    #[test]
    fn aliases() {
        let d = [ser("servers.db1.cpu.user", &[Some(1.0), Some(3.0), None])];
        let rows: Vec<(Expr, &str)> = vec![
            (c("alias", vec![p("servers.*.cpu.user"), s("x y")]), "x y"),
            (c("aliasByNode", vec![p("servers.*.cpu.user"), i(1)]), "db1"),
            (
                c("aliasByNode", vec![p("servers.*.cpu.user"), i(1), i(-1)]),
                "db1.user",
            ),
            (
                c(
                    "aliasByNode",
                    vec![c("scale", vec![p("servers.*.cpu.user"), i(2)]), i(1)],
                ),
                "db1",
            ),
            (
                c("aliasByNode", vec![p("servers.*.cpu.user"), s("name")]),
                "servers.db1.cpu.user",
            ),
            (c("aliasByMetric", vec![p("servers.*.cpu.user")]), "user"),
            (
                c(
                    "aliasByMetric",
                    vec![c("scale", vec![p("servers.*.cpu.user"), i(2)])],
                ),
                "user",
            ),
            (
                c(
                    "aliasSub",
                    vec![
                        p("servers.*.cpu.user"),
                        s(r"^servers\.(\w+)\..*$"),
                        s(r"host \1"),
                    ],
                ),
                "host db1",
            ),
            (
                c(
                    "legendValue",
                    vec![p("servers.*.cpu.user"), s("avg"), s("count")],
                ),
                "servers.db1.cpu.user (avg: 2.0) (count: 2)",
            ),
            (
                c(
                    "legendValue",
                    vec![p("servers.*.cpu.user"), s("last"), s("si")],
                ),
                "servers.db1.cpu.userlast 3.00      ",
            ),
        ];
        for (target, name) in rows {
            let out = run(&d, target);
            assert_eq!(names(&out), [name]);
            // renaming keeps the path expression of the input
            assert!(
                !out[0].path_expression.starts_with("alias"),
                "{}",
                out[0].path_expression
            );
        }
    }

    #[test]
    fn nested_alias_sub_stops_at_the_series_name_cap() {
        let d = [ser("servers.db1.cpu.user", &[Some(1.0)])];
        // Eight nested quadruplings: 20 × 4^8 bytes, past MAX_SERIES_NAME_BYTES.
        let mut target = p("servers.*.cpu.user");
        for _ in 0..8 {
            target = c("aliasSub", vec![target, s("(.*)"), s(r"\1\1\1\1")]);
        }
        let err = run_err(&d, target);
        assert!(err.contains("MAX_SERIES_NAME_BYTES"), "{err}");
        // Two doublings stay under it, and the name is what graphite-web makes.
        let mut target = p("servers.*.cpu.user");
        for _ in 0..2 {
            target = c("aliasSub", vec![target, s("(.*)"), s(r"\1\1")]);
        }
        let out = run(&d, target);
        assert_eq!(names(&out), ["servers.db1.cpu.user".repeat(4)]);
    }
}
