//! Special functions: `constantLine`, `threshold`, `consolidateBy`, `cumulative`,
//! `setXFilesFactor` (alias `xFilesFactor`).

use super::{opt, req, Function, ParamType as T, SERIES};
use crate::eval::Cx;
use crate::series::{py_float, Consolidation, Series};

/// graphite-web's `constantLine(value)`: three points spanning the evaluation window, named
/// `str(value)`, path expression `constantLine(<value>)`.
pub fn constant_line(cx: &Cx<'_, '_>, value: f64, text: String) -> Series {
    let (start, end) = (cx.from, cx.until);
    let step = ((end - start) as f64 / 2.0) as i64;
    let mut s = Series::new(text.clone(), start, end, step, vec![Some(value); 3]);
    s.path_expression = format!("constantLine({text})");
    s.x_files_factor = cx.ctx.x_files_factor.unwrap_or(0.0);
    s
}

pub const CONSTANT_LINE: Function = Function::new(
    "constantLine",
    "Special",
    &[req("value", T::Float)],
    |cx, a| {
        let v = a.float("value")?;
        Ok(vec![constant_line(cx, v, py_float(v))])
    },
);

pub const THRESHOLD: Function = Function::new(
    "threshold",
    "Graph",
    &[
        req("value", T::Float),
        opt("label", T::String),
        opt("color", T::String),
    ],
    |cx, a| {
        let v = a.float("value")?;
        let mut s = constant_line(cx, v, py_float(v));
        if let Some(label) = a.opt_str("label").filter(|l| !l.is_empty()) {
            s.name = label.to_string();
        }
        s.draw.color = a
            .opt_str("color")
            .filter(|c| !c.is_empty())
            .map(str::to_string);
        Ok(vec![s])
    },
);

const CONSOLIDATION_OPTIONS: &[&str] = &[
    "sum", "average", "avg", "avg_zero", "min", "max", "first", "last",
];

fn consolidate_by(series: Vec<Series>, func: &str) -> Vec<Series> {
    let c = Consolidation::parse(func).unwrap_or(Consolidation::Average);
    series
        .into_iter()
        .map(|mut s| {
            s.consolidation = c;
            s.tag("consolidateBy", func);
            s.rename(format!("consolidateBy({},\"{func}\")", s.name));
            s
        })
        .collect()
}

pub const CONSOLIDATE_BY: Function = Function::new(
    "consolidateBy",
    "Special",
    &[
        SERIES,
        req("consolidationFunc", T::String).options(CONSOLIDATION_OPTIONS),
    ],
    |_, mut a| {
        let f = a.str("consolidationFunc")?.to_string();
        Ok(consolidate_by(a.series("seriesList"), &f))
    },
);

pub const CUMULATIVE: Function = Function::new("cumulative", "Special", &[SERIES], |_, mut a| {
    Ok(consolidate_by(a.series("seriesList"), "sum"))
});

const XFF_PARAMS: &[super::Param] = &[SERIES, req("xFilesFactor", T::Float)];
fn set_xff(cx: &mut Cx<'_, '_>, mut a: super::Args) -> Result<Vec<Series>, crate::eval::EvalError> {
    let x = a.float("xFilesFactor")?;
    cx.ctx.x_files_factor = Some(x);
    let mut out = a.series("seriesList");
    for s in out.iter_mut() {
        s.x_files_factor = x;
        s.tag("xFilesFactor", py_float(x));
    }
    Ok(out)
}
pub const SET_X_FILES_FACTOR: Function =
    Function::new("setXFilesFactor", "Special", XFF_PARAMS, set_xff);
pub const XFF: Function = Function::new("xFilesFactor", "Special", XFF_PARAMS, set_xff);

pub const IDENTITY: Function = Function::new(
    "identity",
    "Calculate",
    &[req("name", T::String)],
    |cx, a| {
        let name = a.str("name")?.to_string();
        let (start, end) = (cx.from, cx.until);
        cx.charge_span(start, end, 60)?;
        let values = (start..end).step_by(60).map(|t| Some(t as f64)).collect();
        let mut s = Series::new(name.clone(), start, end, 60, values);
        s.path_expression = format!("identity(\"{name}\")");
        s.x_files_factor = cx.ctx.x_files_factor.unwrap_or(0.0);
        Ok(vec![s])
    },
);

