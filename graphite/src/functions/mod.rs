//! The function library: the [`FUNCTIONS`] registry.
//!
//! Each function is one [`Function`] value next to its implementation (one file per family:
//! `aggregate.rs`, `transform.rs`, `moving.rs`, ...). Its typed [`Param`] signature drives
//! argument checking (graphite-web's `validateParams`, with its error wording), the accessors
//! its implementation reads arguments with (`a.float("factor")?`: the value or the declared
//! default) and the `/functions` description. Adding a function = one `Function` const (with
//! its implementation) + its name in the `registry!` list (one line: `double: [DOUBLE],` for a
//! new file, or a name added to its file's list) + one test vector.
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

pub mod describe;

#[cfg(test)]
pub(crate) mod testkit;

/// Declares the function modules and [`FUNCTIONS`] from one list: each module (a file of
/// `functions/`) with the `Function` consts it registers. The order is of no importance:
/// lookups are by name and `/functions` is sorted.
macro_rules! registry {
    ($( $module:ident: [$( $function:ident ),* $(,)?], )*) => {
        $( pub mod $module; )*

        /// Every function carbide evaluates, one entry per `Function` const of a module above.
        pub static FUNCTIONS: &[&Function] = &[ $( $( &$module::$function, )* )* ];
    };
}

