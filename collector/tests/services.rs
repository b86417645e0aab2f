//! The `nginx`, `redis` and `memcached` collectors against the real servers from Debian
//! (`nginx`, `redis-server`, `memcached`; tests/run installs them), each started by its test
//! as a private instance on a free 127.0.0.1 port in a temp dir. Every metric named in the
//! collector's docs page (docs/collectors/<type>.md, "Metrics" table) must appear in the
//! agent's output, with plausible values after load the test generates.

mod service_kit;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use service_kit::*;

/// A server process killed when the test ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(program: &str, args: &[&str], dir: &Path) -> Server {
    let child = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program} (tests/run installs it): {e}"));
    Server(child)
}

fn wait_for_port(port: u16) {
    for _ in 0..200 {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on 127.0.0.1:{port}");
}

/// Waits until every documented metric of `kind` has arrived under `prefix` and `ok` holds
/// for the latest values, calling `load` in between; returns the latest values.
fn wait_for_all(
    rx: &Receiver,
    kind: &str,
    prefix: &str,
    mut load: impl FnMut(),
    ok: impl Fn(&BTreeMap<String, f64>) -> bool,
) -> BTreeMap<String, f64> {
    let names = documented(kind);
    for _ in 0..150 {
        load();
        let m = latest(rx, prefix);
        if names.iter().all(|n| m.contains_key(n)) && ok(&m) {
            return m;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let m = latest(rx, prefix);
    let missing: Vec<_> = names.iter().filter(|n| !m.contains_key(*n)).collect();
    panic!("{kind}: missing {missing:?} or values not as expected: {m:#?}");
}

fn agent_with(rx: &Receiver, files: &[(&str, String)]) -> (tempfile::TempDir, Agent) {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "collector.yml", &global(rx.port));
    for (name, body) in files {
        write(tmp.path(), &format!("collectors.d/{name}.yml"), body);
    }
    let agent = Agent::start(tmp.path());
    (tmp, agent)
}

#[test]
fn nginx_stub_status() {
    let dir = tempfile::tempdir().unwrap();
    let port = closed_port();
    let conf = format!(
        "pid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{ worker_connections 64; }}\nhttp {{\n  access_log off;\n  client_body_temp_path {d};\n  proxy_temp_path {d};\n  fastcgi_temp_path {d};\n  uwsgi_temp_path {d};\n  scgi_temp_path {d};\n  server {{\n    listen 127.0.0.1:{port};\n    location = /nginx_status {{ stub_status; }}\n    location / {{ return 200 \"ok\\n\"; }}\n  }}\n}}\n",
        d = dir.path().display()
    );
    std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
    let conf_path = dir.path().join("nginx.conf");
    let prefix_dir = dir.path().display().to_string();
    let _nginx = spawn(
        "/usr/sbin/nginx",
        &[
            "-p",
            &prefix_dir,
            "-c",
            conf_path.to_str().unwrap(),
            "-g",
            "daemon off; master_process off;",
        ],
        dir.path(),
    );
    wait_for_port(port);
    let rx = Receiver::start();
    let (_tmp, agent) = agent_with(
        &rx,
        &[(
            "nginx",
            format!("type: nginx\nurl: http://127.0.0.1:{port}/nginx_status\ninterval: 1s\n"),
        )],
    );
    let get = || {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).unwrap();
        assert!(body.ends_with("ok\n"), "{body}");
    };
    let m = wait_for_all(
        &rx,
        "nginx",
        &format!("{HOST}.nginx."),
        || (0..100).for_each(|_| get()),
        // 100 GETs per 200 ms: request and connection rates well above zero
        |m| m.get("req_handled").is_some_and(|&v| v > 50.0) && m["conn_accepted"] > 50.0,
    );
    // the agent's own connection is the active one at each poll (HTTP/1.0 GETs are closed)
    assert!(m["active_connections"] >= 1.0, "{m:?}");
    assert!(m["act_writes"] >= 1.0, "{m:?}");
    assert_eq!(m["conn_accepted"], m["conn_handled"]);
    let log = agent.stop();
    assert!(!log.contains("WARN"), "{log}");
}

/// RESP command.
fn resp(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    out
}

/// Pipeline `commands` and read one reply line for each (all simple replies here).
fn redis_pipeline(port: u16, commands: &[Vec<u8>]) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let all: Vec<u8> = commands.concat();
    s.write_all(&all).unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    for _ in commands {
        line.clear();
        r.read_line(&mut line).unwrap();
        assert!(!line.starts_with('-'), "{line}");
        if line.starts_with('$') && line.trim() != "$-1" {
            // a bulk reply: its value line follows
            line.clear();
            r.read_line(&mut line).unwrap();
        }
    }
}

