//! The alerter's SQLite file (`state_file`): every table's schema, its versions and
//! migrations, and opening it. The outbox ([`crate::outbox`]) and the state store
//! ([`crate::pipeline::state`]) share the one pool opened here; a cycle's state, history and
//! outbox rows commit in one transaction on it.

use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

/// Schema version 1: outbox, alert states and silences.
const SCHEMA_V1: &str = "
CREATE TABLE IF NOT EXISTS outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT    NOT NULL UNIQUE,
    notifier        TEXT    NOT NULL,
    payload         TEXT    NOT NULL,              -- the Message as JSON (no secrets)
    status          TEXT    NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,              -- unix ms
    last_error      TEXT,
    created_at      INTEGER NOT NULL,              -- unix ms
    done_at         INTEGER                        -- delivered or failed, unix ms
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (notifier, id) WHERE status = 'pending';

-- One row per alert name + series: what the evaluator last decided and told.
CREATE TABLE IF NOT EXISTS alert_state (
    alert          TEXT    NOT NULL,
    series         TEXT    NOT NULL,
    level          TEXT    NOT NULL,               -- OK, WARNING, CRITICAL, NO_DATA, ERROR
    since          INTEGER NOT NULL,               -- unix s: level entered
    pending_level  TEXT,                           -- a level waiting out `for` / cycles
    pending_since  INTEGER,
    pending_cycles INTEGER NOT NULL DEFAULT 0,
    last_value     REAL,
    last_seen      INTEGER,                        -- unix s: series last returned
    last_notified  INTEGER,                        -- unix s: for repeat_interval
    notified_level TEXT,                           -- level last sent (for resolve after restart)
    PRIMARY KEY (alert, series)
);

-- Silences by alert / series glob, with expiry.
CREATE TABLE IF NOT EXISTS silences (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_glob  TEXT    NOT NULL DEFAULT '*',
    series_glob TEXT    NOT NULL DEFAULT '*',
    comment     TEXT    NOT NULL DEFAULT '',
    created_by  TEXT    NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,                  -- unix s
    expires_at  INTEGER NOT NULL                   -- unix s
);
CREATE INDEX IF NOT EXISTS silences_expiry ON silences (expires_at);
PRAGMA user_version = 1;
";

/// Schema version 2: each row names its stream (alert and series), the unit of ordering.
/// Rows written by version 1 get theirs from their payload.
const SCHEMA_V2: &str = "
ALTER TABLE outbox ADD COLUMN stream TEXT NOT NULL DEFAULT '';
UPDATE outbox SET stream = COALESCE(json_extract(payload, '$.notification.alert'), '')
    || char(10) || COALESCE(json_extract(payload, '$.notification.series'), '');
CREATE INDEX IF NOT EXISTS outbox_stream ON outbox (notifier, stream, id) WHERE status = 'pending';
PRAGMA user_version = 2;
";

/// Schema version 3: the firing level a series in NO_DATA / ERROR keeps open.
const SCHEMA_V3: &str = "
ALTER TABLE alert_state ADD COLUMN held_level TEXT;
PRAGMA user_version = 3;
";

/// The newest schema version this alerter writes.
const SCHEMA_VERSION: i64 = 3;

/// The level-change history (created by [`create_history`], outside the versions).
const HISTORY_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS history (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       INTEGER NOT NULL,      -- unix s
    alert    TEXT    NOT NULL,
    series   TEXT    NOT NULL,
    previous TEXT    NOT NULL,
    level    TEXT    NOT NULL,
    value    REAL,
    silenced INTEGER NOT NULL DEFAULT 0
);
";

/// Open (creating if needed) the SQLite file and bring its schema to [`SCHEMA_VERSION`].
pub async fn open(path: &Path) -> anyhow::Result<SqlitePool> {
    let opts = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(5));
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(opts)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open state file {}: {e}", path.display()))?;
    let version: i64 = sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(&pool)
        .await?;
    if version > SCHEMA_VERSION {
        anyhow::bail!(
            "state file {} has schema version {version}, newer than this alerter ({SCHEMA_VERSION}): upgrade the alerter",
            path.display()
        );
    }
    if version < SCHEMA_VERSION {
        let mut conn = pool.acquire().await?;
        let migrated = async {
            use sqlx::Connection as _;
            let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
            if version < 1 {
                sqlx::raw_sql(SCHEMA_V1).execute(&mut *tx).await?;
            }
            if version < 2 {
                sqlx::raw_sql(SCHEMA_V2).execute(&mut *tx).await?;
            }
            sqlx::raw_sql(SCHEMA_V3).execute(&mut *tx).await?;
            tx.commit().await
        }
        .await;
        if let Err(e) = migrated {
            let _ = conn.close().await;
            anyhow::bail!("state file {}: creating its tables: {e}", path.display());
        }
    }
    Ok(pool)
}

/// Create the history table if it is missing.
pub async fn create_history(pool: &SqlitePool) -> anyhow::Result<()> {
    sqlx::raw_sql(HISTORY_SCHEMA).execute(pool).await?;
    Ok(())
}
