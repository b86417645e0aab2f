//! `collector`: run the agent, run one cycle (`--once`, `test`), or validate (`check`).
//!
//! Exit codes: 0 success; 1 a runtime failure (or, for `--once`/`test`, a collector run that
//! failed or timed out); 2 a configuration or usage error.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use collector::config::{self, Loaded, LoadedInstance, Sources};
use collector::events::AgentStats;
use collector::runtime::{self, Worker};
use conf::ConfigError;

/// How long `--once` and `test` wait between the two samples that make counter rates.
const ONCE_GAP: Duration = Duration::from_secs(1);

const HELP: &str = "\
carbide's collector agent: collects metrics and sends them to Graphite

Usage: collector [OPTIONS] [COMMAND]

Commands:
  check        Validate the global file and collectors.d, print a summary (exit 0), or the
               errors (exit 2)
  test [NAME]  Like --once for one collector instance, named by file stem (`host` for
               collectors.d/host.yml) or type (all instances when no name is given)

Options:
      --config <FILE>          Global settings file (default: ./collector.yml if present)
      --collectors-dir <DIR>   Directory of collector instance files (default: `collectors_dir:`
                               or ./collectors.d)
      --log-level <LEVEL>      Log filter (`info`, `debug`, `collector=debug`); overrides
                               RUST_LOG. Default: info
      --once                   Run one cycle of every enabled collector, print the lines to
                               stdout, send nothing. Collectors with counters are sampled twice,
                               1 s apart, so their rates appear
  -h, --help                   Print help
  -V, --version                Print version
";

/// The command line. Options may come before or after the command.
#[derive(Default)]
struct Cli {
    config: Option<PathBuf>,
    collectors_dir: Option<PathBuf>,
    log_level: Option<String>,
    once: bool,
    command: Option<Command>,
}

enum Command {
    Check,
    Test { name: Option<String> },
}

/// What the command line asks for besides a run.
enum Parsed {
    Run(Cli),
    /// `--help` or `--version`: print this to stdout, exit 0.
    Print(String),
}

fn parse_cli(args: impl IntoIterator<Item = std::ffi::OsString>) -> Result<Parsed, lexopt::Error> {
    use lexopt::prelude::*;
    let mut cli = Cli::default();
    let mut p = lexopt::Parser::from_args(args);
    while let Some(arg) = p.next()? {
        match arg {
            Long("config") => cli.config = Some(p.value()?.into()),
            Long("collectors-dir") => cli.collectors_dir = Some(p.value()?.into()),
            Long("log-level") => cli.log_level = Some(p.value()?.string()?),
            Long("once") => cli.once = true,
            Short('h') | Long("help") => return Ok(Parsed::Print(HELP.to_string())),
            Short('V') | Long("version") => {
                return Ok(Parsed::Print(format!(
                    "collector {}\n",
                    env!("CARGO_PKG_VERSION")
                )))
            }
            Value(v) if cli.command.is_none() => {
                cli.command = Some(match v.string()?.as_str() {
                    "check" => Command::Check,
                    "test" => Command::Test { name: None },
                    other => {
                        return Err(lexopt::Error::Custom(
                            format!("unknown command '{other}' (expected check or test)").into(),
                        ))
                    }
                })
            }
            Value(v) => match &mut cli.command {
                Some(Command::Test { name: name @ None }) => *name = Some(v.string()?),
                _ => return Err(Value(v).unexpected()),
            },
            _ => return Err(arg.unexpected()),
        }
    }
    Ok(Parsed::Run(cli))
}

fn main() -> ExitCode {
    let cli = match parse_cli(std::env::args_os().skip(1)) {
        Ok(Parsed::Run(cli)) => cli,
        Ok(Parsed::Print(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("collector: {e}\n\nUsage: collector [OPTIONS] [check | test [NAME]]\nFor more information, try '--help'.");
            return ExitCode::from(2);
        }
    };
    conf::logging::init("collector", cli.log_level.as_deref(), true);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Parsed, String> {
        parse_cli(args.iter().map(|a| a.into())).map_err(|e| e.to_string())
    }

    /// (arguments, config, collectors_dir, log_level, once, command)
    #[test]
    fn accepted_command_lines() {
        type Want = (
            Option<&'static str>,
            Option<&'static str>,
            Option<&'static str>,
            bool,
            &'static str,
        );
        let table: &[(&[&str], Want)] = &[
            (&[], (None, None, None, false, "run")),
            (&["--once"], (None, None, None, true, "run")),
            (&["check"], (None, None, None, false, "check")),
            (
                &["--config", "a.yml", "check"],
                (Some("a.yml"), None, None, false, "check"),
            ),
            (
                &["check", "--config=a.yml"],
                (Some("a.yml"), None, None, false, "check"),
            ),
            (&["test"], (None, None, None, false, "test")),
            (
                &["test", "host", "--collectors-dir", "d"],
                (None, Some("d"), None, false, "test host"),
            ),
            (
                &["--log-level", "debug", "test", "db1"],
                (None, None, Some("debug"), false, "test db1"),
            ),
        ];
        for (args, want) in table {
            let Ok(Parsed::Run(cli)) = parse(args) else {
                panic!("{args:?} rejected");
            };
            let command = match &cli.command {
                None => "run".to_string(),
                Some(Command::Check) => "check".to_string(),
                Some(Command::Test { name: None }) => "test".to_string(),
                Some(Command::Test { name: Some(n) }) => format!("test {n}"),
            };
            let got = (
                cli.config.as_deref().and_then(|p| p.to_str()),
                cli.collectors_dir.as_deref().and_then(|p| p.to_str()),
                cli.log_level.as_deref(),
                cli.once,
                command.as_str(),
            );
            assert_eq!(got, *want, "{args:?}");
        }
    }

    #[test]
    fn rejected_command_lines_say_what_is_wrong() {
        let table: &[(&[&str], &str)] = &[
            (&["--bogus"], "--bogus"),
            (&["frobnicate"], "unknown command 'frobnicate'"),
            (&["check", "extra"], "extra"),
            (&["test", "a", "b"], "b"),
            (&["--config"], "--config"),
            (&["--once=yes"], "--once"),
        ];
        for (args, want) in table {
            match parse(args) {
                Err(e) => assert!(e.contains(want), "{args:?}: {e}"),
                Ok(_) => panic!("{args:?} accepted"),
            }
        }
    }

    #[test]
    fn help_and_version_print() {
        for args in [&["--help"][..], &["-h"], &["check", "--help"]] {
            let Ok(Parsed::Print(text)) = parse(args) else {
                panic!("{args:?}");
            };
            assert!(text.contains("Usage: collector"), "{text}");
        }
        let Ok(Parsed::Print(text)) = parse(&["--version"]) else {
            panic!("--version");
        };
        assert_eq!(text, format!("collector {}\n", env!("CARGO_PKG_VERSION")));
    }
}
