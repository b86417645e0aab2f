//! Point-wise and running transforms: `scale`, `offset`, `pow`, `derivative`, `perSecond`,
//! `integral`, `keepLastValue`, `transformNull`, `timeShift`, `delay`, ...
//!
//! Naming follows graphite-web exactly: in-place transforms rename and reset the path
//! expression (`scale(x,2)`), `series.copy()`-based ones do the same via [`Series::derive`].

use super::{opt, parse_interval, raw_arg, req, Default, Function, ParamType as T, Value, SERIES};
use crate::eval::Cx;
use crate::expr::ast::{Call, Expr};
use crate::series::{fmt_g, py_float, Series};

/// Applies `f` to every value, renames (resetting the path expression) and tags.
fn map_each(
    series: Vec<Series>,
    name: impl Fn(&Series) -> String,
    tag: Option<(&str, String)>,
    f: impl Fn(Option<f64>) -> Option<f64>,
) -> Vec<Series> {
    series
        .into_iter()
        .map(|mut s| {
            if let Some((k, v)) = &tag {
                s.tag(k, v.clone());
            }
            let n = name(&s);
            s.rename(n);
            s.values.iter_mut().for_each(|v| *v = f(*v));
            s
        })
        .collect()
}

/// `safe.safePow`: `None` where Python's `math.pow` raises (domain error, overflow).
pub fn safe_pow(a: Option<f64>, b: f64) -> Option<f64> {
    let a = a?;
    let r = a.powf(b);
    if (r.is_nan() && !a.is_nan() && !b.is_nan())
        || (r.is_infinite() && a.is_finite() && b.is_finite())
    {
        None
    } else {
        Some(r)
    }
}

/// Python's `round(x, n)` (correctly rounded, as Python's float repr rounding).
pub fn py_round(x: f64, n: i32) -> f64 {
    if !x.is_finite() || n > 330 {
        return x;
    }
    if n < -330 {
        return 0.0 * x.signum();
    }
    if n >= 0 {
        let digits = n as usize;
        format!("{x:.digits$}").parse().unwrap_or(x)
    } else {
        let p = 10f64.powi(-n);
        (x / p).round_ties_even() * p
    }
}

/// Python's `'%d' % x` for a float.
fn pct_d(x: f64) -> String {
    (x.trunc() as i64).to_string()
}

pub const SCALE: Function = Function::new(
    "scale",
    "Transform",
    &[SERIES, req("factor", T::Float)],
    |_, mut a| {
        let k = a.float("factor")?;
        Ok(map_each(
            a.series("seriesList"),
            |s| format!("scale({},{})", s.name, fmt_g(k)),
            Some(("scale", py_float(k))),
            |v| v.map(|x| x * k),
        ))
    },
);

pub const SCALE_TO_SECONDS: Function = Function::new(
    "scaleToSeconds",
    "Transform",
    &[SERIES, req("seconds", T::Float)],
    |_, mut a| {
        let secs = a.float("seconds")?;
        Ok(a.series("seriesList")
            .into_iter()
            .map(|mut s| {
                s.tag("scaleToSeconds", py_float(secs));
                s.rename(format!("scaleToSeconds({},{})", s.name, pct_d(secs)));
                let factor = secs / s.step as f64;
                s.values
                    .iter_mut()
                    .for_each(|v| *v = v.map(|x| py_round(x * factor, 6)));
                s
            })
            .collect())
    },
);

pub const OFFSET: Function = Function::new(
    "offset",
    "Transform",
    &[SERIES, req("factor", T::Float)],
    |_, mut a| {
        let k = a.float("factor")?;
        Ok(map_each(
            a.series("seriesList"),
            |s| format!("offset({},{})", s.name, fmt_g(k)),
            Some(("offset", py_float(k))),
            |v| v.map(|x| x + k),
        ))
    },
);

pub const ADD: Function = Function::new(
    "add",
    "Transform",
    &[SERIES, req("constant", T::Float)],
    |_, mut a| {
        let k = a.float("constant")?;
        Ok(map_each(
            a.series("seriesList"),
            |s| format!("add({},{})", s.name, pct_d(k)),
            Some(("add", py_float(k))),
            |v| v.map(|x| x + k),
        ))
    },
);

