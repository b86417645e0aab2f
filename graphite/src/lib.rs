//! The one crate in carbide that speaks Graphite. No other crate parses or prints Graphite
//! syntax; they call into this one.
//!
//! Module map:
//! - [`protocol`]: the plaintext line protocol (`path value timestamp\n`): encoder, parser and
//!   the path/tag rules. Pure functions over bytes; no I/O.
//! - [`expr`]: the target-expression language: syntax tree and parser.
//! - [`expr::parse`](mod@expr::parse): the `nom` parser for targets, bounded against hostile input.
//! - [`glob`]: graphite-web's finder globs (`*`, `?`, `[a-z]`, `{a,b}`, `**`) compiled once.
//! - [`attime`]: `from`/`until`/`now` time syntax (`-1h30min`, `midnight_tomorrow`, epochs).
//! - [`series`]: the time series model (graphite-web's `TimeSeries`): consolidation,
//!   step normalisation, tags, Python-compatible number formatting for names.
//! - [`tags`]: Graphite 1.1 tags: canonical names, tag expressions, the tag index.
//! - [`eval`]: planning fetches, the `Source` trait, and evaluating targets over fetched data.
//! - [`budget`]: one work budget per request (points, name bytes, regexes, deadline, cancel).
//! - [`functions`]: the `FUNCTIONS` registry (typed signatures + implementations).
//! - `store` (cargo feature `store`): the embedded Graphite-compatible store — carbon schemas,
//!   series index, SQLite-backed cache+chunks, carbon plaintext listeners. See `docs/store.md`.
//! - [`render`]: the render API's `format=json` model (graphite-web's exact bytes) and, with
//!   the `client` feature, an async render client.
//!
//! - `picture` (cargo feature `picture`, part of `http`): graphite-web's PNG/SVG graphs of
//!   rendered series (layout, axes, legend; tiny-skia, embedded DejaVu Sans).
//! - `server` (cargo feature `http`): the graphite-web-compatible HTTP API over the store
//!   (`/render`, `/metrics/find`, `/metrics/expand`, `/functions`, `/version`).

pub mod attime;
pub mod budget;
pub mod eval;
pub mod expr;
pub mod functions;
pub mod glob;
#[cfg(feature = "picture")]
pub mod picture;
pub mod protocol;
pub mod render;
pub mod series;
#[cfg(feature = "http")]
pub mod server;
#[cfg(feature = "store")]
pub mod store;
pub mod tags;
