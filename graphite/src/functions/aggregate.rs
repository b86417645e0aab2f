//! Combining series: `aggregate` and its `xxxSeries` shorthands, `divideSeries`, `asPercent`,
//! `group`, the `WithWildcards` and `groupByNode(s)` grouping forms, `percentileOfSeries` and
//! the pairwise `xxxSeriesLists`.

use std::collections::{BTreeMap, HashMap};

use super::agg::Columns;
use super::{
    agg_key, format_path_expressions, opt, req, AggFunc, Args, Default, Function, ParamType as T,
    Value, SERIES,
};
use crate::eval::{Cx, EvalError};
use crate::series::{fmt_g, normalize, Series};

const LISTS: &[super::Param] = &[req("seriesLists", T::SeriesList).multiple()];
const TWO_LISTS: &[super::Param] = &[
    req("seriesListFirstPos", T::SeriesList),
    req("seriesListSecondPos", T::SeriesList),
];
const WILDCARDS: &[super::Param] = &[SERIES, opt("position", T::Node).multiple()];

pub const AGGREGATE: Function = Function::new(
    "aggregate",
    "Combine",
    &[
        SERIES,
        req("func", T::AggFunc),
        opt("xFilesFactor", T::Float),
    ],
    |cx, mut a| {
        let func = a.str("func")?.to_string();
        let xff = a.opt_float("xFilesFactor");
        aggregate(cx, vec![a.series("seriesList")], &func, xff)
    },
);

macro_rules! shorthand {
    ($konst:ident, $name:literal, $func:literal) => {
        pub const $konst: Function = Function::new($name, "Combine", LISTS, |cx, mut a| {
            aggregate(cx, a.series_lists("seriesLists"), $func, None)
        })
        .aggregator();
    };
    // Folded column by column: a source may fold the series for it (`Function::fold`).
    ($konst:ident, $name:literal, $func:literal, fold) => {
        pub const $konst: Function = Function::new($name, "Combine", LISTS, |cx, mut a| {
            aggregate(cx, a.series_lists("seriesLists"), $func, None)
        })
        .aggregator()
        .fold($func);
    };
}
shorthand!(SUM_SERIES, "sumSeries", "sum", fold);
shorthand!(SUM, "sum", "sum", fold);
shorthand!(AVERAGE_SERIES, "averageSeries", "average", fold);
shorthand!(AVG, "avg", "average", fold);
shorthand!(MAX_SERIES, "maxSeries", "max", fold);
shorthand!(MIN_SERIES, "minSeries", "min", fold);
shorthand!(DIFF_SERIES, "diffSeries", "diff");
shorthand!(STDDEV_SERIES, "stddevSeries", "stddev");
shorthand!(RANGE_OF_SERIES, "rangeOfSeries", "rangeOf");

pub const MULTIPLY_SERIES: Function =
    Function::new("multiplySeries", "Combine", LISTS, |cx, mut a| {
        let mut lists = a.series_lists("seriesLists");
        if lists.len() == 1 && lists[0].len() == 1 {
            return Ok(lists.remove(0));
        }
        aggregate(cx, lists, "multiply", None)
    })
    .aggregator();

/// graphite-web's `aggregate()`: normalise, fold each row with `func` (rows failing the
/// xFilesFactor are null), name `<func>Series(<path expressions>)`, keep common tags.
pub fn aggregate(
    cx: &Cx<'_, '_>,
    lists: Vec<Vec<Series>>,
    func: &str,
    xff: Option<f64>,
) -> Result<Vec<Series>, EvalError> {
    let short = func.strip_suffix("Series").unwrap_or(func);
    let agg = AggFunc::parse(short)
        .ok_or_else(|| cx.input_error(format!("Unsupported aggregation function: {func}")))?;
    let all: Vec<&Series> = lists.iter().flatten().collect();
    Ok(
        aggregate_refs(&all, agg, short, xff.or(cx.ctx.x_files_factor))
            .into_iter()
            .collect(),
    )
}

fn aggregate_refs(all: &[&Series], agg: AggFunc, short: &str, xff: Option<f64>) -> Option<Series> {
    let n = normalize(all)?;
    let name = format!(
        "{short}Series({})",
        format_path_expressions(all.iter().copied())
    );
    let values = match agg {
        AggFunc::Sum | AggFunc::Average | AggFunc::Min | AggFunc::Max | AggFunc::Count => {
            columnwise(&n, agg, xff)
        }
        _ => {
            let mut row = Vec::with_capacity(all.len());
            (0..n.len())
                .map(|i| {
                    n.row(i, &mut row);
                    let non_null = row.iter().filter(|v| v.is_some()).count();
                    if super::xff(non_null, row.len() as f64, xff) {
                        agg.apply(&row)
                    } else {
                        None
                    }
                })
                .collect()
        }
    };
    let mut tags = all[0].tags.clone();
    for s in &all[1..] {
        tags.retain(|k, v| s.tags.get(k) == Some(v));
    }
    let out = Series::new(name, n.start, n.end, n.step, values);
    Some(aggregated(out, tags, short, xff))
}

/// `aggregate`'s answer from its series folded column by column (a source's
/// [`crate::eval::Source::fold`]): `exprs` are the path expressions of the series folded,
/// distinct, in order, joined by commas; `None` when no series was folded.
pub fn from_columns(cols: &Columns, short: &str, exprs: &str, xff: Option<f64>) -> Option<Series> {
    if cols.rows == 0 {
        return None;
    }
    let name = format!("{short}Series({exprs})");
    let out = Series::new(name, cols.start, cols.end, cols.step, cols.finish(xff));
    Some(aggregated(out, cols.tags.clone().unwrap_or_default(), short, xff))
}

/// `out` with `aggregate`'s tags (the inputs' common `tags`, its name unless they share
/// one, `aggregatedBy`) and xFilesFactor.
fn aggregated(mut out: Series, mut tags: BTreeMap<String, String>, short: &str, xff: Option<f64>) -> Series {
    tags.entry("name".into()).or_insert_with(|| out.name.clone());
    tags.insert("aggregatedBy".into(), short.to_string());
    out.tags = tags;
    out.x_files_factor = xff.unwrap_or(0.0);
    out
}

