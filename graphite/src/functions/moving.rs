//! Moving windows: `movingWindow` and its `movingAverage/Median/Sum/Min/Max` shorthands.
//!
//! graphite-web re-evaluates the first argument over a window widened by the window size
//! (`windowSize` points × the largest step, or a time string) and emits, for each point, the
//! aggregate of the `windowPoints` values ending at it. Sums and averages use a compensated
//! running sum, min/max a monotonic deque and the median a sorted window of integer order
//! keys (the leaving value replaced by the arriving one in one shift), so large windows cost
//! no rescans.

use std::collections::VecDeque;

use super::{
    opt, parse_interval, raw_arg, req, AggFunc, Args, Default, Function, ParamType as T, Value,
    SERIES,
};
use crate::budget::Budget;
use crate::eval::{Cx, EvalError};
use crate::expr::ast::{Call, Expr};
use crate::series::Series;

fn window_hook(call: &Call, from: i64, until: i64, step: Option<i64>) -> Vec<(i64, i64)> {
    match raw_arg(call, 1, "windowSize") {
        Some(Expr::Str(s)) => parse_interval(s)
            .map(|d| vec![(from.saturating_sub(d.saturating_abs()), until)])
            .unwrap_or_default(),
        // A window in points depends on the series' step: known once data is fetched.
        // graphite-web takes a negative count as is (a window that starts after `from`).
        Some(Expr::Int(n)) if (-super::MAX_POINTS..=super::MAX_POINTS).contains(n) => step
            .map(|st| vec![(from.saturating_sub(st.saturating_mul(*n)), until)])
            .unwrap_or_default(),
        _ => vec![],
    }
}

fn moving(
    cx: &mut Cx<'_, '_>,
    series: Vec<Series>,
    window: &Value,
    func: &str,
    xff: Option<f64>,
) -> Result<Vec<Series>, EvalError> {
    if series.is_empty() {
        return Ok(vec![]);
    }
    let agg = AggFunc::parse(func)
        .ok_or_else(|| cx.input_error(format!("Unsupported aggregation function: {func}")))?;
    let (preview, text) = match window {
        Value::Str(s) => {
            let d =
                parse_interval(s).ok_or_else(|| cx.input_error(format!("invalid window {s:?}")))?;
            (d.abs(), None)
        }
        Value::Int(n) => (
            series
                .iter()
                .map(|s| s.step)
                .max()
                .unwrap_or(1)
                .saturating_mul(*n),
            Some(*n),
        ),
        other => return Err(cx.input_error(format!("invalid window {}", other.describe()))),
    };
    let tag_name = format!("moving{}", capitalize(func));
    let previews = cx.eval_first_arg(cx.from.saturating_sub(preview), cx.until)?;
    previews
        .into_iter()
        .map(|mut s| {
            let (name, points) = match (text, window) {
                (Some(n), _) => (format!("{tag_name}({},{n})", s.name), n.max(0) as usize),
                (None, w) => (
                    format!("{tag_name}({},\"{}\")", s.name, w.py_str()),
                    if s.step > 0 {
                        (preview / s.step) as usize
                    } else {
                        0
                    },
                ),
            };
            s.tag(&tag_name, window.py_str());
            let xff = xff.unwrap_or(s.x_files_factor);
            let values = match text {
                // graphite-web runs `range(n, len)` with n < 0: len - n points, each failing
                // the xFilesFactor check against a negative window, so all null (charged
                // before they are made: `-1000000000` is over any budget).
                Some(n) if n < 0 => {
                    let len = (s.values.len() as u64).saturating_add(n.unsigned_abs());
                    cx.charge(len)?;
                    vec![None; len as usize]
                }
                _ => window_values(&s.values, points, agg, xff, cx.ctx.budget, &tag_name)?,
            };
            let mut out = s.derive(name, values);
            out.start = s.start.saturating_add(preview);
            Ok(out)
        })
        .collect()
}

/// Python's `str.capitalize()`.
fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f
            .to_uppercase()
            .chain(c.flat_map(char::to_lowercase))
            .collect(),
        None => String::new(),
    }
}

