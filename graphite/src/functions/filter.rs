//! Filtering series and data: `removeBelowValue` & co (null out points), `highestX`/`lowestX`,
//! `xxxAbove`/`xxxBelow` (`filterSeries`), `limit`, `mostDeviant`, `exclude`, `grep`,
//! `removeEmptySeries`.

use std::cmp::Ordering;

use super::{aggregate::percentile, opt, req, AggFunc, Default, Function, ParamType as T, SERIES};
use crate::eval::{Cx, EvalError};
use crate::series::{fmt_g, py_float, Series};

fn remove_values(
    a: &mut super::Args,
    func: &str,
    drop: impl Fn(Option<f64>, f64) -> bool,
    use_percentile: bool,
) -> Result<Vec<Series>, EvalError> {
    let n = a.float("n")?;
    Ok(a.series("seriesList")
        .into_iter()
        .map(|mut s| {
            s.rename(format!("{func}({}, {})", s.name, fmt_g(n)));
            if use_percentile {
                // graphite-web tags these through nPercentile (`str(float(n))`).
                s.tag("nPercentile", py_float(n));
            }
            let threshold = if use_percentile {
                percentile(&s.values, n, false)
            } else {
                Some(n)
            };
            if let Some(t) = threshold {
                s.values.iter_mut().for_each(|v| {
                    if drop(*v, t) {
                        *v = None;
                    }
                });
            }
            s
        })
        .collect())
}

const N_FLOAT: &[super::Param] = &[SERIES, req("n", T::Float)];
const N_INT: &[super::Param] = &[SERIES, req("n", T::Int)];

pub const REMOVE_ABOVE_VALUE: Function =
    Function::new("removeAboveValue", "Filter Data", N_FLOAT, |_, mut a| {
        remove_values(
            &mut a,
            "removeAboveValue",
            |v, t| v.is_some_and(|x| x > t),
            false,
        )
    });
pub const REMOVE_BELOW_VALUE: Function =
    Function::new("removeBelowValue", "Filter Data", N_FLOAT, |_, mut a| {
        remove_values(
            &mut a,
            "removeBelowValue",
            |v, t| v.is_none_or(|x| x < t),
            false,
        )
    });
pub const REMOVE_ABOVE_PERCENTILE: Function = Function::new(
    "removeAbovePercentile",
    "Filter Data",
    N_FLOAT,
    |_, mut a| {
        remove_values(
            &mut a,
            "removeAbovePercentile",
            |v, t| v.is_some_and(|x| x > t),
            true,
        )
    },
);
pub const REMOVE_BELOW_PERCENTILE: Function = Function::new(
    "removeBelowPercentile",
    "Filter Data",
    N_FLOAT,
    |_, mut a| {
        remove_values(
            &mut a,
            "removeBelowPercentile",
            |v, t| v.is_none_or(|x| x < t),
            true,
        )
    },
);

const OPERATORS: &[&str] = &["!=", "<", "<=", "=", ">", ">="];

fn operator_matches(op: &str, val: Option<f64>, t: f64) -> bool {
    match op {
        "=" => val == Some(t),
        "!=" => val.is_none_or(|v| v != t),
        ">" => val.is_some_and(|v| v > t),
        ">=" => val.is_some_and(|v| v >= t),
        "<" => val.is_none_or(|v| v < t),
        "<=" => val.is_none_or(|v| v <= t),
        _ => false,
    }
}

fn filter_series(
    cx: &Cx<'_, '_>,
    series: Vec<Series>,
    func: &str,
    op: &str,
    t: f64,
) -> Result<Vec<Series>, EvalError> {
    let agg = AggFunc::parse(func)
        .ok_or_else(|| cx.input_error(format!("Unsupported aggregation function: {func}")))?;
    if !OPERATORS.contains(&op) {
        return Err(cx.input_error(format!("Unsupported operator: {op}")));
    }
    Ok(series
        .into_iter()
        .filter(|s| operator_matches(op, agg.apply(&s.values), t))
        .collect())
}

pub const FILTER_SERIES: Function = Function::new(
    "filterSeries",
    "Filter Series",
    &[
        SERIES,
        req("func", T::AggFunc),
        req("operator", T::String).options(OPERATORS),
        req("threshold", T::Float),
    ],
    |cx, mut a| {
        let func = a.str("func")?.to_string();
        let op = a.str("operator")?.to_string();
        let t = a.float("threshold")?;
        filter_series(cx, a.series("seriesList"), &func, &op, t)
    },
);

