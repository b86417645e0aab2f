//! The `postgres` and `mysql` collectors against the PostgreSQL and MariaDB servers of
//! `tests/services/sql-up.sh` (tests/run starts them; `eval "$(tests/services/sql-up.sh)"`
//! sets CARBIDE_TEST_PG_DSN and CARBIDE_TEST_MYSQL_DSN). Every metric in the docs page's
//! "Metrics" table appears in the agent's output, with plausible values while the test runs
//! queries through the servers' own command-line clients.

mod service_kit;

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use service_kit::*;

/// Runs `load` over and over on a thread until dropped.
struct Load(Arc<AtomicBool>, Option<std::thread::JoinHandle<()>>);

impl Load {
    fn start(mut load: impl FnMut() + Send + 'static) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let t = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                load();
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        Load(stop, Some(t))
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
        if let Some(t) = self.1.take() {
            let _ = t.join();
        }
    }
}

/// Like `services.rs`' wait: every documented metric (`<db>` standing for `db`), except
/// `except`, and `ok` on the latest values.
fn wait_for(
    rx: &Receiver,
    kind: &str,
    db: &str,
    prefix: &str,
    except: &[&str],
    ok: impl Fn(&BTreeMap<String, f64>) -> bool,
) -> BTreeMap<String, f64> {
    let names: Vec<String> = documented(kind)
        .into_iter()
        .map(|n| n.replace("<db>", db))
        .filter(|n| !except.contains(&n.as_str()))
        .collect();
    wait_latest(
        rx,
        prefix,
        &format!("{kind}: every metric of {names:?}"),
        |m| names.iter().all(|n| m.contains_key(n)) && ok(m),
    )
}

