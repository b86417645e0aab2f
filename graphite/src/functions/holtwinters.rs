//! Holt-Winters forecasting: `holtWintersForecast`, `holtWintersConfidenceBands`,
//! `holtWintersAberration`. The first argument is re-evaluated over a window widened by the
//! bootstrap interval (default 7 days), as graphite-web does.

use super::{opt, parse_interval, raw_arg, Args, Default, Function, ParamType as T, SERIES};
use crate::eval::{Cx, EvalError};
use crate::expr::ast::{Call, Expr};
use crate::series::Series;

const ALPHA: f64 = 0.1;
const GAMMA: f64 = 0.1;
const BETA: f64 = 0.0035;

/// Predictions and deviations of graphite-web's `holtWintersAnalysis`.
fn analysis(values: &[Option<f64>], season_length: i64) -> (Vec<Option<f64>>, Vec<Option<f64>>) {
    let n = values.len();
    let mut intercepts: Vec<Option<f64>> = Vec::with_capacity(n);
    let mut slopes: Vec<f64> = Vec::with_capacity(n);
    let mut seasonals: Vec<f64> = Vec::with_capacity(n);
    let mut predictions: Vec<Option<f64>> = Vec::with_capacity(n);
    let mut deviations: Vec<f64> = Vec::with_capacity(n);
    let back = |v: &Vec<f64>, i: i64| -> f64 {
        let j = i - season_length;
        if j >= 0 {
            v.get(j as usize).copied().unwrap_or(0.0)
        } else {
            0.0
        }
    };
    let mut next_pred: Option<f64> = None;
    for (i, v) in values.iter().enumerate() {
        let Some(actual) = *v else {
            intercepts.push(None);
            slopes.push(0.0);
            seasonals.push(0.0);
            predictions.push(next_pred);
            deviations.push(0.0);
            next_pred = None;
            continue;
        };
        let (last_intercept, last_slope, prediction) = if i == 0 {
            (actual, 0.0, Some(actual))
        } else {
            let li = intercepts.last().copied().flatten().unwrap_or(actual);
            (li, slopes.last().copied().unwrap_or(0.0), next_pred)
        };
        let i = i as i64;
        let last_seasonal = back(&seasonals, i);
        let next_last_seasonal = back(&seasonals, i + 1);
        let last_seasonal_dev = back(&deviations, i);
        let intercept =
            ALPHA * (actual - last_seasonal) + (1.0 - ALPHA) * (last_intercept + last_slope);
        let slope = BETA * (intercept - last_intercept) + (1.0 - BETA) * last_slope;
        let seasonal = GAMMA * (actual - intercept) + (1.0 - GAMMA) * last_seasonal;
        next_pred = Some(intercept + slope + next_last_seasonal);
        let deviation =
            GAMMA * (actual - prediction.unwrap_or(0.0)).abs() + (1.0 - GAMMA) * last_seasonal_dev;
        intercepts.push(Some(intercept));
        slopes.push(slope);
        seasonals.push(seasonal);
        predictions.push(prediction);
        deviations.push(deviation);
    }
    (predictions, deviations.into_iter().map(Some).collect())
}

fn bootstrap_window(idx: usize) -> impl Fn(&Call, i64, i64, Option<i64>) -> Vec<(i64, i64)> {
    move |call, from, until, _| {
        let secs = match raw_arg(call, idx, "bootstrapInterval") {
            Some(Expr::Str(s)) => parse_interval(s),
            None => Some(7 * 86400),
            _ => None,
        };
        secs.filter(|d| *d >= 0)
            .map(|d| vec![(from.saturating_sub(d), until)])
            .unwrap_or_default()
    }
}

fn forecast_window(call: &Call, from: i64, until: i64, _step: Option<i64>) -> Vec<(i64, i64)> {
    bootstrap_window(1)(call, from, until, None)
}
fn bands_window(call: &Call, from: i64, until: i64, _step: Option<i64>) -> Vec<(i64, i64)> {
    bootstrap_window(2)(call, from, until, None)
}

fn interval_arg(cx: &Cx<'_, '_>, a: &Args, name: &str) -> Result<i64, EvalError> {
    let text = a.str(name)?;
    match parse_interval(text) {
        Some(d) if d < 0 => Err(cx.input_error(format!(
            "interval {text:?} is negative: give a length of time, e.g. \"{}\"",
            text.trim_start_matches('-')
        ))),
        Some(d) => Ok(d),
        None => Err(cx.input_error(format!("invalid interval {text:?}"))),
    }
}