macro_rules! filter_fn {
    ($konst:ident, $name:literal, $func:literal, $op:literal) => {
        pub const $konst: Function = Function::new($name, "Filter Series", N_FLOAT, |cx, mut a| {
            let t = a.float("n")?;
            filter_series(cx, a.series("seriesList"), $func, $op, t)
        });
    };
}
filter_fn!(MAXIMUM_ABOVE, "maximumAbove", "max", ">");
filter_fn!(MINIMUM_ABOVE, "minimumAbove", "min", ">");
filter_fn!(MAXIMUM_BELOW, "maximumBelow", "max", "<=");
filter_fn!(MINIMUM_BELOW, "minimumBelow", "min", "<=");
filter_fn!(CURRENT_ABOVE, "currentAbove", "last", ">");
filter_fn!(CURRENT_BELOW, "currentBelow", "last", "<=");
filter_fn!(AVERAGE_ABOVE, "averageAbove", "average", ">");
filter_fn!(AVERAGE_BELOW, "averageBelow", "average", "<=");

/// graphite-web's `keyFunc`: the aggregate, with `None` sorting as -inf.
pub fn key(agg: AggFunc, s: &Series) -> f64 {
    agg.apply(&s.values).unwrap_or(f64::NEG_INFINITY)
}

/// Python's stable `sort(key=..., reverse=...)` (equal keys keep their order either way).
pub fn sort_by_key(series: &mut [Series], key: impl Fn(&Series) -> f64, reverse: bool) {
    let mut keyed: Vec<(f64, usize)> = series
        .iter()
        .enumerate()
        .map(|(i, s)| (key(s), i))
        .collect();
    keyed.sort_by(|a, b| {
        let o = a.0.partial_cmp(&b.0).unwrap_or(Ordering::Equal);
        let o = if reverse { o.reverse() } else { o };
        o.then(a.1.cmp(&b.1))
    });
    let order: Vec<usize> = keyed.into_iter().map(|(_, i)| i).collect();
    permute(series, &order);
}

/// Reorders `series` so that position `k` holds the old `order[k]`.
pub fn permute(series: &mut [Series], order: &[usize]) {
    let mut taken: Vec<Option<Series>> = series
        .iter_mut()
        .map(|s| Some(std::mem::replace(s, Series::new("", 0, 0, 1, vec![]))))
        .collect();
    for (k, &i) in order.iter().enumerate() {
        if let Some(s) = taken[i].take() {
            series[k] = s;
        }
    }
}

/// Python's `list[:n]` (negative `n` counts from the end).
pub fn py_head(mut v: Vec<Series>, n: i64) -> Vec<Series> {
    let len = v.len() as i64;
    let keep = if n < 0 { (len + n).max(0) } else { n.min(len) };
    v.truncate(keep as usize);
    v
}

fn top(mut series: Vec<Series>, n: i64, func: &str, highest: bool) -> Vec<Series> {
    let agg = AggFunc::parse(func).unwrap_or(AggFunc::Average);
    sort_by_key(&mut series, |s| key(agg, s), highest);
    py_head(series, n)
}

pub const HIGHEST: Function = Function::new(
    "highest",
    "Filter Series",
    &[
        SERIES,
        req("n", T::Int).default(Default::Int(1)),
        opt("func", T::AggFunc).default(Default::Str("average")),
    ],
    |_, mut a| {
        let (n, f) = (a.int("n")?, a.str("func")?.to_string());
        Ok(top(a.series("seriesList"), n, &f, true))
    },
);
pub const LOWEST: Function = Function::new(
    "lowest",
    "Filter Series",
    &[
        SERIES,
        req("n", T::Int).default(Default::Int(1)),
        opt("func", T::AggFunc).default(Default::Str("average")),
    ],
    |_, mut a| {
        let (n, f) = (a.int("n")?, a.str("func")?.to_string());
        Ok(top(a.series("seriesList"), n, &f, false))
    },
);

macro_rules! top_fn {
    ($konst:ident, $name:literal, $func:literal, $highest:literal) => {
        pub const $konst: Function = Function::new($name, "Filter Series", N_INT, |_, mut a| {
            let n = a.int("n")?;
            Ok(top(a.series("seriesList"), n, $func, $highest))
        });
    };
}
top_fn!(HIGHEST_CURRENT, "highestCurrent", "current", true);
top_fn!(HIGHEST_MAX, "highestMax", "max", true);
top_fn!(HIGHEST_AVERAGE, "highestAverage", "average", true);
top_fn!(LOWEST_CURRENT, "lowestCurrent", "current", false);
top_fn!(LOWEST_AVERAGE, "lowestAverage", "average", false);

pub const LIMIT: Function = Function::new("limit", "Filter Series", N_INT, |_, mut a| {
    let n = a.int("n")?;
    Ok(py_head(a.series("seriesList"), n))
});

