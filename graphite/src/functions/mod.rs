//! The function library: the [`FUNCTIONS`] registry.
//!
//! Each function is one [`Function`] value next to its implementation (one file per family:
//! `aggregate.rs`, `transform.rs`, `moving.rs`, ...). Its typed [`Param`] signature drives
//! argument checking (graphite-web's `validateParams`, with its error wording), the accessors
//! its implementation reads arguments with (`a.float("factor")?`: the value or the declared
//! default) and the `/functions` description. Adding a function = one `Function` const (with
//! its implementation) + one line in [`FUNCTIONS`] + one test vector.
//!
//! Shared pieces, not functions: [`args`] (signatures, validation, accessors), [`check`]
//! (checking a target without data), [`agg`] (aggregation functions), [`naming`] (names from
//! names).
//!
//! Behaviour follows graphite-web 1.1.10 `webapp/graphite/render/functions.py` (Apache-2.0).

use crate::eval::{Cx, EvalError};
use crate::expr::ast::Call;
use crate::series::Series;

pub mod agg;
pub mod args;
pub mod check;
pub mod naming;

pub use agg::{py_sum, xff, AggFunc};
pub use args::{opt, parse_interval, raw_arg, req, Args, Default, Param, ParamType, Value, SERIES};
pub use check::{check_target, signature_error, unknown_function};
pub use naming::{agg_key, first_path_expression, format_path_expressions, node_or_tag};

pub mod aggregate;
pub mod alias;
pub mod describe;
pub mod dynamic;
pub mod filter;
pub mod graph;
pub mod holtwinters;
pub mod moving;
pub mod sort;
pub mod special;
pub mod summarize;
pub mod tags;
pub mod timed;
pub mod transform;

#[cfg(test)]
pub(crate) mod testkit;
#[cfg(test)]
mod vectors;

/// Every function carbide evaluates, in graphite-web's spelling.
pub static FUNCTIONS: &[&Function] = &[
    &aggregate::AGGREGATE,
    &aggregate::SUM_SERIES,
    &aggregate::SUM,
    &aggregate::AVERAGE_SERIES,
    &aggregate::AVG,
    &aggregate::MAX_SERIES,
    &aggregate::MIN_SERIES,
    &aggregate::DIFF_SERIES,
    &aggregate::MULTIPLY_SERIES,
    &aggregate::COUNT_SERIES,
    &aggregate::STDDEV_SERIES,
    &aggregate::RANGE_OF_SERIES,
    &aggregate::DIVIDE_SERIES,
    &aggregate::DIVIDE_SERIES_LISTS,
    &aggregate::AS_PERCENT,
    &aggregate::PCT,
    &aggregate::GROUP,
    &aggregate::SUM_SERIES_WITH_WILDCARDS,
    &aggregate::AVERAGE_SERIES_WITH_WILDCARDS,
    &aggregate::MULTIPLY_SERIES_WITH_WILDCARDS,
    &aggregate::AGGREGATE_WITH_WILDCARDS,
    &aggregate::GROUP_BY_NODE,
    &aggregate::GROUP_BY_NODES,
    &aggregate::PERCENTILE_OF_SERIES,
    &aggregate::SUM_SERIES_LISTS,
    &aggregate::DIFF_SERIES_LISTS,
    &aggregate::MULTIPLY_SERIES_LISTS,
    &aggregate::AGGREGATE_SERIES_LISTS,
    &aggregate::POW_SERIES,
    &aggregate::WEIGHTED_AVERAGE,
    &transform::SCALE,
    &transform::SCALE_TO_SECONDS,
    &transform::OFFSET,
    &transform::ABSOLUTE,
    &transform::INVERT,
    &transform::POW,
    &transform::SQUARE_ROOT,
    &transform::LOGARITHM,
    &transform::LOG,
    &transform::DERIVATIVE,
    &transform::NON_NEGATIVE_DERIVATIVE,
    &transform::PER_SECOND,
    &transform::INTEGRAL,
    &transform::KEEP_LAST_VALUE,
    &transform::TRANSFORM_NULL,
    &transform::IS_NON_NULL,
    &transform::CHANGED,
    &transform::OFFSET_TO_ZERO,
    &transform::DELAY,
    &transform::TIME_SHIFT,
    &transform::INTERPOLATE,
    &transform::ROUND,
    &transform::EXP,
    &transform::ADD,
    &transform::SIGMOID,
    &transform::LOGIT,
    &transform::MIN_MAX,
    &transform::INTEGRAL_BY_INTERVAL,
    &transform::TIME_STACK,
    &alias::ALIAS,
    &alias::ALIAS_BY_NODE,
    &alias::ALIAS_BY_METRIC,
    &alias::ALIAS_SUB,
    &alias::LEGEND_VALUE,
    &alias::ALIAS_BY_TAGS,
    &tags::SERIES_BY_TAG,
    &tags::GROUP_BY_TAGS,
    &alias::SUBSTR,
    &alias::UPPER,
    &alias::LOWER,
    &moving::MOVING_WINDOW,
    &moving::MOVING_AVERAGE,
    &moving::MOVING_MEDIAN,
    &moving::MOVING_SUM,
    &moving::MOVING_MIN,
    &moving::MOVING_MAX,
    &moving::EXPONENTIAL_MOVING_AVERAGE,
    &moving::STDEV,
    &summarize::SUMMARIZE,
    &summarize::HITCOUNT,
    &summarize::SMART_SUMMARIZE,
    &summarize::N_PERCENTILE,
    &summarize::COMPRESS_PERIODIC_GAPS,
    &filter::REMOVE_BELOW_VALUE,
    &filter::REMOVE_ABOVE_VALUE,
    &filter::REMOVE_BELOW_PERCENTILE,
    &filter::REMOVE_ABOVE_PERCENTILE,
    &filter::FILTER_SERIES,
    &filter::HIGHEST,
    &filter::LOWEST,
    &filter::HIGHEST_CURRENT,
    &filter::HIGHEST_AVERAGE,
    &filter::HIGHEST_MAX,
    &filter::LOWEST_CURRENT,
    &filter::LOWEST_AVERAGE,
    &filter::CURRENT_ABOVE,
    &filter::CURRENT_BELOW,
    &filter::AVERAGE_ABOVE,
    &filter::AVERAGE_BELOW,
    &filter::MAXIMUM_ABOVE,
    &filter::MAXIMUM_BELOW,
    &filter::MINIMUM_ABOVE,
    &filter::MINIMUM_BELOW,
    &filter::LIMIT,
    &filter::MOST_DEVIANT,
    &filter::EXCLUDE,
    &filter::GREP,
    &filter::REMOVE_EMPTY_SERIES,
    &filter::AVERAGE_OUTSIDE_PERCENTILE,
    &filter::REMOVE_BETWEEN_PERCENTILE,
    &filter::UNIQUE,
    &filter::FALLBACK_SERIES,
    &sort::SORT_BY,
    &sort::SORT_BY_MAXIMA,
    &sort::SORT_BY_MINIMA,
    &sort::SORT_BY_NAME,
    &sort::SORT_BY_TOTAL,
    &special::CONSTANT_LINE,
    &special::THRESHOLD,
    &special::CONSOLIDATE_BY,
    &special::CUMULATIVE,
    &special::SET_X_FILES_FACTOR,
    &special::XFF,
    &special::IDENTITY,
    &special::AGGREGATE_LINE,
    &special::SIN,
    &special::SIN_FUNCTION,
    &special::TIME,
    &special::TIME_FUNCTION,
    &holtwinters::HOLT_WINTERS_FORECAST,
    &holtwinters::HOLT_WINTERS_CONFIDENCE_BANDS,
    &holtwinters::HOLT_WINTERS_ABERRATION,
    &holtwinters::HOLT_WINTERS_CONFIDENCE_AREA,
    &graph::COLOR,
    &graph::LINE_WIDTH,
    &graph::DASHED,
    &graph::ALPHA,
    &graph::SECOND_Y_AXIS,
    &graph::DRAW_AS_INFINITE,
    &graph::STACKED,
    &graph::AREA_BETWEEN,
    &alias::CACTI_STYLE,
    &dynamic::APPLY_BY_NODE,
    &dynamic::ALIAS_QUERY,
    &dynamic::USE_SERIES_ABOVE,
    &dynamic::MAP_SERIES,
    &dynamic::MAP,
    &dynamic::REDUCE_SERIES,
    &dynamic::REDUCE,
    &timed::TIME_SLICE,
    &timed::LINEAR_REGRESSION,
    &timed::VERTICAL_LINE,
];

