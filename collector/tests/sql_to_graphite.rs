//! The real `sql-to-graphite` binary (and `collector test sql`) against real PostgreSQL,
//! MariaDB and SQLite, sending to a real TCP receiver that parses every line with the shared
//! line protocol. PostgreSQL and MariaDB come from `tests/services/sql-up.sh`, which exports
//! CARBIDE_TEST_PG_DSN and CARBIDE_TEST_MYSQL_DSN.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use graphite::protocol::parse_line;

const BIN: &str = env!("CARGO_BIN_EXE_sql-to-graphite");
const COLLECTOR: &str = env!("CARGO_BIN_EXE_collector");

fn env_dsn(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!(
            "{var} is not set: start the test databases with `eval \"$(tests/services/sql-up.sh)\"` (tests/run does this)"
        )
    })
}

fn pg() -> String {
    env_dsn("CARBIDE_TEST_PG_DSN")
}

fn mysql() -> String {
    env_dsn("CARBIDE_TEST_MYSQL_DSN")
}

/// The password inside `scheme://user:password@host…` (the server DSNs have one).
fn password(dsn: &str) -> String {
    let pw = dsn
        .split_once("://")
        .and_then(|(_, rest)| rest.rsplit_once('@'))
        .and_then(|(userinfo, _)| userinfo.split_once(':'))
        .map(|(_, pw)| pw.to_string())
        .unwrap_or_else(|| panic!("the test DSN has no password; sql-up.sh sets one"));
    assert!(pw.len() >= 6, "test DSNs need a real password");
    pw
}

