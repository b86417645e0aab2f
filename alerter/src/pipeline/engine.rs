//! One evaluation cycle end to end (the run loop around it: [`crate::daemon`]).
//!
//! A cycle: fetch every alert (bounded, spread, timed out) → observations in file order →
//! each series' level machine → due notifications (held while silenced) → one SQLite
//! transaction with the changed state rows, history rows and outbox rows → wake the outbox.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::Serialize;

use super::evaluate::{fetch_round, observe, Backend, FetchPlan, Window};
use super::route::{self, Due};
use super::state::{HistoryEntry, Observation, SeriesState, Silence, Store};
use crate::config::{Alert, Config};
use crate::notification::Level;
use crate::notifiers::Message;
use crate::outbox::Outbox;

/// Most graphs drawn for emails in one cycle (one per alert).
pub const MAX_PICTURES: usize = 10;

/// What one cycle decided.
#[derive(Debug, Clone, Default)]
pub struct CycleReport {
    /// Unix seconds of the evaluation.
    pub at: i64,
    pub changes: Vec<HistoryEntry>,
    /// `(notifier, message)` enqueued (or, in a dry run, that would be).
    pub messages: Vec<(String, Message)>,
    /// Notifications a silence held back.
    pub held: usize,
    /// Alert × series per level after the cycle.
    pub levels: BTreeMap<Level, usize>,
    pub fetch_errors: usize,
    /// Wall time of the cycle.
    pub duration: Duration,
}

/// One alert × series as the HTTP API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct StateView {
    pub alert: String,
    pub series: String,
    pub level: Level,
    pub since: i64,
    pub value: Option<f64>,
    pub pending: Option<Level>,
    pub notified_level: Level,
    pub silenced_by: Option<i64>,
    /// The alert's target, thresholds and comparison (`>`, `>=`, `<`, `<=`), for the
    /// console's graph of it.
    pub target: String,
    pub warning: f64,
    pub critical: f64,
    pub op: &'static str,
    /// The threshold passed at this level (critical for CRITICAL, else warning).
    pub threshold: Option<f64>,
    /// `{docs base}/{alert}#{series}`, when the alert has a runbook base.
    pub runbook: Option<String>,
}

/// The latest states, shared with the HTTP API.
pub type Snapshot = Arc<RwLock<Vec<StateView>>>;

/// Persist and enqueue (run), or only compute (dry-run, replay).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Live,
    DryRun,
}

/// The evaluator for one loaded config.
pub struct Engine {
    cfg: Arc<Config>,
    backend: Arc<dyn Backend>,
    store: Option<Store>,
    outbox: Option<Outbox>,
    states: BTreeMap<(String, String), SeriesState>,
    pub plan: FetchPlan,
    pub snapshot: Snapshot,
    /// Unix seconds of the first live cycle, and the alerts that have returned a series
    /// since: a target that never did gets a NO_DATA grace period ([`Engine::grace`]).
    first_cycle: Option<i64>,
    returned: std::collections::BTreeSet<String>,
}

impl Engine {
    /// `outbox` `None`: nothing is persisted or sent (replay). With an outbox, saved
    /// states are loaded.
    pub async fn new(
        cfg: Arc<Config>,
        backend: Arc<dyn Backend>,
        outbox: Option<Outbox>,
        plan: FetchPlan,
    ) -> anyhow::Result<Engine> {
        let (store, states) = match &outbox {
            Some(ob) => {
                let store = Store::new(ob.pool().clone()).await?;
                let states = store.load().await?;
                (Some(store), states)
            }
            None => (None, BTreeMap::new()),
        };
        Ok(Engine {
            cfg,
            backend,
            store,
            outbox,
            states,
            plan,
            snapshot: Snapshot::default(),
            first_cycle: None,
            returned: Default::default(),
        })
    }

    /// How long after start an alert whose target has not returned any series yet is not
    /// taken for NO_DATA: its `for`, or two intervals (the agent beside it may not have sent
    /// its first cycle yet).
    pub fn grace(&self, alert: &Alert) -> i64 {
        let g = if alert.for_.is_zero() {
            self.cfg.interval.saturating_mul(2)
        } else {
            alert.for_
        };
        i64::try_from(g.as_secs()).unwrap_or(i64::MAX)
    }

