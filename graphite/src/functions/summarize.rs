//! Re-bucketing over time: `summarize`, `hitcount`, `smartSummarize`, and `nPercentile`.
//! Calendar alignment (`alignToInterval`, `alignTo`) is done in UTC.

use super::{
    aggregate::percentile, opt, parse_interval, raw_arg, req, AggFunc, Default, Function,
    ParamType as T, SERIES,
};
use crate::eval::{Cx, EvalError};
use crate::expr::ast::{Call, Expr};
use crate::series::{fmt_g, py_float, Series};

/// graphite-web's `_summarizeValues`: values per `interval` bucket from `new_start` to
/// `new_end`, and the end actually reached.
pub(super) fn summarize_values(
    s: &Series,
    agg: AggFunc,
    interval: i64,
    new_start: i64,
    new_end: i64,
) -> (Vec<Option<f64>>, i64) {
    let step = s.step.max(1);
    let ts_count = if s.end > s.start {
        ((s.end - s.start) + step - 1) / step
    } else {
        0
    } as usize;
    let num = ts_count.min(s.values.len());
    let ts = |i: usize| s.start + i as i64 * step;
    let interval_points = interval as f64 / step as f64;
    let mut out = Vec::new();
    let mut i = 0usize;
    let mut t = new_start;
    if interval <= 0 {
        return (out, t);
    }
    while t < new_end {
        let mut first = i;
        let mut non_null = 0usize;
        while i < num && ts(i) < t + interval {
            if ts(i) <= t {
                first = i;
            }
            if ts(i) >= t && s.values[i].is_some() {
                non_null += 1;
            }
            i += 1;
        }
        out.push(
            if super::xff(non_null, interval_points, Some(s.x_files_factor)) {
                agg.apply(&s.values[first..i])
            } else {
                None
            },
        );
        t += interval;
    }
    (out, t)
}

fn interval_of(cx: &Cx<'_, '_>, a: &super::Args) -> Result<(String, i64), EvalError> {
    let text = a.str("intervalString")?.to_string();
    match parse_interval(&text) {
        Some(d) if d != 0 => Ok((text, d.saturating_abs())),
        _ => Err(cx.input_error(format!(
            "invalid interval {text:?}: expected e.g. \"1h\" or \"10min\""
        ))),
    }
}

pub const SUMMARIZE: Function = Function::new(
    "summarize",
    "Transform",
    &[
        SERIES,
        req("intervalString", T::Interval),
        opt("func", T::AggFunc).default(Default::Str("sum")),
        opt("alignToFrom", T::Bool).default(Default::Bool(false)),
    ],
    |cx, mut a| {
        let (text, interval) = interval_of(cx, &a)?;
        let func = a.str("func")?.to_string();
        let agg = AggFunc::parse(&func).unwrap_or(AggFunc::Sum);
        let align = a.bool("alignToFrom")?;
        a.series("seriesList")
            .into_iter()
            .map(|mut s| {
                let (start, mut end) = if align {
                    (s.start, s.end)
                } else {
                    (
                        s.start - s.start.rem_euclid(interval),
                        s.end
                            .saturating_sub(s.end.rem_euclid(interval))
                            .saturating_add(interval),
                    )
                };
                // The buckets, before they are made.
                cx.charge_span(start, end, interval)?;
                let (values, aligned_end) = summarize_values(&s, agg, interval, start, end);
                if align {
                    end = aligned_end;
                }
                s.tag("summarize", text.clone());
                s.tag("summarizeFunction", func.clone());
                let name = format!(
                    "summarize({}, \"{}\", \"{}\"{})",
                    s.name,
                    text,
                    func,
                    if align { ", true" } else { "" }
                );
                let mut out = s.derive(name, values);
                out.start = start;
                out.end = end;
                out.step = interval;
                Ok(out)
            })
            .collect()
    },
);

