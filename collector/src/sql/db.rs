//! Connections and running one query: a read-only transaction where the database has one,
//! a server-side statement timeout, and a client-side deadline on top.

use std::str::FromStr;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::{Column, Executor, Row};
use tokio::sync::OnceCell;

use super::dsn::{Driver, Dsn};
use super::value::{mysql_cell, pg_cell, sqlite_cell, Cell};

/// Extra time the client waits after the server-side timeout, so the server's own (clearer)
/// error usually wins.
const CLIENT_GRACE: Duration = Duration::from_secs(1);

/// What a query returned: column names and converted cells.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
}

/// A query failure, its message already redacted.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct QueryError(pub String);

/// MySQL and MariaDB name their statement timeouts differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor {
    MySql,
    MariaDb,
}

enum Pool {
    Postgres(sqlx::PgPool),
    /// The flavor is learnt from the server on first use.
    MySql(sqlx::MySqlPool, OnceCell<Flavor>),
    Sqlite(sqlx::SqlitePool),
}

/// A database to run queries against (a small connection pool).
pub struct Database {
    dsn: Dsn,
    pool: Pool,
    /// How long the direct connection made while the pool holds none may take
    /// ([`Database::run`]).
    probe: Duration,
}

/// How long getting a connection may take (sqlx retries a refused connection until then).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

fn pool_options<DB: sqlx::Database>(max: u32) -> sqlx::pool::PoolOptions<DB> {
    pool_options_within(max, ACQUIRE_TIMEOUT)
}

fn pool_options_within<DB: sqlx::Database>(
    max: u32,
    acquire: Duration,
) -> sqlx::pool::PoolOptions<DB> {
    sqlx::pool::PoolOptions::new()
        .max_connections(max)
        .min_connections(0)
        // Each query already fails fast on a broken connection; a ping per query would
        // double the round trips.
        .test_before_acquire(false)
        .acquire_timeout(acquire)
        .idle_timeout(Some(Duration::from_secs(300)))
}

/// How long the first, direct connection of [`Database::connect`] may take.
const CONNECT_PROBE: Duration = Duration::from_secs(10);

/// One direct connection (then closed) within `within`, its error in words.
async fn probe<C: sqlx::Connection>(
    dsn: &Dsn,
    opts: &<C as sqlx::Connection>::Options,
    within: Duration,
) -> Result<(), QueryError> {
    let err = |what: String| QueryError(dsn.redact(&format!("cannot connect to {dsn}: {what}")));
    match tokio::time::timeout(within, C::connect_with(opts)).await {
        Ok(Ok(c)) => {
            let _ = c.close().await;
            Ok(())
        }
        Ok(Err(e)) => Err(err(describe(&e))),
        Err(_) => Err(err(format!(
            "no answer within {} (a wrong host, or a firewall dropping the packets?)",
            humantime::format_duration(within)
        ))),
    }
}

/// What a connection error means, in words a user acts on, with the driver's message.
fn describe(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            format!("connection refused: nothing listens at that host and port (is the server running?) ({io})")
        }
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => {
            format!("timed out ({io})")
        }
        sqlx::Error::Io(io) => format!("network error: {io}"),
        sqlx::Error::PoolTimedOut => {
            "timed out waiting for a connection (the server refused or did not answer)".to_string()
        }
        sqlx::Error::Database(db) => {
            // MySQL/MariaDB's own error number (their SQLSTATE is a generic 42000 for most).
            let number = db
                .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                .map(|m| m.number());
            let what = match (db.code().as_deref(), number) {
                (_, Some(1045)) | (Some("28P01" | "28000"), _) => "authentication failed: ",
                (_, Some(1049)) | (Some("3D000"), _) => "unknown database: ",
                // MySQL/MariaDB answer this for a database the user may not see, existing
                // or not.
                (_, Some(1044)) => "no access to that database (or it does not exist): ",
                _ => "",
            };
            format!("{what}{}", db.message())
        }
        other => other.to_string(),
    }
}

