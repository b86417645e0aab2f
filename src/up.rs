//! `carbide up`: the whole pipeline in one process — the store and HTTP API, the collector
//! agent with `collectors.d/` sending to the embedded carbon port, and the alerter with
//! `alerts.yml` (console notifier) evaluating against the store in process. Ctrl-C / SIGTERM
//! stops the collector first (its sender flushes into the store), then the alerter, then the
//! HTTP API and the store (flushed to SQLite and closed).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use collector::config::Sources;
use conf::{ConfigError, ConfigErrors};
use tokio::sync::{oneshot, watch};

use crate::backend::StoreBackend;
use crate::config;
use crate::serve::{shutdown_signal, Running, ServeArgs};

/// `carbide up` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Collector instance files.
    #[arg(long, value_name = "DIR", default_value = "collectors.d")]
    pub collectors_dir: PathBuf,
    /// Collector global settings (default: ./collector.yml if present). Its sender
    /// destinations are replaced by the embedded carbon port.
    #[arg(long, value_name = "FILE")]
    pub collector_config: Option<PathBuf>,
    /// The alerts file (required: `carbide up` does not collect unwatched); `off` runs
    /// without an alerter.
    #[arg(long, value_name = "FILE", default_value = "alerts.yml")]
    pub alerts: PathBuf,
    /// The alerter's JSON API (`ip:port`, or `off`); overrides alerts.yml's api_listen.
    #[arg(long, value_name = "ADDR")]
    pub alerter_api: Option<String>,
}

pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    // Validate everything before starting anything: the three files' errors are reported
    // together, one `file:line:column: message` per line (then exit 2).
    let mut errors = Vec::new();
    let settings = match args.serve.settings() {
        Ok(s) => Some(s),
        Err(ConfigErrors(e)) => {
            errors.extend(e);
            None
        }
    };
    if let Some(s) = &settings {
        if s.store.tcp_listen.is_none() {
            let file = config::Loaded::load(args.serve.config.as_deref()).unwrap_or_default();
            errors.push(file.error(
                &["carbon_tcp"],
                "carbide up needs the carbon TCP listener (the collector sends to it); remove carbon_tcp: off",
            ));
        }
    }
    let sources = Sources {
        config: args.collector_config.clone(),
        collectors_dir: Some(args.collectors_dir.clone()),
    };
    let loaded = match collector::config::load(&sources) {
        Ok(l) => Some(l),
        Err(e) => {
            errors.extend(e);
            None
        }
    };
    let alerts = if args.alerts == std::path::Path::new("off") {
        tracing::warn!(
            "--alerts off: running without an alerter; nothing watches what is collected"
        );
        None
    } else if !args.alerts.exists() {
        errors.push(ConfigError::whole_file(
            &args.alerts,
            "not found; carbide up runs with its alerter: give --alerts FILE (or --alerts off to run without one)",
        ));
        None
    } else {
        match alerter::config::Config::load(&args.alerts) {
            Ok(cfg) => Some(cfg),
            Err(e) => {
                errors.push(e);
                None
            }
        }
    };
    let (Some(settings), Some(loaded), true) = (settings, loaded, errors.is_empty()) else {
        return Err(ConfigErrors(errors).into());
    };
    let limits = settings.http.limits.clone();
    let data_dir = settings.store.data_dir.clone();
    let alerts = match alerts {
        None => None,
        Some(mut cfg) => {
            for w in &cfg.warnings {
                tracing::warn!("{}: {w}", args.alerts.display());
            }
            // The default state file goes beside the store, not into the working directory.
            if cfg.state_file == std::path::Path::new("alerter.db") {
                cfg.state_file = settings.store.data_dir.join("alerter.db");
            }
            // The alerter's own port asks for the HTTP API's credentials when alerts.yml
            // sets no api_auth: silences are never writable there without them.
            let http_auth = &settings.http.auth;
            cfg.api_auth_default = alerter::api::ApiAuth {
                basic: http_auth
                    .basic
                    .as_ref()
                    .map(|(u, p)| (u.clone(), conf::Secret::new(p.clone()))),
                bearer: http_auth.bearer.clone().map(conf::Secret::new),
            };
            if let Some(a) = &args.alerter_api {
                cfg.api_listen = match a.trim() {
                    "off" => None,
                    s => Some(s.parse::<SocketAddr>().map_err(|e| {
                        crate::StartupError(format!(
                            "--alerter-api {s:?}: {e} (expected ip:port, or off)"
                        ))
                    })?),
                };
            }
            // The API's port must be free before anything starts: an alerter that cannot run
            // is a startup error, not a log line while collection goes on unwatched.
            if let Some(addr) = cfg.api_listen {
                if let Err(e) = std::net::TcpListener::bind(addr) {
                    return Err(crate::StartupError(format!(
                        "alerter API {addr}: {e} (another alerter or carbide up running? set --alerter-api ADDR, or off)"
                    ))
                    .into());
                }
            }
            Some(cfg)
        }
    };

    let signal = shutdown_signal()?;
    // The console shows store and alerts on the HTTP API's port; the alerter's JSON API is
    // answered there too (behind the same auth) once the alerter has started.
    let mount = alerter::api::Mount::default();
    let extra = console::router(console::Features {
        metrics: true,
        alerts: alerts.is_some(),
    })
    .merge(mount.routes());
    let running = Running::start_with(settings, extra).await?;
    let carbon = running
        .carbon_tcp()
        .context("the carbon TCP listener did not start")?;

    let mut loaded = loaded;
    loaded.settings.sender.destinations = vec![carbon.to_string()];
    // Everything `up` keeps is under its data directory: the sender spools there unless
    // collector.yml names a spool_dir (not the agent's system default, which as root is
    // /var/lib/carbide/spool and would be shared with a standalone agent).
    if loaded.settings.sender.spool_dir == collector::config::default_spool_dir() {
        loaded.settings.sender.spool_dir = Some(data_dir.join("spool"));
    }
    let (collector_stop, stop_rx) = oneshot::channel::<()>();
    let collector = tokio::spawn(collector::agent::run_until(sources, loaded, async move {
        let _ = stop_rx.await;
    }));

    let (alerter_stop, alerter_rx) = watch::channel(false);
    // An alerter that stops with an error stops everything (exit 1): nothing is collected
    // unwatched.
    let (failed_tx, failed_rx) = oneshot::channel::<anyhow::Error>();
    // The alerter's future is not `Send` (sqlx), so it runs in this task, beside the one
    // that waits for the signal and orders the shutdown.
    let alerter = async {
        let Some(mut cfg) = alerts else {
            return;
        };
        cfg.metrics_carbon_default = Some(carbon.to_string());
        // Graph links open this process's own render API when the file names none.
        cfg.public_url_default = Some(format!("http://{}", running.http_addr()));
        if !first_cycle_stored(running.store(), alerter_rx.clone()).await {
            return; // stopped while waiting
        }
        let backend = Arc::new(StoreBackend::new(running.store().clone(), limits));
        // SIGHUP reloads alerts.yml too (the collector reloads collectors.d on its own).
        let reloads = match hangups() {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::warn!("SIGHUP will not reload alerts.yml: {e}");
                None
            }
        };
        if let Err(e) = alerter::daemon::run_with(
            Arc::new(cfg),
            backend,
            alerter::outbox::RetryPolicy::default(),
            alerter_rx,
            alerter::daemon::Ticks::Interval,
            reloads,
            Some(&mount),
        )
        .await
        {
            tracing::error!("alerter: {e:#}");
            let _ = failed_tx.send(e);
        }
    };
    tracing::info!(
        "carbide up: render API http://{}, collector sending to {carbon}",
        running.http_addr()
    );
    let control = async {
        let failure = tokio::select! {
            sig = signal => {
                tracing::info!("{sig}: stopping the collector, the alerter, then the store");
                None
            }
            Ok(e) = failed_rx => {
                tracing::error!("the alerter stopped: stopping the collector and the store");
                Some(e)
            }
        };
        let _ = collector_stop.send(());
        match collector.await {
            Ok(Err(e)) => tracing::error!("collector: {e:#}"),
            Err(e) => tracing::error!("collector task: {e}"),
            Ok(Ok(())) => {}
        }
        let _ = alerter_stop.send(true);
        failure
    };
    let ((), failure) = tokio::join!(alerter, control);
    let r = running.shutdown().await?;
    tracing::info!(points = r.points, "store flushed and closed");
    match failure {
        Some(e) => Err(e.context("the alerter stopped; carbide up does not run without it")),
        None => Ok(()),
    }
}

