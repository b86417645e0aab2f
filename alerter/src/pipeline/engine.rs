//! One evaluation cycle end to end, and the run loop.
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
        let graphite_url = self.cfg.graphite.url.as_deref();

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
                        alert,
                        graphite_url,
                        &key.1,
                        previous,
                        level,
                        value,
                        now,
                        reason,
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
        let now = unix_now();
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
                self.cfg.graphite.url.as_deref(),
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

/// Unix seconds now.
pub fn unix_now() -> i64 {
    crate::outbox::now_ms() / 1000
}

/// What starts each cycle of [`run_with`].
#[derive(Debug)]
pub enum Ticks {
    /// Every `interval` of the config, evaluated at the wall clock's time (`alerter run`).
    Interval,
    /// One cycle per message, evaluated as of that unix time (the injectable clock: tests
    /// drive `for` / `keep_firing_for` through the real loop with it, no wall-clock waits).
    /// Each cycle's report is sent back on `reports`; the loop ends when `at` closes.
    Manual {
        at: tokio::sync::mpsc::Receiver<i64>,
        reports: tokio::sync::mpsc::Sender<CycleReport>,
    },
}

/// `alerter run`: the outbox worker, the HTTP API, and a cycle every `interval` (requests
/// spread over the first half of it) until `shutdown` turns true.
pub async fn run(
    cfg: Arc<Config>,
    backend: Arc<dyn Backend>,
    retry: crate::outbox::RetryPolicy,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    run_with(cfg, backend, retry, shutdown, Ticks::Interval, None).await
}

fn build_notifiers(cfg: &Config) -> anyhow::Result<crate::outbox::NotifierMap> {
    let mut notifiers = crate::outbox::NotifierMap::new();
    for (name, spec) in &cfg.notifiers {
        let n = spec
            .build()
            .map_err(|e| anyhow::anyhow!("notifier \"{name}\": {e:#}"))?;
        notifiers.insert(name.clone(), Arc::from(n));
    }
    Ok(notifiers)
}

fn fetch_plan(cfg: &Config, ticks: &Ticks) -> FetchPlan {
    FetchPlan {
        concurrency: cfg.concurrency,
        timeout: cfg.request_timeout,
        spread: match ticks {
            Ticks::Interval => cfg.interval / 2,
            Ticks::Manual { .. } => Duration::ZERO,
        },
    }
}