macro_rules! unary {
    ($konst:ident, $name:literal, $tag:expr, $f:expr) => {
        pub const $konst: Function = Function::new($name, "Transform", &[SERIES], |_, mut a| {
            Ok(map_each(
                a.series("seriesList"),
                |s| format!(concat!($name, "({})"), s.name),
                Some(($name, $tag.to_string())),
                $f,
            ))
        });
    };
}
unary!(ABSOLUTE, "absolute", "1", |v: Option<f64>| v.map(f64::abs));
unary!(INVERT, "invert", "1", |v| safe_pow(v, -1.0));
unary!(SQUARE_ROOT, "squareRoot", "1", |v| safe_pow(v, 0.5));
unary!(EXP, "exp", "e", |v: Option<f64>| v.map(f64::exp));

pub const POW: Function = Function::new(
    "pow",
    "Transform",
    &[SERIES, req("factor", T::Float)],
    |_, mut a| {
        let k = a.float("factor")?;
        Ok(map_each(
            a.series("seriesList"),
            |s| format!("pow({},{})", s.name, fmt_g(k)),
            Some(("pow", py_float(k))),
            |v| safe_pow(v, k),
        ))
    },
);

const LOG_PARAMS: &[super::Param] = &[SERIES, opt("base", T::Int).default(Default::Int(10))];
fn logarithm(
    _: &mut Cx<'_, '_>,
    mut a: super::Args,
) -> Result<Vec<Series>, crate::eval::EvalError> {
    let base_v = a.arg("base")?.clone();
    let base = a.float("base")?;
    let base_s = base_v.py_str();
    Ok(a.series("seriesList")
        .into_iter()
        .map(|mut s| {
            s.tag("log", base_s.clone());
            let values = s
                .values
                .iter()
                .map(|v| v.filter(|x| *x > 0.0).map(|x| x.ln() / base.ln()))
                .collect();
            s.derive(format!("log({}, {})", s.name, base_s), values)
        })
        .collect())
}
pub const LOGARITHM: Function = Function::new("logarithm", "Transform", LOG_PARAMS, logarithm);
pub const LOG: Function = Function::new("log", "Transform", LOG_PARAMS, logarithm);

/// Builds new values from the old ones with `series.copy(name=...)` semantics.
fn derive_each(
    series: Vec<Series>,
    func: &str,
    f: impl Fn(&Series) -> Vec<Option<f64>>,
) -> Vec<Series> {
    series
        .into_iter()
        .map(|mut s| {
            s.tag(func, "1");
            let values = f(&s);
            s.derive(format!("{func}({})", s.name), values)
        })
        .collect()
}

pub const DERIVATIVE: Function = Function::new("derivative", "Transform", &[SERIES], |_, mut a| {
    Ok(derive_each(a.series("seriesList"), "derivative", |s| {
        let mut prev: Option<f64> = None;
        s.values
            .iter()
            .map(|v| {
                let out = match (prev, v) {
                    (Some(p), Some(x)) => Some(x - p),
                    _ => None,
                };
                prev = *v;
                out
            })
            .collect()
    }))
});

/// graphite-web's `_nonNegativeDelta`, returning (delta, new prev).
fn non_negative_delta(
    val: Option<f64>,
    prev: Option<f64>,
    max: Option<f64>,
    min: Option<f64>,
) -> (Option<f64>, Option<f64>) {
    if let (Some(m), Some(v)) = (max, val) {
        if v > m {
            return (None, None);
        }
    }
    if let (Some(m), Some(v)) = (min, val) {
        if v < m {
            return (None, None);
        }
    }
    let (Some(p), Some(v)) = (prev, val) else {
        return (None, val);
    };
    if v >= p {
        return (Some(v - p), val);
    }
    if let Some(m) = max {
        return (Some(m + 1.0 + v - p - min.unwrap_or(0.0)), val);
    }
    if let Some(m) = min {
        return (Some(v - m), val);
    }
    (None, val)
}

const NND_PARAMS: &[super::Param] = &[SERIES, opt("maxValue", T::Float), opt("minValue", T::Float)];