/// A carbon stand-in: accepts connections on 127.0.0.1:0 and keeps every line it receives.
struct Receiver {
    port: u16,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let keep = lines.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let keep = keep.clone();
                std::thread::spawn(move || {
                    for line in BufReader::new(conn).lines() {
                        let Ok(line) = line else { break };
                        keep.lock().unwrap().push(line);
                    }
                });
            }
        });
        Receiver { port, lines }
    }

    /// Wait (bounded) until `enough` says the received lines are complete; return them.
    fn wait_for(&self, enough: impl Fn(&[String]) -> bool) -> Vec<String> {
        let give_up = Instant::now() + Duration::from_secs(60);
        loop {
            let lines = self.lines.lock().unwrap().clone();
            if enough(&lines) || Instant::now() > give_up {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Parse lines with the shared protocol: `(path, value, timestamp)`.
fn parsed(lines: &[String]) -> Vec<(String, f64, i64)> {
    lines
        .iter()
        .map(|l| {
            let p = parse_line(l.as_bytes()).unwrap_or_else(|e| panic!("{l:?}: {e}"));
            (p.path.to_string(), p.value, p.timestamp)
        })
        .collect()
}

/// Run the binary; unless `args` choose a spool, it gets a fresh one of its own (the default,
/// a state directory, would be shared by every test).
fn run(dsn: &str, args: &[&str], stdin: &str) -> Output {
    run_in(None, dsn, args, stdin)
}

/// [`run`] in the working directory `dir`.
fn run_in(dir: Option<&Path>, dsn: &str, args: &[&str], stdin: &str) -> Output {
    let spool = tempfile::tempdir().unwrap();
    let own = !args
        .iter()
        .any(|a| *a == "--spool-dir" || *a == "--no-spool");
    let mut cmd = Command::new(BIN);
    if own {
        cmd.arg("--spool-dir").arg(spool.path());
    }
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    let mut child = cmd
        .args(args)
        .env("S2G_DSN", dsn)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn assert_no_secret(out: &Output, dsn: &str) {
    if dsn.starts_with("sqlite:") {
        return;
    }
    let pw = password(dsn);
    for (what, s) in [("stdout", text(&out.stdout)), ("stderr", text(&out.stderr))] {
        assert!(!s.contains(&pw), "password leaked on {what}: {s}");
    }
}

/// The original CLI against one database: queries on stdin, a failing one among them, every
/// kind of value; lines arrive at the receiver, are echoed on stdout, share one integer
/// timestamp; the exit code says a query failed.
fn original_cli(dsn: &str, queries: &str, want: &[(&str, f64)], warnings: &[&str], error: &str) {
    let rx = Receiver::start();
    let port = rx.port.to_string();
    let out = run(
        dsn,
        &[
            "--graphite-host",
            "127.0.0.1",
            "--graphite-port",
            &port,
            "--graphite-prefix",
            "biz.db",
        ],
        queries,
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "a query failed: {stderr}");
    let lines = rx.wait_for(|l| l.len() >= want.len());
    let got = parsed(&lines);
    let names: Vec<(&str, f64)> = got.iter().map(|(p, v, _)| (p.as_str(), *v)).collect();
    assert_eq!(names, want, "{stderr}");
    let stamps: BTreeSet<i64> = got.iter().map(|g| g.2).collect();
    assert_eq!(stamps.len(), 1, "one timestamp per run: {lines:?}");
    let echoed: Vec<String> = text(&out.stdout).lines().map(String::from).collect();
    assert_eq!(echoed, lines, "every line is echoed on stdout");
    for w in warnings {
        assert!(stderr.contains(w), "missing warning {w:?} in {stderr}");
    }
    assert!(
        stderr.contains(error),
        "missing error {error:?} in {stderr}"
    );
    assert_no_secret(&out, dsn);
}

const VALUES_COMMON: &str = "SELECT 'ints', 42, 'extra column ignored'
-- a comment, then a blank line

SELECT 'floats', 2.5e0;
SELECT 'null', NULL
SELECT 'text', 'abc'
SELECT 'numeric.text', '17'
SELECT no_such_column
SELECT 'weird name/x y', 1
SELECT 'after.failure', 7
";

#[test]
fn original_cli_postgres() {
    let queries = format!(
        "{VALUES_COMMON}SELECT 'decimal', 123.450::numeric(10,3)\nSELECT 'bool', true\nSELECT 'bool.f', false\nSELECT 'datetime', now()\nSELECT 'big', 12345678901::bigint\nSELECT 'small', 3::smallint\nSELECT 'real', 0.5::real\nSELECT 'rows.' || x, x * 10 FROM generate_series(1, 2) AS x\n"
    );
    original_cli(
        &pg(),
        &queries,
        &[
            ("biz.db.ints", 42.0),
            ("biz.db.floats", 2.5),
            ("biz.db.numeric.text", 17.0),
            ("biz.db.weird_name_x_y", 1.0),
            ("biz.db.after.failure", 7.0),
            ("biz.db.decimal", 123.45),
            ("biz.db.bool", 1.0),
            ("biz.db.bool.f", 0.0),
            ("biz.db.big", 12345678901.0),
            ("biz.db.small", 3.0),
            ("biz.db.real", 0.5),
            ("biz.db.rows.1", 10.0),
            ("biz.db.rows.2", 20.0),
        ],
        &[
            "query line 5: row 1 (null): the value is NULL; skipped",
            "query line 6: row 1 (text): the value is non-numeric text \"abc\"; skipped",
            "query line 14: row 1 (datetime): the value is a non-numeric TIMESTAMPTZ value; skipped",
        ],
        "query line 8 failed: SELECT no_such_column: column \"no_such_column\" does not exist",
    );
}

#[test]
fn original_cli_mariadb() {
    // mariadb:// selects the MySQL driver, like mysql://.
    let dsn = mysql().replacen("mysql://", "mariadb://", 1);
    let queries = format!(
        "{VALUES_COMMON}SELECT 'decimal', CAST(123.45 AS DECIMAL(10,3))\nSELECT 'bool', TRUE\nSELECT 'sum', SUM(x) FROM (SELECT 1 AS x UNION ALL SELECT 2) t\nSELECT 'datetime', NOW()\nSELECT 'unsigned', CAST(18446744073709551615 AS UNSIGNED)\n"
    );
    original_cli(
        &dsn,
        &queries,
        &[
            ("biz.db.ints", 42.0),
            ("biz.db.floats", 2.5),
            ("biz.db.numeric.text", 17.0),
            ("biz.db.weird_name_x_y", 1.0),
            ("biz.db.after.failure", 7.0),
            ("biz.db.decimal", 123.45),
            ("biz.db.bool", 1.0),
            ("biz.db.sum", 3.0),
            ("biz.db.unsigned", 18446744073709551615.0),
        ],
        &[
            "query line 5: row 1 (null): the value is NULL; skipped",
            "query line 14: row 1 (datetime): the value is a non-numeric DATETIME value; skipped",
        ],
        "query line 8 failed: SELECT no_such_column: Unknown column 'no_such_column'",
    );
}

#[test]
fn original_cli_sqlite() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("shop.db");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::{Connection, Executor};
        let url = format!("sqlite://{}?mode=rwc", file.display());
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        c.execute(
            "CREATE TABLE orders (status TEXT, total REAL, paid BOOLEAN, created TEXT);
             INSERT INTO orders VALUES ('new', 10.5, 0, '2024-01-01'), ('new', 2, 1, NULL), ('paid', 1, 1, '2024-01-02');",
        )
        .await
        .unwrap();
        c.close().await.unwrap();
    });
    let dsn = format!("sqlite://{}", file.display());
    let queries =
        "SELECT 'orders.' || status, SUM(total) FROM orders GROUP BY status ORDER BY status
SELECT 'paid', paid FROM orders WHERE status = 'paid'
SELECT 'created', created FROM orders WHERE status = 'paid'
SELECT 'nothing', NULL
DELETE FROM orders
SELECT 'count', COUNT(*) FROM orders
";
    original_cli(
        &dsn,
        queries,
        &[
            ("biz.db.orders.new", 12.5),
            ("biz.db.orders.paid", 1.0),
            ("biz.db.paid", 1.0),
            ("biz.db.count", 3.0),
        ],
        &[
            "query line 3: row 1 (created): the value is non-numeric text \"2024-01-02\"; skipped",
            "query line 4: row 1 (nothing): the value is NULL; skipped",
        ],
        "query line 5 failed: DELETE FROM orders: attempt to write a readonly database",
    );
}

#[test]
fn queries_run_read_only() {
    for dsn in [pg(), mysql()] {
        let out = run(
            &dsn,
            &["--dry-run"],
            "CREATE TABLE carbide_must_not_exist (i int)\nSELECT 'ok', 1\nSELECT 'two', 2; DROP TABLE carbide_must_not_exist\n",
        );
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("query line 1 failed"), "{stderr}");
        // One statement per query: a second one is refused, not run.
        assert!(stderr.contains("query line 3 failed"), "{stderr}");
        assert!(!text(&out.stdout).contains("two"), "{}", text(&out.stdout));
        assert!(stderr.to_ascii_lowercase().contains("read"), "{stderr}");
        assert!(
            text(&out.stdout).starts_with("db.ok 1 "),
            "{}",
            text(&out.stdout)
        );
        assert_no_secret(&out, &dsn);
    }
}

