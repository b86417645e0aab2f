//! `alerter`: check an `alerts.yml` (run / dry-run / replay come with the evaluator).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "alerter",
    about = "carbide's alerter (Graphite Pager-compatible alerts.yml)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Validate an alerts file: YAML, keys, thresholds, targets, notifiers, secrets. Exit 2 on error.
    Check {
        /// The alerts file.
        #[arg(default_value = "alerts.yml")]
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Check { file } => match alerter::config::Config::load(&file) {
            Ok(cfg) => {
                for w in &cfg.warnings {
                    eprintln!("warning: {w}");
                }
                let notifiers: Vec<&str> = cfg.notifier_names().collect();
                println!(
                    "{}: OK: {} alerts, notifiers: {}",
                    file.display(),
                    cfg.alerts.len(),
                    notifiers.join(", ")
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
    }
}