impl Database {
    /// Connect now (one connection), so a wrong DSN or password is one clear error.
    /// `max` bounds the connections used by concurrent queries.
    ///
    /// One direct connection is tried first, within [`CONNECT_PROBE`]: the pool retries a
    /// refused connection until its acquire timeout and then only says "pool timed out", while
    /// the probe's error says what happened (refused, no answer, authentication, unknown
    /// database) within seconds.
    pub async fn connect(dsn: &Dsn, max: u32) -> Result<Database, QueryError> {
        let fail = |e: sqlx::Error| {
            QueryError(dsn.redact(&format!("cannot connect to {dsn}: {}", describe(&e))))
        };
        let url = dsn.connect_url();
        let pool = match dsn.driver() {
            Driver::Postgres => {
                let opts = sqlx::postgres::PgConnectOptions::from_str(url).map_err(fail)?;
                probe::<sqlx::PgConnection>(dsn, &opts, CONNECT_PROBE).await?;
                Pool::Postgres(pool_options(max).connect_with(opts).await.map_err(fail)?)
            }
            Driver::MySql => {
                let opts = sqlx::mysql::MySqlConnectOptions::from_str(url).map_err(fail)?;
                probe::<sqlx::MySqlConnection>(dsn, &opts, CONNECT_PROBE).await?;
                let pool = pool_options(max).connect_with(opts).await.map_err(fail)?;
                Pool::MySql(pool, OnceCell::new())
            }
            Driver::Sqlite => {
                let opts = sqlx::sqlite::SqliteConnectOptions::from_str(url)
                    .map_err(fail)?
                    .read_only(true)
                    .create_if_missing(false);
                Pool::Sqlite(pool_options(max).connect_with(opts).await.map_err(fail)?)
            }
        };
        Ok(Database {
            dsn: dsn.clone(),
            pool,
            probe: CONNECT_PROBE,
        })
    }

    /// Like [`Database::connect`], but connections are made on first use (for the agent,
    /// whose collectors are built before anything runs).
    pub fn connect_lazy(dsn: &Dsn, max: u32) -> Result<Database, QueryError> {
        Self::connect_lazy_within(dsn, max, ACQUIRE_TIMEOUT)
    }

    /// Like [`Database::connect_lazy`], giving up on getting a connection after `acquire`
    /// (a server that is down fails a run with "cannot connect" rather than its deadline).
    /// While the pool holds no connection, a run first makes one direct connection within
    /// `acquire` (at most [`CONNECT_PROBE`]), so its error says what happened (refused, no
    /// answer, authentication, unknown database) rather than "pool timed out".
    pub fn connect_lazy_within(
        dsn: &Dsn,
        max: u32,
        acquire: Duration,
    ) -> Result<Database, QueryError> {
        let fail = |e: sqlx::Error| QueryError(dsn.redact(&format!("invalid DSN {dsn}: {e}")));
        let url = dsn.connect_url();
        let pool = match dsn.driver() {
            Driver::Postgres => {
                Pool::Postgres(pool_options_within(max, acquire).connect_lazy_with(
                    sqlx::postgres::PgConnectOptions::from_str(url).map_err(fail)?,
                ))
            }
            Driver::MySql => Pool::MySql(
                pool_options_within(max, acquire).connect_lazy_with(
                    sqlx::mysql::MySqlConnectOptions::from_str(url).map_err(fail)?,
                ),
                OnceCell::new(),
            ),
            Driver::Sqlite => Pool::Sqlite(
                pool_options_within(max, acquire).connect_lazy_with(
                    sqlx::sqlite::SqliteConnectOptions::from_str(url)
                        .map_err(fail)?
                        .read_only(true)
                        .create_if_missing(false),
                ),
            ),
        };
        Ok(Database {
            dsn: dsn.clone(),
            pool,
            probe: acquire.min(CONNECT_PROBE),
        })
    }

    pub fn dsn(&self) -> &Dsn {
        &self.dsn
    }

    /// Run one query read-only under `timeout` (server-side where supported, and a client
    /// deadline slightly later). Errors are redacted.
    pub async fn run(&self, query: &str, timeout: Duration) -> Result<Rows, QueryError> {
        let deadline = timeout + CLIENT_GRACE;
        let out = match &self.pool {
            Pool::Postgres(p) => {
                self.probe_if_empty(p).await?;
                let mut conn = p.acquire().await.map_err(|e| self.error(e))?;
                let r = tokio::time::timeout(deadline, run_pg(&mut conn, query, timeout)).await;
                finish(&mut conn, r)
            }
            Pool::MySql(p, flavor) => {
                self.probe_if_empty(p).await?;
                let mut conn = p.acquire().await.map_err(|e| self.error(e))?;
                let flavor = *flavor
                    .get_or_try_init(|| mysql_flavor(&mut conn))
                    .await
                    .map_err(|e| self.error(e))?;
                let r =
                    tokio::time::timeout(deadline, run_mysql(&mut conn, flavor, query, timeout))
                        .await;
                finish(&mut conn, r)
            }
            Pool::Sqlite(p) => {
                let mut conn = p.acquire().await.map_err(|e| self.error(e))?;
                let r = tokio::time::timeout(deadline, run_sqlite(&mut conn, query)).await;
                finish(&mut conn, r)
            }
        };
        out.map_err(|e| match e {
            Failure::Db(e) => self.error(e),
            Failure::TimedOut => QueryError(format!(
                "timed out after {} (the database did not stop it)",
                humantime::format_duration(timeout)
            )),
        })
    }

