//! Shared by the service collector tests (`haproxy.rs`, `rabbitmq.rs`): temp config dirs,
//! the real `collector` binary in `test` and agent mode, a line-storing carbon receiver.
#![allow(dead_code)] // each test file uses part of the kit

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_collector");
pub const HOST: &str = "servers.testhost";

pub fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, text).unwrap();
}

/// A port nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `collector <args>` in `dir` (with its `collector.yml` and `collectors.d/`).
pub fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Metric lines → path → value (the last value when a path repeats).
pub fn metrics(stdout: &str) -> BTreeMap<String, f64> {
    stdout
        .lines()
        .filter_map(|l| {
            let mut it = l.split(' ');
            let path = it.next()?.to_string();
            let value = it.next()?.parse().ok()?;
            Some((path, value))
        })
        .collect()
}

/// A carbon stand-in on 127.0.0.1:0 storing every line it gets.
pub struct Receiver {
    pub port: u16,
    pub lines: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    pub fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let l = lines.clone();
        std::thread::spawn(move || {
            for sock in listener.incoming() {
                let Ok(sock) = sock else { return };
                let l = l.clone();
                std::thread::spawn(move || {
                    for line in BufReader::new(sock).lines() {
                        let Ok(line) = line else { return };
                        l.lock().unwrap().push(line);
                    }
                });
            }
        });
        Receiver { port, lines }
    }

    /// Lines starting with `prefix`.
    pub fn with_prefix(&self, prefix: &str) -> Vec<String> {
        let lines = self.lines.lock().unwrap();
        lines
            .iter()
            .filter(|l| l.starts_with(prefix))
            .cloned()
            .collect()
    }

    /// Sum of the values of lines starting with `prefix` (self-metric counts per interval).
    pub fn sum(&self, prefix: &str) -> f64 {
        self.with_prefix(prefix)
            .iter()
            .filter_map(|l| l.split(' ').nth(1)?.parse::<f64>().ok())
            .sum()
    }

    /// Distinct timestamps of lines starting with `prefix` (one per completed run).
    pub fn runs(&self, prefix: &str) -> std::collections::BTreeSet<i64> {
        self.with_prefix(prefix)
            .iter()
            .filter_map(|l| l.split(' ').nth(2)?.parse().ok())
            .collect()
    }

    /// Poll until `cond` holds; panics after a generous bound (so a broken agent fails the
    /// test instead of hanging it; nothing is asserted about how long it took).
    pub fn wait_until(&self, what: &str, mut cond: impl FnMut(&Receiver) -> bool) {
        for _ in 0..600 {
            if cond(self) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("gave up waiting for {what}");
    }
}

/// The agent (`collector` in run mode) in `dir`, its stderr collected.
pub struct Agent {
    child: Child,
    log: Option<std::thread::JoinHandle<String>>,
}

impl Agent {
    pub fn start(dir: &Path) -> Agent {
        assert_own_spool(dir);
        let mut child = Command::new(BIN)
            .args(["--log-level", "info"])
            .current_dir(dir)
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let log = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        Agent {
            child,
            log: Some(log),
        }
    }

    /// SIGTERM, wait, and return the log.
    pub fn stop(mut self) -> String {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
        self.log.take().unwrap().join().unwrap()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Global settings sending to `port` every second as host `testhost`, spooling into the
/// test's own directory (`spool/`, beside `collector.yml`): without `spool_dir` an agent run
/// as root spools into `/var/lib/carbide/spool`, one directory per test's port.
pub fn global(port: u16) -> String {
    format!(
        "hostname_method: fixed\nhostname: testhost\ninterval: 1s\nsender:\n  destinations: [\"127.0.0.1:{port}\"]\n  spool_dir: spool\n"
    )
}

/// Panics unless `dir/collector.yml` names a `spool_dir`: an agent a test starts spools into
/// the test's temporary directory, never the user's or the system's default spool.
pub fn assert_own_spool(dir: &Path) {
    let global = std::fs::read_to_string(dir.join("collector.yml")).unwrap_or_default();
    assert!(
        global.contains("spool_dir:"),
        "{}/collector.yml sets no sender.spool_dir: the agent would spool outside the test's \
         directory (as root into /var/lib/carbide/spool)",
        dir.display()
    );
}

/// The metric names of a docs page's "Metrics" table (first column, in backticks), with
/// `<N>` placeholders replaced by `0`.
pub fn documented(kind: &str) -> Vec<String> {
    let page = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../docs/collectors/{kind}.md")),
    )
    .unwrap();
    let section = page.split("## Metrics").nth(1).expect("a Metrics section");
    let section = section.split("\n## ").next().unwrap_or_default();
    let names: Vec<String> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(|n| n.replace("<N>", "0"))
        .collect();
    assert!(names.len() >= 5, "{kind}: {names:?}");
    names
}

/// Latest value of every `prefix<name>` line the receiver got.
pub fn latest(rx: &Receiver, prefix: &str) -> BTreeMap<String, f64> {
    rx.with_prefix(prefix)
        .iter()
        .filter_map(|l| {
            let mut it = l.split(' ');
            let name = it.next()?.strip_prefix(prefix)?.to_string();
            Some((name, it.next()?.parse().ok()?))
        })
        .collect()
}

/// The DSN of a test database from `var` (tests/run sets it through
/// `tests/services/sql-up.sh`).
pub fn test_dsn(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!(
            "{var} is not set: start the test databases first with \
             `eval \"$(tests/services/sql-up.sh)\"` (tests/run does this)"
        )
    })
}

/// An agent in a fresh directory sending to `rx`, with one collector file `name.yml`.
pub fn agent_with(rx: &Receiver, name: &str, body: &str) -> (tempfile::TempDir, Agent) {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "collector.yml", &global(rx.port));
    write(tmp.path(), &format!("collectors.d/{name}.yml"), body);
    let agent = Agent::start(tmp.path());
    (tmp, agent)
}

/// Poll the latest values under `prefix` until `cond` holds; panics with `what` and the
/// values after a generous bound (nothing is asserted about how long it took).
pub fn wait_latest(
    rx: &Receiver,
    prefix: &str,
    what: &str,
    cond: impl Fn(&BTreeMap<String, f64>) -> bool,
) -> BTreeMap<String, f64> {
    for _ in 0..600 {
        let m = latest(rx, prefix);
        if cond(&m) {
            return m;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("gave up waiting for {what}: {:#?}", latest(rx, prefix));
}