#[test]
fn statement_timeout_is_enforced_by_the_server() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("q.yml");
    let cases = [
        (
            pg(),
            "SELECT 'slow', 1 FROM pg_sleep(20)",
            "statement timeout",
        ),
        (
            mysql(),
            "SELECT 'slow', SLEEP(20) FROM (SELECT 1) t",
            "max_statement_time",
        ),
    ];
    for (dsn, sql, want) in cases {
        std::fs::write(
            &f,
            format!("queries:\n- name: slow\n  query: \"{sql}\"\n  timeout: 1s\n- name: fine\n  query: SELECT 5\n"),
        )
        .unwrap();
        let out = run(&dsn, &["--dry-run", "--queries", f.to_str().unwrap()], "");
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("query slow failed") && stderr.contains(want),
            "{stderr}"
        );
        assert!(
            text(&out.stdout).starts_with("db.fine 5 "),
            "{}",
            text(&out.stdout)
        );
    }
}

#[test]
fn yaml_queries_dry_run_maps_columns() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("q.yml");
    std::fs::write(
        &f,
        r#"queries:
  - name: orders.by_status
    query: >
      SELECT * FROM (VALUES ('new', 2, 9.5), ('paid', 5, NULL)) AS t(status, n, "total sum")
    name_column: status
  - name: orders.pending
    prefix: shop
    query: SELECT count(*) FROM (VALUES (1), (2), (3)) AS t(x);
  - name: picked
    query: SELECT 'a' AS who, 1 AS one, 2 AS two
    name_column: who
    value_columns: [two]
"#,
    )
    .unwrap();
    let out = run(&pg(), &["--dry-run", "--queries", f.to_str().unwrap()], "");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let lines: Vec<String> = text(&out.stdout).lines().map(String::from).collect();
    let got: Vec<(String, f64)> = parsed(&lines).into_iter().map(|(p, v, _)| (p, v)).collect();
    let want = [
        ("db.orders.by_status.new.n", 2.0),
        ("db.orders.by_status.new.total_sum", 9.5),
        ("db.orders.by_status.paid.n", 5.0),
        ("shop.orders.pending", 3.0),
        ("db.picked.a", 2.0),
    ];
    let want: Vec<(String, f64)> = want.iter().map(|(p, v)| (p.to_string(), *v)).collect();
    assert_eq!(got, want);
    assert!(
        stderr.contains("query orders.by_status: row 2 (orders.by_status.paid.total_sum): column \"total sum\" is NULL; skipped"),
        "{stderr}"
    );
}