    /// Where series come from (a reload keeps it when the new file names no render API).
    pub fn backend(&self) -> Arc<dyn Backend> {
        self.backend.clone()
    }

    pub fn store(&self) -> Option<&Store> {
        self.store.as_ref()
    }

    pub fn states(&self) -> &BTreeMap<(String, String), SeriesState> {
        &self.states
    }

    /// Evaluate with each alert's own `from` / `until` (relative to the server's now).
    pub async fn cycle(&mut self, now: i64, mode: Mode) -> anyhow::Result<CycleReport> {
        let windows = self
            .cfg
            .alerts
            .iter()
            .map(|a| (a.from.clone(), a.until.clone()))
            .collect();
        self.cycle_with(now, windows, mode).await
    }

    /// Evaluate as of `at` (replay): `from` / `until` resolved against `at` and sent as
    /// epochs.
    pub async fn cycle_at(&mut self, at: i64) -> anyhow::Result<CycleReport> {
        let tz = graphite::attime::TimeZone::utc();
        let mut windows: Vec<Window> = Vec::new();
        for a in &self.cfg.alerts {
            let from = graphite::attime::parse_time(&a.from, at, &tz)
                .map_err(|e| anyhow::anyhow!("alert {:?}: from: {e}", a.name))?;
            let until = match &a.until {
                Some(u) => graphite::attime::parse_time(u, at, &tz)
                    .map_err(|e| anyhow::anyhow!("alert {:?}: until: {e}", a.name))?,
                None => at,
            };
            windows.push((from.to_string(), Some(until.to_string())));
        }
        self.cycle_with(at, windows, Mode::DryRun).await
    }

