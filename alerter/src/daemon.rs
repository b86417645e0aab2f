//! `alerter run` (and `carbide up`'s alerter): the run loop around [`Engine::cycle`] — a
//! cycle every `interval` (or per tick of an injected clock), the outbox worker, the HTTP
//! API, self-metrics after each cycle, and reload on SIGHUP. `pipeline/` knows none of this:
//! it evaluates, keeps state and routes.

use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::outbox::{NotifierMap, Outbox, RetryPolicy};
use crate::pipeline::engine::{CycleReport, Engine, Mode};
use crate::pipeline::evaluate::{Backend, FetchPlan, RenderBackend};
use crate::{api, clock, metrics};

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
    retry: RetryPolicy,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    run_with(cfg, backend, retry, shutdown, Ticks::Interval, None, None).await
}

fn build_notifiers(cfg: &Config) -> anyhow::Result<NotifierMap> {
    let mut notifiers = NotifierMap::new();
    for (name, spec) in &cfg.notifiers {
        let n = spec
            .build()
            .map_err(|e| anyhow::anyhow!("notifier \"{name}\": {e:#}"))?;
        notifiers.insert(name.clone(), Arc::from(n));
    }
    // `events: true` without a notifier of that name in the file.
    if let Some(spec) = cfg.events_notifier().map_err(anyhow::Error::msg)? {
        let name = crate::notifiers::graphite_events::EVENTS_NOTIFIER;
        let n = spec
            .build()
            .map_err(|e| anyhow::anyhow!("notifier \"{name}\" (events: true): {e:#}"))?;
        notifiers.insert(name.to_string(), Arc::from(n));
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
    fn spawn(outbox: &Outbox, notifiers: NotifierMap, retry: RetryPolicy) -> Worker {
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
    retry: RetryPolicy,
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
    new.public_url_default = current.public_url_default.clone();
    if new.api_listen != current.api_listen {
        tracing::warn!("api_listen changed: it takes effect when the alerter restarts");
        new.api_listen = current.api_listen;
    }
    new.api_auth_default = current.api_auth_default.clone();
    if new.api_auth() != current.api_auth() {
        tracing::warn!("api_auth changed: it takes effect when the alerter restarts");
        new.api_auth = current.api_auth.clone();
    }
    let notifiers = match build_notifiers(&new) {
        Ok(n) => n,
        Err(e) => {
            tracing::error!("reload failed: {e:#}; still running the previous configuration");
            return None;
        }
    };
    let backend: Arc<dyn Backend> =
        match RenderBackend::from_settings(&new.graphite, new.request_timeout) {
            Ok(b) => Arc::new(b),
            // No render API in either (e.g. the in-process store): keep the one given.
            Err(_) if new.graphite.url.is_none() && current.graphite.url.is_none() => {
                engine.backend()
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
            let retry = RetryPolicy {
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
/// `reload` (SIGHUP in `alerter run`); the JSON API's routes are also given to `mount` (for
/// `carbide up`'s HTTP API).
pub async fn run_with(
    cfg: Arc<Config>,
    backend: Arc<dyn Backend>,
    retry: RetryPolicy,
    shutdown: tokio::sync::watch::Receiver<bool>,
    mut ticks: Ticks,
    mut reloads: Option<tokio::sync::mpsc::Receiver<()>>,
    mount: Option<&api::Mount>,
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
        RetryPolicy {
            max_age: cfg.page_max_age,
            ..retry
        },
    ));
    if let (Some(m), Some(store)) = (mount, engine.store()) {
        m.set(api::router(engine.snapshot.clone(), store.clone()));
    }
    let api = match (cfg.api_listen, engine.store()) {
        (Some(addr), Some(store)) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| anyhow::anyhow!("api_listen {addr}: {e}"))?;
            tracing::info!("HTTP API and console on http://{}", listener.local_addr()?);
            let router = api::protect(
                api::router(engine.snapshot.clone(), store.clone()).merge(console::router(
                    console::Features {
                        metrics: false,
                        alerts: true,
                    },
                )),
                cfg.api_auth(),
            );
            let sd = stop.clone();
            Some(tokio::spawn(async move {
                api::serve(listener, router, sd).await
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
            Ticks::Interval => clock::unix_now(),
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
        let now_ms = clock::now_ms();
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
                    let buf = metrics::lines(&cfg.metrics_prefix, &report, counts);
                    if let Err(e) = metrics::send(addr, &buf, Duration::from_secs(5)).await {
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
