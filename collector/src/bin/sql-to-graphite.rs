//! `sql-to-graphite`: send the results of SQL queries to Graphite.
//!
//! Compatible with the original Python tool (0.0.6): the DSN in `S2G_DSN`, queries on stdin
//! one per line, each row `(name, value, …)` sent as `<prefix>.<name> <value> <now>` and
//! echoed to stdout. Also: a YAML queries file (`--queries`), a daemon running each query on
//! its cron schedule (`--schedule`), and `--dry-run`.
//!
//! Exit codes: 0 success; 1 a query failed or lines could not be delivered; 2 a usage or
//! configuration error (missing DSN, bad queries file).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use collector::runtime::unix_now;
use collector::sender::{self, Chunk, SenderConfig, SenderHandle};
use collector::sql::db::Database;
use collector::sql::dsn::Dsn;
use collector::sql::queries::{self, Query};
use collector::sql::{encode, run_query};

/// How long the sender may take to deliver (or spool) what is queued when we stop.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Parser)]
#[command(
    name = "sql-to-graphite",
    version,
    about = "Send the results of SQL queries to Graphite",
    after_help = "The database is given by the S2G_DSN environment variable: postgres://user:password@host/db, \
mysql://…, mariadb://… or sqlite:///path/to/file.db.\n\
Without --queries or --schedule, queries are read from stdin, one per line; each row's first \
column is the metric name and its second the value."
)]
struct Cli {
    /// Carbon host to send to (plaintext protocol). Required unless --dry-run or --config.
    #[arg(long, value_name = "HOST", allow_hyphen_values = true)]
    graphite_host: Option<String>,
    /// Send as the agent does: the destinations, placement (e.g. `carbon_ch`, `replication`)
    /// and other keys of this YAML file's `sender:` section (the agent's collector.yml works
    /// as it is; its other keys and its `spool_dir` are not used).
    #[arg(long, value_name = "FILE", conflicts_with = "graphite_host")]
    config: Option<PathBuf>,
    /// Carbon plaintext port.
    #[arg(long, value_name = "PORT", default_value_t = 2003)]
    graphite_port: u16,
    /// Prefix of every metric name.
    #[arg(
        long,
        value_name = "PREFIX",
        default_value = "db",
        allow_hyphen_values = true
    )]
    graphite_prefix: String,
    /// Run the queries of a YAML queries file once (instead of reading stdin).
    #[arg(long, value_name = "FILE", conflicts_with = "schedule")]
    queries: Option<PathBuf>,
    /// Run as a daemon: each query of this YAML file on its cron `schedule`.
    #[arg(long, value_name = "FILE")]
    schedule: Option<PathBuf>,
    /// Print the lines without sending them.
    #[arg(long)]
    dry_run: bool,
    /// Keep lines on disk here while carbon is unreachable (the agent's spooling sender); the
    /// next run sends them first. Default: a per-user state directory
    /// ($XDG_STATE_HOME/carbide/sql-to-graphite or ~/.local/state/carbide/sql-to-graphite;
    /// /var/lib/carbide/sql-to-graphite for root).
    #[arg(long, value_name = "DIR", conflicts_with = "no_spool")]
    spool_dir: Option<PathBuf>,
    /// Keep undelivered lines in memory only (lost when the run ends).
    #[arg(long)]
    no_spool: bool,
    /// Deadline of each stdin query (`30s`, `2m`); YAML queries have their own `timeout`.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Log filter (`info`, `debug`); overrides RUST_LOG. Default: info.
    #[arg(long, value_name = "LEVEL")]
    log_level: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    conf::logging::init("sql-to-graphite", cli.log_level.as_deref(), false);
    match real_main(cli) {
        Ok(code) => code,
        Err(Usage(msg)) => {
            eprintln!("sql-to-graphite: {msg}");
            ExitCode::from(2)
        }
    }
}

/// A usage or configuration error: one line, exit code 2.
struct Usage(String);

