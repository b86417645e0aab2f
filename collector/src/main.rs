//! `collector`: run the agent, run one cycle (`--once`, `test`), or validate (`check`).
//!
//! Exit codes: 0 success; 1 a runtime failure (or, for `--once`/`test`, a collector run that
//! failed or timed out); 2 a configuration or usage error.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use collector::config::{self, Loaded, LoadedInstance, Sources};
use collector::events::AgentStats;
use collector::runtime::{self, Worker};
use collector::yaml::ConfigError;

/// How long `--once` and `test` wait between the two samples that make counter rates.
const ONCE_GAP: Duration = Duration::from_secs(1);

#[derive(Parser)]
#[command(
    name = "collector",
    version,
    about = "carbide's collector agent: collects metrics and sends them to Graphite"
)]
struct Cli {
    /// Global settings file (default: ./collector.yml if present).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Directory of collector instance files (default: `collectors_dir:` or ./collectors.d).
    #[arg(long, global = true, value_name = "DIR")]
    collectors_dir: Option<PathBuf>,
    /// Log filter (`info`, `debug`, `collector=debug`); overrides RUST_LOG. Default: info.
    #[arg(long, global = true, value_name = "LEVEL")]
    log_level: Option<String>,
    /// Run one cycle of every enabled collector, print the lines to stdout, send nothing.
    /// Collectors with counters are sampled twice, 1 s apart, so their rates appear.
    #[arg(long)]
    once: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Validate the global file and collectors.d, print a summary (exit 0), or the errors
    /// (exit 2).
    Check,
    /// Like --once for one collector instance, named by file stem or type (all instances
    /// when no name is given).
    Test {
        /// File stem (`host` for collectors.d/host.yml) or collector type.
        name: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    collector::logging::init("collector", cli.log_level.as_deref(), true);
    let sources = Sources {
        config: cli.config.clone(),
        collectors_dir: cli.collectors_dir.clone(),
    };
    // One thread runs every collector task and the sender: a cycle is well under a
    // millisecond of CPU, and each extra worker thread would cost its stack and malloc arena
    // (docs/benchmarks.md, "Where the agent's RSS is"). Nothing in the agent blocks a runtime
    // thread for long: DNS lookups and config reloads go to tokio's blocking pool; a spool
    // fsync (only while a destination is down) delays other tasks by the fsync's duration,
    // far below any collector deadline.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("collector: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    // Collectors may create clients that need the runtime while they are built.
    let _guard = rt.enter();
    let loaded = match config::load(&sources) {
        Ok(l) => l,
        Err(errors) => return config_errors(&errors),
    };
    match cli.command {
        Some(Command::Check) => check(&loaded),
        Some(Command::Test { name }) => {
            let chosen = match select(loaded.instances, name.as_deref()) {
                Ok(c) => c,
                Err(msg) => {
                    eprintln!("collector: {msg}");
                    return ExitCode::from(2);
                }
            };
            rt.block_on(print_once(chosen, &loaded.settings))
        }
        None if cli.once => {
            let enabled = loaded
                .instances
                .into_iter()
                .filter(LoadedInstance::enabled)
                .collect();
            rt.block_on(print_once(enabled, &loaded.settings))
        }
        None => match rt.block_on(collector::agent::run(sources, loaded)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("collector: {e:#}");
                ExitCode::from(1)
            }
        },
    }
}

fn config_errors(errors: &[ConfigError]) -> ExitCode {
    for e in errors {
        eprintln!("{e}");
    }
    eprintln!(
        "collector: {} configuration error(s); nothing was started",
        errors.len()
    );
    ExitCode::from(2)
}

fn check(loaded: &Loaded) -> ExitCode {
    let s = &loaded.settings;
    let mut out = String::new();
    match &s.global_file {
        Some(f) => out.push_str(&format!("global settings: {}\n", f.display())),
        None => out.push_str("global settings: defaults (no collector.yml)\n"),
    }
    out.push_str(&format!(
        "  paths: {}.<collector>.<metric>{}\n  default interval {}, jitter {}, {} destination(s)\n",
        s.base,
        s.suffix
            .as_deref()
            .map(|x| format!(".{x}"))
            .unwrap_or_default(),
        humantime::format_duration(s.interval),
        humantime::format_duration(s.jitter),
        s.sender.destinations.len()
    ));
    match &s.sender.spool_dir {
        Some(d) => out.push_str(&format!(
            "  spool: {}{}\n",
            d.display(),
            if Some(d) == config::default_spool_dir().as_ref() {
                " (default)"
            } else {
                ""
            }
        )),
        None => out.push_str("  spool: none (memory queue only)\n"),
    }
    let enabled = loaded.instances.iter().filter(|i| i.enabled()).count();
    out.push_str(&format!(
        "collectors: {} ({} instance(s), {} enabled)\n",
        s.collectors_dir.display(),
        loaded.instances.len(),
        enabled
    ));
    for i in &loaded.instances {
        out.push_str(&format!(
            "  {}: type {}, path {}{}, every {}, timeout {}{}\n",
            i.file.display(),
            i.kind(),
            s.base,
            if i.segment.is_empty() {
                String::new()
            } else {
                format!(".{}", i.segment)
            },
            humantime::format_duration(i.interval),
            humantime::format_duration(i.timeout),
            if i.enabled() { "" } else { " (disabled)" }
        ));
    }
    out.push_str("configuration OK\n");
    print!("{out}");
    ExitCode::SUCCESS
}

/// The instances `collector test NAME` runs: by file stem first, then by type.
fn select(
    instances: Vec<LoadedInstance>,
    name: Option<&str>,
) -> Result<Vec<LoadedInstance>, String> {
    let Some(name) = name else {
        return Ok(instances
            .into_iter()
            .filter(LoadedInstance::enabled)
            .collect());
    };
    let available = instances
        .iter()
        .map(|i| format!("{} (type {})", i.stem, i.kind()))
        .collect::<Vec<_>>()
        .join(", ");
    let (by_stem, rest): (Vec<_>, Vec<_>) = instances.into_iter().partition(|i| i.stem == name);
    if !by_stem.is_empty() {
        return Ok(by_stem);
    }
    let by_kind: Vec<_> = rest.into_iter().filter(|i| i.kind() == name).collect();
    match by_kind.len() {
        1 => Ok(by_kind),
        0 => Err(format!(
            "no collector instance named \"{name}\" (available: {available})"
        )),
        _ => Err(format!(
            "several instances of type \"{name}\": {}; name one by its file stem",
            by_kind
                .iter()
                .map(|i| i.stem.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

async fn print_once(instances: Vec<LoadedInstance>, settings: &config::Settings) -> ExitCode {
    let agent = Arc::new(AgentStats::default());
    let workers = instances
        .into_iter()
        .map(|i| Worker::new(i, settings, agent.clone()))
        .collect();
    let (data, failed) = runtime::once(workers, ONCE_GAP).await;
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_all(&data).and_then(|()| stdout.flush()) {
        eprintln!("collector: cannot write to stdout: {e}");
        return ExitCode::from(1);
    }
    if failed > 0 {
        eprintln!("collector: {failed} collector run(s) failed or timed out (see the log above)");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
