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

/// A columnwise fold of series in progress, for the aggregations `aggregate` computes
/// column by column (sum, average, count, min, max): per point an accumulator and a count
/// of the non-null values folded into it, the series folded in the order given. A source
/// fills it straight from its storage ([`crate::eval::Source::fold`]) instead of building
/// a [`crate::series::Series`] per input; each value is folded exactly as `aggregate`'s
/// general path folds it, so the result has the same bits.
#[derive(Debug, Clone, PartialEq)]
pub struct Columns {
    pub agg: AggFunc,
    /// The window every series folded in covers: its first point, end (exclusive) and step.
    pub start: i64,
    pub end: i64,
    pub step: i64,
    /// One per point: the sum (sum, average, count) or the extreme (min, max) so far.
    pub acc: Vec<f64>,
    /// One per point: the non-null values folded into `acc`.
    pub count: Vec<u32>,
    /// Series folded in.
    pub rows: usize,
    /// The tags every series folded in has (`None` before the first).
    pub tags: Option<std::collections::BTreeMap<String, String>>,
}

impl Columns {
    /// An empty fold for `agg` over `points` points from `start` at `step`; `None` for an
    /// aggregation not computed column by column.
    pub fn new(agg: AggFunc, start: i64, step: i64, points: usize) -> Option<Columns> {
        if !Self::folds(agg) {
            return None;
        }
        Some(Columns {
            agg,
            start,
            end: start.saturating_add((points as i64).saturating_mul(step)),
            step,
            acc: vec![0.0; points],
            count: vec![0; points],
            rows: 0,
            tags: None,
        })
    }

    /// Whether `agg` folds column by column.
    pub fn folds(agg: AggFunc) -> bool {
        matches!(
            agg,
            AggFunc::Sum | AggFunc::Average | AggFunc::Count | AggFunc::Min | AggFunc::Max
        )
    }

    /// Folds one series in: `values[i]` is point `i`, NaN for a null (stored values are
    /// never NaN). As `aggregate`'s general path: a sum adds a null as `0.0` to an
    /// accumulator starting at `0.0` (the bits of Python's `sum()` of the non-null values,
    /// in series order); min and max start from the first value.
    pub fn fold(&mut self, values: &[f64]) {
        self.rows += 1;
        let cols = self.acc.iter_mut().zip(self.count.iter_mut()).zip(values);
        match self.agg {
            AggFunc::Min | AggFunc::Max => {
                let min = self.agg == AggFunc::Min;
                for ((a, c), &v) in cols {
                    if !v.is_nan() {
                        *a = match (*c, min) {
                            (0, _) => v,
                            (_, true) => a.min(v),
                            (_, false) => a.max(v),
                        };
                        *c += 1;
                    }
                }
            }
            _ => {
                for ((a, c), &v) in cols {
                    let known = !v.is_nan();
                    *a += if known { v } else { 0.0 };
                    *c += u32::from(known);
                }
            }
        }
    }

    /// [`Columns::fold`] for values as a series holds them (`None` for a null).
    pub fn fold_options(&mut self, values: &[Option<f64>]) {
        let mut row = Vec::with_capacity(self.acc.len());
        row.extend(values.iter().map(|v| v.unwrap_or(f64::NAN)));
        row.resize(self.acc.len(), f64::NAN);
        self.fold(&row);
    }

    /// Keeps, of the common tags, those `series_tags` (the next series' tags, asked only
    /// while some are left) also has.
    pub fn common_tags(
        &mut self,
        series_tags: impl FnOnce() -> std::collections::BTreeMap<String, String>,
    ) {
        match &mut self.tags {
            None => self.tags = Some(series_tags()),
            Some(t) if t.is_empty() => {}
            Some(t) => {
                let next = series_tags();
                t.retain(|k, v| next.get(k) == Some(v));
            }
        }
    }

    /// The folded points as `aggregate` gives them: null where fewer than `x_files_factor`
    /// of the series have a value (or none has), else the sum, average, count, min or max.
    pub fn finish(&self, x_files_factor: Option<f64>) -> Vec<Option<f64>> {
        let rows = self.rows as f64;
        self.acc
            .iter()
            .zip(&self.count)
            .map(|(&a, &c)| {
                if !xff(c as usize, rows, x_files_factor) {
                    return None;
                }
                Some(match self.agg {
                    AggFunc::Average => a / c as f64,
                    AggFunc::Count => c as f64,
                    _ => a,
                })
            })
            .collect()
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