    async fn cycle_with(
        &mut self,
        now: i64,
        windows: Vec<Window>,
        mode: Mode,
    ) -> anyhow::Result<CycleReport> {
        let started = tokio::time::Instant::now();
        let alerts: &[Alert] = &self.cfg.alerts;
        let results = fetch_round(self.backend.clone(), alerts, windows, self.plan).await;
        let fetch_errors = results.iter().filter(|r| r.is_err()).count();
        for r in results.iter().filter_map(|r| r.as_ref().err()) {
            tracing::warn!("{r}");
        }
        let mut observed = observe(alerts, &results, &self.states);
        if mode == Mode::Live {
            let first = *self.first_cycle.get_or_insert(now);
            for (alert, r) in alerts.iter().zip(&results) {
                if r.as_ref().is_ok_and(|s| !s.is_empty()) {
                    self.returned.insert(alert.name.clone());
                }
            }
            // No NO_DATA for a target that has not returned a series since start, within its
            // grace period (a render error is not covered: it is ERROR at once).
            observed.retain(|(i, series, obs)| {
                let a = &alerts[*i];
                !(matches!(obs, Observation::AllNull)
                    && *series == a.target
                    && !self.returned.contains(&a.name)
                    && now.saturating_sub(first) < self.grace(a)
                    && !self.states.contains_key(&(a.name.clone(), series.clone())))
            });
        }
        let silences: Vec<Silence> = match (&self.store, mode) {
            (Some(s), _) => s.active_silences(now).await?,
            _ => Vec::new(),
        };
        let links = self.cfg.graph_links();

        let mut report = CycleReport {
            at: now,
            fetch_errors,
            ..Default::default()
        };
        let mut saves: Vec<(String, String, SeriesState)> = Vec::new();
        let mut deletes: Vec<(String, String)> = Vec::new();
        // The new states, applied to `self.states` only once the cycle has committed: a cycle
        // whose commit fails (state file's disk full) leaves memory as the file has it, so
        // the next cycle decides again — a page that could not be queued is not taken for
        // sent, and no resolve follows a trigger that never went out.
        let mut staged: Vec<((String, String), Option<SeriesState>)> = Vec::new();
        let mut views = Vec::with_capacity(observed.len());
        for (i, series, obs) in observed {
            let alert = &alerts[i];
            let key = (alert.name.clone(), series);
            let fresh = !self.states.contains_key(&key);
            let before = self.states.get(&key).cloned();
            let mut st = before.clone().unwrap_or_else(|| SeriesState::new(now));
            let change = st.step(alert, &obs, now);
            let silence = route::silenced(&silences, &alert.name, &key.1, now).map(|s| s.id);
            if let Some(c) = change.filter(|_| alert.events) {
                // A Graphite event for every level change, silenced or not (an annotation
                // on dashboards, not a page).
                let value = st
                    .last_value
                    .filter(|_| matches!(obs, Observation::Value(_)));
                let reason = match &obs {
                    Observation::FetchError(e) => Some(e.as_str()),
                    _ => None,
                };
                let n = route::notification(
                    alert, &links, &key.1, c.previous, c.level, value, now, reason,
                );
                let name = crate::notifiers::graphite_events::EVENTS_NOTIFIER;
                report.messages.push((
                    name.to_string(),
                    Message {
                        action: crate::notification::Action::Trigger,
                        idempotency_key: n.idempotency_key(name),
                        notification: n,
                    },
                ));
            }
            if let Some(c) = change {
                report.changes.push(HistoryEntry {
                    at: now,
                    alert: key.0.clone(),
                    series: key.1.clone(),
                    previous: c.previous,
                    level: c.level,
                    value: st
                        .last_value
                        .filter(|_| matches!(obs, Observation::Value(_))),
                    silenced: silence.is_some(),
                });
            }
            if let Some(due) = route::due(alert, &st, now) {
                if silence.is_some() {
                    report.held += 1;
                } else {
                    let (previous, level) = match due {
                        Due::Change { from, to } => (from, to),
                        Due::Repeat => (st.level, st.level),
                    };
                    let value = st
                        .last_value
                        .filter(|_| matches!(obs, Observation::Value(_)));
                    let reason = match &obs {
                        Observation::FetchError(e) => Some(e.as_str()),
                        _ => None,
                    };
                    let n = route::notification(
                        alert, &links, &key.1, previous, level, value, now, reason,
                    );
                    let (msgs, held) = route::messages(
                        &alert.routes,
                        due,
                        &n,
                        st.held,
                        !self.cfg.no_data_resolves,
                    );
                    report.messages.extend(msgs);
                    st.held = held;
                    st.notified_level = level;
                    st.last_notified = Some(now);
                }
            }
            *report.levels.entry(st.level).or_default() += 1;
            views.push(StateView {
                alert: key.0.clone(),
                series: key.1.clone(),
                level: st.level,
                since: st.since,
                value: st.last_value,
                pending: st.pending.map(|p| p.level),
                notified_level: st.notified_level,
                silenced_by: silence,
                target: alert.target.clone(),
                warning: alert.warning,
                critical: alert.critical,
                op: alert.op.symbol(),
                threshold: alert.threshold_for(st.level),
                runbook: alert.runbook_url(&key.1),
            });
            let drop_it =
                st.forgettable() && matches!(obs, Observation::Vanished | Observation::Present);
            if drop_it {
                if !fresh {
                    deletes.push(key.clone());
                }
                staged.push((key, None));
                continue;
            }
            if fresh || before.is_some_and(|b| b.persisted_differs(&st)) {
                saves.push((key.0.clone(), key.1.clone(), st.clone()));
            }
            staged.push((key, Some(st)));
        }

        if mode == Mode::Live {
            self.attach_pictures(&mut report.messages, now).await;
        }
        if mode == Mode::Live {
            if let (Some(store), Some(outbox)) = (&self.store, &self.outbox) {
                let mut conn = store.pool().acquire().await?;
                let committed = Self::commit_cycle(&mut conn, &saves, &deletes, &report).await;
                if let Err(e) = committed {
                    // Never back into the pool: SQLite may have rolled the transaction back
                    // itself (disk full), leaving sqlx's count of open transactions wrong.
                    let _ = conn.close().await;
                    return Err(e.context("the cycle's state was not saved; nothing was queued (evaluated again next cycle)"));
                }
                if !report.messages.is_empty() {
                    outbox.wake();
                }
            }
        }
        for (key, st) in staged {
            match st {
                Some(st) => self.states.insert(key, st),
                None => self.states.remove(&key),
            };
        }
        if let Ok(mut s) = self.snapshot.write() {
            *s = views;
        }
        report.duration = started.elapsed();
        Ok(report)
    }

