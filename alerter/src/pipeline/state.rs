//! Per-series state: the level machine (`for`, `keep_firing_for`, no-data cycles) and its
//! persistence in the `alert_state`, `silences` and `history` tables of the state file.
//!
//! The machine is pure ([`SeriesState::step`]); the store reads and writes rows inside the
//! caller's transaction, so a cycle's state changes and its outbox rows commit together: a
//! crash either loses the whole cycle (re-evaluated after restart, same decisions) or keeps
//! all of it (nothing is paged twice).

use std::collections::BTreeMap;

use graphite::glob::GlobPattern;
use sqlx::{Row, SqliteConnection, SqlitePool};

use crate::config::Alert;
use crate::notification::Level;

/// What one evaluation saw for one series.
#[derive(Debug, Clone, PartialEq)]
pub enum Observation {
    /// The reduced value.
    Value(f64),
    /// The series was returned with every point null.
    AllNull,
    /// A series seen before was not returned.
    Vanished,
    /// The render request failed (message).
    FetchError(String),
    /// The alert-level placeholder (series = target) now that real series are back.
    Present,
}

impl Observation {
    /// The level this observation points at and the consecutive cycles it needs.
    fn candidate(&self, alert: &Alert) -> (Level, u32) {
        match self {
            Observation::Value(v) => (alert.level_for(*v), 1),
            Observation::AllNull => (alert.no_data.all_null.level, alert.no_data.all_null.cycles),
            Observation::Vanished => (alert.no_data.vanished.level, alert.no_data.vanished.cycles),
            Observation::FetchError(_) => (
                alert.no_data.fetch_error.level,
                alert.no_data.fetch_error.cycles,
            ),
            Observation::Present => (Level::Ok, 1),
        }
    }
}

/// A level waiting out `for` / `keep_firing_for` / no-data cycles.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pending {
    pub level: Level,
    /// Unix seconds the wait started.
    pub since: i64,
    /// Consecutive evaluations so far.
    pub cycles: u32,
}

/// One alert × series.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesState {
    pub level: Level,
    /// Unix seconds the level was entered.
    pub since: i64,
    pub pending: Option<Pending>,
    pub last_value: Option<f64>,
    /// Unix seconds the series was last returned.
    pub last_seen: Option<i64>,
    /// Unix seconds of the last notification (for `repeat_interval`).
    pub last_notified: Option<i64>,
    /// The level receivers were last told about (OK when never told). A silence holds it
    /// back; when it differs from `level` and nothing silences, a notification is due.
    pub notified_level: Level,
    /// The firing level whose receivers were not resolved when the series went to NO_DATA
    /// or ERROR (their incident stays open until data says otherwise); `None` otherwise.
    pub held: Option<Level>,
}

/// A level change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub previous: Level,
    pub level: Level,
}

fn firing(l: Level) -> bool {
    matches!(l, Level::Warning | Level::Critical)
}

impl SeriesState {
    pub fn new(now: i64) -> SeriesState {
        SeriesState {
            level: Level::Ok,
            since: now,
            pending: None,
            last_value: None,
            last_seen: None,
            last_notified: None,
            notified_level: Level::Ok,
            held: None,
        }
    }

