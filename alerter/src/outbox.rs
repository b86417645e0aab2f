//! The persistent outbox (SQLite through sqlx; the file and its schema: [`crate::db`]).
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
use std::time::Duration;

use sqlx::{Row, SqlitePool};
use tokio::sync::Notify;

use crate::clock::now_ms;
use crate::notifiers::{Message, Notifier, NotifyError};

/// The ordering unit of a message: its alert and series. Rows of one stream and notifier
/// are sent oldest first; streams do not wait for each other.
pub fn stream_of(msg: &Message) -> String {
    format!("{}\n{}", msg.notification.alert, msg.notification.series)
}

/// Backoff for retryable failures.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Delay after the first failure.
    pub initial: Duration,
    /// The cap on the delay.
    pub max: Duration,
    /// Give up (mark failed) after this many attempts; `None` retries until delivered.
    pub max_attempts: Option<u32>,
    /// A page still pending this long after it was enqueued is marked failed (logged and
    /// counted in `notifications.expired`): past its usefulness (`page_max_age`, 24 h).
    pub max_age: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial: Duration::from_secs(5),
            max: Duration::from_secs(300),
            max_attempts: None,
            max_age: DEFAULT_MAX_AGE,
        }
    }
}

/// Default of [`RetryPolicy::max_age`].
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

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
    /// Failed, all reasons (permanent errors, attempts or age exhausted).
    pub failed: u64,
    /// Of `failed`: older than [`RetryPolicy::max_age`] when they were given up.
    pub expired: u64,
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
    /// Outcomes of sends whose row could not be updated (the state file's disk full, …),
    /// by row id. They are written before anything else is sent, and a row here is never
    /// sent again: a page the receiver accepted is not re-sent because the alerter could not
    /// record it (until a restart: the documented at-least-once window).
    unrecorded: Arc<std::sync::Mutex<BTreeMap<i64, Outcome>>>,
}

/// What happened to one row's send, as its UPDATE writes it.
#[derive(Debug, Clone)]
enum Outcome {
    Delivered {
        attempts: u32,
        at: i64,
    },
    Retry {
        attempts: u32,
        next: i64,
        error: String,
    },
    Failed {
        attempts: u32,
        at: i64,
        error: String,
    },
}

impl Outcome {
    async fn record(&self, pool: &SqlitePool, id: i64) -> Result<(), sqlx::Error> {
        let q = match self {
            Outcome::Delivered { attempts, at } => sqlx::query(
                "UPDATE outbox SET status = 'delivered', attempts = ?, done_at = ?, last_error = NULL WHERE id = ?",
            )
            .bind(*attempts)
            .bind(*at),
            Outcome::Retry { attempts, next, error } => sqlx::query(
                "UPDATE outbox SET attempts = ?, next_attempt_at = ?, last_error = ? WHERE id = ?",
            )
            .bind(*attempts)
            .bind(*next)
            .bind(error.clone()),
            Outcome::Failed { attempts, at, error } => sqlx::query(
                "UPDATE outbox SET status = 'failed', attempts = ?, done_at = ?, last_error = ? WHERE id = ?",
            )
            .bind(*attempts)
            .bind(*at)
            .bind(error.clone()),
        };
        q.bind(id).execute(pool).await.map(|_| ())
    }
}

/// `last_error` of a row put aside because its notifier is not in the file.
fn missing_notifier(name: &str) -> String {
    format!("notifier \"{name}\" is not configured")
}