    /// The graph of each alert whose messages carry a picture (email), drawn once per alert
    /// over the hour before `now` from the backend the alert was evaluated with: at most
    /// [`MAX_PICTURES`] per cycle, drawn at once, each within `request_timeout`. A picture
    /// that cannot be had is logged and the message goes without it.
    async fn attach_pictures(&self, messages: &mut [(String, Message)], now: i64) {
        let wants = |notifier: &str| {
            self.cfg
                .notifiers
                .get(notifier)
                .is_some_and(|s| s.kind() == crate::notifiers::email::KIND.name)
        };
        let mut names: Vec<&str> = messages
            .iter()
            .filter(|(n, _)| wants(n))
            .map(|(_, m)| m.notification.alert.as_str())
            .collect();
        names.sort_unstable();
        names.dedup();
        if names.len() > MAX_PICTURES {
            tracing::warn!(
                "{} alerts email a graph this cycle; the first {MAX_PICTURES} carry it",
                names.len()
            );
            names.truncate(MAX_PICTURES);
        }
        let mut set = tokio::task::JoinSet::new();
        for name in names {
            let Some(a) = self.cfg.alerts.iter().find(|a| a.name == name) else {
                continue;
            };
            let targets = crate::notification::graph_targets(&a.target, a.warning, a.critical);
            let backend = self.backend.clone();
            let timeout = self.cfg.request_timeout;
            let name = name.to_string();
            set.spawn(async move {
                let size = crate::notification::GRAPH_SIZE;
                let drawn =
                    tokio::time::timeout(timeout, backend.picture(&targets, now - 3600, now, size))
                        .await;
                (name, drawn)
            });
        }
        let mut pictures: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok((name, Ok(Ok(png)))) => {
                    pictures.insert(name, png);
                }
                Ok((name, Ok(Err(e)))) => {
                    tracing::warn!("alert {name:?}: the email goes without its graph: {e}")
                }
                Ok((name, Err(_))) => tracing::warn!(
                    "alert {name:?}: the email goes without its graph: not drawn within request_timeout"
                ),
                Err(e) => tracing::warn!("a graph for an email was not drawn: {e}"),
            }
        }
        for (notifier, m) in messages.iter_mut() {
            if wants(notifier) {
                m.notification.graph_png = pictures.get(&m.notification.alert).cloned();
            }
        }
    }

    /// One cycle's state rows, history rows and outbox rows, in one transaction.
    async fn commit_cycle(
        conn: &mut sqlx::SqliteConnection,
        saves: &[(String, String, SeriesState)],
        deletes: &[(String, String)],
        report: &CycleReport,
    ) -> anyhow::Result<()> {
        use sqlx::Connection as _;
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        for (a, s, st) in saves {
            Store::save(&mut tx, a, s, st).await?;
        }
        for (a, s) in deletes {
            Store::delete(&mut tx, a, s).await?;
        }
        for h in &report.changes {
            Store::add_history(&mut tx, h).await?;
        }
        if !report.changes.is_empty() {
            Store::prune_history(&mut tx).await?;
        }
        for (notifier, msg) in &report.messages {
            Outbox::enqueue_in(&mut tx, notifier, msg).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Swap in a reloaded config and its backend. States of alerts still in the file are
    /// kept (keyed by alert name + series); those of removed alerts are forgotten, in memory
    /// and in the state file. Returns how many series states were forgotten.
    pub async fn reconfigure(
        &mut self,
        cfg: Arc<Config>,
        backend: Arc<dyn Backend>,
        plan: FetchPlan,
    ) -> anyhow::Result<usize> {
        let names: std::collections::BTreeSet<&str> =
            cfg.alerts.iter().map(|a| a.name.as_str()).collect();
        let gone: Vec<(String, String)> = self
            .states
            .keys()
            .filter(|(a, _)| !names.contains(a.as_str()))
            .cloned()
            .collect();
        // A removed alert that receivers were told is firing gets its resolve, built from the
        // old definition (its routes, templates and runbook link), so no incident stays open.
        let now = crate::clock::unix_now();
        let mut resolves: Vec<(String, Message)> = Vec::new();
        for k in &gone {
            let Some(st) = self.states.get(k) else {
                continue;
            };
            if st.notified_level == Level::Ok && st.held.is_none() {
                continue;
            }
            let Some(alert) = self.cfg.alerts.iter().find(|a| a.name == k.0) else {
                continue;
            };
            tracing::info!(
                alert = %k.0, series = %k.1,
                "alert removed from the file while {}: sending its resolve",
                st.notified_level
            );
            let n = route::notification(
                alert,
                &self.cfg.graph_links(),
                &k.1,
                st.notified_level,
                Level::Ok,
                None,
                now,
                None,
            );
            let due = Due::Change {
                from: st.notified_level,
                to: Level::Ok,
            };
            let (msgs, _) =
                route::messages(&alert.routes, due, &n, st.held, !self.cfg.no_data_resolves);
            resolves.extend(msgs);
        }
        if let Some(store) = &self.store {
            let renames = renamed_notifiers(&self.cfg, &cfg);
            let mut conn = store.pool().acquire().await?;
            let committed = async {
                use sqlx::Connection as _;
                let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
                for (a, s) in &gone {
                    Store::delete(&mut tx, a, s).await?;
                }
                if self.outbox.is_some() {
                    for (notifier, msg) in &resolves {
                        Outbox::enqueue_in(&mut tx, notifier, msg).await?;
                    }
                    for name in cfg.notifiers.keys() {
                        let back = Outbox::requeue_in(&mut tx, name).await?;
                        if back > 0 {
                            tracing::info!(
                                "notifier \"{name}\" is back: its {back} queued notifications are due"
                            );
                        }
                    }
                    for (old, new) in &renames {
                        let moved = Outbox::rename_in(&mut tx, old, new).await?;
                        if moved > 0 {
                            tracing::info!(
                                "notifier \"{old}\" is now \"{new}\" (same definition): its {moved} pending notifications follow it"
                            );
                        }
                    }
                }
                tx.commit().await?;
                anyhow::Ok(())
            }
            .await;
            if let Err(e) = committed {
                let _ = conn.close().await;
                return Err(e);
            }
            drop(conn);
            if let Some(outbox) = &self.outbox {
                let gone_notifiers: Vec<&String> = self
                    .cfg
                    .notifiers
                    .keys()
                    .filter(|n| {
                        !cfg.notifiers.contains_key(*n) && !renames.iter().any(|(o, _)| o == *n)
                    })
                    .collect();
                for n in gone_notifiers {
                    let pending = outbox.pending_for(n).await.unwrap_or(0);
                    if pending > 0 {
                        tracing::warn!(
                            "notifier \"{n}\" is no longer in the file: its {pending} pending notifications stay queued until it is back or they are older than page_max_age"
                        );
                    }
                }
                if !resolves.is_empty() || !renames.is_empty() {
                    outbox.wake();
                }
            }
        }
        for k in &gone {
            self.states.remove(k);
        }
        drop(names);
        self.cfg = cfg;
        self.backend = backend;
        self.plan = plan;
        Ok(gone.len())
    }

    /// Forget in-memory state (dry-run after a dry-run must not remember).
    pub async fn reload_states(&mut self) -> anyhow::Result<()> {
        if let Some(s) = &self.store {
            self.states = s.load().await?;
        }
        Ok(())
    }
}

/// Notifiers the reload renamed: `(old, new)` for each name gone from the file whose exact
/// definition now has a new name (one candidate only), so its pending pages follow it.
fn renamed_notifiers(old: &Config, new: &Config) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (name, spec) in &old.notifiers {
        if new.notifiers.contains_key(name) {
            continue;
        }
        let same: Vec<&String> = new
            .notifiers
            .iter()
            .filter(|(n, s)| !old.notifiers.contains_key(*n) && *s == spec)
            .map(|(n, _)| n)
            .collect();
        if let [n] = same.as_slice() {
            out.push((name.clone(), (*n).clone()));
        }
    }
    out
}