#[test]
fn usage_errors_are_one_line() {
    let out = Command::new(BIN)
        .env_remove("S2G_DSN")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("S2G_DSN is not set"), "{stderr}");

    let out = run(&pg(), &[], "SELECT 'a', 1\n");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--graphite-host or --config is required"));

    // --config: the sender's own checks, at the file's position, before any query runs.
    let tmp = tempfile::tempdir().unwrap();
    let c = tmp.path().join("collector.yml");
    std::fs::write(
        &c,
        "interval: 10s\nsender:\n  destinations: [\"127.0.0.1:2003\"]\n  placement: carbon_chh\n",
    )
    .unwrap();
    let out = run(&pg(), &["--config", c.to_str().unwrap()], "SELECT 'a', 1\n");
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("collector.yml:4:"), "{stderr}");
    assert!(stderr.contains("carbon_ch"), "{stderr}");

    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("q.yml");
    std::fs::write(&f, "queries:\n- name: a\n  query: SELECT 1\n").unwrap();
    let out = run(&pg(), &["--dry-run", "--schedule", f.to_str().unwrap()], "");
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("q.yml:2:3: query \"a\" has no `schedule:`"),
        "{stderr}"
    );
}

#[test]
fn wrong_password_is_redacted() {
    let dsn = pg();
    let bad = dsn.replacen(&password(&dsn), "Wr0ng-Secret-Value", 1);
    let out = run(&bad, &["--dry-run"], "SELECT 'a', 1\n");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot connect to postgres://carbide:***@"),
        "{stderr}"
    );
    assert!(
        stderr.contains("password authentication failed"),
        "{stderr}"
    );
    assert!(!stderr.contains("Wr0ng-Secret-Value"), "{stderr}");
    assert_no_secret(&out, &dsn);
}

/// Send SIGTERM and collect the output.
fn terminate(child: std::process::Child) -> Output {
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    child.wait_with_output().unwrap()
}

#[test]
fn schedule_fires_and_never_overlaps_a_query() {
    let dsn = pg();
    let rx = Receiver::start();
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("q.yml");
    std::fs::write(
        &f,
        r#"queries:
  - name: fast
    query: SELECT 1
    schedule: "* * * * * *"
  - name: slow
    query: SELECT 2 FROM pg_sleep(2.5)
    schedule: "* * * * * *"
    timeout: 10s
"#,
    )
    .unwrap();
    let child = Command::new(BIN)
        .args(["--graphite-host", "127.0.0.1", "--graphite-port"])
        .arg(rx.port.to_string())
        .args(["--schedule", f.to_str().unwrap()])
        .arg("--spool-dir")
        .arg(tmp.path().join("spool"))
        .env("S2G_DSN", &dsn)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let count = |lines: &[String], name: &str| {
        parsed(lines)
            .into_iter()
            .filter(|(p, _, _)| p == name)
            .count()
    };
    let lines = rx.wait_for(|l| count(l, "db.slow") >= 2 && count(l, "db.fast") >= 4);
    let out = terminate(child);
    let stderr = text(&out.stderr);
    let got = parsed(&lines);
    let stamps =
        |name: &str| -> Vec<i64> { got.iter().filter(|g| g.0 == name).map(|g| g.2).collect() };
    let (fast, slow) = (stamps("db.fast"), stamps("db.slow"));
    assert!(fast.len() >= 4 && slow.len() >= 2, "{lines:?}\n{stderr}");
    // Each run is stamped with its own fire time: strictly increasing, never repeated.
    assert!(fast.windows(2).all(|w| w[0] < w[1]), "{fast:?}");
    assert!(slow.windows(2).all(|w| w[0] < w[1]), "{slow:?}");
    // The slow query cannot run every second: its overlapping fires were skipped and counted.
    assert!(
        stderr.contains(
            "query slow: the previous run is still going; skipped this one (1 skipped so far)"
        ),
        "{stderr}"
    );
    // Skipping is per query: the fast one keeps firing while the slow one runs (a fire of
    // its own may be skipped too when a loaded machine makes `SELECT 1` outlast a second, so
    // that is not asserted).
    assert!(
        fast.iter().any(|t| slow[0] < *t && *t < slow[1]),
        "no fast run between the slow runs at {slow:?}: {fast:?}\n{stderr}"
    );
    assert!(got
        .iter()
        .all(|g| g.1 == if g.0 == "db.fast" { 1.0 } else { 2.0 }));
    assert_no_secret(&out, &dsn);
}

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
fn sql_collector_through_collector_test() {
    let dsn = mysql();
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "collector.yml",
        "hostname_method: fixed\nhostname: testhost\n",
    );
    write(
        tmp.path(),
        "collectors.d/shop.yml",
        r#"type: sql
dsn_env: CARBIDE_TEST_SHOP_DSN
path: business
queries:
  - name: orders
    query: SELECT 'new' AS status, 2 AS n UNION ALL SELECT 'paid', 5
    name_column: status
  - name: broken
    query: SELECT nope
  - name: nothing
    query: SELECT NULL
"#,
    );
    let out = Command::new(COLLECTOR)
        .args(["test", "shop"])
        .current_dir(tmp.path())
        .env("CARBIDE_TEST_SHOP_DSN", &dsn)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    // The broken query fails the run (exit 1) but the others' lines are still printed.
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let lines: Vec<String> = text(&out.stdout).lines().map(String::from).collect();
    let got: Vec<(String, f64)> = parsed(&lines).into_iter().map(|(p, v, _)| (p, v)).collect();
    assert_eq!(
        got,
        [
            ("servers.testhost.business.orders.new".to_string(), 2.0),
            ("servers.testhost.business.orders.paid".to_string(), 5.0),
        ]
    );
    assert!(
        stderr.contains("query broken failed: Unknown column 'nope'"),
        "{stderr}"
    );
    assert!(
        stderr.contains("query nothing: row 1 (nothing): column"),
        "{stderr}"
    );
    assert_no_secret(&out, &dsn);
}

