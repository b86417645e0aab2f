//! `carbide`: `serve` (the Graphite-compatible store and server) and `up` (the whole
//! pipeline: store + collector + alerter). Exit codes: 0 success, 1 runtime failure,
//! 2 usage or configuration error.

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
    /// Check what `serve` with the same flags would load (settings file, schema files) without
    /// starting anything: print a summary (exit 0) or the errors (exit 2).
    Check(carbide::serve::ServeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    conf::logging::init("carbide", cli.log_level.as_deref(), true);
    raise_open_files_limit();
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
        Cmd::Check(a) => carbide::serve::check(&a).map(|summary| print!("{summary}")),
        Cmd::Up(a) => {
            // Collectors may build clients that need the runtime while they are configured.
            let _guard = rt.enter();
            rt.block_on(carbide::up::run(a))
        }
    };
    // Everything is stopped and flushed. A render thread that has not noticed its
    // cancellation yet must not keep the process alive (dropping the runtime would wait
    // for it).
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Configuration errors: one `file:line:column: message` per line, the style of
            // every carbide binary, whichever of the three files they are in.
            if let Some(conf::ConfigErrors(errors)) = e.downcast_ref::<conf::ConfigErrors>() {
                for err in errors {
                    eprintln!("{err}");
                }
                eprintln!(
                    "carbide: {} configuration error(s); nothing was started",
                    errors.len()
                );
                return ExitCode::from(2);
            }
            eprintln!("carbide: {e:#}");
            if e.downcast_ref::<carbide::StartupError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}

/// Raise the soft limit of open files to the hard limit: every carbon and HTTP connection
/// takes a descriptor, and the listeners' connection caps (docs/limits.md) should be what
/// refuses a client, not `EMFILE`.
fn raise_open_files_limit() {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read or write the struct passed.
    let got = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) };
    if got != 0 {
        tracing::warn!(
            "cannot read the open-files limit: {}",
            std::io::Error::last_os_error()
        );
        return;
    }
    if l.rlim_cur >= l.rlim_max {
        tracing::debug!(
            limit = l.rlim_cur,
            "open-files limit already at its maximum"
        );
        return;
    }
    let was = l.rlim_cur;
    l.rlim_cur = l.rlim_max;
    // SAFETY: as above.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &l) } == 0 {
        tracing::debug!(from = was, to = l.rlim_cur, "raised the open-files limit");
    } else {
        tracing::warn!(
            limit = was,
            "cannot raise the open-files limit: {}",
            std::io::Error::last_os_error()
        );
    }
}
