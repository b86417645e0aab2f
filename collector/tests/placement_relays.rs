//! The sender's placements (`sender.placement`) against the real relays, over thousands of
//! generated names: Debian's carbon-c-relay 3.7 in its test mode (`-t`: names on stdin, the
//! chosen servers printed) for `carbon_ch`, `fnv1a_ch`, `jump_fnv1a_ch`, `any_of` and
//! `failover`, with and without instance names, replication 1 to 3 and a ring with colliding
//! positions; Debian's graphite-carbon 1.1.7 (`carbon.routers.ConsistentHashingRouter`) for
//! `carbon_ch_py`. Then the real carbon-c-relay daemon and the real sender side by side: each
//! line (tagged and unsanitised names too) reaches the same receivers through both.
//!
//! `tests/run` installs both packages (`carbon-c-relay`, `graphite-carbon`).

mod common;
#[path = "../../tests/common/docs.rs"]
mod docs;

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use collector::sender::placement::{Member, Mode, Placement};
use collector::sender::{self, Chunk, SenderConfig, Target};
use common::receiver::{Receiver, Sink};

/// Names the relay's dispatcher would leave as they are (so test mode, which hashes the input
/// unsanitised, agrees with the daemon): `[A-Za-z0-9-_:#]` components joined by single dots.
fn names(n: usize, seed: u64) -> Vec<String> {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_:#";
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..n)
        .map(|i| {
            let parts = rng.usize(1..6);
            let mut s = String::new();
            for p in 0..parts {
                if p > 0 {
                    s.push('.');
                }
                for _ in 0..rng.usize(1..12) {
                    s.push(CHARS[rng.usize(..CHARS.len())] as char);
                }
            }
            // Common shapes too: Diamond-style paths differing in one counter.
            if i % 3 == 0 {
                s = format!("servers.host{i}.cpu.total.user");
            }
            s
        })
        .collect()
}

fn members(dests: &[&str]) -> Vec<Member> {
    dests
        .iter()
        .map(|d| Target::parse_member(d).unwrap().1)
        .collect()
}

/// Our placement of each name, as the destinations' ports.
fn ours(mode: Mode, dests: &[&str], replication: usize, names: &[String]) -> Vec<Vec<u16>> {
    let m = members(dests);
    let p = Placement::new(mode, m.clone(), replication).unwrap();
    let (mut buf, mut out) = (Vec::new(), Vec::new());
    names
        .iter()
        .map(|n| {
            p.place(n.as_bytes(), |_| true, &mut buf, &mut out);
            out.iter().map(|&i| m[i].port).collect()
        })
        .collect()
}

/// carbon-c-relay's placement of each name (test mode), as the printed servers' ports.
fn c_relay(cluster: &str, dests: &[&str], names: &[String]) -> Vec<Vec<u16>> {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("relay.conf");
    let mut text = format!("cluster c\n    {cluster}\n");
    for d in dests {
        text.push_str(&format!("        {d}\n"));
    }
    text.push_str("    ;\nmatch * send to c;\n");
    std::fs::write(&conf, &text).unwrap();
    let mut child = Command::new("carbon-c-relay")
        .arg("-t")
        .arg("-f")
        .arg(&conf)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running carbon-c-relay (tests/run installs the Debian package carbon-c-relay)");
    let input = names.join("\n") + "\n";
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "carbon-c-relay -t failed on\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse_test_output(&String::from_utf8(out.stdout).unwrap(), names.len())
}

/// Test mode prints its configuration, then per name `match`, `    * -> NAME`, `    TYPE(c)`
/// and one `        IP:PORT` line per chosen server.
fn parse_test_output(out: &str, n: usize) -> Vec<Vec<u16>> {
    let mut got: Vec<Vec<u16>> = Vec::new();
    for line in out.lines() {
        if line == "match" {
            got.push(Vec::new());
        } else if let (Some(server), Some(last)) = (line.strip_prefix("        "), got.last_mut()) {
            let port = server.rsplit_once(':').and_then(|(_, p)| p.parse().ok());
            last.push(port.unwrap_or_else(|| panic!("not IP:PORT: {line:?}")));
        }
    }
    assert_eq!(got.len(), n, "one answer per name:\n{out}");
    got
}

