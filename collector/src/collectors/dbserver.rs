//! What the database server collectors (`postgres`, `mysql`) share: the DSN settings
//! (`dsn:` or `dsn_env:`, checked against the collector's driver) and a connection pool of
//! one made on the first run. Queries go through [`crate::sql::db::Database::run`]: read-only
//! transactions under a statement timeout, errors redacted. Not a collector itself.

use std::time::Duration;

use super::sql::SecretDsn;
use crate::sql::db::{Database, Rows};
use crate::sql::dsn::{Driver, Dsn};
use crate::sql::value::Cell;

/// The server-side timeout of one statistics query when the instance sets no `timeout:`.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a run tries to get a connection (sqlx retries a refused one) before it fails
/// with "cannot connect".
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

/// The DSN from `dsn:` or the environment variable named by `dsn_env:`; it must select
/// `driver` (`example` shows the expected form).
pub fn resolve_dsn(
    dsn: Option<SecretDsn>,
    dsn_env: Option<String>,
    driver: Driver,
    example: &str,
) -> anyhow::Result<Dsn> {
    let dsn = super::sql::dsn_of(
        dsn,
        dsn_env,
        &format!("missing the server: set `dsn_env: VARIABLE` (or `dsn: {example}`)"),
    )?;
    if dsn.driver() != driver {
        anyhow::bail!(
            "dsn: {} is a {} DSN; this collector reads {} servers (e.g. {example})",
            dsn,
            dsn.driver().name(),
            driver.name()
        );
    }
    Ok(dsn)
}

/// A database made on first use (pools need the async runtime; building a collector does
/// not), with one connection.
pub struct Server {
    dsn: Dsn,
    db: Option<Database>,
    pub timeout: Duration,
}

impl Server {
    pub fn new(dsn: Dsn, timeout: Option<Duration>) -> Server {
        Server {
            dsn,
            db: None,
            timeout: timeout.unwrap_or(QUERY_TIMEOUT),
        }
    }

    /// Run one statistics query; the error names the query's `what`.
    pub async fn query(&mut self, what: &str, sql: &str) -> anyhow::Result<Rows> {
        let db = match &mut self.db {
            Some(db) => db,
            empty => empty.insert(
                Database::connect_lazy_within(&self.dsn, 1, ACQUIRE_TIMEOUT)
                    .map_err(|e| anyhow::anyhow!("{e}"))?,
            ),
        };
        db.run(sql, self.timeout)
            .await
            .map_err(|e| anyhow::anyhow!("{what}: {e}"))
    }
}

/// The cell of column `name` in `row`.
pub fn cell<'a>(rows: &Rows, row: &'a [Cell], name: &str) -> Option<&'a Cell> {
    let i = rows.columns.iter().position(|c| c == name)?;
    row.get(i)
}

/// The number in column `name`, if it is one.
pub fn number(rows: &Rows, row: &[Cell], name: &str) -> Option<f64> {
    match cell(rows, row, name)? {
        Cell::Number(v) => Some(*v),
        _ => None,
    }
}

/// The text in column `name` (numbers as text too), for names.
pub fn name(rows: &Rows, row: &[Cell], name: &str) -> Option<String> {
    cell(rows, row, name)?.as_name()
}
