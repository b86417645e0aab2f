//! Graph-only functions: they set how a series is drawn ([`Draw`]: read by the
//! pictures of `format=png`/`svg`) and do what graphite-web does to names, tags and values
//! (`stacked` does change values).

use super::{opt, req, Default, Function, ParamType as T, SERIES};
use crate::series::{fmt_g, Draw, Series};

/// Sets a drawing option on every series.
fn with_draw(mut series: Vec<Series>, f: impl Fn(&mut Draw)) -> Vec<Series> {
    for s in series.iter_mut() {
        f(&mut s.draw);
    }
    series
}

pub const COLOR: Function = Function::new(
    "color",
    "Graph",
    &[SERIES, req("theColor", T::String)],
    |_, mut a| {
        let c = a.str("theColor")?.to_string();
        Ok(with_draw(a.series("seriesList"), |d| {
            d.color = Some(c.clone())
        }))
    },
);
pub const ALPHA: Function = Function::new(
    "alpha",
    "Graph",
    &[SERIES, req("alpha", T::Float)],
    |_, mut a| {
        let v = a.opt_float("alpha");
        Ok(with_draw(a.series("seriesList"), |d| d.alpha = v))
    },
);
pub const LINE_WIDTH: Function = Function::new(
    "lineWidth",
    "Graph",
    &[SERIES, req("width", T::Float)],
    |_, mut a| {
        let v = a.opt_float("width");
        Ok(with_draw(a.series("seriesList"), |d| d.line_width = v))
    },
);

pub const DASHED: Function = Function::new(
    "dashed",
    "Graph",
    &[SERIES, opt("dashLength", T::Int).default(Default::Int(5))],
    |_, mut a| {
        let v = a.arg("dashLength")?.clone();
        let len = a.float("dashLength")?;
        let mut out = a.series("seriesList");
        for s in out.iter_mut() {
            s.draw.dashed = Some(len);
            s.tag("dashed", v.py_str());
            s.name = format!("dashed({}, {})", s.name, fmt_g(len));
        }
        Ok(out)
    },
);

macro_rules! renaming {
    ($konst:ident, $name:literal, $field:ident) => {
        pub const $konst: Function = Function::new($name, "Graph", &[SERIES], |_, mut a| {
            let mut out = a.series("seriesList");
            for s in out.iter_mut() {
                s.draw.$field = true;
                s.tag($name, "1");
                s.name = format!(concat!($name, "({})"), s.name);
            }
            Ok(out)
        });
    };
}
renaming!(SECOND_Y_AXIS, "secondYAxis", second_y_axis);
renaming!(DRAW_AS_INFINITE, "drawAsInfinite", draw_as_infinite);

pub const STACKED: Function = Function::new(
    "stacked",
    "Graph",
    &[SERIES, opt("stack", T::String)],
    |cx, mut a| {
        let name = a.opt_str("stack").unwrap_or("__DEFAULT__").to_string();
        let mut total = cx.ctx.stacks.remove(&name).unwrap_or_default();
        let mut out = Vec::new();
        for s in a.series("seriesList") {
            let mut values = Vec::with_capacity(s.values.len());
            for (i, v) in s.values.iter().enumerate() {
                if total.len() <= i {
                    total.push(0.0);
                }
                values.push(v.map(|x| {
                    total[i] += x;
                    total[i]
                }));
            }
            let mut s = s;
            let new_name = if name == "__DEFAULT__" {
                s.tag("stacked", name.clone());
                format!("stacked({})", s.name)
            } else {
                s.name.clone()
            };
            let mut s = s.derive(new_name, values);
            s.draw.stacked = true;
            out.push(s);
        }
        cx.ctx.stacks.insert(name, total);
        Ok(out)
    },
);

pub const AREA_BETWEEN: Function = Function::new("areaBetween", "Graph", &[SERIES], |cx, mut a| {
    let mut s = a.series("seriesList");
    if s.len() != 2 {
        return Err(cx.input_error("areaBetween series argument must reference *exactly* 2 series"));
    }
    s[0].draw.stacked = true;
    s[0].draw.invisible = true;
    s[1].draw.stacked = true;
    s[1].tag("areaBetween", "1");
    let name = format!("areaBetween({})", s[1].path_expression);
    s[0].tags = s[1].tags.clone();
    s[0].name.clone_from(&name);
    s[1].name = name;
    Ok(s)
});

#[cfg(test)]
mod tests {
    use super::super::testkit::*;

    #[test]
    fn graph_functions_keep_data() {
        let d = [
            ser("g.a", &[Some(1.0), None]),
            ser("g.b", &[Some(2.0), Some(3.0)]),
        ];
        let rows: Vec<(Expr, Vec<&str>)> = vec![
            (c("color", vec![p("g.a"), s("red")]), vec!["g.a"]),
            (c("alpha", vec![p("g.a"), f(0.5)]), vec!["g.a"]),
            (c("lineWidth", vec![p("g.a"), i(2)]), vec!["g.a"]),
            (c("dashed", vec![p("g.a")]), vec!["dashed(g.a, 5)"]),
            (c("dashed", vec![p("g.a"), i(3)]), vec!["dashed(g.a, 3)"]),
            (c("secondYAxis", vec![p("g.a")]), vec!["secondYAxis(g.a)"]),
            (
                c("drawAsInfinite", vec![p("g.a")]),
                vec!["drawAsInfinite(g.a)"],
            ),
            (
                c("areaBetween", vec![p("g.*")]),
                vec!["areaBetween(g.*)", "areaBetween(g.*)"],
            ),
        ];
        for (target, want) in rows {
            let out = run(&d, target.clone());
            assert_eq!(names(&out), want, "{target:?}");
            assert_eq!(out[0].values, vec![Some(1.0), None], "{target:?}");
        }
        let out = run(&d, c("stacked", vec![p("g.*")]));
        check(
            &out,
            &[
                ("stacked(g.a)", &[Some(1.0), None]),
                ("stacked(g.b)", &[Some(3.0), Some(3.0)]),
            ],
        );
    }
}