#[test]
fn postgres_server_statistics() {
    let dsn = test_dsn("CARBIDE_TEST_PG_DSN");
    let db = dsn.rsplit('/').next().unwrap().to_string();
    let rx = Receiver::start();
    // The DSN reaches the agent through its environment (dsn_env), as documented.
    std::env::set_var("CARBIDE_PG_DSN", &dsn);
    let (_tmp, agent) = agent_with(
        &rx,
        "postgres",
        "type: postgres\ndsn_env: CARBIDE_PG_DSN\ninterval: 1s\n",
    );
    let psql_dsn = dsn.clone();
    // Committed transactions (each statement of -c in autocommit) and one session held
    // idle in a transaction for the connection-state gauges.
    let _load = Load::start(move || {
        let out = Command::new("psql")
            .args([
                &psql_dsn,
                "-qAt",
                "-c",
                "SELECT 1",
                "-c",
                "SELECT count(*) FROM pg_class",
                "-c",
                "SELECT 2",
            ])
            .output()
            .expect("psql (postgresql-client)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
    let mut idle_tx = Command::new("psql")
        .args([&dsn, "-qAt", "-c", "BEGIN; SELECT pg_sleep(30)"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let m = wait_for(
        &rx,
        "postgres",
        &db,
        &format!("{HOST}.postgres."),
        &["replication.replay_lag_seconds"],
        |m| {
            m.get(&format!("database.{db}.xact_commit"))
                .is_some_and(|&v| v > 1.0)
                && m.get("connections.active").is_some_and(|&v| v >= 1.0)
        },
    );
    let _ = idle_tx.kill();
    let _ = idle_tx.wait();
    assert!(m[&format!("database.{db}.size")] > 1_000_000.0, "{m:?}");
    assert!(m[&format!("database.{db}.blks_hit")] > 0.0, "{m:?}");
    assert!(m[&format!("database.{db}.tup_returned")] > 0.0, "{m:?}");
    assert!(m["connections.max"] >= 10.0, "{m:?}");
    assert!(m["connections.total"] >= 1.0, "{m:?}");
    assert!(m["longest_running.query"] >= 0.0, "{m:?}");
    assert_eq!(m["replication.standby"], 0.0);
    assert_eq!(m["replication.replicas"], 0.0);
    let log = agent.stop();
    assert!(!log.contains("WARN"), "{log}");
    assert!(!log.contains("Carbide-s3cret"), "{log}");
}

#[test]
fn postgres_down_fails_with_a_redacted_message() {
    let port = closed_port();
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "collector.yml", &global(closed_port()));
    write(
        tmp.path(),
        "collectors.d/pg.yml",
        &format!("type: postgres\ndsn: postgres://u:hunter2pw@127.0.0.1:{port}/x\ninterval: 10s\n"),
    );
    let out = run(tmp.path(), &["test", "pg"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("pg_stat_database: cannot connect to postgres://u:***@127.0.0.1"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2pw"), "{stderr}");
}

#[test]
fn mysql_server_statistics() {
    let dsn = test_dsn("CARBIDE_TEST_MYSQL_DSN");
    // mysql://user:password@host:port/db, for the mariadb client's options
    let rest = dsn.strip_prefix("mysql://").unwrap();
    let (userinfo, hostpart) = rest.split_once('@').unwrap();
    let (user, password) = userinfo.split_once(':').unwrap();
    let (hostport, db) = hostpart.split_once('/').unwrap();
    let (host, port) = hostport.split_once(':').unwrap();
    let client_args: Vec<String> = [
        "--no-defaults",
        "-h",
        host,
        "-P",
        port,
        "-u",
        user,
        &format!("-p{password}"),
        db,
        "-e",
        "SELECT 1; SELECT 2; SELECT COUNT(*) FROM information_schema.tables",
    ]
    .map(String::from)
    .to_vec();
    let rx = Receiver::start();
    let (_tmp, agent) = agent_with(
        &rx,
        "mysql",
        &format!("type: mysql\ndsn: {dsn}\ninterval: 1s\n"),
    );
    let _load = Load::start(move || {
        let out = Command::new("mariadb")
            .args(&client_args)
            .output()
            .expect("mariadb client");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
    let m = wait_for(&rx, "mysql", db, &format!("{HOST}.mysql."), &[], |m| {
        m.get("status.Com_select").is_some_and(|&v| v > 1.0)
            && m.get("status.Connections").is_some_and(|&v| v > 0.0)
    });
    assert!(m["status.Threads_connected"] >= 1.0, "{m:?}");
    assert!(m["status.Uptime"] >= 1.0, "{m:?}");
    assert!(m["status.Questions"] > 1.0, "{m:?}");
    assert!(m["status.Innodb_buffer_pool_pages_total"] > 0.0, "{m:?}");
    assert!(m["variables.max_connections"] >= 10.0, "{m:?}");
    // sql-up.sh starts MariaDB with a 32 MiB buffer pool
    assert_eq!(
        m["variables.innodb_buffer_pool_size"],
        32.0 * 1024.0 * 1024.0
    );
    let log = agent.stop();
    assert!(!log.contains("WARN"), "{log}");
    assert!(!log.contains(password), "{log}");
}

/// The agent's SQL collectors (`postgres`, `mysql`, `sql`) say what a connection error is —
/// refused, authentication, unknown database — from one direct connection made while their
/// pool holds none, as `sql-to-graphite` does, rather than "pool timed out" after the pool's
/// acquire timeout.
#[test]
fn connection_errors_say_what_happened() {
    let pg = test_dsn("CARBIDE_TEST_PG_DSN");
    let my = test_dsn("CARBIDE_TEST_MYSQL_DSN");
    let wrong = |dsn: &str| {
        let (userinfo, _) = dsn.rsplit_once('@').unwrap();
        let (_, pw) = userinfo.rsplit_once(':').unwrap();
        dsn.replacen(&format!(":{pw}@"), ":Wr0ng-Secret-Value@", 1)
    };
    let other_db = |dsn: &str| format!("{}/no_such_database", dsn.rsplit_once('/').unwrap().0);
    let refused = |scheme: &str| format!("{scheme}://carbide:x@127.0.0.1:{}/db", closed_port());
    let pg_refused = refused("postgres");
    let my_refused = refused("mysql");
    let cases = [
        (
            "postgres",
            pg_refused.clone(),
            "connection refused: nothing listens at that host and port",
        ),
        (
            "postgres",
            other_db(&pg),
            "unknown database: database \"no_such_database\" does not exist",
        ),
        (
            "postgres",
            wrong(&pg),
            "authentication failed: password authentication failed",
        ),
        (
            "mysql",
            my_refused.clone(),
            "connection refused: nothing listens at that host and port",
        ),
        (
            "mysql",
            other_db(&my),
            "no access to that database (or it does not exist): Access denied",
        ),
        ("mysql", wrong(&my), "authentication failed: Access denied"),
        (
            "sql",
            pg_refused,
            "connection refused: nothing listens at that host and port",
        ),
        (
            "sql",
            other_db(&pg),
            "unknown database: database \"no_such_database\" does not exist",
        ),
        ("sql", wrong(&my), "authentication failed: Access denied"),
    ];
    for (kind, dsn, want) in cases {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "collector.yml", &global(closed_port()));
        let queries = match kind {
            "sql" => "queries:\n  - name: one\n    query: SELECT 1\n",
            _ => "",
        };
        write(
            tmp.path(),
            "collectors.d/db.yml",
            &format!("type: {kind}\ndsn: {dsn}\ninterval: 10s\n{queries}"),
        );
        let out = run(tmp.path(), &["test", "db"]);
        let stderr = text(&out.stderr);
        let what = format!("{kind} {want:?}");
        assert_eq!(out.status.code(), Some(1), "{what}: {stderr}");
        assert!(stderr.contains("cannot connect to "), "{what}: {stderr}");
        assert!(stderr.contains(want), "{what}: {stderr}");
        assert!(!stderr.contains("pool timed out"), "{what}: {stderr}");
        assert!(!stderr.contains("Wr0ng-Secret-Value"), "{what}: {stderr}");
    }
}