pub const NON_NEGATIVE_DERIVATIVE: Function = Function::new(
    "nonNegativeDerivative",
    "Transform",
    NND_PARAMS,
    |_, mut a| {
        let (max, min) = (a.opt_float("maxValue"), a.opt_float("minValue"));
        Ok(derive_each(
            a.series("seriesList"),
            "nonNegativeDerivative",
            |s| {
                let mut prev = None;
                s.values
                    .iter()
                    .map(|v| {
                        let (d, p) = non_negative_delta(*v, prev, max, min);
                        prev = p;
                        d
                    })
                    .collect()
            },
        ))
    },
);

pub const PER_SECOND: Function = Function::new("perSecond", "Transform", NND_PARAMS, |_, mut a| {
    let (max, min) = (a.opt_float("maxValue"), a.opt_float("minValue"));
    Ok(derive_each(a.series("seriesList"), "perSecond", |s| {
        let mut prev = None;
        let step = s.step as f64;
        s.values
            .iter()
            .map(|v| {
                let (d, p) = non_negative_delta(*v, prev, max, min);
                prev = p;
                d.map(|d| py_round(d / step, 6))
            })
            .collect()
    }))
});

pub const INTEGRAL: Function = Function::new("integral", "Transform", &[SERIES], |_, mut a| {
    Ok(derive_each(a.series("seriesList"), "integral", |s| {
        let mut cur = 0.0;
        s.values
            .iter()
            .map(|v| {
                v.map(|x| {
                    cur += x;
                    cur
                })
            })
            .collect()
    }))
});

fn limit_of(a: &super::Args) -> f64 {
    match a.value("limit") {
        Some(Value::Int(n)) => *n as f64,
        Some(Value::Float(f)) => *f,
        _ => f64::INFINITY,
    }
}

pub const KEEP_LAST_VALUE: Function = Function::new(
    "keepLastValue",
    "Transform",
    &[
        SERIES,
        opt("limit", T::IntOrInf).default(Default::Float(f64::INFINITY)),
    ],
    |_, mut a| {
        let limit = limit_of(&a);
        Ok(a.series("seriesList")
            .into_iter()
            .map(|mut s| {
                s.rename(format!("keepLastValue({})", s.name));
                let mut nones = 0usize;
                let mut last: Option<f64> = None;
                let n = s.values.len();
                for i in 0..n {
                    match s.values[i] {
                        None => nones += 1,
                        Some(v) => {
                            if nones > 0 && nones as f64 <= limit && last.is_some() {
                                s.values[i - nones..i].iter_mut().for_each(|x| *x = last);
                            }
                            nones = 0;
                            last = Some(v);
                        }
                    }
                }
                if nones > 0 && nones as f64 <= limit && last.is_some() {
                    s.values[n - nones..].iter_mut().for_each(|x| *x = last);
                }
                s
            })
            .collect())
    },
);

pub const INTERPOLATE: Function = Function::new(
    "interpolate",
    "Transform",
    &[
        SERIES,
        opt("limit", T::IntOrInf).default(Default::Float(f64::INFINITY)),
    ],
    |_, mut a| {
        let limit = limit_of(&a);
        Ok(a.series("seriesList")
            .into_iter()
            .map(|mut s| {
                s.rename(format!("interpolate({})", s.name));
                let mut nones = 0usize;
                for i in 1..s.values.len() {
                    let Some(v) = s.values[i] else {
                        nones += 1;
                        continue;
                    };
                    if nones == 0 {
                        continue;
                    }
                    let Some(before) = s.values[i - nones - 1] else {
                        nones = 0;
                        continue;
                    };
                    if nones as f64 <= limit {
                        let base = i - nones - 1;
                        for idx in i - nones..i {
                            s.values[idx] = Some(
                                before + (idx - base) as f64 * (v - before) / (nones as f64 + 1.0),
                            );
                        }
                    }
                    nones = 0;
                }
                s
            })
            .collect())
    },
);

