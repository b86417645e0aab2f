//! The one crate in carbide that speaks Graphite. No other crate parses or prints Graphite
//! syntax; they call into this one.
//!
//! Module map:
//! - [`protocol`]: the plaintext line protocol (`path value timestamp\n`): encoder, parser and
//!   the path/tag rules. Pure functions over bytes; no I/O.
//! - [`expr`]: the target-expression language (syntax tree; parser and evaluator to come).
//! - `store` (cargo feature `store`): the embedded Graphite-compatible store — carbon schemas,
//!   series index, SQLite-backed cache+chunks, carbon plaintext listeners. See `docs/store.md`.
//!
//! Still to come (see ARCHITECTURE.md): the target-expression language (`expr`), its function
//! library (`functions`), time syntax (`attime`), the render JSON model and client, and the
//! embedded store/server.

pub mod expr;
pub mod protocol;
#[cfg(feature = "store")]
pub mod store;