/// Truncates `t` (UTC) to the start of its year/month/week (Monday)/day/hour/minute/second
/// (calendar arithmetic by `jiff`, as in [`crate::attime`]).
fn align_start(t: i64, unit: &str) -> i64 {
    let utc = jiff::tz::TimeZone::UTC;
    let day_start = |d: jiff::civil::Date| {
        d.to_zoned(utc.clone())
            .map_or(t, |z| z.timestamp().as_second())
    };
    let Ok(date) = jiff::Timestamp::from_second(t).map(|ts| ts.to_zoned(utc.clone()).date()) else {
        return t;
    };
    match unit {
        "years" => day_start(date.first_of_year()),
        "months" => day_start(date.first_of_month()),
        "weeks" => {
            let back = i64::from(date.weekday().to_monday_zero_offset());
            day_start(date) - back * 86400
        }
        "days" => day_start(date),
        "hours" => t - t.rem_euclid(3600),
        "minutes" => t - t.rem_euclid(60),
        _ => t,
    }
}

fn hitcount_unit(interval: i64) -> &'static str {
    if interval >= 86400 {
        "days"
    } else if interval >= 3600 {
        "hours"
    } else if interval >= 60 {
        "minutes"
    } else {
        "none"
    }
}

fn hitcount_window(call: &Call, from: i64, until: i64, _step: Option<i64>) -> Vec<(i64, i64)> {
    let align = matches!(raw_arg(call, 2, "alignToInterval"), Some(Expr::Bool(true)));
    match (align, raw_arg(call, 1, "intervalString")) {
        (true, Some(Expr::Str(s))) => parse_interval(s)
            .map(|d| vec![(align_start(from, hitcount_unit(d)), until)])
            .unwrap_or_default(),
        _ => vec![],
    }
}

pub const HITCOUNT: Function = Function::new(
    "hitcount",
    "Transform",
    &[
        SERIES,
        req("intervalString", T::Interval),
        opt("alignToInterval", T::Bool).default(Default::Bool(false)),
    ],
    |cx, mut a| {
        let (text, interval) = interval_of(cx, &a)?;
        let align = a.bool("alignToInterval")?;
        let mut series = a.series("seriesList");
        if align {
            series = cx.eval_first_arg(align_start(cx.from, hitcount_unit(interval)), cx.until)?;
            for s in series.iter_mut() {
                let count = (s.end - s.start).div_euclid(interval);
                s.end = s.start + count * interval + interval;
            }
        }
        series
            .into_iter()
            .map(|mut s| {
                let step = s.step;
                // The buckets (a `Vec` each, then a value each: 3 points' worth), before
                // they are made.
                let buckets_n = cx.charge_span(s.start, s.end, interval)? as i64;
                cx.charge(2 * buckets_n as u64)?;
                let mut buckets: Vec<Vec<f64>> = vec![Vec::new(); buckets_n as usize];
                let new_start = s.end - buckets_n * interval;
                for (i, v) in s.values.iter().enumerate() {
                    cx.tick()?;
                    let Some(v) = *v else { continue };
                    let start_time = s.start + i as i64 * step;
                    if start_time - new_start >= buckets_n * interval {
                        // a point past the series' end (graphite-web would raise IndexError)
                        continue;
                    }
                    let (sb, smod) = (
                        (start_time - new_start).div_euclid(interval),
                        (start_time - new_start).rem_euclid(interval),
                    );
                    let end_time = start_time + step;
                    let (mut eb, mut emod) = (
                        (end_time - new_start).div_euclid(interval),
                        (end_time - new_start).rem_euclid(interval),
                    );
                    if eb >= buckets_n {
                        eb = buckets_n - 1;
                        emod = interval;
                    }
                    if sb == eb {
                        if sb >= 0 {
                            buckets[sb as usize].push(v * (emod - smod) as f64);
                        }
                    } else {
                        if sb >= 0 {
                            buckets[sb as usize].push(v * (interval - smod) as f64);
                        }
                        for j in (sb + 1)..eb {
                            if j >= 0 {
                                buckets[j as usize].push(v * interval as f64);
                            }
                        }
                        if emod > 0 && eb >= 0 {
                            buckets[eb as usize].push(v * emod as f64);
                        }
                    }
                }
                let values = buckets
                    .iter()
                    .map(|b| (!b.is_empty()).then(|| super::py_sum(b.iter().copied())))
                    .collect();
                s.tag("hitcount", text.clone());
                let name = format!(
                    "hitcount({}, \"{}\"{})",
                    s.name,
                    text,
                    if align { ", true" } else { "" }
                );
                let mut out = s.derive(name, values);
                out.start = new_start;
                out.step = interval;
                Ok(out)
            })
            .collect()
    },
)
.window(hitcount_window);