pub const MOST_DEVIANT: Function =
    Function::new("mostDeviant", "Filter Series", N_INT, |_, mut a| {
        let n = a.int("n")?;
        let mut devs: Vec<(f64, Series)> = a
            .series("seriesList")
            .into_iter()
            .filter_map(|s| {
                let mean = AggFunc::Average.apply(&s.values)?;
                let count = s.values.iter().flatten().count();
                let sq = super::py_sum(s.values.iter().flatten().map(|v| (v - mean).powi(2)));
                (count > 0).then_some((sq / count as f64, s))
            })
            .collect();
        // stable sort by sigma, descending
        devs.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap_or(Ordering::Equal));
        Ok(py_head(devs.into_iter().map(|(_, s)| s).collect(), n))
    });

fn regex_filter(
    cx: &Cx<'_, '_>,
    mut a: super::Args,
    keep_matching: bool,
) -> Result<Vec<Series>, EvalError> {
    let re = cx.regex(a.str("pattern")?)?;
    Ok(a.series("seriesList")
        .into_iter()
        .filter(|s| re.is_match(&s.name) == keep_matching)
        .collect())
}

const PATTERN: &[super::Param] = &[SERIES, req("pattern", T::String)];
pub const EXCLUDE: Function = Function::new("exclude", "Filter Series", PATTERN, |cx, a| {
    regex_filter(cx, a, false)
});
pub const GREP: Function = Function::new("grep", "Filter Series", PATTERN, |cx, a| {
    regex_filter(cx, a, true)
});

pub const REMOVE_EMPTY_SERIES: Function = Function::new(
    "removeEmptySeries",
    "Filter Series",
    &[SERIES, opt("xFilesFactor", T::Float)],
    |_, mut a| {
        let xff = a.opt_float("xFilesFactor").unwrap_or(0.0);
        Ok(a.series("seriesList")
            .into_iter()
            .filter(|s| {
                super::xff(
                    s.values.iter().flatten().count(),
                    s.values.len() as f64,
                    Some(xff),
                )
            })
            .collect())
    },
);

pub const AVERAGE_OUTSIDE_PERCENTILE: Function = Function::new(
    "averageOutsidePercentile",
    "Filter Series",
    N_FLOAT,
    |_, mut a| {
        let mut n = a.float("n")?;
        if n < 50.0 {
            n = 100.0 - n;
        }
        let series = a.series("seriesList");
        let avgs: Vec<Option<f64>> = series
            .iter()
            .map(|s| AggFunc::Average.apply(&s.values))
            .collect();
        let low = percentile(&avgs, 100.0 - n, false);
        let high = percentile(&avgs, n, false);
        Ok(series
            .into_iter()
            .zip(avgs)
            .filter(|(_, avg)| match (low, *avg, high) {
                (Some(l), Some(v), Some(h)) => !(l < v && v < h),
                _ => true,
            })
            .map(|(s, _)| s)
            .collect())
    },
);

pub const REMOVE_BETWEEN_PERCENTILE: Function = Function::new(
    "removeBetweenPercentile",
    "Filter Series",
    N_FLOAT,
    |_, mut a| {
        let mut n = a.float("n")?;
        if n < 50.0 {
            n = 100.0 - n;
        }
        let series = a.series("seriesList");
        let cols = series.iter().map(|s| s.values.len()).min().unwrap_or(0);
        let bounds: Vec<(Option<f64>, Option<f64>)> = (0..cols)
            .map(|i| {
                let col: Vec<Option<f64>> = series.iter().map(|s| s.values[i]).collect();
                (
                    percentile(&col, 100.0 - n, false),
                    percentile(&col, n, false),
                )
            })
            .collect();
        Ok(series
            .into_iter()
            .filter(|s| {
                s.values
                    .iter()
                    .zip(&bounds)
                    .any(|(v, (l, h))| match (v, l, h) {
                        (Some(v), Some(l), Some(h)) => !(l < v && v < h),
                        _ => false,
                    })
            })
            .collect())
    },
);

pub const UNIQUE: Function = Function::new(
    "unique",
    "Filter Series",
    &[req("seriesLists", T::SeriesList).multiple()],
    |_, mut a| {
        let mut seen = std::collections::HashSet::new();
        Ok(a.series("seriesLists")
            .into_iter()
            .filter(|s| seen.insert(s.name.clone()))
            .collect())
    },
);

pub const FALLBACK_SERIES: Function = Function::new(
    "fallbackSeries",
    "Special",
    &[SERIES, req("fallback", T::SeriesList)],
    |_, mut a| {
        let s = a.series("seriesList");
        Ok(if s.is_empty() {
            a.series("fallback")
        } else {
            s
        })
    },
);

#[cfg(test)]
mod tests {
    use super::super::testkit::*;

