//! Log setup shared by every binary (`collector`, `sql-to-graphite`, `alerter`, `carbide`):
//! stderr, no ANSI colours unless stderr is a terminal, `--log-level` over `RUST_LOG` over
//! `info`.
//!
//! The filter is tracing-subscriber's `Targets` (`info`, `debug`, `collector=debug,warn`), not
//! `EnvFilter`: the same directive syntax without span or field matching, and without the
//! regex engine `EnvFilter` links in (about 0.7 MB of the agent's code, and its resident
//! memory; docs/benchmarks.md).

use std::io::IsTerminal;

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The filter for `level` (a `--log-level` value), else `RUST_LOG`, else `info`. A bad filter
/// is reported on stderr (naming `program`) and replaced by `info`.
pub fn filter(program: &str, level: Option<&str>) -> Targets {
    let env = std::env::var("RUST_LOG")
        .ok()
        .filter(|s| !s.trim().is_empty());
    let Some(text) = level.map(str::to_owned).or(env) else {
        return Targets::new().with_default(tracing::Level::INFO);
    };
    text.parse().unwrap_or_else(|e| {
        eprintln!("{program}: bad log filter {text:?} ({e}); using info");
        Targets::new().with_default(tracing::Level::INFO)
    })
}

/// Log to stderr (colours only on a terminal) through [`filter`].
pub fn init(program: &str, level: Option<&str>, with_target: bool) {
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(with_target);
    tracing_subscriber::registry()
        .with(fmt)
        .with(filter(program, level))
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::level_filters::LevelFilter;

    #[test]
    fn directives() {
        let f = filter("t", Some("debug"));
        assert!(f.would_enable("anything", &tracing::Level::DEBUG));
        assert!(!f.would_enable("anything", &tracing::Level::TRACE));

        let f = filter("t", Some("collector=debug,warn"));
        assert!(f.would_enable("collector::sender", &tracing::Level::DEBUG));
        assert!(!f.would_enable("tokio", &tracing::Level::INFO));
        assert!(f.would_enable("tokio", &tracing::Level::WARN));

        // A bad filter falls back to info.
        let f = filter("t", Some("collector=loud"));
        assert_eq!(f.default_level(), Some(LevelFilter::INFO));
        assert!(!f.would_enable("collector", &tracing::Level::DEBUG));
    }
}