/// Prefix of `last_error` of a row that outlived [`RetryPolicy::max_age`].
const EXPIRED: &str = "expired: ";

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Outbox {
    /// Open (creating if needed) the state file ([`crate::db::open`]).
    pub async fn open(path: &Path) -> anyhow::Result<Outbox> {
        let pool = crate::db::open(path).await?;
        Ok(Outbox {
            pool,
            wake: Arc::new(Notify::new()),
            unrecorded: Arc::default(),
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
            "INSERT OR IGNORE INTO outbox (idempotency_key, notifier, payload, next_attempt_at, created_at, stream)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&msg.idempotency_key)
        .bind(notifier)
        .bind(payload)
        .bind(now)
        .bind(now)
        .bind(stream_of(msg))
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
            "INSERT OR IGNORE INTO outbox (idempotency_key, notifier, payload, next_attempt_at, created_at, stream)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&msg.idempotency_key)
        .bind(notifier)
        .bind(payload)
        .bind(now)
        .bind(now)
        .bind(stream_of(msg))
        .execute(&mut *conn)
        .await?;
        Ok(res.rows_affected() == 1)
    }

    /// Re-point the pending rows of notifier `old` at `new` (a reload renamed it), inside
    /// the caller's transaction. Returns how many rows moved.
    pub async fn rename_in(
        conn: &mut sqlx::SqliteConnection,
        old: &str,
        new: &str,
    ) -> anyhow::Result<u64> {
        Ok(
            sqlx::query("UPDATE outbox SET notifier = ? WHERE notifier = ? AND status = 'pending'")
                .bind(new)
                .bind(old)
                .execute(&mut *conn)
                .await?
                .rows_affected(),
        )
    }

    /// Rows of notifier `name` put aside while it was missing from the file (see
    /// [`Outbox::drain`]) become due now that it is back. Inside the caller's transaction.
    pub async fn requeue_in(conn: &mut sqlx::SqliteConnection, name: &str) -> anyhow::Result<u64> {
        Ok(sqlx::query(
            "UPDATE outbox SET next_attempt_at = ? WHERE status = 'pending' AND notifier = ? AND last_error = ?",
        )
        .bind(now_ms())
        .bind(name)
        .bind(missing_notifier(name))
        .execute(&mut *conn)
        .await?
        .rows_affected())
    }

    /// Pending rows of one notifier.
    pub async fn pending_for(&self, notifier: &str) -> anyhow::Result<u64> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox WHERE status = 'pending' AND notifier = ?",
        )
        .bind(notifier)
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(n).unwrap_or(0))
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
        c.expired = self.expired().await?;
        Ok(c)
    }

    /// Send every due head row, draining each stream's queue while sends succeed; the
    /// notifiers run concurrently. `now` is unix ms. Outcomes an earlier pass could not
    /// record are written first; while they cannot be, nothing is sent (an error).
    pub async fn deliver_due(
        &self,
        notifiers: &NotifierMap,
        policy: &RetryPolicy,
        now: i64,
    ) -> anyhow::Result<PassStats> {
        self.record_unrecorded().await?;
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
        let mut error = None;
        while let Some(res) = set.join_next().await {
            match res? {
                Ok(s) => {
                    total.delivered += s.delivered;
                    total.retried += s.retried;
                    total.failed += s.failed;
                }
                Err(e) => error = Some(e),
            }
        }
        match error {
            Some(e) => Err(e),
            None => Ok(total),
        }
    }

    /// Write the outcomes earlier passes could not record.
    async fn record_unrecorded(&self) -> anyhow::Result<()> {
        let pending: Vec<(i64, Outcome)> = self
            .unrecorded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(id, o)| (*id, o.clone()))
            .collect();
        for (id, outcome) in pending {
            outcome.record(&self.pool, id).await.map_err(|e| {
                anyhow::anyhow!("recording the outcome of outbox row {id}: {e} (nothing is sent until it is recorded)")
            })?;
            self.unrecorded
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
        }
        Ok(())
    }

    /// Record `outcome` of row `id`; when the state file cannot take it, keep it in memory
    /// (never send the row again meanwhile) and fail the pass.
    async fn record(&self, id: i64, outcome: Outcome) -> anyhow::Result<()> {
        if let Err(e) = outcome.record(&self.pool, id).await {
            self.unrecorded
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id, outcome);
            anyhow::bail!("recording the outcome of outbox row {id}: {e} (kept in memory, retried with backoff; the row is not sent again)");
        }
        Ok(())
    }

    /// One notifier's pass: the oldest pending row of each stream (alert × series) is its
    /// head; heads are tried oldest first. A stream whose head fails (retryable) or is not
    /// due waits; the others go on, so one alert's failing pages never hold back another's.
    async fn drain(
        &self,
        name: &str,
        notifier: Option<Arc<dyn Notifier>>,
        policy: &RetryPolicy,
        now: i64,
    ) -> anyhow::Result<PassStats> {
        let mut stats = PassStats::default();
        let mut waiting: std::collections::BTreeSet<String> = Default::default();
        let max_age = ms(policy.max_age);
        loop {
            let heads = sqlx::query(
                "SELECT id, stream, payload, attempts, next_attempt_at, created_at FROM outbox o
                 WHERE status = 'pending' AND notifier = ?1
                 AND id = (SELECT MIN(id) FROM outbox i
                           WHERE i.status = 'pending' AND i.notifier = ?1 AND i.stream = o.stream)
                 ORDER BY id",
            )
            .bind(name)
            .fetch_all(&self.pool)
            .await?;
            let mut progressed = false;
            for head in heads {
                let (id, stream, payload, attempts, due, created): (
                    i64,
                    String,
                    String,
                    i64,
                    i64,
                    i64,
                ) = (
                    head.try_get(0)?,
                    head.try_get(1)?,
                    head.try_get(2)?,
                    head.try_get(3)?,
                    head.try_get(4)?,
                    head.try_get(5)?,
                );
                if waiting.contains(&stream) {
                    continue;
                }
                let attempts = u32::try_from(attempts).unwrap_or(u32::MAX);
                if now.saturating_sub(created) >= max_age {
                    let age = Duration::from_millis(u64::try_from(now - created).unwrap_or(0));
                    let error = format!(
                        "{EXPIRED}still undelivered after {} (page_max_age {}; {attempts} attempts)",
                        humantime::format_duration(Duration::from_secs(age.as_secs())),
                        humantime::format_duration(policy.max_age)
                    );
                    tracing::error!(notifier = name, stream = %stream.replace('\n', " "), "notification dropped: {error}");
                    self.record(
                        id,
                        Outcome::Failed {
                            attempts,
                            at: now_ms(),
                            error,
                        },
                    )
                    .await?;
                    stats.failed += 1;
                    progressed = true;
                    continue;
                }
                if due > now {
                    waiting.insert(stream);
                    continue;
                }
                let Some(notifier) = &notifier else {
                    // Its notifier is gone from the file (renamed or removed by a reload): the
                    // row stays queued, looked at again after the longest backoff, until the
                    // notifier is back or the row expires.
                    tracing::warn!(
                        notifier = name,
                        "notifier \"{name}\" is no longer configured: its pending notifications stay queued (until page_max_age)"
                    );
                    let next = now.saturating_add(ms(policy.max));
                    self.record(
                        id,
                        Outcome::Retry {
                            attempts,
                            next,
                            error: missing_notifier(name),
                        },
                    )
                    .await?;
                    waiting.insert(stream);
                    continue;
                };
                let attempts = attempts.saturating_add(1);
                let result = match serde_json::from_str::<Message>(&payload) {
                    Err(e) => Err(NotifyError::Permanent(format!(
                        "unreadable outbox row: {e}"
                    ))),
                    Ok(msg) => notifier.send(&msg).await,
                };
                match result {
                    Ok(()) => {
                        self.record(
                            id,
                            Outcome::Delivered {
                                attempts,
                                at: now_ms(),
                            },
                        )
                        .await?;
                        stats.delivered += 1;
                        progressed = true;
                    }
                    Err(e)
                        if e.is_retryable() && policy.max_attempts.is_none_or(|m| attempts < m) =>
                    {
                        let next = now.saturating_add(ms(policy.delay(attempts)));
                        tracing::warn!(notifier = name, attempts, "delivery failed: {e}");
                        self.record(
                            id,
                            Outcome::Retry {
                                attempts,
                                next,
                                error: e.to_string(),
                            },
                        )
                        .await?;
                        stats.retried += 1;
                        waiting.insert(stream); // this stream waits out its backoff
                    }
                    Err(e) => {
                        tracing::error!(notifier = name, attempts, "notification dropped: {e}");
                        self.record(
                            id,
                            Outcome::Failed {
                                attempts,
                                at: now_ms(),
                                error: e.to_string(),
                            },
                        )
                        .await?;
                        stats.failed += 1;
                        progressed = true;
                    }
                }
            }
            if !progressed {
                break;
            }
        }
        Ok(stats)
    }

    /// When the earliest pending head is due (unix ms), if any row is pending.
    pub async fn next_due(&self) -> anyhow::Result<Option<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT MIN(next_attempt_at) FROM outbox o WHERE status = 'pending'
             AND id = (SELECT MIN(id) FROM outbox i
                       WHERE i.status = 'pending' AND i.notifier = o.notifier AND i.stream = o.stream)",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// Rows marked failed because they outlived [`RetryPolicy::max_age`].
    pub async fn expired(&self) -> anyhow::Result<u64> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox WHERE status = 'failed' AND last_error LIKE 'expired: %'",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(n).unwrap_or(0))
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
        // After a failed pass (the state file unwritable: disk full, I/O error) the loop
        // waits 1 s, doubling up to `policy.max`, and new rows do not cut that short: a
        // failing state file never turns into a send loop.
        let mut failing: Option<Duration> = None;
        while !*shutdown.borrow() {
            let wait = match self.deliver_due(&notifiers, &policy, now_ms()).await {
                Ok(_) => {
                    if failing.take().is_some() {
                        tracing::info!("outbox: the state file takes updates again");
                    }
                    match self.next_due().await {
                        Ok(Some(t)) => {
                            Duration::from_millis(u64::try_from(t - now_ms()).unwrap_or(0))
                        }
                        Ok(None) => Duration::from_secs(60),
                        Err(_) => Duration::from_secs(1),
                    }
                    .min(Duration::from_secs(60))
                }
                Err(e) => {
                    let backoff = failing
                        .map_or(Duration::from_secs(1), |d| d.saturating_mul(2))
                        .min(policy.max.max(Duration::from_secs(1)));
                    failing = Some(backoff);
                    tracing::error!(
                        "outbox: {e:#}; next pass in {}",
                        humantime::format_duration(backoff)
                    );
                    backoff
                }
            };
            let woken = async {
                if failing.is_some() {
                    std::future::pending::<()>().await;
                }
                self.wake.notified().await;
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = woken => {}
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
            ..RetryPolicy::default()
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
                failed: 1,
                expired: 0
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
            ..RetryPolicy::default()
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
                failed: 1,
                expired: 0
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
            ..RetryPolicy::default()
        };
        assert!(p.delay(1) <= Duration::from_millis(1100));
        assert!(p.delay(3) >= Duration::from_millis(3600));
        assert!(p.delay(30) <= Duration::from_millis(8800));
    }
}
