//! `alerter`: check, run, dry-run, replay an `alerts.yml`; manage silences.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use alerter::clock::unix_now;
use alerter::config::Config;
use alerter::daemon;
use alerter::notifiers::console;
use alerter::outbox::{Outbox, RetryPolicy};
use alerter::pipeline::engine::{Engine, Mode};
use alerter::pipeline::evaluate::{FetchPlan, RenderBackend};
use alerter::pipeline::state::Store;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "alerter",
    version,
    about = "carbide's alerter (Graphite Pager-compatible alerts.yml)",
    after_help = "Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error."
)]
struct Cli {
    /// Log filter (`info`, `debug`, `alerter=debug`); overrides RUST_LOG. Default: info.
    #[arg(long, global = true, value_name = "LEVEL")]
    log_level: Option<String>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Validate an alerts file: YAML, keys, thresholds, targets, times, URLs, notifiers,
    /// secrets, graphite_url. Exit 2 on error.
    Check {
        /// The alerts file.
        #[arg(default_value = "alerts.yml")]
        file: PathBuf,
        /// The file is for `carbide up`, which evaluates against its own store: no
        /// graphite_url needed.
        #[arg(long)]
        embedded: bool,
    },
    /// Evaluate every interval and send notifications until Ctrl-C / SIGTERM.
    Run {
        #[arg(default_value = "alerts.yml")]
        file: PathBuf,
    },
    /// Evaluate once (against the saved state, if any) and print what would be sent; nothing
    /// is saved or sent.
    DryRun {
        #[arg(default_value = "alerts.yml")]
        file: PathBuf,
    },
    /// Evaluate a past range step by step (each alert's from/until resolved against each
    /// step) and print the level changes. Nothing is saved or sent.
    Replay {
        #[arg(default_value = "alerts.yml")]
        file: PathBuf,
        /// Start: Graphite time (`-1d`, `-6h`, an epoch, `midnight`); `--from -1d` works.
        #[arg(long, allow_hyphen_values = true)]
        from: String,
        /// End (default now).
        #[arg(long, default_value = "now", allow_hyphen_values = true)]
        until: String,
        /// Step (default: the file's interval).
        #[arg(long)]
        step: Option<humantime::Duration>,
    },
    /// Silences: hold notifications for matching alerts / series until they expire.
    Silence {
        #[command(subcommand)]
        cmd: SilenceCmd,
        /// The alerts file (its state_file holds the silences).
        #[arg(long, short, default_value = "alerts.yml", global = true)]
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum SilenceCmd {
    /// Add a silence; prints its id.
    Add {
        /// Alert-name glob.
        #[arg(long, default_value = "*")]
        alert: String,
        /// Series glob (`.` separates nodes, as in Graphite).
        #[arg(long, default_value = "*")]
        series: String,
        /// How long (`2h`, `30m`).
        #[arg(long = "for")]
        duration: humantime::Duration,
        #[arg(long, default_value = "")]
        comment: String,
        #[arg(long, default_value = "")]
        by: String,
    },
    /// List active silences.
    List,
    /// Expire a silence now.
    Expire { id: i64 },
}

/// Load and validate `file`; `render`: the command evaluates through the render API, so
/// `graphite_url` must be set.
fn load(file: &Path, render: bool) -> Result<Config, ExitCode> {
    let loaded = Config::load(file).and_then(|c| {
        if render {
            c.require_render_api()?;
        }
        Ok(c)
    });
    match loaded {
        Ok(cfg) => {
            for w in &cfg.warnings {
                eprintln!("warning: {w}");
            }
            Ok(cfg)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Err(ExitCode::from(2))
        }
    }
}

/// The render API client the file describes; a file that cannot give one is a usage error.
fn render_backend(cfg: &Config) -> anyhow::Result<Arc<RenderBackend>> {
    RenderBackend::from_settings(&cfg.graphite, cfg.request_timeout)
        .map(Arc::new)
        .map_err(|e| usage(format!("{}: {e:#}", cfg.file.display())))
}

fn rfc3339(t: i64) -> String {
    let st = UNIX_EPOCH + Duration::from_secs(u64::try_from(t).unwrap_or(0));
    humantime::format_rfc3339_seconds(st).to_string()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Cmd::Check { file, embedded } = &cli.cmd {
        return match load(file, !embedded) {
            Ok(cfg) => {
                let notifiers: Vec<&str> = cfg.notifier_names().collect();
                println!(
                    "{}: OK: {} alerts, notifiers: {}",
                    file.display(),
                    cfg.alerts.len(),
                    notifiers.join(", ")
                );
                ExitCode::SUCCESS
            }
            Err(code) => code,
        };
    }
    conf::logging::init("alerter", cli.log_level.as_deref(), true);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(async_main(cli.cmd)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            if e.downcast_ref::<UsageError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// A bad command line or configuration found after parsing (a `--from` that is no time, a
/// render API that cannot be set up from the file): exit 2, like clap's own usage errors.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct UsageError(String);

fn usage(msg: impl Into<String>) -> anyhow::Error {
    UsageError(msg.into()).into()
}

async fn async_main(cmd: Cmd) -> anyhow::Result<ExitCode> {
    match cmd {
        Cmd::Check { .. } => Ok(ExitCode::SUCCESS),
        Cmd::Run { file } => {
            let cfg = match load(&file, true) {
                Ok(c) => Arc::new(c),
                Err(code) => return Ok(code),
            };
            let backend = render_backend(&cfg)?;
            let (tx, rx) = tokio::sync::watch::channel(false);
            tokio::spawn(async move {
                wait_for_signal().await;
                tracing::info!("shutting down");
                let _ = tx.send(true);
            });
            daemon::run_with(
                cfg,
                backend,
                RetryPolicy::default(),
                rx,
                daemon::Ticks::Interval,
                Some(hangups()?),
                None,
            )
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::DryRun { file } => {
            let cfg = match load(&file, true) {
                Ok(c) => Arc::new(c),
                Err(code) => return Ok(code),
            };
            let backend = render_backend(&cfg)?;
            let outbox = if cfg.state_file.exists() {
                Some(Outbox::open(&cfg.state_file).await?)
            } else {
                None
            };
            let plan = FetchPlan {
                concurrency: cfg.concurrency,
                timeout: cfg.request_timeout,
                spread: Duration::ZERO,
            };
            let mut e = Engine::new(cfg.clone(), backend, outbox, plan).await?;
            let r = e.cycle(unix_now(), Mode::DryRun).await?;
            for c in &r.changes {
                println!(
                    "change {} {:?} {:?}: {} -> {}{}",
                    rfc3339(c.at),
                    c.alert,
                    c.series,
                    c.previous,
                    c.level,
                    if c.silenced { " (silenced)" } else { "" }
                );
            }
            for (notifier, m) in &r.messages {
                println!(
                    "would send to {notifier}: {:?} {}",
                    m.action,
                    console::line(m)
                );
            }
            let levels: Vec<String> = r.levels.iter().map(|(l, n)| format!("{l}={n}")).collect();
            println!(
                "{} alert series evaluated ({}); {} notifications would be sent, {} held by silences, {} fetch errors",
                r.levels.values().sum::<usize>(),
                levels.join(" "),
                r.messages.len(),
                r.held,
                r.fetch_errors
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Replay {
            file,
            from,
            until,
            step,
        } => {
            let cfg = match load(&file, true) {
                Ok(c) => Arc::new(c),
                Err(code) => return Ok(code),
            };
            let now = unix_now();
            let tz = graphite::attime::TimeZone::utc();
            let start = graphite::attime::parse_time(&from, now, &tz)
                .map_err(|e| usage(format!("--from {from:?}: {e}")))?;
            let end = graphite::attime::parse_time(&until, now, &tz)
                .map_err(|e| usage(format!("--until {until:?}: {e}")))?;
            let step = step
                .map(Duration::from)
                .unwrap_or(cfg.interval)
                .as_secs()
                .max(1);
            if end < start {
                return Err(usage("--until is before --from"));
            }
            let steps = (end - start) / i64::try_from(step).unwrap_or(60) + 1;
            if steps > 100_000 {
                return Err(usage(format!(
                    "{steps} steps: too many; give a larger --step or a shorter range"
                )));
            }
            let backend = render_backend(&cfg)?;
            let plan = FetchPlan {
                concurrency: cfg.concurrency,
                timeout: cfg.request_timeout,
                spread: Duration::ZERO,
            };
            let mut e = Engine::new(cfg.clone(), backend, None, plan).await?;
            let mut changes = 0;
            let mut t = start;
            while t <= end {
                let r = e.cycle_at(t).await?;
                for c in &r.changes {
                    changes += 1;
                    let value = c.value.map(|v| format!(" value={v}")).unwrap_or_default();
                    println!(
                        "{} {t} {:?} {:?}: {} -> {}{value}",
                        rfc3339(t),
                        c.alert,
                        c.series,
                        c.previous,
                        c.level
                    );
                }
                t += i64::try_from(step).unwrap_or(60);
            }
            println!(
                "{steps} steps from {} to {}, {changes} level changes",
                rfc3339(start),
                rfc3339(end)
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Silence { cmd, file } => {
            let cfg = match load(&file, false) {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            silence(cmd, &file, &cfg).await
        }
    }
}

/// Where a silence command acts: the running alerter's API when it answers, else the state
/// file a running (or the last) alerter uses; never a fresh file nobody reads.
async fn silence(cmd: SilenceCmd, file: &Path, cfg: &Config) -> anyhow::Result<ExitCode> {
    let now = unix_now();
    if let SilenceCmd::Add { alert, .. } = &cmd {
        // A silence whose alert glob matches no alert of the file reaches nothing.
        let reaches = graphite::glob::GlobPattern::new(alert)
            .map(|g| cfg.alerts.iter().any(|a| g.matches(&a.name)))
            .unwrap_or(false);
        if !reaches {
            let names: Vec<&str> = cfg.alerts.iter().map(|a| a.name.as_str()).collect();
            eprintln!(
                "error: --alert {alert:?} matches no alert of {} (alerts: {}): the silence would reach nothing",
                file.display(),
                names.join(", ")
            );
            return Ok(ExitCode::from(2));
        }
    }
    let api = cfg.api_listen.map(|a| format!("http://{a}"));
    if let Some(base) = &api {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        let req = match &cmd {
            SilenceCmd::Add {
                alert,
                series,
                duration,
                comment,
                by,
            } => client
                .post(format!("{base}/api/silences"))
                .json(&serde_json::json!({
                    "alert": alert, "series": series, "duration": duration.to_string(),
                    "comment": comment, "created_by": by,
                })),
            SilenceCmd::List => client.get(format!("{base}/api/silences")),
            SilenceCmd::Expire { id } => client.delete(format!("{base}/api/silences/{id}")),
        };
        // The running alerter's port may require api_auth (docs/alerts.md).
        let req = match cfg.api_auth().header() {
            Some(h) => req.header(reqwest::header::AUTHORIZATION, h),
            None => req,
        };
        match req.send().await {
            Ok(resp) => {
                let status = resp.status();
                let body: serde_json::Value = resp.json().await.unwrap_or_default();
                return Ok(match (&cmd, status.as_u16()) {
                    (SilenceCmd::Add { alert, series, .. }, 201) => {
                        println!(
                            "silence {}: alert {alert:?} series {series:?} until {} (added to the running alerter at {base})",
                            body["id"],
                            rfc3339(body["expires_at"].as_i64().unwrap_or(0))
                        );
                        ExitCode::SUCCESS
                    }
                    (SilenceCmd::List, 200) => {
                        println!("# active silences of the running alerter at {base}");
                        for s in body.as_array().into_iter().flatten() {
                            println!(
                                "{}\talert {}\tseries {}\tuntil {}\tby {}\t{}",
                                s["id"],
                                s["alert_glob"],
                                s["series_glob"],
                                rfc3339(s["expires_at"].as_i64().unwrap_or(0)),
                                s["created_by"],
                                s["comment"].as_str().unwrap_or("")
                            );
                        }
                        ExitCode::SUCCESS
                    }
                    (SilenceCmd::Expire { id }, 204) => {
                        println!("silence {id} expired (running alerter at {base})");
                        ExitCode::SUCCESS
                    }
                    (_, 401) => {
                        eprintln!(
                            "error: the running alerter at {base} requires credentials: set api_auth in {} (or CARBIDE_ALERTER_API_TOKEN) as the alerter has it (carbide up: its HTTP API's auth)",
                            file.display()
                        );
                        ExitCode::from(1)
                    }
                    (_, code) => {
                        eprintln!(
                            "error: the running alerter at {base} answered {code}: {}",
                            body["error"].as_str().unwrap_or("")
                        );
                        ExitCode::from(1)
                    }
                });
            }
            Err(e) if e.is_connect() => {} // no alerter there: the state file
            Err(e) => {
                eprintln!("error: the alerter API at {base}: {e}");
                return Ok(ExitCode::from(1));
            }
        }
    }
    let nobody = match &api {
        Some(base) => format!("no alerter answers at {base}"),
        None => "the API is off (api_listen: off)".to_string(),
    };
    if !cfg.state_file.exists() {
        eprintln!(
            "error: {nobody} and the state file {} does not exist: the silence would reach nothing. Start the alerter, or run this with -f the alerts file it runs with (carbide up: its --alerter-api, default 127.0.0.1:9095)",
            cfg.state_file.display()
        );
        return Ok(ExitCode::from(2));
    }
    let outbox = Outbox::open(&cfg.state_file).await?;
    let store = Store::new(outbox.pool().clone()).await?;
    let where_ = format!("state file {}; {nobody}", cfg.state_file.display());
    let code = match cmd {
        SilenceCmd::Add {
            alert,
            series,
            duration,
            comment,
            by,
        } => {
            let d: Duration = duration.into();
            let until = now.saturating_add(i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
            let id = store
                .add_silence(&alert, &series, &comment, &by, now, until)
                .await?;
            println!(
                "silence {id}: alert {alert:?} series {series:?} until {} (added to the {where_})",
                rfc3339(until)
            );
            ExitCode::SUCCESS
        }
        SilenceCmd::List => {
            println!("# active silences in the {where_}");
            for s in store.active_silences(now).await? {
                println!(
                    "{}\talert {:?}\tseries {:?}\tuntil {}\tby {:?}\t{}",
                    s.id,
                    s.alert_glob,
                    s.series_glob,
                    rfc3339(s.expires_at),
                    s.created_by,
                    s.comment
                );
            }
            ExitCode::SUCCESS
        }
        SilenceCmd::Expire { id } => {
            if store.expire_silence(id, now).await? {
                println!("silence {id} expired ({where_})");
                ExitCode::SUCCESS
            } else {
                eprintln!("error: no active silence with id {id} (see alerter silence list)");
                ExitCode::from(1)
            }
        }
    };
    outbox.close().await;
    Ok(code)
}

/// One message per SIGHUP (reload `alerts.yml`).
fn hangups() -> anyhow::Result<tokio::sync::mpsc::Receiver<()>> {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hup = signal(SignalKind::hangup())?;
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading");
                // A reload already waiting covers this one too.
                let _ = tx.try_send(());
            }
        });
    }
    #[cfg(not(unix))]
    drop(tx);
    Ok(rx)
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