/// From cron, carbon down for two runs, then up: nothing is lost by default (the spool lives in
/// the user's state directory) and the third run delivers the backlog first, then its own
/// lines, before it exits.
#[test]
fn cron_runs_spool_by_default_and_drain_the_backlog_first() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("m.db");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::{Connection, Executor};
        let url = format!("sqlite://{}?mode=rwc", file.display());
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        c.execute("CREATE TABLE t (n INTEGER); INSERT INTO t VALUES (1), (2), (3);")
            .await
            .unwrap();
        c.close().await.unwrap();
    });
    let dsn = format!("sqlite://{}", file.display());
    // A port nobody listens on yet; carbon comes up on it for the third run.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let state = tmp.path().join("state");
    let home = tmp.path().join("home");
    let cron = |run: u32| {
        let mut child = Command::new(BIN)
            .args(["--graphite-host", "127.0.0.1", "--graphite-port"])
            .arg(port.to_string())
            .args(["--graphite-prefix", "cron"])
            .env("S2G_DSN", &dsn)
            .env("XDG_STATE_HOME", &state)
            .env("HOME", &home)
            .env_remove("RUST_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let q = format!("SELECT 'run{run}.n' || n, n FROM t ORDER BY n\n");
        child.stdin.take().unwrap().write_all(q.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    // SAFETY: geteuid has no preconditions.
    let spool = if unsafe { libc::geteuid() } == 0 {
        PathBuf::from("/var/lib/carbide/sql-to-graphite")
    } else {
        state.join("carbide/sql-to-graphite")
    };
    let dest = spool.join(format!("127.0.0.1_{port}"));
    // As root the default is the system's spool: whatever this test adds there goes when it
    // ends, passed or failed (directories it did not create stay).
    let _cleanup = RemoveOnDrop::new(&dest);
    let _ = std::fs::remove_dir_all(&dest);
    for run in 1..=2 {
        let out = cron(run);
        let err = text(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(0),
            "run {run}: spooled is success\n{err}"
        );
        assert!(err.contains("stay in the spool for the next run"), "{err}");
    }
    assert!(dest.is_dir(), "the default spool is {}", dest.display());
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let keep = lines.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let keep = keep.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(conn).lines() {
                    let Ok(line) = line else { break };
                    keep.lock().unwrap().push(line);
                }
            });
        }
    });
    let out = cron(3);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    // Everything arrived before the third run exited: the backlog first, in run order.
    let got: Vec<String> = parsed(&lines.lock().unwrap())
        .into_iter()
        .map(|(p, _, _)| p)
        .collect();
    let want: Vec<String> = (1..=3)
        .flat_map(|r| (1..=3).map(move |n| format!("cron.run{r}.n{n}")))
        .collect();
    assert_eq!(got, want, "{err}");
    assert!(
        err.contains("6 lines left by earlier runs delivered"),
        "{err}"
    );
}