/// The registry entry named `name`.
pub fn lookup(name: &str) -> Option<&'static Function> {
    FUNCTIONS.iter().copied().find(|f| f.name == name)
}

/// A function implementation: validated arguments in, series out.
pub type Impl = fn(&mut Cx<'_, '_>, Args) -> Result<Vec<Series>, EvalError>;

/// Extra windows over which a function re-evaluates its first argument, from the literal
/// arguments of its call, the window it is evaluated over, and (when data was already
/// fetched) the largest step of the series its first argument reads (used by
/// [`crate::eval::plan`] and [`crate::eval::plan_with_steps`]).
pub type WindowFn = fn(&Call, i64, i64, Option<i64>) -> Vec<(i64, i64)>;

/// One function of the target language.
pub struct Function {
    /// Name as written in targets.
    pub name: &'static str,
    /// graphite-web's group (`Combine`, `Transform`, ...), for `/functions`.
    pub group: &'static str,
    /// The signature, in order.
    pub params: &'static [Param],
    /// graphite-web's `aggregator` flag: usable as a `groupByNode` callback.
    pub aggregator: bool,
    /// Extra fetch windows of the first argument, if any.
    pub window: Option<WindowFn>,
    /// The implementation.
    pub run: Impl,
}

impl Function {
    /// A plain function (no aggregator flag, no window hook).
    pub const fn new(
        name: &'static str,
        group: &'static str,
        params: &'static [Param],
        run: Impl,
    ) -> Self {
        Self {
            name,
            group,
            params,
            aggregator: false,
            window: None,
            run,
        }
    }

    pub const fn aggregator(mut self) -> Self {
        self.aggregator = true;
        self
    }

    pub const fn window(mut self, w: WindowFn) -> Self {
        self.window = Some(w);
        self
    }
}

/// The longest integer `movingX` window the planner widens a fetch for, and the most
/// points [`crate::eval::MemorySource`] slices for one request. What evaluation itself may
/// hold is the request's [`crate::budget::Budget`].
pub const MAX_POINTS: i64 = 10_000_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_names_are_unique_and_signatures_sane() {
        let mut names: Vec<&str> = FUNCTIONS.iter().map(|f| f.name).collect();
        names.sort_unstable();
        let n = names.len();
        names.dedup();
        assert_eq!(names.len(), n, "duplicate function names");
        for f in FUNCTIONS {
            for (i, p) in f.params.iter().enumerate() {
                assert!(
                    !p.multiple || i + 1 == f.params.len(),
                    "{}: multiple param not last",
                    f.name
                );
            }
        }
        assert!(n >= 80, "only {n} functions");
    }
}