/// For `i` in `w+1..=len`: `agg` over the non-null values of `values[i-w..i]`, or null when
/// they fail the xFilesFactor (graphite-web's loop, without rescanning for the common
/// aggregations). The loops that cost more than a pass (median, and the aggregations
/// recomputed per window) tick `budget`'s deadline as `function`.
pub fn window_values(
    values: &[Option<f64>],
    w: usize,
    agg: AggFunc,
    xff: f64,
    budget: &Budget,
    function: &str,
) -> Result<Vec<Option<f64>>, EvalError> {
    let n = values.len();
    if n <= w {
        return Ok(Vec::new());
    }
    let ok = |count: usize| count > 0 && w > 0 && count as f64 / w as f64 >= xff;
    let mut out = Vec::with_capacity(n - w);
    match agg {
        AggFunc::Average | AggFunc::Sum | AggFunc::Count | AggFunc::AvgZero if w > 0 => {
            let mut sum = Neumaier::default();
            let mut count = 0usize;
            for v in values[1..=w].iter().flatten() {
                sum.add(*v);
                count += 1;
            }
            for i in (w + 1)..=n {
                if i > w + 1 {
                    if let Some(x) = values[i - 1 - w] {
                        sum.add(-x);
                        count -= 1;
                    }
                    if let Some(x) = values[i - 1] {
                        sum.add(x);
                        count += 1;
                    }
                }
                out.push(ok(count).then(|| match agg {
                    AggFunc::Sum => sum.total(),
                    AggFunc::Count => count as f64,
                    _ => sum.total() / count as f64,
                }));
            }
        }
        AggFunc::Min | AggFunc::Max if w > 0 => {
            let better = |a: f64, b: f64| if agg == AggFunc::Min { a <= b } else { a >= b };
            let mut dq: VecDeque<(usize, f64)> = VecDeque::new();
            let mut count = 0usize;
            for (j, v) in values.iter().enumerate().take(n) {
                if let Some(x) = *v {
                    while dq.back().is_some_and(|&(_, y)| better(x, y)) {
                        dq.pop_back();
                    }
                    dq.push_back((j, x));
                    count += 1;
                }
                // window for output i = j + 1 is [j + 1 - w, j]
                if j + 1 > w {
                    let lo = j + 1 - w;
                    if lo >= 1 && values[lo - 1].is_some() {
                        count -= 1;
                    }
                    while dq.front().is_some_and(|&(k, _)| k < lo) {
                        dq.pop_front();
                    }
                    if lo >= 1 {
                        out.push(if ok(count) {
                            dq.front().map(|&(_, x)| x)
                        } else {
                            None
                        });
                    }
                }
            }
        }
        AggFunc::Median if w > 0 => {
            // The window's values as their `total_cmp` order keys, sorted: integer compares,
            // and one shift of the values between the leaving and the arriving one.
            let mut keys: Vec<i64> = values[1..=w].iter().flatten().map(|&x| key(x)).collect();
            keys.sort_unstable();
            for i in (w + 1)..=n {
                budget.tick(function)?;
                if i > w + 1 {
                    match (values[i - 1 - w], values[i - 1]) {
                        (Some(old), Some(new)) => replace_sorted(&mut keys, key(old), key(new)),
                        (Some(old), None) => {
                            let k = keys.partition_point(|&x| x < key(old));
                            if keys.get(k) == Some(&key(old)) {
                                keys.remove(k);
                            }
                        }
                        (None, Some(new)) => {
                            let k = keys.partition_point(|&x| x < key(new));
                            keys.insert(k, key(new));
                        }
                        (None, None) => {}
                    }
                }
                let c = keys.len();
                out.push(ok(c).then(|| {
                    let mid = c / 2;
                    if c & 1 == 0 {
                        (unkey(keys[mid - 1]) + unkey(keys[mid])) / 2.0
                    } else {
                        unkey(keys[mid])
                    }
                }));
            }
        }
        _ => {
            let mut buf = Vec::with_capacity(w);
            for i in (w + 1)..=n {
                budget.tick(function)?;
                buf.clear();
                buf.extend(values[i - w..i].iter().filter(|v| v.is_some()).copied());
                out.push(if ok(buf.len()) { agg.apply(&buf) } else { None });
            }
        }
    }
    Ok(out)
}