/// The outbox worker, with its own stop switch (a reload restarts it with new notifiers).
struct Worker {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Worker {
    fn spawn(
        outbox: &Outbox,
        notifiers: crate::outbox::NotifierMap,
        retry: crate::outbox::RetryPolicy,
    ) -> Worker {
        let (stop, sd) = tokio::sync::watch::channel(false);
        let ob = outbox.clone();
        let task = tokio::spawn(async move { ob.run(notifiers, retry, sd).await });
        Worker { stop, task }
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// The next reload request; never, when there is no channel or it is closed.
async fn next_reload(reload: &mut Option<tokio::sync::mpsc::Receiver<()>>) {
    match reload {
        Some(r) => {
            if r.recv().await.is_none() {
                *reload = None;
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending::<()>().await,
    }
}

/// Reload `cfg.file` (SIGHUP). Everything is validated and built before anything is
/// swapped: a bad file, an unbuildable notifier or backend keeps the running config (the
/// error, with `file:line:column`, is logged). Settings that need a restart are kept with a
/// warning.
async fn reload(
    current: &Arc<Config>,
    engine: &mut Engine,
    worker: &mut Option<Worker>,
    outbox: &Outbox,
    retry: crate::outbox::RetryPolicy,
    ticks: &Ticks,
) -> Option<Arc<Config>> {
    let file = current.file.clone();
    let loaded = tokio::task::spawn_blocking(move || Config::load(&file)).await;
    let mut new = match loaded {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            tracing::error!("{e}");
            tracing::error!("reload failed; still running the previous configuration");
            return None;
        }
        Err(e) => {
            tracing::error!("reload aborted: {e}");
            return None;
        }
    };
    for w in &new.warnings {
        tracing::warn!("{w}");
    }
    if new.state_file != current.state_file {
        tracing::warn!("state_file changed: it takes effect when the alerter restarts");
        new.state_file = current.state_file.clone();
    }
    new.metrics_carbon_default = current.metrics_carbon_default.clone();
    if new.api_listen != current.api_listen {
        tracing::warn!("api_listen changed: it takes effect when the alerter restarts");
        new.api_listen = current.api_listen;
    }
    let notifiers = match build_notifiers(&new) {
        Ok(n) => n,
        Err(e) => {
            tracing::error!("reload failed: {e:#}; still running the previous configuration");
            return None;
        }
    };
    let backend: Arc<dyn Backend> =
        match super::evaluate::RenderBackend::from_settings(&new.graphite, new.request_timeout) {
            Ok(b) => Arc::new(b),
            // No render API in either (e.g. the in-process store): keep the one given.
            Err(_) if new.graphite.url.is_none() && current.graphite.url.is_none() => {
                engine.backend.clone()
            }
            Err(e) => {
                tracing::error!("reload failed: {e:#}; still running the previous configuration");
                return None;
            }
        };
    let new = Arc::new(new);
    let plan = fetch_plan(&new, ticks);
    match engine.reconfigure(new.clone(), backend, plan).await {
        Ok(forgotten) => {
            if let Some(w) = worker.take() {
                w.stop().await;
            }
            let retry = crate::outbox::RetryPolicy {
                max_age: new.page_max_age,
                ..retry
            };
            *worker = Some(Worker::spawn(outbox, notifiers, retry));
            tracing::info!(
                alerts = new.alerts.len(),
                forgotten,
                "configuration reloaded from {}",
                new.file.display()
            );
            Some(new)
        }
        Err(e) => {
            tracing::error!("reload failed: {e:#}; still running the previous configuration");
            None
        }
    }
}

/// [`run`] with the cycles started by `ticks`, and `alerts.yml` reloaded on every message of
/// `reload` (SIGHUP in `alerter run`).
pub async fn run_with(
    cfg: Arc<Config>,
    backend: Arc<dyn Backend>,
    retry: crate::outbox::RetryPolicy,
    shutdown: tokio::sync::watch::Receiver<bool>,
    mut ticks: Ticks,
    mut reloads: Option<tokio::sync::mpsc::Receiver<()>>,
) -> anyhow::Result<()> {
    let mut cfg = cfg;
    let outbox = Outbox::open(&cfg.state_file).await?;
    let notifiers = build_notifiers(&cfg)?;
    let plan = fetch_plan(&cfg, &ticks);
    let mut engine = Engine::new(cfg.clone(), backend, Some(outbox.clone()), plan).await?;
    // The API stops when the loop ends, whatever ended it.
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let mut worker = Some(Worker::spawn(
        &outbox,
        notifiers,
        crate::outbox::RetryPolicy {
            max_age: cfg.page_max_age,
            ..retry
        },
    ));
    let api = match (cfg.api_listen, engine.store()) {
        (Some(addr), Some(store)) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| anyhow::anyhow!("api_listen {addr}: {e}"))?;
            tracing::info!("HTTP API on http://{}", listener.local_addr()?);
            let router = crate::api::router(engine.snapshot.clone(), store.clone());
            let sd = stop.clone();
            Some(tokio::spawn(async move {
                crate::api::serve(listener, router, sd).await
            }))
        }
        _ => None,
    };
    tracing::info!(
        "evaluating {} alerts every {}",
        cfg.alerts.len(),
        humantime::format_duration(cfg.interval)
    );
    let mut sd = shutdown.clone();
    let mut last_prune = i64::MIN;
    'cycles: while !*sd.borrow() {
        let tick = tokio::time::Instant::now();
        let now = match &mut ticks {
            Ticks::Interval => unix_now(),
            Ticks::Manual { at, .. } => tokio::select! {
                t = at.recv() => match t {
                    Some(t) => t,
                    None => break,
                },
                r = sd.changed() => {
                    if r.is_err() {
                        break;
                    }
                    continue;
                }
                _ = next_reload(&mut reloads) => {
                    if let Some(c) = reload(&cfg, &mut engine, &mut worker, &outbox, retry, &ticks).await {
                        cfg = c;
                    }
                    continue;
                }
            },
        };
        // Delivered / failed outbox rows are kept a week (for inspection), pruned hourly.
        let now_ms = crate::outbox::now_ms();
        if now_ms.saturating_sub(last_prune) >= 3_600_000 {
            last_prune = now_ms;
            if let Err(e) = outbox.prune(now_ms - 7 * 86_400_000).await {
                tracing::warn!("outbox prune: {e:#}");
            }
        }
        match engine.cycle(now, Mode::Live).await {
            Ok(report) => {
                for c in &report.changes {
                    tracing::info!(
                        alert = %c.alert, series = %c.series,
                        "{} -> {}{}", c.previous, c.level,
                        if c.silenced { " (silenced)" } else { "" }
                    );
                }
                if let Some(addr) = cfg
                    .metrics_carbon
                    .as_ref()
                    .or(cfg.metrics_carbon_default.as_ref())
                {
                    let counts = outbox.counts().await.unwrap_or_default();
                    let buf = crate::metrics::lines(&cfg.metrics_prefix, &report, counts);
                    if let Err(e) = crate::metrics::send(addr, &buf, Duration::from_secs(5)).await {
                        tracing::warn!("{e:#}");
                    }
                }
                if let Ticks::Manual { reports, .. } = &ticks {
                    let _ = reports.send(report).await;
                }
            }
            Err(e) => tracing::error!("evaluation cycle failed: {e:#}"),
        }
        if let Ticks::Interval = ticks {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(tick + cfg.interval) => {}
                    r = sd.changed() => {
                        if r.is_err() {
                            break 'cycles;
                        }
                    }
                    _ = next_reload(&mut reloads) => {
                        if let Some(c) = reload(&cfg, &mut engine, &mut worker, &outbox, retry, &ticks).await {
                            cfg = c;
                        }
                        continue; // the next cycle keeps its time
                    }
                }
                break;
            }
        }
    }
    let _ = stop_tx.send(true);
    if let Some(w) = worker {
        w.stop().await;
    }
    if let Some(api) = api {
        let _ = api.await;
    }
    outbox.close().await;
    Ok(())
}
