//! The persistent outbox (SQLite through sqlx), and the alerter's other tables.
//!
//! Delivery protocol, per row: INSERT (committed) → send → UPDATE status = 'delivered'.
//! - **Nothing is lost**: a row is committed before the first send; pending rows survive a
//!   crash or restart and are sent by the next [`Outbox::deliver_due`].
//! - **Retries**: a retryable failure reschedules the row with capped exponential backoff
//!   (±10 % jitter); a permanent failure marks it `failed` (counted, logged) and the queue
//!   moves on.
//! - **Order and per-notifier backoff**: each notifier's rows are sent oldest first, and only
//!   the oldest pending row (the head) is ever tried, so a resolve never overtakes its trigger
//!   and a receiver that is down costs one attempt per backoff step, not one per row. Other
//!   notifiers are not held up.
//! - **Once**: the idempotency key (alert + series + level + timestamp + notifier) is UNIQUE,
//!   so enqueueing the same event twice (e.g. re-evaluated after a restart) adds no row.
//! - **At-least-once window**: a crash after the receiver accepted a message but before the
//!   row was marked delivered makes it be sent again after restart. PagerDuty folds the copy
//!   into the same incident (same `dedup_key`: exactly-once as far as people see); webhook
//!   receivers get the same `Idempotency-Key` header and field; emails keep the same
//!   `Message-ID`; Slack shows a duplicate post. The window is one HTTP/SMTP round trip.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use tokio::sync::Notify;

use crate::notifiers::{Message, Notifier, NotifyError};

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

/// Backoff for retryable failures.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Delay after the first failure.
    pub initial: Duration,
    /// The cap on the delay.
    pub max: Duration,
    /// Give up (mark failed) after this many attempts; `None` retries until delivered.
    pub max_attempts: Option<u32>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial: Duration::from_secs(5),
            max: Duration::from_secs(300),
            max_attempts: None,
        }
    }
}

impl RetryPolicy {
    /// Delay before attempt `attempts + 1` (after `attempts` failures), jittered ±10 %.
    pub fn delay(&self, attempts: u32) -> Duration {
        let exp = self
            .initial
            .saturating_mul(1u32 << attempts.saturating_sub(1).min(20));
        let d = exp.min(self.max);
        d.mul_f64(0.9 + fastrand::f64() * 0.2)
    }
}

/// Row counts by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub pending: u64,
    pub delivered: u64,
    pub failed: u64,
}

/// What one [`Outbox::deliver_due`] pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassStats {
    pub delivered: u64,
    /// Retryable failures (rescheduled).
    pub retried: u64,
    /// Permanent failures (marked failed).
    pub failed: u64,
}

/// Notifiers by name, as the outbox uses them.
pub type NotifierMap = BTreeMap<String, Arc<dyn Notifier>>;