    fn data() -> Vec<crate::series::Series> {
        vec![
            ser("f.a", &[Some(1.0), Some(2.0), Some(3.0), Some(10.0)]),
            ser("f.b", &[Some(5.0), Some(5.0), None, Some(1.0)]),
            ser("f.c", &[Some(4.0), None, Some(6.0), Some(7.0)]),
            ser("f.d", &[None, None, None, None]),
        ]
    }

    #[test]
    fn series_filters_table() {
        let rows: Vec<(Expr, Vec<&str>)> = vec![
            (
                c("highestCurrent", vec![p("f.*"), i(2)]),
                vec!["f.a", "f.c"],
            ),
            (c("highestMax", vec![p("f.*"), i(1)]), vec!["f.a"]),
            (
                c("highestAverage", vec![p("f.*"), i(2)]),
                vec!["f.c", "f.a"],
            ),
            (c("lowestCurrent", vec![p("f.*"), i(2)]), vec!["f.d", "f.b"]),
            (c("lowestAverage", vec![p("f.*"), i(2)]), vec!["f.d", "f.b"]),
            (c("highest", vec![p("f.*"), i(1), s("sum")]), vec!["f.c"]),
            (c("lowest", vec![p("f.*"), i(1), s("min")]), vec!["f.d"]),
            // graphite-web's `n=1` applies when n is left out
            (c("highest", vec![p("f.*")]), vec!["f.c"]),
            (c("lowest", vec![p("f.*")]), vec!["f.d"]),
            (c("currentAbove", vec![p("f.*"), i(5)]), vec!["f.a", "f.c"]),
            (c("currentBelow", vec![p("f.*"), i(5)]), vec!["f.b", "f.d"]),
            (c("averageAbove", vec![p("f.*"), i(4)]), vec!["f.c"]),
            (
                c("averageBelow", vec![p("f.*"), i(4)]),
                vec!["f.a", "f.b", "f.d"],
            ),
            (c("maximumAbove", vec![p("f.*"), i(7)]), vec!["f.a"]),
            (
                c("maximumBelow", vec![p("f.*"), i(7)]),
                vec!["f.b", "f.c", "f.d"],
            ),
            (c("minimumAbove", vec![p("f.*"), i(1)]), vec!["f.c"]),
            (
                c("minimumBelow", vec![p("f.*"), i(1)]),
                vec!["f.a", "f.b", "f.d"],
            ),
            (
                c("filterSeries", vec![p("f.*"), s("sum"), s(">="), i(16)]),
                vec!["f.a", "f.c"],
            ),
            (c("limit", vec![p("f.*"), i(2)]), vec!["f.a", "f.b"]),
            (c("limit", vec![p("f.*"), i(-1)]), vec!["f.a", "f.b", "f.c"]),
            (c("mostDeviant", vec![p("f.*"), i(2)]), vec!["f.a", "f.b"]),
            (c("exclude", vec![p("f.*"), s("[ab]$")]), vec!["f.c", "f.d"]),
            (c("grep", vec![p("f.*"), s("[ab]$")]), vec!["f.a", "f.b"]),
            (
                c("removeEmptySeries", vec![p("f.*")]),
                vec!["f.a", "f.b", "f.c"],
            ),
            (c("removeEmptySeries", vec![p("f.*"), f(0.8)]), vec!["f.a"]),
        ];
        for (target, want) in rows {
            let out = run(&data(), target.clone());
            assert_eq!(names(&out), want, "{target:?}");
        }
    }

    #[test]
    fn data_filters() {
        let out = run(&data(), c("removeAboveValue", vec![p("f.a"), i(2)]));
        check(
            &out,
            &[(
                "removeAboveValue(f.a, 2)",
                &[Some(1.0), Some(2.0), None, None],
            )],
        );
        let out = run(&data(), c("removeBelowValue", vec![p("f.a"), f(2.5)]));
        check(
            &out,
            &[(
                "removeBelowValue(f.a, 2.5)",
                &[None, None, Some(3.0), Some(10.0)],
            )],
        );
        let out = run(&data(), c("removeAbovePercentile", vec![p("f.a"), i(50)]));
        check(
            &out,
            &[(
                "removeAbovePercentile(f.a, 50)",
                &[Some(1.0), Some(2.0), Some(3.0), None],
            )],
        );
        let out = run(&data(), c("removeBelowPercentile", vec![p("f.a"), i(50)]));
        check(
            &out,
            &[(
                "removeBelowPercentile(f.a, 50)",
                &[None, None, Some(3.0), Some(10.0)],
            )],
        );
        assert_eq!(out[0].path_expression, "removeBelowPercentile(f.a, 50)");
    }
}