pub const AGGREGATE_LINE: Function = Function::new(
    "aggregateLine",
    "Calculate",
    &[
        SERIES,
        opt("func", T::AggFunc).default(super::Default::Str("average")),
        opt("keepStep", T::Bool).default(super::Default::Bool(false)),
    ],
    |cx, mut a| {
        let func = a.str("func")?.to_string();
        let agg = super::AggFunc::parse(&func).unwrap_or(super::AggFunc::Average);
        let keep = a.bool("keepStep")?;
        Ok(a.series("seriesList")
            .into_iter()
            .map(|s| {
                let value = agg.apply(&s.values);
                let name = match value {
                    Some(v) => format!("aggregateLine({}, {})", s.name, crate::series::fmt_g(v)),
                    None => format!("aggregateLine({}, None)", s.name),
                };
                if keep {
                    s.derive(name, vec![value; s.values.len()])
                } else {
                    let mut out = constant_line(
                        cx,
                        value.unwrap_or(f64::NAN),
                        value.map_or("None".into(), py_float),
                    );
                    out.values = vec![value; 3];
                    out.name.clone_from(&name);
                    out.path_expression = name;
                    out
                }
            })
            .collect())
    },
);

fn sin_function(
    cx: &mut Cx<'_, '_>,
    a: super::Args,
) -> Result<Vec<Series>, crate::eval::EvalError> {
    let name = a.str("name")?.to_string();
    let amplitude = a.float("amplitude")?;
    let step = a.int("step")?;
    if step <= 0 {
        return Err(cx.input_error("step must be a positive number of seconds"));
    }
    cx.charge_span(cx.from, cx.until, step)?;
    let values = (cx.from..cx.until)
        .step_by(step as usize)
        .map(|t| Some((t as f64).sin() * amplitude))
        .collect();
    let mut s = Series::new(name, cx.from, cx.until, step, values);
    s.x_files_factor = cx.ctx.x_files_factor.unwrap_or(0.0);
    Ok(vec![s])
}
const SIN_PARAMS: &[super::Param] = &[
    req("name", T::String),
    opt("amplitude", T::Int).default(super::Default::Int(1)),
    opt("step", T::Int).default(super::Default::Int(60)),
];
pub const SIN: Function = Function::new("sin", "Transform", SIN_PARAMS, sin_function);
pub const SIN_FUNCTION: Function =
    Function::new("sinFunction", "Transform", SIN_PARAMS, sin_function);

fn time_function(
    cx: &mut Cx<'_, '_>,
    a: super::Args,
) -> Result<Vec<Series>, crate::eval::EvalError> {
    let name = a.str("name")?.to_string();
    let step = a.int("step")?;
    if step <= 0 {
        return Err(cx.input_error("step must be a positive number of seconds"));
    }
    cx.charge_span(cx.from, cx.until, step)?;
    let values = (cx.from..cx.until)
        .step_by(step as usize)
        .map(|t| Some(t as f64))
        .collect();
    let mut s = Series::new(name, cx.from, cx.until, step, values);
    s.x_files_factor = cx.ctx.x_files_factor.unwrap_or(0.0);
    Ok(vec![s])
}
const TIME_PARAMS: &[super::Param] = &[
    req("name", T::String),
    opt("step", T::Int).default(super::Default::Int(60)),
];
pub const TIME: Function = Function::new("time", "Transform", TIME_PARAMS, time_function);
pub const TIME_FUNCTION: Function =
    Function::new("timeFunction", "Transform", TIME_PARAMS, time_function);

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use crate::series::Consolidation;

    #[test]
    fn constant_line_and_threshold() {
        let d = [ser_step("x", 10, &[Some(1.0); 6])];
        let out = run_window(&d, c("constantLine", vec![i(5)]), 100, 200);
        check(&out, &[("5.0", &[Some(5.0); 3])]);
        check_times(&out[0], 100, 200, 50);
        assert_eq!(out[0].path_expression, "constantLine(5.0)");
        let out = run_window(&d, c("threshold", vec![f(1.5), s("max")]), 100, 200);
        check(&out, &[("max", &[Some(1.5); 3])]);
    }

    #[test]
    fn consolidate_by_and_xff() {
        let d = [ser_step("x", 10, &[Some(1.0), None, Some(3.0), Some(5.0)])];
        let out = run(&d, c("consolidateBy", vec![p("x"), s("max")]));
        assert_eq!(out[0].name, "consolidateBy(x,\"max\")");
        assert_eq!(out[0].consolidation, Consolidation::Max);
        let err = run_err(&d, c("consolidateBy", vec![p("x"), s("mean")]));
        assert!(err.contains("Invalid option"), "{err}");
        // setXFilesFactor applies to later aggregation in the same request
        let out = run(
            &d,
            c("sumSeries", vec![c("xFilesFactor", vec![p("x"), f(0.5)])]),
        );
        assert_eq!(out[0].x_files_factor, 0.5);
        let out = run(
            &d,
            c(
                "summarize",
                vec![c("setXFilesFactor", vec![p("x"), f(0.75)]), s("20s")],
            ),
        );
        check(
            &out,
            &[("summarize(x, \"20s\", \"sum\")", &[None, Some(8.0), None])],
        );
    }
}