/// Row aggregation done series by series (sequential memory access). Values are folded in
/// series order, so sums equal Python's left-to-right `sum(row)` to the bit.
fn columnwise(n: &crate::series::Normalized, agg: AggFunc, xff: Option<f64>) -> Vec<Option<f64>> {
    // One monomorphised loop per fold (no per-point dispatch). A sum starts from Python's 0
    // (`0 + -0.0` is `0.0`); min/max start from the first value.
    match agg {
        AggFunc::Min => fold_columns(n, agg, xff, |x| x, f64::min),
        AggFunc::Max => fold_columns(n, agg, xff, |x| x, f64::max),
        _ => sum_columns(n, agg, xff),
    }
}

/// Branch-free sums: a null adds `0.0` to an accumulator that starts at `0.0`, which leaves
/// every bit as Python's `sum()` of the non-null values. Four full-length series are added
/// in one pass (still in series order per point), so the accumulators are read and written
/// a quarter as often.
fn sum_columns(n: &crate::series::Normalized, agg: AggFunc, xff: Option<f64>) -> Vec<Option<f64>> {
    let len = n.len();
    let mut acc = vec![0.0f64; len];
    let mut count = vec![0u32; len];
    let mut cols = n.values.as_slice();
    while let [a, b, c, d, rest @ ..] = cols {
        if [a, b, c, d].iter().any(|col| col.len() != len) {
            break;
        }
        let four = a.iter().zip(b.iter()).zip(c.iter()).zip(d.iter());
        for ((s, k), (((a, b), c), d)) in acc.iter_mut().zip(count.iter_mut()).zip(four) {
            for v in [a, b, c, d] {
                *s += v.unwrap_or(0.0);
                *k += u32::from(v.is_some());
            }
        }
        cols = rest;
    }
    for col in cols {
        for ((a, c), v) in acc.iter_mut().zip(count.iter_mut()).zip(col.iter()) {
            *a += v.unwrap_or(0.0);
            *c += u32::from(v.is_some());
        }
    }
    finish_columns(acc, count, n.values.len() as f64, agg, xff)
}

fn fold_columns(
    n: &crate::series::Normalized,
    agg: AggFunc,
    xff: Option<f64>,
    first: impl Fn(f64) -> f64,
    fold: impl Fn(f64, f64) -> f64,
) -> Vec<Option<f64>> {
    let len = n.len();
    let mut acc = vec![0.0f64; len];
    let mut count = vec![0u32; len];
    for col in &n.values {
        for ((a, c), v) in acc.iter_mut().zip(count.iter_mut()).zip(col.iter()) {
            if let Some(x) = *v {
                *a = if *c == 0 { first(x) } else { fold(*a, x) };
                *c += 1;
            }
        }
    }
    finish_columns(acc, count, n.values.len() as f64, agg, xff)
}

fn finish_columns(
    acc: Vec<f64>,
    count: Vec<u32>,
    rows: f64,
    agg: AggFunc,
    xff: Option<f64>,
) -> Vec<Option<f64>> {
    acc.into_iter()
        .zip(count)
        .map(|(a, c)| {
            if !super::xff(c as usize, rows, xff) {
                return None;
            }
            Some(match agg {
                AggFunc::Average => a / c as f64,
                AggFunc::Count => c as f64,
                _ => a,
            })
        })
        .collect()
}

pub const COUNT_SERIES: Function = Function::new(
    "countSeries",
    "Combine",
    &[opt("seriesLists", T::SeriesList).multiple()],
    |cx, mut a| {
        let lists = a.series_lists("seriesLists");
        if lists.is_empty() {
            let mut s = super::special::constant_line(cx, 0.0, "0".into());
            s.path_expression = "countSeries()".into();
            return Ok(vec![s]);
        }
        let all: Vec<&Series> = lists.iter().flatten().collect();
        let Some(n) = normalize(&all) else {
            return Ok(vec![]);
        };
        let name = format!(
            "countSeries({})",
            format_path_expressions(all.iter().copied())
        );
        let values = vec![Some(all.len() as f64); n.len()];
        let mut s = Series::new(name, n.start, n.end, n.step, values);
        s.x_files_factor = cx.ctx.x_files_factor.unwrap_or(0.0);
        Ok(vec![s])
    },
)
.aggregator();

/// `a / b` over two normalised series, named `divideSeries(a,b)`.
fn divide_pair(cx: &Cx<'_, '_>, a: &Series, b: &Series) -> Series {
    let name = format!("divideSeries({},{})", a.name, b.name);
    let n = normalize(&[a, b]).unwrap_or_else(|| unreachable_norm(a));
    // The point of `a` over the one of `b` at each index; past the shorter one, `None`
    // (graphite-web's `izip_longest`). The same pairs as `Normalized::row`, without a row
    // built per point.
    let column = |k: usize| n.values.get(k).map_or(&[][..], |v| &v[..]);
    let (x, y) = (column(0), column(1));
    let values = if x.len() == y.len() {
        x.iter().zip(y).map(|(p, q)| safe_div(*p, *q)).collect()
    } else {
        let at = |v: &[Option<f64>], i: usize| v.get(i).copied().flatten();
        (0..n.len()).map(|i| safe_div(at(x, i), at(y, i))).collect()
    };
    let mut s = Series::new(name, n.start, n.end, n.step, values);
    s.x_files_factor = cx.ctx.x_files_factor.unwrap_or(0.0);
    s
}

fn unreachable_norm(a: &Series) -> crate::series::Normalized<'_> {
    crate::series::Normalized {
        values: vec![],
        start: a.start,
        end: a.end,
        step: a.step,
    }
}

/// `safe.safeDiv`.
pub fn safe_div(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b != 0.0 => Some(a / b),
        _ => None,
    }
}