pub const TRANSFORM_NULL: Function = Function::new(
    "transformNull",
    "Transform",
    &[
        SERIES,
        opt("default", T::Float).default(Default::Int(0)),
        opt("referenceSeries", T::SeriesList),
    ],
    |_, mut a| {
        let dv = a.arg("default")?.clone();
        let d = a.float("default")?;
        let reference = if a.is_series("referenceSeries") {
            Some(a.series("referenceSeries"))
        } else {
            None
        };
        let defaults: Option<Vec<Option<f64>>> =
            reference.as_ref().filter(|r| !r.is_empty()).map(|r| {
                let len = r.iter().map(|s| s.values.len()).max().unwrap_or(0);
                (0..len)
                    .map(|i| {
                        r.iter()
                            .any(|s| s.values.get(i).copied().flatten().is_some())
                            .then_some(d)
                    })
                    .collect()
            });
        let has_ref = reference.as_ref().is_some_and(|r| !r.is_empty());
        Ok(a.series("seriesList")
            .into_iter()
            .map(|mut s| {
                s.tag("transformNull", dv.py_str());
                if has_ref {
                    s.tag("referenceSeries", "1");
                    s.rename(format!(
                        "transformNull({},{},referenceSeries)",
                        s.name,
                        fmt_g(d)
                    ));
                } else {
                    s.rename(format!("transformNull({},{})", s.name, fmt_g(d)));
                }
                match &defaults {
                    Some(defs) if !defs.is_empty() => {
                        let len = s.values.len().max(defs.len());
                        s.values = (0..len)
                            .map(|i| {
                                s.values
                                    .get(i)
                                    .copied()
                                    .flatten()
                                    .or(defs.get(i).copied().flatten())
                            })
                            .collect();
                    }
                    _ => s.values.iter_mut().for_each(|v| *v = Some(v.unwrap_or(d))),
                }
                s
            })
            .collect())
    },
);

pub const IS_NON_NULL: Function = Function::new("isNonNull", "Transform", &[SERIES], |_, mut a| {
    Ok(map_each(
        a.series("seriesList"),
        |s| format!("isNonNull({})", s.name),
        Some(("isNonNull", "1".into())),
        |v| Some(if v.is_some() { 1.0 } else { 0.0 }),
    ))
});

pub const CHANGED: Function = Function::new("changed", "Special", &[SERIES], |_, mut a| {
    Ok(a.series("seriesList")
        .into_iter()
        .map(|mut s| {
            s.rename(format!("changed({})", s.name));
            let mut prev: Option<f64> = None;
            for v in s.values.iter_mut() {
                let cur = *v;
                *v = Some(match (prev, cur) {
                    (None, _) => {
                        prev = cur;
                        0.0
                    }
                    (Some(p), Some(c)) if p != c => {
                        prev = cur;
                        1.0
                    }
                    _ => 0.0,
                });
            }
            s
        })
        .collect())
});

pub const OFFSET_TO_ZERO: Function =
    Function::new("offsetToZero", "Transform", &[SERIES], |_, mut a| {
        Ok(a.series("seriesList")
            .into_iter()
            .map(|mut s| {
                let min = s.values.iter().filter_map(|v| *v).reduce(f64::min);
                s.tag("offsetToZero", min.map_or("None".into(), py_float));
                s.rename(format!("offsetToZero({})", s.name));
                if let Some(m) = min {
                    s.values.iter_mut().for_each(|v| *v = v.map(|x| x - m));
                }
                s
            })
            .collect())
    });

pub const ROUND: Function = Function::new(
    "round",
    "Transform",
    &[
        SERIES,
        // graphite-web describes 0 but applies None: `round(x)` keeps its name.
        opt("precision", T::Int).doc_default(Default::Int(0)),
    ],
    |_, mut a| {
        let prec = a.opt_int("precision");
        Ok(a.series("seriesList")
            .into_iter()
            .map(|mut s| {
                s.tag("round", prec.unwrap_or(0).to_string());
                match prec {
                    None => s.rename(format!("round({})", s.name)),
                    Some(p) => s.rename(format!("round({},{p})", s.name)),
                }
                let p = prec.unwrap_or(0) as i32;
                s.values
                    .iter_mut()
                    .for_each(|v| *v = v.map(|x| py_round(x, p)));
                s
            })
            .collect())
    },
);