fn real_main(cli: Cli) -> Result<ExitCode, Usage> {
    let dsn = match std::env::var("S2G_DSN") {
        Ok(d) if !d.trim().is_empty() => Dsn::parse(&d).map_err(Usage)?,
        _ => {
            return Err(Usage(
                "S2G_DSN is not set: export S2G_DSN=postgres://user:password@host/db (or mysql://, mariadb://, sqlite:///path)".into(),
            ))
        }
    };
    let prefix = graphite::protocol::sanitize_path(&cli.graphite_prefix)
        .map(|p| p.into_owned())
        .map_err(|_| {
            Usage(format!(
                "--graphite-prefix {:?} is empty or has an empty component",
                cli.graphite_prefix
            ))
        })?;
    let queries = if let Some(file) = cli.schedule.as_ref().or(cli.queries.as_ref()) {
        queries::load_file(file, cli.schedule.is_some()).map_err(|e| Usage(e.to_string()))?
    } else {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Usage(format!("cannot read queries from stdin: {e}")))?;
        queries::from_lines(&text, cli.timeout)
    };
    let destination =
        match (&cli.graphite_host, &cli.config, cli.dry_run) {
            (_, _, true) => None,
            (Some(host), _, false) => Some(SenderConfig {
                destinations: vec![if host.contains(':') && !host.starts_with('[') {
                    format!("[{host}]:{}", cli.graphite_port)
                } else {
                    format!("{host}:{}", cli.graphite_port)
                }],
                ..SenderConfig::default()
            }),
            (None, Some(file), false) => {
                Some(collector::config::load_sender(file).map_err(|e| Usage(e.to_string()))?)
            }
            (None, None, false) => return Err(Usage(
                "--graphite-host or --config is required (or --dry-run to only print the lines)"
                    .into(),
            )),
        };
    let spool_dir = match (&cli.spool_dir, cli.no_spool) {
        (_, true) => None,
        (Some(d), false) => Some(d.clone()),
        (None, false) => Some(default_spool_dir().ok_or_else(|| {
            Usage(
                "no state directory for the spool (HOME is not set): pass --spool-dir DIR or --no-spool"
                    .into(),
            )
        })?),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Usage(format!("cannot start the async runtime: {e}")))?;
    let ctx = rt.block_on(async {
        let sender = match destination {
            None => None,
            Some(d) => Some(
                sender::spawn(SenderConfig {
                    spool_dir: spool_dir.clone(),
                    ..d
                })
                .map_err(|e| Usage(format!("cannot start the sender: {e:#}")))?,
            ),
        };
        Ok::<_, Usage>(Arc::new(Ctx {
            prefix,
            sender: Mutex::new(sender),
            submitted: AtomicU64::new(0),
        }))
    })?;
    let code = if cli.schedule.is_some() {
        rt.block_on(daemon(ctx.clone(), dsn, queries))
    } else {
        rt.block_on(once(ctx.clone(), dsn, queries))
    };
    let delivered = rt.block_on(ctx.finish(spool_dir.is_some()));
    Ok(if delivered { code } else { ExitCode::from(1) })
}

/// What every run shares: where lines go.
struct Ctx {
    prefix: String,
    /// Taken out by [`Ctx::finish`]: no handle may outlive the sender's shutdown.
    sender: Mutex<Option<SenderHandle>>,
    submitted: AtomicU64,
}

impl Ctx {
    /// Echo lines to stdout and hand them to the sender.
    fn emit(&self, chunk: Chunk) {
        if chunk.lines == 0 {
            return;
        }
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(&chunk.data).and_then(|()| out.flush());
        drop(out);
        if let Ok(guard) = self.sender.lock() {
            if let Some(s) = guard.as_ref() {
                self.submitted
                    .fetch_add(u64::from(chunk.lines), Ordering::Relaxed);
                s.submit(chunk);
            }
        }
    }

