//! The replication metrics of the `postgres` and `mysql` collectors against real replicas:
//! a PostgreSQL streaming standby made with `pg_basebackup` from the cluster of
//! `tests/services/sql-up.sh`, and a MariaDB source and replica started here, each in a
//! temporary directory on a free port. Both replicas apply with a delay (PostgreSQL's
//! `recovery_min_apply_delay`, MariaDB's `MASTER_DELAY`), so the lag the collectors report is
//! real lag, checked against what the servers themselves answer.

mod service_kit;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use service_kit::*;

/// The replicas apply each transaction this long after it committed.
const DELAY_S: f64 = 8.0;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

#[track_caller]
fn ok(out: std::io::Result<Output>, what: &str) -> String {
    let out = out.unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

// --- PostgreSQL ----------------------------------------------------------------------------

/// The newest `/usr/lib/postgresql/<v>/bin`.
fn pg_bin() -> PathBuf {
    let mut versions: Vec<u32> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server binaries (tests/run installs them)")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    versions.sort_unstable();
    PathBuf::from(format!(
        "/usr/lib/postgresql/{}/bin",
        versions.last().expect("a PostgreSQL version")
    ))
}

fn as_postgres(program: &Path) -> Command {
    let mut c = Command::new("runuser");
    c.args(["-u", "postgres", "--"]).arg(program);
    c
}

/// A streaming standby of the test cluster; stopped on drop.
struct PgStandby {
    dir: tempfile::TempDir,
    port: u16,
}

impl PgStandby {
    fn start(primary_port: &str) -> PgStandby {
        let sock = pg_socket();
        let dir = tempfile::tempdir().unwrap();
        ok(
            Command::new("chown")
                .arg("postgres:")
                .arg(dir.path())
                .output(),
            "chown",
        );
        let data = dir.path().join("data");
        // Over the primary's socket as the superuser (local replication is trusted).
        ok(
            as_postgres(&pg_bin().join("pg_basebackup"))
                .args(["-h", &sock, "-p", primary_port, "-U", "postgres", "-D"])
                .arg(&data)
                .args(["-R", "-X", "stream", "-c", "fast"])
                .output(),
            "pg_basebackup",
        );
        let port = free_port();
        ok(
            as_postgres(&pg_bin().join("pg_ctl"))
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(dir.path().join("server.log"))
                .args(["-w", "-o"])
                .arg(format!(
                    "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off \
                     -c recovery_min_apply_delay={}s",
                    dir.path().display(),
                    DELAY_S
                ))
                .arg("start")
                .output(),
            "pg_ctl start (standby)",
        );
        PgStandby { dir, port }
    }
}

impl Drop for PgStandby {
    fn drop(&mut self) {
        let _ = as_postgres(&pg_bin().join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "stop"])
            .output();
    }
}

/// `sql` as the superuser over the primary's socket (local connections are trusted).
fn psql_admin(port: &str, sql: &str) -> String {
    ok(
        as_postgres(Path::new("psql"))
            .args([
                "-h",
                &pg_socket(),
                "-p",
                port,
                "-U",
                "postgres",
                "-qAt",
                "-c",
                sql,
            ])
            .output(),
        sql,
    )
}

/// The socket directory of `tests/services/sql-up.sh`'s cluster.
fn pg_socket() -> String {
    let sql_dir =
        std::env::var("CARBIDE_SQL_DIR").unwrap_or_else(|_| "/var/tmp/carbide-sql".into());
    format!("{sql_dir}/pg/sock")
}

fn psql(dsn: &str, sql: &str) -> String {
    ok(
        Command::new("psql").args([dsn, "-qAt", "-c", sql]).output(),
        sql,
    )
    .trim()
    .to_string()
}