    /// While `pool` holds no connection (the first run, a server that was down, connections
    /// closed when idle), one direct connection first: the pool retries a refused connection
    /// until its acquire timeout and then says only "pool timed out"; this says what
    /// happened, within `self.probe`.
    async fn probe_if_empty<DB: sqlx::Database>(
        &self,
        pool: &sqlx::Pool<DB>,
    ) -> Result<(), QueryError> {
        if pool.size() > 0 {
            return Ok(());
        }
        probe::<DB::Connection>(&self.dsn, &pool.connect_options(), self.probe).await
    }

    fn error(&self, e: sqlx::Error) -> QueryError {
        let msg = match &e {
            sqlx::Error::Database(d) => d.message().to_string(),
            // sqlx retried a refused connection until the acquire timeout
            sqlx::Error::PoolTimedOut => format!(
                "cannot connect to {} (no connection within the timeout: is the server up?)",
                self.dsn
            ),
            _ => e.to_string(),
        };
        QueryError(self.dsn.redact(&msg))
    }

    /// Close every connection.
    pub async fn close(&self) {
        match &self.pool {
            Pool::Postgres(p) => p.close().await,
            Pool::MySql(p, _) => p.close().await,
            Pool::Sqlite(p) => p.close().await,
        }
    }
}

enum Failure {
    Db(sqlx::Error),
    TimedOut,
}

/// A connection whose query failed or timed out may be mid-transaction or mid-response:
/// never hand it back to the pool.
fn finish<DB: sqlx::Database>(
    conn: &mut PoolConnection<DB>,
    r: Result<Result<Rows, sqlx::Error>, tokio::time::error::Elapsed>,
) -> Result<Rows, Failure> {
    match r {
        Ok(Ok(rows)) => Ok(rows),
        Ok(Err(e)) => {
            if !matches!(e, sqlx::Error::Database(_)) {
                conn.close_on_drop();
            }
            Err(Failure::Db(e))
        }
        Err(_) => {
            conn.close_on_drop();
            Err(Failure::TimedOut)
        }
    }
}

fn millis(d: Duration) -> u128 {
    d.as_millis().max(1)
}

fn collect<R: Row>(rows: Vec<R>, cell: fn(&R, usize) -> Cell) -> Rows {
    let columns = rows
        .first()
        .map(|r| r.columns().iter().map(|c| c.name().to_string()).collect())
        .unwrap_or_default();
    let rows = rows
        .iter()
        .map(|r| (0..r.len()).map(|i| cell(r, i)).collect())
        .collect();
    Rows { columns, rows }
}

async fn run_pg(
    conn: &mut sqlx::PgConnection,
    query: &str,
    timeout: Duration,
) -> Result<Rows, sqlx::Error> {
    // One round trip: transaction, read-only, timeout local to it.
    let setup = format!(
        "BEGIN READ ONLY; SET LOCAL statement_timeout = {}",
        millis(timeout)
    );
    conn.execute(setup.as_str()).await?;
    // The extended protocol runs exactly one statement (no `; DELETE …` riding along).
    let result = sqlx::query(query).fetch_all(&mut *conn).await;
    // Read-only: nothing to commit. Rolling back also clears an aborted transaction.
    let rollback = conn.execute("ROLLBACK").await;
    let rows = result?;
    rollback?;
    Ok(collect(rows, pg_cell))
}

async fn run_mysql(
    conn: &mut sqlx::MySqlConnection,
    flavor: Flavor,
    query: &str,
    timeout: Duration,
) -> Result<Rows, sqlx::Error> {
    // MySQL: max_execution_time (ms, SELECT only); MariaDB: max_statement_time (seconds).
    let set = match flavor {
        Flavor::MySql => format!("SET SESSION max_execution_time = {}", millis(timeout)),
        Flavor::MariaDb => format!(
            "SET SESSION max_statement_time = {:.3}",
            timeout.as_secs_f64().max(0.001)
        ),
    };
    conn.execute(set.as_str()).await?;
    conn.execute("START TRANSACTION READ ONLY").await?;
    let result = sqlx::query(query).fetch_all(&mut *conn).await;
    let rollback = conn.execute("ROLLBACK").await;
    let rows = result?;
    rollback?;
    Ok(collect(rows, mysql_cell))
}

async fn mysql_flavor(conn: &mut sqlx::MySqlConnection) -> Result<Flavor, sqlx::Error> {
    let version: String = sqlx::query_scalar("SELECT VERSION()")
        .fetch_one(&mut *conn)
        .await?;
    Ok(if version.to_ascii_lowercase().contains("mariadb") {
        Flavor::MariaDb
    } else {
        Flavor::MySql
    })
}

async fn run_sqlite(conn: &mut sqlx::SqliteConnection, query: &str) -> Result<Rows, sqlx::Error> {
    // The connection is opened read-only; SQLite has no statement timeout, the client
    // deadline applies.
    let rows = sqlx::query(query).fetch_all(&mut *conn).await?;
    Ok(collect(rows, sqlite_cell))
}