pub const DELAY: Function = Function::new(
    "delay",
    "Transform",
    &[SERIES, req("steps", T::Int)],
    |_, mut a| {
        let steps = a.int("steps")?;
        Ok(a.series("seriesList")
            .into_iter()
            .map(|mut s| {
                let n = s.values.len();
                let k = steps.unsigned_abs() as usize;
                let values: Vec<Option<f64>> = if steps < 0 {
                    // series[-steps:] + [None] * min(-steps, len)
                    let mut v: Vec<Option<f64>> = s.values.get(k.min(n)..).unwrap_or(&[]).to_vec();
                    v.extend(std::iter::repeat_n(None, k.min(n)));
                    v
                } else {
                    // [None] * min(steps, len) + series[:-steps]  (series[:-0] is empty)
                    let mut v = vec![None; k.min(n)];
                    if k > 0 {
                        v.extend_from_slice(&s.values[..n.saturating_sub(k)]);
                    }
                    v
                };
                s.tag("delay", steps.to_string());
                s.derive(format!("delay({},{steps})", s.name), values)
            })
            .collect())
    },
);

/// `timeShift`'s offset: a bare `1d` means `-1d`.
fn shift_string(raw: &str) -> String {
    if raw.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        format!("-{raw}")
    } else {
        raw.to_string()
    }
}

fn time_shift_window(call: &Call, from: i64, until: i64, _step: Option<i64>) -> Vec<(i64, i64)> {
    match raw_arg(call, 1, "timeShift") {
        Some(Expr::Str(s)) => parse_interval(&shift_string(s))
            .map(|d| vec![(from.saturating_add(d), until.saturating_add(d))])
            .unwrap_or_default(),
        _ => vec![],
    }
}

pub const TIME_SHIFT: Function = Function::new(
    "timeShift",
    "Transform",
    &[
        SERIES,
        req("timeShift", T::Interval),
        opt("resetEnd", T::Bool).default(Default::Bool(true)),
        opt("alignDst", T::Bool).default(Default::Bool(false)),
    ],
    |cx, mut a| {
        let shift = shift_string(a.str("timeShift")?);
        let delta = parse_interval(&shift).unwrap_or(0);
        let reset_end = a.bool("resetEnd")?;
        let series = a.series("seriesList");
        let Some(first) = series.first() else {
            return Ok(vec![]);
        };
        // Request times are UTC, where alignDst never changes anything.
        let shifted = cx.eval_first_arg(
            cx.from.saturating_add(delta),
            cx.until.saturating_add(delta),
        )?;
        Ok(shifted
            .into_iter()
            .map(|mut s| {
                s.tag("timeShift", shift.clone());
                s.name = format!("timeShift({}, \"{}\")", s.name, shift);
                s.end = if reset_end {
                    first.end
                } else {
                    s.end - s.start + first.start
                };
                s.start = first.start;
                s
            })
            .collect())
    },
)
.window(time_shift_window);

unary!(SIGMOID, "sigmoid", "sigmoid", |v: Option<f64>| v
    .map(|x| 1.0 / (1.0 + (-x).exp())));
unary!(LOGIT, "logit", "logit", |v: Option<f64>| {
    let x = v?;
    let r = x / (1.0 - x);
    (x != 1.0 && r > 0.0).then(|| r.ln())
});

pub const MIN_MAX: Function = Function::new("minMax", "Transform", &[SERIES], |_, mut a| {
    Ok(a.series("seriesList")
        .into_iter()
        .map(|mut s| {
            s.rename(format!("minMax({})", s.name));
            let min = s
                .values
                .iter()
                .flatten()
                .copied()
                .reduce(f64::min)
                .unwrap_or(0.0);
            let max = s
                .values
                .iter()
                .flatten()
                .copied()
                .reduce(f64::max)
                .unwrap_or(0.0);
            s.values.iter_mut().for_each(|v| {
                *v = v.map(|x| {
                    if max == min {
                        0.0
                    } else {
                        (x - min) / (max - min)
                    }
                });
            });
            s
        })
        .collect())
});