pub const DIVIDE_SERIES: Function = Function::new(
    "divideSeries",
    "Combine",
    &[
        req("dividendSeriesList", T::SeriesList),
        req("divisorSeries", T::SeriesList),
    ],
    |cx, mut a| {
        let dividends = a.series("dividendSeriesList");
        let divisor = a.series("divisorSeries");
        if divisor.is_empty() {
            return Ok(dividends
                .into_iter()
                .map(|mut s| {
                    s.rename(format!("divideSeries({},MISSING)", s.name));
                    s.values.iter_mut().for_each(|v| *v = None);
                    s
                })
                .collect());
        }
        if divisor.len() > 1 {
            return Err(cx.input_error(format!(
                "divideSeries second argument must reference exactly 1 series (got {})",
                divisor.len()
            )));
        }
        Ok(dividends
            .iter()
            .map(|d| divide_pair(cx, d, &divisor[0]))
            .collect())
    },
);

pub const DIVIDE_SERIES_LISTS: Function = Function::new(
    "divideSeriesLists",
    "Combine",
    &[
        req("dividendSeriesList", T::SeriesList),
        req("divisorSeriesList", T::SeriesList),
    ],
    |cx, mut a| {
        let (x, y) = (
            a.series("dividendSeriesList"),
            a.series("divisorSeriesList"),
        );
        if x.len() != y.len() {
            return Err(cx.input_error(
                "dividendSeriesList and divisorSeriesList argument must have equal length",
            ));
        }
        Ok(x.iter()
            .zip(&y)
            .map(|(d, v)| divide_pair(cx, d, v))
            .collect())
    },
);

macro_rules! series_lists {
    ($konst:ident, $name:literal, $func:literal) => {
        pub const $konst: Function = Function::new($name, "Combine", TWO_LISTS, |cx, mut a| {
            let (x, y) = (
                a.series("seriesListFirstPos"),
                a.series("seriesListSecondPos"),
            );
            aggregate_series_lists(cx, &x, &y, $func, None)
        })
        .aggregator();
    };
}
series_lists!(SUM_SERIES_LISTS, "sumSeriesLists", "sum");
series_lists!(DIFF_SERIES_LISTS, "diffSeriesLists", "diff");
series_lists!(MULTIPLY_SERIES_LISTS, "multiplySeriesLists", "multiply");

pub const AGGREGATE_SERIES_LISTS: Function = Function::new(
    "aggregateSeriesLists",
    "Combine",
    &[
        req("seriesListFirstPos", T::SeriesList),
        req("seriesListSecondPos", T::SeriesList),
        req("func", T::AggFunc),
        opt("xFilesFactor", T::Float),
    ],
    |cx, mut a| {
        let (x, y) = (
            a.series("seriesListFirstPos"),
            a.series("seriesListSecondPos"),
        );
        let func = a.str("func")?.to_string();
        aggregate_series_lists(cx, &x, &y, &func, a.opt_float("xFilesFactor"))
    },
);

fn aggregate_series_lists(
    cx: &Cx<'_, '_>,
    x: &[Series],
    y: &[Series],
    func: &str,
    xff: Option<f64>,
) -> Result<Vec<Series>, EvalError> {
    if x.len() != y.len() {
        return Err(cx.input_error(
            "seriesListFirstPos and seriesListSecondPos argument must have equal length",
        ));
    }
    let short = func.strip_suffix("Series").unwrap_or(func);
    let agg = AggFunc::parse(short)
        .ok_or_else(|| cx.input_error(format!("Unsupported aggregation function: {func}")))?;
    Ok(x.iter()
        .zip(y)
        .filter_map(|(a, b)| {
            let mut s = aggregate_refs(&[a, b], agg, short, xff.or(cx.ctx.x_files_factor))?;
            s.name = format!("{short}Series({},{})", a.name, b.name);
            Some(s)
        })
        .collect())
}

pub const GROUP: Function = Function::new(
    "group",
    "Combine",
    &[opt("seriesLists", T::SeriesList).multiple()],
    |_, mut a| Ok(a.series("seriesLists")),
);

/// Groups series by key, preserving first-seen key order.
fn group_by<K: Eq + std::hash::Hash + Clone>(
    series: Vec<Series>,
    key: impl Fn(&Series) -> K,
) -> (Vec<K>, HashMap<K, Vec<Series>>) {
    let mut keys = Vec::new();
    let mut groups: HashMap<K, Vec<Series>> = HashMap::new();
    for s in series {
        let k = key(&s);
        match groups.get_mut(&k) {
            Some(g) => g.push(s),
            None => {
                keys.push(k.clone());
                groups.insert(k, vec![s]);
            }
        }
    }
    (keys, groups)
}

fn with_wildcards(
    cx: &Cx<'_, '_>,
    series: Vec<Series>,
    func: &str,
    positions: &[Value],
) -> Result<Vec<Series>, EvalError> {
    let pos: Vec<i64> = positions
        .iter()
        .filter_map(|v| {
            if let Value::Int(i) = v {
                Some(*i)
            } else {
                None
            }
        })
        .collect();
    let (keys, mut groups) = group_by(series, |s| {
        s.name
            .split('.')
            .enumerate()
            .filter(|(i, _)| !pos.contains(&(*i as i64)))
            .map(|(_, n)| n)
            .collect::<Vec<_>>()
            .join(".")
    });
    let mut out = Vec::new();
    for k in keys {
        let g = groups.remove(&k).unwrap_or_default();
        if let Some(mut s) = aggregate(cx, vec![g], func, None)?.pop() {
            s.name = k;
            out.push(s);
        }
    }
    Ok(out)
}