    /// Flush the sender: everything it holds — the spool left by earlier runs first, then this
    /// run's lines — is delivered within [`SEND_TIMEOUT`], or stays in the spool for the next
    /// run. False when lines were dropped (neither delivered nor spooled).
    async fn finish(&self, spooling: bool) -> bool {
        let Some(sender) = self.sender.lock().ok().and_then(|mut s| s.take()) else {
            return true;
        };
        let submitted = self.submitted.load(Ordering::Relaxed);
        let give_up = tokio::time::Instant::now() + SEND_TIMEOUT;
        loop {
            let s = sender.stats();
            let waiting = s.queued_lines + s.spool_lines + s.inflight_lines;
            if waiting == 0 || tokio::time::Instant::now() >= give_up {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let watcher = sender.clone();
        let flushed = sender.shutdown(SEND_TIMEOUT).await;
        let s = watcher.stats();
        let backlog = s.lines_sent.saturating_sub(submitted);
        if backlog > 0 {
            tracing::info!("{backlog} lines left by earlier runs delivered");
        }
        if let Err(e) = flushed {
            tracing::error!("sender: {e:#}");
            return false;
        }
        if s.lines_dropped > 0 {
            tracing::error!(
                "{} lines could not be delivered to carbon and were dropped",
                s.lines_dropped
            );
            return false;
        }
        if s.spool_lines > 0 {
            let how = if spooling {
                "they stay in the spool for the next run"
            } else {
                "lost"
            };
            tracing::warn!("{} lines not delivered yet; {how}", s.spool_lines);
        }
        true
    }
}

/// Where undelivered lines wait for the next run when `--spool-dir` is not given: beside the
/// agent's default spool (`collector::config::default_spool_dir`), in its own directory so a
/// running agent's lock is never in the way.
fn default_spool_dir() -> Option<PathBuf> {
    let agent = collector::config::default_spool_dir()?;
    Some(agent.parent()?.join("sql-to-graphite"))
}

/// Run every query once, in order, with one timestamp for the whole run.
async fn once(ctx: Arc<Ctx>, dsn: Dsn, queries: Vec<Query>) -> ExitCode {
    let timestamp = unix_now();
    let db = match Database::connect(&dsn, 1).await {
        Ok(db) => db,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::from(1);
        }
    };
    let mut failed = 0usize;
    for q in &queries {
        if !run_one(&ctx, &db, q, timestamp).await {
            failed += 1;
        }
    }
    db.close().await;
    if failed > 0 {
        tracing::error!("{failed} of {} queries failed", queries.len());
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Run one query and emit its lines; false when it failed (reported here).
async fn run_one(ctx: &Ctx, db: &Database, q: &Query, timestamp: i64) -> bool {
    match run_query(db, q).await {
        Ok(samples) => {
            let mut chunk = Chunk::default();
            encode(q, &ctx.prefix, &samples, timestamp, &mut chunk);
            ctx.emit(chunk);
            true
        }
        Err(e) => {
            tracing::error!("query {} failed: {}: {e}", q.label, db.dsn().redact(&q.sql));
            false
        }
    }
}

/// Run each query on its cron schedule until SIGTERM or Ctrl-C.
async fn daemon(ctx: Arc<Ctx>, dsn: Dsn, queries: Vec<Query>) -> ExitCode {
    let max = u32::try_from(queries.len()).unwrap_or(u32::MAX).clamp(1, 8);
    let db = match Database::connect_lazy(&dsn, max) {
        Ok(db) => Arc::new(db),
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::from(2);
        }
    };
    tracing::info!(
        "running {} queries on their schedules against {dsn}",
        queries.len()
    );
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    for q in queries {
        tasks.push(tokio::spawn(schedule_loop(
            Arc::new(q),
            ctx.clone(),
            db.clone(),
            stop_rx.clone(),
        )));
    }
    wait_for_signal().await;
    tracing::info!("stopping");
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    db.close().await;
    ExitCode::SUCCESS
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// One query's schedule: at each fire time, start a run unless the previous one is still
/// going (then the fire is skipped and counted). The run's timestamp is its fire time.
async fn schedule_loop(
    q: Arc<Query>,
    ctx: Arc<Ctx>,
    db: Arc<Database>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let Some(schedule) = q.schedule.clone() else {
        return;
    };
    let busy = Arc::new(AtomicBool::new(false));
    let mut skipped = 0u64;
    let mut after = chrono::Utc::now();
    loop {
        let Some(next) = schedule.schedule.after(&after).next() else {
            tracing::info!(
                "query {}: schedule {:?} has no more times",
                q.label,
                schedule.text
            );
            return;
        };
        let wait = (next - chrono::Utc::now()).to_std().unwrap_or_default();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
        // Fires missed while the machine stalled are not run late.
        after = next.max(chrono::Utc::now());
        if busy.swap(true, Ordering::AcqRel) {
            skipped += 1;
            tracing::warn!(
                "query {}: the previous run is still going; skipped this one ({skipped} skipped so far)",
                q.label
            );
            continue;
        }
        let (q, ctx, db, busy) = (q.clone(), ctx.clone(), db.clone(), busy.clone());
        tokio::spawn(async move {
            run_one(&ctx, &db, &q, next.timestamp()).await;
            busy.store(false, Ordering::Release);
        });
    }
}