const ALIGN_TO: &[&str] = &[
    "years", "months", "weeks", "days", "hours", "minutes", "seconds", "True", "False",
];

fn smart_window(call: &Call, from: i64, until: i64, _step: Option<i64>) -> Vec<(i64, i64)> {
    match raw_arg(call, 3, "alignTo") {
        Some(Expr::Str(u)) => vec![(align_start(from, u), until)],
        _ => vec![],
    }
}

pub const SMART_SUMMARIZE: Function = Function::new(
    "smartSummarize",
    "Transform",
    &[
        SERIES,
        req("intervalString", T::Interval),
        opt("func", T::AggFunc).default(Default::Str("sum")),
        opt("alignTo", T::String).options(ALIGN_TO),
    ],
    |cx, mut a| {
        let (text, interval) = interval_of(cx, &a)?;
        let func = a.str("func")?.to_string();
        let agg = AggFunc::parse(&func).unwrap_or(AggFunc::Sum);
        let mut series = a.series("seriesList");
        if let Some(unit) = a
            .opt_str("alignTo")
            .filter(|u| *u != "True" && *u != "False")
        {
            series = cx.eval_first_arg(align_start(cx.from, unit), cx.until)?;
        }
        series
            .into_iter()
            .map(|mut s| {
                cx.charge_span(s.start, s.end, interval)?;
                let (values, aligned_end) = summarize_values(&s, agg, interval, s.start, s.end);
                s.tag("smartSummarize", text.clone());
                s.tag("smartSummarizeFunction", func.clone());
                let name = format!("smartSummarize({}, \"{}\", \"{}\")", s.name, text, func);
                let mut out = s.derive(name, values);
                out.end = aligned_end;
                out.step = interval;
                Ok(out)
            })
            .collect()
    },
)
.window(smart_window);

pub const N_PERCENTILE: Function = Function::new(
    "nPercentile",
    "Calculate",
    &[SERIES, req("n", T::Float)],
    |cx, mut a| {
        let n = a.float("n")?;
        if n == 0.0 {
            return Err(cx.input_error("The requested percent is required to be greater than 0"));
        }
        let mut out = Vec::new();
        for mut s in a.series("seriesList") {
            let Some(p) = percentile(&s.values, n, false) else {
                continue;
            };
            s.tag("nPercentile", py_float(n));
            let count = if s.step > 0 {
                ((s.end - s.start) / s.step).max(0)
            } else {
                0
            };
            cx.charge(count as u64)?;
            out.push(s.derive(
                format!("nPercentile({}, {})", s.name, fmt_g(n)),
                vec![Some(p); count as usize],
            ));
        }
        Ok(out)
    },
);

/// graphite-web's `_compressPeriodicGaps`: a series written every k-th step (nulls between)
/// becomes a series with step k × step, or stays as is when no period is detected.
fn compress_periodic_gaps(s: Series) -> Series {
    let truthy = |v: Option<f64>| v.is_some_and(|x| x != 0.0);
    let (mut first, mut second) = (0usize, 0usize);
    for (i, v) in s.values.iter().enumerate() {
        if truthy(*v) {
            if first > 0 {
                second = i;
                break;
            }
            first = i;
        }
    }
    let guess = second as i64 - first as i64;
    let third = second as i64 + guess;
    let n = s.values.len() as i64;
    if guess > 1 && third <= n - 2 {
        let t = third as usize;
        if truthy(s.values[t]) && s.values[t - 1].is_none() && s.values[t + 1].is_none() {
            let interval = guess * s.step;
            let new_start = s.start + first as i64 * s.step;
            let (values, _) = summarize_values(&s, AggFunc::Last, interval, new_start, s.end);
            let mut out = s.clone();
            out.end = new_start + interval * (values.len() as i64 - 1);
            out.start = new_start;
            out.step = interval;
            out.values = values;
            return out;
        }
    }
    s
}