/// One analysed bootstrap series, trimmed to the request window.
struct Analysed {
    series: Series,
    start: i64,
    forecast: Vec<Option<f64>>,
    deviation: Vec<Option<f64>>,
}

fn analyse(
    cx: &mut Cx<'_, '_>,
    bootstrap: i64,
    seasonality: i64,
) -> Result<Vec<Analysed>, EvalError> {
    let previews = cx.eval_first_arg(cx.from.saturating_sub(bootstrap), cx.until)?;
    // The analysis' five working vectors per series, before they are made.
    cx.charge(5 * previews.iter().map(|s| s.values.len() as u64).sum::<u64>())?;
    Ok(previews
        .into_iter()
        .map(|mut s| {
            let step = s.step.max(1);
            let (pred, dev) = analysis(&s.values, seasonality / step);
            let skip = ((bootstrap / step) as usize).min(pred.len());
            // analysis() tags the (shared) tag dict of the input with both names
            s.tag("holtWintersForecast", "1");
            s.tag("holtWintersDeviation", "1");
            Analysed {
                start: s.start.saturating_add(bootstrap),
                forecast: pred[skip..].to_vec(),
                deviation: dev[skip..].to_vec(),
                series: s,
            }
        })
        .collect())
}

pub const HOLT_WINTERS_FORECAST: Function = Function::new(
    "holtWintersForecast",
    "Calculate",
    &[
        SERIES,
        opt("bootstrapInterval", T::Interval).default(Default::Str("7d")),
        opt("seasonality", T::Interval).default(Default::Str("1d")),
    ],
    |cx, a| {
        let bootstrap = interval_arg(cx, &a, "bootstrapInterval")?;
        let season = interval_arg(cx, &a, "seasonality")?;
        Ok(analyse(cx, bootstrap, season)?
            .into_iter()
            .map(|an| {
                let s = an.series;
                let mut out = Series::new(
                    format!("holtWintersForecast({})", s.name),
                    an.start,
                    s.end,
                    s.step,
                    an.forecast,
                );
                out.tags = s.tags;
                out.x_files_factor = s.x_files_factor;
                out
            })
            .collect())
    },
)
.window(forecast_window);

const BAND_PARAMS: &[super::Param] = &[
    SERIES,
    opt("delta", T::Int).default(Default::Int(3)),
    opt("bootstrapInterval", T::Interval).default(Default::Str("7d")),
    opt("seasonality", T::Interval).default(Default::Str("1d")),
];

/// (lower, upper) bands per analysed series.
fn bands(cx: &mut Cx<'_, '_>, a: &Args) -> Result<Vec<(Series, Series)>, EvalError> {
    let delta = a.float("delta")?;
    let bootstrap = interval_arg(cx, a, "bootstrapInterval")?;
    let season = interval_arg(cx, a, "seasonality")?;
    Ok(analyse(cx, bootstrap, season)?
        .into_iter()
        .map(|an| {
            let mut s = an.series;
            let (mut lower, mut upper) = (Vec::new(), Vec::new());
            for (f, d) in an.forecast.iter().zip(&an.deviation) {
                match (f, d) {
                    (Some(f), Some(d)) => {
                        upper.push(Some(f + delta * d));
                        lower.push(Some(f - delta * d));
                    }
                    _ => {
                        upper.push(None);
                        lower.push(None);
                    }
                }
            }
            s.tag("holtWintersConfidenceUpper", "1");
            s.tag("holtWintersConfidenceLower", "1");
            let mk = |kind: &str, values| {
                let mut out = Series::new(
                    format!("holtWintersConfidence{kind}({})", s.name),
                    an.start,
                    s.end,
                    s.step,
                    values,
                );
                out.tags = s.tags.clone();
                out.x_files_factor = s.x_files_factor;
                out.path_expression.clone_from(&s.path_expression);
                out
            };
            (mk("Lower", lower), mk("Upper", upper))
        })
        .collect())
}

pub const HOLT_WINTERS_CONFIDENCE_BANDS: Function = Function::new(
    "holtWintersConfidenceBands",
    "Calculate",
    BAND_PARAMS,
    |cx, a| {
        Ok(bands(cx, &a)?
            .into_iter()
            .flat_map(|(l, u)| [l, u])
            .collect())
    },
)
.window(bands_window);

