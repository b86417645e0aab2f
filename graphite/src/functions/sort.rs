//! Sorting: `sortBy`, `sortByMaxima`, `sortByMinima`, `sortByName`, `sortByTotal`. Python's
//! sort is stable (also with `reverse=True`), and so is ours.

use super::filter::{key, permute, sort_by_key};
use super::{opt, AggFunc, Default, Function, ParamType as T, SERIES};

pub const SORT_BY: Function = Function::new(
    "sortBy",
    "Sorting",
    &[
        SERIES,
        opt("func", T::AggFunc).default(Default::Str("average")),
        opt("reverse", T::Bool).default(Default::Bool(false)),
    ],
    |_, mut a| {
        let agg = AggFunc::parse(a.str("func")?).unwrap_or(AggFunc::Average);
        let reverse = a.bool("reverse")?;
        let mut s = a.series("seriesList");
        sort_by_key(&mut s, |x| key(agg, x), reverse);
        Ok(s)
    },
);

pub const SORT_BY_TOTAL: Function =
    Function::new("sortByTotal", "Sorting", &[SERIES], |_, mut a| {
        let mut s = a.series("seriesList");
        sort_by_key(&mut s, |x| key(AggFunc::Sum, x), true);
        Ok(s)
    });

pub const SORT_BY_MAXIMA: Function =
    Function::new("sortByMaxima", "Sorting", &[SERIES], |_, mut a| {
        let mut s = a.series("seriesList");
        sort_by_key(&mut s, |x| key(AggFunc::Max, x), true);
        Ok(s)
    });

pub const SORT_BY_MINIMA: Function =
    Function::new("sortByMinima", "Sorting", &[SERIES], |_, mut a| {
        let mut s: Vec<_> = a
            .series("seriesList")
            .into_iter()
            .filter(|x| AggFunc::Max.apply(&x.values).unwrap_or(0.0) > 0.0)
            .collect();
        sort_by_key(&mut s, |x| key(AggFunc::Min, x), false);
        Ok(s)
    });

/// `re.sub(r'(\d+)', lambda x: '{0:010}'.format(int(x.group(0))), name)`.
fn natural_key(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 16);
    let mut digits = String::new();
    let flush = |digits: &mut String, out: &mut String| {
        if !digits.is_empty() {
            let trimmed = digits.trim_start_matches('0');
            let t = if trimmed.is_empty() { "0" } else { trimmed };
            out.push_str(&format!("{t:0>10}"));
            digits.clear();
        }
    };
    for ch in name.chars() {
        if ch.is_ascii_digit() {
            digits.push(ch);
        } else {
            flush(&mut digits, &mut out);
            out.push(ch);
        }
    }
    flush(&mut digits, &mut out);
    out
}

pub const SORT_BY_NAME: Function = Function::new(
    "sortByName",
    "Sorting",
    &[
        SERIES,
        opt("natural", T::Bool).default(Default::Bool(false)),
        opt("reverse", T::Bool).default(Default::Bool(false)),
    ],
    |_, mut a| {
        let natural = a.bool("natural")?;
        let reverse = a.bool("reverse")?;
        let mut s = a.series("seriesList");
        let keys: Vec<String> = s
            .iter()
            .map(|x| {
                if natural {
                    natural_key(&x.name)
                } else {
                    x.name.clone()
                }
            })
            .collect();
        let mut order: Vec<usize> = (0..s.len()).collect();
        order.sort_by(|&i, &j| {
            let o = keys[i].cmp(&keys[j]);
            if reverse {
                o.reverse()
            } else {
                o
            }
        });
        permute(&mut s, &order);
        Ok(s)
    },
);

#[cfg(test)]
mod tests {
    use super::super::testkit::*;

    #[test]
    fn sorting_table() {
        let d = vec![
            ser("s.n10", &[Some(1.0), Some(9.0)]),
            ser("s.n2", &[Some(-5.0), Some(3.0)]),
            ser("s.n3", &[None, None]),
            ser("s.n1", &[Some(2.0), Some(2.0)]),
        ];
        let rows: Vec<(Expr, Vec<&str>)> = vec![
            (
                c("sortByName", vec![p("s.*")]),
                vec!["s.n1", "s.n10", "s.n2", "s.n3"],
            ),
            (
                c("sortByName", vec![p("s.*"), b(true)]),
                vec!["s.n1", "s.n2", "s.n3", "s.n10"],
            ),
            (
                c("sortByName", vec![p("s.*"), b(true), b(true)]),
                vec!["s.n10", "s.n3", "s.n2", "s.n1"],
            ),
            (
                c("sortByTotal", vec![p("s.*")]),
                vec!["s.n10", "s.n1", "s.n2", "s.n3"],
            ),
            (
                c("sortByMaxima", vec![p("s.*")]),
                vec!["s.n10", "s.n2", "s.n1", "s.n3"],
            ),
            (
                c("sortByMinima", vec![p("s.*")]),
                vec!["s.n2", "s.n10", "s.n1"],
            ),
            (
                c("sortBy", vec![p("s.*"), s("last"), b(true)]),
                vec!["s.n10", "s.n2", "s.n1", "s.n3"],
            ),
        ];
        for (target, want) in rows {
            let out = run(&d, target.clone());
            assert_eq!(names(&out), want, "{target:?}");
        }
    }
}