/// Most `carbide up` waits for the agent's first cycle before the alerter's first evaluation.
const FIRST_CYCLE_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Wait until the embedded agent's first cycle is in the store (points received, then no
/// more for a moment), so the first evaluation does not page NO_DATA for series that are
/// about to arrive; at most [`FIRST_CYCLE_WAIT`]. False when `stop` turned true meanwhile.
async fn first_cycle_stored(
    store: &graphite::store::Store,
    mut stop: watch::Receiver<bool>,
) -> bool {
    use std::sync::atomic::Ordering::Relaxed;
    use std::time::Duration;
    let started = tokio::time::Instant::now();
    let mut last = store.stats.points_received.load(Relaxed);
    let mut seen = last > 0;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            r = stop.changed() => {
                if r.is_err() || *stop.borrow() {
                    return false;
                }
            }
        }
        let now = store.stats.points_received.load(Relaxed);
        if seen && now == last {
            tracing::info!(
                points = now,
                "the agent's first cycle is stored: the alerter starts evaluating"
            );
            return true;
        }
        seen |= now > 0;
        last = now;
        if started.elapsed() >= FIRST_CYCLE_WAIT {
            tracing::warn!(
                "no points from the agent after {}s: the alerter starts evaluating anyway",
                FIRST_CYCLE_WAIT.as_secs()
            );
            return true;
        }
    }
}

/// One message per SIGHUP, for the alerter's reload of `alerts.yml`.
fn hangups() -> std::io::Result<tokio::sync::mpsc::Receiver<()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let mut hup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            // A reload already waiting covers this one too.
            let _ = tx.try_send(());
        }
    });
    Ok(rx)
}
