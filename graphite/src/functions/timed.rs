//! Functions taking `from`/`until`-style time arguments (read with [`crate::attime`], in UTC,
//! relative to the request's `now`): `timeSlice`, `linearRegression`, `verticalLine`.

use super::{opt, req, Default, Function, ParamType as T, SERIES};
use crate::attime::{parse_time, TimeZone};
use crate::eval::{Cx, EvalError};
use crate::series::Series;

/// graphite-web's `parseATTime(arg)` for a time argument.
fn at_time(cx: &Cx<'_, '_>, text: &str) -> Result<i64, EvalError> {
    parse_time(text, cx.ctx.now, &TimeZone::utc()).map_err(|e| cx.input_error(e.to_string()))
}

/// The text of a `date` argument (graphite-web accepts a string or a number).
fn date_text(a: &super::Args, name: &str) -> Option<String> {
    a.value(name).map(super::Value::py_str)
}

pub const TIME_SLICE: Function = Function::new(
    "timeSlice",
    "Transform",
    &[
        SERIES,
        req("startSliceAt", T::Date),
        opt("endSliceAt", T::Date).default(Default::Str("now")),
    ],
    |cx, mut a| {
        let start = at_time(cx, &date_text(&a, "startSliceAt").unwrap_or_default())?;
        let end = at_time(
            cx,
            &date_text(&a, "endSliceAt").unwrap_or_else(|| "now".into()),
        )?;
        let from = cx.from;
        let mut out = a.series("seriesList");
        for s in out.iter_mut() {
            s.name = format!("timeSlice({}, {start}, {end})", s.name);
            // graphite-web counts time from the request's start, not the series'.
            for (i, v) in s.values.iter_mut().enumerate() {
                let t = from + i as i64 * s.step;
                if t < start || t > end {
                    *v = None;
                }
            }
            s.tag("timeSliceStart", start.to_string());
            s.tag("timeSliceEnd", end.to_string());
        }
        Ok(out)
    },
);

/// graphite-web's `linearRegressionAnalysis`: `(factor, offset)` of the least-squares line
/// through the non-null points, in value per second and value at epoch 0.
fn regression(s: &Series) -> Option<(f64, f64)> {
    let pts = || {
        s.values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| (i as f64, v)))
    };
    let n = pts().count() as f64;
    let sum_i = super::py_sum(pts().map(|p| p.0));
    let sum_v = super::py_sum(pts().map(|p| p.1));
    let sum_ii = super::py_sum(pts().map(|p| p.0 * p.0));
    let sum_iv = super::py_sum(pts().map(|p| p.0 * p.1));
    let denominator = n * sum_ii - sum_i * sum_i;
    if denominator == 0.0 {
        return None;
    }
    let factor = (n * sum_iv - sum_i * sum_v) / denominator / s.step as f64;
    let offset = (sum_ii * sum_v - sum_iv * sum_i) / denominator - factor * s.start as f64;
    Some((factor, offset))
}

pub const LINEAR_REGRESSION: Function = Function::new(
    "linearRegression",
    "Calculate",
    &[
        SERIES,
        opt("startSourceAt", T::Date),
        opt("endSourceAt", T::Date),
    ],
    |cx, mut a| {
        let from = match date_text(&a, "startSourceAt") {
            Some(t) => at_time(cx, &t)?,
            None => cx.from,
        };
        let until = match date_text(&a, "endSourceAt") {
            Some(t) => at_time(cx, &t)?,
            None => cx.until,
        };
        let series = a.series("seriesList");
        let mut sources = Vec::new();
        for s in &series {
            let expr = crate::expr::parse(&s.path_expression).map_err(|e| {
                cx.input_error(format!("cannot re-read {:?}: {e}", s.path_expression))
            })?;
            if let super::Value::Series(got) =
                cx.ctx.eval_generated(expr, from, until, &cx.call.name)?
            {
                sources.extend(got);
            }
        }
        let mut out = Vec::new();
        for (src, s) in sources.iter().zip(&series) {
            let Some((factor, offset)) = regression(src) else {
                continue;
            };
            let values = (0..s.values.len())
                .map(|i| Some(offset + (s.start + i as i64 * s.step) as f64 * factor))
                .collect();
            let name = format!("linearRegression({}, {from}, {until})", s.name);
            let mut r = s.derive(name, values);
            r.tag("linearRegressions", format!("{from}, {until}"));
            out.push(r);
        }
        Ok(out)
    },
);

pub const VERTICAL_LINE: Function = Function::new(
    "verticalLine",
    "Graph",
    &[
        req("ts", T::Date),
        opt("label", T::String),
        opt("color", T::String),
    ],
    |cx, a| {
        let ts = at_time(cx, &date_text(&a, "ts").unwrap_or_default())?;
        if ts < cx.from {
            return Err(cx.input_error(format!(
                "timestamp {ts} is before the start of the range {}",
                cx.from
            )));
        }
        if ts > cx.until {
            return Err(cx.input_error(format!(
                "timestamp {ts} is after the end of the range {}",
                cx.until
            )));
        }
        let label = a.opt_str("label").unwrap_or("None").to_string();
        Ok(vec![Series::new(
            label,
            ts,
            ts,
            1,
            vec![Some(1.0), Some(1.0)],
        )])
    },
);

#[cfg(test)]
mod tests {
    use super::super::testkit::*;

    #[test]
    fn time_slice_nulls_points_outside_the_slice() {
        let d = [ser_step("a", 10, &vals(&[1.0, 2.0, 3.0, 4.0]))];
        // Points at 0, 10, 20, 30, but graphite-web counts from the request's from (-10):
        // it keeps indexes 2 and 3 (its times -10 + i * 10 fall in [10, 20]).
        let out = run_window(&d, t("timeSlice(a,'10','20')"), -10, 30);
        check(
            &out,
            &[("timeSlice(a, 10, 20)", &[None, None, Some(3.0), Some(4.0)])],
        );
        assert_eq!(out[0].tags["timeSliceStart"], "10");
    }

    #[test]
    fn linear_regression_fits_a_line() {
        let d = [ser_step("a", 10, &[Some(1.0), None, Some(5.0), Some(7.0)])];
        let out = run(&d, t("linearRegression(a)"));
        assert_values(&out[0].values, &vals(&[1.0, 3.0, 5.0, 7.0]), "line");
        assert!(out[0].name.starts_with("linearRegression(a, "));
    }

    #[test]
    fn vertical_line_inside_the_window_only() {
        let d = [ser_step("a", 10, &vals(&[1.0, 2.0, 3.0, 4.0]))];
        let out = run(&d, t("verticalLine('10','deploy')"));
        check(&out, &[("deploy", &vals(&[1.0, 1.0]))]);
        assert!(run_err(&d, t("verticalLine('1000')")).contains("after the end"));
    }
}