registry! {
    aggregate: [
        AGGREGATE,
        SUM_SERIES,
        SUM,
        AVERAGE_SERIES,
        AVG,
        MAX_SERIES,
        MIN_SERIES,
        DIFF_SERIES,
        MULTIPLY_SERIES,
        COUNT_SERIES,
        STDDEV_SERIES,
        RANGE_OF_SERIES,
        DIVIDE_SERIES,
        DIVIDE_SERIES_LISTS,
        AS_PERCENT,
        PCT,
        GROUP,
        SUM_SERIES_WITH_WILDCARDS,
        AVERAGE_SERIES_WITH_WILDCARDS,
        MULTIPLY_SERIES_WITH_WILDCARDS,
        AGGREGATE_WITH_WILDCARDS,
        GROUP_BY_NODE,
        GROUP_BY_NODES,
        PERCENTILE_OF_SERIES,
        SUM_SERIES_LISTS,
        DIFF_SERIES_LISTS,
        MULTIPLY_SERIES_LISTS,
        AGGREGATE_SERIES_LISTS,
        POW_SERIES,
        WEIGHTED_AVERAGE,
    ],
    transform: [
        SCALE,
        SCALE_TO_SECONDS,
        OFFSET,
        ABSOLUTE,
        INVERT,
        POW,
        SQUARE_ROOT,
        LOGARITHM,
        LOG,
        DERIVATIVE,
        NON_NEGATIVE_DERIVATIVE,
        PER_SECOND,
        INTEGRAL,
        KEEP_LAST_VALUE,
        TRANSFORM_NULL,
        IS_NON_NULL,
        CHANGED,
        OFFSET_TO_ZERO,
        DELAY,
        TIME_SHIFT,
        INTERPOLATE,
        ROUND,
        EXP,
        ADD,
        SIGMOID,
        LOGIT,
        MIN_MAX,
        INTEGRAL_BY_INTERVAL,
        TIME_STACK,
    ],
    alias: [
        ALIAS,
        ALIAS_BY_NODE,
        ALIAS_BY_METRIC,
        ALIAS_SUB,
        LEGEND_VALUE,
        ALIAS_BY_TAGS,
        SUBSTR,
        UPPER,
        LOWER,
        CACTI_STYLE,
    ],
    tags: [SERIES_BY_TAG, GROUP_BY_TAGS],
    moving: [
        MOVING_WINDOW,
        MOVING_AVERAGE,
        MOVING_MEDIAN,
        MOVING_SUM,
        MOVING_MIN,
        MOVING_MAX,
        EXPONENTIAL_MOVING_AVERAGE,
        STDEV,
    ],
    summarize: [
        SUMMARIZE,
        HITCOUNT,
        SMART_SUMMARIZE,
        N_PERCENTILE,
        COMPRESS_PERIODIC_GAPS,
    ],
    filter: [
        REMOVE_BELOW_VALUE,
        REMOVE_ABOVE_VALUE,
        REMOVE_BELOW_PERCENTILE,
        REMOVE_ABOVE_PERCENTILE,
        FILTER_SERIES,
        HIGHEST,
        LOWEST,
        HIGHEST_CURRENT,
        HIGHEST_AVERAGE,
        HIGHEST_MAX,
        LOWEST_CURRENT,
        LOWEST_AVERAGE,
        CURRENT_ABOVE,
        CURRENT_BELOW,
        AVERAGE_ABOVE,
        AVERAGE_BELOW,
        MAXIMUM_ABOVE,
        MAXIMUM_BELOW,
        MINIMUM_ABOVE,
        MINIMUM_BELOW,
        LIMIT,
        MOST_DEVIANT,
        EXCLUDE,
        GREP,
        REMOVE_EMPTY_SERIES,
        AVERAGE_OUTSIDE_PERCENTILE,
        REMOVE_BETWEEN_PERCENTILE,
        UNIQUE,
        FALLBACK_SERIES,
    ],
    sort: [
        SORT_BY,
        SORT_BY_MAXIMA,
        SORT_BY_MINIMA,
        SORT_BY_NAME,
        SORT_BY_TOTAL,
    ],
    special: [
        CONSTANT_LINE,
        THRESHOLD,
        CONSOLIDATE_BY,
        CUMULATIVE,
        SET_X_FILES_FACTOR,
        XFF,
        IDENTITY,
        AGGREGATE_LINE,
        SIN,
        SIN_FUNCTION,
        TIME,
        TIME_FUNCTION,
    ],
    holtwinters: [
        HOLT_WINTERS_FORECAST,
        HOLT_WINTERS_CONFIDENCE_BANDS,
        HOLT_WINTERS_ABERRATION,
        HOLT_WINTERS_CONFIDENCE_AREA,
    ],
    graph: [
        COLOR,
        LINE_WIDTH,
        DASHED,
        ALPHA,
        SECOND_Y_AXIS,
        DRAW_AS_INFINITE,
        STACKED,
        AREA_BETWEEN,
    ],
    dynamic: [
        APPLY_BY_NODE,
        ALIAS_QUERY,
        USE_SERIES_ABOVE,
        MAP_SERIES,
        MAP,
        REDUCE_SERIES,
        REDUCE,
    ],
    timed: [
        TIME_SLICE,
        LINEAR_REGRESSION,
        VERTICAL_LINE,
    ],
    events: [EVENTS],
}

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
    /// The function reads its first argument over the request window only for its shape
    /// (whether it is empty, its largest step) and re-evaluates it over windows of its own
    /// (`movingX`, as graphite-web's `evaluateTarget` of `requestContext['args'][0]`). When
    /// that shape is known without values ([`crate::eval::Shape`]), that evaluation is
    /// skipped and the function gets a stand-in list: no series, or one series without
    /// points at the shape's step. Its implementation must look at nothing else of it.
    pub shape_of_first: bool,
    /// Whether the function's output has its first argument's [`crate::eval::Shape`] (no
    /// series for none; at least one, all at the input's one step, for that), given its
    /// other arguments (literals, validated; the first is an empty list).
    pub keeps_shape: Option<fn(&Args) -> bool>,
    /// The function is `aggregate(<its series lists>, func)` for this `func`, one folded
    /// column by column ([`agg::Columns`]: sum, average, count, min, max): when all its
    /// arguments are paths the source folds ([`crate::eval::Source::fold`]), the evaluator
    /// asks the source for the fold instead of fetching the series.
    pub fold: Option<&'static str>,
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
            shape_of_first: false,
            keeps_shape: None,
            fold: None,
            run,
        }
    }

    /// See [`Function::shape_of_first`].
    pub const fn shape_of_first(mut self) -> Self {
        self.shape_of_first = true;
        self
    }

    /// See [`Function::keeps_shape`].
    pub const fn keeps_shape(mut self, rule: fn(&Args) -> bool) -> Self {
        self.keeps_shape = Some(rule);
        self
    }

    /// See [`Function::fold`].
    pub const fn fold(mut self, func: &'static str) -> Self {
        self.fold = Some(func);
        self
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