/// `x`'s place in [`f64::total_cmp`]'s order as an integer (the same bit trick): keys compare
/// as their values do, and equal keys are the same bits.
fn key(x: f64) -> i64 {
    let b = x.to_bits() as i64;
    b ^ (((b >> 63) as u64) >> 1) as i64
}

/// The value of a [`key`] (the trick is its own inverse: it keeps the sign bit).
fn unkey(k: i64) -> f64 {
    f64::from_bits((k ^ (((k >> 63) as u64) >> 1) as i64) as u64)
}

/// Replaces `old` (one of the sorted `keys`) by `new`, keeping them sorted: `old`'s place
/// is found by a (branch-free) binary search; in a short window `new` then moves from it past
/// the keys it sorts beyond, each moved one place (no call for a few moves), in a long one
/// the keys in between move in one copy.
fn replace_sorted(keys: &mut Vec<i64>, old: i64, new: i64) {
    let mut i = keys.partition_point(|&x| x < old);
    if keys.get(i) != Some(&old) {
        // Not there (never for a window's own values): only insert.
        keys.insert(keys.partition_point(|&x| x < new), new);
        return;
    }
    if keys.len() > 32 {
        // A long window: the keys in between move in one copy.
        let j = keys.partition_point(|&x| x < new);
        if j > i {
            keys.copy_within(i + 1..j, i);
            keys[j - 1] = new;
        } else {
            keys.copy_within(j..i, j + 1);
            keys[j] = new;
        }
        return;
    }
    while i + 1 < keys.len() && keys[i + 1] < new {
        keys[i] = keys[i + 1];
        i += 1;
    }
    while i > 0 && keys[i - 1] > new {
        keys[i] = keys[i - 1];
        i -= 1;
    }
    keys[i] = new;
}

/// Neumaier-compensated running sum: adding and removing values keeps the window's sum
/// within an ulp or so of Python's fresh `sum()`.
#[derive(Default)]
struct Neumaier {
    sum: f64,
    comp: f64,
}

impl Neumaier {
    fn add(&mut self, x: f64) {
        let t = self.sum + x;
        if self.sum.abs() >= x.abs() {
            self.comp += (self.sum - t) + x;
        } else {
            self.comp += (x - t) + self.sum;
        }
        self.sum = t;
    }
    fn total(&self) -> f64 {
        self.sum + self.comp
    }
}

const WINDOW: super::Param = req("windowSize", T::IntOrInterval);

pub const MOVING_WINDOW: Function = Function::new(
    "movingWindow",
    "Calculate",
    &[
        SERIES,
        WINDOW,
        opt("func", T::AggFunc).default(Default::Str("average")),
        opt("xFilesFactor", T::Float),
    ],
    |cx, mut a: Args| {
        let w = a.arg("windowSize")?.clone();
        let func = a.str("func")?.to_string();
        let xff = a.opt_float("xFilesFactor");
        moving(cx, a.series("seriesList"), &w, &func, xff)
    },
)
.window(window_hook)
.shape_of_first();

macro_rules! shorthand {
    ($konst:ident, $name:literal, $func:literal) => {
        pub const $konst: Function = Function::new(
            $name,
            "Calculate",
            &[SERIES, WINDOW, opt("xFilesFactor", T::Float)],
            |cx, mut a| {
                let w = a.arg("windowSize")?.clone();
                let xff = a.opt_float("xFilesFactor");
                moving(cx, a.series("seriesList"), &w, $func, xff)
            },
        )
        .window(window_hook)
.shape_of_first();
    };
}
shorthand!(MOVING_AVERAGE, "movingAverage", "average");
shorthand!(MOVING_MEDIAN, "movingMedian", "median");
shorthand!(MOVING_SUM, "movingSum", "sum");
shorthand!(MOVING_MIN, "movingMin", "min");
shorthand!(MOVING_MAX, "movingMax", "max");