pub const COMPRESS_PERIODIC_GAPS: Function = Function::new(
    "compressPeriodicGaps",
    "Transform",
    &[SERIES],
    |_, mut a| {
        Ok(a.series("seriesList")
            .into_iter()
            .map(|mut s| {
                s.rename(format!("compressPeriodicGaps({})", s.name));
                compress_periodic_gaps(s)
            })
            .collect())
    },
);

#[cfg(test)]
mod tests {
    use super::super::testkit::*;

    #[test]
    fn align_start_truncates_in_utc() {
        // 2023-11-14T22:14:00Z, a Tuesday.
        let t = 1_700_000_040;
        assert_eq!(super::align_start(t, "years"), 1_672_531_200); // 2023-01-01
        assert_eq!(super::align_start(t, "months"), 1_698_796_800); // 2023-11-01
        assert_eq!(super::align_start(t, "weeks"), 1_699_833_600); // Monday 2023-11-13
        assert_eq!(super::align_start(t, "days"), 1_699_920_000);
        assert_eq!(super::align_start(t, "hours"), 1_699_999_200);
        assert_eq!(super::align_start(t, "minutes"), t);
    }
    use super::*;

    #[test]
    fn calendar_alignment_in_utc() {
        // 2021-03-17 13:45:12 UTC, a Wednesday
        let t = 1615988712;
        assert_eq!(align_start(t, "days"), 1615939200);
        assert_eq!(align_start(t, "hours"), 1615986000);
        assert_eq!(align_start(t, "minutes"), 1615988700);
        assert_eq!(align_start(t, "weeks"), 1615766400); // Monday 2021-03-15
        assert_eq!(align_start(t, "months"), 1614556800); // 2021-03-01
        assert_eq!(align_start(t, "years"), 1609459200); // 2021-01-01
    }

    #[test]
    fn summarize_buckets() {
        let d = [ser_step(
            "s",
            10,
            &[Some(1.0), Some(2.0), None, Some(4.0), Some(5.0), Some(6.0)],
        )];
        let out = run(&d, c("summarize", vec![p("s"), s("30s")]));
        check(
            &out,
            &[(
                "summarize(s, \"30s\", \"sum\")",
                &[Some(3.0), Some(15.0), None],
            )],
        );
        check_times(&out[0], 0, 90, 30);
        let out = run(
            &d,
            c("summarize", vec![p("s"), s("30s"), s("max"), b(true)]),
        );
        check(
            &out,
            &[(
                "summarize(s, \"30s\", \"max\", true)",
                &[Some(2.0), Some(6.0)],
            )],
        );
        check_times(&out[0], 0, 60, 30);
        let out = run(&d, c("smartSummarize", vec![p("s"), s("30s"), s("avg")]));
        check(
            &out,
            &[(
                "smartSummarize(s, \"30s\", \"avg\")",
                &[Some(1.5), Some(5.0)],
            )],
        );
    }

    #[test]
    fn hitcount_spreads_rates_over_buckets() {
        // rate 1/s for 6 points of 10s; 25s buckets counted back from the end
        let d = [ser_step("h", 10, &[Some(1.0); 6])];
        let out = run(&d, c("hitcount", vec![p("h"), s("25s")]));
        assert_eq!(out[0].name, "hitcount(h, \"25s\")");
        check_times(&out[0], -15, 60, 25);
        assert_values(&out[0].values, &vals(&[10.0, 25.0, 25.0]), "hitcount");
    }

    #[test]
    fn n_percentile() {
        let d = [ser("n", &[Some(5.0), None, Some(1.0), Some(3.0)])];
        let out = run(&d, c("nPercentile", vec![p("n"), i(50)]));
        check(&out, &[("nPercentile(n, 50)", &[Some(3.0); 4])]);
        assert_eq!(out[0].tags["nPercentile"], "50.0");
    }
}