pub const HOLT_WINTERS_ABERRATION: Function = Function::new(
    "holtWintersAberration",
    "Calculate",
    BAND_PARAMS,
    |cx, mut a| {
        let b = bands(cx, &a)?;
        a.series("seriesList")
            .into_iter()
            .map(|mut s| {
                let (lower, upper) = b
                    .iter()
                    .find(|(l, _)| l.name == format!("holtWintersConfidenceLower({})", s.name))
                    .ok_or_else(|| cx.input_error(format!("no confidence bands for {}", s.name)))?;
                let values = s
                    .values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        let Some(x) = *v else { return Some(0.0) };
                        let up = upper.values.get(i).copied().flatten();
                        let lo = lower.values.get(i).copied().flatten();
                        Some(match (up, lo) {
                            (Some(u), _) if x > u => x - u,
                            (_, Some(l)) if x < l => x - l,
                            _ => 0.0,
                        })
                    })
                    .collect();
                s.tag("holtWintersAberration", "1");
                let mut out = Series::new(
                    format!("holtWintersAberration({})", s.name),
                    s.start,
                    s.end,
                    s.step,
                    values,
                );
                out.tags = s.tags;
                out.x_files_factor = s.x_files_factor;
                Ok(out)
            })
            .collect()
    },
)
.window(bands_window);

pub const HOLT_WINTERS_CONFIDENCE_AREA: Function = Function::new(
    "holtWintersConfidenceArea",
    "Calculate",
    BAND_PARAMS,
    |cx, a| {
        let mut out = Vec::new();
        for (mut lower, mut upper) in bands(cx, &a)? {
            let name = format!("holtWintersConfidenceArea({})", upper.path_expression);
            upper.tag("holtWintersConfidenceArea", "1");
            lower.tags = upper.tags.clone();
            lower.rename(name.clone());
            upper.rename(name);
            out.push(lower);
            out.push(upper);
        }
        Ok(out)
    },
)
.window(bands_window);

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::analysis;

    #[test]
    fn analysis_first_steps_by_hand() {
        // season of 2 points; values 10, 20
        let (pred, dev) = analysis(&[Some(10.0), Some(20.0), None, Some(30.0)], 2);
        // i=0: intercept = 0.1*10 + 0.9*10 = 10, slope 0, seasonal 0.1*(10-10)=0, next = 10
        assert_eq!(pred[0], Some(10.0));
        assert_eq!(dev[0], Some(0.0));
        // i=1: prediction 10; deviation 0.1*|20-10| = 1
        assert_eq!(pred[1], Some(10.0));
        assert!((dev[1].unwrap() - 1.0).abs() < 1e-12);
        // i=2: None → prediction is next_pred from i=1, deviation 0
        let intercept1 = 0.1 * 20.0 + 0.9 * 10.0; // 11
        let slope1 = 0.0035 * (intercept1 - 10.0);
        assert!((pred[2].unwrap() - (intercept1 + slope1 + 0.0)).abs() < 1e-12);
        // i=3: after a None, prediction is None
        assert_eq!(pred[3], None);
    }

    #[test]
    fn forecast_fetches_bootstrap_and_names() {
        let day = 86400;
        let step = 3600;
        let n = (9 * day / step) as usize;
        let vals: Vec<Option<f64>> = (0..n)
            .map(|i| Some(((i % 24) as f64).sin() * 10.0 + 50.0))
            .collect();
        let d = [ser_step("hw.x", step, &vals)];
        let from = 8 * day;
        let until = 9 * day - step;
        let out = run_window(&d, c("holtWintersForecast", vec![p("hw.x")]), from, until);
        assert_eq!(out[0].name, "holtWintersForecast(hw.x)");
        check_times(&out[0], from + step, until + step, step);
        assert_eq!(out[0].values.len(), 23);
        let out = run_window(
            &d,
            c("holtWintersConfidenceBands", vec![p("hw.x")]),
            from,
            until,
        );
        assert_eq!(
            names(&out),
            [
                "holtWintersConfidenceLower(hw.x)",
                "holtWintersConfidenceUpper(hw.x)"
            ]
        );
        assert_eq!(out[0].path_expression, "hw.x");
        assert!(out[0]
            .values
            .iter()
            .zip(&out[1].values)
            .all(|(l, u)| l.unwrap() <= u.unwrap()));
        let out = run_window(&d, c("holtWintersAberration", vec![p("hw.x")]), from, until);
        assert_eq!(names(&out), ["holtWintersAberration(hw.x)"]);
        assert_eq!(out[0].values.len(), 23);
    }
}