pub const INTEGRAL_BY_INTERVAL: Function = Function::new(
    "integralByInterval",
    "Transform",
    &[SERIES, req("intervalUnit", T::String)],
    |cx, mut a| {
        let unit = a.str("intervalUnit")?.to_string();
        let dur = parse_interval(&unit)
            .map(i64::abs)
            .filter(|d| *d > 0)
            .ok_or_else(|| cx.input_error(format!("invalid interval {unit:?}")))?;
        let start = cx.from;
        Ok(a.series("seriesList")
            .into_iter()
            .map(|mut s| {
                let mut t = s.start;
                let mut cur = 0.0;
                let values = s
                    .values
                    .iter()
                    .map(|v| {
                        if (t - start).div_euclid(dur) != (t - start - s.step).div_euclid(dur) {
                            cur = 0.0;
                        }
                        if let Some(x) = v {
                            cur += x;
                        }
                        t += s.step;
                        Some(cur)
                    })
                    .collect();
                s.tag("integralByInterval", unit.clone());
                s.derive(format!("integralByInterval({},'{}')", s.name, unit), values)
            })
            .collect())
    },
);

fn time_stack_window(call: &Call, from: i64, until: i64, _step: Option<i64>) -> Vec<(i64, i64)> {
    let unit = match raw_arg(call, 1, "timeShiftUnit") {
        Some(Expr::Str(s)) => s.clone(),
        None => "1d".into(),
        _ => return vec![],
    };
    let start = match raw_arg(call, 2, "timeShiftStart") {
        Some(Expr::Int(i)) => *i,
        None => 0,
        _ => return vec![],
    };
    let end = match raw_arg(call, 3, "timeShiftEnd") {
        Some(Expr::Int(i)) => *i,
        None => 7,
        _ => return vec![],
    };
    let Some(delta) = parse_interval(&shift_string(&unit)) else {
        return vec![];
    };
    (start..end.min(start.saturating_add(1000)))
        .map(|k| {
            let d = delta.saturating_mul(k);
            (from.saturating_add(d), until.saturating_add(d))
        })
        .collect()
}

pub const TIME_STACK: Function = Function::new(
    "timeStack",
    "Transform",
    &[
        SERIES,
        opt("timeShiftUnit", T::Interval).default(Default::Str("1d")),
        opt("timeShiftStart", T::Int).default(Default::Int(0)),
        opt("timeShiftEnd", T::Int).default(Default::Int(7)),
    ],
    |cx, mut a| {
        let unit = shift_string(a.str("timeShiftUnit")?);
        let delta = parse_interval(&unit).unwrap_or(0);
        let (start, end) = (a.int("timeShiftStart")?, a.int("timeShiftEnd")?);
        if end.saturating_sub(start) > 1000 {
            return Err(cx.input_error("timeStack may stack at most 1000 shifts"));
        }
        let series = a.series("seriesList");
        let Some(first) = series.first() else {
            return Ok(vec![]);
        };
        let mut out = Vec::new();
        for k in start..end {
            let d = delta.saturating_mul(k);
            for mut s in cx.eval_first_arg(cx.from.saturating_add(d), cx.until.saturating_add(d))? {
                s.tag("timeShiftUnit", unit.clone());
                s.tag("timeShift", k.to_string());
                s.rename(format!("timeShift({}, {}, {})", s.name, unit, k));
                s.start = first.start;
                s.end = first.end;
                out.push(s);
            }
        }
        Ok(out)
    },
)
.window(time_stack_window);

#[cfg(test)]
mod tests {
    use super::super::testkit::*;

    fn data() -> Vec<crate::series::Series> {
        vec![ser(
            "a.b",
            &[Some(1.0), None, Some(4.0), Some(-2.0), Some(0.0)],
        )]
    }