/// The outbox. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Outbox {
    pool: SqlitePool,
    wake: Arc<Notify>,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Outbox {
    /// Open (creating if needed) the SQLite file and its schema.
    pub async fn open(path: &Path) -> anyhow::Result<Outbox> {
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
        if version > 1 {
            anyhow::bail!(
                "state file {} has schema version {version}, newer than this alerter (1): upgrade the alerter",
                path.display()
            );
        }
        if version < 1 {
            let mut tx = pool.begin().await?;
            sqlx::raw_sql(SCHEMA_V1).execute(&mut *tx).await?;
            tx.commit().await?;
        }
        Ok(Outbox {
            pool,
            wake: Arc::new(Notify::new()),
        })
    }

    /// The pool, for the state-store code that shares the file.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Record a message for `notifier` (committed before this returns). Returns false when a
    /// row with the same idempotency key already exists (nothing added).
    pub async fn enqueue(&self, notifier: &str, msg: &Message) -> anyhow::Result<bool> {
        let payload = serde_json::to_string(msg)?;
        let now = now_ms();
        let res = sqlx::query(
            "INSERT OR IGNORE INTO outbox (idempotency_key, notifier, payload, next_attempt_at, created_at)
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&msg.idempotency_key)
        .bind(notifier)
        .bind(payload)
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await?;
        let added = res.rows_affected() == 1;
        if added {
            self.wake.notify_one();
        }
        Ok(added)
    }

    /// Record a message inside the caller's transaction, so a state change and its
    /// messages commit together. Call [`Outbox::wake`] after the commit.
    pub async fn enqueue_in(
        conn: &mut sqlx::SqliteConnection,
        notifier: &str,
        msg: &Message,
    ) -> anyhow::Result<bool> {
        let payload = serde_json::to_string(msg)?;
        let now = now_ms();
        let res = sqlx::query(
            "INSERT OR IGNORE INTO outbox (idempotency_key, notifier, payload, next_attempt_at, created_at)
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&msg.idempotency_key)
        .bind(notifier)
        .bind(payload)
        .bind(now)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        Ok(res.rows_affected() == 1)
    }

    /// Wake the delivery loop (after rows were committed with [`Outbox::enqueue_in`]).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub async fn counts(&self) -> anyhow::Result<Counts> {
        let rows = sqlx::query("SELECT status, COUNT(*) FROM outbox GROUP BY status")
            .fetch_all(&self.pool)
            .await?;
        let mut c = Counts::default();
        for r in rows {
            let n = u64::try_from(r.get::<i64, _>(1)).unwrap_or(0);
            match r.get::<String, _>(0).as_str() {
                "pending" => c.pending = n,
                "delivered" => c.delivered = n,
                _ => c.failed = n,
            }
        }
        Ok(c)
    }

    /// Send every due head row, draining each notifier's queue while sends succeed; the
    /// notifiers run concurrently. `now` is unix ms.
    pub async fn deliver_due(
        &self,
        notifiers: &NotifierMap,
        policy: &RetryPolicy,
        now: i64,
    ) -> anyhow::Result<PassStats> {
        let names: Vec<String> =
            sqlx::query_scalar("SELECT DISTINCT notifier FROM outbox WHERE status = 'pending'")
                .fetch_all(&self.pool)
                .await?;
        let mut set = tokio::task::JoinSet::new();
        for name in names {
            let this = self.clone();
            let notifier = notifiers.get(&name).cloned();
            let policy = *policy;
            set.spawn(async move { this.drain(&name, notifier, &policy, now).await });
        }
        let mut total = PassStats::default();
        while let Some(res) = set.join_next().await {
            let s = res??;
            total.delivered += s.delivered;
            total.retried += s.retried;
            total.failed += s.failed;
        }
        Ok(total)
    }

    async fn drain(
        &self,
        name: &str,
        notifier: Option<Arc<dyn Notifier>>,
        policy: &RetryPolicy,
        now: i64,
    ) -> anyhow::Result<PassStats> {
        let mut stats = PassStats::default();
        loop {
            let head = sqlx::query(
                "SELECT id, payload, attempts, next_attempt_at FROM outbox
                 WHERE status = 'pending' AND notifier = ? ORDER BY id LIMIT 1",
            )
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
            let Some(head) = head else { break };
            let (id, payload, attempts, due): (i64, String, i64, i64) =
                (head.get(0), head.get(1), head.get(2), head.get(3));
            if due > now {
                break;
            }
            let attempts = u32::try_from(attempts)
                .unwrap_or(u32::MAX)
                .saturating_add(1);
            let result = match (&notifier, serde_json::from_str::<Message>(&payload)) {
                (None, _) => Err(NotifyError::Permanent(format!(
                    "notifier \"{name}\" is no longer configured"
                ))),
                (_, Err(e)) => Err(NotifyError::Permanent(format!(
                    "unreadable outbox row: {e}"
                ))),
                (Some(n), Ok(msg)) => n.send(&msg).await,
            };
            match result {
                Ok(()) => {
                    sqlx::query(
                        "UPDATE outbox SET status = 'delivered', attempts = ?, done_at = ?, last_error = NULL WHERE id = ?",
                    )
                    .bind(attempts)
                    .bind(now_ms())
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                    stats.delivered += 1;
                }
                Err(e) if e.is_retryable() && policy.max_attempts.is_none_or(|m| attempts < m) => {
                    let next = now.saturating_add(ms(policy.delay(attempts)));
                    tracing::warn!(notifier = name, attempts, "delivery failed: {e}");
                    sqlx::query("UPDATE outbox SET attempts = ?, next_attempt_at = ?, last_error = ? WHERE id = ?")
                        .bind(attempts)
                        .bind(next)
                        .bind(e.to_string())
                        .bind(id)
                        .execute(&self.pool)
                        .await?;
                    stats.retried += 1;
                    break; // this notifier's receiver is down: its queue waits
                }
                Err(e) => {
                    tracing::error!(notifier = name, attempts, "notification dropped: {e}");
                    sqlx::query(
                        "UPDATE outbox SET status = 'failed', attempts = ?, done_at = ?, last_error = ? WHERE id = ?",
                    )
                    .bind(attempts)
                    .bind(now_ms())
                    .bind(e.to_string())
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                    stats.failed += 1;
                }
            }
        }
        Ok(stats)
    }

    /// When the earliest pending head is due (unix ms), if any row is pending.
    pub async fn next_due(&self) -> anyhow::Result<Option<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT MIN(next_attempt_at) FROM outbox o WHERE status = 'pending'
             AND id = (SELECT MIN(id) FROM outbox WHERE status = 'pending' AND notifier = o.notifier)",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// Delete delivered and failed rows finished before `before` (unix ms).
    pub async fn prune(&self, before: i64) -> anyhow::Result<u64> {
        Ok(
            sqlx::query("DELETE FROM outbox WHERE status != 'pending' AND done_at < ?")
                .bind(before)
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }

    /// The delivery loop: send what is due, sleep until the next row is due or a new one is
    /// enqueued, until `shutdown` turns true.
    pub async fn run(
        &self,
        notifiers: NotifierMap,
        policy: RetryPolicy,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        while !*shutdown.borrow() {
            if let Err(e) = self.deliver_due(&notifiers, &policy, now_ms()).await {
                tracing::error!("outbox: {e:#}");
            }
            let wait = match self.next_due().await {
                Ok(Some(t)) => Duration::from_millis(u64::try_from(t - now_ms()).unwrap_or(0)),
                Ok(None) => Duration::from_secs(60),
                Err(_) => Duration::from_secs(1),
            }
            .min(Duration::from_secs(60));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.wake.notified() => {}
                r = shutdown.changed() => {
                    if r.is_err() {
                        break; // the sender is gone: nobody is left to ask for more
                    }
                }
            }
        }
    }

    /// Close the pool (checkpointing the WAL).
    pub async fn close(self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notification::{sample, Action, Level};
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A notifier failing with a fixed error for its first `fail` calls.
    #[derive(Debug)]
    struct Flaky {
        fail: u32,
        calls: AtomicU32,
        err: NotifyError,
    }

    #[async_trait::async_trait]
    impl Notifier for Flaky {
        async fn send(&self, _: &Message) -> Result<(), NotifyError> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            if n < self.fail {
                Err(self.err.clone())
            } else {
                Ok(())
            }
        }
    }

    fn msg(level: Level, ts: i64) -> Message {
        let mut n = sample(level);
        n.timestamp = ts;
        Message {
            action: Action::Trigger,
            idempotency_key: n.idempotency_key("t"),
            notification: n,
        }
    }

    fn fast() -> RetryPolicy {
        RetryPolicy {
            initial: Duration::from_millis(1),
            max: Duration::from_millis(4),
            max_attempts: None,
        }
    }

    #[tokio::test]
    async fn duplicate_enqueue_is_ignored_and_permanent_failure_is_counted() {
        let dir = tempfile::tempdir().unwrap();
        let ob = Outbox::open(&dir.path().join("s.db")).await.unwrap();
        assert!(ob.enqueue("t", &msg(Level::Critical, 1)).await.unwrap());
        assert!(!ob.enqueue("t", &msg(Level::Critical, 1)).await.unwrap());
        assert!(ob.enqueue("t", &msg(Level::Ok, 2)).await.unwrap());
        let flaky = Arc::new(Flaky {
            fail: 1,
            calls: AtomicU32::new(0),
            err: NotifyError::Permanent("400".into()),
        });
        let map: NotifierMap =
            BTreeMap::from([("t".to_string(), flaky.clone() as Arc<dyn Notifier>)]);
        let s = ob.deliver_due(&map, &fast(), now_ms()).await.unwrap();
        assert_eq!(
            s,
            PassStats {
                delivered: 1,
                retried: 0,
                failed: 1
            }
        );
        assert_eq!(
            ob.counts().await.unwrap(),
            Counts {
                pending: 0,
                delivered: 1,
                failed: 1
            }
        );
        assert_eq!(flaky.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn retryable_failure_backs_off_and_holds_the_queue_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let ob = Outbox::open(&dir.path().join("s.db")).await.unwrap();
        ob.enqueue("t", &msg(Level::Critical, 1)).await.unwrap();
        ob.enqueue("t", &msg(Level::Ok, 2)).await.unwrap();
        let flaky = Arc::new(Flaky {
            fail: 2,
            calls: AtomicU32::new(0),
            err: NotifyError::Retryable("503".into()),
        });
        let map: NotifierMap =
            BTreeMap::from([("t".to_string(), flaky.clone() as Arc<dyn Notifier>)]);
        let policy = RetryPolicy {
            initial: Duration::from_secs(10),
            max: Duration::from_secs(20),
            max_attempts: None,
        };
        let t0 = now_ms();
        let s = ob.deliver_due(&map, &policy, t0).await.unwrap();
        assert_eq!(
            s,
            PassStats {
                delivered: 0,
                retried: 1,
                failed: 0
            }
        );
        // Not due yet: nothing is tried.
        let s = ob.deliver_due(&map, &policy, t0 + 1).await.unwrap();
        assert_eq!(s, PassStats::default());
        let due = ob.next_due().await.unwrap().unwrap();
        assert!(due >= t0 + 9_000 && due <= t0 + 11_000, "{due}");
        let s = ob.deliver_due(&map, &policy, due).await.unwrap();
        assert_eq!(s.retried, 1);
        let due = ob.next_due().await.unwrap().unwrap();
        let s = ob.deliver_due(&map, &policy, due).await.unwrap();
        assert_eq!(
            s,
            PassStats {
                delivered: 2,
                retried: 0,
                failed: 0
            }
        );
        assert_eq!(flaky.calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn max_attempts_gives_up() {
        let dir = tempfile::tempdir().unwrap();
        let ob = Outbox::open(&dir.path().join("s.db")).await.unwrap();
        ob.enqueue("t", &msg(Level::Critical, 1)).await.unwrap();
        let flaky: Arc<dyn Notifier> = Arc::new(Flaky {
            fail: 99,
            calls: AtomicU32::new(0),
            err: NotifyError::Retryable("down".into()),
        });
        let map: NotifierMap = BTreeMap::from([("t".to_string(), flaky)]);
        let policy = RetryPolicy {
            max_attempts: Some(2),
            ..fast()
        };
        let mut now = now_ms();
        for _ in 0..3 {
            ob.deliver_due(&map, &policy, now).await.unwrap();
            now += 1000;
        }
        assert_eq!(
            ob.counts().await.unwrap(),
            Counts {
                pending: 0,
                delivered: 0,
                failed: 1
            }
        );
    }

    #[tokio::test]
    async fn schema_has_state_tables() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let ob = Outbox::open(&path).await.unwrap();
        sqlx::query("INSERT INTO alert_state (alert, series, level, since) VALUES ('Load', 'web1', 'CRITICAL', 1)")
            .execute(ob.pool()).await.unwrap();
        sqlx::query("INSERT INTO silences (alert_glob, series_glob, created_at, expires_at) VALUES ('Load', 'web*', 1, 2)")
            .execute(ob.pool()).await.unwrap();
        ob.close().await;
        let ob = Outbox::open(&path).await.unwrap(); // reopening keeps data, no re-create
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM alert_state")
            .fetch_one(ob.pool())
            .await
            .unwrap();
        assert_eq!(n, 1);
    }

    #[test]
    fn backoff_is_capped_and_grows() {
        let p = RetryPolicy {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(8),
            max_attempts: None,
        };
        assert!(p.delay(1) <= Duration::from_millis(1100));
        assert!(p.delay(3) >= Duration::from_millis(3600));
        assert!(p.delay(30) <= Duration::from_millis(8800));
    }
}