    /// Apply one observation at `now` (unix s). Rules:
    /// - a firing level (WARNING/CRITICAL) entered from a non-firing one waits `for`;
    ///   WARNING ↔ CRITICAL while waiting keeps the clock running;
    /// - a firing level going back to OK waits `keep_firing_for`;
    /// - a no-data level needs its rule's consecutive `cycles`;
    /// - everything else (WARNING → CRITICAL, CRITICAL → WARNING, …) applies at once.
    pub fn step(&mut self, alert: &Alert, obs: &Observation, now: i64) -> Option<Change> {
        match obs {
            Observation::Value(v) => {
                self.last_value = Some(*v);
                self.last_seen = Some(now);
            }
            Observation::AllNull => {
                self.last_value = None;
                self.last_seen = Some(now);
            }
            _ => {}
        }
        let (candidate, cycles_needed) = obs.candidate(alert);
        if candidate == self.level {
            self.pending = None;
            return None;
        }
        let hold = if firing(candidate) && !firing(self.level) {
            alert.for_
        } else if firing(self.level) && candidate == Level::Ok {
            alert.keep_firing_for
        } else {
            std::time::Duration::ZERO
        };
        let pending = match self.pending {
            Some(p) if p.level == candidate || (firing(p.level) && firing(candidate)) => Pending {
                level: candidate,
                since: p.since,
                cycles: p.cycles.saturating_add(1),
            },
            _ => Pending {
                level: candidate,
                since: now,
                cycles: 1,
            },
        };
        let held = i64::try_from(hold.as_secs()).unwrap_or(i64::MAX);
        if pending.cycles >= cycles_needed && now.saturating_sub(pending.since) >= held {
            let change = Change {
                previous: self.level,
                level: candidate,
            };
            self.level = candidate;
            self.since = now;
            self.pending = None;
            Some(change)
        } else {
            self.pending = Some(pending);
            None
        }
    }

    /// True when `repeat_interval` asks for another notification of the current level.
    pub fn repeat_due(&self, alert: &Alert, now: i64) -> bool {
        let Some(every) = alert.repeat_interval else {
            return false;
        };
        self.level != Level::Ok
            && self.notified_level == self.level
            && self.last_notified.is_some_and(|t| {
                now.saturating_sub(t) >= i64::try_from(every.as_secs()).unwrap_or(i64::MAX)
            })
    }

    /// Nothing worth remembering: OK, told OK, nothing pending.
    pub fn forgettable(&self) -> bool {
        self.level == Level::Ok
            && self.notified_level == Level::Ok
            && self.pending.is_none()
            && self.held.is_none()
    }

    /// The fields that must survive a restart differ.
    pub fn persisted_differs(&self, other: &SeriesState) -> bool {
        (
            self.level,
            self.since,
            self.pending,
            self.last_notified,
            self.notified_level,
            self.held,
        ) != (
            other.level,
            other.since,
            other.pending,
            other.last_notified,
            other.notified_level,
            other.held,
        )
    }
}

/// A silence: notifications for matching alert × series are held until it expires.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Silence {
    pub id: i64,
    pub alert_glob: String,
    pub series_glob: String,
    pub comment: String,
    pub created_by: String,
    pub created_at: i64,
    pub expires_at: i64,
    #[serde(skip)]
    alert: Option<GlobPattern>,
    #[serde(skip)]
    series: Option<GlobPattern>,
}

impl Silence {
    /// Whether this silence holds notifications for `alert` × `series` at `now`.
    pub fn matches(&self, alert: &str, series: &str, now: i64) -> bool {
        now < self.expires_at
            && self.alert.as_ref().is_some_and(|g| g.matches(alert))
            && self.series.as_ref().is_some_and(|g| g.matches(series))
    }

    fn compile(mut self) -> Silence {
        self.alert = GlobPattern::new(&self.alert_glob).ok();
        self.series = GlobPattern::new(&self.series_glob).ok();
        self
    }
}

/// A row of the `history` table: one level change.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct HistoryEntry {
    pub at: i64,
    pub alert: String,
    pub series: String,
    pub previous: Level,
    pub level: Level,
    pub value: Option<f64>,
    /// A silence held the notification back.
    pub silenced: bool,
}

/// How many history rows are kept.
pub const HISTORY_KEEP: i64 = 10_000;

/// The state tables of the alerter's SQLite file (shared with the outbox).
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
}

fn level_of(s: Option<String>) -> Level {
    s.and_then(|s| s.parse().ok()).unwrap_or(Level::Ok)
}

