//! The one crate in carbide that speaks Graphite. No other crate parses or prints Graphite
//! syntax; they call into this one.
//!
//! Module map:
//! - [`protocol`]: the plaintext line protocol (`path value timestamp\n`): encoder, parser and
//!   the path/tag rules. Pure functions over bytes; no I/O.
//! - [`expr`]: the target-expression language (syntax tree; parser and evaluator to come).
//! - [`series`]: the time series model (graphite-web's `TimeSeries`): consolidation,
//!   step normalisation, tags, Python-compatible number formatting for names.
//! - [`eval`]: planning fetches, the `Source` trait, and evaluating targets over fetched data.
//! - [`functions`]: the `FUNCTIONS` registry (typed signatures + implementations).
//!
//! Still to come (see ARCHITECTURE.md): the target-expression language (`expr`), its function
//! library (`functions`), time syntax (`attime`), the render JSON model and client, and the
//! embedded store/server.

pub mod eval;
pub mod expr;
pub mod functions;
pub mod protocol;
pub mod series;