pub const EXPONENTIAL_MOVING_AVERAGE: Function = Function::new(
    "exponentialMovingAverage",
    "Calculate",
    &[SERIES, WINDOW],
    |cx, mut a| {
        let series = a.series("seriesList");
        if series.is_empty() {
            return Ok(vec![]);
        }
        let window = a.arg("windowSize")?.clone();
        let (preview, constant, points_of): (i64, f64, Box<dyn Fn(i64) -> usize>) = match &window {
            Value::Str(s) => {
                let d = parse_interval(s)
                    .ok_or_else(|| cx.input_error(format!("invalid window {s:?}")))?
                    .abs();
                (
                    d,
                    2.0 / (d as f64 + 1.0),
                    Box::new(move |step: i64| (d / step.max(1)) as usize),
                )
            }
            Value::Int(n) => {
                let n = *n;
                let d = series
                    .iter()
                    .map(|s| s.step)
                    .max()
                    .unwrap_or(1)
                    .saturating_mul(n.max(0));
                (
                    d,
                    2.0 / (n as f64 + 1.0),
                    Box::new(move |_| n.max(0) as usize),
                )
            }
            other => return Err(cx.input_error(format!("invalid window {}", other.describe()))),
        };
        let previews = cx.eval_first_arg(cx.from.saturating_sub(preview), cx.until)?;
        Ok(previews
            .into_iter()
            .map(|mut s| {
                let name = match &window {
                    Value::Str(w) => format!("exponentialMovingAverage({},\"{w}\")", s.name),
                    w => format!("exponentialMovingAverage({},{})", s.name, w.py_str()),
                };
                let points = points_of(s.step).min(s.values.len());
                s.tag("exponentialMovingAverage", window.py_str());
                let mut ema = AggFunc::Average.apply(&s.values[..points]).unwrap_or(0.0);
                let mut values = vec![Some(super::transform::py_round(ema, 6))];
                for v in &s.values[points..] {
                    values.push(v.map(|x| {
                        ema = constant * x + (1.0 - constant) * ema;
                        super::transform::py_round(ema, 6)
                    }));
                }
                let mut out = s.derive(name, values);
                out.start = s.start.saturating_add(preview);
                out
            })
            .collect())
    },
)
.window(window_hook)
.shape_of_first();

