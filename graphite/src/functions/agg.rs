//! graphite-web's aggregation functions ([`AggFunc`], `getAggFunc`), Python's `sum()` and
//! `xff()`: shared by every function that reduces rows or windows.

/// graphite-web's aggregation functions (`getAggFunc`), over rows with nulls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggFunc {
    Average,
    AvgZero,
    Median,
    Sum,
    Min,
    Max,
    Diff,
    Stddev,
    Count,
    Range,
    Multiply,
    Last,
}

impl AggFunc {
    /// Parses a name, its alias (`avg`, `total`, `rangeOf`, `current`) or its deprecated
    /// `xxxSeries` form.
    pub fn parse(name: &str) -> Option<Self> {
        let name = name.strip_suffix("Series").unwrap_or(name);
        Some(match name {
            "average" | "avg" => Self::Average,
            "avg_zero" => Self::AvgZero,
            "median" => Self::Median,
            "sum" | "total" => Self::Sum,
            "min" => Self::Min,
            "max" => Self::Max,
            "diff" => Self::Diff,
            "stddev" => Self::Stddev,
            "count" => Self::Count,
            "range" | "rangeOf" => Self::Range,
            "multiply" => Self::Multiply,
            "last" | "current" => Self::Last,
            _ => return None,
        })
    }

    /// Applies the function to a row (`safe.safeXxx` semantics: nulls skipped, `None` when
    /// nothing is left, `multiply` is null if any value is).
    pub fn apply(self, row: &[Option<f64>]) -> Option<f64> {
        let vals = || row.iter().filter_map(|v| *v);
        let count = vals().count();
        match self {
            Self::Count => Some(count as f64),
            Self::AvgZero => {
                if row.is_empty() {
                    None
                } else {
                    Some(row.iter().map(|v| v.unwrap_or(0.0)).sum::<f64>() / row.len() as f64)
                }
            }
            Self::Multiply => {
                if row.is_empty() || row.iter().any(Option::is_none) {
                    None
                } else {
                    Some(vals().product())
                }
            }
            _ if count == 0 => None,
            Self::Average => Some(py_sum(vals()) / count as f64),
            Self::Sum => Some(py_sum(vals())),
            Self::Min => vals().reduce(f64::min),
            Self::Max => vals().reduce(f64::max),
            Self::Last => vals().next_back(),
            Self::Diff => {
                let mut it = vals();
                let first = it.next()?;
                Some(py_sum(std::iter::once(first).chain(it.map(|x| -x))))
            }
            Self::Range => Some(vals().reduce(f64::max)? - vals().reduce(f64::min)?),
            Self::Median => {
                let mut v: Vec<f64> = vals().collect();
                v.sort_by(f64::total_cmp);
                let mid = v.len() / 2;
                Some(if v.len() & 1 == 0 {
                    (v[mid - 1] + v[mid]) / 2.0
                } else {
                    v[mid]
                })
            }
            Self::Stddev => {
                let avg = py_sum(vals()) / count as f64;
                let ss = py_sum(vals().map(|x| (x - avg) * (x - avg)));
                Some((ss / count as f64).sqrt())
            }
        }
    }
}

/// Python's `sum()`: left to right from 0 (so results match to the last bit).
pub fn py_sum(it: impl Iterator<Item = f64>) -> f64 {
    it.fold(0.0, |a, b| a + b)
}

/// graphite-web's `xff(nonNull, total, xFilesFactor)`.
pub fn xff(non_null: usize, total: f64, x_files_factor: Option<f64>) -> bool {
    if non_null == 0 || total == 0.0 {
        return false;
    }
    non_null as f64 / total >= x_files_factor.unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agg_funcs_follow_safe_semantics() {
        let row = [Some(10.0), None, Some(5.0), None];
        assert_eq!(AggFunc::Sum.apply(&row), Some(15.0));
        assert_eq!(AggFunc::Diff.apply(&row), Some(5.0));
        assert_eq!(AggFunc::Average.apply(&row), Some(7.5));
        assert_eq!(AggFunc::AvgZero.apply(&row), Some(3.75));
        assert_eq!(AggFunc::Count.apply(&row), Some(2.0));
        assert_eq!(AggFunc::Multiply.apply(&row), None);
        assert_eq!(AggFunc::Range.apply(&row), Some(5.0));
        assert_eq!(AggFunc::Last.apply(&row), Some(5.0));
        assert_eq!(
            AggFunc::Median.apply(&[Some(1.0), Some(3.0), Some(2.0), Some(10.0)]),
            Some(2.5)
        );
        assert_eq!(AggFunc::Sum.apply(&[None, None]), None);
        assert_eq!(AggFunc::parse("sumSeries"), Some(AggFunc::Sum));
        assert_eq!(AggFunc::parse("nope"), None);
    }
}