/// Removes a directory when dropped, and those of its ancestors it had to create (only if
/// they are empty by then).
struct RemoveOnDrop {
    dir: PathBuf,
    created: Vec<PathBuf>,
}

impl RemoveOnDrop {
    fn new(dir: &Path) -> RemoveOnDrop {
        let created = dir
            .ancestors()
            .skip(1)
            .take_while(|a| !a.exists())
            .map(Path::to_path_buf)
            .collect();
        RemoveOnDrop {
            dir: dir.to_path_buf(),
            created,
        }
    }
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        for d in &self.created {
            let _ = std::fs::remove_dir(d); // fails (kept) unless empty
        }
    }
}

/// A connection error says what happened: refused, authentication, unknown database
/// (PostgreSQL and MariaDB), from the first direct connection rather than "pool timed out"
/// after the pool's acquire timeout.
#[test]
fn connection_errors_say_what_happened() {
    let pg = pg();
    let my = mysql();
    let (pg_base, _) = pg.rsplit_once('/').unwrap();
    let (my_base, _) = my.rsplit_once('/').unwrap();
    let cases = [
        (
            "postgres://carbide:x@127.0.0.1:1/db".to_string(),
            "connection refused: nothing listens at that host and port",
        ),
        (
            format!("{pg_base}/no_such_database"),
            "unknown database: database \"no_such_database\" does not exist",
        ),
        (
            pg.replacen(&password(&pg), "Wr0ng-Secret-Value", 1),
            "authentication failed: password authentication failed",
        ),
        (
            format!("{my_base}/no_such_database"),
            "no access to that database (or it does not exist): Access denied",
        ),
        (
            my.replacen(&password(&my), "Wr0ng-Secret-Value", 1),
            "authentication failed: Access denied",
        ),
    ];
    for (dsn, want) in cases {
        let out = run(&dsn, &["--dry-run"], "SELECT 'a', 1\n");
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("cannot connect to "), "{stderr}");
        assert!(stderr.contains(want), "want {want:?}:\n{stderr}");
        assert!(!stderr.contains("pool timed out"), "{stderr}");
        assert!(!stderr.contains("Wr0ng-Secret-Value"), "{stderr}");
    }
}

/// sqlx's short form `sqlite:shop.db` (a path relative to the working directory) is a DSN,
/// not "no scheme".
#[test]
fn sqlite_short_form_dsn() {
    let tmp = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::{Connection, Executor};
        let url = format!("sqlite://{}?mode=rwc", tmp.path().join("shop.db").display());
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        c.execute("CREATE TABLE t (v REAL); INSERT INTO t VALUES (4.5);")
            .await
            .unwrap();
        c.close().await.unwrap();
    });
    let out = run_in(
        Some(tmp.path()),
        "sqlite:shop.db",
        &["--no-spool", "--dry-run"],
        "SELECT 'v', v FROM t\n",
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains(".v 4.5 "), "{stdout}");
}

/// Both binaries of this crate log without ANSI escapes when stderr is not a terminal (a
/// pipe here, a file under systemd): `conf::logging`, the one log setup of every binary.
#[test]
fn logs_carry_no_ansi_escapes_off_a_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run_in(
        Some(tmp.path()),
        "sqlite:missing.db",
        &["--no-spool", "--dry-run", "--log-level", "debug"],
        "SELECT 'v', 1\n",
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("ERROR") || stderr.contains("DEBUG"),
        "{stderr}"
    );
    assert!(
        !stderr.contains('\x1b'),
        "ANSI escapes on a pipe: {stderr:?}"
    );

    let dir = tmp.path();
    std::fs::write(
        dir.join("collector.yml"),
        "hostname_method: fixed\nhostname: testhost\nsender:\n  destinations: [\"127.0.0.1:9\"]\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("collectors.d")).unwrap();
    std::fs::write(dir.join("collectors.d/host.yml"), "type: host\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_collector"))
        .args(["--log-level", "debug", "--once"])
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("DEBUG") || stderr.contains("INFO"),
        "{stderr}"
    );
    assert!(
        !stderr.contains('\x1b'),
        "ANSI escapes on a pipe: {stderr:?}"
    );
}