    #[test]
    fn pointwise_table() {
        let rows: Vec<(Expr, &str, Vec<Option<f64>>)> = vec![
            (
                c("scale", vec![p("a.b"), i(2)]),
                "scale(a.b,2)",
                vec![Some(2.0), None, Some(8.0), Some(-4.0), Some(0.0)],
            ),
            (
                c("scale", vec![p("a.b"), f(2.5)]),
                "scale(a.b,2.5)",
                vec![Some(2.5), None, Some(10.0), Some(-5.0), Some(0.0)],
            ),
            (
                c("offset", vec![p("a.b"), f(-1.5)]),
                "offset(a.b,-1.5)",
                vec![Some(-0.5), None, Some(2.5), Some(-3.5), Some(-1.5)],
            ),
            (
                c("add", vec![p("a.b"), f(1.7)]),
                "add(a.b,1)",
                vec![Some(2.7), None, Some(5.7), Some(-0.3), Some(1.7)],
            ),
            (
                c("absolute", vec![p("a.b")]),
                "absolute(a.b)",
                vec![Some(1.0), None, Some(4.0), Some(2.0), Some(0.0)],
            ),
            (
                c("invert", vec![p("a.b")]),
                "invert(a.b)",
                vec![Some(1.0), None, Some(0.25), Some(-0.5), None],
            ),
            (
                c("pow", vec![p("a.b"), i(2)]),
                "pow(a.b,2)",
                vec![Some(1.0), None, Some(16.0), Some(4.0), Some(0.0)],
            ),
            (
                c("squareRoot", vec![p("a.b")]),
                "squareRoot(a.b)",
                vec![Some(1.0), None, Some(2.0), None, Some(0.0)],
            ),
            (
                c("logarithm", vec![p("a.b"), i(2)]),
                "log(a.b, 2)",
                vec![Some(0.0), None, Some(2.0), None, None],
            ),
            (
                c("log", vec![p("a.b")]),
                "log(a.b, 10)",
                vec![Some(0.0), None, Some(4f64.log10()), None, None],
            ),
            (
                c("derivative", vec![p("a.b")]),
                "derivative(a.b)",
                vec![None, None, None, Some(-6.0), Some(2.0)],
            ),
            (
                c("nonNegativeDerivative", vec![p("a.b")]),
                "nonNegativeDerivative(a.b)",
                vec![None, None, None, None, Some(2.0)],
            ),
            (
                kw(
                    "nonNegativeDerivative",
                    vec![p("a.b")],
                    vec![("maxValue", i(5))],
                ),
                "nonNegativeDerivative(a.b)",
                vec![None, None, None, Some(0.0), Some(2.0)],
            ),
            (
                c("perSecond", vec![p("a.b")]),
                "perSecond(a.b)",
                vec![None, None, None, None, Some(2.0)],
            ),
            (
                c("integral", vec![p("a.b")]),
                "integral(a.b)",
                vec![Some(1.0), None, Some(5.0), Some(3.0), Some(3.0)],
            ),
            (
                c("keepLastValue", vec![p("a.b")]),
                "keepLastValue(a.b)",
                vec![Some(1.0), Some(1.0), Some(4.0), Some(-2.0), Some(0.0)],
            ),
            (
                c("interpolate", vec![p("a.b")]),
                "interpolate(a.b)",
                vec![Some(1.0), Some(2.5), Some(4.0), Some(-2.0), Some(0.0)],
            ),
            (
                c("transformNull", vec![p("a.b")]),
                "transformNull(a.b,0)",
                vec![Some(1.0), Some(0.0), Some(4.0), Some(-2.0), Some(0.0)],
            ),
            (
                c("transformNull", vec![p("a.b"), f(-1.5)]),
                "transformNull(a.b,-1.5)",
                vec![Some(1.0), Some(-1.5), Some(4.0), Some(-2.0), Some(0.0)],
            ),
            (
                c("isNonNull", vec![p("a.b")]),
                "isNonNull(a.b)",
                vec![Some(1.0), Some(0.0), Some(1.0), Some(1.0), Some(1.0)],
            ),
            (
                c("changed", vec![p("a.b")]),
                "changed(a.b)",
                vec![Some(0.0), Some(0.0), Some(1.0), Some(1.0), Some(1.0)],
            ),
            (
                c("offsetToZero", vec![p("a.b")]),
                "offsetToZero(a.b)",
                vec![Some(3.0), None, Some(6.0), Some(0.0), Some(2.0)],
            ),
            (
                c("delay", vec![p("a.b"), i(2)]),
                "delay(a.b,2)",
                vec![None, None, Some(1.0), None, Some(4.0)],
            ),
            (
                c("delay", vec![p("a.b"), i(-2)]),
                "delay(a.b,-2)",
                vec![Some(4.0), Some(-2.0), Some(0.0), None, None],
            ),
            (
                c("round", vec![p("a.b")]),
                "round(a.b)",
                vec![Some(1.0), None, Some(4.0), Some(-2.0), Some(0.0)],
            ),
            (
                c("scaleToSeconds", vec![p("a.b"), i(30)]),
                "scaleToSeconds(a.b,30)",
                vec![Some(30.0), None, Some(120.0), Some(-60.0), Some(0.0)],
            ),
        ];
        for (target, name, want) in rows {
            let out = run(&data(), target);
            check(&out, &[(name, &want)]);
            check_times(&out[0], 0, 5, 1);
        }
    }