macro_rules! wildcards {
    ($konst:ident, $name:literal, $func:literal) => {
        pub const $konst: Function = Function::new($name, "Combine", WILDCARDS, |cx, mut a| {
            let pos = a.all("position").to_vec();
            with_wildcards(cx, a.series("seriesList"), $func, &pos)
        })
        .aggregator();
    };
}
wildcards!(SUM_SERIES_WITH_WILDCARDS, "sumSeriesWithWildcards", "sum");
wildcards!(
    AVERAGE_SERIES_WITH_WILDCARDS,
    "averageSeriesWithWildcards",
    "average"
);
wildcards!(
    MULTIPLY_SERIES_WITH_WILDCARDS,
    "multiplySeriesWithWildcards",
    "multiply"
);

pub const AGGREGATE_WITH_WILDCARDS: Function = Function::new(
    "aggregateWithWildcards",
    "Combine",
    &[
        SERIES,
        req("func", T::AggFunc),
        opt("position", T::Node).multiple(),
    ],
    |cx, mut a| {
        let func = a.str("func")?.to_string();
        let pos = a.all("position").to_vec();
        with_wildcards(cx, a.series("seriesList"), &func, &pos)
    },
);

pub const GROUP_BY_NODE: Function = Function::new(
    "groupByNode",
    "Combine",
    &[
        SERIES,
        req("nodeNum", T::NodeOrTag),
        opt("callback", T::AggOrSeriesFunc).default(Default::Str("average")),
    ],
    |cx, mut a| {
        let node = a.arg("nodeNum")?.clone();
        let cb = a.str("callback")?.to_string();
        group_by_nodes(cx, a.series("seriesList"), &cb, &[node])
    },
)
.keeps_shape(one_series_per_group);

pub const GROUP_BY_NODES: Function = Function::new(
    "groupByNodes",
    "Combine",
    &[
        SERIES,
        req("callback", T::AggOrSeriesFunc),
        opt("nodes", T::NodeOrTag).multiple(),
    ],
    |cx, mut a| {
        let cb = a.str("callback")?.to_string();
        let nodes = a.all("nodes").to_vec();
        group_by_nodes(cx, a.series("seriesList"), &cb, &nodes)
    },
)
.keeps_shape(one_series_per_group);

/// `groupByNode(s)`'s shape rule: a callback that makes one series of any non-empty group
/// (an aggregation or an aggregating function other than `asPercent`), at the LCM of the
/// group's steps, gives no group for no series and, for series of one step, groups of it.
fn one_series_per_group(a: &Args) -> bool {
    let Ok(cb) = a.str("callback") else {
        return false;
    };
    match super::lookup(cb).filter(|f| f.aggregator) {
        Some(f) => !matches!(f.name, "asPercent" | "pct"),
        None => AggFunc::parse(cb.strip_suffix("Series").unwrap_or(cb)).is_some(),
    }
}

fn group_by_nodes(
    cx: &mut Cx<'_, '_>,
    series: Vec<Series>,
    callback: &str,
    nodes: &[Value],
) -> Result<Vec<Series>, EvalError> {
    let (keys, mut groups) = group_by(series, |s| agg_key(s, nodes));
    let func = super::lookup(callback).filter(|f| f.aggregator);
    let mut out = Vec::new();
    for k in keys {
        let g = groups.remove(&k).unwrap_or_default();
        let res = match func {
            Some(f) => (f.run)(cx, Args::from_slots(f, vec![vec![Value::Series(g)]]))?,
            None => aggregate(cx, vec![g], callback, None)?,
        };
        if let Some(mut s) = res.into_iter().next() {
            s.name = k;
            out.push(s);
        }
    }
    Ok(out)
}

pub const PERCENTILE_OF_SERIES: Function = Function::new(
    "percentileOfSeries",
    "Combine",
    &[
        SERIES,
        req("n", T::Float),
        opt("interpolate", T::Bool).default(Default::Bool(false)),
    ],
    |cx, mut a| {
        let n = a.float("n")?;
        let interp = a.bool("interpolate")?;
        if n <= 0.0 {
            return Err(cx.input_error("The requested percent is required to be greater than 0"));
        }
        let series = a.series("seriesList");
        if series.is_empty() {
            return Ok(vec![]);
        }
        let name = format!(
            "percentileOfSeries({},{})",
            series[0].path_expression,
            fmt_g(n)
        );
        let refs: Vec<&Series> = series.iter().collect();
        let Some(norm) = normalize(&refs) else {
            return Ok(vec![]);
        };
        // graphite-web zips the raw (unconsolidated) values here.
        let len = series.iter().map(|s| s.values.len()).max().unwrap_or(0);
        let values = (0..len)
            .map(|i| {
                let row: Vec<Option<f64>> = series
                    .iter()
                    .map(|s| s.values.get(i).copied().flatten())
                    .collect();
                percentile(&row, n, interp)
            })
            .collect();
        let mut s = Series::new(name, norm.start, norm.end, norm.step, values);
        s.x_files_factor = cx.ctx.x_files_factor.unwrap_or(0.0);
        Ok(vec![s])
    },
);

/// graphite-web's `_getPercentile`.
pub fn percentile(points: &[Option<f64>], n: f64, interpolate: bool) -> Option<f64> {
    let mut sorted: Vec<f64> = points.iter().filter_map(|v| *v).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let fractional_rank = n / 100.0 * (sorted.len() as f64 + 1.0);
    let mut rank = fractional_rank as i64;
    let rank_fraction = fractional_rank - rank as f64;
    if !interpolate {
        rank = rank.saturating_add(rank_fraction.ceil() as i64);
    }
    let len = sorted.len() as i64;
    let mut p = if rank == 0 {
        sorted[0]
    } else if rank.saturating_sub(1) == len {
        sorted[sorted.len() - 1]
    } else {
        // Python indexing: rank - 1 may exceed len (n > 100) → IndexError there; clamp here.
        *sorted.get(rank.saturating_sub(1).clamp(0, len - 1) as usize)?
    };
    if interpolate && rank != len {
        if let Some(next) = sorted.get(rank as usize) {
            p += rank_fraction * (next - p);
        }
    }
    Some(p)
}

