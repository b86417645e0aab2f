//! The real `collector` binary on temporary config directories: every kind of bad file gives
//! its documented `file:line:column: message` and exit code 2; `check`, `--once` and `test`
//! on good configs; SIGHUP reload and SIGTERM flush against a line-counting receiver.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_collector");

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, text).unwrap();
}

/// Run the binary in `dir` (so the defaults `./collector.yml` and `./collectors.d` apply).
fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const GLOBAL: &str = "hostname_method: fixed\nhostname: testhost\n";

/// One bad file (in collectors.d unless named `collector.yml`) and the start of the error
/// line it must produce.
const CASES: &[(&str, &str, &str, &str)] = &[
    (
        "yaml syntax error",
        "collectors.d/x.yml",
        "type: host\ninterval: [10s\n",
        "collectors.d/x.yml:3:1: did not find expected ',' or ']'",
    ),
    (
        "unknown key",
        "collectors.d/x.yml",
        "type: host\nurll: http://x\n",
        "collectors.d/x.yml:2:1: unknown key \"urll\" (this is either a typo or this option does not exist here; expected one of: type, interval, timeout, path, whitelist, blacklist, enabled, tags, percore",
    ),
    (
        "unknown key, did you mean",
        "collectors.d/x.yml",
        "type: host\nintervall: 10s\n",
        "collectors.d/x.yml:2:1: unknown key \"intervall\": did you mean \"interval\"? (this is either a typo",
    ),
    (
        "bare number for a duration",
        "collectors.d/x.yml",
        "type: host\ninterval: 10\n",
        "collectors.d/x.yml:2:11: interval: invalid value: string \"10\", expected a duration: a bare number has no unit; did you mean `10s`?",
    ),
    (
        "size with a unit",
        "collector.yml",
        "hostname_method: fixed\nhostname: h\nsender:\n  spool_max_bytes: 1GB\n",
        "collector.yml:4:20: sender.spool_max_bytes: invalid type: string \"1GB\", expected u64; sizes are written in bytes: did you mean 1073741824 (= 1GB)?",
    ),
    (
        "wrong type",
        "collectors.d/x.yml",
        "type: host\nenabled: maybe\n",
        "collectors.d/x.yml:2:10: enabled: invalid type: string \"maybe\", expected a boolean",
    ),
    (
        "missing type",
        "collectors.d/x.yml",
        "interval: 10s\n",
        "collectors.d/x.yml:1:1: missing field \"type\": say which collector this file configures (`type: <name>`, one of: host, haproxy, rabbitmq, mongodb, sql, exec, nginx, redis, memcached, postgres, mysql, process)",
    ),
    (
        "unknown type",
        "collectors.d/x.yml",
        "# typo\ntype: hosst\n",
        "collectors.d/x.yml:2:7: unknown collector type \"hosst\" (expected one of: host, haproxy, rabbitmq, mongodb, sql, exec, nginx, redis, memcached, postgres, mysql, process); did you mean \"host\"?",
    ),
    (
        "bad duration",
        "collectors.d/x.yml",
        "type: host\ninterval: 10 parsecs\n",
        "collectors.d/x.yml:2:11: interval: invalid value: string \"10 parsecs\", expected a duration such as `10s`, `1m30s` or `500ms`",
    ),
    (
        "bad regex",
        "collectors.d/x.yml",
        "type: host\nwhitelist:\n  - \"cpu(\"\n",
        "collectors.d/x.yml:3:3: whitelist: invalid regex \"cpu(\": found open group without closing ')'",
    ),
    (
        "timeout above interval",
        "collectors.d/x.yml",
        "type: host\ninterval: 5s\ntimeout: 6s\n",
        "collectors.d/x.yml:3:10: timeout 6s must be above 0 and at most the interval (5s)",
    ),
    (
        "unknown global key",
        "collector.yml",
        "hostname_method: fixed\nhostname: h\nintervall: 10s\n",
        "collector.yml:3:1: unknown key \"intervall\": did you mean \"interval\"?",
    ),
    (
        "unknown sender key",
        "collector.yml",
        "sender:\n  destination: [\"127.0.0.1:2003\"]\n",
        "collector.yml:2:3: sender: unknown key \"destination\": did you mean \"destinations\"?",
    ),
    (
        "destination without a port",
        "collector.yml",
        "hostname_method: fixed\nhostname: h\nsender:\n  destinations: [\"127.0.0.1:2003\", \"carbon.example.com\"]\n",
        "collector.yml:4:36: sender.destinations[1]: destination \"carbon.example.com\": expected `host:port`",
    ),
    (
        "spool directory that cannot be created",
        "collector.yml",
        "hostname_method: fixed\nhostname: h\nsender:\n  spool_dir: collector.yml/spool\n",
        "collector.yml:4:3: spool_dir collector.yml/spool: collector.yml is not a directory",
    ),
    (
        "unset environment variable",
        "collectors.d/x.yml",
        "type: host\npath: ${CARBIDE_TEST_UNSET_VARIABLE}\n",
        "collectors.d/x.yml:2:7: path: environment variable CARBIDE_TEST_UNSET_VARIABLE is not set",
    ),
    (
        "global tag name breaking carbon's rules",
        "collector.yml",
        "hostname_method: fixed\nhostname: h\ntags:\n  dc: eu\n  \"r^le\": web\n",
        "collector.yml:5:3: tags: tag name \"r^le\" is not allowed: Graphite tag names are non-empty and contain none of ; ! ^ =",
    ),
    (
        "instance tag value breaking carbon's rules",
        "collectors.d/x.yml",
        "type: host\ntags:\n  dc: \"~eu\"\n",
        "collectors.d/x.yml:3:3: tags: value \"~eu\" of tag \"dc\" is not allowed: Graphite tag values are non-empty, contain no ; and do not start with ~",
    ),
    (
        "reserved tag name",
        "collectors.d/x.yml",
        "type: host\ntags: {name: x}\n",
        "collectors.d/x.yml:2:1: tags: tag name \"name\" is reserved",
    ),
    (
        "fixed hostname without hostname",
        "collector.yml",
        "hostname_method: fixed\n",
        "collector.yml:1:18: hostname_method: fixed needs `hostname: <name>`",
    ),
];