    #[test]
    fn path_expression_and_tags_follow_graphite_web() {
        let out = run(&data(), c("scale", vec![p("a.b"), i(2)]));
        assert_eq!(out[0].path_expression, "scale(a.b,2)");
        assert_eq!(out[0].tags["scale"], "2.0");
        assert_eq!(out[0].tags["name"], "a.b");
        let out = run(&data(), c("derivative", vec![p("a.b")]));
        assert_eq!(out[0].path_expression, "derivative(a.b)");
        assert_eq!(out[0].tags["derivative"], "1");
    }

    #[test]
    fn keep_last_value_limit() {
        let d = [ser(
            "k",
            &[Some(1.0), None, None, Some(2.0), None, None, None],
        )];
        let out = run(&d, c("keepLastValue", vec![p("k"), i(2)]));
        check(
            &out,
            &[(
                "keepLastValue(k)",
                &[Some(1.0), Some(1.0), Some(1.0), Some(2.0), None, None, None],
            )],
        );
    }

    #[test]
    fn counter_wrap_with_max_value() {
        let d = [ser("c", &[Some(250.0), Some(255.0), Some(3.0), Some(10.0)])];
        let out = run(
            &d,
            kw("perSecond", vec![p("c")], vec![("maxValue", i(255))]),
        );
        check(
            &out,
            &[("perSecond(c)", &[None, Some(5.0), Some(4.0), Some(7.0)])],
        );
    }

    #[test]
    fn time_shift_fetches_the_shifted_window() {
        let d = [ser_step(
            "m",
            60,
            &(0..200).map(|x| Some(x as f64)).collect::<Vec<_>>(),
        )];
        let out = run_window(&d, c("timeShift", vec![p("m"), s("1h")]), 7200, 9000);
        assert_eq!(out[0].name, "timeShift(m, \"-1h\")");
        assert_eq!(out[0].path_expression, "m");
        check_times(&out[0], 7260, 9060, 60);
        assert_eq!(out[0].values[0], Some(61.0));
    }

    #[test]
    fn wrong_argument_types_are_clear_errors() {
        let err = run_err(&data(), c("scale", vec![p("a.b"), s("x")]));
        assert_eq!(
            err,
            "Invalid \"float\" value specified for function \"scale\" parameter \"factor\": 'x'"
        );
        let err = run_err(&data(), c("scale", vec![p("a.b")]));
        assert_eq!(
            err,
            "Missing required parameter \"factor\" for function \"scale\""
        );
        let err = run_err(&data(), c("scale", vec![p("a.b"), i(1), i(2)]));
        assert_eq!(err, "Too many parameters specified for function \"scale\"");
        let err = run_err(&data(), c("delay", vec![p("a.b"), f(1.5)]));
        assert!(err.contains("\"integer\" value"), "{err}");
        let err = run_err(
            &data(),
            kw("scale", vec![p("a.b"), i(1)], vec![("bogus", i(1))]),
        );
        assert_eq!(err, "Too many parameters specified for function \"scale\"");
        let err = run_err(&data(), kw("scale", vec![p("a.b")], vec![("bogus", i(1))]));
        assert_eq!(
            err,
            "Missing required parameter \"factor\" for function \"scale\""
        );
        let err = run_err(
            &data(),
            kw("movingAverage", vec![p("a.b"), i(1)], vec![("bogus", i(1))]),
        );
        assert_eq!(err, "Unexpected key word arguments: bogus");
        let out = run(&data(), kw("scale", vec![p("a.b")], vec![("factor", i(3))]));
        assert_eq!(out[0].name, "scale(a.b,3)");
        let err = run_err(&data(), c("scale", vec![i(1), i(2)]));
        assert!(err.contains("\"seriesList\" value"), "{err}");
    }
}
