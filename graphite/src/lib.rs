//! The one crate in carbide that speaks Graphite. No other crate parses or prints Graphite
//! syntax; they call into this one.
//!
//! Module map:
//! - [`protocol`]: the plaintext line protocol (`path value timestamp\n`): encoder, parser and
//!   the path/tag rules. Pure functions over bytes; no I/O.
//! - [`expr`]: the target-expression language (syntax tree; parser and evaluator to come).
//! - [`expr::parse`](mod@expr::parse): the `nom` parser for targets, bounded against hostile input.
//! - [`glob`]: graphite-web's finder globs (`*`, `?`, `[a-z]`, `{a,b}`, `**`) compiled once.
//! - [`attime`]: `from`/`until`/`now` time syntax (`-1h30min`, `midnight_tomorrow`, epochs).
//! - [`render`]: the render API's `format=json` model (graphite-web's exact bytes) and, with
//!   the `client` feature, an async render client.
//!
//! Still to come (see ARCHITECTURE.md): the evaluator and its function library
//! (`functions`), and the embedded store/server.

pub mod attime;
pub mod expr;
pub mod glob;
pub mod protocol;
pub mod render;
