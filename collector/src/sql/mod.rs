//! Business metrics from SQL, shared by the `sql-to-graphite` binary and the `sql` collector.
//!
//! Module map:
//! - [`dsn`]: which driver a DSN selects; redacting its password from every message.
//! - [`db`]: connection pools; running one query read-only under a statement timeout.
//! - [`value`]: one result cell to a number (or why not).
//! - [`queries`]: queries from stdin or a YAML file; rows to `(name, value)` samples.

pub mod db;
pub mod dsn;
pub mod queries;
pub mod value;

use graphite::protocol::{encode_line, sanitize_path};

use crate::sender::Chunk;
use db::{Database, QueryError};
use queries::Query;

/// Run `q` and turn its rows into samples (names relative to the prefix). Cells that are not
/// numbers are logged as warnings and skipped.
pub async fn run_query(db: &Database, q: &Query) -> Result<Vec<(String, f64)>, QueryError> {
    let rows = db.run(&q.sql, q.timeout).await?;
    queries::samples(q, &rows, &mut |w| tracing::warn!("{w}")).map_err(QueryError)
}

/// Append `<prefix>.<name> <value> <timestamp>` lines for `samples` to `chunk`, every path
/// sanitised by the line-protocol rules. Names that cannot be encoded are logged and skipped.
pub fn encode(
    q: &Query,
    prefix: &str,
    samples: &[(String, f64)],
    timestamp: i64,
    chunk: &mut Chunk,
) {
    let prefix = q.prefix.as_deref().unwrap_or(prefix);
    for (name, value) in samples {
        let full = format!("{prefix}.{name}");
        let encoded = sanitize_path(&full)
            .and_then(|path| encode_line(&mut chunk.data, &path, *value, timestamp));
        match encoded {
            Ok(()) => chunk.lines += 1,
            Err(e) => tracing::warn!("query {}: metric {full:?} not sent: {e}", q.label),
        }
    }
}