#[test]
fn redis_info_master_and_replica() {
    const PW: &str = "redis-test-pw";
    let dir = tempfile::tempdir().unwrap();
    let (master_port, replica_port) = (closed_port(), closed_port());
    let d = dir.path().to_str().unwrap();
    let common = |port: u16, name: &str| -> Vec<String> {
        [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--dir",
            d,
            "--dbfilename",
            &format!("{name}.rdb"),
            "--save",
            "",
            "--appendonly",
            "no",
            "--requirepass",
            PW,
            "--masterauth",
            PW,
        ]
        .map(String::from)
        .to_vec()
    };
    let args = common(master_port, "master");
    let _master = spawn(
        "/usr/bin/redis-server",
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        dir.path(),
    );
    let mut args = common(replica_port, "replica");
    args.extend([
        "--replicaof".into(),
        "127.0.0.1".into(),
        master_port.to_string(),
    ]);
    let _replica = spawn(
        "/usr/bin/redis-server",
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        dir.path(),
    );
    wait_for_port(master_port);
    wait_for_port(replica_port);
    let rx = Receiver::start();
    let (tmp, agent) = agent_with(
        &rx,
        &[
            (
                "master",
                format!("type: redis\npath: redis_master\naddress: 127.0.0.1:{master_port}\npassword: {PW}\ninterval: 1s\n"),
            ),
            (
                "replica",
                format!("type: redis\npath: redis_replica\naddress: 127.0.0.1:{replica_port}\npassword: {PW}\ninterval: 1s\n"),
            ),
        ],
    );
    // 1000 SETs with expiry on db0, 10 keys on db1, and GETs that hit and miss.
    let mut setup: Vec<Vec<u8>> = vec![resp(&["AUTH", PW])];
    for i in 0..1000 {
        setup.push(resp(&["SET", &format!("key:{i}"), "v", "EX", "3600"]));
    }
    setup.push(resp(&["SELECT", "1"]));
    for i in 0..10 {
        setup.push(resp(&["SET", &format!("other:{i}"), "v"]));
    }
    redis_pipeline(master_port, &setup);
    let load = || {
        let mut cmds = vec![resp(&["AUTH", PW])];
        for i in 0..50 {
            cmds.push(resp(&["GET", &format!("key:{i}")]));
            cmds.push(resp(&["GET", &format!("missing:{i}")]));
        }
        redis_pipeline(master_port, &cmds);
    };
    let names = documented("redis");
    let replica_only = [
        "replication.master_link_up",
        "replication.master_last_io_seconds_ago",
        "replication.master_sync_in_progress",
        "replication.slave_repl_offset",
    ];
    // The master has every documented metric but the replica-only ones; replicas report
    // those (checked below). `wait_for_all` checks the full list against the master plus
    // the replica's values.
    let m = {
        let mut found = None;
        for _ in 0..150 {
            load();
            let mut m = latest(&rx, &format!("{HOST}.redis_master."));
            let r = latest(&rx, &format!("{HOST}.redis_replica."));
            for n in replica_only {
                if let Some(v) = r.get(n) {
                    m.insert(n.to_string(), *v);
                }
            }
            let complete = names.iter().all(|n| m.contains_key(n));
            if complete
                && m["db0.keys"] == 1000.0
                && m["keyspace.hits"] > 0.0
                && m["keyspace.misses"] > 0.0
                && m["process.commands_processed"] > 0.0
                && r.get("replication.master_link_up") == Some(&1.0)
                && r.get("db0.keys") == Some(&1000.0)
            {
                found = Some(m);
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        found.unwrap_or_else(|| {
            let m = latest(&rx, &format!("{HOST}.redis_master."));
            let r = latest(&rx, &format!("{HOST}.redis_replica."));
            panic!("redis: not all documented metrics (or values): {names:?}\nmaster {m:#?}\nreplica {r:#?}")
        })
    };
    assert_eq!(m["db0.expires"], 1000.0);
    assert_eq!(m["db1.keys"], 10.0);
    assert_eq!(m["replication.master"], 1.0);
    assert_eq!(m["slaves.connected"], 1.0);
    assert!(
        m["slaves.0.lag"] >= 0.0 && m["slaves.0.lag"] < 60.0,
        "{m:?}"
    );
    assert!(m["memory.internal_view"] > 100_000.0, "{m:?}");
    assert!(m["memory.external_view"] > 100_000.0, "{m:?}");
    assert!(m["clients.connected"] >= 1.0, "{m:?}"); // the agent (replicas are not counted)
    assert_eq!(m["persistence.rdb_last_bgsave_ok"], 1.0);
    let r = latest(&rx, &format!("{HOST}.redis_replica."));
    assert_eq!(r["replication.master"], 0.0);
    assert!(!r.contains_key("slaves.0.lag"), "{r:?}");
    let log = agent.stop();
    assert!(!log.contains(PW), "{log}");
    assert!(!log.contains("WARN"), "{log}");

    // A wrong password: a failed run that names the problem, never the password.
    write(
        tmp.path(),
        "collectors.d/master.yml",
        &format!("type: redis\naddress: 127.0.0.1:{master_port}\npassword: not-{PW}\n"),
    );
    let out = run(tmp.path(), &["test", "master"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("AUTH"), "{stderr}");
    assert!(!stderr.contains(PW), "{stderr}");
}

#[test]
fn memcached_stats() {
    let dir = tempfile::tempdir().unwrap();
    let port = closed_port();
    let _memcached = spawn(
        "/usr/bin/memcached",
        &[
            "-l",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            "0",
            "-m",
            "16",
            "-u",
            "nobody",
        ],
        dir.path(),
    );
    wait_for_port(port);
    let rx = Receiver::start();
    let (_tmp, agent) = agent_with(
        &rx,
        &[(
            "memcached",
            format!("type: memcached\naddress: 127.0.0.1:{port}\ninterval: 1s\n"),
        )],
    );
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut sets = Vec::new();
    for i in 0..1000 {
        sets.extend_from_slice(format!("set key{i} 0 0 5 noreply\r\nhello\r\n").as_bytes());
    }
    s.write_all(&sets).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut load = || {
        s.write_all(b"get key1 key2 missing1\r\n").unwrap();
        let mut line = String::new();
        loop {
            line.clear();
            r.read_line(&mut line).unwrap();
            if line == "END\r\n" {
                break;
            }
        }
    };
    let m = wait_for_all(
        &rx,
        "memcached",
        &format!("{HOST}.memcached."),
        || (0..20).for_each(|_| load()),
        |m| {
            m.get("curr_items") == Some(&1000.0)
                && m.get("get_hits").is_some_and(|&v| v > 0.0)
                && m.get("get_misses").is_some_and(|&v| v > 0.0)
        },
    );
    assert!(m["bytes"] > 5000.0, "{m:?}");
    assert_eq!(m["limit_maxbytes"], 16.0 * 1024.0 * 1024.0);
    assert!(m["curr_connections"] >= 2.0, "{m:?}");
    assert!(m["uptime"] >= 1.0, "{m:?}");
    assert!(m["cmd_get"] > 0.0, "{m:?}");
    let log = agent.stop();
    assert!(!log.contains("WARN"), "{log}");
}

/// The runtime's circuit breaker with a real service: memcached is stopped, the instance's
/// circuit opens after three failed runs (logged once, `circuit_open 1` in the self-metrics),
/// memcached starts again on the same port and the first successful retry closes it (logged
/// once), with its metrics flowing again.
#[test]
fn circuit_breaker_opens_on_a_stopped_memcached_and_closes_when_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let port = closed_port();
    let start = || {
        let s = spawn(
            "/usr/bin/memcached",
            &[
                "-l",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-U",
                "0",
                "-u",
                "nobody",
            ],
            dir.path(),
        );
        wait_for_port(port);
        s
    };
    let memcached = start();
    let rx = Receiver::start();
    let (_tmp, agent) = agent_with(
        &rx,
        &[(
            "memcached",
            format!("type: memcached\naddress: 127.0.0.1:{port}\ninterval: 1s\n"),
        )],
    );
    let uptime = format!("{HOST}.memcached.uptime ");
    let open = format!("{HOST}.carbide.collector.memcached.circuit_open ");
    let failures = format!("{HOST}.carbide.collector.memcached.consecutive_failures ");
    rx.wait_until("memcached metrics", |r| !r.with_prefix(&uptime).is_empty());
    assert!(rx
        .with_prefix(&open)
        .iter()
        .all(|l| l.starts_with(&format!("{open}0 "))));

    drop(memcached);
    rx.wait_until("the circuit to open", |r| {
        r.with_prefix(&open)
            .iter()
            .any(|l| l.starts_with(&format!("{open}1 ")))
    });
    let max_failures = rx
        .with_prefix(&failures)
        .iter()
        .filter_map(|l| l.split(' ').nth(1)?.parse::<f64>().ok())
        .fold(0.0, f64::max);
    assert!(max_failures >= 3.0, "{max_failures}");
    let lines_when_down = rx.with_prefix(&uptime).len();

    let _memcached = start();
    rx.wait_until("the circuit to close and metrics to flow again", |r| {
        r.with_prefix(&open)
            .last()
            .is_some_and(|l| l.starts_with(&format!("{open}0 ")))
            && r.with_prefix(&uptime).len() > lines_when_down
    });
    let log = agent.stop();
    assert_eq!(
        log.matches("circuit open after 3 failed runs in a row")
            .count(),
        1,
        "{log}"
    );
    assert_eq!(log.matches("circuit closed").count(), 1, "{log}");
}

/// memcached and redis on unix sockets (`socket:`), through `collector test`.
#[test]
fn unix_sockets() {
    let dir = tempfile::tempdir().unwrap();
    let mc_sock = dir.path().join("mc.sock");
    let redis_sock = dir.path().join("redis.sock");
    let _mc = spawn(
        "/usr/bin/memcached",
        &["-s", mc_sock.to_str().unwrap(), "-U", "0", "-u", "root"],
        dir.path(),
    );
    let _redis = spawn(
        "/usr/bin/redis-server",
        &[
            "--port",
            "0",
            "--unixsocket",
            redis_sock.to_str().unwrap(),
            "--save",
            "",
            "--dir",
            dir.path().to_str().unwrap(),
        ],
        dir.path(),
    );
    for s in [&mc_sock, &redis_sock] {
        assert!(
            (0..200).any(|_| {
                s.exists() || {
                    std::thread::sleep(Duration::from_millis(50));
                    false
                }
            }),
            "{} never appeared",
            s.display()
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "collector.yml", &global(closed_port()));
    write(
        tmp.path(),
        "collectors.d/mc.yml",
        &format!("type: memcached\nsocket: {}\n", mc_sock.display()),
    );
    write(
        tmp.path(),
        "collectors.d/rd.yml",
        &format!("type: redis\nsocket: {}\n", redis_sock.display()),
    );
    for (name, want) in [
        ("mc", format!("{HOST}.memcached.curr_connections")),
        ("rd", format!("{HOST}.redis.clients.connected")),
    ] {
        let out = run(tmp.path(), &["test", name]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let m = metrics(&text(&out.stdout));
        assert!(m.get(&want).is_some_and(|&v| v >= 1.0), "{want}: {m:?}");
    }
}