#[test]
fn each_bad_file_gives_its_message_and_exit_code_2() {
    for (what, file, body, want) in CASES {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "collector.yml", GLOBAL);
        write(
            tmp.path(),
            "collectors.d/good.yml",
            "type: host\npath: good\n",
        );
        write(tmp.path(), file, body);
        for args in [&["check"][..], &["--once"][..], &[][..]] {
            let out = run(tmp.path(), args);
            let err = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{what} {args:?}: {err}");
            assert!(
                err.lines().any(|l| l.starts_with(want)),
                "{what} {args:?}: want a line starting with\n{want}\ngot:\n{err}"
            );
            assert!(out.stdout.is_empty(), "{what}: nothing runs");
        }
    }
}

/// In a build without the MongoDB collector (`--no-default-features`), a `type: mongodb` file
/// is a configuration error that names the feature to rebuild with.
#[cfg(not(feature = "mongodb"))]
#[test]
fn kind_not_compiled_in_exits_2_naming_the_feature() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "collector.yml", GLOBAL);
    write(tmp.path(), "collectors.d/mongo.yml", "type: mongodb\n");
    for args in [&["check"][..], &["--once"][..], &[][..]] {
        let out = run(tmp.path(), args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.lines().any(|l| l == "collectors.d/mongo.yml:1:7: this build was compiled without the mongodb collector; rebuild with --features mongodb"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn duplicate_path_names_both_files() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "collectors.d/a.yml", "type: host\n");
    write(tmp.path(), "collectors.d/b.yaml", "type: host\n");
    let out = run(tmp.path(), &["check"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("collectors.d/b.yaml:1:1: metric path \"(host level)\" is already used by collectors.d/a.yml; set a different `path:` in one of them"),
        "{err}"
    );
}

#[test]
fn unreadable_collectors_dir() {
    let tmp = tempfile::tempdir().unwrap();
    // no collectors.d at all
    let out = run(tmp.path(), &["check"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.starts_with("collectors.d: cannot read the collectors directory:"),
        "{err}"
    );
    // a file where the directory should be, given by flag
    write(tmp.path(), "notadir", "x");
    let out = run(tmp.path(), &["check", "--collectors-dir", "notadir"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.starts_with("notadir: cannot read the collectors directory:"),
        "{err}"
    );
    // --config naming a missing file
    write(tmp.path(), "collectors.d/host.yml", "type: host\n");
    let out = run(tmp.path(), &["check", "--config", "missing.yml"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.starts_with("missing.yml: cannot read the global settings file:"),
        "{err}"
    );
}

#[test]
fn all_errors_are_reported_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "collectors.d/a.yml", "type: hots\n");
    write(tmp.path(), "collectors.d/b.yml", "type: host\nbogus: 1\n");
    let out = run(tmp.path(), &["check"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        err.contains("collectors.d/a.yml:1:7: unknown collector type"),
        "{err}"
    );
    assert!(
        err.contains("collectors.d/b.yml:2:1: unknown key \"bogus\""),
        "{err}"
    );
    assert!(err.contains("2 configuration error(s)"), "{err}");
}

#[test]
fn check_on_a_good_dir_exits_0_with_a_summary() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "collector.yml", GLOBAL);
    write(tmp.path(), "collectors.d/host.yml", "type: host\n");
    write(
        tmp.path(),
        "collectors.d/host2.yaml",
        "type: host\npath: second\ninterval: 1m\nenabled: false\n",
    );
    write(tmp.path(), "collectors.d/README", "not a collector file");
    let out = run(tmp.path(), &["check"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(stdout.contains("2 instance(s), 1 enabled"), "{stdout}");
    assert!(
        stdout.contains("collectors.d/host.yml: type host, path servers.testhost, every 10s"),
        "{stdout}"
    );
    assert!(stdout.contains("(disabled)"), "{stdout}");
    assert!(stdout.ends_with("configuration OK\n"), "{stdout}");
}

#[test]
fn check_prints_the_spool_dir_default_or_set() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "collector.yml", GLOBAL);
    write(tmp.path(), "collectors.d/host.yml", "type: host\n");
    let state = tmp.path().join("state");
    let out = Command::new(BIN)
        .arg("check")
        .current_dir(tmp.path())
        .env("XDG_STATE_HOME", &state)
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // SAFETY: geteuid has no preconditions.
    let want = if unsafe { libc::geteuid() } == 0 {
        "/var/lib/carbide/spool".to_string()
    } else {
        state.join("carbide/spool").display().to_string()
    };
    assert!(
        stdout.contains(&format!("  spool: {want} (default)\n")),
        "{stdout}"
    );

    write(
        tmp.path(),
        "etc/collector.yml",
        &format!("{GLOBAL}sender:\n  spool_dir: my-spool\n"),
    );
    let out = run(
        tmp.path(),
        &[
            "check",
            "--config",
            "etc/collector.yml",
            "--collectors-dir",
            "collectors.d",
        ],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        stdout.contains("  spool: etc/my-spool\n"),
        "relative to the global file: {stdout}"
    );
}

fn assert_well_formed(stdout: &str, prefix: &str) -> usize {
    let mut n = 0;
    for line in stdout.lines() {
        let parsed = graphite::protocol::parse_line(line.as_bytes())
            .unwrap_or_else(|e| panic!("bad line {line:?}: {e}"));
        assert!(parsed.path.starts_with(prefix), "{line}");
        n += 1;
    }
    n
}

#[test]
fn once_prints_well_formed_lines() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "collector.yml", GLOBAL);
    write(tmp.path(), "collectors.d/host.yml", "type: host\n");
    let out = run(tmp.path(), &["--once"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let n = assert_well_formed(&stdout, "servers.testhost.");
    assert!(n > 0, "no lines");
    // Diamond's layout: host metrics sit right under the host name.
    assert!(stdout.contains("servers.testhost.loadavg.01 "), "{stdout}");
    assert!(!stdout.contains("servers.testhost.host."), "{stdout}");
}

#[test]
fn test_runs_one_instance_by_stem_or_type() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "collector.yml", GLOBAL);
    write(tmp.path(), "collectors.d/host.yml", "type: host\n");
    write(
        tmp.path(),
        "collectors.d/other.yml",
        "type: host\npath: other\nwhitelist: [\"^loadavg\\\\.\"]\n",
    );
    let out = run(tmp.path(), &["test", "other"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let n = assert_well_formed(&stdout, "servers.testhost.other.loadavg.");
    assert!(n > 0, "whitelisted lines expected:\n{stdout}");

    let out = run(tmp.path(), &["test", "host"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(assert_well_formed(&text(&out.stdout), "servers.testhost.") > 0);

    let out = run(tmp.path(), &["test", "nosuch"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no collector instance named \"nosuch\" (available: host (type host), other (type host))"),
        "{}",
        text(&out.stderr)
    );
}

/// Receiver on 127.0.0.1:0 storing every line it gets, over any number of connections.
struct Receiver {
    port: u16,
    lines: Arc<Mutex<Vec<String>>>,
    readers: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start() -> Receiver {
        use tokio::io::AsyncBufReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let readers = Arc::new(Mutex::new(Vec::new()));
        let (l, r) = (lines.clone(), readers.clone());
        let accept = tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let l = l.clone();
                r.lock().unwrap().push(tokio::spawn(async move {
                    let mut rd = tokio::io::BufReader::new(sock).lines();
                    while let Ok(Some(line)) = rd.next_line().await {
                        l.lock().unwrap().push(line);
                    }
                }));
            }
        });
        Receiver {
            port,
            lines,
            readers,
            accept,
        }
    }

    fn count(&self, prefix: &str) -> usize {
        let lines = self.lines.lock().unwrap();
        lines.iter().filter(|l| l.starts_with(prefix)).count()
    }

    /// Wait (polling) until `prefix` has more than `n` lines; gives up after a generous bound
    /// so a broken agent fails the test instead of hanging it.
    async fn wait_more(&self, prefix: &str, n: usize) {
        for _ in 0..300 {
            if self.count(prefix) > n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no new lines for {prefix} (have {})", self.count(prefix));
    }

    /// After the agent exited: read every connection to its end.
    async fn finish(self) -> Vec<String> {
        self.accept.abort();
        let readers = std::mem::take(&mut *self.readers.lock().unwrap());
        for r in readers {
            tokio::time::timeout(Duration::from_secs(30), r)
                .await
                .expect("connection not closed after the agent exited")
                .unwrap();
        }
        let lines = self.lines.lock().unwrap();
        lines.clone()
    }
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: sending a signal to our own child process.
    let rc = unsafe { libc::kill(pid as i32, sig) };
    assert_eq!(rc, 0, "kill failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_without_loss_and_sigterm_flushes() {
    let rx = Receiver::start().await;
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "collector.yml",
        &format!(
            "hostname_method: fixed\nhostname: h\ninterval: 1s\nsender:\n  destinations: [\"127.0.0.1:{}\"]\n  spool_dir: spool\n",
            rx.port
        ),
    );
    write(tmp.path(), "collectors.d/a.yml", "type: host\npath: a\n");
    let mut child = Command::new(BIN)
        .args(["--log-level", "info,collector=debug"])
        .current_dir(tmp.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        let mut s = String::new();
        stderr.read_to_string(&mut s).unwrap();
        s
    });
    let pid = child.id();

    rx.wait_more("servers.h.a.", 0).await;
    rx.wait_more("servers.h.carbide.collector.a.runs ", 0).await;

    // A bad file: the reload is refused and `a` keeps running.
    write(tmp.path(), "collectors.d/bad.yml", "type: hosst\n");
    signal(pid, libc::SIGHUP);
    rx.wait_more("servers.h.carbide.collector.agent.reload_errors 1 ", 0)
        .await;
    let a_before = rx.count("servers.h.a.");
    rx.wait_more("servers.h.a.", a_before).await;
    assert_eq!(rx.count("servers.h.b."), 0);

    // A good change: `b` appears, `a` keeps going.
    std::fs::remove_file(tmp.path().join("collectors.d/bad.yml")).unwrap();
    write(tmp.path(), "collectors.d/b.yml", "type: host\npath: b\n");
    signal(pid, libc::SIGHUP);
    rx.wait_more("servers.h.b.", 0).await;
    let a_before = rx.count("servers.h.a.");
    rx.wait_more("servers.h.a.", a_before).await;

    signal(pid, libc::SIGTERM);
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    let log = log.join().unwrap();
    assert_eq!(status.code(), Some(0), "{log}");
    let lines = rx.finish().await;

    // Zero loss: every line the agent handed to its sender reached the receiver.
    let submitted: usize = log
        .lines()
        .find_map(|l| l.split("lines_submitted=").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no lines_submitted in the log:\n{log}"));
    assert_eq!(lines.len(), submitted, "{log}");
    for line in &lines {
        graphite::protocol::parse_line(line.as_bytes())
            .unwrap_or_else(|e| panic!("bad line {line:?}: {e}"));
    }
    assert!(log.contains("unknown collector type \"hosst\""), "{log}");
    assert!(log.contains("configuration reload failed"), "{log}");
    assert!(log.contains("configuration reloaded"), "{log}");
    // `a` was kept (not restarted) by the good reload
    assert!(log.contains("kept=1 started=1 stopped=0"), "{log}");
}

/// `${NAME}` in the global file and in a collector file comes from the environment; a
/// default applies when the variable is unset.
#[test]
fn env_values_are_substituted() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "collector.yml",
        "hostname_method: fixed\nhostname: ${CARBIDE_TEST_HOST}\ninterval: ${CARBIDE_TEST_UNSET_INTERVAL:-7s}\n",
    );
    write(
        tmp.path(),
        "collectors.d/host.yml",
        "type: host\npath: ${CARBIDE_TEST_PATH}\n",
    );
    let out = Command::new(BIN)
        .arg("check")
        .current_dir(tmp.path())
        .env("CARBIDE_TEST_HOST", "envhost")
        .env("CARBIDE_TEST_PATH", "from.env")
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        stdout.contains("path servers.envhost.from.env, every 7s"),
        "{stdout}"
    );
}

/// A second agent on the same spool directory is refused with a message naming the agent
/// that holds it (its pid and command line, written into the spool's lock file).
#[test]
fn second_agent_on_one_spool_names_the_holder() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    // Nothing listens on port 1: the first agent keeps its lines in the spool.
    write(
        d,
        "collector.yml",
        "hostname_method: fixed\nhostname: h\nsender:\n  destinations: [\"127.0.0.1:1\"]\n  spool_dir: spool\n",
    );
    write(d, "collectors.d/host.yml", "type: host\ninterval: 1s\n");
    let mut first = Command::new(BIN)
        .current_dir(d)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lock = d.join("spool/127.0.0.1_1/lock");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let want = format!("pid {}: ", first.id());
    while !std::fs::read_to_string(&lock).is_ok_and(|t| t.starts_with(&want)) {
        assert!(
            std::time::Instant::now() < deadline,
            "the first agent did not take its spool"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = Command::new(BIN).current_dir(d).output().unwrap();
    let _ = first.kill();
    let _ = first.wait();
    let err = text(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("is in use by another sender (pid ") && err.contains(&want),
        "{err}"
    );
    assert!(err.contains(BIN), "the holder's command line: {err}");
}
