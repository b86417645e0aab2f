//! `carbide`: `serve` (the Graphite-compatible store and server) and `up` (the whole
//! pipeline: store + collector + alerter). Exit codes: 0 success, 1 runtime failure,
//! 2 usage or configuration error.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "carbide",
    version,
    about = "carbide: collect → store → evaluate → page, in one command"
)]
struct Cli {
    /// Log filter (`info`, `debug`, `graphite=debug`); overrides RUST_LOG. Default: info.
    #[arg(long, global = true, value_name = "LEVEL")]
    log_level: Option<String>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// The Graphite-compatible store and server alone: carbon plaintext in (TCP/UDP :2003),
    /// graphite-web's render/find API out (:8080).
    Serve(carbide::serve::ServeArgs),
    /// Everything: the store and server, the collector with collectors.d/, the alerter with
    /// alerts.yml, pointed at each other. Ctrl-C stops it cleanly.
    Up(carbide::up::UpArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_level.as_deref());
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("carbide: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = match cli.cmd {
        Cmd::Serve(a) => rt.block_on(carbide::serve::run(a)),
        Cmd::Up(a) => {
            // Collectors may build clients that need the runtime while they are configured.
            let _guard = rt.enter();
            rt.block_on(carbide::up::run(a))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("carbide: {e:#}");
            if e.downcast_ref::<carbide::StartupError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}

fn init_logging(level: Option<&str>) {
    use tracing_subscriber::EnvFilter;
    let filter = match level {
        Some(l) => EnvFilter::try_new(l),
        None => EnvFilter::try_from_default_env().or_else(|_| EnvFilter::try_new("info")),
    }
    .unwrap_or_else(|e| {
        eprintln!("carbide: bad log filter ({e}); using info");
        EnvFilter::new("info")
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