pub const STDEV: Function = Function::new(
    "stdev",
    "Calculate",
    &[
        SERIES,
        req("points", T::Int),
        opt("windowTolerance", T::Float).default(Default::Float(0.1)),
    ],
    |_, mut a| {
        let points = a.int("points")?.max(0) as usize;
        let tol = a.float("windowTolerance")?;
        Ok(a.series("seriesList")
            .into_iter()
            .map(|mut s| {
                s.tag("stdev", points.to_string());
                let (mut valid, mut sum, mut sq) = (0usize, 0.0f64, 0.0f64);
                let values = (0..s.values.len())
                    .map(|i| {
                        if points == 0 {
                            return None;
                        }
                        if i >= points {
                            if let Some(d) = s.values[i - points] {
                                valid -= 1;
                                sum -= d;
                                sq -= d * d;
                            }
                        }
                        if let Some(x) = s.values[i] {
                            valid += 1;
                            sum += x;
                            sq += x * x;
                        }
                        if valid > 0 && points > 0 && valid as f64 / points as f64 >= tol {
                            let r = valid as f64 * sq - sum * sum;
                            (r >= 0.0).then(|| r.sqrt() / valid as f64)
                        } else {
                            None
                        }
                    })
                    .collect();
                s.derive(format!("stdev({},{points})", s.name), values)
            })
            .collect())
    },
);

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    /// The straightforward graphite-web loop, as the oracle.
    fn naive(values: &[Option<f64>], w: usize, agg: AggFunc, xff: f64) -> Vec<Option<f64>> {
        ((w + 1)..=values.len())
            .map(|i| {
                let nn: Vec<Option<f64>> = values[i - w..i]
                    .iter()
                    .filter(|v| v.is_some())
                    .copied()
                    .collect();
                if !nn.is_empty() && w > 0 && nn.len() as f64 / w as f64 >= xff {
                    agg.apply(&nn)
                } else {
                    None
                }
            })
            .collect()
    }

    #[test]
    fn fast_windows_match_the_naive_loop() {
        let mut x = 7u64;
        let values: Vec<Option<f64>> = (0..300)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                if (x >> 60) < 3 {
                    None
                } else {
                    Some(((x >> 33) % 1000) as f64 / 7.0)
                }
            })
            .collect();
        for agg in [
            AggFunc::Average,
            AggFunc::Sum,
            AggFunc::Min,
            AggFunc::Max,
            AggFunc::Median,
            AggFunc::Count,
            AggFunc::Diff,
        ] {
            for w in [0, 1, 2, 5, 17, 100, 299, 300, 400] {
                for xff in [0.0, 0.5] {
                    let got = window_values(&values, w, agg, xff, &Budget::new(), "t").unwrap();
                    assert_values(
                        &got,
                        &naive(&values, w, agg, xff),
                        &format!("{agg:?} w={w} xff={xff}"),
                    );
                }
            }
        }
    }

    proptest::proptest! {
        /// The sliding median gives graphite-web's sorted-window median to the bit, over
        /// repeated values, signed zeros, NaN and infinities, nulls, short and long windows.
        #[test]
        fn sliding_median_is_the_sorted_windows_median(
            picks in proptest::collection::vec(0usize..12, 0..200),
            w in 1usize..90,
        ) {
            let pool = [
                None, Some(-0.0), Some(0.0), Some(f64::NAN), Some(-f64::NAN), Some(f64::INFINITY),
                Some(f64::NEG_INFINITY), Some(1.5), Some(1.5), Some(-2.25), Some(1e300), Some(3.0),
            ];
            let values: Vec<Option<f64>> = picks.iter().map(|&i| pool[i]).collect();
            let got = window_values(&values, w, AggFunc::Median, 0.0, &Budget::new(), "t").unwrap();
            let want = naive(&values, w, AggFunc::Median, 0.0);
            let bits = |v: &[Option<f64>]| v.iter().map(|x| x.map(f64::to_bits)).collect::<Vec<_>>();
            proptest::prop_assert_eq!(bits(&got), bits(&want));
        }
    }

    #[test]
    fn moving_functions_name_and_window() {
        let d = [ser_step(
            "m.x",
            60,
            &(0..20).map(|x| Some(x as f64)).collect::<Vec<_>>(),
        )];
        // request [600, 1140): points 660..1140, window of 3 points
        let out = run_window(&d, c("movingAverage", vec![p("m.x"), i(3)]), 600, 1140);
        assert_eq!(out[0].name, "movingAverage(m.x,3)");
        assert_eq!(out[0].path_expression, "movingAverage(m.x,3)");
        assert_eq!(out[0].tags["movingAverage"], "3");
        check_times(&out[0], 660, 1200, 60);
        assert_values(
            &out[0].values,
            &vals(&[10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0, 18.0]),
            "avg",
        );
        let out = run_window(&d, c("movingMedian", vec![p("m.x"), s("3min")]), 600, 1140);
        assert_eq!(out[0].name, "movingMedian(m.x,\"3min\")");
        assert_values(
            &out[0].values,
            &vals(&[10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0, 18.0]),
            "median",
        );
        for (f, first) in [("movingSum", 30.0), ("movingMin", 9.0), ("movingMax", 11.0)] {
            let out = run_window(&d, c(f, vec![p("m.x"), i(3)]), 600, 1140);
            assert_eq!(out[0].name, format!("{f}(m.x,3)"));
            assert_eq!(out[0].values[0], Some(first), "{f}");
        }
        let out = run_window(
            &d,
            c("movingWindow", vec![p("m.x"), i(2), s("avg_zero")]),
            600,
            1140,
        );
        assert_eq!(out[0].name, "movingAvg_zero(m.x,2)");
    }
}