/// carbon-relay 1.1.7's placement (`ConsistentHashingRouter`, `DIVERSE_REPLICAS = True` as
/// carbon's default) of each name, as ports.
fn carbon_relay(dests: &[&str], replication: usize, names: &[String]) -> Vec<Vec<u16>> {
    const SCRIPT: &str = r#"
import sys
from carbon.routers import ConsistentHashingRouter
class Settings: pass
s = Settings()
s.REPLICATION_FACTOR = int(sys.argv[1])
s.DIVERSE_REPLICAS = True
s.ROUTER_HASH_TYPE = 'carbon_ch'
r = ConsistentHashingRouter(s)
for d in sys.argv[2:]:
    host, port, instance = d.split(',')
    r.addDestination((host, int(port), instance or None))
out = sys.stdout
for line in sys.stdin.buffer:
    name = line.rstrip(b'\n').decode('utf-8')
    out.write(' '.join(str(p) for (_, p, _) in r.getDestinations(name)) + '\n')
"#;
    let args: Vec<String> = members(dests)
        .iter()
        .map(|m| {
            format!(
                "{},{},{}",
                m.host,
                m.port,
                m.instance.as_deref().unwrap_or("")
            )
        })
        .collect();
    let mut child = Command::new("/usr/bin/python3")
        .arg("-W")
        .arg("ignore")
        .arg("-c")
        .arg(SCRIPT)
        .arg(replication.to_string())
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running /usr/bin/python3 (Debian's graphite-carbon)");
    let input = names.join("\n") + "\n";
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "carbon.routers failed (tests/run installs graphite-carbon): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Vec<Vec<u16>> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.split_whitespace().map(|p| p.parse().unwrap()).collect())
        .collect();
    assert_eq!(got.len(), names.len());
    got
}

#[track_caller]
fn same(what: &str, names: &[String], got: &[Vec<u16>], want: &[Vec<u16>]) {
    let diff: Vec<String> = names
        .iter()
        .zip(got.iter().zip(want))
        .filter(|(_, (g, w))| g != w)
        .take(5)
        .map(|(n, (g, w))| format!("{n}: ours {g:?}, relay {w:?}"))
        .collect();
    let count = got.iter().zip(want).filter(|(g, w)| g != w).count();
    assert!(
        diff.is_empty(),
        "{what}: {count} of {} names placed differently, e.g.\n{}",
        names.len(),
        diff.join("\n")
    );
}

/// Two instance names on one host whose `carbon_ch` rings share a position.
fn colliding_instances() -> (String, String) {
    let base = "127.0.0.1:2101=a".to_string();
    for i in 0.. {
        let other = format!("127.0.0.1:2102=b{i}");
        let p = Placement::new(Mode::CarbonCh, members(&[&base, &other]), 1).unwrap();
        if !p.collisions().is_empty() {
            return (base, other);
        }
    }
    unreachable!()
}

const PLAIN: [&str; 4] = [
    "10.0.0.1:2101",
    "10.0.0.2:2102",
    "10.0.0.3:2103",
    "10.0.0.4:2104",
];
const INSTANCES: [&str; 4] = [
    "127.0.0.1:2101=a",
    "127.0.0.1:2102=b",
    "127.0.0.1:2103=c",
    "127.0.0.1:2104=d",
];
const NUMBERED: [&str; 4] = [
    "127.0.0.1:2101=10",
    "127.0.0.1:2102=9",
    "127.0.0.1:2103=1",
    "127.0.0.1:2104=2",
];

#[test]
fn consistent_hashes_place_every_name_where_carbon_c_relay_does() {
    let names = names(3000, 7);
    for (hash, sets) in [
        ("carbon_ch", vec![&PLAIN[..], &INSTANCES[..]]),
        ("fnv1a_ch", vec![&PLAIN[..], &INSTANCES[..]]),
        (
            "jump_fnv1a_ch",
            vec![&PLAIN[..], &INSTANCES[..], &NUMBERED[..]],
        ),
    ] {
        let mode = match hash {
            "carbon_ch" => Mode::CarbonCh,
            "fnv1a_ch" => Mode::Fnv1aCh,
            _ => Mode::JumpFnv1aCh,
        };
        for dests in sets {
            for r in 1..=3 {
                let want = c_relay(&format!("{hash} replication {r}"), dests, &names);
                let got = ours(mode, dests, r, &names);
                same(
                    &format!("{hash} replication {r} over {dests:?}"),
                    &names,
                    &got,
                    &want,
                );
            }
        }
    }
}

#[test]
fn a_ring_with_colliding_positions_is_resolved_as_carbon_c_relay_does() {
    let (a, b) = colliding_instances();
    let names = names(3000, 11);
    for dests in [[a.as_str(), b.as_str()], [b.as_str(), a.as_str()]] {
        for r in 1..=2 {
            let want = c_relay(&format!("carbon_ch replication {r}"), &dests, &names);
            let got = ours(Mode::CarbonCh, &dests, r, &names);
            same(
                &format!("collision ring {dests:?} r={r}"),
                &names,
                &got,
                &want,
            );
        }
    }
}

#[test]
fn any_of_and_failover_choose_as_carbon_c_relay() {
    let names = names(2000, 3);
    for dests in [&PLAIN[..], &INSTANCES[..]] {
        for (cluster, mode) in [("any_of", Mode::AnyOf), ("failover", Mode::Failover)] {
            let want = c_relay(cluster, dests, &names);
            let got = ours(mode, dests, 1, &names);
            same(&format!("{cluster} over {dests:?}"), &names, &got, &want);
        }
    }
}

#[test]
fn carbon_ch_py_places_every_name_where_carbon_relay_does() {
    // carbon-relay hashes the name as received: tagged and non-ASCII names too.
    let mut names = names(3000, 5);
    names.extend((0..300).map(|i| format!("cpu.load;dc=eu{i};role=web")));
    names.extend((0..100).map(|i| format!("ünïcode.{i}..odd//name")));
    let diverse = ["10.0.0.1:2101=a", "10.0.0.2:2102=b", "10.0.0.3:2103"];
    for dests in [&PLAIN[..], &diverse[..], &INSTANCES[..]] {
        for r in 1..=3 {
            let want = carbon_relay(dests, r, &names);
            let got = ours(Mode::CarbonChPy, dests, r, &names);
            same(
                &format!("carbon_ch_py r={r} over {dests:?}"),
                &names,
                &got,
                &want,
            );
        }
    }
    // A collision makes carbon-relay depend on the order of its destinations.
    let (a, b) = colliding_instances();
    for dests in [[a.as_str(), b.as_str()], [b.as_str(), a.as_str()]] {
        let want = carbon_relay(&dests, 1, &names);
        let got = ours(Mode::CarbonChPy, &dests, 1, &names);
        same(
            &format!("carbon_ch_py collision {dests:?}"),
            &names,
            &got,
            &want,
        );
    }
}

/// docs/cluster.md's carbon-c-relay configuration, as written there, its three nodes made
/// these receiver ports (instances a, b, c) and its listener a free port: the running relay,
/// its port (it accepts connections) and the directory of its files.
async fn documented_relay(ports: &[u16]) -> (std::process::Child, u16, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let listen = common::free_port();
    let mut subs = vec![("10.0.0.10:2003".to_string(), format!("127.0.0.1:{listen}"))];
    for (k, port) in ports.iter().enumerate() {
        subs.push((
            format!("10.0.0.{}:2003=", k + 1),
            format!("127.0.0.1:{port}="),
        ));
    }
    let conf = docs::with(&docs::block("cluster.md", "relay"), &subs);
    for (port, inst) in ports.iter().zip(["a", "b", "c"]) {
        assert!(conf.contains(&format!(":{port}={inst}\n")), "{conf}");
    }
    std::fs::write(dir.path().join("relay.conf"), &conf).unwrap();
    let mut relay = Command::new("carbon-c-relay")
        .arg("-f")
        .arg(dir.path().join("relay.conf"))
        .arg("-l")
        .arg(dir.path().join("relay.log"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("running carbon-c-relay (tests/run installs it)");
    for _ in 0..500 {
        if std::net::TcpStream::connect(("127.0.0.1", listen)).is_ok() {
            return (relay, listen, dir);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = relay.kill();
    let _ = relay.wait();
    panic!("carbon-c-relay did not listen on {listen}");
}

/// Which receivers (indexes into `sinks`) each of `n` lines reached; a line is known by its
/// value, its index (the relay rewrites unsanitised names).
fn placed(sinks: &[Sink], n: usize) -> Vec<BTreeSet<usize>> {
    let mut at = vec![BTreeSet::new(); n];
    for (k, s) in sinks.iter().enumerate() {
        for l in s.lines() {
            let v: usize = l.split(' ').nth(1).unwrap().parse().unwrap();
            at[v].insert(k);
        }
    }
    at
}

/// The running relay (its dispatcher sanitises names and hashes a tagged name up to `;`) and
/// the sender in `carbon_ch` mode, replication 2, each in front of three receivers with the
/// same instance names, configured by docs/cluster.md's blocks as written there: every line
/// reaches the same receivers through both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sender_and_the_running_relay_deliver_each_line_to_the_same_nodes() {
    let mut lines = Vec::new();
    for (i, n) in names(600, 13).into_iter().enumerate() {
        lines.push(format!("{n} {i} 1700000000"));
    }
    let base = lines.len();
    for (k, n) in [
        "cpu.load;dc=eu;role=web",
        "cpu.load;dc=us;role=web",
        "..lead.dots..twice.",
        "odd/chars$here",
        "tagged.dot.;dc=eu",
    ]
    .iter()
    .enumerate()
    {
        lines.push(format!("{n} {} 1700000000", base + k));
    }
    let instances = ["a", "b", "c"];
    let mut via_relay = Vec::new();
    let mut via_sender = Vec::new();
    let mut receivers = Vec::new();
    for _ in &instances {
        let (s1, s2) = (Sink::default(), Sink::default());
        receivers.push(Receiver::start(0, s1.clone()).await);
        receivers.push(Receiver::start(0, s2.clone()).await);
        via_relay.push(s1);
        via_sender.push(s2);
    }
    let port_of = |k: usize| receivers[k].port();

    // docs/cluster.md's relay and agent configurations, each node's address made the port of
    // its receiver (the relay's and the sender's receivers of one instance share the host).
    let relay_ports: Vec<u16> = (0..instances.len()).map(|k| port_of(2 * k)).collect();
    let (mut relay, listen, _relay_dir) = documented_relay(&relay_ports).await;
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", listen)).unwrap();
    conn.write_all((lines.join("\n") + "\n").as_bytes())
        .unwrap();
    drop(conn);

    let spool = tempfile::tempdir().unwrap();
    let subs: Vec<(String, String)> = (0..instances.len())
        .map(|k| {
            (
                format!("10.0.0.{}:2003=", k + 1),
                format!("127.0.0.1:{}=", port_of(2 * k + 1)),
            )
        })
        .collect();
    let agent = docs::with(&docs::block("cluster.md", "agent"), &subs);
    std::fs::write(spool.path().join("collector.yml"), agent).unwrap();
    std::fs::create_dir(spool.path().join("collectors.d")).unwrap();
    let loaded = collector::config::load(&collector::config::Sources {
        config: Some(spool.path().join("collector.yml")),
        collectors_dir: None,
    })
    .unwrap_or_else(|e| panic!("docs/cluster.md's agent block: {e:?}"));
    let documented = loaded.settings.sender;
    assert_eq!(
        (documented.placement, documented.replication),
        (Mode::CarbonCh, 2)
    );
    let h = sender::spawn(SenderConfig {
        spool_dir: Some(spool.path().join("spool")),
        ..documented
    })
    .unwrap();
    h.submit(Chunk {
        data: (lines.join("\n") + "\n").into_bytes(),
        lines: lines.len() as u32,
    });

    let total = |sinks: &[Sink]| sinks.iter().map(Sink::len).sum::<usize>();
    common::wait_until(
        "both sides deliver two replicas of every line",
        Duration::from_secs(60),
        || total(&via_relay) == 2 * lines.len() && total(&via_sender) == 2 * lines.len(),
    )
    .await;
    h.shutdown(Duration::from_secs(5)).await.unwrap();
    let _ = relay.kill();
    let _ = relay.wait();

    // Lines are told apart by their value (the relay rewrites unsanitised names).
    let (r, s) = (
        placed(&via_relay, lines.len()),
        placed(&via_sender, lines.len()),
    );
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(s[i], r[i], "{line}: the sender's nodes vs carbon-c-relay's");
        assert_eq!(r[i].len(), 2, "{line}");
    }
    for rc in receivers {
        rc.stop().await;
    }
}

/// `sql-to-graphite --config` with docs/cluster.md's agent block places each query result
/// where the running carbon-c-relay (docs/cluster.md's relay block) puts the same lines: its
/// output, echoed on stdout, is sent through the relay, and every line reaches the same two
/// of three nodes through both.
#[cfg(feature = "sql")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_to_graphite_places_its_metrics_where_carbon_c_relay_does() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("m.db");
    {
        use sqlx::{Connection, Executor};
        let url = format!("sqlite://{}?mode=rwc", db.display());
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        c.execute("CREATE TABLE m (name TEXT, v INTEGER)")
            .await
            .unwrap();
        for (i, n) in names(400, 29).iter().enumerate() {
            sqlx::query("INSERT INTO m VALUES (?, ?)")
                .bind(n)
                .bind(i as i64)
                .execute(&mut c)
                .await
                .unwrap();
        }
        c.close().await.unwrap();
    }
    let n = 400;
    let instances = ["a", "b", "c"];
    let (mut via_relay, mut via_s2g, mut receivers) = (Vec::new(), Vec::new(), Vec::new());
    for _ in &instances {
        let (s1, s2) = (Sink::default(), Sink::default());
        receivers.push(Receiver::start(0, s1.clone()).await);
        receivers.push(Receiver::start(0, s2.clone()).await);
        via_relay.push(s1);
        via_s2g.push(s2);
    }
    let subs: Vec<(String, String)> = (0..instances.len())
        .map(|k| {
            (
                format!("10.0.0.{}:2003=", k + 1),
                format!("127.0.0.1:{}=", receivers[2 * k + 1].port()),
            )
        })
        .collect();
    let config = tmp.path().join("collector.yml");
    std::fs::write(
        &config,
        docs::with(&docs::block("cluster.md", "agent"), &subs),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sql-to-graphite"))
        .arg("--config")
        .arg(&config)
        .arg("--spool-dir")
        .arg(tmp.path().join("spool"))
        .args(["--graphite-prefix", "db"])
        .env("S2G_DSN", format!("sqlite://{}", db.display()))
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
        .write_all(b"SELECT name, v FROM m ORDER BY v\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), n, "{stdout}");

    let relay_ports: Vec<u16> = (0..instances.len())
        .map(|k| receivers[2 * k].port())
        .collect();
    let (mut relay, listen, _relay_dir) = documented_relay(&relay_ports).await;
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", listen)).unwrap();
    conn.write_all((lines.join("\n") + "\n").as_bytes())
        .unwrap();
    drop(conn);
    let total = |sinks: &[Sink]| sinks.iter().map(Sink::len).sum::<usize>();
    common::wait_until(
        "the relay delivers two replicas of every line",
        Duration::from_secs(60),
        || total(&via_relay) == 2 * n,
    )
    .await;
    // sql-to-graphite exited only after delivering: its receivers already hold everything.
    assert_eq!(total(&via_s2g), 2 * n);
    let _ = relay.kill();
    let _ = relay.wait();
    let (r, s) = (placed(&via_relay, n), placed(&via_s2g, n));
    for (i, line) in lines.iter().enumerate() {
        assert!(line.starts_with("db."), "{line}");
        assert_eq!(
            s[i], r[i],
            "{line}: sql-to-graphite's nodes vs carbon-c-relay's"
        );
        assert_eq!(r[i].len(), 2, "{line}");
    }
    for rc in receivers {
        rc.stop().await;
    }
}