/// Sums a group of total series as asPercent does (`safeSum` per row, no xFilesFactor).
fn sum_total(cx: &Cx<'_, '_>, group: &[Series]) -> Series {
    if group.len() == 1 {
        return group[0].clone();
    }
    let refs: Vec<&Series> = group.iter().collect();
    let name = format!(
        "sumSeries({})",
        format_path_expressions(refs.iter().copied())
    );
    let len = group.iter().map(|s| s.values.len()).max().unwrap_or(0);
    let (start, end, step) = normalize(&refs)
        .map_or((group[0].start, group[0].end, group[0].step), |n| {
            (n.start, n.end, n.step)
        });
    let values = (0..len)
        .map(|i| {
            AggFunc::Sum.apply(
                &group
                    .iter()
                    .map(|s| s.values.get(i).copied().flatten())
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    let mut s = Series::new(name, start, end, step, values);
    s.x_files_factor = cx.ctx.x_files_factor.unwrap_or(0.0);
    s
}

fn pct(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    safe_div(a, b).map(|q| q * 100.0)
}

fn as_percent(cx: &mut Cx<'_, '_>, mut a: Args) -> Result<Vec<Series>, EvalError> {
    let series = a.series("seriesList");
    let total = a.value("total").cloned();
    let nodes = a.all("nodes").to_vec();
    let xff = cx.ctx.x_files_factor.unwrap_or(0.0);
    let mk = |name: String, start, end, step, values| {
        let mut s = Series::new(name, start, end, step, values);
        s.x_files_factor = xff;
        s
    };
    if !nodes.is_empty() {
        let (mut keys, mut meta) = group_by(series, |s| agg_key(s, &nodes));
        let mut totals: BTreeMap<String, Series> = BTreeMap::new();
        match total {
            None | Some(Value::None) => {
                for k in &keys {
                    totals.insert(k.clone(), sum_total(cx, &meta[k]));
                }
            }
            Some(Value::Series(t)) => {
                let (tkeys, tgroups) = group_by(t, |s| agg_key(s, &nodes));
                for k in tkeys {
                    if !keys.contains(&k) {
                        keys.push(k.clone());
                    }
                    totals.insert(k.clone(), sum_total(cx, &tgroups[&k]));
                }
            }
            Some(_) => return Err(cx.input_error("total must be None or a seriesList")),
        }
        let mut out = Vec::new();
        let mut last: Option<(i64, i64, i64)> = None;
        for k in keys {
            let Some(group) = meta.remove(&k) else {
                let t = &totals[&k];
                let (start, end, step) = last.unwrap_or((t.start, t.end, t.step));
                out.push(mk(
                    format!("asPercent(MISSING,{})", t.name),
                    start,
                    end,
                    step,
                    vec![None; t.values.len()],
                ));
                continue;
            };
            for s1 in group {
                match totals.get(&k) {
                    None => {
                        let (start, end, step) = last.unwrap_or((s1.start, s1.end, s1.step));
                        out.push(mk(
                            format!("asPercent({},MISSING)", s1.name),
                            start,
                            end,
                            step,
                            vec![None; s1.values.len()],
                        ));
                    }
                    Some(s2) => {
                        let n = normalize(&[&s1, s2]).unwrap_or_else(|| unreachable_norm(&s1));
                        last = Some((n.start, n.end, n.step));
                        let mut row = Vec::new();
                        let values = (0..n.len())
                            .map(|i| {
                                n.row(i, &mut row);
                                pct(row[0], row[1])
                            })
                            .collect();
                        out.push(mk(
                            format!("asPercent({},{})", s1.name, s2.name),
                            n.start,
                            n.end,
                            n.step,
                            values,
                        ));
                    }
                }
            }
        }
        return Ok(out);
    }
    if series.is_empty() {
        return Ok(vec![]);
    }
    let refs: Vec<&Series> = series.iter().collect();
    let (total_values, total_text): (Vec<Option<f64>>, Option<String>) = match &total {
        None | Some(Value::None) => {
            let len = series.iter().map(|s| s.values.len()).max().unwrap_or(0);
            let vals = (0..len)
                .map(|i| {
                    AggFunc::Sum.apply(
                        &series
                            .iter()
                            .map(|s| s.values.get(i).copied().flatten())
                            .collect::<Vec<_>>(),
                    )
                })
                .collect();
            (
                vals,
                Some(format!(
                    "sumSeries({})",
                    format_path_expressions(refs.iter().copied())
                )),
            )
        }
        Some(Value::Series(t)) => {
            if t.len() != 1 && t.len() != series.len() {
                return Err(cx.input_error("asPercent second argument must be missing, a single digit, reference exactly 1 series or reference the same number of series as the first argument"));
            }
            if t.len() == series.len() {
                // pairwise, matched by sorted name
                let mut xs: Vec<&Series> = series.iter().collect();
                let mut ys: Vec<&Series> = t.iter().collect();
                xs.sort_by(|a, b| a.name.cmp(&b.name));
                ys.sort_by(|a, b| a.name.cmp(&b.name));
                return Ok(xs
                    .into_iter()
                    .zip(ys)
                    .map(|(s1, s2)| {
                        let n = normalize(&[s1, s2]).unwrap_or_else(|| unreachable_norm(s1));
                        let mut row = Vec::new();
                        let values = (0..n.len())
                            .map(|i| {
                                n.row(i, &mut row);
                                pct(row[0], row[1])
                            })
                            .collect();
                        mk(
                            format!("asPercent({},{})", s1.name, s2.name),
                            n.start,
                            n.end,
                            n.step,
                            values,
                        )
                    })
                    .collect());
            }
            (t[0].values.clone(), Some(t[0].name.clone()))
        }
        Some(v) => match v {
            Value::Int(_) | Value::Float(_) => {
                let f = match v {
                    Value::Int(i) => *i as f64,
                    Value::Float(f) => *f,
                    _ => 0.0,
                };
                (vec![Some(f); series[0].values.len()], Some(v.py_str()))
            }
            _ => return Err(cx.input_error("total must be a number or a seriesList")),
        },
    };
    Ok(series
        .iter()
        .map(|s| {
            let len = s.values.len().max(total_values.len());
            let values = (0..len)
                .map(|i| {
                    pct(
                        s.values.get(i).copied().flatten(),
                        total_values.get(i).copied().flatten(),
                    )
                })
                .collect();
            let tt = total_text
                .clone()
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| s.path_expression.clone());
            mk(
                format!("asPercent({},{})", s.name, tt),
                s.start,
                s.end,
                s.step,
                values,
            )
        })
        .collect())
}

const AS_PERCENT_PARAMS: &[super::Param] = &[
    SERIES,
    opt("total", T::Any),
    opt("nodes", T::NodeOrTag).multiple(),
];
pub const AS_PERCENT: Function =
    Function::new("asPercent", "Combine", AS_PERCENT_PARAMS, as_percent).aggregator();
pub const PCT: Function =
    Function::new("pct", "Combine", AS_PERCENT_PARAMS, as_percent).aggregator();

pub const POW_SERIES: Function = Function::new(
    "powSeries",
    "Combine",
    &[req("seriesList", T::SeriesList).multiple()],
    |cx, mut a| {
        let lists = a.series_lists("seriesList");
        let all: Vec<&Series> = lists.iter().flatten().collect();
        let Some(n) = normalize(&all) else {
            return Ok(vec![]);
        };
        let name = format!(
            "powSeries({})",
            all.iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(",")
        );
        let mut row = Vec::new();
        let values = (0..n.len())
            .map(|i| {
                n.row(i, &mut row);
                let mut it = row.iter().copied();
                let first = it.next().flatten();
                it.fold(first, |acc, e| match (acc, e) {
                    (Some(x), Some(y)) => super::transform::safe_pow(Some(x), y),
                    _ => None,
                })
            })
            .collect();
        let mut s = Series::new(name, n.start, n.end, n.step, values);
        s.x_files_factor = cx.ctx.x_files_factor.unwrap_or(0.0);
        Ok(vec![s])
    },
)
.aggregator();

pub const WEIGHTED_AVERAGE: Function = Function::new(
    "weightedAverage",
    "Combine",
    &[
        req("seriesListAvg", T::SeriesList),
        req("seriesListWeight", T::SeriesList),
        opt("nodes", T::NodeOrTag).multiple(),
    ],
    |cx, mut a| {
        let avgs = a.series("seriesListAvg");
        let weights = a.series("seriesListWeight");
        let nodes = a.all("nodes").to_vec();
        if avgs.len() != weights.len() {
            return Err(cx.input_error(format!(
                "weightedAverage must receive the same number of series for seriesListAvg and seriesListWeight but received respectively {} and {}",
                avgs.len(),
                weights.len()
            )));
        }
        // key → (avg, weight), in first-seen order
        let mut keys: Vec<String> = Vec::new();
        let mut pairs: HashMap<String, (Option<&Series>, Option<&Series>)> = HashMap::new();
        for (sa, sw) in avgs.iter().zip(&weights) {
            for (s, is_avg) in [(sa, true), (sw, false)] {
                let k = agg_key(s, &nodes);
                let e = pairs.entry(k.clone()).or_insert_with(|| {
                    keys.push(k);
                    (None, None)
                });
                if is_avg {
                    e.0 = Some(s);
                } else {
                    e.1 = Some(s);
                }
            }
        }
        let mut products = Vec::new();
        for k in &keys {
            if let Some((Some(sa), Some(sw))) = pairs.get(k) {
                let len = sa.values.len().max(sw.values.len());
                let values = (0..len)
                    .map(|i| {
                        match (
                            sa.values.get(i).copied().flatten(),
                            sw.values.get(i).copied().flatten(),
                        ) {
                            (Some(x), Some(y)) => Some(x * y),
                            _ => None,
                        }
                    })
                    .collect();
                products.push(Series::new(
                    format!("product({},{})", sw.name, sa.name),
                    sa.start,
                    sa.end,
                    sa.step,
                    values,
                ));
            }
        }
        if products.is_empty() {
            return Ok(vec![]);
        }
        let Some(sum_products) = aggregate(cx, vec![products], "sum", None)?.pop() else {
            return Ok(vec![]);
        };
        let Some(sum_weights) = aggregate(cx, vec![weights.clone()], "sum", None)?.pop() else {
            return Ok(vec![]);
        };
        let len = sum_products.values.len().max(sum_weights.values.len());
        let values = (0..len)
            .map(|i| {
                safe_div(
                    sum_products.values.get(i).copied().flatten(),
                    sum_weights.values.get(i).copied().flatten(),
                )
            })
            .collect();
        let sorted_paths = |l: &[Series]| {
            let set: std::collections::BTreeSet<&str> =
                l.iter().map(|s| s.path_expression.as_str()).collect();
            set.into_iter().collect::<Vec<_>>().join(",")
        };
        let name = format!(
            "weightedAverage({}, {}, {})",
            sorted_paths(&avgs),
            sorted_paths(&weights),
            nodes
                .iter()
                .map(Value::py_str)
                .collect::<Vec<_>>()
                .join(",")
        );
        let mut s = Series::new(
            name,
            sum_products.start,
            sum_products.end,
            sum_products.step,
            values,
        );
        s.x_files_factor = cx.ctx.x_files_factor.unwrap_or(0.0);
        Ok(vec![s])
    },
);

#[cfg(test)]
mod tests {
    use super::super::testkit::*;

    proptest::proptest! {
        /// Sums and averages folded four series at a time give, to the bit, the row-by-row
        /// fold (Python's left-to-right `sum()` of the non-null values), over nulls, signed
        /// zeros and series of unequal lengths.
        #[test]
        fn columnwise_sums_are_the_rows_sums(
            cols in proptest::collection::vec(
                proptest::collection::vec(proptest::option::of(-1e6f64..1e6), 24), 0..11),
            cuts in proptest::collection::vec(0usize..120, 11),
            zero in proptest::bool::ANY,
        ) {
            use crate::series::Normalized;
            use std::borrow::Cow;
            // Most series full length (summed four at a time), some cut short.
            let values: Vec<Cow<'_, [Option<f64>]>> = cols
                .iter()
                .zip(&cuts)
                .map(|(c, &cut)| {
                    let c: Vec<_> = c
                        .iter()
                        .take(if cut < 24 { cut } else { 24 })
                        .map(|v| v.map(|x| if zero { -0.0 } else { x }))
                        .collect();
                    Cow::Owned(c)
                })
                .collect();
            let n = Normalized { values, start: 0, end: 0, step: 1 };
            for agg in [super::AggFunc::Sum, super::AggFunc::Average, super::AggFunc::Count] {
                let got = super::columnwise(&n, agg, None);
                let mut row = Vec::new();
                let want: Vec<Option<f64>> = (0..n.len())
                    .map(|i| {
                        n.row(i, &mut row);
                        let known = row.iter().filter(|v| v.is_some()).count();
                        if super::super::xff(known, row.len() as f64, None) {
                            agg.apply(&row)
                        } else {
                            None
                        }
                    })
                    .collect();
                let bits = |v: &[Option<f64>]| v.iter().map(|x| x.map(f64::to_bits)).collect::<Vec<_>>();
                proptest::prop_assert_eq!(bits(&got), bits(&want), "{:?}", agg);
            }
        }
    }

    #[test]
    fn aggregates() {
        let a = ser("a.b.c", &[Some(1.0), None, Some(3.0), None]);
        let b = ser("a.x.c", &[Some(2.0), Some(4.0), None, None]);
        let data = [a, b];
        let pair = || vec![p("a.*.c")];
        for (f, want) in [
            ("sumSeries", vec![Some(3.0), Some(4.0), Some(3.0), None]),
            ("averageSeries", vec![Some(1.5), Some(4.0), Some(3.0), None]),
            ("maxSeries", vec![Some(2.0), Some(4.0), Some(3.0), None]),
            ("minSeries", vec![Some(1.0), Some(4.0), Some(3.0), None]),
            ("diffSeries", vec![Some(-1.0), Some(4.0), Some(3.0), None]),
            ("multiplySeries", vec![Some(2.0), None, None, None]),
            ("stddevSeries", vec![Some(0.5), Some(0.0), Some(0.0), None]),
            ("rangeOfSeries", vec![Some(1.0), Some(0.0), Some(0.0), None]),
        ] {
            let out = run(&data, c(f, pair()));
            let short = f.strip_suffix("Series").unwrap_or(f);
            check(&out, &[(&format!("{short}Series(a.*.c)"), &want)]);
        }
        let out = run(&data, c("countSeries", pair()));
        check(&out, &[("countSeries(a.*.c)", &[Some(2.0); 4])]);
        let out = run(&data, c("aggregate", vec![p("a.*.c"), s("avg_zero")]));
        check(
            &out,
            &[(
                "avg_zeroSeries(a.*.c)",
                &[Some(1.5), Some(2.0), Some(1.5), None],
            )],
        );
        assert_eq!(out[0].tags["aggregatedBy"], "avg_zero");
        let out = run(&data, c("sumSeries", vec![p("a.b.c"), p("a.x.c")]));
        check(
            &out,
            &[(
                "sumSeries(a.b.c,a.x.c)",
                &[Some(3.0), Some(4.0), Some(3.0), None],
            )],
        );
        let out = run(&data, c("aggregate", vec![p("a.*.c"), s("sum"), f(0.6)]));
        check(
            &out,
            &[("sumSeries(a.*.c)", &[Some(3.0), None, None, None])],
        );
    }

    #[test]
    fn aggregate_normalises_steps() {
        let a = ser_step("a", 10, &[Some(1.0), Some(3.0), Some(5.0), Some(7.0)]);
        let b = ser_step("b", 20, &[Some(10.0), Some(20.0)]);
        let out = run_window(&[a, b], c("sumSeries", vec![p("a"), p("b")]), -10, 30);
        assert_eq!(out[0].step, 20);
        assert_eq!(out[0].values, vec![Some(12.0), Some(26.0)]);
    }

    #[test]
    fn divide() {
        let data = [
            ser("a", &[Some(10.0), Some(4.0), None, Some(1.0)]),
            ser("b", &[Some(2.0), Some(0.0), Some(1.0), Some(4.0)]),
            ser("c", &[Some(5.0), Some(2.0), Some(1.0), Some(1.0)]),
        ];
        let out = run(&data, c("divideSeries", vec![p("a"), p("b")]));
        check(
            &out,
            &[("divideSeries(a,b)", &[Some(5.0), None, None, Some(0.25)])],
        );
        let out = run(&data, c("divideSeries", vec![p("a"), p("nope")]));
        check(&out, &[("divideSeries(a,MISSING)", &[None; 4])]);
        let err = run_err(&data, c("divideSeries", vec![p("a"), p("{b,c}")]));
        assert!(err.contains("exactly 1 series (got 2)"), "{err}");
        let out = run(&data, c("divideSeriesLists", vec![p("{a,b}"), p("{b,c}")]));
        check(
            &out,
            &[
                ("divideSeries(a,b)", &[Some(5.0), None, None, Some(0.25)]),
                (
                    "divideSeries(b,c)",
                    &[Some(0.4), Some(0.0), Some(1.0), Some(4.0)],
                ),
            ],
        );
    }

    #[test]
    fn as_percent_forms() {
        let data = [
            ser("s.a", &[Some(1.0), Some(3.0), None]),
            ser("s.b", &[Some(3.0), Some(1.0), Some(2.0)]),
            ser("t.a", &[Some(4.0), Some(6.0), Some(4.0)]),
        ];
        let out = run(&data, c("asPercent", vec![p("s.*")]));
        check(
            &out,
            &[
                (
                    "asPercent(s.a,sumSeries(s.*))",
                    &[Some(25.0), Some(75.0), None],
                ),
                (
                    "asPercent(s.b,sumSeries(s.*))",
                    &[Some(75.0), Some(25.0), Some(100.0)],
                ),
            ],
        );
        let out = run(&data, c("asPercent", vec![p("s.a"), i(4)]));
        check(
            &out,
            &[("asPercent(s.a,4)", &[Some(25.0), Some(75.0), None])],
        );
        let out = run(&data, c("asPercent", vec![p("s.a"), f(4.0)]));
        assert_eq!(out[0].name, "asPercent(s.a,4.0)");
        let out = run(&data, c("asPercent", vec![p("s.*"), p("t.a")]));
        check(
            &out,
            &[
                ("asPercent(s.a,t.a)", &[Some(25.0), Some(50.0), None]),
                (
                    "asPercent(s.b,t.a)",
                    &[Some(75.0), Some(100.0 / 6.0), Some(50.0)],
                ),
            ],
        );
        // nodes form: group by node 1, totals by the same key
        let out = run(&data, c("asPercent", vec![p("s.*"), p("t.*"), i(1)]));
        check(
            &out,
            &[
                ("asPercent(s.a,t.a)", &[Some(25.0), Some(50.0), None]),
                ("asPercent(s.b,MISSING)", &[None, None, None]),
            ],
        );
        let out = run(&data, c("asPercent", vec![p("{s,t}.*"), none(), i(1)]));
        check(
            &out,
            &[
                (
                    "asPercent(s.a,sumSeries({s,t}.*))",
                    &[Some(20.0), Some(100.0 * 3.0 / 9.0), None],
                ),
                (
                    "asPercent(t.a,sumSeries({s,t}.*))",
                    &[Some(80.0), Some(100.0 * 6.0 / 9.0), Some(100.0)],
                ),
                (
                    "asPercent(s.b,s.b)",
                    &[Some(100.0), Some(100.0), Some(100.0)],
                ),
            ],
        );
    }

    #[test]
    fn grouping() {
        let data = [
            ser("srv.h1.cpu.user", &[Some(1.0), Some(2.0)]),
            ser("srv.h1.cpu.sys", &[Some(3.0), Some(4.0)]),
            ser("srv.h2.cpu.user", &[Some(5.0), None]),
        ];
        let out = run(
            &data,
            c("groupByNode", vec![p("srv.*.cpu.*"), i(1), s("sumSeries")]),
        );
        check(
            &out,
            &[("h1", &[Some(4.0), Some(6.0)]), ("h2", &[Some(5.0), None])],
        );
        let out = run(&data, c("groupByNode", vec![p("srv.*.cpu.*"), i(3)]));
        check(
            &out,
            &[
                ("sys", &[Some(3.0), Some(4.0)]),
                ("user", &[Some(3.0), Some(2.0)]),
            ],
        );
        let out = run(
            &data,
            c("groupByNodes", vec![p("srv.*.cpu.*"), s("max"), i(1), i(3)]),
        );
        assert_eq!(names(&out), ["h1.sys", "h1.user", "h2.user"]);
        let out = run(
            &data,
            c("sumSeriesWithWildcards", vec![p("srv.*.cpu.*"), i(1)]),
        );
        check(
            &out,
            &[
                ("srv.cpu.sys", &[Some(3.0), Some(4.0)]),
                ("srv.cpu.user", &[Some(6.0), Some(2.0)]),
            ],
        );
        let out = run(
            &data,
            c(
                "averageSeriesWithWildcards",
                vec![p("srv.*.cpu.*"), i(1), i(3)],
            ),
        );
        check(&out, &[("srv.cpu", &[Some(3.0), Some(3.0)])]);
        let out = run(
            &data,
            c("group", vec![p("srv.h1.cpu.user"), p("srv.h2.*.*")]),
        );
        assert_eq!(names(&out), ["srv.h1.cpu.user", "srv.h2.cpu.user"]);
        // groupByNode over a function-wrapped name uses the first path expression
        let out = run(
            &data,
            c(
                "groupByNode",
                vec![c("scale", vec![p("srv.*.cpu.*"), i(2)]), i(1), s("sum")],
            ),
        );
        assert_eq!(names(&out), ["h1", "h2"]);
    }

    #[test]
    fn percentile_of_series() {
        let data = [
            ser("p.a", &[Some(1.0), Some(5.0)]),
            ser("p.b", &[Some(2.0), None]),
            ser("p.c", &[Some(3.0), Some(7.0)]),
        ];
        let out = run(&data, c("percentileOfSeries", vec![p("p.*"), f(50.0)]));
        check(
            &out,
            &[("percentileOfSeries(p.*,50)", &[Some(2.0), Some(7.0)])],
        );
        let out = run(
            &data,
            c("percentileOfSeries", vec![p("p.*"), f(50.0), b(true)]),
        );
        check(
            &out,
            &[("percentileOfSeries(p.*,50)", &[Some(2.0), Some(6.0)])],
        );
    }

    #[test]
    fn series_lists() {
        let data = [
            ser("x.a", &[Some(1.0)]),
            ser("x.b", &[Some(2.0)]),
            ser("y.a", &[Some(10.0)]),
            ser("y.b", &[Some(20.0)]),
        ];
        let out = run(&data, c("sumSeriesLists", vec![p("x.*"), p("y.*")]));
        check(
            &out,
            &[
                ("sumSeries(x.a,y.a)", &[Some(11.0)]),
                ("sumSeries(x.b,y.b)", &[Some(22.0)]),
            ],
        );
        let out = run(&data, c("diffSeriesLists", vec![p("x.*"), p("y.*")]));
        check(
            &out,
            &[
                ("diffSeries(x.a,y.a)", &[Some(-9.0)]),
                ("diffSeries(x.b,y.b)", &[Some(-18.0)]),
            ],
        );
    }
}