#[test]
fn postgres_replication_lag_on_a_primary_and_a_delayed_standby() {
    let primary = test_dsn("CARBIDE_TEST_PG_DSN");
    // postgres://user:password@127.0.0.1:PORT/db
    let (head, db) = primary.rsplit_once('/').unwrap();
    let (head, primary_port) = head.rsplit_once(':').unwrap();
    // A monitoring role with pg_monitor (replicated to the standby like every role): only
    // it may see a replica's replay position.
    let monitor_pw = "Monitor-pw-1";
    psql_admin(
        primary_port,
        &format!(
            "DROP ROLE IF EXISTS carbide_monitor; \
             CREATE ROLE carbide_monitor LOGIN PASSWORD '{monitor_pw}' IN ROLE pg_monitor"
        ),
    );
    let monitor = format!("postgres://carbide_monitor:{monitor_pw}@127.0.0.1:{primary_port}/{db}");
    let standby = PgStandby::start(primary_port);
    let standby_dsn = format!("{head}:{}/{db}", standby.port);
    assert_eq!(psql(&standby_dsn, "SELECT pg_is_in_recovery()"), "t");

    let rx_primary = Receiver::start();
    let rx_standby = Receiver::start();
    let body = |dsn: &str| format!("type: postgres\ndsn: {dsn}\ninterval: 1s\n");
    let rx_plain = Receiver::start();
    let (_t1, a1) = agent_with(&rx_primary, "postgres", &body(&monitor));
    let (_t2, a2) = agent_with(&rx_standby, "postgres", &body(&standby_dsn));
    let (_t3, a3) = agent_with(&rx_plain, "postgres", &body(&primary));
    let prefix = format!("{HOST}.postgres.replication.");
    wait_latest(&rx_primary, &prefix, "the primary's replica", |m| {
        m.get("replicas").is_some_and(|&v| v >= 1.0)
            && m.get("standby") == Some(&0.0)
            && m.contains_key("replica_lag_bytes")
    });
    // A user without pg_monitor sees the replica but not its position: no lag is made up.
    let m = wait_latest(
        &rx_plain,
        &prefix,
        "the replica, seen without pg_monitor",
        |m| m.get("replicas").is_some_and(|&v| v >= 1.0),
    );
    assert!(!m.contains_key("replica_lag_bytes"), "{m:?}");
    let m = wait_latest(&rx_standby, &prefix, "the standby's report", |m| {
        m.get("standby") == Some(&1.0)
    });
    assert_eq!(m.get("replicas"), Some(&0.0), "{m:?}");
    assert!(!m.contains_key("replica_lag_bytes"), "{m:?}");

    // A transaction on the primary: the standby holds it back DELAY_S, so the primary sees
    // its replica behind by some WAL bytes meanwhile.
    let table = format!("replica_probe_{}", std::process::id());
    psql(
        &primary,
        &format!("CREATE TABLE {table} (t timestamptz); INSERT INTO {table} VALUES (now())"),
    );
    wait_latest(&rx_primary, &prefix, "replica lag in bytes", |m| {
        m.get("replica_lag_bytes").is_some_and(|&v| v > 0.0)
    });
    // Once replayed, the newest replayed commit is at least DELAY_S old on the standby
    // (PostgreSQL applies nothing sooner): the collector reports that, as the standby does.
    for _ in 0..600 {
        if psql(
            &standby_dsn,
            &format!("SELECT count(*) FROM pg_tables WHERE tablename = '{table}'"),
        ) == "1"
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let m = wait_latest(&rx_standby, &prefix, "replay lag after the replay", |m| {
        m.get("replay_lag_seconds")
            .is_some_and(|&v| v >= DELAY_S - 0.5)
    });
    let own: f64 = psql(
        &standby_dsn,
        "SELECT EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())",
    )
    .parse()
    .unwrap();
    let reported = m["replay_lag_seconds"];
    assert!(
        own >= reported && own - reported < 30.0,
        "reported {reported} s, the standby says {own} s"
    );
    psql(&primary, &format!("DROP TABLE {table}"));
    for a in [a1, a2, a3] {
        let log = a.stop();
        assert!(!log.contains("WARN"), "{log}");
    }
    drop(standby);
}

// --- MariaDB -------------------------------------------------------------------------------

/// A private MariaDB server in a temporary directory; killed on drop.
struct Maria {
    dir: tempfile::TempDir,
    port: u16,
    child: std::process::Child,
}

impl Maria {
    fn start(extra: &[&str]) -> Maria {
        let dir = tempfile::tempdir().unwrap();
        ok(
            Command::new("chown").arg("mysql:").arg(dir.path()).output(),
            "chown",
        );
        let data = dir.path().join("data");
        ok(
            Command::new("mariadb-install-db")
                .arg(format!("--datadir={}", data.display()))
                .args([
                    "--user=mysql",
                    "--auth-root-authentication-method=socket",
                    "--skip-test-db",
                ])
                .output(),
            "mariadb-install-db",
        );
        let port = free_port();
        let child = Command::new("mariadbd")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--socket={}", dir.path().join("sock").display()))
            .arg(format!("--port={port}"))
            .args([
                "--bind-address=127.0.0.1",
                "--user=mysql",
                "--innodb-buffer-pool-size=16M",
            ])
            .arg(format!(
                "--log-error={}",
                dir.path().join("err.log").display()
            ))
            .args(extra)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let m = Maria { dir, port, child };
        for _ in 0..300 {
            if m.try_sql("SELECT 1").is_some() {
                return m;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "MariaDB did not start: {}",
            std::fs::read_to_string(m.dir.path().join("err.log")).unwrap_or_default()
        );
    }

    fn try_sql(&self, sql: &str) -> Option<String> {
        let out = Command::new("mariadb")
            .arg("--no-defaults")
            .arg("-S")
            .arg(self.dir.path().join("sock"))
            .args(["-u", "root", "-N", "-B", "-e", sql])
            .output()
            .ok()?;
        out.status.success().then(|| text(&out.stdout))
    }

    fn sql(&self, sql: &str) -> String {
        self.try_sql(sql)
            .unwrap_or_else(|| panic!("MariaDB statement failed: {sql}"))
    }
}

impl Drop for Maria {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn mysql_replica_lag_on_a_delayed_replica() {
    let source = Maria::start(&["--server-id=1", "--log-bin=binlog", "--binlog-format=ROW"]);
    let replica = Maria::start(&["--server-id=2", "--skip-log-bin"]);
    source.sql(
        "CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY 'Repl-pw-1'; \
         GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1';",
    );
    let password = "Monitor-pw-1";
    replica.sql(&format!(
        "CREATE USER 'carbide'@'127.0.0.1' IDENTIFIED BY '{password}'; \
         GRANT SLAVE MONITOR ON *.* TO 'carbide'@'127.0.0.1'; \
         CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={}, MASTER_USER='repl', \
           MASTER_PASSWORD='Repl-pw-1', MASTER_USE_GTID=no, MASTER_DELAY={}; \
         START SLAVE;",
        source.port, DELAY_S as u32
    ));

    let rx = Receiver::start();
    let (_t, agent) = agent_with(
        &rx,
        "mysql",
        &format!(
            "type: mysql\ndsn: mysql://carbide:{password}@127.0.0.1:{}/information_schema\n\
             replica: true\ninterval: 1s\n",
            replica.port
        ),
    );
    let prefix = format!("{HOST}.mysql.slave.");
    let m = wait_latest(&rx, &prefix, "both replication threads running", |m| {
        m.get("Slave_IO_Running") == Some(&1.0)
            && m.get("Slave_SQL_Running") == Some(&1.0)
            && m.get("Read_Master_Log_Pos").is_some_and(|&v| v > 0.0)
    });
    for n in [
        "Seconds_Behind_Master",
        "Exec_Master_Log_Pos",
        "Relay_Log_Space",
        "Last_IO_Errno",
        "Last_SQL_Errno",
    ] {
        assert!(m.contains_key(n), "{n} missing: {m:?}");
    }
    assert_eq!(m["Last_IO_Errno"], 0.0);

    // Writes on the source: the replica holds them back MASTER_DELAY seconds, and reports
    // the lag while it waits; then it catches up.
    let read_before = m["Read_Master_Log_Pos"];
    source.sql(
        "CREATE DATABASE probe; CREATE TABLE probe.t (i INT); INSERT INTO probe.t VALUES (1);",
    );
    wait_latest(&rx, &prefix, "replica lag while delayed", |m| {
        m.get("Seconds_Behind_Master").is_some_and(|&v| v >= 1.0)
            && m.get("Read_Master_Log_Pos")
                .is_some_and(|&v| v > read_before)
    });
    let m = wait_latest(&rx, &prefix, "the replica caught up", |m| {
        m.get("Seconds_Behind_Master") == Some(&0.0)
            && m.get("Exec_Master_Log_Pos") == m.get("Read_Master_Log_Pos")
            && m.get("Read_Master_Log_Pos")
                .is_some_and(|&v| v > read_before)
    });
    assert_eq!(replica.sql("SELECT i FROM probe.t").trim(), "1", "{m:?}");
    // The SQL thread stopped: reported as such.
    replica.sql("STOP SLAVE SQL_THREAD");
    wait_latest(&rx, &prefix, "the SQL thread reported stopped", |m| {
        m.get("Slave_SQL_Running") == Some(&0.0) && m.get("Slave_IO_Running") == Some(&1.0)
    });
    let log = agent.stop();
    assert!(!log.contains("WARN"), "{log}");
    assert!(!log.contains(password), "{log}");
}
