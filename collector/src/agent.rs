//! The running agent: starts the sender and one task per collector instance, reports
//! self-metrics, reloads on SIGHUP and flushes on SIGTERM/SIGINT.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

use crate::config::{self, Loaded, LoadedInstance, Settings, Sources};
use crate::events::{AgentStats, ChunkSubmitted, ConfigReloadFailed, ConfigReloaded};
use crate::paths;
use crate::runtime::{self, instance_key, stop_all, Running, Stop, Submit, Worker};
use crate::selfmetrics::{Instances, Reporter};
use crate::sender::{self, SenderHandle};

/// Run until SIGTERM/SIGINT. `loaded` is the validated startup configuration.
pub async fn run(sources: Sources, loaded: Loaded) -> anyhow::Result<()> {
    run_until(sources, loaded, std::future::pending()).await
}

/// [`run`], also stopping (with the same flush) when `stop` resolves: how `carbide up` runs
/// the agent in its own process.
pub async fn run_until(
    sources: Sources,
    loaded: Loaded,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    tokio::pin!(stop);
    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;

    let agent = Arc::new(AgentStats::default());
    let handle = sender::spawn(loaded.settings.sender.clone())?;
    let submit: Submit = {
        let h = handle.clone();
        Arc::new(move |c| h.submit(c))
    };
    let mut settings = loaded.settings;
    let mut running = start(loaded.instances, &settings, &agent, &submit);
    let instances: Instances = Arc::default();
    publish(&instances, &running);
    let reporter = Reporter::new(
        &settings.base,
        settings.suffix.as_deref(),
        &paths::render_tags(&settings.tags),
    );
    let mut reporter = SelfMetrics::start(reporter, &settings, &instances, &agent, &handle);
    tracing::info!(
        instances = running.len(),
        collectors_dir = %settings.collectors_dir.display(),
        "collector started"
    );

    loop {
        tokio::select! {
            _ = hup.recv() => {
                let src = sources.clone();
                let result = tokio::task::spawn_blocking(move || config::load(&src)).await;
                let new = match result {
                    Ok(Ok(new)) => new,
                    Ok(Err(errors)) => {
                        ConfigReloadFailed { errors: &errors }.emit(&agent);
                        continue;
                    }
                    Err(e) => {
                        tracing::error!("configuration reload aborted: {e}");
                        continue;
                    }
                };
                if format!("{:?}", new.settings.sender) != format!("{:?}", settings.sender) {
                    tracing::warn!("sender settings changed: they take effect when the agent restarts");
                }
                let (next, reloaded) = swap(running, new, &agent, &submit).await;
                running = next;
                settings = reloaded;
                publish(&instances, &running);
                let mut rep = reporter.stop().await;
                rep.set_paths(
                    &settings.base,
                    settings.suffix.as_deref(),
                    &paths::render_tags(&settings.tags),
                );
                reporter = SelfMetrics::start(rep, &settings, &instances, &agent, &handle);
            }
            _ = term.recv() => { tracing::info!("SIGTERM: stopping"); break; }
            _ = int.recv() => { tracing::info!("SIGINT: stopping"); break; }
            _ = &mut stop => { tracing::info!("stop requested: stopping"); break; }
        }
    }

    stop_all(running, Stop::Now).await;
    reporter.stop().await;
    drop(submit);
    let submitted = runtime::submitted(&agent);
    let before = handle.stats();
    let watcher = handle.clone();
    // Lines dropped at shutdown (the spool could not be written) make the exit status 1.
    let flushed = handle.shutdown(settings.shutdown_timeout).await;
    let after = watcher.stats();
    tracing::info!(
        lines_submitted = submitted,
        lines_sent_before_flush = before.lines_sent,
        lines_sent = after.lines_sent,
        lines_dropped = after.lines_dropped,
        "collector stopped"
    );
    flushed
}

fn start(
    instances: Vec<LoadedInstance>,
    settings: &Settings,
    agent: &Arc<AgentStats>,
    submit: &Submit,
) -> Vec<Running> {
    instances
        .into_iter()
        .filter(LoadedInstance::enabled)
        .map(|inst| {
            let key = instance_key(&inst, settings);
            Running::start(
                Worker::new(inst, settings, agent.clone()),
                key,
                submit.clone(),
            )
        })
        .collect()
}

/// Apply a validated configuration: keep instances whose file and path-shaping settings
/// did not change (they keep their schedule and rate state), stop removed or changed ones
/// after their current run, start new ones. The sender, and what it has queued, is untouched.
async fn swap(
    running: Vec<Running>,
    new: Loaded,
    agent: &Arc<AgentStats>,
    submit: &Submit,
) -> (Vec<Running>, Settings) {
    let mut old: HashMap<String, Running> =
        running.into_iter().map(|r| (r.key.clone(), r)).collect();
    let mut next = Vec::new();
    let mut to_start = Vec::new();
    for inst in new.instances.into_iter().filter(LoadedInstance::enabled) {
        let key = instance_key(&inst, &new.settings);
        match old.remove(&key) {
            Some(r) => next.push(r),
            None => to_start.push(inst),
        }
    }
    let kept = next.len();
    let stopped = old.len();
    stop_all(old.into_values().collect(), Stop::AfterRun).await;
    let started = to_start.len();
    next.extend(start(to_start, &new.settings, agent, submit));
    ConfigReloaded {
        kept,
        started,
        stopped,
    }
    .emit(agent);
    (next, new.settings)
}

fn publish(instances: &Instances, running: &[Running]) {
    if let Ok(mut list) = instances.lock() {
        *list = running
            .iter()
            .map(|r| (r.name.clone(), r.stats.clone()))
            .collect();
    }
}

/// The self-metrics task.
struct SelfMetrics {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Reporter>,
}

impl SelfMetrics {
    fn start(
        mut reporter: Reporter,
        settings: &Settings,
        instances: &Instances,
        agent: &Arc<AgentStats>,
        sender: &SenderHandle,
    ) -> Self {
        let (stop, mut stop_rx) = watch::channel(false);
        let interval = settings.interval;
        let (instances, agent, sender) = (instances.clone(), agent.clone(), sender.clone());
        let task = tokio::spawn(async move {
            let first = Instant::now()
                + runtime::until_next_boundary(SystemTime::now(), interval, Duration::ZERO);
            let mut ticker = tokio::time::interval_at(first, interval);
            ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
            loop {
                let due = tokio::select! {
                    biased;
                    _ = stop_rx.wait_for(|s| *s) => break,
                    due = ticker.tick() => due,
                };
                let list = instances.lock().map(|l| l.clone()).unwrap_or_default();
                let chunk =
                    reporter.report(&list, &agent, sender.stats(), runtime::due_timestamp(due));
                ChunkSubmitted {
                    collector: "carbide",
                    lines: u64::from(chunk.lines),
                }
                .emit(None, &agent);
                // Ahead of the spool, so the drop counts arrive even at the spool cap.
                sender.submit_priority(chunk);
            }
            reporter
        });
        SelfMetrics { stop, task }
    }

    /// Stop the task; returns its reporter (with the sender totals it has seen).
    async fn stop(self) -> Reporter {
        let _ = self.stop.send(true);
        match self.task.await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("self-metrics task ended abnormally: {e}");
                Reporter::new("carbide", None, "")
            }
        }
    }
}