impl Store {
    /// Uses the outbox's pool; creates the history table if missing.
    pub async fn new(pool: SqlitePool) -> anyhow::Result<Store> {
        crate::db::create_history(&pool).await?;
        Ok(Store { pool })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Every saved alert × series state.
    pub async fn load(&self) -> anyhow::Result<BTreeMap<(String, String), SeriesState>> {
        let rows = sqlx::query(
            "SELECT alert, series, level, since, pending_level, pending_since, pending_cycles,
                    last_value, last_seen, last_notified, notified_level, held_level FROM alert_state",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = BTreeMap::new();
        for r in rows {
            let pending = r
                .get::<Option<String>, _>(4)
                .and_then(|l| l.parse::<Level>().ok())
                .map(|level| Pending {
                    level,
                    since: r.get::<Option<i64>, _>(5).unwrap_or(0),
                    cycles: u32::try_from(r.get::<i64, _>(6)).unwrap_or(0),
                });
            out.insert(
                (r.get::<String, _>(0), r.get::<String, _>(1)),
                SeriesState {
                    level: level_of(Some(r.get(2))),
                    since: r.get(3),
                    pending,
                    last_value: r.get(7),
                    last_seen: r.get(8),
                    last_notified: r.get(9),
                    notified_level: level_of(r.get(10)),
                    held: r
                        .get::<Option<String>, _>(11)
                        .and_then(|l| l.parse::<Level>().ok()),
                },
            );
        }
        Ok(out)
    }

    /// Insert or replace one row (inside the caller's transaction).
    pub async fn save(
        conn: &mut SqliteConnection,
        alert: &str,
        series: &str,
        s: &SeriesState,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT OR REPLACE INTO alert_state (alert, series, level, since, pending_level,
                pending_since, pending_cycles, last_value, last_seen, last_notified, notified_level, held_level)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(alert)
        .bind(series)
        .bind(s.level.as_str())
        .bind(s.since)
        .bind(s.pending.map(|p| p.level.as_str()))
        .bind(s.pending.map(|p| p.since))
        .bind(s.pending.map(|p| i64::from(p.cycles)).unwrap_or(0))
        .bind(s.last_value.filter(|v| v.is_finite()))
        .bind(s.last_seen)
        .bind(s.last_notified)
        .bind(s.notified_level.as_str())
        .bind(s.held.map(|l| l.as_str()))
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    pub async fn delete(
        conn: &mut SqliteConnection,
        alert: &str,
        series: &str,
    ) -> anyhow::Result<()> {
        sqlx::query("DELETE FROM alert_state WHERE alert = ? AND series = ?")
            .bind(alert)
            .bind(series)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    pub async fn add_history(conn: &mut SqliteConnection, h: &HistoryEntry) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO history (at, alert, series, previous, level, value, silenced) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(h.at)
        .bind(&h.alert)
        .bind(&h.series)
        .bind(h.previous.as_str())
        .bind(h.level.as_str())
        .bind(h.value.filter(|v| v.is_finite()))
        .bind(h.silenced)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Keep the newest [`HISTORY_KEEP`] rows.
    pub async fn prune_history(conn: &mut SqliteConnection) -> anyhow::Result<()> {
        sqlx::query("DELETE FROM history WHERE id <= (SELECT MAX(id) FROM history) - ?")
            .bind(HISTORY_KEEP)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// The newest `limit` level changes, newest first.
    pub async fn history(&self, limit: i64) -> anyhow::Result<Vec<HistoryEntry>> {
        let rows = sqlx::query(
            "SELECT at, alert, series, previous, level, value, silenced FROM history ORDER BY id DESC LIMIT ?",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| HistoryEntry {
                at: r.get(0),
                alert: r.get(1),
                series: r.get(2),
                previous: level_of(Some(r.get(3))),
                level: level_of(Some(r.get(4))),
                value: r.get(5),
                silenced: r.get(6),
            })
            .collect())
    }

    /// Add a silence; returns its id. Globs are checked first.
    pub async fn add_silence(
        &self,
        alert_glob: &str,
        series_glob: &str,
        comment: &str,
        created_by: &str,
        now: i64,
        expires_at: i64,
    ) -> anyhow::Result<i64> {
        for g in [alert_glob, series_glob] {
            GlobPattern::new(g).map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        if expires_at <= now {
            anyhow::bail!("the silence would already be expired (give a positive duration)");
        }
        let id = sqlx::query(
            "INSERT INTO silences (alert_glob, series_glob, comment, created_by, created_at, expires_at)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(alert_glob)
        .bind(series_glob)
        .bind(comment)
        .bind(created_by)
        .bind(now)
        .bind(expires_at)
        .execute(&self.pool)
        .await?
        .last_insert_rowid();
        Ok(id)
    }

    /// Silences not yet expired at `now`.
    pub async fn active_silences(&self, now: i64) -> anyhow::Result<Vec<Silence>> {
        let rows = sqlx::query(
            "SELECT id, alert_glob, series_glob, comment, created_by, created_at, expires_at
             FROM silences WHERE expires_at > ? ORDER BY id",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                Silence {
                    id: r.get(0),
                    alert_glob: r.get(1),
                    series_glob: r.get(2),
                    comment: r.get(3),
                    created_by: r.get(4),
                    created_at: r.get(5),
                    expires_at: r.get(6),
                    alert: None,
                    series: None,
                }
                .compile()
            })
            .collect())
    }

    /// Expire a silence now; false when no active silence has that id.
    pub async fn expire_silence(&self, id: i64, now: i64) -> anyhow::Result<bool> {
        Ok(
            sqlx::query("UPDATE silences SET expires_at = ? WHERE id = ? AND expires_at > ?")
                .bind(now)
                .bind(id)
                .bind(now)
                .execute(&self.pool)
                .await?
                .rows_affected()
                == 1,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::path::Path;

    fn alert(extra: &str) -> Alert {
        let text = format!(
            "alerts:\n  - name: A\n    target: a.*\n    warning: 10\n    critical: 20\n{extra}"
        );
        Config::from_str_with_env(Path::new("a.yml"), &text, &|_| None)
            .unwrap()
            .alerts
            .remove(0)
    }

    fn run(a: &Alert, s: &mut SeriesState, obs: &[(i64, Observation)]) -> Vec<(i64, Level)> {
        obs.iter()
            .filter_map(|(t, o)| s.step(a, o, *t).map(|c| (*t, c.level)))
            .collect()
    }

    #[test]
    fn every_change_applies_at_once_without_for() {
        let a = alert("");
        let mut s = SeriesState::new(0);
        let v = Observation::Value;
        let got = run(
            &a,
            &mut s,
            &[
                (60, v(5.0)),
                (120, v(15.0)),
                (180, v(25.0)),
                (240, v(15.0)),
                (300, v(1.0)),
            ],
        );
        assert_eq!(
            got,
            vec![
                (120, Level::Warning),
                (180, Level::Critical),
                (240, Level::Warning),
                (300, Level::Ok)
            ]
        );
        assert_eq!(s.since, 300);
    }

    #[test]
    fn for_waits_and_flapping_between_firing_levels_keeps_the_clock() {
        let a = alert("    for: 3m\n");
        let mut s = SeriesState::new(0);
        let v = Observation::Value;
        let got = run(
            &a,
            &mut s,
            &[
                (0, v(15.0)),
                (60, v(25.0)),
                (120, v(15.0)),
                (180, v(25.0)),
                (240, v(1.0)),
                (300, v(25.0)),
            ],
        );
        assert_eq!(got, vec![(180, Level::Critical), (240, Level::Ok)]);
        // A dip resets the wait.
        let mut s = SeriesState::new(0);
        let got = run(
            &a,
            &mut s,
            &[
                (0, v(25.0)),
                (60, v(1.0)),
                (120, v(25.0)),
                (240, v(25.0)),
                (300, v(25.0)),
            ],
        );
        assert_eq!(got, vec![(300, Level::Critical)]);
        assert_eq!(s.pending, None);
    }

    #[test]
    fn keep_firing_for_holds_the_resolve() {
        let a = alert("    keep_firing_for: 2m\n");
        let mut s = SeriesState::new(0);
        let v = Observation::Value;
        let got = run(
            &a,
            &mut s,
            &[
                (0, v(25.0)),
                (60, v(1.0)),
                (120, v(25.0)),
                (180, v(1.0)),
                (240, v(1.0)),
                (300, v(1.0)),
            ],
        );
        assert_eq!(got, vec![(0, Level::Critical), (300, Level::Ok)]);
    }

    #[test]
    fn no_data_cases_count_cycles() {
        let a = alert("    no_data:\n      fetch_error: {level: ERROR, cycles: 3}\n      vanished: {level: NO_DATA, cycles: 2}\n");
        let mut s = SeriesState::new(0);
        let e = || Observation::FetchError("down".into());
        let got = run(
            &a,
            &mut s,
            &[
                (0, Observation::Value(25.0)),
                (60, e()),
                (120, e()),
                (180, Observation::Value(25.0)),
                (240, e()),
                (300, e()),
                (360, e()),
            ],
        );
        assert_eq!(got, vec![(0, Level::Critical), (360, Level::Error)]);
        let got = run(
            &a,
            &mut s,
            &[
                (420, Observation::Vanished),
                (480, Observation::Vanished),
                (540, Observation::Value(1.0)),
            ],
        );
        assert_eq!(got, vec![(480, Level::NoData), (540, Level::Ok)]);
        let mut s = SeriesState::new(0);
        assert_eq!(
            run(&a, &mut s, &[(0, Observation::AllNull)]),
            vec![(0, Level::NoData)]
        );
        let ok = alert("    allow_no_data: true\n");
        let mut s = SeriesState::new(0);
        assert!(run(
            &ok,
            &mut s,
            &[(0, Observation::AllNull), (60, Observation::Vanished)]
        )
        .is_empty());
    }

    #[test]
    fn repeat_is_due_only_while_firing_and_told() {
        let a = alert("    repeat_interval: 10m\n");
        let mut s = SeriesState::new(0);
        s.step(&a, &Observation::Value(25.0), 0);
        assert!(!s.repeat_due(&a, 600), "never told yet");
        s.notified_level = Level::Critical;
        s.last_notified = Some(0);
        assert!(!s.repeat_due(&a, 599));
        assert!(s.repeat_due(&a, 600));
        s.step(&a, &Observation::Value(1.0), 700);
        assert!(!s.repeat_due(&a, 1300));
    }

    #[tokio::test]
    async fn store_round_trips_rows_history_and_silences() {
        let dir = tempfile::tempdir().unwrap();
        let ob = crate::outbox::Outbox::open(&dir.path().join("s.db"))
            .await
            .unwrap();
        let store = Store::new(ob.pool().clone()).await.unwrap();
        let mut s = SeriesState::new(5);
        s.level = Level::Critical;
        s.pending = Some(Pending {
            level: Level::Ok,
            since: 7,
            cycles: 2,
        });
        s.notified_level = Level::Critical;
        s.last_notified = Some(6);
        let mut tx = store.pool().begin().await.unwrap();
        Store::save(&mut tx, "A", "web.1", &s).await.unwrap();
        Store::add_history(
            &mut tx,
            &HistoryEntry {
                at: 5,
                alert: "A".into(),
                series: "web.1".into(),
                previous: Level::Ok,
                level: Level::Critical,
                value: Some(3.0),
                silenced: false,
            },
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let loaded = store.load().await.unwrap();
        assert_eq!(loaded[&("A".to_string(), "web.1".to_string())], s);
        assert_eq!(store.history(10).await.unwrap()[0].level, Level::Critical);
        let id = store
            .add_silence("A", "web.*", "deploy", "me", 100, 200)
            .await
            .unwrap();
        let active = store.active_silences(150).await.unwrap();
        assert!(active[0].matches("A", "web.1", 150));
        assert!(!active[0].matches("A", "db.1", 150));
        assert!(!active[0].matches("B", "web.1", 150));
        assert!(store.expire_silence(id, 160).await.unwrap());
        assert!(store.active_silences(161).await.unwrap().is_empty());
        assert!(store.add_silence("A", "*", "", "", 100, 100).await.is_err());
    }
}
